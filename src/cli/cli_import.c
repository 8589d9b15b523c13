/*
 * cli_import.c - jobs in and out of a server as files: `tethys import crontab`,
 * `tethys export` and `tethys apply`.
 *
 * import crontab reads a crontab with the pure parser (core/crontab.c) and creates its jobs
 * (in batches: cli_batch.c, POST /api/v1/jobs:batch, each item a POST /jobs).  The parts that touch
 * the machine live here: reading the file and finding the machine's time zone (/etc/timezone, else
 * the target of the /etc/localtime link), the zone cron itself would have used for entries without
 * CRON_TZ.  Every line is reported; a job that exists already is reported (409) and left alone,
 * never overwritten. A dry run sends nothing that changes anything: it reads the job list (to
 * report names that exist) and asks the server's cron check whether each schedule fires in its
 * zone, the two refusals a POST could still meet that the parser cannot foresee.
 *
 * export writes jobs as the definitions `job add -f` and `apply -f` read: the server's
 * canonical form without its own fields ("version", "state"), so export | apply --dry-run
 * finds nothing to change.
 *
 * apply makes the server match a file.  Both sides are compared in the canonical form: the
 * file's jobs go through job_from_json and job_to_json here (the server stores exactly that
 * form), so a field left out and a field given with its default are the same.  The server's
 * jobs are read a page at a time and compared as they come, and the file's jobs are
 * canonicalised only when the server has them, so a plan for a million jobs holds the file
 * once and a page of the server's.  The plan is printed first, then carried out in
 * batches (cli_batch.c): creations, then changes (a replace based on the version the plan
 * was made from: a job edited meanwhile is refused with 412 and reported, not
 * overwritten), then the deletions --prune asks for (also based on their version).  The
 * file is checked completely before anything is sent: one invalid job and nothing changes.
 *
 * Secrets.  The server never shows a secret_env value (it shows "********", which export
 * writes and apply sends back to keep the stored value), so a value in the file cannot be
 * compared with the stored one: a file that carries a value (anything but the mask) counts
 * as changing it every time, and the plan shows "(new value)", never the value itself.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_file.h"
#include "../core/crontab.h"
#include "../core/job.h"
#include "../core/strbuf.h"
#include "../tzdb/tzdb.h"

#define SHOWN_MAX     160 /* bytes of a value shown in a diff line */
#define DETAIL_MAX    200 /* bytes of a command shown in the import report */
#define ZONE_NAME_MAX 256

/* ---- shared -------------------------------------------------------------------------------- */

/* A refusal about this one object (the next one may still work), as opposed to trouble with
 * the server or the connection, after which nothing more is sent. */
static bool per_object(int code)
{
    return cli_exit_for(code) == CLI_USAGE;
}

static json_t *error_json(const struct ty_err *err)
{
    json_t *e = json_pack("{s:s, s:s}", "code", ty_code_name(err->code), "message", err->msg);
    if (e != NULL && err->field[0] != '\0')
        json_object_set_new(e, "field", json_string(err->field));
    return e;
}

/* One request without printing anything: the caller reports. */
static int call(struct cli_api *api, const char *method, const char *path, const json_t *body,
                const char *if_match, json_t **resp, char **etag, struct ty_err *err)
{
    ty_err_clear(err);
    return client_call(&api->client, method, path, body, if_match, NULL, resp, etag, err);
}

static void job_path(struct strbuf *sb, const char *name)
{
    sb_adds(sb, "/api/v1/jobs");
    if (name != NULL)
        client_path_add(sb, name);
}

static int collect_page(void *arg, json_t *items)
{
    return json_array_extend(arg, items) == 0 ? 0 : TY_ENOMEM;
}

/* GET every job (of a domain's subtree when domain is not NULL), page after page: *items,
 * a new reference. */
static int get_jobs(struct cli_api *api, const char *domain, json_t **items, struct ty_err *err)
{
    struct strbuf path;
    sb_init(&path);
    job_path(&path, NULL);
    client_query_add(&path, "domain", domain);
    ty_err_clear(err);
    *items = json_array();
    int rc = *items != NULL
                 ? client_pages(&api->client, sb_str(&path), 0, collect_page, *items, NULL, err)
                 : TY_ENOMEM;
    sb_free(&path);
    if (rc == TY_ENOMEM && err->msg[0] == '\0')
        ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    if (rc != 0) {
        json_decref(*items);
        *items = NULL;
    }
    return rc;
}

/* A JSON value as one line of text: compact JSON, cut short when long. */
static void value_line(const json_t *v, char *buf, size_t cap)
{
    if (v == NULL) {
        snprintf(buf, cap, "(none)");
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    if (s == NULL) {
        snprintf(buf, cap, "?");
        return;
    }
    size_t n = strlen(s);
    if (n < cap) {
        memcpy(buf, s, n + 1);
    } else {
        size_t k = cap - 4;
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--;
        snprintf(buf, cap, "%.*s...", (int)k, s);
    }
    free(s);
}

struct named {
    json_t *v;
};

static int by_name(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(((const struct named *)a)->v, "name"));
    const char *y = json_string_value(json_object_get(((const struct named *)b)->v, "name"));
    return strcmp(x ? x : "", y ? y : "");
}

/* Sort an array of objects by their "name", in place. */
static void sort_by_name(json_t *items)
{
    size_t n = json_array_size(items);
    if (n < 2)
        return;
    struct named *v = malloc(n * sizeof *v);
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        v[i].v = json_incref(json_array_get(items, i));
    qsort(v, n, sizeof *v, by_name);
    json_array_clear(items);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, v[i].v);
    free(v);
}

/* ---- import crontab ------------------------------------------------------------------------ */

static void import_usage(FILE *out)
{
    fprintf(out,
            "usage: tethys import crontab [FILE|-] [--system] [--domain D] [--prefix NAME]\n"
            "                             [--tz ZONE] [--dry-run] [--json] [--data DIR]\n"
            "\n"
            "Turns each crontab entry into a job (POST /api/v1/jobs) and reports every line.\n"
            "  FILE          the crontab (\"-\" or nothing: standard input, as in\n"
            "                `crontab -l | tethys import crontab`)\n"
            "  --system      /etc/crontab or /etc/cron.d format: a user column after the schedule\n"
            "  --domain D    the domain of every job\n"
            "  --prefix P    job names are P-<line>-<command> (default \"crontab\")\n"
            "  --tz ZONE     the zone of every job, overriding CRON_TZ (default: CRON_TZ, else\n"
            "                the machine's zone, else UTC)\n"
            "  --dry-run     report what would be done; change nothing\n"
            "Exit status: 0 every line carried over, 1 some not (or a job failed or existed),\n"
            "2 bad usage, an unreadable file or nothing to import, 3 server unreachable.\n");
}

