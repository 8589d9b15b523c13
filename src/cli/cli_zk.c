/*
 * cli_zk.c - `tethys zk`: the cluster's ZooKeeper side, for operators.
 *
 *   tethys zk clusters            the ensembles the servers use, with who leads and who is
 *                                 online (through the API, like every other command)
 *   tethys zk dump --zk HOSTS     Tethys's nodes under the chroot as one JSON document
 *   tethys zk restore --zk HOSTS  those nodes back into an ensemble (an empty chroot)
 *
 * dump and restore talk to ZooKeeper directly (zkc on a loop of their own, with the
 * cluster's credential), so they work with every server stopped: moving a cluster to a new
 * ensemble is dump, restore, then start the servers and executors with the new --zk.  What
 * is restored is what cannot be rebuilt: the secret servers and executors share, the
 * placements (so executors resume where they were) and the configuration doorbell.
 * Ephemeral nodes (servers, executors) are written to the dump for the record and never
 * restored: their processes make them again.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zookeeper/zookeeper.h>

#include "../core/b64.h"
#include "../core/utf8.h"
#include "../coord/coord_zk.h"
#include "../coord/zkc.h"
#include "../os/client.h"
#include "cli.h"

#define ZK_WAIT_MS 30000

static void zk_usage(FILE *out)
{
    fprintf(out,
            "usage: tethys zk clusters [--data DIR] [--json]\n"
            "       tethys zk dump --zk HOSTS[/CHROOT] [--zk-auth FILE] [--output FILE]\n"
            "       tethys zk restore --zk HOSTS[/CHROOT] [--zk-auth FILE] [--input FILE]\n"
            "\n"
            "clusters: the ZooKeeper ensembles the servers use, the leader, and the executors\n"
            "online and lost.  dump: Tethys's nodes under the chroot (default /tethys) as JSON\n"
            "(stdout, or --output FILE); restore: put a dump back into an ensemble whose chroot\n"
            "holds no Tethys data yet (stdin, or --input FILE).  Both read the digest\n"
            "credential from --zk-auth FILE (default ./zk-auth); the servers need not run.\n");
}

/* ---------------------------------------------------------------------------------------
 * A blocking session: one loop, run until each answer comes
 */

struct sess {
    uv_loop_t loop;
    struct zkc *zk;
    bool connected, failed;
    int pending;
};

static void on_event(void *arg, enum zkc_event ev, bool new_session)
{
    (void)new_session;
    struct sess *s = arg;
    if (ev == ZKC_CONNECTED)
        s->connected = true;
    else if (ev == ZKC_AUTH_FAILED)
        s->failed = true;
}

static void on_timeout(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* Run the loop until *done (or the deadline): false when the deadline came first. */
static bool run_until(struct sess *s, const bool *done)
{
    uv_timer_t t;
    uv_timer_init(&s->loop, &t);
    uv_timer_start(&t, on_timeout, ZK_WAIT_MS, 0);
    while (!*done && !s->failed && uv_timer_get_due_in(&t) > 0)
        if (uv_run(&s->loop, UV_RUN_ONCE) == 0)
            break;
    uv_timer_stop(&t);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    return *done;
}

/* Run the loop until every request counted in s->pending is answered (or the deadline). */
static void run_pending(struct sess *s)
{
    uv_timer_t t;
    uv_timer_init(&s->loop, &t);
    uv_timer_start(&t, on_timeout, ZK_WAIT_MS, 0);
    while (s->pending > 0 && uv_timer_get_due_in(&t) > 0)
        if (uv_run(&s->loop, UV_RUN_ONCE) == 0)
            break;
    uv_timer_stop(&t);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&s->loop, UV_RUN_NOWAIT);
}

static int sess_open(struct sess *s, const char *zk, const char *auth_file, struct ty_err *err)
{
    memset(s, 0, sizeof *s);
    char auth[256], *hosts = NULL;
    int rc = coord_zk_read_auth(auth_file, auth, sizeof auth, err);
    if (rc == 0)
        rc = coord_zk_hosts(zk, &hosts, err);
    if (rc != 0)
        return rc;
    uv_loop_init(&s->loop);
    struct zkc_config zc = {
        .hosts = hosts, .session_timeout_ms = 10000, .auth = auth, .on_event = on_event, .arg = s};
    rc = zkc_open(&s->loop, &zc, &s->zk, err);
    free(hosts);
    if (rc != 0) {
        uv_run(&s->loop, UV_RUN_NOWAIT);
        uv_loop_close(&s->loop);
        return rc;
    }
    if (!run_until(s, &s->connected))
        return ty_error(err, s->failed ? TY_EAUTH : TY_EUNAVAIL, "--zk", -1, 0,
                        s->failed ? "ZooKeeper refused the credential of --zk-auth"
                                  : "no ZooKeeper server of %s answered within %d s",
                        zk, ZK_WAIT_MS / 1000);
    return 0;
}

