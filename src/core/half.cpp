/*
 * half.cpp — binary16 conversion by bit arithmetic (see half.h).
 *
 * Float to half: the float's exponent is rebiased (127 to 15) and its 23-bit fraction cut to 10
 * bits; the 13 bits cut off decide the rounding (above half way: up; exactly half way: up only
 * if the kept fraction is odd). A carry out of the fraction moves into the exponent, which is
 * the correct next half. Below 2^-14 the result is subnormal: the value in units of 2^-24,
 * rounded the same way. Above 65520 (the half-way point between 65504 and the first value
 * binary16 cannot hold) the conversion fails instead of producing an infinity.
 */
#include "core/half.h"

#include <cstring>

namespace vector_vault
{

namespace
{

/* The bits of a float. */
inline uint32_t
Bits(float f)
{
	uint32_t u;
	std::memcpy(&u, &f, sizeof u);
	return u;
}

/* The float of some bits. */
inline float
FromBits(uint32_t u)
{
	float f;
	std::memcpy(&f, &u, sizeof f);
	return f;
}

constexpr uint32_t kFloatInf = 0x7f800000u;
constexpr uint32_t kHalfOverflow = 0x477ff000u;       /* 65520.0f: rounds to the next binade */
constexpr uint32_t kHalfMinNormal = 0x38800000u;      /* 2^-14 */
constexpr uint32_t kRebias = 0x38000000u;             /* (127 - 15) << 23 */
constexpr uint32_t kBelowSubnormalHalf = 0x33000000u; /* 2^-25: ties to 0, below rounds to 0 */

/* Rounds m >> s to nearest, ties to even. */
inline uint32_t
ShiftRoundEven(uint32_t m, unsigned s)
{
	uint32_t kept = m >> s;
	uint32_t rem = m & ((1u << s) - 1);
	uint32_t halfway = 1u << (s - 1);
	if (rem > halfway || (rem == halfway && (kept & 1u)))
		kept++;
	return kept;
}

} // namespace

/* Float to half, round to nearest even; refuses NaN, infinity and overflow. */
bool
FloatToHalf(float f, uint16_t *out)
{
	uint32_t x = Bits(f);
	uint32_t sign = (x >> 16) & 0x8000u;
	uint32_t a = x & 0x7fffffffu;
	if (a >= kFloatInf || a >= kHalfOverflow)
		return false;
	uint32_t h;
	if (a >= kHalfMinNormal)
		h = ShiftRoundEven(a - kRebias, 13);
	else if (a <= kBelowSubnormalHalf)
		h = 0;
	else
	{
		/* value = m * 2^(e - 150) = m * 2^(e - 126) units of 2^-24, e in 102..112 */
		uint32_t e = a >> 23;
		uint32_t m = (a & 0x7fffffu) | 0x800000u;
		h = ShiftRoundEven(m, 126 - e);
	}
	*out = static_cast<uint16_t>(sign | h);
	return true;
}

/* Half to float, exact. */
float
HalfToFloat(uint16_t h)
{
	uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
	uint32_t e = (h >> 10) & 0x1fu;
	uint32_t m = h & 0x3ffu;
	if (e == 0)
	{
		/* zero or subnormal: m units of 2^-24 (exact: m < 2^10) */
		float v = static_cast<float>(m) * FromBits(0x33800000u);
		return FromBits(sign | Bits(v));
	}
	if (e == 31)
		return FromBits(sign | kFloatInf | (m << 13));
	return FromBits(sign | ((e + 112) << 23) | (m << 13));
}

/* Element-wise FloatToHalf with a positional error. */
Status
FloatsToHalves(const float *in, size_t n, uint16_t *out)
{
	for (size_t i = 0; i < n; i++)
	{
		if (FloatToHalf(in[i], &out[i]))
			continue;
		uint32_t a = Bits(in[i]) & 0x7fffffffu;
		if (a > kFloatInf)
			return Status::Error(Code::kInvalidInput, "NaN not allowed in halfvec (element %zu)",
								 i + 1);
		if (a == kFloatInf)
			return Status::Error(Code::kInvalidInput,
								 "infinite value not allowed in halfvec (element %zu)", i + 1);
		return Status::Error(Code::kOutOfRange,
							 "value out of range for halfvec: overflow (element %zu)", i + 1);
	}
	return Status::Ok();
}

/* Element-wise HalfToFloat. */
void
HalvesToFloats(const uint16_t *in, size_t n, float *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = HalfToFloat(in[i]);
}

/* pgvector's halfvec binary form, strictly: exact length, zero unused field, finite values. */
Status
ParseHalfVectorBinary(const uint8_t *data, size_t len, uint16_t *out, size_t cap, size_t *dims)
{
	if (len < 4)
		return Status::Error(Code::kInvalidInput, "binary halfvec is truncated");
	int16_t d = static_cast<int16_t>(data[0] << 8 | data[1]);
	int16_t unused = static_cast<int16_t>(data[2] << 8 | data[3]);
	if (d < 1)
		return Status::Error(Code::kInvalidInput, "halfvec must have at least 1 dimension");
	if (static_cast<size_t>(d) > cap)
		return Status::Error(Code::kOutOfRange, "halfvec cannot have more than %zu dimensions",
							 cap);
	if (unused != 0)
		return Status::Error(Code::kInvalidInput, "expected unused to be 0, not %d", unused);
	if (len != HalfVectorBinarySize(static_cast<size_t>(d)))
		return Status::Error(Code::kInvalidInput,
							 "binary halfvec length %zu does not match %d dimensions", len, d);
	for (int i = 0; i < d; i++)
	{
		const uint8_t *q = data + 4 + 2 * i;
		uint16_t h = static_cast<uint16_t>(q[0] << 8 | q[1]);
		if ((h & 0x7c00u) == 0x7c00u)
			return Status::Error(Code::kInvalidInput,
								 (h & 0x3ffu)
									 ? "NaN not allowed in halfvec (element %d)"
									 : "infinite value not allowed in halfvec (element %d)",
								 i + 1);
		out[i] = h;
	}
	*dims = static_cast<size_t>(d);
	return Status::Ok();
}

/* Writes the halfvec binary form. */
void
FormatHalfVectorBinary(const uint16_t *v, size_t dims, uint8_t *out)
{
	out[0] = static_cast<uint8_t>(dims >> 8);
	out[1] = static_cast<uint8_t>(dims);
	out[2] = 0;
	out[3] = 0;
	for (size_t i = 0; i < dims; i++)
	{
		out[4 + 2 * i] = static_cast<uint8_t>(v[i] >> 8);
		out[5 + 2 * i] = static_cast<uint8_t>(v[i]);
	}
}

} // namespace vector_vault
