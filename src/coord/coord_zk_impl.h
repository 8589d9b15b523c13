/*
 * coord_zk_impl.h - what coord_zk.c (session, election, membership, requests) and
 * coord_zk_place.c (placements: reading, planning, publishing) share.  Everything here
 * belongs to the loop's thread, except the fields marked `mu`.
 */
#ifndef COORD_ZK_IMPL_H
#define COORD_ZK_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../core/job.h"
#include "../core/strmap.h"
#include "../store/store.h"
#include "coord_zk.h"
#include "zkc.h"

/* An executor this server knows: registered now, or known from its placement. */
struct zexec {
    char id[COORD_ID_MAX];
    struct coord_member_info info; /* its registration, as last read */
    bool have_info;
    bool online;                      /* its registration node exists */
    int64_t session;                  /* the session that owns its registration */
    int64_t lost_ms;                  /* when it went (0: online, or never seen) */
    bool head_known;                  /* its placement head was read (or written by us) */
    int64_t gen;                      /* ... its generation */
    int32_t head_version;             /* ... the head node's version, for the leader's next write */
    struct coord_placement_head head; /* ... its parts: what this server has applied */
    bool dirty;                       /* leader: its placement must be published again */
    bool full;                        /* leader: ... as a new base (else a delta of `changed`) */
    struct strmap changed; /* leader: the jobs whose entry goes in the next delta (keys) */
    bool chunks_made;      /* leader: /chunks/<id> exists (made, or asked for) */
    bool waiting_ack;      /* leader: shards were taken from it; waiting for applied_gen >= gen */
    int64_t shards;        /* shards it holds (placements), for status */
    int64_t jobs_held;     /* leader: jobs it holds a shard of, as planned (its head's held) */
};

/* A job's placement inputs and where its shards are. */
struct zjob {
    int64_t version; /* of the definition (0: known only from a placement so far) */
    uint32_t shards;
    char *domain;
    enum job_strategy strategy;
    char **prefer; /* NULL-terminated executor ids and "key=value" labels, or NULL */
    size_t n_prefer;
    bool prefer_only;
    bool failover;   /* a run lost with its executor is made again elsewhere */
    int level;       /* the job's level, for its alerts */
    int32_t *owner;  /* [shards]: index into zk.execs, -1 none */
    int64_t *since;  /* [shards]: resume_after of the owner's placement, or for a shard with no
                        owner, the instant its next owner resumes after (0: from its grant) */
    int32_t *from;   /* [shards]: the executor a shard with no owner was taken from, -1 */
    int64_t *unsure; /* [shards]: fires up to it its lost previous owner may have started
                        (their records never reached the store); 0 none */
    uint32_t *local; /* LOCAL: the executors holding it */
    size_t n_local;
    bool dirty; /* its inputs changed since the last plan */
};

struct now_answer;

struct zk {
    struct coord base; /* first: a struct coord * is a struct zk * */
    uv_loop_t *loop;
    struct coord_zk_config cfg;
    char *cfg_strings;
    struct zkc *zk;
    bool connected, closing, loaded;
    int tree_made;
    char election_node[128];
    pthread_mutex_t mu;
    bool leader;                          /* mu */
    char leader_url[512];                 /* mu */
    char secret[COORD_ZK_SECRET_HEX + 1]; /* mu */
    struct {                              /* mu: a snapshot for other threads */
        bool connected;
        int64_t online, lost, jobs;
    } seen;
    int64_t seen_seq, my_ring_seq;
    struct zexec *execs;
    size_t n_execs, cap_execs;
    struct strmap jobs; /* name -> struct zjob */
    /* which jobs are this ensemble's when it is one of several (NULL: every job) */
    bool (*owns)(void *arg, const char *job, const char *domain);
    void *owns_arg;
    uv_async_t now_async;
    struct now_answer *now_head, *now_tail;
    uv_timer_t debounce;
    int handles;
    int inflight; /* ZooKeeper requests and pool work not yet called back */
    /* placement work (coord_zk_place.c) */
    bool publishing;         /* a publication (or a read it needs) is in flight */
    bool replan;             /* something changed meanwhile */
    int64_t first_change_ms; /* of the changes the debounce is gathering */
    json_t *failovers;       /* runs to make again once their shard's new owner has it:
                                [{"job", "base", "at", "shard", "attempt"}] */
    int64_t plans, moves;
    /* the leader's "cannot be highly available" reports: {job: reason} as reported (or found
     * open in the store when it began leading: ha_known) */
    json_t *not_ha;
    bool ha_known, ha_reading;
};

