/*
 * alerts.c - alerts as state changes.
 *
 * Each alert has a key that names its cause ("failed:<job>", "timeout:<run>",
 * "resource:disk"); the loop remembers which keys are open and writes to the store only
 * when one opens or closes, so nothing scans history to find problems and nothing is
 * raised twice.  A cause that goes away clears its alert: a job's next success clears
 * its failure, an on-time fire clears its misfire, a run's end clears its timeout alarm,
 * free space returning clears the disk alert.
 *
 * Resources are the one thing sampled (every 30 s and whenever the store writer changes
 * state): free space in the data directory, available memory, the store writer's health
 * and the executor queue.  The alert itself still only moves on a change.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "../os/log.h"
#include "server_impl.h"

#define DISK_MIN_BYTES (512ull * 1024 * 1024)
#define DISK_MIN_PCT   5
#define MEM_MIN_PCT    5

static bool is_open(struct server *s, const char *key)
{
    return strmap_get(&s->open_alerts, key) != NULL;
}

static void raise_alert(struct server *s, const char *key, const char *kind, const struct sjob *j,
                        int32_t shard, int64_t scheduled_at, const char *reason, json_t *detail)
{
    struct store_alert a = {
        key,   kind,  j ? j->def.name : NULL, j ? j->def.domain : NULL, j ? j->def.level : 0,
        0,     shard, scheduled_at,           server__now_ms(s),        reason,
        detail};
    server__store_alert(s, &a);
    if (!is_open(s, key)) {
        strmap_put(&s->open_alerts, key, (void *)1);
        log_warn("alert raised", "key=%s reason=\"%s\"", key, reason);
    }
    json_decref(detail);
}

static void clear_alert(struct server *s, const char *key)
{
    if (!is_open(s, key))
        return;
    strmap_del(&s->open_alerts, key);
    server__store_clear(s, key);
    log_info("alert cleared", "key=%s", key);
}

void alerts_job_failed(struct server *s, struct sjob *j, const struct srun *r, const char *reason)
{
    char key[JOB_NAME_MAX + 16], text[512];
    snprintf(key, sizeof key, "failed:%s", j->def.name);
    snprintf(text, sizeof text, "shard %u, attempt %u: %s (run %s)", r->shard, r->attempt, reason,
             r->run_id);
    const char *kind = strncmp(reason, "lost", 4) == 0 ? "lost" : "failed";
    raise_alert(s, key, kind, j, (int32_t)r->shard, r->scheduled_at, text,
                json_pack("{s:s, s:i, s:i}", "run_id", r->run_id, "shard", (int)r->shard, "attempt",
                          (int)r->attempt));
}

void alerts_job_ok(struct server *s, struct sjob *j)
{
    char key[JOB_NAME_MAX + 16];
    snprintf(key, sizeof key, "failed:%s", j->def.name);
    clear_alert(s, key);
}

void alerts_misfire(struct server *s, struct sjob *j, const struct sched_fire *f)
{
    char key[JOB_NAME_MAX + 16], text[256];
    snprintf(key, sizeof key, "misfire:%s", j->def.name);
    snprintf(text, sizeof text,
             "%s%llu fire(s) not started within the misfire threshold (%u s); policy %s",
             (f->flags & SCHED_F_AT_LEAST) ? "at least " : "", (unsigned long long)f->count,
             j->def.misfire_threshold,
             j->def.misfire == JOB_MISFIRE_SKIP       ? "skip: recorded as skipped"
             : j->def.misfire == JOB_MISFIRE_RUN_ONCE ? "run once: the latest ran"
                                                      : "catch up: the oldest ran");
    raise_alert(
        s, key, "misfire", j, -1, f->at, text,
        json_pack("{s:I, s:I}", "missed", (json_int_t)f->count, "last", (json_int_t)f->last));
}

void alerts_misfire_clear(struct server *s, struct sjob *j)
{
    char key[JOB_NAME_MAX + 16];
    snprintf(key, sizeof key, "misfire:%s", j->def.name);
    clear_alert(s, key);
}

void alerts_timeout(struct server *s, struct srun *r, bool on)
{
    char key[STORE_ID_MAX + 16];
    snprintf(key, sizeof key, "timeout:%s", r->run_id);
    if (!on) {
        clear_alert(s, key);
        return;
    }
    char text[256];
    snprintf(text, sizeof text, "shard %u has run longer than its timeout alarm (%u s)", r->shard,
             r->job->def.timeout_alarm);
    raise_alert(s, key, "timeout_alarm", r->job, (int32_t)r->shard, r->scheduled_at, text,
                json_pack("{s:s, s:i, s:I, s:i}", "run_id", r->run_id, "shard", (int)r->shard,
                          "started_at_ms", (json_int_t)r->started_at_ms, "alarm_s",
                          (int)r->job->def.timeout_alarm));
}

void alerts_job_defined(struct server *s, struct sjob *j)
{
    /* embedded: one executor, so a job that asks for failover cannot have it */
    char key[JOB_NAME_MAX + 16];
    snprintf(key, sizeof key, "not_ha:%s", j->def.name);
    if (j->def.failover && j->def.enabled)
        raise_alert(s, key, "not_ha", j, -1, 0,
                    "failover is on but only one executor (the embedded one) can run it", NULL);
    else
        clear_alert(s, key);
}

