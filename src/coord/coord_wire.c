/*
 * coord_wire.c - requests, replies, registrations and placements as bytes (coord_wire.h).
 *
 * Every message carries "v": COORD_WIRE_VERSION.  A reader refuses a newer one by name
 * rather than guess what its fields mean; a field it does not know in a version it does is
 * ignored, so an optional field can be added without a new version.
 *
 * Readers are built from the field readers the results' codec uses (coord_impl.h), so a
 * refusal reads the same everywhere: TY_EFORMAT, err->field the path ("assign.3.shards.1")
 * and a message that starts with it.  Names are checked by the job model's own rule
 * (job_check_name), domains by domain_check_path, executor ids by coord_id_ok: a message
 * cannot carry what the rest of the system would refuse.  A reader fills the whole value
 * or frees what it made; nobody sees half of one.
 *
 * Requests, replies and registrations are small (an HTTP body, a znode of a few hundred
 * bytes) and go through jansson.  Placements are not: a leader publishes up to 500,000 of
 * them at once, so an entry is written by hand with short keys into a scratch buffer, once,
 * and appended to the chunk it fits in.  Reading a chunk skips an entry that fails its
 * checks (and reports it) instead of refusing the chunk: one bad job must not stop an
 * executor running every other job in the same znode.
 */
#include "coord_wire.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/domain.h"
#include "../core/job.h"
#include "../core/utf8.h"
#include "coord_impl.h"

#define I64        COORD__I64
#define U32        4294967295LL
#define LABEL_MAX  63               /* bytes of a label key or value */
#define INDEX_MAX  24               /* "%zu" and its NUL */
#define PATH_CHARS TY_ERR_FIELD_MAX /* a field's path: "assign.123456.secrets" */
#if SIZE_MAX >= INT64_MAX
#define SIZE_LIMIT I64
#else
#define SIZE_LIMIT ((int64_t)SIZE_MAX)
#endif

static const struct coord__where top = {"", ""};

/* Writers below OR together the results of many field sets (each 0 or TY_ENOMEM) and
 * check once at the end, as a strbuf is checked once after many appends. */

static int no_memory(struct ty_err *err)
{
    return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
}

/* *out = a copy of s (NULL stays NULL). */
static int dup_str(const char *s, char **out, struct ty_err *err)
{
    *out = NULL;
    if (s != NULL && (*out = strdup(s)) == NULL)
        return no_memory(err);
    return 0;
}

/* o[key] = v (a new reference, NULL when making it failed): 0 or TY_ENOMEM. */
static int set_new(json_t *o, const char *key, json_t *v)
{
    return json_object_set_new(o, key, v) == 0 ? 0 : TY_ENOMEM;
}

/* Text as a JSON string, cut before its first byte that is not UTF-8 (a message cut short
 * in the middle of a character by its buffer keeps the whole ones). */
static json_t *text_json(const char *s)
{
    return json_stringn(s, utf8_invalid_at((const unsigned char *)s, strlen(s)));
}

/* Where the elements of an array sit: "<w's path>.<key>.<i>". */
static struct coord__where element(const struct coord__where *w, const char *key, size_t i,
                                   char *buf, size_t cap)
{
    size_t used = strlen(coord__path(w, key, buf, cap));
    snprintf(buf + used, cap - used, ".%zu", i);
    return (struct coord__where){w->lead, buf};
}

/* The "v" every message starts with: present, 1 or more, and not newer than this build. */
static int check_version(const json_t *o, const char *what, struct ty_err *err)
{
    int64_t v;
    int rc = coord__get_int(o, &top, "v", true, 1, I64, &v, err);
    if (rc == 0 && v > COORD_WIRE_VERSION)
        return coord__refuse(err, &top, "v",
                             "%s version %lld is newer than this build reads (%d); upgrade it",
                             what, (long long)v, COORD_WIRE_VERSION);
    return rc;
}

/* o[key] as a job or calendar name (the job model's rule), borrowed. */
static int get_job_name(const json_t *o, const struct coord__where *w, const char *key,
                        bool required, const char **out, struct ty_err *err)
{
    char field[TY_ERR_FIELD_MAX];
    int rc = coord__get_str(o, w, key, required, out, err);
    if (rc != 0 || *out == NULL)
        return rc;
    if (job_check_name(coord__path(w, key, field, sizeof field), *out, err) == 0)
        return 0;
    if (err != NULL)
        err->code = TY_EFORMAT; /* the same words, but here the data is at fault */
    return TY_EFORMAT;
}

/* o[key] as an executor (or server) id, borrowed. */
static int get_id(const json_t *o, const struct coord__where *w, const char *key, bool required,
                  const char **out, struct ty_err *err)
{
    int rc = coord__get_str(o, w, key, required, out, err);
    if (rc == 0 && *out != NULL && !coord_id_ok(*out))
        return coord__refuse(err, w, key,
                             "\"%.*s\" is not an id (1-%d letters, digits, '.', '_' or '-')",
                             COORD_ID_MAX, *out, COORD_ID_MAX - 1);
    return rc;
}

/* o[key] as a number (integer or real), at least 0; absent gives 0. */
static int get_share(const json_t *o, const struct coord__where *w, const char *key, double *out,
                     struct ty_err *err)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (v == NULL)
        return 0;
    if (!json_is_number(v))
        return coord__refuse(err, w, key, "not a number");
    double d = json_number_value(v);
    if (!isfinite(d) || d < 0)
        return coord__refuse(err, w, key, "%g is not a number 0 or more", d);
    *out = d;
    return 0;
}

/*
 * o[key] as a shard list: absent or null is every shard (*out NULL, *n 0); else a
 * non-empty array of shard numbers below `limit`, each once, and ascending when
 * `ascending` (a fire's list keeps the order it was asked in).  *out is buf when given
 * (room for JOB_SHARDS_MAX), else malloc'd for the caller.
 */
