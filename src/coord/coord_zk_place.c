/*
 * coord_zk_place.c - placements: read by every server, planned and published by the
 * leader.
 *
 * Reading.  Every server watches /placements (its children: one per executor ever placed,
 * a few hundred at most) and each head, and on a new generation reads its chunks into the
 * jobs' owner arrays.  So a server that becomes leader already knows where everything is.
 *
 * A shard's life.  owner[s] >= 0: that executor has it, since[s] is the resume_after it was
 * given.  owner[s] == -1: nobody has it; from[s] says who had it last (-1: nobody ever),
 * and since[s] when its next owner resumes: after the instant its last owner made its
 * fires up to, or SINCE_WAIT while that is not known yet.  Shards leave an owner three
 * ways, and none of them lets two executors hold a shard at once:
 *   - taken from a live executor: published without it, and SINCE_WAIT until the executor
 *     acknowledges (applied_gen >= gen) with its "through";
 *   - its executor is lost (session gone, so its lease ended first): the store says what
 *     it last fired of each job, and that is since (so every fire after it gets made or
 *     recorded by the next owner: no silent miss, and nothing it ran is run again);
 *   - the job is deleted or shrinks: nothing to hand on.
 * Granting needs no acknowledgement: a new owner resumes after since[s].
 *
 * Planning.  Debounced after any change of jobs or executors, the leader computes each
 * job's wanted owners with src/core/shard (stable: what is placed well stays), takes away
 * what must leave live executors, gives what is free, and publishes every executor whose
 * placement changed in one multi() that also checks the leader's election node.  A second
 * round hands on what the first took away once its executors have acknowledged.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zookeeper/zookeeper.h>

#include "../core/shard.h"
#include "../os/log.h"
#include "coord_zk_impl.h"

#define SINCE_WAIT (-1)
#define RETRY_MS   1000
#define MULTI_MAX  200 /* heads per multi(); more executors: several rounds */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int32_t exec_index(const struct zk *z, const struct zexec *e)
{
    return (int32_t)(e - z->execs);
}

/* ---------------------------------------------------------------------------------------
 * Reading (every server)
 */

struct head_read;

/* One chunk being read: its place in the order its entries apply in. */
struct chunk_read {
    struct head_read *hr;
    json_t *entries; /* [[job, shards|null, job_shards, resume_after, from|null] or [job]
                        for a drop, ...] */
};

struct head_read {
    struct zk *z;
    char id[COORD_ID_MAX];
    struct coord_placement_head h;
    int32_t version;
    bool full; /* from the base (else only the parts after those applied) */
    uint32_t chunks, got;
    bool failed;
    struct chunk_read *c; /* [chunks], in the order they apply */
};

static void read_head(struct zk *z, const char *id);

static void head_watch(void *arg, int type, const char *path)
{
    struct zk *z = arg;
    if (z->closing || type == ZOO_CHILD_EVENT)
        return;
    const char *id = strrchr(path, '/');
    if (id != NULL)
        read_head(z, id + 1);
}

/* Executor k holds nothing of job j any more (as far as this server knows). */
static void forget(struct zk *z, struct zjob *j, int32_t k)
{
    int64_t *held = &z->execs[k].shards;
    for (uint32_t s = 0; s < j->shards; s++) {
        if (j->owner[s] == k) {
            j->owner[s] = -1;
            --*held;
        }
    }
    for (size_t i = 0; i < j->n_local; i++) {
        if (j->local[i] == (uint32_t)k) {
            j->local[i--] = j->local[--j->n_local];
            *held -= j->shards;
        }
    }
    if (*held < 0)
        *held = 0;
}

/* One entry of executor k's placement, applied over what it held of the job. */
static void adopt_entry(struct zk *z, int32_t k, const json_t *en)
{
    struct zexec *e = &z->execs[k];
    const char *job = json_string_value(json_array_get(en, 0));
    bool drop = json_array_size(en) == 1;
    struct zjob *j = job != NULL ? coord_zk__job(z, job, !drop) : NULL;
    if (j == NULL)
        return;
    forget(z, j, k);
    if (drop)
        return;
    uint32_t n = (uint32_t)json_integer_value(json_array_get(en, 2));
    if (j->version == 0 && n != j->shards && coord_zk__job_shards(j, n) != 0)
        return;
    if (j->strategy == JOB_STRATEGY_LOCAL) {
        uint32_t *l = realloc(j->local, (j->n_local + 1) * sizeof *l);
        if (l != NULL) {
            j->local = l;
            j->local[j->n_local++] = (uint32_t)k;
            e->shards += j->shards;
        }
        return;
    }
    json_t *shards = json_array_get(en, 1);
    int64_t since = json_integer_value(json_array_get(en, 3));
    for (uint32_t q = 0; q < (json_is_null(shards) ? j->shards : json_array_size(shards)); q++) {
        json_int_t s = json_is_null(shards) ? q : json_integer_value(json_array_get(shards, q));
        if (s < 0 || (uint32_t)s >= j->shards)
            continue;
        j->owner[s] = k;
        j->since[s] = since;
        j->from[s] = -1;
        j->unsure[s] = 0;
        e->shards++;
    }
}

/* Executor e's placement read (all of it, or the parts after those applied): the owner
 * arrays follow. */
static void adopt(struct zk *z, struct zexec *e, const struct head_read *hr)
{
    int32_t k = exec_index(z, e);
    if (hr->full) {
        size_t pos = 0;
        const char *name;
        void *v;
        while (strmap_next(&z->jobs, &pos, &name, &v))
            forget(z, v, k);
        e->shards = 0;
    }
    for (uint32_t c = 0; c < hr->chunks; c++) {
        size_t i;
        json_t *en;
        json_array_foreach(hr->c[c].entries, i, en)
        {
            adopt_entry(z, k, en);
        }
    }
}

static void head_read_free(struct head_read *hr)
{
    for (uint32_t c = 0; hr->c != NULL && c < hr->chunks; c++)
        json_decref(hr->c[c].entries);
    free(hr->c);
    free(hr);
}

static void head_done(struct head_read *hr)
{
    struct zk *z = hr->z;
    struct zexec *e = coord_zk__exec(z, hr->id, true);
    if (!hr->failed && e != NULL && !z->closing) {
        adopt(z, e, hr);
        e->gen = hr->h.gen;
        e->head_version = hr->version;
        e->head = hr->h;
        e->head_known = true;
        coord_zk__changed(z);
    } else if (hr->failed && !z->closing) {
        read_head(z, hr->id); /* a newer generation replaced these chunks: read that */
    }
    head_read_free(hr);
}

static int take_entry(void *arg, const struct coord_placement *p)
{
    struct chunk_read *cr = arg;
    if (p->drop)
        return json_array_append_new(cr->entries, json_pack("[s]", p->job));
    json_t *shards = json_null();
    if (p->n_shards > 0) {
        shards = json_array();
        for (uint32_t i = 0; i < p->n_shards; i++)
            json_array_append_new(shards, json_integer(p->shards[i]));
    }
    json_array_append_new(cr->entries,
                          json_pack("[s, o, I, I, s?]", p->job, shards, (json_int_t)p->job_shards,
                                    (json_int_t)p->resume_after, p->from));
    return 0;
}

