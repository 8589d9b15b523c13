/*
 * job_text.c - a job's JSON text read without building JSON values: its compact form, one
 * member's raw value, and what scheduling needs.
 *
 * The executor holds every job it is assigned.  Parsed (job_from_json), a job is a struct
 * job of some 350 bytes and a dozen small strings, and parsing the 750-byte canonical text
 * of a small job - every field, defaults included - costs tens of microseconds in jansson:
 * a minute for a million jobs at start, more than the trigger engine needs to file them.
 * Scheduling needs a handful of fields.  So the text is walked once, member by member,
 * allocating nothing but the output: members whose value is written exactly as their
 * default's canonical text are left out (job_from_json fills the defaults of absent fields,
 * so the compact text reads back to the same job, at a seventh of the size), and the fields
 * the trigger engine needs are decoded when they are written plainly.  The job is parsed
 * for real when a run needs it, from the compact text.
 *
 * The walk checks the text's structure (strings closed, brackets nested, members
 * separated, no field given twice), not its values: what it keeps, job_from_json judges
 * when the job is parsed.  A field it does not decode (escapes in the schedule, a start
 * date, misfire settings) sends the caller to job_from_json.
 *
 * The defaults are job_from_json's, written as job_to_json writes them; test_job compares
 * the table with job_to_json of a minimal job, so the two cannot drift apart.
 */
#include <string.h>

#include "job.h"

#define SCHEDULE_TEXT_MAX 1024 /* job.c's limit: longer schedules are left to job_from_json */
#define DEPTH_MAX         64

/* Every field with a default, in job_to_json's order, with the default as it writes it. */
static const struct job_text_default defaults[] = {
    {"domain", "\"\""},
    {"level", "5"},
    {"description", "\"\""},
    {"owner", "\"\""},
    {"enabled", "true"},
    {"type", "\"shell\""},
    {"workdir", "null"},
    {"user", "null"},
    {"env", "{}"},
    {"secret_env", "{}"},
    {"output_cap", "65536"},
    {"schedule", "null"},
    {"time_zone", "\"UTC\""},
    {"start_at", "null"},
    {"end_at", "null"},
    {"pause_windows", "[]"},
    {"calendars", "{\"skip\":[],\"only\":[]}"},
    {"shards", "1"},
    {"shard_params", "{}"},
    {"job_param", "null"},
    {"timeout", "0"},
    {"timeout_alarm", "0"},
    {"kill_grace", "10"},
    {"retries", "0"},
    {"retry_backoff", "10"},
    {"retry_backoff_max", "3600"},
    {"retry_backoff_factor", "2.0"},
    {"overlap", "\"skip\""},
    {"misfire_threshold", "5"},
    {"misfire", "\"skip\""},
    {"catch_up_max", "1"},
    {"on_executor_death", "\"kill\""},
    {"failover", "false"},
    {"downstream", "[]"},
};
#define N_DEFAULTS (sizeof defaults / sizeof defaults[0])
_Static_assert(N_DEFAULTS + 2 <= 64, "the fields met are a bit each in a uint64_t");

const struct job_text_default *job_text_defaults(size_t *n)
{
    *n = N_DEFAULTS;
    return defaults;
}

/* ---- the walk ------------------------------------------------------------------------------ */

struct cursor {
    const char *p, *end;
};

static void skip_ws(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* Past the JSON string at c->p; *escaped is set when it holds a backslash.  0 or -1. */
static int skip_string(struct cursor *c, bool *escaped)
{
    if (c->p >= c->end || *c->p != '"')
        return -1;
    c->p++;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"')
            return 0;
        if (ch < 0x20)
            return -1;
        if (ch == '\\') {
            *escaped = true;
            if (c->p++ >= c->end)
                return -1;
        }
    }
    return -1;
}

/* Past the JSON value at c->p.  Objects and arrays are skipped by their brackets (strings in
 * them included); what is inside is job_from_json's to judge.  0 or -1. */
static int skip_value(struct cursor *c)
{
    bool escaped = false;
    if (c->p >= c->end)
        return -1;
    if (*c->p == '"')
        return skip_string(c, &escaped);
    if (*c->p == '{' || *c->p == '[') {
        char stack[DEPTH_MAX];
        int depth = 0;
        while (c->p < c->end) {
            char ch = *c->p;
            if (ch == '"') {
                if (skip_string(c, &escaped) != 0)
                    return -1;
                continue;
            }
            c->p++;
            if (ch == '{' || ch == '[') {
                if (depth == DEPTH_MAX)
                    return -1;
                stack[depth++] = ch == '{' ? '}' : ']';
            } else if (ch == '}' || ch == ']') {
                if (depth == 0 || stack[depth - 1] != ch)
                    return -1;
                if (--depth == 0)
                    return 0;
            }
        }
        return -1;
    }
    const char *start = c->p;
    while (c->p < c->end &&
           (strchr("+-.0123456789eE", *c->p) != NULL || (*c->p >= 'a' && *c->p <= 'z')))
        c->p++;
    return c->p > start ? 0 : -1;
}

/* One member of the top-level object: its key (without quotes) and raw value. */
struct member {
    const char *key, *val;
    size_t key_len, val_len;
    bool key_escaped;
};

/* The next member, or 1 at the end of the object; -1 when the text is not one. */
static int next_member(struct cursor *c, bool first, struct member *m)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        skip_ws(c);
        return c->p == c->end ? 1 : -1;
    }
    if (!first) {
        if (c->p >= c->end || *c->p != ',')
            return -1;
        c->p++;
        skip_ws(c);
    }
    m->key_escaped = false;
    const char *k = c->p;
    if (skip_string(c, &m->key_escaped) != 0)
        return -1;
    m->key = k + 1;
    m->key_len = (size_t)(c->p - k) - 2;
    skip_ws(c);
    if (c->p >= c->end || *c->p != ':')
        return -1;
    c->p++;
    skip_ws(c);
    m->val = c->p;
    if (skip_value(c) != 0)
        return -1;
    m->val_len = (size_t)(c->p - m->val);
    return 0;
}

