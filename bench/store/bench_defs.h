/*
 * bench_defs.h - the definitions part of bench_store: what a cluster executor's fetch of
 * 1,000 jobs' definitions and secret values costs the store (bench_defs.c says how).  The
 * caller owns every struct here; nothing is global.
 */
#ifndef BENCH_DEFS_H
#define BENCH_DEFS_H

struct bd_timing {
    int n;                 /* requests timed */
    double p50_ms, p99_ms; /* nearest-rank percentiles */
};

struct bd_result {
    double load_s;         /* filling the store */
    struct bd_timing loop; /* obj_get and secrets_get per name, as the handler did before */
    struct bd_timing many; /* one store_jobs_get_many */
};

/*
 * Fill a new store with `jobs` jobs (at least 1,000; a third of them with one to three secrets) -
 * the SQLite file sqlite_path, which must not exist yet (removed afterwards), or, sqlite_path NULL,
 * a database of its own on the PostgreSQL server pg_url (dropped afterwards) - and time requests of
 * 1,000 names (a random 900 of its jobs and 100 names of none) both ways through a read-only store,
 * for `secs` seconds each (at least 3 requests, at most 200). Prints its progress on stdout; on any
 * store error prints it on stderr and exits 1.
 */
void bd_run(const char *sqlite_path, const char *pg_url, long jobs, double secs,
            struct bd_result *out);

#endif
