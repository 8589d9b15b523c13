/*
 * cli_admin.c - `tethys history`, `stats`, `alerts`, `domain`, `calendar`, `executors`,
 * and the plumbing every command over the REST API shares (options, connecting, calling
 * and reporting errors, tables and key: value output).
 *
 * The commands are thin: each builds one request (or a few), sends it through the
 * client, and prints the answer - as the API sent it with --json, else as an aligned
 * table (lists) or key: value lines (one object).  All validation that needs the
 * server's knowledge is the server's; the CLI checks only what it can say better
 * itself (an option without its value, a --by that cannot be right).
 *
 * Output for people is derived from the JSON generically (a column is a field path), so
 * a field the server adds shows up in `show` without a CLI change.  Values are cleaned
 * of control characters before they reach the terminal.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_file.h"
#include "../core/strbuf.h"

#define TABLE_COLS_MAX 24
#define CELL_MAX       512
#define MS_INSTANT_MIN 1000000000000LL /* 2001-09-09: a *_ms value this large is a time */

/* ---- options, connection, calls --------------------------------------------------------- */

int cli_exit_for(int code)
{
    switch (code) {
    case 0: return CLI_OK;
    case TY_EINVAL:
    case TY_ERANGE:
    case TY_ENOENT:
    case TY_EEXIST:
    case TY_ECONFLICT:
    case TY_EPERM:
    case TY_EBUSY: return CLI_USAGE;
    default: return CLI_SYSTEM;
    }
}

static int parse_error(void (*usage)(FILE *), const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int parse_error(void (*usage)(FILE *), const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_verror(fmt, ap);
    va_end(ap);
    if (usage != NULL)
        usage(stderr);
    return CLI_USAGE;
}

/* Match argv[*i] against an option name; 1 with *val set (NULL for a bare flag). */
static int match_opt(const char *a, const char *name, const char **inline_val)
{
    if (name == NULL)
        return 0;
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '\0') {
        *inline_val = NULL;
        return 1;
    }
    if (a[n] == '=' && name[1] == '-') {
        *inline_val = a + n + 1;
        return 1;
    }
    return 0;
}

int cli_parse(int argc, char **argv, const struct cli_opt *opts, struct cli_api *api,
              const char **pos, int max_pos, int *n_pos, void (*usage)(FILE *out))
{
    *n_pos = 0;
    bool done = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (!done && strcmp(a, "--") == 0) {
            done = true;
            continue;
        }
        if (done || a[0] != '-' || a[1] == '\0') {
            if (*n_pos >= max_pos)
                return parse_error(usage, "unexpected argument \"%s\"", a);
            pos[(*n_pos)++] = a;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return -1;
        }
        if (strcmp(a, "--json") == 0) {
            api->json = 1;
            continue;
        }
        const struct cli_opt data_opt = {"--data", NULL, CLI_VALUE, &api->data};
        const struct cli_opt ca_opt = {"--cacert", NULL, CLI_VALUE, &api->cacert};
        const struct cli_opt *o = NULL;
        if (match_opt(a, data_opt.name, &val))
            o = &data_opt;
        else if (match_opt(a, ca_opt.name, &val))
            o = &ca_opt;
        for (const struct cli_opt *p = opts; o == NULL && p != NULL && p->name != NULL; p++)
            if (match_opt(a, p->name, &val) || match_opt(a, p->alias, &val))
                o = p;
        if (o == NULL)
            return parse_error(usage, "unknown option \"%s\"", a);
        if (o->kind == CLI_FLAG) {
            if (val != NULL)
                return parse_error(usage, "option %s takes no value", o->name);
            *(int *)o->dest = 1;
            continue;
        }
        if (val == NULL) {
            if (i + 1 >= argc)
                return parse_error(usage, "option %s needs a value", o->name);
            val = argv[++i];
        }
        if (o->kind == CLI_VALUE) {
            *(const char **)o->dest = val;
        } else {
            struct cli_list *l = o->dest;
            if (l->n == CLI_LIST_MAX)
                return parse_error(usage, "option %s given more than %d times", o->name,
                                   CLI_LIST_MAX);
            l->v[l->n++] = val;
        }
    }
    return 0;
}

int cli_whole(const char *option, const char *text, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
        if (min == LLONG_MIN && max == LLONG_MAX)
            cli_error("%s: \"%s\" is not a whole number", option, text);
        else
            cli_error("%s: \"%s\" is not a whole number from %lld to %lld", option, text, min, max);
        return CLI_USAGE;
    }
    *out = v;
    return 0;
}

int cli_api_open(struct cli_api *api)
{
    struct ty_err err;
    ty_err_clear(&err);
    int rc = client_open(&api->client, api->data, &err);
    if (rc == 0 && api->cacert != NULL &&
        (rc = client_set_cacert(&api->client, api->cacert, "--cacert", &err)) != 0)
        client_close(&api->client);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return cli_exit_for(rc);
    }
    api->open = true;
    return 0;
}

void cli_api_close(struct cli_api *api)
{
    if (api->open)
        client_close(&api->client);
    api->open = false;
}

int cli_api_call(struct cli_api *api, const char *method, const char *path, const json_t *body,
                 const char *if_match, json_t **resp, char **etag)
{
    struct ty_err err;
    ty_err_clear(&err);
    int rc = client_call(&api->client, method, path, body, if_match, NULL, resp, etag, &err);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return cli_exit_for(rc);
    }
    return 0;
}

