/*
 * coord_zk.c - the servers' side of the cluster: election, membership, placements, and
 * requests to executors over HTTP.
 *
 * Every server keeps, from ZooKeeper, who the servers are (the lowest sequential node
 * under /servers leads), which executors are registered (their ephemeral nodes), and
 * where every job's shards are (each executor's placement head and chunks, watched), so
 * any server can send "run now" to the owners of a job's shards, a cancel to a run's
 * executor, or list the executors.  Every server also keeps the jobs' placement inputs
 * (shard count, strategy, preferences, domain): from the assignments its control plane
 * sends (all jobs at start, then its own saves) and from the doorbell other servers ring
 * after theirs (/meta/changes: recent changes by name, read back from the store).
 *
 * The leader alone places and publishes (coord_zk_place.c): debounced after a change of
 * jobs or executors, it computes where every shard should be and moves what must move in
 * two steps, so no shard ever has two owners.  A shard leaving a live executor is first
 * taken from it; once that executor has acknowledged (its registration's applied_gen) it
 * reports until when it made that shard's fires ("through"), and the shard is given to its
 * new owner to resume after that instant.  A shard of an executor whose session is gone is
 * given at once, to resume after the last fire its old owner recorded in the store.
 * Heads are flipped with one multi() that also checks the leader's own election node, so
 * a leader that lost its session cannot publish.
 *
 * Requests to executors (run now, cancel, output, status) are blocking HTTP calls on
 * libuv's thread pool, answered on the loop; ZooKeeper callbacks arrive on the loop too
 * (zkc), so all the state here belongs to the loop's thread, except the few fields the
 * API's threads read under `mu` (leader, leader URL).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <zookeeper/zookeeper.h>

#include "../os/client.h"
#include "../os/file.h"
#include "../os/log.h"
#include "coord_zk_impl.h"

#define CHANGES_KEEP      200                  /* doorbell entries kept */
#define CHANGES_NAMES     1000                 /* names per entry (a batch's); more: "all" */
#define CHANGES_BYTES     ((size_t)256 * 1024) /* the doorbell's text at most: older entries go */
#define CALL_TIMEOUT_MS   20000                /* a request to an executor */
#define STATUS_TIMEOUT_MS 2000                 /* ... asking for its status */

/* ---------------------------------------------------------------------------------------
 * Small helpers
 */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int coord_zk_read_auth(const char *path, char *out, size_t cap, struct ty_err *err)
{
    int rc = file_read_line(path, out, cap, err);
    if (rc == TY_ENOENT)
        return ty_error(err, TY_ENOENT, "--zk-auth", -1, 0,
                        "--zk-auth: %s does not exist; it holds the ZooKeeper digest credential "
                        "(one line, user:password) every server and executor of the cluster "
                        "shares",
                        path);
    if (rc != 0)
        return rc;
    const char *colon = strchr(out, ':');
    if (colon == NULL || colon == out || colon[1] == '\0' || strlen(out) > 255)
        return ty_error(err, TY_EINVAL, "--zk-auth", -1, 0,
                        "--zk-auth: %s does not hold user:password on its first line", path);
    return 0;
}

