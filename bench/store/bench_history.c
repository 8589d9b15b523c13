/*
 * bench_history.c - what the history API costs with a million runs in the store, on either
 * back end (bench_history.h).
 *
 * The dataset is about a month of a realistic configuration, made from a fixed seed: 1,000
 * jobs in 50 leaf domains under 10 teams, on cron-like intervals - 5 every minute, 28 every
 * 5 minutes, 80 every 15, 250 hourly, 200 every 6 hours, the rest daily - a quarter of the
 * hourly and slower ones with 2-4 shards.  Most runs succeed; about 3% fail (half of those
 * are retried as attempt 2), and there are timeouts, cancels, interrupted, lost and misfired
 * runs, manual runs, skipped fires (overlap for the frequent jobs, a pause, a calendar for
 * daily ones; skips are extra, the run count is exact), and the newest runs still queued or
 * running.  Run ids are random-looking hex as the executor's are; outputs are tails of 50 B
 * to 1 KB, a few KB for some failures.  It is generated newest first (one heap of the jobs'
 * previous fires) until it holds the runs asked for, then written oldest first.
 *
 * The load goes through the store interface as the server's writer writes: each run queued,
 * and 100 records later finished (a second run_put), skips as they come, in large
 * transactions (bh_opts: SQLite 10,000 steps - about 20,000 writes, what a writer that fell
 * behind commits at once - and PostgreSQL 1,000).  A PostgreSQL connection does one round
 * trip per write, so it loads with several threads, each with its own store and its share
 * of the jobs, as several servers would write.  Autovacuum vacuums and analyzes each day's
 * partition long before anyone pages through a month of history, so the PostgreSQL load ends with
 * VACUUM (ANALYZE) of every plain table - not the partitioned parents, which autovacuum never
 * analyzes - and a CHECKPOINT, so neither runs under the timings; the server's SQLite store
 * runs no ANALYZE, so SQLite gets nothing.
 *
 * The queries go through a read-only store, as an HTTP thread's.  For each kind a few
 * untimed calls first (a connection prepares its statements once), then calls with
 * arguments from a fixed random sequence - the same on both back ends - until the time
 * budget or the call cap, whichever comes first (at least 3 calls, and at least 200 for a
 * history query unless that takes five budgets); p50 and p99 by nearest rank.  Each call's JSON
 * answer is built and freed inside the timing, as the API's is.
 */
#define _GNU_SOURCE
#include "bench_history.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/strbuf.h"
#include "store/store.h"

#define JOBS       1000
#define TEAMS      10
#define LEAVES     5
#define SPREAD     100 /* records between a run's queued and final writes */
#define DAY_S      INT64_C(86400)
#define HISTORY_DB "tethys_bench_history"

static const char *const teams[TEAMS] = {"payments", "billing", "search", "ads", "data",
                                         "infra",    "mobile",  "web",    "ml",  "security"};
static const char *const leaves[LEAVES] = {"etl", "reports", "sync", "cleanup", "alerts"};
static const char *const tasks[10] = {"export", "import",   "rollup", "sync",  "report",
                                      "purge",  "backfill", "check",  "index", "refresh"};

/* How many jobs fire at each interval (seconds); 1,000 in all. */
static const struct {
    int32_t interval;
    int jobs;
} classes[] = {{60, 5}, {300, 28}, {900, 80}, {3600, 250}, {21600, 200}, {86400, 437}};

struct job {
    char name[40];
    char domain[40];
    int32_t interval; /* seconds between fires */
    int32_t phase;    /* fires at phase + k * interval */
    uint32_t dur_ms;  /* a typical run's duration */
    uint8_t shards;
};

enum { REC_RUN, REC_SKIP };

/* One run or skipped fire of the dataset (32 bytes: a million fit in 32 MB). */
struct rec {
    int64_t at;       /* scheduled_at, seconds */
    uint32_t seq;     /* runs: its number, from which its run id is made */
    uint32_t late_ms; /* runs: started_at - scheduled_at */
    uint32_t dur_ms;  /* runs: ended_at - started_at */
    uint16_t job;
    uint8_t kind;    /* REC_RUN or REC_SKIP */
    uint8_t shard;   /* skips: SHARD_ALL for the whole fire */
    uint8_t attempt; /* runs */
    uint8_t status;  /* runs: the final enum store_run_status; skips: enum store_skip_reason */
    uint8_t trigger; /* enum store_trigger */
    uint8_t manual;  /* runs: the fire was made by hand (a "!m" fire id) */
};
#define SHARD_ALL 0xff

struct bh_data {
    struct job jobs[JOBS];
    char leaf_names[TEAMS * LEAVES][40];
    struct rec *recs; /* oldest first */
    size_t n;
    long runs, skips;
    int64_t now, oldest;
};

/* ---------------------------------------------------------------------------------------
 * Small helpers.
 */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* splitmix64: a good hash of a counter, so a stream of draws is one uint64_t of state. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t *state)
{
    return mix64((*state)++ * 0x9e3779b97f4a7c15u);
}

