/*
 * server.h - the embedded server: what `tethys server` runs.
 *
 * Threads and who owns what (STYLE: shared mutable state has one named owner):
 *   - the loop thread (libuv) owns the runtime: the job table, runs, the executor's queue
 *     and capacity, timers, alert state.  Everything else talks to it by message.
 *   - the trigger engine thread (src/sched) owns the wheel and hands fires over a ring.
 *   - the store writer thread owns the SQLite write connection for history, runs and
 *     alerts; the loop sends it writes and never waits for them.
 *   - HTTP connection threads (src/api) read the store through their own connections,
 *     write configuration (jobs, domains, calendars) under one config mutex, and ask the
 *     loop for anything that touches the runtime (run now, cancel, live state) with a
 *     blocking call that the loop answers.
 *
 * Only the public entry point (server_run) is meant for the rest of the program; the
 * server__ functions are shared among the files of src/server and src/api/routes.c.
 */
#ifndef SERVER_H
#define SERVER_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../core/domain.h"
#include "../core/job.h"
#include "../core/mask.h"
#include "../core/ty_err.h"
#include "../exec/exec.h"
#include "../sched/sched.h"
#include "../store/store.h"

struct server_opts {
    const char *data_dir;    /* created 0700 if missing */
    const char *listen;      /* "127.0.0.1:8080" */
    uint32_t max_runs;       /* executor capacity: runs at once (default 4 x CPUs) */
    uint32_t queue_max;      /* fires waiting for capacity before "queue full" (100000) */
    uint32_t shutdown_grace; /* seconds SIGTERM waits for running shards (30) */
    uint32_t retention_days; /* history kept (30) */
    uint32_t retention_runs; /* newest runs kept per job (10000) */
    uint32_t max_jobs;       /* jobs the trigger engine can hold (4,000,000) */
    const char *tls_cert;    /* PEM certificate (chain) for HTTPS, or NULL */
    const char *tls_key;     /* its private key, or NULL; both or neither */
    double rate_limit;       /* API requests a second per client address (50; 0 = none) */
    uint32_t rate_burst;     /* bucket size per client address (200; 0 = 4 x rate_limit) */
};

/* Run the server in the foreground until SIGTERM/SIGINT.  Returns a process exit status
 * (0 after a clean shutdown) and logs why it stopped. */
int server_run(const struct server_opts *opts);

/* ---- shared among the server's files ----------------------------------------------- */

#define SERVER_EXECUTOR_ID "local"

struct server;
struct srun;

/* A job as the loop holds it. */
struct sjob {
    uint32_t id;         /* trigger engine id */
    uint32_t generation; /* bumped on every change; stale fires are ignored */
    int64_t version;     /* store version of the definition */
    struct job def;
    const struct tz_zone *zone;
    struct mask_set *masks;     /* its secret values, hidden in its runs' output (or NULL) */
    int64_t last_fire;          /* latest scheduled fire made (schedule trigger), seconds */
    uint32_t shard_cap;         /* length of the per-shard arrays (never shrinks) */
    uint32_t *running;          /* per shard: runs queued or going now */
    struct srun **waiting_head; /* per shard: runs queued behind a running one (overlap) */
    uint32_t waiting;           /* total queued behind running ones */
    bool deleted;               /* removed from the table; freed when its last run ends */
    uint32_t refs;              /* runs pointing at it */
};

enum srun_state {
    SRUN_WAITING = 1, /* behind the previous run of its shard (overlap: queue) */
    SRUN_QUEUED,      /* waiting for executor capacity */
    SRUN_RUNNING,
    SRUN_ENDED,
};

struct srun {
    char run_id[STORE_ID_MAX];
    char fire_id[STORE_FIRE_ID_MAX];
    char trace_id[33];
    struct sjob *job;
    uint32_t shard;
    uint32_t attempt;
    enum store_trigger trigger;
    enum srun_state state;
    int64_t scheduled_at;
    int64_t queued_at_ms;
    int64_t started_at_ms;
    struct exec_run *proc;
    struct mask_set *masks; /* the job's secret values when the run started (a reference) */
    pid_t pid;
    uint64_t pid_start;
    bool adopted;
    bool accepted; /* recorded already (waited behind its shard, or a retry): never dropped */
    enum store_run_status final; /* set when a kill was ordered: timeout / canceled / ... */
    uv_timer_t timeout_timer, alarm_timer;
    bool timers_live;
    int closing; /* timer close callbacks still to come */
    bool alarm_raised;
    struct srun *next, *prev; /* in the executor queue or the active list */
    struct srun *wnext;       /* in a shard's overlap queue */
};