/* The machine's time zone: /etc/timezone, else the zoneinfo path /etc/localtime links to.
 * NULL when neither says (or names a zone the database lacks); *from says which file. */
static const char *machine_zone(char *buf, size_t cap, const char **from)
{
    *from = NULL;
    FILE *f = fopen("/etc/timezone", "r");
    if (f != NULL) {
        if (fgets(buf, (int)cap, f) != NULL) {
            buf[strcspn(buf, " \t\r\n")] = '\0';
            if (buf[0] != '\0')
                *from = "/etc/timezone";
        }
        fclose(f);
    }
    if (*from == NULL) {
        char link[PATH_MAX];
        ssize_t n = readlink("/etc/localtime", link, sizeof link - 1);
        if (n > 0) {
            link[n] = '\0';
            const char *z = strstr(link, "zoneinfo/");
            if (z != NULL && snprintf(buf, cap, "%s", z + 9) < (int)cap && buf[0] != '\0')
                *from = "/etc/localtime";
        }
    }
    if (*from == NULL)
        return NULL;
    const struct tz_zone *zone;
    struct ty_err err;
    if (tzdb_get(buf, &zone, &err) != 0) {
        *from = NULL;
        return NULL;
    }
    return buf;
}

/* What happened to one job line. */
struct outcome {
    const char *result; /* "created", "would create", "exists", "failed", "not sent" */
    json_t *version;    /* created: the version; else NULL */
    struct ty_err err;  /* exists, failed */
};

/* One line of the report: for the table and for --json. */
static json_t *report_row(const struct crontab_line *l, const struct outcome *o)
{
    json_t *row = json_pack("{s:i, s:s}", "line", l->line, "kind", crontab_kind_name(l->kind));
    if (row == NULL)
        return NULL;
    const char *result = crontab_kind_name(l->kind);
    if (l->kind == CRONTAB_UNSUPPORTED)
        result = "skipped";
    if (o != NULL)
        result = o->result;
    json_object_set_new(row, "result", json_string(result));
    if (l->job != NULL) {
        json_object_set(row, "name", json_object_get(l->job, "name"));
        json_object_set(row, "schedule", json_object_get(l->job, "schedule"));
        json_object_set(row, "time_zone", json_object_get(l->job, "time_zone"));
    }
    if (l->msg != NULL)
        json_object_set_new(row, "message", json_string(l->msg));
    if (o != NULL && o->version != NULL)
        json_object_set(row, "version", o->version);
    if (o != NULL && o->err.code != 0)
        json_object_set_new(row, "error", error_json(&o->err));
    if (l->job != NULL)
        json_object_set(row, "job", l->job);
    return row;
}

/* The DETAIL cell: the command (first line) and the note, or the message, or the error. */
static void detail_cell(const json_t *row, char *buf, size_t cap)
{
    const char *msg = json_string_value(json_object_get(row, "message"));
    const char *err = json_string_value(json_object_get(json_object_get(row, "error"), "message"));
    const char *cmd = json_string_value(json_object_get(json_object_get(row, "job"), "command"));
    struct strbuf sb;
    sb_init_fixed(&sb, buf, cap);
    if (err != NULL) {
        sb_adds(&sb, err);
    } else if (cmd != NULL) {
        size_t n = strcspn(cmd, "\n");
        if (n > DETAIL_MAX)
            n = DETAIL_MAX;
        sb_add(&sb, cmd, n);
        if (cmd[n] != '\0')
            sb_adds(&sb, " ...");
        if (msg != NULL)
            sb_addf(&sb, "  (%s)", msg);
    } else if (msg != NULL) {
        sb_adds(&sb, msg);
    }
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = '?';
}

/* A job's cell, empty on the lines that are not jobs. */
static void job_cell(const json_t *row, const char *field, char *buf, size_t cap)
{
    if (json_object_get(row, field) == NULL)
        buf[0] = '\0';
    else
        cli_cell_text(row, field, buf, cap);
}

static void name_cell(const json_t *row, char *buf, size_t cap)
{
    job_cell(row, "name", buf, cap);
}

static void schedule_cell(const json_t *row, char *buf, size_t cap)
{
    job_cell(row, "schedule", buf, cap);
}

static void zone_cell(const json_t *row, char *buf, size_t cap)
{
    job_cell(row, "time_zone", buf, cap);
}

/* Check one job without sending it (a dry run); fills *o.  0, or the exit status after a
 * system failure. */
static int check_import(struct cli_api *api, const json_t *job, const json_t *existing,
                        struct outcome *o)
{
    const char *name = json_string_value(json_object_get(job, "name"));
    ty_err_clear(&o->err);
    if (json_object_get(existing, name) != NULL) {
        o->result = "exists";
        ty_error(&o->err, TY_EEXIST, "name", -1, 0,
                 "a job named \"%s\" already exists; it would not be overwritten", name);
        return 0;
    }
    /* the server refuses a zone it does not know and a schedule that never fires */
    json_t *body = json_pack("{s:O, s:O, s:i}", "expression", json_object_get(job, "schedule"),
                             "time_zone", json_object_get(job, "time_zone"), "count", 1);
    json_t *resp = NULL;
    int rc = call(api, "POST", "/api/v1/cron/check", body, NULL, &resp, NULL, &o->err);
    json_decref(body);
    const char *status = json_string_value(json_object_get(resp, "status"));
    if (rc == 0 && status != NULL && strcmp(status, "valid") != 0)
        rc = ty_error(&o->err, TY_EINVAL, "schedule", -1, 0,
                      "schedule: \"%s\" never fires in %s; the server refuses such a job",
                      json_string_value(json_object_get(job, "schedule")),
                      json_string_value(json_object_get(job, "time_zone")));
    json_decref(resp);
    if (rc != 0 && !per_object(rc)) {
        cli_error("%s", o->err.msg);
        return cli_exit_for(rc);
    }
    o->result = rc == 0 ? "would create" : "failed";
    return 0;
}

/* A page of the server's jobs: their names into the set arg (a dry run's "exists"). */
static int note_names(void *arg, json_t *items)
{
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        const char *n = json_string_value(json_object_get(it, "name"));
        if (n != NULL && json_object_set_new(arg, n, json_true()) != 0)
            return TY_ENOMEM;
    }
    return 0;
}

