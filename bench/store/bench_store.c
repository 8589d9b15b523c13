/*
 * bench_store.c - the history store on SQLite and on PostgreSQL, side by side in one run:
 * how many history writes a second each takes, written the way the server writes them,
 * what a cluster executor's fetch of 1,000 job definitions costs, and what the history
 * API's queries cost once a million runs are stored.
 *
 *   bench_store [-d DIR] [-u URL] [-b sqlite|pg|both] [-t SECONDS] [-r ROUNDS] [-J JOBS]
 *               [-n RUNS] [-j THREADS] [-q SECONDS] [-L SECONDS] [-k]
 *
 * `make bench-store` runs it with -u pointing at a private PostgreSQL 15 that
 * tests/pg/with-pg.sh starts on this machine with fsync on (PG_DURABLE=1), so both back
 * ends are measured in the same run on the same machine state.  Without -u it measures
 * SQLite only; -b chooses.
 *
 * Writes.  The server's store writer thread commits, in one transaction, whatever run
 * records were queued since its last commit: a few at a time when it is quiet, hundreds
 * under load.  A run is written three times (store_run_put): queued when accepted, running
 * after the spawn, final with its output tail when it ends, and a run lasts long enough
 * that those three land in different transactions.  This replays that stream: step k
 * queues run k, marks run k - 100 running and finishes run k - 200, and the writes are
 * committed in batches of 50 and of 500 (each store as it is opened for the server:
 * SQLite in WAL mode with synchronous=NORMAL, PostgreSQL over one connection; prepared
 * statements both).  Each round writes for SECONDS (-t, default 2) per batch size, the two
 * sizes back to back (which goes first alternates), SQLite then PostgreSQL; a figure is
 * the median of ROUNDS (-r, default 3).  SQLite writes to a fresh file for every
 * measurement in a new directory under DIR (default $TMPDIR, else /var/tmp: a disk, as a
 * data directory is, where /tmp may be a tmpfs); PostgreSQL writes every measurement to
 * the database at URL (password in PGPASSWORD) as jobs of its own (bench<n>), so they
 * never meet each other's runs, and its figures include the round trips to the server.
 *
 * Definitions.  Then a store of JOBS jobs (-J, default 20,000; 0 skips this part), a third
 * with secrets, answers requests of 1,000 names as POST /api/v1/cluster/definitions does,
 * name by name (store_obj_get and store_secrets_get, as it did) and at once
 * (store_jobs_get_many), each timed for -q SECONDS (bench_defs.c).
 *
 * History.  Then RUNS runs (-n, default 1,000,000; 0 skips this part) of a realistic month
 * of 1,000 jobs are loaded into a new store on each back end and the API's history and
 * statistics queries are timed there (bench_history.c: the dataset, the load - PostgreSQL
 * with THREADS connections, -j, default 3 - and the queries, each for SECONDS, -q,
 * default 3, at most 1,000 calls, and at least 200 for a history query unless that takes
 * five times SECONDS).  A load that takes longer than -L seconds (default 480) fails the
 * run, so the benchmark always stops by itself.  -k keeps PostgreSQL's history database
 * (tethys_bench_history) for a look at the query plans with psql.
 *
 * The machine is shared and noisy, so the figures are this run's own, not constants.  It
 * prints each measurement as it goes, key=value lines (store.<back end>.*), a table of both
 * back ends side by side, and last exactly one line
 *   RESULT store sqlite_writes_per_s=<n> pg_writes_per_s=<n> pg_history_p99_ms=<n>
 * where a writes figure is the lower of the two batch sizes' medians and pg_history_p99_ms
 * the worst p99 of the history queries on PostgreSQL (a back end or part not measured
 * leaves its fields out).  Exits 1 when a store refuses a call or a load overruns (the
 * error on stderr), 2 on bad arguments.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "bench_defs.h"
#include "bench_history.h"
#include "store/store.h"

#define SPREAD 100 /* steps between a run's queued, running and final writes */

