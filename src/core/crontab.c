/*
 * crontab.c - a crontab, line by line, into job definitions (see crontab.h).
 *
 * The file is read the way cronie reads it, so an imported job does what the cron entry
 * did:
 *
 *   - An assignment is recognised by cronie's load_env state machine: NAME, optional
 *     blanks, '=', optional blanks, VALUE; the name or the value may be quoted with ' or "
 *     (the quotes are removed, and only blanks may follow the closing quote); an unquoted
 *     value loses its trailing blanks.  Anything else is an entry.  One deviation: an
 *     assignment with nothing after '=' ("MAILTO=") is read as the empty value, where
 *     cronie falls through to reading an entry and refuses the line.
 *   - Assignments apply to the entries below them, the latest of each name winning (each
 *     cronie entry captures the environment as it stands when the entry is read).
 *   - The first unescaped % ends the command; what follows is written to its standard
 *     input with every further unescaped % turned into a newline, \% into %, a backslash
 *     before anything else kept, and a final newline added when the text does not end in
 *     one - do_command.c's rules, byte for byte.  Tethys gives commands /dev/null as
 *     standard input, so those bytes are produced by a printf in front of the command.
 *
 * Everything cron does that Tethys does not (mail, @reboot, another shell, a random
 * delay) is reported as not carried over with the reason, never dropped silently.  Each
 * job is checked with job_from_json before it is returned, so a line that would make an
 * invalid job (a user name Tethys refuses, an unsettable variable) is an error here, not a
 * 400 from the server later.
 */
#include "crontab.h"

#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "job.h"
#include "strbuf.h"
#include "utf8.h"

#define SHOW_MAX      72   /* bytes of a value quoted in a message */
#define DESC_LINE_MAX 3072 /* bytes of the crontab line kept in a job's description */
#define ENV_NAME_MAX  128

static const char *const MAIL_REASON =
    "Tethys sends no mail: it keeps each run's output in its history (tethys run logs, "
    "tethys history) and raises an alert when a run fails (tethys alerts)";

struct env_var {
    char *name;
    char *value;
};

/* What is known while reading: the options and the assignments seen so far. */
struct reader {
    const struct crontab_opts *opts;
    const char *prefix;
    const char *source;
    struct env_var *env;
    size_t n_env, cap_env;
    char *cron_tz; /* the latest CRON_TZ value, NULL when none (or reset by CRON_TZ=) */
    int cron_tz_line;
    struct crontab *out;
};

const char *crontab_kind_name(enum crontab_kind kind)
{
    switch (kind) {
    case CRONTAB_BLANK: return "blank";
    case CRONTAB_COMMENT: return "comment";
    case CRONTAB_ENV: return "env";
    case CRONTAB_JOB: return "job";
    case CRONTAB_UNSUPPORTED: return "unsupported";
    case CRONTAB_ERROR: return "error";
    }
    return "?";
}

/* ---- small text helpers -------------------------------------------------------------------- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* isspace() for the C locale, as cronie's load_env uses it. */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF). */
static bool utf8_ok(const unsigned char *s, size_t n)
{
    return utf8_invalid_at(s, n) == n;
}

/* Bytes of s[0..n) that can be kept whole when cutting to at most max bytes: the cut never
 * splits a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    size_t k = max;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    return k;
}

/* s[0..n) for a message: in double quotes, \ " and control characters escaped, cut short
 * with "..." when long.  Returns buf. */
static const char *show(const char *s, size_t n, char *buf, size_t cap)
{
    assert(cap >= 16);
    struct strbuf sb;
    sb_init_fixed(&sb, buf, cap);
    sb_addc(&sb, '"');
    size_t room = cap - 6; /* the quotes, "..." and the NUL */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof esc, "\\%c", c);
        else if (c < 0x20 || c == 0x7F)
            snprintf(esc, sizeof esc, "\\x%02X", c);
        else
            snprintf(esc, sizeof esc, "%c", c);
        /* keep multi-byte characters whole */
        size_t whole = 1;
        if (c >= 0xC0)
            while (i + whole < n && ((unsigned char)s[i + whole] & 0xC0) == 0x80)
                whole++;
        size_t need = whole > 1 ? whole : strlen(esc);
        if (sb.len + need > room) {
            sb_adds(&sb, "...");
            break;
        }
        if (whole > 1) {
            sb_add(&sb, s + i, whole);
            i += whole - 1;
        } else {
            sb_adds(&sb, esc);
        }
    }
    sb_addc(&sb, '"');
    return buf;
}