static int append_page(void *arg, json_t *items)
{
    return json_array_extend(arg, items) == 0 ? 0 : TY_ENOMEM;
}

int cli_api_list(struct cli_api *api, const char *path, size_t max, json_t **items, char **next)
{
    struct ty_err err;
    ty_err_clear(&err);
    *items = json_array();
    int rc = *items != NULL ? client_pages(&api->client, path, max, append_page, *items, next, &err)
                            : ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    if (rc != 0) {
        json_decref(*items);
        *items = NULL;
        cli_error("%s", err.code == TY_ENOMEM && err.msg[0] == '\0' ? "out of memory" : err.msg);
        return cli_exit_for(rc);
    }
    return 0;
}

void cli_print_json(const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (s != NULL)
        printf("%s\n", s);
    free(s);
}

int cli_set_field(json_t *obj, const char *assignment, const char *option)
{
    const char *eq = strchr(assignment, '=');
    if (eq == NULL || eq == assignment) {
        cli_error("%s: \"%s\" is not field=value", option, assignment);
        return CLI_USAGE;
    }
    json_t *value = json_loads(eq + 1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (value == NULL)
        value = json_string(eq + 1);
    if (value == NULL) {
        cli_error("%s: \"%s\" is not valid UTF-8 text", option, assignment);
        return CLI_USAGE;
    }
    char path[256];
    snprintf(path, sizeof path, "%.*s", (int)(eq - assignment), assignment);
    json_t *at = obj;
    char *save = NULL;
    char *seg = strtok_r(path, ".", &save);
    while (seg != NULL) {
        char *next = strtok_r(NULL, ".", &save);
        if (next == NULL) {
            json_object_set_new(at, seg, value);
            return 0;
        }
        json_t *child = json_object_get(at, seg);
        if (!json_is_object(child)) {
            child = json_object();
            json_object_set_new(at, seg, child);
        }
        at = child;
        seg = next;
    }
    json_decref(value);
    cli_error("%s: \"%s\" names no field", option, assignment);
    return CLI_USAGE;
}

/* ---- values as text ---------------------------------------------------------------------- */

static const json_t *field_get(const json_t *item, const char *field)
{
    char path[128];
    snprintf(path, sizeof path, "%s", field);
    const json_t *v = item;
    char *save = NULL;
    for (char *seg = strtok_r(path, ".", &save); seg != NULL && v != NULL;
         seg = strtok_r(NULL, ".", &save))
        v = json_object_get(v, seg);
    return v;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Milliseconds since the epoch as "2026-01-01T12:00:00.123Z". */
static void format_ms(long long ms, char *buf, size_t cap)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL) {
        snprintf(buf, cap, "%lld", ms);
        return;
    }
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%03dZ", day, (int)(ms % 1000));
}

/* Copy text with control characters made visible-safe. */
static void clean_copy(const char *s, char *buf, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 1 < cap; s++)
        buf[o++] = (unsigned char)*s < 0x20 || *s == 0x7F ? '?' : *s;
    buf[o] = '\0';
}

static void value_text(const json_t *v, const char *key, char *buf, size_t cap)
{
    if (v == NULL || json_is_null(v)) {
        snprintf(buf, cap, "-");
    } else if (json_is_string(v)) {
        clean_copy(json_string_value(v), buf, cap);
    } else if (json_is_integer(v)) {
        /* *_ms fields hold durations or instants; no duration is 31 years long */
        long long n = (long long)json_integer_value(v);
        if (key != NULL && ends_with(key, "_ms") && n >= MS_INSTANT_MIN)
            format_ms(n, buf, cap);
        else if (key != NULL && ends_with(key, "_at_ms") && n <= 0)
            snprintf(buf, cap, "-");
        else
            snprintf(buf, cap, "%lld", n);
    } else if (json_is_real(v)) {
        snprintf(buf, cap, "%g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(buf, cap, "%s", json_is_true(v) ? "yes" : "no");
    } else {
        bool scalars = json_is_array(v);
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e) scalars = scalars && !json_is_array(e) && !json_is_object(e);
        if (scalars) {
            struct strbuf sb;
            sb_init(&sb);
            json_array_foreach(v, i, e)
            {
                char one[CELL_MAX];
                value_text(e, NULL, one, sizeof one);
                sb_addf(&sb, "%s%s", i ? "," : "", one);
            }
            snprintf(buf, cap, "%s", json_array_size(v) ? sb_str(&sb) : "-");
            sb_free(&sb);
        } else {
            char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
            clean_copy(s ? s : "?", buf, cap);
            free(s);
        }
    }
}

void cli_cell_text(const json_t *item, const char *field, char *buf, size_t cap)
{
    const char *last = strrchr(field, '.');
    value_text(field_get(item, field), last ? last + 1 : field, buf, cap);
}

/* Display width: code points, not bytes. */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* ---- tables and shows ---------------------------------------------------------------------- */