static uint32_t rnd_below(uint64_t *state, uint32_t n)
{
    return (uint32_t)(rnd(state) % n);
}

static double rnd_unit(uint64_t *state)
{
    return (double)(rnd(state) >> 11) / 9007199254740992.0;
}

__attribute__((noreturn)) static void fail(const char *what, const char *msg)
{
    fprintf(stderr, "bench_store: %s: %s\n", what, msg);
    exit(1);
}

static void run_id_of(uint32_t seq, char id[STORE_ID_MAX])
{
    snprintf(id, STORE_ID_MAX, "%016" PRIx64, mix64(seq ^ 0x5eedbe4c4u));
}

/* ---------------------------------------------------------------------------------------
 * The dataset.
 */

static void make_jobs(struct bh_data *d, uint64_t *rng)
{
    uint16_t perm[JOBS];
    for (int i = 0; i < JOBS; i++)
        perm[i] = (uint16_t)i;
    for (int i = JOBS - 1; i > 0; i--) { /* Fisher-Yates: classes spread over the domains */
        int k = (int)rnd_below(rng, (uint32_t)i + 1);
        uint16_t t = perm[i];
        perm[i] = perm[k];
        perm[k] = t;
    }
    int next = 0;
    for (size_t c = 0; c < sizeof classes / sizeof classes[0]; c++) {
        for (int i = 0; i < classes[c].jobs; i++) {
            int j = perm[next++];
            struct job *jb = &d->jobs[j];
            int32_t iv = classes[c].interval;
            snprintf(jb->name, sizeof jb->name, "%s-%s-%04d", teams[j % TEAMS], tasks[j / 100 % 10],
                     j);
            snprintf(jb->domain, sizeof jb->domain, "%s/%s", teams[j % TEAMS],
                     leaves[j / TEAMS % LEAVES]);
            jb->interval = iv;
            jb->phase = iv == 60 ? 0 : 60 * (int32_t)rnd_below(rng, (uint32_t)(iv / 60));
            /* runs take a fraction of their interval, up to half an hour */
            uint32_t lo = iv <= 60 ? 2000 : iv <= 900 ? 5000 : 10000;
            uint32_t hi = iv <= 60 ? 20000 : iv <= 300 ? 60000 : iv <= 900 ? 300000 : 1800000;
            jb->dur_ms = lo + rnd_below(rng, hi - lo);
            jb->shards = 1;
            if (iv >= 3600 && rnd_below(rng, 4) == 0)
                jb->shards = (uint8_t)(2 + rnd_below(rng, 3));
            else if (iv == 900 && rnd_below(rng, 10) == 0)
                jb->shards = 2;
        }
    }
    for (int t = 0; t < TEAMS; t++)
        for (int l = 0; l < LEAVES; l++)
            snprintf(d->leaf_names[t * LEAVES + l], sizeof d->leaf_names[0], "%s/%s", teams[t],
                     leaves[l]);
}

static enum store_run_status first_status(uint64_t *rng)
{
    double u = rnd_unit(rng);
    return u < 0.030   ? STORE_RUN_FAILED
           : u < 0.036 ? STORE_RUN_TIMEOUT
           : u < 0.038 ? STORE_RUN_CANCELED
           : u < 0.040 ? STORE_RUN_INTERRUPTED
           : u < 0.041 ? STORE_RUN_LOST
           : u < 0.045 ? STORE_RUN_MISFIRED
                       : STORE_RUN_SUCCEEDED;
}

static bool push(struct bh_data *d, size_t *cap, struct rec r)
{
    if (d->n == *cap) {
        size_t nc = *cap * 2;
        struct rec *p = realloc(d->recs, nc * sizeof *p);
        if (p == NULL)
            return false;
        d->recs = p;
        *cap = nc;
    }
    d->recs[d->n++] = r;
    return true;
}

/* A run of job j's fire at `at`; the newest ones have not ended (or started) by d->now. */
static struct rec run_rec(const struct bh_data *d, int j, int64_t at, unsigned shard,
                          enum store_run_status st, uint32_t late_ms, uint64_t *rng)
{
    const struct job *jb = &d->jobs[j];
    uint32_t dur = (uint32_t)((double)jb->dur_ms * (0.7 + 0.6 * rnd_unit(rng)));
    if (rnd_below(rng, 50) == 0)
        dur *= 3; /* now and then a slow one */
    if (st == STORE_RUN_TIMEOUT)
        dur = jb->dur_ms * 3;
    int64_t now_ms = d->now * 1000, start = at * 1000 + late_ms;
    if (st != STORE_RUN_MISFIRED && start > now_ms)
        st = STORE_RUN_QUEUED;
    else if (st != STORE_RUN_MISFIRED && start + dur > now_ms)
        st = STORE_RUN_RUNNING;
    return (struct rec){.at = at,
                        .late_ms = late_ms,
                        .dur_ms = dur,
                        .job = (uint16_t)j,
                        .kind = REC_RUN,
                        .shard = (uint8_t)shard,
                        .attempt = 1,
                        .status = (uint8_t)st,
                        .trigger = STORE_TRIGGER_SCHEDULE};
}