void alerts_job_removed(struct server *s, const char *name)
{
    static const char *const kinds[] = {"failed:", "misfire:", "not_ha:"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char key[JOB_NAME_MAX + 16];
        snprintf(key, sizeof key, "%s%s", kinds[i], name);
        clear_alert(s, key);
    }
}

/*
 * At start: the alerts the previous process left open are open still (so their causes can
 * clear them); a timeout alarm stays open only while its run, adopted, goes on.
 */
void alerts_load(struct server *s, const json_t *open)
{
    size_t i;
    const json_t *a;
    json_array_foreach(open, i, a)
    {
        const char *key = json_string_value(json_object_get(a, "key"));
        if (key != NULL)
            strmap_put(&s->open_alerts, key, (void *)1);
    }
}

void alerts_recovered(struct server *s)
{
    json_t *stale = json_array();
    size_t pos = 0;
    const char *key;
    void *val;
    while (strmap_next(&s->open_alerts, &pos, &key, &val)) {
        if (strncmp(key, "timeout:", 8) != 0)
            continue;
        struct srun *r = strmap_get(&s->runs, key + 8);
        if (r != NULL)
            r->alarm_raised = true; /* cleared when the adopted run ends */
        else
            json_array_append_new(stale, json_string(key));
    }
    size_t i;
    json_t *k;
    json_array_foreach(stale, i, k)
    {
        clear_alert(s, json_string_value(k));
    }
    json_decref(stale);
}

static void resource(struct server *s, const char *key, bool bad, const char *reason, bool *state)
{
    if (bad && is_open(s, key)) {
        *state = bad; /* still bad: nothing changed */
        return;
    }
    if (bad)
        raise_alert(s, key, "resource", NULL, -1, 0, reason,
                    json_pack("{s:s}", "resource", key + strlen("resource:")));
    else
        clear_alert(s, key);
    *state = bad;
}

static long long meminfo(const char *field)
{
    FILE *fp = fopen("/proc/meminfo", "re");
    if (fp == NULL)
        return -1;
    char line[256];
    long long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, fp) != NULL) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtoll(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(fp);
    return v;
}

void alerts_resources(struct server *s)
{
    char text[TY_ERR_MSG_MAX + 128];
    struct statvfs vfs;
    if (statvfs(s->data_dir, &vfs) == 0 && vfs.f_blocks > 0) {
        unsigned long long avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
        unsigned long long pct = 100ull * vfs.f_bavail / vfs.f_blocks;
        snprintf(text, sizeof text, "data directory %s: %llu MiB free (%llu%%)", s->data_dir,
                 avail >> 20, pct);
        resource(s, "resource:disk", avail < DISK_MIN_BYTES || pct < DISK_MIN_PCT, text,
                 &s->resource_disk_low);
    }
    long long total = meminfo("MemTotal"), avail = meminfo("MemAvailable");
    if (total > 0 && avail >= 0) {
        snprintf(text, sizeof text, "memory: %lld MiB available of %lld MiB", avail >> 10,
                 total >> 10);
        resource(s, "resource:memory", avail * 100 < total * MEM_MIN_PCT, text,
                 &s->resource_mem_low);
    }
    bool failing = atomic_load(&s->st_failing) != 0;
    snprintf(text, sizeof text,
             "history store cannot be written: %s; results are kept in "
             "memory and retried",
             s->st_error);
    resource(s, "resource:store", failing, text, &s->resource_store_failing);
    if (s->resource_queue_full && s->q_len <= s->opts.queue_max / 2)
        s->resource_queue_full = false;
    snprintf(text, sizeof text, "executor queue full (%u waiting, capacity %u running)", s->q_len,
             s->opts.max_runs);
    bool qf = s->resource_queue_full;
    resource(s, "resource:queue", qf, text, &s->resource_queue_full);
}
