/*
 * store_common.c - the logic every store implementation needs and none should repeat.
 *
 * store.h promises the same answers whichever database runs, so what decides an answer
 * without the database lives here, once: which arguments a call refuses and with what
 * message, how exact percentiles are picked, what a cursor looks like, and how
 * jobs_get_many's rows, in whatever order a database gives them, become one answer.  A
 * second implementation that copied these would drift from the first one message at a time.
 *
 * Everything here is pure: no database, no clock, no allocation except a percentile
 * list's growth and what it builds for a back end (the percentiles' JSON, jobs_get_many's
 * list of names and its answer).  The checks run before a call touches its database, so a
 * refused call has changed nothing and costs nothing.
 */
#include "store_common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/b64.h"
#include "../core/civil.h"
#include "../core/strbuf.h"
#include "../core/utf8.h"

/* ---------------------------------------------------------------------------------------
 * Argument checks.
 */

const char *store__kind_name(enum store_kind k)
{
    switch (k) {
    case STORE_JOB: return "job";
    case STORE_DOMAIN: return "domain";
    case STORE_CALENDAR: return "calendar";
    }
    return NULL;
}

int store__check_obj(const char *op, enum store_kind kind, const char *name, const char **kn,
                     struct ty_err *err)
{
    *kn = store__kind_name(kind);
    if (*kn == NULL)
        return ty_error(err, TY_EINVAL, "kind", -1, 0, "%s: kind %d is not a config object kind",
                        op, (int)kind);
    if (name == NULL || *name == '\0' || strnlen(name, STORE__NAME_MAX + 1) > STORE__NAME_MAX)
        return ty_error(err, TY_EINVAL, "name", -1, 0, "%s %s: name must be 1 to %d bytes", op, *kn,
                        STORE__NAME_MAX);
    return 0;
}

int store__check_id(const char *v, size_t max, const char *field, const char *op,
                    struct ty_err *err)
{
    if (v == NULL || *v == '\0')
        return ty_error(err, TY_EINVAL, field, -1, 0, "%s: %s is missing", op, field);
    if (strnlen(v, max) >= max)
        return ty_error(err, TY_EINVAL, field, -1, 0, "%s: %s is longer than %zu bytes", op, field,
                        max - 1);
    return 0;
}

int store__check_run(const struct store_run *r, const char **status, const char **trigger,
                     struct ty_err *err)
{
    int rc;
    if ((rc = store__check_id(r->run_id, STORE_ID_MAX, "run_id", "run_put", err)) != 0 ||
        (rc = store__check_id(r->fire_id, STORE_FIRE_ID_MAX, "fire_id", "run_put", err)) != 0 ||
        (rc = store__check_id(r->job, STORE__NAME_MAX + 1, "job", "run_put", err)) != 0)
        return rc;
    *status = store_run_status_name(r->status);
    *trigger = store_trigger_name(r->trigger);
    if (*status == NULL)
        return ty_error(err, TY_EINVAL, "status", -1, 0, "run_put run %s: status %d is unknown",
                        r->run_id, (int)r->status);
    if (*trigger == NULL)
        return ty_error(err, TY_EINVAL, "trigger", -1, 0, "run_put run %s: trigger %d is unknown",
                        r->run_id, (int)r->trigger);
    if (r->attempt < 1)
        return ty_error(err, TY_EINVAL, "attempt", -1, 0,
                        "run_put run %s: attempt must be 1 or more", r->run_id);
    if (r->output_len > (size_t)STORE_OUTPUT_MAX || (r->output == NULL && r->output_len != 0))
        return ty_error(err, TY_EINVAL, "output", -1, 0,
                        "run_put run %s: output of %zu bytes (at most %d, and not NULL)", r->run_id,
                        r->output_len, STORE_OUTPUT_MAX);
    return 0;
}