static void bad_entry(void *arg, size_t index, const struct ty_err *err)
{
    struct chunk_read *cr = arg;
    log_error("a placement entry is malformed; skipped",
              "executor=%s gen=%lld index=%zu "
              "error=\"%s\"",
              cr->hr->id, (long long)cr->hr->h.gen, index, err->msg);
}

static void on_chunk(void *arg, const struct zkc_reply *r)
{
    struct chunk_read *cr = arg;
    struct head_read *hr = cr->hr;
    if (r->rc != ZOK) {
        hr->failed = true;
    } else {
        struct ty_err err;
        if (coord_placements_decode(r->data ? r->data : "", (size_t)r->len, take_entry, bad_entry,
                                    cr, &err) != 0)
            log_error("a placement chunk is malformed; skipped",
                      "executor=%s gen=%lld "
                      "error=\"%s\"",
                      hr->id, (long long)hr->h.gen, err.msg);
    }
    if (++hr->got == hr->chunks)
        head_done(hr);
}

static void on_head(void *arg, const struct zkc_reply *r)
{
    struct head_read *hr = arg;
    struct zk *z = hr->z;
    if (r->rc != ZOK) {
        head_read_free(hr);
        return;
    }
    struct ty_err err;
    if (coord_placement_head_decode(r->data ? r->data : "", (size_t)r->len, &hr->h, &err) != 0) {
        log_error("a placement head is malformed; that executor's shards are unknown",
                  "executor=%s error=\"%s\"", hr->id, err.msg);
        head_read_free(hr);
        return;
    }
    struct zexec *e = coord_zk__exec(z, hr->id, true);
    if (e != NULL && e->head_known && e->gen == hr->h.gen) {
        e->head_version = r->stat.version; /* our own publication, seen back */
        head_read_free(hr);
        return;
    }
    hr->version = r->stat.version;
    hr->full = e == NULL || !e->head_known || !coord_placement_head_extends(&e->head, &hr->h);
    uint32_t first = hr->full ? 0 : e->head.n_parts;
    for (uint32_t p = first; p < hr->h.n_parts; p++)
        hr->chunks += hr->h.parts[p].chunks;
    if (hr->chunks == 0) {
        head_done(hr);
        return;
    }
    if ((hr->c = calloc(hr->chunks, sizeof *hr->c)) == NULL) {
        head_read_free(hr);
        return;
    }
    /* answers come on later turns of the loop: the requests not sent are counted after */
    uint32_t unsent = 0, c = 0;
    for (uint32_t p = first; p < hr->h.n_parts; p++) {
        for (uint32_t i = 0; i < hr->h.parts[p].chunks; i++, c++) {
            char path[192];
            snprintf(path, sizeof path, "/chunks/%s/%lld-%u", hr->id, (long long)hr->h.parts[p].gen,
                     i);
            hr->c[c].hr = hr;
            hr->c[c].entries = json_array();
            if (coord_zk__get(z, path, NULL, NULL, on_chunk, &hr->c[c]) != 0)
                unsent++;
        }
    }
    if (unsent > 0) {
        hr->failed = true;
        hr->got += unsent;
        if (hr->got == hr->chunks)
            head_done(hr);
    }
}

static void read_head(struct zk *z, const char *id)
{
    struct head_read *hr = calloc(1, sizeof *hr);
    if (hr == NULL || !coord_id_ok(id)) {
        free(hr);
        return;
    }
    hr->z = z;
    snprintf(hr->id, sizeof hr->id, "%s", id);
    char path[128];
    snprintf(path, sizeof path, "/placements/%s", id);
    if (coord_zk__get(z, path, head_watch, z, on_head, hr) != 0)
        head_read_free(hr);
}

static void placements_watch(void *arg, int type, const char *path);

static void on_placements(void *arg, const struct zkc_reply *r)
{
    struct zk *z = arg;
    if (r->rc != ZOK)
        return;
    for (int i = 0; i < r->n_children; i++) {
        struct zexec *e = coord_zk__exec(z, r->children[i], false);
        if (e == NULL || !e->head_known)
            read_head(z, r->children[i]);
    }
}

void coord_zk__read_placements(struct zk *z)
{
    for (size_t i = 0; i < z->n_execs; i++)
        z->execs[i].head_known = false;
    coord_zk__children(z, "/placements", placements_watch, z, on_placements, z);
}

static void placements_watch(void *arg, int type, const char *path)
{
    (void)type;
    (void)path;
    struct zk *z = arg;
    if (!z->closing)
        coord_zk__children(z, "/placements", placements_watch, z, on_placements, z);
}

/* ---------------------------------------------------------------------------------------
 * Status
 */

void coord_zk__status_fields(struct zk *z, const struct zexec *e, json_t *o, bool live)
{
    (void)z;
    if (e == NULL)
        return;
    json_object_set_new(o, "id", json_string(e->id));
    json_object_set_new(o, "state", json_string(e->online ? "online" : "lost"));
    json_object_set_new(o, "kind", json_string("standalone"));
    json_object_set_new(o, "shards", json_integer(e->shards));
    json_object_set_new(o, "placement_gen", json_integer(e->gen));
    if (!e->online)
        json_object_set_new(o, "lost_at_ms", e->lost_ms ? json_integer(e->lost_ms) : json_null());
    if (!live)
        json_object_set_new(o, "available", json_false());
    if (!e->have_info)
        return;
    const struct coord_member_info *m = &e->info;
    json_t *reg = coord_member_info_to_json(m);
    const char *key;
    json_t *v;
    json_object_foreach(reg, key, v)
    {
        /* the executor's own live figures win over its registration's older sample */
        if (!live || json_object_get(o, key) == NULL)
            json_object_set(o, key, v);
    }
    json_decref(reg);
    json_object_set_new(o, "last_heartbeat_ms", json_integer(m->updated_ms));
    json_object_set_new(o, "clock_offset_ms", json_integer(m->clock_offset_ms));
}

/* ---------------------------------------------------------------------------------------
 * Acknowledgements
 */

void coord_zk__acked(struct zk *z, struct zexec *e)
{
    if (!e->waiting_ack)
        return;
    bool acked = e->online && e->have_info && e->info.applied_gen >= e->gen;
    if (!acked && e->online)
        return;
    e->waiting_ack = false;
    int32_t k = exec_index(z, e);
    size_t pos = 0;
    const char *name;
    void *v;
    size_t n = 0;
    while (strmap_next(&z->jobs, &pos, &name, &v)) {
        struct zjob *j = v;
        for (uint32_t s = 0; s < j->shards; s++) {
            if (j->owner[s] == -1 && j->from[s] == k && j->since[s] == SINCE_WAIT) {
                if (acked) {
                    j->since[s] = e->info.through;
                    n++;
                } else {
                    /* lost before it said: the store says (released with its shards) */
                    j->owner[s] = k;
                    j->since[s] = 0;
                }
            }
        }
    }
    if (acked)
        log_info("executor gave up its shards", "executor=%s gen=%lld through=%lld shards=%zu",
                 e->id, (long long)e->gen, (long long)e->info.through, n);
    coord_zk__changed(z);
}

