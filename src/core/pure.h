/*
 * pure.h — the wall between the pure C++ core and Postgres.
 *
 * Everything under src/core is plain C++17: no Postgres header, no palloc, no ereport, no
 * longjmp. That keeps the core unit-testable without a server, fuzzable, and safe to run on
 * worker threads (the index build). Every core header includes this file first. In a core
 * translation unit a Postgres header before it stops the build here; bridge translation units
 * (which define VV_BRIDGE through pg/pg.h) may include core headers after Postgres. The CMake
 * build of the core has no Postgres include path at all, so postgres.h cannot even be found.
 */
#pragma once

#if (defined(POSTGRES_H) || defined(PG_VERSION_NUM) || defined(FMGR_H)) && !defined(VV_BRIDGE)
#error "src/core is pure C++: Postgres headers may not be included before or inside core headers"
#endif

#define VECTOR_VAULT_CORE 1
