/*
 * coord.h - how the control plane and the executors talk: the coordination interface.
 *
 * The control plane (src/server) decides what runs where; executors (src/executor) fire,
 * run and report.  They never call each other: the control plane holds a `struct coord`
 * and sends requests through it (assign a job's shards, fire now, cancel a run, read a
 * run's output, list executors); an executor offers a `struct coord_member` that takes
 * those requests.  Two implementations join them: coord_local (one process, the embedded
 * server) and, next, ZooKeeper (a cluster).  Results never travel this way: an executor
 * reports every state change through its result sink (a spool, then the store), and the
 * control plane learns them from there (struct coord_result is that record).
 *
 * Every request can fail and says so, and every answer comes back asynchronously on the
 * caller's loop (the uv_loop_t given when the coord was made), even when it was known at
 * once: callers never have two code paths.  A request that cannot even be sent fails at
 * once with a negative TY_E* code and no callback.
 */
#ifndef COORD_H
#define COORD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../core/strbuf.h"
#include "../core/ty_err.h"
#include "../store/store.h"

#define COORD_ID_MAX 64 /* executor ids: [A-Za-z0-9._-], NUL included */

/* True when id is an executor id: 1..COORD_ID_MAX-1 bytes of [A-Za-z0-9._-]. */
bool coord_id_ok(const char *id);

/* ---------------------------------------------------------------------------------------
 * Results: what an executor reports, in the order it happened.
 */

enum coord_result_kind {
    COORD_RESULT_RUN = 1, /* a run was queued, started or ended (run) */
    COORD_RESULT_SKIP,    /* a fire (or one shard of it) did not run (skip) */
    COORD_RESULT_ALARM,   /* a run passed its timeout alarm, or the alarm ended (run) */
};

/* Where a run stands, as the executor sees it. */
enum coord_phase {
    COORD_PHASE_WAITING = 1, /* behind the previous run of its shard (overlap: queue) */
    COORD_PHASE_QUEUED,      /* waiting for capacity (or a retry for its backoff) */
    COORD_PHASE_RUNNING,
    COORD_PHASE_ENDED,
    COORD_PHASE_PLANNED, /* a retry waiting for its backoff */
};

/*
 * One result.  The store keeps `run` / `skip` as history; the other fields are facts the
 * control plane needs beyond the history row (fan-in, alerts, live state), carried with it
 * so it never has to ask.  Strings are borrowed from whoever made the struct.
 */
struct coord_result {
    enum coord_result_kind kind;
    uint64_t seq;           /* the executor's sequence number: 1, 2, ... in order produced */
    const char *executor;   /* which executor produced it (for a run, also run.executor) */
    struct store_run run;   /* RUN; ALARM uses its identity fields and started_at_ms */
    struct store_skip skip; /* SKIP */
    enum coord_phase phase; /* RUN */
    bool settled;           /* RUN ended or SKIP: this shard of this fire has no attempt to come */
    bool downstream;        /* the job has downstream jobs, so the fire's shards are counted */
    uint32_t fire_shards;   /* shards the fire was made with */
    int job_level;
    bool alarm_on;       /* ALARM: raised (true) or ended (false) */
    uint32_t alarm_s;    /* ALARM: the job's timeout_alarm */
    bool output_dropped; /* RUN: output text not kept (the spool was past its limit) */
};

/*
 * The wire and spool form of a result: a JSON object ("k": "run" | "skip" | "alarm" and
 * short keys; see internals/spool.md).  coord_result_to_json gives a new reference (NULL:
 * no memory).  coord_result_from_json fills *r with pointers into `o` (valid while o
 * lives; an output that is not UTF-8 travels as base64 and is decoded into `scratch`, which
 * must then outlive *r too) and checks every field: TY_EFORMAT naming the field ("run.status:
 * unknown status
 * \"x\"") for anything malformed, so data written by someone else cannot crash a reader.
 */
json_t *coord_result_to_json(const struct coord_result *r);
int coord_result_from_json(const json_t *o, struct coord_result *r, struct strbuf *scratch,
                           struct ty_err *err);

/* ---------------------------------------------------------------------------------------
 * Requests
 */

/* A job's shards given to an executor (or taken away: definition NULL). */
struct coord_assignment {
    char *job;        /* the job's name */
    char *definition; /* its canonical JSON (secrets masked); NULL: unassigned */
    int64_t version;  /* store version of the definition */
    json_t *secrets;  /* {"NAME": "value"} for its secret_env, or NULL: keep those held */
    uint32_t *shards; /* the shards it now owns, ascending; NULL: all of them */
    uint32_t n_shards;
    int64_t epoch;        /* fencing epoch of this assignment; its runs carry it */
    int64_t since;        /* instant (s) from which the shards are its */
    int64_t resume_after; /* the job's last fire made, per the store (s); 0: none known */
    char *from;           /* cluster: the executor these shards came from when it died or left, for
                             the records of fires it could not make (skip reasons name it); NULL */
    int64_t uncertain_until; /* cluster: fires of these shards at or before it (and after
                                resume_after) may have been started by `from` before it died,
                                unknown to the store: recorded skipped, never made again; 0 */
};

