/* sparse_format.cpp — sparsevec text/binary forms, payload and distances (see sparse_format.h). */
#include "core/sparse_format.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

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

/* Skips whitespace. */
const char *
SkipSpace(const char *p)
{
	while (IsSpace(*p))
		p++;
	return p;
}

/* Reads a non-negative decimal integer (no sign) up to limit; false on syntax or overflow. */
bool
ReadCount(const char **pp, uint64_t limit, uint64_t *out)
{
	const char *p = *pp;
	if (*p == '+')
		p++;
	if (*p < '0' || *p > '9')
		return false;
	uint64_t v = 0;
	while (*p >= '0' && *p <= '9')
	{
		v = v * 10 + static_cast<uint64_t>(*p - '0');
		if (v > limit)
			v = limit + 1; /* keep reading digits, report out of range after */
		p++;
	}
	*pp = p;
	*out = v;
	return true;
}

/* True at a minus sign followed by a digit (a negative index or dimension count). */
bool
IsNegativeNumber(const char *p)
{
	return p[0] == '-' && p[1] >= '0' && p[1] <= '9';
}

/* Big-endian helpers. */
uint32_t
GetBe32(const uint8_t *p)
{
	return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
		   static_cast<uint32_t>(p[2]) << 8 | p[3];
}

void
PutBe32(uint8_t *p, uint32_t v)
{
	p[0] = static_cast<uint8_t>(v >> 24);
	p[1] = static_cast<uint8_t>(v >> 16);
	p[2] = static_cast<uint8_t>(v >> 8);
	p[3] = static_cast<uint8_t>(v);
}

/* Checks indices strictly ascending and below dims, values finite (and non-zero if asked). */
Status
CheckPairs(uint32_t dims, uint32_t nnz, const uint32_t *idx, const float *val, bool nonzero,
		   Code code)
{
	for (uint32_t i = 0; i < nnz; i++)
	{
		if (idx[i] >= dims)
			return Status::Error(code, "sparsevec index out of bounds (element %u)", i + 1);
		if (i > 0 && idx[i] <= idx[i - 1])
			return Status::Error(
				code, "sparsevec indices must be ascending and unique (element %u)", i + 1);
		if (!std::isfinite(val[i]))
			return Status::Error(code, "sparsevec values must be finite (element %u)", i + 1);
		if (nonzero && val[i] == 0.0f)
			return Status::Error(code, "sparsevec stored values must not be zero (element %u)",
								 i + 1);
	}
	return Status::Ok();
}

} // namespace

