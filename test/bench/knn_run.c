/*
 * knn_run.c — a generic libpq search client for cache.sh: one connection, one prepared statement
 * with the query vector as a binary parameter (pgvector's binary form, which both pgvector's
 * vector_recv and vector_vault's evector_recv read), so pgvector and vector_vault are timed by
 * the same client. knn_client.c (bench.py's) is the same loop fixed to vector_vault's table.
 *
 *   knn_run CONNINFO QUERIES.f32 NQUERIES DIMS WARM PASSES TYPE SETUP SQL EFSET EF...
 *
 * TYPE is the parameter's type name (evector, vector); SETUP a statement run once after
 * connecting ("" for none); SQL the search with $1; EFSET the start of the statement that sets
 * ef_search, completed by the value ("SET hnsw.ef_search = "). For each EF: WARM untimed queries,
 * then PASSES timed passes over all NQUERIES queries. Prints one JSON line per EF:
 *   {"ef": E, "qps": [pass1, ...], "p50_us": P, "p99_us": Q, "ids": [...]}
 * with per-query latency percentiles and the ids (10 per query, -1 when fewer rows) of the first
 * pass, for the caller to compute recall. No CPU pinning: QPS as the OS schedules client and
 * backend on this machine.
 */
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static double
Now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Exits with libpq's message unless r has the expected status. */
static void
Check(PGconn *c, PGresult *r, ExecStatusType want, const char *what)
{
	if (PQresultStatus(r) != want)
	{
		fprintf(stderr, "knn_run: %s: %s", what, PQerrorMessage(c));
		exit(1);
	}
}

/* Runs a statement that returns nothing. */
static void
Exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	Check(c, r, PGRES_COMMAND_OK, sql);
	PQclear(r);
}

/* Writes query q in pgvector's binary form: int16 dims, int16 unused, big-endian float4s. */
static void
Pack(const float *q, int dims, char *out)
{
	uint16_t d = htons((uint16_t) dims), z = 0;
	memcpy(out, &d, 2);
	memcpy(out + 2, &z, 2);
	for (int i = 0; i < dims; i++)
	{
		uint32_t u;
		memcpy(&u, &q[i], 4);
		u = htonl(u);
		memcpy(out + 4 + 4 * i, &u, 4);
	}
}

static int
CompareDouble(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return (x > y) - (x < y);
}

/* Runs queries [0, n) once each; stores ids and latencies (seconds) when not NULL; returns QPS. */
static double
RunAll(PGconn *c, const float *queries, int n, int dims, int *ids, double *lat)
{
	int len = 4 + 4 * dims, fmt = 1;
	char *buf = malloc(len);
	const char *vals[1] = {buf};
	double t0 = Now();
	for (int i = 0; i < n; i++)
	{
		double q0 = lat ? Now() : 0;
		Pack(queries + (size_t) i * dims, dims, buf);
		PGresult *r = PQexecPrepared(c, "knn", 1, vals, &len, &fmt, 0);
		Check(c, r, PGRES_TUPLES_OK, "EXECUTE knn");
		if (ids != NULL)
			for (int j = 0; j < 10; j++)
				ids[i * 10 + j] = j < PQntuples(r) ? atoi(PQgetvalue(r, j, 0)) : -1;
		PQclear(r);
		if (lat)
			lat[i] = Now() - q0;
	}
	double secs = Now() - t0;
	free(buf);
	return n / secs;
}

int
main(int argc, char **argv)
{
	if (argc < 12)
	{
		fprintf(stderr, "usage: knn_run CONNINFO QUERIES.f32 NQUERIES DIMS WARM PASSES TYPE SETUP "
						"SQL EFSET EF...\n");
		return 2;
	}
	int nq = atoi(argv[3]), dims = atoi(argv[4]), warm = atoi(argv[5]), passes = atoi(argv[6]);
	const char *type = argv[7], *setup = argv[8], *sql = argv[9], *efset = argv[10];
	if (nq < 1 || passes < 1)
	{
		fprintf(stderr, "knn_run: NQUERIES and PASSES must be positive\n");
		return 2;
	}
	float *queries = malloc(sizeof(float) * (size_t) nq * dims);
	FILE *f = fopen(argv[2], "rb");
	if (f == NULL || fread(queries, sizeof(float) * dims, nq, f) != (size_t) nq)
	{
		fprintf(stderr, "knn_run: cannot read %d queries from %s\n", nq, argv[2]);
		return 1;
	}
	fclose(f);
	PGconn *c = PQconnectdb(argv[1]);
	if (PQstatus(c) != CONNECTION_OK)
	{
		fprintf(stderr, "knn_run: %s", PQerrorMessage(c));
		return 1;
	}
	if (setup[0] != '\0')
		Exec(c, setup);
	char q[256];
	snprintf(q, sizeof(q), "SELECT '%s'::regtype::oid", type);
	PGresult *r = PQexec(c, q);
	Check(c, r, PGRES_TUPLES_OK, "type oid");
	Oid oid = (Oid) strtoul(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	r = PQprepare(c, "knn", sql, 1, &oid);
	Check(c, r, PGRES_COMMAND_OK, "PREPARE");
	PQclear(r);

	int *ids = malloc(sizeof(int) * 10 * (size_t) nq);
	double *lat = malloc(sizeof(double) * (size_t) nq);
	for (int a = 11; a < argc; a++)
	{
		int ef = atoi(argv[a]);
		char set[256];
		snprintf(set, sizeof(set), "%s%d", efset, ef);
		Exec(c, set);
		RunAll(c, queries, warm < nq ? warm : nq, dims, NULL, NULL);
		printf("{\"ef\": %d, \"qps\": [", ef);
		for (int p = 0; p < passes; p++)
		{
			double qps = RunAll(c, queries, nq, dims, p == 0 ? ids : NULL, p == 0 ? lat : NULL);
			printf(p ? ", %.1f" : "%.1f", qps);
		}
		qsort(lat, nq, sizeof(double), CompareDouble);
		printf("], \"p50_us\": %.1f, \"p99_us\": %.1f, \"ids\": [", lat[nq / 2] * 1e6,
			   lat[(int) (nq * 0.99) < nq ? (int) (nq * 0.99) : nq - 1] * 1e6);
		for (int i = 0; i < 10 * nq; i++)
			printf(i ? ",%d" : "%d", ids[i]);
		printf("]}\n");
		fflush(stdout);
	}
	PQfinish(c);
	free(lat);
	free(ids);
	free(queries);
	return 0;
}