static const char *shows(const char *s, char *buf, size_t cap)
{
    return show(s, strlen(s), buf, cap);
}

/* Append s as one single-quoted shell word: ' becomes '\''. */
static void add_shell_quoted(struct strbuf *sb, const char *s, size_t n)
{
    sb_addc(sb, '\'');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\'')
            sb_adds(sb, "'\\''");
        else
            sb_addc(sb, s[i]);
    }
    sb_addc(sb, '\'');
}

/* ---- results ----------------------------------------------------------------------------------
 */

static int add_result(struct reader *r, int line, enum crontab_kind kind, json_t *job,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Append a result; takes job (may be NULL).  fmt NULL: no message. */
static int add_result(struct reader *r, int line, enum crontab_kind kind, json_t *job,
                      const char *fmt, ...)
{
    struct crontab *c = r->out;
    char *msg = NULL;
    if (fmt != NULL) {
        struct strbuf sb;
        sb_init(&sb);
        va_list ap;
        va_start(ap, fmt);
        sb_vaddf(&sb, fmt, ap);
        va_end(ap);
        msg = sb_detach(&sb);
        if (msg == NULL) {
            json_decref(job);
            return TY_ENOMEM;
        }
    }
    /* capacity: 64, then doubled whenever n_lines reaches a power of two */
    size_t n = c->n_lines;
    if (n == 0 || (n >= 64 && (n & (n - 1)) == 0)) {
        struct crontab_line *nl = realloc(c->lines, (n ? 2 * n : 64) * sizeof *nl);
        if (nl == NULL) {
            free(msg);
            json_decref(job);
            return TY_ENOMEM;
        }
        c->lines = nl;
    }
    c->lines[c->n_lines++] = (struct crontab_line){line, kind, msg, job, 0, 0};
    switch (kind) {
    case CRONTAB_BLANK: c->n_blank++; break;
    case CRONTAB_COMMENT: c->n_comments++; break;
    case CRONTAB_ENV: c->n_env++; break;
    case CRONTAB_JOB: c->n_jobs++; break;
    case CRONTAB_UNSUPPORTED: c->n_unsupported++; break;
    case CRONTAB_ERROR: c->n_errors++; break;
    }
    return 0;
}

/* ---- assignments ------------------------------------------------------------------------------
 */

enum env_state { NAMEI, NAME, EQ1, EQ2, VALUEI, VALUE, FINI, ENV_ERROR };

/*
 * cronie's load_env over s[0..n): true when the line is an assignment, with its name and
 * value (quotes removed).  The states are cronie's; see the top of the file for the one
 * deviation (nothing after '=').
 */
static bool parse_assignment(const char *s, size_t n, struct strbuf *name, struct strbuf *value)
{
    enum env_state state = NAMEI;
    char quote = '\0';
    struct strbuf *dst = name;
    size_t i = 0;
    while (state != ENV_ERROR && i < n) {
        char c = s[i];
        switch (state) {
        case NAMEI:
        case VALUEI:
            if (c == '\'' || c == '"') {
                quote = c;
                i++;
            }
            state = state == NAMEI ? NAME : VALUE;
            break;
        case NAME:
        case VALUE:
            if (quote != '\0') {
                if (c == quote) {
                    state = state == NAME ? EQ1 : FINI;
                    i++;
                    break;
                }
                if (state == NAME && c == '=') {
                    state = ENV_ERROR;
                    break;
                }
            } else if (state == NAME) {
                if (is_space(c)) {
                    i++;
                    state = EQ1;
                    break;
                }
                if (c == '=') {
                    state = EQ1;
                    break;
                }
            }
            sb_addc(dst, c);
            i++;
            break;
        case EQ1:
            if (c == '=') {
                state = EQ2;
                dst = value;
                quote = '\0';
            } else if (!is_space(c)) {
                state = ENV_ERROR;
            }
            i++;
            break;
        case EQ2:
        case FINI:
            if (is_space(c))
                i++;
            else
                state = state == EQ2 ? VALUEI : ENV_ERROR;
            break;
        case ENV_ERROR: break;
        }
    }
    if (name->len == 0)
        return false;
    if (state == VALUE && quote == '\0') {
        size_t k = value->len;
        while (k > 0 && is_space(value->buf[k - 1]))
            k--;
        sb_truncate(value, k);
        return true;
    }
    /* "NAME=" and "NAME = ": the empty value (cronie would refuse the line) */
    return state == FINI || state == EQ2 || (state == VALUEI && i == n);
}

static bool env_name_ok(const char *s)
{
    if (!(s[0] == '_' || is_alpha(s[0])))
        return false;
    for (const char *p = s + 1; *p; p++)
        if (!(*p == '_' || is_alpha(*p) || is_digit(*p)))
            return false;
    return strlen(s) <= ENV_NAME_MAX;
}

static int env_set(struct reader *r, const char *name, const char *value)
{
    for (size_t i = 0; i < r->n_env; i++) {
        if (strcmp(r->env[i].name, name) == 0) {
            char *v = strdup(value);
            if (v == NULL)
                return TY_ENOMEM;
            free(r->env[i].value);
            r->env[i].value = v;
            return 0;
        }
    }
    if (r->n_env == r->cap_env) {
        size_t cap = r->cap_env ? r->cap_env * 2 : 16;
        struct env_var *nv = realloc(r->env, cap * sizeof *nv);
        if (nv == NULL)
            return TY_ENOMEM;
        r->env = nv;
        r->cap_env = cap;
    }
    char *n = strdup(name), *v = strdup(value);
    if (n == NULL || v == NULL) {
        free(n);
        free(v);
        return TY_ENOMEM;
    }
    r->env[r->n_env++] = (struct env_var){n, v};
    return 0;
}

/* msg without its leading "field: ", for a message that names the field its own way. */
static const char *without_field(const char *msg, const char *field)
{
    size_t n = strlen(field);
    return strncmp(msg, field, n) == 0 && strncmp(msg + n, ": ", 2) == 0 ? msg + n + 2 : msg;
}

/* Check a zone name's syntax as the job format does; 0 or TY_EINVAL with err filled. */
static int check_zone(const char *zone, struct ty_err *err)
{
    json_t *probe =
        json_pack("{s:s, s:s, s:s}", "name", "probe", "command", "true", "time_zone", zone);
    if (probe == NULL)
        return ty_error(err, TY_EINVAL, "time_zone", -1, 0, "time_zone: not valid UTF-8");
    struct job j;
    int rc = job_from_json(probe, &j, err);
    job_free(&j);
    json_decref(probe);
    return rc;
}

static int on_assignment(struct reader *r, int line, const char *name, const char *value)
{
    char shown[SHOW_MAX], zone[SHOW_MAX];
    shows(value, shown, sizeof shown);
    if (strcmp(name, "CRON_TZ") == 0) {
        free(r->cron_tz);
        r->cron_tz = NULL;
        r->cron_tz_line = 0;
        if (*value != '\0') {
            if ((r->cron_tz = strdup(value)) == NULL)
                return TY_ENOMEM;
            r->cron_tz_line = line;
        }
        if (r->opts->tz != NULL)
            return add_result(r, line, CRONTAB_ENV, NULL,
                              "CRON_TZ=%s is overridden by --tz %s: every entry runs in that zone",
                              shown, shows(r->opts->tz, zone, sizeof zone));
        if (*value == '\0')
            return add_result(r, line, CRONTAB_ENV, NULL,
                              "CRON_TZ is empty: the entries below run in the default zone");
        struct ty_err zerr;
        ty_err_clear(&zerr);
        if (check_zone(value, &zerr) != 0)
            return add_result(r, line, CRONTAB_ERROR, NULL,
                              "CRON_TZ: %s; the entries below it are not imported",
                              without_field(zerr.msg, "time_zone"));
        return add_result(r, line, CRONTAB_ENV, NULL, "CRON_TZ: the entries below run in %s",
                          shown);
    }
    if (strcmp(name, "MAILTO") == 0 || strcmp(name, "MAILFROM") == 0) {
        if (*value == '\0')
            return add_result(r, line, CRONTAB_ENV, NULL,
                              "%s is empty (no mail): nothing to carry over, Tethys sends no mail",
                              name);
        return add_result(r, line, CRONTAB_UNSUPPORTED, NULL, "%s=%s is not carried over: %s", name,
                          shown, MAIL_REASON);
    }
    if (strcmp(name, "SHELL") == 0) {
        if (strcmp(value, "/bin/sh") == 0)
            return add_result(r, line, CRONTAB_ENV, NULL,
                              "SHELL=/bin/sh: Tethys runs every command with /bin/sh already");
        return add_result(r, line, CRONTAB_UNSUPPORTED, NULL,
                          "SHELL=%s is not carried over: Tethys runs every command with /bin/sh; "
                          "a command that needs another shell must call it (bash -c '...')",
                          shown);
    }
    if (strcmp(name, "RANDOM_DELAY") == 0)
        return add_result(r, line, CRONTAB_UNSUPPORTED, NULL,
                          "RANDOM_DELAY=%s is not carried over: Tethys starts each run at its "
                          "scheduled time, without a random delay",
                          shown);
    char nshown[SHOW_MAX];
    shows(name, nshown, sizeof nshown);
    if (!env_name_ok(name))
        return add_result(r, line, CRONTAB_UNSUPPORTED, NULL,
                          "%s is not carried over: a Tethys environment variable name is "
                          "letters, digits and '_', not starting with a digit (at most %d bytes)",
                          nshown, ENV_NAME_MAX);
    if (strncmp(name, "TETHYS_", 7) == 0)
        return add_result(r, line, CRONTAB_UNSUPPORTED, NULL,
                          "%s is not carried over: Tethys sets the TETHYS_* variables of every "
                          "run itself",
                          nshown);
    int rc = env_set(r, name, value);
    if (rc != 0)
        return rc;
    return add_result(r, line, CRONTAB_ENV, NULL, "%s=%s: in the environment of the entries below",
                      name, shown);
}

/* ---- entries ----------------------------------------------------------------------------------
 */

static const char *skip_blanks(const char *p, const char *end)
{
    while (p < end && is_blank(*p))
        p++;
    return p;
}

static const char *word_end(const char *p, const char *end)
{
    while (p < end && !is_blank(*p))
        p++;
    return p;
}

/*
 * do_command.c's split of an entry's command text s[0..n): *cmd gets the command (\%
 * unescaped) and *input the bytes cron writes to its standard input (empty when there is
 * no % or nothing after it).  *has_pct: an unescaped % was found.
 */
static void split_percent(const char *s, size_t n, struct strbuf *cmd, struct strbuf *input,
                          bool *has_pct)
{
    bool escaped = false;
    size_t i = 0;
    *has_pct = false;
    for (; i < n; i++) {
        char c = s[i];
        if (escaped) {
            if (c == '%')
                sb_truncate(cmd, cmd->len - 1); /* \% is %: drop the backslash */
            sb_addc(cmd, c);
            escaped = false;
            continue;
        }
        if (c == '\\') {
            sb_addc(cmd, c);
            escaped = true;
            continue;
        }
        if (c == '%') {
            *has_pct = true;
            i++;
            break;
        }
        sb_addc(cmd, c);
    }
    if (!*has_pct || i == n)
        return;
    /* translation: \% -> %, % -> newline, \x -> \x; a final newline when missing */
    bool need_newline = false;
    escaped = false;
    for (; i < n; i++) {
        char c = s[i];
        if (escaped) {
            if (c != '%')
                sb_addc(input, '\\');
        } else if (c == '%') {
            c = '\n';
        }
        escaped = c == '\\';
        if (!escaped) {
            sb_addc(input, c);
            need_newline = c != '\n';
        }
    }
    if (escaped)
        sb_addc(input, '\\');
    if (need_newline)
        sb_addc(input, '\n');
}

/*
 * The Tethys command for cron's command cmd[0..n) with standard input in[0..in_len): cmd
 * itself when there is no input, else `printf '%s\n' 'line' ... | (cmd)`; trailing blanks
 * (not escaped ones) dropped.  The closing
 * parenthesis goes on a line of its own when cmd could end in a comment or a line
 * continuation.  Returns the number of input lines.
 */
static size_t build_command(struct strbuf *sb, const char *cmd, size_t n, const char *in,
                            size_t in_len)
{
    /* trailing blanks mean nothing to the shell, unless escaped */
    while (n > 0 && is_blank(cmd[n - 1]) && !(n > 1 && cmd[n - 2] == '\\'))
        n--;
    if (in_len == 0) {
        sb_add(sb, cmd, n);
        return 0;
    }
    size_t lines = 0;
    if (in[in_len - 1] == '\n') {
        sb_adds(sb, "printf '%s\\n'");
        const char *p = in, *end = in + in_len - 1;
        for (;;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *e = nl ? nl : end;
            sb_addc(sb, ' ');
            add_shell_quoted(sb, p, (size_t)(e - p));
            lines++;
            if (nl == NULL)
                break;
            p = nl + 1;
        }
    } else {
        /* only when the text ends in a lone backslash: no newline is added after it */
        sb_adds(sb, "printf '%s' ");
        add_shell_quoted(sb, in, in_len);
        lines = 1;
        for (size_t i = 0; i < in_len; i++)
            lines += in[i] == '\n';
    }
    bool own_line = memchr(cmd, '#', n) != NULL || (n > 0 && cmd[n - 1] == '\\');
    sb_adds(sb, " | (");
    sb_add(sb, cmd, n);
    sb_adds(sb, own_line ? "\n)" : ")");
    return lines;
}

/*
 * The first shell word at *p (quotes removed: "/opt/my app/run" is one word) into w, at
 * most cap-1 bytes; *p moves past it.
 */
static void shell_word(const char **p, const char *end, char *w, size_t cap)
{
    size_t o = 0;
    const char *q = *p;
    char quote = '\0';
    for (; q < end; q++) {
        char c = *q;
        if (quote != '\0') {
            if (c == quote) {
                quote = '\0';
                continue;
            }
        } else if (c == '\'' || c == '"') {
            quote = c;
            continue;
        } else if (is_blank(c) || strchr(";&|<>()`", c) != NULL) {
            break;
        } else if (c == '\\' && q + 1 < end) {
            c = *++q;
        }
        if (o + 1 < cap)
            w[o++] = c;
    }
    w[o] = '\0';
    *p = q;
}

/*
 * The readable part of a job name: the command's first word (after any VAR=value
 * assignments) without its directories, lower-cased, other characters than letters,
 * digits, '.' and '_' as single '-'; at most CRONTAB_SLUG_MAX bytes; "job" when nothing
 * is left ("[", "$(...)").
 */
static void command_slug(const char *cmd, size_t n, char *buf, size_t cap)
{
    const char *p = cmd, *end = cmd + n;
    char word[256];
    for (;;) {
        p = skip_blanks(p, end);
        shell_word(&p, end, word, sizeof word);
        size_t k = 0; /* NAME=value before the command: skip it */
        while (word[k] == '_' || is_alpha(word[k]) || (k > 0 && is_digit(word[k])))
            k++;
        if (k == 0 || word[k] != '=' || p >= end)
            break;
    }
    const char *base = strrchr(word, '/');
    base = base ? base + 1 : word;
    size_t o = 0;
    bool dash = true; /* no '-' at the start, none doubled */
    for (const char *q = base; *q && o + 1 < cap && o < CRONTAB_SLUG_MAX; q++) {
        char c = *q;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!(is_alpha(c) || is_digit(c) || c == '.' || c == '_')) {
            if (dash)
                continue;
            c = '-';
        }
        if (c == '.' && o == 0)
            continue;
        buf[o++] = c;
        dash = c == '-';
    }
    while (o > 0 && (buf[o - 1] == '-' || buf[o - 1] == '.'))
        o--;
    buf[o] = '\0';
    if (o == 0)
        snprintf(buf, cap, "job");
}

