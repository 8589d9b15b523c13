/*
 * cli_store.c - `tethys store copy --from DIR --to URL`: an embedded installation's store
 * (DIR/tethys.db) moved to PostgreSQL.  It talks to no server: it opens both stores.
 *
 * The server must be stopped, and the command checks that it is: it takes DIR's lock (the
 * flock a running server holds for its whole life, as `tethys restore` does) and keeps it
 * until done.  The executor's spool (DIR/spool) may still hold results on their way to
 * tethys.db; those belong to the SQLite store, so a spool with undelivered results is a
 * refusal (starting the server once on DIR and stopping it delivers them).  The target
 * must be empty - no row in any Tethys table; a database with only the schema a server or
 * an earlier attempt made is fine - so a copy never merges two histories.
 *
 * The copy goes through the store interface only (store_rows_scan on the source,
 * store_rows_load on the target: store.h), so the target's derived structures (job index,
 * run keys, partitions) are made by the target store itself.  Configuration (settings,
 * objects and their versions, tokens, secrets, alerts) is one transaction: it is all there
 * or none of it.  History (runs, then skipped fires) is streamed in transactions of
 * COPY_BATCH rows (fewer when outputs are large), so memory stays that of one batch and a
 * million runs need no single huge transaction; a failure there leaves a partial copy,
 * which the message says, with the advice to drop and recreate the database.  Counts per
 * table are compared at the end.  Only then is DIR/store.url written: from then on the
 * server refuses to start DIR without `--db URL` (daemon.c's check_store).  tethys.db is
 * never changed (opened read-only) and stays as a fallback.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "../core/strbuf.h"
#include "../executor/spool.h"
#include "../os/file.h"
#include "../store/store.h"

#define COPY_BATCH       1000               /* rows per load (and per history transaction) */
#define COPY_BATCH_BYTES ((size_t)32 << 20) /* ... or fewer when their text is this large */
#define COPY_STOPPED     1                  /* a scan callback's "stop": the load failed */

static void store_usage(FILE *out)
{
    fprintf(out,
            "usage: tethys store copy --from DIR --to postgresql://USER@HOST:PORT/DB [--json]\n"
            "\n"
            "Move an embedded installation's store to PostgreSQL: copy DIR/tethys.db - jobs,\n"
            "domains, calendars and every version of each, tokens, users and their roles,\n"
            "secrets, settings, alerts, runs with their output and skipped fires - into an\n"
            "empty PostgreSQL database (sessions are not copied: users sign in again).\n"
            "The server on DIR must be stopped.  The password comes from PGPASSWORD or\n"
            "~/.pgpass, never from the URL.  Counts per table are checked at the end; then\n"
            "DIR/store.url records the database, so the server must be started with\n"
            "`tethys server --data DIR --db URL`.  DIR/tethys.db is left as it was.\n");
}

/* The tables in the order they are copied: configuration (one transaction), history. */
static const enum store_table config_tables[] = {
    STORE_T_META,    STORE_T_OBJECTS, STORE_T_OBJECT_VERSIONS, STORE_T_TOKENS,
    STORE_T_SECRETS, STORE_T_ALERTS,  STORE_T_USERS,           STORE_T_GRANTS};
static const enum store_table history_tables[] = {STORE_T_RUNS, STORE_T_SKIPS};
#define N_CONFIG  (sizeof config_tables / sizeof config_tables[0])
#define N_HISTORY (sizeof history_tables / sizeof history_tables[0])

/* One table on its way from the source to the target. */
struct copier {
    struct store *to;
    enum store_table t;
    bool own_tx;    /* each batch is its own transaction (history) */
    json_t *batch;  /* rows waiting to be loaded */
    size_t bytes;   /* their text, roughly */
    int64_t copied; /* rows of t loaded (committed, for history) */
    int rc;         /* the load's failure */
    struct ty_err err;
};