static void sess_close(struct sess *s)
{
    if (s->zk != NULL)
        zkc_close(s->zk);
    s->zk = NULL;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
}

/* ---------------------------------------------------------------------------------------
 * dump
 */

struct walk {
    struct sess *s;
    json_t *nodes; /* [{"path", "data" | "data_b64", "ephemeral"}] */
    int rc;
    int zrc;
    char failed_path[512];
};

struct visit {
    struct walk *w;
    char path[512];
};

static void visit(struct walk *w, const char *path);

static void on_children(void *arg, const struct zkc_reply *r)
{
    struct visit *v = arg;
    struct walk *w = v->w;
    if (r->rc == ZOK) {
        for (int i = 0; i < r->n_children; i++) {
            char child[1024];
            int len = snprintf(child, sizeof child, "%s/%s",
                               strcmp(v->path, "/") == 0 ? "" : v->path, r->children[i]);
            if (len >= (int)sizeof v->path) { /* no Tethys node is that deep */
                w->zrc = ZBADARGUMENTS;
                snprintf(w->failed_path, sizeof w->failed_path, "%.500s", child);
                continue;
            }
            visit(w, child);
        }
    } else if (r->rc != ZNONODE && w->zrc == 0) {
        w->zrc = r->rc;
        snprintf(w->failed_path, sizeof w->failed_path, "%s", v->path);
    }
    w->s->pending--;
    free(v);
}

static void on_data(void *arg, const struct zkc_reply *r)
{
    struct visit *v = arg;
    struct walk *w = v->w;
    if (r->rc == ZOK) {
        json_t *n =
            json_pack("{s:s, s:b}", "path", v->path, "ephemeral", r->stat.ephemeral_owner != 0);
        const unsigned char *d = (const unsigned char *)(r->data ? r->data : "");
        size_t len = r->data ? (size_t)r->len : 0;
        if (utf8_invalid_at(d, len) == len && memchr(d, 0, len) == NULL) {
            json_object_set_new(n, "data", json_stringn((const char *)d, len));
        } else {
            struct strbuf sb;
            sb_init(&sb);
            b64_encode(&sb, d, len);
            json_object_set_new(n, "data_b64", json_string(sb_str(&sb)));
            sb_free(&sb);
        }
        json_array_append_new(w->nodes, n);
    } else if (r->rc != ZNONODE && w->zrc == 0) {
        w->zrc = r->rc;
        snprintf(w->failed_path, sizeof w->failed_path, "%s", v->path);
    }
    w->s->pending--;
    free(v);
}

static void visit(struct walk *w, const char *path)
{
    struct visit *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        w->rc = TY_ENOMEM;
        return;
    }
    a->w = b->w = w;
    snprintf(a->path, sizeof a->path, "%s", path);
    snprintf(b->path, sizeof b->path, "%s", path);
    if (strcmp(path, "/") != 0) {
        w->s->pending++;
        if (zkc_get(w->s->zk, path, NULL, NULL, on_data, a) != 0) {
            w->s->pending--;
            free(a);
            w->rc = TY_EIO;
        }
    } else {
        free(a);
    }
    w->s->pending++;
    if (zkc_children(w->s->zk, path, NULL, NULL, on_children, b) != 0) {
        w->s->pending--;
        free(b);
        w->rc = TY_EIO;
    }
}

static int cmp_path(const void *x, const void *y)
{
    const json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
    return strcmp(json_string_value(json_object_get(a, "path")),
                  json_string_value(json_object_get(b, "path")));
}

