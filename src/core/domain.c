/*
 * domain.c - domains, the limits they put on their jobs, and calendars.
 *
 * A domain is a path in the organisation tree ("bank/settlement"); every domain on the way
 * from a job's own domain up to the root may limit the jobs in its subtree (how many, how
 * often one may fire, how many shards one may have).  Domains do not need to exist for a
 * job to name them: a missing domain sets no limits, so a tree can be declared top-down or
 * not at all.  The limits are checked when a job is added or changed (domain_check_job);
 * the caller gathers the chain and the job counts, which keeps this file free of storage.
 *
 * A calendar is a sorted array of days, so "is this day a holiday?" on the fire path is a
 * binary search without allocation.
 *
 * The JSON checks come from job.c (job__check_fields and friends) so a domain or calendar
 * is refused in the same words as a job.
 */
#include "domain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "civil.h"

#define LEVEL_DEFAULT     5
#define TEXT_MAX          4096
#define MAX_JOBS_MAX      INT64_C(10000000)
#define MIN_INTERVAL_MAX  (365 * INT64_C(86400)) /* job_min_interval looks one year ahead */
#define CALENDAR_DAYS_MAX 100000
#define SHOW_MAX          64

/* Refuse input: fill err as ty_error does and evaluate to TY_EINVAL.  A macro so that the
 * static analyser, which cannot see into ty_err.c, knows every refusal is non-zero. */
#define invalid(err, field, ...)                                                                   \
    (ty_error((err), TY_EINVAL, (field), -1, 0, __VA_ARGS__), TY_EINVAL)

static int oom(struct ty_err *err)
{
    (void)ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    return TY_ENOMEM;
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int domain_check_path(const char *field, const char *path, struct ty_err *err)
{
    char shown[SHOW_MAX];
    job__quote(path, shown, sizeof shown);
    size_t n = strlen(path);
    if (n == 0)
        return 0; /* the root */
    if (n > DOMAIN_PATH_MAX)
        return invalid(err, field, "%s: %s is %zu bytes long; at most %d", field, shown, n,
                       DOMAIN_PATH_MAX);
    for (const char *seg = path; *seg;) {
        size_t len = strcspn(seg, "/");
        if (len == 0)
            return invalid(err, field,
                           "%s: %s has an empty part; parts are joined by single '/', with none "
                           "at either end",
                           field, shown);
        if (!is_alnum(seg[0]))
            return invalid(err, field, "%s: %s: each part must start with a letter or digit", field,
                           shown);
        for (size_t i = 1; i < len; i++) {
            char c = seg[i];
            if (!is_alnum(c) && c != '.' && c != '_' && c != '-')
                return invalid(err, field,
                               "%s: %s has a character other than letters, digits, '.', '_', "
                               "'-' and '/' at byte %zu",
                               field, shown, (size_t)(seg - path) + i);
        }
        seg += len;
        if (*seg == '/') {
            seg++;
            if (*seg == '\0')
                return invalid(err, field,
                               "%s: %s ends with '/'; parts are joined by single '/', with none "
                               "at either end",
                               field, shown);
        }
    }
    return 0;
}

/* ---- domains ------------------------------------------------------------------------------- */

int domain_from_json(const json_t *obj, struct domain *out, struct ty_err *err)
{
    static const char *const fields[] = {"path", "level", "description", "limits"};
    static const char *const limit_fields[] = {"max_jobs", "min_interval", "max_shards"};
    char shown[SHOW_MAX];
    struct domain d;
    memset(&d, 0, sizeof d);
    memset(out, 0, sizeof *out);
    ty_err_clear(err);
    int rc;
    int64_t level;
    if (!json_is_object(obj)) {
        rc = obj ? invalid(err, "", "the domain must be a JSON object {\"path\": ...}; got %s",
                           job__show(obj, shown, sizeof shown))
                 : invalid(err, "", "no domain given");
        return rc;
    }
    const json_t *limits = json_object_get(obj, "limits");
    if (json_is_null(limits))
        limits = NULL;
    if ((rc = job__check_fields(obj, "", fields, 4, err)) != 0)
        goto fail;
    if (json_object_get(obj, "path") == NULL || json_is_null(json_object_get(obj, "path"))) {
        rc = invalid(err, "path", "path: missing; every domain needs a path (\"\" for the root)");
        goto fail;
    }
    if ((rc = job__get_text(obj, "", "path", SIZE_MAX, "", &d.path, err)) != 0 ||
        (rc = domain_check_path("path", d.path, err)) != 0 ||
        (rc = job__get_int(obj, "", "level", 0, 9, LEVEL_DEFAULT, &level, err)) != 0 ||
        (rc = job__get_text(obj, "", "description", TEXT_MAX, "", &d.description, err)) != 0)
        goto fail;
    d.level = (int)level;
    if (limits != NULL && !json_is_object(limits)) {
        rc = invalid(err, "limits",
                     "limits: %s is not an object; expected "
                     "{\"max_jobs\": N, \"min_interval\": S, \"max_shards\": N}",
                     job__show(limits, shown, sizeof shown));
        goto fail;
    }
    if (limits != NULL && ((rc = job__check_fields(limits, "limits", limit_fields, 3, err)) != 0 ||
                           (rc = job__get_int(limits, "limits", "max_jobs", 0, MAX_JOBS_MAX, 0,
                                              &d.max_jobs, err)) != 0 ||
                           (rc = job__get_int(limits, "limits", "min_interval", 0, MIN_INTERVAL_MAX,
                                              0, &d.min_interval, err)) != 0 ||
                           (rc = job__get_int(limits, "limits", "max_shards", 0, JOB_SHARDS_MAX, 0,
                                              &d.max_shards, err)) != 0))
        goto fail;
    *out = d;
    return 0;
fail:
    domain_free(&d);
    return rc;
}

json_t *domain_to_json(const struct domain *d)
{
    return json_pack("{s:s, s:i, s:s, s:{s:I, s:I, s:I}}", "path", d->path ? d->path : "", "level",
                     d->level, "description", d->description ? d->description : "", "limits",
                     "max_jobs", (json_int_t)d->max_jobs, "min_interval",
                     (json_int_t)d->min_interval, "max_shards", (json_int_t)d->max_shards);
}

void domain_free(struct domain *d)
{
    free(d->path);
    free(d->description);
    memset(d, 0, sizeof *d);
}

void domain_parent(const char *path, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, path, n);
    buf[n] = '\0';
}

