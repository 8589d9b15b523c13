/*
 * bench_history.h - the history half of bench_store: a realistic history of many runs
 * loaded through the store interface, then the API's history and statistics queries timed
 * (bench_history.c says how).  The caller owns every struct here; nothing is global.
 */
#ifndef BENCH_HISTORY_H
#define BENCH_HISTORY_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

/* The dataset: jobs, and every run and skipped fire in the order they happened. */
struct bh_data;

/* The queries timed, in the order they are printed. */
enum bh_query {
    BH_Q_HIST_JOB,      /* history, first page of 100, one job */
    BH_Q_HIST_DOMAIN,   /* history, first page, a top-level domain's subtree */
    BH_Q_HIST_LEAF,     /* history, first page, a leaf domain */
    BH_Q_HIST_FAILED,   /* history, first page, status "failed" */
    BH_Q_HIST_ALL,      /* history, first page, no filter */
    BH_Q_HIST_DEEP,     /* history, no filter, a page from a cursor 10,000-100,000 runs back */
    BH_Q_HIST_DEEP_JOB, /* history, one busy job, a page from a cursor 5,000-20,000 back */
    BH_Q_STATS_JOB,     /* stats by job, one job, 7 days */
    BH_Q_STATS_DAY,     /* stats by day, a top-level domain, 30 days */
    BH_Q_RUN_GET,       /* store_run_get of a random run */
    BH_Q_LAST_FIRES,    /* store_last_fires */
    BH_QUERIES
};

/* What to name query q in tables ("history: one job") and in key=value lines
 * ("history_job"); whether it is a history query (counted in pg_history_p99_ms). */
const char *bh_query_title(enum bh_query q);
const char *bh_query_key(enum bh_query q);
bool bh_query_is_history(enum bh_query q);

struct bh_opts {
    int threads;       /* loader connections (each its own store) */
    long batch_sqlite; /* load steps per transaction (a step is one or two writes) */
    long batch_pg;
    double query_secs;   /* time budget per query kind */
    int query_max;       /* at most this many timed calls per query kind */
    double load_limit_s; /* a load taking longer fails the benchmark */
    bool keep_pg;        /* leave the PostgreSQL database in place (to look at with psql) */
};

struct bh_timing {
    int n;                         /* calls timed */
    double p50_ms, p99_ms, max_ms; /* nearest-rank percentiles */
};

struct bh_result {
    double load_s;   /* wall-clock time of the load */
    uint64_t writes; /* store calls made by the load */
    double maint_s;  /* PostgreSQL: VACUUM (ANALYZE) of the tables after the load */
    int64_t bytes;   /* the database's size after the load */
    struct bh_timing q[BH_QUERIES];
};

/*
 * Make the dataset: runs (exactly) and the skipped fires among them, of 1,000 jobs whose
 * newest fire is at or before `now` (seconds), going back as far as the runs take (about
 * 30 days for 1,000,000).  Deterministic: the same runs and now give the same dataset.
 * Returns NULL when out of memory; bh_data_free frees it.
 */
struct bh_data *bh_data_make(long runs, int64_t now);
void bh_data_free(struct bh_data *d);

/* Facts about a dataset, for the report. */
long bh_data_runs(const struct bh_data *d);
long bh_data_skips(const struct bh_data *d);
double bh_data_days(const struct bh_data *d);

/*
 * Load d into a new store and time the queries on it.  sqlite_path: a SQLite file that
 * must not exist yet (removed afterwards, with its -wal and -shm), or NULL and pg_url: a
 * PostgreSQL server in which a database of the benchmark's own is created, loaded with
 * o->threads connections, vacuumed and analyzed as autovacuum would, and dropped
 * afterwards unless o->keep_pg.  Prints its progress on stdout; on any store error prints it on
 * stderr and exits 1 (it is a benchmark's main loop).
 */
void bh_run(const struct bh_data *d, const char *sqlite_path, const char *pg_url,
            const struct bh_opts *o, struct bh_result *out);

/* PostgreSQL for the benchmark's parts that make a database of their own: url with its
 * database replaced by db (malloc'd); a connection to url; a statement without parameters
 * on it.  Each prints the error and exits 1 when it fails. */
char *bh_url_with_db(const char *url, const char *db);
PGconn *bh_pg_connect(const char *url);
void bh_pg_cmd(PGconn *c, const char *sql);

#endif