int coord_zk_hosts(const char *hosts, char **out, struct ty_err *err)
{
    *out = NULL;
    if (hosts == NULL || hosts[0] == '\0')
        return ty_error(err, TY_EINVAL, "--zk", -1, 0,
                        "--zk: expected host:port[,host:port...][/chroot]");
    const char *slash = strchr(hosts, '/');
    size_t hl = slash ? (size_t)(slash - hosts) : strlen(hosts);
    /* each host:port */
    const char *p = hosts;
    while (p < hosts + hl) {
        const char *end = memchr(p, ',', (size_t)(hosts + hl - p));
        if (end == NULL)
            end = hosts + hl;
        const char *colon = NULL;
        for (const char *q = p; q < end; q++)
            if (*q == ':')
                colon = q;
        bool port_ok = colon != NULL && colon + 1 < end;
        for (const char *q = colon ? colon + 1 : end; q < end; q++)
            port_ok &= *q >= '0' && *q <= '9';
        if (!port_ok || colon == p)
            return ty_error(err, TY_EINVAL, "--zk", (int)(p - hosts), (int)(end - p),
                            "--zk: \"%.*s\" is not host:port", (int)(end - p), p);
        p = end + 1;
    }
    if (slash != NULL && (slash[1] == '\0' || slash[strlen(slash) - 1] == '/'))
        return ty_error(err, TY_EINVAL, "--zk", (int)hl, (int)strlen(slash),
                        "--zk: \"%s\" is not a chroot path (/name[/name...])", slash);
    struct strbuf sb;
    sb_init(&sb);
    sb_adds(&sb, hosts);
    if (slash == NULL)
        sb_adds(&sb, COORD_ZK_CHROOT);
    if (sb_failed(&sb)) {
        sb_free(&sb);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    *out = sb_detach(&sb);
    return 0;
}

struct zexec *coord_zk__exec(struct zk *z, const char *id, bool make)
{
    for (size_t i = 0; i < z->n_execs; i++)
        if (strcmp(z->execs[i].id, id) == 0)
            return &z->execs[i];
    if (!make || !coord_id_ok(id))
        return NULL;
    if (z->n_execs == z->cap_execs) {
        size_t cap = z->cap_execs ? 2 * z->cap_execs : 16;
        struct zexec *e = realloc(z->execs, cap * sizeof *e);
        if (e == NULL)
            return NULL;
        z->execs = e;
        z->cap_execs = cap;
    }
    struct zexec *e = &z->execs[z->n_execs++];
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", id);
    return e;
}

/* ---------------------------------------------------------------------------------------
 * Requests to ZooKeeper and pool work, counted (see coord_zk_impl.h)
 */

static void zk_free(struct zk *z);

/* Free z once it is closed and nothing will call back into it. */
static void maybe_free(struct zk *z)
{
    if (z->closing && z->handles == 0 && z->inflight == 0)
        zk_free(z);
}

struct zreq {
    struct zk *z;
    zkc_cb cb;
    void *arg;
};

static void tramp(void *p, const struct zkc_reply *r)
{
    struct zreq *q = p;
    struct zk *z = q->z;
    if (q->cb != NULL)
        q->cb(q->arg, r);
    free(q);
    z->inflight--;
    maybe_free(z);
}

static struct zreq *zreq(struct zk *z, zkc_cb cb, void *arg)
{
    if (z->zk == NULL)
        return NULL;
    struct zreq *q = malloc(sizeof *q);
    if (q != NULL) {
        q->z = z;
        q->cb = cb;
        q->arg = arg;
    }
    return q;
}

/* After a zkc call: count it, or free the trampoline of one that was not sent. */
static int sent(struct zk *z, struct zreq *q, int rc)
{
    if (rc == 0)
        z->inflight++;
    else
        free(q);
    return rc;
}

int coord_zk__create(struct zk *z, const char *path, const void *data, int len, int flags,
                     zkc_cb cb, void *arg)
{
    struct zreq *q = zreq(z, cb, arg);
    return q ? sent(z, q, zkc_create(z->zk, path, data, len, flags, tramp, q)) : TY_EUNAVAIL;
}

int coord_zk__set(struct zk *z, const char *path, const void *data, int len, int version, zkc_cb cb,
                  void *arg)
{
    struct zreq *q = zreq(z, cb, arg);
    return q ? sent(z, q, zkc_set(z->zk, path, data, len, version, tramp, q)) : TY_EUNAVAIL;
}

int coord_zk__delete(struct zk *z, const char *path, int version, zkc_cb cb, void *arg)
{
    struct zreq *q = zreq(z, cb, arg);
    return q ? sent(z, q, zkc_delete(z->zk, path, version, tramp, q)) : TY_EUNAVAIL;
}

int coord_zk__get(struct zk *z, const char *path, zkc_watch_cb w, void *warg, zkc_cb cb, void *arg)
{
    struct zreq *q = zreq(z, cb, arg);
    return q ? sent(z, q, zkc_get(z->zk, path, w, warg, tramp, q)) : TY_EUNAVAIL;
}

int coord_zk__exists(struct zk *z, const char *path, zkc_watch_cb w, void *warg, zkc_cb cb,
                     void *arg)
{
    struct zreq *q = zreq(z, cb, arg);
    return q ? sent(z, q, zkc_exists(z->zk, path, w, warg, tramp, q)) : TY_EUNAVAIL;
}

int coord_zk__children(struct zk *z, const char *path, zkc_watch_cb w, void *warg, zkc_cb cb,
                       void *arg)
{
    struct zreq *q = zreq(z, cb, arg);
    return q ? sent(z, q, zkc_children(z->zk, path, w, warg, tramp, q)) : TY_EUNAVAIL;
}

int coord_zk__multi(struct zk *z, const struct zkc_op *ops, int n, zkc_cb cb, void *arg)
{
    struct zreq *q = zreq(z, cb, arg);
    return q ? sent(z, q, zkc_multi(z->zk, ops, n, tramp, q)) : TY_EUNAVAIL;
}

void coord_zk__work_begin(struct zk *z)
{
    z->inflight++;
}

void coord_zk__work_end(struct zk *z)
{
    z->inflight--;
    maybe_free(z);
}

/* ---------------------------------------------------------------------------------------
 * Answers given at once (assignments, requests no executor can take), on the loop
 */

struct now_answer {
    struct coord_request *req;
    coord_cb cb;
    void *arg;
    struct now_answer *next;
};

static void on_now(uv_async_t *h)
{
    struct zk *z = h->data;
    struct now_answer *n = z->now_head;
    z->now_head = z->now_tail = NULL;
    while (n != NULL) {
        struct now_answer *next = n->next;
        n->cb(n->arg, &n->req->reply);
        coord_request_free(n->req);
        free(n);
        n = next;
    }
}

/* Answer req (its reply filled) on the loop's next turn: the coord contract. */
static void answer_later(struct zk *z, struct coord_request *req, coord_cb cb, void *arg)
{
    struct now_answer *n = malloc(sizeof *n);
    if (n == NULL) {
        cb(arg, &req->reply); /* out of memory: better now than never */
        coord_request_free(req);
        return;
    }
    n->req = req;
    n->cb = cb;
    n->arg = arg;
    n->next = NULL;
    if (z->now_tail != NULL)
        z->now_tail->next = n;
    else
        z->now_head = n;
    z->now_tail = n;
    uv_async_send(&z->now_async);
}

/* ---------------------------------------------------------------------------------------
 * Jobs: placement inputs
 */

void coord_zk__job_free(void *v)
{
    struct zjob *j = v;
    if (j == NULL)
        return;
    free(j->domain);
    for (size_t i = 0; i < j->n_prefer; i++)
        free(j->prefer[i]);
    free(j->prefer);
    free(j->owner);
    free(j->since);
    free(j->from);
    free(j->unsure);
    free(j->local);
    free(j);
}

/* Size a job's per-shard arrays for n shards (new shards: no owner).  0 or TY_ENOMEM. */
int coord_zk__job_shards(struct zjob *j, uint32_t n)
{
    uint32_t old = j->owner == NULL ? 0 : j->shards;
    if (n == old && j->owner != NULL)
        return 0;
    int32_t *owner = realloc(j->owner, n * sizeof *owner);
    if (owner != NULL)
        j->owner = owner;
    int64_t *since = realloc(j->since, n * sizeof *since);
    if (since != NULL)
        j->since = since;
    int32_t *from = realloc(j->from, n * sizeof *from);
    if (from != NULL)
        j->from = from;
    int64_t *unsure = realloc(j->unsure, n * sizeof *unsure);
    if (unsure != NULL)
        j->unsure = unsure;
    if (owner == NULL || since == NULL || from == NULL || unsure == NULL)
        return TY_ENOMEM;
    for (uint32_t s = old; s < n; s++) {
        j->owner[s] = -1;
        j->since[s] = 0;
        j->from[s] = -1;
        j->unsure[s] = 0;
    }
    j->shards = n;
    return 0;
}

struct zjob *coord_zk__job(struct zk *z, const char *name, bool make)
{
    struct zjob *j = strmap_get(&z->jobs, name);
    if (j != NULL || !make)
        return j;
    j = calloc(1, sizeof *j);
    if (j == NULL || coord_zk__job_shards(j, 1) != 0 || strmap_put(&z->jobs, name, j) != 0) {
        coord_zk__job_free(j);
        return NULL;
    }
    j->strategy = JOB_STRATEGY_EVEN;
    return j;
}

static void zjob_remove(struct zk *z, const char *name);

/* The placement inputs of a job from its definition (JSON text); a job whose domain lives
 * in another ensemble is removed instead (it has moved there). */
static int zjob_update(struct zk *z, const char *name, const char *text, int64_t version)
{
    json_t *o = json_loads(text, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        log_error("a job's definition is not JSON; it is not placed", "job=%s", name);
        return TY_EFORMAT;
    }
    const char *domain = json_string_value(json_object_get(o, "domain"));
    if (z->owns != NULL && !z->owns(z->owns_arg, name, domain ? domain : "")) {
        zjob_remove(z, name);
        json_decref(o);
        return 0;
    }
    struct zjob *j = coord_zk__job(z, name, true);
    if (j == NULL) {
        json_decref(o);
        return TY_ENOMEM;
    }
    json_int_t shards = json_integer_value(json_object_get(o, "shards"));
    if (shards < 1)
        shards = 1;
    const char *strategy = json_string_value(json_object_get(o, "strategy"));
    j->version = version;
    free(j->domain);
    j->domain = strdup(domain ? domain : "");
    enum job_strategy old_strategy = j->strategy;
    j->strategy = strategy != NULL && strcmp(strategy, "hash") == 0    ? JOB_STRATEGY_HASH
                  : strategy != NULL && strcmp(strategy, "local") == 0 ? JOB_STRATEGY_LOCAL
                                                                       : JOB_STRATEGY_EVEN;
    if (old_strategy != 0 && old_strategy != j->strategy)
        coord_zk__job_unplace(z, name, j); /* its placement takes another form */
    for (size_t i = 0; i < j->n_prefer; i++)
        free(j->prefer[i]);
    free(j->prefer);
    j->prefer = NULL;
    j->n_prefer = 0;
    json_t *pref = json_object_get(o, "prefer");
    if (json_is_array(pref) && json_array_size(pref) > 0) {
        j->prefer = calloc(json_array_size(pref) + 1, sizeof *j->prefer);
        size_t i;
        json_t *e;
        json_array_foreach(pref, i, e)
        {
            if (j->prefer != NULL && json_is_string(e) &&
                (j->prefer[j->n_prefer] = strdup(json_string_value(e))) != NULL)
                j->n_prefer++;
        }
    }
    j->prefer_only = json_is_true(json_object_get(o, "prefer_only"));
    j->failover = json_is_true(json_object_get(o, "failover"));
    j->level = (int)json_integer_value(json_object_get(o, "level"));
    if ((uint32_t)shards != j->shards)
        coord_zk__job_unplace(z, name, j);
    if (coord_zk__job_shards(j, (uint32_t)shards) != 0) {
        json_decref(o);
        return TY_ENOMEM;
    }
    j->dirty = true;
    json_decref(o);
    return 0;
}

static void zjob_remove(struct zk *z, const char *name)
{
    struct zjob *j = strmap_del(&z->jobs, name);
    if (j != NULL)
        coord_zk__job_unplace(z, name, j);
    coord_zk__job_free(j);
}

/* ---------------------------------------------------------------------------------------
 * The doorbell: recent configuration changes, by name
 */

static void on_rung(void *arg, const struct zkc_reply *r);

/* Ring: add names (a JSON array; NULL: "all") as the next entry, read-modify-write on the
 * node's version so two servers ringing at once both get in. */
struct ring {
    struct zk *z;
    json_t *names;
    const char *what; /* "jobs" or "calendars" */
    int tries;
};

static void ring_read(struct ring *rg);

static void on_ring_read(void *arg, const struct zkc_reply *r)
{
    struct ring *rg = arg;
    struct zk *z = rg->z;
    if (r->rc != ZOK && r->rc != ZNONODE) {
        if (r->rc != ZCLOSING)
            log_warn("cannot ring the configuration doorbell; other servers learn the change "
                     "at their next start",
                     "error=%s", zkc_strerror(r->rc));
        json_decref(rg->names);
        free(rg);
        return;
    }
    json_t *o = r->rc == ZOK && r->data ? json_loadb(r->data, (size_t)r->len, 0, NULL) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        o = json_pack("{s:i, s:I, s:[]}", "v", COORD_WIRE_VERSION, "seq", (json_int_t)0, "recent");
    }
    json_int_t seq = json_integer_value(json_object_get(o, "seq")) + 1;
    json_t *recent = json_object_get(o, "recent");
    if (!json_is_array(recent)) {
        recent = json_array();
        json_object_set_new(o, "recent", recent);
    }
    json_t *entry = json_pack("{s:I, s:s}", "s", seq, "by", z->cfg.id);
    if (rg->names == NULL || json_array_size(rg->names) > CHANGES_NAMES)
        json_object_set_new(entry, strcmp(rg->what, "jobs") == 0 ? "all" : "all_calendars",
                            json_true());
    else
        json_object_set(entry, rg->what, rg->names);
    json_array_append_new(recent, entry);
    while (json_array_size(recent) > CHANGES_KEEP)
        json_array_remove(recent, 0);
    json_object_set_new(o, "seq", json_integer(seq));
    char *text = json_dumps(o, JSON_COMPACT);
    /* a batch names up to a thousand jobs: the oldest entries give way to stay small (a
     * reader that finds a gap reads every job again, as when it missed entries) */
    while (text != NULL && strlen(text) > CHANGES_BYTES && json_array_size(recent) > 1) {
        free(text);
        json_array_remove(recent, 0);
        text = json_dumps(o, JSON_COMPACT);
    }
    json_decref(o);
    if (text == NULL) {
        json_decref(rg->names);
        free(rg);
        return;
    }
    z->my_ring_seq = seq;
    int rc = r->rc == ZNONODE
                 ? coord_zk__create(z, "/meta/changes", text, (int)strlen(text), 0, on_rung, rg)
                 : coord_zk__set(z, "/meta/changes", text, (int)strlen(text), r->stat.version,
                                 on_rung, rg);
    free(text);
    if (rc != 0) {
        json_decref(rg->names);
        free(rg);
    }
}

