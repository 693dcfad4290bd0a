/*
 * guard.h — the C/C++ boundary for SQL-callable functions.
 *
 * Two error mechanisms meet in this extension: Postgres' ereport(ERROR) (a longjmp) and C++
 * exceptions. They must never unwind through each other's frames. The rules (CONTRIBUTING.md):
 *   1. Every SQL-callable C function is defined with VV_FUNCTION(name). Its body runs inside a
 *      try/catch; a C++ exception is turned into ereport(ERROR) only after the catch block has
 *      finished, so no exception object is alive when Postgres longjmps.
 *   2. Core code (src/core) reports failures as Status values; bridge code converts them with
 *      ThrowStatus(), which calls ereport after the core call has returned.
 *   3. Bridge code keeps no C++ object with a non-trivial destructor alive across a Postgres call
 *      that can raise an error: a longjmp would skip the destructor. Plain structs, arrays and
 *      palloc'd memory only; RAII types stay inside src/core and worker threads.
 */
#pragma once

#include "core/status.h"

#include <cstring>
#include <exception>

#include "pg/pg.h"

namespace vector_vault::pg
{

/* SQLSTATEs of our own, in class 22 (data exception), for crypto failures. */
constexpr int kSqlStateCorrupt = MAKE_SQLSTATE('2', '2', 'V', '0', '1');
constexpr int kSqlStateKeyUnavailable = MAKE_SQLSTATE('2', '2', 'V', '0', '2');
constexpr int kSqlStateMasterKey = MAKE_SQLSTATE('2', '2', 'V', '0', '3');

/* The SQLSTATE that fits a core failure code. */
int SqlStateFor(Code code);

/* Raises ERROR from a failed core Status (never returns); hint may be nullptr. */
[[noreturn]] void ThrowStatus(const Status &s, const char *context, const char *hint);

/* Raises ERROR for a C++ exception that reached an entry point (never returns). */
[[noreturn]] void ThrowCppException(const char *what);

} // namespace vector_vault::pg

/*
 * Defines SQL-callable function `name`; the braces that follow are its C++ body, which receives
 * fcinfo like any V1 function.
 */
#define VV_FUNCTION(name)                                                                          \
	extern "C"                                                                                     \
	{                                                                                              \
		PG_FUNCTION_INFO_V1(name);                                                                 \
	}                                                                                              \
	static Datum name##_body(PG_FUNCTION_ARGS);                                                    \
	extern "C" PGDLLEXPORT Datum name(PG_FUNCTION_ARGS);                                           \
	extern "C" Datum name(PG_FUNCTION_ARGS)                                                        \
	{                                                                                              \
		char vv_what[256];                                                                         \
		bool vv_failed = false;                                                                    \
		Datum vv_result = (Datum) 0;                                                               \
		try                                                                                        \
		{                                                                                          \
			vv_result = name##_body(fcinfo);                                                       \
		}                                                                                          \
		catch (const std::exception &e)                                                            \
		{                                                                                          \
			vv_failed = true;                                                                      \
			strlcpy(vv_what, e.what(), sizeof(vv_what));                                           \
		}                                                                                          \
		catch (...)                                                                                \
		{                                                                                          \
			vv_failed = true;                                                                      \
			strlcpy(vv_what, "unknown C++ exception", sizeof(vv_what));                            \
		}                                                                                          \
		if (vv_failed)                                                                             \
			::vector_vault::pg::ThrowCppException(vv_what);                                        \
		return vv_result;                                                                          \
	}                                                                                              \
	static Datum name##_body(PG_FUNCTION_ARGS)