/* Scheduling lateness: a few ms, with a tail (a busy second, a slow disk). */
static uint32_t lateness(uint64_t *rng)
{
    uint32_t ms = 2 + rnd_below(rng, 15);
    if (rnd_below(rng, 100) == 0)
        ms += rnd_below(rng, 2000);
    return ms;
}

/* Everything job j's fire at `at` left in history, pushed newest record first (the list
 * is reversed at the end).  Returns false when out of memory. */
static bool make_fire(struct bh_data *d, size_t *cap, int j, int64_t at, long want, uint64_t *rng)
{
    const struct job *jb = &d->jobs[j];
    /* a skipped fire instead: overlap for frequent jobs, a calendar for daily ones, pauses */
    double u = rnd_unit(rng);
    enum store_skip_reason why = 0;
    if (jb->interval <= 300 && u < 0.015)
        why = STORE_SKIP_OVERLAP;
    else if (jb->interval == DAY_S && u < 0.03)
        why = STORE_SKIP_CALENDAR;
    else if (u > 0.995)
        why = STORE_SKIP_PAUSED;
    if (why != 0) {
        d->skips++;
        return push(d, cap,
                    (struct rec){.at = at,
                                 .job = (uint16_t)j,
                                 .kind = REC_SKIP,
                                 .shard = why == STORE_SKIP_OVERLAP ? 0 : SHARD_ALL,
                                 .status = (uint8_t)why,
                                 .trigger = STORE_TRIGGER_SCHEDULE});
    }
    for (int s = jb->shards - 1; s >= 0 && d->runs < want; s--) {
        uint32_t late = lateness(rng);
        struct rec r = run_rec(d, j, at, (unsigned)s, first_status(rng), late, rng);
        if ((r.status == STORE_RUN_FAILED || r.status == STORE_RUN_TIMEOUT) &&
            rnd_below(rng, 2) == 0 && d->runs + 1 < want) {
            /* retried after the first attempt ended and a 30 s backoff */
            uint32_t rlate = late + r.dur_ms + 30000;
            struct rec retry = run_rec(
                d, j, at, (unsigned)s,
                rnd_below(rng, 5) == 0 ? STORE_RUN_FAILED : STORE_RUN_SUCCEEDED, rlate, rng);
            retry.attempt = 2;
            retry.trigger = STORE_TRIGGER_RETRY;
            if (!push(d, cap, retry))
                return false;
            d->runs++;
        }
        if (!push(d, cap, r))
            return false;
        d->runs++;
    }
    /* now and then someone runs the job by hand too, a little after this fire */
    if (rnd_below(rng, 500) == 0 && d->runs < want) {
        int64_t mat = at + 1 + rnd_below(rng, (uint32_t)jb->interval - 1);
        if (mat <= d->now) {
            struct rec m = run_rec(d, j, mat, 0, first_status(rng), lateness(rng), rng);
            m.trigger = STORE_TRIGGER_MANUAL;
            m.manual = 1;
            if (!push(d, cap, m))
                return false;
            d->runs++;
        }
    }
    return true;
}

/* A max-heap of the jobs by their next fire going back in time. */
struct heap {
    int64_t at[JOBS];
    uint16_t job[JOBS];
    int n;
};

static void heap_swap(struct heap *h, int a, int b)
{
    int64_t t = h->at[a];
    h->at[a] = h->at[b];
    h->at[b] = t;
    uint16_t j = h->job[a];
    h->job[a] = h->job[b];
    h->job[b] = j;
}

static void heap_down(struct heap *h, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->at[l] > h->at[m])
            m = l;
        if (r < h->n && h->at[r] > h->at[m])
            m = r;
        if (m == i)
            return;
        heap_swap(h, i, m);
        i = m;
    }
}

struct bh_data *bh_data_make(long runs, int64_t now)
{
    struct bh_data *d = calloc(1, sizeof *d);
    size_t cap = (size_t)runs + (size_t)runs / 16 + 16;
    if (d == NULL || (d->recs = malloc(cap * sizeof *d->recs)) == NULL) {
        free(d);
        return NULL;
    }
    d->now = now;
    uint64_t rng = 20261207;
    make_jobs(d, &rng);
    struct heap h;
    h.n = JOBS;
    for (int j = 0; j < JOBS; j++) {
        const struct job *jb = &d->jobs[j];
        h.job[j] = (uint16_t)j;
        h.at[j] = (now - jb->phase) / jb->interval * jb->interval + jb->phase;
    }
    for (int i = JOBS / 2 - 1; i >= 0; i--)
        heap_down(&h, i);
    while (d->runs < runs) {
        int j = h.job[0];
        int64_t at = h.at[0];
        if (!make_fire(d, &cap, j, at, runs, &rng)) {
            bh_data_free(d);
            return NULL;
        }
        d->oldest = at;
        h.at[0] = at - d->jobs[j].interval;
        heap_down(&h, 0);
    }
    for (size_t i = 0; i < d->n / 2; i++) { /* oldest first */
        struct rec t = d->recs[i];
        d->recs[i] = d->recs[d->n - 1 - i];
        d->recs[d->n - 1 - i] = t;
    }
    uint32_t seq = 0;
    for (size_t i = 0; i < d->n; i++)
        if (d->recs[i].kind == REC_RUN)
            d->recs[i].seq = seq++;
    return d;
}

