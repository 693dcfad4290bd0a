/* status.cpp — formatting of core Status messages. */
#include "core/status.h"

#include <cstdio>

namespace vector_vault
{

/* Builds a failed Status; the message is truncated to the fixed buffer. */
Status
Status::Error(Code code, const char *fmt, ...)
{
	Status s;
	s.code_ = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s.message_, sizeof(s.message_), fmt, ap);
	va_end(ap);
	return s;
}

} // namespace vector_vault