enum { SQLITE, PG, BACKENDS };
static const char *const backend_key[BACKENDS] = {"sqlite", "pg"};
static const char *const backend_title[BACKENDS] = {"SQLite", "PostgreSQL"};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds this process has used (a figure the machine's other load moves less). */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static const char *fs_name(const char *dir)
{
    struct statfs sf;
    if (statfs(dir, &sf) != 0)
        return "unknown";
    switch ((unsigned long)sf.f_type) {
    case 0x01021994UL: return "tmpfs";
    case 0xEF53UL: return "ext2/3/4";
    case 0x58465342UL: return "xfs";
    case 0x9123683EUL: return "btrfs";
    case 0x794C7630UL: return "overlayfs";
    default: return "other";
    }
}

__attribute__((noreturn)) static void fail(const char *what, const struct ty_err *err)
{
    fprintf(stderr, "bench_store: %s: %s\n", what, err->msg);
    exit(1);
}

/* Run k of measurement m at one of its three stages, as the runner records it. */
static void put_stage(struct store *s, int m, uint64_t k, enum store_run_status st)
{
    static const char out[] = "copied 1234 rows in 0.8 s\n";
    char id[STORE_ID_MAX], fire[STORE_FIRE_ID_MAX], job[24];
    snprintf(id, sizeof id, "%02x%014" PRIx64, m & 0xff, k);
    snprintf(job, sizeof job, "bench%d", m);
    snprintf(fire, sizeof fire, "%s@%" PRIu64 "#%" PRIu64, job, 1700000000 + k / 4, k % 4);
    int64_t at_ms = (int64_t)(1700000000 + k / 4) * 1000;
    struct store_run r = {
        .run_id = id,
        .fire_id = fire,
        .job = job,
        .domain = "ops/bench",
        .shard = (uint32_t)(k % 4),
        .attempt = 1,
        .trigger = STORE_TRIGGER_SCHEDULE,
        .status = st,
        .scheduled_at = 1700000000 + (int64_t)(k / 4),
        .queued_at_ms = at_ms + 1,
        .started_at_ms = st == STORE_RUN_QUEUED ? 0 : at_ms + 3,
        .ended_at_ms = st == STORE_RUN_SUCCEEDED ? at_ms + 900 : 0,
        .pid = st == STORE_RUN_QUEUED ? 0 : 4000 + (int64_t)(k % 30000),
        .pid_start = st == STORE_RUN_QUEUED ? 0 : 123456,
        .boot_id = "5f0c8d62-3f1a-4c61-9d7e-0b6f2a1c9e44",
        .executor = "local",
        .epoch = 1,
        .exit_code = st == STORE_RUN_SUCCEEDED ? 0 : -1,
        .output = st == STORE_RUN_SUCCEEDED ? out : NULL,
        .output_len = st == STORE_RUN_SUCCEEDED ? sizeof out - 1 : 0,
    };
    struct ty_err err;
    if (store_run_put(s, &r, &err) != 0)
        fail("run_put", &err);
}

/* Write the stream in transactions of `batch` writes for `secs` seconds on a fresh
 * database in dir (or the PostgreSQL database url); returns writes per second, and CPU
 * microseconds per write in *cpu_us. */
static double measure(const char *dir, const char *url, int batch, double secs, double *cpu_us)
{
    static int measurements;
    int m = ++measurements;
    char path[4096 + 32];
    snprintf(path, sizeof path, "%s/tethys-%d.db", dir, batch);
    struct store *s;
    struct ty_err err;
    if (store_open(url != NULL ? url : path, false, &s, &err) != 0)
        fail("open", &err);
    uint64_t writes = 0, step = 0;
    int in_batch = 0;
    double t0 = mono_s(), c0 = cpu_s(), el = 0;
    static const enum store_run_status stages[] = {STORE_RUN_QUEUED, STORE_RUN_RUNNING,
                                                   STORE_RUN_SUCCEEDED};
    for (;;) {
        /* one step: queue a run, start an older one, finish an older one still */
        for (uint64_t i = 0; i < 3; i++) {
            if (step < i * SPREAD)
                continue;
            if (in_batch == 0 && store_begin(s, &err) != 0)
                fail("begin", &err);
            put_stage(s, m, step - i * SPREAD, stages[i]);
            writes++;
            if (++in_batch == batch) {
                if (store_commit(s, &err) != 0)
                    fail("commit", &err);
                in_batch = 0;
                el = mono_s() - t0;
                if (el >= secs)
                    goto done;
            }
        }
        step++;
    }
done:
    *cpu_us = (cpu_s() - c0) * 1e6 / (double)writes;
    store_close(s);
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; url == NULL && i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
        unlink(p);
    }
    return (double)writes / el;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The worst p99 of the history queries. */
static double history_p99(const struct bh_result *r)
{
    double worst = 0;
    for (int q = 0; q < BH_QUERIES; q++)
        if (bh_query_is_history((enum bh_query)q) && r->q[q].p99_ms > worst)
            worst = r->q[q].p99_ms;
    return worst;
}

__attribute__((noreturn)) static void usage(void)
{
    fprintf(stderr, "usage: bench_store [-d DIR] [-u URL] [-b sqlite|pg|both] [-t SECONDS]"
                    " [-r ROUNDS] [-J JOBS] [-n RUNS] [-j THREADS] [-q SECONDS] [-L SECONDS]"
                    " [-k]\n");
    exit(2);
}

/* Both back ends' figures, and what the RESULT line is made of. */
struct figures {
    bool on[BACKENDS];
    double writes50[BACKENDS], writes500[BACKENDS], cpu50[BACKENDS], cpu500[BACKENDS];
    long defs_jobs; /* 0: not measured */
    struct bd_result defs[BACKENDS];
    bool history;
    long runs, skips;
    double days;
    struct bh_result hist[BACKENDS];
};

/* One cell of the table: the formatted figures, or "-" for a back end not measured. */
__attribute__((format(printf, 2, 3))) static void print_cell(bool on, const char *fmt, ...)
{
    char cell[64] = "-";
    if (on) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cell, sizeof cell, fmt, ap);
        va_end(ap);
    }
    printf(" %22s", cell);
}