static void on_rung(void *arg, const struct zkc_reply *r)
{
    struct ring *rg = arg;
    if ((r->rc == ZBADVERSION || r->rc == ZNODEEXISTS) && rg->tries++ < 20) {
        ring_read(rg); /* someone rang at the same time: again on their version */
        return;
    }
    if (r->rc != ZOK && r->rc != ZCLOSING)
        log_warn("cannot ring the configuration doorbell", "error=%s", zkc_strerror(r->rc));
    json_decref(rg->names);
    free(rg);
}

static void ring_read(struct ring *rg)
{
    if (coord_zk__get(rg->z, "/meta/changes", NULL, NULL, on_ring_read, rg) != 0) {
        json_decref(rg->names);
        free(rg);
    }
}

/* Ring for the jobs (what "jobs") or calendars ("calendars") in names (taken). */
static void ring(struct zk *z, const char *what, json_t *names)
{
    struct ring *rg = calloc(1, sizeof *rg);
    if (rg == NULL || z->zk == NULL || !z->connected) {
        json_decref(names);
        free(rg);
        return;
    }
    rg->z = z;
    rg->what = what;
    rg->names = names;
    ring_read(rg);
}

/* What other servers changed: read those jobs back from the store (worker thread). */
struct reread {
    struct zk *z;
    json_t *names; /* NULL: every job */
    json_t *found; /* {name: [version, text]} */
    json_t *gone;  /* [name] */
    int rc;
    struct ty_err err;
    uv_work_t work;
};

static int scan_one(void *arg, const char *name, int64_t version, const char *json, size_t len)
{
    struct reread *rr = arg;
    json_object_set_new(rr->found, name, json_pack("[I, s#]", (json_int_t)version, json, len));
    return 0;
}

static void reread_work(uv_work_t *w)
{
    struct reread *rr = w->data;
    struct store *st = NULL;
    rr->found = json_object();
    rr->gone = json_array();
    rr->rc = store_open(rr->z->cfg.store, true, &st, &rr->err);
    if (rr->rc != 0)
        return;
    if (rr->names == NULL) {
        rr->rc = store_obj_scan(st, STORE_JOB, scan_one, rr, &rr->err);
    } else {
        size_t i;
        json_t *n;
        json_array_foreach(rr->names, i, n)
        {
            char *text = NULL;
            int64_t v = 0;
            const char *name = json_string_value(n);
            if (name == NULL)
                continue;
            int rc = store_obj_get(st, STORE_JOB, name, &text, &v, &rr->err);
            if (rc == 0)
                json_object_set_new(rr->found, name, json_pack("[I, s]", (json_int_t)v, text));
            else if (rc == TY_ENOENT)
                json_array_append(rr->gone, n);
            else
                rr->rc = rc;
            free(text);
        }
    }
    store_close(st);
}

static void reread_done(uv_work_t *w, int status)
{
    struct reread *rr = w->data;
    struct zk *z = rr->z;
    if (status == 0 && rr->rc == 0 && !z->closing) {
        const char *name;
        json_t *v;
        json_object_foreach(rr->found, name, v)
        {
            zjob_update(z, name, json_string_value(json_array_get(v, 1)),
                        json_integer_value(json_array_get(v, 0)));
        }
        size_t i;
        json_t *n;
        json_array_foreach(rr->gone, i, n)
        {
            zjob_remove(z, json_string_value(n));
        }
        if (rr->names == NULL) { /* a full read: jobs we hold that are gone */
            size_t pos = 0;
            const char *key;
            void *val;
            json_t *stale = json_array();
            while (strmap_next(&z->jobs, &pos, &key, &val))
                if (json_object_get(rr->found, key) == NULL)
                    json_array_append_new(stale, json_string(key));
            json_array_foreach(stale, i, n)
            {
                zjob_remove(z, json_string_value(n));
            }
            json_decref(stale);
        }
        coord_zk__changed(z);
    } else if (!z->closing) {
        log_warn("cannot read changed jobs from the store; the placement may lag", "error=\"%s\"",
                 rr->rc ? rr->err.msg : "canceled");
    }
    json_decref(rr->names);
    json_decref(rr->found);
    json_decref(rr->gone);
    free(rr);
    coord_zk__work_end(z);
}

