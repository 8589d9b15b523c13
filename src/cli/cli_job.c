/*
 * cli_job.c - `tethys job add|edit|show|list|rm|enable|disable|run`.
 *
 * A job is defined by a JSON or YAML file (-f, every field) or, for the common case, by
 * options that map one-to-one onto fields (--cron is "schedule", --tz "time_zone", ...,
 * table below); `--set field=value` reaches any other field, including nested ones
 * (--set env.LANG=C).  Options given with -f override the file's values.
 *
 * `edit -f` replaces the job (PUT); `edit` with options sends only the changes as a JSON
 * merge patch (PATCH, RFC 7386), so two people editing different fields do not undo
 * each other.  --if-version V makes either conditional (If-Match), for scripts that
 * read, decide and write.
 *
 * `run --wait` polls each run (GET /runs/{id}, twice a second, one connection) until it
 * has ended, follows retries when the server names them, and exits 1 if any run did not
 * succeed, or a shard did not start at all: a script can `tethys job run nightly --wait &&
 * deploy`.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_file.h"
#include "../core/strbuf.h"

#define WAIT_POLL_MS 500
#define RUNS_MAX     10000

enum field_kind { F_STRING, F_INT, F_LIST /* "a,b,c": an array of strings; "": [] */ };

/* Options that set one field each. */
static const struct {
    const char *option;
    const char *field;
    enum field_kind kind;
    const char *help;
} field_opts[] = {
    {"--cron", "schedule", F_STRING, "cron expression (spec: `tethys cron check`)"},
    {"--command", "command", F_STRING, "shell command, run by /bin/sh -c"},
    {"--tz", "time_zone", F_STRING, "IANA time zone of the schedule (default UTC)"},
    {"--shards", "shards", F_INT, "number of shards"},
    {"--shard-params", "shard_params", F_STRING, "parameter per shard: 0=beijing,1=shanghai"},
    {"--param", "job_param", F_STRING, "the job parameter"},
    {"--domain", "domain", F_STRING, "domain path (bank/settlement)"},
    {"--level", "level", F_INT, "job level, 0-9"},
    {"--description", "description", F_STRING, "free text"},
    {"--owner", "owner", F_STRING, "who to ask about it"},
    {"--timeout", "timeout", F_INT, "seconds after which a run is killed"},
    {"--retries", "retries", F_INT, "extra attempts after a failure"},
    {"--workdir", "workdir", F_STRING, "working directory of the command"},
    {"--strategy", "strategy", F_STRING, "shard placement in a cluster: even, hash or local"},
    {"--prefer", "prefer", F_LIST, "executors and labels first: exec-1,zone=east"},
};

#define N_FIELD_OPTS (sizeof field_opts / sizeof field_opts[0])

struct job_opts {
    const char *field_vals[N_FIELD_OPTS];
    const char *file;
    const char *if_version;
    const char *domain_filter;
    const char *state;  /* list: enabled | disabled */
    const char *search; /* list: text in the name or description */
    const char *limit;  /* list: at most this many */
    const char *cursor; /* list: after the page that gave this "next" */
    const char *shards;
    struct cli_list set;
    struct cli_list unset;
    struct cli_list secret;
    int disabled;
    int wait;
    int follow;
};

static void print_field_opts(FILE *out)
{
    for (size_t i = 0; i < N_FIELD_OPTS; i++)
        fprintf(out, "  %-15s %-13s %s\n", field_opts[i].option, field_opts[i].field,
                field_opts[i].help);
}

static void job_usage(FILE *out)
{
    fprintf(out,
            "usage: tethys job add -f FILE [field options]\n"
            "       tethys job add NAME --cron EXPR --command CMD [field options] [--disabled]\n"
            "       tethys job edit NAME -f FILE [--if-version V]          (replace)\n"
            "       tethys job edit NAME [field options] [--unset F] [--if-version V]  (change)\n"
            "       tethys job show NAME\n"
            "       tethys job list [--domain D] [--state enabled|disabled] [--search TEXT]\n"
            "                       [--limit N [--cursor C]]\n"
            "       tethys job rm NAME [--if-version V]\n"
            "       tethys job enable|disable NAME\n"
            "       tethys job run NAME [--shards 0,2] [--wait]\n"
            "       tethys job history NAME | diff NAME V1 [V2] | restore NAME V [--if-version N]\n"
            "  (each also takes --json and --data DIR)\n"
            "\n"
            "field options (option, field, meaning):\n");
    print_field_opts(out);
    fprintf(out, "  --set F=V       any field     V is read as JSON when it parses (42, true,\n"
                 "                                [1,2], '\"007\"'), else as text; F may be a.b\n"
                 "                                for a nested field\n"
                 "  --unset F       any field     (edit) remove a field: back to its default\n"
                 "  --secret NAME   secret_env    NAME's value from this command's environment;\n"
                 "  --secret NAME=@FILE           or from FILE (@- standard input), without its\n"
                 "                                last newline. Never on the command line, where\n"
                 "                                other users' ps could read it.\n"
                 "FILE is JSON or YAML (\"-\" reads standard input); options override it.\n");
}

