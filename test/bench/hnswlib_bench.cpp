/*
 * hnswlib_bench.cpp — the in-process reference: hnswlib on the same data, same parameters, in
 * the same benchmark run, so vector_vault's figures read as ratios on any machine.
 *
 *   hnswlib_bench <dir> <m> <ef_construction> <threads> <ef>...
 * reads <dir>/train.f32, <dir>/queries.f32, <dir>/gt.i32 and <dir>/shape.txt (n nq dims k),
 * builds on <threads> threads, then searches single-threaded at each ef and prints one JSON line
 * per measurement. Compiled with -O3 -march=native so hnswlib uses its best kernels here: the
 * reference is as fast as it can be on this machine.
 */
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <hnswlib/hnswlib.h>

namespace
{

/* Reads a whole binary file into a vector. */
template <class T>
std::vector<T>
ReadAll(const std::string &path)
{
	std::ifstream in(path, std::ios::binary | std::ios::ate);
	if (!in)
	{
		fprintf(stderr, "cannot read %s\n", path.c_str());
		exit(1);
	}
	std::streamsize bytes = in.tellg();
	in.seekg(0);
	std::vector<T> v(bytes / sizeof(T));
	in.read(reinterpret_cast<char *>(v.data()), bytes);
	return v;
}

/* Seconds since start. */
double
Since(std::chrono::steady_clock::time_point start)
{
	return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

} // namespace

int
main(int argc, char **argv)
{
	if (argc < 6)
	{
		fprintf(stderr, "usage: %s dir m ef_construction threads ef...\n", argv[0]);
		return 2;
	}
	std::string dir = argv[1];
	int m = atoi(argv[2]), efc = atoi(argv[3]), threads = atoi(argv[4]);
	size_t n, nq, dims, k;
	{
		std::ifstream shape(dir + "/shape.txt");
		shape >> n >> nq >> dims >> k;
	}
	auto train = ReadAll<float>(dir + "/train.f32");
	auto queries = ReadAll<float>(dir + "/queries.f32");
	auto gt = ReadAll<int32_t>(dir + "/gt.i32");

	hnswlib::L2Space space(dims);
	hnswlib::HierarchicalNSW<float> index(&space, n, m, efc);
	auto t0 = std::chrono::steady_clock::now();
	std::atomic<size_t> next{0};
	std::vector<std::thread> pool;
	for (int t = 0; t < threads; t++)
		pool.emplace_back(
			[&]()
			{
				for (size_t i = next++; i < n; i = next++)
					index.addPoint(&train[i * dims], i);
			});
	for (auto &t : pool)
		t.join();
	double build = Since(t0);
	printf("{\"what\": \"build\", \"seconds\": %.3f, \"threads\": %d}\n", build, threads);
	for (int a = 5; a < argc; a++)
	{
		int ef = atoi(argv[a]);
		index.setEf(ef);
		/* warm-up pass, then the timed pass */
		for (size_t q = 0; q < std::min<size_t>(nq, 200); q++)
			index.searchKnn(&queries[q * dims], k);
		size_t hits = 0;
		auto t1 = std::chrono::steady_clock::now();
		for (size_t q = 0; q < nq; q++)
		{
			auto res = index.searchKnn(&queries[q * dims], k);
			std::unordered_set<int32_t> truth(&gt[q * k], &gt[q * k] + k);
			while (!res.empty())
			{
				hits += truth.count(static_cast<int32_t>(res.top().second));
				res.pop();
			}
		}
		double secs = Since(t1);
		printf("{\"what\": \"search\", \"ef\": %d, \"recall\": %.4f, \"qps\": %.1f}\n", ef,
			   static_cast<double>(hits) / (nq * k), nq / secs);
		fflush(stdout);
	}
	return 0;
}
