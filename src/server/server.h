/*
 * server.h - the control plane: configuration, versions, alerts, fan-in, assignment.
 *
 * It keeps the configuration and history in the store, tells executors what to run
 * through a coord (and never runs anything itself), and learns what they did only through
 * their result sink (server_ingest).  Its own loop thread (server_run) answers the coord
 * and keeps time; a writer thread owns the store's write connection, the open alerts and
 * the live state of runs.  The API calls the functions below from its connection threads:
 * reads go to the store and to in-memory state under short locks, and nothing here ever
 * waits for an executor's loop to read or change configuration.
 *
 * Errors: 0 or a negative TY_E* code with a message in err naming the field, as usual;
 * TY_ENOSPC when the disk is full (nothing changed), TY_EUNAVAIL while stopping.
 */
#ifndef SERVER_H
#define SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../coord/coord.h"
#include "../core/job.h"
#include "../core/ty_err.h"
#include "../store/store.h"

struct server_config {
    const char *data_dir;    /* for messages and the disk check */
    const char *db;          /* the store: a SQLite file, or a postgresql:// URL (store_open;
                                created and migrated when needed) */
    const char *token;       /* the bootstrap API token ("default"); borrowed */
    uint32_t shutdown_grace; /* seconds a stop lets running shards finish */
    uint32_t retention_days; /* history kept */
    uint32_t retention_runs; /* newest runs kept per job */
    /* The wall clock, ns; NULL: clock_wall_ns (os/clock.h: test builds shift it). */
    int64_t (*now_ns)(void *arg);
    void *now_arg;
    /* A cluster server: executors are other processes (reached through the coord), so a
     * stop has none to wait for, and their results come in through the API. */
    bool cluster;
    /* Called on the loop once the executors have their jobs: start serving now. */
    void (*on_ready)(void *arg);
    /* Called on the loop at SIGTERM/SIGINT: stop the executors (grace_s for their runs)
     * and call server_executors_stopped when they have. */
    void (*stop_executors)(void *arg, uint32_t grace_s);
    void *hook_arg;
};

struct server;

/*
 * Open the control plane: its loop (not running yet), the store (migrated if needed; the
 * fencing epoch bumped), the open alerts.  The caller owns *out (server_close).
 * TY_EIO / TY_EFORMAT / TY_ENOSPC from the store, with its message.
 */
int server_open(const struct server_config *cfg, struct server **out, struct ty_err *err);

/* Its loop, for a coord whose answers must come here (coord_local_new). */
uv_loop_t *server_loop(struct server *s);

/*
 * The store side of every executor's result sink: write results[0..n) to the store in one
 * transaction (idempotently: a result already there changes nothing), then learn from them
 * (alerts, live state, fan-in).  Blocks until written; any thread but the loop's.  0, or
 * the store's error (the caller keeps the results and offers them again).
 */
int server_ingest(void *server, const struct coord_result *const *results, size_t n,
                  struct ty_err *err);

/*
 * Start: the writer thread, then the configuration to the executors through c (calendars,
 * then every job as an assignment, the last batch marked complete), streamed from the
 * store by a loader thread while the loop runs.  on_ready is called when they have taken
 * it.  Called on the loop's thread before server_run.  TY_EIO (a thread cannot start).
 */
int server_start(struct server *s, struct coord *c, struct ty_err *err);

/* Run the loop until a stop (SIGTERM/SIGINT or server_stop) has finished.  Returns the
 * process exit status (0 after a clean stop). */
int server_run(struct server *s);

/* Ask for a stop, as SIGTERM would (any thread). */
void server_stop(struct server *s);

/* An executor's status changed (any thread): the control plane looks at it again soon
 * (resource alerts: overload, the spool). */
void server_executors_changed(struct server *s);

/* The executors have stopped (any thread): the loop may end. */
void server_executors_stopped(struct server *s);

/* Stop the writer, close the store and free everything (after server_run). */
void server_close(struct server *s);

/* ---- for the API (any thread) ------------------------------------------------------ */

/* A secret cluster members (executors, other servers) show as bearer (cluster mode;
 * copied; one per ensemble, up to SERVER_PEERS_MAX).  Until one is set no bearer is one. */