int store__check_skip(const struct store_skip *k, const char **reason, const char **trigger,
                      struct ty_err *err)
{
    int rc;
    if ((rc = store__check_id(k->fire_id, STORE_FIRE_ID_MAX, "fire_id", "skip_put", err)) != 0 ||
        (rc = store__check_id(k->job, STORE__NAME_MAX + 1, "job", "skip_put", err)) != 0)
        return rc;
    *reason = store_skip_reason_name(k->reason);
    *trigger = store_trigger_name(k->trigger);
    if (*reason == NULL)
        return ty_error(err, TY_EINVAL, "reason", -1, 0, "skip_put fire %s: reason %d is unknown",
                        k->fire_id, (int)k->reason);
    if (*trigger == NULL)
        return ty_error(err, TY_EINVAL, "trigger", -1, 0, "skip_put fire %s: trigger %d is unknown",
                        k->fire_id, (int)k->trigger);
    if (k->shard < -1)
        return ty_error(err, TY_EINVAL, "shard", -1, 0,
                        "skip_put fire %s: shard %" PRId32 " (-1 for the whole fire)", k->fire_id,
                        k->shard);
    return 0;
}

int store__check_alert(const struct store_alert *a, struct ty_err *err)
{
    int rc;
    if ((rc = store__check_id(a->key, STORE__NAME_MAX + 1, "key", "alert_raise", err)) != 0 ||
        (rc = store__check_id(a->kind, STORE__NAME_MAX + 1, "kind", "alert_raise", err)) != 0)
        return rc;
    if (a->reason == NULL)
        return ty_error(err, TY_EINVAL, "reason", -1, 0, "alert_raise %s: reason is missing",
                        a->key);
    return 0;
}

int store__check_hash(const char *op, const char *hash, char out[STORE__HASH_HEX + 1],
                      struct ty_err *err)
{
    size_t n = hash != NULL ? strnlen(hash, STORE__HASH_HEX + 1) : 0;
    bool ok = n == STORE__HASH_HEX;
    for (size_t i = 0; ok && i < n; i++) {
        char c = hash[i];
        ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        out[i] = c >= 'A' && c <= 'F' ? (char)(c - 'A' + 'a') : c;
    }
    if (!ok)
        return ty_error(err, TY_EINVAL, "hash", -1, 0,
                        "%s: hash must be the SHA-256 of the token in hex (64 digits)", op);
    out[n] = '\0';
    return 0;
}

int store__check_secrets(const char *job, const json_t *values, struct ty_err *err)
{
    if (!json_is_object(values))
        return ty_error(err, TY_EINVAL, "values", -1, 0,
                        "secrets_put job \"%.100s\": values must be an object {\"NAME\": "
                        "\"value\"}",
                        job);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)values, k, v)
    {
        if (*k == '\0' || strnlen(k, STORE__NAME_MAX + 1) > STORE__NAME_MAX)
            return ty_error(err, TY_EINVAL, "values", -1, 0,
                            "secrets_put job \"%.100s\": a secret's name must be 1 to %d bytes",
                            job, STORE__NAME_MAX);
        if (!json_is_string(v))
            return ty_error(err, TY_EINVAL, "values", -1, 0,
                            "secrets_put job \"%.100s\": secret \"%.60s\" must be a string", job,
                            k);
        if (strlen(json_string_value(v)) != json_string_length(v))
            return ty_error(err, TY_EINVAL, "values", -1, 0,
                            "secrets_put job \"%.100s\": secret \"%.60s\" holds a NUL character",
                            job, k);
    }
    return 0;
}

int store__check_names(const char *op, const char *const *names, size_t n, struct ty_err *err)
{
    if (n > STORE__PAGE_MAX)
        return ty_error(err, TY_EINVAL, "names", -1, 0, "%s: %zu names, at most %d", op, n,
                        STORE__PAGE_MAX);
    if (names == NULL && n > 0)
        return ty_error(err, TY_EINVAL, "names", -1, 0, "%s: names is NULL", op);
    for (size_t i = 0; i < n; i++) {
        size_t len = names[i] != NULL ? strnlen(names[i], STORE__NAME_MAX + 1) : 0;
        if (len == 0 || len > STORE__NAME_MAX)
            return ty_error(err, TY_EINVAL, "names", -1, 0, "%s: names.%zu must be 1 to %d bytes",
                            op, i, STORE__NAME_MAX);
        /* the answer is keyed by name, and a JSON key is UTF-8 */
        if (utf8_invalid_at((const unsigned char *)names[i], len) != len)
            return ty_error(err, TY_EINVAL, "names", -1, 0, "%s: names.%zu is not UTF-8", op, i);
    }
    return 0;
}