/* --secret NAME (the value of NAME in this process's environment) or NAME=@FILE (the file,
 * "-" standard input, without one final newline) into obj's secret_env.  A literal value
 * is refused: it would sit in the process list for every local user to read.  0, or -1
 * after saying why. */
static int set_secret(json_t *obj, const char *arg)
{
    const char *eq = strchr(arg, '=');
    size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
    char name[257];
    if (name_len == 0 || name_len >= sizeof name) {
        cli_error("--secret %s: give a variable name of 1 to 256 bytes", arg);
        return -1;
    }
    memcpy(name, arg, name_len);
    name[name_len] = '\0';
    struct strbuf value;
    sb_init(&value);
    if (eq == NULL) {
        const char *v = getenv(name);
        if (v == NULL) {
            cli_error("--secret %s: %s is not set in this environment (export it, or give "
                      "%s=@FILE)",
                      name, name, name);
            return -1;
        }
        sb_adds(&value, v);
    } else if (eq[1] == '@') {
        struct ty_err err;
        if (cli_file_read(eq + 2, &value, &err) != 0) {
            cli_error("--secret %s: %s", name, err.msg);
            sb_free(&value);
            return -1;
        }
        if (value.len > 0 && sb_str(&value)[value.len - 1] == '\n')
            sb_truncate(&value, value.len - 1);
    } else {
        cli_error("--secret %s: a value on the command line can be read by every local user "
                  "(ps); give --secret %s with the value in the environment, or %s=@FILE",
                  name, name, name);
        return -1;
    }
    json_t *v = json_stringn(sb_str(&value), value.len);
    sb_free(&value);
    if (v == NULL) {
        cli_error("--secret %s: the value is not UTF-8 text without NUL bytes", name);
        return -1;
    }
    json_t *env = json_object_get(obj, "secret_env");
    if (!json_is_object(env)) {
        env = json_object();
        json_object_set_new(obj, "secret_env", env);
    }
    json_object_set_new(env, name, v);
    return 0;
}

/* "a,b,c" as ["a", "b", "c"] ("" as []); entries are kept as written, for the server to
 * judge.  New reference, or NULL when the text is not UTF-8 (or out of memory). */