/* Parses '{i:v,...}/dims'. */
Status
ParseSparseText(const char *text, uint32_t *indices, float *values, size_t cap, uint32_t *dims,
				uint32_t *nnz)
{
	const char *text_end = text + strlen(text);
	const char *p = SkipSpace(text);
	if (*p != '{')
		return Status::Error(Code::kInvalidInput, "sparsevec must start with \"{\"");
	p = SkipSpace(p + 1);
	std::vector<std::pair<uint32_t, float>> pairs;
	size_t n = 0; /* elements read, zeros included */
	if (*p == '}')
		p++;
	else
	{
		for (;;)
		{
			n++;
			uint64_t index = 0;
			p = SkipSpace(p);
			if (IsNegativeNumber(p))
				return Status::Error(Code::kInvalidInput,
									 "sparsevec index out of bounds (element %zu)", n);
			if (!ReadCount(&p, kMaxSparseDims, &index))
				return Status::Error(Code::kInvalidInput, "sparsevec element %zu has no index", n);
			if (index < 1 || index > kMaxSparseDims)
				return Status::Error(Code::kInvalidInput,
									 "sparsevec index out of bounds (element %zu)", n);
			p = SkipSpace(p);
			if (*p != ':')
				return Status::Error(Code::kInvalidInput, "expected \":\" in sparsevec element %zu",
									 n);
			p = SkipSpace(p + 1);
			if (*p == '\0' || *p == ',' || *p == '}')
				return Status::Error(Code::kInvalidInput, "sparsevec element %zu has no value", n);
			float f = 0;
			const char *end = p;
			auto fc = std::from_chars(p, text_end, f);
			if (fc.ec == std::errc::result_out_of_range)
				return Status::Error(Code::kOutOfRange,
									 "sparsevec element %zu is out of range for type real", n);
			if (fc.ec == std::errc() && fc.ptr != p)
				end = fc.ptr;
			else
			{
				char *sp = nullptr;
				errno = 0;
				f = strtof(p, &sp);
				end = sp;
				if (end == p)
					return Status::Error(Code::kInvalidInput,
										 "sparsevec element %zu is not a number", n);
				if (errno == ERANGE && (std::isinf(f) || f == 0.0f))
					return Status::Error(Code::kOutOfRange,
										 "sparsevec element %zu is out of range for type real", n);
			}
			if (!std::isfinite(f))
				return Status::Error(Code::kInvalidInput,
									 "sparsevec element %zu is not a finite number", n);
			if (f != 0.0f)
			{
				if (pairs.size() == cap || pairs.size() == kMaxSparseNnz)
					return Status::Error(Code::kOutOfRange,
										 "sparsevec cannot have more than %u non-zero elements",
										 kMaxSparseNnz);
				pairs.emplace_back(static_cast<uint32_t>(index - 1), f);
			}
			p = SkipSpace(end);
			if (*p == ',')
			{
				p++;
				continue;
			}
			if (*p == '}')
			{
				p++;
				break;
			}
			return Status::Error(Code::kInvalidInput,
								 "unexpected character after sparsevec element %zu", n);
		}
	}
	p = SkipSpace(p);
	if (*p != '/')
		return Status::Error(Code::kInvalidInput, "expected \"/\" and the dimensions");
	p = SkipSpace(p + 1);
	uint64_t d = 0;
	if (IsNegativeNumber(p))
		return Status::Error(Code::kInvalidInput, "sparsevec must have at least 1 dimension");
	if (!ReadCount(&p, kMaxSparseDims, &d))
		return Status::Error(Code::kInvalidInput, "sparsevec dimensions are not a number");
	if (*SkipSpace(p) != '\0')
		return Status::Error(Code::kInvalidInput, "unexpected text after the sparsevec");
	if (d < 1)
		return Status::Error(Code::kInvalidInput, "sparsevec must have at least 1 dimension");
	if (d > kMaxSparseDims)
		return Status::Error(Code::kOutOfRange, "sparsevec cannot have more than %u dimensions",
							 kMaxSparseDims);
	std::sort(pairs.begin(), pairs.end(),
			  [](const std::pair<uint32_t, float> &a, const std::pair<uint32_t, float> &b)
			  { return a.first < b.first; });
	for (size_t i = 0; i < pairs.size(); i++)
	{
		if (pairs[i].first >= d)
			return Status::Error(Code::kInvalidInput, "sparsevec index out of bounds");
		if (i > 0 && pairs[i].first == pairs[i - 1].first)
			return Status::Error(Code::kInvalidInput,
								 "sparsevec indices must not contain duplicates");
		indices[i] = pairs[i].first;
		values[i] = pairs[i].second;
	}
	/* the pairs held plaintext values: clear them before the vector frees its memory */
	if (!pairs.empty())
		std::memset(static_cast<void *>(pairs.data()), 0, pairs.size() * sizeof(pairs[0]));
	*dims = static_cast<uint32_t>(d);
	*nnz = static_cast<uint32_t>(pairs.size());
	return Status::Ok();
}

/* Writes the text form. */
size_t
FormatSparseTextBuf(const SparseView &v, char *buf, size_t cap)
{
	if (cap < SparseTextCapacity(v.nnz))
		return 0;
	char *p = buf;
	char *end = buf + cap - 1;
	*p++ = '{';
	for (uint32_t i = 0; i < v.nnz; i++)
	{
		if (i > 0)
			*p++ = ',';
		auto r = std::to_chars(p, end, static_cast<uint64_t>(v.indices[i]) + 1);
		if (r.ec != std::errc())
			return 0;
		p = r.ptr;
		*p++ = ':';
		r = std::to_chars(p, end, v.values[i]);
		if (r.ec != std::errc())
			return 0;
		p = r.ptr;
	}
	*p++ = '}';
	*p++ = '/';
	auto r = std::to_chars(p, end, v.dims);
	if (r.ec != std::errc())
		return 0;
	p = r.ptr;
	*p = '\0';
	return static_cast<size_t>(p - buf);
}