void cli_table(const json_t *items, const struct cli_col *cols_in, size_t n_in)
{
    size_t rows = json_array_size(items);
    if (rows == 0) {
        printf("(none)\n");
        return;
    }
    struct cli_col cols[TABLE_COLS_MAX];
    char titles[TABLE_COLS_MAX][64];
    size_t n = 0;
    if (cols_in == NULL) {
        /* one column per field, in order of first appearance */
        size_t i;
        const json_t *it;
        json_array_foreach(items, i, it)
        {
            const char *k;
            const json_t *v;
            json_object_foreach((json_t *)it, k, v)
            {
                (void)v;
                size_t c = 0;
                while (c < n && strcmp(cols[c].field, k) != 0)
                    c++;
                if (c < n || n == TABLE_COLS_MAX)
                    continue;
                size_t t = 0;
                for (; k[t] && t + 1 < sizeof titles[n]; t++)
                    titles[n][t] =
                        k[t] == '_' ? ' ' : (char)(k[t] >= 'a' && k[t] <= 'z' ? k[t] - 32 : k[t]);
                titles[n][t] = '\0';
                cols[n] = (struct cli_col){titles[n], k, NULL, false};
                n++;
            }
        }
    } else {
        for (size_t c = 0; c < n_in && n < TABLE_COLS_MAX; c++) {
            bool present = !cols_in[c].optional;
            for (size_t r = 0; !present && r < rows; r++)
                present = field_get(json_array_get(items, r), cols_in[c].field) != NULL;
            if (present)
                cols[n++] = cols_in[c];
        }
    }
    char **cells = calloc(rows * n + 1, sizeof *cells);
    size_t width[TABLE_COLS_MAX];
    for (size_t c = 0; c < n; c++)
        width[c] = text_width(cols[c].title);
    for (size_t r = 0; cells != NULL && r < rows; r++) {
        const json_t *it = json_array_get(items, r);
        for (size_t c = 0; c < n; c++) {
            char buf[CELL_MAX];
            if (cols[c].cell != NULL)
                cols[c].cell(it, buf, sizeof buf);
            else
                cli_cell_text(it, cols[c].field, buf, sizeof buf);
            cells[r * n + c] = strdup(buf);
            size_t w = cells[r * n + c] ? text_width(cells[r * n + c]) : 0;
            if (w > width[c])
                width[c] = w;
        }
    }
    if (cells == NULL)
        return;
    for (size_t r = 0; r <= rows; r++) {
        for (size_t c = 0; c < n; c++) {
            const char *t = r == 0 ? cols[c].title : cells[(r - 1) * n + c];
            if (t == NULL)
                t = "?";
            if (c + 1 == n)
                printf("%s\n", t);
            else
                printf("%s%*s", t, (int)(width[c] - text_width(t) + 2), "");
        }
    }
    for (size_t i = 0; i < rows * n; i++)
        free(cells[i]);
    free(cells);
}

struct kv {
    char *key;
    char *value;
    bool block; /* multi-line text: printed below its key */
};

struct kv_list {
    struct kv *v;
    size_t n, cap;
};

static void kv_add(struct kv_list *l, const char *key, const char *value, bool block)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        struct kv *nv = realloc(l->v, cap * sizeof *nv);
        if (nv == NULL)
            return;
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n].key = strdup(key);
    l->v[l->n].value = strdup(value);
    l->v[l->n].block = block;
    l->n++;
}

static void flatten(struct kv_list *l, const char *prefix, const json_t *v)
{
    if (json_is_object(v) && json_object_size(v) > 0) {
        const char *k;
        json_t *child;
        json_object_foreach((json_t *)v, k, child)
        {
            char key[256];
            snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", k);
            flatten(l, key, child);
        }
        return;
    }
    if (json_is_array(v) && json_array_size(v) > 0 &&
        (json_is_object(json_array_get(v, 0)) || json_is_array(json_array_get(v, 0)))) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            char key[256];
            snprintf(key, sizeof key, "%s[%zu]", prefix, i);
            flatten(l, key, e);
        }
        return;
    }
    if (json_is_string(v) && strchr(json_string_value(v), '\n') != NULL) {
        kv_add(l, prefix, json_string_value(v), true);
        return;
    }
    const char *last = strrchr(prefix, '.');
    char buf[4096];
    value_text(v, last ? last + 1 : prefix, buf, sizeof buf);
    kv_add(l, prefix, buf, false);
}

void cli_show(const json_t *obj)
{
    struct kv_list l = {0};
    flatten(&l, "", obj);
    size_t w = 0;
    for (size_t i = 0; i < l.n; i++)
        if (!l.v[i].block && l.v[i].key && text_width(l.v[i].key) > w)
            w = text_width(l.v[i].key);
    for (size_t i = 0; i < l.n; i++) {
        if (l.v[i].key == NULL || l.v[i].value == NULL)
            continue;
        if (!l.v[i].block) {
            printf("%s:%*s%s\n", l.v[i].key, (int)(w - text_width(l.v[i].key) + 1), "",
                   l.v[i].value);
            continue;
        }
        /* multi-line text (a command, an output tail): below its key, indented */
        printf("%s: |\n", l.v[i].key);
        const char *p = l.v[i].value;
        while (*p) {
            size_t n = strcspn(p, "\n");
            char line[4096];
            snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), p);
            for (char *c = line; *c; c++)
                if ((unsigned char)*c < 0x20 && *c != '\t')
                    *c = '?';
            printf("  %s\n", line);
            p += n;
            if (*p == '\n')
                p++;
        }
    }
    for (size_t i = 0; i < l.n; i++) {
        free(l.v[i].key);
        free(l.v[i].value);
    }
    free(l.v);
}

/* ---- shared by the admin commands ------------------------------------------------------------ */

/* Print an API answer: as JSON, or as a table of its "items"/named array, or a show. */
static void print_list(const struct cli_api *api, const json_t *resp, const char *array,
                       const struct cli_col *cols, size_t n)
{
    if (api->json)
        cli_print_json(resp);
    else
        cli_table(json_object_get(resp, array), cols, n);
}

