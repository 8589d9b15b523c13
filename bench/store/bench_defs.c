/*
 * bench_defs.c - what a cluster executor's fetch of job definitions costs the store, on
 * either back end (bench_defs.h).
 *
 * An executor asks a server for the definitions and secret values of the jobs placed on it,
 * 1,000 names a request (POST /api/v1/cluster/definitions); one taking over 121,000 shards
 * makes 121 requests.  The handler read them name by name, store_obj_get then
 * store_secrets_get - 2,000 statements a request, on PostgreSQL 2,000 round trips - until
 * store_jobs_get_many read them in one statement.  This times both, building the same
 * answer (the handler's "items" object) inside the timing, on one store.
 *
 * The store: `jobs` jobs named defs-<n> in 50 domains, each a definition of about 300
 * bytes, every third with one to three secrets, loaded with store_rows_load (objects and
 * secrets tables, 1,000 rows a call) into a new SQLite file or a new PostgreSQL database,
 * which is then vacuumed and analyzed as autovacuum would.  The requests: 900 distinct
 * jobs drawn at random and 100 names of none (deleted since they were placed), shuffled,
 * from a fixed seed, so both ways and both back ends read the same names.  Each way gets
 * two untimed requests first (a connection prepares its statements once), then requests
 * through a read-only store, as an HTTP thread's, until `secs` seconds are spent (at least
 * 3, at most 200); p50 and p99 by nearest rank.
 */
#define _GNU_SOURCE
#include "bench_defs.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_history.h"
#include "store/store.h"

#define NAMES     1000 /* names a request, the API's most */
#define MISSING   100  /* of them, names of no job */
#define LOAD_ROWS 1000 /* rows a store_rows_load call */
#define MAX_CALLS 200
#define DEFS_DB   "tethys_bench_defs"