static void print_table(const struct figures *f)
{
    printf("\n%-44s %22s %22s\n", "", "SQLite", "PostgreSQL");
    printf("%-44s", "writes/s, batches of 50 / 500 (medians)");
    for (int b = 0; b < BACKENDS; b++)
        print_cell(f->on[b], "%.0f / %.0f", f->writes50[b], f->writes500[b]);
    printf("\n%-44s", "client CPU per write, 50 / 500 (us)");
    for (int b = 0; b < BACKENDS; b++)
        print_cell(f->on[b], "%.1f / %.1f", f->cpu50[b], f->cpu500[b]);
    printf("\n");
    if (f->defs_jobs > 0) {
        printf("%-44s", "1,000 definitions: per name / at once (ms)");
        for (int b = 0; b < BACKENDS; b++)
            print_cell(f->on[b], "%.1f / %.1f", f->defs[b].loop.p50_ms, f->defs[b].many.p50_ms);
        printf("\n");
    }
    if (!f->history)
        return;
    printf("%-44s", "load: store calls/s, seconds");
    for (int b = 0; b < BACKENDS; b++)
        print_cell(f->on[b], "%.0f/s, %.0f s", (double)f->hist[b].writes / f->hist[b].load_s,
                   f->hist[b].load_s);
    printf("\n%-44s", "database size (MB)");
    for (int b = 0; b < BACKENDS; b++)
        print_cell(f->on[b], "%.0f", (double)f->hist[b].bytes / 1e6);
    printf("\n%-44s %22s %22s\n", "query (p50 / p99 ms)", "", "");
    for (int q = 0; q < BH_QUERIES; q++) {
        printf("  %-42s", bh_query_title((enum bh_query)q));
        for (int b = 0; b < BACKENDS; b++)
            print_cell(f->on[b], "%.2f / %.2f", f->hist[b].q[q].p50_ms, f->hist[b].q[q].p99_ms);
        printf("\n");
    }
    printf("%-44s", "history queries: worst p99 (ms)");
    for (int b = 0; b < BACKENDS; b++)
        print_cell(f->on[b], "%.2f", history_p99(&f->hist[b]));
    printf("\n");
}