static int get_shards(const json_t *o, const struct coord__where *w, const char *key,
                      uint32_t limit, bool ascending, uint32_t *buf, uint32_t **out, uint32_t *n,
                      struct ty_err *err)
{
    assert(limit >= 1 && limit <= JOB_SHARDS_MAX);
    *out = NULL;
    *n = 0;
    const json_t *a = json_object_get(o, key);
    if (a == NULL || json_is_null(a))
        return 0;
    if (!json_is_array(a))
        return coord__refuse(err, w, key, "not an array of shard numbers");
    size_t size = json_array_size(a);
    if (size == 0)
        return coord__refuse(err, w, key, "empty; to mean every shard, leave it out");
    if (size > limit)
        return coord__refuse(err, w, key, "%zu shards, more than the %u there are", size, limit);
    uint32_t *s = buf != NULL ? buf : malloc(size * sizeof *s);
    if (s == NULL)
        return no_memory(err);
    unsigned char seen[(JOB_SHARDS_MAX + 7) / 8] = {0};
    char path[PATH_CHARS], idx[INDEX_MAX];
    const struct coord__where at = {w->lead, coord__path(w, key, path, sizeof path)};
    uint32_t prev = 0;
    int rc;
    for (size_t i = 0; i < size; i++) {
        const json_t *e = json_array_get(a, i);
        snprintf(idx, sizeof idx, "%zu", i);
        if (!json_is_integer(e)) {
            rc = coord__refuse(err, &at, idx, "not a shard number");
            goto fail;
        }
        json_int_t v = json_integer_value(e);
        if (v < 0 || v >= limit) {
            rc = coord__refuse(err, &at, idx, "%lld is not a shard number below %u", (long long)v,
                               limit);
            goto fail;
        }
        if (seen[v / 8] & (1u << (v % 8))) {
            rc = coord__refuse(err, &at, idx, "shard %lld is listed twice", (long long)v);
            goto fail;
        }
        if (ascending && i > 0 && (uint32_t)v < prev) {
            rc = coord__refuse(err, &at, idx, "shard %lld after %u; shards must be ascending",
                               (long long)v, prev);
            goto fail;
        }
        seen[v / 8] |= (unsigned char)(1u << (v % 8));
        s[i] = prev = (uint32_t)v;
    }
    *out = s;
    *n = (uint32_t)size;
    return 0;
fail:
    if (s != buf)
        free(s);
    return rc;
}