static void reread(struct zk *z, json_t *names)
{
    struct reread *rr = calloc(1, sizeof *rr);
    if (rr == NULL || z->cfg.store == NULL) {
        json_decref(names);
        free(rr);
        return;
    }
    rr->z = z;
    rr->names = names;
    rr->work.data = rr;
    if (uv_queue_work(z->loop, &rr->work, reread_work, reread_done) != 0) {
        json_decref(names);
        free(rr);
        return;
    }
    coord_zk__work_begin(z);
}

static void changes_watch(void *arg, int type, const char *path);

static void on_changes(void *arg, const struct zkc_reply *r)
{
    struct zk *z = arg;
    if (r->rc == ZNONODE) {
        if (z->seen_seq < 0)
            z->seen_seq = 0; /* nothing rung before us: every entry to come is news */
        coord_zk__exists(z, "/meta/changes", changes_watch, z, NULL, NULL);
        return;
    }
    if (r->rc != ZOK || r->data == NULL)
        return;
    json_t *o = json_loadb(r->data, (size_t)r->len, 0, NULL);
    json_t *recent = json_object_get(o, "recent");
    json_int_t seq = json_integer_value(json_object_get(o, "seq"));
    if (!json_is_array(recent)) {
        log_warn("the configuration doorbell holds no change list; ignored", "node=%s",
                 "/meta/changes");
        json_decref(o);
        return;
    }
    if (z->seen_seq < 0) { /* first read: what came before our start is in the store */
        z->seen_seq = seq;
        json_decref(o);
        return;
    }
    json_t *oldest = json_array_get(recent, 0);
    bool gap = oldest != NULL && json_integer_value(json_object_get(oldest, "s")) > z->seen_seq + 1;
    json_t *names = json_array();
    bool all = gap;
    size_t i;
    json_t *e;
    json_array_foreach(recent, i, e)
    {
        json_int_t s = json_integer_value(json_object_get(e, "s"));
        const char *by = json_string_value(json_object_get(e, "by"));
        if (s <= z->seen_seq || (by != NULL && strcmp(by, z->cfg.id) == 0))
            continue;
        if (json_is_true(json_object_get(e, "all")))
            all = true;
        size_t k;
        json_t *n;
        json_array_foreach(json_object_get(e, "jobs"), k, n)
        {
            if (json_is_string(n))
                json_array_append(names, n);
        }
    }
    if (seq > z->seen_seq)
        z->seen_seq = seq;
    json_decref(o);
    if (all) {
        json_decref(names);
        reread(z, NULL);
    } else if (json_array_size(names) > 0) {
        reread(z, names);
    } else {
        json_decref(names);
    }
}

static void read_changes(struct zk *z)
{
    coord_zk__get(z, "/meta/changes", changes_watch, z, on_changes, z);
}

static void changes_watch(void *arg, int type, const char *path)
{
    (void)type;
    (void)path;
    struct zk *z = arg;
    if (!z->closing)
        read_changes(z);
}

/* ---------------------------------------------------------------------------------------
 * Membership: executors' registrations
 */

static void exec_watch(void *arg, int type, const char *path);

struct exec_read {
    struct zk *z;
    char id[COORD_ID_MAX];
};

static void on_exec(void *arg, const struct zkc_reply *r)
{
    struct exec_read *er = arg;
    struct zk *z = er->z;
    struct zexec *e = coord_zk__exec(z, er->id, r->rc == ZOK);
    if (e != NULL && r->rc == ZOK) {
        struct coord_member_info m;
        struct ty_err err;
        json_t *o = r->data ? json_loadb(r->data, (size_t)r->len, 0, NULL) : NULL;
        if (o != NULL && coord_member_info_from_json(o, &m, &err) == 0 &&
            strcmp(m.id, e->id) == 0) {
            bool was = e->online;
            int64_t old_gen = e->info.applied_gen;
            coord_member_info_clear(&e->info);
            e->info = m;
            e->have_info = true;
            /* its clock against the ensemble's: the time it wrote in its registration minus
             * the time the ensemble says the write was made (a few ms of transit included) */
            if (r->stat.mtime_ms > 0 && m.updated_ms > 0)
                e->info.clock_offset_ms = m.updated_ms - r->stat.mtime_ms;
            e->online = true;
            e->lost_ms = 0;
            if (e->session != r->stat.ephemeral_owner) {
                /* a new process, or a new session: its placement is made for that session
                 * again before it may act on it (coord_placement_head.session) */
                e->session = r->stat.ephemeral_owner;
                e->dirty = true;
                coord_zk__changed(z);
            }
            if (!was) {
                log_info("executor online", "executor=%s url=%s", e->id, e->info.url);
                coord_zk__changed(z);
            }
            if (e->info.applied_gen != old_gen) {
                coord_zk__acked(z, e);
                coord_zk__failovers(z);
                coord_zk__settled(z, e);
            }
        } else {
            if (o != NULL)
                coord_member_info_clear(&m);
            log_error("an executor's registration is malformed; it gets no shards",
                      "node=/executors/%s error=\"%s\"", er->id, o == NULL ? "not JSON" : err.msg);
        }
        json_decref(o);
    } else if (e != NULL && r->rc == ZNONODE && e->online) {
        e->online = false;
        e->lost_ms = wall_ms();
        log_warn("executor lost", "executor=%s", e->id);
        coord_zk__changed(z);
        coord_zk__acked(z, e);
    }
    free(er);
}

static void read_exec(struct zk *z, const char *id)
{
    struct exec_read *er = calloc(1, sizeof *er);
    if (er == NULL)
        return;
    er->z = z;
    snprintf(er->id, sizeof er->id, "%s", id);
    char path[128];
    snprintf(path, sizeof path, "/executors/%s", id);
    if (coord_zk__get(z, path, exec_watch, z, on_exec, er) != 0)
        free(er);
}

static void exec_watch(void *arg, int type, const char *path)
{
    struct zk *z = arg;
    if (z->closing || type == ZOO_CHILD_EVENT)
        return;
    const char *id = strrchr(path, '/');
    if (id != NULL)
        read_exec(z, id + 1);
}

static void execs_watch(void *arg, int type, const char *path);

static void on_execs(void *arg, const struct zkc_reply *r)
{
    struct zk *z = arg;
    if (r->rc != ZOK)
        return;
    /* new ones are read (and watched); gone ones are found by their data watch */
    for (int i = 0; i < r->n_children; i++) {
        struct zexec *e = coord_zk__exec(z, r->children[i], false);
        if (e == NULL || !e->online)
            read_exec(z, r->children[i]);
    }
    for (size_t i = 0; i < z->n_execs; i++) {
        struct zexec *e = &z->execs[i];
        bool there = false;
        for (int k = 0; k < r->n_children && !there; k++)
            there = strcmp(r->children[k], e->id) == 0;
        if (!there && e->online) {
            e->online = false;
            e->lost_ms = wall_ms();
            log_warn("executor lost", "executor=%s", e->id);
            coord_zk__changed(z);
            coord_zk__acked(z, e);
        }
    }
}

static void read_execs(struct zk *z)
{
    coord_zk__children(z, "/executors", execs_watch, z, on_execs, z);
}

static void execs_watch(void *arg, int type, const char *path)
{
    (void)type;
    (void)path;
    struct zk *z = arg;
    if (!z->closing)
        read_execs(z);
}

/* ---------------------------------------------------------------------------------------
 * Election
 */

