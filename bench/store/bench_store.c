/*
 * bench_store.c - how many history writes a second the store takes, written the way the
 * server writes them: the SQLite store, or with -u the PostgreSQL store at URL.
 *
 *   bench_store [-d DIR | -u URL] [-t SECONDS] [-r ROUNDS]
 *
 * The server's store writer thread commits, in one transaction, whatever run records were
 * queued since its last commit: a few at a time when it is quiet, hundreds under load.  A
 * run is written three times (store_run_put): queued when accepted, running after the
 * spawn, final with its output tail when it ends, and a run lasts long enough that those
 * three land in different transactions.  This benchmark replays that stream: step k
 * queues run k, marks run k - 100 running and finishes run k - 200, and the writes are
 * committed in batches of 50 and of 500 (the store as it is opened for the server: WAL,
 * synchronous=NORMAL, prepared statements).
 *
 * Each round writes to a fresh database in a new directory under DIR (default $TMPDIR,
 * else /var/tmp: a disk, as a data directory is, where /tmp may be a tmpfs) for SECONDS
 * (default 2) per batch size, the two sizes back to back (which goes first alternates);
 * a figure is the median of ROUNDS (default 3) rounds.  The machine is shared and noisy,
 * so the figures are this run's own, not constants.
 *
 * With -u URL (password in PGPASSWORD; `make bench-store-pg` starts a private server with
 * fsync on) every round writes to that database, as jobs of its own (bench<n>), so rounds
 * never meet each other's runs; the figures include the round trips to the server.
 *
 * Prints each round, then key=value lines (store.*: writes and runs per second, and the
 * process's CPU microseconds per write, which other load on the machine moves less than
 * the rate), and last exactly one line
 *   RESULT store sqlite_writes_per_s=<the lower of the two batch sizes' medians>
 * (pg_writes_per_s with -u).
 * Exits 1 when the store refuses a write (the error on stderr), 2 on bad arguments.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#define SPREAD 100 /* steps between a run's queued, running and final writes */

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

__attribute__((noreturn)) static void usage(void)
{
    fprintf(stderr, "usage: bench_store [-d DIR | -u URL] [-t SECONDS] [-r ROUNDS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || *base == '\0')
        base = "/var/tmp";
    const char *url = NULL;
    double secs = 2;
    long rounds = 3;
    int opt;
    while ((opt = getopt(argc, argv, "d:u:t:r:")) != -1) {
        char *end = "";
        switch (opt) {
        case 'd': base = optarg; break;
        case 'u': url = optarg; break;
        case 't': secs = strtod(optarg, &end); break;
        case 'r': rounds = strtol(optarg, &end, 10); break;
        default: usage();
        }
        if (*end != '\0')
            usage();
    }
    if (secs <= 0 || rounds < 1 || rounds > 99)
        usage();

    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tethys-bench-store-XXXXXX", base);
    if (mkdtemp(dir) == NULL) {
        perror("bench_store: mkdtemp");
        return 1;
    }
    static const int batches[] = {50, 500};
    double rates[2][99], cpus[2][99];
    if (url != NULL)
        printf("store: PostgreSQL, %.1f s per batch size, %ld rounds\n", secs, rounds);
    else
        printf("store: database in %s (%s), %.1f s per batch size, %ld rounds\n", dir, fs_name(dir),
               secs, rounds);
    for (long r = 0; r < rounds; r++) {
        for (int j = 0; j < 2; j++) {
            int b = (r % 2) ? 1 - j : j;
            rates[b][r] = measure(dir, url, batches[b], secs, &cpus[b][r]);
            printf("  round=%ld batch=%d writes_per_s=%.0f cpu_us_per_write=%.1f\n", r + 1,
                   batches[b], rates[b][r], cpus[b][r]);
            fflush(stdout);
        }
    }
    rmdir(dir);
    double m50 = median(rates[0], (int)rounds), m500 = median(rates[1], (int)rounds);
    printf("store.batch50.writes_per_s=%.0f\n", m50);
    printf("store.batch500.writes_per_s=%.0f\n", m500);
    printf("store.batch50.runs_per_s=%.0f\n", m50 / 3);
    printf("store.batch500.runs_per_s=%.0f\n", m500 / 3);
    printf("store.batch50.cpu_us_per_write=%.1f\n", median(cpus[0], (int)rounds));
    printf("store.batch500.cpu_us_per_write=%.1f\n", median(cpus[1], (int)rounds));
    printf("RESULT store %s_writes_per_s=%.0f\n", url != NULL ? "pg" : "sqlite",
           m50 < m500 ? m50 : m500);
    return 0;
}