/* Appends the text form to a std::string. */
void
FormatSparseText(const SparseView &v, std::string *out)
{
	std::string buf(SparseTextCapacity(v.nnz), '\0');
	size_t n = FormatSparseTextBuf(v, &buf[0], buf.size());
	out->append(buf.data(), n);
}

/* Parses pgvector's binary form, strictly. */
Status
ParseSparseBinary(const uint8_t *data, size_t len, uint32_t *indices, float *values, size_t cap,
				  uint32_t *dims, uint32_t *nnz)
{
	if (len < 12)
		return Status::Error(Code::kInvalidInput, "binary sparsevec is truncated");
	int32_t d = static_cast<int32_t>(GetBe32(data));
	int32_t n = static_cast<int32_t>(GetBe32(data + 4));
	int32_t unused = static_cast<int32_t>(GetBe32(data + 8));
	if (d < 1)
		return Status::Error(Code::kInvalidInput, "sparsevec must have at least 1 dimension");
	if (static_cast<uint32_t>(d) > kMaxSparseDims)
		return Status::Error(Code::kOutOfRange, "sparsevec cannot have more than %u dimensions",
							 kMaxSparseDims);
	if (n < 0 || n > d)
		return Status::Error(Code::kInvalidInput, "sparsevec element count is invalid");
	if (static_cast<uint32_t>(n) > kMaxSparseNnz || static_cast<size_t>(n) > cap)
		return Status::Error(Code::kOutOfRange,
							 "sparsevec cannot have more than %u non-zero elements", kMaxSparseNnz);
	if (unused != 0)
		return Status::Error(Code::kInvalidInput, "expected unused to be 0, not %d", unused);
	if (len != SparseBinarySize(static_cast<uint32_t>(n)))
		return Status::Error(Code::kInvalidInput,
							 "binary sparsevec length %zu does not match %d elements", len, n);
	for (int32_t i = 0; i < n; i++)
	{
		indices[i] = GetBe32(data + 12 + 4 * static_cast<size_t>(i));
		uint32_t bits =
			GetBe32(data + 12 + 4 * static_cast<size_t>(n) + 4 * static_cast<size_t>(i));
		memcpy(&values[i], &bits, sizeof(float));
	}
	VV_RETURN_IF_ERROR(CheckPairs(static_cast<uint32_t>(d), static_cast<uint32_t>(n), indices,
								  values, true, Code::kInvalidInput));
	*dims = static_cast<uint32_t>(d);
	*nnz = static_cast<uint32_t>(n);
	return Status::Ok();
}

/* Writes the binary form. */
void
FormatSparseBinary(const SparseView &v, uint8_t *out)
{
	PutBe32(out, v.dims);
	PutBe32(out + 4, v.nnz);
	PutBe32(out + 8, 0);
	for (uint32_t i = 0; i < v.nnz; i++)
	{
		uint32_t bits;
		memcpy(&bits, &v.values[i], sizeof(bits));
		PutBe32(out + 12 + 4 * static_cast<size_t>(i), v.indices[i]);
		PutBe32(out + 12 + 4 * static_cast<size_t>(v.nnz) + 4 * static_cast<size_t>(i), bits);
	}
}

/* Writes the payload in host order. */
void
PackSparse(const SparseView &v, uint8_t *out)
{
	memcpy(out, &v.dims, 4);
	memcpy(out + 4, &v.nnz, 4);
	memcpy(out + 8, v.indices, 4 * static_cast<size_t>(v.nnz));
	memcpy(out + 8 + 4 * static_cast<size_t>(v.nnz), v.values, 4 * static_cast<size_t>(v.nnz));
}

/* Reads a payload in place; the arrays must be 4-byte aligned in data (palloc'd buffers are). */
Status
UnpackSparse(const uint8_t *data, size_t len, SparseView *out)
{
	if (len < 8 || reinterpret_cast<uintptr_t>(data) % alignof(uint32_t) != 0)
		return Status::Error(Code::kCorrupt, "sparse payload is truncated or misaligned");
	uint32_t d, n;
	memcpy(&d, data, 4);
	memcpy(&n, data + 4, 4);
	if (d < 1 || d > kMaxSparseDims || n > d || n > kMaxSparseNnz || len != SparsePayloadSize(n))
		return Status::Error(Code::kCorrupt, "sparse payload header is invalid");
	const uint32_t *idx = reinterpret_cast<const uint32_t *>(data + 8);
	const float *val = reinterpret_cast<const float *>(data + 8 + 4 * static_cast<size_t>(n));
	VV_RETURN_IF_ERROR(CheckPairs(d, n, idx, val, false, Code::kCorrupt));
	out->dims = d;
	out->nnz = n;
	out->indices = idx;
	out->values = val;
	return Status::Ok();
}