static void servers_watch(void *arg, int type, const char *path);

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void set_leader(struct zk *z, bool leader, const char *url)
{
    pthread_mutex_lock(&z->mu);
    bool was = z->leader;
    z->leader = leader;
    snprintf(z->leader_url, sizeof z->leader_url, "%s", url ? url : "");
    pthread_mutex_unlock(&z->mu);
    if (was != leader) {
        log_info(leader ? "this server leads: it places the shards" : "this server no longer leads",
                 "server=%s", z->cfg.id);
        if (z->cfg.on_leader != NULL)
            z->cfg.on_leader(z->cfg.arg, leader);
        json_object_clear(z->not_ha); /* a new leader learns again what is open */
        z->ha_known = false;
        if (leader)
            coord_zk__changed(z);
    }
}

static void on_leader_data(void *arg, const struct zkc_reply *r)
{
    struct zk *z = arg;
    if (r->rc != ZOK || r->data == NULL)
        return;
    json_t *o = json_loadb(r->data, (size_t)r->len, 0, NULL);
    const char *url = json_string_value(json_object_get(o, "url"));
    if (url != NULL) {
        pthread_mutex_lock(&z->mu);
        snprintf(z->leader_url, sizeof z->leader_url, "%s", url);
        pthread_mutex_unlock(&z->mu);
    }
    json_decref(o);
}

static void on_servers(void *arg, const struct zkc_reply *r)
{
    struct zk *z = arg;
    if (r->rc != ZOK)
        return;
    char **names = calloc((size_t)r->n_children + 1, sizeof *names);
    if (names == NULL)
        return;
    for (int i = 0; i < r->n_children; i++)
        names[i] = r->children[i];
    qsort(names, (size_t)r->n_children, sizeof *names, cmp_str);
    const char *mine = strrchr(z->election_node, '/');
    mine = mine ? mine + 1 : "";
    if (r->n_children > 0 && strcmp(names[0], mine) == 0) {
        set_leader(z, true, z->cfg.url);
    } else {
        set_leader(z, false, NULL);
        if (r->n_children > 0) {
            char path[160];
            snprintf(path, sizeof path, "/servers/%s", names[0]);
            coord_zk__get(z, path, NULL, NULL, on_leader_data, z);
        }
    }
    free(names);
}

static void read_servers(struct zk *z)
{
    coord_zk__children(z, "/servers", servers_watch, z, on_servers, z);
}

static void servers_watch(void *arg, int type, const char *path)
{
    (void)type;
    (void)path;
    struct zk *z = arg;
    if (!z->closing)
        read_servers(z);
}

static void on_elected_node(void *arg, const struct zkc_reply *r)
{
    struct zk *z = arg;
    if (r->rc != ZOK) {
        if (r->rc != ZCLOSING)
            log_error("cannot join the servers' election", "error=%s", zkc_strerror(r->rc));
        return;
    }
    snprintf(z->election_node, sizeof z->election_node, "%s", r->path);
    read_servers(z);
}

/* ---------------------------------------------------------------------------------------
 * Session start: the tree, the secret, the election, the watches
 */

static const char *const tree[] = {"/meta", "/servers", "/executors", "/placements", "/chunks"};

static void on_secret(void *arg, const struct zkc_reply *r);

static void on_secret_made(void *arg, const struct zkc_reply *r)
{
    struct zk *z = arg;
    if (r->rc == ZOK || r->rc == ZNODEEXISTS)
        coord_zk__get(z, "/meta/secret", NULL, NULL, on_secret, z);
    else if (r->rc != ZCLOSING)
        log_error("cannot make the cluster secret", "error=%s", zkc_strerror(r->rc));
}

static void on_secret(void *arg, const struct zkc_reply *r)
{
    struct zk *z = arg;
    if (r->rc == ZNONODE) {
        unsigned char raw[COORD_ZK_SECRET_HEX / 2];
        char hex[COORD_ZK_SECRET_HEX + 1];
        if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
            log_error("getrandom failed; no cluster secret", "error=%s", strerror(errno));
            return;
        }
        for (size_t i = 0; i < sizeof raw; i++)
            snprintf(hex + 2 * i, 3, "%02x", raw[i]);
        coord_zk__create(z, "/meta/secret", hex, COORD_ZK_SECRET_HEX, 0, on_secret_made, z);
        return;
    }
    if (r->rc != ZOK || r->data == NULL || r->len != COORD_ZK_SECRET_HEX) {
        if (r->rc != ZCLOSING)
            log_error("the cluster secret cannot be read", "error=%s",
                      r->rc == ZOK ? "malformed (expected 64 hex digits)" : zkc_strerror(r->rc));
        return;
    }
    pthread_mutex_lock(&z->mu);
    bool first = z->secret[0] == '\0';
    memcpy(z->secret, r->data, COORD_ZK_SECRET_HEX);
    z->secret[COORD_ZK_SECRET_HEX] = '\0';
    pthread_mutex_unlock(&z->mu);
    if (first && z->cfg.on_secret != NULL)
        z->cfg.on_secret(z->cfg.arg, z->secret);
    /* the election: this server's node, then who leads */
    json_t *me = json_pack("{s:s, s:s, s:I}", "id", z->cfg.id, "url", z->cfg.url, "pid",
                           (json_int_t)getpid());
    char *text = json_dumps(me, JSON_COMPACT);
    json_decref(me);
    if (text != NULL)
        coord_zk__create(z, "/servers/s-", text, (int)strlen(text), ZKC_EPHEMERAL | ZKC_SEQUENCE,
                         on_elected_node, z);
    free(text);
    read_execs(z);
    coord_zk__read_placements(z);
    read_changes(z);
}

static void on_tree(void *arg, const struct zkc_reply *r)
{
    struct zk *z = arg;
    if (r->rc != ZOK && r->rc != ZNODEEXISTS && r->rc != ZCLOSING)
        log_error("cannot make Tethys's nodes in ZooKeeper", "error=%s", zkc_strerror(r->rc));
    if (++z->tree_made == sizeof tree / sizeof tree[0])
        coord_zk__get(z, "/meta/secret", NULL, NULL, on_secret, z);
}

static void on_event(void *arg, enum zkc_event ev, bool new_session)
{
    struct zk *z = arg;
    switch (ev) {
    case ZKC_CONNECTED:
        z->connected = true;
        coord_zk__snapshot(z);
        if (new_session) {
            z->election_node[0] = '\0';
            z->tree_made = 0;
            for (size_t i = 0; i < sizeof tree / sizeof tree[0]; i++)
                coord_zk__create(z, tree[i], NULL, 0, 0, on_tree, z);
        }
        return;
    case ZKC_DISCONNECTED: z->connected = false; return;
    case ZKC_EXPIRED:
        z->connected = false;
        log_warn("ZooKeeper session expired; joining the election again", "server=%s", z->cfg.id);
        set_leader(z, false, NULL);
        return;
    case ZKC_AUTH_FAILED:
        log_error("ZooKeeper refused the credentials (--zk-auth)", "hosts=%s", z->cfg.hosts);
        return;
    }
}

/* ---------------------------------------------------------------------------------------
 * Requests to executors over HTTP
 */

struct call {
    struct zk *z;
    char url[512];
    char secret[COORD_ZK_SECRET_HEX + 1];
    char executor[COORD_ID_MAX];
    long timeout_ms;
    json_t *body;
    struct coord_reply reply;
    uv_work_t work;
    void (*done)(struct call *c);
    void *owner;
    coord_cb cb;
    void *arg;
    struct coord_request *req;
};

