/*
 * jobs.c - the loop's table of jobs and calendars.
 *
 * The store holds the definitions; this table holds what firing needs: the validated job,
 * its zone table, its trigger-engine id, per-shard counts of runs going, and the shard
 * queues of the "queue" overlap policy.  A change of definition keeps the entry (so runs
 * in progress keep blocking overlapping fires) and bumps its generation, so fires the
 * engine handed over for the old definition are recognised and dropped.  A deleted job
 * leaves the table at once but its entry lives until its last run has ended.
 *
 * Secret values come with the change (the HTTP thread read them; the loop never reads the
 * store) and go into the job's environment and into a mask set that hides them in its
 * runs' output.  A run keeps a reference to the set it started with, so changing a
 * secret while a run goes still hides the value that run was given.
 */
#include <stdlib.h>
#include <string.h>

#include "../os/log.h"
#include "../tzdb/tzdb.h"
#include "server_impl.h"

struct sjob *jobs_find(struct server *s, const char *name)
{
    return strmap_get(&s->jobs, name);
}

struct sjob *jobs_by_id(struct server *s, uint32_t id)
{
    return id < s->ids_cap ? s->by_id[id] : NULL;
}

const struct calendar *jobs_calendar(struct server *s, const char *name)
{
    return strmap_get(&s->calendars, name);
}

static int alloc_id(struct server *s, uint32_t *id)
{
    if (s->n_free_ids > 0) {
        *id = s->free_ids[--s->n_free_ids];
        return 0;
    }
    if (s->ids_used >= s->opts.max_jobs)
        return TY_ERANGE;
    if (s->ids_used == s->ids_cap) {
        uint32_t cap = s->ids_cap ? s->ids_cap * 2 : 1024;
        struct sjob **n = realloc(s->by_id, cap * sizeof(struct sjob *));
        uint32_t *f = realloc(s->free_ids, cap * sizeof(uint32_t));
        if (n == NULL || f == NULL) {
            if (n != NULL)
                s->by_id = n;
            if (f != NULL)
                s->free_ids = f;
            return TY_ENOMEM;
        }
        memset(n + s->ids_cap, 0, (cap - s->ids_cap) * sizeof(struct sjob *));
        s->by_id = n;
        s->free_ids = f;
        s->ids_cap = cap;
    }
    *id = s->ids_used++;
    return 0;
}

static void free_sjob(struct sjob *j)
{
    mask_set_unref(j->masks);
    job_free(&j->def);
    free(j->running);
    free(j->waiting_head);
    free(j);
}

/* Drop a reference a run held; frees a deleted job with its last run. */
void jobs_release(struct server *s, struct sjob *j)
{
    (void)s;
    if (j->refs > 0)
        j->refs--;
    if (j->deleted && j->refs == 0)
        free_sjob(j);
}

/* Make the per-shard arrays hold at least n shards.  They never shrink: runs of shards a
 * changed definition no longer has still count against their shard until they end. */
static int ensure_shards(struct sjob *j, uint32_t n)
{
    if (n <= j->shard_cap)
        return 0;
    uint32_t *r = realloc(j->running, n * sizeof *r);
    if (r == NULL)
        return TY_ENOMEM;
    j->running = r;
    struct srun **w = realloc(j->waiting_head, n * sizeof(struct srun *));
    if (w == NULL)
        return TY_ENOMEM;
    j->waiting_head = w;
    memset(j->running + j->shard_cap, 0, (n - j->shard_cap) * sizeof *r);
    memset(j->waiting_head + j->shard_cap, 0, (n - j->shard_cap) * sizeof(struct srun *));
    j->shard_cap = n;
    return 0;
}

static void remove_job(struct server *s, struct sjob *j)
{
    if (s->sched != NULL)
        sched_remove(s->sched, j->id);
    strmap_del(&s->jobs, j->def.name);
    s->by_id[j->id] = NULL;
    s->free_ids[s->n_free_ids++] = j->id;
    alerts_job_removed(s, j->def.name);
    j->deleted = true;
    j->generation++;
    log_info("job removed", "job=%s", j->def.name);
    if (j->refs == 0)
        free_sjob(j);
}

/*
 * Where the trigger engine should start looking for this job's next fire: never before the
 * last fire the job made, so that no fire is made twice, even when the wall clock has gone
 * back since (the fire id would repeat).  At start, right after the last fire made (from
 * the store), so fires missed while the server was down meet the job's misfire policy; for
 * a changed definition, from now on.
 */
static int64_t resume_after(struct server *s, struct sjob *j)
{
    int64_t now = server__now(s);
    if (s->last_fires != NULL) {
        json_t *v = json_object_get(s->last_fires, j->def.name);
        if (json_is_integer(v) && json_integer_value(v) > j->last_fire)
            j->last_fire = json_integer_value(v);
        if (json_is_integer(v))
            return j->last_fire;
    }
    return j->last_fire > now ? j->last_fire : now;
}

