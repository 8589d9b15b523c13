/*
 * coord.c - what every coord implementation shares: requests, the results' wire form, and
 * the field readers every codec of src/coord is built from (coord_impl.h).
 *
 * A result's JSON is what a spool keeps on disk and what a remote executor will send, so
 * reading it assumes nothing: every field is checked for presence, type and range, and a
 * refusal names the field.  Keys are the store's column names, so a spooled record reads
 * like the history row it becomes.  Output bytes are carried as a JSON string when they
 * are UTF-8 and as base64 ("output_b64") otherwise, so nothing is lost either way.
 */
#include "coord.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/b64.h"
#include "../core/utf8.h"
#include "coord_impl.h"

struct coord_request *coord_request_new(enum coord_req_kind kind)
{
    struct coord_request *r = calloc(1, sizeof *r);
    if (r != NULL)
        r->kind = kind;
    return r;
}

void coord_assignment_clear(struct coord_assignment *a)
{
    free(a->job);
    free(a->definition);
    json_decref(a->secrets);
    free(a->shards);
    free(a->from);
    memset(a, 0, sizeof *a);
}

void coord_request_free(struct coord_request *req)
{
    if (req == NULL)
        return;
    for (size_t i = 0; i < req->n_assign; i++)
        coord_assignment_clear(&req->assign[i]);
    free(req->assign);
    free(req->fire.job);
    free(req->fire.base);
    free(req->fire.shards);
    free(req->name);
    free(req->definition);
    json_decref(req->reply.json);
    free(req->reply.data);
    free(req);
}

/* ---------------------------------------------------------------------------------------
 * Fields (coord_impl.h)
 */

bool coord__word_ok(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool coord_id_ok(const char *id)
{
    return id != NULL && coord__word_ok(id, strlen(id), COORD_ID_MAX - 1);
}

const char *coord__path(const struct coord__where *w, const char *key, char *buf, size_t cap)
{
    if (key == NULL)
        snprintf(buf, cap, "%s", w->path);
    else
        snprintf(buf, cap, "%s%s%s", w->path, w->path[0] ? "." : "", key);
    return buf;
}

int coord__refuse(struct ty_err *err, const struct coord__where *w, const char *key,
                  const char *fmt, ...)
{
    if (err == NULL)
        return TY_EFORMAT;
    char field[TY_ERR_FIELD_MAX], what[TY_ERR_MSG_MAX];
    coord__path(w, key, field, sizeof field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return ty_error(err, TY_EFORMAT, field, -1, 0, "%s%s: %s", w->lead, field, what);
}

int coord__get_str(const json_t *o, const struct coord__where *w, const char *key, bool required,
                   const char **out, struct ty_err *err)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return required ? coord__refuse(err, w, key, "missing") : 0;
    if (!json_is_string(v))
        return coord__refuse(err, w, key, "not a string");
    /* a C string would silently end at the NUL */
    if (memchr(json_string_value(v), '\0', json_string_length(v)) != NULL)
        return coord__refuse(err, w, key, "holds a NUL character");
    *out = json_string_value(v);
    return 0;
}

int coord__get_int(const json_t *o, const struct coord__where *w, const char *key, bool required,
                   int64_t min, int64_t max, int64_t *out, struct ty_err *err)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (v == NULL)
        return required ? coord__refuse(err, w, key, "missing") : 0;
    if (!json_is_integer(v))
        return coord__refuse(err, w, key, "not an integer");
    json_int_t n = json_integer_value(v);
    if (n < min || n > max)
        return coord__refuse(err, w, key, "%lld is %s %lld", (long long)n,
                             n < min ? "less than" : "more than", (long long)(n < min ? min : max));
    *out = n;
    return 0;
}

int coord__get_bool(const json_t *o, const struct coord__where *w, const char *key, bool *out,
                    struct ty_err *err)
{
    json_t *v = json_object_get(o, key);
    *out = false;
    if (v == NULL)
        return 0;
    if (!json_is_boolean(v))
        return coord__refuse(err, w, key, "not true or false");
    *out = json_is_true(v);
    return 0;
}

