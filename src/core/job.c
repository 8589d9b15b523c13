/*
 * job.c - the job definition: JSON in, a validated struct out, canonical JSON back.
 *
 * Every job enters Tethys through job_from_json (the API; the CLI turns YAML and flags into
 * the same JSON), so this file is where bad input stops.  The parser walks the fields in
 * one fixed order - the order job_to_json writes them - and stops at the first problem, so
 * a user sees one error at a time, naming the field path and showing the offending value
 * (escaped, and cut short when long).  Unknown fields are checked before anything else: a
 * misspelt "comand" explains more than "command: missing" would.
 *
 * null means the same as leaving a field out.  That makes job_patch a plain RFC 7386 merge
 * patch over the canonical JSON: {"timeout": null} puts the default back.
 *
 * The canonical JSON has every field, defaults included, with one exception: the placement
 * fields (strategy, prefer, prefer_only) came after jobs were already stored, compared by
 * their text (versions, import plans), so they are written only when not at their
 * defaults and a job that does not use them keeps the text it always had.
 *
 * The struct keeps what the user wrote where that is what they want to see again (the
 * schedule text, the zone name) and a parsed form where the scheduler needs one (the
 * compiled cron expression; days and seconds of the day for pause windows), so nothing on
 * the fire path parses text.  Instants are written back in UTC.
 *
 * The limits below that are not in job.h are documented in docs/jobs.md; change both.
 */
#include "job.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "civil.h"
#include "domain.h"
#include "tz.h"

#define LEVEL_DEFAULT      5
#define TEXT_MAX           4096 /* description, workdir, job_param, each shard parameter */
#define OWNER_MAX          256
#define USER_MAX           32
#define ENV_NAME_MAX       128
#define ENV_VALUE_MAX      32768
#define SCHEDULE_MAX       1024
#define PAUSES_MAX         64
#define LIST_MAX           64           /* calendars.skip, calendars.only, downstream */
#define SECONDS_MAX        (31 * 86400) /* timeout, timeout_alarm */
#define KILL_GRACE_MAX     3600
#define RETRIES_MAX        100
#define BACKOFF_MAX        86400
#define BACKOFF_CAP_MAX    (7 * 86400)
#define MISFIRE_MAX        86400
#define CATCH_UP_MAX       1000
#define INSTANT_END        INT64_C(7258118400) /* 2200-01-01T00:00:00Z: instants are before it */
#define MIN_INTERVAL_SPAN  (365 * INT64_C(86400))
#define MIN_INTERVAL_FIRES 20000

#define SHOW_MAX  64 /* bytes of a shown value, quotes and "..." included */
#define PATH_MAX_ 160

/* Refuse input: fill err as ty_error does and evaluate to TY_EINVAL.  A macro so that the
 * static analyser, which cannot see into ty_err.c, knows every refusal is non-zero. */
#define invalid(err, field, ...)                                                                   \
    (ty_error((err), TY_EINVAL, (field), -1, 0, __VA_ARGS__), TY_EINVAL)

/* The fields of a job, in the order job_to_json writes them and job_from_json checks them. */
static const char *const job_fields[] = {
    "name",
    "domain",
    "level",
    "description",
    "owner",
    "enabled",
    "type",
    "command",
    "workdir",
    "user",
    "env",
    "secret_env",
    "output_cap",
    "schedule",
    "time_zone",
    "start_at",
    "end_at",
    "pause_windows",
    "calendars",
    "shards",
    "shard_params",
    "job_param",
    "strategy",
    "prefer",
    "prefer_only",
    "timeout",
    "timeout_alarm",
    "kill_grace",
    "retries",
    "retry_backoff",
    "retry_backoff_max",
    "retry_backoff_factor",
    "overlap",
    "misfire_threshold",
    "misfire",
    "catch_up_max",
    "on_executor_death",
    "failover",
    "downstream",
};
#define N_JOB_FIELDS (sizeof job_fields / sizeof job_fields[0])

/* Names of enum values, indexed by the value (0 unused). */
static const char *const type_names[] = {NULL, "shell"};
static const char *const overlap_names[] = {NULL, "skip", "queue", "parallel"};
static const char *const misfire_names[] = {NULL, "skip", "run_once", "catch_up"};
static const char *const orphan_names[] = {NULL, "kill", "finish"};
static const char *const strategy_names[] = {NULL, "even", "hash", "local"};
#define N_NAMES(a) (sizeof(a) / sizeof((a)[0]))

/* ---- showing values in messages ---------------------------------------------------------- */

/* Length of the UTF-8 sequence a lead byte starts (1 for anything else). */
static size_t utf8_len(unsigned char c)
{
    return c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
}

