/*
 * jobs.c - the executor's table of jobs and calendars, filled by assignments.
 *
 * An assignment brings a job's definition; this table holds what firing needs: the
 * validated job, its zone table, its trigger-engine id, per-shard counts of runs going,
 * and the shard queues of the "queue" overlap policy.  A change of definition keeps the
 * entry (so runs in progress keep blocking overlapping fires) and bumps its generation,
 * so fires the engine handed over for the old definition are recognised and dropped.  A
 * removed job leaves the table at once but its entry lives until its last run has ended.
 *
 * Compact until a run needs it.  A restart brings every job at once, and a million of
 * them parsed (job_from_json: a 350-byte struct job and a dozen strings each, tens of
 * microseconds of jansson each) took more than a minute and a gigabyte.  Filing a job with
 * the trigger engine needs its schedule only.  So a job of the first full set of
 * assignments (while the executor starts, before it reconciles) is held compact: its
 * definition as compact text (core/job_text.c: the canonical JSON without the fields at
 * their default, a hundred-odd bytes) and the fields above def in struct xjob, in an entry
 * allocated without def (executor_impl.h).  It is parsed, and its entry grown, when a run
 * needs it: a fire (executor__job_by_id), recovery (executor__job_ready), run now and
 * retries (executor__job, once reconciled); it then stays ready.  A definition that cannot
 * be parsed then is logged and the job taken off the trigger engine.  Once the executor
 * runs, an assignment is parsed at once, as it was before: it may change a job with runs.
 *
 * Secret values come with the assignment (the executor never reads the store) and go into
 * the job's environment and into a mask set that hides them in its runs' output.  A run
 * keeps a reference to the set it started with, so changing a secret while a run goes
 * still hides the value that run was given.  A compact job keeps the values as they came.
 *
 * Shards.  In a cluster an assignment may give the job some of its shards only; which ones,
 * for which fires, is the job's `own` (shards.c), NULL when it has every shard as the
 * embedded server's executor does.  A new set of shards under the same definition (the same
 * version) changes nothing else: the definition, its schedule and its runs stay.
 *
 * Where firing resumes: a job new to this executor fires from the last fire known to have
 * been made (the assignment says what the store knows; the spool may know a later one
 * the store has not got yet), so fires missed while nobody held it meet its misfire
 * policy; a changed definition fires from now on.  Never before the last fire made: a
 * fire id must not repeat, even when the wall clock goes back.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../os/log.h"
#include "../tzdb/tzdb.h"
#include "executor_impl.h"

/* The bytes of a compact entry: everything before def. */
#define XJOB_COMPACT_SIZE offsetof(struct xjob, def)

static const char *xjob_name(const struct xjob *j)
{
    return j->text != NULL ? j->text : j->def.name;
}

/* A compact job's JSON text (after its name). */
static const char *xjob_json(const struct xjob *j)
{
    return j->text + strlen(j->text) + 1;
}

static struct xjob *make_ready(struct executor *x, struct xjob *j);

struct xjob *executor__job(struct executor *x, const char *name)
{
    struct xjob *j = strmap_get(&x->jobs, name);
    return j != NULL && j->text != NULL && x->reconciled ? make_ready(x, j) : j;
}

struct xjob *executor__job_ready(struct executor *x, const char *name)
{
    struct xjob *j = strmap_get(&x->jobs, name);
    return j != NULL && j->text != NULL ? make_ready(x, j) : j;
}

struct xjob *executor__job_by_id(struct executor *x, uint32_t id)
{
    struct xjob *j = id < x->ids_cap ? x->by_id[id] : NULL;
    return j != NULL && j->text != NULL ? make_ready(x, j) : j;
}

const struct calendar *executor__calendar_get(struct executor *x, const char *name)
{
    return strmap_get(&x->calendars, name);
}

int executor__id_alloc(struct executor *x, uint32_t *id)
{
    if (x->n_free_ids > 0) {
        *id = x->free_ids[--x->n_free_ids];
        return 0;
    }
    if (x->ids_used >= x->cfg.max_jobs)
        return TY_ERANGE;
    if (x->ids_used == x->ids_cap) {
        uint32_t cap = x->ids_cap ? x->ids_cap * 2 : 1024;
        struct xjob **n = realloc(x->by_id, cap * sizeof(struct xjob *));
        if (n == NULL)
            return TY_ENOMEM;
        x->by_id = n;
        uint32_t *f = realloc(x->free_ids, cap * sizeof(uint32_t));
        if (f == NULL)
            return TY_ENOMEM;
        x->free_ids = f;
        memset(n + x->ids_cap, 0, (cap - x->ids_cap) * sizeof(struct xjob *));
        x->ids_cap = cap;
    }
    *id = x->ids_used++;
    return 0;
}

