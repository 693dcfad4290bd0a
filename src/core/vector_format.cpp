/* vector_format.cpp — pgvector text/binary vector forms (see vector_format.h). */
#include "core/vector_format.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace vector_vault
{

namespace
{

/* Whitespace as Postgres' scanner understands it. */
bool
IsSpace(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

} // namespace

/* Rejects non-finite elements. */
Status
CheckVectorFinite(const float *v, size_t dims)
{
	for (size_t i = 0; i < dims; i++)
	{
		if (std::isnan(v[i]))
			return Status::Error(Code::kInvalidInput, "NaN not allowed in vector (element %zu)",
								 i + 1);
		if (std::isinf(v[i]))
			return Status::Error(Code::kInvalidInput,
								 "infinite value not allowed in vector (element %zu)", i + 1);
	}
	return Status::Ok();
}

/* Parses '[a,b,...]'. */
Status
ParseVectorText(const char *text, float *out, size_t cap, size_t *dims)
{
	const char *p = text;
	const char *text_end = text + strlen(text);
	while (IsSpace(*p))
		p++;
	if (*p != '[')
		return Status::Error(Code::kInvalidInput, "vector must start with \"[\"");
	p++;
	while (IsSpace(*p))
		p++;
	if (*p == ']')
		return Status::Error(Code::kInvalidInput, "vector must have at least 1 dimension");
	size_t n = 0;
	for (;;)
	{
		if (n == cap)
			return Status::Error(Code::kOutOfRange, "vector cannot have more than %zu dimensions",
								 cap);
		while (IsSpace(*p))
			p++;
		/* strtof would skip leading whitespace itself and accept an empty string as 0. */
		if (*p == '\0' || *p == ',' || *p == ']')
			return Status::Error(Code::kInvalidInput, "vector element %zu is empty", n + 1);
		/* std::from_chars is several times faster than strtof and locale-independent; strtof
		 * stays as the fallback for the forms only it accepts (a leading '+', hex floats). */
		float f = 0;
		const char *end = p;
		/* Fast path: a plain integer of up to 7 digits (exact in float) followed by a
		 * separator, as quantised or pixel data prints. Anything else goes to from_chars. */
		bool fast = false;
		{
			const char *q = p;
			uint32_t iv = 0;
			while (q - p < 7 && *q >= '0' && *q <= '9')
				iv = iv * 10 + static_cast<uint32_t>(*q++ - '0');
			if (q != p && (*q == ',' || *q == ']' || IsSpace(*q)))
			{
				f = static_cast<float>(iv);
				end = q;
				fast = true;
			}
		}
		if (!fast)
		{
			auto fc = std::from_chars(p, text_end, f);
			if (fc.ec == std::errc::result_out_of_range)
				return Status::Error(Code::kOutOfRange,
									 "vector element %zu is out of range for type real", n + 1);
			if (fc.ec == std::errc() && fc.ptr != p)
				end = fc.ptr;
			else
			{
				char *sp = nullptr;
				errno = 0;
				f = strtof(p, &sp);
				end = sp;
				if (end == p)
					return Status::Error(Code::kInvalidInput, "vector element %zu is not a number",
										 n + 1);
				/* Overflow, or underflow to zero (as Postgres' float4in); denormals are kept. */
				if (errno == ERANGE && (std::isinf(f) || f == 0.0f))
					return Status::Error(Code::kOutOfRange,
										 "vector element %zu is out of range for type real", n + 1);
			}
		}
		out[n++] = f;
		p = end;
		while (IsSpace(*p))
			p++;
		if (*p == ',')
		{
			p++;
			continue;
		}
		if (*p == ']')
		{
			p++;
			break;
		}
		return Status::Error(Code::kInvalidInput, "unexpected character after vector element %zu",
							 n);
	}
	while (IsSpace(*p))
		p++;
	if (*p != '\0')
		return Status::Error(Code::kInvalidInput, "unexpected text after the end of the vector");
	VV_RETURN_IF_ERROR(CheckVectorFinite(out, n));
	*dims = n;
	return Status::Ok();
}

/* Writes '[...]' with the shortest digits that read back to the same floats. */
size_t
FormatVectorTextBuf(const float *v, size_t dims, char *buf, size_t cap)
{
	if (cap < VectorTextCapacity(dims))
		return 0;
	char *p = buf;
	char *end = buf + cap - 1;
	*p++ = '[';
	for (size_t i = 0; i < dims; i++)
	{
		if (i > 0)
			*p++ = ',';
		auto r = std::to_chars(p, end, v[i]);
		if (r.ec != std::errc())
			return 0;
		p = r.ptr;
	}
	*p++ = ']';
	*p = '\0';
	return static_cast<size_t>(p - buf);
}

/* Appends the text form to a std::string (core-only callers). */
void
FormatVectorText(const float *v, size_t dims, std::string *out)
{
	std::string buf(VectorTextCapacity(dims), '\0');
	size_t n = FormatVectorTextBuf(v, dims, &buf[0], buf.size());
	out->append(buf.data(), n);
}

/* Parses int16 dims, int16 zero, big-endian floats. */
Status
ParseVectorBinary(const uint8_t *data, size_t len, float *out, size_t cap, size_t *dims)
{
	if (len < 4)
		return Status::Error(Code::kInvalidInput, "binary vector is truncated");
	int16_t d = static_cast<int16_t>(data[0] << 8 | data[1]);
	int16_t unused = static_cast<int16_t>(data[2] << 8 | data[3]);
	if (d < 1)
		return Status::Error(Code::kInvalidInput, "vector must have at least 1 dimension");
	if (static_cast<size_t>(d) > cap)
		return Status::Error(Code::kOutOfRange, "vector cannot have more than %zu dimensions", cap);
	if (unused != 0)
		return Status::Error(Code::kInvalidInput, "expected unused to be 0, not %d", unused);
	if (len != VectorBinarySize(static_cast<size_t>(d)))
		return Status::Error(Code::kInvalidInput,
							 "binary vector length %zu does not match %d dimensions", len, d);
	for (int i = 0; i < d; i++)
	{
		const uint8_t *q = data + 4 + 4 * i;
		uint32_t bits = static_cast<uint32_t>(q[0]) << 24 | static_cast<uint32_t>(q[1]) << 16 |
						static_cast<uint32_t>(q[2]) << 8 | q[3];
		float f;
		memcpy(&f, &bits, sizeof(f));
		out[i] = f;
	}
	VV_RETURN_IF_ERROR(CheckVectorFinite(out, static_cast<size_t>(d)));
	*dims = static_cast<size_t>(d);
	return Status::Ok();
}

/* Writes the binary form. */
void
FormatVectorBinary(const float *v, size_t dims, uint8_t *out)
{
	out[0] = static_cast<uint8_t>(dims >> 8);
	out[1] = static_cast<uint8_t>(dims);
	out[2] = 0;
	out[3] = 0;
	for (size_t i = 0; i < dims; i++)
	{
		uint32_t bits;
		memcpy(&bits, &v[i], sizeof(bits));
		uint8_t *q = out + 4 + 4 * i;
		q[0] = static_cast<uint8_t>(bits >> 24);
		q[1] = static_cast<uint8_t>(bits >> 16);
		q[2] = static_cast<uint8_t>(bits >> 8);
		q[3] = static_cast<uint8_t>(bits);
	}
}

} // namespace vector_vault