/* Executor e applied its placement: the shards it was given have made their past (their
 * gap, named after where they came from); later publications carry no `from` for them, so a
 * shard given next from another executor is named after that one alone. */
void coord_zk__settled(struct zk *z, struct zexec *e)
{
    if (!e->online || e->info.applied_gen < e->gen)
        return;
    int32_t k = exec_index(z, e);
    size_t pos = 0;
    const char *name;
    void *v;
    while (strmap_next(&z->jobs, &pos, &name, &v)) {
        struct zjob *j = v;
        for (uint32_t s = 0; s < j->shards; s++) {
            if (j->owner[s] == k) {
                j->from[s] = -1;
                j->unsure[s] = 0;
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Lost executors: what they last fired, from the store
 */

struct lost_read {
    struct zk *z;
    char id[COORD_ID_MAX];
    int64_t since;
    json_t *held;     /* {job: {shard: since}}: what it holds, and from when */
    json_t *last;     /* {job: {shard: instant}}: its newest record (run or skip) */
    json_t *runs;     /* the runs it had going, recorded lost */
    json_t *failover; /* {job: true} of the jobs with failover on, read on the loop */
    int rc;
    struct ty_err err;
    uv_work_t work;
};

/* Pool thread: lr->last gains the skips recorded after each shard's newest run (or after
 * it was given, when it has none), by the lost executor since it was the only owner: a
 * fire it skipped (overlap, a calendar, a misfire) is a fire made, and the next owner must
 * not record it again (the store keeps the first record of a fire id, so a misfire record
 * standing for a range would lose the rest of its range). */
static int last_skips(struct store *st, struct lost_read *lr)
{
    json_t *after = json_object();
    const char *job;
    json_t *shards;
    json_object_foreach(lr->held, job, shards)
    {
        const json_t *ran = json_object_get(lr->last, job);
        int64_t from = INT64_MAX;
        const char *key;
        json_t *since;
        json_object_foreach(shards, key, since)
        {
            int64_t at = json_integer_value(json_object_get(ran, key));
            int64_t s = json_integer_value(since);
            at = at > s ? at : s;
            from = at < from ? at : from;
        }
        if (from != INT64_MAX)
            json_object_set_new(after, job, json_integer(from < 0 ? 0 : from));
    }
    json_t *skipped = NULL;
    int rc = store_skips_last(st, after, &skipped, &lr->err);
    json_decref(after);
    json_object_foreach(skipped, job, shards)
    {
        json_t *per = json_object_get(lr->last, job);
        if (per == NULL)
            json_object_set_new(lr->last, job, per = json_object());
        const char *key;
        json_t *at;
        json_object_foreach(shards, key, at)
        {
            if (json_integer_value(at) > json_integer_value(json_object_get(per, key)))
                json_object_set(per, key, at);
        }
    }
    json_decref(skipped);
    return rc;
}

/* Pool thread: what the lost executor fired last, and the runs it had going (recorded
 * lost through the control plane, so alerts and live state follow). */
static void lost_work(uv_work_t *w)
{
    struct lost_read *lr = w->data;
    struct zk *z = lr->z;
    struct store *st = NULL;
    json_t *unfinished = NULL;
    lr->runs = json_array();
    lr->rc = store_open(z->cfg.store, true, &st, &lr->err);
    if (lr->rc == 0)
        lr->rc = store_executor_last_fires(st, lr->id, lr->since, &lr->last, &lr->err);
    if (lr->rc == 0)
        lr->rc = last_skips(st, lr);
    if (lr->rc == 0)
        lr->rc = store_runs_unfinished(st, &unfinished, &lr->err);
    store_close(st);
    size_t i;
    json_t *r;
    json_array_foreach(unfinished, i, r)
    {
        const char *ex = json_string_value(json_object_get(r, "executor"));
        const char *job = json_string_value(json_object_get(r, "job"));
        if (ex == NULL || strcmp(ex, lr->id) != 0 || job == NULL)
            continue;
        json_t *copy = json_deep_copy(r);
        json_object_set_new(copy, "failover",
                            json_boolean(json_is_true(json_object_get(lr->failover, job))));
        json_array_append_new(lr->runs, copy);
    }
    json_decref(unfinished);
    if (lr->rc == 0 && json_array_size(lr->runs) > 0 && z->cfg.record_lost != NULL)
        lr->rc = z->cfg.record_lost(z->cfg.arg, lr->runs, lr->id, &lr->err);
}

/* Release every shard of lost executor k, resuming after what the store says it fired. */
static void release(struct zk *z, int32_t k, const json_t *last)
{
    size_t pos = 0;
    const char *name;
    void *v;
    size_t n = 0;
    while (strmap_next(&z->jobs, &pos, &name, &v)) {
        struct zjob *j = v;
        const json_t *per = json_object_get(last, name); /* {"<shard>": instant} */
        for (uint32_t s = 0; s < j->shards; s++) {
            if (j->owner[s] != k)
                continue;
            char key[16];
            snprintf(key, sizeof key, "%u", s);
            json_int_t fired = json_integer_value(json_object_get(per, key));
            j->owner[s] = -1;
            j->from[s] = k;
            j->since[s] = fired > j->since[s] ? fired : j->since[s];
            /* it may have started fires after that whose records died with it: up to when it
             * was found lost (its lease had ended before), they are recorded, not made */
            j->unsure[s] = z->execs[k].lost_ms / 1000;
            if (j->since[s] == 0) /* nothing ever fired: from the owner's start */
                j->since[s] = z->execs[k].info.started_ms / 1000;
            n++;
        }
        for (size_t i = 0; i < j->n_local; i++)
            if (j->local[i] == (uint32_t)k)
                j->local[i--] = j->local[--j->n_local];
    }
    z->execs[k].shards = z->execs[k].jobs_held = 0;
    z->execs[k].dirty = true; /* its head: an empty base */
    z->execs[k].full = true;
    log_info("a lost executor's shards are free", "executor=%s shards=%zu", z->execs[k].id, n);
}

static void plan(struct zk *z);

static void lost_done(uv_work_t *w, int status)
{
    struct lost_read *lr = w->data;
    struct zk *z = lr->z;
    z->publishing = false;
    coord_zk__work_end(z); /* z lives on: the loop runs this callback before close ends */
    struct zexec *e = coord_zk__exec(z, lr->id, false);
    if (status == 0 && lr->rc == 0 && e != NULL && !e->online && !z->closing) {
        release(z, exec_index(z, e), lr->last);
        /* its runs of failover jobs are made again once their shards' new owners have them */
        size_t i;
        json_t *r;
        json_array_foreach(lr->runs, i, r)
        {
            if (!json_is_true(json_object_get(r, "failover")))
                continue;
            const char *fire = json_string_value(json_object_get(r, "fire_id"));
            const char *hash = fire ? strrchr(fire, '#') : NULL;
            if (hash == NULL)
                continue;
            json_array_append_new(
                z->failovers,
                json_pack("{s:O, s:s#, s:O, s:O, s:I}", "job", json_object_get(r, "job"), "base",
                          fire, (int)(hash - fire), "at", json_object_get(r, "scheduled_at"),
                          "shard", json_object_get(r, "shard"), "attempt",
                          json_integer_value(json_object_get(r, "attempt")) + 1));
        }
        plan(z);
    } else if (!z->closing) {
        log_warn("cannot read what a lost executor last fired; trying again",
                 "executor=%s "
                 "error=\"%s\"",
                 lr->id, lr->rc ? lr->err.msg : "canceled");
        coord_zk__changed(z); /* the plan asks again */
    }
    json_decref(lr->last);
    json_decref(lr->held);
    json_decref(lr->runs);
    json_decref(lr->failover);
    free(lr);
}

/* Start reading what lost executor e fired; true when a read was started. */
static bool read_lost(struct zk *z, struct zexec *e)
{
    int64_t since = 0;
    int32_t k = exec_index(z, e);
    size_t pos = 0;
    const char *name;
    void *v;
    bool any = false;
    json_t *held = json_object();
    while (held != NULL && strmap_next(&z->jobs, &pos, &name, &v)) {
        struct zjob *j = v;
        json_t *per = NULL;
        for (uint32_t s = 0; s < j->shards; s++) {
            if (j->owner[s] != k)
                continue;
            if (!any || j->since[s] < since)
                since = j->since[s];
            any = true;
            if (per == NULL)
                json_object_set_new(held, name, per = json_object());
            char key[16];
            snprintf(key, sizeof key, "%u", s);
            json_object_set_new(per, key, json_integer(j->since[s]));
        }
    }
    struct lost_read *lr = any && held != NULL ? calloc(1, sizeof *lr) : NULL;
    if (lr == NULL) {
        json_decref(held);
        return false; /* nothing of it is left to hand on (or no memory: asked again) */
    }
    lr->held = held;
    lr->failover = json_object();
    pos = 0;
    while (strmap_next(&z->jobs, &pos, &name, &v))
        if (((struct zjob *)v)->failover)
            json_object_set_new(lr->failover, name, json_true());
    lr->z = z;
    snprintf(lr->id, sizeof lr->id, "%s", e->id);
    lr->since = since;
    lr->work.data = lr;
    if (uv_queue_work(z->loop, &lr->work, lost_work, lost_done) != 0) {
        json_decref(lr->failover);
        json_decref(lr->held);
        free(lr);
        return false;
    }
    coord_zk__work_begin(z);
    z->publishing = true;
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Publishing
 */

/* One executor's part of a publication. */
struct pub_exec {
    int32_t k;
    struct coord_placement_head h; /* its head once published */
    bool full;                     /* h is a new base: older chunks go */
    struct strmap names;           /* the changed jobs it covers, given back on failure */
};

struct publish {
    struct zk *z;
    struct pub_exec *x;
    size_t n;
    size_t pending; /* chunk writes in flight */
    bool failed;
};

static void publish_free(struct publish *p)
{
    for (size_t i = 0; p->x != NULL && i < p->n; i++)
        strmap_free(&p->x[i].names);
    free(p->x);
    free(p);
}

static void publish_failed(struct zk *z, struct publish *p, const char *what, int zrc)
{
    log_warn("the placement was not published; reading it back and planning again",
             "step=%s error=%s", what, zkc_strerror(zrc));
    /* the changes it carried are still to be published */
    for (size_t i = 0; i < p->n; i++) {
        struct zexec *e = &z->execs[p->x[i].k];
        size_t pos = 0;
        const char *name;
        void *v;
        while (strmap_next(&p->x[i].names, &pos, &name, &v))
            if (strmap_put(&e->changed, name, e) != 0)
                e->full = true;
        e->full |= p->x[i].full;
        e->dirty = true;
    }
    publish_free(p);
    z->publishing = false;
    z->replan = false;
    coord_zk__read_placements(z); /* its head reads call coord_zk__changed */
}

static void on_old_chunk_deleted(void *arg, const struct zkc_reply *r)
{
    (void)arg;
    (void)r;
}

struct gc {
    struct zk *z;
    char id[COORD_ID_MAX];
    struct coord_placement_head h; /* its chunks stay */
};

static void on_chunk_names(void *arg, const struct zkc_reply *r)
{
    struct gc *g = arg;
    for (int i = 0; r->rc == ZOK && i < r->n_children; i++) {
        long long gen = strtoll(r->children[i], NULL, 10);
        bool keep = false;
        for (uint32_t q = 0; q < g->h.n_parts && !keep; q++)
            keep = g->h.parts[q].gen == gen;
        if (keep)
            continue;
        char path[192];
        snprintf(path, sizeof path, "/chunks/%s/%s", g->id, r->children[i]);
        coord_zk__delete(g->z, path, -1, on_old_chunk_deleted, NULL);
    }
    free(g);
}

/* After a new base: the chunks of older generations go (a reader still on them finds them
 * gone and reads the head again). */
static void collect_garbage(struct zk *z, const struct zexec *e)
{
    struct gc *g = calloc(1, sizeof *g);
    if (g == NULL)
        return;
    g->z = z;
    snprintf(g->id, sizeof g->id, "%s", e->id);
    g->h = e->head;
    char path[128];
    snprintf(path, sizeof path, "/chunks/%s", e->id);
    if (coord_zk__children(z, path, NULL, NULL, on_chunk_names, g) != 0)
        free(g);
}

static void on_published(void *arg, const struct zkc_reply *r)
{
    struct publish *p = arg;
    struct zk *z = p->z;
    if (r->rc != ZOK) {
        publish_failed(z, p, "multi", r->rc);
        return;
    }
    size_t bases = 0;
    for (size_t i = 0; i < p->n; i++) {
        struct zexec *e = &z->execs[p->x[i].k];
        e->head_version = e->head_known ? e->head_version + 1 : 0;
        e->gen = p->x[i].h.gen;
        e->head = p->x[i].h;
        e->head_known = true;
        if (p->x[i].full) {
            bases++;
            collect_garbage(z, e);
        }
        if (e->waiting_ack)
            coord_zk__acked(z, e); /* lost meanwhile, or already there */
    }
    log_info("placement published", "executors=%zu bases=%zu plans=%lld moves=%lld", p->n, bases,
             (long long)z->plans, (long long)z->moves);
    publish_free(p);
    z->publishing = false;
    coord_zk__failovers(z);
    if (z->replan)
        coord_zk__changed(z);
}

/* Every chunk is written: flip the heads, all at once, if we still lead. */
static void flip(struct publish *p)
{
    struct zk *z = p->z;
    if (p->n == 0) { /* nothing could be encoded: nothing to flip */
        z->publishing = false;
        publish_free(p);
        return;
    }
    struct zkc_op *ops = calloc(p->n + 1, sizeof *ops);
    char **paths = calloc(p->n, sizeof *paths);
    struct strbuf *heads = calloc(p->n, sizeof *heads);
    int rc = ops == NULL || paths == NULL || heads == NULL ? TY_ENOMEM : 0;
    if (rc == 0) {
        ops[0].type = ZKC_OP_CHECK;
        ops[0].path = z->election_node;
        ops[0].version = -1;
    }
    for (size_t i = 0; rc == 0 && i < p->n; i++) {
        struct zexec *e = &z->execs[p->x[i].k];
        struct coord_placement_head *h = &p->x[i].h;
        h->at_ms = wall_ms();
        h->session = e->online ? e->session : 0;
        snprintf(h->leader, sizeof h->leader, "%s", z->cfg.id);
        sb_init(&heads[i]);
        if (coord_placement_head_encode(h, &heads[i]) != 0 ||
            asprintf(&paths[i], "/placements/%s", e->id) < 0) {
            paths[i] = NULL;
            rc = TY_ENOMEM;
            break;
        }
        struct zkc_op *op = &ops[i + 1];
        op->type = e->head_known ? ZKC_OP_SET : ZKC_OP_CREATE;
        op->path = paths[i];
        op->data = sb_str(&heads[i]);
        op->len = (int)heads[i].len;
        op->version = e->head_known ? e->head_version : -1;
    }
    if (rc == 0)
        rc = coord_zk__multi(z, ops, (int)p->n + 1, on_published, p);
    for (size_t i = 0; paths != NULL && heads != NULL && i < p->n; i++) {
        free(paths[i]);
        sb_free(&heads[i]);
    }
    free(paths);
    free(heads);
    free(ops);
    if (rc != 0)
        publish_failed(z, p, "flip", ZSYSTEMERROR);
}

static void on_chunk_written(void *arg, const struct zkc_reply *r)
{
    struct publish *p = arg;
    if (r->rc != ZOK)
        p->failed = true;
    if (--p->pending > 0)
        return;
    if (p->failed)
        publish_failed(p->z, p, "chunks", r->rc);
    else
        flip(p);
}

/* A chunk being written. */
struct chunk_write {
    struct publish *p;
    char path[192];
    struct strbuf data;
};

/* A chunk node of a generation newer than the head can only be left by a publication
 * that failed before its flip (here or on a leader that died): no head names it, so it is
 * overwritten. */
static void on_chunk_made(void *arg, const struct zkc_reply *r)
{
    struct chunk_write *w = arg;
    struct publish *p = w->p;
    if (r->rc == ZNODEEXISTS && coord_zk__set(p->z, w->path, sb_str(&w->data), (int)w->data.len, -1,
                                              on_chunk_written, p) == 0) {
        sb_free(&w->data);
        free(w);
        return;
    }
    sb_free(&w->data);
    free(w);
    on_chunk_written(p, r);
}

static void on_parent_made(void *arg, const struct zkc_reply *r)
{
    struct zkc_reply ok = *r;
    if (r->rc == ZNODEEXISTS)
        ok.rc = ZOK;
    on_chunk_written(arg, &ok);
}

/* Executor k's entry for job j (named so) into *p, which the caller clears: 1, or 0 when k
 * holds none of its shards, or TY_ENOMEM. */
static int entry_of(struct zk *z, int32_t k, const char *name, const struct zjob *j,
                    struct coord_placement *p)
{
    memset(p, 0, sizeof *p);
    uint32_t m = 0;
    int64_t since = 0;
    int32_t from = -1;
    if (j->strategy == JOB_STRATEGY_LOCAL) {
        for (size_t i = 0; i < j->n_local; i++)
            if (j->local[i] == (uint32_t)k)
                m = j->shards;
    } else {
        for (uint32_t s = 0; s < j->shards; s++) {
            if (j->owner[s] != k)
                continue;
            m++;
            if (j->since[s] > since)
                since = j->since[s];
            if (j->from[s] >= 0 && from < 0)
                from = j->from[s];
            if (j->from[s] >= 0 && j->unsure[s] > p->uncertain)
                p->uncertain = j->unsure[s];
        }
    }
    if (m == 0)
        return 0;
    p->job = strdup(name);
    p->version = j->version;
    p->job_shards = j->shards;
    p->resume_after = since;
    if (j->strategy != JOB_STRATEGY_LOCAL && m < j->shards) {
        if ((p->shards = malloc(m * sizeof *p->shards)) == NULL)
            return TY_ENOMEM;
        for (uint32_t s = 0; s < j->shards; s++)
            if (j->owner[s] == k)
                p->shards[p->n_shards++] = s;
    }
    if (from >= 0 && (p->from = strdup(z->execs[from].id)) == NULL)
        return TY_ENOMEM;
    return p->job != NULL ? 1 : TY_ENOMEM;
}

/* Add an entry to a growing array.  0 or TY_ENOMEM. */
static int push(struct coord_placement **ps, size_t *n, size_t *cap,
                const struct coord_placement *p)
{
    if (*n == *cap) {
        size_t grown = *cap ? 2 * *cap : 64;
        struct coord_placement *bigger = realloc(*ps, grown * sizeof *bigger);
        if (bigger == NULL)
            return TY_ENOMEM;
        *ps = bigger;
        *cap = grown;
    }
    (*ps)[(*n)++] = *p;
    return 0;
}

/* Executor k's whole placement (full) or the entries of its changed jobs, a drop for one
 * it no longer holds (the caller clears and frees them).  0 or TY_ENOMEM. */
static int collect(struct zk *z, int32_t k, bool full, struct coord_placement **out, size_t *n_out)
{
    struct zexec *e = &z->execs[k];
    struct coord_placement *ps = NULL, p;
    size_t n = 0, cap = 0;
    size_t pos = 0;
    const char *name;
    void *v;
    int rc = 0;
    const struct strmap *from = full ? &z->jobs : &e->changed;
    while (rc == 0 && strmap_next(from, &pos, &name, &v)) {
        const struct zjob *j = full ? v : strmap_get(&z->jobs, name);
        int has = j != NULL ? entry_of(z, k, name, j, &p) : 0;
        if (has < 0) {
            rc = has;
        } else if (has == 0 && full) {
            continue;
        } else if (has == 0) {
            memset(&p, 0, sizeof p);
            p.job = strdup(name);
            p.drop = true;
            rc = p.job == NULL ? TY_ENOMEM : 0;
        }
        if (rc == 0)
            rc = push(&ps, &n, &cap, &p);
        if (rc != 0)
            coord_placement_clear(&p);
    }
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            coord_placement_clear(&ps[i]);
        free(ps);
        return rc;
    }
    *out = ps;
    *n_out = n;
    return 0;
}

/* Encode executor k's next placement into x (and the chunks to write): a delta of its
 * changed jobs, or a new base when it must (no head known, it was lost, or compaction is
 * due: the deltas would outgrow the base, or the parts their limit).  0, TY_ENOMEM or
 * TY_EINVAL (logged). */
static int prepare(struct zk *z, int32_t k, struct pub_exec *x, struct strbuf **chunks,
                   size_t *n_chunks)
{
    struct zexec *e = &z->execs[k];
    const struct coord_placement_head *old = &e->head;
    bool full = e->full || !e->head_known || old->n_parts == 0;
    int64_t gen = e->gen + 1;
    *chunks = NULL;
    *n_chunks = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct coord_placement *ps = NULL;
        size_t n = 0;
        struct ty_err err;
        int rc = collect(z, k, full, &ps, &n);
        if (rc == 0 && (full || n > 0))
            rc = coord_placements_encode(ps, n, COORD_ZK_CHUNK_BYTES, chunks, n_chunks, &err);
        else if (rc == TY_ENOMEM)
            ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        for (size_t i = 0; i < n; i++)
            coord_placement_clear(&ps[i]);
        free(ps);
        if (rc != 0) {
            log_error("cannot encode a placement", "executor=%s error=\"%s\"", e->id, err.msg);
            return rc;
        }
        int64_t bytes = 0;
        for (size_t c = 0; c < *n_chunks; c++)
            bytes += (int64_t)(*chunks)[c].len;
        memset(&x->h, 0, sizeof x->h);
        x->h.gen = gen;
        x->h.held = e->jobs_held;
        if (full) {
            x->h.parts[0] = (struct coord_placement_part){gen, (uint32_t)*n_chunks, bytes};
            x->h.n_parts = 1;
            x->h.chunks = (uint32_t)*n_chunks;
            x->h.jobs = (int64_t)n;
            x->full = true;
            return 0;
        }
        int64_t deltas = bytes;
        for (uint32_t q = 1; q < old->n_parts; q++)
            deltas += old->parts[q].bytes;
        bool fits = *n_chunks == 0 || old->n_parts < COORD_PARTS_MAX;
        if (fits && deltas <= old->parts[0].bytes) {
            x->h = *old;
            x->h.gen = gen;
            x->h.held = e->jobs_held;
            if (*n_chunks > 0)
                x->h.parts[x->h.n_parts++] =
                    (struct coord_placement_part){gen, (uint32_t)*n_chunks, bytes};
            x->h.chunks += (uint32_t)*n_chunks;
            x->h.jobs += (int64_t)n;
            x->full = false;
            return 0;
        }
        /* compaction: the whole placement instead */
        for (size_t c = 0; c < *n_chunks; c++)
            sb_free(&(*chunks)[c]);
        free(*chunks);
        *chunks = NULL;
        *n_chunks = 0;
        full = true;
    }
    return TY_EINVAL; /* not reached: the second attempt is a base */
}

static void publish(struct zk *z)
{
    struct publish *p = calloc(1, sizeof *p);
    size_t dirty = 0;
    for (size_t i = 0; i < z->n_execs; i++)
        dirty += z->execs[i].dirty;
    if (dirty > MULTI_MAX)
        dirty = MULTI_MAX; /* the rest in the next round */
    if (p == NULL || dirty == 0 || (p->x = calloc(dirty, sizeof *p->x)) == NULL) {
        if (p != NULL)
            publish_free(p);
        z->publishing = false;
        return;
    }
    p->z = z;
    z->publishing = true;
    p->pending = 1; /* ours, released below */
    for (size_t i = 0; i < z->n_execs && p->n < dirty; i++) {
        struct zexec *e = &z->execs[i];
        if (!e->dirty)
            continue;
        struct pub_exec *x = &p->x[p->n];
        struct strbuf *chunks = NULL;
        size_t n_chunks = 0;
        if (prepare(z, (int32_t)i, x, &chunks, &n_chunks) != 0)
            continue; /* stays dirty: tried again with the next change */
        x->k = (int32_t)i;
        x->names = e->changed; /* published now; given back if this fails */
        strmap_init(&e->changed);
        e->dirty = false;
        e->full = false;
        p->n++;
        if (!e->chunks_made) {
            /* the parent of its chunks (a second create finds it: fine) */
            char path[128];
            snprintf(path, sizeof path, "/chunks/%s", e->id);
            p->pending++;
            if (coord_zk__create(z, path, NULL, 0, 0, on_parent_made, p) != 0)
                p->pending--;
            e->chunks_made = true;
        }
        for (size_t c = 0; c < n_chunks; c++) {
            struct chunk_write *w = malloc(sizeof *w);
            p->pending++;
            if (w != NULL) {
                w->p = p;
                w->data = chunks[c]; /* kept for an overwrite */
                snprintf(w->path, sizeof w->path, "/chunks/%s/%lld-%zu", e->id, (long long)x->h.gen,
                         c);
            }
            if (w == NULL || coord_zk__create(z, w->path, sb_str(&w->data), (int)w->data.len, 0,
                                              on_chunk_made, w) != 0) {
                p->pending--;
                p->failed = true;
                sb_free(&chunks[c]);
                free(w);
            }
        }
        free(chunks);
    }
    struct zkc_reply none = {.rc = p->failed ? ZSYSTEMERROR : ZOK};
    on_chunk_written(p, &none);
}

/* ---------------------------------------------------------------------------------------
 * Planning (the leader)
 */

/* Executor k's placement changes for job `name` (NULL: only its head, e.g. for its new
 * session): it is published again, that job's entry in its next delta. */
static void mark(struct zk *z, int32_t k, const char *name)
{
    struct zexec *e = &z->execs[k];
    e->dirty = true;
    if (name != NULL && strmap_put(&e->changed, name, e) != 0)
        e->full = true; /* out of memory for the name: the whole placement is written */
}

void coord_zk__job_unplace(struct zk *z, const char *name, struct zjob *j)
{
    for (uint32_t s = 0; s < j->shards && j->owner != NULL; s++) {
        if (j->owner[s] >= 0) {
            mark(z, j->owner[s], name);
            if (z->execs[j->owner[s]].shards > 0)
                z->execs[j->owner[s]].shards--;
        }
        j->owner[s] = -1;
        j->from[s] = -1;
        j->since[s] = 0;
        j->unsure[s] = 0;
    }
    for (size_t i = 0; i < j->n_local; i++) {
        struct zexec *e = &z->execs[j->local[i]];
        mark(z, (int32_t)j->local[i], name);
        e->shards = e->shards > j->shards ? e->shards - j->shards : 0;
    }
    j->n_local = 0;
}

/* The registration of e as placement sees it; labels points into e (valid while it is). */
static void as_shard_executor(const struct zexec *e, struct shard_label *labels,
                              struct shard_executor *out)
{
    const struct coord_member_info *m = &e->info;
    for (size_t i = 0; i < m->n_labels; i++) {
        labels[i].key = m->labels[i].key;
        labels[i].value = m->labels[i].value;
    }
    out->id = e->id;
    out->labels = labels;
    out->n_labels = m->n_labels;
    out->domains = (const char *const *)m->domains;
    out->n_domains = m->n_domains;
    out->capacity = m->capacity;
}

static void job_view(const char *name, const struct zjob *j, struct shard_job *out)
{
    out->name = name;
    out->domain = j->domain != NULL ? j->domain : "";
    out->shards = j->shards;
    out->strategy = j->strategy;
    out->prefer = j->prefer;
    out->prefer_only = j->prefer_only;
}

/* Apply job j's (named so) new placement (where[n_where] over cluster indices map[]) to its
 * owners. */
static void apply_where(struct zk *z, const char *name, struct zjob *j, const uint32_t *where,
                        uint32_t n_where, const int32_t *map)
{
    if (j->strategy == JOB_STRATEGY_LOCAL) {
        uint32_t *l = n_where > 0 ? malloc(n_where * sizeof *l) : NULL;
        if (n_where > 0 && l == NULL)
            return;
        uint32_t n = 0;
        for (uint32_t i = 0; i < n_where; i++)
            if (where[i] != SHARD_NONE)
                l[n++] = (uint32_t)map[where[i]];
        /* executors that join or leave the job publish again */
        for (uint32_t i = 0; i < n; i++) {
            bool had = false;
            for (size_t k = 0; k < j->n_local && !had; k++)
                had = j->local[k] == l[i];
            if (!had) {
                mark(z, (int32_t)l[i], name);
                z->moves++;
            }
        }
        for (size_t k = 0; k < j->n_local; k++) {
            bool keeps = false;
            for (uint32_t i = 0; i < n && !keeps; i++)
                keeps = j->local[k] == l[i];
            if (!keeps)
                mark(z, (int32_t)j->local[k], name);
        }
        free(j->local);
        j->local = l;
        j->n_local = n;
        return;
    }
    for (uint32_t s = 0; s < j->shards && s < n_where; s++) {
        int32_t want = where[s] == SHARD_NONE ? -1 : map[where[s]];
        int32_t cur = j->owner[s];
        if (want == cur)
            continue;
        if (cur >= 0) { /* taken from a live owner: handed on once it says until when */
            j->owner[s] = -1;
            j->from[s] = cur;
            j->since[s] = SINCE_WAIT;
            mark(z, cur, name);
            z->execs[cur].waiting_ack = true;
            z->moves++;
        } else if (want >= 0 && j->since[s] != SINCE_WAIT) {
            j->owner[s] = want;
            mark(z, want, name);
            z->moves++;
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Jobs that cannot be highly available (the leader)
 */

struct ha_read {
    struct zk *z;
    json_t *open; /* {job: reason} of the not_ha alerts open */
    int rc;
    struct ty_err err;
    uv_work_t work;
};

/* Pool thread: the not_ha alerts open in the store, whoever raised them. */
static void ha_work(uv_work_t *w)
{
    struct ha_read *hr = w->data;
    struct store *st = NULL;
    json_t *alerts = NULL;
    hr->open = json_object();
    hr->rc = store_open(hr->z->cfg.store, true, &st, &hr->err);
    if (hr->rc == 0)
        hr->rc = store_alerts_open(st, &alerts, &hr->err);
    store_close(st);
    size_t i;
    json_t *a;
    json_array_foreach(alerts, i, a)
    {
        const char *kind = json_string_value(json_object_get(a, "kind"));
        const char *job = json_string_value(json_object_get(a, "job"));
        const char *reason = json_string_value(json_object_get(a, "reason"));
        if (kind != NULL && strcmp(kind, "not_ha") == 0 && job != NULL)
            json_object_set_new(hr->open, job, json_string(reason != NULL ? reason : ""));
    }
    json_decref(alerts);
}

static void ha_done(uv_work_t *w, int status)
{
    struct ha_read *hr = w->data;
    struct zk *z = hr->z;
    z->ha_reading = false;
    coord_zk__work_end(z);
    if (status == 0 && hr->rc == 0 && !z->closing && coord_zk_is_leader(&z->base)) {
        /* what is open for this ensemble's jobs is what the next plan compares with */
        const char *job;
        json_t *reason;
        json_object_clear(z->not_ha);
        json_object_foreach(hr->open, job, reason)
        {
            if (strmap_get(&z->jobs, job) != NULL)
                json_object_set(z->not_ha, job, reason);
        }
        z->ha_known = true;
        coord_zk__changed(z);
    } else if (!z->closing && hr->rc != 0) {
        log_warn("cannot read the open alerts; jobs that cannot be highly available are "
                 "reported after the next change",
                 "error=\"%s\"", hr->err.msg);
    }
    json_decref(hr->open);
    free(hr);
}

static void read_ha(struct zk *z)
{
    struct ha_read *hr = calloc(1, sizeof *hr);
    if (hr == NULL)
        return;
    hr->z = z;
    hr->work.data = hr;
    if (uv_queue_work(z->loop, &hr->work, ha_work, ha_done) != 0) {
        free(hr);
        return;
    }
    coord_zk__work_begin(z);
    z->ha_reading = true;
}

/* Why job j (its placement view) cannot be highly available among the executors of c, into
 * why[cap]; false when it can.  eligible has room for c's executors. */
static bool not_ha_reason(struct shard_cluster *c, const struct zjob *j,
                          const struct shard_job *view, uint32_t *eligible,
                          const struct shard_executor *ex, char *why, size_t cap)
{
    uint32_t n = shard_eligible(c, view, eligible);
    if (n == 0) {
        if (j->prefer_only && j->n_prefer > 0)
            snprintf(why, cap,
                     "no executor can run it: none of its preferred executors (%s%s) is online "
                     "and prefer_only is set; its fires are not made until one is",
                     j->prefer[0], j->n_prefer > 1 ? ", ..." : "");
        else if (j->domain != NULL && j->domain[0] != '\0')
            snprintf(why, cap,
                     "no executor can run it: none online with capacity serves domain %s; its "
                     "fires are not made until one does",
                     j->domain);
        else
            snprintf(why, cap,
                     "no executor can run it: none online has capacity; its fires are not made "
                     "until one has");
        return true;
    }
    if (n == 1 && j->failover) {
        snprintf(why, cap,
                 "failover is on but only executor %s can run it: its runs have nowhere to go "
                 "if it is lost",
                 ex[eligible[0]].id);
        return true;
    }
    return false;
}

/* After a plan: report the jobs whose "cannot be highly available" state changed. */
static void report_not_ha(struct zk *z, struct shard_cluster *c, const struct shard_slot *slots,
                          const char *const *names, size_t k, const struct shard_executor *ex,
                          size_t n_ex)
{
    if (z->cfg.not_ha == NULL || !z->ha_known || n_ex == 0)
        return; /* with no executor at all, each executor's own alert says it */
    uint32_t *eligible = calloc(n_ex, sizeof *eligible);
    json_t *now = json_object();
    if (eligible == NULL || now == NULL) {
        free(eligible);
        json_decref(now);
        return;
    }
    for (size_t i = 0; i < k; i++) {
        const struct zjob *j = strmap_get(&z->jobs, names[i]);
        char why[512];
        if (j == NULL || !not_ha_reason(c, j, &slots[i].job, eligible, ex, why, sizeof why))
            continue;
        json_object_set_new(now, names[i], json_string(why));
        const char *was = json_string_value(json_object_get(z->not_ha, names[i]));
        if (was == NULL || strcmp(was, why) != 0)
            z->cfg.not_ha(z->cfg.arg, names[i], j->domain ? j->domain : "", j->level, why);
    }
    const char *job;
    json_t *v;
    json_object_foreach(z->not_ha, job, v)
    {
        const struct zjob *j = strmap_get(&z->jobs, job); /* NULL: deleted, or moved away */
        if (json_object_get(now, job) == NULL)
            z->cfg.not_ha(z->cfg.arg, job, j && j->domain ? j->domain : "", j ? j->level : 0, NULL);
    }
    json_decref(z->not_ha);
    z->not_ha = now;
    free(eligible);
}

static void plan(struct zk *z)
{
    bool leader = coord_zk_is_leader(&z->base);
    if (!leader || z->closing || !z->connected)
        return;
    if (z->publishing) {
        z->replan = true;
        return;
    }
    z->replan = false;
    z->first_change_ms = 0;
    if (z->cfg.not_ha != NULL && !z->ha_known && !z->ha_reading)
        read_ha(z); /* placement goes on; the reports start once it is read */
    /* lost executors first: their shards are free once the store says what they fired */
    for (size_t i = 0; i < z->n_execs; i++) {
        struct zexec *e = &z->execs[i];
        if (!e->online && e->head_known && read_lost(z, e))
            return; /* lost_done plans again */
    }
    /* the executors that may take shards */
    struct shard_executor *ex = calloc(z->n_execs + 1, sizeof *ex);
    int32_t *map = calloc(z->n_execs + 1, sizeof *map);
    int32_t *back = calloc(z->n_execs + 1, sizeof *back);
    size_t n_labels = 0;
    for (size_t i = 0; i < z->n_execs; i++)
        n_labels += z->execs[i].info.n_labels;
    struct shard_label *labels = calloc(n_labels + 1, sizeof *labels);
    size_t n = 0, used = 0;
    for (size_t i = 0;
         ex != NULL && map != NULL && back != NULL && labels != NULL && i < z->n_execs; i++) {
        struct zexec *e = &z->execs[i];
        back[i] = -1;
        if (!e->online || !e->have_info || e->info.url == NULL)
            continue;
        as_shard_executor(e, labels + used, &ex[n]);
        used += e->info.n_labels;
        map[n] = (int32_t)i;
        back[i] = (int32_t)n;
        n++;
    }
    struct shard_cluster c;
    struct ty_err err;
    memset(&c, 0, sizeof c);
    size_t n_jobs = z->jobs.len;
    struct shard_slot *slots = calloc(n_jobs + 1, sizeof *slots);
    uint64_t *load = calloc(n + 1, sizeof *load);
    const char **names = calloc(n_jobs + 1, sizeof *names);
    int rc = ex == NULL || map == NULL || back == NULL || labels == NULL || slots == NULL ||
                     load == NULL || names == NULL
                 ? TY_ENOMEM
                 : shard_cluster_init(&c, ex, n, &err);
    size_t k = 0;
    if (rc == 0) {
        size_t pos = 0;
        const char *name;
        void *v;
        while (rc == 0 && strmap_next(&z->jobs, &pos, &name, &v)) {
            struct zjob *j = v;
            if (j->version == 0)
                continue; /* known only from a placement: the job is gone or not read yet */
            struct shard_slot *sl = &slots[k];
            job_view(name, j, &sl->job);
            uint32_t len = shard_where_len(&c, &sl->job);
            sl->where = malloc((len ? len : 1) * sizeof *sl->where);
            if (sl->where == NULL) {
                rc = TY_ENOMEM;
                break;
            }
            shard_where_init(&sl->job, sl->where, &sl->n_where);
            if (j->strategy == JOB_STRATEGY_LOCAL) {
                sl->n_where = 0;
                for (size_t q = 0; q < j->n_local; q++)
                    if (back[j->local[q]] >= 0)
                        sl->where[sl->n_where++] = (uint32_t)back[j->local[q]];
            } else {
                for (uint32_t s = 0; s < j->shards; s++)
                    sl->where[s] = j->owner[s] >= 0 && back[j->owner[s]] >= 0
                                       ? (uint32_t)back[j->owner[s]]
                                       : SHARD_NONE;
            }
            names[k] = name;
            k++;
        }
    }
    struct shard_counts counts = {0};
    if (rc == 0)
        rc = shard_plan(&c, slots, k, load, &counts, &err);
    if (rc == 0) {
        for (size_t i = 0; i < k; i++) {
            struct zjob *j = strmap_get(&z->jobs, names[i]);
            if (j->dirty) { /* a new version: its owners tell their executors */
                for (uint32_t s = 0; s < j->shards; s++)
                    if (j->owner[s] >= 0)
                        mark(z, j->owner[s], names[i]);
                for (size_t q = 0; q < j->n_local; q++)
                    mark(z, (int32_t)j->local[q], names[i]);
                j->dirty = false;
            }
            apply_where(z, names[i], j, slots[i].where, slots[i].n_where, map);
        }
        z->plans++;
        report_not_ha(z, &c, slots, names, k, ex, n);
        /* what each holds now, for status */
        for (size_t i = 0; i < z->n_execs; i++)
            z->execs[i].shards = z->execs[i].jobs_held = 0;
        size_t pos = 0, seq = 0;
        const char *name;
        void *v;
        size_t *seen = calloc(z->n_execs + 1, sizeof *seen); /* the last job counted, +1 */
        while (strmap_next(&z->jobs, &pos, &name, &v)) {
            const struct zjob *j = v;
            seq++;
            for (uint32_t s = 0; s < j->shards; s++) {
                int32_t o = j->owner[s];
                if (o < 0)
                    continue;
                z->execs[o].shards++;
                if (seen != NULL && seen[o] != seq) { /* a job counts once per executor */
                    seen[o] = seq;
                    z->execs[o].jobs_held++;
                }
            }
            for (size_t q = 0; q < j->n_local; q++) {
                z->execs[j->local[q]].shards += j->shards;
                z->execs[j->local[q]].jobs_held++;
            }
        }
        free(seen);
    } else {
        log_error("cannot plan the placement", "error=\"%s\"",
                  rc == TY_ENOMEM ? "out of memory" : err.msg);
    }
    for (size_t i = 0; i < k; i++)
        free(slots[i].where);
    free(slots);
    free(names);
    free(load);
    shard_cluster_free(&c);
    free(labels);
    free(back);
    free(map);
    free(ex);
    if (counts.unplaced > 0)
        log_warn("shards without an eligible executor", "shards=%llu",
                 (unsigned long long)counts.unplaced);
    publish(z);
}

static void on_debounce(uv_timer_t *t)
{
    plan(t->data);
}

void coord_zk__changed(struct zk *z)
{
    coord_zk__snapshot(z);
    if (z->closing || !coord_zk_is_leader(&z->base))
        return;
    if (z->publishing) {
        z->replan = true;
        return;
    }
    /* gather changes for debounce_ms after the last, but never hold them more than five
     * times that */
    int64_t now = wall_ms();
    if (z->first_change_ms == 0)
        z->first_change_ms = now;
    int64_t wait = z->cfg.debounce_ms;
    if (now - z->first_change_ms + wait > 5 * (int64_t)z->cfg.debounce_ms)
        wait = 0;
    uv_timer_start(&z->debounce, on_debounce, (uint64_t)wait, 0);
}
