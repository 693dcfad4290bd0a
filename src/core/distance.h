/*
 * distance.h — vector distances, twice.
 *
 * Exact*: double-precision loops for the SQL functions and operators (l2_distance, <->, ...).
 * They are the reference: deterministic on every CPU (L2 and inner product use baseline SSE2
 * double lanes in a fixed summation order), so regression output is stable.
 *
 * The Fast* kernels are float32 SIMD for the index hot path (graph search and build). The kernel
 * is picked once at run time from what the CPU supports (AVX-512F, AVX2+FMA, or portable
 * scalar), never by compiling the whole extension with -march=native, so one build runs on any
 * x86-64 and uses the best instructions where they exist.
 */
#pragma once
#include "core/pure.h"

#include <cstddef>

namespace vector_vault
{

/* Euclidean distance, double precision. */
double ExactL2(const float *a, const float *b, size_t n);
/* Inner product, double precision. */
double ExactInnerProduct(const float *a, const float *b, size_t n);
/* 1 - cosine similarity; NaN when either vector has zero norm (as pgvector). */
double ExactCosineDistance(const float *a, const float *b, size_t n);
/* ExactL2 / ExactInnerProduct computed with the baseline SSE2 lanes (for tests: equal bits). */
double ExactL2Baseline(const float *a, const float *b, size_t n);
double ExactInnerProductBaseline(const float *a, const float *b, size_t n);
/* Taxicab distance, double precision. */
double ExactL1(const float *a, const float *b, size_t n);
/* Euclidean norm, double precision. */
double ExactNorm(const float *a, size_t n);

/* A float32 distance kernel: smaller means closer. */
using DistanceKernel = float (*)(const float *a, const float *b, size_t n);

/* Squared Euclidean distance, best kernel for this CPU. */
float FastL2Squared(const float *a, const float *b, size_t n);
/* Negative inner product, best kernel for this CPU. */
float FastNegInnerProduct(const float *a, const float *b, size_t n);

/* L1 (taxicab) distance, best kernel for this CPU. */
float FastL1(const float *a, const float *b, size_t n);
/* An L1 kernel of one family ("avx512f", "avx2", "scalar"); nullptr when unknown or this CPU
 * lacks the instructions. For tests that compare every family with the scalar reference. */
DistanceKernel L1KernelFamily(const char *family);

/* The raw kernels chosen for this CPU, for callers that call them millions of times. */
DistanceKernel L2SquaredKernel();
DistanceKernel NegInnerProductKernel();
DistanceKernel L1Kernel();

/* Name of the kernel family chosen for this CPU ("avx512f", "avx2", "scalar"). */
const char *FastKernelName();

/* Normalises v in place to unit length; returns false for a zero vector. */
bool NormalizeVector(float *v, size_t n);

} // namespace vector_vault