static json_t *env_object(const struct reader *r)
{
    json_t *env = json_object();
    for (size_t i = 0; env != NULL && i < r->n_env; i++) {
        json_t *v = json_string(r->env[i].value);
        if (v == NULL || json_object_set_new(env, r->env[i].name, v) != 0) {
            json_decref(env);
            return NULL;
        }
    }
    return env;
}

/* cron's macros, all Tethys macros too (cron.md), kept as the schedule text */
static const char *const macros[] = {"@yearly", "@annually", "@monthly", "@weekly",
                                     "@daily",  "@midnight", "@hourly"};

static bool word_is(const char *w, const char *we, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(we - w) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = w[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != s[i])
            return false;
    }
    return true;
}

/* What an entry says, once its schedule and user are read. */
struct entry {
    int line;
    const char *schedule; /* the five fields joined by single spaces, or the macro */
    const char *user;     /* system crontabs: the user column; else NULL */
    size_t user_len;
    const char *cmd; /* the command text as written: from its first character to the end */
    size_t cmd_len;
    const char *raw; /* the whole line, for the description */
    size_t raw_len;
};

/* What to tell about a job besides its fields (appended to note; nothing when nothing). */
static void job_note(const struct reader *r, const char *cmd, size_t cmd_len, size_t in_lines,
                     bool has_pct, struct strbuf *note)
{
    if (in_lines > 0)
        sb_addf(note, "the text after %% becomes the command's standard input (%zu line%s)",
                in_lines, in_lines == 1 ? "" : "s");
    else if (has_pct)
        sb_adds(note, "nothing follows the %: the command gets no input, as under cron");
    if (!r->opts->system && word_is(cmd, word_end(cmd, cmd + cmd_len), "root"))
        sb_addf(note,
                "%sthe command starts with \"root\": if this is a system crontab (/etc/crontab, "
                "/etc/cron.d/*) with a user column, import it with --system",
                note->len ? "; " : "");
}