int coord__get_name(const json_t *o, const struct coord__where *w, const char *key,
                    const char *const *names, size_t n, int *out, struct ty_err *err)
{
    const char *v;
    int rc = coord__get_str(o, w, key, true, &v, err);
    if (rc != 0 || v == NULL)
        return rc != 0 ? rc : coord__refuse(err, w, key, "missing");
    for (size_t i = 1; i < n; i++) {
        if (names[i] != NULL && strcmp(names[i], v) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    return coord__refuse(err, w, key, "unknown value \"%.40s\"", v);
}

int coord__set_str(json_t *o, const char *key, const char *v)
{
    if (v == NULL)
        return 0;
    return json_object_set_new(o, key, json_string(v)) == 0 ? 0 : TY_ENOMEM;
}

int coord__set_int(json_t *o, const char *key, int64_t v)
{
    return json_object_set_new(o, key, json_integer((json_int_t)v)) == 0 ? 0 : TY_ENOMEM;
}

int coord__set_bytes(json_t *o, const char *key, const char *key_b64, const char *data, size_t len)
{
    if (utf8_invalid_at((const unsigned char *)data, len) == len && memchr(data, '\0', len) == NULL)
        return json_object_set_new(o, key, json_stringn(data, len)) == 0 ? 0 : TY_ENOMEM;
    struct strbuf sb;
    sb_init(&sb);
    b64_encode(&sb, data, len);
    int rc = sb_failed(&sb) || json_object_set_new(o, key_b64, json_stringn(sb.buf, sb.len)) != 0
                 ? TY_ENOMEM
                 : 0;
    sb_free(&sb);
    return rc;
}

int coord__get_bytes(const json_t *o, const struct coord__where *w, const char *key,
                     const char *key_b64, struct strbuf *scratch, const char **data, size_t *len,
                     struct ty_err *err)
{
    *data = NULL;
    *len = 0;
    json_t *v = json_object_get(o, key);
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_string(v))
            return coord__refuse(err, w, key, "not a string");
        *data = json_string_value(v);
        *len = json_string_length(v);
        return 0;
    }
    v = json_object_get(o, key_b64);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return coord__refuse(err, w, key_b64, "not a string");
    sb_truncate(scratch, 0);
    if (b64_decode(scratch, json_string_value(v), json_string_length(v)) != 0)
        return coord__refuse(err, w, key_b64, "not base64");
    if (sb_failed(scratch))
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    *data = sb_str(scratch);
    *len = scratch->len;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Results to JSON
 */

static const char *const kind_names[] = {
    [COORD_RESULT_RUN] = "run", [COORD_RESULT_SKIP] = "skip", [COORD_RESULT_ALARM] = "alarm"};
static const char *const phase_names[] = {[COORD_PHASE_WAITING] = "waiting",
                                          [COORD_PHASE_QUEUED] = "queued",
                                          [COORD_PHASE_RUNNING] = "running",
                                          [COORD_PHASE_ENDED] = "ended",
                                          [COORD_PHASE_PLANNED] = "planned"};

/* The result codec's calls are many and its values come from the executor itself, so a
 * field jansson could not take is left out here; the reader then refuses the record. */
#define set_str(o, key, v) ((void)coord__set_str(o, key, v))
#define set_int(o, key, v) ((void)coord__set_int(o, key, v))

static void run_fields(json_t *o, const struct store_run *r)
{
    set_str(o, "run_id", r->run_id);
    set_str(o, "fire_id", r->fire_id);
    set_str(o, "job", r->job);
    set_str(o, "domain", r->domain);
    set_int(o, "shard", r->shard);
    set_int(o, "attempt", r->attempt);
    set_str(o, "trigger", store_trigger_name(r->trigger));
    set_int(o, "scheduled_at", r->scheduled_at);
    set_int(o, "started_at_ms", r->started_at_ms);
    set_int(o, "epoch", r->epoch);
}

json_t *coord_result_to_json(const struct coord_result *r)
{
    if (r->kind < COORD_RESULT_RUN || r->kind > COORD_RESULT_ALARM)
        return NULL;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    set_str(o, "k", kind_names[r->kind]);
    set_int(o, "seq", (int64_t)r->seq);
    set_str(o, "executor", r->executor != NULL ? r->executor : r->run.executor);
    set_int(o, "job_level", r->job_level);
    if (r->kind == COORD_RESULT_SKIP) {
        const struct store_skip *k = &r->skip;
        set_str(o, "fire_id", k->fire_id);
        set_str(o, "job", k->job);
        set_str(o, "domain", k->domain);
        set_int(o, "shard", k->shard);
        set_int(o, "scheduled_at", k->scheduled_at);
        set_int(o, "recorded_at_ms", k->recorded_at_ms);
        set_str(o, "reason", store_skip_reason_name(k->reason));
        set_str(o, "detail", k->detail);
        set_str(o, "trigger", store_trigger_name(k->trigger));
        json_object_set_new(o, "settled", json_boolean(r->settled));
        json_object_set_new(o, "downstream", json_boolean(r->downstream));
        set_int(o, "fire_shards", r->fire_shards);
        return o;
    }
    run_fields(o, &r->run);
    if (r->kind == COORD_RESULT_ALARM) {
        json_object_set_new(o, "on", json_boolean(r->alarm_on));
        set_int(o, "alarm_s", r->alarm_s);
        return o;
    }
    const struct store_run *u = &r->run;
    set_str(o, "status", store_run_status_name(u->status));
    set_int(o, "queued_at_ms", u->queued_at_ms);
    set_int(o, "ended_at_ms", u->ended_at_ms);
    set_int(o, "pid", u->pid);
    set_int(o, "pid_start", u->pid_start);
    set_str(o, "boot_id", u->boot_id);
    set_int(o, "exit_code", u->exit_code);
    set_int(o, "signal", u->signal);
    set_str(o, "error", u->error);
    if (u->output != NULL &&
        coord__set_bytes(o, "output", "output_b64", u->output, u->output_len) != 0) {
        json_decref(o);
        return NULL;
    }
    set_str(o, "phase",
            phase_names[r->phase >= COORD_PHASE_WAITING && r->phase <= COORD_PHASE_PLANNED
                            ? r->phase
                            : COORD_PHASE_ENDED]);
    json_object_set_new(o, "settled", json_boolean(r->settled));
    json_object_set_new(o, "downstream", json_boolean(r->downstream));
    set_int(o, "fire_shards", r->fire_shards);
    if (r->output_dropped)
        json_object_set_new(o, "output_dropped", json_true());
    return o;
}

/* ---------------------------------------------------------------------------------------
 * Results from JSON
 */

static const struct coord__where result_at = {"result ", ""};

static int bad(struct ty_err *err, const char *field, const char *what)
{
    return coord__refuse(err, &result_at, field, "%s", what);
}

static int get_str(const json_t *o, const char *key, bool required, const char **out,
                   struct ty_err *err)
{
    return coord__get_str(o, &result_at, key, required, out, err);
}

static int get_int(const json_t *o, const char *key, bool required, int64_t min, int64_t max,
                   int64_t *out, struct ty_err *err)
{
    return coord__get_int(o, &result_at, key, required, min, max, out, err);
}

static int get_bool(const json_t *o, const char *key, bool *out, struct ty_err *err)
{
    return coord__get_bool(o, &result_at, key, out, err);
}

static int get_name(const json_t *o, const char *key, const char *const *names, size_t n, int *out,
                    struct ty_err *err)
{
    return coord__get_name(o, &result_at, key, names, n, out, err);
}

#define I32 COORD__I32
#define I64 COORD__I64

static int identity_from(const json_t *o, struct store_run *r, struct ty_err *err)
{
    int64_t shard, attempt, sched, started, epoch;
    const char *trigger;
    int rc;
    if ((rc = get_str(o, "run_id", true, &r->run_id, err)) != 0 ||
        (rc = get_str(o, "fire_id", true, &r->fire_id, err)) != 0 ||
        (rc = get_str(o, "job", true, &r->job, err)) != 0 ||
        (rc = get_str(o, "domain", false, &r->domain, err)) != 0 ||
        (rc = get_int(o, "shard", true, 0, I32, &shard, err)) != 0 ||
        (rc = get_int(o, "attempt", true, 1, I32, &attempt, err)) != 0 ||
        (rc = get_str(o, "trigger", true, &trigger, err)) != 0 ||
        (rc = get_int(o, "scheduled_at", true, -I64, I64, &sched, err)) != 0 ||
        (rc = get_int(o, "started_at_ms", false, 0, I64, &started, err)) != 0 ||
        (rc = get_int(o, "epoch", false, 0, I64, &epoch, err)) != 0)
        return rc;
    if (r->run_id == NULL || r->fire_id == NULL || trigger == NULL)
        return bad(err, "run_id", "missing");
    if (strlen(r->run_id) >= STORE_ID_MAX || strlen(r->fire_id) >= STORE_FIRE_ID_MAX)
        return bad(err, strlen(r->run_id) >= STORE_ID_MAX ? "run_id" : "fire_id", "too long");
    if (store_trigger_parse(trigger, &r->trigger) != 0)
        return ty_error(err, TY_EFORMAT, "trigger", -1, 0,
                        "result trigger: unknown value \"%.40s\"", trigger);
    r->shard = (uint32_t)shard;
    r->attempt = (uint32_t)attempt;
    r->scheduled_at = sched;
    r->started_at_ms = started;
    r->epoch = epoch;
    return 0;
}

static int run_from(const json_t *o, struct coord_result *res, struct strbuf *scratch,
                    struct ty_err *err)
{
    struct store_run *r = &res->run;
    const char *status;
    int64_t queued, ended, pid, pid_start, exit_code, sig, shards;
    int phase = 0, rc;
    if ((rc = identity_from(o, r, err)) != 0 ||
        (rc = get_str(o, "status", true, &status, err)) != 0 ||
        (rc = get_int(o, "queued_at_ms", false, 0, I64, &queued, err)) != 0 ||
        (rc = get_int(o, "ended_at_ms", false, 0, I64, &ended, err)) != 0 ||
        (rc = get_int(o, "pid", false, 0, I32, &pid, err)) != 0 ||
        (rc = get_int(o, "pid_start", false, 0, I64, &pid_start, err)) != 0 ||
        (rc = get_str(o, "boot_id", false, &r->boot_id, err)) != 0 ||
        (rc = get_int(o, "exit_code", false, -1, 255, &exit_code, err)) != 0 ||
        (rc = get_int(o, "signal", false, 0, 128, &sig, err)) != 0 ||
        (rc = get_str(o, "error", false, &r->error, err)) != 0 ||
        (rc = coord__get_bytes(o, &result_at, "output", "output_b64", scratch, &r->output,
                               &r->output_len, err)) != 0 ||
        (rc = get_name(o, "phase", phase_names, sizeof phase_names / sizeof phase_names[0], &phase,
                       err)) != 0 ||
        (rc = get_bool(o, "settled", &res->settled, err)) != 0 ||
        (rc = get_bool(o, "downstream", &res->downstream, err)) != 0 ||
        (rc = get_bool(o, "output_dropped", &res->output_dropped, err)) != 0 ||
        (rc = get_int(o, "fire_shards", false, 0, I32, &shards, err)) != 0)
        return rc;
    if (store_run_status_parse(status, &r->status) != 0)
        return ty_error(err, TY_EFORMAT, "status", -1, 0, "result status: unknown value \"%.40s\"",
                        status);
    if (r->output_len > (size_t)STORE_OUTPUT_MAX)
        return bad(err, "output", "longer than a run's output may be");
    r->queued_at_ms = queued;
    r->ended_at_ms = ended;
    r->pid = pid;
    r->pid_start = pid_start;
    r->exit_code = (int)exit_code;
    r->signal = (int)sig;
    res->phase = (enum coord_phase)phase;
    res->fire_shards = (uint32_t)shards;
    return 0;
}

static int skip_from(const json_t *o, struct coord_result *res, struct ty_err *err)
{
    struct store_skip *k = &res->skip;
    const char *reason, *trigger;
    int64_t shard, sched, at, shards;
    int rc;
    if ((rc = get_str(o, "fire_id", true, &k->fire_id, err)) != 0 ||
        (rc = get_str(o, "job", true, &k->job, err)) != 0 ||
        (rc = get_str(o, "domain", false, &k->domain, err)) != 0 ||
        (rc = get_int(o, "shard", true, -1, I32, &shard, err)) != 0 ||
        (rc = get_int(o, "scheduled_at", true, -I64, I64, &sched, err)) != 0 ||
        (rc = get_int(o, "recorded_at_ms", true, 0, I64, &at, err)) != 0 ||
        (rc = get_str(o, "reason", true, &reason, err)) != 0 ||
        (rc = get_str(o, "detail", false, &k->detail, err)) != 0 ||
        (rc = get_str(o, "trigger", true, &trigger, err)) != 0 ||
        (rc = get_bool(o, "settled", &res->settled, err)) != 0 ||
        (rc = get_bool(o, "downstream", &res->downstream, err)) != 0 ||
        (rc = get_int(o, "fire_shards", false, 0, I32, &shards, err)) != 0)
        return rc;
    if (k->fire_id == NULL || k->job == NULL || reason == NULL || trigger == NULL)
        return bad(err, "fire_id", "missing");
    if (strlen(k->fire_id) >= STORE_FIRE_ID_MAX)
        return bad(err, "fire_id", "too long");
    if (store_skip_reason_parse(reason, &k->reason) != 0)
        return ty_error(err, TY_EFORMAT, "reason", -1, 0, "result reason: unknown value \"%.40s\"",
                        reason);
    if (store_trigger_parse(trigger, &k->trigger) != 0)
        return ty_error(err, TY_EFORMAT, "trigger", -1, 0,
                        "result trigger: unknown value \"%.40s\"", trigger);
    k->shard = (int32_t)shard;
    k->scheduled_at = sched;
    k->recorded_at_ms = at;
    res->fire_shards = (uint32_t)shards;
    return 0;
}

int coord_result_from_json(const json_t *o, struct coord_result *r, struct strbuf *scratch,
                           struct ty_err *err)
{
    memset(r, 0, sizeof *r);
    if (!json_is_object(o))
        return ty_error(err, TY_EFORMAT, NULL, -1, 0, "result: not a JSON object");
    int kind = 0, rc;
    int64_t seq, level;
    if ((rc = get_name(o, "k", kind_names, sizeof kind_names / sizeof kind_names[0], &kind, err)) !=
            0 ||
        (rc = get_int(o, "seq", true, 1, I64, &seq, err)) != 0 ||
        (rc = get_str(o, "executor", false, &r->executor, err)) != 0 ||
        (rc = get_int(o, "job_level", false, 0, 9, &level, err)) != 0)
        return rc;
    r->kind = (enum coord_result_kind)kind;
    r->seq = (uint64_t)seq;
    r->job_level = (int)level;
    r->run.executor = r->executor;
    if (r->kind == COORD_RESULT_SKIP)
        return skip_from(o, r, err);
    if (r->kind == COORD_RESULT_RUN)
        return run_from(o, r, scratch, err);
    int64_t alarm_s;
    if ((rc = identity_from(o, &r->run, err)) != 0 ||
        (rc = get_bool(o, "on", &r->alarm_on, err)) != 0 ||
        (rc = get_int(o, "alarm_s", false, 0, I32, &alarm_s, err)) != 0)
        return rc;
    r->alarm_s = (uint32_t)alarm_s;
    return 0;
}
