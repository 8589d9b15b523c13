/*
 * executor.h - an executor: given assignments, it fires its shards from its own clock,
 * runs them, and reports every state change through its result sink.
 *
 * What it owns: a loop thread (libuv) with the job table, the runs, the capacity queue,
 * retries and timers; the trigger engine thread (src/sched); the spool thread, which makes
 * results durable in DATA/spool and hands them to the store side of the sink.  Nothing
 * else touches that state: requests come in through its coord_member (from coord_local in
 * the embedded server), answers go back through the request's done callback, results go
 * out through the spool.  It never reads the store: what it needs to resume (runs left by
 * a previous process, fires already made) comes from its own spool and its assignments.
 */
#ifndef EXECUTOR_H
#define EXECUTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "../coord/coord.h"
#include "../core/ty_err.h"

struct executor_config {
    const char *id;       /* stable per data directory (executor_load_id) */
    const char *kind;     /* "embedded", "standalone": shown in its status */
    const char *data_dir; /* runs/ (output files) and spool/ live here; it must exist */
    const char *boot_id;  /* this machine's boot id (exec_boot_id) */
    uint32_t max_runs;    /* runs at once */
    uint32_t queue_max;   /* runs waiting for capacity before new fires are skipped */
    uint32_t max_jobs;    /* jobs the trigger engine can hold */
    uint64_t spool_max;   /* bytes of results not yet in the store before output is dropped */
    /*
     * The store side of the sink: write results[0..n) (in order) to the store, idempotently
     * by (fire id, attempt), in one transaction; called on the spool thread.  0, or a TY_E*
     * code with err: the results stay in the spool and are offered again later.
     */
    int (*deliver)(void *arg, const struct coord_result *const *results, size_t n,
                   struct ty_err *err);
    void *deliver_arg;
    /* Called on the executor's threads when its status changes in a way an operator is told
     * about (overload begins or ends, the queue fills, the spool starts or stops failing):
     * the caller asks for the status again.  May be NULL. */
    void (*changed)(void *arg);
    void *changed_arg;
    /* The wall clock, ns; NULL: clock_wall_ns (os/clock.h: test builds shift it). */
    int64_t (*now_ns)(void *arg);
    void *now_arg;
};

struct executor;

/*
 * Read DATA/executor-id, or make one (`<host>-<8 hex digits>`, written 0644 atomically) on
 * the first start: an executor keeps its id across restarts, so it recognises its own runs.
 * TY_EIO / TY_ENOSPC when it cannot be read or written, TY_EFORMAT when the file holds
 * something that is not an id.
 */
int executor_load_id(const char *data_dir, char *id, size_t cap, struct ty_err *err);

/*
 * Make an executor (not started): opens its spool (DATA/spool), reading what a previous
 * process left there.  The caller owns *out (executor_free).  TY_EIO / TY_ENOSPC / TY_ENOMEM
 * / TY_EINVAL (bad config) with a message.
 */
int executor_new(const struct executor_config *cfg, struct executor **out, struct ty_err *err);

/*
 * Start it: reconcile the runs a previous process left (adopt, kill or record them lost,
 * as each job says; a job it does not hold yet gets its recorded default), start the spool
 * thread (delivering what was left undelivered first), the trigger engine and the loop
 * thread.  Assignments may be sent before or after.  TY_EIO when a thread cannot start.
 */
int executor_start(struct executor *x, struct ty_err *err);

/* The executor as a member of a coordination (its id and request entry point). */
void executor_member(struct executor *x, struct coord_member *out);

/*
 * Fence or unfence (any thread).  A fenced executor starts nothing: fires it would make
 * are not made (nor recorded: whoever owns the shards next makes them, from its
 * assignment's resume_after), queued runs stay queued, retries wait; runs of jobs with
 * on_executor_death "kill" are killed (process group TERM, then KILL after the job's
 * kill_grace).  A cluster executor is fenced when its ZooKeeper lease ends, and unfenced
 * only once a new session has given it a fresh assignment.  Unfenced, every held job
 * resumes from now: the fires whose time passed while fenced are made here only when an
 * assignment says so with its resume_after (one given while fenced, or the next one).
 * Fencing takes effect before the call returns; unfencing when the loop gets to it.
 */
void executor_fence(struct executor *x, bool fenced);

/*
 * The lease (a cluster executor's): until this CLOCK_BOOTTIME instant (ns) it may start
 * runs and make fires.  Past it, the executor fences itself (executor_fence) before it
 * starts or makes anything, whatever its threads were doing: after a SIGSTOP or a paused
 * VM every thread wakes at once, and the one that notices the lease first must not be the
 * one that starts a run.  0: no lease (the embedded server).  Any thread.
 */
void executor_set_lease(struct executor *x, int64_t until_ns);

/*
 * Stop (any thread): no more fires; runs not started are recorded interrupted; running
 * ones get grace_s seconds, then their process groups are killed; then the spool delivers
 * what it can for a few seconds.  done(arg) is called once, on the executor's loop thread,
 * when all of that is over.  Calling it again does nothing.
 */
void executor_stop(struct executor *x, uint32_t grace_s, void (*done)(void *arg), void *arg);

/* Runs going now (any thread; a counter the loop keeps). */
uint32_t executor_running(struct executor *x);

/* Join the threads and free everything (after done, or when never started). */
void executor_free(struct executor *x);

#endif