/* The job object of an entry: command is what Tethys runs; slug_of the command as cron
 * would run it (its first word names the job).  NULL when out of memory. */
static json_t *entry_job(const struct reader *r, const struct entry *e, const char *command,
                         const char *slug_of, size_t slug_len, const char *zone)
{
    char slug[CRONTAB_SLUG_MAX + 1], name[JOB_NAME_MAX + 1];
    command_slug(slug_of, slug_len, slug, sizeof slug);
    snprintf(name, sizeof name, "%s-%d-%s", r->prefix, e->line, slug);

    struct strbuf desc;
    sb_init(&desc);
    sb_addf(&desc, "from %s line %d: ", r->source, e->line);
    size_t keep = utf8_cut(e->raw, e->raw_len, DESC_LINE_MAX);
    sb_add(&desc, e->raw, keep);
    if (keep < e->raw_len)
        sb_adds(&desc, "...");

    json_t *job = json_object();
    json_t *env = r->n_env ? env_object(r) : NULL;
    if (job == NULL || sb_failed(&desc) || (r->n_env && env == NULL)) {
        json_decref(env);
        json_decref(job);
        sb_free(&desc);
        return NULL;
    }
    json_object_set_new(job, "name", json_string(name));
    if (r->opts->domain != NULL)
        json_object_set_new(job, "domain", json_string(r->opts->domain));
    json_object_set_new(job, "description", json_string(sb_str(&desc)));
    json_object_set_new(job, "command", json_string(command));
    if (e->user != NULL)
        json_object_set_new(job, "user", json_stringn(e->user, e->user_len));
    if (env != NULL)
        json_object_set_new(job, "env", env);
    json_object_set_new(job, "schedule", json_string(e->schedule));
    json_object_set_new(job, "time_zone", json_string(zone));
    json_object_set_new(job, "overlap", json_string("parallel"));
    sb_free(&desc);
    return job;
}