/*
 * ZooKeeper requests of this coordination: zkc's, with cb(arg, reply) called through a
 * trampoline that counts them, so the coordination is freed only once every callback has
 * come (zkc answers requests still in flight after zkc_close).  TY_E* as zkc's.
 */
int coord_zk__create(struct zk *z, const char *path, const void *data, int len, int flags,
                     zkc_cb cb, void *arg);
int coord_zk__set(struct zk *z, const char *path, const void *data, int len, int version, zkc_cb cb,
                  void *arg);
int coord_zk__delete(struct zk *z, const char *path, int version, zkc_cb cb, void *arg);
int coord_zk__get(struct zk *z, const char *path, zkc_watch_cb w, void *warg, zkc_cb cb, void *arg);
int coord_zk__exists(struct zk *z, const char *path, zkc_watch_cb w, void *warg, zkc_cb cb,
                     void *arg);
int coord_zk__children(struct zk *z, const char *path, zkc_watch_cb w, void *warg, zkc_cb cb,
                       void *arg);
int coord_zk__multi(struct zk *z, const struct zkc_op *ops, int n, zkc_cb cb, void *arg);

/* Pool work of this coordination (uv_queue_work) started and ended: counted likewise. */
void coord_zk__work_begin(struct zk *z);
void coord_zk__work_end(struct zk *z);

/* The executor with this id; made (offline, unknown) when make is set.  NULL when absent
 * (or out of memory, or not an id).  The pointer is valid until the next call that makes
 * one; indices are stable. */
struct zexec *coord_zk__exec(struct zk *z, const char *id, bool make);

/* The job named so, made (no inputs yet, one shard, no owner) when make is set: a
 * placement may name a job before the control plane has told us of it.  NULL when absent
 * or out of memory. */
struct zjob *coord_zk__job(struct zk *z, const char *name, bool make);

/* Size a job's per-shard arrays for n shards (new shards: no owner).  0 or TY_ENOMEM. */
int coord_zk__job_shards(struct zjob *j, uint32_t n);

/* Take job `name`'s shards from their owners (the job goes, or its shard count or strategy
 * changed): the owners' placements are published again without it. */
void coord_zk__job_unplace(struct zk *z, const char *name, struct zjob *j);

/* Free a job (a strmap value). */
void coord_zk__job_free(void *v);

/* Take the snapshot other threads read (coord_zk_info) after a change of state. */
void coord_zk__snapshot(struct zk *z);

/* Jobs or executors changed: the leader plans again after the debounce. */
void coord_zk__changed(struct zk *z);

/* Executor e's registration changed (its applied_gen, or it went): a publication waiting
 * for it may go on. */
void coord_zk__acked(struct zk *z, struct zexec *e);

/* Executor e's registration says it applied its placement: what it was given has settled
 * (coord_zk_place.c). */
void coord_zk__settled(struct zk *z, struct zexec *e);

/* Send the failover fires whose shard's new owner has applied its placement. */
void coord_zk__failovers(struct zk *z);

/* Read every executor's placement (and watch the heads): at session start. */
void coord_zk__read_placements(struct zk *z);

/* Add what the cluster knows of e (state, registration, shards held) to its status o;
 * live: o holds the executor's own answer.  e may be NULL. */
void coord_zk__status_fields(struct zk *z, const struct zexec *e, json_t *o, bool live);

#endif