static json_t *split_list(const char *text)
{
    json_t *list = json_array();
    const char *p = text;
    while (list != NULL && *text != '\0') {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (json_array_append_new(list, json_stringn(p, n)) != 0) {
            json_decref(list);
            return NULL;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    return list;
}

/* Apply the field options, --set and --unset to obj.  0 or an exit status. */
static int apply_fields(const struct job_opts *o, json_t *obj)
{
    for (size_t i = 0; i < N_FIELD_OPTS; i++) {
        const char *v = o->field_vals[i];
        if (v == NULL)
            continue;
        if (field_opts[i].kind == F_STRING) {
            json_t *s = json_string(v);
            if (s == NULL) {
                cli_error("%s: not valid UTF-8 text", field_opts[i].option);
                return CLI_USAGE;
            }
            json_object_set_new(obj, field_opts[i].field, s);
            continue;
        }
        if (field_opts[i].kind == F_LIST) {
            json_t *list = split_list(v);
            if (list == NULL) {
                cli_error("%s: not valid UTF-8 text", field_opts[i].option);
                return CLI_USAGE;
            }
            json_object_set_new(obj, field_opts[i].field, list);
            continue;
        }
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0') {
            cli_error("%s: \"%s\" is not a whole number", field_opts[i].option, v);
            return CLI_USAGE;
        }
        json_object_set_new(obj, field_opts[i].field, json_integer(n));
    }
    if (o->disabled)
        json_object_set_new(obj, "enabled", json_false());
    for (int i = 0; i < o->set.n; i++)
        if (cli_set_field(obj, o->set.v[i], "--set") != 0)
            return CLI_USAGE;
    for (int i = 0; i < o->secret.n; i++)
        if (set_secret(obj, o->secret.v[i]) != 0)
            return CLI_USAGE;
    for (int i = 0; i < o->unset.n; i++) {
        struct strbuf a;
        sb_init(&a);
        sb_addf(&a, "%s=null", o->unset.v[i]);
        int rc = cli_set_field(obj, sb_str(&a), "--unset");
        sb_free(&a);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const char *version_of(const json_t *job, const char *etag, char *buf, size_t cap)
{
    const json_t *v = json_object_get(job, "version");
    if (json_is_integer(v))
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    else
        snprintf(buf, cap, "%s", etag ? etag : "?");
    return buf;
}

static const char *name_of(const json_t *obj, const char *fallback)
{
    const char *s = json_string_value(json_object_get(obj, "name"));
    return s ? s : fallback;
}

/* "/api/v1/jobs[/NAME[/suffix]]" */
static void job_path(struct strbuf *sb, const char *name, const char *suffix)
{
    sb_adds(sb, "/api/v1/jobs");
    if (name != NULL)
        client_path_add(sb, name);
    if (suffix != NULL)
        sb_adds(sb, suffix);
}

/* ---- add / edit -------------------------------------------------------------------------- */

/* Adding the jobs of a file: each as it is answered. */
struct adding {
    struct cli_api *api;
    json_t *list;
    size_t failed;
    int rc;
};

static json_t *adding_item(void *arg, size_t i)
{
    const struct adding *a = arg;
    return json_pack("{s:s, s:O}", "op", "create", "job", json_array_get(a->list, i));
}

static void adding_result(void *arg, size_t i, int rc, const struct ty_err *err, json_int_t version)
{
    struct adding *a = arg;
    const char *name = name_of(json_array_get(a->list, i), "?");
    if (rc != 0) {
        cli_error("%s", err->msg);
        a->failed++;
        a->rc = cli_exit_for(rc);
    } else if (a->api->json) {
        json_t *o = json_pack("{s:s, s:I}", "name", name, "version", version);
        cli_print_json(o);
        json_decref(o);
    } else {
        printf("job \"%s\" added (version %" JSON_INTEGER_FORMAT ")\n", name, version);
    }
}

/*
 * `job add -f FILE` with several jobs (what `tethys export` writes): add each (in batches,
 * POST /jobs:batch), report each, and exit non-zero when any was refused (the others are
 * still added).
 */
static int add_many(struct cli_api *api, struct job_opts *o, json_t *list)
{
    struct adding a = {api, list, 0, 0};
    size_t i;
    json_t *def;
    json_array_foreach(list, i, def)
    {
        if (apply_fields(o, def) != 0)
            return CLI_USAGE;
    }
    int rc = cli_api_open(api);
    if (rc != 0)
        return rc;
    struct cli_batch b = {json_array_size(list), adding_item, adding_result, &a};
    rc = cli_batch_send(api, &b);
    if (a.failed > 0)
        cli_error("%zu of %zu jobs in %s were not added", a.failed, json_array_size(list), o->file);
    return rc != 0 ? rc : a.rc;
}

static int cmd_add(struct cli_api *api, struct job_opts *o, const char *name)
{
    int rc = 0;
    json_t *def = NULL;
    if (o->file != NULL) {
        struct ty_err err;
        ty_err_clear(&err);
        json_t *list = NULL;
        if ((rc = cli_file_load_list(o->file, &list, &err)) != 0) {
            cli_error("%s", err.msg);
            return cli_exit_for(rc);
        }
        if (json_array_size(list) == 0) {
            cli_error("%s: no job in the file", o->file);
            json_decref(list);
            return CLI_USAGE;
        }
        if (json_array_size(list) != 1) {
            if (name != NULL) {
                cli_error("%s holds %zu jobs; name none on the command line to add them all",
                          o->file, json_array_size(list));
                json_decref(list);
                return CLI_USAGE;
            }
            rc = add_many(api, o, list);
            json_decref(list);
            return rc;
        }
        def = json_incref(json_array_get(list, 0));
        json_decref(list);
    } else if (name == NULL) {
        cli_error("job add: give -f FILE, or the job's NAME and its options");
        return CLI_USAGE;
    } else {
        def = json_object();
    }
    const json_t *fname = json_object_get(def, "name");
    if (name != NULL && fname != NULL &&
        (!json_is_string(fname) || strcmp(json_string_value(fname), name) != 0)) {
        cli_error("%s: name is \"%s\", but the command names \"%s\"", o->file,
                  json_is_string(fname) ? json_string_value(fname) : "?", name);
        json_decref(def);
        return CLI_USAGE;
    }
    if (name != NULL)
        json_object_set_new(def, "name", json_string(name));
    if ((rc = apply_fields(o, def)) != 0 || (rc = cli_api_open(api)) != 0) {
        json_decref(def);
        return rc;
    }
    json_t *resp = NULL;
    char *etag = NULL;
    rc = cli_api_call(api, "POST", "/api/v1/jobs", def, NULL, &resp, &etag);
    if (rc == 0) {
        char v[32];
        if (api->json)
            cli_print_json(resp);
        else
            printf("job \"%s\" added (version %s)\n", name_of(resp, name_of(def, "?")),
                   version_of(resp, etag, v, sizeof v));
    }
    json_decref(resp);
    json_decref(def);
    free(etag);
    return rc;
}

static int cmd_edit(struct cli_api *api, struct job_opts *o, const char *name)
{
    int rc = 0;
    json_t *def = NULL;
    const char *method = "PATCH";
    if (o->file != NULL) {
        struct ty_err err;
        ty_err_clear(&err);
        if ((rc = cli_file_load(o->file, &def, &err)) != 0) {
            cli_error("%s", err.msg);
            return cli_exit_for(rc);
        }
        const json_t *fname = json_object_get(def, "name");
        if (fname != NULL &&
            (!json_is_string(fname) || strcmp(json_string_value(fname), name) != 0)) {
            cli_error("%s: name is \"%s\", but the command names \"%s\" (renaming is not "
                      "supported)",
                      o->file, json_is_string(fname) ? json_string_value(fname) : "?", name);
            json_decref(def);
            return CLI_USAGE;
        }
        json_object_set_new(def, "name", json_string(name));
        json_object_del(def, "version");
        json_object_del(def, "state");
        method = "PUT";
    } else {
        def = json_object();
    }
    if ((rc = apply_fields(o, def)) != 0) {
        json_decref(def);
        return rc;
    }
    if (o->file == NULL && json_object_size(def) == 0) {
        cli_error("job edit: nothing to change (give -f FILE, --set field=value, --unset "
                  "field or a field option)");
        json_decref(def);
        return CLI_USAGE;
    }
    if ((rc = cli_api_open(api)) != 0) {
        json_decref(def);
        return rc;
    }
    struct strbuf path;
    sb_init(&path);
    job_path(&path, name, NULL);
    json_t *resp = NULL;
    char *etag = NULL;
    rc = cli_api_call(api, method, sb_str(&path), def, o->if_version, &resp, &etag);
    if (rc == 0) {
        char v[32];
        if (api->json)
            cli_print_json(resp);
        else
            printf("job \"%s\" %s (version %s)\n", name, o->file ? "replaced" : "updated",
                   version_of(resp, etag, v, sizeof v));
    }
    json_decref(resp);
    json_decref(def);
    free(etag);
    sb_free(&path);
    return rc;
}

/* ---- show / list / rm / enable / disable ------------------------------------------------------
 */

/* "shards" is a count, or an object with one ({"count": 4, "params": ...}) */
static void cell_shards(const json_t *it, char *buf, size_t cap)
{
    if (json_is_object(json_object_get(it, "shards")))
        cli_cell_text(it, "shards.count", buf, cap);
    else
        cli_cell_text(it, "shards", buf, cap);
}

static int cmd_show(struct cli_api *api, const char *name)
{
    int rc = cli_api_open(api);
    if (rc != 0)
        return rc;
    struct strbuf path;
    sb_init(&path);
    job_path(&path, name, NULL);
    json_t *resp = NULL;
    char *etag = NULL;
    rc = cli_api_call(api, "GET", sb_str(&path), NULL, NULL, &resp, &etag);
    if (rc == 0) {
        if (!json_is_integer(json_object_get(resp, "version")) && etag != NULL)
            json_object_set_new(resp, "version", json_string(etag));
        if (api->json)
            cli_print_json(resp);
        else
            cli_show(resp);
    }
    json_decref(resp);
    free(etag);
    sb_free(&path);
    return rc;
}

/* `job list`: every job matching the filters (following the server's pages), or the
 * first --limit of them from --cursor on; the JSON form carries "next" to go on with. */
static int cmd_list(struct cli_api *api, const struct job_opts *o)
{
    static const struct cli_col cols[] = {
        {"NAME", "name", NULL, false},
        {"DOMAIN", "domain", NULL, true},
        {"SCHEDULE", "schedule", NULL, false},
        {"TZ", "time_zone", NULL, true},
        {"SHARDS", "shards", cell_shards, false},
        {"ENABLED", "enabled", NULL, false},
        {"NEXT FIRE", "state.next_fire", NULL, true},
        {"RUNNING", "state.running", NULL, true},
        {"VERSION", "version", NULL, true},
    };
    size_t limit = 0;
    if (o->limit != NULL) {
        char *end;
        errno = 0;
        long long v = strtoll(o->limit, &end, 10);
        if (errno != 0 || end == o->limit || *end != '\0' || v < 1) {
            cli_error("--limit: \"%s\" is not a number of jobs (1 or more)", o->limit);
            return CLI_USAGE;
        }
        limit = (size_t)v;
    }
    if (o->state != NULL && strcmp(o->state, "enabled") != 0 && strcmp(o->state, "disabled") != 0) {
        cli_error("--state: \"%s\" is not a job state (enabled or disabled)", o->state);
        return CLI_USAGE;
    }
    int rc = cli_api_open(api);
    if (rc != 0)
        return rc;
    struct strbuf path;
    sb_init(&path);
    job_path(&path, NULL, NULL);
    client_query_add(&path, "domain", o->domain_filter);
    client_query_add(&path, "state", o->state);
    client_query_add(&path, "q", o->search);
    client_query_add(&path, "cursor", o->cursor);
    json_t *items = NULL;
    char *next = NULL;
    rc = cli_api_list(api, sb_str(&path), limit, &items, &next);
    if (rc == 0 && api->json) {
        json_t *out = json_pack("{s:o, s:s?}", "items", items, "next", next);
        if (next == NULL)
            json_object_set_new(out, "next", json_null());
        cli_print_json(out);
        json_decref(out);
    } else if (rc == 0) {
        cli_table(items, cols, sizeof cols / sizeof cols[0]);
        if (next != NULL)
            fprintf(stderr, "(more jobs: --cursor %s shows the next ones)\n", next);
        json_decref(items);
    }
    free(next);
    sb_free(&path);
    return rc;
}

static int cmd_simple(struct cli_api *api, const char *name, const char *method, const char *suffix,
                      const char *if_version, const char *done)
{
    int rc = cli_api_open(api);
    if (rc != 0)
        return rc;
    struct strbuf path;
    sb_init(&path);
    job_path(&path, name, suffix);
    json_t *resp = NULL;
    rc = cli_api_call(api, method, sb_str(&path), NULL, if_version, &resp, NULL);
    if (rc == 0) {
        if (api->json) {
            if (resp != NULL)
                cli_print_json(resp);
        } else {
            printf("job \"%s\" %s\n", name, done);
        }
    }
    json_decref(resp);
    sb_free(&path);
    return rc;
}

/* ---- run ----------------------------------------------------------------------------------------
 */

static json_t *parse_shards(const char *text)
{
    json_t *a = json_array();
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        long long n = strtoll(p, &end, 10);
        if (end == p || errno != 0 || n < 0 || (*end != ',' && *end != '\0')) {
            cli_error("--shards: \"%s\" is not a list of shard numbers (0,2,5)", text);
            json_decref(a);
            return NULL;
        }
        json_array_append_new(a, json_integer(n));
        p = *end == ',' ? end + 1 : end;
    }
    if (json_array_size(a) == 0) {
        cli_error("--shards: no shard given");
        json_decref(a);
        return NULL;
    }
    return a;
}

static bool run_ended(const char *status)
{
    static const char *const going[] = {"queued",   "running", "canceling",
                                        "starting", "pending", NULL};
    for (const char *const *g = going; *g; g++)
        if (strcmp(status, *g) == 0)
            return false;
    return true;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wait for one run (and its retries) to end.  *run is replaced by the final run object. */
static int wait_run(struct cli_api *api, const char *run_id, json_t **final)
{
    char id[128];
    snprintf(id, sizeof id, "%s", run_id);
    for (;;) {
        struct strbuf path;
        sb_init(&path);
        sb_adds(&path, "/api/v1/runs");
        client_path_add(&path, id);
        json_t *run = NULL;
        int rc = cli_api_call(api, "GET", sb_str(&path), NULL, NULL, &run, NULL);
        sb_free(&path);
        if (rc != 0)
            return rc;
        const char *status = json_string_value(json_object_get(run, "status"));
        const char *retry = json_string_value(json_object_get(run, "retry_run_id"));
        if (status != NULL && run_ended(status) && retry != NULL && strcmp(retry, id) != 0) {
            snprintf(id, sizeof id, "%s", retry); /* a retry follows: wait for it instead */
            json_decref(run);
            continue;
        }
        if (status != NULL && run_ended(status)) {
            *final = run;
            return 0;
        }
        json_decref(run);
        sleep_ms(WAIT_POLL_MS);
    }
}

static int cmd_run(struct cli_api *api, const char *name, const struct job_opts *o)
{
    json_t *body = NULL;
    if (o->shards != NULL) {
        json_t *shards = parse_shards(o->shards);
        if (shards == NULL)
            return CLI_USAGE;
        body = json_pack("{s:o}", "shards", shards);
    }
    int rc = cli_api_open(api);
    if (rc != 0) {
        json_decref(body);
        return rc;
    }
    struct strbuf path;
    sb_init(&path);
    job_path(&path, name, "/run");
    json_t *resp = NULL;
    rc = cli_api_call(api, "POST", sb_str(&path), body, NULL, &resp, NULL);
    sb_free(&path);
    json_decref(body);
    if (rc != 0)
        return rc;
    const json_t *runs = json_object_get(resp, "runs");
    /* shards that did not start (their previous run still going, a full queue) */
    const json_t *skipped = json_object_get(resp, "skipped");
    size_t k;
    const json_t *sk;
    json_array_foreach(skipped, k, sk)
    {
        char shard[32], reason[64];
        cli_cell_text(sk, "shard", shard, sizeof shard);
        cli_cell_text(sk, "reason", reason, sizeof reason);
        cli_error("shard %s of job \"%s\" was not started (%s); see `tethys history --job %s`",
                  shard, name, reason, name);
    }
    size_t not_started = json_array_size(skipped);
    if (!o->wait && api->json)
        cli_print_json(resp);
    if (!api->json) { /* one line a run started, id first (with --wait, a table follows) */
        size_t i;
        const json_t *r;
        json_array_foreach(runs, i, r)
        {
            char id[64], shard[32];
            cli_cell_text(r, "run_id", id, sizeof id);
            cli_cell_text(r, "shard", shard, sizeof shard);
            printf("%s  shard %s%s\n", id, shard, o->wait ? "  started" : "");
        }
        fflush(stdout);
    }
    if (!o->wait) {
        json_decref(resp);
        return not_started > 0 ? CLI_NEGATIVE : CLI_OK;
    }
    json_t *finals = json_array();
    size_t failed = 0;
    for (size_t i = 0; i < json_array_size(runs) && i < RUNS_MAX; i++) {
        const char *id = json_string_value(json_object_get(json_array_get(runs, i), "run_id"));
        json_t *final = NULL;
        if (id == NULL)
            continue;
        if ((rc = wait_run(api, id, &final)) != 0)
            break;
        const char *status = json_string_value(json_object_get(final, "status"));
        failed += strcmp(status, "succeeded") != 0;
        json_array_append_new(finals, final);
    }
    if (rc == 0) {
        if (api->json) {
            json_t *fire = json_object_get(resp, "fire_id");
            json_t *out =
                json_pack("{s:O,s:O}", "fire_id", fire ? fire : json_null(), "runs", finals);
            cli_print_json(out);
            json_decref(out);
        } else {
            static const struct cli_col cols[] = {
                {"RUN", "run_id", NULL, false},    {"SHARD", "shard", NULL, false},
                {"STATUS", "status", NULL, false}, {"EXIT", "exit_code", NULL, true},
                {"SIGNAL", "signal", NULL, true},  {"ERROR", "error", NULL, true},
            };
            cli_table(finals, cols, sizeof cols / sizeof cols[0]);
        }
        rc = failed > 0 || not_started > 0 ? CLI_NEGATIVE : CLI_OK;
    }
    json_decref(finals);
    json_decref(resp);
    return rc;
}

/* ---- dispatch
 * ------------------------------------------------------------------------------------ */

int cli_job(int argc, char **argv)
{
    if (argc < 1) {
        job_usage(stderr);
        return CLI_USAGE;
    }
    const char *sub = argv[0];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        job_usage(stdout);
        return CLI_OK;
    }
    if (strcmp(sub, "history") == 0 || strcmp(sub, "diff") == 0 || strcmp(sub, "restore") == 0)
        return cli_job_versions(argc, argv); /* cli_history.c */
    static const char *const subs[] = {"add",    "edit",    "show", "list", "rm",
                                       "enable", "disable", "run",  NULL};
    bool known = false;
    for (const char *const *s = subs; *s; s++)
        known = known || strcmp(sub, *s) == 0;
    if (!known) {
        cli_error("unknown job command \"%s\"", sub);
        job_usage(stderr);
        return CLI_USAGE;
    }
    bool is_add = strcmp(sub, "add") == 0, is_edit = strcmp(sub, "edit") == 0;
    bool is_list = strcmp(sub, "list") == 0, is_run = strcmp(sub, "run") == 0;

    struct job_opts o;
    memset(&o, 0, sizeof o);
    struct cli_opt opts[N_FIELD_OPTS + 12];
    size_t n = 0;
    if (is_add || is_edit) {
        for (size_t i = 0; i < N_FIELD_OPTS; i++)
            opts[n++] = (struct cli_opt){field_opts[i].option, NULL, CLI_VALUE, &o.field_vals[i]};
        opts[n++] = (struct cli_opt){"--file", "-f", CLI_VALUE, &o.file};
        opts[n++] = (struct cli_opt){"--set", NULL, CLI_LIST, &o.set};
        opts[n++] = (struct cli_opt){"--secret", NULL, CLI_LIST, &o.secret};
    }
    if (is_add)
        opts[n++] = (struct cli_opt){"--disabled", NULL, CLI_FLAG, &o.disabled};
    if (is_edit)
        opts[n++] = (struct cli_opt){"--unset", NULL, CLI_LIST, &o.unset};
    if (is_edit || strcmp(sub, "rm") == 0)
        opts[n++] = (struct cli_opt){"--if-version", NULL, CLI_VALUE, &o.if_version};
    if (is_list) {
        opts[n++] = (struct cli_opt){"--domain", NULL, CLI_VALUE, &o.domain_filter};
        opts[n++] = (struct cli_opt){"--state", NULL, CLI_VALUE, &o.state};
        opts[n++] = (struct cli_opt){"--search", NULL, CLI_VALUE, &o.search};
        opts[n++] = (struct cli_opt){"--limit", NULL, CLI_VALUE, &o.limit};
        opts[n++] = (struct cli_opt){"--cursor", NULL, CLI_VALUE, &o.cursor};
    }
    if (is_run) {
        opts[n++] = (struct cli_opt){"--shards", NULL, CLI_VALUE, &o.shards};
        opts[n++] = (struct cli_opt){"--wait", NULL, CLI_FLAG, &o.wait};
    }
    opts[n] = (struct cli_opt){NULL, NULL, CLI_FLAG, NULL};

    struct cli_api api = {0};
    const char *pos[1] = {NULL};
    int n_pos;
    int rc = cli_parse(argc - 1, argv + 1, opts, &api, pos, is_list ? 0 : 1, &n_pos, job_usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    if (!is_list && !is_add && n_pos == 0) {
        cli_error("job %s: which job? give its NAME", sub);
        return CLI_USAGE;
    }
    const char *name = n_pos > 0 ? pos[0] : NULL;
    if (is_add)
        rc = cmd_add(&api, &o, name);
    else if (is_edit)
        rc = cmd_edit(&api, &o, name);
    else if (strcmp(sub, "show") == 0)
        rc = cmd_show(&api, name);
    else if (is_list)
        rc = cmd_list(&api, &o);
    else if (strcmp(sub, "rm") == 0)
        rc = cmd_simple(&api, name, "DELETE", NULL, o.if_version, "removed");
    else if (strcmp(sub, "enable") == 0)
        rc = cmd_simple(&api, name, "POST", "/enable", NULL, "enabled");
    else if (strcmp(sub, "disable") == 0)
        rc = cmd_simple(&api, name, "POST", "/disable", NULL, "disabled");
    else
        rc = cmd_run(&api, name, &o);
    cli_api_close(&api);
    return rc;
}