/* Sending the crontab's jobs in batches: the job lines, and their outcomes by line. */
struct import_send {
    const struct crontab *c;
    size_t *lines; /* indexes of the job lines */
    struct outcome *out;
};

static json_t *import_item(void *arg, size_t i)
{
    const struct import_send *is = arg;
    return json_pack("{s:s, s:O}", "op", "create", "job", is->c->lines[is->lines[i]].job);
}

static void import_result(void *arg, size_t i, int rc, const struct ty_err *err, json_int_t version)
{
    const struct import_send *is = arg;
    struct outcome *o = &is->out[is->lines[i]];
    const char *name = json_string_value(json_object_get(is->c->lines[is->lines[i]].job, "name"));
    if (rc == 0) {
        o->result = "created";
        o->version = json_integer(version);
    } else if (rc == TY_EEXIST) {
        o->result = "exists";
        ty_error(&o->err, TY_EEXIST, "name", -1, 0,
                 "a job named \"%s\" already exists; not overwritten", name);
    } else {
        o->result = "failed";
        o->err = *err;
    }
}

static void print_import_summary(const struct crontab *c, size_t created, size_t exists,
                                 size_t failed, size_t not_sent, bool dry)
{
    struct strbuf sb;
    sb_init(&sb);
    sb_addf(&sb, "%zu job%s %s", created, created == 1 ? "" : "s",
            dry ? "would be created" : "created");
    if (exists)
        sb_addf(&sb, ", %zu already existed (not overwritten)", exists);
    if (failed)
        sb_addf(&sb, ", %zu %s", failed, dry ? "would fail" : "failed");
    if (not_sent)
        sb_addf(&sb, ", %zu not sent", not_sent);
    sb_addf(&sb,
            "; %zu line%s not carried over, %zu malformed; %zu environment line%s, %zu "
            "comment%s or blank line%s",
            c->n_unsupported, c->n_unsupported == 1 ? "" : "s", c->n_errors, c->n_env,
            c->n_env == 1 ? "" : "s", c->n_comments + c->n_blank,
            c->n_comments + c->n_blank == 1 ? "" : "s", c->n_comments + c->n_blank == 1 ? "" : "s");
    printf("%s%s\n", dry ? "dry run: " : "", sb_str(&sb));
    if (dry)
        printf("dry run: nothing was changed\n");
    sb_free(&sb);
}

struct import_opts {
    const char *domain, *prefix, *tz;
    int system, dry_run;
};

static int import_crontab(struct cli_api *api, const struct import_opts *io, const char *file)
{
    if (strcmp(file, "-") == 0 && isatty(STDIN_FILENO)) {
        cli_error("import crontab: give the crontab FILE, or pipe one in: crontab -l | tethys "
                  "import crontab");
        return CLI_USAGE;
    }
    const char *shown = strcmp(file, "-") == 0 ? "standard input" : file;
    struct strbuf text;
    sb_init(&text);
    struct ty_err err;
    ty_err_clear(&err);
    int rc = cli_file_read(file, &text, &err);
    if (rc != 0) {
        cli_error("%s", err.msg);
        sb_free(&text);
        return rc == TY_ENOMEM ? CLI_SYSTEM : CLI_USAGE;
    }

    char zbuf[ZONE_NAME_MAX];
    const char *zfrom = NULL;
    const char *mzone = io->tz ? NULL : machine_zone(zbuf, sizeof zbuf, &zfrom);
    struct crontab_opts co = {.prefix = io->prefix,
                              .domain = io->domain,
                              .tz = io->tz,
                              .default_tz = mzone,
                              .source = shown,
                              .system = io->system != 0};
    struct crontab c;
    rc = crontab_parse(sb_str(&text), text.len, &co, &c, &err);
    sb_free(&text);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return rc == TY_ENOMEM ? CLI_SYSTEM : CLI_USAGE;
    }
    if (!io->system &&
        (strcmp(file, "/etc/crontab") == 0 || strncmp(file, "/etc/cron.d/", 12) == 0))
        cli_error("note: %s is usually a system crontab, with a user column: add --system", file);

    /* the zone, and where it came from */
    json_t *zone = NULL;
    if (io->tz != NULL)
        zone = json_pack("{s:s, s:s}", "name", io->tz, "from", "--tz");
    else if (mzone != NULL)
        zone = json_pack("{s:s, s:s, s:s}", "name", mzone, "from", "machine", "file", zfrom);
    else
        zone = json_pack("{s:s, s:s}", "name", "UTC", "from", "default");

    json_t *existing = json_object(); /* dry run: the names on the server */
    struct outcome *outs = calloc(c.n_lines + 1, sizeof *outs);
    size_t *job_lines = calloc(c.n_lines + 1, sizeof *job_lines);
    int status = outs != NULL && job_lines != NULL && existing != NULL ? 0 : CLI_SYSTEM;
    if (status != 0)
        cli_error("out of memory");
    size_t n_job_lines = 0;
    for (size_t i = 0; outs != NULL && i < c.n_lines; i++) {
        outs[i].result = "not sent";
        ty_err_clear(&outs[i].err);
        if (job_lines != NULL && c.lines[i].kind == CRONTAB_JOB)
            job_lines[n_job_lines++] = i;
    }
    if (status == 0 && n_job_lines > 0)
        status = cli_api_open(api);
    if (status == 0 && n_job_lines > 0 && io->dry_run) {
        rc = client_pages(&api->client, "/api/v1/jobs", 0, note_names, existing, NULL, &err);
        if (rc != 0) {
            cli_error("%s", err.msg[0] ? err.msg : "out of memory");
            status = cli_exit_for(rc);
        }
        for (size_t k = 0; status == 0 && k < n_job_lines; k++)
            status = check_import(api, c.lines[job_lines[k]].job, existing, &outs[job_lines[k]]);
    } else if (status == 0 && n_job_lines > 0) {
        struct import_send is = {&c, job_lines, outs};
        struct cli_batch b = {n_job_lines, import_item, import_result, &is};
        status = cli_batch_send(api, &b);
    }

    json_t *rows = json_array();
    size_t created = 0, exists = 0, failed = 0, not_sent = 0;
    for (size_t i = 0; outs != NULL && i < c.n_lines; i++) {
        const struct crontab_line *l = &c.lines[i];
        struct outcome *o = &outs[i];
        if (l->kind == CRONTAB_JOB) {
            const char *r = o->result;
            created += strcmp(r, "created") == 0 || strcmp(r, "would create") == 0;
            exists += strcmp(r, "exists") == 0;
            failed += strcmp(r, "failed") == 0;
            not_sent += strcmp(r, "not sent") == 0;
        }
        json_array_append_new(rows, report_row(l, l->kind == CRONTAB_JOB ? o : NULL));
        json_decref(o->version);
    }
    free(outs);
    free(job_lines);

    size_t quiet = c.n_comments + c.n_blank;
    json_t *summary = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "jobs", (json_int_t)c.n_jobs,
        io->dry_run ? "would_create" : "created", (json_int_t)created, "exists", (json_int_t)exists,
        "failed", (json_int_t)failed, "not_sent", (json_int_t)not_sent, "not_carried_over",
        (json_int_t)c.n_unsupported, "malformed", (json_int_t)c.n_errors, "env",
        (json_int_t)c.n_env, "comments_or_blank", (json_int_t)quiet);
    if (api->json) {
        json_t *out = json_pack("{s:s, s:b, s:b, s:o, s:o, s:o}", "source", shown, "system",
                                io->system != 0, "dry_run", io->dry_run != 0, "time_zone", zone,
                                "lines", rows, "summary", summary);
        cli_print_json(out);
        json_decref(out);
    } else {
        if (io->tz != NULL)
            printf("time zone: %s (--tz), for every entry\n", io->tz);
        else if (mzone != NULL)
            printf("time zone: %s (the machine's, from %s), for entries without CRON_TZ\n", mzone,
                   zfrom);
        else
            printf("time zone: UTC (the machine's zone could not be determined), for entries "
                   "without CRON_TZ\n");
        static const struct cli_col cols[] = {
            {"LINE", "line", NULL, false},
            {"RESULT", "result", NULL, false},
            {"JOB", "name", name_cell, false},
            {"SCHEDULE", "schedule", schedule_cell, false},
            {"TIME ZONE", "time_zone", zone_cell, false},
            {"DETAIL", "message", detail_cell, false},
        };
        cli_table(rows, cols, sizeof cols / sizeof cols[0]);
        print_import_summary(&c, created, exists, failed, not_sent, io->dry_run != 0);
        json_decref(rows);
        json_decref(zone);
        json_decref(summary);
    }
    json_decref(existing);
    size_t n_jobs = c.n_jobs;
    bool all = c.n_unsupported == 0 && c.n_errors == 0 && created == n_jobs;
    crontab_free(&c);
    if (status != 0)
        return status;
    if (n_jobs == 0) {
        cli_error("%s: nothing to import (no crontab entry could become a job)", shown);
        return CLI_USAGE;
    }
    return all ? CLI_OK : CLI_NEGATIVE;
}

