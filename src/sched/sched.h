/*
 * sched.h - the trigger engine: every enabled job's next fire, and a thread that sleeps
 * until the next one is due and hands it over.
 *
 * Jobs are kept in a timing wheel of one-second slots (cron fires are whole seconds) with
 * a heap for fires beyond the wheel's horizon, so handing over N due fires costs N list
 * steps and nothing grows with the number of idle jobs.  The engine thread sleeps on an
 * absolute CLOCK_REALTIME deadline (wall-clock time decides when a schedule fires; a
 * clock step wakes it or lets it sleep on) with its timer slack at 1 ns.  Due fires go
 * into a bounded single-producer ring the consumer drains with sched_take; when the ring
 * is full nothing is lost silently: the job remembers how many fires it could not hand
 * over and reports them as one SCHED_DROPPED record when room returns.
 *
 * Late fires follow the job's misfire policy here, where lateness is known: within the
 * threshold they are ordinary fires; beyond it, "skip" reports one SCHED_MISSED record
 * for the whole run of missed fires, "run once" hands over the latest of them and reports
 * the rest missed, "catch up N" hands over the oldest N and reports the rest — never an
 * unbounded flood.
 *
 * Threads: sched_set/sched_remove/sched_kick may be called from any thread (they queue a
 * command and wake the engine); sched_take from one consumer thread.
 */
#ifndef SCHED_H
#define SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/cron.h"
#include "../core/job.h"
#include "../core/ty_err.h"
#include "../core/tz.h"

enum sched_kind {
    SCHED_FIRE = 1,    /* run it: `at` is the scheduled instant */
    SCHED_MISSED = 2,  /* `count` fires from `at` to `last` were too late and are skipped */
    SCHED_DROPPED = 3, /* `count` fires from `at` to `last` found the ring full */
};

#define SCHED_F_LATE     0x1 /* SCHED_FIRE beyond the misfire threshold, run by the policy */
#define SCHED_F_AT_LEAST 0x2 /* SCHED_MISSED: too many to count; `count` is a lower bound */

struct sched_fire {
    uint32_t job;        /* the caller's job id */
    uint16_t kind;       /* enum sched_kind */
    uint16_t flags;      /* SCHED_F_* */
    int64_t at;          /* scheduled instant, seconds */
    int64_t last;        /* SCHED_MISSED/DROPPED: the last fire concerned */
    uint64_t count;      /* SCHED_MISSED/DROPPED: how many fires */
    int64_t dispatch_ns; /* CLOCK_REALTIME (plus the test offset) when handed over */
    uint32_t generation; /* the generation given to sched_set for this job */
};

/* How one job fires. */
struct sched_spec {
    struct cron_expr cron;
    const struct tz_zone *zone; /* borrowed: zone tables live for the process */
    int64_t start_at;           /* no fire before this instant (0: none) */
    int64_t end_at;             /* no fire after this instant (0: none) */
    uint32_t misfire_threshold; /* seconds */
    enum job_misfire misfire;
    uint32_t catch_up_max;
};

struct sched_config {
    size_t ring_capacity; /* fires the ring holds (rounded up to a power of two); 65536 */
    uint32_t max_jobs;    /* job ids are 0 .. max_jobs-1 */
    /* called on the engine thread after it put fires in an empty ring (e.g. uv_async_send) */
    void (*wake)(void *arg);
    void *wake_arg;
    /* the wall clock; NULL: CLOCK_REALTIME.  Tests shift it to step the clock. */
    int64_t (*now_ns)(void *arg);
    void *now_arg;
};

struct sched_stats {
    uint64_t jobs;    /* scheduled now */
    uint64_t fires;   /* SCHED_FIRE records handed over */
    uint64_t missed;  /* fires reported missed */
    uint64_t dropped; /* fires that found the ring full */
    uint64_t wakeups; /* times the engine thread woke */
};

struct sched;

/* Create an engine (not started).  Fails with TY_EINVAL (bad config) or TY_ENOMEM. */
int sched_new(const struct sched_config *cfg, struct sched **out, struct ty_err *err);

/* Start the engine thread.  TY_EIO if the thread cannot be created. */
int sched_start(struct sched *s, struct ty_err *err);

/*
 * Add or replace job `job`: its next fire is the first one strictly after `after`
 * (instant, seconds), which may lie in the past: missed fires then follow the misfire
 * policy at once (after a restart, `after` is the last fire the job made).  `generation`
 * is echoed in every record for this job so the consumer can ignore records of a
 * replaced definition.  Returns TY_EINVAL when job >= max_jobs, TY_ENOMEM.
 */
int sched_set(struct sched *s, uint32_t job, const struct sched_spec *spec, int64_t after,
              uint32_t generation);

/* Stop firing job `job` (no-op when it is not scheduled). */
int sched_remove(struct sched *s, uint32_t job);

/* Re-read the clock now (tests call it after shifting their clock). */
void sched_kick(struct sched *s);

/* Move up to max due records into out; returns how many (0 when none).  One consumer. */
size_t sched_take(struct sched *s, struct sched_fire *out, size_t max);

/* The next fire of job `job` (instant) or 0 when it has none or is not scheduled.
 * Answered by the engine thread's last state; any thread. */
int64_t sched_next_fire(struct sched *s, uint32_t job);

void sched_get_stats(struct sched *s, struct sched_stats *out);

/* Stop the engine thread: no more fires; records already in the ring stay takeable. */
void sched_stop(struct sched *s);

/* Stop the thread if it runs and free everything. */
void sched_free(struct sched *s);

#endif
