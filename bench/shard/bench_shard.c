/*
 * bench_shard.c - how long shard placement takes at a leader's size: by default 500,000
 * jobs of 4 shards over 100 executors (bench_shard [JOBS [EXECUTORS [SHARDS]]]).
 *
 * What is measured (the process's CPU time around the calls only, so that other work on a
 * shared machine does not count; building the inputs is not timed), each the median of
 * ROUNDS runs on fresh inputs:
 *   place even / hash   shard_place of every job in turn, as when the jobs are added one
 *                       by one (the incremental path), every job of the one strategy;
 *   plan fresh          shard_plan of every job with nothing placed (a leader's first
 *                       plan), mixed: 3 in 4 jobs even, the rest hash;
 *   plan again          shard_plan on its own output (nothing moves: the steady state);
 *   plan join / leave   shard_plan after one executor joined / left, placements carried
 *                       over by id as a leader does;
 *   plan domains        plan fresh where a fifth of the executors serve one of 20 domain
 *                       subtrees, the jobs are spread over 200 domains, and one job in 20
 *                       has a prefer list: eligibility goes through the memo.
 * Each line gives the time, ns per shard, and what moved, so a run also shows that the
 * steady state moves nothing and a join moves about 1/(n+1) of the shards.  The last
 * line is "RESULT shard place_even_ms=... plan_fresh_ms=... plan_join_ms=...".
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/shard.h"

#define ROUNDS 3

struct world {
    size_t n_jobs, n_ex;
    uint32_t shards;
    struct shard_executor *ex;
    char (*ids)[16];
    const char **domains; /* [n_ex] one each, for the domain runs */
    struct shard_slot *slots;
    char (*names)[24];
    char (*job_domains)[16];
    uint32_t *store; /* shards or executors per job */
    uint32_t stride;
    uint64_t *load;
};

/* CPU time of this process: the machine may be shared, and waiting for a CPU is not the
 * placement's cost.  (Wall time is printed too.) */
static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (p == NULL) {
        fprintf(stderr, "bench_shard: out of memory\n");
        exit(1);
    }
    return p;
}

static void world_make(struct world *w, size_t n_jobs, size_t n_ex, uint32_t shards)
{
    memset(w, 0, sizeof *w);
    w->n_jobs = n_jobs;
    w->n_ex = n_ex;
    w->shards = shards;
    w->ex = xcalloc(n_ex + 1, sizeof *w->ex); /* room for one joining */
    w->ids = xcalloc(n_ex + 1, sizeof *w->ids);
    w->domains = xcalloc(n_ex + 1, sizeof *w->domains);
    for (size_t i = 0; i <= n_ex; i++) {
        snprintf(w->ids[i], sizeof w->ids[i], "exec-%04zu", i);
        w->ex[i] = (struct shard_executor){w->ids[i], NULL, 0, NULL, 0, 8};
    }
    w->slots = xcalloc(n_jobs, sizeof *w->slots);
    w->names = xcalloc(n_jobs, sizeof *w->names);
    w->job_domains = xcalloc(n_jobs, sizeof *w->job_domains);
    w->stride = shards > n_ex + 1 ? shards : (uint32_t)n_ex + 1;
    w->store = xcalloc(n_jobs * w->stride, sizeof *w->store);
    w->load = xcalloc(n_ex + 1, sizeof *w->load);
    for (size_t i = 0; i < n_jobs; i++) {
        snprintf(w->names[i], sizeof w->names[i], "job-%07zu", i);
        w->slots[i].job =
            (struct shard_job){w->names[i], "", shards, JOB_STRATEGY_EVEN, NULL, false};
        w->slots[i].where = w->store + i * w->stride;
    }
}

static void world_free(struct world *w)
{
    free(w->ex);
    free(w->ids);
    free(w->domains);
    free(w->slots);
    free(w->names);
    free(w->job_domains);
    free(w->store);
    free(w->load);
}

/* Nothing placed; strategy: even, hash, or 0 for the mix (3 in 4 even). */
static void reset(struct world *w, int strategy)
{
    for (size_t i = 0; i < w->n_jobs; i++) {
        struct shard_job *j = &w->slots[i].job;
        j->strategy = strategy ? (enum job_strategy)strategy
                               : (i % 4 ? JOB_STRATEGY_EVEN : JOB_STRATEGY_HASH);
        shard_where_init(j, w->slots[i].where, &w->slots[i].n_where);
    }
    memset(w->load, 0, (w->n_ex + 1) * sizeof *w->load);
}

static void cluster(struct shard_cluster *c, const struct shard_executor *ex, size_t n)
{
    struct ty_err err;
    if (shard_cluster_init(c, ex, n, &err) != 0) {
        fprintf(stderr, "bench_shard: %s\n", err.msg);
        exit(1);
    }
}

static void plan(struct shard_cluster *c, struct world *w, struct shard_counts *m)
{
    struct ty_err err;
    memset(m, 0, sizeof *m);
    if (shard_plan(c, w->slots, w->n_jobs, w->load, m, &err) != 0) {
        fprintf(stderr, "bench_shard: %s\n", err.msg);
        exit(1);
    }
}