int cli_import(int argc, char **argv)
{
    if (argc < 1) {
        import_usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        import_usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[0], "crontab") != 0) {
        cli_error("import: unknown source \"%s\" (tethys import crontab FILE)", argv[0]);
        import_usage(stderr);
        return CLI_USAGE;
    }
    struct import_opts io = {0};
    const struct cli_opt opts[] = {
        {"--domain", NULL, CLI_VALUE, &io.domain},  {"--prefix", NULL, CLI_VALUE, &io.prefix},
        {"--tz", NULL, CLI_VALUE, &io.tz},          {"--system", NULL, CLI_FLAG, &io.system},
        {"--dry-run", NULL, CLI_FLAG, &io.dry_run}, {NULL, NULL, CLI_FLAG, NULL},
    };
    struct cli_api api = {0};
    const char *pos[1] = {NULL};
    int n_pos;
    int rc = cli_parse(argc - 1, argv + 1, opts, &api, pos, 1, &n_pos, import_usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    rc = import_crontab(&api, &io, n_pos > 0 ? pos[0] : "-");
    cli_api_close(&api);
    return rc;
}

/* ---- export -------------------------------------------------------------------------------- */

static void export_usage(FILE *out)
{
    fprintf(out,
            "usage: tethys export [--domain D] [--job NAME]... [--format json|yaml] [-o FILE]\n"
            "                     [--data DIR]\n"
            "\n"
            "Writes jobs as definitions that `tethys apply -f` and `tethys job add -f` read:\n"
            "one job as a mapping, several as a list, sorted by name.\n"
            "  --domain D      only the jobs of domain D and its subdomains\n"
            "  --job NAME      only this job (repeatable)\n"
            "  --format F      json (default) or yaml (default when FILE ends in .yaml/.yml)\n"
            "  -o, --output F  write to F (replaced whole) instead of standard output\n");
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Write text to path through a temporary file and a rename, so a failed export leaves the
 * old file whole.  0, or an exit status after printing why. */
static int write_file(const char *path, const char *text, size_t len)
{
    struct strbuf tmp;
    sb_init(&tmp);
    sb_addf(&tmp, "%s.tmp-%ld", path, (long)getpid());
    int fd = open(sb_str(&tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    int rc = 0;
    if (fd < 0) {
        cli_error("%s: %s", path, strerror(errno));
        sb_free(&tmp);
        return CLI_SYSTEM;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = errno;
            break;
        }
        done += (size_t)n;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = errno;
    if (close(fd) != 0 && rc == 0)
        rc = errno;
    if (rc == 0 && rename(sb_str(&tmp), path) != 0)
        rc = errno;
    if (rc != 0) {
        cli_error("%s: %s", path, strerror(rc));
        unlink(sb_str(&tmp));
    }
    sb_free(&tmp);
    return rc == 0 ? 0 : CLI_SYSTEM;
}

struct export_opts {
    const char *domain, *format, *output;
    struct cli_list jobs;
};

static int export_jobs(struct cli_api *api, const struct export_opts *eo)
{
    bool yaml = eo->format != NULL ? strcmp(eo->format, "yaml") == 0
                                   : eo->output != NULL && (ends_with(eo->output, ".yaml") ||
                                                            ends_with(eo->output, ".yml"));
    if (eo->format != NULL && strcmp(eo->format, "yaml") != 0 && strcmp(eo->format, "json") != 0) {
        cli_error("--format: \"%s\" is not a format (json or yaml)", eo->format);
        return CLI_USAGE;
    }
    if (eo->format == NULL && api->json)
        yaml = false;
    int rc = cli_api_open(api);
    if (rc != 0)
        return rc;
    json_t *items = NULL;
    struct ty_err err;
    rc = get_jobs(api, eo->domain, &items, &err);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return cli_exit_for(rc);
    }
    json_t *jobs = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        const char *name = json_string_value(json_object_get(it, "name"));
        bool wanted = eo->jobs.n == 0;
        for (int k = 0; k < eo->jobs.n && !wanted; k++)
            wanted = name != NULL && strcmp(eo->jobs.v[k], name) == 0;
        if (!wanted)
            continue;
        json_t *def = json_deep_copy(it);
        json_object_del(def, "version");
        json_object_del(def, "state");
        json_array_append_new(jobs, def);
    }
    json_decref(items);
    for (int k = 0; k < eo->jobs.n; k++) {
        bool found = false;
        json_array_foreach(jobs, i, it)
        {
            found =
                found || strcmp(json_string_value(json_object_get(it, "name")), eo->jobs.v[k]) == 0;
        }
        if (!found) {
            if (eo->domain != NULL)
                cli_error("no job named \"%s\" in domain \"%s\" (or below it)", eo->jobs.v[k],
                          eo->domain);
            else
                cli_error("no job named \"%s\"", eo->jobs.v[k]);
            json_decref(jobs);
            return CLI_USAGE;
        }
    }
    sort_by_name(jobs);
    const json_t *doc = json_array_size(jobs) == 1 ? json_array_get(jobs, 0) : jobs;
    struct strbuf out;
    sb_init(&out);
    if (yaml) {
        cli_yaml_write(doc, &out);
    } else {
        char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s != NULL)
            sb_addf(&out, "%s\n", s);
        else
            out.failed = 1;
        free(s);
    }
    size_t n = json_array_size(jobs);
    json_decref(jobs);
    if (sb_failed(&out)) {
        sb_free(&out);
        cli_error("out of memory");
        return CLI_SYSTEM;
    }
    if (eo->output != NULL && strcmp(eo->output, "-") != 0) {
        rc = write_file(eo->output, sb_str(&out), out.len);
        if (rc == 0)
            printf("%zu job%s written to %s\n", n, n == 1 ? "" : "s", eo->output);
    } else {
        fwrite(sb_str(&out), 1, out.len, stdout);
    }
    sb_free(&out);
    return rc;
}