static int flush(struct copier *c)
{
    if (json_array_size(c->batch) == 0)
        return 0;
    int rc = c->own_tx ? store_begin(c->to, &c->err) : 0;
    if (rc == 0)
        rc = store_rows_load(c->to, c->t, c->batch, &c->err);
    if (rc == 0 && c->own_tx)
        rc = store_commit(c->to, &c->err);
    if (rc != 0 && c->own_tx)
        store_rollback(c->to);
    if (rc != 0) {
        c->rc = rc;
        return COPY_STOPPED;
    }
    c->copied += (int64_t)json_array_size(c->batch);
    json_array_clear(c->batch);
    c->bytes = 0;
    return 0;
}

static int add_row(void *arg, const json_t *row)
{
    struct copier *c = arg;
    if (json_array_append(c->batch, (json_t *)row) != 0) {
        c->rc = ty_error(&c->err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        return COPY_STOPPED;
    }
    for (void *it = json_object_iter((json_t *)row); it != NULL;
         it = json_object_iter_next((json_t *)row, it)) {
        const json_t *v = json_object_iter_value(it);
        c->bytes += json_is_string(v) ? json_string_length(v) + 8 : 24;
    }
    if (json_array_size(c->batch) >= COPY_BATCH || c->bytes >= COPY_BATCH_BYTES)
        return flush(c);
    return 0;
}

/* Copy table t; 0, or an exit status after saying why (*copied: rows loaded). */
static int copy_table(struct store *from, struct store *to, enum store_table t, bool own_tx,
                      int64_t *copied)
{
    struct copier c = {.to = to, .t = t, .own_tx = own_tx, .batch = json_array()};
    ty_err_clear(&c.err);
    struct ty_err err;
    ty_err_clear(&err);
    int rc = c.batch != NULL ? store_rows_scan(from, t, add_row, &c, &err) : TY_ENOMEM;
    if (rc == 0)
        rc = flush(&c);
    json_decref(c.batch);
    *copied = c.copied;
    if (rc == COPY_STOPPED) {
        cli_error("store copy: writing %s to the target failed: %s", store_table_name(t),
                  c.err.msg);
        return cli_exit_for(c.rc);
    }
    if (rc != 0) {
        cli_error("store copy: reading %s from the source failed: %s", store_table_name(t),
                  rc == TY_ENOMEM && err.msg[0] == '\0' ? "out of memory" : err.msg);
        return cli_exit_for(rc);
    }
    return 0;
}

/* Refuse a spool with results not yet in tethys.db.  0, or an exit status after saying why. */
static int check_spool(const char *dir)
{
    struct strbuf path;
    sb_init(&path);
    sb_addf(&path, "%s/spool", dir);
    struct stat st;
    int rc = 0;
    if (stat(sb_str(&path), &st) == 0) {
        struct spool_config cfg = {.dir = sb_str(&path)};
        struct spool *sp = NULL;
        struct spool_recovered rec;
        struct ty_err err;
        ty_err_clear(&err);
        rc = spool_open(&cfg, &sp, &rec, &err);
        if (rc != 0) {
            cli_error("store copy: cannot read the spool: %s", err.msg);
            rc = cli_exit_for(rc);
        } else if (rec.undelivered > 0) {
            cli_error("store copy: the spool %s holds %" PRIu64 " run results not yet in "
                      "%s/tethys.db; start the server once on %s without --db (`tethys server "
                      "--data %s`) and stop it: that delivers them",
                      sb_str(&path), rec.undelivered, dir, dir, dir);
            rc = CLI_USAGE;
        }
        if (sp != NULL)
            spool_close(sp);
        json_decref(rec.unfinished);
        json_decref(rec.last_fires);
    }
    sb_free(&path);
    return rc;
}

/* DIR must hold an embedded store and not belong to PostgreSQL already. */
static int check_dir(const char *dir)
{
    struct strbuf p;
    sb_init(&p);
    sb_addf(&p, "%s/store.url", dir);
    char url[1024];
    struct ty_err err;
    int rc = 0;
    if (file_read_line(sb_str(&p), url, sizeof url, &err) == 0) {
        cli_error("store copy: the data directory %s already keeps its store in %s (%s)", dir, url,
                  sb_str(&p));
        rc = CLI_USAGE;
    } else {
        sb_truncate(&p, 0);
        sb_addf(&p, "%s/tethys.db", dir);
        if (access(sb_str(&p), F_OK) != 0) {
            cli_error("store copy: %s has no store to copy (no %s)", dir, sb_str(&p));
            rc = CLI_USAGE;
        }
    }
    sb_free(&p);
    return rc;
}

/* The target must hold no Tethys row.  0, or an exit status after saying why. */
static int check_empty(struct store *to, const char *url)
{
    struct strbuf found;
    sb_init(&found);
    int rc = 0;
    for (enum store_table t = STORE_T_META; rc == 0 && t <= STORE_T_GRANTS; t++) {
        int64_t n;
        struct ty_err err;
        if ((rc = store_rows_count(to, t, &n, &err)) != 0) {
            cli_error("store copy: %s", err.msg);
            rc = cli_exit_for(rc);
        } else if (n > 0) {
            sb_addf(&found, "%s%" PRId64 " in %s", found.len > 0 ? ", " : "", n,
                    store_table_name(t));
        }
    }
    if (rc == 0 && found.len > 0) {
        cli_error("store copy: the target database %s is not empty (rows: %s); the copy "
                  "fills a new, empty database: give another one, or drop and recreate it",
                  url, sb_str(&found));
        rc = CLI_USAGE;
    }
    sb_free(&found);
    return rc;
}

/* Counts per table in both stores; 0 when they all match, else an exit status. */
static int verify(struct store *from, struct store *to, json_t *counts)
{
    int rc = 0;
    for (enum store_table t = STORE_T_META; t <= STORE_T_GRANTS; t++) {
        int64_t a = -1, b = -1;
        struct ty_err err;
        int r = store_rows_count(from, t, &a, &err);
        if (r == 0)
            r = store_rows_count(to, t, &b, &err);
        if (r != 0) {
            cli_error("store copy: counting %s: %s", store_table_name(t), err.msg);
            return cli_exit_for(r);
        }
        json_object_set_new(
            counts, store_table_name(t),
            json_pack("{s:I, s:I}", "source", (json_int_t)a, "target", (json_int_t)b));
        if (a != b) {
            cli_error("store copy: %s: %" PRId64 " rows in the source, %" PRId64 " in the target",
                      store_table_name(t), a, b);
            rc = CLI_SYSTEM;
        }
    }
    return rc;
}

static void print_counts(const json_t *counts)
{
    printf("  %-16s %12s %12s\n", "table", "source", "target");
    for (void *it = json_object_iter((json_t *)counts); it != NULL;
         it = json_object_iter_next((json_t *)counts, it)) {
        const json_t *v = json_object_iter_value(it);
        printf("  %-16s %12" JSON_INTEGER_FORMAT " %12" JSON_INTEGER_FORMAT "\n",
               json_object_iter_key(it), json_integer_value(json_object_get(v, "source")),
               json_integer_value(json_object_get(v, "target")));
    }
}

/* The copy itself, DIR locked and checked.  0 or an exit status after saying why. */
static int do_copy(const struct cli_api *api, const char *dir, const char *url)
{
    struct strbuf db;
    sb_init(&db);
    sb_addf(&db, "%s/tethys.db", dir);
    struct store *from = NULL, *to = NULL;
    struct ty_err err;
    ty_err_clear(&err);
    json_t *counts = json_object();
    int rc = store_open_sqlite(sb_str(&db), true, &from, &err);
    if (rc != 0) {
        cli_error("store copy: cannot open the source: %s", err.msg);
        rc = cli_exit_for(rc);
        goto out;
    }
    if ((rc = store_open_pg(url, false, &to, &err)) != 0) {
        cli_error("store copy: cannot open the target: %s", err.msg);
        rc = cli_exit_for(rc);
        goto out;
    }
    if ((rc = check_empty(to, url)) != 0)
        goto out;

    /* configuration: one transaction */
    if ((rc = store_begin(to, &err)) != 0) {
        cli_error("store copy: %s", err.msg);
        rc = cli_exit_for(rc);
        goto out;
    }
    int64_t n;
    for (size_t i = 0; rc == 0 && i < N_CONFIG; i++)
        rc = copy_table(from, to, config_tables[i], false, &n);
    if (rc == 0 && (rc = store_commit(to, &err)) != 0) {
        cli_error("store copy: committing the configuration: %s", err.msg);
        rc = cli_exit_for(rc);
    }
    if (rc != 0) {
        store_rollback(to);
        cli_error("store copy: nothing was copied: the target holds no row of %s (only the "
                  "empty schema); %s is unchanged",
                  dir, sb_str(&db));
        goto out;
    }

    /* history: batches */
    for (size_t i = 0; rc == 0 && i < N_HISTORY; i++) {
        rc = copy_table(from, to, history_tables[i], true, &n);
        if (rc != 0)
            cli_error("store copy: the copy is partial: the target holds the configuration%s "
                      "and %" PRId64 " %s; drop and recreate the database and copy again. %s "
                      "is unchanged, and the server still starts on %s without --db",
                      i > 0 ? " and the runs" : "", n, store_table_name(history_tables[i]),
                      sb_str(&db), dir);
    }
    if (rc != 0)
        goto out;
    if ((rc = verify(from, to, counts)) != 0) {
        cli_error("store copy: the counts differ, so the copy is not trusted: drop and "
                  "recreate the database and copy again; %s is unchanged",
                  sb_str(&db));
        goto out;
    }

    /* the directory now belongs to PostgreSQL */
    struct strbuf marker, text;
    sb_init(&marker);
    sb_init(&text);
    sb_addf(&marker, "%s/store.url", dir);
    sb_addf(&text, "%s\n", url);
    rc = file_write_atomic(sb_str(&marker), sb_str(&text), text.len, 0600, true, &err);
    if (rc != 0) {
        cli_error("store copy: the copy is complete, but %s could not be written: %s; write "
                  "the URL into it yourself before starting the server with --db",
                  sb_str(&marker), err.msg);
        rc = cli_exit_for(rc);
    } else if (api->json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:O}", "from", sb_str(&db), "to", url, "store_url",
                              sb_str(&marker), "tables", counts);
        cli_print_json(o);
        json_decref(o);
    } else {
        printf("copied %s to %s:\n", sb_str(&db), url);
        print_counts(counts);
        printf("%s now records the store (%s); %s is left as it was.\n"
               "start the server with: tethys server --data %s --db %s\n",
               dir, sb_str(&marker), sb_str(&db), dir, url);
    }
    sb_free(&marker);
    sb_free(&text);
