/*
 * secret.cpp — buffers that are wiped by their memory context (see secret.h).
 *
 * Each buffer has a small record allocated in the same context: the callback Postgres calls
 * when the context is reset or deleted, the buffer's address and length, and whether it is a
 * locked mapping. The buffer carries a pointer back to its record just before the bytes handed
 * out, so FreeSecret finds the record, zeroes the buffer and disarms the record (Postgres has no
 * way to unregister a callback; a disarmed record does nothing and is freed with its context).
 * Records are 48 bytes: a function that allocates per row in a per-tuple context frees them with
 * each row; one that allocated millions in one long-lived context would hold their records.
 */
#include "core/secure.h"

#include "pg/guard.h"
#include "pg/secret.h"

extern "C"
{
#include "funcapi.h"
#include "utils/memutils.h"
}

namespace vector_vault::pg
{
namespace
{

/* One armed buffer. */
struct SecretRecord
{
	MemoryContextCallback cb;
	void *base; /* what to free: the palloc'd block, or the mapping */
	size_t len; /* bytes to zero from base */
	bool locked;
};

/* Header in front of the bytes handed out. */
struct alignas(16) SecretHeader
{
	SecretRecord *record;
};

SecretStats g_stats;

/* Zeroes (and for a mapping, unmaps) the buffer of r and disarms r. */
void
Release(SecretRecord *r)
{
	if (r->base == nullptr)
		return;
	if (r->locked)
		FreeLockedPages(r->base, r->len);
	else
		SecureZero(r->base, r->len);
	r->base = nullptr;
}

/* Reset callback: the context is going away before the buffer was released. */
void
WipeOnReset(void *arg) noexcept
{
	SecretRecord *r = static_cast<SecretRecord *>(arg);
	if (r->base == nullptr)
		return;
	g_stats.wiped_on_reset++;
	/* The palloc'd block is freed by the context itself; only zero it. */
	Release(r);
}

/* Allocates and arms a record for base in CurrentMemoryContext. */
SecretRecord *
Arm(void *base, size_t len, bool locked)
{
	SecretRecord *r = static_cast<SecretRecord *>(palloc(sizeof(SecretRecord)));
	r->base = base;
	r->len = len;
	r->locked = locked;
	r->cb.func = WipeOnReset;
	r->cb.arg = r;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &r->cb);
	g_stats.allocated++;
	return r;
}

/* The record of a buffer handed out by AllocSecret or AllocLockedSecret. */
SecretRecord *
RecordOf(void *p)
{
	return (reinterpret_cast<SecretHeader *>(p) - 1)->record;
}

} // namespace

/* See secret.h. */
void *
AllocSecret(size_t len)
{
	size_t total = sizeof(SecretHeader) + (len == 0 ? 1 : len);
	SecretHeader *h = static_cast<SecretHeader *>(palloc(total));
	/* The block holds nothing yet: a failed palloc of the record leaks no secret. */
	h->record = nullptr;
	h->record = Arm(h, total, false);
	return h + 1;
}

/* See secret.h. */
void
FreeSecret(void *p)
{
	if (p == nullptr)
		return;
	SecretRecord *r = RecordOf(p);
	void *base = r->base;
	Release(r);
	g_stats.freed++;
	pfree(base);
}

/* See secret.h. */
void *
AllocLockedSecret(size_t len)
{
	/* Armed before the mapping exists, so no raise can come between mapping and arming. */
	SecretRecord *r = Arm(nullptr, 0, true);
	size_t total = TYPEALIGN(4096, sizeof(SecretHeader) + len);
	bool locked;
	void *base = AllocateLockedPages(total, &locked);
	if (base == nullptr)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("could not allocate locked memory for a secret")));
	r->base = base;
	r->len = total;
	SecretHeader *h = static_cast<SecretHeader *>(base);
	h->record = r;
	return h + 1;
}

/* See secret.h. */
void
FreeLockedSecret(void *p)
{
	if (p == nullptr)
		return;
	Release(RecordOf(p));
	g_stats.freed++;
}

/* See secret.h. */
SecretStats
GetSecretStats()
{
	return g_stats;
}

} // namespace vector_vault::pg

/* vault._secret_wipes(): this backend's secret-buffer counters (tests use them to prove that a
 * buffer is zeroed when an error interrupts the code that would have freed it). */
VV_FUNCTION(vault_secret_wipes)
{
	using vector_vault::pg::GetSecretStats;
	TupleDesc desc;
	if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("vault._secret_wipes must return a record")));
	desc = BlessTupleDesc(desc);
	vector_vault::pg::SecretStats s = GetSecretStats();
	Datum values[3] = {Int64GetDatum(s.allocated), Int64GetDatum(s.freed),
					   Int64GetDatum(s.wiped_on_reset)};
	bool nulls[3] = {false, false, false};
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