static void call_work(uv_work_t *w)
{
    struct call *c = w->data;
    struct client cl;
    json_t *resp = NULL;
    int rc = client_open_url(&cl, c->url, c->secret, c->executor, &c->reply.err);
    cl.timeout_ms = c->timeout_ms;
    if (rc == 0)
        rc = client_call(&cl, "POST", COORD_ZK_REQUEST_PATH, c->body, NULL, NULL, &resp, NULL,
                         &c->reply.err);
    client_close(&cl);
    if (rc == 0) {
        struct ty_err err;
        rc = coord_reply_from_json(resp, &c->reply, &err);
        if (rc != 0)
            c->reply.err = err;
    }
    if (rc != 0) {
        c->reply.rc = rc == TY_EFORMAT || rc == TY_EAUTH ? rc : TY_EUNAVAIL;
        if (rc != TY_EFORMAT && rc != TY_EAUTH)
            c->reply.err.code = TY_EUNAVAIL;
    }
    snprintf(c->reply.executor, sizeof c->reply.executor, "%s", c->executor);
    json_decref(resp);
}

static void call_after(uv_work_t *w, int status)
{
    struct call *c = w->data;
    if (status != 0 && c->reply.rc == 0)
        c->reply.rc = ty_error(&c->reply.err, TY_EUNAVAIL, NULL, -1, 0, "canceled");
    struct zk *z = c->z;
    c->done(c);
    json_decref(c->body);
    json_decref(c->reply.json);
    free(c->reply.data);
    coord_request_free(c->req);
    free(c);
    coord_zk__work_end(z);
}

/* Send req's JSON (body, taken) to executor e; done(c) on the loop with c->reply. */
static int call_exec(struct zk *z, const struct zexec *e, json_t *body,
                     void (*done)(struct call *c), void *owner)
{
    struct call *c = calloc(1, sizeof *c);
    if (c == NULL) {
        json_decref(body);
        return TY_ENOMEM;
    }
    c->z = z;
    snprintf(c->url, sizeof c->url, "%s", e->info.url ? e->info.url : "");
    pthread_mutex_lock(&z->mu);
    snprintf(c->secret, sizeof c->secret, "%s", z->secret);
    pthread_mutex_unlock(&z->mu);
    snprintf(c->executor, sizeof c->executor, "%s", e->id);
    /* a status answers from counters at once: an executor that does not is hung (or
     * stopped), and the list shows its registration instead of waiting for it */
    c->timeout_ms = json_is_string(json_object_get(body, "kind")) &&
                            strcmp(json_string_value(json_object_get(body, "kind")), "status") == 0
                        ? STATUS_TIMEOUT_MS
                        : CALL_TIMEOUT_MS;
    c->body = body;
    c->done = done;
    c->owner = owner;
    c->work.data = c;
    if (uv_queue_work(z->loop, &c->work, call_work, call_after) != 0) {
        json_decref(body);
        free(c);
        return TY_EIO;
    }
    coord_zk__work_begin(z);
    return 0;
}

/* A request to one executor, or to several with the answers merged. */
struct fan {
    struct zk *z;
    struct coord_request *req; /* the caller's */
    coord_cb cb;
    void *arg;
    size_t sent, answered;
    enum coord_req_kind kind;
    struct coord_reply merged;
    json_t *items;   /* STATUS */
    json_t *runs;    /* FIRE */
    json_t *skipped; /* FIRE */
    bool any_ok;
};

static void fan_finish(struct fan *f)
{
    struct coord_reply *m = &f->merged;
    if (f->kind == COORD_FIRE) {
        if (f->any_ok || json_array_size(f->skipped) > 0) {
            m->rc = 0;
            json_decref(m->json);
            m->json = json_pack("{s:s, s:O, s:O}", "fire_id", f->req->fire.base, "runs", f->runs,
                                "skipped", f->skipped);
        }
    } else if (f->kind == COORD_STATUS) {
        m->rc = 0;
        json_decref(m->json);
        m->json = json_incref(f->items);
    }
    f->cb(f->arg, m);
    json_decref(m->json);
    free(m->data);
    json_decref(f->items);
    json_decref(f->runs);
    json_decref(f->skipped);
    coord_request_free(f->req);
    free(f);
}

/* Nothing was sent: answer on the loop's next turn, as the coord contract says. */
static void fan_answer_later(struct fan *f)
{
    struct coord_request *req = f->req;
    f->req = NULL;
    struct coord_reply *m = &f->merged;
    if (f->kind == COORD_FIRE && json_array_size(f->skipped) > 0) {
        m->rc = 0;
        json_decref(m->json);
        m->json =
            json_pack("{s:s, s:[], s:O}", "fire_id", req->fire.base, "runs", "skipped", f->skipped);
    } else if (f->kind == COORD_STATUS) {
        m->rc = 0;
        json_decref(m->json);
        m->json = json_incref(f->items);
    }
    json_decref(req->reply.json);
    req->reply = *m;
    answer_later(f->z, req, f->cb, f->arg);
    json_decref(f->items);
    json_decref(f->runs);
    json_decref(f->skipped);
    free(f);
}

static void fan_done(struct call *c)
{
    struct fan *f = c->owner;
    struct coord_reply *r = &c->reply;
    if (f->kind == COORD_FIRE) {
        if (r->rc == 0) {
            f->any_ok = true;
            size_t i;
            json_t *e;
            json_array_foreach(json_object_get(r->json, "runs"), i, e)
            {
                json_array_append(f->runs, e);
            }
            json_array_foreach(json_object_get(r->json, "skipped"), i, e)
            {
                json_array_append(f->skipped, e);
            }
            if (r->spool_seq > f->merged.spool_seq || f->merged.executor[0] == '\0') {
                f->merged.spool_seq = r->spool_seq;
                snprintf(f->merged.executor, sizeof f->merged.executor, "%s", r->executor);
            }
        } else {
            /* the shards sent there did not run: said so, beside the others' runs */
            size_t i;
            json_t *sh;
            json_array_foreach(json_object_get(c->body, "shards"), i, sh)
            {
                json_array_append_new(f->skipped, json_pack("{s:O, s:s, s:s, s:s}", "shard", sh,
                                                            "reason", "unavailable", "executor",
                                                            c->executor, "detail", r->err.msg));
            }
            if (!f->any_ok) {
                f->merged.rc = r->rc;
                f->merged.err = r->err;
            }
        }
    } else if (f->kind == COORD_STATUS) {
        struct zexec *e = coord_zk__exec(f->z, c->executor, false);
        json_t *o = r->rc == 0 && json_is_object(r->json) ? json_incref(r->json) : json_object();
        coord_zk__status_fields(f->z, e, o, r->rc == 0);
        json_array_append_new(f->items, o);
    } else if (r->rc == 0 && !f->any_ok) { /* the first that knows the run answers */
        f->any_ok = true;
        f->merged.rc = 0;
        f->merged.json = r->json;
        r->json = NULL;
        f->merged.data = r->data;
        r->data = NULL;
        f->merged.len = r->len;
        f->merged.from = r->from;
        f->merged.total = r->total;
        f->merged.spool_seq = r->spool_seq;
        snprintf(f->merged.executor, sizeof f->merged.executor, "%s", r->executor);
    } else if (!f->any_ok && (f->merged.rc == 0 || f->merged.rc == TY_ENOENT)) {
        f->merged.rc = r->rc;
        f->merged.err = r->err;
    }
    if (++f->answered == f->sent)
        fan_finish(f);
}

static struct fan *fan_new(struct zk *z, struct coord_request *req, coord_cb cb, void *arg)
{
    struct fan *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->z = z;
    f->req = req;
    f->cb = cb;
    f->arg = arg;
    f->kind = req->kind;
    f->items = json_array();
    f->runs = json_array();
    f->skipped = json_array();
    f->merged.rc = ty_error(&f->merged.err, TY_ENOENT, NULL, -1, 0,
                            "no executor knows it (unknown, or already ended)");
    return f;
}