/* s[0..n) quoted and escaped as JSON would, cut short with "..." to fit buf[cap] (cap >= 16). */
static const char *quote(const char *s, size_t n, char *buf, size_t cap)
{
    assert(cap >= 16);
    size_t o = 0, room = cap - 5; /* the closing quote, "..." and the NUL */
    buf[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        size_t k = 0;
        if (c == '"' || c == '\\') {
            esc[k++] = '\\';
            esc[k++] = (char)c;
        } else if (c == '\n') {
            esc[k++] = '\\';
            esc[k++] = 'n';
        } else if (c == '\t') {
            esc[k++] = '\\';
            esc[k++] = 't';
        } else if (c < 0x20 || c == 0x7f) {
            k = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
        } else {
            esc[k++] = (char)c;
        }
        if (o + k > room) {
            /* do not leave half a UTF-8 sequence behind */
            size_t start = o;
            while (start > 1 && ((unsigned char)buf[start - 1] & 0xc0) == 0x80)
                start--;
            if (start > 1 && (unsigned char)buf[start - 1] >= 0xc0 &&
                o - (start - 1) < utf8_len((unsigned char)buf[start - 1]))
                o = start - 1;
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(buf + o, esc, k);
        o += k;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

const char *job__quote(const char *s, char *buf, size_t cap)
{
    return quote(s, strlen(s), buf, cap);
}

const char *job__show(const json_t *v, char *buf, size_t cap)
{
    switch (json_typeof(v)) {
    case JSON_STRING: return quote(json_string_value(v), json_string_length(v), buf, cap);
    case JSON_INTEGER: snprintf(buf, cap, "%lld", (long long)json_integer_value(v)); break;
    case JSON_REAL: {
        double d = json_real_value(v);
        snprintf(buf, cap, "%.15g", d);
        if (strtod(buf, NULL) != d)
            snprintf(buf, cap, "%.17g", d);
        size_t n = strlen(buf);
        if (strpbrk(buf, ".eEni") == NULL && n + 3 <= cap)
            memcpy(buf + n, ".0", 3); /* keep 5.0 looking like a real */
        break;
    }
    case JSON_TRUE: snprintf(buf, cap, "true"); break;
    case JSON_FALSE: snprintf(buf, cap, "false"); break;
    case JSON_NULL: snprintf(buf, cap, "null"); break;
    case JSON_ARRAY: snprintf(buf, cap, "[...]"); break;
    case JSON_OBJECT: snprintf(buf, cap, "{...}"); break;
    }
    return buf;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a floating-point number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    case JSON_ARRAY: return "an array";
    case JSON_OBJECT: return "an object";
    }
    return "a value";
}

/* ---- field checks ------------------------------------------------------------------------- */

static int oom(struct ty_err *err)
{
    (void)ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    return TY_ENOMEM;
}

/* "where.key", or "key" at the top. */
static const char *path_of(char *buf, size_t cap, const char *where, const char *key)
{
    /* a path longer than the buffer is cut short; the message names it in full */
    if (snprintf(buf, cap, "%s%s%s", where, where[0] ? "." : "", key) < 0)
        buf[0] = '\0';
    return buf;
}

static void refuse_type(struct ty_err *err, const char *field, const json_t *v,
                        const char *expected)
{
    char shown[SHOW_MAX];
    if (json_is_null(v))
        (void)invalid(err, field, "%s: null is not allowed here; expected %s", field, expected);
    else
        (void)invalid(err, field, "%s: %s is %s; expected %s", field,
                      job__show(v, shown, sizeof shown), type_name(v), expected);
}

/* Refuse v, of the wrong type for field.  A macro like invalid(), and for the same reason:
 * the analyser stops following a function it has entered often enough, and must still
 * see that every refusal is non-zero. */
#define bad_type(err, field, v, expected) (refuse_type((err), (field), (v), (expected)), TY_EINVAL)

/* obj[key], with null read as absent. */
static json_t *get(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* Levenshtein distance, or a large number for long strings. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    enum { M = 48 };
    if (na >= M || nb >= M)
        return M;
    size_t row[M + 1];
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

int job__check_fields(const json_t *obj, const char *where, const char *const *known, size_t n,
                      struct ty_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        size_t i = 0;
        while (i < n && strcmp(key, known[i]) != 0)
            i++;
        if (i < n)
            continue;
        const char *best = NULL;
        size_t best_d = 3;
        for (i = 0; i < n; i++) {
            size_t d = edit_distance(key, known[i]);
            if (d < best_d)
                best = known[i], best_d = d;
        }
        char path[PATH_MAX_], shown[SHOW_MAX];
        path_of(path, sizeof path, where, key);
        job__quote(path, shown, sizeof shown);
        if (best != NULL)
            return invalid(err, path, "unknown field %s; did you mean \"%s%s%s\"?", shown, where,
                           where[0] ? "." : "", best);
        return invalid(err, path, "unknown field %s", shown);
    }
    return 0;
}

static int check_int(const json_t *v, const char *field, int64_t min, int64_t max, int64_t *out,
                     struct ty_err *err)
{
    char expected[96];
    snprintf(expected, sizeof expected, "an integer from %lld to %lld", (long long)min,
             (long long)max);
    if (!json_is_integer(v))
        return bad_type(err, field, v, expected);
    json_int_t n = json_integer_value(v);
    if (n < min || n > max)
        return invalid(err, field, "%s: %lld is out of range %lld-%lld", field, (long long)n,
                       (long long)min, (long long)max);
    *out = n;
    return 0;
}

int job__get_int(const json_t *obj, const char *where, const char *key, int64_t min, int64_t max,
                 int64_t def, int64_t *out, struct ty_err *err)
{
    const json_t *v = get(obj, key);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    char path[PATH_MAX_];
    return check_int(v, path_of(path, sizeof path, where, key), min, max, out, err);
}

static int get_u32(const json_t *obj, const char *key, uint32_t min, uint32_t max, uint32_t def,
                   uint32_t *out, struct ty_err *err)
{
    int64_t n = 0;
    int rc = job__get_int(obj, "", key, min, max, def, &n, err);
    if (rc == 0)
        *out = (uint32_t)n;
    return rc;
}

/* A string value without NUL, at most max bytes; borrowed. */
static int check_string(const json_t *v, const char *field, size_t max, const char **out,
                        struct ty_err *err)
{
    if (!json_is_string(v))
        return bad_type(err, field, v, "a string");
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    char shown[SHOW_MAX];
    if (strlen(s) != n)
        return invalid(err, field, "%s: %s contains a NUL character", field,
                       job__show(v, shown, sizeof shown));
    if (n > max)
        return invalid(err, field, "%s: %s is %zu bytes long; at most %zu", field,
                       job__show(v, shown, sizeof shown), n, max);
    *out = s;
    return 0;
}

static int dup_into(const char *s, char **out, struct ty_err *err)
{
    *out = s ? strdup(s) : NULL;
    return s && *out == NULL ? oom(err) : 0;
}

int job__get_text(const json_t *obj, const char *where, const char *key, size_t max,
                  const char *def, char **out, struct ty_err *err)
{
    const json_t *v = get(obj, key);
    const char *s = def;
    char path[PATH_MAX_];
    if (v != NULL) {
        int rc = check_string(v, path_of(path, sizeof path, where, key), max, &s, err);
        if (rc != 0)
            return rc;
    }
    return dup_into(s, out, err);
}

static int get_bool(const json_t *obj, const char *key, bool def, bool *out, struct ty_err *err)
{
    const json_t *v = get(obj, key);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return bad_type(err, key, v, "true or false");
    *out = json_is_true(v);
    return 0;
}

/* One of names[1..n) (the index is the enum value); absent gives def. */
static int get_enum(const json_t *obj, const char *key, const char *const *names, size_t n, int def,
                    int *out, struct ty_err *err)
{
    const json_t *v = get(obj, key);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    char expected[128], shown[SHOW_MAX];
    struct strbuf sb;
    sb_init_fixed(&sb, expected, sizeof expected);
    for (size_t i = 1; i < n; i++)
        sb_addf(&sb, "%s\"%s\"", i == 1 ? "" : i + 1 == n ? " or " : ", ", names[i]);
    if (!json_is_string(v))
        return bad_type(err, key, v, expected);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(json_string_value(v), names[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    return invalid(err, key, "%s: %s is not one of %s", key, job__show(v, shown, sizeof shown),
                   expected);
}

/* ---- names, dates, times of day -------------------------------------------------------------*/

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_name_char(char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

int job_check_name(const char *field, const char *name, struct ty_err *err)
{
    char shown[SHOW_MAX];
    size_t n = strlen(name);
    if (n == 0)
        return invalid(err, field, "%s: must not be empty", field);
    job__quote(name, shown, sizeof shown);
    if (n > JOB_NAME_MAX)
        return invalid(err, field, "%s: %s is %zu bytes long; at most %d", field, shown, n,
                       JOB_NAME_MAX);
    if (!is_alnum(name[0]))
        return invalid(err, field, "%s: %s must start with a letter or digit", field, shown);
    for (size_t i = 1; i < n; i++) {
        if (!is_name_char(name[i]))
            return invalid(err, field,
                           "%s: %s has a character other than letters, digits, '.', '_' "
                           "and '-' at byte %zu",
                           field, shown, i);
    }
    return 0;
}

int job__parse_date(const char *s, const char *field, int64_t *day, struct ty_err *err)
{
    char shown[SHOW_MAX];
    int y, m, d;
    if (strlen(s) != 10 || civil_digits(s, 4, &y) || s[4] != '-' || civil_digits(s + 5, 2, &m) ||
        s[7] != '-' || civil_digits(s + 8, 2, &d))
        return invalid(err, field, "%s: %s is not a date; expected YYYY-MM-DD", field,
                       job__quote(s, shown, sizeof shown));
    if (m < 1 || m > 12 || d < 1 || d > civil_days_in_month(y, m))
        return invalid(err, field, "%s: %s: no such date", field,
                       job__quote(s, shown, sizeof shown));
    if (y < 1900)
        return invalid(err, field, "%s: %s is before 1900-01-01, the earliest date accepted", field,
                       job__quote(s, shown, sizeof shown));
    *day = civil_days_from_ymd(y, m, d);
    return 0;
}

void job__format_date(int64_t day, char buf[11])
{
    int64_t y;
    int m, d;
    civil_ymd_from_days(day, &y, &m, &d);
    snprintf(buf, 11, "%04d-%02d-%02d", (int)y, m, d);
}

/* "HH:MM" or "HH:MM:SS" to seconds since midnight. */
static int parse_time_of_day(const char *s, const char *field, int64_t *out, struct ty_err *err)
{
    char shown[SHOW_MAX];
    size_t n = strlen(s);
    int h, m, sec = 0;
    if ((n != 5 && n != 8) || civil_digits(s, 2, &h) || s[2] != ':' || civil_digits(s + 3, 2, &m) ||
        (n == 8 && (s[5] != ':' || civil_digits(s + 6, 2, &sec))))
        return invalid(err, field, "%s: %s is not a time of day; expected HH:MM or HH:MM:SS", field,
                       job__quote(s, shown, sizeof shown));
    if (h > 23 || m > 59 || sec > 59)
        return invalid(err, field, "%s: %s is out of range 00:00:00-23:59:59", field,
                       job__quote(s, shown, sizeof shown));
    *out = h * 3600 + m * 60 + sec;
    return 0;
}

static void format_time_of_day(int64_t secs, char buf[16])
{
    assert(secs >= 0 && secs < CIVIL_SECS_PER_DAY);
    unsigned h = (unsigned)(secs / 3600) % 24, m = (unsigned)(secs / 60 % 60);
    unsigned s = (unsigned)(secs % 60);
    int n = s == 0 ? snprintf(buf, 16, "%02u:%02u", h, m)
                   : snprintf(buf, 16, "%02u:%02u:%02u", h % 24u, m % 60u, s % 60u);
    if (n < 0)
        buf[0] = '\0';
}

/* The syntax tzdb_get accepts, checked without touching the disk. */
static int check_zone_name(const char *name, struct ty_err *err)
{
    char shown[SHOW_MAX];
    size_t n = strlen(name);
    const char *why = NULL;
    if (n == 0)
        why = "it is empty";
    else if (n >= TZ_NAME_MAX)
        why = "it is too long";
    else if (name[0] == '/' || name[n - 1] == '/' || strstr(name, "//"))
        why = "'/' may only separate parts";
    else if (strcmp(name, "..") == 0 || strncmp(name, "../", 3) == 0 || strstr(name, "/../") ||
             (n >= 3 && strcmp(name + n - 3, "/..") == 0))
        why = "\"..\" is not allowed";
    for (size_t i = 0; why == NULL && i < n; i++) {
        char c = name[i];
        if (!is_alnum(c) && c != '/' && c != '_' && c != '+' && c != '-' && c != '.')
            why = "only letters, digits, '/', '_', '+', '-' and '.' may appear";
    }
    if (why == NULL)
        return 0;
    return invalid(err, "time_zone",
                   "time_zone: %s is not a time zone name (%s); expected an IANA name such as "
                   "\"Asia/Shanghai\"",
                   job__quote(name, shown, sizeof shown), why);
}

/* An instant in RFC 3339, within the years Tethys schedules. */
static int get_instant(const json_t *obj, const char *key, int64_t *out, struct ty_err *err)
{
    const json_t *v = get(obj, key);
    const char *s = "";
    *out = 0;
    if (v == NULL)
        return 0;
    int rc = check_string(v, key, 64, &s, err);
    if (rc == 0)
        rc = civil_parse_rfc3339(s, key, out, err);
    if (rc != 0)
        return rc;
    char shown[SHOW_MAX];
    if (*out < CRON_MIN_TIME || *out >= INSTANT_END)
        return invalid(err, key,
                       "%s: %s is outside 1972-01-01T00:00:00Z to 2199-12-31T23:59:59Z, the "
                       "times Tethys schedules",
                       key, job__quote(s, shown, sizeof shown));
    return 0;
}

static void format_instant(int64_t t, char buf[CIVIL_RFC3339_MAX])
{
    size_t n = civil_format_rfc3339(t, 0, buf);
    /* "+00:00" -> "Z" */
    if (n >= 6 && strcmp(buf + n - 6, "+00:00") == 0)
        memcpy(buf + n - 6, "Z", 2);
}

/* ---- compound fields ------------------------------------------------------------------------ */

static void free_list(char **list)
{
    if (list == NULL)
        return;
    for (char **p = list; *p; p++)
        free(*p);
    free(list);
}

/*
 * An array of distinct names (job_check_name) into a new NULL-terminated list.  A name
 * equal to `self` is refused with self_why.
 */
static int get_name_list(const json_t *v, const char *field, const char *self, const char *self_why,
                         char ***out, struct ty_err *err)
{
    char path[PATH_MAX_], shown[SHOW_MAX];
    size_t n = v ? json_array_size(v) : 0;
    *out = NULL;
    if (v != NULL && !json_is_array(v))
        return bad_type(err, field, v, "an array of names");
    if (n > LIST_MAX)
        return invalid(err, field, "%s: %zu names; at most %d", field, n, LIST_MAX);
    char **list = calloc(n + 1, sizeof *list);
    if (list == NULL)
        return oom(err);
    for (size_t i = 0; i < n; i++) {
        const char *s = "";
        snprintf(path, sizeof path, "%s[%zu]", field, i);
        int rc = check_string(json_array_get(v, i), path, SIZE_MAX, &s, err);
        if (rc == 0)
            rc = job_check_name(path, s, err);
        for (size_t k = 0; rc == 0 && k < i; k++) {
            if (strcmp(list[k], s) == 0)
                rc = invalid(err, path, "%s: %s is listed twice", path,
                             job__quote(s, shown, sizeof shown));
        }
        if (rc == 0 && self && strcmp(s, self) == 0)
            rc =
                invalid(err, path, "%s: %s %s", path, job__quote(s, shown, sizeof shown), self_why);
        if (rc == 0)
            rc = dup_into(s, &list[i], err);
        if (rc != 0) {
            free_list(list);
            return rc;
        }
    }
    *out = list;
    return 0;
}

static bool env_name_ok(const char *s)
{
    if (!(s[0] == '_' || (is_alnum(s[0]) && !(s[0] >= '0' && s[0] <= '9'))))
        return false;
    for (const char *p = s + 1; *p; p++) {
        if (!is_alnum(*p) && *p != '_')
            return false;
    }
    return true;
}

static int env_cmp(const void *a, const void *b)
{
    return strcmp(((const struct job_env *)a)->name, ((const struct job_env *)b)->name);
}

/* Check one variable name of env or secret_env (`field`): the message names the path. */
static int check_env_name(const char *field, const char *key, struct ty_err *err)
{
    char path[PATH_MAX_], shown[SHOW_MAX];
    path_of(path, sizeof path, field, key);
    job__quote(key, shown, sizeof shown);
    if (strlen(key) > ENV_NAME_MAX)
        return invalid(err, path, "%s: the name %s is %zu bytes long; at most %d", field, shown,
                       strlen(key), ENV_NAME_MAX);
    if (!env_name_ok(key))
        return invalid(err, path,
                       "%s: %s is not a variable name; expected letters, digits and '_', "
                       "not starting with a digit",
                       field, shown);
    if (strncmp(key, "TETHYS_", 7) == 0)
        return invalid(err, path,
                       "%s: %s is reserved: Tethys sets the TETHYS_* variables of every "
                       "run itself",
                       field, shown);
    return 0;
}

/* env or secret_env into *vars (sorted by name).  Secret values are never shown in a
 * message: a bad one is described, not quoted. */
static int parse_vars(const json_t *obj, const char *field, bool secret, struct job_env **vars,
                      size_t *n_vars, struct ty_err *err)
{
    const json_t *v = get(obj, field);
    if (v == NULL)
        return 0;
    if (!json_is_object(v) && secret)
        return invalid(err, field, "%s: the value is %s; expected an object of NAME: \"value\"",
                       field, type_name(v));
    if (!json_is_object(v))
        return bad_type(err, field, v, "an object of NAME: \"value\"");
    size_t n = json_object_size(v);
    if (n > JOB_ENV_MAX)
        return invalid(err, field, "%s: %zu variables; at most %d", field, n, JOB_ENV_MAX);
    *vars = calloc(n ? n : 1, sizeof **vars);
    if (*vars == NULL)
        return oom(err);
    const char *key;
    json_t *val;
    char path[PATH_MAX_];
    json_object_foreach((json_t *)v, key, val)
    {
        path_of(path, sizeof path, field, key);
        int rc = check_env_name(field, key, err);
        if (rc != 0)
            return rc;
        const char *s = "";
        if (!secret) {
            rc = check_string(val, path, ENV_VALUE_MAX, &s, err);
        } else if (!json_is_string(val)) {
            rc = invalid(err, path, "%s: the value is %s; expected a string", path, type_name(val));
        } else {
            s = json_string_value(val);
            if (strlen(s) != json_string_length(val))
                rc = invalid(err, path, "%s: the value contains a NUL character", path);
            else if (json_string_length(val) > ENV_VALUE_MAX)
                rc = invalid(err, path, "%s: the value is %zu bytes long; at most %d", path,
                             json_string_length(val), ENV_VALUE_MAX);
        }
        if (rc != 0)
            return rc;
        struct job_env *e = &(*vars)[*n_vars];
        e->name = strdup(key);
        e->value = strdup(s);
        (*n_vars)++; /* counted now so job_free releases a half-made entry */
        if (e->name == NULL || e->value == NULL)
            return oom(err);
    }
    qsort(*vars, *n_vars, sizeof **vars, env_cmp);
    return 0;
}

static int parse_env(const json_t *obj, struct job *j, struct ty_err *err)
{
    int rc = parse_vars(obj, "env", false, &j->env, &j->n_env, err);
    if (rc == 0)
        rc = parse_vars(obj, "secret_env", true, &j->secret_env, &j->n_secret_env, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < j->n_secret_env; i++) {
        const char *name = j->secret_env[i].name;
        for (size_t k = 0; k < j->n_env; k++) {
            if (strcmp(j->env[k].name, name) != 0)
                continue;
            char path[PATH_MAX_], shown[SHOW_MAX];
            path_of(path, sizeof path, "secret_env", name);
            return invalid(err, path,
                           "secret_env: %s is also in env; a variable is either plain (env) or "
                           "secret (secret_env), not both",
                           job__quote(name, shown, sizeof shown));
        }
    }
    return 0;
}

static int parse_pause(const json_t *item, size_t i, struct job_pause *p, struct ty_err *err)
{
    static const char *const kinds[] = {"dates", "daily"};
    char where[PATH_MAX_], path[PATH_MAX_];
    snprintf(where, sizeof where, "pause_windows[%zu]", i);
    if (!json_is_object(item))
        return bad_type(err, where, item,
                        "{\"dates\": [\"YYYY-MM-DD\", \"YYYY-MM-DD\"]} or "
                        "{\"daily\": [\"HH:MM\", \"HH:MM\"]}");
    int rc = job__check_fields(item, where, kinds, 2, err);
    if (rc != 0)
        return rc;
    const json_t *dates = get(item, "dates"), *daily = get(item, "daily");
    if ((dates == NULL) == (daily == NULL))
        return invalid(err, where,
                       "%s: give exactly one of \"dates\": [FROM, TO] and \"daily\": [FROM, TO]",
                       where);
    const json_t *v = dates ? dates : daily;
    path_of(path, sizeof path, where, dates ? "dates" : "daily");
    if (!json_is_array(v) || json_array_size(v) != 2)
        return invalid(err, path, "%s: expected an array of two %s [FROM, TO]", path,
                       dates ? "dates" : "times of day");
    int64_t ends[2];
    const char *text[2];
    for (size_t k = 0; k < 2; k++) {
        char item_path[PATH_MAX_ + 8];
        snprintf(item_path, sizeof item_path, "%s[%zu]", path, k);
        rc = check_string(json_array_get(v, k), item_path, SIZE_MAX, &text[k], err);
        if (rc == 0)
            rc = dates ? job__parse_date(text[k], item_path, &ends[k], err)
                       : parse_time_of_day(text[k], item_path, &ends[k], err);
        if (rc != 0)
            return rc;
    }
    if (dates && ends[0] > ends[1])
        return invalid(err, path, "%s: the first date \"%s\" is after the last \"%s\"", path,
                       text[0], text[1]);
    if (daily && ends[0] == ends[1])
        return invalid(err, path,
                       "%s: \"%s\" to \"%s\" is empty; give two different times (a window "
                       "whose end is before its start wraps past midnight)",
                       path, text[0], text[1]);
    p->kind = dates ? JOB_PAUSE_DATES : JOB_PAUSE_DAILY;
    p->from = ends[0];
    p->to = ends[1];
    return 0;
}

static int parse_pauses(const json_t *obj, struct job *j, struct ty_err *err)
{
    const json_t *v = get(obj, "pause_windows");
    if (v == NULL)
        return 0;
    if (!json_is_array(v))
        return bad_type(err, "pause_windows", v, "an array of windows");
    size_t n = json_array_size(v);
    if (n > PAUSES_MAX)
        return invalid(err, "pause_windows", "pause_windows: %zu windows; at most %d", n,
                       PAUSES_MAX);
    j->pauses = calloc(n ? n : 1, sizeof *j->pauses);
    if (j->pauses == NULL)
        return oom(err);
    for (size_t i = 0; i < n; i++) {
        int rc = parse_pause(json_array_get(v, i), i, &j->pauses[i], err);
        if (rc != 0)
            return rc;
        j->n_pauses++;
    }
    return 0;
}

static int parse_calendars(const json_t *obj, struct job *j, struct ty_err *err)
{
    static const char *const keys[] = {"skip", "only"};
    const json_t *v = get(obj, "calendars");
    if (v != NULL && !json_is_object(v))
        return bad_type(err, "calendars", v, "an object {\"skip\": [...], \"only\": [...]}");
    int rc = v ? job__check_fields(v, "calendars", keys, 2, err) : 0;
    if (rc == 0)
        rc = get_name_list(v ? get(v, "skip") : NULL, "calendars.skip", NULL, NULL,
                           &j->calendars_skip, err);
    if (rc == 0)
        rc = get_name_list(v ? get(v, "only") : NULL, "calendars.only", NULL, NULL,
                           &j->calendars_only, err);
    if (rc != 0)
        return rc;
    assert(j->calendars_only != NULL && j->calendars_skip != NULL);
    for (size_t i = 0; j->calendars_only[i]; i++) {
        for (size_t k = 0; j->calendars_skip[k]; k++) {
            if (strcmp(j->calendars_only[i], j->calendars_skip[k]) == 0) {
                char path[PATH_MAX_], shown[SHOW_MAX];
                snprintf(path, sizeof path, "calendars.only[%zu]", i);
                return invalid(err, path,
                               "%s: %s is also in calendars.skip; the job would never run", path,
                               job__quote(j->calendars_only[i], shown, sizeof shown));
            }
        }
    }
    return 0;
}

/* A shard number key: decimal without leading zeros, below shards. */
static int shard_key(const char *key, size_t n, uint32_t shards, uint32_t *out, struct ty_err *err)
{
    char path[PATH_MAX_], shown[SHOW_MAX];
    snprintf(path, sizeof path, "shard_params.%.*s", (int)n, key);
    quote(key, n, shown, sizeof shown);
    uint64_t v = 0;
    bool ok = n > 0 && n <= 12 && !(key[0] == '0' && n > 1);
    for (size_t i = 0; ok && i < n; i++) {
        ok = key[i] >= '0' && key[i] <= '9';
        v = v * 10 + (uint64_t)(key[i] - '0');
    }
    char range[32]; /* the shard numbers there are */
    if (shards == 1)
        snprintf(range, sizeof range, "1 shard (0)");
    else
        snprintf(range, sizeof range, "%u shards (0-%u)", shards, shards - 1);
    if (!ok)
        return invalid(err, path, "shard_params: %s is not a shard number; the job has %s", shown,
                       range);
    if (v >= shards)
        return invalid(err, path, "shard_params: shard %.*s does not exist; the job has %s", (int)n,
                       key, range);
    *out = (uint32_t)v;
    return 0;
}

static void free_params(char **params, uint32_t shards)
{
    if (params == NULL)
        return;
    for (uint32_t i = 0; i < shards; i++)
        free(params[i]);
    free(params);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

int job_parse_shard_params(const char *text, uint32_t shards, char ***params, struct ty_err *err)
{
    assert(shards >= 1);
    *params = NULL;
    char **out = calloc(shards, sizeof *out);
    if (out == NULL)
        return oom(err);
    const char *p = text;
    while (is_blank(*p))
        p++;
    int rc = 0;
    while (*p != '\0' && rc == 0) {
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        const char *e0 = p, *e1 = end; /* the entry, blanks around it dropped */
        while (e0 < e1 && is_blank(*e0))
            e0++;
        while (e1 > e0 && is_blank(e1[-1]))
            e1--;
        const char *eq = memchr(e0, '=', (size_t)(e1 - e0));
        char shown[SHOW_MAX], path[PATH_MAX_];
        uint32_t shard = 0;
        if (e0 == e1) {
            rc = invalid(err, "shard_params",
                         "shard_params: an empty entry; expected SHARD=VALUE pairs separated by "
                         "commas, as in \"0=beijing,1=shanghai\"");
            break;
        }
        if (eq == NULL) {
            rc = invalid(err, "shard_params",
                         "shard_params: %s has no '='; expected SHARD=VALUE pairs separated by "
                         "commas, as in \"0=beijing,1=shanghai\"",
                         quote(e0, (size_t)(e1 - e0), shown, sizeof shown));
            break;
        }
        const char *k1 = eq, *v0 = eq + 1;
        while (k1 > e0 && is_blank(k1[-1]))
            k1--;
        while (v0 < e1 && is_blank(*v0))
            v0++;
        if ((rc = shard_key(e0, (size_t)(k1 - e0), shards, &shard, err)) != 0)
            break;
        snprintf(path, sizeof path, "shard_params.%u", shard);
        if (out[shard] != NULL)
            rc = invalid(err, path, "shard_params: shard %u is given twice", shard);
        else if ((size_t)(e1 - v0) > TEXT_MAX)
            rc = invalid(err, path, "%s: the value is %zu bytes long; at most %d", path,
                         (size_t)(e1 - v0), TEXT_MAX);
        else if ((out[shard] = strndup(v0, (size_t)(e1 - v0))) == NULL)
            rc = oom(err);
        /* after a comma another pair must follow: a trailing comma is refused as empty */
        p = *end == ',' ? end + 1 : end;
        if (*end == ',' && *p == '\0' && rc == 0)
            rc = invalid(err, "shard_params",
                         "shard_params: an empty entry after the last ','; expected SHARD=VALUE "
                         "pairs separated by commas");
    }
    if (rc != 0) {
        free_params(out, shards);
        return rc;
    }
    *params = out;
    return 0;
}

static int parse_shard_params(const json_t *obj, struct job *j, struct ty_err *err)
{
    const json_t *v = get(obj, "shard_params");
    if (v != NULL && json_is_string(v)) {
        const char *s = "";
        int rc = check_string(v, "shard_params", SIZE_MAX, &s, err);
        return rc ? rc : job_parse_shard_params(s, j->shards, &j->shard_params, err);
    }
    if (v != NULL && !json_is_object(v))
        return bad_type(err, "shard_params", v,
                        "an object {\"0\": \"beijing\"} or a string \"0=beijing,1=shanghai\"");
    assert(j->shards >= 1);
    j->shard_params = calloc(j->shards, sizeof *j->shard_params);
    if (j->shard_params == NULL)
        return oom(err);
    if (v == NULL)
        return 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        uint32_t shard;
        int rc = shard_key(key, strlen(key), j->shards, &shard, err);
        if (rc != 0)
            return rc;
        if (json_is_null(val))
            continue;
        char path[PATH_MAX_];
        const char *s = "";
        snprintf(path, sizeof path, "shard_params.%u", shard);
        rc = check_string(val, path, TEXT_MAX, &s, err);
        if (rc == 0)
            rc = dup_into(s, &j->shard_params[shard], err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* One part of a prefer entry (an executor name, a label key or a label value): 1 to
 * JOB_PREFER_PART_MAX bytes of [A-Za-z0-9._-], the rules of executor ids and labels.
 * `what` names the part in the message; shown is the whole entry, quoted. */
static int check_prefer_part(const char *path, const char *shown, const char *part, size_t n,
                             const char *what, struct ty_err *err)
{
    if (n == 0)
        return invalid(err, path, "%s: %s has an empty %s; expected key=value", path, shown, what);
    if (n > JOB_PREFER_PART_MAX)
        return invalid(err, path, "%s: %s: the %s is %zu bytes long; at most %d", path, shown, what,
                       n, JOB_PREFER_PART_MAX);
    for (size_t i = 0; i < n; i++) {
        if (!is_name_char(part[i]))
            return invalid(err, path,
                           "%s: %s has a character other than letters, digits, '.', '_' and '-' "
                           "in its %s; expected an executor name or a label selector key=value",
                           path, shown, what);
    }
    return 0;
}

/* An entry of prefer: an executor name ("exec-3") or a label selector ("zone=east"). */
static int check_prefer_entry(const char *path, const char *s, struct ty_err *err)
{
    char shown[SHOW_MAX];
    job__quote(s, shown, sizeof shown);
    if (s[0] == '\0')
        return invalid(err, path,
                       "%s: must not be empty; expected an executor name or a label selector "
                       "key=value",
                       path);
    const char *eq = strchr(s, '=');
    if (eq == NULL)
        return check_prefer_part(path, shown, s, strlen(s), "executor name", err);
    if (strchr(eq + 1, '=') != NULL)
        return invalid(err, path, "%s: %s has more than one '='; expected key=value", path, shown);
    int rc = check_prefer_part(path, shown, s, (size_t)(eq - s), "label key", err);
    return rc ? rc : check_prefer_part(path, shown, eq + 1, strlen(eq + 1), "label value", err);
}

/* strategy, prefer and prefer_only: where a cluster may run the shards. */
static int parse_placement(const json_t *obj, struct job *j, struct ty_err *err)
{
    int e = 0;
    int rc = get_enum(obj, "strategy", strategy_names, N_NAMES(strategy_names), JOB_STRATEGY_EVEN,
                      &e, err);
    if (rc != 0)
        return rc;
    j->strategy = (enum job_strategy)e;
    const json_t *v = get(obj, "prefer");
    size_t n = v ? json_array_size(v) : 0;
    if (v != NULL && !json_is_array(v))
        return bad_type(err, "prefer", v,
                        "an array of executor names and label selectors (key=value)");
    if (n > JOB_PREFER_MAX)
        return invalid(err, "prefer", "prefer: %zu entries; at most %d", n, JOB_PREFER_MAX);
    if ((j->prefer = calloc(n + 1, sizeof *j->prefer)) == NULL)
        return oom(err);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX_], shown[SHOW_MAX];
        const char *s = "";
        snprintf(path, sizeof path, "prefer[%zu]", i);
        rc = check_string(json_array_get(v, i), path, SIZE_MAX, &s, err);
        if (rc == 0)
            rc = check_prefer_entry(path, s, err);
        for (size_t k = 0; rc == 0 && k < i; k++) {
            if (strcmp(j->prefer[k], s) == 0)
                rc = invalid(err, path, "%s: %s is listed twice", path,
                             job__quote(s, shown, sizeof shown));
        }
        if (rc == 0)
            rc = dup_into(s, &j->prefer[i], err);
        if (rc != 0)
            return rc;
    }
    if ((rc = get_bool(obj, "prefer_only", false, &j->prefer_only, err)) != 0)
        return rc;
    if (j->prefer_only && n == 0)
        return invalid(err, "prefer_only",
                       "prefer_only: true without a prefer list; no executor could run the job");
    return 0;
}

static int parse_schedule(const json_t *obj, struct job *j, struct ty_err *err)
{
    const json_t *v = get(obj, "schedule");
    const char *s = "";
    if (v == NULL)
        return 0;
    int rc = check_string(v, "schedule", SCHEDULE_MAX, &s, err);
    if (rc != 0)
        return rc;
    struct ty_err cerr;
    ty_err_clear(&cerr);
    if (cron_parse(s, &j->cron, &cerr) != 0) {
        (void)ty_error(err, TY_EINVAL, "schedule", cerr.pos, cerr.len, "schedule: %s", cerr.msg);
        return TY_EINVAL;
    }
    return dup_into(s, &j->schedule, err);
}

static int parse_what(const json_t *obj, struct job *j, struct ty_err *err)
{
    char shown[SHOW_MAX];
    const json_t *v = get(obj, "command");
    if (v == NULL)
        return invalid(err, "command", "command: missing; a shell job needs a command to run");
    const char *s = "";
    int rc = check_string(v, "command", JOB_COMMAND_MAX, &s, err);
    if (rc != 0)
        return rc;
    if (s[strspn(s, " \t\r\n")] == '\0')
        return invalid(err, "command", "command: %s is blank", job__quote(s, shown, sizeof shown));
    if ((rc = dup_into(s, &j->command, err)) != 0)
        return rc;

    if ((rc = job__get_text(obj, "", "workdir", TEXT_MAX, NULL, &j->workdir, err)) != 0)
        return rc;
    if (j->workdir && j->workdir[0] != '/')
        return invalid(err, "workdir",
                       "workdir: %s is not an absolute path; it must start with '/'",
                       job__quote(j->workdir, shown, sizeof shown));

    if ((rc = job__get_text(obj, "", "user", USER_MAX, NULL, &j->user, err)) != 0)
        return rc;
    if (j->user) {
        bool ok = j->user[0] != '\0' && j->user[0] != '-';
        for (const char *p = j->user; ok && *p; p++)
            ok = is_name_char(*p);
        if (!ok)
            return invalid(err, "user",
                           "user: %s is not a user name; expected letters, digits, '.', '_' "
                           "and '-', not starting with '-'",
                           job__quote(j->user, shown, sizeof shown));
    }
    if ((rc = parse_env(obj, j, err)) != 0)
        return rc;
    return get_u32(obj, "output_cap", 1024, JOB_OUTPUT_CAP_MAX, JOB_OUTPUT_CAP_DEFAULT,
                   &j->output_cap, err);
}

static int parse_when(const json_t *obj, struct job *j, struct ty_err *err)
{
    int rc = parse_schedule(obj, j, err);
    if (rc == 0)
        rc = job__get_text(obj, "", "time_zone", SIZE_MAX, "UTC", &j->time_zone, err);
    if (rc == 0)
        rc = check_zone_name(j->time_zone, err);
    if (rc == 0)
        rc = get_instant(obj, "start_at", &j->start_at, err);
    if (rc == 0)
        rc = get_instant(obj, "end_at", &j->end_at, err);
    if (rc != 0)
        return rc;
    if (j->start_at && j->end_at && j->end_at <= j->start_at) {
        char a[CIVIL_RFC3339_MAX], b[CIVIL_RFC3339_MAX];
        format_instant(j->end_at, b);
        format_instant(j->start_at, a);
        return invalid(err, "end_at", "end_at: %s is not after start_at %s", b, a);
    }
    if ((rc = parse_pauses(obj, j, err)) != 0)
        return rc;
    return parse_calendars(obj, j, err);
}

static int parse_policies(const json_t *obj, struct job *j, struct ty_err *err)
{
    int rc, e = 0;
    if ((rc = get_u32(obj, "timeout", 0, SECONDS_MAX, 0, &j->timeout, err)) != 0 ||
        (rc = get_u32(obj, "timeout_alarm", 0, SECONDS_MAX, 0, &j->timeout_alarm, err)) != 0)
        return rc;
    if (j->timeout && j->timeout_alarm >= j->timeout)
        return invalid(err, "timeout_alarm",
                       "timeout_alarm: %u s is not less than timeout %u s; the alarm must come "
                       "before the kill",
                       j->timeout_alarm, j->timeout);
    if ((rc = get_u32(obj, "kill_grace", 0, KILL_GRACE_MAX, 10, &j->kill_grace, err)) != 0 ||
        (rc = get_u32(obj, "retries", 0, RETRIES_MAX, 0, &j->retries, err)) != 0 ||
        (rc = get_u32(obj, "retry_backoff", 0, BACKOFF_MAX, 10, &j->retry_backoff, err)) != 0)
        return rc;
    uint32_t cap_def = j->retry_backoff > 3600 ? j->retry_backoff : 3600;
    if ((rc = get_u32(obj, "retry_backoff_max", 0, BACKOFF_CAP_MAX, cap_def, &j->retry_backoff_max,
                      err)) != 0)
        return rc;
    if (j->retry_backoff_max < j->retry_backoff)
        return invalid(err, "retry_backoff_max",
                       "retry_backoff_max: %u s is less than retry_backoff %u s",
                       j->retry_backoff_max, j->retry_backoff);
    const json_t *f = get(obj, "retry_backoff_factor");
    j->retry_backoff_factor = 2.0;
    if (f != NULL) {
        char shown[SHOW_MAX];
        if (!json_is_number(f))
            return bad_type(err, "retry_backoff_factor", f, "a number from 1.0 to 10.0");
        double d = json_number_value(f);
        if (!(d >= 1.0 && d <= 10.0))
            return invalid(err, "retry_backoff_factor",
                           "retry_backoff_factor: %s is out of range 1.0-10.0",
                           job__show(f, shown, sizeof shown));
        j->retry_backoff_factor = d;
    }
    if ((rc = get_enum(obj, "overlap", overlap_names, N_NAMES(overlap_names), JOB_OVERLAP_SKIP, &e,
                       err)) != 0)
        return rc;
    j->overlap = (enum job_overlap)e;
    if ((rc = get_u32(obj, "misfire_threshold", 1, MISFIRE_MAX, 5, &j->misfire_threshold, err)) !=
            0 ||
        (rc = get_enum(obj, "misfire", misfire_names, N_NAMES(misfire_names), JOB_MISFIRE_SKIP, &e,
                       err)) != 0)
        return rc;
    j->misfire = (enum job_misfire)e;
    if ((rc = get_u32(obj, "catch_up_max", 1, CATCH_UP_MAX, 1, &j->catch_up_max, err)) != 0)
        return rc;
    if (j->misfire != JOB_MISFIRE_CATCH_UP)
        j->catch_up_max = 1; /* meaningless otherwise: keep the canonical form unique */
    if ((rc = get_enum(obj, "on_executor_death", orphan_names, N_NAMES(orphan_names),
                       JOB_ORPHAN_KILL, &e, err)) != 0)
        return rc;
    j->on_executor_death = (enum job_orphan)e;
    if ((rc = get_bool(obj, "failover", false, &j->failover, err)) != 0)
        return rc;
    char **downstream = NULL;
    rc = get_name_list(get(obj, "downstream"), "downstream", j->name,
                       "is this job itself; a job cannot trigger itself", &downstream, err);
    j->downstream = downstream;
    return rc;
}

static int parse_job(const json_t *obj, struct job *j, struct ty_err *err)
{
    if (!json_is_object(obj))
        return obj ? invalid(err, "", "the job is %s; expected a JSON object with the job's fields",
                             type_name(obj))
                   : invalid(err, "", "no job given");
    int rc = job__check_fields(obj, "", job_fields, N_JOB_FIELDS, err);
    if (rc != 0)
        return rc;

    const json_t *v = get(obj, "name");
    const char *s = "";
    if (v == NULL)
        return invalid(err, "name", "name: missing; every job needs a name");
    if ((rc = check_string(v, "name", SIZE_MAX, &s, err)) != 0 ||
        (rc = job_check_name("name", s, err)) != 0 || (rc = dup_into(s, &j->name, err)) != 0)
        return rc;
    if ((rc = job__get_text(obj, "", "domain", SIZE_MAX, "", &j->domain, err)) != 0 ||
        (rc = domain_check_path("domain", j->domain, err)) != 0)
        return rc;
    int64_t level = 0;
    if ((rc = job__get_int(obj, "", "level", 0, 9, LEVEL_DEFAULT, &level, err)) != 0)
        return rc;
    j->level = (int)level;
    if ((rc = job__get_text(obj, "", "description", TEXT_MAX, "", &j->description, err)) != 0 ||
        (rc = job__get_text(obj, "", "owner", OWNER_MAX, "", &j->owner, err)) != 0 ||
        (rc = get_bool(obj, "enabled", true, &j->enabled, err)) != 0)
        return rc;
    int type = 0;
    if ((rc = get_enum(obj, "type", type_names, N_NAMES(type_names), JOB_SHELL, &type, err)) != 0)
        return rc;
    j->type = (enum job_type)type;

    if ((rc = parse_what(obj, j, err)) != 0 || (rc = parse_when(obj, j, err)) != 0)
        return rc;

    if ((rc = get_u32(obj, "shards", 1, JOB_SHARDS_MAX, 1, &j->shards, err)) != 0 ||
        (rc = parse_shard_params(obj, j, err)) != 0 ||
        (rc = job__get_text(obj, "", "job_param", TEXT_MAX, NULL, &j->job_param, err)) != 0 ||
        (rc = parse_placement(obj, j, err)) != 0)
        return rc;
    return parse_policies(obj, j, err);
}

int job_from_json(const json_t *obj, struct job *out, struct ty_err *err)
{
    struct job j;
    memset(&j, 0, sizeof j);
    memset(out, 0, sizeof *out);
    ty_err_clear(err);
    int rc = parse_job(obj, &j, err);
    if (rc != 0) {
        job_free(&j);
        return rc;
    }
    *out = j;
    return 0;
}

/* ---- canonical JSON ------------------------------------------------------------------------ */

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *list_json(char *const *list)
{
    json_t *a = json_array();
    for (size_t i = 0; a && list && list[i]; i++) {
        if (json_array_append_new(a, json_string(list[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *instant_json(int64_t t)
{
    char buf[CIVIL_RFC3339_MAX];
    if (t == 0)
        return json_null();
    format_instant(t, buf);
    return json_string(buf);
}

static json_t *pauses_json(const struct job *j)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < j->n_pauses; i++) {
        const struct job_pause *p = &j->pauses[i];
        char from[16], to[16];
        if (p->kind == JOB_PAUSE_DATES) {
            job__format_date(p->from, from);
            job__format_date(p->to, to);
        } else {
            format_time_of_day(p->from, from);
            format_time_of_day(p->to, to);
        }
        json_t *w = json_pack("{s:[ss]}", p->kind == JOB_PAUSE_DATES ? "dates" : "daily", from, to);
        if (json_array_append_new(a, w) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *env_json(const struct job *j)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < j->n_env; i++) {
        if (json_object_set_new(o, j->env[i].name, json_string(j->env[i].value)) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* The secret variables as the world sees them: names, each with the mask. */
static json_t *secret_env_json(const struct job *j)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < j->n_secret_env; i++) {
        if (json_object_set_new(o, j->secret_env[i].name, json_string(JOB_SECRET_MASK)) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

int job_secrets_resolve(struct job *j, const json_t *stored, struct ty_err *err)
{
    for (size_t i = 0; i < j->n_secret_env; i++) {
        struct job_env *e = &j->secret_env[i];
        if (strcmp(e->value, JOB_SECRET_MASK) != 0)
            continue;
        const char *v = json_string_value(json_object_get(stored, e->name));
        if (v == NULL) {
            char path[PATH_MAX_], shown[SHOW_MAX];
            path_of(path, sizeof path, "secret_env", e->name);
            return invalid(err, path,
                           "%s: the value is the mask \"%s\", which keeps the value stored "
                           "for %s, but none is stored; send the value itself",
                           path, JOB_SECRET_MASK, job__quote(e->name, shown, sizeof shown));
        }
        char *copy = strdup(v);
        if (copy == NULL)
            return oom(err);
        free(e->value);
        e->value = copy;
    }
    return 0;
}

json_t *job_secrets_json(const struct job *j)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < j->n_secret_env; i++) {
        if (json_object_set_new(o, j->secret_env[i].name, json_string(j->secret_env[i].value)) !=
            0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *params_json(const struct job *j)
{
    json_t *o = json_object();
    for (uint32_t i = 0; o && j->shard_params && i < j->shards; i++) {
        char key[16];
        if (j->shard_params[i] == NULL)
            continue;
        snprintf(key, sizeof key, "%u", i);
        if (json_object_set_new(o, key, json_string(j->shard_params[i])) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static const char *enum_name(const char *const *names, size_t n, int v)
{
    return v > 0 && (size_t)v < n ? names[v] : "?";
}

const char *job_misfire_name(enum job_misfire m)
{
    return enum_name(misfire_names, N_NAMES(misfire_names), (int)m);
}

/* A placement field at its default, which job_to_json leaves out (job.h). */
static bool omitted(const struct job *j, const char *key)
{
    if (strcmp(key, "strategy") == 0)
        return j->strategy == JOB_STRATEGY_EVEN;
    if (strcmp(key, "prefer") == 0)
        return j->prefer == NULL || j->prefer[0] == NULL;
    if (strcmp(key, "prefer_only") == 0)
        return !j->prefer_only;
    return false;
}

json_t *job_to_json(const struct job *j)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_t *calendars = json_object();
    if (calendars) {
        json_object_set_new(calendars, "skip", list_json(j->calendars_skip));
        json_object_set_new(calendars, "only", list_json(j->calendars_only));
        if (json_object_size(calendars) != 2) {
            json_decref(calendars);
            calendars = NULL;
        }
    }
    struct {
        const char *key;
        json_t *v;
    } fields[] = {
        {"name", json_string(j->name)},
        {"domain", json_string(j->domain ? j->domain : "")},
        {"level", json_integer(j->level)},
        {"description", json_string(j->description ? j->description : "")},
        {"owner", json_string(j->owner ? j->owner : "")},
        {"enabled", json_boolean(j->enabled)},
        {"type", json_string(enum_name(type_names, N_NAMES(type_names), (int)j->type))},
        {"command", str_or_null(j->command)},
        {"workdir", str_or_null(j->workdir)},
        {"user", str_or_null(j->user)},
        {"env", env_json(j)},
        {"secret_env", secret_env_json(j)},
        {"output_cap", json_integer(j->output_cap)},
        {"schedule", str_or_null(j->schedule)},
        {"time_zone", json_string(j->time_zone ? j->time_zone : "UTC")},
        {"start_at", instant_json(j->start_at)},
        {"end_at", instant_json(j->end_at)},
        {"pause_windows", pauses_json(j)},
        {"calendars", calendars},
        {"shards", json_integer(j->shards)},
        {"shard_params", params_json(j)},
        {"job_param", str_or_null(j->job_param)},
        {"strategy",
         json_string(enum_name(strategy_names, N_NAMES(strategy_names), (int)j->strategy))},
        {"prefer", list_json(j->prefer)},
        {"prefer_only", json_boolean(j->prefer_only)},
        {"timeout", json_integer(j->timeout)},
        {"timeout_alarm", json_integer(j->timeout_alarm)},
        {"kill_grace", json_integer(j->kill_grace)},
        {"retries", json_integer(j->retries)},
        {"retry_backoff", json_integer(j->retry_backoff)},
        {"retry_backoff_max", json_integer(j->retry_backoff_max)},
        {"retry_backoff_factor", json_real(j->retry_backoff_factor)},
        {"overlap", json_string(enum_name(overlap_names, N_NAMES(overlap_names), (int)j->overlap))},
        {"misfire_threshold", json_integer(j->misfire_threshold)},
        {"misfire", json_string(enum_name(misfire_names, N_NAMES(misfire_names), (int)j->misfire))},
        {"catch_up_max", json_integer(j->catch_up_max)},
        {"on_executor_death",
         json_string(enum_name(orphan_names, N_NAMES(orphan_names), (int)j->on_executor_death))},
        {"failover", json_boolean(j->failover)},
        {"downstream", list_json(j->downstream)},
    };
    static_assert(sizeof fields / sizeof fields[0] == N_JOB_FIELDS, "every field is written");
    bool ok = true;
    for (size_t i = 0; i < N_JOB_FIELDS; i++) {
        assert(strcmp(fields[i].key, job_fields[i]) == 0);
        if (omitted(j, fields[i].key)) {
            json_decref(fields[i].v);
            continue;
        }
        /* json_object_set_new takes the value even on failure, and fails on NULL */
        ok &= json_object_set_new(o, fields[i].key, fields[i].v) == 0;
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- lifetime ------------------------------------------------------------------------------ */

void job_free(struct job *j)
{
    free(j->name);
    free(j->domain);
    free(j->description);
    free(j->owner);
    free(j->command);
    free(j->workdir);
    free(j->user);
    for (size_t i = 0; i < j->n_env; i++) {
        free(j->env[i].name);
        free(j->env[i].value);
    }
    free(j->env);
    for (size_t i = 0; i < j->n_secret_env; i++) {
        free(j->secret_env[i].name);
        free(j->secret_env[i].value);
    }
    free(j->secret_env);
    free(j->schedule);
    free(j->time_zone);
    free(j->pauses);
    free_list(j->calendars_skip);
    free_list(j->calendars_only);
    free_params(j->shard_params, j->shards);
    free(j->job_param);
    free_list(j->prefer);
    free_list(j->downstream);
    memset(j, 0, sizeof *j);
}

static int copy_str(char **dst, const char *src)
{
    *dst = NULL;
    return src && (*dst = strdup(src)) == NULL ? -1 : 0;
}

static int copy_list(char ***dst, char *const *src)
{
    size_t n = 0;
    *dst = NULL;
    if (src == NULL)
        return 0;
    while (src[n])
        n++;
    char **l = calloc(n + 1, sizeof *l);
    if (l == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if ((l[i] = strdup(src[i])) == NULL) {
            free_list(l);
            return -1;
        }
    }
    *dst = l;
    return 0;
}

int job_copy(struct job *dst, const struct job *src)
{
    struct job j = *src; /* scalars and the compiled schedule; every pointer is replaced */
    int bad = 0;
    bad |= copy_str(&j.name, src->name);
    bad |= copy_str(&j.domain, src->domain);
    bad |= copy_str(&j.description, src->description);
    bad |= copy_str(&j.owner, src->owner);
    bad |= copy_str(&j.command, src->command);
    bad |= copy_str(&j.workdir, src->workdir);
    bad |= copy_str(&j.user, src->user);
    bad |= copy_str(&j.schedule, src->schedule);
    bad |= copy_str(&j.time_zone, src->time_zone);
    bad |= copy_str(&j.job_param, src->job_param);
    bad |= copy_list(&j.calendars_skip, src->calendars_skip);
    bad |= copy_list(&j.calendars_only, src->calendars_only);
    bad |= copy_list(&j.prefer, src->prefer);
    bad |= copy_list(&j.downstream, src->downstream);
    j.env = NULL;
    j.n_env = 0;
    if (src->n_env) {
        j.env = calloc(src->n_env, sizeof *j.env);
        for (size_t i = 0; j.env && i < src->n_env; i++, j.n_env++) {
            bad |= copy_str(&j.env[i].name, src->env[i].name);
            bad |= copy_str(&j.env[i].value, src->env[i].value);
        }
        bad |= j.env == NULL;
    }
    j.secret_env = NULL;
    j.n_secret_env = 0;
    if (src->n_secret_env) {
        j.secret_env = calloc(src->n_secret_env, sizeof *j.secret_env);
        for (size_t i = 0; j.secret_env && i < src->n_secret_env; i++, j.n_secret_env++) {
            bad |= copy_str(&j.secret_env[i].name, src->secret_env[i].name);
            bad |= copy_str(&j.secret_env[i].value, src->secret_env[i].value);
        }
        bad |= j.secret_env == NULL;
    }
    j.pauses = NULL;
    if (src->n_pauses) {
        j.pauses = malloc(src->n_pauses * sizeof *j.pauses);
        if (j.pauses)
            memcpy(j.pauses, src->pauses, src->n_pauses * sizeof *j.pauses);
        else
            j.n_pauses = 0, bad = 1;
    }
    j.shard_params = NULL;
    if (src->shard_params) {
        j.shard_params = calloc(src->shards, sizeof *j.shard_params);
        for (uint32_t i = 0; j.shard_params && i < src->shards; i++)
            bad |= copy_str(&j.shard_params[i], src->shard_params[i]);
        bad |= j.shard_params == NULL;
    }
    if (bad) {
        job_free(&j);
        memset(dst, 0, sizeof *dst);
        return TY_ENOMEM;
    }
    *dst = j;
    return 0;
}

/* ---- edits ------------------------------------------------------------------------------- */

/* RFC 7386: the result of applying patch to target, as a new reference (NULL: no memory). */
static json_t *merge_patch(const json_t *target, const json_t *patch)
{
    if (!json_is_object(patch))
        return json_deep_copy(patch);
    json_t *out = json_is_object(target) ? json_deep_copy(target) : json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)patch, key, v)
    {
        if (out == NULL)
            break;
        if (json_is_null(v)) {
            json_object_del(out, key);
            continue;
        }
        json_t *m = merge_patch(json_object_get(out, key), v);
        if (m == NULL || json_object_set_new(out, key, m) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

int job_patch(const struct job *base, const json_t *patch, struct job *out, struct ty_err *err)
{
    char shown[SHOW_MAX];
    memset(out, 0, sizeof *out);
    ty_err_clear(err);
    if (!json_is_object(patch))
        return patch ? invalid(err, "",
                               "the change is %s; expected a JSON object with the fields to "
                               "change",
                               type_name(patch))
                     : invalid(err, "", "no change given");
    const json_t *name = json_object_get(patch, "name");
    if (name && !(json_is_string(name) && strcmp(json_string_value(name), base->name) == 0))
        return invalid(err, "name",
                       "name: a job cannot be renamed (from \"%s\" to %s); add a job with the new "
                       "name and remove this one",
                       base->name, job__show(name, shown, sizeof shown));
    json_t *doc = job_to_json(base);
    json_t *merged = doc ? merge_patch(doc, patch) : NULL;
    json_decref(doc);
    if (merged == NULL)
        return oom(err);
    int rc = job_from_json(merged, out, err);
    json_decref(merged);
    return rc;
}

/* ---- questions the scheduler asks ---------------------------------------------------------- */

int64_t job_min_interval(const struct job *j, const struct tz_zone *z, int64_t now)
{
    if (j->schedule == NULL)
        return 0;
    if (j->cron.form == CRON_FORM_EVERY)
        return j->cron.every;
    int64_t t = now < CRON_MIN_TIME ? CRON_MIN_TIME : now;
    int64_t end = t + MIN_INTERVAL_SPAN, prev, next, best = 0;
    if (cron_next(&j->cron, z, t, &prev) != 0)
        return 0;
    for (int i = 1; i < MIN_INTERVAL_FIRES && best != 1; i++) {
        if (cron_next(&j->cron, z, prev, &next) != 0 || next > end)
            break;
        if (best == 0 || next - prev < best)
            best = next - prev;
        prev = next;
    }
    return best;
}

bool job_paused(const struct job *j, const struct tz_zone *z, int64_t t)
{
    if (j->n_pauses == 0)
        return false;
    assert(z != NULL);
    struct tz_info ti;
    tz_lookup(z, t, &ti);
    int64_t local = t + ti.utoff;
    int64_t day = local / CIVIL_SECS_PER_DAY, secs = local % CIVIL_SECS_PER_DAY;
    if (secs < 0)
        day--, secs += CIVIL_SECS_PER_DAY;
    for (size_t i = 0; i < j->n_pauses; i++) {
        const struct job_pause *p = &j->pauses[i];
        if (p->kind == JOB_PAUSE_DATES) {
            if (day >= p->from && day <= p->to)
                return true;
        } else if (p->from < p->to ? secs >= p->from && secs < p->to
                                   : secs >= p->from || secs < p->to) {
            return true;
        }
    }
    return false;
}

int job_timing_from_json(const json_t *obj, struct job_timing *out, struct ty_err *err)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(obj))
        return ty_error(err, TY_EINVAL, "job", -1, 0, "job: not a JSON object");
    const json_t *en = json_object_get(obj, "enabled");
    out->enabled = en == NULL || json_is_true(en);
    out->time_zone = json_string_value(json_object_get(obj, "time_zone"));
    if (out->time_zone == NULL)
        out->time_zone = "UTC";
    int rc;
    if ((rc = get_instant(obj, "start_at", &out->start_at, err)) != 0 ||
        (rc = get_instant(obj, "end_at", &out->end_at, err)) != 0)
        return rc;
    const char *sched = json_string_value(json_object_get(obj, "schedule"));
    if (sched == NULL)
        return 0;
    out->scheduled = true;
    return cron_parse(sched, &out->cron, err);
}

int64_t job_timing_next(const struct job_timing *t, const struct tz_zone *z, int64_t from)
{
    if (!t->enabled || !t->scheduled)
        return 0;
    if (t->start_at != 0 && from < t->start_at - 1)
        from = t->start_at - 1;
    int64_t next;
    if (cron_next(&t->cron, z, from, &next) != 0 || (t->end_at != 0 && next > t->end_at))
        return 0;
    return next;
}
