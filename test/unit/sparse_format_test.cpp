/* sparse_format_test.cpp — sparsevec text and binary forms, the sealed payload, and sparse
 * distances against evector's dense kernels on the same values. */
#include "core/distance.h"
#include "core/sparse_format.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <random>
#include <string>
#include <vector>

using namespace vector_vault;

namespace
{

/* A parsed sparse vector with its own storage. */
struct Sparse
{
	std::vector<uint32_t> idx = std::vector<uint32_t>(kMaxSparseNnz);
	std::vector<float> val = std::vector<float>(kMaxSparseNnz);
	uint32_t dims = 0, nnz = 0;
	SparseView View() const
	{
		SparseView v;
		v.dims = dims;
		v.nnz = nnz;
		v.indices = idx.data();
		v.values = val.data();
		return v;
	}
};

/* Parses text; the status. */
Status
Parse(const char *text, Sparse *s)
{
	return ParseSparseText(text, s->idx.data(), s->val.data(), kMaxSparseNnz, &s->dims, &s->nnz);
}

/* Text of a parsed vector. */
std::string
Text(const Sparse &s)
{
	std::string out;
	FormatSparseText(s.View(), &out);
	return out;
}

/* Dense form of a sparse vector. */
std::vector<float>
Dense(const Sparse &s)
{
	std::vector<float> d(s.dims, 0.0f);
	for (uint32_t i = 0; i < s.nnz; i++)
		d[s.idx[i]] = s.val[i];
	return d;
}

} // namespace

TEST(Sparse, TextParsesSortsDropsZerosAndPrintsPgvectorForm)
{
	Sparse s;
	ASSERT_TRUE(Parse(" { 3 : 2 , 1:0.5, 2:0 } / 5 ", &s).ok());
	EXPECT_EQ(s.dims, 5u);
	EXPECT_EQ(s.nnz, 2u);
	EXPECT_EQ(s.idx[0], 0u);
	EXPECT_EQ(s.idx[1], 2u);
	EXPECT_EQ(Text(s), "{1:0.5,3:2}/5");
	ASSERT_TRUE(Parse("{}/3", &s).ok());
	EXPECT_EQ(Text(s), "{}/3");
	ASSERT_TRUE(Parse("{1:0.1,1000000000:-3e-7}/1000000000", &s).ok());
	EXPECT_EQ(Text(s), "{1:0.1,1000000000:-3e-07}/1000000000");
}

TEST(Sparse, TextErrorsNameNoValue)
{
	Sparse s;
	const char *bad[] = {"",          "1:2}/3",    "{1:2/3",     "{1:2}",
						 "{1:2}/0",   "{0:1}/3",   "{4:1}/3",    "{1:1,1:2}/3",
						 "{1:NaN}/3", "{1:inf}/3", "{1:}/3",     "{:1}/3",
						 "{1 2}/3",   "{1:2}/3 x", "{1:1e39}/3", "{1:2}/1000000001",
						 "{-1:2}/3",  "{1:2,}/3"};
	for (const char *t : bad)
	{
		Status st = Parse(t, &s);
		EXPECT_FALSE(st.ok()) << t;
		EXPECT_EQ(std::string(st.message()).find("1e39"), std::string::npos);
	}
	/* negative numbers get pgvector's messages, not a syntax error */
	EXPECT_NE(std::string(Parse("{}/-1", &s).message()).find("at least 1 dimension"),
			  std::string::npos);
	EXPECT_NE(std::string(Parse("{-2:1}/3", &s).message()).find("out of bounds"),
			  std::string::npos);
	/* zeros are dropped before the duplicate check, as pgvector does */
	EXPECT_TRUE(Parse("{1:0,1:2}/3", &s).ok());
}