/*
 * The job's next scheduled fire as the trigger engine makes it: the first after the last
 * fire made (or now), within its dates; 0 when there is none.  Computed here because the
 * engine takes a change a moment after it is made, and the answer to the change must
 * already show the new schedule.
 */
int64_t jobs_next_fire(struct server *s, const struct sjob *j)
{
    if (!j->def.enabled || j->def.schedule == NULL)
        return 0;
    int64_t now = server__now(s), from = j->last_fire > now ? j->last_fire : now, t;
    if (j->def.start_at != 0 && from < j->def.start_at - 1)
        from = j->def.start_at - 1;
    if (cron_next(&j->def.cron, j->zone, from, &t) != 0 ||
        (j->def.end_at != 0 && t > j->def.end_at))
        return 0;
    return t;
}

static void schedule(struct server *s, struct sjob *j, int64_t after)
{
    if (!j->def.enabled || j->def.schedule == NULL) {
        sched_remove(s->sched, j->id);
        return;
    }
    struct sched_spec sp = {j->def.cron,
                            j->zone,
                            j->def.start_at,
                            j->def.end_at,
                            j->def.misfire_threshold,
                            j->def.misfire,
                            j->def.catch_up_max};
    if (sched_set(s->sched, j->id, &sp, after, j->generation) != 0)
        log_error("cannot schedule job", "job=%s", j->def.name);
}

/*
 * Put the real secret values into def: from `secrets`, or (NULL) from the definition the
 * loop holds now.  A value that cannot be found is not a reason to stop scheduling the
 * job: it is logged and the run gets an empty value.  Then the mask set for its output.
 */
static int load_secrets(struct sjob *old, struct job *def, const json_t *secrets,
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

int jobs_apply(struct server *s, const char *name, const char *json, int64_t version,
               const json_t *secrets, struct ty_err *err)
{
    struct sjob *j = jobs_find(s, name);
    if (json == NULL) {
        if (j != NULL)
            remove_job(s, j);
        return 0;
    }
    json_error_t jerr;
    json_t *obj = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL)
        return ty_error(err, TY_EFORMAT, "job", -1, 0, "job %s: stored JSON unreadable: %s", name,
                        jerr.text);
    struct job def;
    int rc = job_from_json(obj, &def, err);
    json_decref(obj);
    if (rc != 0)
        return rc;
    const struct tz_zone *zone;
    if ((rc = tzdb_get(def.time_zone, &zone, err)) != 0) {
        job_free(&def);
        return rc;
    }
    struct mask_set *masks = NULL;
    if (load_secrets(j, &def, secrets, &masks) != 0) {
        job_free(&def);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    bool fresh = j == NULL;
    if (fresh) {
        j = calloc(1, sizeof *j);
        if (j == NULL || (rc = alloc_id(s, &j->id)) != 0) {
            free(j);
            mask_set_unref(masks);
            job_free(&def);
            return ty_error(err, rc ? rc : TY_ENOMEM, "name", -1, 0,
                            "cannot hold more jobs (max_jobs %u)", s->opts.max_jobs);
        }
    }
    if (ensure_shards(j, def.shards) != 0) {
        mask_set_unref(masks);
        job_free(&def);
        if (fresh) {
            s->free_ids[s->n_free_ids++] = j->id;
            free_sjob(j);
        }
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    if (!fresh)
        job_free(&j->def);
    j->def = def;
    mask_set_unref(j->masks);
    j->masks = masks;
    j->zone = zone;
    j->version = version;
    j->generation++;
    if (fresh) {
        s->by_id[j->id] = j;
        if (strmap_put(&s->jobs, j->def.name, j) != 0) {
            s->by_id[j->id] = NULL;
            s->free_ids[s->n_free_ids++] = j->id;
            free_sjob(j);
            return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        }
    }
    schedule(s, j, resume_after(s, j));
    alerts_job_defined(s, j);
    if (s->last_fires == NULL)
        log_info(fresh ? "job added" : "job changed", "job=%s version=%lld enabled=%d", j->def.name,
                 (long long)version, j->def.enabled);
    return 0;
}

int jobs_calendar_apply(struct server *s, const char *name, const char *json)
{
    struct calendar *old = strmap_del(&s->calendars, name);
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
        log_error("a stored calendar could not be loaded", "calendar=%s", name);
        return TY_EFORMAT;
    }
    json_decref(obj);
    if (strmap_put(&s->calendars, name, c) != 0) {
        calendar_free(c);
        free(c);
        return TY_ENOMEM;
    }
    return 0;
}
