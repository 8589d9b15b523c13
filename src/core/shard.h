/*
 * shard.h - which executor runs each shard of each job, in a cluster.
 *
 * The leader holds every job and every executor registered in ZooKeeper and decides, for
 * each shard, which executor fires it.  This module is that decision and nothing else:
 * executors and jobs in, an executor index per shard out.  Pure: no I/O, no clock, no
 * globals; what it keeps between calls (the executors, and a memo of which executors may
 * run which jobs) lives in a struct shard_cluster the caller owns.
 *
 * A job's strategy (job.h) decides how its shards are spread:
 *   even  - each shard goes to the eligible executor that is least full after taking it
 *           (load / capacity), and stays there while that executor stays eligible;
 *   hash  - rendezvous (highest random weight) hashing of (job, shard) over the eligible
 *           executors: a function of the job and the executors alone, no previous state;
 *           an executor that joins takes about 1/n of the shards, all from the others, and
 *           one that leaves gives up only its own.  Capacity is not weighed (use even);
 *   local - every eligible executor runs every shard (its own fires, its own fire ids).
 *
 * Eligible executors: capacity above 0; serving the job's domain (one of the executor's
 * domains is the job's domain or an ancestor of it; an executor without domains serves all);
 * and the prefer rules.  With a prefer list, the eligible executors it names (by id, or by
 * a label selector key=value) are the only candidates while there is one; when none is
 * online, prefer_only leaves the shards unplaced (SHARD_NONE), otherwise every eligible
 * executor is a candidate - and the shards go back to a preferred executor when one returns.
 *
 * Load: load[i] counts the shards placed on executor i; a local job counts its shard count
 * on each of its executors.  Balance, for even jobs, weighs capacity: a plan is balanced when
 * no even shard could move to another candidate of its job and leave that one less full
 * than its own executor is now - for a shard on a and a candidate b,
 *     (load[b] + 1) / capacity[b] >= load[a] / capacity[a];
 * with equal capacities, load[a] - load[b] <= 1 (max - min <= 1 over the executors the even
 * jobs share).  hash and local shards count in the load but are never moved for balance.
 *
 * Two ways in.  shard_place places one job (added, or changed: release its old placement
 * first), given the load of everything else; it moves nothing else.  shard_plan takes every
 * job's current placement when the executors change (or now and then): it repairs what is
 * no longer valid (an executor gone, a preferred one back) and then moves the fewest even
 * shards that make the plan balanced.  Both are deterministic: the same executors (in any
 * order) and jobs (in any order, for shard_plan) give the same placement by executor id.
 *
 * Costs (n executors, c candidates of a job, S shards, J jobs, M moves for balance):
 * shard_cluster_init O(n log n); eligibility O(length of the job's domain and prefer list)
 * once memoised, O(n x (domains + prefer x labels)) the first time a (domain, prefer) pair
 * is met; shard_place O(S x c); shard_plan O(J log J + S x c + M x n).  Measured figures are
 * in docs/performance.md (bench/shard).
 */
#ifndef SHARD_H
#define SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "strmap.h"
#include "ty_err.h"

#define SHARD_NONE          UINT32_MAX /* no executor: the shard is unplaced */
#define SHARD_EXECUTORS_MAX 10000
#define SHARD_CAPACITY_MAX  1000000 /* keeps load x capacity products in 64 bits */
#define SHARD_ID_MAX        63      /* bytes of an executor id: [A-Za-z0-9._-] */

struct shard_label {
    const char *key, *value;
};

/* An executor as placement sees it: borrowed from the registration (coord_member_info). */
struct shard_executor {
    const char *id; /* unique, 1-SHARD_ID_MAX bytes of [A-Za-z0-9._-] */
    const struct shard_label *labels;
    size_t n_labels;
    const char *const *domains; /* domain subtrees it serves; none: every domain */
    size_t n_domains;
    uint32_t capacity; /* runs at once; 0: it takes no shards (draining) */
};

/* A job as placement sees it; shard_job_of fills it from a struct job.  Borrowed. */
struct shard_job {
    const char *name;
    const char *domain; /* "" is the root */
    uint32_t shards;    /* 1..JOB_SHARDS_MAX */
    enum job_strategy strategy;
    char *const *prefer; /* NULL-terminated executor ids and "key=value" selectors, or NULL */
    bool prefer_only;
};

/* The executors of one placement round, with what is worked out once for them: a new one
 * whenever the executors change.  It memoises the candidates of each distinct (domain,
 * prefer list) it is asked about, so it grows with those (a few hundred bytes each at 100
 * executors), not with the jobs.  The fields are private (shard.c); read them through the
 * functions below.  One thread at a time. */
struct shard_cluster {
    const struct shard_executor *ex; /* [n], borrowed */
    uint32_t n, words;               /* executors; 64-bit words of a membership bitmap */
    uint64_t *key;                   /* [n] hash of each id */
    uint32_t *by_id;                 /* [n] indexes in id order */
    bool domains;                    /* some executor serves only some domains */
    bool uniform;                    /* every capacity above 0 is the same */
    struct shard_set *all;           /* every executor with capacity */
    struct shard_set *scratch;       /* a set when the memo cannot grow */
    struct strmap sets;              /* (domain, prefer) -> struct shard_set */
    uint64_t gen;                    /* bumped on every move of shard_plan's balance pass */
};

