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
#define FIELDS(X)                                                                                  \
    X(F_DOMAIN, "domain", "\"\"")                                                                  \
    X(F_LEVEL, "level", "5")                                                                       \
    X(F_DESCRIPTION, "description", "\"\"")                                                        \
    X(F_OWNER, "owner", "\"\"")                                                                    \
    X(F_ENABLED, "enabled", "true")                                                                \
    X(F_TYPE, "type", "\"shell\"")                                                                 \
    X(F_WORKDIR, "workdir", "null")                                                                \
    X(F_USER, "user", "null")                                                                      \
    X(F_ENV, "env", "{}")                                                                          \
    X(F_SECRET_ENV, "secret_env", "{}")                                                            \
    X(F_OUTPUT_CAP, "output_cap", "65536")                                                         \
    X(F_SCHEDULE, "schedule", "null")                                                              \
    X(F_TIME_ZONE, "time_zone", "\"UTC\"")                                                         \
    X(F_START_AT, "start_at", "null")                                                              \
    X(F_END_AT, "end_at", "null")                                                                  \
    X(F_PAUSE_WINDOWS, "pause_windows", "[]")                                                      \
    X(F_CALENDARS, "calendars", "{\"skip\":[],\"only\":[]}")                                       \
    X(F_SHARDS, "shards", "1")                                                                     \
    X(F_SHARD_PARAMS, "shard_params", "{}")                                                        \
    X(F_JOB_PARAM, "job_param", "null")                                                            \
    X(F_TIMEOUT, "timeout", "0")                                                                   \
    X(F_TIMEOUT_ALARM, "timeout_alarm", "0")                                                       \
    X(F_KILL_GRACE, "kill_grace", "10")                                                            \
    X(F_RETRIES, "retries", "0")                                                                   \
    X(F_RETRY_BACKOFF, "retry_backoff", "10")                                                      \
    X(F_RETRY_BACKOFF_MAX, "retry_backoff_max", "3600")                                            \
    X(F_RETRY_BACKOFF_FACTOR, "retry_backoff_factor", "2.0")                                       \
    X(F_OVERLAP, "overlap", "\"skip\"")                                                            \
    X(F_MISFIRE_THRESHOLD, "misfire_threshold", "5")                                               \
    X(F_MISFIRE, "misfire", "\"skip\"")                                                            \
    X(F_CATCH_UP_MAX, "catch_up_max", "1")                                                         \
    X(F_ON_EXECUTOR_DEATH, "on_executor_death", "\"kill\"")                                        \
    X(F_FAILOVER, "failover", "false")                                                             \
    X(F_DOWNSTREAM, "downstream", "[]")

#define ENUM(f, k, r) f,
enum field {
    FIELDS(ENUM) N_DEFAULTS,
    F_NAME = N_DEFAULTS, /* the two without a default */
    F_COMMAND,
};
_Static_assert(F_COMMAND < 64, "the fields met are a bit each in a uint64_t");

#define DEFAULT(f, k, r) [f] = {k, r, sizeof(k) - 1, sizeof(r) - 1},
static const struct job_text_default defaults[N_DEFAULTS] = {FIELDS(DEFAULT)};

/* Each default as the member it is in canonical text: "key":raw. */
#define MEMBER(f, k, r) [f] = {"\"" k "\":" r, sizeof("\"" k "\":" r) - 1},
static const struct {
    const char *text;
    size_t len;
} members[N_DEFAULTS] = {FIELDS(MEMBER)};

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

/* Past the JSON string at c->p; *escaped is set when it holds a backslash.  0 or -1.
 * (Control characters in it are left for job_from_json to refuse.)  Byte by byte: the
 * strings of a job are short, and this beats two memchr calls each. */
static int skip_string(struct cursor *c, bool *escaped)
{
    if (c->p >= c->end || *c->p != '"')
        return -1;
    const char *p = c->p + 1;
    while (p < c->end) {
        char ch = *p++;
        if (ch == '"') {
            c->p = p;
            return 0;
        }
        if (ch == '\\') {
            *escaped = true;
            p++;
        }
    }
    return -1;
}

static bool literal_char(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || ch == '-' || ch == '+' ||
           ch == '.' || ch == 'E';
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
    while (c->p < c->end && literal_char(*c->p))
        c->p++;
    return c->p > start ? 0 : -1;
}

/* One member of the top-level object: its key (without quotes) and raw value. */
struct member {
    const char *key, *val;
    size_t key_len, val_len;
    bool key_escaped;
};

/* To the next member (past its comma unless first), or 1 at the end of the object; -1
 * when the text is not one. */
static int member_start(struct cursor *c, bool first)
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
    return 0;
}