void server_set_peer_secret(struct server *s, const char *secret);

/* What this server is: "embedded", or in a cluster "leader" / "standby" (set by whoever
 * runs the election).  The string is static. */
void server_set_leader(struct server *s, bool leader);
const char *server_role(struct server *s);

/*
 * Runs an executor had going when it was lost (a cluster's executor whose session
 * expired): runs is a JSON array of run objects as the store gives them, each with
 * "failover": true when it will be made again elsewhere.  Each is recorded `lost` (ended
 * now, the error naming the executor) through the same path as every result, so alerts and
 * live state follow.  Any thread but the loop's; blocks until written.  0 or the store's
 * error.
 */
int server_record_lost(struct server *s, const json_t *runs, const char *executor,
                       struct ty_err *err);

/* A cluster's job cannot be highly available (reason: why, a sentence) or can again (reason
 * NULL), as the leader's placement found: its not_ha alert is raised, updated or cleared.
 * On the server's loop (the coordination's callbacks run there). */
void server_not_ha(struct server *s, const char *job, const char *domain, int level,
                   const char *reason);

/* A cluster server's view of its ZooKeeper ensemble(s): info(arg) answers an array, one
 * object per ensemble (a new reference; any thread).  Set once, before serving.  server_clusters:
 * {"items": [...]}
 * ([] for the embedded server); a new reference. */
void server_set_clusters(struct server *s, json_t *(*info)(void *arg), void *arg);
json_t *server_clusters(struct server *s);

/* Is bearer[0..len) the peer secret?  Constant time in len. */
bool server_is_peer(struct server *s, const char *bearer, size_t len);

/* A store connection for reading, this thread's own (opened on first use; freed when the
 * thread ends).  NULL with err when it cannot be opened. */
struct store *server_reader(struct server *s, struct ty_err *err);

/* This thread is done with its reader for now (the end of a request): it goes back to the
 * pool, and the next server_reader on any thread may take it. */
void server_reader_release(struct server *s);

/* The connection configuration is written through, with the lock that serialises writes
 * of configuration held; server_config_unlock releases it. */
struct store *server_config_lock(struct server *s);
void server_config_unlock(struct server *s);

int64_t server_now(const struct server *s);
int64_t server_now_ms(const struct server *s);
int64_t server_started_ms(const struct server *s);
const char *server_data_dir(const struct server *s);
const char *server_token(const struct server *s);

/*
 * Save job j (validated by job_from_json) as a new version: checks what needs more than
 * the job itself (its zone and calendars exist, its domain's limits hold along the chain
 * to the root, an enabled schedule fires at all), keeps stored secret values sent back as
 * the mask, writes definition and secrets in one transaction, and tells the executors.
 * base: -1 create (TY_EEXIST when it exists), 0 whatever version is current (it must
 * exist), n only if the current version is n (TY_ECONFLICT).  *text gets the canonical
 * JSON saved (malloc'd) and *version its version.  who is recorded.
 */
int server_job_save(struct server *s, struct job *j, int64_t base, const char *who, char **text,
                    int64_t *version, struct ty_err *err);

/* Delete a job (and its secrets); base as above.  TY_ENOENT, TY_ECONFLICT, TY_ENOSPC. */
int server_job_delete(struct server *s, const char *name, int64_t base, const char *who,
                      struct ty_err *err);

/* One change of a batch (server_jobs_save_batch): what the single request would do. */
enum server_batch_op {
    SERVER_BATCH_CREATE = 1, /* as server_job_save with base -1 (POST /jobs) */
    SERVER_BATCH_REPLACE,    /* as PUT /jobs/{name}: the job must exist; base 0 or its version */
    SERVER_BATCH_DELETE,     /* as server_job_delete */
};