TEST(Sparse, BinaryRoundTripAndStrictness)
{
	Sparse s, t;
	ASSERT_TRUE(Parse("{2:1.5,7:-4}/9", &s).ok());
	std::vector<uint8_t> bin(SparseBinarySize(s.nnz));
	FormatSparseBinary(s.View(), bin.data());
	const uint8_t want[] = {0, 0, 0, 9, 0, 0, 0,    2,    0, 0, 0,    0,    0, 0,
							0, 1, 0, 0, 0, 6, 0x3f, 0xc0, 0, 0, 0xc0, 0x80, 0, 0};
	ASSERT_EQ(bin.size(), sizeof(want));
	EXPECT_EQ(memcmp(bin.data(), want, sizeof(want)), 0);
	ASSERT_TRUE(ParseSparseBinary(bin.data(), bin.size(), t.idx.data(), t.val.data(), kMaxSparseNnz,
								  &t.dims, &t.nnz)
					.ok());
	EXPECT_EQ(Text(t), Text(s));
	/* descending indices, a zero value, a wrong length, non-zero unused: refused */
	auto bad = bin;
	bad[15] = 7;
	EXPECT_FALSE(ParseSparseBinary(bad.data(), bad.size(), t.idx.data(), t.val.data(),
								   kMaxSparseNnz, &t.dims, &t.nnz)
					 .ok());
	bad = bin;
	std::memset(&bad[20], 0, 4);
	EXPECT_FALSE(ParseSparseBinary(bad.data(), bad.size(), t.idx.data(), t.val.data(),
								   kMaxSparseNnz, &t.dims, &t.nnz)
					 .ok());
	EXPECT_FALSE(ParseSparseBinary(bin.data(), bin.size() - 1, t.idx.data(), t.val.data(),
								   kMaxSparseNnz, &t.dims, &t.nnz)
					 .ok());
	bad = bin;
	bad[11] = 1;
	EXPECT_FALSE(ParseSparseBinary(bad.data(), bad.size(), t.idx.data(), t.val.data(),
								   kMaxSparseNnz, &t.dims, &t.nnz)
					 .ok());
}

TEST(Sparse, PayloadRoundTripAndValidation)
{
	Sparse s;
	ASSERT_TRUE(Parse("{2:1.5,7:-4,9:1}/9", &s).ok());
	std::vector<uint32_t> buf(SparsePayloadSize(s.nnz) / 4);
	uint8_t *p = reinterpret_cast<uint8_t *>(buf.data());
	PackSparse(s.View(), p);
	SparseView v;
	ASSERT_TRUE(UnpackSparse(p, SparsePayloadSize(s.nnz), &v).ok());
	EXPECT_EQ(v.dims, 9u);
	EXPECT_EQ(v.nnz, 3u);
	EXPECT_EQ(v.indices[2], 8u);
	EXPECT_EQ(v.values[1], -4.0f);
	EXPECT_EQ(UnpackSparse(p, SparsePayloadSize(s.nnz) - 4, &v).code(), Code::kCorrupt);
	buf[2 + 1] = 0; /* second index below the first */
	EXPECT_EQ(UnpackSparse(p, SparsePayloadSize(s.nnz), &v).code(), Code::kCorrupt);
}

TEST(Sparse, DistancesEqualDenseKernels)
{
	std::mt19937 rng(3);
	std::uniform_real_distribution<float> u(-2, 2);
	std::bernoulli_distribution present(0.3);
	for (int trial = 0; trial < 200; trial++)
	{
		uint32_t dims = 1 + trial % 50;
		std::string ta = "{", tb = "{";
		for (uint32_t i = 1; i <= dims; i++)
		{
			if (present(rng))
				ta += (ta.size() > 1 ? "," : "") + std::to_string(i) + ":" + std::to_string(u(rng));
			if (present(rng))
				tb += (tb.size() > 1 ? "," : "") + std::to_string(i) + ":" + std::to_string(u(rng));
		}
		ta += "}/" + std::to_string(dims);
		tb += "}/" + std::to_string(dims);
		Sparse a, b;
		ASSERT_TRUE(Parse(ta.c_str(), &a).ok()) << ta;
		ASSERT_TRUE(Parse(tb.c_str(), &b).ok()) << tb;
		auto da = Dense(a), db = Dense(b);
		EXPECT_NEAR(SparseL2(a.View(), b.View()), ExactL2(da.data(), db.data(), dims), 1e-9);
		EXPECT_NEAR(SparseInnerProduct(a.View(), b.View()),
					ExactInnerProduct(da.data(), db.data(), dims), 1e-9);
		EXPECT_NEAR(SparseL1(a.View(), b.View()), ExactL1(da.data(), db.data(), dims), 1e-9);
		double c = SparseCosineDistance(a.View(), b.View());
		double e = ExactCosineDistance(da.data(), db.data(), dims);
		if (std::isnan(e))
			EXPECT_TRUE(std::isnan(c));
		else
			EXPECT_NEAR(c, e, 1e-9);
		EXPECT_NEAR(SparseNorm(a.View()), ExactNorm(da.data(), dims), 1e-9);
	}
}

