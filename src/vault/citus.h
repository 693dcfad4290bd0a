/*
 * citus.h — vector_vault on a Citus cluster (docs/citus.md, docs/design.md "Citus").
 *
 * Two things make an encrypted type work across nodes:
 *
 *   values travel sealed  Citus moves values between nodes as text or binary, through the
 *                         types' output and input functions. Between nodes that must be the
 *                         envelope (ciphertext I/O), never plaintext: on a node that plans or
 *                         executes a distributed statement, ciphertext I/O is on while Citus
 *                         plans, starts and runs it and while COPY feeds a distributed table,
 *                         and off again for the rows handed to the client; a backend that Citus
 *                         opened on a worker (application_name "citus_internal gpid=...") has it
 *                         on from its start. Ciphertext I/O is a session setting anyone may turn
 *                         on, so none of this is a privilege.
 *   one vault catalog     every change of the vault catalog on the coordinator sends the whole
 *                         catalog and the vaults' keyring entries, still wrapped under the master
 *                         key every node shares, to every worker in the same distributed
 *                         transaction (Citus' two-phase commit); a worker applies it as the
 *                         Citus superuser and refuses catalog changes made on it directly.
 *
 * Citus is found at run time (its symbols, when citus.so is preloaded); vector_vault neither links
 * against it nor needs it.
 */
#pragma once

namespace vector_vault::vault::citus
{

/* Defines vector_vault.citus_coordinator_cn (from _PG_init, before the prefix is reserved). */
void DefineGucs();

/* Installs the hooks (from _PG_init, after the GUCs are defined). */
void Register();

} // namespace vector_vault::vault::citus
