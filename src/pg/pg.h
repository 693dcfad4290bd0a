/*
 * pg.h — the one way bridge code includes Postgres.
 *
 * Bridge files (everything outside src/core) include the C++ standard headers and core headers
 * they need first and this file last: Postgres' port.h redefines printf-family names that C++
 * headers must not see, and core headers refuse to be included after postgres.h.
 *
 * PGDLLEXPORT is defined here with default visibility. The extension is compiled with
 * -fvisibility=hidden, so the only symbols the shared object exports are the ones Postgres looks
 * up: Pg_magic_func, _PG_init and, through PG_FUNCTION_INFO_V1, each SQL-callable function and
 * its pg_finfo_ record (.ci/check-exports verifies this).
 */
#pragma once

#define VV_BRIDGE 1
#define PGDLLEXPORT __attribute__((visibility("default")))

extern "C"
{
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

#include "pg/compat.h"
