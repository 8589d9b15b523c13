/*
 * coord_wire.h - what the cluster's parts say to each other, as bytes.
 *
 * Three kinds of message cross process boundaries in a cluster, and each is read by a
 * process that did not write it (another version, another host, or someone else's data in
 * ZooKeeper), so every reader here checks presence, type and range of every field and a
 * refusal names the field ("assign.3.shards.1: not a shard number"), never crashes and
 * never leaves half a value behind:
 *
 *   - requests and replies between a server and an executor (HTTP bodies): the JSON form
 *     of struct coord_request / struct coord_reply;
 *   - an executor's registration (its ephemeral znode): struct coord_member_info;
 *   - a placement: the shards of jobs an executor owns, as the leader publishes them in
 *     ZooKeeper, cut into chunks that each fit a znode (struct coord_placement).
 *
 * Layout and cost of the znodes: docs/internals/zookeeper.md.
 */
#ifndef COORD_WIRE_H
#define COORD_WIRE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/strbuf.h"
#include "../core/ty_err.h"
#include "coord.h"

#define COORD_WIRE_VERSION 1 /* "v" of every message; a reader refuses a newer one by name */

/* ---------------------------------------------------------------------------------------
 * Requests and replies (server -> executor)
 */

/* The JSON form of a request (every kind; its inputs, not its reply).  New reference, NULL
 * when out of memory. */
json_t *coord_request_to_json(const struct coord_request *req);

/*
 * A request from its JSON form: a new request (coord_request_free it) in *out.  TY_EFORMAT
 * naming the field for anything malformed (an unknown kind, a shard out of range, a job
 * name that is not one, a secret that is not a string ...), TY_ENOMEM; *out NULL then.
 */
int coord_request_from_json(const json_t *o, struct coord_request **out, struct ty_err *err);

/* The JSON form of a reply (rc and err as the API's error body: "error": {"code",
 * "message", "field"}; json, output data as UTF-8 or base64, spool_seq, executor).  New
 * reference, NULL when out of memory. */
json_t *coord_reply_to_json(const struct coord_reply *r);

/*
 * A reply from its JSON form into *out (zeroed first; out->json a new reference and
 * out->data malloc'd, both freed by coord_request_free when *out is a request's reply, or
 * by the caller).  TY_EFORMAT naming the field, TY_ENOMEM.
 */
int coord_reply_from_json(const json_t *o, struct coord_reply *out, struct ty_err *err);

/* ---------------------------------------------------------------------------------------
 * An executor's registration
 */

#define COORD_LABELS_MAX  32
#define COORD_DOMAINS_MAX 64

struct coord_label {
    char *key, *value;
};

struct coord_member_info {
    char id[COORD_ID_MAX];
    char *host;    /* its host name */
    char *url;     /* where servers reach it: "http://127.0.0.1:40123" */
    char *version; /* TETHYS_VERSION */
    int64_t pid;
    struct coord_label *labels; /* [n_labels], keys unique */
    size_t n_labels;
    char **domains; /* [n_domains] domain subtrees it serves; none: every domain */
    size_t n_domains;
    uint32_t capacity;       /* runs at once */
    uint32_t running;        /* runs going now */
    double cpu;              /* share of one CPU used by it and its runs, last interval */
    int64_t mem_bytes;       /* resident memory of it and its runs */
    double load1;            /* the host's one-minute load average */
    int64_t clock_offset_ms; /* its wall clock minus the reader's, measured by whoever asked;
                                0 in the registration itself */
    int64_t started_ms;      /* when it started (wall clock) */
    int64_t updated_ms;      /* when this record was written */
    int64_t applied_gen;     /* the placement generation it has applied (0: none yet) */
    int64_t through;         /* fires of shards it gave up were made up to this instant (s) */
    bool fenced;             /* it holds no lease and starts nothing */
};

/* New reference; NULL when out of memory. */
json_t *coord_member_info_to_json(const struct coord_member_info *m);

/* Fill *m (zeroed first; coord_member_info_clear it, also after a failure).  TY_EFORMAT
 * naming the field, TY_ENOMEM. */
int coord_member_info_from_json(const json_t *o, struct coord_member_info *m, struct ty_err *err);
void coord_member_info_clear(struct coord_member_info *m);

/* Parse "k=v,k2=v2" (the --labels option) into m->labels, replacing them.  Keys and values:
 * [A-Za-z0-9._-], 1-63 bytes; keys unique.  TY_EINVAL naming "labels" and the entry. */
int coord_labels_parse(const char *text, struct coord_member_info *m, struct ty_err *err);

