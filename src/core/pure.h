/*
 * pure.h — the wall between the pure C++ core and Postgres.
 *
 * Everything under src/core is plain C++17: no Postgres header, no palloc, no ereport, no
 * longjmp. That keeps the core unit-testable without a server, fuzzable, and safe to run on
 * worker threads (the index build). Every core header includes this file first; if a Postgres
 * header was included before it, the build stops here. The CMake build of the core also has no
 * Postgres include path at all, so an include of postgres.h inside the core cannot compile.
 */
#pragma once

#if defined(POSTGRES_H) || defined(PG_VERSION_NUM) || defined(FMGR_H)
#error "src/core is pure C++: Postgres headers may not be included before or inside core headers"
#endif

#define VECTOR_VAULT_CORE 1