static json_t *shards_json(const uint32_t *s, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a != NULL && i < n; i++) {
        if (json_array_append_new(a, json_integer(s[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* ---------------------------------------------------------------------------------------
 * Requests
 */

static const char *const kind_names[] = {
    [COORD_ASSIGN] = "assign", [COORD_CALENDAR] = "calendar", [COORD_FIRE] = "fire",
    [COORD_CANCEL] = "cancel", [COORD_OUTPUT] = "output",     [COORD_STATUS] = "status",
    [COORD_KICK] = "kick"};

static json_t *assignment_json(const struct coord_assignment *a)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    int rc = coord__set_str(o, "job", a->job) | coord__set_str(o, "definition", a->definition) |
             coord__set_int(o, "version", a->version) | coord__set_int(o, "epoch", a->epoch) |
             coord__set_int(o, "since", a->since) |
             coord__set_int(o, "resume_after", a->resume_after) |
             coord__set_int(o, "uncertain_until", a->uncertain_until) |
             coord__set_str(o, "from", a->from);
    if (a->secrets != NULL && json_object_set(o, "secrets", a->secrets) != 0)
        rc = TY_ENOMEM;
    if (a->n_shards > 0)
        rc |= set_new(o, "shards", shards_json(a->shards, a->n_shards));
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *coord_request_to_json(const struct coord_request *req)
{
    if (req->kind < COORD_ASSIGN || req->kind > COORD_KICK)
        return NULL;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    int rc = coord__set_int(o, "v", COORD_WIRE_VERSION) |
             coord__set_str(o, "kind", kind_names[req->kind]);
    switch (req->kind) {
    case COORD_ASSIGN: {
        json_t *list = json_array();
        for (size_t i = 0; list != NULL && i < req->n_assign && rc == 0; i++)
            if (json_array_append_new(list, assignment_json(&req->assign[i])) != 0)
                rc = TY_ENOMEM;
        rc |= set_new(o, "assign", list) | coord__set_int(o, "epoch", req->epoch);
        if (json_object_set_new(o, "complete", json_boolean(req->complete)) != 0)
            rc = TY_ENOMEM;
        break;
    }
    case COORD_CALENDAR:
        rc |=
            coord__set_str(o, "name", req->name) | coord__set_str(o, "definition", req->definition);
        break;
    case COORD_FIRE: {
        const struct coord_fire *f = &req->fire;
        rc |= coord__set_str(o, "job", f->job) | coord__set_str(o, "base", f->base) |
              coord__set_int(o, "at", f->at) |
              coord__set_str(o, "trigger", store_trigger_name(f->trigger));
        if (f->attempt > 1)
            rc |= coord__set_int(o, "attempt", f->attempt);
        if (f->n_shards > 0)
            rc |= set_new(o, "shards", shards_json(f->shards, f->n_shards));
        break;
    }
    case COORD_CANCEL: rc |= coord__set_str(o, "name", req->name); break;
    case COORD_OUTPUT:
        rc |= coord__set_str(o, "name", req->name) |
              coord__set_int(o, "offset", (int64_t)req->offset) |
              coord__set_int(o, "max", (int64_t)req->max);
        break;
    case COORD_STATUS:
    case COORD_KICK: break;
    }
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* o["secrets"]: absent or null (keep those held), or an object of strings; a copy. */
static int get_secrets(const json_t *o, const struct coord__where *w, json_t **out,
                       struct ty_err *err)
{
    *out = NULL;
    json_t *s = json_object_get(o, "secrets");
    if (s == NULL || json_is_null(s))
        return 0;
    if (!json_is_object(s))
        return coord__refuse(err, w, "secrets", "not an object");
    char path[PATH_CHARS];
    const struct coord__where at = {w->lead, coord__path(w, "secrets", path, sizeof path)};
    const char *key;
    json_t *v;
    json_object_foreach(s, key, v)
    {
        if (key[0] == '\0')
            return coord__refuse(err, w, "secrets", "a secret without a name");
        if (!json_is_string(v))
            return coord__refuse(err, &at, key, "not a string");
        if (memchr(json_string_value(v), '\0', json_string_length(v)) != NULL)
            return coord__refuse(err, &at, key, "holds a NUL character");
    }
    if ((*out = json_deep_copy(s)) == NULL)
        return no_memory(err);
    return 0;
}

static int assignment_from(const json_t *o, const struct coord__where *w,
                           struct coord_assignment *a, struct ty_err *err)
{
    if (!json_is_object(o))
        return coord__refuse(err, w, NULL, "not an object");
    const char *job, *def, *from;
    int64_t version, epoch, since, resume, unsure = 0;
    int rc;
    if ((rc = get_job_name(o, w, "job", true, &job, err)) != 0 ||
        (rc = coord__get_str(o, w, "definition", false, &def, err)) != 0 ||
        (rc = coord__get_int(o, w, "version", true, 0, I64, &version, err)) != 0 ||
        (rc = coord__get_int(o, w, "epoch", true, 0, I64, &epoch, err)) != 0 ||
        (rc = coord__get_int(o, w, "since", true, 0, I64, &since, err)) != 0 ||
        (rc = coord__get_int(o, w, "resume_after", false, 0, I64, &resume, err)) != 0 ||
        (rc = coord__get_int(o, w, "uncertain_until", false, 0, I64, &unsure, err)) != 0 ||
        (rc = get_id(o, w, "from", false, &from, err)) != 0 ||
        (rc = get_shards(o, w, "shards", JOB_SHARDS_MAX, true, NULL, &a->shards, &a->n_shards,
                         err)) != 0 ||
        (rc = get_secrets(o, w, &a->secrets, err)) != 0 || (rc = dup_str(job, &a->job, err)) != 0 ||
        (rc = dup_str(def, &a->definition, err)) != 0 || (rc = dup_str(from, &a->from, err)) != 0)
        return rc;
    a->version = version;
    a->epoch = epoch;
    a->since = since;
    a->resume_after = resume;
    a->uncertain_until = unsure;
    return 0;
}

static int assign_from(const json_t *o, struct coord_request *req, struct ty_err *err)
{
    int64_t epoch;
    int rc;
    if ((rc = coord__get_int(o, &top, "epoch", true, 0, I64, &epoch, err)) != 0 ||
        (rc = coord__get_bool(o, &top, "complete", &req->complete, err)) != 0)
        return rc;
    req->epoch = epoch;
    const json_t *list = json_object_get(o, "assign");
    if (list == NULL || !json_is_array(list))
        return coord__refuse(err, &top, "assign", list == NULL ? "missing" : "not an array");
    size_t n = json_array_size(list);
    if (n == 0)
        return 0;
    if ((req->assign = calloc(n, sizeof *req->assign)) == NULL)
        return no_memory(err);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_CHARS];
        const struct coord__where w = element(&top, "assign", i, path, sizeof path);
        req->n_assign = i + 1; /* coord_request_free clears what this one got so far */
        if ((rc = assignment_from(json_array_get(list, i), &w, &req->assign[i], err)) != 0)
            return rc;
    }
    return 0;
}

static int fire_from(const json_t *o, struct coord_fire *f, struct ty_err *err)
{
    const char *job, *base, *trigger;
    int64_t at, attempt = 0;
    int rc;
    if ((rc = get_job_name(o, &top, "job", true, &job, err)) != 0 ||
        (rc = coord__get_str(o, &top, "base", false, &base, err)) != 0 ||
        (rc = coord__get_int(o, &top, "at", false, 0, I64, &at, err)) != 0 ||
        (rc = coord__get_int(o, &top, "attempt", false, 1, U32, &attempt, err)) != 0 ||
        (rc = coord__get_str(o, &top, "trigger", true, &trigger, err)) != 0)
        return rc;
    f->attempt = (uint32_t)attempt;
    if (base != NULL && (base[0] == '\0' || strlen(base) >= STORE_FIRE_ID_MAX))
        return coord__refuse(err, &top, "base", "not a fire id (1-%d bytes)",
                             STORE_FIRE_ID_MAX - 1);
    if (store_trigger_parse(trigger, &f->trigger) != 0 ||
        (f->trigger != STORE_TRIGGER_MANUAL && f->trigger != STORE_TRIGGER_DOWNSTREAM &&
         f->trigger != STORE_TRIGGER_FAILOVER))
        return coord__refuse(
            err, &top, "trigger",
            "\"%.40s\" is not how a fire is asked for (manual, downstream, failover)", trigger);
    if (f->trigger == STORE_TRIGGER_FAILOVER && base == NULL)
        return coord__refuse(err, &top, "base", "a failover fire names the fire it makes again");
    f->at = at;
    if ((rc = get_shards(o, &top, "shards", JOB_SHARDS_MAX, false, NULL, &f->shards, &f->n_shards,
                         err)) != 0 ||
        (rc = dup_str(job, &f->job, err)) != 0 || (rc = dup_str(base, &f->base, err)) != 0)
        return rc;
    return 0;
}

/* o["name"] as a run id (CANCEL, OUTPUT). */
static int run_id_from(const json_t *o, struct coord_request *req, struct ty_err *err)
{
    const char *id;
    int rc = coord__get_str(o, &top, "name", true, &id, err);
    if (rc != 0)
        return rc;
    if (!coord__word_ok(id, strlen(id), STORE_ID_MAX - 1))
        return coord__refuse(err, &top, "name",
                             "\"%.40s\" is not a run id (1-%d letters, digits, '.', '_' or '-')",
                             id, STORE_ID_MAX - 1);
    return dup_str(id, &req->name, err);
}

static int request_from(const json_t *o, struct coord_request *req, struct ty_err *err)
{
    const char *name, *def;
    int64_t offset, max;
    int rc;
    switch (req->kind) {
    case COORD_ASSIGN: return assign_from(o, req, err);
    case COORD_CALENDAR:
        if ((rc = get_job_name(o, &top, "name", true, &name, err)) != 0 ||
            (rc = coord__get_str(o, &top, "definition", false, &def, err)) != 0 ||
            (rc = dup_str(name, &req->name, err)) != 0)
            return rc;
        return dup_str(def, &req->definition, err);
    case COORD_FIRE: return fire_from(o, &req->fire, err);
    case COORD_OUTPUT:
        if ((rc = coord__get_int(o, &top, "offset", false, 0, I64, &offset, err)) != 0 ||
            (rc = coord__get_int(o, &top, "max", false, 0, SIZE_LIMIT, &max, err)) != 0)
            return rc;
        req->offset = (uint64_t)offset;
        req->max = (size_t)max;
        return run_id_from(o, req, err);
    case COORD_CANCEL: return run_id_from(o, req, err);
    case COORD_STATUS:
    case COORD_KICK: return 0;
    }
    return 0;
}

int coord_request_from_json(const json_t *o, struct coord_request **out, struct ty_err *err)
{
    *out = NULL;
    if (!json_is_object(o))
        return ty_error(err, TY_EFORMAT, NULL, -1, 0, "request: not a JSON object");
    int kind = 0;
    int rc = check_version(o, "request", err);
    if (rc != 0 ||
        (rc = coord__get_name(o, &top, "kind", kind_names, sizeof kind_names / sizeof kind_names[0],
                              &kind, err)) != 0)
        return rc;
    struct coord_request *req = coord_request_new((enum coord_req_kind)kind);
    if (req == NULL)
        return no_memory(err);
    if ((rc = request_from(o, req, err)) != 0) {
        coord_request_free(req);
        return rc;
    }
    *out = req;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Replies
 */

/* The API's error body: {"code", "message", "field" (null when none)}. */
static json_t *error_json(const struct coord_reply *r)
{
    json_t *e = json_object();
    if (e == NULL)
        return NULL;
    const char *msg = r->err.msg[0] ? r->err.msg : ty_strerror(r->rc);
    if (set_new(e, "code", json_string(ty_code_name(r->rc))) != 0 ||
        set_new(e, "message", text_json(msg)) != 0 ||
        set_new(e, "field", r->err.field[0] ? text_json(r->err.field) : json_null()) != 0) {
        json_decref(e);
        return NULL;
    }
    return e;
}

json_t *coord_reply_to_json(const struct coord_reply *r)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    int rc = coord__set_int(o, "v", COORD_WIRE_VERSION);
    if (r->rc != 0)
        rc |= set_new(o, "error", error_json(r));
    if (r->json != NULL && json_object_set(o, "json", r->json) != 0)
        rc = TY_ENOMEM;
    if (r->data != NULL)
        rc |= coord__set_bytes(o, "data", "data_b64", r->data, r->len);
    if (r->from != 0)
        rc |= coord__set_int(o, "from", (int64_t)r->from);
    if (r->total != 0)
        rc |= coord__set_int(o, "total", (int64_t)r->total);
    rc |= coord__set_int(o, "spool_seq", (int64_t)r->spool_seq);
    if (r->executor[0] != '\0')
        rc |= coord__set_str(o, "executor", r->executor);
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* o["error"] into out->rc and out->err; absent or null: rc 0. */
static int error_from(const json_t *o, struct coord_reply *out, struct ty_err *err)
{
    const json_t *e = json_object_get(o, "error");
    if (e == NULL || json_is_null(e))
        return 0;
    if (!json_is_object(e))
        return coord__refuse(err, &top, "error", "not an object");
    static const struct coord__where at = {"", "error"};
    const char *code, *msg, *field;
    int rc;
    if ((rc = coord__get_str(e, &at, "code", true, &code, err)) != 0 ||
        (rc = coord__get_str(e, &at, "message", true, &msg, err)) != 0 ||
        (rc = coord__get_str(e, &at, "field", false, &field, err)) != 0)
        return rc;
    int c = ty_code_parse(code);
    if (c == 0)
        return coord__refuse(err, &at, "code", "unknown error code \"%.40s\"", code);
    out->rc = ty_error(&out->err, c, field, -1, 0, "%s", msg);
    return 0;
}

int coord_reply_from_json(const json_t *o, struct coord_reply *out, struct ty_err *err)
{
    memset(out, 0, sizeof *out);
    ty_err_clear(&out->err);
    if (!json_is_object(o))
        return ty_error(err, TY_EFORMAT, NULL, -1, 0, "reply: not a JSON object");
    const char *executor, *data;
    size_t len;
    int64_t from, total, seq;
    struct strbuf scratch;
    sb_init(&scratch);
    int rc;
    if ((rc = check_version(o, "reply", err)) != 0 || (rc = error_from(o, out, err)) != 0 ||
        (rc = coord__get_int(o, &top, "from", false, 0, I64, &from, err)) != 0 ||
        (rc = coord__get_int(o, &top, "total", false, 0, I64, &total, err)) != 0 ||
        (rc = coord__get_int(o, &top, "spool_seq", false, 0, I64, &seq, err)) != 0 ||
        (rc = get_id(o, &top, "executor", false, &executor, err)) != 0 ||
        (rc = coord__get_bytes(o, &top, "data", "data_b64", &scratch, &data, &len, err)) != 0)
        goto fail;
    out->from = (uint64_t)from;
    out->total = (uint64_t)total;
    out->spool_seq = (uint64_t)seq;
    if (executor != NULL)
        snprintf(out->executor, sizeof out->executor, "%s", executor);
    if (data != NULL) {
        if ((out->data = malloc(len + 1)) == NULL) {
            rc = no_memory(err);
            goto fail;
        }
        memcpy(out->data, data, len);
        out->data[len] = '\0';
        out->len = len;
    }
    const json_t *j = json_object_get(o, "json");
    if (j != NULL && !json_is_null(j) && (out->json = json_deep_copy(j)) == NULL) {
        rc = no_memory(err);
        goto fail;
    }
    sb_free(&scratch);
    return 0;
fail:
    sb_free(&scratch);
    free(out->data);
    memset(out, 0, sizeof *out);
    ty_err_clear(&out->err);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Registrations
 */

void coord_member_info_clear(struct coord_member_info *m)
{
    free(m->host);
    free(m->url);
    free(m->version);
    for (size_t i = 0; i < m->n_labels; i++) {
        free(m->labels[i].key);
        free(m->labels[i].value);
    }
    free(m->labels);
    for (size_t i = 0; i < m->n_domains; i++)
        free(m->domains[i]);
    free(m->domains);
    memset(m, 0, sizeof *m);
}

static double finite_or_zero(double d)
{
    return isfinite(d) ? d : 0;
}

json_t *coord_member_info_to_json(const struct coord_member_info *m)
{
    json_t *o = json_object(), *labels = json_object(), *domains = json_array();
    int rc = o == NULL || labels == NULL || domains == NULL ? TY_ENOMEM : 0;
    for (size_t i = 0; rc == 0 && i < m->n_labels; i++)
        rc = set_new(labels, m->labels[i].key, json_string(m->labels[i].value));
    for (size_t i = 0; rc == 0 && i < m->n_domains; i++)
        if (json_array_append_new(domains, json_string(m->domains[i])) != 0)
            rc = TY_ENOMEM;
    if (rc != 0) {
        json_decref(o);
        json_decref(labels);
        json_decref(domains);
        return NULL;
    }
    rc = coord__set_int(o, "v", COORD_WIRE_VERSION) | coord__set_str(o, "id", m->id) |
         coord__set_str(o, "host", m->host) | coord__set_str(o, "url", m->url) |
         coord__set_str(o, "version", m->version) | coord__set_int(o, "pid", m->pid) |
         set_new(o, "labels", labels) | set_new(o, "domains", domains) |
         coord__set_int(o, "capacity", m->capacity) | coord__set_int(o, "running", m->running) |
         set_new(o, "cpu", json_real(finite_or_zero(m->cpu))) |
         coord__set_int(o, "mem_bytes", m->mem_bytes) |
         set_new(o, "load1", json_real(finite_or_zero(m->load1))) |
         coord__set_int(o, "clock_offset_ms", m->clock_offset_ms) |
         coord__set_int(o, "started_ms", m->started_ms) |
         coord__set_int(o, "updated_ms", m->updated_ms) |
         coord__set_int(o, "applied_gen", m->applied_gen) |
         coord__set_int(o, "through", m->through) | set_new(o, "fenced", json_boolean(m->fenced));
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static bool label_ok(const char *s, size_t n)
{
    return coord__word_ok(s, n, LABEL_MAX);
}

static int labels_from(const json_t *o, struct coord_member_info *m, struct ty_err *err)
{
    const json_t *l = json_object_get(o, "labels");
    if (l == NULL || json_is_null(l))
        return 0;
    if (!json_is_object(l))
        return coord__refuse(err, &top, "labels", "not an object");
    if (json_object_size(l) > COORD_LABELS_MAX)
        return coord__refuse(err, &top, "labels", "%zu labels; at most %d", json_object_size(l),
                             COORD_LABELS_MAX);
    if (json_object_size(l) == 0)
        return 0;
    if ((m->labels = calloc(json_object_size(l), sizeof *m->labels)) == NULL)
        return no_memory(err);
    static const struct coord__where at = {"", "labels"};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)l, key, v)
    {
        if (!label_ok(key, strlen(key)))
            return coord__refuse(err, &at, key,
                                 "not a label key (1-%d letters, digits, '.', '_' or '-')",
                                 LABEL_MAX);
        if (!json_is_string(v) || !label_ok(json_string_value(v), json_string_length(v)))
            return coord__refuse(err, &at, key,
                                 "not a label value (a string of 1-%d letters, digits, '.', "
                                 "'_' or '-')",
                                 LABEL_MAX);
        struct coord_label *lb = &m->labels[m->n_labels];
        if ((lb->key = strdup(key)) == NULL || (lb->value = strdup(json_string_value(v))) == NULL) {
            free(lb->key);
            lb->key = NULL;
            return no_memory(err);
        }
        m->n_labels++;
    }
    return 0;
}

static int domains_from(const json_t *o, struct coord_member_info *m, struct ty_err *err)
{
    const json_t *d = json_object_get(o, "domains");
    if (d == NULL || json_is_null(d))
        return 0;
    if (!json_is_array(d))
        return coord__refuse(err, &top, "domains", "not an array");
    size_t n = json_array_size(d);
    if (n > COORD_DOMAINS_MAX)
        return coord__refuse(err, &top, "domains", "%zu domains; at most %d", n, COORD_DOMAINS_MAX);
    if (n == 0)
        return 0;
    if ((m->domains = calloc(n, sizeof *m->domains)) == NULL)
        return no_memory(err);
    for (size_t i = 0; i < n; i++) {
        char idx[INDEX_MAX], field[TY_ERR_FIELD_MAX];
        snprintf(idx, sizeof idx, "%zu", i);
        static const struct coord__where at = {"", "domains"};
        const json_t *e = json_array_get(d, i);
        if (!json_is_string(e))
            return coord__refuse(err, &at, idx, "not a string");
        const char *path = json_string_value(e);
        if (memchr(path, '\0', json_string_length(e)) != NULL)
            return coord__refuse(err, &at, idx, "holds a NUL character");
        if (domain_check_path(coord__path(&at, idx, field, sizeof field), path, err) != 0) {
            if (err != NULL)
                err->code = TY_EFORMAT;
            return TY_EFORMAT;
        }
        if ((m->domains[i] = strdup(path)) == NULL)
            return no_memory(err);
        m->n_domains++;
    }
    return 0;
}

static int member_from(const json_t *o, struct coord_member_info *m, struct ty_err *err)
{
    const char *id, *host, *url, *version;
    int64_t pid, capacity, running, mem, offset, started, updated, gen, through;
    int rc;
    if ((rc = check_version(o, "registration", err)) != 0 ||
        (rc = get_id(o, &top, "id", true, &id, err)) != 0 ||
        (rc = coord__get_str(o, &top, "host", true, &host, err)) != 0 ||
        (rc = coord__get_str(o, &top, "url", true, &url, err)) != 0 ||
        (rc = coord__get_str(o, &top, "version", true, &version, err)) != 0 ||
        (rc = coord__get_int(o, &top, "pid", false, 0, COORD__I32, &pid, err)) != 0 ||
        (rc = coord__get_int(o, &top, "capacity", true, 0, U32, &capacity, err)) != 0 ||
        (rc = coord__get_int(o, &top, "running", false, 0, U32, &running, err)) != 0 ||
        (rc = get_share(o, &top, "cpu", &m->cpu, err)) != 0 ||
        (rc = coord__get_int(o, &top, "mem_bytes", false, 0, I64, &mem, err)) != 0 ||
        (rc = get_share(o, &top, "load1", &m->load1, err)) != 0 ||
        (rc = coord__get_int(o, &top, "clock_offset_ms", false, -I64, I64, &offset, err)) != 0 ||
        (rc = coord__get_int(o, &top, "started_ms", true, 0, I64, &started, err)) != 0 ||
        (rc = coord__get_int(o, &top, "updated_ms", true, 0, I64, &updated, err)) != 0 ||
        (rc = coord__get_int(o, &top, "applied_gen", false, 0, I64, &gen, err)) != 0 ||
        (rc = coord__get_int(o, &top, "through", false, 0, I64, &through, err)) != 0 ||
        (rc = coord__get_bool(o, &top, "fenced", &m->fenced, err)) != 0 ||
        (rc = labels_from(o, m, err)) != 0 || (rc = domains_from(o, m, err)) != 0 ||
        (rc = dup_str(host, &m->host, err)) != 0 || (rc = dup_str(url, &m->url, err)) != 0 ||
        (rc = dup_str(version, &m->version, err)) != 0)
        return rc;
    snprintf(m->id, sizeof m->id, "%s", id);
    m->pid = pid;
    m->capacity = (uint32_t)capacity;
    m->running = (uint32_t)running;
    m->mem_bytes = mem;
    m->clock_offset_ms = offset;
    m->started_ms = started;
    m->updated_ms = updated;
    m->applied_gen = gen;
    m->through = through;
    return 0;
}

int coord_member_info_from_json(const json_t *o, struct coord_member_info *m, struct ty_err *err)
{
    memset(m, 0, sizeof *m);
    if (!json_is_object(o))
        return ty_error(err, TY_EFORMAT, NULL, -1, 0, "registration: not a JSON object");
    int rc = member_from(o, m, err);
    if (rc != 0)
        coord_member_info_clear(m);
    return rc;
}

static int bad_label(struct ty_err *err, size_t i, const char *entry, size_t n, const char *what)
{
    ty_error(err, TY_EINVAL, "labels", -1, 0, "labels: entry %zu \"%.*s\": %s", i,
             n > 80 ? 80 : (int)n, entry, what);
    return TY_EINVAL; /* spelt out: callers rely on it being non-zero */
}

/* Entry i (from 1) of the --labels text, p[0..len), into *out; keys in have[0..n) may not
 * come again. */
static int label_entry(const char *p, size_t len, size_t i, const struct coord_label *have,
                       size_t n, struct coord_label *out, struct ty_err *err)
{
    const char *eq = memchr(p, '=', len);
    if (eq == NULL)
        return bad_label(err, i, p, len, "expected key=value");
    size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
    if (!label_ok(p, klen))
        return bad_label(err, i, p, len, "the key is not 1-63 letters, digits, '.', '_' or '-'");
    if (!label_ok(eq + 1, vlen))
        return bad_label(err, i, p, len, "the value is not 1-63 letters, digits, '.', '_' or '-'");
    for (size_t k = 0; k < n; k++)
        if (strlen(have[k].key) == klen && memcmp(have[k].key, p, klen) == 0)
            return bad_label(err, i, p, len, "the key is given twice");
    out->key = strndup(p, klen);
    out->value = strndup(eq + 1, vlen);
    if (out->key == NULL || out->value == NULL) {
        no_memory(err);
        return TY_ENOMEM;
    }
    return 0;
}

int coord_labels_parse(const char *text, struct coord_member_info *m, struct ty_err *err)
{
    if (text == NULL)
        text = "";
    size_t entries = 1, n = 0;
    for (const char *p = text; *p != '\0'; p++)
        entries += *p == ',';
    if (text[0] != '\0' && entries > COORD_LABELS_MAX)
        return ty_error(err, TY_EINVAL, "labels", -1, 0, "labels: %zu entries; at most %d", entries,
                        COORD_LABELS_MAX);
    struct coord_label *labels = NULL;
    if (text[0] != '\0' && (labels = calloc(entries, sizeof *labels)) == NULL)
        return no_memory(err);
    int rc = 0;
    for (const char *p = text; n < entries && text[0] != '\0'; p++) {
        size_t len = strcspn(p, ",");
        if ((rc = label_entry(p, len, n + 1, labels, n, &labels[n], err)) != 0) {
            n++; /* what it got is freed with the rest */
            goto fail;
        }
        n++;
        p += len; /* at the ',' or the end */
        if (*p == '\0')
            break;
    }
    for (size_t i = 0; i < m->n_labels; i++) {
        free(m->labels[i].key);
        free(m->labels[i].value);
    }
    free(m->labels);
    m->labels = labels;
    m->n_labels = n;
    return 0;
fail:
    for (size_t i = 0; i < n; i++) {
        free(labels[i].key);
        free(labels[i].value);
    }
    free(labels);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Placements
 */

void coord_placement_clear(struct coord_placement *p)
{
    free(p->job);
    free(p->shards);
    free(p->from);
    memset(p, 0, sizeof *p);
}

/* Parse data[0..len) as a JSON object of version COORD_WIRE_VERSION. */
static int load_object(const char *data, size_t len, const char *what, json_t **out,
                       struct ty_err *err)
{
    json_error_t jerr;
    json_t *o = json_loadb(data, len, 0, &jerr);
    *out = NULL;
    if (o == NULL)
        return ty_error(err, TY_EFORMAT, NULL, -1, 0, "%s: not JSON (%s at byte %d)", what,
                        jerr.text, jerr.position);
    if (!json_is_object(o)) {
        json_decref(o);
        return ty_error(err, TY_EFORMAT, NULL, -1, 0, "%s: not a JSON object", what);
    }
    int rc = check_version(o, what, err);
    if (rc != 0) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

int coord_placement_head_encode(const struct coord_placement_head *h, struct strbuf *out)
{
    if (!coord_id_ok(h->leader) || h->n_parts == 0 || h->n_parts > COORD_PARTS_MAX)
        return TY_EINVAL; /* every reader would refuse it */
    sb_truncate(out, 0);
    sb_addf(out,
            "{\"v\":%d,\"gen\":%lld,\"chunks\":%u,\"jobs\":%lld,\"leader\":\"%s\",\"at\":%lld,"
            "\"session\":%lld,",
            COORD_WIRE_VERSION, (long long)h->gen, h->chunks, (long long)h->jobs, h->leader,
            (long long)h->at_ms, (long long)h->session);
    if (h->held >= 0)
        sb_addf(out, "\"held\":%lld,", (long long)h->held);
    sb_adds(out, "\"parts\":[");
    for (uint32_t i = 0; i < h->n_parts; i++)
        sb_addf(out, "%s[%lld,%u,%lld]", i > 0 ? "," : "", (long long)h->parts[i].gen,
                h->parts[i].chunks, (long long)h->parts[i].bytes);
    sb_adds(out, "]}");
    return sb_failed(out) ? TY_ENOMEM : 0;
}

/* o["parts"] into h: [[gen, chunks, bytes], ...], generations increasing up to h->gen, chunks
 * adding up to h->chunks; absent: one base of h->gen and h->chunks. */
static int get_parts(const json_t *o, struct coord_placement_head *h, struct ty_err *err)
{
    const json_t *parts = json_object_get(o, "parts");
    if (parts == NULL) {
        h->parts[0] = (struct coord_placement_part){.gen = h->gen, .chunks = h->chunks};
        h->n_parts = 1;
        return 0;
    }
    size_t n = json_array_size(parts);
    if (!json_is_array(parts) || n == 0 || n > COORD_PARTS_MAX)
        return coord__refuse(err, &top, "parts", "expected an array of 1 to %d parts",
                             COORD_PARTS_MAX);
    int64_t chunks = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *p = json_array_get(parts, i);
        char path[PATH_CHARS];
        const struct coord__where w = element(&top, "parts", i, path, sizeof path);
        const json_t *g = json_array_get(p, 0), *c = json_array_get(p, 1),
                     *b = json_array_get(p, 2);
        if (json_array_size(p) != 3 || !json_is_integer(g) || !json_is_integer(c) ||
            !json_is_integer(b))
            return coord__refuse(err, &w, NULL, "expected [generation, chunks, bytes]");
        json_int_t gen = json_integer_value(g), nc = json_integer_value(c);
        json_int_t bytes = json_integer_value(b);
        if (gen < 1 || gen > h->gen || (i > 0 && gen <= h->parts[i - 1].gen))
            return coord__refuse(err, &w, NULL,
                                 "generation %lld: parts go up from 1 to the head's %lld",
                                 (long long)gen, (long long)h->gen);
        if (nc < 1 || nc > UINT32_MAX || bytes < 0)
            return coord__refuse(err, &w, NULL, "%lld chunks of %lld bytes", (long long)nc,
                                 (long long)bytes);
        h->parts[i] =
            (struct coord_placement_part){.gen = gen, .chunks = (uint32_t)nc, .bytes = bytes};
        chunks += nc;
    }
    h->n_parts = (uint32_t)n;
    if (chunks != h->chunks)
        return coord__refuse(err, &top, "parts", "%lld chunks in parts, %u in the head",
                             (long long)chunks, h->chunks);
    return 0;
}

int coord_placement_head_decode(const char *data, size_t len, struct coord_placement_head *h,
                                struct ty_err *err)
{
    memset(h, 0, sizeof *h);
    json_t *o;
    int rc = load_object(data, len, "placement head", &o, err);
    if (rc != 0)
        return rc;
    const char *leader;
    int64_t gen, chunks, jobs, at, session, held = -1;
    if ((rc = coord__get_int(o, &top, "gen", true, 1, I64, &gen, err)) == 0 &&
        (rc = coord__get_int(o, &top, "chunks", true, 1, U32, &chunks, err)) == 0 &&
        (rc = coord__get_int(o, &top, "jobs", true, 0, I64, &jobs, err)) == 0 &&
        (rc = get_id(o, &top, "leader", true, &leader, err)) == 0 &&
        (rc = coord__get_int(o, &top, "at", true, 0, I64, &at, err)) == 0 &&
        (rc = coord__get_int(o, &top, "session", true, 0, I64, &session, err)) == 0 &&
        (rc = coord__get_int(o, &top, "held", false, 0, I64, &held, err)) == 0) {
        /* a chunk holds at least one placement, unless it is the only one */
        if (chunks > 1 && chunks > jobs)
            rc = coord__refuse(err, &top, "chunks", "%lld chunks for %lld placements",
                               (long long)chunks, (long long)jobs);
    }
    if (rc == 0) {
        h->gen = gen;
        h->chunks = (uint32_t)chunks;
        h->jobs = jobs;
        snprintf(h->leader, sizeof h->leader, "%s", leader);
        h->at_ms = at;
        h->session = session;
        h->held = json_object_get(o, "held") != NULL ? held : -1;
        rc = get_parts(o, h, err);
    }
    if (rc != 0)
        memset(h, 0, sizeof *h);
    json_decref(o);
    return rc;
}

bool coord_placement_head_extends(const struct coord_placement_head *a,
                                  const struct coord_placement_head *b)
{
    if (a->n_parts == 0 || b->n_parts < a->n_parts)
        return false;
    for (uint32_t i = 0; i < a->n_parts; i++)
        if (a->parts[i].gen != b->parts[i].gen || a->parts[i].chunks != b->parts[i].chunks)
            return false;
    return true;
}

/* s as a JSON string.  Names and ids need no escapes and are copied; anything else goes
 * through jansson.  TY_EINVAL when s is not UTF-8. */
static int add_json_str(struct strbuf *sb, const char *s)
{
    size_t n = strlen(s);
    if (coord__word_ok(s, n, n)) {
        sb_addc(sb, '"');
        sb_add(sb, s, n);
        sb_addc(sb, '"');
        return 0;
    }
    if (utf8_invalid_at((const unsigned char *)s, n) != n)
        return TY_EINVAL;
    json_t *v = json_stringn(s, n);
    char *text = v != NULL ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    if (text == NULL)
        return TY_ENOMEM;
    sb_adds(sb, text);
    free(text);
    return 0;
}

/* One placement's entry: {"j","ver","s" (absent: every shard),"n","r" (absent: 0),"u","f"}, or
 * {"j","d":1} for a drop. */
static int entry_text(const struct coord_placement *p, struct strbuf *sb)
{
    assert(p->n_shards == 0 || p->shards != NULL);
    sb_adds(sb, "{\"j\":");
    int rc = add_json_str(sb, p->job != NULL ? p->job : "");
    if (p->drop) {
        sb_adds(sb, ",\"d\":1}");
        return rc != 0 ? rc : sb_failed(sb) ? TY_ENOMEM : 0;
    }
    sb_addf(sb, ",\"ver\":%lld", (long long)p->version);
    if (p->n_shards > 0) {
        sb_adds(sb, ",\"s\":[");
        for (uint32_t i = 0; i < p->n_shards; i++)
            sb_addf(sb, i > 0 ? ",%u" : "%u", p->shards[i]);
        sb_addc(sb, ']');
    }
    sb_addf(sb, ",\"n\":%u", p->job_shards);
    if (p->resume_after != 0)
        sb_addf(sb, ",\"r\":%lld", (long long)p->resume_after);
    if (p->uncertain != 0)
        sb_addf(sb, ",\"u\":%lld", (long long)p->uncertain);
    if (rc == 0 && p->from != NULL) {
        sb_adds(sb, ",\"f\":");
        rc = add_json_str(sb, p->from);
    }
    sb_addc(sb, '}');
    return rc != 0 ? rc : sb_failed(sb) ? TY_ENOMEM : 0;
}

/* Placement i cannot be written: it alone takes more than a chunk's max bytes (or, bytes
 * 0, its name or "from" is not UTF-8). */
static int unfit(struct ty_err *err, size_t i, const char *job, size_t bytes, size_t max)
{
    char field[PATH_CHARS];
    snprintf(field, sizeof field, "jobs.%zu", i);
    if (bytes == 0)
        return ty_error(err, TY_EINVAL, field, -1, 0,
                        "%s: the placement's job name or \"from\" is not UTF-8", field);
    return ty_error(err, TY_EINVAL, field, -1, 0,
                    "%s: the placement of job \"%.*s\" is %zu bytes, more than a chunk of %zu "
                    "holds",
                    field, JOB_NAME_MAX, job != NULL ? job : "", bytes, max);
}

int coord_placements_encode(const struct coord_placement *p, size_t n, size_t max_bytes,
                            struct strbuf **chunks, size_t *n_chunks, struct ty_err *err)
{
    static const char close[] = "]}";
    char open[32];
    size_t open_len =
        (size_t)snprintf(open, sizeof open, "{\"v\":%d,\"jobs\":[", COORD_WIRE_VERSION);
    size_t frame = open_len + sizeof close - 1;
    *chunks = NULL;
    *n_chunks = 0;
    if (max_bytes < frame)
        return ty_error(err, TY_EINVAL, "max_bytes", -1, 0,
                        "max_bytes: %zu cannot hold even an empty chunk (%zu bytes)", max_bytes,
                        frame);
    struct strbuf *c = NULL, entry;
    size_t nc = 0, cap = 0;
    sb_init(&entry);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i <= n; i++) {
        if (i < n) {
            sb_truncate(&entry, 0);
            if ((rc = entry_text(&p[i], &entry)) == TY_ENOMEM)
                rc = no_memory(err);
            else if (rc != 0 || frame + entry.len > max_bytes)
                rc = unfit(err, i, p[i].job, rc != 0 ? 0 : frame + entry.len, max_bytes);
            if (rc != 0)
                break;
        }
        /* a new chunk at the start and when this entry does not fit the last one */
        bool first = nc > 0 && c[nc - 1].len == open_len;
        if (nc == 0 ||
            (i < n && c[nc - 1].len + !first + entry.len + sizeof close - 1 > max_bytes)) {
            if (nc > 0)
                sb_adds(&c[nc - 1], close);
            if (nc == cap) {
                size_t grown = cap ? cap * 2 : 4;
                struct strbuf *bigger = realloc(c, grown * sizeof *c);
                if (bigger == NULL) {
                    rc = no_memory(err);
                    break;
                }
                c = bigger;
                cap = grown;
            }
            sb_init(&c[nc]);
            sb_add(&c[nc++], open, open_len);
            first = true;
        }
        if (i < n) {
            if (!first)
                sb_addc(&c[nc - 1], ',');
            sb_add(&c[nc - 1], entry.buf, entry.len);
        } else {
            sb_adds(&c[nc - 1], close);
        }
    }
    for (size_t i = 0; rc == 0 && i < nc; i++)
        if (sb_failed(&c[i]))
            rc = no_memory(err);
    sb_free(&entry);
    if (rc != 0) {
        for (size_t i = 0; i < nc; i++)
            sb_free(&c[i]);
        free(c);
        return rc;
    }
    *chunks = c;
    *n_chunks = nc;
    return 0;
}

/* One entry of a chunk into *p, its strings in job[] and from[], its shards in buf. */
static int placement_from(const json_t *o, size_t i, struct coord_placement *p, uint32_t *buf,
                          char job[JOB_NAME_MAX + 1], char from[COORD_ID_MAX], struct ty_err *err)
{
    assert(buf != NULL);
    char path[PATH_CHARS];
    const struct coord__where w = element(&top, "jobs", i, path, sizeof path);
    memset(p, 0, sizeof *p);
    if (!json_is_object(o))
        return coord__refuse(err, &w, NULL, "not an object");
    const char *name, *f;
    int64_t version, shards, resume, unsure = 0, drop = 0;
    int rc;
    if ((rc = get_job_name(o, &w, "j", true, &name, err)) != 0 ||
        (rc = coord__get_int(o, &w, "d", false, 0, 1, &drop, err)) != 0)
        return rc;
    if (drop) {
        snprintf(job, JOB_NAME_MAX + 1, "%s", name);
        p->job = job;
        p->drop = true;
        return 0;
    }
    if ((rc = coord__get_int(o, &w, "ver", true, 0, I64, &version, err)) != 0 ||
        (rc = coord__get_int(o, &w, "n", true, 1, JOB_SHARDS_MAX, &shards, err)) != 0 ||
        (rc = get_shards(o, &w, "s", (uint32_t)shards, true, buf, &p->shards, &p->n_shards, err)) !=
            0 ||
        (rc = coord__get_int(o, &w, "r", false, 0, I64, &resume, err)) != 0 ||
        (rc = coord__get_int(o, &w, "u", false, 0, I64, &unsure, err)) != 0 ||
        (rc = get_id(o, &w, "f", false, &f, err)) != 0)
        return rc;
    p->uncertain = unsure;
    snprintf(job, JOB_NAME_MAX + 1, "%s", name);
    p->job = job;
    p->version = version;
    p->job_shards = (uint32_t)shards;
    p->resume_after = resume;
    if (f != NULL) {
        snprintf(from, COORD_ID_MAX, "%s", f);
        p->from = from;
    }
    return 0;
}

int coord_placements_decode(const char *data, size_t len,
                            int (*cb)(void *arg, const struct coord_placement *p),
                            void (*bad)(void *arg, size_t index, const struct ty_err *err),
                            void *arg, struct ty_err *err)
{
    json_t *o;
    int rc = load_object(data, len, "placement chunk", &o, err);
    if (rc != 0)
        return rc;
    const json_t *jobs = json_object_get(o, "jobs");
    uint32_t *buf = NULL; /* every entry's shards, in turn */
    if (jobs == NULL || !json_is_array(jobs))
        rc = coord__refuse(err, &top, "jobs", jobs == NULL ? "missing" : "not an array");
    else if ((buf = malloc(JOB_SHARDS_MAX * sizeof *buf)) == NULL)
        rc = no_memory(err);
    size_t n = rc == 0 ? json_array_size(jobs) : 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct coord_placement p = {0};
        struct ty_err why;
        char job[JOB_NAME_MAX + 1], from[COORD_ID_MAX];
        if (placement_from(json_array_get(jobs, i), i, &p, buf, job, from, &why) != 0) {
            if (p.shards != buf) /* they live in buf; nothing else is ever allocated */
                free(p.shards);
            if (bad != NULL)
                bad(arg, i, &why);
            continue;
        }
        rc = cb(arg, &p);
    }
    free(buf);
    json_decref(o);
    return rc;
}