/* An entry whose schedule and user are read: its command, checked, becomes a job. */
static int add_job(struct reader *r, const struct entry *e)
{
    struct strbuf cmd, input, command, note;
    sb_init(&cmd);
    sb_init(&input);
    sb_init(&command);
    sb_init(&note);
    bool has_pct;
    split_percent(e->cmd, e->cmd_len, &cmd, &input, &has_pct);
    const char *c0 = skip_blanks(sb_str(&cmd), sb_str(&cmd) + cmd.len);
    size_t c0_len = cmd.len - (size_t)(c0 - sb_str(&cmd));

    const char *zone;
    enum crontab_tz_from tz_from;
    if (r->opts->tz != NULL) {
        zone = r->opts->tz;
        tz_from = CRONTAB_TZ_OPTION;
    } else if (r->cron_tz != NULL) {
        zone = r->cron_tz;
        tz_from = CRONTAB_TZ_CRON_TZ;
    } else {
        zone = r->opts->default_tz ? r->opts->default_tz : "UTC";
        tz_from = CRONTAB_TZ_DEFAULT;
    }

    int rc = 0;
    json_t *job = NULL;
    if (c0_len == 0) {
        rc = add_result(r, e->line, CRONTAB_ERROR, NULL,
                        "no command before the %%: cron would run nothing");
    } else {
        size_t in_lines = build_command(&command, c0, c0_len, sb_str(&input), input.len);
        job_note(r, c0, c0_len, in_lines, has_pct, &note);
        if (!sb_failed(&cmd) && !sb_failed(&input) && !sb_failed(&command) && !sb_failed(&note))
            job = entry_job(r, e, sb_str(&command), c0, c0_len, zone);
        if (job == NULL)
            rc = TY_ENOMEM;
    }
    if (job != NULL) {
        struct job check;
        struct ty_err jerr;
        ty_err_clear(&jerr);
        int jrc = job_from_json(job, &check, &jerr);
        job_free(&check);
        if (jrc == TY_ENOMEM) {
            rc = TY_ENOMEM;
        } else if (jrc != 0 && tz_from == CRONTAB_TZ_CRON_TZ &&
                   strcmp(jerr.field, "time_zone") == 0) {
            rc = add_result(r, e->line, CRONTAB_ERROR, NULL, "CRON_TZ (line %d): %s",
                            r->cron_tz_line, without_field(jerr.msg, "time_zone"));
        } else if (jrc != 0) {
            rc = add_result(r, e->line, CRONTAB_ERROR, NULL, "%s", jerr.msg);
        } else {
            rc = note.len ? add_result(r, e->line, CRONTAB_JOB, job, "%s", sb_str(&note))
                          : add_result(r, e->line, CRONTAB_JOB, job, NULL);
            job = NULL; /* the result owns it, or add_result released it */
            if (rc == 0) {
                struct crontab_line *res = &r->out->lines[r->out->n_lines - 1];
                res->tz_from = tz_from;
                res->tz_line = tz_from == CRONTAB_TZ_CRON_TZ ? r->cron_tz_line : 0;
            }
        }
    }
    json_decref(job);
    sb_free(&cmd);
    sb_free(&input);
    sb_free(&command);
    sb_free(&note);
    return rc;
}

