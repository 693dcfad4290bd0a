/*
 * half_distance.h — distances from a float32 query to a vector stored as halves (binary16).
 *
 * An index on ehalfvec keeps its vectors as halves in the index's vector stream and in the
 * shared cache (the "half" representation): half the bytes of float32, and no precision lost,
 * because an ehalfvec value is halves to begin with. The search query stays float32 (a query of
 * either type opens to floats), so the kernels here take one float vector and one half vector,
 * widen the halves as they load them (F16C's vcvtph2ps: exact, every half is a float) and then
 * compute exactly what the float32 kernels of distance.h compute, on the same scale: squared
 * L2, negative inner product, L1. Like distance.h the family is chosen once at run time from
 * CPUID (AVX-512F, AVX2+FMA+F16C, scalar), never by compiling with -march.
 */
#pragma once
#include "core/pure.h"

#include <cstddef>
#include <cstdint>

namespace vector_vault
{

/* A distance kernel between a float32 query and a half vector: smaller means closer. */
using HalfDistanceKernel = float (*)(const float *q, const uint16_t *x, size_t n);

/* The kernels chosen for this CPU. */
HalfDistanceKernel L2SquaredHalfKernel();
HalfDistanceKernel NegInnerProductHalfKernel();
HalfDistanceKernel L1HalfKernel();

/* Widens n halves to floats (exact) with the chosen family's instructions: HalvesToFloats of
 * core/half.h at SIMD speed, for the cache's element-to-element distances and copies. */
void WidenHalves(const uint16_t *in, size_t n, float *out);

/* The three kernels of a family ("avx512f", "avx2", "scalar") for tests that compare every
 * family with the scalar one; false when unknown or this CPU lacks the instructions. */
bool HalfKernelFamily(const char *family, HalfDistanceKernel *l2, HalfDistanceKernel *ip,
					  HalfDistanceKernel *l1);

} // namespace vector_vault