void bh_data_free(struct bh_data *d)
{
    if (d != NULL)
        free(d->recs);
    free(d);
}

long bh_data_runs(const struct bh_data *d)
{
    return d->runs;
}

long bh_data_skips(const struct bh_data *d)
{
    return d->skips;
}

double bh_data_days(const struct bh_data *d)
{
    return (double)(d->now - d->oldest) / DAY_S;
}

/* ---------------------------------------------------------------------------------------
 * Writing the dataset.
 */

static const char boot_id[] = "9b1f3c2e-6a4d-4f0b-8e2a-31c7d5a9e610";

/* The tail of a run's output, in out[cap]; its length. */
static size_t output_of(const struct bh_data *d, const struct rec *r, char *out, size_t cap)
{
    const struct job *jb = &d->jobs[r->job];
    uint64_t h = mix64(r->seq);
    struct strbuf sb;
    sb_init_fixed(&sb, out, cap);
    switch (r->status) {
    case STORE_RUN_SUCCEEDED:
        sb_addf(&sb, "%s shard %u/%u: starting\n", jb->name, r->shard + 1u, jb->shards);
        for (unsigned i = 0; h % 10 == 0 && i < 24; i++) /* a chatty one, about 1 KB */
            sb_addf(&sb, "batch %02u: %" PRIu64 " rows written\n", i, (h >> 8) % 5000 + i);
        sb_addf(&sb, "processed %" PRIu64 " rows in %u.%03u s\nok\n", (h >> 16) % 100000,
                r->dur_ms / 1000, r->dur_ms % 1000);
        break;
    case STORE_RUN_FAILED:
    case STORE_RUN_TIMEOUT:
    case STORE_RUN_CANCELED:
    case STORE_RUN_INTERRUPTED:
        sb_addf(&sb,
                "%s shard %u/%u: starting\nTraceback (most recent call last):\n"
                "  File \"/opt/jobs/%s/main.py\", line %" PRIu64 ", in <module>\n"
                "    main()\n  File \"/opt/jobs/lib/db.py\", line 88, in connect\n"
                "    raise ConnectionError(f\"could not connect to {host}\")\n",
                jb->name, r->shard + 1u, jb->shards, jb->name, 20 + h % 400);
        for (unsigned i = 0; h % 100 < 2 && i < 60; i++) /* a few KB of retries logged */
            sb_addf(&sb, "retry %02u: connect db-%" PRIu64 ".internal:5432: timed out\n", i, h % 7);
        sb_addf(&sb, "ConnectionError: could not connect to db-%" PRIu64 ".internal:5432\n", h % 7);
        break;
    default: return 0; /* never started, or its output is unknown */
    }
    return sb_failed(&sb) ? cap - 1 : sb.len;
}

/* Write run r at its first stage (queued) or its final one. */
static int put_run(struct store *s, const struct bh_data *d, const struct rec *r, bool final,
                   struct ty_err *err)
{
    const struct job *jb = &d->jobs[r->job];
    char id[STORE_ID_MAX], fire[STORE_FIRE_ID_MAX], out[8192];
    run_id_of(r->seq, id);
    if (r->manual)
        snprintf(fire, sizeof fire, "%s@%" PRId64 "!m%s#%u", jb->name, r->at, id, r->shard);
    else
        snprintf(fire, sizeof fire, "%s@%" PRId64 "#%u", jb->name, r->at, r->shard);
    enum store_run_status st = final ? (enum store_run_status)r->status : STORE_RUN_QUEUED;
    int64_t queued = r->at * 1000 + r->late_ms / 2;
    bool started = st != STORE_RUN_QUEUED && st != STORE_RUN_MISFIRED;
    bool ended = st != STORE_RUN_QUEUED && st != STORE_RUN_RUNNING;
    int64_t start = started ? r->at * 1000 + r->late_ms : 0;
    int64_t end = !ended ? 0 : started ? start + r->dur_ms : queued + 5000;
    const char *error = NULL;
    if (st == STORE_RUN_MISFIRED)
        error = "waited 5.0 s in the executor's queue, past the job's misfire threshold (5 s)";
    else if (st == STORE_RUN_LOST)
        error = "the process ended while no server watched it; its exit status is unknown";
    else if (st == STORE_RUN_INTERRUPTED)
        error = "the server shut down";
    size_t out_len = ended ? output_of(d, r, out, sizeof out) : 0;
    struct store_run run = {
        .run_id = id,
        .fire_id = fire,
        .job = jb->name,
        .domain = jb->domain,
        .shard = r->shard,
        .attempt = r->attempt,
        .trigger = (enum store_trigger)r->trigger,
        .status = st,
        .scheduled_at = r->at,
        .queued_at_ms = queued,
        .started_at_ms = start,
        .ended_at_ms = end,
        .pid = started ? 1000 + (int64_t)(mix64(r->seq + 1) % 60000) : 0,
        .pid_start = started ? start / 10 : 0,
        .boot_id = started ? boot_id : NULL,
        .executor = "node-1",
        .epoch = 3,
        .exit_code = st == STORE_RUN_SUCCEEDED ? 0
                     : st == STORE_RUN_FAILED  ? 1
                                               : -1,
        .signal = st == STORE_RUN_TIMEOUT                                   ? 9
                  : st == STORE_RUN_CANCELED || st == STORE_RUN_INTERRUPTED ? 15
                                                                            : 0,
        .output = out_len > 0 ? out : NULL,
        .output_len = out_len,
        .error = error,
    };
    return store_run_put(s, &run, err);
}

