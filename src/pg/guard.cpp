/* guard.cpp — converting core Status values and C++ exceptions into Postgres errors. */
#include "pg/guard.h"

namespace vector_vault::pg
{

/* Maps a core failure class to a SQLSTATE. */
int
SqlStateFor(Code code)
{
	switch (code)
	{
		case Code::kOk:
			return ERRCODE_SUCCESSFUL_COMPLETION;
		case Code::kInvalidInput:
			return ERRCODE_INVALID_TEXT_REPRESENTATION;
		case Code::kOutOfRange:
			return ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE;
		case Code::kCorrupt:
			return kSqlStateCorrupt;
		case Code::kKeyUnavailable:
			return kSqlStateKeyUnavailable;
		case Code::kIo:
			return ERRCODE_IO_ERROR;
		case Code::kNotFound:
			return ERRCODE_UNDEFINED_OBJECT;
		case Code::kInternal:
			break;
	}
	return ERRCODE_INTERNAL_ERROR;
}

/* Raises ERROR with the Status message; context, when given, prefixes it. */
void
ThrowStatus(const Status &s, const char *context, const char *hint)
{
	if (context != nullptr)
		ereport(ERROR, (errcode(SqlStateFor(s.code())), errmsg("%s: %s", context, s.message()),
						hint ? errhint("%s", hint) : 0));
	ereport(ERROR, (errcode(SqlStateFor(s.code())), errmsg("%s", s.message()),
					hint ? errhint("%s", hint) : 0));
	pg_unreachable();
}

/* Raises ERROR for an exception caught at an entry point. */
void
ThrowCppException(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR), errmsg("vector_vault internal error: %s", what)));
	pg_unreachable();
}

} // namespace vector_vault::pg