/* Read an entry's schedule (a macro or five fields) into sched; *p moves past it.  0, or
 * 1 after adding the line's result (an error, @reboot), or TY_ENOMEM. */
static int read_schedule(struct reader *r, int line, const char **p, const char *end,
                         struct strbuf *sched)
{
    char shown[SHOW_MAX];
    if (**p == '@') {
        const char *w = *p, *we = word_end(w, end);
        const char *macro = NULL;
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
            if (word_is(w, we, macros[i]))
                macro = macros[i];
        int rc;
        if (word_is(w, we, "@reboot"))
            rc = add_result(r, line, CRONTAB_UNSUPPORTED, NULL,
                            "@reboot is not carried over: Tethys runs jobs on a schedule or on "
                            "demand, not when the machine starts; a command to run at boot "
                            "belongs in a systemd unit");
        else if (macro == NULL)
            rc = add_result(r, line, CRONTAB_ERROR, NULL,
                            "unknown macro %s (crontab knows @reboot @yearly @annually @monthly "
                            "@weekly @daily @midnight @hourly)",
                            show(w, (size_t)(we - w), shown, sizeof shown));
        else
            rc = 0;
        if (macro == NULL)
            return rc != 0 ? rc : 1;
        sb_adds(sched, macro);
        *p = we;
        return 0;
    }
    int fields = 0;
    for (; fields < 5; fields++) {
        const char *w = skip_blanks(*p, end);
        if (w == end)
            break;
        const char *we = word_end(w, end);
        if (fields > 0)
            sb_addc(sched, ' ');
        sb_add(sched, w, (size_t)(we - w));
        *p = we;
    }
    if (fields < 5) {
        int rc = add_result(r, line, CRONTAB_ERROR, NULL,
                            "too few fields (%d): an entry is 5 time fields (minute hour "
                            "day-of-month month day-of-week) or a macro (@daily ...), %sthen the "
                            "command",
                            fields, r->opts->system ? "the user, " : "");
        return rc != 0 ? rc : 1;
    }
    if (sb_failed(sched))
        return TY_ENOMEM;
    struct cron_expr expr;
    struct ty_err cerr;
    ty_err_clear(&cerr);
    if (cron_parse(sb_str(sched), &expr, &cerr) != 0) {
        int rc = add_result(r, line, CRONTAB_ERROR, NULL, "schedule %s: %s",
                            shows(sb_str(sched), shown, sizeof shown), cerr.msg);
        return rc != 0 ? rc : 1;
    }
    return 0;
}