/* l2_normalize: the dense normalization's non-zero elements, a zero vector stays empty, and an
 * element that underflows to zero is dropped (as pgvector's sparsevec_l2_normalize). */
TEST(Sparse, NormalizeMatchesDenseAndDropsUnderflow)
{
	Sparse a;
	ASSERT_TRUE(Parse("{1:3,2:4}/2", &a).ok());
	uint32_t idx[2];
	float val[2];
	ASSERT_EQ(SparseNormalize(a.View(), idx, val), 2u);
	EXPECT_EQ(idx[0], 0u);
	EXPECT_EQ(idx[1], 1u);
	EXPECT_EQ(val[0], 0.6f);
	EXPECT_EQ(val[1], 0.8f);
	ASSERT_TRUE(Parse("{}/3", &a).ok());
	EXPECT_EQ(SparseNormalize(a.View(), idx, val), 0u);
	ASSERT_TRUE(Parse("{1:3e38,2:1e-37}/2", &a).ok());
	ASSERT_EQ(SparseNormalize(a.View(), idx, val), 1u);
	EXPECT_EQ(idx[0], 0u);
	EXPECT_EQ(val[0], 1.0f);
	ASSERT_TRUE(Parse("{2:-1.5,5:0.25,9:7}/9", &a).ok());
	std::vector<float> d = Dense(a);
	ASSERT_TRUE(NormalizeVector(d.data(), d.size()));
	uint32_t idx3[3];
	float val3[3];
	ASSERT_EQ(SparseNormalize(a.View(), idx3, val3), 3u);
	for (uint32_t i = 0; i < 3; i++)
		EXPECT_EQ(val3[i], d[idx3[i]]);
}

/* Dense lexicographic order over min(dims), then fewer dimensions first: pgvector's sparsevec
 * order, checked against the dense vectors on random inputs (absent elements are 0, so a negative
 * value sorts before an absent one). */
TEST(Sparse, CompareIsTheDenseOrder)
{
	auto cmp = [](const char *x, const char *y)
	{
		Sparse a, b;
		EXPECT_TRUE(Parse(x, &a).ok());
		EXPECT_TRUE(Parse(y, &b).ok());
		return CompareSparse(a.View(), b.View());
	};
	EXPECT_EQ(cmp("{1:1,3:2}/3", "{1:1,3:2}/3"), 0);
	EXPECT_EQ(cmp("{}/3", "{2:1}/3"), -1);
	EXPECT_EQ(cmp("{}/3", "{2:-1}/3"), 1);
	EXPECT_EQ(cmp("{1:1}/2", "{1:1}/3"), -1);
	EXPECT_EQ(cmp("{3:5}/3", "{1:1}/2"), -1); /* [0,0] < [1,0] before dims count */
	EXPECT_EQ(cmp("{3:5}/3", "{}/2"), 1);     /* equal over 2 elements: more dims later */
	std::mt19937 rng(5);
	std::uniform_int_distribution<int> dims(1, 6), val(-2, 2);
	for (int t = 0; t < 2000; t++)
	{
		Sparse s[2];
		for (Sparse &x : s)
		{
			x.dims = static_cast<uint32_t>(dims(rng));
			x.nnz = 0;
			for (uint32_t i = 0; i < x.dims; i++)
			{
				int v = val(rng);
				if (v != 0)
				{
					x.idx[x.nnz] = i;
					x.val[x.nnz++] = static_cast<float>(v);
				}
			}
		}
		std::vector<float> a = Dense(s[0]), b = Dense(s[1]);
		int want = 0;
		for (size_t i = 0; i < std::min(a.size(), b.size()) && want == 0; i++)
			want = a[i] < b[i] ? -1 : a[i] > b[i] ? 1 : 0;
		if (want == 0 && a.size() != b.size())
			want = a.size() < b.size() ? -1 : 1;
		ASSERT_EQ(CompareSparse(s[0].View(), s[1].View()), want) << Text(s[0]) << " " << Text(s[1]);
	}
}