static int zk_dump(const char *zk, const char *auth, const char *output)
{
    struct sess s;
    struct ty_err err;
    int rc = sess_open(&s, zk, auth, &err);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return rc == TY_EINVAL || rc == TY_ENOENT ? CLI_USAGE : CLI_SYSTEM;
    }
    struct walk w = {.s = &s, .nodes = json_array()};
    visit(&w, "/");
    run_pending(&s);
    int status = CLI_OK;
    if (w.rc != 0 || w.zrc != 0 || s.pending > 0) {
        cli_error("cannot read ZooKeeper's nodes: %s%s%s",
                  w.zrc       ? zkc_strerror(w.zrc)
                  : s.pending ? "no answer in time"
                              : "out of memory",
                  w.failed_path[0] ? " at " : "", w.failed_path);
        status = CLI_SYSTEM;
    } else {
        size_t n = json_array_size(w.nodes);
        json_t **v = malloc((n + 1) * sizeof(json_t *));
        for (size_t i = 0; v != NULL && i < n; i++)
            v[i] = json_array_get(w.nodes, i);
        if (v != NULL)
            qsort(v, n, sizeof(json_t *), cmp_path);
        json_t *sorted = json_array();
        for (size_t i = 0; v != NULL && i < n; i++)
            json_array_append(sorted, v[i]);
        free(v);
        json_t *doc = json_pack("{s:s, s:i, s:s, s:o}", "format", "tethys-zk-dump", "version", 1,
                                "zk", zk, "nodes", sorted);
        FILE *out = output ? fopen(output, "w") : stdout;
        if (out == NULL || json_dumpf(doc, out, JSON_INDENT(1)) != 0 || fputc('\n', out) == EOF) {
            cli_error("cannot write the dump%s%s", output ? " to " : "", output ? output : "");
            status = CLI_SYSTEM;
        }
        if (out != NULL && out != stdout && fclose(out) != 0)
            status = CLI_SYSTEM;
        if (status == CLI_OK)
            fprintf(stderr, "tethys: %zu nodes dumped from %s\n", n, zk);
        json_decref(doc);
    }
    json_decref(w.nodes);
    sess_close(&s);
    return status;
}

/* ---------------------------------------------------------------------------------------
 * restore
 */

struct create {
    struct sess *s;
    int rc;
    bool done;
};

static void on_created(void *arg, const struct zkc_reply *r)
{
    struct create *c = arg;
    c->rc = r->rc;
    c->done = true;
}

static int zk_restore(const char *zk, const char *auth, const char *input)
{
    json_error_t je;
    json_t *doc = input ? json_load_file(input, 0, &je) : json_loadf(stdin, 0, &je);
    if (doc == NULL) {
        cli_error("%s: not JSON (%s, line %d)", input ? input : "stdin", je.text, je.line);
        return CLI_USAGE;
    }
    const char *fmt = json_string_value(json_object_get(doc, "format"));
    json_t *nodes = json_object_get(doc, "nodes");
    if (fmt == NULL || strcmp(fmt, "tethys-zk-dump") != 0 || !json_is_array(nodes) ||
        json_integer_value(json_object_get(doc, "version")) != 1) {
        cli_error("%s: not a dump of `tethys zk dump` (format tethys-zk-dump, version 1)",
                  input ? input : "stdin");
        json_decref(doc);
        return CLI_USAGE;
    }
    /* every node is checked before anything is written */
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *path = json_string_value(json_object_get(n, "path"));
        if (path == NULL || path[0] != '/' || strstr(path, "//") != NULL || strlen(path) > 500 ||
            (json_object_get(n, "data") != NULL && !json_is_string(json_object_get(n, "data"))) ||
            (json_object_get(n, "data_b64") != NULL &&
             !json_is_string(json_object_get(n, "data_b64")))) {
            cli_error("nodes[%zu]: not a node (a path from the chroot, and data or data_b64 "
                      "as a string)",
                      i);
            json_decref(doc);
            return CLI_USAGE;
        }
    }
    struct sess s;
    struct ty_err err;
    int rc = sess_open(&s, zk, auth, &err);
    if (rc != 0) {
        json_decref(doc);
        cli_error("%s", err.msg);
        return rc == TY_EINVAL || rc == TY_ENOENT ? CLI_USAGE : CLI_SYSTEM;
    }
    int status = CLI_OK;
    size_t made = 0, skipped = 0;
    /* sorted by path in the dump: a parent comes before its children */
    json_array_foreach(nodes, i, n)
    {
        if (json_is_true(json_object_get(n, "ephemeral"))) {
            skipped++;
            continue;
        }
        const char *path = json_string_value(json_object_get(n, "path"));
        struct strbuf data;
        sb_init(&data);
        const char *text = json_string_value(json_object_get(n, "data"));
        const char *b64 = json_string_value(json_object_get(n, "data_b64"));
        if (text != NULL)
            sb_adds(&data, text);
        else if (b64 != NULL && b64_decode(&data, b64, strlen(b64)) != 0) {
            cli_error("nodes[%zu].data_b64: not base64", i);
            sb_free(&data);
            status = CLI_USAGE;
            break;
        }
        struct create c = {.s = &s};
        if (zkc_create(s.zk, path, data.len ? sb_str(&data) : NULL, (int)data.len, 0, on_created,
                       &c) != 0 ||
            !run_until(&s, &c.done)) {
            cli_error("%s: no answer from ZooKeeper", path);
            status = CLI_SYSTEM;
        } else if (c.rc == ZNODEEXISTS && strcmp(path, "/meta/secret") == 0) {
            cli_error("%s already holds Tethys data (/meta/secret exists): restore only into "
                      "an empty chroot",
                      zk);
            status = CLI_USAGE;
        } else if (c.rc != ZOK && c.rc != ZNODEEXISTS) {
            cli_error("%s: %s", path, zkc_strerror(c.rc));
            status = CLI_SYSTEM;
        } else if (c.rc == ZOK) {
            made++;
        }
        sb_free(&data);
        if (status != CLI_OK)
            break;
    }
    if (status == CLI_OK)
        fprintf(stderr,
                "tethys: %zu nodes restored into %s (%zu ephemeral left to their "
                "processes)\n",
                made, zk, skipped);
    json_decref(doc);
    sess_close(&s);
    return status;
}