int main(int argc, char **argv)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || *base == '\0')
        base = "/var/tmp";
    const char *url = NULL, *which = NULL;
    double secs = 2, query_secs = 3, load_limit = 480;
    long rounds = 3, runs = 1000000, threads = 3, defs_jobs = 20000;
    bool keep = false;
    int opt;
    while ((opt = getopt(argc, argv, "d:u:b:t:r:J:n:j:q:L:k")) != -1) {
        char *end = "";
        switch (opt) {
        case 'd': base = optarg; break;
        case 'u': url = optarg; break;
        case 'b': which = optarg; break;
        case 't': secs = strtod(optarg, &end); break;
        case 'r': rounds = strtol(optarg, &end, 10); break;
        case 'J': defs_jobs = strtol(optarg, &end, 10); break;
        case 'n': runs = strtol(optarg, &end, 10); break;
        case 'j': threads = strtol(optarg, &end, 10); break;
        case 'q': query_secs = strtod(optarg, &end); break;
        case 'L': load_limit = strtod(optarg, &end); break;
        case 'k': keep = true; break;
        default: usage();
        }
        if (*end != '\0')
            usage();
    }
    if (which == NULL)
        which = url != NULL ? "both" : "sqlite";
    struct figures f = {.on = {strcmp(which, "pg") != 0, strcmp(which, "sqlite") != 0}};
    if (secs <= 0 || rounds < 1 || rounds > 99 || runs < 0 || runs > 100000000 ||
        (defs_jobs != 0 && (defs_jobs < 1000 || defs_jobs > 10000000)) || threads < 1 ||
        threads > 64 || query_secs <= 0 || load_limit <= 0 || optind != argc ||
        (strcmp(which, "sqlite") != 0 && strcmp(which, "pg") != 0 && strcmp(which, "both") != 0) ||
        (f.on[PG] && url == NULL))
        usage();

    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tethys-bench-store-XXXXXX", base);
    if (mkdtemp(dir) == NULL) {
        perror("bench_store: mkdtemp");
        return 1;
    }
    double start = mono_s();
    if (f.on[SQLITE])
        printf("SQLite: databases in %s (%s)\n", dir, fs_name(dir));
    if (f.on[PG])
        printf("PostgreSQL: %s\n", url);
    printf("writes: %.1f s per batch size, %ld rounds\n", secs, rounds);
    fflush(stdout);

    static const int batches[] = {50, 500};
    double rates[BACKENDS][2][99], cpus[BACKENDS][2][99];
    for (long r = 0; r < rounds; r++) {
        for (int b = 0; b < BACKENDS; b++) {
            for (int j = 0; f.on[b] && j < 2; j++) {
                int k = (r % 2) ? 1 - j : j;
                rates[b][k][r] =
                    measure(dir, b == PG ? url : NULL, batches[k], secs, &cpus[b][k][r]);
                printf("  %s round=%ld batch=%d writes_per_s=%.0f cpu_us_per_write=%.1f\n",
                       backend_key[b], r + 1, batches[k], rates[b][k][r], cpus[b][k][r]);
                fflush(stdout);
            }
        }
    }
    for (int b = 0; b < BACKENDS; b++) {
        if (!f.on[b])
            continue;
        const char *k = backend_key[b];
        f.writes50[b] = median(rates[b][0], (int)rounds);
        f.writes500[b] = median(rates[b][1], (int)rounds);
        f.cpu50[b] = median(cpus[b][0], (int)rounds);
        f.cpu500[b] = median(cpus[b][1], (int)rounds);
        printf("store.%s.batch50.writes_per_s=%.0f\n", k, f.writes50[b]);
        printf("store.%s.batch500.writes_per_s=%.0f\n", k, f.writes500[b]);
        printf("store.%s.batch50.runs_per_s=%.0f\n", k, f.writes50[b] / 3);
        printf("store.%s.batch500.runs_per_s=%.0f\n", k, f.writes500[b] / 3);
        printf("store.%s.batch50.cpu_us_per_write=%.1f\n", k, f.cpu50[b]);
        printf("store.%s.batch500.cpu_us_per_write=%.1f\n", k, f.cpu500[b]);
    }

    if (defs_jobs > 0) {
        f.defs_jobs = defs_jobs;
        printf("definitions: %ld jobs, requests of 1,000 names for up to %.1f s each way\n",
               defs_jobs, query_secs);
        fflush(stdout);
        for (int b = 0; b < BACKENDS; b++) {
            if (!f.on[b])
                continue;
            printf("  %s:\n", backend_title[b]);
            fflush(stdout);
            char path[4200];
            snprintf(path, sizeof path, "%s/defs.db", dir);
            bd_run(b == SQLITE ? path : NULL, url, defs_jobs, query_secs, &f.defs[b]);
            const struct bd_result *r = &f.defs[b];
            const char *k = backend_key[b];
            printf("store.%s.defs.per_name.p50_ms=%.3f\n", k, r->loop.p50_ms);
            printf("store.%s.defs.per_name.p99_ms=%.3f\n", k, r->loop.p99_ms);
            printf("store.%s.defs.at_once.p50_ms=%.3f\n", k, r->many.p50_ms);
            printf("store.%s.defs.at_once.p99_ms=%.3f\n", k, r->many.p99_ms);
        }
    }

    if (runs > 0) {
        f.history = true;
        struct bh_data *d = bh_data_make(runs, (int64_t)time(NULL));
        if (d == NULL) {
            fprintf(stderr, "bench_store: out of memory for %ld runs\n", runs);
            return 1;
        }
        f.runs = bh_data_runs(d);
        f.skips = bh_data_skips(d);
        f.days = bh_data_days(d);
        printf("history: %ld runs and %ld skipped fires of 1,000 jobs over %.1f days;"
               " queries for up to %.1f s each\n",
               f.runs, f.skips, f.days, query_secs);
        fflush(stdout);
        struct bh_opts o = {.threads = (int)threads,
                            .batch_sqlite = 10000,
                            .batch_pg = 1000,
                            .query_secs = query_secs,
                            .query_max = 1000,
                            .load_limit_s = load_limit,
                            .keep_pg = keep};
        for (int b = 0; b < BACKENDS; b++) {
            if (!f.on[b])
                continue;
            printf("  %s:\n", backend_title[b]);
            fflush(stdout);
            char path[4200];
            snprintf(path, sizeof path, "%s/history.db", dir);
            bh_run(d, b == SQLITE ? path : NULL, url, &o, &f.hist[b]);
            const struct bh_result *h = &f.hist[b];
            const char *k = backend_key[b];
            printf("store.%s.history.load_s=%.1f\n", k, h->load_s);
            printf("store.%s.history.load_calls_per_s=%.0f\n", k, (double)h->writes / h->load_s);
            printf("store.%s.history.bytes=%" PRId64 "\n", k, h->bytes);
            for (int q = 0; q < BH_QUERIES; q++) {
                printf("store.%s.%s.p50_ms=%.3f\n", k, bh_query_key((enum bh_query)q),
                       h->q[q].p50_ms);
                printf("store.%s.%s.p99_ms=%.3f\n", k, bh_query_key((enum bh_query)q),
                       h->q[q].p99_ms);
            }
            printf("store.%s.history_p99_ms=%.3f\n", k, history_p99(h));
        }
        bh_data_free(d);
    }
    rmdir(dir);

    print_table(&f);
    if (f.history && f.on[SQLITE] && f.on[PG])
        printf("worst history p99, PostgreSQL / SQLite: %.1fx\n",
               history_p99(&f.hist[PG]) / history_p99(&f.hist[SQLITE]));
    printf("whole benchmark: %.0f s\n", mono_s() - start);
    printf("RESULT store");
    for (int b = 0; b < BACKENDS; b++)
        if (f.on[b])
            printf(" %s_writes_per_s=%.0f", backend_key[b],
                   f.writes50[b] < f.writes500[b] ? f.writes50[b] : f.writes500[b]);
    if (f.history && f.on[PG])
        printf(" pg_history_p99_ms=%.2f", history_p99(&f.hist[PG]));
    printf("\n");
    return 0;
}