static int put_skip(struct store *s, const struct bh_data *d, const struct rec *r,
                    struct ty_err *err)
{
    const struct job *jb = &d->jobs[r->job];
    char fire[STORE_FIRE_ID_MAX];
    if (r->shard == SHARD_ALL)
        snprintf(fire, sizeof fire, "%s@%" PRId64 "#*", jb->name, r->at);
    else
        snprintf(fire, sizeof fire, "%s@%" PRId64 "#%u", jb->name, r->at, r->shard);
    enum store_skip_reason why = (enum store_skip_reason)r->status;
    struct store_skip k = {
        .fire_id = fire,
        .job = jb->name,
        .domain = jb->domain,
        .shard = r->shard == SHARD_ALL ? -1 : r->shard,
        .scheduled_at = r->at,
        .recorded_at_ms = r->at * 1000 + 3,
        .reason = why,
        .detail = why == STORE_SKIP_OVERLAP    ? "the previous run of shard 0 was still running"
                  : why == STORE_SKIP_CALENDAR ? "calendar holidays excludes the day"
                                               : "paused until the maintenance window ends",
        .trigger = STORE_TRIGGER_SCHEDULE,
    };
    return store_skip_put(s, &k, err);
}

/* One loader: a connection writing its share of the jobs' records, oldest first. */
struct loader {
    const struct bh_data *d;
    const char *where;
    long batch;
    double deadline;  /* mono_s() */
    uint32_t *stream; /* indices into d->recs */
    size_t n;
    pthread_t thread;
    atomic_ulong writes;
    atomic_ulong steps; /* done so far, for the progress line */
    atomic_bool done;
    int rc; /* read by the main thread only after done (or the join) */
    char error[TY_ERR_MSG_MAX + 16];
};

/* Step k of a loader: record k's first write and record k - SPREAD's final one. */
static int load_step(struct store *s, struct loader *l, size_t k, struct ty_err *err)
{
    int rc = 0;
    if (k < l->n) {
        const struct rec *r = &l->d->recs[l->stream[k]];
        rc = r->kind == REC_RUN ? put_run(s, l->d, r, false, err) : put_skip(s, l->d, r, err);
        atomic_fetch_add(&l->writes, 1);
    }
    if (rc == 0 && k >= SPREAD) {
        const struct rec *r = &l->d->recs[l->stream[k - SPREAD]];
        if (r->kind == REC_RUN && r->status != STORE_RUN_QUEUED) {
            rc = put_run(s, l->d, r, true, err);
            atomic_fetch_add(&l->writes, 1);
        }
    }
    return rc;
}

static void *load_thread(void *arg)
{
    struct loader *l = arg;
    struct store *s;
    struct ty_err err;
    if ((l->rc = store_open(l->where, false, &s, &err)) != 0) {
        snprintf(l->error, sizeof l->error, "open: %s", err.msg);
        atomic_store(&l->done, true);
        return NULL;
    }
    size_t total = l->n + SPREAD;
    for (size_t k0 = 0; k0 < total && l->rc == 0; k0 += (size_t)l->batch) {
        size_t k1 = k0 + (size_t)l->batch < total ? k0 + (size_t)l->batch : total;
        /* a deadlock with another loader ends the batch: roll back and write it again */
        for (int attempt = 0;; attempt++) {
            int rc = store_begin(s, &err);
            for (size_t k = k0; rc == 0 && k < k1; k++)
                rc = load_step(s, l, k, &err);
            if (rc == 0)
                rc = store_commit(s, &err);
            if (rc == 0)
                break;
            store_rollback(s);
            if (rc != TY_EUNAVAIL || attempt == 4) {
                l->rc = rc;
                snprintf(l->error, sizeof l->error, "load: %s", err.msg);
                break;
            }
        }
        atomic_store(&l->steps, k1);
        if (l->rc == 0 && mono_s() > l->deadline) {
            l->rc = TY_EUNAVAIL;
            snprintf(l->error, sizeof l->error, "load: not done by its time limit");
        }
    }
    store_close(s);
    atomic_store(&l->done, true);
    return NULL;
}

/* Load the dataset with `threads` connections (one: SQLite's batches, else PostgreSQL's);
 * returns the store calls made. */