namespace
{

/* Merges two sorted pair lists, calling f(x, y) for every index either holds (0 if absent). */
template <typename F>
void
Merge(const SparseView &a, const SparseView &b, F f)
{
	uint32_t i = 0, j = 0;
	while (i < a.nnz || j < b.nnz)
	{
		if (j == b.nnz || (i < a.nnz && a.indices[i] < b.indices[j]))
			f(static_cast<double>(a.values[i++]), 0.0);
		else if (i == a.nnz || b.indices[j] < a.indices[i])
			f(0.0, static_cast<double>(b.values[j++]));
		else
			f(static_cast<double>(a.values[i++]), static_cast<double>(b.values[j++]));
	}
}

} // namespace

/* Euclidean distance. */
double
SparseL2(const SparseView &a, const SparseView &b)
{
	double s = 0;
	Merge(a, b, [&s](double x, double y) { s += (x - y) * (x - y); });
	return std::sqrt(s);
}

/* Inner product. */
double
SparseInnerProduct(const SparseView &a, const SparseView &b)
{
	double s = 0;
	Merge(a, b, [&s](double x, double y) { s += x * y; });
	return s;
}

/* Taxicab distance. */
double
SparseL1(const SparseView &a, const SparseView &b)
{
	double s = 0;
	Merge(a, b, [&s](double x, double y) { s += std::fabs(x - y); });
	return s;
}

/* Cosine distance, clamped, NaN for a zero norm. */
double
SparseCosineDistance(const SparseView &a, const SparseView &b)
{
	double dot = 0, na = 0, nb = 0;
	Merge(a, b,
		  [&](double x, double y)
		  {
			  dot += x * y;
			  na += x * x;
			  nb += y * y;
		  });
	double sim = dot / std::sqrt(na * nb);
	if (std::isnan(sim))
		return NAN;
	sim = std::min(1.0, std::max(-1.0, sim));
	return 1.0 - sim;
}

/* Euclidean norm. */
double
SparseNorm(const SparseView &a)
{
	double s = 0;
	for (uint32_t i = 0; i < a.nnz; i++)
		s += static_cast<double>(a.values[i]) * a.values[i];
	return std::sqrt(s);
}

/* Unit vector in the same direction, zeros dropped. */
uint32_t
SparseNormalize(const SparseView &a, uint32_t *idx, float *val)
{
	double norm = SparseNorm(a);
	if (!(norm > 0) || !std::isfinite(norm))
		return 0;
	uint32_t n = 0;
	for (uint32_t i = 0; i < a.nnz; i++)
	{
		float x = static_cast<float>(a.values[i] / norm);
		if (x == 0.0f)
			continue;
		idx[n] = a.indices[i];
		val[n] = x;
		n++;
	}
	return n;
}

/* See sparse_format.h. Walks both pair lists in index order: the first index below min(dims)
 * where the dense values differ decides. */
int
CompareSparse(const SparseView &a, const SparseView &b)
{
	const uint32_t limit = a.dims < b.dims ? a.dims : b.dims;
	uint32_t i = 0, j = 0;
	while (i < a.nnz || j < b.nnz)
	{
		uint32_t ia = i < a.nnz ? a.indices[i] : UINT32_MAX;
		uint32_t ib = j < b.nnz ? b.indices[j] : UINT32_MAX;
		uint32_t at = ia < ib ? ia : ib;
		if (at >= limit)
			break;
		float va = ia == at ? a.values[i++] : 0.0f;
		float vb = ib == at ? b.values[j++] : 0.0f;
		if (va < vb)
			return -1;
		if (va > vb)
			return 1;
	}
	if (a.dims != b.dims)
		return a.dims < b.dims ? -1 : 1;
	return 0;
}

} // namespace vector_vault
