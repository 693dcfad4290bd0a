/*
 * knn_client.c — the benchmark's minimal-overhead SQL client: libpq, one connection, one
 * prepared statement, the query vector sent as a binary parameter (pgvector's binary form, which
 * evector_recv reads), as an application that cares about latency would send it.
 *
 * bench.py's psycopg2 loop sends each vector as text and pays Python's per-call cost; this client
 * shows what the server side costs without them. For each ef_search it times every query twice:
 * as the OS schedules client and backend, and with both pinned to one CPU (see bench.py). It
 * prints one JSON line per ef: {"ef": E, "qps": Q, "qps_pinned": P, "ids": [...]} with the ids
 * of the unpinned pass, 10 per query, for bench.py to compute recall.
 *
 *   knn_client CONNINFO QUERIES.f32 NQUERIES DIMS WARM EF...
 *
 * The table, type, operator and ef_search setting default to vector_vault's (items, evector, <->,
 * vector_vault.ef_search); KNN_TABLE, KNN_TYPE, KNN_OP and KNN_EF_SETTING in the environment
 * change them, so that the same client measures pgvector (vector, hnsw.ef_search) in the same run.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <sched.h>
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
		fprintf(stderr, "knn_client: %s: %s", what, PQerrorMessage(c));
		exit(1);
	}
}

/* The environment variable name, or dflt when it is unset or empty. */
static const char *
Env(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v != NULL && *v != '\0' ? v : dflt;
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

/* Runs queries [0, n) once each; stores ids when ids != NULL; returns queries per second. */
static double
RunAll(PGconn *c, const float *queries, int n, int dims, int *ids)
{
	int len = 4 + 4 * dims, fmt = 1;
	char *buf = malloc(len);
	const char *vals[1] = {buf};
	double t0 = Now();
	for (int i = 0; i < n; i++)
	{
		Pack(queries + (size_t) i * dims, dims, buf);
		PGresult *r = PQexecPrepared(c, "knn", 1, vals, &len, &fmt, 0);
		Check(c, r, PGRES_TUPLES_OK, "EXECUTE knn");
		if (ids != NULL)
			for (int j = 0; j < 10; j++)
				ids[i * 10 + j] = j < PQntuples(r) ? atoi(PQgetvalue(r, j, 0)) : -1;
		PQclear(r);
	}
	double secs = Now() - t0;
	free(buf);
	return n / secs;
}

int
main(int argc, char **argv)
{
	if (argc < 7)
	{
		fprintf(stderr, "usage: knn_client CONNINFO QUERIES.f32 NQUERIES DIMS WARM EF...\n");
		return 2;
	}
	int nq = atoi(argv[3]), dims = atoi(argv[4]), warm = atoi(argv[5]);
	float *queries = malloc(sizeof(float) * (size_t) nq * dims);
	FILE *f = fopen(argv[2], "rb");
	if (f == NULL || fread(queries, sizeof(float) * dims, nq, f) != (size_t) nq)
	{
		fprintf(stderr, "knn_client: cannot read %d queries from %s\n", nq, argv[2]);
		return 1;
	}
	fclose(f);
	PGconn *c = PQconnectdb(argv[1]);
	if (PQstatus(c) != CONNECTION_OK)
	{
		fprintf(stderr, "knn_client: %s", PQerrorMessage(c));
		return 1;
	}
	const char *table = Env("KNN_TABLE", "items"), *type = Env("KNN_TYPE", "evector");
	const char *op = Env("KNN_OP", "<->"),
			   *ef_setting = Env("KNN_EF_SETTING", "vector_vault.ef_search");
	Exec(c, "SET vector_vault.vault = 'bench'");
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT '%s'::regtype::oid", type);
	PGresult *r = PQexec(c, sql);
	Check(c, r, PGRES_TUPLES_OK, "type oid");
	Oid oid = (Oid) strtoul(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	snprintf(sql, sizeof(sql), "SELECT id FROM %s ORDER BY embedding %s $1 LIMIT 10", table, op);
	r = PQprepare(c, "knn", sql, 1, &oid);
	Check(c, r, PGRES_COMMAND_OK, "PREPARE");
	PQclear(r);

	cpu_set_t all, one;
	sched_getaffinity(0, sizeof(all), &all);
	CPU_ZERO(&one);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &all))
		{
			CPU_SET(cpu, &one);
			break;
		}
	int backend = PQbackendPID(c);
	int *ids = malloc(sizeof(int) * 10 * (size_t) nq);
	for (int a = 6; a < argc; a++)
	{
		snprintf(sql, sizeof(sql), "SET %s = %d", ef_setting, atoi(argv[a]));
		Exec(c, sql);
		RunAll(c, queries, warm < nq ? warm : nq, dims, NULL);
		double qps = RunAll(c, queries, nq, dims, ids);
		/* pinning the backend needs root (the benchmark runs as root) */
		sched_setaffinity(0, sizeof(one), &one);
		sched_setaffinity(backend, sizeof(one), &one);
		double qps_pinned = RunAll(c, queries, nq, dims, NULL);
		sched_setaffinity(0, sizeof(all), &all);
		sched_setaffinity(backend, sizeof(all), &all);
		printf("{\"ef\": %d, \"qps\": %.1f, \"qps_pinned\": %.1f, \"ids\": [", atoi(argv[a]), qps,
			   qps_pinned);
		for (int i = 0; i < 10 * nq; i++)
			printf(i ? ",%d" : "%d", ids[i]);
		printf("]}\n");
		fflush(stdout);
	}
	PQfinish(c);
	free(ids);
	free(queries);
	return 0;
}