int cli_export(int argc, char **argv)
{
    struct export_opts eo;
    memset(&eo, 0, sizeof eo);
    const struct cli_opt opts[] = {
        {"--domain", NULL, CLI_VALUE, &eo.domain},
        {"--job", NULL, CLI_LIST, &eo.jobs},
        {"--format", NULL, CLI_VALUE, &eo.format},
        {"--output", "-o", CLI_VALUE, &eo.output},
        {NULL, NULL, CLI_FLAG, NULL},
    };
    struct cli_api api = {0};
    int n_pos;
    int rc = cli_parse(argc, argv, opts, &api, NULL, 0, &n_pos, export_usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    rc = export_jobs(&api, &eo);
    cli_api_close(&api);
    return rc;
}

/* ---- apply --------------------------------------------------------------------------------- */

static void apply_usage(FILE *out)
{
    fprintf(out,
            "usage: tethys apply -f FILE [--dry-run] [--prune] [--domain D] [--json] [--data DIR]\n"
            "\n"
            "Makes the server's jobs match FILE (a job, or a list of jobs, in JSON or YAML):\n"
            "prints the changes first (+ create, ~ change with old -> new per field, - delete),\n"
            "then applies them.  A job changed on the server meanwhile is not overwritten (412).\n"
            "  -f, --file F  the definitions (\"-\": standard input)\n"
            "  --dry-run     print the changes only\n"
            "  --prune       also delete the jobs in scope that FILE does not list; the scope is\n"
            "                --domain D and its subdomains, else the domains FILE's jobs are in\n"
            "  --domain D    every job in FILE must be in D or below it\n"
            "Exit status: 0 everything applied (or nothing to do), 1 some job failed, 2 bad\n"
            "input, 3 server unreachable.\n");
}

enum action { ACT_CREATE, ACT_CHANGE, ACT_DELETE, ACT_UNCHANGED };

static const char *const action_names[] = {"create", "change", "delete", "unchanged"};

/* One job of the plan.  A million of them must fit: no error buffer unless it failed. */
struct step {
    enum action action;
    const char *name;       /* borrowed from the file's job, or owned (a deletion) */
    char *owned_name;       /* a deletion's name (the server's pages are gone by then) */
    json_t *desired;        /* the file's object (create, change); borrowed */
    json_t *changes;        /* change: [{"field", "old", "new"}] */
    json_int_t version;     /* change, delete: the version the plan was made from */
    json_int_t new_version; /* created, changed: the version the server gave */
    const char *result;     /* after applying */
    struct ty_err *err;     /* why it failed (malloc'd), or NULL */
};

static bool in_subtree(const char *domain, const char *top)
{
    size_t n = strlen(top);
    return n == 0 || (strncmp(domain, top, n) == 0 && (domain[n] == '\0' || domain[n] == '/'));
}

static void add_change(json_t *changes, const char *field, const json_t *old, const json_t *new_)
{
    json_t *c = json_pack("{s:s}", "field", field);
    json_object_set_new(c, "old", old ? json_deep_copy(old) : json_null());
    json_object_set_new(c, "new", new_ ? json_deep_copy(new_) : json_null());
    if (old == NULL)
        json_object_set_new(c, "old_absent", json_true());
    if (new_ == NULL)
        json_object_set_new(c, "new_absent", json_true());
    json_array_append_new(changes, c);
}

/* The fields that differ, in the canonical order; objects (env, calendars, shard_params) key
 * by key.  Only the fields of the canonical form count: the server's own ("version",
 * "state") and any this client does not know are not compared. */
static json_t *diff_fields(const json_t *cur, const json_t *want)
{
    json_t *changes = json_array();
    const char *k;
    json_t *nv;
    json_object_foreach((json_t *)want, k, nv)
    {
        const json_t *ov = json_object_get(cur, k);
        if (ov != NULL && json_equal(ov, nv))
            continue;
        if (json_is_object(ov) && json_is_object(nv)) {
            const char *sk;
            json_t *sv;
            char path[256];
            json_object_foreach((json_t *)ov, sk, sv)
            {
                const json_t *w = json_object_get(nv, sk);
                if (w == NULL || !json_equal(w, sv)) {
                    snprintf(path, sizeof path, "%s.%s", k, sk);
                    add_change(changes, path, sv, w);
                }
            }
            json_object_foreach(nv, sk, sv)
            {
                if (json_object_get(ov, sk) == NULL) {
                    snprintf(path, sizeof path, "%s.%s", k, sk);
                    add_change(changes, path, NULL, sv);
                }
            }
        } else {
            add_change(changes, k, ov, nv);
        }
    }
    return changes;
}

/* A secret_env value in the file that is not the mask replaces the stored one: a change the
 * canonical (masked) comparison cannot see.  Shown as "(new value)". */
static void add_secret_changes(json_t *changes, const json_t *cur, const json_t *file)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)file, k, v)
    {
        if (!json_is_string(v) || strcmp(json_string_value(v), JOB_SECRET_MASK) == 0)
            continue;
        char path[256];
        snprintf(path, sizeof path, "secret_env.%s", k);
        json_t *found = NULL;
        size_t i;
        json_t *c;
        json_array_foreach(changes, i, c)
        {
            const char *f = json_string_value(json_object_get(c, "field"));
            if (found == NULL && f != NULL && strcmp(f, path) == 0)
                found = c;
        }
        if (found != NULL) { /* a new name: the diff saw it, with the mask */
            json_object_set_new(found, "new", json_string("(new value)"));
            continue;
        }
        json_t *newv = json_string("(new value)");
        add_change(changes, path, json_object_get(cur, k), newv);
        json_decref(newv);
    }
}