void executor__id_free(struct executor *x, uint32_t id)
{
    x->free_ids[x->n_free_ids++] = id;
}

static void free_xjob(struct xjob *j)
{
    mask_set_unref(j->masks);
    free(j->own);
    if (j->text != NULL) {
        free(j->text);
        json_decref(j->secrets);
    } else {
        job_free(&j->def);
    }
    free(j->running);
    free(j->waiting_head);
    free(j);
}

void executor__job_release(struct executor *x, struct xjob *j)
{
    (void)x;
    if (j->refs > 0)
        j->refs--;
    if (j->deleted && j->refs == 0)
        free_xjob(j);
}

void executor__jobs_free(struct executor *x)
{
    size_t pos = 0;
    const char *key;
    void *val;
    while (strmap_next(&x->jobs, &pos, &key, &val))
        free_xjob(val);
    strmap_free(&x->jobs);
}

/* Make the per-shard arrays hold at least n shards.  They never shrink: runs of shards a
 * changed definition no longer has still count against their shard until they end. */
static int ensure_shards(struct xjob *j, uint32_t n)
{
    if (n <= j->shard_cap)
        return 0;
    uint32_t *r = realloc(j->running, n * sizeof *r);
    if (r == NULL)
        return TY_ENOMEM;
    j->running = r;
    struct xrun **w = realloc(j->waiting_head, n * sizeof(struct xrun *));
    if (w == NULL)
        return TY_ENOMEM;
    j->waiting_head = w;
    memset(j->running + j->shard_cap, 0, (n - j->shard_cap) * sizeof *r);
    memset(j->waiting_head + j->shard_cap, 0, (n - j->shard_cap) * sizeof(struct xrun *));
    j->shard_cap = n;
    return 0;
}

static void remove_job(struct executor *x, struct xjob *j)
{
    const char *name = xjob_name(j);
    sched_remove(x->sched, j->id);
    strmap_del(&x->jobs, name);
    x->by_id[j->id] = NULL;
    x->free_ids[x->n_free_ids++] = j->id;
    j->deleted = true;
    j->generation++;
    log_info("job removed", "job=%s", name);
    if (j->refs == 0)
        free_xjob(j);
}

/* What the trigger engine needs of a parsed job. */
static void sched_of(const struct job *def, struct job_sched *s)
{
    memset(s, 0, sizeof *s);
    s->enabled = def->enabled;
    s->scheduled = def->schedule != NULL;
    s->cron = def->cron;
    s->start_at = def->start_at;
    s->end_at = def->end_at;
    s->misfire_threshold = def->misfire_threshold;
    s->misfire = def->misfire;
    s->catch_up_max = def->catch_up_max;
    s->secrets = def->n_secret_env > 0;
}

static void schedule(struct executor *x, struct xjob *j, const struct job_sched *s, int64_t after)
{
    if (!s->enabled || !s->scheduled) {
        sched_remove(x->sched, j->id);
        return;
    }
    struct sched_spec sp = {
        s->cron,    j->zone,        s->start_at, s->end_at, s->misfire_threshold,
        s->misfire, s->catch_up_max};
    if (sched_set(x->sched, j->id, &sp, after, j->generation) != 0)
        log_error("cannot schedule job", "job=%s", xjob_name(j));
}

/*
 * Put the real secret values into def: from `secrets`, or (NULL) from those job `old`
 * holds now (NULL: none).  A value that cannot be found is not a reason to stop scheduling
 * the job: it is logged and the run gets an empty value.  Then the mask set for its output.
 */
static int load_secrets(const struct xjob *old, struct job *def, const json_t *secrets,
                        struct mask_set **masks)
{
    *masks = NULL;
    if (def->n_secret_env == 0)
        return 0;
    json_t *held = NULL;
    if (secrets == NULL && old != NULL)
        held = old->text != NULL ? json_incref(old->secrets) : job_secrets_json(&old->def);
    const json_t *from = secrets != NULL ? secrets : held;
    const char *values[JOB_ENV_MAX];
    size_t n = 0;
    for (size_t i = 0; i < def->n_secret_env; i++) {
        struct job_env *e = &def->secret_env[i];
        const char *v = json_string_value(json_object_get(from, e->name));
        if (v == NULL) {
            log_error("a secret of the job has no stored value; its runs get an empty value",
                      "job=%s variable=%s", def->name, e->name);
            v = "";
        }
        char *copy = strdup(v);
        if (copy == NULL) {
            json_decref(held);
            return TY_ENOMEM;
        }
        free(e->value);
        e->value = copy;
        if (n < JOB_ENV_MAX)
            values[n++] = e->value;
    }
    json_decref(held);
    return mask_set_new(values, n, masks);
}