/* Carry placements made over executors old[] to cluster c, by id. */
static void carry(struct world *w, const struct shard_executor *old, const struct shard_cluster *c)
{
    for (size_t i = 0; i < w->n_jobs; i++) {
        struct shard_slot *sl = &w->slots[i];
        for (uint32_t k = 0; k < sl->n_where; k++) {
            uint32_t e = sl->where[k];
            sl->where[k] = e == SHARD_NONE ? e : shard_cluster_find(c, old[e].id);
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v)
{
    qsort(v, ROUNDS, sizeof *v, cmp_double);
    return v[ROUNDS / 2];
}

static void report(const char *what, double ms, uint64_t shards, const struct shard_counts *m)
{
    printf("%-13s %7.1f ms CPU %6.1f ns/shard  placed=%" PRIu64 " unplaced=%" PRIu64
           " moved=%" PRIu64 " rebalanced=%" PRIu64 "\n",
           what, ms, ms * 1e6 / (double)shards, m->placed, m->unplaced, m->moved, m->rebalanced);
}

static double place_all(struct world *w, int strategy, struct shard_counts *m)
{
    double t[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        struct shard_cluster c;
        cluster(&c, w->ex, w->n_ex);
        reset(w, strategy);
        memset(m, 0, sizeof *m);
        double t0 = now_ms();
        for (size_t i = 0; i < w->n_jobs; i++) {
            struct shard_slot *sl = &w->slots[i];
            if (shard_place(&c, &sl->job, sl->where, &sl->n_where, w->load, m, NULL) != 0)
                exit(1);
        }
        t[r] = now_ms() - t0;
        shard_cluster_free(&c);
    }
    return median(t);
}

int main(int argc, char **argv)
{
    size_t n_jobs = argc > 1 ? strtoul(argv[1], NULL, 10) : 500000;
    size_t n_ex = argc > 2 ? strtoul(argv[2], NULL, 10) : 100;
    uint32_t shards = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 4;
    if (n_jobs == 0 || n_ex == 0 || n_ex >= SHARD_EXECUTORS_MAX || shards == 0 ||
        shards > JOB_SHARDS_MAX) {
        fprintf(stderr, "usage: bench_shard [JOBS [EXECUTORS [SHARDS]]]\n");
        return 2;
    }
    double wall0 = wall_ms();
    struct world w;
    world_make(&w, n_jobs, n_ex, shards);
    uint64_t total = (uint64_t)n_jobs * shards;
    printf("%zu jobs x %u shards over %zu executors (capacity 8), median of %d\n", n_jobs, shards,
           n_ex, ROUNDS);

    struct shard_counts m;
    double place_even = place_all(&w, JOB_STRATEGY_EVEN, &m);
    report("place even", place_even, total, &m);
    double place_hash = place_all(&w, JOB_STRATEGY_HASH, &m);
    report("place hash", place_hash, total, &m);

    double fresh[ROUNDS], again[ROUNDS], join[ROUNDS], leave[ROUNDS];
    uint64_t orphans = 0; /* shards of the executor that left, placed again */
    struct shard_counts mf, ma, mj, ml;
    for (int r = 0; r < ROUNDS; r++) {
        struct shard_cluster c, c2;
        cluster(&c, w.ex, n_ex);
        reset(&w, 0);
        double t0 = now_ms();
        plan(&c, &w, &mf);
        fresh[r] = now_ms() - t0;
        t0 = now_ms();
        plan(&c, &w, &ma);
        again[r] = now_ms() - t0;
        /* one joins (the executor after the last) */
        cluster(&c2, w.ex, n_ex + 1);
        carry(&w, w.ex, &c2);
        shard_cluster_free(&c);
        t0 = now_ms();
        plan(&c2, &w, &mj);
        join[r] = now_ms() - t0;
        /* the first one leaves: the others, one index down */
        cluster(&c, w.ex + 1, n_ex);
        carry(&w, w.ex, &c);
        orphans = 0;
        for (size_t i = 0; i < n_jobs; i++)
            for (uint32_t k = 0; k < w.slots[i].n_where; k++)
                orphans += w.slots[i].where[k] == SHARD_NONE;
        shard_cluster_free(&c2);
        t0 = now_ms();
        plan(&c, &w, &ml);
        leave[r] = now_ms() - t0;
        shard_cluster_free(&c);
    }
    double plan_fresh = median(fresh), plan_join = median(join);
    report("plan fresh", plan_fresh, total, &mf);
    report("plan again", median(again), total, &ma);
    report("plan join", plan_join, total, &mj);
    report("plan leave", median(leave), total, &ml);
    printf("%-13s (the %" PRIu64 " shards of the one that left were placed again; no other "
           "moved)\n",
           "", orphans);

    /* domains and prefer lists: eligibility through the memo */
    static char domain_names[20][16];
    static char *const prefer[] = {"exec-0003", "exec-0042", "zone=b", NULL};
    for (size_t d = 0; d < 20; d++)
        snprintf(domain_names[d], sizeof domain_names[d], "org%02zu", d);
    for (size_t i = 0; i < n_ex; i += 5) {
        w.domains[i] = domain_names[i / 5 % 20];
        w.ex[i].domains = &w.domains[i];
        w.ex[i].n_domains = 1;
    }
    double dom[ROUNDS];
    struct shard_counts md;
    for (int r = 0; r < ROUNDS; r++) {
        struct shard_cluster c;
        cluster(&c, w.ex, n_ex);
        reset(&w, 0);
        for (size_t i = 0; i < n_jobs; i++) {
            snprintf(w.job_domains[i], sizeof w.job_domains[i], "org%02zu/t%zu", i % 20,
                     i / 20 % 10);
            w.slots[i].job.domain = w.job_domains[i];
            w.slots[i].job.prefer = i % 20 == 0 ? prefer : NULL;
        }
        double t0 = now_ms();
        plan(&c, &w, &md);
        dom[r] = now_ms() - t0;
        shard_cluster_free(&c);
    }
    report("plan domains", median(dom), total, &md);

    printf("(the whole run: %.1f s of wall-clock time)\n", (wall_ms() - wall0) / 1e3);
    printf("RESULT shard place_even_ms=%.0f place_hash_ms=%.0f plan_fresh_ms=%.0f "
           "plan_join_ms=%.0f\n",
           place_even, place_hash, plan_fresh, plan_join);
    world_free(&w);
    return 0;
}