/* The canonical form of a job of the file (checked by load_desired already): what the
 * server stores, so a field left out and one given with its default compare equal.  New
 * reference, or NULL when out of memory. */
static json_t *canonical(const json_t *item)
{
    struct job j;
    struct ty_err err;
    json_t *c = job_from_json(item, &j, &err) == 0 ? job_to_json(&j) : NULL;
    job_free(&j);
    return c;
}

/*
 * Read and check the file: *desired (the file's jobs, "version" and "state" removed) and
 * *domains (each job's domain, by position; a new array of strings).  Only what the plan
 * needs is kept: a file of a million jobs is held once, as the file's own JSON.  0, or an
 * exit status after printing every problem.
 */
static int load_desired(const char *file, const char *domain, json_t **desired, json_t **domains)
{
    struct ty_err err;
    ty_err_clear(&err);
    json_t *items = NULL;
    int rc = cli_file_load_list(file, &items, &err);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return rc == TY_ENOMEM ? CLI_SYSTEM : CLI_USAGE;
    }
    const char *shown = strcmp(file, "-") == 0 ? "standard input" : file;
    json_t *doms = json_array();
    json_t *seen = json_object(); /* every name, valid or not: a repeat is named as such */
    int bad = 0;
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        json_object_del(it, "version");
        json_object_del(it, "state");
        const json_t *jn = json_object_get(it, "name");
        const char *name = json_string_value(jn);
        json_array_append_new(doms, json_string(""));
        if (name == NULL) {
            cli_error("%s: item %zu: a job needs a \"name\" (a string)", shown, i + 1);
            bad++;
            continue;
        }
        if (json_object_get(seen, name) != NULL) {
            cli_error("%s: item %zu: job \"%s\" is defined twice", shown, i + 1, name);
            bad++;
            continue;
        }
        json_object_set_new(seen, name, json_true());
        struct job j;
        ty_err_clear(&err);
        if (job_from_json(it, &j, &err) != 0) {
            cli_error("%s: job \"%s\" (item %zu): %s", shown, name, i + 1, err.msg);
            job_free(&j);
            bad++;
            continue;
        }
        if (domain != NULL && !in_subtree(j.domain, domain)) {
            cli_error("%s: job \"%s\" is in domain \"%s\", outside --domain \"%s\"", shown, name,
                      j.domain, domain);
            bad++;
        }
        json_array_set_new(doms, i, json_string(j.domain));
        job_free(&j);
    }
    json_decref(seen);
    if (json_array_size(doms) != json_array_size(items)) {
        cli_error("out of memory");
        json_decref(items);
        json_decref(doms);
        return CLI_SYSTEM;
    }
    if (bad > 0) {
        cli_error("%s: %d problem%s; nothing was changed", shown, bad, bad == 1 ? "" : "s");
        json_decref(items);
        json_decref(doms);
        return CLI_USAGE;
    }
    *desired = items;
    *domains = doms;
    return 0;
}

/* A job of the file by name: its step. */
struct named_step {
    const char *name;
    size_t step;
};

/* Making the plan: the file's jobs by name, and the server's, a page at a time. */
struct planner {
    struct step *steps;
    size_t n, cap;
    struct named_step *by_name; /* the file's steps, sorted by name */
    size_t n_file;
    bool prune;
    const char *domain; /* --domain, or NULL: the scope of --prune is... */
    json_t *scope;      /* ...the domains the file's jobs are in (a set) */
};

static int by_step_name(const void *a, const void *b)
{
    return strcmp(((const struct named_step *)a)->name, ((const struct named_step *)b)->name);
}