/* Send a copy of req (with shards[] when n_shards > 0) to e as part of f. */
static int fan_send(struct fan *f, const struct zexec *e, const uint32_t *shards, uint32_t n)
{
    struct coord_request copy = *f->req;
    copy.fire.shards = (uint32_t *)shards;
    copy.fire.n_shards = n;
    json_t *body = coord_request_to_json(&copy);
    if (body == NULL)
        return TY_ENOMEM;
    int rc = call_exec(f->z, e, body, fan_done, f);
    if (rc == 0)
        f->sent++;
    return rc;
}

/* Run now / downstream: to the owners of the job's shards. */
static int send_fire(struct zk *z, struct coord_request *req, coord_cb cb, void *arg)
{
    struct coord_fire *fi = &req->fire;
    struct zjob *j = strmap_get(&z->jobs, fi->job);
    if (fi->at == 0)
        fi->at = wall_ms() / 1000;
    if (fi->base == NULL) {
        unsigned char raw[8];
        char base[STORE_FIRE_ID_MAX];
        if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
            memset(raw, 0, sizeof raw);
        snprintf(base, sizeof base, "%s@%lld!m%02x%02x%02x%02x%02x%02x%02x%02x", fi->job,
                 (long long)fi->at, raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]);
        fi->base = strdup(base);
        if (fi->base == NULL) {
            coord_request_free(req);
            return TY_ENOMEM;
        }
    }
    struct fan *f = fan_new(z, req, cb, arg);
    if (f == NULL) {
        coord_request_free(req);
        return TY_ENOMEM;
    }
    if (j == NULL) {
        f->merged.rc =
            ty_error(&f->merged.err, TY_ENOENT, "name", -1, 0, "no job named \"%s\"", fi->job);
        fan_answer_later(f);
        return 0;
    }
    /* which shards go where */
    uint32_t *mine = calloc(j->shards, sizeof *mine);
    bool *wanted = calloc(j->shards, sizeof *wanted);
    if (mine == NULL || wanted == NULL) {
        free(mine);
        free(wanted);
        f->merged.rc = ty_error(&f->merged.err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        fan_answer_later(f);
        return 0;
    }
    for (uint32_t s = 0; s < j->shards; s++)
        wanted[s] = fi->n_shards == 0;
    for (uint32_t i = 0; i < fi->n_shards; i++)
        if (fi->shards[i] < j->shards)
            wanted[fi->shards[i]] = true;
    if (j->strategy == JOB_STRATEGY_LOCAL) {
        /* every executor holding it runs the shards asked for, each with its own fire ids */
        for (size_t k = 0; k < j->n_local; k++) {
            struct zexec *e = &z->execs[j->local[k]];
            if (e->online)
                fan_send(f, e, fi->shards, fi->n_shards);
        }
    } else {
        for (size_t k = 0; k < z->n_execs; k++) {
            struct zexec *e = &z->execs[k];
            uint32_t n = 0;
            for (uint32_t s = 0; s < j->shards; s++)
                if (wanted[s] && j->owner[s] == (int32_t)k)
                    mine[n++] = s;
            if (n > 0 && e->online && fan_send(f, e, mine, n) == 0) {
                for (uint32_t i = 0; i < n; i++)
                    wanted[mine[i]] = false;
            }
        }
        for (uint32_t s = 0; s < j->shards; s++)
            if (wanted[s])
                json_array_append_new(f->skipped,
                                      json_pack("{s:i, s:s, s:s}", "shard", (int)s, "reason",
                                                "no_executor", "detail",
                                                "no executor holds this shard now (being moved, or "
                                                "none is eligible)"));
    }
    free(mine);
    free(wanted);
    if (f->sent == 0) {
        if (json_array_size(f->skipped) == 0)
            f->merged.rc = ty_error(&f->merged.err, TY_EUNAVAIL, NULL, -1, 0,
                                    "no executor holds job \"%s\" now", fi->job);
        fan_answer_later(f);
    }
    return 0;
}

/* Cancel, output, status, kick: to one executor, or to every online one. */
static int send_each(struct zk *z, const char *executor, struct coord_request *req, coord_cb cb,
                     void *arg)
{
    struct fan *f = fan_new(z, req, cb, arg);
    if (f == NULL) {
        coord_request_free(req);
        return TY_ENOMEM;
    }
    for (size_t k = 0; k < z->n_execs; k++) {
        struct zexec *e = &z->execs[k];
        if (executor != NULL && executor[0] != '\0' && strcmp(executor, e->id) != 0)
            continue;
        if (e->online && e->have_info) {
            if (fan_send(f, e, NULL, 0) != 0 && req->kind == COORD_STATUS) {
                json_t *o = json_object();
                coord_zk__status_fields(z, e, o, false);
                json_array_append_new(f->items, o);
            }
        } else if (req->kind == COORD_STATUS && (e->have_info || e->head_known)) {
            json_t *o = json_object();
            coord_zk__status_fields(z, e, o, false);
            json_array_append_new(f->items, o);
        }
    }
    if (f->sent == 0) {
        if (req->kind != COORD_STATUS && executor != NULL && executor[0] != '\0')
            f->merged.rc = ty_error(&f->merged.err, TY_EUNAVAIL, NULL, -1, 0,
                                    "executor %s is not online", executor);
        fan_answer_later(f);
    }
    return 0;
}

/* A failover fire's answer: logged (the runs it made are reported by the executor). */
static void on_failover_fired(void *arg, struct coord_reply *r)
{
    char *what = arg;
    if (r->rc != 0)
        log_error("a lost run could not be made again", "fire=%s error=\"%s\"", what, r->err.msg);
    else
        log_info("a lost run made again on the shard's new owner", "fire=%s executor=%s", what,
                 r->executor);
    free(what);
}

void coord_zk__failovers(struct zk *z)
{
    size_t i = 0;
    while (i < json_array_size(z->failovers)) {
        json_t *f = json_array_get(z->failovers, i);
        const char *name = json_string_value(json_object_get(f, "job"));
        struct zjob *j = name ? strmap_get(&z->jobs, name) : NULL;
        uint32_t shard = (uint32_t)json_integer_value(json_object_get(f, "shard"));
        if (j == NULL || shard >= j->shards) { /* the job went, or shrank */
            json_array_remove(z->failovers, i);
            continue;
        }
        int32_t k = j->owner[shard];
        struct zexec *e = k >= 0 ? &z->execs[k] : NULL;
        if (e == NULL || !e->online || e->info.applied_gen < e->gen) {
            i++; /* not given yet, or not applied: later */
            continue;
        }
        struct coord_request *req = coord_request_new(COORD_FIRE);
        uint32_t *sh = malloc(sizeof *sh);
        char *what = strdup(json_string_value(json_object_get(f, "base")));
        if (req == NULL || sh == NULL || what == NULL || (req->fire.job = strdup(name)) == NULL ||
            (req->fire.base = strdup(what)) == NULL) {
            coord_request_free(req);
            free(sh);
            free(what);
            return;
        }
        *sh = shard;
        req->fire.shards = sh;
        req->fire.n_shards = 1;
        req->fire.at = json_integer_value(json_object_get(f, "at"));
        req->fire.trigger = STORE_TRIGGER_FAILOVER;
        req->fire.attempt = (uint32_t)json_integer_value(json_object_get(f, "attempt"));
        struct fan *fa = fan_new(z, req, on_failover_fired, what);
        if (fa == NULL || fan_send(fa, e, sh, 1) != 0) {
            if (fa != NULL)
                fan_answer_later(fa);
            else
                coord_request_free(req), free(what);
        }
        json_array_remove(z->failovers, i);
    }
}