/* Fire a job now (run now, or a downstream fire). */
struct coord_fire {
    char *job;
    char *base;                 /* the fire id without "#shard"; NULL: "run now", made here */
    int64_t at;                 /* scheduled instant (s); 0: now */
    enum store_trigger trigger; /* STORE_TRIGGER_MANUAL, _DOWNSTREAM, or _FAILOVER (a run
                                   lost with its executor, made again: base and at are the
                                   lost run's, attempt its next) */
    uint32_t *shards;           /* NULL: all */
    uint32_t n_shards;
    uint32_t attempt; /* the runs' attempt; 0: 1 */
};

enum coord_req_kind {
    COORD_ASSIGN = 1, /* assign[0..n_assign) -> json {"failed": [{"job","error"}],
                         "through": W (every fire at or before W of a shard this request took
                         away was made or recorded by the executor, none after W is; the new
                         owner resumes after W), "fenced": true (only while it is fenced)} */
    COORD_CALENDAR,   /* name, definition (NULL: removed) -> no json */
    COORD_FIRE,       /* fire -> json {"fire_id","runs":[{"run_id","shard"}],"skipped":[...]}
                         ({"shard","reason"}; "not_owned", with "detail", for another's) */
    COORD_CANCEL,     /* name = run id -> json {"run_id","status"} */
    COORD_OUTPUT,     /* name = run id, offset, max -> data, from, total (or TY_ENOENT) */
    COORD_STATUS,     /* -> json: the executor's status object (see docs/api.md, executors) */
    COORD_KICK,       /* the clock was shifted (test builds): re-read it */
};

/*
 * The answer to a request.  rc 0 or a TY_E* code with err; json / data as the kind says.
 * spool_seq: the results the executor had produced when it answered (the last seq), so
 * the caller can wait until the store has that executor's results up to it before saying
 * "done" (read your writes).
 */
struct coord_reply {
    int rc;
    struct ty_err err;
    json_t *json;
    char *data; /* COORD_OUTPUT */
    size_t len;
    uint64_t from, total;
    uint64_t spool_seq;
    char executor[COORD_ID_MAX]; /* who answered (set by the coord) */
};

/*
 * One request in flight.  Made and owned by the coord implementation: the member answers
 * by filling `reply` and calling done(req), on any thread, exactly once.
 */
struct coord_request {
    enum coord_req_kind kind;
    struct coord_assignment *assign;
    size_t n_assign;
    struct coord_fire fire;
    char *name;       /* CALENDAR: its name; CANCEL/OUTPUT: the run id */
    char *definition; /* CALENDAR */
    int64_t epoch;    /* ASSIGN: the assigning control plane's fencing epoch */
    bool complete;    /* ASSIGN: the last of a full set: jobs held but not assigned since the
                         previous full set are dropped, and the executor may now reconcile
                         the runs a previous process left (it knows their jobs) */
    uint64_t offset;  /* OUTPUT */
    size_t max;       /* OUTPUT: bytes at most */
    struct coord_reply reply;
    void (*done)(struct coord_request *req);
    void *impl;                 /* the implementation's */
    struct coord_request *next; /* free for whoever holds the request to queue it */
};

/*
 * What an executor offers: submit takes a request and answers it later (or at once) by
 * calling req->done.  It returns 0, or a TY_E* code when it cannot take the request at all
 * (then done is not called).  It may be called from any thread.
 */
struct coord_member {
    char id[COORD_ID_MAX];
    int (*submit)(void *arg, struct coord_request *req);
    void *arg;
};

/* ---------------------------------------------------------------------------------------
 * The control plane's handle
 */

/* How an answer reaches the caller: on its loop; reply is valid during the call only (its
 * json may be taken: set reply->json to NULL after stealing it). */
typedef void (*coord_cb)(void *arg, struct coord_reply *reply);

struct coord;

struct coord_ops {
    void (*close)(struct coord *c);
    int (*send)(struct coord *c, const char *executor, struct coord_request *req, coord_cb cb,
                void *arg);
};

struct coord {
    const struct coord_ops *ops;
};

/*
 * The in-process coordination of the embedded server: one executor, `member`, in this
 * process; answers come back on `loop` (the control plane's).  Call coord_local_new on the
 * loop's thread; the caller owns *out (coord_close, on the loop's thread, after every
 * answer has come: it closes a handle of `loop`).  TY_ENOMEM.
 */
int coord_local_new(uv_loop_t *loop, const struct coord_member *member, struct coord **out,
                    struct ty_err *err);

/* Make an empty request of `kind` (zeroed; free it with coord_request_free unless it was
 * handed to coord_send).  NULL when out of memory. */
struct coord_request *coord_request_new(enum coord_req_kind kind);

/* Free a request and everything it owns (inputs and reply). */
void coord_request_free(struct coord_request *req);

/* Free the contents of an assignment (not the struct itself). */
void coord_assignment_clear(struct coord_assignment *a);

/*
 * Send `req` to `executor` ("" or NULL: the one there is / every one): the coord owns req
 * from here on, whatever happens.  cb(arg, reply) is called on the caller's loop once,
 * with the answer or with an error (TY_EUNAVAIL when the executor is gone or stopping).
 * Returns 0, or a TY_E* code when the request could not be sent (no callback then).
 */
static inline int coord_send(struct coord *c, const char *executor, struct coord_request *req,
                             coord_cb cb, void *arg)
{
    return c->ops->send(c, executor, req, cb, arg);
}

static inline void coord_close(struct coord *c)
{
    if (c != NULL)
        c->ops->close(c);
}

#endif