/* The file's step for `name`, or NULL. */
static struct step *file_step(const struct planner *p, const char *name)
{
    size_t lo = 0, hi = p->n_file;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(p->by_name[mid].name, name);
        if (c == 0)
            return &p->steps[p->by_name[mid].step];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* One page of the server's jobs: a job of the file is a change (or unchanged), one only on
 * the server is a deletion when pruning and in scope.  The page is not kept. */
static int plan_page(void *arg, json_t *items)
{
    struct planner *p = arg;
    size_t i;
    json_t *cur;
    json_array_foreach(items, i, cur)
    {
        const char *name = json_string_value(json_object_get(cur, "name"));
        if (name == NULL)
            continue;
        json_int_t version = json_integer_value(json_object_get(cur, "version"));
        struct step *s = file_step(p, name);
        if (s != NULL) {
            json_t *want = canonical(s->desired);
            if (want == NULL)
                return TY_ENOMEM;
            s->version = version;
            s->changes = diff_fields(cur, want);
            add_secret_changes(s->changes, json_object_get(cur, "secret_env"),
                               json_object_get(s->desired, "secret_env"));
            s->action = json_array_size(s->changes) > 0 ? ACT_CHANGE : ACT_UNCHANGED;
            json_decref(want);
            continue;
        }
        const char *dom = json_string_value(json_object_get(cur, "domain"));
        if (dom == NULL)
            dom = "";
        bool in_scope =
            p->domain != NULL ? in_subtree(dom, p->domain) : json_object_get(p->scope, dom) != NULL;
        if (!p->prune || !in_scope)
            continue;
        if (p->n == p->cap) {
            size_t cap = p->cap * 2 + 16;
            struct step *v = realloc(p->steps, cap * sizeof *v);
            if (v == NULL)
                return TY_ENOMEM;
            p->steps = v;
            p->cap = cap;
        }
        if (p->steps == NULL || p->n >= p->cap || name == NULL)
            return TY_ENOMEM; /* cannot be: grown above, and nameless jobs are skipped */
        struct step *d = &p->steps[p->n];
        memset(d, 0, sizeof *d);
        d->action = ACT_DELETE;
        d->owned_name = strdup(name);
        d->name = d->owned_name;
        d->version = version;
        if (d->owned_name == NULL)
            return TY_ENOMEM;
        p->n++; /* the server's pages come in name order: so do the deletions */
    }
    return 0;
}

/*
 * The plan: one step per job of the file, in the file's order, then the deletions
 * (--prune), by name.  The server's jobs are read a page at a time and compared with the
 * file's as they come, so neither side is ever held whole in its canonical form.  0, or
 * an exit status after printing why.
 */
static int make_plan(struct cli_api *api, json_t *desired, const json_t *domains, bool prune,
                     const char *domain, struct step **steps, size_t *n_steps)
{
    struct planner p = {.prune = prune, .domain = domain, .scope = json_object()};
    p.n_file = json_array_size(desired);
    p.cap = p.n_file + 16;
    p.steps = calloc(p.cap, sizeof *p.steps);
    p.by_name = malloc((p.n_file + 1) * sizeof *p.by_name);
    if (p.steps == NULL || p.by_name == NULL || p.scope == NULL) {
        free(p.steps);
        free(p.by_name);
        json_decref(p.scope);
        cli_error("out of memory");
        return CLI_SYSTEM;
    }
    for (size_t i = 0; i < p.n_file; i++) {
        json_t *it = json_array_get(desired, i);
        p.steps[i].action = ACT_CREATE;
        p.steps[i].name = json_string_value(json_object_get(it, "name"));
        p.steps[i].desired = it;
        p.by_name[i] = (struct named_step){p.steps[i].name, i};
        json_object_set_new(p.scope, json_string_value(json_array_get(domains, i)), json_true());
    }
    p.n = p.n_file;
    qsort(p.by_name, p.n_file, sizeof *p.by_name, by_step_name);
    struct ty_err err;
    ty_err_clear(&err);
    int rc = client_pages(&api->client, "/api/v1/jobs", 0, plan_page, &p, NULL, &err);
    free(p.by_name);
    json_decref(p.scope);
    *steps = p.steps;
    *n_steps = p.n;
    if (rc != 0) {
        cli_error("%s", err.msg[0] ? err.msg : "out of memory");
        return cli_exit_for(rc);
    }
    return 0;
}

static void free_plan(struct step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(steps[i].changes);
        free(steps[i].owned_name);
        free(steps[i].err);
    }
    free(steps);
}

/* The changes, like `kubectl diff`: + create (the file's fields), ~ change (old -> new per
 * field), - delete.  Unchanged jobs are only counted, in the summary. */
static void print_plan(const struct step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct step *s = &steps[i];
        char old_s[SHOWN_MAX], new_s[SHOWN_MAX];
        switch (s->action) {
        case ACT_UNCHANGED: break;
        case ACT_CREATE: {
            printf("+ job \"%s\" (create)\n", s->name);
            const char *k;
            const json_t *v;
            json_object_foreach(s->desired, k, v)
            {
                if (strcmp(k, "name") == 0)
                    continue;
                if (strcmp(k, "secret_env") == 0 && json_is_object(v)) {
                    /* names only: the values are secret */
                    json_t *shown = json_object();
                    const char *sk;
                    json_t *sv;
                    json_object_foreach((json_t *)v, sk, sv)
                    {
                        json_object_set_new(shown, sk, json_string(JOB_SECRET_MASK));
                    }
                    value_line(shown, new_s, sizeof new_s);
                    json_decref(shown);
                    printf("    %s: %s\n", k, new_s);
                    continue;
                }
                value_line(v, new_s, sizeof new_s);
                printf("    %s: %s\n", k, new_s);
            }
            break;
        }
        case ACT_CHANGE: {
            printf("~ job \"%s\" (change, version %" JSON_INTEGER_FORMAT ")\n", s->name,
                   s->version);
            size_t k;
            const json_t *c;
            json_array_foreach(s->changes, k, c)
            {
                bool old_absent = json_is_true(json_object_get(c, "old_absent"));
                bool new_absent = json_is_true(json_object_get(c, "new_absent"));
                value_line(old_absent ? NULL : json_object_get(c, "old"), old_s, sizeof old_s);
                value_line(new_absent ? NULL : json_object_get(c, "new"), new_s, sizeof new_s);
                printf("    %s: %s -> %s\n", json_string_value(json_object_get(c, "field")), old_s,
                       new_s);
            }
            break;
        }
        case ACT_DELETE:
            printf("- job \"%s\" (delete, version %" JSON_INTEGER_FORMAT ")\n", s->name,
                   s->version);
            break;
        }
    }
}

/* Carrying the plan out: the steps of one action, sent in batches, reported as they are
 * answered. */
struct carry {
    struct step *steps;
    size_t *todo; /* indexes into steps */
    bool json;    /* --json: the report is the plan, printed at the end */
    size_t done[4], failed;
};

static json_t *carry_item(void *arg, size_t i)
{
    const struct carry *c = arg;
    const struct step *s = &c->steps[c->todo[i]];
    switch (s->action) {
    case ACT_CREATE: return json_pack("{s:s, s:O}", "op", "create", "job", s->desired);
    case ACT_CHANGE:
        return json_pack("{s:s, s:O, s:I}", "op", "replace", "job", s->desired, "base_version",
                         s->version);
    default:
        return json_pack("{s:s, s:s, s:I}", "op", "delete", "name", s->name, "base_version",
                         s->version);
    }
}