/* ---------------------------------------------------------------------------------------
 * The coord interface
 */

static void noop_cb(void *arg, struct coord_reply *r)
{
    (void)arg;
    (void)r;
}

static int zk_send(struct coord *base, const char *executor, struct coord_request *req, coord_cb cb,
                   void *arg)
{
    struct zk *z = (struct zk *)base;
    if (z->closing) {
        coord_request_free(req);
        return TY_EUNAVAIL;
    }
    switch (req->kind) {
    case COORD_ASSIGN: {
        json_t *names = json_array();
        for (size_t i = 0; i < req->n_assign; i++) {
            struct coord_assignment *a = &req->assign[i];
            if (a->definition == NULL)
                zjob_remove(z, a->job);
            else
                zjob_update(z, a->job, a->definition, a->version);
            json_array_append_new(names, json_string(a->job));
        }
        if (z->loaded)
            ring(z, "jobs", names); /* a save here: the other servers read it back */
        else
            json_decref(names);
        if (req->complete)
            z->loaded = true;
        coord_zk__changed(z);
        req->reply.json = json_pack("{s:[]}", "failed");
        answer_later(z, req, cb, arg);
        return 0;
    }
    case COORD_CALENDAR: {
        /* executors fetch every calendar from a server with their first placement, and
         * again when the doorbell names one (they watch it for that alone) */
        if (z->loaded)
            ring(z, "calendars", json_pack("[s]", req->name));
        answer_later(z, req, cb, arg);
        return 0;
    }
    case COORD_FIRE: return send_fire(z, req, cb, arg);
    case COORD_CANCEL:
    case COORD_OUTPUT:
    case COORD_STATUS:
    case COORD_KICK: return send_each(z, executor, req, cb ? cb : noop_cb, arg);
    }
    coord_request_free(req);
    return TY_EINVAL;
}

static void zk_free(struct zk *z)
{
    strmap_clear(&z->jobs, coord_zk__job_free);
    for (size_t i = 0; i < z->n_execs; i++) {
        coord_member_info_clear(&z->execs[i].info);
        strmap_free(&z->execs[i].changed);
    }
    free(z->execs);
    json_decref(z->failovers);
    json_decref(z->not_ha);
    pthread_mutex_destroy(&z->mu);
    free(z->cfg_strings);
    free(z);
}

static void zk_handle_closed(uv_handle_t *h)
{
    struct zk *z = h->data;
    z->handles--;
    maybe_free(z);
}

static void zk_close(struct coord *base)
{
    struct zk *z = (struct zk *)base;
    z->closing = true;
    on_now(&z->now_async);
    z->handles = 2;
    /* zkc answers what is in flight (ZCLOSING at worst) from the loop; z lives until then */
    zkc_close(z->zk);
    z->zk = NULL;
    uv_timer_stop(&z->debounce);
    uv_close((uv_handle_t *)&z->now_async, zk_handle_closed);
    uv_close((uv_handle_t *)&z->debounce, zk_handle_closed);
}

static const struct coord_ops zk_ops = {zk_close, zk_send};

int coord_zk_new(uv_loop_t *loop, const struct coord_zk_config *cfg, struct coord **out,
                 struct ty_err *err)
{
    if (!coord_id_ok(cfg->id))
        return ty_error(err, TY_EINVAL, "id", -1, 0,
                        "server id \"%s\" is not one ([A-Za-z0-9._-], 1-63 bytes)", cfg->id);
    struct zk *z = calloc(1, sizeof *z);
    if (z == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    z->base.ops = &zk_ops;
    z->loop = loop;
    z->cfg = *cfg;
    if (z->cfg.debounce_ms == 0)
        z->cfg.debounce_ms = 300;
    /* one allocation for the strings the config borrows */
    size_t n = strlen(cfg->hosts) + strlen(cfg->auth) + strlen(cfg->id) + strlen(cfg->url) +
               (cfg->store ? strlen(cfg->store) : 0) + (cfg->name ? strlen(cfg->name) : 0) + 6;
    z->cfg_strings = malloc(n);
    if (z->cfg_strings == NULL) {
        free(z);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    char *p = z->cfg_strings;
    const char **fields[] = {&z->cfg.hosts, &z->cfg.auth,  &z->cfg.id,
                             &z->cfg.url,   &z->cfg.store, &z->cfg.name};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (*fields[i] == NULL)
            continue;
        size_t len = strlen(*fields[i]) + 1;
        memcpy(p, *fields[i], len);
        *fields[i] = p;
        p += len;
    }
    z->seen_seq = -1;
    z->failovers = json_array();
    z->not_ha = json_object();
    strmap_init(&z->jobs);
    pthread_mutex_init(&z->mu, NULL);
    uv_async_init(loop, &z->now_async, on_now);
    z->now_async.data = z;
    uv_timer_init(loop, &z->debounce);
    z->debounce.data = z;
    struct zkc_config zc = {
        .hosts = z->cfg.hosts,
        .session_timeout_ms = cfg->session_timeout_ms,
        .auth = z->cfg.auth,
        .on_event = on_event,
        .arg = z,
    };
    int rc = zkc_open(loop, &zc, &z->zk, err);
    if (rc != 0) {
        zk_close(&z->base); /* frees z once its handles have closed */
        return rc;
    }
    *out = &z->base;
    return 0;
}

void coord_zk__snapshot(struct zk *z)
{
    int64_t online = 0, lost = 0;
    for (size_t i = 0; i < z->n_execs; i++) {
        if (z->execs[i].online)
            online++;
        else if (z->execs[i].have_info || z->execs[i].head_known)
            lost++;
    }
    pthread_mutex_lock(&z->mu);
    z->seen.connected = z->connected;
    z->seen.online = online;
    z->seen.lost = lost;
    z->seen.jobs = (int64_t)z->jobs.len;
    pthread_mutex_unlock(&z->mu);
}

void coord_zk_set_owner(struct coord *c,
                        bool (*owns)(void *arg, const char *job, const char *domain), void *arg)
{
    struct zk *z = (struct zk *)c;
    z->owns = owns;
    z->owns_arg = arg;
}

json_t *coord_zk_info(struct coord *c)
{
    struct zk *z = (struct zk *)c;
    pthread_mutex_lock(&z->mu);
    json_t *o = json_pack("{s:s, s:s, s:b, s:s, s:s?, s:I, s:I, s:I}", "name",
                          z->cfg.name ? z->cfg.name : "default", "zk", z->cfg.hosts, "connected",
                          z->seen.connected, "role", z->leader ? "leader" : "standby", "leader_url",
                          z->leader_url[0] ? z->leader_url : NULL, "executors_online",
                          (json_int_t)z->seen.online, "executors_lost", (json_int_t)z->seen.lost,
                          "jobs", (json_int_t)z->seen.jobs);
    pthread_mutex_unlock(&z->mu);
    return o;
}

bool coord_zk_is_leader(struct coord *c)
{
    struct zk *z = (struct zk *)c;
    pthread_mutex_lock(&z->mu);
    bool l = z->leader;
    pthread_mutex_unlock(&z->mu);
    return l;
}

void coord_zk_leader_url(struct coord *c, char *buf, size_t cap)
{
    struct zk *z = (struct zk *)c;
    pthread_mutex_lock(&z->mu);
    snprintf(buf, cap, "%s", z->leader_url);
    pthread_mutex_unlock(&z->mu);
}