/*
 * Take the executors of a round: ex[0..n) is borrowed (strings included) until
 * shard_cluster_free, and indexes into it are what placements hold.  Refuses with
 * TY_EINVAL naming the field ("executors[3].id") an id that is not one or is given twice,
 * a capacity above SHARD_CAPACITY_MAX, a missing label or domain, more than
 * SHARD_EXECUTORS_MAX executors; TY_ENOMEM.  *c is safe to shard_cluster_free either way.
 */
int shard_cluster_init(struct shard_cluster *c, const struct shard_executor *ex, size_t n,
                       struct ty_err *err);

/* Release what the cluster owns (not the executors it borrows) and zero it. */
void shard_cluster_free(struct shard_cluster *c);

/* The index of the executor with this id, or SHARD_NONE.  O(log n); for carrying a
 * placement over from the executors of the previous round. */
uint32_t shard_cluster_find(const struct shard_cluster *c, const char *id);

/* The placement view of a job: out borrows j's strings (valid while j is). */
void shard_job_of(const struct job *j, struct shard_job *out);

/* Entries a job's `where` array needs: its shard count, or for a local job the number of
 * executors (at least 1). */
uint32_t shard_where_len(const struct shard_cluster *c, const struct shard_job *j);

/* An empty placement (nothing placed yet): every shard SHARD_NONE, or no executor for a
 * local job.  where has shard_where_len entries. */
void shard_where_init(const struct shard_job *j, uint32_t *where, uint32_t *n_where);

/*
 * The executors that may run job j now, in id order, into out (room for c->n entries, or
 * NULL to count them only); returns how many.  Applies domains, capacity and the prefer
 * rules, as placement does.  Allocates only to grow the memo (and goes on without it).
 */
uint32_t shard_eligible(struct shard_cluster *c, const struct shard_job *j, uint32_t *out);

/* What a placement did; shard_place and shard_plan add to it. */
struct shard_counts {
    uint64_t placed;     /* shards with an executor (a local job: shards x executors) */
    uint64_t unplaced;   /* shards without one: no eligible executor */
    uint64_t moved;      /* shards that had an executor and now have another, or none */
    uint64_t rebalanced; /* of those, moved by shard_plan for balance alone */
};

/*
 * Place one job.  where[0..*n_where) is its current placement over c's executors (indexes;
 * SHARD_NONE for a shard without one; a local job: the executors it runs on), in the form
 * of j's strategy and shard count (after a change of either, start from shard_where_init),
 * and is replaced by the new one; *n_where is set (j->shards, or a local job's executors,
 * in id order).  load[c->n] holds every other job's shards (not this job's current ones:
 * shard_release them first) and gets this job's new ones added.  Even shards keep an
 * executor that is still a candidate; the others go to the least full candidate.  Nothing
 * but this job moves.  counts may be NULL.  TY_EINVAL naming the field for a job that is
 * not one (shards out of range, an unknown strategy) or an index beyond c->n, with where
 * and load unchanged.  Allocates only to grow the memo.
 */
int shard_place(struct shard_cluster *c, const struct shard_job *j, uint32_t *where,
                uint32_t *n_where, uint64_t *load, struct shard_counts *counts, struct ty_err *err);

/* Take a job's placement where[0..n_where) out of load (a job removed or about to be
 * placed again).  Indexes beyond c->n are ignored. */
void shard_release(const struct shard_cluster *c, const struct shard_job *j, const uint32_t *where,
                   uint32_t n_where, uint64_t *load);

/* One job of a plan: the job and its placement, in and out, as shard_place takes them. */
struct shard_slot {
    struct shard_job job;
    uint32_t *where; /* caller's, shard_where_len entries */
    uint32_t n_where;
};

/*
 * Place every job: slots[0..n) hold each job's current placement over c's executors
 * (carried over by id with shard_cluster_find; SHARD_NONE where there is none) and get the
 * new one.  Hash and local jobs are placed afresh; even shards keep a candidate executor,
 * the others go to the least full candidate; then, while some even shard could move to a
 * candidate less full than its own executor would be after (see the top of this file), the
 * fullest executor gives one to its least full candidate - the fewest moves that balance a
 * plan whose even jobs share their candidates.  load[c->n] is set to the new plan's load.
 * Running it again on its own output moves nothing.  counts may be NULL.  Allocates
 * O(J + S) of scratch, all before it changes anything: TY_ENOMEM, or TY_EINVAL naming the
 * slot and field ("slots[7].where[2]"), leave slots and load as they were.
 */
int shard_plan(struct shard_cluster *c, struct shard_slot *slots, size_t n, uint64_t *load,
               struct shard_counts *counts, struct ty_err *err);

#endif
