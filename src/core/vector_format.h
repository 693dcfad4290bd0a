/*
 * vector_format.h — pgvector-compatible text and binary forms of a float4 vector.
 *
 * Text: '[1,2.5,-3e-05]' with optional whitespace around elements and brackets, exactly what
 * pgvector reads and writes, so pgvector client libraries work unchanged. Binary (send/recv):
 * int16 dimensions, int16 zero, then that many big-endian float4s. Both parsers take untrusted
 * bytes (they are fuzzed), reject NaN and infinities, and never put element text into an
 * error message: a vector is plaintext and error messages reach the server log.
 */
#pragma once
#include "core/pure.h"
#include "core/status.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace vector_vault
{

/*
 * Parses NUL-terminated text into out (capacity cap floats); *dims receives the count.
 * Fails with kInvalidInput (syntax, NaN, infinity) or kOutOfRange (too many dimensions,
 * element out of float4 range).
 */
Status ParseVectorText(const char *text, float *out, size_t cap, size_t *dims);

/* Appends the text form of v to *out: '[' elements with shortest round-trip digits ']'. */
void FormatVectorText(const float *v, size_t dims, std::string *out);

/* Writes the text form into buf (capacity cap, NUL-terminated); returns bytes written or 0. */
size_t FormatVectorTextBuf(const float *v, size_t dims, char *buf, size_t cap);

/* Bytes FormatVectorTextBuf may need for dims elements, including the NUL. */
constexpr size_t
VectorTextCapacity(size_t dims)
{
	return 2 + dims * 16 + 1;
}

/* Parses the binary form (len bytes) into out (capacity cap floats). */
Status ParseVectorBinary(const uint8_t *data, size_t len, float *out, size_t cap, size_t *dims);

/* Size of the binary form for dims elements. */
constexpr size_t
VectorBinarySize(size_t dims)
{
	return 4 + 4 * dims;
}

/* Writes the binary form (VectorBinarySize(dims) bytes) into out. */
void FormatVectorBinary(const float *v, size_t dims, uint8_t *out);

/* Rejects NaN and infinities; element index is reported, never the value. */
Status CheckVectorFinite(const float *v, size_t dims);

} // namespace vector_vault