static void carry_result(void *arg, size_t i, int rc, const struct ty_err *err, json_int_t version)
{
    static const char *const done[] = {"created", "changed", "deleted", "unchanged"};
    struct carry *c = arg;
    struct step *s = &c->steps[c->todo[i]];
    if (rc == 0) {
        s->result = done[s->action];
        s->new_version = version;
        c->done[s->action]++;
    } else {
        s->result = rc == TY_ECONFLICT ? "conflict" : "failed";
        s->err = malloc(sizeof *s->err);
        if (s->err != NULL && rc == TY_ECONFLICT)
            ty_error(s->err, TY_ECONFLICT, "version", -1, 0,
                     "job \"%s\" was changed on the server since version %" JSON_INTEGER_FORMAT
                     " was read; not %s (run apply again to see the changes)",
                     s->name, s->version, s->action == ACT_DELETE ? "deleted" : "changed");
        else if (s->err != NULL)
            *s->err = *err;
        c->failed++;
    }
    if (c->json)
        return;
    char v[48] = "";
    if (rc == 0 && s->action != ACT_DELETE)
        snprintf(v, sizeof v, " (version %" JSON_INTEGER_FORMAT ")", s->new_version);
    if (rc == 0)
        printf("%-9s %s%s\n", s->result, s->name, v);
    else
        printf("%-9s %s: %s\n", s->result, s->name, s->err ? s->err->msg : "out of memory");
}

static json_t *plan_json(const struct step *steps, size_t n, bool dry)
{
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct step *s = &steps[i];
        json_t *o = json_pack("{s:s, s:s}", "job", s->name, "action", action_names[s->action]);
        if (s->action == ACT_CHANGE || s->action == ACT_DELETE ||
            (s->action == ACT_UNCHANGED && s->version > 0))
            json_object_set_new(o, "version", json_integer(s->version));
        if (s->action == ACT_CHANGE) {
            json_t *ch = json_deep_copy(s->changes);
            size_t k;
            json_t *c;
            json_array_foreach(ch, k, c)
            {
                json_object_del(c, "old_absent");
                json_object_del(c, "new_absent");
            }
            json_object_set_new(o, "changes", ch);
        }
        if (!dry && s->action != ACT_UNCHANGED)
            json_object_set_new(o, "result", json_string(s->result ? s->result : "not_applied"));
        if (s->new_version > 0)
            json_object_set_new(o, "new_version", json_integer(s->new_version));
        if (s->err != NULL)
            json_object_set_new(o, "error", error_json(s->err));
        json_array_append_new(out, o);
    }
    return out;
}

struct apply_opts {
    const char *file, *domain;
    int dry_run, prune;
};

/* Carry out the plan: creations, then changes, then deletions, each in batches.  0, or an
 * exit status when the server could not be reached any more (the rest is not sent). */
static int carry_out(struct cli_api *api, struct step *steps, size_t n, struct carry *c)
{
    c->steps = steps;
    c->todo = malloc((n + 1) * sizeof *c->todo);
    if (c->todo == NULL) {
        cli_error("out of memory");
        return CLI_SYSTEM;
    }
    static const enum action order[] = {ACT_CREATE, ACT_CHANGE, ACT_DELETE};
    int status = 0;
    for (size_t o = 0; o < 3 && status == 0; o++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (steps[i].action == order[o])
                c->todo[k++] = i;
        struct cli_batch b = {k, carry_item, carry_result, c};
        status = k > 0 ? cli_batch_send(api, &b) : 0;
        fflush(stdout);
    }
    free(c->todo);
    return status;
}

static int apply_file(struct cli_api *api, const struct apply_opts *ao)
{
    if (ao->file == NULL) {
        cli_error("apply: give the definitions with -f FILE (\"-\" for standard input)");
        return CLI_USAGE;
    }
    json_t *desired = NULL, *domains = NULL;
    int rc = load_desired(ao->file, ao->domain, &desired, &domains);
    if (rc != 0)
        return rc;
    size_t n = 0;
    struct step *steps = NULL;
    if ((rc = cli_api_open(api)) == 0)
        rc = make_plan(api, desired, domains, ao->prune != 0, ao->domain, &steps, &n);
    json_decref(domains);
    if (rc != 0) {
        free_plan(steps, n);
        json_decref(desired);
        return rc;
    }

    size_t count[4] = {0}, not_applied = 0;
    for (size_t i = 0; i < n; i++)
        count[steps[i].action]++;
    if (!api->json) {
        print_plan(steps, n);
        fflush(stdout);
    }
    struct carry c = {.json = api->json != 0};
    int status = ao->dry_run ? 0 : carry_out(api, steps, n, &c);
    for (size_t i = 0; !ao->dry_run && i < n; i++)
        not_applied += steps[i].action != ACT_UNCHANGED && steps[i].result == NULL;
    if (api->json) {
        json_t *out =
            json_pack("{s:b, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}}", "dry_run", ao->dry_run != 0,
                      "plan", plan_json(steps, n, ao->dry_run != 0), "summary", "create",
                      (json_int_t)count[0], "change", (json_int_t)count[1], "delete",
                      (json_int_t)count[2], "unchanged", (json_int_t)count[3], "failed",
                      (json_int_t)c.failed, "not_applied", (json_int_t)not_applied);
        cli_print_json(out);
        json_decref(out);
    } else if (count[0] + count[1] + count[2] == 0) {
        printf("nothing to do: %zu job%s unchanged\n", count[3], count[3] == 1 ? "" : "s");
    } else if (ao->dry_run) {
        printf("dry run: %zu to create, %zu to change, %zu to delete, %zu unchanged; nothing was "
               "changed\n",
               count[0], count[1], count[2], count[3]);
    } else {
        printf("apply: %zu created, %zu changed, %zu deleted, %zu unchanged, %zu failed%s\n",
               c.done[ACT_CREATE], c.done[ACT_CHANGE], c.done[ACT_DELETE], count[ACT_UNCHANGED],
               c.failed, not_applied ? "; the rest was not sent" : "");
    }
    free_plan(steps, n);
    json_decref(desired);
    if (status != 0)
        return status;
    return c.failed > 0 ? CLI_NEGATIVE : CLI_OK;
}

int cli_apply(int argc, char **argv)
{
    struct apply_opts ao = {0};
    const struct cli_opt opts[] = {
        {"--file", "-f", CLI_VALUE, &ao.file},
        {"--domain", NULL, CLI_VALUE, &ao.domain},
        {"--dry-run", NULL, CLI_FLAG, &ao.dry_run},
        {"--prune", NULL, CLI_FLAG, &ao.prune},
        {NULL, NULL, CLI_FLAG, NULL},
    };
    struct cli_api api = {0};
    int n_pos;
    int rc = cli_parse(argc, argv, opts, &api, NULL, 0, &n_pos, apply_usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    rc = apply_file(&api, &ao);
    cli_api_close(&api);
    return rc;
}