/* ---------------------------------------------------------------------------------------
 * clusters
 */

static int zk_clusters(int argc, char **argv)
{
    struct cli_api api = {0};
    int n_pos;
    int rc = cli_parse(argc, argv, NULL, &api, NULL, 0, &n_pos, zk_usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    if ((rc = cli_api_open(&api)) != 0)
        return rc;
    json_t *resp = NULL;
    rc = cli_api_call(&api, "GET", "/api/v1/zk/clusters", NULL, NULL, &resp, NULL);
    static const struct cli_col cols[] = {
        {"NAME", "name", NULL, false},
        {"ZOOKEEPER", "zk", NULL, false},
        {"CONNECTED", "connected", NULL, false},
        {"LEADER", "leader_url", NULL, false},
        {"ONLINE", "executors_online", NULL, false},
        {"LOST", "executors_lost", NULL, false},
        {"JOBS", "jobs", NULL, false},
    };
    if (rc == 0 && api.json)
        cli_print_json(resp);
    else if (rc == 0)
        cli_table(json_object_get(resp, "items"), cols, sizeof cols / sizeof cols[0]);
    json_decref(resp);
    cli_api_close(&api);
    return rc;
}

int cli_zk(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        zk_usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[0], "clusters") == 0)
        return zk_clusters(argc - 1, argv + 1);
    if (strcmp(argv[0], "dump") != 0 && strcmp(argv[0], "restore") != 0) {
        cli_error("unknown zk command \"%s\" (clusters, dump, restore)", argv[0]);
        zk_usage(stderr);
        return CLI_USAGE;
    }
    const char *zk = NULL, *auth = "zk-auth", *file = NULL;
    bool dump = strcmp(argv[0], "dump") == 0;
    const struct cli_opt opts[] = {
        {"--zk", NULL, CLI_VALUE, &zk},
        {"--zk-auth", NULL, CLI_VALUE, &auth},
        {dump ? "--output" : "--input", dump ? "-o" : "-i", CLI_VALUE, &file},
        {NULL, NULL, 0, NULL},
    };
    struct cli_api api = {0};
    int n_pos;
    int rc = cli_parse(argc - 1, argv + 1, opts, &api, NULL, 0, &n_pos, zk_usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    if (zk == NULL) {
        cli_error("--zk: required (the ensemble, HOST:PORT,...[/CHROOT])");
        return CLI_USAGE;
    }
    return dump ? zk_dump(zk, auth, file) : zk_restore(zk, auth, file);
}