int store__check_after(const json_t *after, struct ty_err *err)
{
    if (!json_is_object(after) || json_object_size(after) > STORE__AFTER_MAX)
        return ty_error(err, TY_EINVAL, "after", -1, 0,
                        "skips_last: after must be an object of at most %d job names to instants",
                        STORE__AFTER_MAX);
    const char *job;
    const json_t *v;
    json_object_foreach((json_t *)after, job, v)
    {
        size_t len = strnlen(job, STORE__NAME_MAX + 1);
        if (len == 0 || len > STORE__NAME_MAX)
            return ty_error(err, TY_EINVAL, "after", -1, 0,
                            "skips_last: after: a job name must be 1 to %d bytes", STORE__NAME_MAX);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return ty_error(err, TY_EINVAL, "after", -1, 0,
                            "skips_last: after.%.100s must be an instant (an integer, 0 or more)",
                            job);
    }
    return 0;
}

int store__per_shard_set(json_t *out, const char *job, int64_t shard, int64_t at, const char *op,
                         struct ty_err *err)
{
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)shard);
    json_t *per = json_object_get(out, job);
    if (per == NULL && json_object_set_new(out, job, per = json_object()) != 0)
        per = NULL;
    if (per == NULL || json_object_set_new(per, key, json_integer(at)) != 0)
        return store__oom(err, op);
    return 0;
}

int store__check_limit(const char *op, size_t limit, size_t *out, struct ty_err *err)
{
    if (limit > STORE__PAGE_MAX)
        return ty_error(err, TY_EINVAL, "limit", -1, 0, "%s: limit %zu is out of range 1-%d", op,
                        limit, STORE__PAGE_MAX);
    *out = limit == 0 ? STORE__PAGE_DEFAULT : limit;
    return 0;
}

int store__check_domain(const char *op, const char *domain, struct ty_err *err)
{
    if (domain != NULL && strnlen(domain, STORE__NAME_MAX + 1) > STORE__NAME_MAX)
        return ty_error(err, TY_EINVAL, "domain", -1, 0,
                        "%s: domain \"%.40s...\" is longer than %d bytes", op, domain,
                        STORE__NAME_MAX);
    return 0;
}

int store__check_obj_query(const struct store_obj_query *q, const char **kn, size_t *limit,
                           char after[STORE__NAME_MAX + 1], struct ty_err *err)
{
    *kn = store__kind_name(q->kind);
    if (*kn == NULL)
        return ty_error(err, TY_EINVAL, "kind", -1, 0,
                        "obj_page: kind %d is not a config object kind", (int)q->kind);
    int rc = store__check_limit("obj_page", q->limit, limit, err);
    if (rc != 0)
        return rc;
    if (q->enabled < -1 || q->enabled > 1)
        return ty_error(err, TY_EINVAL, "enabled", -1, 0,
                        "obj_page: enabled %d is not -1 (any), 0 (disabled only) or 1 (enabled "
                        "only)",
                        q->enabled);
    if ((rc = store__check_domain("obj_page", q->domain, err)) != 0)
        return rc;
    after[0] = '\0';
    if (q->cursor != NULL && *q->cursor != '\0')
        return store__name_cursor_parse(q->cursor, after, err);
    return 0;
}

int store__check_put(const char *kn, const char *name, const char *json, int64_t base_version,
                     struct ty_err *err)
{
    if (json == NULL)
        return ty_error(err, TY_EINVAL, "json", -1, 0, "obj_put %s \"%s\": json is missing", kn,
                        name);
    if (base_version < -1)
        return ty_error(err, TY_EINVAL, "base_version", -1, 0,
                        "obj_put %s \"%s\": base_version %" PRId64
                        " is not -1 (create), 0 (any) or a version",
                        kn, name, base_version);
    return 0;
}

int store__put_allowed(int64_t cur, int64_t base_version, const char *what, struct ty_err *err)
{
    if (base_version == -1 && cur > 0)
        return ty_error(err, TY_EEXIST, NULL, -1, 0, "%s: already exists (version %" PRId64 ")",
                        what, cur);
    if (base_version > 0 && cur == 0)
        return ty_error(err, TY_ENOENT, NULL, -1, 0,
                        "%s: not found (the change was based on version %" PRId64 ")", what,
                        base_version);
    if (base_version > 0 && cur != base_version)
        return ty_error(err, TY_ECONFLICT, NULL, -1, 0,
                        "%s: changed by someone else: it is at version %" PRId64
                        ", the change was based on version %" PRId64,
                        what, cur, base_version);
    return 0;
}