struct server_batch_item {
    enum server_batch_op op;
    struct job job;              /* CREATE, REPLACE: validated by job_from_json; the call may
                                    move it out (leaving it empty): job_free it after */
    char name[JOB_NAME_MAX + 1]; /* the job (DELETE: the only way to name it) */
    int64_t base;                /* REPLACE, DELETE: the version it must be at; 0: any */
    int rc;                      /* in: not 0 = refused by the caller, left alone;
                                    out: 0 or why this change was refused */
    struct ty_err err;           /* out: the refusal, in the words of the single request */
    int64_t version;             /* out: the version saved (0 for a delete) */
};

/*
 * Make many job changes at once: items[0..n) in order, each checked as server_job_save and
 * server_job_delete check one (so each sees the changes before it: a domain's limit counts
 * the jobs the batch created), all in one store transaction under the config lock, then
 * one message to the loop and one assignment request for all of them.  A refusal (the
 * 4xx of the single request: TY_EINVAL, TY_EEXIST, TY_ENOENT, TY_ECONFLICT) is the item's
 * own, in items[i].rc and .err, and the others are still made.  A failure of the store
 * (TY_ENOSPC, TY_EIO, TY_EBUSY, TY_ENOMEM) is returned with err and nothing of the batch
 * is changed.  who is recorded for every change.
 */
int server_jobs_save_batch(struct server *s, struct server_batch_item *items, size_t n,
                           const char *who, struct ty_err *err);

/*
 * Save a domain or calendar given as canonical JSON text (base as for jobs; create when
 * base is -1).  Executors learn a calendar's change.  TY_EEXIST, TY_ENOENT, TY_ECONFLICT,
 * TY_ENOSPC.
 */
int server_obj_save(struct server *s, enum store_kind kind, const char *name, const char *text,
                    int64_t base, const char *who, int64_t *version, struct ty_err *err);

/* Delete a domain or calendar: refused (TY_EBUSY, naming a job) while a job lies in the
 * domain's subtree or names the calendar. */
int server_obj_delete(struct server *s, enum store_kind kind, const char *name, int64_t base,
                      const char *who, struct ty_err *err);

/* The same state as JSON text appended to out, from the job's stored JSON text[0..len)
 * read without building JSON values (a page of a thousand jobs). */
void server_job_state_text(struct server *s, const char *name, const char *text, size_t len,
                           struct strbuf *out);

/* A job's live state: {"next_fire": RFC 3339 | null, "running": n, "waiting": n}, from
 * its stored definition (the JSON object; borrowed) and what its runs reported.  Cheap:
 * no store access, no executor asked.  New reference. */
json_t *server_job_state(struct server *s, const char *name, const json_t *definition);

/*
 * Run a job now: all shards (shards NULL) or the listed ones (a JSON array of shard
 * numbers, checked against the job).  *reply: {"fire_id", "runs": [{"run_id", "shard"}],
 * "skipped": [{"shard", "reason"}]}, answered once the store has the runs (read your
 * writes).  TY_ENOENT (no such job), TY_EINVAL (shards), TY_EUNAVAIL (no answer in 30 s).
 */
int server_run_now(struct server *s, const char *name, const json_t *shards, json_t **reply,
                   struct ty_err *err);

/* Cancel a run: *reply {"run_id", "status": "canceling" | "canceled"}.  TY_ENOENT. */
int server_cancel(struct server *s, const char *run_id, json_t **reply, struct ty_err *err);

/*
 * Read a run's output from its executor: up to cap bytes from logical offset `offset`
 * into buf; *len bytes read, *from the offset of the first (later than offset when the
 * cap dropped bytes), *total the file's logical size.  TY_ENOENT when the file is gone.
 */
int server_read_output(struct server *s, const char *run_id, uint64_t offset, char *buf, size_t cap,
                       size_t *len, uint64_t *from, uint64_t *total, struct ty_err *err);

/* The executors and their figures: {"items": [...]}. */
int server_executors(struct server *s, json_t **out, struct ty_err *err);

/* Resource rows the store cannot hold (the store failing is one), for the alert
 * dashboard: an array of {"resource", "reason", "since_ms"}.  New reference. */
json_t *server_live_resources(struct server *s);

/* Test builds: shift the wall clock by offset_s (executors follow). */
int server_set_clock(struct server *s, int64_t offset_s, json_t **reply, struct ty_err *err);

#endif