static uint64_t load(const struct bh_data *d, const char *where, const struct bh_opts *o,
                     int threads)
{
    struct loader *ls = calloc((size_t)threads, sizeof *ls);
    if (ls == NULL)
        fail("load", "out of memory");
    double t0 = mono_s();
    for (int t = 0; t < threads; t++) {
        struct loader *l = &ls[t];
        l->d = d;
        l->where = where;
        l->batch = threads == 1 ? o->batch_sqlite : o->batch_pg;
        l->deadline = t0 + o->load_limit_s;
        if ((l->stream = malloc(d->n * sizeof *l->stream)) == NULL)
            fail("load", "out of memory");
        for (size_t i = 0; i < d->n; i++)
            if (d->recs[i].job % threads == t)
                l->stream[l->n++] = (uint32_t)i;
    }
    for (int t = 0; t < threads; t++)
        if (pthread_create(&ls[t].thread, NULL, load_thread, &ls[t]) != 0)
            fail("load", "cannot start a thread");
    /* progress every 30 s, so a slow load shows it is moving */
    double next = t0 + 30;
    for (bool running = true; running;) {
        usleep(100000);
        running = false;
        size_t steps = 0, total = 0;
        for (int t = 0; t < threads; t++) {
            steps += atomic_load(&ls[t].steps);
            total += ls[t].n + SPREAD;
            running = running || !atomic_load(&ls[t].done);
        }
        if (running && mono_s() >= next) {
            printf("    load: %.0f%% after %.0f s\n", 100.0 * (double)steps / (double)total,
                   mono_s() - t0);
            fflush(stdout);
            next += 30;
        }
    }
    uint64_t writes = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ls[t].thread, NULL);
        writes += atomic_load(&ls[t].writes);
    }
    for (int t = 0; t < threads; t++) {
        if (ls[t].rc != 0) {
            char what[64];
            snprintf(what, sizeof what, "history load (limit %.0f s)", o->load_limit_s);
            fail(what, ls[t].error);
        }
        free(ls[t].stream);
    }
    free(ls);
    return writes;
}

/* ---------------------------------------------------------------------------------------
 * PostgreSQL: a database of the benchmark's own, and autovacuum's work done up front.
 */

char *bh_url_with_db(const char *url, const char *db)
{
    const char *auth = strstr(url, "://");
    auth = auth != NULL ? auth + 3 : url;
    size_t host_end = strcspn(auth, "/?");
    const char *rest = auth + host_end;
    if (*rest == '/')
        rest += strcspn(rest, "?");
    struct strbuf sb;
    sb_init(&sb);
    sb_add(&sb, url, (size_t)(auth - url) + host_end);
    sb_addf(&sb, "/%s%s", db, rest);
    char *s = sb_detach(&sb);
    if (s == NULL)
        fail("url", "out of memory");
    return s;
}

PGconn *bh_pg_connect(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        fail("postgresql", PQerrorMessage(c));
    return c;
}

void bh_pg_cmd(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail(sql, PQerrorMessage(c));
    PQclear(r);
}

/* VACUUM (ANALYZE) every plain table of the store (each day's partition, the key tables),
 * as autovacuum would have, then CHECKPOINT; returns the database's size in bytes. */
static int64_t pg_maintain(const char *url)
{
    PGconn *c = bh_pg_connect(url);
    PGresult *r = PQexec(c, "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
                            " JOIN pg_namespace n ON n.oid = c.relnamespace"
                            " WHERE c.relkind = 'r' AND n.nspname = current_schema()");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail("list tables", PQerrorMessage(c));
    for (int i = 0; i < PQntuples(r); i++) {
        char sql[300];
        snprintf(sql, sizeof sql, "VACUUM (ANALYZE) %s", PQgetvalue(r, i, 0));
        bh_pg_cmd(c, sql);
    }
    PQclear(r);
    bh_pg_cmd(c, "CHECKPOINT");
    r = PQexec(c, "SELECT pg_database_size(current_database())");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail("database size", PQerrorMessage(c));
    int64_t size = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return size;
}

/* ---------------------------------------------------------------------------------------
 * The queries.
 */

#define DEEP_MAX 40

struct qctx {
    const struct bh_data *d;
    char *deep[DEEP_MAX]; /* cursors into the unfiltered history */
    int n_deep;
    char *deep_job[DEEP_MAX]; /* cursors into a busy job's history, and that job */
    const char *deep_job_name[DEEP_MAX];
    int n_deep_job;
};

static const struct {
    const char *title, *key;
    bool history;
} queries[BH_QUERIES] = {
    [BH_Q_HIST_JOB] = {"history: one job, first page", "history_job", true},
    [BH_Q_HIST_DOMAIN] = {"history: a team's subtree (10% of jobs)", "history_domain", true},
    [BH_Q_HIST_LEAF] = {"history: a leaf domain (2% of jobs)", "history_leaf", true},
    [BH_Q_HIST_FAILED] = {"history: status failed", "history_failed", true},
    [BH_Q_HIST_ALL] = {"history: everything, newest first", "history_all", true},
    [BH_Q_HIST_DEEP] = {"history: everything, 10K-100K back", "history_deep", true},
    [BH_Q_HIST_DEEP_JOB] = {"history: a busy job, 5K-20K back", "history_deep_job", true},
    [BH_Q_STATS_JOB] = {"stats by job: one job, 7 days", "stats_job_7d", false},
    [BH_Q_STATS_DAY] = {"stats by day: a team, 30 days", "stats_domain_day_30d", false},
    [BH_Q_RUN_GET] = {"run_get: a random run", "run_get", false},
    [BH_Q_LAST_FIRES] = {"last_fires (1,000 jobs)", "last_fires", false},
};