int store__check_delete(const char *kn, const char *name, int64_t base_version, struct ty_err *err)
{
    if (base_version < 0)
        return ty_error(err, TY_EINVAL, "base_version", -1, 0,
                        "obj_delete %s \"%s\": base_version %" PRId64
                        " is not 0 (any) or a version",
                        kn, name, base_version);
    return 0;
}

int store__delete_allowed(int64_t cur, int64_t base_version, const char *what, struct ty_err *err)
{
    if (cur == 0)
        return ty_error(err, TY_ENOENT, NULL, -1, 0, "%s: not found", what);
    if (base_version > 0 && cur != base_version)
        return ty_error(err, TY_ECONFLICT, NULL, -1, 0,
                        "%s: changed by someone else: it is at version %" PRId64
                        ", the delete was based on version %" PRId64,
                        what, cur, base_version);
    return 0;
}

int store__check_version(const char *kn, const char *name, int64_t version, struct ty_err *err)
{
    if (version < 1)
        return ty_error(err, TY_EINVAL, "version", -1, 0,
                        "obj_version %s \"%.100s\": version %" PRId64
                        " is not a version (1, 2, ...)",
                        kn, name, version);
    return 0;
}

int store__check_list(enum store_kind kind, const char **kn, struct ty_err *err)
{
    *kn = store__kind_name(kind);
    if (*kn == NULL)
        return ty_error(err, TY_EINVAL, "kind", -1, 0,
                        "obj_list: kind %d is not a config object kind", (int)kind);
    return 0;
}

int store__check_scan(enum store_kind kind, const void *cb, const char **kn, struct ty_err *err)
{
    *kn = store__kind_name(kind);
    if (*kn == NULL)
        return ty_error(err, TY_EINVAL, "kind", -1, 0,
                        "obj_scan: kind %d is not a config object kind", (int)kind);
    if (cb == NULL)
        return ty_error(err, TY_EINVAL, "cb", -1, 0, "obj_scan %s: cb is missing", *kn);
    return 0;
}

int store__check_meta_set(const char *key, const char *value, struct ty_err *err)
{
    int rc = store__check_id(key, STORE__NAME_MAX + 1, "key", "meta_set", err);
    if (rc != 0)
        return rc;
    if (strcmp(key, "schema_version") == 0)
        return ty_error(err, TY_EINVAL, "key", -1, 0,
                        "meta_set schema_version: only a schema migration changes it");
    if (value == NULL)
        return ty_error(err, TY_EINVAL, "value", -1, 0, "meta_set %.100s: value is missing", key);
    return 0;
}

int store__check_token_put(const char *name, const char *hash, int64_t expires_at_ms,
                           char h[STORE__HASH_HEX + 1], struct ty_err *err)
{
    int rc = store__check_id(name, STORE__NAME_MAX + 1, "name", "token_put", err);
    if (rc == 0)
        rc = store__check_hash("token_put", hash, h, err);
    if (rc == 0 && expires_at_ms < 0)
        rc = ty_error(err, TY_EINVAL, "expires_at_ms", -1, 0,
                      "token_put \"%.100s\": expires_at_ms %" PRId64 " is not 0 (never) or a time",
                      name, expires_at_ms);
    return rc;
}

int store__check_prune(int64_t older_than_ms, int64_t keep_per_job, struct ty_err *err)
{
    if (older_than_ms < 0)
        return ty_error(err, TY_EINVAL, "older_than_ms", -1, 0,
                        "prune: older_than_ms %" PRId64 " is negative", older_than_ms);
    if (keep_per_job < 0)
        return ty_error(err, TY_EINVAL, "keep_per_job", -1, 0,
                        "prune: keep_per_job %" PRId64 " is negative", keep_per_job);
    return 0;
}

