/* fuzz_util.h — small helpers shared by the fuzz targets. */
#pragma once
#include <cctype>

namespace vector_vault::fuzz
{

/* Stops the fuzzer with a crash report when a property does not hold. */
inline void
Check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

/* True when s holds min_run or more hex digits in a row (a leaked key or secret would). */
inline bool
HasHexRun(const char *s, int min_run)
{
	int run = 0;
	for (; *s; s++)
	{
		run = isxdigit(static_cast<unsigned char>(*s)) ? run + 1 : 0;
		if (run >= min_run)
			return true;
	}
	return false;
}

} // namespace vector_vault::fuzz