/* GET one path and print it as a show (or JSON).  The common `show` subcommand. */
static int show_one(struct cli_api *api, const char *path)
{
    json_t *resp = NULL;
    int rc = cli_api_call(api, "GET", path, NULL, NULL, &resp, NULL);
    if (rc == 0) {
        if (api->json)
            cli_print_json(resp);
        else
            cli_show(resp);
    }
    json_decref(resp);
    return rc;
}

/* "/api/v1/<collection>/<name escaped>" into sb. */
static void object_path(struct strbuf *sb, const char *collection, const char *name)
{
    sb_addf(sb, "/api/v1/%s", collection);
    if (name != NULL)
        client_path_add(sb, name);
}

/* Load -f FILE, printing the error; NULL on failure (*status set). */
static json_t *load_definition(const char *file, int *status)
{
    json_t *v = NULL;
    struct ty_err err;
    ty_err_clear(&err);
    int rc = cli_file_load(file, &v, &err);
    if (rc != 0) {
        cli_error("%s", err.msg);
        *status = cli_exit_for(rc);
        return NULL;
    }
    return v;
}

/* The definition's name field must agree with the NAME argument (filled in when absent). */
static int check_name(json_t *def, const char *field, const char *name, const char *file)
{
    json_t *v = json_object_get(def, field);
    if (v == NULL) {
        json_object_set_new(def, field, json_string(name));
        return 0;
    }
    if (!json_is_string(v) || strcmp(json_string_value(v), name) != 0) {
        cli_error("%s: %s is \"%s\", but the command names \"%s\" (renaming is not supported)",
                  file, field, json_is_string(v) ? json_string_value(v) : "?", name);
        return CLI_USAGE;
    }
    return 0;
}

/* Parse a whole number option into obj[field]. */
static int set_int(json_t *obj, const char *field, const char *option, const char *text)
{
    if (text == NULL)
        return 0;
    long long v;
    int rc = cli_whole(option, text, LLONG_MIN, LLONG_MAX, &v);
    if (rc == 0)
        json_object_set_new(obj, field, json_integer(v));
    return rc;
}

/*
 * Change an object the API replaces whole (PUT): read it, apply the changes, write it
 * back on the condition that nobody changed it meanwhile (If-Match with the version read,
 * or with --if-version when given).
 */
static int put_changed(struct cli_api *api, const char *path, json_t *changes,
                       const char *if_version, json_t **resp)
{
    json_t *cur = NULL;
    char *etag = NULL;
    int rc = cli_api_call(api, "GET", path, NULL, NULL, &cur, &etag);
    if (rc == 0) {
        json_object_update_recursive(cur, changes); /* nested objects (limits) merge */
        json_object_del(cur, "version");
        rc = cli_api_call(api, "PUT", path, cur, if_version ? if_version : etag, resp, NULL);
    }
    json_decref(cur);
    free(etag);
    return rc;
}