static int open_object(struct cursor *c, const char *text, size_t len)
{
    c->p = text;
    c->end = text + len;
    skip_ws(c);
    if (c->p >= c->end || *c->p != '{')
        return -1;
    c->p++;
    return 0;
}

static bool key_is(const struct member *m, const char *key)
{
    size_t n = strlen(key);
    return !m->key_escaped && m->key_len == n && memcmp(m->key, key, n) == 0;
}

static bool raw_is(const struct member *m, const char *raw)
{
    size_t n = strlen(raw);
    return m->val_len == n && memcmp(m->val, raw, n) == 0;
}

/* Whether m is its field's default; *hint is where the search starts (members usually come
 * in the table's order, so this is one comparison per member).  *field gets the field's
 * place in the table, N_DEFAULTS for name and command, -1 for any other key. */
static bool is_default(const struct member *m, size_t *hint, int *field)
{
    for (size_t k = 0; k < N_DEFAULTS; k++) {
        size_t i = (*hint + k) % N_DEFAULTS;
        if (key_is(m, defaults[i].key)) {
            *hint = i + 1;
            *field = (int)i;
            return raw_is(m, defaults[i].raw);
        }
    }
    *field = key_is(m, "name") ? (int)N_DEFAULTS : key_is(m, "command") ? (int)N_DEFAULTS + 1 : -1;
    return false;
}

/* A plain JSON string value (no escapes) into buf[cap] as C text; false otherwise. */
static bool plain_string(const struct member *m, char *buf, size_t cap)
{
    if (m->val_len < 2 || m->val[0] != '"' || m->val_len - 2 >= cap ||
        memchr(m->val, '\\', m->val_len) != NULL)
        return false;
    memcpy(buf, m->val + 1, m->val_len - 2);
    buf[m->val_len - 2] = '\0';
    return memchr(buf, '\0', m->val_len - 2) == NULL;
}

/* Decode what the trigger engine needs from member m (not its default).  false when m is
 * one of those fields written in a way left to job_from_json. */
static bool decode(const struct member *m, struct job_sched *s)
{
    if (key_is(m, "enabled")) {
        s->enabled = raw_is(m, "true");
        return s->enabled || raw_is(m, "false");
    }
    if (key_is(m, "schedule")) {
        char text[SCHEDULE_TEXT_MAX + 1];
        struct ty_err err;
        if (!plain_string(m, text, sizeof text) || cron_parse(text, &s->cron, &err) != 0)
            return false;
        s->scheduled = true;
        return true;
    }
    if (key_is(m, "time_zone"))
        return plain_string(m, s->time_zone, sizeof s->time_zone);
    if (key_is(m, "secret_env"))
        s->secrets = true;
    return !key_is(m, "start_at") && !key_is(m, "end_at") && !key_is(m, "misfire_threshold") &&
           !key_is(m, "misfire") && !key_is(m, "catch_up_max");
}

int job_text_compact(const char *text, size_t len, struct strbuf *out, struct job_sched *s,
                     struct ty_err *err)
{
    memset(s, 0, sizeof *s);
    s->enabled = true;
    memcpy(s->time_zone, "UTC", 4);
    s->misfire_threshold = 5;
    s->misfire = JOB_MISFIRE_SKIP;
    s->catch_up_max = 1;
    struct cursor c;
    struct member m;
    int rc = open_object(&c, text, len) == 0 ? 0 : -1;
    bool plain = true;
    size_t hint = 0, kept = 0;
    uint64_t seen = 0; /* the known fields met, to refuse one given twice */
    int field = -1;
    sb_addc(out, '{');
    for (bool first = true; rc == 0; first = false) {
        rc = next_member(&c, first, &m);
        if (rc != 0)
            continue;
        bool dflt = is_default(&m, &hint, &field);
        if (field >= 0 && (seen & (UINT64_C(1) << field)) != 0) {
            rc = -2;
            break;
        }
        if (field >= 0)
            seen |= UINT64_C(1) << field;
        if (dflt)
            continue;
        plain = decode(&m, s) && plain;
        if (kept++ > 0)
            sb_addc(out, ',');
        sb_add(out, m.key - 1, m.key_len + 2);
        sb_addc(out, ':');
        sb_add(out, m.val, m.val_len);
    }
    sb_addc(out, '}');
    if (rc == -2)
        return ty_error(err, TY_EINVAL, "job", (int)(m.key - 1 - text), (int)m.key_len + 2,
                        "job: field \"%.*s\" is given twice", (int)m.key_len, m.key);
    if (rc < 0)
        return ty_error(err, TY_EINVAL, "job", (int)(c.p - text), 1,
                        "job: the definition is not a JSON object (at byte %d)", (int)(c.p - text));
    if (sb_failed(out))
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    return plain ? 0 : 1;
}

int job_text_member(const char *text, size_t len, const char *key, const char **val,
                    size_t *val_len)
{
    struct cursor c;
    struct member m;
    *val = NULL;
    *val_len = 0;
    if (open_object(&c, text, len) != 0)
        return TY_EINVAL;
    for (bool first = true;; first = false) {
        int rc = next_member(&c, first, &m);
        if (rc < 0)
            return TY_EINVAL;
        if (rc > 0)
            return TY_ENOENT;
        if (key_is(&m, key)) {
            *val = m.val;
            *val_len = m.val_len;
            return 0;
        }
    }
}
