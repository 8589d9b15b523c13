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
 * Secret values come with the assignment (the executor never reads the store) and go into
 * the job's environment and into a mask set that hides them in its runs' output.  A run
 * keeps a reference to the set it started with, so changing a secret while a run goes
 * still hides the value that run was given.
 *
 * Where firing resumes: a job new to this executor fires from the last fire known to have
 * been made (the assignment says what the store knows; the spool may know a later one
 * the store has not got yet), so fires missed while nobody held it meet its misfire
 * policy; a changed definition fires from now on.  Never before the last fire made: a
 * fire id must not repeat, even when the wall clock goes back.
 */
#include <stdlib.h>
#include <string.h>

#include "../os/log.h"
#include "../tzdb/tzdb.h"
#include "executor_impl.h"

struct xjob *executor__job(struct executor *x, const char *name)
{
    return strmap_get(&x->jobs, name);
}

struct xjob *executor__job_by_id(struct executor *x, uint32_t id)
{
    return id < x->ids_cap ? x->by_id[id] : NULL;
}

const struct calendar *executor__calendar_get(struct executor *x, const char *name)
{
    return strmap_get(&x->calendars, name);
}

static int alloc_id(struct executor *x, uint32_t *id)
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

static void free_xjob(struct xjob *j)
{
    mask_set_unref(j->masks);
    job_free(&j->def);
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
    sched_remove(x->sched, j->id);
    strmap_del(&x->jobs, j->def.name);
    x->by_id[j->id] = NULL;
    x->free_ids[x->n_free_ids++] = j->id;
    j->deleted = true;
    j->generation++;
    log_info("job removed", "job=%s", j->def.name);
    if (j->refs == 0)
        free_xjob(j);
}

static void schedule(struct executor *x, struct xjob *j, int64_t after)
{
    if (!j->def.enabled || j->def.schedule == NULL) {
        sched_remove(x->sched, j->id);
        return;
    }
    struct sched_spec sp = {j->def.cron,
                            j->zone,
                            j->def.start_at,
                            j->def.end_at,
                            j->def.misfire_threshold,
                            j->def.misfire,
                            j->def.catch_up_max};
    if (sched_set(x->sched, j->id, &sp, after, j->generation) != 0)
        log_error("cannot schedule job", "job=%s", j->def.name);
}

/*
 * Put the real secret values into def: from `secrets`, or (NULL) from the definition
 * held now.  A value that cannot be found is not a reason to stop scheduling the job: it
 * is logged and the run gets an empty value.  Then the mask set for its output.
 */
static int load_secrets(struct xjob *old, struct job *def, const json_t *secrets,
                        struct mask_set **masks)
{
    *masks = NULL;
    if (def->n_secret_env == 0)
        return 0;
    json_t *held = secrets == NULL && old != NULL ? job_secrets_json(&old->def) : NULL;
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

/* Where a job new to this executor resumes firing (see the top). */
static int64_t resume_fresh(struct executor *x, struct xjob *j, int64_t store_last)
{
    json_t *v = json_object_get(x->last_fires, j->def.name);
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

int executor__assign(struct executor *x, const struct coord_assignment *a, struct ty_err *err)
{
    struct xjob *j = executor__job(x, a->job);
    if (a->definition == NULL) {
        if (j != NULL)
            remove_job(x, j);
        return 0;
    }
    json_error_t jerr;
    json_t *obj = json_loads(a->definition, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL)
        return ty_error(err, TY_EFORMAT, "job", -1, 0, "job %s: definition unreadable: %s", a->job,
                        jerr.text);
    struct job def;
    int rc = job_from_json(obj, &def, err);
    json_decref(obj);
    if (rc != 0)
        return rc;
    if (strcmp(def.name, a->job) != 0) {
        rc = ty_error(err, TY_EFORMAT, "name", -1, 0, "job %s: its definition is named \"%s\"",
                      a->job, def.name);
        job_free(&def);
        return rc;
    }
    const struct tz_zone *zone;
    if ((rc = tzdb_get(def.time_zone, &zone, err)) != 0) {
        job_free(&def);
        return rc;
    }
    struct mask_set *masks = NULL;
    if (load_secrets(j, &def, a->secrets, &masks) != 0) {
        job_free(&def);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    bool fresh = j == NULL;
    if (fresh) {
        j = calloc(1, sizeof *j);
        if (j == NULL || (rc = alloc_id(x, &j->id)) != 0) {
            free(j);
            mask_set_unref(masks);
            job_free(&def);
            return ty_error(err, rc ? rc : TY_ENOMEM, "name", -1, 0,
                            "cannot hold more jobs (max_jobs %u)", x->cfg.max_jobs);
        }
    }
    if (ensure_shards(j, def.shards) != 0) {
        mask_set_unref(masks);
        job_free(&def);
        if (fresh) {
            x->free_ids[x->n_free_ids++] = j->id;
            free_xjob(j);
        }
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    if (!fresh)
        job_free(&j->def);
    j->def = def;
    mask_set_unref(j->masks);
    j->masks = masks;
    j->zone = zone;
    j->version = a->version;
    j->epoch = a->epoch;
    j->generation++;
    if (fresh) {
        x->by_id[j->id] = j;
        if (strmap_put(&x->jobs, j->def.name, j) != 0) {
            x->by_id[j->id] = NULL;
            x->free_ids[x->n_free_ids++] = j->id;
            free_xjob(j);
            return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        }
    }
    int64_t now = executor__now(x);
    schedule(x, j,
             fresh ? resume_fresh(x, j, a->resume_after)
                   : (j->last_fire > now ? j->last_fire : now));
    if (x->reconciled)
        log_info(fresh ? "job added" : "job changed", "job=%s version=%lld enabled=%d", j->def.name,
                 (long long)a->version, j->def.enabled);
    return 0;
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