/* Messages from HTTP threads to the loop (server__call blocks until answered). */
enum server_msg_kind {
    MSG_JOB_CHANGED = 1, /* name; json NULL when deleted; secrets: its secret values */
    MSG_CALENDAR_CHANGED,
    MSG_RUN_NOW,   /* name, shards (array or NULL = all) -> {"fire_id","runs":[...]} */
    MSG_CANCEL,    /* run_id */
    MSG_JOB_STATE, /* name -> {"next_fire": t|null, "running": n, "waiting": n} */
    MSG_EXECUTORS, /* -> {"items": [...]} */
    MSG_STATUS,    /* -> runtime figures for /alerts and /health */
    MSG_CLOCK,     /* test builds: set the clock offset (seconds) */
};

struct server_msg {
    enum server_msg_kind kind;
    const char *name;
    const json_t *arg;
    int64_t num;
    const json_t *secrets; /* MSG_JOB_CHANGED: {"NAME": "value"}; NULL keeps those held */
    /* answer */
    int rc;
    struct ty_err err;
    json_t *reply;
    uint64_t store_seq; /* the store writes the loop had queued when it answered */
    /* plumbing */
    bool done;
    pthread_cond_t cv;
    struct server_msg *next;
};

/* Send a message to the loop and wait for its answer (any thread but the loop's). */
int server__call(struct server *s, struct server_msg *m);

/* Wait (at most timeout_ms) until the store has written every write queued up to seq, as
 * m->store_seq names them, so a reader sees what the loop's answer reported (a run now's
 * runs, a cancel).  Returns at once while the store is failing. */
void server__store_sync(struct server *s, uint64_t seq, int timeout_ms);

/* The server's wall clock, seconds and ms (shifted in test builds). */
int64_t server__now(const struct server *s);
int64_t server__now_ms(const struct server *s);

/* Store access for HTTP threads: a reader connection per thread (opened on first use). */
struct store *server__reader(struct server *s, struct ty_err *err);
/* The config mutex HTTP threads hold while they check and write configuration. */
pthread_mutex_t *server__config_lock(struct server *s);
/* The connection configuration is written through; only with the config lock held. */
struct store *server__config_store(struct server *s);
const char *server__data_dir(const struct server *s);
int64_t server__started_ms(const struct server *s);
/* The data directory's API token (the bootstrap token "default"); never log it. */
const char *server__token(const struct server *s);

/* ---- loop-side pieces (loop thread only) --------------------------------------------- */

/* Queue a history/alert write for the store thread (copied; never blocks). */
void server__store_run(struct server *s, const struct store_run *r);
void server__store_skip(struct server *s, const struct store_skip *k);
void server__store_alert(struct server *s, const struct store_alert *a);
void server__store_clear(struct server *s, const char *key);

/* runner.c */
void runner_on_fire(struct server *s, const struct sched_fire *f);
int runner_run_now(struct server *s, struct sjob *j, const json_t *shards, json_t **reply,
                   struct ty_err *err);
int runner_cancel(struct server *s, const char *run_id, json_t **reply, struct ty_err *err);
void runner_recover(struct server *s, json_t *unfinished);
void runner_shutdown(struct server *s, uint32_t grace_s, void (*done)(struct server *));
json_t *runner_executors(struct server *s);
uint32_t runner_running(struct server *s);
uint32_t runner_queued(struct server *s);

/* jobs.c: the job table */
struct sjob *jobs_find(struct server *s, const char *name);
struct sjob *jobs_by_id(struct server *s, uint32_t id);
/* Define, change (json) or remove (json NULL) a job.  secrets: its secret values
 * ({"NAME": "value"}); NULL keeps the values the loop holds for the names it has. */
int jobs_apply(struct server *s, const char *name, const char *json, int64_t version,
               const json_t *secrets, struct ty_err *err);
const struct calendar *jobs_calendar(struct server *s, const char *name);
int jobs_calendar_apply(struct server *s, const char *name, const char *json);
void jobs_release(struct server *s, struct sjob *j);
int64_t jobs_next_fire(struct server *s, const struct sjob *j);

/* alerts.c */
void alerts_job_failed(struct server *s, struct sjob *j, const struct srun *r, const char *reason);
void alerts_job_ok(struct server *s, struct sjob *j);
void alerts_misfire(struct server *s, struct sjob *j, const struct sched_fire *f);
void alerts_misfire_clear(struct server *s, struct sjob *j);
void alerts_timeout(struct server *s, struct srun *r, bool on);
void alerts_job_defined(struct server *s, struct sjob *j);
void alerts_job_removed(struct server *s, const char *name);
void alerts_resources(struct server *s);
void alerts_load(struct server *s, const json_t *open);
void alerts_recovered(struct server *s);

/* The loop's server, for callbacks that only get a handle. */
struct server *server__of_loop(uv_loop_t *loop);
uv_loop_t *server__loop(struct server *s);
const struct server_opts *server__opts(const struct server *s);
int64_t server__epoch(const struct server *s);
const char *server__boot_id(const struct server *s);

#endif