/* An entry: s[0..n) starts at its first non-blank character; raw is the whole line. */
static int on_entry(struct reader *r, int line, const char *s, size_t n, const char *raw,
                    size_t raw_len)
{
    const char *p = s, *end = s + n;
    struct strbuf sched;
    sb_init(&sched);
    int rc = read_schedule(r, line, &p, end, &sched);
    if (rc != 0) {
        sb_free(&sched);
        return rc > 0 ? 0 : rc;
    }
    struct entry e = {.line = line, .schedule = sb_str(&sched), .raw = raw, .raw_len = raw_len};
    p = skip_blanks(p, end);
    if (r->opts->system && p < end) {
        e.user = p;
        e.user_len = (size_t)(word_end(p, end) - p);
        p = skip_blanks(p + e.user_len, end);
    }
    if (p == end && r->opts->system && e.user == NULL) {
        rc = add_result(r, line, CRONTAB_ERROR, NULL,
                        "no user and no command after the schedule (a system crontab has a user "
                        "column, then the command)");
    } else if (p == end) {
        rc = add_result(r, line, CRONTAB_ERROR, NULL, "no command after the %s",
                        r->opts->system ? "user" : "schedule");
    } else {
        e.cmd = p;
        e.cmd_len = (size_t)(end - p);
        rc = add_job(r, &e);
    }
    sb_free(&sched);
    return rc;
}