const char *bh_query_title(enum bh_query q)
{
    return queries[q].title;
}

const char *bh_query_key(enum bh_query q)
{
    return queries[q].key;
}

bool bh_query_is_history(enum bh_query q)
{
    return queries[q].history;
}

static void check(int rc, const char *what, const struct ty_err *err)
{
    if (rc != 0)
        fail(what, err->msg);
}

/* One page of history; returns its "next" cursor (malloc'd) or NULL at the end. */
static char *history_next(struct store *s, const struct store_history_query *q)
{
    json_t *page;
    struct ty_err err;
    check(store_history(s, q, &page, &err), "history", &err);
    const char *next = json_string_value(json_object_get(page, "next"));
    char *copy = next != NULL ? strdup(next) : NULL;
    json_decref(page);
    return copy;
}

/* Walk history matching q in pages of 1,000, keeping the cursor after every `every`-th
 * page up to `pages` pages, in c's arrays. */
static void walk(struct store *s, struct store_history_query q, int pages, int every, char **keep,
                 const char **keep_job, int *n_keep)
{
    q.limit = 1000;
    char *cursor = NULL;
    for (int p = 1; p <= pages && *n_keep < DEEP_MAX; p++) {
        q.cursor = cursor;
        char *next = history_next(s, &q);
        free(cursor);
        if ((cursor = next) == NULL)
            return;
        if (p % every == 0) {
            keep[*n_keep] = strdup(cursor);
            if (keep_job != NULL)
                keep_job[*n_keep] = q.job;
            ++*n_keep;
        }
    }
    free(cursor);
}

static void query_once(struct store *s, const struct qctx *c, enum bh_query q, uint64_t *rng)
{
    const struct bh_data *d = c->d;
    struct store_history_query h = {.limit = 100};
    struct store_stats_query st = {0};
    json_t *out = NULL;
    struct ty_err err;
    int rc = 0;
    switch (q) {
    case BH_Q_HIST_JOB: h.job = d->jobs[rnd_below(rng, JOBS)].name; break;
    case BH_Q_HIST_DOMAIN: h.domain = teams[rnd_below(rng, TEAMS)]; break;
    case BH_Q_HIST_LEAF: h.domain = d->leaf_names[rnd_below(rng, TEAMS * LEAVES)]; break;
    case BH_Q_HIST_FAILED: h.status = "failed"; break;
    case BH_Q_HIST_ALL: break;
    case BH_Q_HIST_DEEP:
        if (c->n_deep > 0)
            h.cursor = c->deep[rnd_below(rng, (uint32_t)c->n_deep)];
        break;
    case BH_Q_HIST_DEEP_JOB:
        if (c->n_deep_job > 0) {
            uint32_t i = rnd_below(rng, (uint32_t)c->n_deep_job);
            h.job = c->deep_job_name[i];
            h.cursor = c->deep_job[i];
        }
        break;
    case BH_Q_STATS_JOB:
        st = (struct store_stats_query){.job = d->jobs[rnd_below(rng, JOBS)].name,
                                        .since = d->now - 7 * DAY_S,
                                        .until = d->now + 1,
                                        .group_by = "job"};
        break;
    case BH_Q_STATS_DAY:
        st = (struct store_stats_query){.domain = teams[rnd_below(rng, TEAMS)],
                                        .since = d->now - 30 * DAY_S,
                                        .until = d->now + 1,
                                        .group_by = "day"};
        break;
    case BH_Q_RUN_GET: {
        char id[STORE_ID_MAX];
        run_id_of(rnd_below(rng, (uint32_t)d->runs), id);
        rc = store_run_get(s, id, &out, &err);
        break;
    }
    case BH_Q_LAST_FIRES: rc = store_last_fires(s, &out, &err); break;
    case BH_QUERIES: break;
    }
    if (q <= BH_Q_HIST_DEEP_JOB)
        rc = store_history(s, &h, &out, &err);
    else if (q <= BH_Q_STATS_DAY)
        rc = store_stats(s, &st, &out, &err);
    check(rc, queries[q].key, &err);
    json_decref(out);
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
    if ((double)k < p * n) /* rounded up */
        k++;
    return sorted[k < 1 ? 0 : k - 1];
}

/*
 * Time query q: calls until the budget is spent, at least 3 - and for a history query,
 * whose p99 is the RESULT line's, at least HISTORY_MIN_CALLS (so p99 is not simply the
 * slowest call) unless that takes five budgets - and at most o->query_max.
 */
#define HISTORY_MIN_CALLS 200