__attribute__((noreturn)) static void fail(const char *what, const char *msg)
{
    fprintf(stderr, "bench_store: %s: %s\n", what, msg);
    exit(1);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* splitmix64 of a counter: the names drawn depend on the seed only. */
static uint64_t rnd(uint64_t *state)
{
    uint64_t x = (*state)++ * 0x9e3779b97f4a7c15u + 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static void job_name(long i, char *buf, size_t cap)
{
    snprintf(buf, cap, "defs-%06ld", i);
}

/* Load rows into table t and empty the array for the next lot. */
static void flush_rows(struct store *s, enum store_table t, json_t *rows)
{
    struct ty_err err;
    if (json_array_size(rows) > 0 && store_rows_load(s, t, rows, &err) != 0)
        fail("rows_load", err.msg);
    json_array_clear(rows);
}

static void fill(const char *where, long jobs)
{
    struct store *s;
    struct ty_err err;
    if (store_open(where, false, &s, &err) != 0)
        fail("open", err.msg);
    json_t *objs = json_array(), *secs = json_array();
    for (long i = 0; i < jobs; i++) {
        char name[32], domain[32], def[512];
        job_name(i, name, sizeof name);
        snprintf(domain, sizeof domain, "team-%02ld/etl", i % 50);
        snprintf(def, sizeof def,
                 "{\"name\":\"%s\",\"domain\":\"%s\",\"schedule\":\"0 %ld * * * ?\","
                 "\"command\":\"/usr/local/bin/etl --table t%ld --since 1h\",\"shards\":1,"
                 "\"timeout_s\":600,\"env\":{\"REGION\":\"eu-west-1\"},\"description\":\"hourly "
                 "export of table t%ld to the warehouse\"}",
                 name, domain, i % 60, i, i);
        json_array_append_new(objs,
                              json_pack("{s:s, s:s, s:i, s:s, s:s, s:I, s:I, s:s}", "kind", "job",
                                        "name", name, "version", 1, "json", def, "domain", domain,
                                        "created_at_ms", (json_int_t)1767225600000, "updated_at_ms",
                                        (json_int_t)1767225600000, "updated_by", "bench"));
        for (long k = 0; i % 3 == 0 && k <= i % 4 && k < 3; k++) {
            char sname[16], value[64];
            snprintf(sname, sizeof sname, "DB_PW%ld", k);
            snprintf(value, sizeof value, "s3cr3t-%ld-%ld-0123456789abcdef", i, k);
            json_array_append_new(
                secs, json_pack("{s:s, s:s, s:s}", "job", name, "name", sname, "value", value));
        }
        if (json_array_size(objs) == LOAD_ROWS || i == jobs - 1) {
            flush_rows(s, STORE_T_OBJECTS, objs);
            flush_rows(s, STORE_T_SECRETS, secs);
        }
    }
    json_decref(objs);
    json_decref(secs);
    store_close(s);
}

/* Request r's names: 900 distinct jobs of `jobs` (at least NAMES) and 100 names of none,
 * shuffled, into names[] and ptrs[]. */
#define NAME_CAP 32
static void draw(long jobs, int r, char (*names)[NAME_CAP], const char **ptrs)
{
    uint64_t rng = 7000 + (uint64_t)r;
    int n = 0;
    while (n < NAMES - MISSING) {
        job_name((long)(rnd(&rng) % (uint64_t)jobs), names[n], NAME_CAP);
        bool dup = false;
        for (int k = 0; k < n && !dup; k++)
            dup = strcmp(names[k], names[n]) == 0;
        n += !dup;
    }
    for (; n < NAMES; n++)
        snprintf(names[n], NAME_CAP, "gone-%d-%d", r, n);
    for (int i = NAMES - 1; i > 0; i--) {
        int j = (int)(rnd(&rng) % (uint64_t)(i + 1));
        char t[NAME_CAP];
        memcpy(t, names[i], NAME_CAP);
        memcpy(names[i], names[j], NAME_CAP);
        memcpy(names[j], t, NAME_CAP);
    }
    for (int i = 0; i < NAMES; i++)
        ptrs[i] = names[i];
}

/* The handler's answer, name by name, as it was built before jobs_get_many. */
static json_t *by_name(struct store *s, const char *const *names)
{
    json_t *items = json_object();
    struct ty_err err;
    for (int i = 0; i < NAMES; i++) {
        char *text = NULL;
        int64_t version = 0;
        int rc = store_obj_get(s, STORE_JOB, names[i], &text, &version, &err);
        if (rc == TY_ENOENT)
            continue;
        json_t *secrets = NULL;
        if (rc != 0 || store_secrets_get(s, names[i], &secrets, &err) != 0)
            fail("obj_get/secrets_get", err.msg);
        json_object_set_new(items, names[i],
                            json_pack("{s:I, s:s, s:o}", "version", (json_int_t)version,
                                      "definition", text, "secrets", secrets));
        free(text);
    }
    return items;
}

static json_t *at_once(struct store *s, const char *const *names)
{
    json_t *items = NULL;
    struct ty_err err;
    if (store_jobs_get_many(s, names, NAMES, &items, &err) != 0)
        fail("jobs_get_many", err.msg);
    return items;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least p of them at or below it. */
static double rank(const double *sorted, int n, double p)
{
    int k = (int)(p * n);
    if ((double)k < p * n)
        k++;
    return sorted[k < 1 ? 0 : k - 1];
}

static void time_way(struct store *s, long jobs, double secs,
                     json_t *(*way)(struct store *, const char *const *), struct bd_timing *t)
{
    static char names[NAMES][NAME_CAP];
    static const char *ptrs[NAMES];
    double samples[MAX_CALLS] = {0};
    const size_t want = NAMES - MISSING;
    for (int r = -2; r < 0; r++) { /* untimed warm-up */
        draw(jobs, r, names, ptrs);
        json_decref(way(s, ptrs));
    }
    double t0 = mono_s();
    int n = 0;
    while (n < MAX_CALLS && (mono_s() - t0 < secs || n < 3)) {
        draw(jobs, n, names, ptrs);
        double a = mono_s();
        json_t *items = way(s, ptrs);
        samples[n++] = (mono_s() - a) * 1e3;
        if (json_object_size(items) != want) {
            char msg[96];
            snprintf(msg, sizeof msg, "%zu of the %zu jobs asked for", json_object_size(items),
                     want);
            fail("definitions", msg);
        }
        json_decref(items);
    }
    qsort(samples, (size_t)n, sizeof *samples, cmp_double);
    *t = (struct bd_timing){
        .n = n, .p50_ms = rank(samples, n, 0.50), .p99_ms = rank(samples, n, 0.99)};
}

void bd_run(const char *sqlite_path, const char *pg_url, long jobs, double secs,
            struct bd_result *out)
{
    *out = (struct bd_result){0};
    const char *where = sqlite_path;
    char *url = NULL;
    PGconn *admin = NULL;
    if (sqlite_path == NULL) {
        admin = bh_pg_connect(pg_url);
        bh_pg_cmd(admin, "SET client_min_messages = warning");
        bh_pg_cmd(admin, "DROP DATABASE IF EXISTS " DEFS_DB); /* left by an interrupted run */
        bh_pg_cmd(admin, "CREATE DATABASE " DEFS_DB);
        where = url = bh_url_with_db(pg_url, DEFS_DB);
    }
    double t0 = mono_s();
    fill(where, jobs);
    if (url != NULL) {
        PGconn *c = bh_pg_connect(url);
        bh_pg_cmd(c, "VACUUM (ANALYZE) objects");
        bh_pg_cmd(c, "VACUUM (ANALYZE) secrets");
        PQfinish(c);
    }
    out->load_s = mono_s() - t0;
    printf("    loaded %ld jobs in %.1f s\n", jobs, out->load_s);
    fflush(stdout);

    struct store *s;
    struct ty_err err;
    if (store_open(where, true, &s, &err) != 0)
        fail("open", err.msg);
    time_way(s, jobs, secs, by_name, &out->loop);
    printf("    obj_get + secrets_get per name: p50 %8.2f ms  p99 %8.2f ms  (%d requests)\n",
           out->loop.p50_ms, out->loop.p99_ms, out->loop.n);
    fflush(stdout);
    time_way(s, jobs, secs, at_once, &out->many);
    printf("    jobs_get_many:                  p50 %8.2f ms  p99 %8.2f ms  (%d requests)\n",
           out->many.p50_ms, out->many.p99_ms, out->many.n);
    fflush(stdout);
    store_close(s);

    if (sqlite_path != NULL) {
        static const char *const suffixes[] = {"", "-wal", "-shm"};
        for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
            char p[4200];
            snprintf(p, sizeof p, "%s%s", sqlite_path, suffixes[i]);
            unlink(p);
        }
    } else {
        bh_pg_cmd(admin, "DROP DATABASE " DEFS_DB);
        PQfinish(admin);
        free(url);
    }
}
