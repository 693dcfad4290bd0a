/* metric.cpp — the kernel, normalisation and sq8 preparation of each metric (see metric.h). */
#include "core/metric.h"

namespace vector_vault
{

/* See metric.h. */
bool
IsKnownMetric(int id)
{
	return id >= static_cast<int>(Metric::kL2) && id <= static_cast<int>(Metric::kL1);
}

/* See metric.h. */
DistanceKernel
KernelFor(Metric metric)
{
	switch (metric)
	{
		case Metric::kL2:
			return L2SquaredKernel();
		case Metric::kL1:
			return L1Kernel();
		case Metric::kInnerProduct:
		case Metric::kCosine:
			break;
	}
	return NegInnerProductKernel();
}

/* See metric.h. */
HalfDistanceKernel
HalfKernelFor(Metric metric)
{
	switch (metric)
	{
		case Metric::kL2:
			return L2SquaredHalfKernel();
		case Metric::kL1:
			return L1HalfKernel();
		case Metric::kInnerProduct:
		case Metric::kCosine:
			break;
	}
	return NegInnerProductHalfKernel();
}

/* See metric.h. */
bool
PrepareForMetric(Metric metric, float *v, size_t dims)
{
	return metric != Metric::kCosine || NormalizeVector(v, dims);
}

/* See metric.h. */
void
PrepareSq8ForMetric(Metric metric, const float *q, const float *lo, const float *step, size_t dims,
					float *scratch, sq8::PreparedQuery *out)
{
	switch (metric)
	{
		case Metric::kL2:
			sq8::PrepareL2(q, lo, step, dims, scratch, out);
			return;
		case Metric::kL1:
			sq8::PrepareL1(q, lo, step, dims, scratch, out);
			return;
		case Metric::kInnerProduct:
		case Metric::kCosine:
			break;
	}
	sq8::PrepareNegInnerProduct(q, lo, step, dims, scratch, out);
}

} // namespace vector_vault