static void time_query(struct store *s, const struct qctx *c, enum bh_query q,
                       const struct bh_opts *o, double *samples, struct bh_timing *t)
{
    uint64_t rng = 1000 + (uint64_t)q; /* the same arguments on every back end */
    double w = mono_s();
    for (int i = 0; i < 2 && (i == 0 || mono_s() - w < 0.5); i++) /* untimed warm-up */
        query_once(s, c, q, &rng);
    int least = queries[q].history ? HISTORY_MIN_CALLS : 3;
    double t0 = mono_s(), el = 0;
    int n = 0;
    while (n < o->query_max &&
           (el < o->query_secs || n < 3 || (n < least && el < 5 * o->query_secs))) {
        double a = mono_s();
        query_once(s, c, q, &rng);
        samples[n++] = (mono_s() - a) * 1e3;
        el = mono_s() - t0;
    }
    qsort(samples, (size_t)n, sizeof *samples, cmp_double);
    *t = (struct bh_timing){.n = n,
                            .p50_ms = rank(samples, n, 0.50),
                            .p99_ms = rank(samples, n, 0.99),
                            .max_ms = samples[n - 1]};
}

static void queries_run(const struct bh_data *d, const char *where, const struct bh_opts *o,
                        struct bh_result *res)
{
    struct store *s;
    struct ty_err err;
    check(store_open(where, true, &s, &err), "open a reader", &err);
    struct qctx c = {.d = d};
    double t0 = mono_s();
    walk(s, (struct store_history_query){0}, 100, 10, c.deep, NULL, &c.n_deep);
    for (int j = 0; j < JOBS; j++)
        if (d->jobs[j].interval == 60)
            walk(s, (struct store_history_query){.job = d->jobs[j].name}, 20, 5, c.deep_job,
                 c.deep_job_name, &c.n_deep_job);
    printf("    cursors: %d into everything, %d into busy jobs (%.1f s of pages of 1,000)\n",
           c.n_deep, c.n_deep_job, mono_s() - t0);
    fflush(stdout);
    double *samples = malloc((size_t)o->query_max * sizeof *samples);
    if (samples == NULL)
        fail("queries", "out of memory");
    for (int q = 0; q < BH_QUERIES; q++) {
        time_query(s, &c, (enum bh_query)q, o, samples, &res->q[q]);
        const struct bh_timing *t = &res->q[q];
        printf("    %-40s p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms  (%d calls)\n", queries[q].title,
               t->p50_ms, t->p99_ms, t->max_ms, t->n);
        fflush(stdout);
    }
    free(samples);
    for (int i = 0; i < c.n_deep; i++)
        free(c.deep[i]);
    for (int i = 0; i < c.n_deep_job; i++)
        free(c.deep_job[i]);
    store_close(s);
}

/* ---------------------------------------------------------------------------------------
 * One back end.
 */

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

void bh_run(const struct bh_data *d, const char *sqlite_path, const char *pg_url,
            const struct bh_opts *o, struct bh_result *out)
{
    *out = (struct bh_result){0};
    const char *where = sqlite_path;
    char *hist_url = NULL;
    PGconn *admin = NULL;
    if (sqlite_path == NULL) {
        admin = bh_pg_connect(pg_url);
        bh_pg_cmd(admin, "SET client_min_messages = warning");
        bh_pg_cmd(admin, "DROP DATABASE IF EXISTS " HISTORY_DB); /* left by an interrupted run */
        bh_pg_cmd(admin, "CREATE DATABASE " HISTORY_DB);
        where = hist_url = bh_url_with_db(pg_url, HISTORY_DB);
    }
    int threads = sqlite_path != NULL ? 1 : o->threads;
    double t0 = mono_s();
    out->writes = load(d, where, o, threads);
    out->load_s = mono_s() - t0;
    printf("    loaded: %" PRIu64 " store calls in %.1f s (%.0f/s, %d connection%s)\n", out->writes,
           out->load_s, (double)out->writes / out->load_s, threads, threads > 1 ? "s" : "");
    if (sqlite_path != NULL) {
        out->bytes = file_size(sqlite_path);
        char wal[4200];
        snprintf(wal, sizeof wal, "%s-wal", sqlite_path);
        out->bytes += file_size(wal);
    } else {
        t0 = mono_s();
        out->bytes = pg_maintain(hist_url);
        out->maint_s = mono_s() - t0;
        printf("    VACUUM (ANALYZE) of every table and a CHECKPOINT: %.1f s\n", out->maint_s);
    }
    printf("    database: %.0f MB\n", (double)out->bytes / 1e6);
    fflush(stdout);
    queries_run(d, where, o, out);
    if (sqlite_path != NULL) {
        static const char *const suffixes[] = {"", "-wal", "-shm"};
        for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
            char p[4200];
            snprintf(p, sizeof p, "%s%s", sqlite_path, suffixes[i]);
            unlink(p);
        }
    } else {
        if (o->keep_pg)
            printf("    kept: %s\n", hist_url);
        else
            bh_pg_cmd(admin, "DROP DATABASE " HISTORY_DB);
        PQfinish(admin);
        free(hist_url);
    }
}
