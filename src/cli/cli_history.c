/*
 * cli_history.c - `tethys job history|diff|restore`: a job's versions.
 *
 * Every change of a job is a version the server keeps with who made it and when
 * (GET /api/v1/jobs/{name}/versions); these commands read them and bring one back.
 *
 *   history  the versions, newest first, each with the fields it changed: one request
 *            for the list and one per version for its definition, all on one
 *            connection (a job's history is a few dozen versions, not thousands).
 *   diff     two versions (or one and the current definition), field by field
 *            (cli_diff.c): `path: old -> new`, `+ path: new`, `- path: old`.
 *   restore  POST .../restore: the server saves that version's definition as a new
 *            version, checked like any edit; --if-version makes it conditional.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_diff.h"
#include "../core/strbuf.h"

#define CHANGES_SHOWN 60 /* bytes of the CHANGES column before it is cut with "..." */

static void versions_usage(FILE *out)
{
    fprintf(out,
            "usage: tethys job history NAME\n"
            "       tethys job diff NAME V1 [V2]            (V2: the current definition when "
            "left out)\n"
            "       tethys job restore NAME V [--if-version N]\n"
            "  (each also takes --json and --data DIR)\n"
            "\n"
            "history lists every version of the job, newest first: who changed it, when, and\n"
            "which fields.  diff compares two versions field by field.  restore makes version V\n"
            "the job's definition again, as a new version (checked like any edit);\n"
            "--if-version N refuses it when the job is no longer at version N.\n");
}

/* "/api/v1/jobs/NAME/versions[/V]" */
static void versions_path(struct strbuf *sb, const char *name, const char *v)
{
    sb_adds(sb, "/api/v1/jobs");
    client_path_add(sb, name);
    sb_adds(sb, "/versions");
    if (v != NULL)
        client_path_add(sb, v);
}

/* A version number given on the command line: > 0, or -1 after saying why. */
static long long parse_version(const char *text, const char *what)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 1) {
        cli_error("%s: \"%s\" is not a version number (1, 2, ...; see `tethys job history`)", what,
                  text);
        return -1;
    }
    return v;
}

/* One definition: version `v` ("current": the job as it is now), without the server's
 * own fields.  0 or an exit status (the error printed). */
static int fetch_definition(struct cli_api *api, const char *name, const char *v, json_t **out)
{
    struct strbuf path;
    sb_init(&path);
    if (strcmp(v, "current") == 0) {
        sb_adds(&path, "/api/v1/jobs");
        client_path_add(&path, name);
    } else {
        versions_path(&path, name, v);
    }
    int rc = cli_api_call(api, "GET", sb_str(&path), NULL, NULL, out, NULL);
    sb_free(&path);
    if (rc == 0) {
        json_object_del(*out, "version");
        json_object_del(*out, "state");
    }
    return rc;
}

/* The CHANGES cell of one history row: what it changed from the definition before. */
static void describe(const json_t *row, const json_t *prev_def, const json_t *def, bool recreated,
                     char *buf, size_t cap)
{
    const char *op = json_string_value(json_object_get(row, "op"));
    if (op != NULL && strcmp(op, "delete") == 0) {
        snprintf(buf, cap, "deleted");
        return;
    }
    if (prev_def == NULL || def == NULL) {
        snprintf(buf, cap, def == NULL ? "?" : "created");
        return;
    }
    json_t *d = cli_json_diff(prev_def, def);
    struct strbuf sb;
    sb_init(&sb);
    if (recreated)
        sb_adds(&sb, "re-created");
    size_t i;
    json_t *it;
    json_array_foreach(d, i, it)
    {
        if (sb.len > 0)
            sb_adds(&sb, ", ");
        sb_adds(&sb, json_string_value(json_object_get(it, "path")));
    }
    if (sb.len == 0)
        sb_adds(&sb, "-");
    const char *s = sb_str(&sb);
    if (strlen(s) > CHANGES_SHOWN && cap > CHANGES_SHOWN + 4)
        snprintf(buf, cap, "%.*s...", CHANGES_SHOWN, s);
    else
        snprintf(buf, cap, "%s", s);
    sb_free(&sb);
    json_decref(d);
}

static int cmd_history(struct cli_api *api, const char *name)
{
    struct strbuf path;
    sb_init(&path);
    versions_path(&path, name, NULL);
    json_t *resp = NULL;
    int rc = cli_api_call(api, "GET", sb_str(&path), NULL, NULL, &resp, NULL);
    sb_free(&path);
    if (rc != 0)
        return rc;
    if (api->json) {
        cli_print_json(resp);
        json_decref(resp);
        return 0;
    }
    /* oldest first, so each version is compared with the definition before it */
    json_t *items = json_object_get(resp, "items");
    size_t n = json_array_size(items);
    json_t *rows = json_array(), *prev = NULL;
    bool after_delete = false;
    for (size_t k = n; rc == 0 && k-- > 0;) {
        json_t *row = json_deep_copy(json_array_get(items, k));
        const char *op = json_string_value(json_object_get(row, "op"));
        json_t *def = NULL;
        char cell[CHANGES_SHOWN + 8];
        if (op != NULL && strcmp(op, "delete") != 0) {
            char v[32];
            snprintf(v, sizeof v, "%lld",
                     (long long)json_integer_value(json_object_get(row, "version")));
            rc = fetch_definition(api, name, v, &def);
        }
        describe(row, prev, def, after_delete && def != NULL, cell, sizeof cell);
        json_object_set_new(row, "changes", json_string(cell));
        json_array_insert_new(rows, 0, row);
        after_delete = op != NULL && strcmp(op, "delete") == 0;
        if (def != NULL) { /* a re-created job is compared with what was deleted */
            json_decref(prev);
            prev = def;
        }
    }
    json_decref(prev);
    if (rc == 0) {
        static const struct cli_col cols[] = {
            {"VERSION", "version", NULL, false}, {"OP", "op", NULL, false},
            {"AT", "at", NULL, false},           {"WHO", "who", NULL, false},
            {"CHANGES", "changes", NULL, false},
        };
        cli_table(rows, cols, sizeof cols / sizeof cols[0]);
        json_t *cur = json_object_get(resp, "current");
        if (json_is_integer(cur))
            printf("current: version %lld\n", (long long)json_integer_value(cur));
        else
            printf("job \"%s\" is deleted; `tethys job restore %s V` brings a version back\n", name,
                   name);
    }
    json_decref(rows);
    json_decref(resp);
    return rc;
}