out:
    json_decref(counts);
    store_close(from);
    store_close(to);
    sb_free(&db);
    return rc;
}

static int cmd_copy(int argc, char **argv)
{
    struct cli_api api = {0};
    const char *from = NULL, *to = NULL;
    const struct cli_opt opts[] = {{"--from", NULL, CLI_VALUE, &from},
                                   {"--to", NULL, CLI_VALUE, &to},
                                   {NULL, NULL, CLI_FLAG, NULL}};
    int n_pos;
    int rc = cli_parse(argc, argv, opts, &api, NULL, 0, &n_pos, store_usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    if (from == NULL || to == NULL) {
        cli_error("store copy: give the data directory (--from DIR) and the database (--to "
                  "postgresql://USER@HOST:PORT/DB)");
        store_usage(stderr);
        return CLI_USAGE;
    }
    if (!store_is_url(to)) {
        cli_error("store copy: --to: \"%s\" is not a postgresql:// URL", to);
        return CLI_USAGE;
    }
    struct stat st;
    if (stat(from, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cli_error("store copy: --from: %s is not a directory", from);
        return CLI_USAGE;
    }
    if ((rc = check_dir(from)) != 0)
        return rc;
    int lock =
        cli_lock_dir(from, "store copy", "the copy must see the store as the server left it", &rc);
    if (lock < 0)
        return rc;
    if ((rc = check_spool(from)) == 0)
        rc = do_copy(&api, from, to);
    close(lock); /* releases the flock: a server may start now */
    return rc;
}

int cli_store(int argc, char **argv)
{
    if (argc < 1) {
        store_usage(stderr);
        return CLI_USAGE;
    }
    const char *sub = argv[0];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        store_usage(stdout);
        return CLI_OK;
    }
    if (strcmp(sub, "copy") != 0) {
        cli_error("unknown store command \"%s\"", sub);
        store_usage(stderr);
        return CLI_USAGE;
    }
    return cmd_copy(argc - 1, argv + 1);
}