int store__prefix_range(const char *prefix, char hi[STORE_FIRE_ID_MAX], struct ty_err *err)
{
    int rc = store__check_id(prefix, STORE_FIRE_ID_MAX, "fire_prefix", "fire_shards", err);
    if (rc != 0)
        return rc;
    size_t n = strlen(prefix);
    memcpy(hi, prefix, n + 1);
    while (n > 0 && (unsigned char)hi[n - 1] == 0xFF)
        hi[--n] = '\0';
    if (n == 0)
        return ty_error(err, TY_EINVAL, "fire_prefix", -1, 0,
                        "fire_shards: fire_prefix has no upper bound");
    hi[n - 1] = (char)((unsigned char)hi[n - 1] + 1);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * History and statistics queries.
 */

int store__history_args(const struct store_history_query *q, struct store__history *h,
                        struct ty_err *err)
{
    int rc = store__check_limit("history", q->limit, &h->limit, err);
    if (rc != 0)
        return rc;
    h->mode = STORE__HM_BOTH;
    if (q->status != NULL && strcmp(q->status, "skipped") == 0) {
        h->mode = STORE__HM_SKIPS;
    } else if (q->status != NULL) {
        enum store_run_status rs;
        if (store_run_status_parse(q->status, &rs) != 0)
            return ty_error(err, TY_EINVAL, "status", -1, 0,
                            "history: status \"%.40s\" is not a run status or \"skipped\"",
                            q->status);
        h->mode = STORE__HM_RUNS;
    }
    h->cs = h->crun = h->cskip = INT64_MAX;
    if (q->cursor != NULL && *q->cursor != '\0') {
        int src = 1;
        int64_t id = 0;
        if ((rc = store__cursor_parse(q->cursor, &h->cs, &src, &id, err)) != 0)
            return rc;
        /* at scheduled_at == cs, runs come before skips */
        h->crun = src == 1 ? id : 0;
        h->cskip = src == 0 ? id : INT64_MAX;
    }
    h->mask = store__stats_mask(&(struct store_stats_query){
        .job = q->job, .domain = q->domain, .since = q->since, .until = q->until});
    return 0;
}

unsigned store__stats_mask(const struct store_stats_query *q)
{
    bool dom = q->domain != NULL && *q->domain != '\0';
    return (q->job != NULL ? STORE__HQ_JOB : 0) | (dom ? STORE__HQ_DOMAIN : 0) |
           (q->since != 0 ? STORE__HQ_SINCE : 0) | (q->until != 0 ? STORE__HQ_UNTIL : 0);
}

int store__stats_group(const struct store_stats_query *q, enum store__group *g, struct ty_err *err)
{
    const char *by = q->group_by != NULL ? q->group_by : "job";
    if (strcmp(by, "job") == 0)
        *g = STORE__BY_JOB;
    else if (strcmp(by, "domain") == 0)
        *g = STORE__BY_DOMAIN;
    else if (strcmp(by, "day") == 0)
        *g = STORE__BY_DAY;
    else
        return ty_error(err, TY_EINVAL, "group_by", -1, 0,
                        "stats: group_by \"%.40s\" is not job, domain or day", by);
    return 0;
}

const char *const store__stats_names[STORE__SC_COUNT] = {
    "runs",        "succeeded", "failed",   "timeouts",   "canceled",
    "interrupted", "lost",      "misfired", "unfinished", "skipped"};

/* ---------------------------------------------------------------------------------------
 * JSON out.
 */

json_t *store__json_lossy(const void *data, size_t n)
{
    const unsigned char *p = data;
    if (n == 0)
        return json_string("");
    size_t i = utf8_invalid_at(p, n);
    if (i == n)
        return json_stringn_nocheck((const char *)p, n);
    struct strbuf sb;
    sb_init(&sb);
    sb_add(&sb, (const char *)p, i);
    while (i < n) {
        size_t k = utf8_seq(p + i, n - i);
        if (k != 0) {
            sb_add(&sb, (const char *)p + i, k);
            i += k;
        } else {
            sb_add(&sb, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    json_t *j = sb_failed(&sb) ? NULL : json_stringn_nocheck(sb.buf, sb.len);
    sb_free(&sb);
    return j;
}

json_t *store__time_text(int64_t t)
{
    char buf[CIVIL_RFC3339_MAX];
    civil_format_rfc3339(t, 0, buf);
    return json_string(buf);
}

int store__oom(struct ty_err *err, const char *op)
{
    return ty_error(err, TY_ENOMEM, NULL, -1, 0, "%s: out of memory", op);
}

/* ---------------------------------------------------------------------------------------
 * jobs_get_many: the names in, the answer out.
 */

void store__names_json(const char *const *names, size_t n, struct strbuf *sb)
{
    sb_addc(sb, '[');
    for (size_t i = 0; i < n; i++) {
        sb_adds(sb, i == 0 ? "\"" : ",\"");
        for (const unsigned char *p = (const unsigned char *)names[i]; *p != '\0'; p++) {
            if (*p == '"' || *p == '\\')
                sb_addf(sb, "\\%c", *p);
            else if (*p < 0x20)
                sb_addf(sb, "\\u%04x", *p);
            else
                sb_addc(sb, (char)*p);
        }
        sb_addc(sb, '"');
    }
    sb_addc(sb, ']');
}

/* The answer's entry for job, made empty on its first row (version and definition null
 * until its definition's row comes: the order of the members stays the API's); NULL when
 * out of memory. */
static json_t *job_entry(json_t *out, const char *job)
{
    json_t *e = json_object_get(out, job);
    if (e != NULL)
        return e;
    e = json_pack("{s:n, s:n, s:o}", "version", "definition", "secrets", json_object());
    return e != NULL && json_object_set_new(out, job, e) == 0 ? e : NULL;
}

bool store__jobs_def(json_t *out, const char *job, int64_t version, json_t *definition)
{
    json_t *e = definition != NULL ? job_entry(out, job) : NULL;
    if (e == NULL) {
        json_decref(definition);
        return false;
    }
    int rc = json_object_set_new(e, "version", json_integer(version));
    rc |= json_object_set_new(e, "definition", definition); /* takes it either way */
    return rc == 0;
}

bool store__jobs_secret(json_t *out, const char *job, const char *name, json_t *value)
{
    json_t *e = value != NULL ? job_entry(out, job) : NULL;
    if (e == NULL) {
        json_decref(value);
        return false;
    }
    return json_object_set_new(json_object_get(e, "secrets"), name, value) == 0;
}

void store__jobs_done(json_t *out)
{
    const char *job;
    json_t *e;
    void *next;
    json_object_foreach_safe(out, next, job, e)
    {
        if (json_is_null(json_object_get(e, "definition")))
            json_object_del(out, job);
    }
}

/* ---------------------------------------------------------------------------------------
 * Whole tables as rows.
 */

#define I STORE__COL_INT
#define T STORE__COL_TEXT
static const struct store__col meta_cols[] = {{"key", T}, {"value", T}};
static const struct store__col object_cols[] = {
    {"kind", T},   {"name", T},          {"version", I},       {"json", STORE__COL_JSON},
    {"domain", T}, {"created_at_ms", I}, {"updated_at_ms", I}, {"updated_by", T}};
static const struct store__col version_cols[] = {
    {"kind", T},  {"name", T}, {"version", I}, {"op", T}, {"json", STORE__COL_JSON},
    {"at_ms", I}, {"who", T}};
static const struct store__col token_cols[] = {{"name", T},          {"hash", T},
                                               {"created_at_ms", I}, {"expires_at_ms", I},
                                               {"revoked_at_ms", I}, {"last_used_at_ms", I},
                                               {"created_by", T}};
static const struct store__col secret_cols[] = {{"job", T}, {"name", T}, {"value", T}};
static const struct store__col alert_cols[] = {{"key", T},          {"kind", T},
                                               {"job", T},          {"domain", T},
                                               {"job_level", I},    {"domain_level", I},
                                               {"shard", I},        {"scheduled_at", I},
                                               {"raised_at_ms", I}, {"last_raised_at_ms", I},
                                               {"raises", I},       {"cleared_at_ms", I},
                                               {"reason", T},       {"detail", T}};
static const struct store__col run_cols[] = {
    {"run_id", T},       {"fire_id", T},       {"attempt", I},
    {"job", T},          {"domain", T},        {"shard", I},
    {"trigger", T},      {"status", T},        {"scheduled_at", I},
    {"queued_at_ms", I}, {"started_at_ms", I}, {"ended_at_ms", I},
    {"pid", I},          {"pid_start", I},     {"boot_id", T},
    {"executor", T},     {"epoch", I},         {"exit_code", I},
    {"signal", I},       {"error", T},         {"output", STORE__COL_BYTES}};
static const struct store__col skip_cols[] = {
    {"fire_id", T},        {"shard", I},  {"job", T},    {"domain", T}, {"scheduled_at", I},
    {"recorded_at_ms", I}, {"reason", T}, {"detail", T}, {"trigger", T}};
static const struct store__col user_cols[] = {{"name", T},
                                              {"password_hash", T},
                                              {"must_change_password", I},
                                              {"failed_attempts", I},
                                              {"locked_until_ms", I},
                                              {"created_at_ms", I},
                                              {"created_by", T},
                                              {"updated_at_ms", I},
                                              {"password_changed_at_ms", I},
                                              {"last_signin_at_ms", I}};
static const struct store__col grant_cols[] = {
    {"kind", T}, {"name", T}, {"domain", T}, {"role", T}};
#undef I
#undef T

#define COLS(a) (a), sizeof(a) / sizeof((a)[0])
static const struct store__table tables[STORE_T_COUNT + 1] = {
    [STORE_T_META] = {"meta", COLS(meta_cols), "key <> 'schema_version'", "key"},
    [STORE_T_OBJECTS] = {"objects", COLS(object_cols), NULL, "kind, name"},
    [STORE_T_OBJECT_VERSIONS] = {"object_versions", COLS(version_cols), NULL,
                                 "kind, name, version"},
    [STORE_T_TOKENS] = {"tokens", COLS(token_cols), NULL, "name"},
    [STORE_T_SECRETS] = {"secrets", COLS(secret_cols), NULL, "job, name"},
    [STORE_T_ALERTS] = {"alerts", COLS(alert_cols), NULL, NULL},
    [STORE_T_RUNS] = {"runs", COLS(run_cols), NULL, NULL},
    [STORE_T_SKIPS] = {"skips", COLS(skip_cols), NULL, NULL},
    [STORE_T_USERS] = {"users", COLS(user_cols), NULL, "name"},
    [STORE_T_GRANTS] = {"grants", COLS(grant_cols), NULL, "kind, name, domain"},
};
#undef COLS

const char *store_table_name(enum store_table t)
{
    return t >= STORE_T_META && t <= STORE_T_GRANTS ? tables[t].name : NULL;
}

int store__check_table(enum store_table t, const char *op, const struct store__table **out,
                       struct ty_err *err)
{
    if (store_table_name(t) == NULL)
        return ty_error(err, TY_EINVAL, "table", -1, 0, "%s: table %d is not a store table", op,
                        (int)t);
    *out = &tables[t];
    return 0;
}

int store__check_rows(const struct store__table *t, const json_t *rows, const char *op,
                      struct ty_err *err)
{
    if (!json_is_array(rows))
        return ty_error(err, TY_EINVAL, "rows", -1, 0, "%s %s: rows is not a JSON array", op,
                        t->name);
    size_t i;
    const json_t *row;
    struct strbuf bytes; /* a decoded output, to check its base64 */
    sb_init(&bytes);
    int rc = 0;
    json_array_foreach(rows, i, row)
    {
        if (!json_is_object(row)) {
            rc = ty_error(err, TY_EINVAL, "rows", -1, 0, "%s %s: row %zu is not an object", op,
                          t->name, i);
            break;
        }
        for (size_t c = 0; rc == 0 && c < t->ncols; c++) {
            const struct store__col *col = &t->cols[c];
            const json_t *v = json_object_get(row, col->name);
            bool ok = v == NULL || json_is_null(v) ||
                      (col->type == STORE__COL_INT ? json_is_integer(v) : json_is_string(v));
            if (!ok) {
                rc = ty_error(err, TY_EINVAL, col->name, -1, 0, "%s %s: row %zu: %s is not %s", op,
                              t->name, i, col->name,
                              col->type == STORE__COL_INT ? "an integer" : "a string");
            } else if (col->type == STORE__COL_BYTES && json_is_string(v)) {
                sb_truncate(&bytes, 0);
                if (b64_decode(&bytes, json_string_value(v), json_string_length(v)) != 0)
                    rc = ty_error(err, TY_EINVAL, col->name, -1, 0,
                                  "%s %s: row %zu: %s is not base64", op, t->name, i, col->name);
            }
        }
        const json_t *key = json_object_get(row, "key");
        if (rc == 0 && t == &tables[STORE_T_META] && json_is_string(key) &&
            strcmp(json_string_value(key), "schema_version") == 0)
            rc = ty_error(err, TY_EINVAL, "key", -1, 0,
                          "%s meta: row %zu: schema_version belongs to the store, not to "
                          "its content",
                          op, i);
        if (rc != 0)
            break;
    }
    sb_free(&bytes);
    return rc;
}

bool store__row_job_place(const json_t *row, const char **domain, int *enabled)
{
    const char *kind = json_string_value(json_object_get(row, "kind"));
    if (kind == NULL || strcmp(kind, "job") != 0)
        return false;
    const char *d = json_string_value(json_object_get(row, "domain"));
    *domain = d != NULL ? d : "";
    *enabled = 1;
    const char *text = json_string_value(json_object_get(row, "json"));
    json_t *obj = text != NULL ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    if (json_is_false(json_object_get(obj, "enabled")))
        *enabled = 0;
    json_decref(obj);
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Domain chains.
 */

bool store__domain_up(char *buf)
{
    if (*buf == '\0')
        return false;
    char *slash = strrchr(buf, '/');
    *(slash != NULL ? slash : buf) = '\0';
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Percentiles.
 */

bool store__vals_add(struct store__vals *a, int64_t x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap != 0 ? a->cap * 2 : 256;
        int64_t *v = realloc(a->v, cap * sizeof *v);
        if (v == NULL)
            return false;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return true;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

json_t *store__percentiles(struct store__vals *a, const char *na, int pa, const char *nb, int pb)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_t *x = json_null(), *y = json_null();
    if (a->n > 0) {
        qsort(a->v, a->n, sizeof *a->v, cmp_i64);
        x = json_integer(a->v[((size_t)pa * a->n + 99) / 100 - 1]);
        y = json_integer(a->v[((size_t)pb * a->n + 99) / 100 - 1]);
    }
    if (json_object_set_new(o, na, x) != 0 || json_object_set_new(o, nb, y) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---------------------------------------------------------------------------------------
 * History cursors.
 */

void store__cursor_format(char buf[STORE__CURSOR_MAX], int64_t sched, int src, int64_t id)
{
    snprintf(buf, STORE__CURSOR_MAX, "v1.%" PRId64 ".%d.%" PRId64, sched, src, id);
}

/* A decimal int64 at *p, up to the next '.' or the end; advances *p past it. */
static bool parse_i64(const char **p, int64_t *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(*p, &end, 10);
    if (end == *p || errno != 0 || (*end != '.' && *end != '\0'))
        return false;
    *v = x;
    *p = *end == '.' ? end + 1 : end;
    return true;
}

int store__cursor_parse(const char *c, int64_t *sched, int *src, int64_t *id, struct ty_err *err)
{
    const char *p = c;
    int64_t k = -1;
    if (strncmp(p, "v1.", 3) == 0 && (p += 3, parse_i64(&p, sched)) && parse_i64(&p, &k) &&
        (k == 0 || k == 1) && parse_i64(&p, id) && *id > 0 && *p == '\0' && p[-1] != '.') {
        *src = (int)k;
        return 0;
    }
    return ty_error(err, TY_EINVAL, "cursor", -1, 0,
                    "history: cursor \"%.40s\" is not one this store returned", c);
}

/* ---------------------------------------------------------------------------------------
 * Object page cursors.
 */

void store__name_cursor_format(const char *name, char buf[STORE__NAME_CURSOR_MAX])
{
    static const char hex[] = "0123456789abcdef";
    char *p = buf;
    memcpy(p, "o1.", 3);
    p += 3;
    for (size_t i = 0; i < STORE__NAME_MAX && name[i] != '\0'; i++) {
        *p++ = hex[(unsigned char)name[i] >> 4];
        *p++ = hex[(unsigned char)name[i] & 15];
    }
    *p = '\0';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int store__name_cursor_parse(const char *c, char name[STORE__NAME_MAX + 1], struct ty_err *err)
{
    size_t n = strnlen(c, STORE__NAME_CURSOR_MAX);
    bool ok = n > 3 && n < STORE__NAME_CURSOR_MAX && (n - 3) % 2 == 0 && strncmp(c, "o1.", 3) == 0;
    size_t k = 0;
    for (size_t i = 3; ok && i < n; i += 2) {
        int hi = hex_digit(c[i]), lo = hex_digit(c[i + 1]);
        ok = hi >= 0 && lo >= 0 && (hi | lo) != 0; /* a name holds no NUL */
        if (ok)
            name[k++] = (char)(hi << 4 | lo);
    }
    if (!ok)
        return ty_error(err, TY_EINVAL, "cursor", -1, 0,
                        "obj_page: cursor \"%.40s\" is not one this store returned (pass the "
                        "\"next\" of the previous page, or none for the first page)",
                        c);
    name[k] = '\0';
    return 0;
}