/* ---------------------------------------------------------------------------------------
 * Placements (leader -> executor, through ZooKeeper)
 */

/* The shards of one job an executor owns. */
struct coord_placement {
    char *job;
    int64_t version;  /* the job definition's store version the placement was made for */
    uint32_t *shards; /* ascending, unique; NULL with n_shards 0: every shard */
    uint32_t n_shards;
    uint32_t job_shards;  /* the job's shard count */
    int64_t resume_after; /* fires after this instant (s) are this executor's to make; 0: from
                             now (the job is new, or nothing is owed) */
    char *from;           /* the executor the shards came from when it died or left (skip
                             reasons name it); NULL */
    int64_t uncertain;    /* fires at or before it that `from` may have started (0: none) */
    bool drop; /* in a delta part: the executor holds none of the job's shards any more (only
                  `job` is set) */
};

void coord_placement_clear(struct coord_placement *p);

/*
 * The head of an executor's placement: which generation, and the parts that make it.  The
 * executor watches only this node; chunks are immutable nodes named by the generation that
 * wrote them.  A placement is a log: the first part is a base (every job the executor
 * holds), each later one a delta written by a later generation (an entry replaces the
 * job's earlier one; a `drop` entry removes it).  So a change of a few jobs writes a few
 * entries, not the whole placement, and a reader that applied a prefix of the parts reads
 * only the rest.  The leader compacts (writes a new base) when the deltas outgrow the base
 * or their count reaches COORD_PARTS_MAX, so the log stays at most about twice its live
 * size and a change costs O(1) entries amortised.
 */
#define COORD_PARTS_MAX 16

struct coord_placement_part {
    int64_t gen;     /* its chunk nodes are "<gen>-<i>", i < chunks */
    uint32_t chunks; /* 1 or more (an empty base is one empty chunk) */
    int64_t bytes;   /* of its chunks together: what compaction weighs */
};

struct coord_placement_head {
    int64_t gen;               /* increasing per executor */
    uint32_t chunks;           /* chunk nodes of every part together */
    int64_t jobs;              /* entries in every part together */
    int64_t held;              /* jobs the executor holds once every part is applied (-1:
                                  not said, as in heads written before deltas) */
    char leader[COORD_ID_MAX]; /* the server that published it */
    int64_t at_ms;
    int64_t session; /* the executor's ZooKeeper session it was made for: an executor
                        applies only a head made for its own session, so a process that
                        comes back with a new session waits for the leader to have seen it */
    struct coord_placement_part parts[COORD_PARTS_MAX]; /* the base first; at least one */
    uint32_t n_parts;
};

/* "{...}" text into out (NUL-terminated).  TY_ENOMEM. */
int coord_placement_head_encode(const struct coord_placement_head *h, struct strbuf *out);
/* From data[0..len).  TY_EFORMAT naming the field (also for parts whose generations do not
 * increase, or whose chunks do not add up to "chunks").  A head without "parts" (written
 * before placements had deltas) is one base part of "gen" and "chunks". */
int coord_placement_head_decode(const char *data, size_t len, struct coord_placement_head *h,
                                struct ty_err *err);

/* Whether head b's parts begin with every part of a (so a reader that applied a reads only
 * the rest of b). */
bool coord_placement_head_extends(const struct coord_placement_head *a,
                                  const struct coord_placement_head *b);

/*
 * Cut placements p[0..n) into chunks of at most max_bytes each (a placement is never
 * split; one that alone exceeds max_bytes is TY_EINVAL naming the job).  *chunks gets a
 * malloc'd array of *n_chunks strbufs (free each with sb_free, then the array); at least
 * one chunk, empty when n is 0.  A drop entry is {"j": name, "d": 1}.  TY_ENOMEM.
 */
int coord_placements_encode(const struct coord_placement *p, size_t n, size_t max_bytes,
                            struct strbuf **chunks, size_t *n_chunks, struct ty_err *err);

/*
 * Read one chunk: for each well-formed placement, cb(arg, p) (p and its strings valid
 * during the call); a placement that fails validation is reported through bad(arg, index,
 * err) and skipped, and the others are still read.  Returns 0, TY_EFORMAT (with err) when
 * the chunk as a whole is not one (not JSON, wrong version, no "jobs" array) and nothing
 * was called, or the first non-zero value cb returned.
 */
int coord_placements_decode(const char *data, size_t len,
                            int (*cb)(void *arg, const struct coord_placement *p),
                            void (*bad)(void *arg, size_t index, const struct ty_err *err),
                            void *arg, struct ty_err *err);

#endif