/* Parse a job's (compact) JSON text into *def: it must be a job named `name`.  Its
 * "strategy" is the executor's to read (shards.c) and is taken out first: core/job.c is
 * only now learning that field, and the control plane checked it when the job was saved. */
static int parse_def(const char *name, const char *text, struct job *def, struct ty_err *err)
{
    json_error_t jerr;
    json_t *obj = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL) {
        memset(def, 0, sizeof *def);
        return ty_error(err, TY_EFORMAT, "job", -1, 0, "job %s: definition unreadable: %s", name,
                        jerr.text);
    }
    json_object_del(obj, "strategy");
    int rc = job_from_json(obj, def, err);
    json_decref(obj);
    if (rc == 0 && strcmp(def->name, name) != 0) {
        rc = ty_error(err, TY_EFORMAT, "name", -1, 0, "job %s: its definition is named \"%s\"",
                      name, def->name);
        job_free(def);
    }
    return rc;
}

/* Grow compact entry j to a ready one holding def (taken) and masks (taken): its pointer
 * changes, in the table too.  NULL (j and def untouched) when out of memory. */
static struct xjob *grow(struct executor *x, struct xjob *j, struct job *def,
                         struct mask_set *masks)
{
    if (ensure_shards(j, def->shards) != 0)
        return NULL;
    struct xjob *r = realloc(j, sizeof *r);
    if (r == NULL)
        return NULL;
    free(r->text);
    json_decref(r->secrets);
    r->text = NULL;
    r->secrets = NULL;
    r->def = *def;
    memset(def, 0, sizeof *def);
    mask_set_unref(r->masks);
    r->masks = masks;
    x->by_id[r->id] = r;
    strmap_put(&x->jobs, r->def.name, r); /* the name is there: only its value changes */
    return r;
}

/* Parse compact job j so that it can run.  NULL when its definition cannot be read (it is
 * then taken off the trigger engine until it is assigned again). */
static struct xjob *make_ready(struct executor *x, struct xjob *j)
{
    struct ty_err err;
    struct job def;
    struct mask_set *masks = NULL;
    int rc = parse_def(j->text, xjob_json(j), &def, &err);
    if (rc == 0 && load_secrets(j, &def, j->secrets, &masks) != 0)
        rc = ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    struct xjob *r = rc == 0 ? grow(x, j, &def, masks) : NULL;
    if (r == NULL) {
        if (rc == 0) {
            ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
            mask_set_unref(masks);
        }
        job_free(&def);
        log_error("a job's definition cannot be read; it does not fire until assigned again",
                  "job=%s error=\"%s\"", j->text, err.msg);
        sched_remove(x->sched, j->id);
    }
    return r;
}

/* Where a job new to this executor resumes firing (see the top). */
static int64_t resume_fresh(struct executor *x, struct xjob *j, const char *name,
                            int64_t store_last)
{
    json_t *v = json_object_get(x->last_fires, name);
    int64_t last = store_last;
    if (json_is_integer(v) && json_integer_value(v) > last)
        last = json_integer_value(v);
    if (last > j->last_fire)
        j->last_fire = last;
    if (last > 0)
        return j->last_fire;
    int64_t now = executor__now(x);
    return j->last_fire > now ? j->last_fire : now;
}

/* A new entry for job `name`, compact (size XJOB_COMPACT_SIZE) or ready, in the table with
 * a trigger-engine id.  NULL with err when the table is full or out of memory. */
static struct xjob *new_entry(struct executor *x, const char *name, size_t size, struct ty_err *err)
{
    struct xjob *j = calloc(1, size);
    int rc = j != NULL ? executor__id_alloc(x, &j->id) : TY_ENOMEM;
    if (rc != 0) {
        free(j);
        ty_error(err, rc, "name", -1, 0, "cannot hold more jobs (max_jobs %u)", x->cfg.max_jobs);
        return NULL;
    }
    x->by_id[j->id] = j;
    if (strmap_put(&x->jobs, name, j) != 0) {
        x->by_id[j->id] = NULL;
        x->free_ids[x->n_free_ids++] = j->id;
        free(j);
        ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        return NULL;
    }
    return j;
}