/* ---- lines ------------------------------------------------------------------------------------
 */

static int on_line(struct reader *r, int line, const char *s, size_t n)
{
    if (n > 0 && s[n - 1] == '\r') /* a file written with CRLF line ends */
        n--;
    if (memchr(s, '\0', n) != NULL)
        return add_result(r, line, CRONTAB_ERROR, NULL, "the line holds a NUL byte");
    if (!utf8_ok((const unsigned char *)s, n))
        return add_result(r, line, CRONTAB_ERROR, NULL, "the line is not valid UTF-8");
    const char *p = skip_blanks(s, s + n);
    size_t rest = n - (size_t)(p - s);
    if (rest == 0)
        return add_result(r, line, CRONTAB_BLANK, NULL, NULL);
    if (*p == '#')
        return add_result(r, line, CRONTAB_COMMENT, NULL, NULL);

    struct strbuf name, value;
    sb_init(&name);
    sb_init(&value);
    int rc;
    if (parse_assignment(p, rest, &name, &value)) {
        rc = sb_failed(&name) || sb_failed(&value)
                 ? TY_ENOMEM
                 : on_assignment(r, line, sb_str(&name), sb_str(&value));
    } else {
        rc = on_entry(r, line, p, rest, s, n);
    }
    sb_free(&name);
    sb_free(&value);
    return rc;
}

/* Refuse options that would make every job invalid, naming the option. */
static int check_opts(const struct crontab_opts *o, const char *prefix, struct ty_err *err)
{
    struct ty_err e;
    ty_err_clear(&e);
    if (job_check_name("--prefix", prefix, &e) != 0)
        return ty_error(err, TY_EINVAL, "--prefix", -1, 0, "%s", e.msg);
    if (strlen(prefix) > CRONTAB_PREFIX_MAX)
        return ty_error(err, TY_EINVAL, "--prefix", -1, 0, "--prefix: %zu bytes; at most %d",
                        strlen(prefix), CRONTAB_PREFIX_MAX);
    const char *zones[2] = {o->tz, o->default_tz};
    const char *what[2] = {"--tz", "the default time zone"};
    for (int i = 0; i < 2; i++) {
        if (zones[i] != NULL && check_zone(zones[i], &e) != 0)
            return ty_error(err, TY_EINVAL, i == 0 ? "--tz" : "time_zone", -1, 0, "%s: %s", what[i],
                            e.msg);
    }
    if (o->domain != NULL) {
        json_t *probe =
            json_pack("{s:s, s:s, s:s}", "name", "probe", "command", "true", "domain", o->domain);
        struct job j;
        int rc = probe ? job_from_json(probe, &j, &e)
                       : ty_error(&e, TY_EINVAL, "domain", -1, 0, "not valid UTF-8");
        job_free(&j);
        json_decref(probe);
        if (rc != 0)
            return ty_error(err, TY_EINVAL, "--domain", -1, 0, "--domain: %s", e.msg);
    }
    return 0;
}

int crontab_parse(const char *text, size_t len, const struct crontab_opts *opts,
                  struct crontab *out, struct ty_err *err)
{
    memset(out, 0, sizeof *out);
    struct reader r = {.opts = opts,
                       .prefix = opts->prefix ? opts->prefix : CRONTAB_PREFIX_DEFAULT,
                       .source = opts->source ? opts->source : "crontab",
                       .out = out};
    int rc = check_opts(opts, r.prefix, err);
    const char *p = text, *end = text + len;
    int line = 0;
    while (rc == 0 && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        rc = on_line(&r, ++line, p, (size_t)(e - p));
        p = nl ? nl + 1 : end;
    }
    for (size_t i = 0; i < r.n_env; i++) {
        free(r.env[i].name);
        free(r.env[i].value);
    }
    free(r.env);
    free(r.cron_tz);
    if (rc == TY_ENOMEM)
        ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    if (rc != 0)
        crontab_free(out);
    return rc;
}

void crontab_free(struct crontab *c)
{
    for (size_t i = 0; i < c->n_lines; i++) {
        free(c->lines[i].msg);
        json_decref(c->lines[i].job);
    }
    free(c->lines);
    memset(c, 0, sizeof *c);
}