bool domain_within(const char *path, const char *ancestor)
{
    size_t n = strlen(ancestor);
    if (n == 0)
        return true;
    return strncmp(path, ancestor, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* 'domain "bank"', or 'the root domain'. */
static const char *domain_label(const struct domain *d, char *buf, size_t cap)
{
    if (d->path == NULL || d->path[0] == '\0')
        snprintf(buf, cap, "the root domain");
    else
        snprintf(buf, cap, "domain \"%s\"", d->path);
    return buf;
}

int domain_check_job(const struct domain *const *chain, const int64_t *jobs_in_subtree, size_t n,
                     const struct job *j, int64_t min_interval, struct ty_err *err)
{
    char label[DOMAIN_PATH_MAX + 32];
    for (size_t i = 0; i < n; i++) {
        const struct domain *d = chain[i];
        if (d == NULL)
            continue;
        if (d->max_shards > 0 && j->shards > d->max_shards)
            return invalid(err, "shards", "%s: at most %lld shards per job; this job has %u",
                           domain_label(d, label, sizeof label), (long long)d->max_shards,
                           j->shards);
        if (d->min_interval > 0 && min_interval > 0 && min_interval < d->min_interval)
            return invalid(err, "schedule",
                           "%s: jobs may fire at most every %lld s; this schedule fires %lld s "
                           "apart",
                           domain_label(d, label, sizeof label), (long long)d->min_interval,
                           (long long)min_interval);
        if (d->max_jobs > 0 && jobs_in_subtree != NULL && jobs_in_subtree[i] >= d->max_jobs)
            return invalid(err, "domain", "%s: at most %lld jobs; it has %lld",
                           domain_label(d, label, sizeof label), (long long)d->max_jobs,
                           (long long)jobs_in_subtree[i]);
    }
    return 0;
}

/* ---- calendars ----------------------------------------------------------------------------- */

static int day_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int calendar_from_json(const json_t *obj, struct calendar *out, struct ty_err *err)
{
    static const char *const fields[] = {"name", "description", "dates"};
    char shown[SHOW_MAX], path[32];
    struct calendar c;
    memset(&c, 0, sizeof c);
    memset(out, 0, sizeof *out);
    ty_err_clear(err);
    int rc;
    if (!json_is_object(obj))
        return obj ? invalid(err, "", "the calendar must be a JSON object {\"name\": ...}; got %s",
                             job__show(obj, shown, sizeof shown))
                   : invalid(err, "", "no calendar given");
    if ((rc = job__check_fields(obj, "", fields, 3, err)) != 0)
        goto fail;
    if (json_object_get(obj, "name") == NULL || json_is_null(json_object_get(obj, "name"))) {
        rc = invalid(err, "name", "name: missing; every calendar needs a name");
        goto fail;
    }
    if ((rc = job__get_text(obj, "", "name", SIZE_MAX, NULL, &c.name, err)) != 0 ||
        (rc = job_check_name("name", c.name, err)) != 0 ||
        (rc = job__get_text(obj, "", "description", TEXT_MAX, "", &c.description, err)) != 0)
        goto fail;
    const json_t *dates = json_object_get(obj, "dates");
    if (dates != NULL && !json_is_null(dates)) {
        if (!json_is_array(dates)) {
            rc = invalid(err, "dates", "dates: %s is not an array; expected [\"YYYY-MM-DD\", ...]",
                         job__show(dates, shown, sizeof shown));
            goto fail;
        }
        size_t n = json_array_size(dates);
        if (n > CALENDAR_DAYS_MAX) {
            rc = invalid(err, "dates", "dates: %zu dates; at most %d", n, CALENDAR_DAYS_MAX);
            goto fail;
        }
        c.days = malloc((n ? n : 1) * sizeof *c.days);
        if (c.days == NULL) {
            rc = oom(err);
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            const json_t *v = json_array_get(dates, i);
            snprintf(path, sizeof path, "dates[%zu]", i);
            if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
                rc = invalid(err, path,
                             "%s: %s is not a date; expected "
                             "\"YYYY-MM-DD\"",
                             path, job__show(v, shown, sizeof shown));
                goto fail;
            }
            if ((rc = job__parse_date(json_string_value(v), path, &c.days[i], err)) != 0)
                goto fail;
        }
        qsort(c.days, n, sizeof *c.days, day_cmp);
        for (size_t i = 0; i < n; i++) {
            if (c.n_days == 0 || c.days[c.n_days - 1] != c.days[i])
                c.days[c.n_days++] = c.days[i];
        }
    }
    *out = c;
    return 0;
fail:
    calendar_free(&c);
    return rc;
}

json_t *calendar_to_json(const struct calendar *c)
{
    json_t *dates = json_array();
    for (size_t i = 0; dates && i < c->n_days; i++) {
        char buf[11];
        job__format_date(c->days[i], buf);
        if (json_array_append_new(dates, json_string(buf)) != 0) {
            json_decref(dates);
            dates = NULL;
        }
    }
    if (dates == NULL)
        return NULL;
    /* "o" hands dates over, even when packing fails */
    return json_pack("{s:s, s:s, s:o}", "name", c->name ? c->name : "", "description",
                     c->description ? c->description : "", "dates", dates);
}

void calendar_free(struct calendar *c)
{
    free(c->name);
    free(c->description);
    free(c->days);
    memset(c, 0, sizeof *c);
}

bool calendar_has(const struct calendar *c, int64_t day)
{
    size_t lo = 0, hi = c->n_days;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->days[mid] < day)
            lo = mid + 1;
        else if (c->days[mid] > day)
            hi = mid;
        else
            return true;
    }
    return false;
}
