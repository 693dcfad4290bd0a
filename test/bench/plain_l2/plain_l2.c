/*
 * plain_l2.c — benchmark helper only (never installed by the product): a plaintext L2 distance
 * over real[] with the same work per call as pgvector's vector_l2_distance (a straight loop over
 * float4s), so the benchmark can time the exact "btree on the vault column + sort by distance"
 * plan a pgvector user runs today, without pgvector being installable here.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/array.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(plain_l2);

/* L2 distance of two 1-D float4 arrays of equal length. */
Datum
plain_l2(PG_FUNCTION_ARGS)
{
	ArrayType *a = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType *b = PG_GETARG_ARRAYTYPE_P(1);
	int n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	const float *x = (const float *) ARR_DATA_PTR(a);
	const float *y = (const float *) ARR_DATA_PTR(b);
	float s = 0;

	if (n != ArrayGetNItems(ARR_NDIM(b), ARR_DIMS(b)))
		elog(ERROR, "different lengths");
	for (int i = 0; i < n; i++)
	{
		float d = x[i] - y[i];

		s += d * d;
	}
	PG_RETURN_FLOAT8(sqrt((double) s));
}