/* Finish a mutation: print the answer as JSON, or the sentence. */
static void report(const struct cli_api *api, const json_t *resp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(const struct cli_api *api, const json_t *resp, const char *fmt, ...)
{
    if (api->json) {
        if (resp != NULL)
            cli_print_json(resp);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* ---- history -----------------------------------------------------------------------------------
 */

static void cell_status(const json_t *it, char *buf, size_t cap)
{
    const char *s = json_string_value(json_object_get(it, "status"));
    snprintf(buf, cap, "%s", s ? s : json_object_get(it, "reason") ? "skipped" : "-");
}

static void cell_duration(const json_t *it, char *buf, size_t cap)
{
    json_int_t a = json_integer_value(json_object_get(it, "started_at_ms"));
    json_int_t b = json_integer_value(json_object_get(it, "ended_at_ms"));
    if (a > 0 && b >= a)
        snprintf(buf, cap, "%.3fs", (double)(b - a) / 1000.0);
    else
        snprintf(buf, cap, "-");
}

static void cell_exit(const json_t *it, char *buf, size_t cap)
{
    json_t *sig = json_object_get(it, "signal");
    json_t *code = json_object_get(it, "exit_code");
    if (json_integer_value(sig) > 0)
        snprintf(buf, cap, "SIG%lld", (long long)json_integer_value(sig));
    else if (json_is_integer(code) && json_integer_value(code) >= 0)
        snprintf(buf, cap, "%lld", (long long)json_integer_value(code));
    else
        snprintf(buf, cap, "-");
}

/* Shard -1 stands for a whole fire (every shard), as a skipped fire is recorded. */
static void cell_shard(const json_t *it, char *buf, size_t cap)
{
    const json_t *v = json_object_get(it, "shard");
    if (json_is_integer(v) && json_integer_value(v) < 0)
        snprintf(buf, cap, "all");
    else
        value_text(v, NULL, buf, cap);
}

static void cell_detail(const json_t *it, char *buf, size_t cap)
{
    const json_t *v = json_object_get(it, "reason");
    if (!json_is_string(v))
        v = json_object_get(it, "error");
    value_text(v, NULL, buf, cap);
}

static void cell_scheduled(const json_t *it, char *buf, size_t cap)
{
    const json_t *v = json_object_get(it, "scheduled_at_text");
    value_text(v ? v : json_object_get(it, "scheduled_at"), NULL, buf, cap);
}

static const struct cli_col history_cols[] = {
    {"SCHEDULED", "scheduled_at_text", cell_scheduled, false},
    {"JOB", "job", NULL, false},
    {"SHARD", "shard", cell_shard, false},
    {"STATUS", "status", cell_status, false},
    {"TRIGGER", "trigger", NULL, true},
    {"ATTEMPT", "attempt", NULL, true},
    {"DURATION", "ended_at_ms", cell_duration, false},
    {"EXIT", "exit_code", cell_exit, false},
    {"RUN", "run_id", NULL, false},
    {"DETAIL", "reason", cell_detail, false},
};

static void history_usage(FILE *out)
{
    fprintf(out,
            "usage: tethys history [--job J] [--domain D] [--status S] [--since T] [--until T]\n"
            "                      [--limit N] [--cursor C | --all] [--json] [--data DIR]\n"
            "\n"
            "Runs and fires that did not run, newest first.  --domain includes its subtree;\n"
            "--status is a run status (succeeded, failed, timeout, canceled, ...) or skipped;\n"
            "--since/--until bound the scheduled time (RFC 3339).  --limit is the page size;\n"
            "--all fetches every page.\n");
}

int cli_history(int argc, char **argv)
{
    struct cli_api api = {0};
    const char *job = NULL, *domain = NULL, *status = NULL, *since = NULL, *until = NULL;
    const char *limit = NULL, *cursor = NULL;
    int all = 0;
    const struct cli_opt opts[] = {
        {"--job", NULL, CLI_VALUE, &job},       {"--domain", NULL, CLI_VALUE, &domain},
        {"--status", NULL, CLI_VALUE, &status}, {"--since", NULL, CLI_VALUE, &since},
        {"--until", NULL, CLI_VALUE, &until},   {"--limit", NULL, CLI_VALUE, &limit},
        {"--cursor", NULL, CLI_VALUE, &cursor}, {"--all", NULL, CLI_FLAG, &all},
        {NULL, NULL, CLI_FLAG, NULL},
    };
    int n_pos;
    int rc = cli_parse(argc, argv, opts, &api, NULL, 0, &n_pos, history_usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    if (all && cursor != NULL) {
        cli_error("--all and --cursor do not go together");
        return CLI_USAGE;
    }
    if ((rc = cli_api_open(&api)) != 0)
        return rc;
    json_t *items = json_array();
    json_t *next = NULL;
    char *page_cursor = cursor ? strdup(cursor) : NULL;
    for (;;) {
        struct strbuf path;
        sb_init(&path);
        sb_adds(&path, "/api/v1/history");
        client_query_add(&path, "job", job);
        client_query_add(&path, "domain", domain);
        client_query_add(&path, "status", status);
        client_query_add(&path, "since", since);
        client_query_add(&path, "until", until);
        client_query_add(&path, "limit", limit);
        client_query_add(&path, "cursor", page_cursor);
        json_t *resp = NULL;
        rc = cli_api_call(&api, "GET", sb_str(&path), NULL, NULL, &resp, NULL);
        sb_free(&path);
        free(page_cursor);
        page_cursor = NULL;
        if (rc != 0)
            break;
        json_array_extend(items, json_object_get(resp, "items"));
        json_decref(next);
        next = json_incref(json_object_get(resp, "next"));
        json_decref(resp);
        if (!all || !json_is_string(next))
            break;
        page_cursor = strdup(json_string_value(next));
    }
    if (rc == 0) {
        if (api.json) {
            json_t *out = json_pack("{s:O,s:O}", "items", items, "next", next ? next : json_null());
            cli_print_json(out);
            json_decref(out);
        } else {
            cli_table(items, history_cols, sizeof history_cols / sizeof history_cols[0]);
            if (json_is_string(next))
                fprintf(stderr, "(more: --cursor %s, or --all)\n", json_string_value(next));
        }
    }
    json_decref(next);
    json_decref(items);
    cli_api_close(&api);
    return rc;
}

/* ---- stats, alerts, executors -----------------------------------------------------------------
 */

static void stats_usage(FILE *out)
{
    fprintf(out, "usage: tethys stats [--job J] [--domain D] [--by job|domain|day] [--since T]\n"
                 "                    [--until T] [--json] [--data DIR]\n"
                 "\n"
                 "Runs, failures, timeouts and duration and lateness percentiles, grouped by job\n"
                 "(default), domain or day (UTC).\n");
}

int cli_stats(int argc, char **argv)
{
    struct cli_api api = {0};
    const char *job = NULL, *domain = NULL, *by = NULL, *since = NULL, *until = NULL;
    const struct cli_opt opts[] = {
        {"--job", NULL, CLI_VALUE, &job},     {"--domain", NULL, CLI_VALUE, &domain},
        {"--by", NULL, CLI_VALUE, &by},       {"--since", NULL, CLI_VALUE, &since},
        {"--until", NULL, CLI_VALUE, &until}, {NULL, NULL, CLI_FLAG, NULL},
    };
    int n_pos;
    int rc = cli_parse(argc, argv, opts, &api, NULL, 0, &n_pos, stats_usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    if (by != NULL && strcmp(by, "job") != 0 && strcmp(by, "domain") != 0 &&
        strcmp(by, "day") != 0) {
        cli_error("--by: \"%s\" is not job, domain or day", by);
        return CLI_USAGE;
    }
    if ((rc = cli_api_open(&api)) != 0)
        return rc;
    struct strbuf path;
    sb_init(&path);
    sb_adds(&path, "/api/v1/stats");
    client_query_add(&path, "job", job);
    client_query_add(&path, "domain", domain);
    client_query_add(&path, "since", since);
    client_query_add(&path, "until", until);
    client_query_add(&path, "group_by", by);
    json_t *resp = NULL;
    rc = cli_api_call(&api, "GET", sb_str(&path), NULL, NULL, &resp, NULL);
    if (rc == 0)
        print_list(&api, resp, "groups", NULL, 0);
    json_decref(resp);
    sb_free(&path);
    cli_api_close(&api);
    return rc;
}

static void alerts_usage(FILE *out)
{
    fprintf(out, "usage: tethys alerts [--json] [--data DIR]\n"
                 "\n"
                 "The four alert tables: abnormal jobs, timed-out shards, jobs that cannot be\n"
                 "highly available, abnormal executor resources.  Exit status 1 when any\n"
                 "alert is open, 0 when all is well.\n");
}

int cli_alerts(int argc, char **argv)
{
    static const struct {
        const char *key, *title;
    } tables[] = {
        {"abnormal_jobs", "Abnormal jobs"},
        {"timed_out_shards", "Timed-out shards"},
        {"not_highly_available", "Jobs that cannot be highly available"},
        {"abnormal_resources", "Abnormal executor resources"},
    };
    struct cli_api api = {0};
    int n_pos;
    int rc = cli_parse(argc, argv, NULL, &api, NULL, 0, &n_pos, alerts_usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    if ((rc = cli_api_open(&api)) != 0)
        return rc;
    json_t *resp = NULL;
    rc = cli_api_call(&api, "GET", "/api/v1/alerts", NULL, NULL, &resp, NULL);
    if (rc == 0) {
        size_t open = 0;
        for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
            open += json_array_size(json_object_get(resp, tables[i].key));
        if (api.json) {
            cli_print_json(resp);
        } else {
            for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
                const json_t *t = json_object_get(resp, tables[i].key);
                printf("%s%s (%zu)\n", i ? "\n" : "", tables[i].title, json_array_size(t));
                if (json_array_size(t) > 0)
                    cli_table(t, NULL, 0);
            }
        }
        rc = open > 0 ? CLI_NEGATIVE : CLI_OK;
    }
    json_decref(resp);
    cli_api_close(&api);
    return rc;
}

static void executors_usage(FILE *out)
{
    fprintf(out, "usage: tethys executors [--json] [--data DIR]\n"
                 "\n"
                 "The executors, with their capacity, runs in progress and queue.\n");
}

/* The executor's rates (runs a second), whole. */
static void cell_start_rate(const json_t *item, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.0f", json_number_value(json_object_get(item, "start_rate")));
}

static void cell_demand_rate(const json_t *item, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.0f", json_number_value(json_object_get(item, "demand_rate")));
}

int cli_executors(int argc, char **argv)
{
    struct cli_api api = {0};
    int n_pos;
    int rc = cli_parse(argc, argv, NULL, &api, NULL, 0, &n_pos, executors_usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    if ((rc = cli_api_open(&api)) != 0)
        return rc;
    json_t *resp = NULL;
    rc = cli_api_call(&api, "GET", "/api/v1/executors", NULL, NULL, &resp, NULL);
    /* the figures an operator looks at first; --json has every field */
    static const struct cli_col cols[] = {
        {"ID", "id", NULL, false},
        {"STATE", "state", NULL, false},
        {"HOST", "host", NULL, false},
        {"KIND", "kind", NULL, false},
        {"SHARDS", "shards", NULL, true},
        {"CAPACITY", "capacity", NULL, false},
        {"RUNNING", "running", NULL, false},
        {"QUEUED", "queued", NULL, false},
        {"WAITING", "waiting", NULL, true},
        {"OLDEST WAIT MS", "oldest_wait_ms", NULL, true},
        {"STARTS/S", "start_rate", cell_start_rate, true},
        {"ASKED/S", "demand_rate", cell_demand_rate, true},
        {"MISFIRED", "queue_misfires", NULL, true},
        {"OVERLOADED", "overloaded", NULL, true},
        {"SPOOLED", "spool.pending", NULL, true},
        {"EPOCH", "epoch", NULL, false},
        {"VERSION", "version", NULL, false},
    };
    if (rc == 0)
        print_list(&api, resp, "items", cols, sizeof cols / sizeof cols[0]);
    json_decref(resp);
    cli_api_close(&api);
    return rc;
}

/* ---- domain -------------------------------------------------------------------------------------
 */

static void domain_usage(FILE *out)
{
    fprintf(out, "usage: tethys domain add -f FILE\n"
                 "       tethys domain add PATH [--level N] [--max-jobs N] [--min-interval S]\n"
                 "                         [--max-shards N] [--description TEXT]\n"
                 "       tethys domain edit PATH (-f FILE | [the options of add])"
                 " [--if-version V]\n"
                 "       tethys domain list | show PATH | rm PATH\n"
                 "  (each also takes --json and --data DIR)\n"
                 "\n"
                 "Domains form a tree by path (bank/settlement is under bank); limits set on a\n"
                 "domain hold for every job in its subtree.\n");
}

struct def_opts {
    const char *file, *if_version, *description;
    const char *ints[4]; /* per command: the whole-number options */
    const char *dates;
};

static const char *const domain_int_opts[] = {"--level", "--max-jobs", "--min-interval",
                                              "--max-shards"};
static const char *const domain_int_fields[] = {"level", "max_jobs", "min_interval", "max_shards"};

/* The changes a domain's options ask for: the limits go inside "limits", merged with the
 * file's (or, for edit, the stored domain's) other limits. */
static int domain_changes(const char *sub, const struct def_opts *o, json_t *obj)
{
    (void)sub;
    if (set_int(obj, domain_int_fields[0], domain_int_opts[0], o->ints[0]) != 0)
        return CLI_USAGE;
    for (size_t i = 1; i < 4; i++) {
        if (o->ints[i] == NULL)
            continue;
        json_t *limits = json_object_get(obj, "limits");
        if (!json_is_object(limits)) {
            limits = json_object();
            json_object_set_new(obj, "limits", limits);
        }
        if (set_int(limits, domain_int_fields[i], domain_int_opts[i], o->ints[i]) != 0)
            return CLI_USAGE;
    }
    if (o->description != NULL)
        json_object_set_new(obj, "description", json_string(o->description));
    return 0;
}

/* What differs between the CLI's definition objects (domains, calendars): the rest of
 * add / edit / list / show / rm is one sequence, obj_command. */
struct obj_kind {
    const char *noun;       /* "domain" */
    const char *collection; /* "domains", the API path */
    const char *key;        /* the field naming one: "path" */
    const char *key_word;   /* how usage names it: "PATH" */
    const struct cli_col *cols;
    size_t n_cols;
    const char *edit_hint; /* what `edit` accepts, for "nothing to change" */
    void (*usage)(FILE *out);
    /* Put the field options into def (sub: "add", "edit", ...); 0 or CLI_USAGE after
     * saying why. */
    int (*changes)(const char *sub, const struct def_opts *o, json_t *def);
};

/* Run sub ("add", "edit", "list", "show", "rm") of kind k against the server, with the
 * connection options parsed into api (opened and closed here): def holds
 * the definition or the changes (owned by the caller), name the positional argument
 * (NULL for list, and for add from a file).  Returns the CLI exit status. */
static int obj_command(const struct obj_kind *k, struct cli_api *api, const char *sub,
                       const struct def_opts *o, const char *name, json_t *def)
{
    int rc = cli_api_open(api);
    if (rc != 0)
        return rc;
    struct strbuf path;
    sb_init(&path);
    object_path(&path, k->collection,
                strcmp(sub, "add") == 0 || strcmp(sub, "list") == 0 ? NULL : name);
    json_t *resp = NULL;
    if (strcmp(sub, "list") == 0) {
        json_t *items = NULL;
        rc = cli_api_list(api, sb_str(&path), 0, &items, NULL);
        if (rc == 0) {
            resp = json_pack("{s:o, s:n}", "items", items, "next");
            print_list(api, resp, "items", k->cols, k->n_cols);
        }
    } else if (strcmp(sub, "show") == 0) {
        rc = show_one(api, sb_str(&path));
    } else if (strcmp(sub, "rm") == 0) {
        rc = cli_api_call(api, "DELETE", sb_str(&path), NULL, o->if_version, &resp, NULL);
        if (rc == 0)
            report(api, resp, "%s \"%s\" removed", k->noun, name);
    } else if (strcmp(sub, "add") == 0) {
        rc = cli_api_call(api, "POST", sb_str(&path), def, NULL, &resp, NULL);
        const json_t *added = json_object_get(def, k->key);
        if (rc == 0)
            report(api, resp, "%s \"%s\" added", k->noun,
                   json_is_string(added) ? json_string_value(added) : "?");
    } else if (o->file != NULL) { /* edit: replace with the file */
        rc = cli_api_call(api, "PUT", sb_str(&path), def, o->if_version, &resp, NULL);
        if (rc == 0)
            report(api, resp, "%s \"%s\" replaced", k->noun, name);
    } else { /* edit: change the fields given */
        json_object_del(def, k->key);
        if (json_object_size(def) == 0) {
            cli_error("%s edit: nothing to change (give %s)", k->noun, k->edit_hint);
            rc = CLI_USAGE;
        } else {
            rc = put_changed(api, sb_str(&path), def, o->if_version, &resp);
            if (rc == 0)
                report(api, resp, "%s \"%s\" updated", k->noun, name);
        }
    }
    json_decref(resp);
    sb_free(&path);
    cli_api_close(api);
    return rc;
}

/*
 * `tethys domain|calendar SUB ...`: parse argv (SUB first) with opts (which fill *o), load
 * -f FILE, check the name, apply the field options and run the request.  The exit status.
 */
static int obj_main(const struct obj_kind *k, const struct cli_opt *opts, struct def_opts *o,
                    int argc, char **argv)
{
    if (argc < 1) {
        k->usage(stderr);
        return CLI_USAGE;
    }
    const char *sub = argv[0];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        k->usage(stdout);
        return CLI_OK;
    }
    bool known = strcmp(sub, "add") == 0 || strcmp(sub, "edit") == 0 || strcmp(sub, "list") == 0 ||
                 strcmp(sub, "show") == 0 || strcmp(sub, "rm") == 0;
    if (!known) {
        cli_error("unknown %s command \"%s\"", k->noun, sub);
        k->usage(stderr);
        return CLI_USAGE;
    }
    struct cli_api api = {0};
    const char *pos[1] = {NULL};
    int n_pos;
    int rc = cli_parse(argc - 1, argv + 1, opts, &api, pos, 1, &n_pos, k->usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    bool is_add = strcmp(sub, "add") == 0, is_list = strcmp(sub, "list") == 0;
    if (!is_list && !(is_add && o->file != NULL) && n_pos == 0) {
        cli_error("%s %s: which %s? give its %s", k->noun, sub, k->noun, k->key_word);
        return CLI_USAGE;
    }
    if (is_list && n_pos > 0) {
        cli_error("%s list takes no %s", k->noun, k->key_word);
        return CLI_USAGE;
    }
    json_t *def = NULL;
    if (o->file != NULL && (def = load_definition(o->file, &rc)) == NULL)
        return rc;
    if (def == NULL)
        def = json_object();
    if ((n_pos > 0 && (is_add || strcmp(sub, "edit") == 0) &&
         check_name(def, k->key, pos[0], o->file ? o->file : k->noun) != 0) ||
        k->changes(sub, o, def) != 0) {
        json_decref(def);
        return CLI_USAGE;
    }
    rc = obj_command(k, &api, sub, o, n_pos > 0 ? pos[0] : NULL, def);
    json_decref(def);
    return rc;
}

int cli_domain(int argc, char **argv)
{
    struct def_opts o = {0};
    const struct cli_opt opts[] = {
        {"--file", "-f", CLI_VALUE, &o.file},
        {"--if-version", NULL, CLI_VALUE, &o.if_version},
        {"--description", NULL, CLI_VALUE, &o.description},
        {"--level", NULL, CLI_VALUE, &o.ints[0]},
        {"--max-jobs", NULL, CLI_VALUE, &o.ints[1]},
        {"--min-interval", NULL, CLI_VALUE, &o.ints[2]},
        {"--max-shards", NULL, CLI_VALUE, &o.ints[3]},
        {NULL, NULL, CLI_FLAG, NULL},
    };
    static const struct cli_col cols[] = {
        {"PATH", "path", NULL, false},
        {"LEVEL", "level", NULL, false},
        {"MAX JOBS", "limits.max_jobs", NULL, true},
        {"MIN INTERVAL", "limits.min_interval", NULL, true},
        {"MAX SHARDS", "limits.max_shards", NULL, true},
        {"DESCRIPTION", "description", NULL, true},
    };
    static const struct obj_kind kind = {
        .noun = "domain",
        .collection = "domains",
        .key = "path",
        .key_word = "PATH",
        .cols = cols,
        .n_cols = sizeof cols / sizeof cols[0],
        .edit_hint = "-f FILE or a field option",
        .usage = domain_usage,
        .changes = domain_changes,
    };
    return obj_main(&kind, opts, &o, argc, argv);
}

/* ---- calendar
 * ------------------------------------------------------------------------------------ */

static void calendar_usage(FILE *out)
{
    fprintf(out,
            "usage: tethys calendar add -f FILE\n"
            "       tethys calendar add NAME --dates 2026-01-01,2026-02-17 [--description TEXT]\n"
            "       tethys calendar edit NAME (-f FILE | [--dates LIST] [--description TEXT])"
            " [--if-version V]\n"
            "       tethys calendar list | show NAME | rm NAME\n"
            "  (each also takes --json and --data DIR)\n"
            "\n"
            "A calendar is a named set of dates (exchange holidays, month ends) that jobs\n"
            "skip, or run only on.  --dates replaces the whole set.\n");
}

static void cell_count(const json_t *it, char *buf, size_t cap)
{
    snprintf(buf, cap, "%zu", json_array_size(json_object_get(it, "dates")));
}

static json_t *date_list(const char *text)
{
    json_t *a = json_array();
    char *copy = strdup(text), *save = NULL;
    for (char *d = strtok_r(copy, ", ", &save); d != NULL; d = strtok_r(NULL, ", ", &save))
        json_array_append_new(a, json_string(d));
    free(copy);
    return a;
}

/* The dates and description options of `calendar add|edit`. */
static int calendar_changes(const char *sub, const struct def_opts *o, json_t *def)
{
    if (strcmp(sub, "add") == 0 && o->file == NULL && o->dates == NULL) {
        cli_error("calendar add: give -f FILE, or --dates with the calendar's dates");
        return CLI_USAGE;
    }
    if (o->dates != NULL)
        json_object_set_new(def, "dates", date_list(o->dates));
    if (o->description != NULL)
        json_object_set_new(def, "description", json_string(o->description));
    return 0;
}

int cli_calendar(int argc, char **argv)
{
    struct def_opts o = {0};
    const struct cli_opt opts[] = {
        {"--file", "-f", CLI_VALUE, &o.file},
        {"--if-version", NULL, CLI_VALUE, &o.if_version},
        {"--description", NULL, CLI_VALUE, &o.description},
        {"--dates", NULL, CLI_VALUE, &o.dates},
        {NULL, NULL, CLI_FLAG, NULL},
    };
    static const struct cli_col cols[] = {
        {"NAME", "name", NULL, false},
        {"DATES", "dates", cell_count, false},
        {"DESCRIPTION", "description", NULL, true},
    };
    static const struct obj_kind kind = {
        .noun = "calendar",
        .collection = "calendars",
        .key = "name",
        .key_word = "NAME",
        .cols = cols,
        .n_cols = sizeof cols / sizeof cols[0],
        .edit_hint = "-f FILE, --dates or --description",
        .usage = calendar_usage,
        .changes = calendar_changes,
    };
    return obj_main(&kind, opts, &o, argc, argv);
}