/* The member at c->p.  0 or -1. */
static int member_read(struct cursor *c, struct member *m)
{
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

/* The next member, or 1 at the end of the object; -1 when the text is not one. */
static int next_member(struct cursor *c, bool first, struct member *m)
{
    int rc = member_start(c, first);
    return rc != 0 ? rc : member_read(c, m);
}

/* Whether the member at c->p is field f at its default, written canonically ("key":raw):
 * most members of a canonical text are, and one comparison skips them. */
static bool canonical_default(const struct cursor *c, size_t f)
{
    size_t n = members[f].len;
    if ((size_t)(c->end - c->p) <= n || memcmp(c->p, members[f].text, n) != 0)
        return false;
    char next = c->p[n];
    return next == ',' || next == '}' || next == ' ' || next == '\n' || next == '\t' ||
           next == '\r';
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

static bool key_is(const struct member *m, const char *key, size_t n)
{
    return !m->key_escaped && m->key_len == n && memcmp(m->key, key, n) == 0;
}

static bool raw_is(const struct member *m, const char *raw, size_t n)
{
    return m->val_len == n && memcmp(m->val, raw, n) == 0;
}

/* Which field m is (enum field), -1 for a key Tethys does not know; *hint is where the
 * search starts: members usually come in the table's order, so it is one comparison. */
static int field_of(const struct member *m, size_t *hint)
{
    for (size_t k = 0; k < N_DEFAULTS; k++) {
        size_t i = (*hint + k) % N_DEFAULTS;
        if (key_is(m, defaults[i].key, defaults[i].key_len)) {
            *hint = i + 1;
            return (int)i;
        }
    }
    return key_is(m, "name", 4) ? F_NAME : key_is(m, "command", 7) ? F_COMMAND : -1;
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

/* Decode what the trigger engine needs from member m, field f, not at its default.  false
 * when it is one of those fields written in a way left to job_from_json. */
static bool decode(const struct member *m, int f, struct job_sched *s, struct job_text_memo *memo)
{
    char text[SCHEDULE_TEXT_MAX + 1];
    struct ty_err err;
    switch (f) {
    case F_ENABLED: s->enabled = raw_is(m, "true", 4); return s->enabled || raw_is(m, "false", 5);
    case F_SCHEDULE:
        if (!plain_string(m, text, sizeof text))
            return false;
        if (memo != NULL && memo->schedule[0] != '\0' && strcmp(memo->schedule, text) == 0) {
            s->cron = memo->cron;
        } else if (cron_parse(text, &s->cron, &err) != 0) {
            return false;
        } else if (memo != NULL && strlen(text) < sizeof memo->schedule) {
            memcpy(memo->schedule, text, strlen(text) + 1);
            memo->cron = s->cron;
        }
        s->scheduled = true;
        return true;
    case F_TIME_ZONE: return plain_string(m, s->time_zone, sizeof s->time_zone);
    case F_SECRET_ENV: s->secrets = true; return true;
    case F_START_AT:
    case F_END_AT:
    case F_MISFIRE_THRESHOLD:
    case F_MISFIRE:
    case F_CATCH_UP_MAX: return false;
    default: return true;
    }
}

int job_text_compact(const char *text, size_t len, struct strbuf *out, struct job_sched *s,
                     struct job_text_memo *memo, struct ty_err *err)
{
    memset(s, 0, sizeof *s);
    s->enabled = true;
    memcpy(s->time_zone, "UTC", 4);
    s->misfire_threshold = 5;
    s->misfire = JOB_MISFIRE_SKIP;
    s->catch_up_max = 1;
    struct cursor c;
    struct member m = {text, text, 0, 0, false};
    int rc = open_object(&c, text, len) == 0 ? 0 : -1;
    bool plain = true;
    size_t hint = 0, kept = 0;
    uint64_t seen = 0; /* the known fields met, to refuse one given twice */
    int field = -1;
    sb_addc(out, '{');
    for (bool first = true; rc == 0; first = false) {
        if ((rc = member_start(&c, first)) != 0)
            continue;
        size_t f = hint % N_DEFAULTS;
        if (canonical_default(&c, f)) {
            m.key = c.p + 1;
            m.key_len = defaults[f].key_len;
            if ((seen & (UINT64_C(1) << f)) != 0) {
                rc = -2;
                break;
            }
            seen |= UINT64_C(1) << f;
            hint = f + 1;
            c.p += members[f].len;
            continue;
        }
        if ((rc = member_read(&c, &m)) != 0)
            continue;
        field = field_of(&m, &hint);
        if (field >= 0 && (seen & (UINT64_C(1) << field)) != 0) {
            rc = -2;
            break;
        }
        if (field >= 0)
            seen |= UINT64_C(1) << field;
        if (field >= 0 && field < N_DEFAULTS &&
            raw_is(&m, defaults[field].raw, defaults[field].raw_len))
            continue; /* the default */
        plain = decode(&m, field, s, memo) && plain;
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
        if (key_is(&m, key, strlen(key))) {
            *val = m.val;
            *val_len = m.val_len;
            return 0;
        }
    }
}
