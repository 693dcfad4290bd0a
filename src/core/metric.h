/*
 * metric.h — what a distance metric means to the index, in one place.
 *
 * vault_hnsw orders by one of four metrics (the opclass's support function 1 names it; the id is
 * stored in the metapage). Three decisions follow from the metric, and every caller — build,
 * search, insert planning, VACUUM's repair, the sq8 cache — must make them the same way, or
 * distances computed on different paths stop being comparable:
 *   - the float32 kernel: squared L2, negative inner product (inner product and cosine), L1;
 *   - whether vectors are normalised before they are indexed or searched (cosine: the index
 *     stores unit vectors and compares them by inner product; a zero vector has no direction and
 *     is not indexed, as pgvector);
 *   - the sq8 kernel, which must approximate the float32 kernel on the same scale: an insert
 *     compares sq8 distances to existing elements with float32 distances to the staged row.
 */
#pragma once
#include "core/pure.h"

#include "core/distance.h"
#include "core/half_distance.h"
#include "core/quantize.h"

#include <cstddef>
#include <cstdint>

namespace vector_vault
{

/* Distance an opclass orders by (the metapage's metric id). */
enum class Metric : uint8_t
{
	kL2 = 1,
	kInnerProduct = 2,
	kCosine = 3,
	kL1 = 4
};

/* True for a metric id a metapage may hold. */
bool IsKnownMetric(int id);

/* The float32 kernel of a metric (smaller is closer). */
DistanceKernel KernelFor(Metric metric);

/* The half-vector kernel of a metric, on the same scale as KernelFor (indexes on ehalfvec). */
HalfDistanceKernel HalfKernelFor(Metric metric);

/* Prepares a vector for the index under a metric, in place: cosine normalises it. False when it
 * cannot be indexed or searched (a zero vector under cosine). */
bool PrepareForMetric(Metric metric, float *v, size_t dims);

/* Prepares q for sq8 distances on the scale of KernelFor(metric); scratch as sq8::PrepareL2. */
void PrepareSq8ForMetric(Metric metric, const float *q, const float *lo, const float *step,
						 size_t dims, float *scratch, sq8::PreparedQuery *out);

} // namespace vector_vault