/* Hold job `name` compact: its compact text and, when it names secrets, their values. */
static int assign_compact(struct executor *x, struct xjob *j, const struct coord_assignment *a,
                          const struct strbuf *compact, const struct job_sched *s,
                          const struct tz_zone *zone, struct ty_err *err)
{
    size_t n = strlen(a->job);
    char *text = malloc(n + 1 + compact->len + 1);
    json_t *secrets = s->secrets && a->secrets != NULL ? json_deep_copy(a->secrets) : NULL;
    if (text == NULL || (s->secrets && a->secrets != NULL && secrets == NULL)) {
        free(text);
        json_decref(secrets);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    bool fresh = j == NULL;
    if (fresh && (j = new_entry(x, a->job, XJOB_COMPACT_SIZE, err)) == NULL) {
        free(text);
        json_decref(secrets);
        return err->code;
    }
    memcpy(text, a->job, n + 1);
    memcpy(text + n + 1, sb_str(compact), compact->len + 1);
    free(j->text);
    j->text = text;
    if (a->secrets != NULL || !s->secrets) { /* NULL: keep the values held */
        json_decref(j->secrets);
        j->secrets = secrets;
    }
    j->zone = zone;
    j->version = a->version;
    j->epoch = a->epoch;
    j->generation++;
    int64_t now = executor__now(x);
    schedule(x, j, s,
             fresh ? resume_fresh(x, j, a->job, a->resume_after)
                   : (j->last_fire > now ? j->last_fire : now));
    return 0;
}

/* Take a new entry out of the table again (its job could not be held after all). */
static void drop_new(struct executor *x, struct xjob *j, const char *name)
{
    strmap_del(&x->jobs, name);
    x->by_id[j->id] = NULL;
    x->free_ids[x->n_free_ids++] = j->id;
    free_xjob(j);
}

/* Hold job `name` ready, def (taken) parsed. */
static int assign_ready(struct executor *x, struct xjob *j, const struct coord_assignment *a,
                        struct job *def, const struct tz_zone *zone, struct ty_err *err)
{
    struct mask_set *masks = NULL;
    if (load_secrets(j, def, a->secrets, &masks) != 0) {
        job_free(def);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    bool fresh = j == NULL;
    if (fresh && (j = new_entry(x, a->job, sizeof *j, err)) == NULL) {
        mask_set_unref(masks);
        job_free(def);
        return err->code;
    }
    struct xjob *r = NULL;
    if (j->text != NULL) { /* compact until now: grown to hold the definition */
        r = grow(x, j, def, masks);
    } else if (ensure_shards(j, def->shards) == 0) {
        if (!fresh)
            job_free(&j->def);
        j->def = *def;
        mask_set_unref(j->masks);
        j->masks = masks;
        r = j;
    }
    if (r == NULL) {
        mask_set_unref(masks);
        job_free(def);
        if (fresh)
            drop_new(x, j, a->job);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    r->zone = zone;
    r->version = a->version;
    r->epoch = a->epoch;
    r->generation++;
    struct job_sched s;
    sched_of(&r->def, &s);
    int64_t now = executor__now(x);
    schedule(x, r, &s,
             fresh ? resume_fresh(x, r, a->job, a->resume_after)
                   : (r->last_fire > now ? r->last_fire : now));
    if (x->reconciled)
        log_info(fresh ? "job added" : "job changed", "job=%s version=%lld enabled=%d", r->def.name,
                 (long long)a->version, r->def.enabled);
    return 0;
}

/* The schedule compiled last, for the next assignment: a million jobs mostly share a few
 * schedules.  It holds no state of any executor (a schedule text and its compiled form), and
 * each executor assigns on its own loop thread: one per thread. */
static _Thread_local struct job_text_memo schedule_memo;

/* The job's text says "strategy": "local" (the field may be new to core/job.c: shards.c). */
static bool strategy_local(const struct strbuf *compact)
{
    const char *raw;
    size_t len;
    return job_text_member(sb_str(compact), compact->len, "strategy", &raw, &len) == 0 &&
           len == 7 && memcmp(raw, "\"local\"", 7) == 0;
}

/*
 * A held job given another set of shards under the definition it has (the same version):
 * the definition and the schedule stay as they are, so its fires go on exactly where they
 * were; the shards change at the cut (shards.c).  The epoch and secret values are the
 * assignment's.  j is ready.
 */
static int reassign_shards(struct executor *x, struct xjob *j, const struct coord_assignment *a,
                           bool local, int64_t cut, struct ty_err *err)
{
    int rc = executor__own_check(a, j->def.shards, err);
    if (rc == 0)
        rc = executor__own_assign(x, j, a, false, local, cut, err);
    if (rc != 0)
        return rc;
    if (a->secrets != NULL) {
        struct mask_set *masks = NULL;
        if (load_secrets(j, &j->def, a->secrets, &masks) != 0)
            return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        mask_set_unref(j->masks);
        j->masks = masks;
    }
    j->epoch = a->epoch;
    log_info("job's shards changed", "job=%s version=%lld shards=%u cut=%lld", j->def.name,
             (long long)a->version, a->shards != NULL ? a->n_shards : j->def.shards,
             (long long)cut);
    return 0;
}

int executor__assign(struct executor *x, const struct coord_assignment *a, int64_t cut,
                     struct ty_err *err)
{
    struct xjob *j = strmap_get(&x->jobs, a->job);
    if (a->definition == NULL) {
        if (j != NULL) {
            if (x->reconciled)
                executor__owed(x, a->job, cut); /* may make it ready: look it up again */
            remove_job(x, strmap_get(&x->jobs, a->job));
        }
        return 0;
    }
    struct ty_err local;
    if (err == NULL)
        err = &local;
    ty_err_clear(err);
    /* the compact text is never longer than the definition: most fit on the stack */
    size_t len = strlen(a->definition);
    char buf[4096];
    struct strbuf compact;
    if (len + 3 <= sizeof buf)
        sb_init_fixed(&compact, buf, sizeof buf);
    else
        sb_init(&compact);
    struct job_sched s;
    int plain = job_text_compact(a->definition, len, &compact, &s, &schedule_memo, err);
    if (plain < 0) {
        char why[TY_ERR_MSG_MAX];
        snprintf(why, sizeof why, "%s",
                 strncmp(err->msg, "job: ", 5) == 0 ? err->msg + 5 : err->msg);
        sb_free(&compact);
        return ty_error(err, plain == TY_ENOMEM ? TY_ENOMEM : TY_EFORMAT, "job", -1, 0,
                        "job %s: definition unreadable: %s", a->job, why);
    }
    bool is_local = strategy_local(&compact);
    int rc = is_local ? executor__local_fits(x, a->job, err) : 0;
    if (rc == 0 && j != NULL && x->reconciled && a->version == j->version &&
        executor__own_changes(j, a)) {
        j = executor__job_ready(x, a->job);
        rc = j != NULL ? reassign_shards(x, j, a, is_local, cut, err)
                       : ty_error(err, TY_EFORMAT, "job", -1, 0,
                                  "job %s: its definition cannot be read", a->job);
        sb_free(&compact);
        return rc;
    }
    if (rc != 0) {
        sb_free(&compact);
        return rc;
    }
    /* the first full set, for jobs without runs, is held compact when the text says plainly
     * when they fire (and names the job); everything else is parsed now */
    const char *name_raw;
    size_t name_len, n = strlen(a->job);
    bool compact_ok =
        !x->reconciled && (j == NULL || j->text != NULL) && plain == 0 &&
        job_text_member(sb_str(&compact), compact.len, "name", &name_raw, &name_len) == 0 &&
        name_len == n + 2 && memcmp(name_raw + 1, a->job, n) == 0;
    struct job def;
    memset(&def, 0, sizeof def);
    rc = compact_ok ? 0 : parse_def(a->job, sb_str(&compact), &def, err);
    if (rc == 0)
        rc = executor__own_check(a, compact_ok ? 0 : def.shards, err);
    const struct tz_zone *zone = NULL;
    if (rc == 0)
        rc = tzdb_get(compact_ok ? s.time_zone : def.time_zone, &zone, err);
    if (rc == 0 && compact_ok)
        rc = assign_compact(x, j, a, &compact, &s, zone, err);
    else if (rc == 0)
        rc = assign_ready(x, j, a, &def, zone, err);
    else
        job_free(&def);
    sb_free(&compact);
    struct xjob *held = rc == 0 ? strmap_get(&x->jobs, a->job) : NULL;
    if (held != NULL)
        rc = executor__own_assign(x, held, a, j == NULL, is_local, cut, err);
    return rc;
}

int executor__calendar(struct executor *x, const char *name, const char *json)
{
    struct calendar *old = strmap_del(&x->calendars, name);
    if (old != NULL) {
        calendar_free(old);
        free(old);
    }
    if (json == NULL)
        return 0;
    json_t *obj = json_loads(json, 0, NULL);
    struct calendar *c = calloc(1, sizeof *c);
    struct ty_err err;
    if (obj == NULL || c == NULL || calendar_from_json(obj, c, &err) != 0) {
        json_decref(obj);
        free(c);
        log_error("a calendar could not be loaded", "calendar=%s", name);
        return TY_EFORMAT;
    }
    json_decref(obj);
    if (strmap_put(&x->calendars, name, c) != 0) {
        calendar_free(c);
        free(c);
        return TY_ENOMEM;
    }
    return 0;
}