static int cmd_diff(struct cli_api *api, const char *name, const char *v1, const char *v2)
{
    if (parse_version(v1, "V1") < 0 || (strcmp(v2, "current") != 0 && parse_version(v2, "V2") < 0))
        return CLI_USAGE;
    json_t *a = NULL, *b = NULL;
    int rc = cli_api_open(api);
    if (rc == 0)
        rc = fetch_definition(api, name, v1, &a);
    if (rc == 0)
        rc = fetch_definition(api, name, v2, &b);
    json_t *d = rc == 0 ? cli_json_diff(a, b) : NULL;
    if (rc == 0 && d == NULL) {
        cli_error("out of memory");
        rc = CLI_SYSTEM;
    }
    if (rc == 0 && api->json) {
        json_t *out =
            json_pack("{s:s, s:s, s:s, s:O}", "job", name, "from", v1, "to", v2, "changes", d);
        cli_print_json(out);
        json_decref(out);
    } else if (rc == 0) {
        printf("job \"%s\": version %s -> %s%s\n", name, v1,
               strcmp(v2, "current") == 0 ? "" : "version ", v2);
        if (json_array_size(d) == 0) {
            printf("no differences\n");
        } else {
            struct strbuf sb;
            sb_init(&sb);
            cli_diff_format(d, &sb);
            fputs(sb_str(&sb), stdout);
            sb_free(&sb);
        }
    }
    json_decref(d);
    json_decref(a);
    json_decref(b);
    return rc;
}

static int cmd_restore(struct cli_api *api, const char *name, const char *v, const char *if_version)
{
    long long n = parse_version(v, "V");
    if (n < 0 || (if_version != NULL && parse_version(if_version, "--if-version") < 0))
        return CLI_USAGE;
    int rc = cli_api_open(api);
    if (rc != 0)
        return rc;
    struct strbuf path;
    sb_init(&path);
    sb_adds(&path, "/api/v1/jobs");
    client_path_add(&path, name);
    sb_adds(&path, "/restore");
    json_t *body = json_pack("{s:I}", "version", (json_int_t)n);
    json_t *resp = NULL;
    char *etag = NULL;
    rc = cli_api_call(api, "POST", sb_str(&path), body, if_version, &resp, &etag);
    if (rc == 0 && api->json) {
        cli_print_json(resp);
    } else if (rc == 0) {
        const json_t *now = json_object_get(resp, "version");
        if (json_is_integer(now))
            printf("job \"%s\" restored from version %lld (now version %lld)\n", name, n,
                   (long long)json_integer_value(now));
        else
            printf("job \"%s\" restored from version %lld (now version %s)\n", name, n,
                   etag ? etag : "?");
    }
    json_decref(resp);
    json_decref(body);
    free(etag);
    sb_free(&path);
    return rc;
}

int cli_job_versions(int argc, char **argv)
{
    const char *sub = argv[0];
    const char *if_version = NULL;
    struct cli_opt opts[2] = {{NULL, NULL, CLI_FLAG, NULL}, {NULL, NULL, CLI_FLAG, NULL}};
    bool is_restore = strcmp(sub, "restore") == 0, is_diff = strcmp(sub, "diff") == 0;
    if (is_restore)
        opts[0] = (struct cli_opt){"--if-version", NULL, CLI_VALUE, &if_version};
    struct cli_api api = {0};
    const char *pos[3] = {NULL, NULL, NULL};
    int max = is_diff ? 3 : is_restore ? 2 : 1, n_pos;
    int rc = cli_parse(argc - 1, argv + 1, opts, &api, pos, max, &n_pos, versions_usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    int need = is_diff ? 2 : max;
    if (n_pos < need) {
        cli_error("job %s: %s", sub,
                  is_diff      ? "give the job's NAME and the versions V1 [V2] to compare"
                  : is_restore ? "give the job's NAME and the version V to restore"
                               : "which job? give its NAME");
        versions_usage(stderr);
        return CLI_USAGE;
    }
    if (is_diff)
        rc = cmd_diff(&api, pos[0], pos[1], n_pos > 2 ? pos[2] : "current");
    else if (is_restore)
        rc = cmd_restore(&api, pos[0], pos[1], if_version);
    else if ((rc = cli_api_open(&api)) == 0)
        rc = cmd_history(&api, pos[0]);
    cli_api_close(&api);
    return rc;
}
