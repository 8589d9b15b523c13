/*
 * test_store.c - both stores, SQLite and PostgreSQL, proven by the same assertions.
 *
 * `test_store` runs every test against SQLite files in a temporary directory;
 * `test_store pg` runs the tests that are not about SQLite's file handling against
 * PostgreSQL - a fresh database per test on the server TETHYS_TEST_PG_URL names (password
 * in PGPASSWORD; tests/pg/with-pg.sh starts a private one and sets both) - plus the tests
 * only PostgreSQL has: URLs with passwords, the schema created once by two servers at
 * once, reconnecting after the server was stopped and started, day partitions made and
 * dropped, and two connections racing for one object, one fire, one domain's counts and
 * into a deadlock.  The fixture opens the chosen store (fx_open) and reads its tables with
 * plain SQL (db_int, db_text, db_exec), so a test does not know which store it runs on.
 *
 * What the tests cover, first for SQLite:
 * every operation and every documented error (messages asserted), idempotent appends,
 * final statuses that never regress, keyset pagination that returns every row exactly
 * once, a writer thread and a reader connection at once, schema versions, files that are
 * not Tethys databases, and a full disk (a 1 MB tmpfs when we may mount one, and
 * SQLite's max_page_count in any case).  Then schema version 2: configuration history,
 * tokens (a use recorded at most once a minute), secrets, backups (also under a writer's
 * load, and onto a full disk), the migration of tests/fixtures/store-v1.db (a database a
 * real version 1 server wrote; store-v1.json lists what it holds) with its backup, a
 * migration that fails, and store_check_sqlite.  Schema version 3: run statuses that only
 * move forward whatever order records are replayed in, job counts per domain subtree and
 * the index behind them checked against an oracle after every kind of change (and after
 * migrating tests/fixtures/store-v2.db, written by a real version 2 server), pages of
 * objects through every filter against an oracle, with writes between pages and with
 * SQLite's own step count as the proof that a page is index ranges, scans of 100,000
 * objects that build no JSON, and a calendar's users.  Schema version 4: what an executor
 * last fired of each job (the triggers, attempts, executors and windows that count), an
 * index range by SQLite's step count, the migration of tests/fixtures/store-v3.db (written
 * by a real version 3 server) and, on PostgreSQL, of a version 3 database whose day
 * partitions, old and new, all get the index.  Many jobs at once (jobs_get_many) against
 * obj_get and secrets_get name by name: names of no job, secrets left without one, a name
 * twice, none, 1,000, and on SQLite a few probes by the step count whatever the jobs.
 * Schema version 5: users (created with their grants, changed field by field, a new
 * password ending their other sessions, deleted with their sessions and grants), sign-in
 * outcomes counted atomically (two connections failing at once lose no count) with the
 * lock-out after the n-th failure, sessions (made, found, touched, pruned when past their
 * end or idle, deleted), grants of users and tokens, every refusal, the migration of
 * tests/fixtures/store-v4.db (written by a real version 4 server: its tokens become admins
 * of the whole tree) and of a PostgreSQL version 4 database, and users and grants carried
 * by a store copy.  How fast the store is is not a unit test's question:
 * bench/store/bench_store.c (make bench-store) measures it.
 */
#define _GNU_SOURCE /* unshare(2) */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "core/domain.h"
#include "store/store.h"

/* ---------------------------------------------------------------------------------------
 * Fixture: a fresh directory and database per test, SQLite or PostgreSQL.
 */

#define PG_URL_MAX 512
#define PG_EXTRA   4 /* databases a test may make besides its own */

struct fx {
    char dir[64];
    char path[128];
    char mnt[128]; /* a tmpfs mounted by the test, unmounted by teardown */
    bool mounted;
    struct store *s;
    /* PostgreSQL: this test's database, a connection to it for db_*, and the databases
     * the test made besides (dropped by teardown) */
    char db[64];
    char url[PG_URL_MAX];
    PGconn *raw;
    char extra[PG_EXTRA][72];
    int nextra;
};

static bool pg_mode;                  /* `test_store pg` */
static char pg_admin_url[PG_URL_MAX]; /* TETHYS_TEST_PG_URL: where test databases are made */

/* Remove a directory and everything below it (the tests make no symlinks). */
static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                rm_tree(p);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* libpq prints notices ("does not exist, skipping") to stderr by default. */
static void pg_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static PGconn *pg_connect(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect to the test PostgreSQL: %s", PQerrorMessage(c));
    PQsetNoticeProcessor(c, pg_quiet, NULL);
    return c;
}

/* Run SQL on the server's maintenance database (to make and drop test databases). */
static void pg_admin(const char *sql)
{
    PGconn *c = pg_connect(pg_admin_url);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

/* The admin URL with its database replaced by db (the query string, if any, kept). */
static void url_with_db(const char *db, char *out, size_t cap)
{
    const char *host = strstr(pg_admin_url, "://");
    assert_non_null(host);
    const char *slash = strchr(host + 3, '/'), *query = strchr(host + 3, '?');
    size_t keep = slash != NULL   ? (size_t)(slash - pg_admin_url)
                  : query != NULL ? (size_t)(query - pg_admin_url)
                                  : strlen(pg_admin_url);
    snprintf(out, cap, "%.*s/%s%s", (int)keep, pg_admin_url, db, query != NULL ? query : "");
}

/* A new empty database for this test, named <the test's database>_<suffix>, dropped by
 * teardown; its URL into url. */
static void fx_new_db(struct fx *f, const char *suffix, char *url, size_t cap)
{
    assert_true(f->nextra < PG_EXTRA);
    char *name = f->extra[f->nextra++];
    snprintf(name, sizeof f->extra[0], "%s_%s", f->db, suffix);
    char sql[160];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    pg_admin(sql);
    url_with_db(name, url, cap);
}

/* Open the store under test: this test's SQLite file or PostgreSQL database. */
static int fx_open(struct fx *f, bool read_only, struct store **out, struct ty_err *err)
{
    return pg_mode ? store_open_pg(f->url, read_only, out, err)
                   : store_open_sqlite(f->path, read_only, out, err);
}

static int setup(void **state)
{
    static int made;
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tethys-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/tethys.db", f->dir);
    if (pg_mode) {
        snprintf(f->db, sizeof f->db, "t_%ld_%d", (long)getpid(), ++made);
        char sql[128];
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", f->db);
        pg_admin(sql);
        url_with_db(f->db, f->url, sizeof f->url);
    }
    struct ty_err err;
    struct store *s;
    if (fx_open(f, false, &s, &err) != 0)
        fail_msg("open the store: %s", err.msg);
    f->s = s;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    if (f->mounted)
        umount2(f->mnt, MNT_DETACH);
    sqlite3_reset_auto_extension();
    rm_tree(f->dir);
    if (pg_mode) {
        if (f->raw != NULL)
            PQfinish(f->raw);
        char sql[160];
        for (int i = 0; i < f->nextra; i++) {
            snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->extra[i]);
            pg_admin(sql);
        }
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->db);
        pg_admin(sql);
    }
    free(f);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Helpers.
 */

static uint64_t next_run_id = 1;

struct run_buf {
    char id[STORE_ID_MAX];
    char fire[STORE_FIRE_ID_MAX];
    struct store_run r;
};

static void run_init(struct run_buf *b, const char *job, const char *domain, int64_t sched,
                     uint32_t shard, uint32_t attempt, enum store_run_status st)
{
    memset(b, 0, sizeof *b);
    snprintf(b->id, sizeof b->id, "%016" PRIx64, next_run_id++);
    snprintf(b->fire, sizeof b->fire, "%s@%" PRId64 "#%" PRIu32, job, sched, shard);
    b->r.run_id = b->id;
    b->r.fire_id = b->fire;
    b->r.job = job;
    b->r.domain = domain;
    b->r.shard = shard;
    b->r.attempt = attempt;
    b->r.trigger = STORE_TRIGGER_SCHEDULE;
    b->r.status = st;
    b->r.scheduled_at = sched;
    b->r.queued_at_ms = sched * 1000 + 1;
    b->r.exit_code = -1;
    if (st != STORE_RUN_QUEUED) {
        b->r.started_at_ms = sched * 1000 + 5;
        b->r.pid = 4242;
        b->r.pid_start = 777;
        b->r.boot_id = "boot-1";
    }
    if (st != STORE_RUN_QUEUED && st != STORE_RUN_RUNNING) {
        b->r.ended_at_ms = sched * 1000 + 105;
        b->r.exit_code = st == STORE_RUN_SUCCEEDED ? 0 : 1;
    }
    b->r.executor = "local";
    b->r.epoch = 3;
}

static void skip_init(struct store_skip *k, char *fire, size_t cap, const char *job,
                      const char *domain, int64_t sched, int32_t shard,
                      enum store_skip_reason reason)
{
    memset(k, 0, sizeof *k);
    snprintf(fire, cap, "%s@%" PRId64 "#%" PRId32, job, sched, shard);
    k->fire_id = fire;
    k->job = job;
    k->domain = domain;
    k->shard = shard;
    k->scheduled_at = sched;
    k->recorded_at_ms = sched * 1000 + 9;
    k->reason = reason;
    k->trigger = STORE_TRIGGER_SCHEDULE;
}

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void raw_text(const char *path, const char *sql, char *buf, size_t cap)
{
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = raw_open(path);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* SQL on the store under test, from a connection of its own.  SQL2 picks the text for the
 * store under test where the two dialects differ. */
#define SQL2(lite, pg) (pg_mode ? (pg) : (lite))

static PGresult *db_pg(struct fx *f, const char *sql, ExecStatusType want)
{
    if (f->raw == NULL)
        f->raw = pg_connect(f->url);
    else if (PQstatus(f->raw) != CONNECTION_OK)
        PQreset(f->raw);
    PGresult *r = PQexec(f->raw, sql);
    if (PQresultStatus(r) != want)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    return r;
}

static int64_t db_int(struct fx *f, const char *sql)
{
    if (!pg_mode)
        return raw_int(f->path, sql);
    PGresult *r = db_pg(f, sql, PGRES_TUPLES_OK);
    assert_true(PQntuples(r) >= 1);
    int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static void db_text(struct fx *f, const char *sql, char *buf, size_t cap)
{
    if (!pg_mode) {
        raw_text(f->path, sql, buf, cap);
        return;
    }
    PGresult *r = db_pg(f, sql, PGRES_TUPLES_OK);
    assert_true(PQntuples(r) >= 1);
    snprintf(buf, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

static void db_exec(struct fx *f, const char *sql)
{
    if (!pg_mode) {
        raw_exec(f->path, sql);
        return;
    }
    PQclear(db_pg(f, sql, PGRES_COMMAND_OK));
}

#define assert_err(call, code, text)                                                               \
    do {                                                                                           \
        struct ty_err e_;                                                                          \
        ty_err_clear(&e_);                                                                         \
        int rc_ = (call);                                                                          \
        if (rc_ != (code) || strstr(e_.msg, (text)) == NULL)                                       \
            fail_msg("%s: got %d \"%s\", want %d with \"%s\"", #call, rc_, e_.msg, (code),         \
                     (text));                                                                      \
    } while (0)

#define assert_ok(call)                                                                            \
    do {                                                                                           \
        struct ty_err e_;                                                                          \
        ty_err_clear(&e_);                                                                         \
        int rc_ = (call);                                                                          \
        if (rc_ != 0)                                                                              \
            fail_msg("%s: %d %s", #call, rc_, e_.msg);                                             \
    } while (0)

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int64_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v))
        fail_msg("\"%s\" is not an integer", k);
    return json_integer_value(v);
}

/* Every item of a history query, page by page, checking the order as it goes. */
static json_t *history_all(struct store *s, struct store_history_query q, size_t limit, int *pages)
{
    json_t *all = json_array();
    char cursor[128] = "";
    q.limit = limit;
    *pages = 0;
    int64_t last_sched = INT64_MAX;
    int last_src = 1;
    for (;;) {
        json_t *page;
        q.cursor = cursor[0] ? cursor : NULL;
        assert_ok(store_history(s, &q, &page, &e_));
        (*pages)++;
        json_t *items = json_object_get(page, "items");
        assert_true(json_array_size(items) <= limit);
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            int64_t sched = jint(it, "scheduled_at");
            int src = strcmp(jstr(it, "kind"), "run") == 0;
            assert_true(sched < last_sched || (sched == last_sched && src <= last_src));
            last_sched = sched;
            last_src = src;
            json_array_append(all, it);
        }
        json_t *next = json_object_get(page, "next");
        if (json_is_null(next)) {
            json_decref(page);
            break;
        }
        assert_int_equal(json_array_size(items), limit);
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        json_decref(page);
    }
    return all;
}

static size_t history_count(struct store *s, struct store_history_query q)
{
    int pages;
    json_t *all = history_all(s, q, 1000, &pages);
    size_t n = json_array_size(all);
    json_decref(all);
    return n;
}

/* ---------------------------------------------------------------------------------------
 * Opening: schema creation, versions, files that are not ours.
 */

static void test_open_creates_schema(void **state)
{
    struct fx *f = *state;
    char *v;
    assert_ok(store_meta_get(f->s, "schema_version", &v, &e_));
    assert_string_equal(v, "5");
    free(v);
    /* a new file is created at the current version directly: nothing to back up */
    assert_int_equal(db_int(f, "SELECT count(*) FROM sqlite_schema WHERE name IN"
                               " ('tokens', 'secrets')"),
                     2);
    assert_err(store_meta_get(f->s, "last_migration", &v, &e_), TY_ENOENT, "not set");
    char mode[16];
    db_text(f, "PRAGMA journal_mode", mode, sizeof mode);
    assert_string_equal(mode, "wal");
    assert_int_equal(db_int(f, "PRAGMA application_id"), 0x54455459);
    /* reopening migrates nothing and keeps the data */
    assert_ok(store_meta_set(f->s, "epoch", "7", &e_));
    store_close(f->s);
    f->s = NULL;
    struct store *s; /* not &f->s: the analyzer keeps *f when f->path is passed as const */
    assert_ok(store_open_sqlite(f->path, false, &s, &e_));
    f->s = s;
    assert_ok(store_meta_get(s, "epoch", &v, &e_));
    assert_string_equal(v, "7");
    free(v);
    /* a reader connection beside the writer */
    struct store *r;
    assert_ok(fx_open(f, true, &r, &e_));
    assert_ok(store_meta_get(r, "epoch", &v, &e_));
    assert_string_equal(v, "7");
    free(v);
    assert_err(store_meta_set(r, "epoch", "8", &e_), TY_EINVAL, "is open read-only");
    store_close(r);
    assert_int_equal(db_int(f, "SELECT count(*) FROM meta"), 2);
}

static void test_open_refuses(void **state)
{
    struct fx *f = *state;
    struct store *s = NULL;
    char p[192];

    /* garbage */
    snprintf(p, sizeof p, "%s/garbage.db", f->dir);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    for (int i = 0; i < 4096; i++)
        fputc("garbage!"[i % 8], fp);
    fclose(fp);
    assert_err(store_open_sqlite(p, false, &s, &e_), TY_EFORMAT, "is not a SQLite database");
    assert_null(s);
    assert_err(store_open_sqlite(p, true, &s, &e_), TY_EFORMAT, "is not a SQLite database");

    /* somebody else's SQLite database: refused and left as it was */
    snprintf(p, sizeof p, "%s/other.db", f->dir);
    raw_exec(p, "CREATE TABLE t (x); INSERT INTO t VALUES (1)");
    assert_err(store_open_sqlite(p, false, &s, &e_), TY_EFORMAT, "not a Tethys one");
    char mode[16];
    raw_text(p, "PRAGMA journal_mode", mode, sizeof mode);
    assert_string_equal(mode, "delete");
    assert_int_equal(raw_int(p, "SELECT count(*) FROM sqlite_schema"), 1);

    /* written by a newer Tethys */
    store_close(f->s);
    f->s = NULL;
    db_exec(f, "UPDATE meta SET value = '99' WHERE key = 'schema_version'");
    assert_err(store_open_sqlite(f->path, false, &s, &e_), TY_EFORMAT,
               "tethys.db has schema version 99, from a newer Tethys; this binary knows 1 to 5: "
               "upgrade tethys, or `tethys restore` the tethys.db.v5-*.bak the upgrade left");
    assert_err(store_open_sqlite(f->path, true, &s, &e_), TY_EFORMAT, "schema version 99");
    db_exec(f, "UPDATE meta SET value = 'x1' WHERE key = 'schema_version'");
    assert_err(store_open_sqlite(f->path, false, &s, &e_), TY_EFORMAT,
               "schema_version \"x1\" in meta is not a version number");
    db_exec(f, "UPDATE meta SET value = '5' WHERE key = 'schema_version'");
    assert_ok(store_open_sqlite(f->path, false, &s, &e_));
    f->s = s;

    /* cannot open at all */
    snprintf(p, sizeof p, "%s/missing.db", f->dir);
    assert_err(store_open_sqlite(p, true, &s, &e_), TY_EIO, "cannot open");
    assert_err(store_open_sqlite(f->dir, false, &s, &e_), TY_EIO, f->dir);
    snprintf(p, sizeof p, "%s/no/such/dir/t.db", f->dir);
    assert_err(store_open_sqlite(p, false, &s, &e_), TY_EIO, "cannot open");
    assert_err(store_open_sqlite("", false, &s, &e_), TY_EINVAL, "path is empty");

    /* an empty database file cannot be read before the writer created the schema */
    snprintf(p, sizeof p, "%s/empty.db", f->dir);
    fp = fopen(p, "w");
    fclose(fp);
    assert_err(store_open_sqlite(p, true, &s, &e_), TY_EFORMAT,
               "has no Tethys schema yet; open it read-write first");
    assert_ok(store_open_sqlite(p, false, &s, &e_));
    store_close(s);
}

/* ---------------------------------------------------------------------------------------
 * Config objects.
 */

static void test_obj_versions(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t v = 0;
    char *json;
    const char *j1 = "{\"name\":\"nightly\",\"domain\":\"bank\",\"command\":\"true\"}";
    const char *j2 = "{\"name\":\"nightly\",\"domain\":\"bank\",\"command\":\"false\"}";
    const char *j3 = "{\"name\":\"nightly\",\"domain\":\"bank/eu\",\"command\":\"x\"}";

    assert_ok(store_obj_put(s, STORE_JOB, "nightly", j1, -1, "alice", &v, &e_));
    assert_int_equal(v, 1);
    assert_err(store_obj_put(s, STORE_JOB, "nightly", j2, -1, "bob", &v, &e_), TY_EEXIST,
               "obj_put job \"nightly\": already exists (version 1)");
    assert_ok(store_obj_put(s, STORE_JOB, "nightly", j2, 0, "bob", &v, &e_));
    assert_int_equal(v, 2);
    assert_ok(store_obj_put(s, STORE_JOB, "nightly", j1, 2, "carol", &v, &e_));
    assert_int_equal(v, 3);
    assert_err(store_obj_put(s, STORE_JOB, "nightly", j3, 2, "dave", &v, &e_), TY_ECONFLICT,
               "changed by someone else: it is at version 3, the change was based on version 2");
    /* the same JSON again is not a change */
    assert_ok(store_obj_put(s, STORE_JOB, "nightly", j1, 3, "erin", &v, &e_));
    assert_int_equal(v, 3);
    assert_err(store_obj_put(s, STORE_JOB, "ghost", j1, 4, NULL, &v, &e_), TY_ENOENT,
               "obj_put job \"ghost\": not found (the change was based on version 4)");

    assert_ok(store_obj_get(s, STORE_JOB, "nightly", &json, &v, &e_));
    assert_string_equal(json, j1);
    assert_int_equal(v, 3);
    free(json);
    assert_err(store_obj_get(s, STORE_JOB, "ghost", &json, &v, &e_), TY_ENOENT,
               "obj_get job \"ghost\": not found");
    /* kinds are separate name spaces */
    assert_err(store_obj_get(s, STORE_CALENDAR, "nightly", &json, &v, &e_), TY_ENOENT, "calendar");

    assert_err(store_obj_delete(s, STORE_JOB, "nightly", 2, "gina", &e_), TY_ECONFLICT,
               "it is at version 3, the delete was based on version 2");
    assert_ok(store_obj_delete(s, STORE_JOB, "nightly", 3, "gina", &e_));
    assert_err(store_obj_get(s, STORE_JOB, "nightly", &json, &v, &e_), TY_ENOENT, "not found");
    assert_err(store_obj_delete(s, STORE_JOB, "nightly", 0, NULL, &e_), TY_ENOENT,
               "obj_delete job \"nightly\": not found");
    assert_err(store_obj_put(s, STORE_JOB, "nightly", j3, 3, NULL, &v, &e_), TY_ENOENT,
               "not found");
    /* a re-created object continues the version count: ETags are never reused */
    assert_ok(store_obj_put(s, STORE_JOB, "nightly", j3, -1, "frank", &v, &e_));
    assert_int_equal(v, 5);

    /* every change is a row in object_versions, with who and what */
    assert_int_equal(db_int(f, "SELECT count(*) FROM object_versions"), 5);
    char buf[256];
    db_text(f,
            SQL2("SELECT group_concat(version || ':' || op || ':' || coalesce(who, '-'), ',')"
                 " FROM (SELECT * FROM object_versions ORDER BY version)",
                 "SELECT string_agg(version || ':' || op || ':' || coalesce(who, '-'), ','"
                 " ORDER BY version) FROM object_versions"),
            buf, sizeof buf);
    assert_string_equal(buf,
                        "1:create:alice,2:update:bob,3:update:carol,4:delete:gina,5:create:frank");
    db_text(f, "SELECT json FROM object_versions WHERE version = 2", buf, sizeof buf);
    assert_string_equal(buf, j2);
    assert_int_equal(
        db_int(f, "SELECT count(*) FROM object_versions WHERE version = 4 AND json IS NULL"), 1);
}

static void test_obj_errors(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t v;
    char *json;
    assert_err(store_obj_put(s, (enum store_kind)9, "x", "{}", 0, NULL, &v, &e_), TY_EINVAL,
               "kind 9 is not a config object kind");
    assert_err(store_obj_put(s, STORE_JOB, "", "{}", 0, NULL, &v, &e_), TY_EINVAL,
               "name must be 1 to 256 bytes");
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_err(store_obj_put(s, STORE_JOB, longname, "{}", 0, NULL, &v, &e_), TY_EINVAL,
               "name must be");
    assert_err(store_obj_put(s, STORE_JOB, "x", NULL, 0, NULL, &v, &e_), TY_EINVAL,
               "json is missing");
    assert_err(store_obj_put(s, STORE_JOB, "x", "{not json", 0, NULL, &v, &e_), TY_EINVAL,
               "obj_put job \"x\": json is not a JSON object");
    assert_err(store_obj_put(s, STORE_JOB, "x", "[1,2]", 0, NULL, &v, &e_), TY_EINVAL,
               "json is not a JSON object");
    assert_err(store_obj_put(s, STORE_JOB, "x", "{}", -2, NULL, &v, &e_), TY_EINVAL,
               "base_version -2 is not -1 (create), 0 (any) or a version");
    assert_err(store_obj_delete(s, STORE_JOB, "x", -1, NULL, &e_), TY_EINVAL,
               "base_version -1 is not 0 (any) or a version");
    assert_err(store_obj_get(s, STORE_DOMAIN, NULL, &json, &v, &e_), TY_EINVAL, "name");
    /* nothing of that was stored */
    assert_int_equal(db_int(f, "SELECT count(*) FROM objects"), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM object_versions"), 0);
    struct ty_err err;
    assert_int_equal(store_obj_put(s, STORE_JOB, "x", "{bad", 0, NULL, &v, &err), TY_EINVAL);
    assert_string_equal(err.field, "json");
}

static void test_obj_list(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    static const char *const doms[][2] = {
        {"j-a", "a"},     {"j-ab", "ab"},       {"j-a-b", "a-b"}, {"j-a.c", "a.c"},
        {"j-a/b", "a/b"}, {"j-a/b/c", "a/b/c"}, {"j-root", ""},
    };
    int64_t v;
    for (size_t i = 0; i < sizeof doms / sizeof doms[0]; i++) {
        char json[128];
        snprintf(json, sizeof json, "{\"domain\":\"%s\",\"n\":%zu}", doms[i][1], i);
        assert_ok(store_obj_put(s, STORE_JOB, doms[i][0], json, -1, "t", &v, &e_));
    }
    assert_ok(store_obj_put(s, STORE_JOB, "j-none", "{\"n\":99}", -1, "t", &v, &e_));
    assert_ok(store_obj_put(s, STORE_DOMAIN, "a", "{\"level\":1}", -1, "t", &v, &e_));
    assert_ok(store_obj_put(s, STORE_DOMAIN, "a/x", "{\"level\":2}", -1, "t", &v, &e_));
    assert_ok(store_obj_put(s, STORE_DOMAIN, "ab", "{\"level\":3}", -1, "t", &v, &e_));
    assert_ok(store_obj_put(s, STORE_CALENDAR, "hol", "{\"dates\":[]}", -1, "t", &v, &e_));

    json_t *out;
    assert_ok(store_obj_list(s, STORE_JOB, "a", &out, &e_));
    assert_int_equal(json_array_size(out), 3);
    assert_string_equal(jstr(json_array_get(out, 0), "name"), "j-a");
    assert_string_equal(jstr(json_array_get(out, 1), "name"), "j-a/b");
    assert_string_equal(jstr(json_array_get(out, 2), "name"), "j-a/b/c");
    json_t *o = json_array_get(out, 0);
    assert_int_equal(jint(o, "version"), 1);
    assert_true(jint(o, "updated_at") > 1700000000);
    assert_int_equal(jint(o, "updated_at"), jint(o, "updated_at_ms") / 1000);
    assert_string_equal(jstr(o, "updated_by"), "t");
    assert_string_equal(jstr(json_object_get(o, "object"), "domain"), "a");
    json_decref(out);

    assert_ok(store_obj_list(s, STORE_JOB, "a/b", &out, &e_));
    assert_int_equal(json_array_size(out), 2);
    json_decref(out);
    assert_ok(store_obj_list(s, STORE_JOB, NULL, &out, &e_));
    assert_int_equal(json_array_size(out), 8); /* ordered by name */
    assert_string_equal(jstr(json_array_get(out, 0), "name"), "j-a");
    assert_string_equal(jstr(json_array_get(out, 7), "name"), "j-root");
    json_decref(out);
    assert_ok(store_obj_list(s, STORE_JOB, "", &out, &e_)); /* the root holds everything */
    assert_int_equal(json_array_size(out), 8);
    json_decref(out);
    assert_ok(store_obj_list(s, STORE_DOMAIN, "a", &out, &e_));
    assert_int_equal(json_array_size(out), 2);
    json_decref(out);
    assert_ok(store_obj_list(s, STORE_CALENDAR, "a", &out, &e_));
    assert_int_equal(json_array_size(out), 1);
    json_decref(out);
    assert_err(store_obj_list(s, (enum store_kind)0, NULL, &out, &e_), TY_EINVAL, "kind 0");
}

/* ---------------------------------------------------------------------------------------
 * Jobs by domain subtree: counts, and the index that pages them.
 */

/* A job's domain as the store reads it: "domain" when it is a string, else the root. */
static const char *job_domain(json_t *obj)
{
    const char *d = json_string_value(json_object_get(obj, "domain"));
    return d != NULL ? d : "";
}

/* Domains of a job's chain: its own, then each parent (core/domain.h) up to the root. */
static size_t chain_len(const char *domain)
{
    char a[512], b[512];
    snprintf(a, sizeof a, "%s", domain);
    size_t n = 1;
    while (a[0] != '\0') {
        domain_parent(a, b, sizeof b);
        memcpy(a, b, sizeof a);
        n++;
    }
    return n;
}

/* An integer from the store under test (f), or from the SQLite file at path when f is
 * NULL. */
static int64_t q_int(struct fx *f, const char *path, const char *sql)
{
    return f != NULL ? db_int(f, sql) : raw_int(path, sql);
}

/* Each job's rows in job_domains: {"<job>": [enabled, rows]}; fails when a job is filed
 * both enabled and disabled. */
static json_t *job_groups(struct fx *f, const char *path)
{
    static const char sql[] =
        "SELECT job, enabled, count(*) FROM job_domains GROUP BY job, enabled";
    json_t *groups = json_object();
    if (f != NULL && pg_mode) {
        PGresult *r = db_pg(f, sql, PGRES_TUPLES_OK);
        for (int i = 0; i < PQntuples(r); i++) {
            const char *job = PQgetvalue(r, i, 0);
            if (json_object_get(groups, job) != NULL)
                fail_msg("job %s is filed both enabled and disabled", job);
            json_object_set_new(groups, job,
                                json_pack("[I,I]",
                                          (json_int_t)strtoll(PQgetvalue(r, i, 1), NULL, 10),
                                          (json_int_t)strtoll(PQgetvalue(r, i, 2), NULL, 10)));
        }
        PQclear(r);
        return groups;
    }
    sqlite3 *db = raw_open(f != NULL ? f->path : path);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *job = (const char *)sqlite3_column_text(st, 0);
        if (json_object_get(groups, job) != NULL)
            fail_msg("job %s is filed both enabled and disabled", job);
        json_object_set_new(
            groups, job,
            json_pack("[i,I]", sqlite3_column_int(st, 1), (json_int_t)sqlite3_column_int64(st, 2)));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return groups;
}

/*
 * The job index of the committed store (f's, or the SQLite file at path), read through s,
 * against an oracle
 * computed from every job: store_job_count of each domain a job names, each ancestor and
 * a few look-alikes is the number of jobs within it (domain_within); job_counts holds
 * exactly what job_domains does; every job has one row per domain of its chain, with its
 * enabled flag.
 */
static void check_job_index_of(struct fx *f, const char *path, struct store *s)
{
    json_t *jobs;
    assert_ok(store_obj_list(s, STORE_JOB, NULL, &jobs, &e_));
    json_t *probes = json_object(); /* a set of domains */
    static const char *const extra[] = {"", "a", "a/", "a/b", "ab", "zz", "a/b/c/d", "bank/s"};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        json_object_set_new(probes, extra[i], json_true());
    /* each job's rows: one group of its chain's length, with its enabled flag */
    json_t *groups = job_groups(f, path);
    assert_int_equal(json_object_size(groups), json_array_size(jobs));
    size_t i, rows = 0;
    json_t *it;
    json_array_foreach(jobs, i, it)
    {
        char a[512], b[512];
        snprintf(a, sizeof a, "%s", job_domain(json_object_get(it, "object")));
        for (;;) {
            json_object_set_new(probes, a, json_true());
            if (a[0] == '\0')
                break;
            domain_parent(a, b, sizeof b);
            memcpy(a, b, sizeof a);
        }
        json_t *obj = json_object_get(it, "object");
        rows += chain_len(job_domain(obj));
        json_t *g = json_object_get(groups, jstr(it, "name"));
        assert_non_null(g);
        assert_int_equal(json_integer_value(json_array_get(g, 0)),
                         json_is_false(json_object_get(obj, "enabled")) ? 0 : 1);
        assert_int_equal(json_integer_value(json_array_get(g, 1)), chain_len(job_domain(obj)));
    }
    json_decref(groups);
    const char *d;
    json_t *p;
    json_object_foreach(probes, d, p)
    {
        int64_t want = 0, got = -1;
        size_t k;
        json_array_foreach(jobs, k, it)
        {
            want += domain_within(job_domain(json_object_get(it, "object")), d);
        }
        assert_ok(store_job_count(s, d, &got, &e_));
        if (got != want)
            fail_msg("job_count \"%s\": %" PRId64 ", want %" PRId64, d, got, want);
    }
    assert_int_equal(q_int(f, path, "SELECT count(*) FROM job_domains"), rows);
    assert_int_equal(q_int(f, path,
                           "SELECT count(*) FROM (SELECT domain, count(*) FROM job_domains"
                           " GROUP BY domain EXCEPT SELECT domain, jobs FROM job_counts) AS x"),
                     0);
    assert_int_equal(q_int(f, path,
                           "SELECT count(*) FROM (SELECT domain, jobs FROM job_counts"
                           " EXCEPT SELECT domain, count(*) FROM job_domains"
                           " GROUP BY domain) AS x"),
                     0);
    json_decref(probes);
    json_decref(jobs);
}

static void check_job_index(struct fx *f, struct store *s)
{
    check_job_index_of(f, NULL, s);
}

/* The same for a SQLite file other than the fixture's (a migrated copy). */
static void check_job_index_file(const char *path, struct store *s)
{
    check_job_index_of(NULL, path, s);
}

static void put_job(struct store *s, const char *name, const char *domain, bool enabled)
{
    char json[512];
    snprintf(json, sizeof json, "{\"name\":\"%s\",\"domain\":\"%s\",\"enabled\":%s}", name, domain,
             enabled ? "true" : "false");
    int64_t v;
    assert_ok(store_obj_put(s, STORE_JOB, name, json, 0, "t", &v, &e_));
}

static int64_t job_count(struct store *s, const char *domain)
{
    int64_t n = -1;
    assert_ok(store_job_count(s, domain, &n, &e_));
    return n;
}

static void test_job_count(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    assert_int_equal(job_count(s, ""), 0);
    assert_int_equal(job_count(s, "a"), 0);
    /* look-alike domains: only "a" and "a/..." lie in a's subtree */
    static const char *const doms[][2] = {
        {"j-root", ""},     {"j-a", "a"},         {"j-ab", "ab"},
        {"j-a-b", "a-b"},   {"j-a.c", "a.c"},     {"j-a/b", "a/b"},
        {"j-a/bc", "a/bc"}, {"j-a/b/c", "a/b/c"}, {"j-a/b/c2", "a/b/c"},
    };
    for (size_t i = 0; i < sizeof doms / sizeof doms[0]; i++)
        put_job(s, doms[i][0], doms[i][1], true);
    int64_t v;
    assert_ok(store_obj_put(s, STORE_JOB, "j-none", "{\"n\":1}", -1, "t", &v, &e_));
    assert_int_equal(job_count(s, ""), 10);
    assert_int_equal(job_count(s, NULL), 10);
    assert_int_equal(job_count(s, "a"), 5);
    assert_int_equal(job_count(s, "a/b"), 3);
    assert_int_equal(job_count(s, "a/b/c"), 2);
    assert_int_equal(job_count(s, "ab"), 1);
    assert_int_equal(job_count(s, "a/"), 0);
    check_job_index(f, s);

    /* other kinds are not jobs */
    assert_ok(store_obj_put(s, STORE_DOMAIN, "a", "{\"path\":\"a\"}", -1, "t", &v, &e_));
    assert_ok(store_obj_put(s, STORE_CALENDAR, "a", "{\"domain\":\"a\"}", -1, "t", &v, &e_));
    assert_int_equal(job_count(s, "a"), 5);

    /* a move touches the two chains where they differ */
    put_job(s, "j-a/b/c", "ab", true);
    assert_int_equal(job_count(s, "a"), 4);
    assert_int_equal(job_count(s, "a/b"), 2);
    assert_int_equal(job_count(s, "a/b/c"), 1);
    assert_int_equal(job_count(s, "ab"), 2);
    assert_int_equal(job_count(s, ""), 10);
    put_job(s, "j-a/b/c2", "a", true); /* up its own chain */
    assert_int_equal(job_count(s, "a"), 4);
    assert_int_equal(job_count(s, "a/b/c"), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM job_counts WHERE domain = 'a/b/c'"), 0);
    check_job_index(f, s);
    /* disabling or an edit elsewhere changes no count; the same JSON changes nothing */
    put_job(s, "j-a/b", "a/b", false);
    assert_int_equal(job_count(s, "a/b"), 1);
    put_job(s, "j-a/b", "a/b", false);
    check_job_index(f, s);
    put_job(s, "j-a/b", "x/y", true); /* moved and enabled at once */
    check_job_index(f, s);

    /* deletes; an empty subtree has no row */
    assert_ok(store_obj_delete(s, STORE_JOB, "j-a/bc", 0, "t", &e_));
    assert_ok(store_obj_delete(s, STORE_JOB, "j-a/b", 0, "t", &e_));
    assert_int_equal(job_count(s, "x"), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM job_counts WHERE domain LIKE 'x%'"), 0);
    assert_int_equal(job_count(s, "a/b"), 0);
    assert_int_equal(job_count(s, ""), 8);
    check_job_index(f, s);

    /* a refused change changes no count */
    assert_err(store_obj_put(s, STORE_JOB, "j-a", "{\"domain\":\"zz\"}", 99, "t", &v, &e_),
               TY_ECONFLICT, "changed by someone else");
    assert_err(store_obj_put(s, STORE_JOB, "j-new", "[\"zz\"]", 0, "t", &v, &e_), TY_EINVAL,
               "json is not a JSON object");
    assert_err(store_obj_delete(s, STORE_JOB, "j-a", 99, "t", &e_), TY_ECONFLICT,
               "changed by someone else");
    assert_int_equal(job_count(s, "zz"), 0);
    assert_int_equal(job_count(s, "a"), 2);
    check_job_index(f, s);

    /* a batch sees its own counts; a call refused inside it changes nothing; a rollback
     * undoes them all */
    assert_ok(store_begin(s, &e_));
    put_job(s, "j-b1", "b", true);
    put_job(s, "j-a", "b/x", true);
    assert_err(store_obj_put(s, STORE_JOB, "j-b1", "{\"domain\":\"zz\"}", -1, "t", &v, &e_),
               TY_EEXIST, "already exists");
    assert_int_equal(job_count(s, "b"), 2);
    assert_int_equal(job_count(s, "zz"), 0);
    assert_int_equal(job_count(s, "a"), 1);
    store_rollback(s);
    assert_int_equal(job_count(s, "b"), 0);
    assert_int_equal(job_count(s, "a"), 2);
    check_job_index(f, s);
    assert_ok(store_begin(s, &e_));
    put_job(s, "j-b1", "b", true);
    assert_ok(store_obj_delete(s, STORE_JOB, "j-b1", 0, "t", &e_));
    put_job(s, "j-b2", "b/c", false);
    assert_ok(store_commit(s, &e_));
    assert_int_equal(job_count(s, "b"), 1);
    check_job_index(f, s);

    /* a reader counts too */
    struct store *r;
    assert_ok(fx_open(f, true, &r, &e_));
    int64_t n = -1;
    assert_ok(store_job_count(r, "b/c", &n, &e_));
    assert_int_equal(n, 1);

    /* a domain longer than any path */
    char longdom[300];
    memset(longdom, 'd', sizeof longdom - 1);
    longdom[sizeof longdom - 1] = '\0';
    struct ty_err err;
    assert_int_equal(store_job_count(r, longdom, &n, &err), TY_EINVAL);
    assert_string_equal(err.field, "domain");
    assert_non_null(strstr(err.msg, "job_count: domain \"dddd"));
    assert_non_null(strstr(err.msg, "is longer than 256 bytes"));
    store_close(r);
}

/* ---------------------------------------------------------------------------------------
 * Pages of objects.
 */

/* Every item of an object query, page by page, checking each page as it goes: at most
 * `limit` items (exactly that many but on the last page), names strictly increasing
 * across pages, every field there.  Returns the names; *pages counts the calls. */
static json_t *page_all(struct store *s, struct store_obj_query q, size_t limit, int *pages)
{
    json_t *names = json_array();
    char cursor[600] = "", last[300] = "";
    q.limit = limit;
    limit = limit != 0 ? limit : 100;
    *pages = 0;
    for (;;) {
        json_t *page;
        q.cursor = cursor[0] ? cursor : NULL;
        assert_ok(store_obj_page(s, &q, &page, &e_));
        (*pages)++;
        json_t *items = json_object_get(page, "items");
        assert_true(json_array_size(items) <= limit);
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            const char *name = jstr(it, "name");
            if (strcmp(name, last) <= 0)
                fail_msg("\"%s\" after \"%s\"", name, last);
            snprintf(last, sizeof last, "%s", name);
            assert_true(jint(it, "version") >= 1);
            assert_true(jint(it, "updated_at_ms") > 1700000000000LL);
            assert_true(json_is_object(json_object_get(it, "object")));
            assert_int_equal(json_object_size(it), 4);
            json_array_append_new(names, json_string(name));
        }
        json_t *next = json_object_get(page, "next");
        if (json_is_null(next)) {
            json_decref(page);
            break;
        }
        assert_int_equal(json_array_size(items), limit);
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        json_decref(page);
    }
    return names;
}

/* The jobs the paging tests store, generated so an oracle can filter them too. */
#define PAGE_JOBS 3000
static const char *const page_doms[] = {"", "a", "a/b", "a/b/c", "ab", "a-b", "x/y"};

struct page_job {
    char name[64];
    const char *domain;
    bool enabled;
    char description[64];
};

static void page_job(int i, struct page_job *j)
{
    /* names in no particular order, a few with capitals, spaces and UTF-8 (bytewise order) */
    static const char *const odd[] = {"Zebra", "zebra", "\xc3\xa9t\xc3\xa9", "a b", "A", "~x"};
    if (i < (int)(sizeof odd / sizeof odd[0]))
        snprintf(j->name, sizeof j->name, "%s-%d", odd[i], i);
    else
        snprintf(j->name, sizeof j->name, "job-%05d", (i * 7919) % 100000);
    j->domain = page_doms[i % 7];
    j->enabled = i % 5 != 0;
    snprintf(j->description, sizeof j->description, "%s %d",
             i % 11 == 0 ? "has a NeedLe in it" : "plain", i);
    if (i % 13 == 0) /* the text in the name instead */
        snprintf(j->name + strlen(j->name), sizeof j->name - strlen(j->name), "-needle");
}

static void page_put(struct store *s, const struct page_job *j)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"name\":\"%s\",\"domain\":\"%s\",\"enabled\":%s,\"description\":\"%s\"}", j->name,
             j->domain, j->enabled ? "true" : "false", j->description);
    int64_t v;
    assert_ok(store_obj_put(s, STORE_JOB, j->name, json, 0, "t", &v, &e_));
}

/* ASCII case-insensitive substring, as the store's text filter. */
static bool has_text(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++) {
        size_t k = 0;
        while (k < n && p[k] && tolower((unsigned char)p[k]) == tolower((unsigned char)needle[k]))
            k++;
        if (k == n)
            return true;
    }
    return n == 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* Sort an array of strings bytewise, in place. */
static void sort_names(json_t *names)
{
    size_t n = json_array_size(names);
    json_t **v = calloc(n + 1, sizeof(json_t *));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(names, i));
    qsort(v, n, sizeof(json_t *), cmp_names);
    json_array_clear(names);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(names, v[i]);
    free(v);
}

/* What a query over the generated jobs must return, in order. */
static json_t *page_oracle(const struct store_obj_query *q)
{
    json_t *names = json_array();
    for (int i = 0; i < PAGE_JOBS; i++) {
        struct page_job j;
        page_job(i, &j);
        if (q->domain != NULL && !domain_within(j.domain, q->domain))
            continue;
        if (q->enabled >= 0 && j.enabled != (q->enabled == 1))
            continue;
        if (q->text != NULL && !has_text(j.name, q->text) && !has_text(j.description, q->text))
            continue;
        json_array_append_new(names, json_string(j.name));
    }
    sort_names(names);
    return names;
}

static void assert_names(json_t *got, json_t *want, const struct store_obj_query *q, size_t limit)
{
    if (json_equal(got, want))
        return;
    fail_msg("obj_page domain %s enabled %d text %s limit %zu: %zu names, want %zu",
             q->domain ? q->domain : "NULL", q->enabled, q->text ? q->text : "NULL", limit,
             json_array_size(got), json_array_size(want));
}

static void page_fill(struct store *s)
{
    assert_ok(store_begin(s, &e_));
    for (int i = 0; i < PAGE_JOBS; i++) {
        struct page_job j;
        page_job(i, &j);
        page_put(s, &j);
    }
    int64_t v;
    /* other kinds: listed apart, domain and enabled ignored for them */
    assert_ok(store_obj_put(s, STORE_DOMAIN, "a", "{\"description\":\"needle\"}", 0, "t", &v, &e_));
    assert_ok(store_obj_put(s, STORE_DOMAIN, "a/b", "{\"enabled\":false}", 0, "t", &v, &e_));
    assert_ok(store_obj_put(s, STORE_CALENDAR, "hol", "{\"domain\":\"zz\"}", 0, "t", &v, &e_));
    assert_ok(store_commit(s, &e_));
}

static void test_obj_page(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    page_fill(s);
    static const char *const domains[] = {NULL, "", "a", "a/b", "a/b/c", "zz"};
    static const char *const texts[] = {NULL, "NEEDLE"};
    int pages;
    for (size_t d = 0; d < sizeof domains / sizeof domains[0]; d++)
        for (int en = -1; en <= 1; en++)
            for (size_t t = 0; t < 2; t++) {
                struct store_obj_query q = {
                    .kind = STORE_JOB, .domain = domains[d], .enabled = en, .text = texts[t]};
                json_t *want = page_oracle(&q);
                static const size_t limits[] = {1000, 7, 0};
                for (size_t l = 0; l < 3; l++) {
                    json_t *got = page_all(s, q, limits[l], &pages);
                    assert_names(got, want, &q, limits[l]);
                    size_t per = limits[l] ? limits[l] : 100;
                    size_t n = json_array_size(want);
                    assert_int_equal(pages, n == 0 ? 1 : (n + per - 1) / per);
                    json_decref(got);
                }
                /* pages of one where it stays quick: every small result, and all jobs */
                if (json_array_size(want) < 400 || (d == 0 && en == -1 && t == 0)) {
                    json_t *got = page_all(s, q, 1, &pages);
                    assert_names(got, want, &q, 1);
                    json_decref(got);
                }
                json_decref(want);
            }
    struct store_obj_query all = {.kind = STORE_JOB, .enabled = -1};
    json_t *names = page_all(s, all, 1000, &pages);
    assert_int_equal(json_array_size(names), PAGE_JOBS);
    assert_int_equal(pages, 3);
    /* bytewise: capitals before lower case, UTF-8 after ASCII */
    assert_string_equal(json_string_value(json_array_get(names, 0)), "A-4");
    assert_string_equal(json_string_value(json_array_get(names, PAGE_JOBS - 1)),
                        "\xc3\xa9t\xc3\xa9-2");
    json_decref(names);

    /* other kinds: domain and enabled ignored, text applies */
    struct store_obj_query dq = {.kind = STORE_DOMAIN, .domain = "zz", .enabled = 0};
    names = page_all(s, dq, 0, &pages);
    assert_int_equal(json_array_size(names), 2);
    json_decref(names);
    dq.text = "needle";
    names = page_all(s, dq, 0, &pages);
    assert_int_equal(json_array_size(names), 1);
    json_decref(names);
    struct store_obj_query cq = {.kind = STORE_CALENDAR, .domain = "a", .enabled = 1};
    names = page_all(s, cq, 0, &pages);
    assert_int_equal(json_array_size(names), 1);
    assert_string_equal(json_string_value(json_array_get(names, 0)), "hol");
    json_decref(names);

    /* an exactly full last page says there is no next one */
    struct store_obj_query small = {.kind = STORE_JOB, .domain = "a/b/c", .enabled = 0};
    json_t *want = page_oracle(&small);
    json_t *page;
    small.limit = json_array_size(want);
    assert_ok(store_obj_page(s, &small, &page, &e_));
    assert_int_equal(json_array_size(json_object_get(page, "items")), json_array_size(want));
    assert_true(json_is_null(json_object_get(page, "next")));
    json_decref(page);
    json_decref(want);
    /* the object is the stored JSON */
    struct store_obj_query one = {.kind = STORE_JOB, .enabled = -1, .limit = 1};
    assert_ok(store_obj_page(s, &one, &page, &e_));
    json_t *obj = json_object_get(json_array_get(json_object_get(page, "items"), 0), "object");
    assert_string_equal(jstr(obj, "name"), "A-4");
    assert_string_equal(jstr(obj, "domain"), "ab");
    assert_string_equal(json_string_value(json_object_get(page, "next")), "o1.412d34");
    json_decref(page);
}

/* Rows created and deleted between pages: whatever existed throughout is returned once. */
static void test_obj_page_moving(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    page_fill(s);
    for (int pass = 0; pass < 2; pass++) {
        struct store_obj_query q = {.kind = STORE_JOB,
                                    .domain = pass == 0 ? "a" : NULL,
                                    .enabled = pass == 0 ? 1 : -1,
                                    .limit = 50};
        int pages;
        json_t *want = page_all(s, q, 1000, &pages); /* before any change */
        json_t *gone = json_object();                /* originals deleted during the walk */
        json_t *seen = json_object();
        char cursor[600] = "";
        int step = 0;
        for (;;) {
            json_t *page;
            q.cursor = cursor[0] ? cursor : NULL;
            assert_ok(store_obj_page(s, &q, &page, &e_));
            size_t i;
            json_t *it;
            const char *lastname = NULL;
            json_array_foreach(json_object_get(page, "items"), i, it)
            {
                const char *name = jstr(it, "name");
                if (json_object_get(seen, name) != NULL)
                    fail_msg("\"%s\" returned twice", name);
                json_object_set_new(seen, name, json_true());
                lastname = name;
            }
            json_t *next = json_object_get(page, "next");
            if (json_is_null(next)) {
                json_decref(page);
                break;
            }
            snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
            /* between pages: new jobs before and after the cursor, an unseen original
             * deleted, the page's last job (the cursor's own name) deleted */
            char name[64], json[256];
            int64_t v;
            for (int k = 0; k < 3; k++) {
                snprintf(name, sizeof name, "%s-new%d-%d",
                         k == 0   ? "a"
                         : k == 1 ? "job-5"
                                  : "zz",
                         pass, step);
                snprintf(json, sizeof json, "{\"domain\":\"a/b\",\"enabled\":true}");
                assert_ok(store_obj_put(s, STORE_JOB, name, json, -1, "t", &v, &e_));
            }
            size_t victim = (size_t)(step * 37 + 11) % json_array_size(want);
            const char *vn = json_string_value(json_array_get(want, victim));
            if (json_object_get(seen, vn) == NULL && json_object_get(gone, vn) == NULL) {
                assert_ok(store_obj_delete(s, STORE_JOB, vn, 0, "t", &e_));
                json_object_set_new(gone, vn, json_true());
            }
            if (lastname != NULL && strncmp(lastname, "job-", 4) == 0 &&
                json_object_get(gone, lastname) == NULL) {
                json_object_set_new(gone, lastname, json_true()); /* seen, and now gone */
                assert_ok(store_obj_delete(s, STORE_JOB, lastname, 0, "t", &e_));
            }
            json_decref(page);
            step++;
        }
        assert_true(step > 10);
        size_t i;
        json_t *n;
        size_t throughout = 0;
        json_array_foreach(want, i, n)
        {
            const char *name = json_string_value(n);
            bool deleted = json_object_get(gone, name) != NULL;
            bool returned = json_object_get(seen, name) != NULL;
            if (!deleted && !returned)
                fail_msg("\"%s\" existed throughout and was skipped", name);
            throughout += !deleted;
        }
        assert_true(throughout > json_array_size(want) / 2);
        json_decref(want);
        json_decref(gone);
        json_decref(seen);
        check_job_index(f, s);
    }
}

/* How many SQLite VM steps the last page statement took (SQLITE_TRACE_PROFILE). */
static int64_t page_steps;

static int page_trace(unsigned type, void *ctx, void *p, void *x)
{
    (void)ctx;
    (void)x;
    sqlite3_stmt *st = p;
    const char *sql = type == SQLITE_TRACE_PROFILE ? sqlite3_sql(st) : NULL;
    if (sql != NULL && (strstr(sql, "job_domains j") || strstr(sql, "kind = :kind AND name >")))
        page_steps = sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 1);
    return 0;
}

static int trace_pages(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api)
{
    (void)errmsg;
    (void)api;
    sqlite3_trace_v2(db, SQLITE_TRACE_PROFILE, page_trace, NULL);
    return SQLITE_OK;
}

/* A page is index ranges: its cost does not depend on how many objects there are, how
 * deep the page is, or how few jobs the subtree holds (SQLite's own step count says so,
 * not a clock: a walk of 3000 rows would take tens of thousands of steps). */
static void test_obj_page_cost(void **state)
{
    struct fx *f = *state;
    page_fill(f->s);
    sqlite3_auto_extension((void (*)(void))trace_pages);
    struct store *r;
    assert_ok(fx_open(f, true, &r, &e_));
    static const char *const domains[] = {NULL, "a/b/c", "x/y", "x", "zz"};
    for (size_t d = 0; d < sizeof domains / sizeof domains[0]; d++)
        for (int en = -1; en <= 1; en++) {
            struct store_obj_query q = {
                .kind = STORE_JOB, .domain = domains[d], .enabled = en, .limit = 10};
            json_t *want = page_oracle(&q);
            size_t n = json_array_size(want);
            /* the first page, and one from the middle */
            char cursor[600];
            for (int at = 0; at < 2; at++) {
                q.cursor = NULL;
                if (at == 1 && n > 20) {
                    const char *mid = json_string_value(json_array_get(want, n / 2));
                    snprintf(cursor, sizeof cursor, "o1.");
                    for (size_t k = 0; mid[k]; k++)
                        snprintf(cursor + 3 + 2 * k, 3, "%02x", (unsigned char)mid[k]);
                    q.cursor = cursor;
                }
                json_t *page;
                page_steps = -1;
                assert_ok(store_obj_page(r, &q, &page, &e_));
                json_decref(page);
                if (page_steps < 0 || page_steps > 1500)
                    fail_msg("a page of 10 (domain %s, enabled %d, %s) took %" PRId64 " VM steps",
                             q.domain ? q.domain : "NULL", en, at ? "middle" : "first", page_steps);
            }
            json_decref(want);
        }
    store_close(r);
}

static void test_obj_page_errors(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    json_t *page = NULL;
    struct store_obj_query q = {.kind = STORE_JOB, .enabled = -1, .limit = 1001};
    struct ty_err err;
    assert_int_equal(store_obj_page(s, &q, &page, &err), TY_EINVAL);
    assert_string_equal(err.field, "limit");
    assert_string_equal(err.msg, "obj_page: limit 1001 is out of range 1-1000");
    q.limit = 1000;
    q.kind = (enum store_kind)7;
    assert_err(store_obj_page(s, &q, &page, &e_), TY_EINVAL,
               "obj_page: kind 7 is not a config object kind");
    q.kind = STORE_JOB;
    q.enabled = 2;
    assert_int_equal(store_obj_page(s, &q, &page, &err), TY_EINVAL);
    assert_string_equal(err.field, "enabled");
    assert_string_equal(
        err.msg, "obj_page: enabled 2 is not -1 (any), 0 (disabled only) or 1 (enabled only)");
    q.enabled = -1;
    char longdom[300];
    memset(longdom, 'd', sizeof longdom - 1);
    longdom[sizeof longdom - 1] = '\0';
    q.domain = longdom;
    assert_int_equal(store_obj_page(s, &q, &page, &err), TY_EINVAL);
    assert_string_equal(err.field, "domain");
    assert_non_null(strstr(err.msg, "is longer than 256 bytes"));
    q.domain = NULL;
    /* cursors this store never returned */
    char longcur[600]; /* a name of 257 bytes */
    memcpy(longcur, "o1.", 3);
    for (size_t i = 0; i < 257; i++)
        memcpy(longcur + 3 + 2 * i, "61", 2);
    longcur[3 + 2 * 257] = '\0';
    const char *const bad[] = {"x",     "o1.",   "o1.6",   "o1.zz",    "o1.0061", "o1.6A",
                               "o2.61", "O1.61", "o1.61 ", "v1.5.1.7", longcur};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        q.cursor = bad[i];
        ty_err_clear(&err);
        if (store_obj_page(s, &q, &page, &err) != TY_EINVAL || strcmp(err.field, "cursor") != 0 ||
            strstr(err.msg, "is not one this store returned (pass the \"next\" of the previous "
                            "page, or none for the first page)") == NULL)
            fail_msg("cursor \"%s\": %s", bad[i], err.msg);
    }
    q.cursor = "x";
    assert_err(store_obj_page(s, &q, &page, &e_), TY_EINVAL, "obj_page: cursor \"x\" is not one");
    assert_null(page);
    /* a cursor is a position, not a name that must exist; "" is the first page */
    q.cursor = "o1.7a";
    assert_ok(store_obj_page(s, &q, &page, &e_));
    assert_int_equal(json_array_size(json_object_get(page, "items")), 0);
    assert_true(json_is_null(json_object_get(page, "next")));
    json_decref(page);
    q.cursor = "";
    assert_ok(store_obj_page(s, &q, &page, &e_));
    json_decref(page);
}

/* ---------------------------------------------------------------------------------------
 * Scans.
 */

struct scan {
    struct store *s;     /* the store scanned */
    struct store *other; /* a writer, when the scan is a reader's */
    long calls, stop_at; /* stop_at: return stop_rc from that call (0: never) */
    int stop_rc;
    char last[300];
    int64_t bytes;
    bool bad;
};

static int scan_cb(void *arg, const char *name, int64_t version, const char *json, size_t len)
{
    struct scan *c = arg;
    c->calls++;
    if (strcmp(name, c->last) <= 0 || version < 1 || strlen(json) != len || json[0] != '{')
        c->bad = true;
    snprintf(c->last, sizeof c->last, "%s", name);
    c->bytes += (int64_t)len;
    if (c->calls == 3 && c->other != NULL) { /* a change the scan's snapshot predates */
        int64_t v;
        struct ty_err e;
        if (store_obj_put(c->other, STORE_CALENDAR, "zzz-late", "{}", -1, "t", &v, &e) != 0)
            c->bad = true;
    }
    if (c->calls == 4 && c->s != NULL) { /* a read through the same store, mid-scan */
        char *j;
        int64_t v;
        struct ty_err e;
        if (store_obj_get(c->s, STORE_CALENDAR, name, &j, &v, &e) != 0 || strlen(j) != len)
            c->bad = true;
        free(j);
    }
    return c->calls == c->stop_at ? c->stop_rc : 0;
}

/* jansson's allocations, counted while a scan runs: it must build no JSON. */
static atomic_long json_allocs;

static void *counting_malloc(size_t n)
{
    atomic_fetch_add(&json_allocs, 1);
    return malloc(n);
}

static void test_obj_scan(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct scan c = {0};
    assert_ok(store_obj_scan(s, STORE_JOB, scan_cb, &c, &e_));
    assert_int_equal(c.calls, 0);

    /* 100,000 calendars, written straight into the table (the scan reads it as it is) */
    enum { N = 100000 };
    db_exec(f, SQL2("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n"
                    " WHERE i < 99999)"
                    " INSERT INTO objects (kind, name, version, json, created_at_ms,"
                    " updated_at_ms) SELECT 'calendar', printf('cal-%06d', (i * 7919) % 100000),"
                    " 1 + i % 3, json_object('name', printf('cal-%06d', (i * 7919) % 100000),"
                    " 'dates', json_array('2026-01-01')), 1, 1 FROM n",
                    "INSERT INTO objects (kind, name, version, json, created_at_ms,"
                    " updated_at_ms) SELECT 'calendar', n, 1 + i % 3,"
                    " json_build_object('name', n, 'dates', json_build_array('2026-01-01')), 1, 1"
                    " FROM (SELECT i, 'cal-' || lpad(((i * 7919) % 100000)::text, 6, '0') AS n"
                    " FROM generate_series(0, 99999) AS i) AS g"));
    put_job(s, "j1", "a", true);
    put_job(s, "j0", "a", false);

    json_set_alloc_funcs(counting_malloc, free);
    atomic_store(&json_allocs, 0);
    memset(&c, 0, sizeof c);
    c.s = s;
    assert_ok(store_obj_scan(s, STORE_CALENDAR, scan_cb, &c, &e_));
    long allocs = atomic_load(&json_allocs);
    json_set_alloc_funcs(malloc, free);
    assert_int_equal(c.calls, N);
    assert_false(c.bad);
    assert_string_equal(c.last, "cal-099999");
    assert_int_equal(allocs, 0);
    assert_true(c.bytes > (int64_t)N * 40);

    /* other kinds apart; stopping early returns the callback's value */
    memset(&c, 0, sizeof c);
    assert_ok(store_obj_scan(s, STORE_JOB, scan_cb, &c, &e_));
    assert_int_equal(c.calls, 2);
    assert_string_equal(c.last, "j1");
    memset(&c, 0, sizeof c);
    c.stop_at = 10;
    c.stop_rc = 42;
    assert_int_equal(store_obj_scan(s, STORE_CALENDAR, scan_cb, &c, NULL), 42);
    assert_int_equal(c.calls, 10);
    assert_string_equal(c.last, "cal-000009");
    memset(&c, 0, sizeof c);
    c.stop_at = 1;
    c.stop_rc = TY_ENOSPC;
    assert_int_equal(store_obj_scan(s, STORE_CALENDAR, scan_cb, &c, NULL), TY_ENOSPC);
    assert_int_equal(c.calls, 1);

    /* a reader's scan is one snapshot: what the writer adds meanwhile is not in it */
    struct store *r;
    assert_ok(fx_open(f, true, &r, &e_));
    memset(&c, 0, sizeof c);
    c.s = r;
    c.other = s;
    assert_ok(store_obj_scan(r, STORE_CALENDAR, scan_cb, &c, &e_));
    assert_false(c.bad);
    assert_int_equal(c.calls, N);
    assert_string_equal(c.last, "cal-099999");
    memset(&c, 0, sizeof c);
    assert_ok(store_obj_scan(r, STORE_CALENDAR, scan_cb, &c, &e_));
    assert_int_equal(c.calls, N + 1);
    assert_string_equal(c.last, "zzz-late");

    /* refused */
    struct ty_err err;
    assert_int_equal(store_obj_scan(r, (enum store_kind)9, scan_cb, &c, &err), TY_EINVAL);
    assert_string_equal(err.field, "kind");
    assert_string_equal(err.msg, "obj_scan: kind 9 is not a config object kind");
    assert_int_equal(store_obj_scan(r, STORE_JOB, NULL, &c, &err), TY_EINVAL);
    assert_string_equal(err.field, "cb");
    assert_string_equal(err.msg, "obj_scan job: cb is missing");
    store_close(r);
}

/* ---------------------------------------------------------------------------------------
 * Calendars in use.
 */

static void test_calendar_users(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t n = -1, v;
    char first[64] = "junk";
    assert_ok(store_calendar_users(s, "hol", &n, first, sizeof first, &e_));
    assert_int_equal(n, 0);
    assert_string_equal(first, "");

    static const char *const jobs[][2] = {
        /* users */
        {"u-skip", "{\"calendars\":{\"skip\":[\"x\",\"hol\"],\"only\":[]}}"},
        {"u-only", "{\"calendars\":{\"only\":[\"hol\"]}}"},
        {"u-both", "{\"calendars\":{\"skip\":[\"hol\"],\"only\":[\"hol\"]}}"},
        {"u-escaped", "{\"calendars\":{\"skip\":[\"h\\u006fl\"]}}"},
        {"c-first", "{\"domain\":\"a\",\"calendars\":{\"skip\":[1,\"hol\"]}}"},
        /* not users */
        {"n-none", "{\"name\":\"n-none\"}"},
        {"n-other", "{\"calendars\":{\"skip\":[\"hol2\",\"ho\",\"HOL\"],\"only\":[]}}"},
        {"n-string", "{\"calendars\":{\"skip\":\"hol\"}}"},
        {"n-array", "{\"calendars\":[\"hol\"]}"},
        {"n-flat", "{\"calendars\":\"hol\"}"},
        {"n-nested", "{\"calendars\":{\"skip\":[[\"hol\"]],\"except\":[\"hol\"]}}"},
        {"n-text", "{\"description\":\"hol\",\"skip\":[\"hol\"]}"},
    };
    for (size_t i = 0; i < sizeof jobs / sizeof jobs[0]; i++)
        assert_ok(store_obj_put(s, STORE_JOB, jobs[i][0], jobs[i][1], -1, "t", &v, &e_));
    /* other kinds naming it are not jobs */
    assert_ok(store_obj_put(s, STORE_CALENDAR, "hol", "{\"calendars\":{\"skip\":[\"hol\"]}}", -1,
                            "t", &v, &e_));
    assert_ok(store_obj_put(s, STORE_DOMAIN, "a", "{\"calendars\":{\"only\":[\"hol\"]}}", -1, "t",
                            &v, &e_));

    assert_ok(store_calendar_users(s, "hol", &n, first, sizeof first, &e_));
    assert_int_equal(n, 5);
    assert_string_equal(first, "c-first");
    assert_ok(store_calendar_users(s, "HOL", &n, first, sizeof first, &e_));
    assert_int_equal(n, 1);
    assert_string_equal(first, "n-other");
    assert_ok(store_calendar_users(s, "x", &n, NULL, 0, &e_));
    assert_int_equal(n, 1);
    char tiny[4];
    assert_ok(store_calendar_users(s, "hol", &n, tiny, sizeof tiny, &e_));
    assert_string_equal(tiny, "c-f");

    /* the answer follows changes, and a reader sees the last commit */
    assert_ok(store_obj_delete(s, STORE_JOB, "c-first", 0, "t", &e_));
    assert_ok(
        store_obj_put(s, STORE_JOB, "u-only", "{\"calendars\":{\"only\":[]}}", 0, "t", &v, &e_));
    struct store *r;
    assert_ok(fx_open(f, true, &r, &e_));
    assert_ok(store_calendar_users(r, "hol", &n, first, sizeof first, &e_));
    assert_int_equal(n, 3);
    assert_string_equal(first, "u-both");

    /* refused */
    struct ty_err err;
    assert_int_equal(store_calendar_users(r, NULL, &n, first, sizeof first, &err), TY_EINVAL);
    assert_string_equal(err.field, "calendar");
    assert_string_equal(err.msg, "calendar_users: calendar is missing");
    assert_err(store_calendar_users(r, "", &n, first, sizeof first, &e_), TY_EINVAL,
               "calendar_users: calendar is missing");
    char longname[300];
    memset(longname, 'c', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_err(store_calendar_users(r, longname, &n, first, sizeof first, &e_), TY_EINVAL,
               "calendar_users: calendar is longer than 256 bytes");
    store_close(r);
}

/* ---------------------------------------------------------------------------------------
 * Runs and skipped fires.
 */

static void test_run_lifecycle(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct run_buf b;
    run_init(&b, "backup", "ops/db", 1767225600, 2, 1, STORE_RUN_QUEUED); /* 2026-01-01 */
    assert_ok(store_run_put(s, &b.r, &e_));
    assert_ok(store_run_put(s, &b.r, &e_)); /* the same report again: one row */
    json_t *o;
    assert_ok(store_run_get(s, b.id, &o, &e_));
    assert_string_equal(jstr(o, "status"), "queued");
    assert_true(json_is_null(json_object_get(o, "output")));
    assert_true(json_is_null(json_object_get(o, "duration_ms")));
    json_decref(o);

    b.r.status = STORE_RUN_RUNNING;
    b.r.started_at_ms = 1767225600LL * 1000 + 250;
    b.r.pid = 31337;
    b.r.pid_start = 123456;
    b.r.boot_id = "0b1d";
    assert_ok(store_run_put(s, &b.r, &e_));
    b.r.status = STORE_RUN_FAILED;
    b.r.ended_at_ms = b.r.started_at_ms + 1500;
    b.r.exit_code = 3;
    b.r.signal = 0;
    static const char out[] = "line 1\nbad \xff\xfe bytes \xe2\x82\n\xe2\x82\xac ok";
    b.r.output = out;
    b.r.output_len = sizeof out - 1;
    b.r.error = "exit status 3";
    assert_ok(store_run_put(s, &b.r, &e_));

    assert_ok(store_run_get(s, b.id, &o, &e_));
    assert_string_equal(jstr(o, "kind"), "run");
    assert_string_equal(jstr(o, "run_id"), b.id);
    assert_string_equal(jstr(o, "fire_id"), "backup@1767225600#2");
    assert_int_equal(jint(o, "attempt"), 1);
    assert_string_equal(jstr(o, "job"), "backup");
    assert_string_equal(jstr(o, "domain"), "ops/db");
    assert_int_equal(jint(o, "shard"), 2);
    assert_string_equal(jstr(o, "trigger"), "schedule");
    assert_string_equal(jstr(o, "status"), "failed");
    assert_int_equal(jint(o, "scheduled_at"), 1767225600);
    assert_string_equal(jstr(o, "scheduled_at_text"), "2026-01-01T00:00:00+00:00");
    assert_int_equal(jint(o, "queued_at_ms"), 1767225600LL * 1000 + 1);
    assert_int_equal(jint(o, "started_at_ms"), 1767225600LL * 1000 + 250);
    assert_int_equal(jint(o, "ended_at_ms"), 1767225600LL * 1000 + 1750);
    assert_int_equal(jint(o, "duration_ms"), 1500);
    assert_int_equal(jint(o, "lateness_ms"), 250);
    assert_int_equal(jint(o, "pid"), 31337);
    assert_int_equal(jint(o, "pid_start"), 123456);
    assert_string_equal(jstr(o, "boot_id"), "0b1d");
    assert_string_equal(jstr(o, "executor"), "local");
    assert_int_equal(jint(o, "epoch"), 3);
    assert_int_equal(jint(o, "exit_code"), 3);
    assert_int_equal(jint(o, "signal"), 0);
    assert_string_equal(jstr(o, "error"), "exit status 3");
    assert_int_equal(jint(o, "output_bytes"), sizeof out - 1);
    /* ill-formed bytes become U+FFFD; the rest is kept */
    assert_string_equal(jstr(o, "output"), "line 1\nbad \xef\xbf\xbd\xef\xbf\xbd bytes "
                                           "\xef\xbf\xbd\xef\xbf\xbd\n\xe2\x82\xac ok");
    json_decref(o);

    /* a late "running" report never moves a final run back */
    b.r.status = STORE_RUN_RUNNING;
    b.r.ended_at_ms = 0;
    b.r.exit_code = -1;
    assert_ok(store_run_put(s, &b.r, &e_));
    b.r.status = STORE_RUN_QUEUED;
    assert_ok(store_run_put(s, &b.r, &e_));
    assert_ok(store_run_get(s, b.id, &o, &e_));
    assert_string_equal(jstr(o, "status"), "failed");
    assert_int_equal(jint(o, "exit_code"), 3);
    assert_int_equal(jint(o, "ended_at_ms"), 1767225600LL * 1000 + 1750);
    json_decref(o);
    /* nor to another final status: the first final record stands */
    b.r.status = STORE_RUN_INTERRUPTED;
    b.r.ended_at_ms = 1767225600LL * 1000 + 1800;
    assert_ok(store_run_put(s, &b.r, &e_));
    assert_ok(store_run_get(s, b.id, &o, &e_));
    assert_string_equal(jstr(o, "status"), "failed");
    json_decref(o);
    assert_int_equal(db_int(f, "SELECT count(*) FROM runs"), 1);

    /* an empty output is "", not null */
    struct run_buf c;
    run_init(&c, "backup", "ops/db", 1767225660, 0, 1, STORE_RUN_SUCCEEDED);
    c.r.output = "";
    c.r.output_len = 0;
    assert_ok(store_run_put(s, &c.r, &e_));
    assert_ok(store_run_get(s, c.id, &o, &e_));
    assert_string_equal(jstr(o, "output"), "");
    json_decref(o);

    /* a later record that names another scheduled time updates the run where it is: the
     * time stays as inserted (so does the day it is filed under) */
    struct run_buf m;
    run_init(&m, "backup", "ops/db", 1767225720, 0, 1, STORE_RUN_QUEUED);
    assert_ok(store_run_put(s, &m.r, &e_));
    m.r.status = STORE_RUN_RUNNING;
    m.r.scheduled_at = 1767225720 + 2 * 86400;
    m.r.started_at_ms = 1767225720LL * 1000 + 40;
    m.r.pid = 99;
    assert_ok(store_run_put(s, &m.r, &e_));
    assert_ok(store_run_get(s, m.id, &o, &e_));
    assert_string_equal(jstr(o, "status"), "running");
    assert_int_equal(jint(o, "scheduled_at"), 1767225720);
    assert_int_equal(jint(o, "pid"), 99);
    json_decref(o);
    assert_int_equal(db_int(f, "SELECT count(*) FROM runs"), 3);

    assert_err(store_run_get(s, "00000000deadbeef", &o, &e_), TY_ENOENT,
               "run_get run 00000000deadbeef: not found");
}

/* Every column of one run, as one line of text, to compare before and after a put:
 * "|'text'|123|..." (PostgreSQL quotes text the same way, and writes bytes in hex). */
static void run_row_text(struct fx *f, const char *run_id, char *buf, size_t cap)
{
    static const char *const cols[] = {
        "run_id",      "fire_id",   "attempt",      "job",          "domain",        "shard",
        "\"trigger\"", "status",    "scheduled_at", "queued_at_ms", "started_at_ms", "ended_at_ms",
        "pid",         "pid_start", "boot_id",      "executor",     "epoch",         "exit_code",
        "signal",      "error",     "output"};
    /* the text columns, quoted; PostgreSQL's others by their text */
    static const char text_cols[] = " run_id fire_id job domain \"trigger\" status boot_id executor"
                                    " error ";
    char sql[2048];
    size_t n = (size_t)snprintf(sql, sizeof sql, "SELECT ''");
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
        char word[32];
        snprintf(word, sizeof word, " %s ", cols[i]);
        if (!pg_mode)
            n += (size_t)snprintf(sql + n, sizeof sql - n, " || '|' || quote(%s)", cols[i]);
        else if (strstr(text_cols, word) != NULL)
            n +=
                (size_t)snprintf(sql + n, sizeof sql - n, " || '|' || quote_nullable(%s)", cols[i]);
        else if (strcmp(cols[i], "output") == 0)
            n += (size_t)snprintf(sql + n, sizeof sql - n,
                                  " || '|' || coalesce(encode(%s, 'hex'), 'NULL')", cols[i]);
        else
            n += (size_t)snprintf(sql + n, sizeof sql - n, " || '|' || coalesce(%s::text, 'NULL')",
                                  cols[i]);
    }
    snprintf(sql + n, sizeof sql - n, " FROM runs WHERE run_id = '%s'", run_id);
    db_text(f, sql, buf, cap);
}

/* Status order: queued < running < final; older records and anything after a final status
 * are replays that change nothing (the spool may send them again after a crash). */
static void test_run_status_order(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char before[1024], after[1024];
    struct run_buf q, r, d;
    run_init(&q, "spool", "ops", 5000, 0, 1, STORE_RUN_QUEUED);
    run_init(&r, "spool", "ops", 5000, 0, 1, STORE_RUN_RUNNING);
    run_init(&d, "spool", "ops", 5000, 0, 1, STORE_RUN_SUCCEEDED);
    /* three records of one run: the same run id and fire */
    r.r.run_id = d.r.run_id = q.id;
    r.r.fire_id = d.r.fire_id = q.fire;

    /* queued -> queued refreshes the fields (equal rank, not final) */
    assert_ok(store_run_put(s, &q.r, &e_));
    q.r.queued_at_ms = 5000 * 1000 + 77;
    q.r.executor = "exec-2";
    assert_ok(store_run_put(s, &q.r, &e_));
    assert_int_equal(db_int(f, "SELECT queued_at_ms FROM runs"), 5000 * 1000 + 77);
    char ex[32];
    db_text(f, "SELECT executor FROM runs", ex, sizeof ex);
    assert_string_equal(ex, "exec-2");

    /* queued -> running applies; running -> running refreshes; a queued record after
     * running is older and ignored */
    assert_ok(store_run_put(s, &r.r, &e_));
    r.r.pid = 999;
    assert_ok(store_run_put(s, &r.r, &e_));
    run_row_text(f, q.id, before, sizeof before);
    assert_non_null(strstr(before, "|'running'|"));
    assert_non_null(strstr(before, "|999|"));
    assert_ok(store_run_put(s, &q.r, &e_));
    run_row_text(f, q.id, after, sizeof after);
    assert_string_equal(after, before);

    /* running -> final applies; then running, queued, another final and the same final
     * again all change nothing and succeed */
    d.r.output = "ok\n";
    d.r.output_len = 3;
    assert_ok(store_run_put(s, &d.r, &e_));
    run_row_text(f, q.id, before, sizeof before);
    assert_non_null(strstr(before, "|'succeeded'|"));
    assert_ok(store_run_put(s, &r.r, &e_));
    assert_ok(store_run_put(s, &q.r, &e_));
    struct run_buf x = d;
    x.r.status = STORE_RUN_LOST;
    x.r.exit_code = -1;
    x.r.error = "lost";
    assert_ok(store_run_put(s, &x.r, &e_));
    assert_ok(store_run_put(s, &d.r, &e_));
    run_row_text(f, q.id, after, sizeof after);
    assert_string_equal(after, before);

    /* a replay of the whole spool in a batch, oldest last, changes nothing either */
    assert_ok(store_begin(s, &e_));
    assert_ok(store_run_put(s, &d.r, &e_));
    assert_ok(store_run_put(s, &r.r, &e_));
    assert_ok(store_run_put(s, &q.r, &e_));
    assert_ok(store_commit(s, &e_));
    run_row_text(f, q.id, after, sizeof after);
    assert_string_equal(after, before);

    /* a first record may arrive already final, and a replay of it is a no-op */
    struct run_buf g;
    run_init(&g, "spool", "ops", 6000, 0, 1, STORE_RUN_FAILED);
    assert_ok(store_run_put(s, &g.r, &e_));
    run_row_text(f, g.id, before, sizeof before);
    struct run_buf gq = g;
    gq.r.status = STORE_RUN_QUEUED;
    assert_ok(store_run_put(s, &gq.r, &e_));
    assert_ok(store_run_put(s, &g.r, &e_));
    run_row_text(f, g.id, after, sizeof after);
    assert_string_equal(after, before);

    /* the same (fire, attempt) under another run id is still refused, whatever its status,
     * and so is a run id reused for another fire */
    struct run_buf o;
    run_init(&o, "spool", "ops", 5000, 0, 1, STORE_RUN_QUEUED);
    struct ty_err err;
    assert_int_equal(store_run_put(s, &o.r, &err), TY_EEXIST);
    assert_string_equal(err.field, "fire_id");
    assert_non_null(strstr(err.msg, "fire spool@5000#0 attempt 1 is already recorded under "
                                    "another run id"));
    o.r.status = STORE_RUN_SUCCEEDED;
    assert_int_equal(store_run_put(s, &o.r, &err), TY_EEXIST);
    assert_string_equal(err.field, "fire_id");
    struct run_buf w;
    run_init(&w, "spool", "ops", 7000, 0, 1, STORE_RUN_SUCCEEDED);
    w.r.run_id = q.id; /* a final run's id sent for another fire */
    assert_int_equal(store_run_put(s, &w.r, &err), TY_EEXIST);
    assert_string_equal(err.field, "run_id");
    assert_non_null(strstr(err.msg, "that run id is already fire spool@5000#0 attempt 1"));
    assert_int_equal(db_int(f, "SELECT count(*) FROM runs"), 2);
}

static void test_run_conflicts(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct run_buf a, b;
    run_init(&a, "etl", "d", 1000, 0, 1, STORE_RUN_RUNNING);
    assert_ok(store_run_put(s, &a.r, &e_));
    /* the same fire and attempt under another run id: the fire was already made */
    run_init(&b, "etl", "d", 1000, 0, 1, STORE_RUN_SUCCEEDED);
    struct ty_err err;
    assert_int_equal(store_run_put(s, &b.r, &err), TY_EEXIST);
    assert_string_equal(err.field, "fire_id");
    assert_non_null(strstr(err.msg, "fire etl@1000#0 attempt 1 is already recorded under "
                                    "another run id"));
    assert_int_equal(db_int(f, "SELECT count(*) FROM runs"), 1);
    assert_int_equal(db_int(f, "SELECT count(*) FROM runs WHERE status = 'running'"), 1);
    /* attempt 2 of the same fire is a new row */
    b.r.attempt = 2;
    b.r.trigger = STORE_TRIGGER_RETRY;
    assert_ok(store_run_put(s, &b.r, &e_));
    /* a run id reused for another fire */
    struct run_buf c;
    run_init(&c, "etl", "d", 2000, 0, 1, STORE_RUN_QUEUED);
    c.r.run_id = a.id;
    assert_int_equal(store_run_put(s, &c.r, &err), TY_EEXIST);
    assert_string_equal(err.field, "run_id");
    assert_non_null(strstr(err.msg, "that run id is already fire etl@1000#0 attempt 1"));
    assert_int_equal(db_int(f, "SELECT count(*) FROM runs"), 2);

    /* bad input names the field and changes nothing */
    struct run_buf d;
    run_init(&d, "etl", "d", 3000, 0, 1, STORE_RUN_QUEUED);
    d.r.run_id = "";
    assert_err(store_run_put(s, &d.r, &e_), TY_EINVAL, "run_put: run_id is missing");
    d.r.run_id = "0123456789abcdef0123456789";
    assert_err(store_run_put(s, &d.r, &e_), TY_EINVAL, "run_id is longer than 23 bytes");
    d.r.run_id = d.id;
    char longfire[300];
    memset(longfire, 'f', sizeof longfire - 1);
    longfire[sizeof longfire - 1] = '\0';
    d.r.fire_id = longfire;
    assert_err(store_run_put(s, &d.r, &e_), TY_EINVAL, "fire_id is longer than 191 bytes");
    d.r.fire_id = d.fire;
    d.r.job = NULL;
    assert_err(store_run_put(s, &d.r, &e_), TY_EINVAL, "job is missing");
    d.r.job = "etl";
    d.r.status = (enum store_run_status)0;
    assert_err(store_run_put(s, &d.r, &e_), TY_EINVAL, "status 0 is unknown");
    d.r.status = STORE_RUN_QUEUED;
    d.r.trigger = (enum store_trigger)42;
    assert_err(store_run_put(s, &d.r, &e_), TY_EINVAL, "trigger 42 is unknown");
    d.r.trigger = STORE_TRIGGER_MANUAL;
    d.r.attempt = 0;
    assert_err(store_run_put(s, &d.r, &e_), TY_EINVAL, "attempt must be 1 or more");
    d.r.attempt = 1;
    d.r.output = "x";
    d.r.output_len = (size_t)STORE_OUTPUT_MAX + 1; /* refused before it is read */
    assert_err(store_run_put(s, &d.r, &e_), TY_EINVAL, "output of 16777217 bytes");
    assert_int_equal(store_run_put(s, &d.r, &err), TY_EINVAL);
    assert_string_equal(err.field, "output");
    assert_int_equal(db_int(f, "SELECT count(*) FROM runs"), 2);
}

static void test_skips(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct store_skip k;
    char fire[64];
    skip_init(&k, fire, sizeof fire, "rep", "fin", 5000, -1, STORE_SKIP_PAUSED);
    k.detail = "pause window 1";
    assert_ok(store_skip_put(s, &k, &e_));
    k.reason = STORE_SKIP_OVERLAP; /* a replay: the first record stands */
    assert_ok(store_skip_put(s, &k, &e_));
    assert_int_equal(db_int(f, "SELECT count(*) FROM skips"), 1);
    k.shard = 3; /* another shard of the same fire is another record */
    assert_ok(store_skip_put(s, &k, &e_));
    assert_int_equal(db_int(f, "SELECT count(*) FROM skips"), 2);

    struct store_history_query q = {.status = "skipped"};
    json_t *page;
    assert_ok(store_history(s, &q, &page, &e_));
    json_t *items = json_object_get(page, "items");
    assert_int_equal(json_array_size(items), 2);
    json_t *o = json_array_get(items, 1); /* same scheduled time: higher row id first */
    assert_string_equal(jstr(o, "kind"), "skip");
    assert_string_equal(jstr(o, "status"), "skipped");
    assert_string_equal(jstr(o, "reason"), "paused");
    assert_string_equal(jstr(o, "detail"), "pause window 1");
    assert_string_equal(jstr(o, "fire_id"), "rep@5000#-1");
    assert_string_equal(jstr(o, "job"), "rep");
    assert_string_equal(jstr(o, "domain"), "fin");
    assert_int_equal(jint(o, "shard"), -1);
    assert_string_equal(jstr(o, "trigger"), "schedule");
    assert_int_equal(jint(o, "scheduled_at"), 5000);
    assert_string_equal(jstr(o, "scheduled_at_text"), "1970-01-01T01:23:20+00:00");
    assert_int_equal(jint(o, "recorded_at_ms"), 5000009);
    assert_int_equal(jint(json_array_get(items, 0), "shard"), 3);
    json_decref(page);

    k.reason = (enum store_skip_reason)99;
    assert_err(store_skip_put(s, &k, &e_), TY_EINVAL, "reason 99 is unknown");
    k.reason = STORE_SKIP_CALENDAR;
    k.trigger = (enum store_trigger)0;
    assert_err(store_skip_put(s, &k, &e_), TY_EINVAL, "trigger 0 is unknown");
    k.trigger = STORE_TRIGGER_SCHEDULE;
    k.shard = -2;
    assert_err(store_skip_put(s, &k, &e_), TY_EINVAL, "shard -2");
    k.shard = 0;
    k.fire_id = NULL;
    assert_err(store_skip_put(s, &k, &e_), TY_EINVAL, "skip_put: fire_id is missing");
    k.fire_id = fire;
    k.job = "";
    assert_err(store_skip_put(s, &k, &e_), TY_EINVAL, "skip_put: job is missing");
    assert_int_equal(db_int(f, "SELECT count(*) FROM skips"), 2);
}

static void test_unfinished_shards_last_fires(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct run_buf r[6];
    run_init(&r[0], "j1", "d", 100, 0, 1, STORE_RUN_SUCCEEDED);
    run_init(&r[1], "j1", "d", 100, 1, 1, STORE_RUN_FAILED);
    run_init(&r[2], "j1", "d", 100, 1, 2, STORE_RUN_RUNNING);
    run_init(&r[3], "j1", "d", 160, 0, 1, STORE_RUN_QUEUED);
    run_init(&r[4], "j10", "d", 100, 0, 1, STORE_RUN_SUCCEEDED); /* "j10@" != "j1@" */
    run_init(&r[5], "j2", "d", 900, 0, 1, STORE_RUN_SUCCEEDED);
    r[5].r.trigger = STORE_TRIGGER_MANUAL; /* not a scheduled fire */
    for (int i = 0; i < 6; i++)
        assert_ok(store_run_put(s, &r[i].r, &e_));
    struct store_skip k;
    char fire[64];
    skip_init(&k, fire, sizeof fire, "j2", "d", 300, -1, STORE_SKIP_MISFIRE);
    assert_ok(store_skip_put(s, &k, &e_));
    skip_init(&k, fire, sizeof fire, "j1", "d", 50, -1, STORE_SKIP_MISFIRE);
    assert_ok(store_skip_put(s, &k, &e_));
    struct run_buf m;
    run_init(&m, "j3", "d", 400, 0, 1, STORE_RUN_SUCCEEDED);
    m.r.trigger = STORE_TRIGGER_MISFIRE; /* a late fire the misfire policy ran still counts */
    assert_ok(store_run_put(s, &m.r, &e_));

    json_t *out;
    assert_ok(store_runs_unfinished(s, &out, &e_));
    assert_int_equal(json_array_size(out), 2);
    assert_string_equal(jstr(json_array_get(out, 0), "run_id"), r[2].id);
    assert_string_equal(jstr(json_array_get(out, 1), "run_id"), r[3].id);
    assert_int_equal(jint(json_array_get(out, 0), "pid"), 4242);
    json_decref(out);

    assert_ok(store_fire_shards(s, "j1@100#", &out, &e_));
    assert_int_equal(json_array_size(out), 2);
    json_t *o = json_array_get(out, 1);
    assert_int_equal(jint(o, "shard"), 1);
    assert_int_equal(jint(o, "attempt"), 2);
    assert_string_equal(jstr(o, "status"), "running");
    assert_string_equal(jstr(json_array_get(out, 0), "status"), "succeeded");
    json_decref(out);
    assert_ok(store_fire_shards(s, "nope@1#", &out, &e_));
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    assert_err(store_fire_shards(s, "", &out, &e_), TY_EINVAL, "fire_prefix is missing");

    assert_ok(store_last_fires(s, &out, &e_));
    assert_int_equal(json_object_size(out), 4);
    assert_int_equal(jint(out, "j1"), 160);
    assert_int_equal(jint(out, "j10"), 100);
    assert_int_equal(jint(out, "j2"), 300); /* the manual run at 900 is not a fire */
    assert_int_equal(jint(out, "j3"), 400);
    json_decref(out);
}

/* One run as a test of executor_last_fires writes it: attempt 1 unless said, succeeded. */
struct fire_row {
    const char *job, *executor;
    int64_t at;
    enum store_trigger trigger;
    uint32_t attempt;
};

static void put_fire_rows(struct store *s, const struct fire_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct run_buf b;
        run_init(&b, rows[i].job, "d", rows[i].at, 0, rows[i].attempt ? rows[i].attempt : 1,
                 STORE_RUN_SUCCEEDED);
        b.r.trigger = rows[i].trigger;
        b.r.executor = rows[i].executor;
        assert_ok(store_run_put(s, &b.r, &e_));
    }
}

/* executor_last_fires as an object of job -> epoch, compared with want ("{}" for none). */
/* executor_last_fires' answer per job alone: the newest of its shards (per is taken). */
static json_t *per_job(json_t *per)
{
    json_t *out = json_object();
    const char *job;
    json_t *shards;
    json_object_foreach(per, job, shards)
    {
        json_int_t newest = 0;
        const char *k;
        json_t *at;
        json_object_foreach(shards, k, at)
        {
            if (json_integer_value(at) > newest)
                newest = json_integer_value(at);
        }
        json_object_set_new(out, job, json_integer(newest));
    }
    json_decref(per);
    return out;
}

static void assert_executor_fires(struct store *s, const char *executor, int64_t since,
                                  const char *want)
{
    json_t *per = NULL, *w = json_loads(want, 0, NULL);
    assert_non_null(w);
    assert_ok(store_executor_last_fires(s, executor, since, &per, &e_));
    /* per job and shard; these rows are all of shard 0, so each job has exactly that */
    json_t *out = json_object();
    const char *job;
    json_t *shards;
    json_object_foreach(per, job, shards)
    {
        assert_int_equal(json_object_size(shards), 1);
        json_object_set(out, job, json_object_get(shards, "0"));
    }
    json_decref(per);
    if (!json_is_object(out) || !json_equal(out, w)) {
        char *got = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("executor_last_fires(%s, %" PRId64 "): %s, want %s", executor, since,
                 got ? got : "NULL", want);
    }
    json_decref(out);
    json_decref(w);
}

/* An executor dies between two shards of one fire as easily as between two fires: the
 * newest fire is per shard. */
static void test_executor_last_fires_per_shard(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    const int64_t t0 = 1767225600;
    const struct {
        uint32_t shard;
        int64_t at;
    } made[] = {{0, t0}, {1, t0}, {0, t0 + 60}, {2, t0 + 30}};
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) {
        struct run_buf b;
        run_init(&b, "split", "d", made[i].at, made[i].shard, 1, STORE_RUN_SUCCEEDED);
        b.r.executor = "ex-z";
        assert_ok(store_run_put(s, &b.r, &e_));
    }
    json_t *out = NULL;
    assert_ok(store_executor_last_fires(s, "ex-z", 0, &out, &e_));
    json_t *want = json_pack("{s:{s:I, s:I, s:I}}", "split", "0", (json_int_t)t0 + 60, "1",
                             (json_int_t)t0, "2", (json_int_t)t0 + 30);
    if (!json_equal(out, want)) {
        char *got = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("executor_last_fires per shard: %s", got ? got : "NULL");
    }
    json_decref(out);
    json_decref(want);
}

/* The skips after each job's own instant, per shard: what a dead executor skipped after
 * its newest run (overlap, calendars, misfires), which its successor must not record again. */
static void test_skips_last(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    const int64_t t0 = 1767225600, day = 86400;
    const struct {
        const char *job;
        int64_t at;
        int32_t shard;
        enum store_trigger trigger;
    } rows[] = {
        {"etl", t0 + 10, 0, STORE_TRIGGER_SCHEDULE},
        {"etl", t0 + 20, 0, STORE_TRIGGER_SCHEDULE},
        {"etl", t0 + 5, 1, STORE_TRIGGER_SCHEDULE},     /* at the instant itself: not after */
        {"etl", t0 + day, 2, STORE_TRIGGER_MISFIRE},    /* a misfire record counts */
        {"etl", t0 + 2 * day, 3, STORE_TRIGGER_MANUAL}, /* not a fire of the schedule */
        {"report", t0 + 100, 0, STORE_TRIGGER_SCHEDULE},
        {"report", t0 + 30, 0, STORE_TRIGGER_SCHEDULE}, /* before report's instant */
        {"other", t0 + 50, 0, STORE_TRIGGER_SCHEDULE},  /* a job not asked about */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct store_skip k;
        char fire[64];
        skip_init(&k, fire, sizeof fire, rows[i].job, "d", rows[i].at, rows[i].shard,
                  STORE_SKIP_OVERLAP);
        k.trigger = rows[i].trigger;
        assert_ok(store_skip_put(s, &k, &e_));
    }
    json_t *after = json_pack("{s:I, s:I, s:I}", "etl", (json_int_t)t0 + 5, "report",
                              (json_int_t)t0 + 40, "nothing", (json_int_t)0);
    json_t *out = NULL;
    assert_ok(store_skips_last(s, after, &out, &e_));
    json_t *want = json_pack("{s:{s:I, s:I}, s:{s:I}}", "etl", "0", (json_int_t)t0 + 20, "2",
                             (json_int_t)t0 + day, "report", "0", (json_int_t)t0 + 100);
    if (!json_equal(out, want)) {
        char *got = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("skips_last: %s", got ? got : "NULL");
    }
    json_decref(out);
    json_decref(want);
    json_decref(after);
    /* nothing asked: nothing found */
    after = json_object();
    assert_ok(store_skips_last(s, after, &out, &e_));
    assert_int_equal(json_object_size(out), 0);
    json_decref(out);
    json_decref(after);
    /* malformed: refused naming "after" */
    struct ty_err err;
    static const char *const bad[] = {"[1]", "{\"etl\": \"5\"}", "{\"etl\": -1}", "{\"\": 5}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        after = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        out = NULL;
        assert_int_equal(store_skips_last(s, after, &out, &err), TY_EINVAL);
        assert_string_equal(err.field, "after");
        assert_null(out);
        json_decref(after);
    }
}

/* Where a dead executor's shards resume: for each job, the newest fire of the schedule (or
 * of the misfire policy) that executor made, since a time. */
static void test_executor_last_fires(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    const int64_t t0 = 1767225600, day = 86400; /* 2026-01-01; PostgreSQL: one partition a day */
    static const struct fire_row rows[] = {
        {"etl", "ex-a", 1767225600, STORE_TRIGGER_SCHEDULE, 1},
        {"etl", "ex-a", 1767225660, STORE_TRIGGER_SCHEDULE, 1},
        {"etl", "ex-b", 1767225720, STORE_TRIGGER_SCHEDULE, 1}, /* after ex-a's: ex-b's */
        {"report", "ex-b", 1767225630, STORE_TRIGGER_SCHEDULE, 1},
        {"report", "ex-a", 1767312000, STORE_TRIGGER_MISFIRE, 1}, /* a late fire run: counts */
        {"sync", "ex-b", 1767398400, STORE_TRIGGER_SCHEDULE, 1},
        /* not fires of the schedule, all later than every fire above */
        {"etl", "ex-a", 1767484800, STORE_TRIGGER_MANUAL, 1},
        {"report", "ex-a", 1767484800, STORE_TRIGGER_DOWNSTREAM, 1},
        {"adhoc", "ex-a", 1767484800, STORE_TRIGGER_MANUAL, 1},
        {"adhoc", "ex-a", 1767484800, STORE_TRIGGER_RETRY, 2}, /* a manual run's retry */
        /* the attempt number is no filter: a schedule-triggered record of attempt 3 */
        {"sync", "ex-a", 1767226500, STORE_TRIGGER_SCHEDULE, 3},
    };
    put_fire_rows(s, rows, sizeof rows / sizeof rows[0]);
    /* a failed fire and its retry, which started days later: the fire's time counts */
    struct run_buf a1, a2;
    run_init(&a1, "flaky", "d", t0 + 300, 0, 1, STORE_RUN_FAILED);
    a1.r.executor = "ex-a";
    assert_ok(store_run_put(s, &a1.r, &e_));
    run_init(&a2, "flaky", "d", t0 + 300, 0, 2, STORE_RUN_SUCCEEDED);
    a2.r.fire_id = a1.fire;
    a2.r.trigger = STORE_TRIGGER_RETRY;
    a2.r.executor = "ex-a";
    a2.r.started_at_ms = (t0 + 5 * day) * 1000;
    a2.r.ended_at_ms = a2.r.started_at_ms + 10;
    assert_ok(store_run_put(s, &a2.r, &e_));
    /* skipped fires carry no executor: never anyone's */
    struct store_skip k;
    char fire[64];
    skip_init(&k, fire, sizeof fire, "etl", "d", t0 + 6 * day, -1, STORE_SKIP_OVERLAP);
    assert_ok(store_skip_put(s, &k, &e_));
    /* a run is the executor's its latest record names: queued on ex-a, run by ex-c */
    struct run_buf m;
    run_init(&m, "moved", "d", t0 + 900, 0, 1, STORE_RUN_QUEUED);
    m.r.executor = "ex-a";
    assert_ok(store_run_put(s, &m.r, &e_));
    m.r.status = STORE_RUN_RUNNING;
    m.r.started_at_ms = (t0 + 900) * 1000 + 5;
    m.r.executor = "ex-c";
    assert_ok(store_run_put(s, &m.r, &e_));

    char want[256];
    snprintf(want, sizeof want,
             "{\"etl\": %" PRId64 ", \"report\": %" PRId64 ", \"sync\": %" PRId64
             ", \"flaky\": %" PRId64 "}",
             t0 + 60, t0 + day, t0 + 900, t0 + 300);
    assert_executor_fires(s, "ex-a", 0, want);
    snprintf(want, sizeof want,
             "{\"etl\": %" PRId64 ", \"report\": %" PRId64 ", \"sync\": %" PRId64 "}", t0 + 120,
             t0 + 30, t0 + 2 * day);
    assert_executor_fires(s, "ex-b", 0, want);
    snprintf(want, sizeof want, "{\"moved\": %" PRId64 "}", t0 + 900);
    assert_executor_fires(s, "ex-c", 0, want);

    /* since: scheduled_at >= since, the bound included */
    snprintf(want, sizeof want,
             "{\"etl\": %" PRId64 ", \"report\": %" PRId64 ", \"sync\": %" PRId64
             ", \"flaky\": %" PRId64 "}",
             t0 + 60, t0 + day, t0 + 900, t0 + 300);
    assert_executor_fires(s, "ex-a", t0 + 60, want);
    snprintf(want, sizeof want,
             "{\"report\": %" PRId64 ", \"sync\": %" PRId64 ", \"flaky\": %" PRId64 "}", t0 + day,
             t0 + 900, t0 + 300);
    assert_executor_fires(s, "ex-a", t0 + 61, want);
    snprintf(want, sizeof want, "{\"report\": %" PRId64 "}", t0 + day);
    assert_executor_fires(s, "ex-a", t0 + 901, want);
    assert_executor_fires(s, "ex-a", t0 + day + 1, "{}"); /* manual runs only after that */
    assert_executor_fires(s, "ex-b", INT64_MAX, "{}");
    snprintf(want, sizeof want,
             "{\"etl\": %" PRId64 ", \"report\": %" PRId64 ", \"sync\": %" PRId64 "}", t0 + 120,
             t0 + 30, t0 + 2 * day);
    assert_executor_fires(s, "ex-b", INT64_MIN, want);

    /* an executor with nothing, or only other executors' look-alike names */
    assert_executor_fires(s, "ex-z", 0, "{}");
    assert_executor_fires(s, "ex", 0, "{}");
    assert_executor_fires(s, "ex-a ", 0, "{}");

    /* a reader connection sees the same; last_fires still counts every executor */
    struct store *r;
    assert_ok(fx_open(f, true, &r, &e_));
    snprintf(want, sizeof want, "{\"moved\": %" PRId64 "}", t0 + 900);
    assert_executor_fires(r, "ex-c", t0, want);
    store_close(r);
    json_t *out;
    assert_ok(store_last_fires(s, &out, &e_));
    assert_int_equal(jint(out, "etl"), t0 + 6 * day); /* the skipped fire */
    assert_int_equal(jint(out, "sync"), t0 + 2 * day);
    assert_null(json_object_get(out, "adhoc"));
    json_decref(out);

    /* refused: no executor, or one longer than any name */
    struct ty_err err;
    out = NULL;
    assert_int_equal(store_executor_last_fires(s, NULL, 0, &out, &err), TY_EINVAL);
    assert_string_equal(err.field, "executor");
    assert_string_equal(err.msg, "executor_last_fires: executor is missing");
    assert_null(out);
    assert_err(store_executor_last_fires(s, "", 0, &out, &e_), TY_EINVAL,
               "executor_last_fires: executor is missing");
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_err(store_executor_last_fires(s, longname, 0, &out, &e_), TY_EINVAL,
               "executor_last_fires: executor is longer than 256 bytes");
    assert_null(out);
}

/* How many SQLite VM steps the last executor_last_fires statement took. */
static int64_t fires_steps;

static int fires_trace(unsigned type, void *ctx, void *p, void *x)
{
    (void)ctx;
    (void)x;
    sqlite3_stmt *st = p;
    const char *sql = type == SQLITE_TRACE_PROFILE ? sqlite3_sql(st) : NULL;
    if (sql != NULL && strstr(sql, "WHERE executor = ?1") != NULL)
        fires_steps = sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 1);
    return 0;
}

static int trace_fires(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api)
{
    (void)errmsg;
    (void)api;
    sqlite3_trace_v2(db, SQLITE_TRACE_PROFILE, fires_trace, NULL);
    return SQLITE_OK;
}

/* executor_last_fires reads the executor's runs since `since` and nothing else: 20,000
 * runs of a busy executor, then a quiet one's few, cost the quiet one's few (SQLite's step
 * count, not a clock: reading the busy executor's runs would take hundreds of thousands),
 * and the busy one's last hour costs that hour. */
static void test_executor_last_fires_cost(void **state)
{
    struct fx *f = *state;
    const int64_t t0 = 1767225600;
    assert_ok(store_begin(f->s, &e_));
    for (int i = 0; i < 20000; i++) {
        char job[16];
        snprintf(job, sizeof job, "job-%02d", i % 50);
        struct fire_row row = {job, "busy", t0 + (int64_t)i * 10, STORE_TRIGGER_SCHEDULE, 1};
        put_fire_rows(f->s, &row, 1);
    }
    static const struct fire_row quiet[] = {
        {"job-01", "quiet", 1767225600, STORE_TRIGGER_SCHEDULE, 1},
        {"job-02", "quiet", 1767225610, STORE_TRIGGER_MISFIRE, 1},
        {"job-03", "quiet", 1767225620, STORE_TRIGGER_MANUAL, 1},
    };
    put_fire_rows(f->s, quiet, sizeof quiet / sizeof quiet[0]);
    assert_ok(store_commit(f->s, &e_));

    sqlite3_auto_extension((void (*)(void))trace_fires);
    struct store *r;
    assert_ok(fx_open(f, true, &r, &e_));
    fires_steps = -1;
    assert_executor_fires(r, "quiet", 0, "{\"job-01\": 1767225600, \"job-02\": 1767225610}");
    if (fires_steps < 0 || fires_steps > 300)
        fail_msg("3 runs of one executor among 20,003 took %" PRId64 " VM steps", fires_steps);
    /* the last hour of the busy one: 360 runs of 50 jobs */
    fires_steps = -1;
    json_t *out;
    assert_ok(store_executor_last_fires(r, "busy", t0 + 199990 - 3599, &out, &e_));
    out = per_job(out);
    assert_int_equal(json_object_size(out), 50);
    assert_int_equal(jint(out, "job-49"), t0 + 199990);
    json_decref(out);
    if (fires_steps < 0 || fires_steps > 14400) /* 40 steps a run */
        fail_msg("the last hour (360 runs) of 20,000 took %" PRId64 " VM steps", fires_steps);
    store_close(r);
}

/* ---------------------------------------------------------------------------------------
 * History.
 */

/* 3 jobs in a/x, a/y and ab; 30 scheduled times; 2 shards each; every 4th time a skip
 * beside the runs at the same time; a retry now and then.  Returns the row count. */
static size_t fill_history(struct store *s)
{
    static const char *const jobs[][2] = {{"ja", "a/x"}, {"jb", "a/y"}, {"jc", "ab"}};
    size_t n = 0;
    assert_ok(store_begin(s, &e_));
    for (int t = 0; t < 30; t++) {
        for (int j = 0; j < 3; j++) {
            int64_t sched = 1000000 + t * 60;
            for (uint32_t sh = 0; sh < 2; sh++) {
                struct run_buf b;
                enum store_run_status st =
                    (t + sh) % 5 == 0 ? STORE_RUN_FAILED : STORE_RUN_SUCCEEDED;
                run_init(&b, jobs[j][0], jobs[j][1], sched, sh, 1, st);
                assert_ok(store_run_put(s, &b.r, &e_));
                n++;
                if (st == STORE_RUN_FAILED) {
                    run_init(&b, jobs[j][0], jobs[j][1], sched, sh, 2, STORE_RUN_SUCCEEDED);
                    b.r.trigger = STORE_TRIGGER_RETRY;
                    assert_ok(store_run_put(s, &b.r, &e_));
                    n++;
                }
            }
            if (t % 4 == 0) {
                struct store_skip k;
                char fire[64];
                skip_init(&k, fire, sizeof fire, jobs[j][0], jobs[j][1], sched, -1,
                          STORE_SKIP_OVERLAP);
                assert_ok(store_skip_put(s, &k, &e_));
                n++;
            }
        }
    }
    assert_ok(store_commit(s, &e_));
    return n;
}

static void test_history_pages(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    size_t total = fill_history(s);
    assert_int_equal(total, 3 * (30 * 2 + 12 + 8));

    /* every row exactly once, in order, whatever the page size */
    static const size_t sizes[] = {1, 7, 24, 100, 1000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct store_history_query q = {0};
        int pages;
        json_t *all = history_all(s, q, sizes[i], &pages);
        assert_int_equal(json_array_size(all), total);
        assert_int_equal(pages, (int)((total + sizes[i] - 1) / sizes[i]));
        /* no duplicates: runs by run id, skips by fire id */
        json_t *seen = json_object();
        size_t k;
        json_t *it;
        json_array_foreach(all, k, it)
        {
            const char *key =
                strcmp(jstr(it, "kind"), "run") == 0 ? jstr(it, "run_id") : jstr(it, "fire_id");
            assert_null(json_object_get(seen, key));
            json_object_set_new(seen, key, json_true());
        }
        json_decref(seen);
        json_decref(all);
    }

    struct store_history_query q = {.limit = 5};
    json_t *page;
    assert_ok(store_history(s, &q, &page, &e_));
    json_t *first = json_array_get(json_object_get(page, "items"), 0);
    assert_int_equal(jint(first, "scheduled_at"), 1000000 + 29 * 60);
    assert_false(json_is_null(json_object_get(page, "next")));
    assert_true(json_is_integer(json_object_get(first, "output_bytes")));
    assert_null(json_object_get(first, "output")); /* history leaves the output to run_get */
    json_decref(page);

    /* filters */
    q = (struct store_history_query){.job = "ja"};
    assert_int_equal(history_count(s, q), 80);
    q = (struct store_history_query){.domain = "a"}; /* a/x and a/y, not ab */
    assert_int_equal(history_count(s, q), 160);
    q = (struct store_history_query){.domain = "a/x"};
    assert_int_equal(history_count(s, q), 80);
    q = (struct store_history_query){.domain = ""};
    assert_int_equal(history_count(s, q), total);
    q = (struct store_history_query){.status = "skipped"};
    assert_int_equal(history_count(s, q), 24);
    q = (struct store_history_query){.status = "failed"};
    assert_int_equal(history_count(s, q), 36);
    q = (struct store_history_query){.status = "succeeded", .job = "jc"};
    assert_int_equal(history_count(s, q), 60);
    q = (struct store_history_query){.since = 1000000 + 10 * 60, .until = 1000000 + 20 * 60};
    /* t = 10..19: 3 jobs x (2 runs + retries at (t+sh)%5==0 + skips at t%4==0) */
    assert_int_equal(history_count(s, q), 3 * (20 + 4 + 2));
    q = (struct store_history_query){.job = "jb",
                                     .domain = "a",
                                     .status = "skipped",
                                     .since = 1000000,
                                     .until = 1000000 + 8 * 60};
    assert_int_equal(history_count(s, q), 2);
    int pages;
    q = (struct store_history_query){.domain = "a", .status = "failed"};
    json_t *all = history_all(s, q, 5, &pages);
    assert_int_equal(json_array_size(all), 24);
    assert_int_equal(pages, 5);
    json_decref(all);

    /* a page that ends exactly at the last row says there is no next page */
    q = (struct store_history_query){.job = "ja", .limit = 80};
    assert_ok(store_history(s, &q, &page, &e_));
    assert_int_equal(json_array_size(json_object_get(page, "items")), 80);
    assert_true(json_is_null(json_object_get(page, "next")));
    json_decref(page);
    q = (struct store_history_query){.job = "nobody"};
    assert_ok(store_history(s, &q, &page, &e_));
    assert_int_equal(json_array_size(json_object_get(page, "items")), 0);
    json_decref(page);

    /* limits: 0 means 100, above 1000 is refused */
    q = (struct store_history_query){0};
    assert_ok(store_history(s, &q, &page, &e_));
    assert_int_equal(json_array_size(json_object_get(page, "items")), 100);
    json_decref(page);
    q.limit = 1000;
    assert_ok(store_history(s, &q, &page, &e_));
    json_decref(page);
    q.limit = 1001;
    struct ty_err err;
    assert_int_equal(store_history(s, &q, &page, &err), TY_EINVAL);
    assert_string_equal(err.field, "limit");
    assert_string_equal(err.msg, "history: limit 1001 is out of range 1-1000");
    q = (struct store_history_query){.status = "exploded"};
    assert_err(store_history(s, &q, &page, &e_), TY_EINVAL,
               "status \"exploded\" is not a run status or \"skipped\"");
    q = (struct store_history_query){.cursor = "12345"};
    assert_err(store_history(s, &q, &page, &e_), TY_EINVAL,
               "history: cursor \"12345\" is not one this store returned");
    q.cursor = "v1.100.2.5";
    assert_err(store_history(s, &q, &page, &e_), TY_EINVAL, "cursor");
    q.cursor = "v1.100.1.5x";
    assert_err(store_history(s, &q, &page, &e_), TY_EINVAL, "cursor");
}

/* ---------------------------------------------------------------------------------------
 * Statistics.
 */

static json_t *group(json_t *stats, const char *key)
{
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(stats, "groups"), i,
                       g) if (strcmp(jstr(g, "key"), key) == 0) return g;
    fail_msg("no group \"%s\"", key);
    return NULL;
}

static void test_stats(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    const int64_t t0 = 1767225600; /* 2026-01-01T00:00:00Z */
    assert_ok(store_begin(s, &e_));
    /* s1: 100 finished runs, lateness 1..100 ms, durations 10..1000 ms, in scrambled order */
    for (int k = 0; k < 100; k++) {
        int64_t i = (k * 37) % 100;
        struct run_buf b;
        enum store_run_status st = i % 10 == 0   ? STORE_RUN_FAILED
                                   : i % 10 == 1 ? STORE_RUN_TIMEOUT
                                                 : STORE_RUN_SUCCEEDED;
        run_init(&b, "s1", "x", t0 + i * 60, 0, 1, st);
        b.r.started_at_ms = (t0 + i * 60) * 1000 + (i + 1);
        b.r.ended_at_ms = b.r.started_at_ms + (100 - i) * 10;
        assert_ok(store_run_put(s, &b.r, &e_));
    }
    struct run_buf q1;
    run_init(&q1, "s1", "x", t0 + 7000, 0, 1, STORE_RUN_QUEUED); /* no times: no percentiles */
    assert_ok(store_run_put(s, &q1.r, &e_));
    for (int i = 0; i < 5; i++) {
        struct store_skip k;
        char fire[64];
        skip_init(&k, fire, sizeof fire, "s1", "x", t0 + 10000 + i, -1, STORE_SKIP_MISFIRE);
        assert_ok(store_skip_put(s, &k, &e_));
    }
    /* s2, the next day, in x/y: durations 5, 1, 3 ms; lateness 7 ms */
    static const int dur[] = {5, 1, 3};
    for (int i = 0; i < 3; i++) {
        struct run_buf b;
        run_init(&b, "s2", "x/y", t0 + 86400 + i, 0, 1, STORE_RUN_SUCCEEDED);
        b.r.started_at_ms = (t0 + 86400 + i) * 1000 + 7;
        b.r.ended_at_ms = b.r.started_at_ms + dur[i];
        assert_ok(store_run_put(s, &b.r, &e_));
    }
    /* s3 in xy: outside the x subtree */
    struct run_buf o;
    run_init(&o, "s3", "xy", t0, 0, 1, STORE_RUN_LOST);
    o.r.started_at_ms = o.r.ended_at_ms = 0; /* never seen starting */
    assert_ok(store_run_put(s, &o.r, &e_));
    assert_ok(store_commit(s, &e_));

    json_t *out;
    struct store_stats_query q = {.group_by = "job"};
    assert_ok(store_stats(s, &q, &out, &e_));
    assert_int_equal(json_array_size(json_object_get(out, "groups")), 3);
    json_t *g = group(out, "s1");
    assert_int_equal(jint(g, "runs"), 101);
    assert_int_equal(jint(g, "succeeded"), 80);
    assert_int_equal(jint(g, "failed"), 10);
    assert_int_equal(jint(g, "timeouts"), 10);
    assert_int_equal(jint(g, "unfinished"), 1);
    assert_int_equal(jint(g, "skipped"), 5);
    /* nearest rank: p50 of 100 values is the 50th, p95 the 95th, p99 the 99th */
    assert_int_equal(jint(json_object_get(g, "duration_ms"), "p50"), 500);
    assert_int_equal(jint(json_object_get(g, "duration_ms"), "p95"), 950);
    assert_int_equal(jint(json_object_get(g, "lateness_ms"), "p50"), 50);
    assert_int_equal(jint(json_object_get(g, "lateness_ms"), "p99"), 99);
    g = group(out, "s2");
    assert_int_equal(jint(json_object_get(g, "duration_ms"), "p50"), 3);
    assert_int_equal(jint(json_object_get(g, "duration_ms"), "p95"), 5);
    assert_int_equal(jint(json_object_get(g, "lateness_ms"), "p99"), 7);
    g = group(out, "s3");
    assert_int_equal(jint(g, "lost"), 1);
    assert_true(json_is_null(json_object_get(json_object_get(g, "duration_ms"), "p50")));
    json_decref(out);

    q = (struct store_stats_query){.group_by = "domain", .domain = "x"};
    assert_ok(store_stats(s, &q, &out, &e_));
    assert_int_equal(json_array_size(json_object_get(out, "groups")), 2);
    assert_int_equal(jint(group(out, "x/y"), "runs"), 3);
    json_decref(out);

    q = (struct store_stats_query){.group_by = "day"};
    assert_ok(store_stats(s, &q, &out, &e_));
    assert_int_equal(json_array_size(json_object_get(out, "groups")), 2);
    assert_int_equal(jint(group(out, "2026-01-01"), "runs"), 102);
    assert_int_equal(jint(group(out, "2026-01-01"), "skipped"), 5);
    assert_int_equal(jint(group(out, "2026-01-02"), "runs"), 3);
    json_decref(out);

    q = (struct store_stats_query){.job = "s1", .since = t0, .until = t0 + 50LL * 60};
    assert_ok(store_stats(s, &q, &out, &e_)); /* group_by NULL: by job */
    g = group(out, "s1");
    assert_int_equal(jint(g, "runs"), 50);
    assert_int_equal(jint(json_object_get(g, "lateness_ms"), "p50"), 25);
    assert_int_equal(jint(g, "skipped"), 0);
    json_decref(out);

    q = (struct store_stats_query){.group_by = "week"};
    struct ty_err err;
    assert_int_equal(store_stats(s, &q, &out, &err), TY_EINVAL);
    assert_string_equal(err.field, "group_by");
    assert_string_equal(err.msg, "stats: group_by \"week\" is not job, domain or day");
}

/* ---------------------------------------------------------------------------------------
 * Retention, alerts, settings.
 */

static void test_prune(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    for (int i = 0; i < 10; i++) {
        struct run_buf b;
        run_init(&b, "p", "d", 1000 + i, 0, 1, STORE_RUN_SUCCEEDED);
        assert_ok(store_run_put(s, &b.r, &e_));
    }
    struct run_buf live;
    run_init(&live, "p", "d", 900, 1, 1, STORE_RUN_RUNNING); /* old but still running */
    assert_ok(store_run_put(s, &live.r, &e_));
    for (int i = 0; i < 5; i++) {
        struct store_skip k;
        char fire[64];
        skip_init(&k, fire, sizeof fire, "p", "d", 1000 + i, -1, STORE_SKIP_PAUSED);
        assert_ok(store_skip_put(s, &k, &e_));
    }
    struct run_buf other;
    run_init(&other, "q", "d", 1001, 0, 1, STORE_RUN_SUCCEEDED);
    assert_ok(store_run_put(s, &other.r, &e_));
    struct store_alert a = {
        .key = "failed:x", .kind = "failed", .reason = "r", .shard = -1, .raised_at_ms = 1};
    assert_ok(store_alert_raise(s, &a, &e_));
    assert_ok(store_alert_clear(s, "failed:x", 2, &e_));
    a.key = "failed:y";
    assert_ok(store_alert_raise(s, &a, &e_));

    int64_t removed = -1;
    assert_ok(store_prune(s, 0, 0, &removed, &e_));
    assert_int_equal(removed, 0);
    /* older than 1005 s: p's runs 1000..1004 and skips 1000..1004, q's run at 1001, the
     * cleared alert; the running run stays */
    assert_ok(store_prune(s, 1004500, 0, &removed, &e_));
    assert_int_equal(removed, 5 + 5 + 1 + 1);
    assert_int_equal(db_int(f, "SELECT count(*) FROM runs WHERE job = 'p'"), 6);
    assert_int_equal(db_int(f, "SELECT count(*) FROM alerts"), 1);
    /* the newest 3 per job: 1009, 1008, 1007 stay, 1006 and 1005 go; still the running one */
    assert_ok(store_prune(s, 0, 3, &removed, &e_));
    assert_int_equal(removed, 2);
    assert_int_equal(db_int(f, "SELECT count(*) FROM runs"), 4);
    assert_int_equal(db_int(f, "SELECT min(scheduled_at) FROM runs WHERE status ="
                               " 'succeeded'"),
                     1007);
    assert_int_equal(db_int(f, "SELECT count(*) FROM runs WHERE status = 'running'"), 1);
    /* skips and runs count together, newest first */
    for (int i = 0; i < 3; i++) {
        struct store_skip k;
        char fire[64];
        skip_init(&k, fire, sizeof fire, "p", "d", 2000 + i, -1, STORE_SKIP_PAUSED);
        assert_ok(store_skip_put(s, &k, &e_));
    }
    assert_ok(store_prune(s, 0, 2, &removed, &e_));
    assert_int_equal(removed, 4); /* skip 2000 and runs 1007..1009; the running run stays */
    assert_int_equal(db_int(f, "SELECT count(*) FROM skips"), 2);
    assert_err(store_prune(s, -1, 0, &removed, &e_), TY_EINVAL, "older_than_ms -1 is negative");
    assert_err(store_prune(s, 0, -3, &removed, &e_), TY_EINVAL, "keep_per_job -3 is negative");
}

static void test_alerts(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    json_t *detail = json_pack("{s:i, s:[i,i]}", "seconds_over", 12, "shards", 0, 3);
    struct store_alert a = {
        .key = "timeout:00ab",
        .kind = "timeout_alarm",
        .job = "etl",
        .domain = "bank/eu",
        .job_level = 2,
        .domain_level = 1,
        .shard = 3,
        .scheduled_at = 1767225600,
        .raised_at_ms = 1767225612000,
        .reason = "running 12 s past its alarm",
        .detail = detail,
    };
    assert_ok(store_alert_raise(s, &a, &e_));
    a.raised_at_ms += 5000;
    a.reason = "running 17 s past its alarm";
    assert_ok(store_alert_raise(s, &a, &e_)); /* a refresh, not a second alert */
    json_t *out;
    assert_ok(store_alerts_open(s, &out, &e_));
    assert_int_equal(json_array_size(out), 1);
    json_t *o = json_array_get(out, 0);
    assert_string_equal(jstr(o, "key"), "timeout:00ab");
    assert_string_equal(jstr(o, "kind"), "timeout_alarm");
    assert_string_equal(jstr(o, "job"), "etl");
    assert_string_equal(jstr(o, "domain"), "bank/eu");
    assert_int_equal(jint(o, "job_level"), 2);
    assert_int_equal(jint(o, "domain_level"), 1);
    assert_int_equal(jint(o, "shard"), 3);
    assert_int_equal(jint(o, "scheduled_at"), 1767225600);
    assert_string_equal(jstr(o, "scheduled_at_text"), "2026-01-01T00:00:00+00:00");
    assert_int_equal(jint(o, "raised_at_ms"), 1767225612000);
    assert_int_equal(jint(o, "last_raised_at_ms"), 1767225617000);
    assert_int_equal(jint(o, "raises"), 2);
    assert_string_equal(jstr(o, "reason"), "running 17 s past its alarm");
    assert_true(json_equal(json_object_get(o, "detail"), detail));
    int64_t first_id = jint(o, "id");
    json_decref(out);

    struct store_alert r = {.key = "resource:exec1",
                            .kind = "resource",
                            .shard = -1,
                            .raised_at_ms = 1767225700000,
                            .reason = "disk 97% full"};
    assert_ok(store_alert_raise(s, &r, &e_));
    assert_ok(store_alert_clear(s, "timeout:00ab", 1767225620000, &e_));
    assert_ok(store_alert_clear(s, "timeout:00ab", 1767225630000, &e_)); /* no-op */
    assert_ok(store_alert_clear(s, "never:raised", 1, &e_));
    assert_ok(store_alerts_open(s, &out, &e_));
    assert_int_equal(json_array_size(out), 1);
    o = json_array_get(out, 0);
    assert_string_equal(jstr(o, "key"), "resource:exec1");
    assert_true(json_is_null(json_object_get(o, "job")));
    assert_true(json_is_null(json_object_get(o, "detail")));
    assert_true(json_is_null(json_object_get(o, "scheduled_at_text")));
    json_decref(out);
    /* raised again after clearing: a new alert; the old one stays in the table */
    assert_ok(store_alert_raise(s, &a, &e_));
    assert_ok(store_alerts_open(s, &out, &e_));
    assert_int_equal(json_array_size(out), 2);
    o = json_array_get(out, 0);
    assert_int_equal(jint(o, "raises"), 1);
    assert_true(jint(o, "id") != first_id);
    json_decref(out);
    assert_int_equal(db_int(f, "SELECT cleared_at_ms FROM alerts WHERE id = 1"), 1767225620000);
    json_decref(detail);

    a.key = NULL;
    assert_err(store_alert_raise(s, &a, &e_), TY_EINVAL, "alert_raise: key is missing");
    a.key = "k";
    a.kind = "";
    assert_err(store_alert_raise(s, &a, &e_), TY_EINVAL, "alert_raise: kind is missing");
    a.kind = "failed";
    a.reason = NULL;
    assert_err(store_alert_raise(s, &a, &e_), TY_EINVAL, "alert_raise k: reason is missing");
    assert_err(store_alert_clear(s, "", 1, &e_), TY_EINVAL, "alert_clear: key is missing");
}

static void test_meta(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char *v;
    assert_err(store_meta_get(s, "epoch", &v, &e_), TY_ENOENT, "meta_get epoch: not set");
    assert_ok(store_meta_set(s, "epoch", "1", &e_));
    assert_ok(store_meta_set(s, "epoch", "2", &e_));
    assert_ok(store_meta_get(s, "epoch", &v, &e_));
    assert_string_equal(v, "2");
    free(v);
    assert_err(store_meta_set(s, "schema_version", "2", &e_), TY_EINVAL,
               "only a schema migration changes it");
    assert_err(store_meta_set(s, "", "2", &e_), TY_EINVAL, "meta_set: key is missing");
    assert_err(store_meta_set(s, "k", NULL, &e_), TY_EINVAL, "meta_set k: value is missing");
    assert_ok(store_meta_get(s, "schema_version", &v, &e_));
    assert_string_equal(v, "5");
    free(v);
}

/* ---------------------------------------------------------------------------------------
 * Batches and concurrency.
 */

static void test_batch(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s, *r;
    assert_ok(fx_open(f, true, &r, &e_));
    struct store_history_query q = {0};

    struct run_buf a, b, dup, d;
    run_init(&a, "b", "d", 10, 0, 1, STORE_RUN_SUCCEEDED);
    run_init(&b, "b", "d", 11, 0, 1, STORE_RUN_SUCCEEDED);
    run_init(&dup, "b", "d", 10, 0, 1, STORE_RUN_FAILED);
    run_init(&d, "b", "d", 12, 0, 1, STORE_RUN_SUCCEEDED);
    int64_t v;
    assert_ok(store_begin(s, &e_));
    assert_ok(store_run_put(s, &a.r, &e_));
    assert_ok(store_run_put(s, &b.r, &e_));
    assert_ok(store_obj_put(s, STORE_JOB, "b", "{\"domain\":\"d\"}", -1, "t", &v, &e_));
    assert_int_equal(history_count(r, q), 0); /* nothing committed yet */
    /* failed calls inside the batch change nothing and leave the batch going */
    assert_err(store_run_put(s, &dup.r, &e_), TY_EEXIST, "already recorded");
    assert_err(store_obj_put(s, STORE_JOB, "b", "{\"x\":1}", 7, "t", &v, &e_), TY_ECONFLICT,
               "at version 1");
    assert_err(store_obj_put(s, STORE_JOB, "c", "{oops", 0, "t", &v, &e_), TY_EINVAL, "json");
    assert_err(store_begin(s, &e_), TY_EINVAL, "a transaction is already open");
    assert_ok(store_run_put(s, &d.r, &e_));
    assert_ok(store_commit(s, &e_));
    assert_int_equal(history_count(r, q), 3);
    assert_int_equal(db_int(f, "SELECT count(*) FROM object_versions"), 1);
    assert_int_equal(db_int(f, "SELECT count(*) FROM objects"), 1);

    assert_err(store_commit(s, &e_), TY_EINVAL, "commit: no transaction is open");
    struct run_buf e;
    run_init(&e, "b", "d", 13, 0, 1, STORE_RUN_SUCCEEDED);
    assert_ok(store_begin(s, &e_));
    assert_ok(store_run_put(s, &e.r, &e_));
    assert_ok(store_obj_delete(s, STORE_JOB, "b", 1, NULL, &e_));
    store_rollback(s);
    store_rollback(s); /* harmless */
    assert_int_equal(history_count(r, q), 3);
    assert_int_equal(db_int(f, "SELECT count(*) FROM objects"), 1);

    /* a reader's begin .. commit reads one snapshot */
    assert_ok(store_begin(r, &e_));
    assert_int_equal(history_count(r, q), 3);
    assert_ok(store_run_put(s, &e.r, &e_));
    assert_int_equal(history_count(r, q), 3);
    assert_ok(store_commit(r, &e_));
    assert_int_equal(history_count(r, q), 4);
    assert_err(store_run_put(r, &e.r, &e_), TY_EINVAL, "run_put: the store");
    assert_err(store_obj_delete(r, STORE_JOB, "b", 0, NULL, &e_), TY_EINVAL, "open read-only");
    store_close(r);
}

static void test_busy(void **state)
{
    struct fx *f = *state;
    struct store *w2;
    assert_ok(store_open_sqlite(f->path, false, &w2, &e_));
    assert_ok(store_begin(f->s, &e_)); /* holds the write lock */
    struct run_buf b;
    run_init(&b, "busy", "d", 1, 0, 1, STORE_RUN_QUEUED);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_err(store_run_put(w2, &b.r, &e_), TY_EBUSY, "run_put run " /* the run id follows */);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec >= 4); /* it waited for the busy timeout */
    struct ty_err err;
    int64_t v;
    assert_int_equal(store_obj_put(w2, STORE_JOB, "j", "{}", 0, NULL, &v, &err), TY_EBUSY);
    assert_non_null(strstr(err.msg, "obj_put job \"j\": database busy past the 5 s timeout"));
    store_rollback(f->s);
    assert_ok(store_run_put(w2, &b.r, &e_));
    store_close(w2);
}

#define WRITER_BATCHES 60
#define WRITER_BATCH   50

struct writer_arg {
    struct fx *f;
    atomic_int committing; /* runs whose commit has begun: an upper bound of what is visible */
    atomic_int committed;  /* runs whose commit has returned: a lower bound */
    atomic_int done;
    int failures;
};

static void *writer_main(void *p)
{
    struct writer_arg *w = p;
    struct store *s;
    struct ty_err err;
    if (fx_open(w->f, false, &s, &err) != 0) {
        w->failures++;
        atomic_store(&w->done, 1);
        return NULL;
    }
    for (int b = 0; b < WRITER_BATCHES; b++) {
        if (store_begin(s, &err) != 0)
            w->failures++;
        for (int i = 0; i < WRITER_BATCH; i++) {
            int n = b * WRITER_BATCH + i;
            char id[STORE_ID_MAX], fire[64];
            snprintf(id, sizeof id, "%016x", n);
            snprintf(fire, sizeof fire, "w@%d#0", n);
            struct store_run r = {.run_id = id,
                                  .fire_id = fire,
                                  .job = "w",
                                  .domain = "d",
                                  .attempt = 1,
                                  .trigger = STORE_TRIGGER_SCHEDULE,
                                  .status = STORE_RUN_SUCCEEDED,
                                  .scheduled_at = 100000 + n,
                                  .exit_code = 0,
                                  .output = "ok\n",
                                  .output_len = 3};
            if (store_run_put(s, &r, &err) != 0)
                w->failures++;
        }
        atomic_fetch_add(&w->committing, WRITER_BATCH);
        if (store_commit(s, &err) != 0)
            w->failures++;
        atomic_fetch_add(&w->committed, WRITER_BATCH);
    }
    store_close(s);
    atomic_store(&w->done, 1);
    return NULL;
}

static void test_writer_and_reader(void **state)
{
    struct fx *f = *state;
    struct writer_arg w = {.f = f};
    atomic_init(&w.committing, 0);
    atomic_init(&w.committed, 0);
    atomic_init(&w.done, 0);
    struct store *r;
    assert_ok(fx_open(f, true, &r, &e_));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
    int traversals = 0;
    static bool seen[WRITER_BATCHES * WRITER_BATCH];
    while (!atomic_load(&w.done) || traversals < 3) {
        int before = atomic_load(&w.committed);
        struct store_history_query q = {.job = "w"};
        int pages;
        json_t *all = history_all(r, q, 37, &pages); /* checks order and page sizes */
        int after = atomic_load(&w.committing);
        size_t n = json_array_size(all);
        /* a traversal sees the rows of its first page's snapshot: never fewer than were
         * committed before it began, no more than after, each once, and since the writer
         * appends ever newer fires, exactly fires 0 .. n-1 */
        if ((int)n < before || (int)n > after)
            fail_msg("traversal saw %zu runs; %d were committed before it, %d after", n, before,
                     after);
        memset(seen, 0, sizeof seen);
        size_t i;
        json_t *it;
        json_array_foreach(all, i, it)
        {
            int64_t k = jint(it, "scheduled_at") - 100000;
            assert_true(k >= 0 && k < (int64_t)n);
            assert_false(seen[k]);
            seen[k] = true;
        }
        json_decref(all);
        traversals++;
    }
    pthread_join(t, NULL);
    assert_int_equal(w.failures, 0);
    struct store_history_query q = {.job = "w"};
    assert_int_equal(history_count(r, q), WRITER_BATCHES * WRITER_BATCH);
    store_close(r);
    print_message("writer/reader: %d history traversals during %d batched appends\n", traversals,
                  WRITER_BATCHES);
}

/* ---------------------------------------------------------------------------------------
 * A full disk.
 */

static char big[8192];

/* Append runs with 8 KB of output until one fails; returns how many were stored. */
static int fill_until_full(struct store *s, const char *job, int max, struct ty_err *err, int *rc)
{
    memset(big, 'o', sizeof big);
    for (int i = 0; i < max; i++) {
        struct run_buf b;
        run_init(&b, job, "d", 5000 + i, 0, 1, STORE_RUN_SUCCEEDED);
        b.r.output = big;
        b.r.output_len = sizeof big;
        *rc = store_run_put(s, &b.r, err);
        if (*rc != 0)
            return i;
    }
    return max;
}

/* A job object of about 20 KB: more than a nearly full disk takes. */
static void big_json(char *buf, size_t cap)
{
    static char fill[20000];
    memset(fill, 'd', sizeof fill - 1);
    fill[sizeof fill - 1] = '\0';
    snprintf(buf, cap, "{\"domain\":\"d\",\"description\":\"%s\"}", fill);
}

static void check_integrity(const char *path)
{
    char ok[64];
    raw_text(path, "PRAGMA integrity_check", ok, sizeof ok);
    assert_string_equal(ok, "ok");
}

static void test_disk_full_tmpfs(void **state)
{
    struct fx *f = *state;
    snprintf(f->mnt, sizeof f->mnt, "%s/mnt", f->dir);
    assert_int_equal(mkdir(f->mnt, 0700), 0);
    /* in a mount namespace of our own when we can: the tmpfs then goes with the process,
     * however it ends (teardown unmounts it otherwise) */
    if (unshare(CLONE_NEWNS) == 0)
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    if (mount("tmpfs", f->mnt, "tmpfs", 0, "size=1m") != 0) {
        print_message("disk full on tmpfs: skipped, mount: %s (see the max_page_count test)\n",
                      strerror(errno));
        skip();
    }
    f->mounted = true;
    char path[192], filler[192];
    snprintf(path, sizeof path, "%s/tethys.db", f->mnt);
    snprintf(filler, sizeof filler, "%s/filler", f->mnt);
    int fd = open(filler, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    static char chunk[384 * 1024];
    assert_int_equal(write(fd, chunk, sizeof chunk), (ssize_t)sizeof chunk);
    close(fd);

    struct store *s;
    int64_t v;
    assert_ok(store_open_sqlite(path, false, &s, &e_));
    assert_ok(store_obj_put(s, STORE_JOB, "full", "{\"domain\":\"d\"}", -1, "t", &v, &e_));
    struct ty_err err;
    int rc;
    int stored = fill_until_full(s, "full", 1000, &err, &rc);
    assert_int_equal(rc, TY_ENOSPC);
    assert_true(stored > 5);
    assert_non_null(strstr(err.msg, "run_put run "));
    assert_non_null(strstr(err.msg, ": disk full (database "));
    assert_non_null(strstr(err.msg, path));
    print_message("tmpfs 1 MB: %d runs stored, then: %s\n", stored, err.msg);

    /* a config change cannot be written either, and says so */
    static char desc[24 * 1024];
    big_json(desc, sizeof desc);
    assert_int_equal(store_obj_put(s, STORE_JOB, "full", desc, 1, "t", &v, &err), TY_ENOSPC);
    assert_non_null(strstr(err.msg, "obj_put job \"full\": disk full"));
    /* and a batch reports it at commit at the latest */
    assert_ok(store_begin(s, &e_));
    int brc = 0;
    fill_until_full(s, "batch", 50, &err, &brc);
    if (brc == 0)
        brc = store_commit(s, &err);
    else
        store_rollback(s);
    assert_int_equal(brc, TY_ENOSPC);

    /* what was stored is intact and readable */
    struct store_history_query q = {.job = "full"};
    assert_int_equal(history_count(s, q), stored);
    q.job = "batch";
    assert_int_equal(history_count(s, q), 0);
    char *json;
    assert_ok(store_obj_get(s, STORE_JOB, "full", &json, &v, &e_));
    assert_int_equal(v, 1);
    free(json);
    check_integrity(path);

    /* space freed: the same connection writes again */
    assert_int_equal(unlink(filler), 0);
    assert_int_equal(fill_until_full(s, "after", 3, &err, &rc), 3);
    assert_ok(store_obj_put(s, STORE_JOB, "full", desc, 1, "t", &v, &e_));
    assert_int_equal(v, 2);
    store_close(s);
    check_integrity(path);
    assert_ok(store_open_sqlite(path, false, &s, &e_));
    q.job = "after";
    assert_int_equal(history_count(s, q), 3);
    q.job = "full";
    assert_int_equal(history_count(s, q), stored);
    store_close(s);
}

static int limit_pages(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api)
{
    (void)errmsg;
    (void)api;
    sqlite3_exec(db, "PRAGMA max_page_count = 80", NULL, NULL, NULL);
    return SQLITE_OK;
}

/* The same with no mount needed: every connection limited to 80 pages of 4 KB. */
static void test_disk_full_max_page_count(void **state)
{
    struct fx *f = *state;
    char path[192];
    snprintf(path, sizeof path, "%s/limited.db", f->dir);
    sqlite3_auto_extension((void (*)(void))limit_pages);
    struct store *s;
    int64_t v;
    assert_ok(store_open_sqlite(path, false, &s, &e_));
    struct ty_err err;
    int rc;
    int stored = fill_until_full(s, "full", 1000, &err, &rc);
    assert_int_equal(rc, TY_ENOSPC);
    assert_true(stored > 3);
    assert_non_null(strstr(err.msg, ": disk full (database "));
    assert_non_null(strstr(err.msg, "database or disk is full"));
    static char desc[24 * 1024];
    big_json(desc, sizeof desc);
    assert_int_equal(store_obj_put(s, STORE_JOB, "big", desc, -1, "t", &v, &err), TY_ENOSPC);
    assert_non_null(strstr(err.msg, "obj_put job \"big\": disk full"));
    struct store_history_query q = {.job = "full"};
    assert_int_equal(history_count(s, q), stored);
    store_close(s);
    sqlite3_cancel_auto_extension((void (*)(void))limit_pages);
    check_integrity(path);
    /* "space freed": without the limit the same file takes writes again */
    assert_ok(store_open_sqlite(path, false, &s, &e_));
    assert_int_equal(fill_until_full(s, "after", 3, &err, &rc), 3);
    assert_ok(store_obj_put(s, STORE_JOB, "big", desc, -1, "t", &v, &e_));
    assert_int_equal(history_count(s, q), stored);
    store_close(s);
    check_integrity(path);
}

/* ---------------------------------------------------------------------------------------
 * Configuration history, tokens, secrets.
 */

static void test_obj_history(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s, *r;
    int64_t v;
    const char *j1 = "{\"name\":\"h\",\"command\":\"true\"}";
    const char *j2 = "{\"name\":\"h\",\"command\":\"false\"}";
    assert_ok(store_obj_put(s, STORE_JOB, "h", j1, -1, "10.0.0.1", &v, &e_));
    assert_ok(store_obj_put(s, STORE_JOB, "h", j2, 1, "10.0.0.2", &v, &e_));
    assert_ok(store_obj_put(s, STORE_JOB, "h", j2, 2, "10.0.0.3", &v, &e_)); /* no change */
    assert_ok(store_obj_delete(s, STORE_JOB, "h", 2, "10.0.0.4", &e_));
    assert_ok(store_obj_put(s, STORE_JOB, "h", j1, -1, NULL, &v, &e_));
    assert_int_equal(v, 4);
    assert_ok(store_obj_put(s, STORE_CALENDAR, "h", "{\"name\":\"h\"}", -1, "c", &v, &e_));

    /* read through a reader connection, as the API does */
    assert_ok(fx_open(f, true, &r, &e_));
    json_t *h;
    assert_ok(store_obj_history(r, STORE_JOB, "h", &h, &e_));
    const char *want[][3] = {{"4", "create", "-"},
                             {"3", "delete", "10.0.0.4"},
                             {"2", "update", "10.0.0.2"},
                             {"1", "create", "10.0.0.1"}};
    assert_int_equal(json_array_size(h), 4);
    int64_t last_at = INT64_MAX;
    for (size_t i = 0; i < 4; i++) {
        json_t *it = json_array_get(h, i);
        char ver[8];
        snprintf(ver, sizeof ver, "%" PRId64, jint(it, "version"));
        assert_string_equal(ver, want[i][0]);
        assert_string_equal(jstr(it, "op"), want[i][1]);
        assert_string_equal(jstr(it, "who") ? jstr(it, "who") : "-", want[i][2]);
        assert_true(jint(it, "at_ms") <= last_at); /* newest first */
        last_at = jint(it, "at_ms");
        assert_int_equal(json_object_size(it), 4);
    }
    json_decref(h);
    assert_ok(store_obj_history(r, STORE_CALENDAR, "h", &h, &e_));
    assert_int_equal(json_array_size(h), 1); /* kinds are separate */
    json_decref(h);

    char *json;
    assert_ok(store_obj_version(r, STORE_JOB, "h", 2, &json, &e_));
    assert_string_equal(json, j2);
    free(json);
    assert_ok(store_obj_version(r, STORE_JOB, "h", 1, &json, &e_));
    assert_string_equal(json, j1);
    free(json);
    assert_err(store_obj_version(r, STORE_JOB, "h", 3, &json, &e_), TY_ENOENT,
               "obj_version job \"h\": version 3 is its deletion, which has no definition");
    assert_err(store_obj_version(r, STORE_JOB, "h", 5, &json, &e_), TY_ENOENT,
               "obj_version job \"h\": no version 5");
    assert_err(store_obj_version(r, STORE_JOB, "h", 0, &json, &e_), TY_EINVAL,
               "version 0 is not a version");
    assert_err(store_obj_version(r, STORE_DOMAIN, "h", 1, &json, &e_), TY_ENOENT, "no version 1");
    assert_err(store_obj_history(r, STORE_JOB, "ghost", &h, &e_), TY_ENOENT,
               "obj_history job \"ghost\": never existed");
    assert_err(store_obj_history(r, (enum store_kind)9, "h", &h, &e_), TY_EINVAL, "kind 9");
    assert_err(store_obj_history(r, STORE_JOB, "", &h, &e_), TY_EINVAL, "name must be");
    struct ty_err err;
    assert_int_equal(store_obj_version(r, STORE_JOB, "h", 9, &json, &err), TY_ENOENT);
    assert_string_equal(err.field, "version");
    store_close(r);
}

#define HASH_A "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define HASH_B "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"

static void test_tokens(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s, *r;
    json_t *t, *list;
    assert_ok(store_token_put(s, "ci", HASH_A, 0, "127.0.0.1", &e_));
    assert_ok(store_token_put(s, "alice", HASH_B, 4102444800000, NULL, &e_));
    assert_err(store_token_put(s, "ci", HASH_B, 0, NULL, &e_), TY_EEXIST,
               "token_put: a token named \"ci\" exists");
    struct ty_err err;
    assert_int_equal(store_token_put(s, "other", HASH_A, 0, NULL, &err), TY_EEXIST);
    assert_string_equal(err.field, "hash");
    assert_non_null(strstr(err.msg, "token_put \"other\": another token has the same secret"));
    /* a hash that is not one is refused, and not quoted back */
    assert_int_equal(store_token_put(s, "x", "s3cret-token", 0, NULL, &err), TY_EINVAL);
    assert_string_equal(err.field, "hash");
    assert_non_null(strstr(err.msg, "hash must be the SHA-256 of the token in hex (64 digits)"));
    assert_null(strstr(err.msg, "s3cret"));
    assert_err(store_token_put(s, "x", HASH_A "0", 0, NULL, &e_), TY_EINVAL, "64 digits");
    assert_err(store_token_put(s, "", HASH_A, 0, NULL, &e_), TY_EINVAL, "name is missing");
    assert_err(store_token_put(s, "x", HASH_A, -5, NULL, &e_), TY_EINVAL,
               "expires_at_ms -5 is not 0 (never) or a time");

    /* the list: ordered by name, every field, never the hash */
    assert_ok(store_token_list(s, &list, &e_));
    assert_int_equal(json_array_size(list), 2);
    char *dump = json_dumps(list, 0);
    assert_null(strstr(dump, HASH_A));
    assert_null(strstr(dump, HASH_B));
    free(dump);
    t = json_array_get(list, 0);
    assert_string_equal(jstr(t, "name"), "alice");
    assert_int_equal(jint(t, "expires_at_ms"), 4102444800000);
    assert_true(json_is_null(json_object_get(t, "created_by")));
    t = json_array_get(list, 1);
    assert_string_equal(jstr(t, "name"), "ci");
    assert_string_equal(jstr(t, "created_by"), "127.0.0.1");
    assert_true(jint(t, "created_at_ms") > 1700000000000);
    assert_true(json_is_null(json_object_get(t, "expires_at_ms"))); /* never */
    assert_true(json_is_null(json_object_get(t, "revoked_at_ms")));
    assert_true(json_is_null(json_object_get(t, "last_used_at_ms")));
    assert_int_equal(json_object_size(t), 6);
    json_decref(list);

    /* lookup by hash (any case) records the use, at most once a minute */
    assert_ok(store_token_lookup(s, HASH_A, &t, &e_));
    assert_string_equal(jstr(t, "name"), "ci");
    int64_t used = jint(t, "last_used_at_ms");
    json_decref(t);
    assert_int_equal(db_int(f, "SELECT last_used_at_ms FROM tokens WHERE name = 'ci'"), used);
    db_exec(f, "UPDATE tokens SET last_used_at_ms = last_used_at_ms - 30000");
    char upper[65];
    for (int i = 0; i < 64; i++)
        upper[i] = (char)(HASH_A[i] >= 'a' ? HASH_A[i] - 'a' + 'A' : HASH_A[i]);
    upper[64] = '\0';
    assert_ok(store_token_lookup(s, upper, &t, &e_));
    assert_int_equal(jint(t, "last_used_at_ms"), used - 30000); /* within the minute: no write */
    json_decref(t);
    db_exec(f, "UPDATE tokens SET last_used_at_ms = last_used_at_ms - 31000");
    assert_ok(store_token_lookup(s, HASH_A, &t, &e_));
    assert_true(jint(t, "last_used_at_ms") >= used); /* a minute later: written again */
    json_decref(t);
    assert_true(db_int(f, "SELECT last_used_at_ms FROM tokens WHERE name = 'ci'") >= used);
    /* a clock stepped back does not freeze it */
    db_exec(f, "UPDATE tokens SET last_used_at_ms = last_used_at_ms + 3600000");
    assert_ok(store_token_lookup(s, HASH_A, &t, &e_));
    assert_true(jint(t, "last_used_at_ms") < used + 3600000);
    json_decref(t);
    assert_err(store_token_lookup(s,
                                  "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c"
                                  "000",
                                  &t, &e_),
               TY_ENOENT, "token_lookup: no token has this secret");
    assert_err(store_token_lookup(s, "short", &t, &e_), TY_EINVAL, "64 digits");

    /* a reader looks up without writing; it cannot create or revoke */
    db_exec(f, "UPDATE tokens SET last_used_at_ms = NULL WHERE name = 'alice'");
    assert_ok(fx_open(f, true, &r, &e_));
    assert_ok(store_token_lookup(r, HASH_B, &t, &e_));
    assert_string_equal(jstr(t, "name"), "alice");
    assert_true(json_is_null(json_object_get(t, "last_used_at_ms")));
    json_decref(t);
    assert_err(store_token_put(r, "y", HASH_B, 0, NULL, &e_), TY_EINVAL, "is open read-only");
    assert_err(store_token_revoke(r, "ci", 0, &e_), TY_EINVAL, "is open read-only");

    /* revoked: still found (the caller refuses it), the first revocation time kept */
    assert_ok(store_token_revoke(s, "ci", 1800000000000, &e_));
    assert_ok(store_token_revoke(s, "ci", 1900000000000, &e_));
    assert_ok(store_token_lookup(r, HASH_A, &t, &e_));
    assert_int_equal(jint(t, "revoked_at_ms"), 1800000000000);
    json_decref(t);
    assert_err(store_token_revoke(s, "nobody", 0, &e_), TY_ENOENT,
               "token_revoke: no token named \"nobody\"");
    assert_err(store_token_put(s, "ci", HASH_B, 0, NULL, &e_), TY_EEXIST, "keeps its name");
    assert_ok(store_token_revoke(s, "alice", 0, &e_)); /* 0: now */
    assert_ok(store_token_lookup(r, HASH_B, &t, &e_));
    assert_true(jint(t, "revoked_at_ms") > 1700000000000);
    json_decref(t);
    store_close(r);
    /* the hash is all that is stored */
    assert_int_equal(db_int(f, "SELECT count(*) FROM tokens WHERE hash = '" HASH_A "'"), 1);
}

static void test_secrets(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    json_t *got;
    assert_ok(store_secrets_get(s, "j", &got, &e_));
    assert_int_equal(json_object_size(got), 0);
    json_decref(got);
    json_t *v = json_pack("{s:s, s:s}", "DB_PASSWORD", "hunter2", "API_KEY", "k-123");
    assert_ok(store_secrets_put(s, "j", v, &e_));
    json_decref(v);
    v = json_pack("{s:s}", "TOKEN", "other job's");
    assert_ok(store_secrets_put(s, "k", v, &e_));
    json_decref(v);
    assert_ok(store_secrets_get(s, "j", &got, &e_));
    assert_int_equal(json_object_size(got), 2);
    assert_string_equal(jstr(got, "DB_PASSWORD"), "hunter2");
    assert_string_equal(jstr(got, "API_KEY"), "k-123");
    json_decref(got);
    /* a put replaces them all */
    v = json_pack("{s:s}", "DB_PASSWORD", "correct horse");
    assert_ok(store_secrets_put(s, "j", v, &e_));
    json_decref(v);
    assert_ok(store_secrets_get(s, "j", &got, &e_));
    assert_int_equal(json_object_size(got), 1);
    assert_string_equal(jstr(got, "DB_PASSWORD"), "correct horse");
    json_decref(got);

    /* refused, and nothing changes */
    v = json_pack("{s:s, s:i}", "A", "ok", "B", 7);
    assert_err(store_secrets_put(s, "j", v, &e_), TY_EINVAL,
               "secrets_put job \"j\": secret \"B\" must be a string");
    json_decref(v);
    v = json_pack("{s:s%}", "A", "a\0b", (size_t)3);
    assert_err(store_secrets_put(s, "j", v, &e_), TY_EINVAL, "secret \"A\" holds a NUL character");
    json_decref(v);
    v = json_pack("{s:s}", "", "x");
    assert_err(store_secrets_put(s, "j", v, &e_), TY_EINVAL, "a secret's name must be 1 to 256");
    json_decref(v);
    v = json_pack("[s]", "x");
    assert_err(store_secrets_put(s, "j", v, &e_), TY_EINVAL, "values must be an object");
    json_decref(v);
    assert_err(store_secrets_put(s, "", v, &e_), TY_EINVAL, "secrets_put: job is missing");
    assert_ok(store_secrets_get(s, "j", &got, &e_));
    assert_string_equal(jstr(got, "DB_PASSWORD"), "correct horse");
    json_decref(got);

    /* inside a batch: a failed call changes nothing, the batch goes on */
    assert_ok(store_begin(s, &e_));
    v = json_pack("{s:s}", "X", "1");
    assert_ok(store_secrets_put(s, "b", v, &e_));
    json_decref(v);
    v = json_pack("{s:b}", "X", 1);
    assert_err(store_secrets_put(s, "j", v, &e_), TY_EINVAL, "must be a string");
    json_decref(v);
    assert_ok(store_commit(s, &e_));
    assert_ok(store_secrets_get(s, "b", &got, &e_));
    assert_string_equal(jstr(got, "X"), "1");
    json_decref(got);

    /* an empty object removes them; other jobs keep theirs; nothing in the history */
    v = json_object();
    assert_ok(store_secrets_put(s, "j", v, &e_));
    json_decref(v);
    assert_ok(store_secrets_get(s, "j", &got, &e_));
    assert_int_equal(json_object_size(got), 0);
    json_decref(got);
    assert_ok(store_secrets_get(s, "k", &got, &e_));
    assert_string_equal(jstr(got, "TOKEN"), "other job's");
    json_decref(got);
    assert_int_equal(db_int(f, "SELECT count(*) FROM object_versions"), 0);
    struct store *r;
    assert_ok(fx_open(f, true, &r, &e_));
    v = json_object();
    assert_err(store_secrets_put(r, "k", v, &e_), TY_EINVAL, "is open read-only");
    json_decref(v);
    store_close(r);
}

/* ---------------------------------------------------------------------------------------
 * Many jobs at once (jobs_get_many): what obj_get and secrets_get give, name by name.
 */

/* Secrets for job i of the 1,000-name test: none for two thirds, 1-3 for the rest. */
static json_t *nth_secrets(int i)
{
    json_t *v = json_object();
    for (int k = 0; i % 3 == 0 && k <= i % 4 && k < 3; k++) {
        char name[16], value[32];
        snprintf(name, sizeof name, "S%d", k);
        snprintf(value, sizeof value, "value %d of job %d", k, i);
        json_object_set_new(v, name, json_string(value));
    }
    return v;
}

/* Check an answer of jobs_get_many against obj_get and secrets_get of each of names[0..n)
 * (the oracle): every job named is there, once, with exactly what those two give; nothing
 * else is.  Returns how many jobs it holds. */
static size_t check_many(struct store *s, const char *const *names, size_t n, json_t *got)
{
    assert_true(json_is_object(got));
    json_t *want = json_object();
    for (size_t i = 0; i < n; i++) {
        char *text = NULL;
        int64_t version = 0;
        struct ty_err err;
        int rc = store_obj_get(s, STORE_JOB, names[i], &text, &version, &err);
        if (rc == TY_ENOENT)
            continue;
        assert_int_equal(rc, 0);
        json_t *secrets = NULL;
        assert_ok(store_secrets_get(s, names[i], &secrets, &e_));
        json_object_set_new(want, names[i],
                            json_pack("{s:I, s:s, s:o}", "version", (json_int_t)version,
                                      "definition", text, "secrets", secrets));
        free(text);
    }
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("jobs_get_many:\n got  %.2000s\n want %.2000s", g ? g : "NULL", w ? w : "NULL");
    }
    size_t jobs = json_object_size(want);
    json_decref(want);
    return jobs;
}

static void test_jobs_get_many(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t v;
    /* a job without secrets, one with two at version 2, one with one; secrets left under a
     * name that is no job (nothing removes them but secrets_put) and under a deleted job;
     * a calendar that shares a job's name; names JSON and SQL must carry as they are */
    static const char weird[] = "we\"ird\\name\t\xc3\xa9 ']";
    put_job(s, "a", "ops", true);
    put_job(s, "b", "ops", true);
    put_job(s, "b", "ops/x", false);
    put_job(s, "c", "", true);
    assert_ok(store_obj_put(s, STORE_JOB, weird, "{\"name\":\"w\\\"\"}", -1, "t", &v, &e_));
    put_job(s, "gone", "ops", true);
    assert_ok(store_obj_put(s, STORE_CALENDAR, "cal", "{\"name\":\"cal\"}", -1, "t", &v, &e_));
    json_t *sec = json_pack("{s:s, s:s}", "DB_PASSWORD", "hunter2", "API_KEY", "k\"-\\123");
    assert_ok(store_secrets_put(s, "b", sec, &e_));
    json_decref(sec);
    sec = json_pack("{s:s}", "TOKEN", "t\xc3\xa9");
    assert_ok(store_secrets_put(s, "c", sec, &e_));
    assert_ok(store_secrets_put(s, "ghost", sec, &e_));
    assert_ok(store_secrets_put(s, "gone", sec, &e_));
    assert_ok(store_secrets_put(s, weird, sec, &e_));
    json_decref(sec);
    assert_ok(store_obj_delete(s, STORE_JOB, "gone", 0, "t", &e_));

    json_t *got = NULL;
    const char *all[] = {"a", "b", "c", weird, "gone", "ghost", "cal", "nope"};
    assert_ok(store_jobs_get_many(s, all, 8, &got, &e_));
    assert_int_equal(check_many(s, all, 8, got), 4);
    assert_int_equal(json_object_size(got), 4);
    /* the API's shape, in the API's order */
    char *text = json_dumps(json_object_get(got, "a"), JSON_COMPACT);
    assert_string_equal(text, "{\"version\":1,\"definition\":"
                              "\"{\\\"name\\\":\\\"a\\\",\\\"domain\\\":\\\"ops\\\","
                              "\\\"enabled\\\":true}\",\"secrets\":{}}");
    free(text);
    json_t *b = json_object_get(got, "b");
    assert_int_equal(jint(b, "version"), 2);
    assert_string_equal(jstr(json_object_get(b, "secrets"), "API_KEY"), "k\"-\\123");
    assert_string_equal(jstr(json_object_get(json_object_get(got, weird), "secrets"), "TOKEN"),
                        "t\xc3\xa9");
    json_decref(got);

    /* missing names only; a name twice; no names at all (names may then be NULL) */
    const char *missing[] = {"nope", "ghost", "gone", "cal"};
    assert_ok(store_jobs_get_many(s, missing, 4, &got, &e_));
    assert_int_equal(json_object_size(got), 0);
    json_decref(got);
    const char *twice[] = {"b", "c", "b"};
    assert_ok(store_jobs_get_many(s, twice, 3, &got, &e_));
    assert_int_equal(check_many(s, twice, 3, got), 2);
    assert_int_equal(json_object_size(json_object_get(json_object_get(got, "b"), "secrets")), 2);
    json_decref(got);
    assert_ok(store_jobs_get_many(s, NULL, 0, &got, &e_));
    assert_true(json_is_object(got));
    assert_int_equal(json_object_size(got), 0);
    json_decref(got);
    assert_ok(store_jobs_get_many(s, all, 0, &got, &e_));
    assert_int_equal(json_object_size(got), 0);
    json_decref(got);

    /* a batch reads its own writes; a reader connection sees what is committed */
    assert_ok(store_begin(s, &e_));
    put_job(s, "new", "ops", true);
    const char *fresh[] = {"new", "a"};
    assert_ok(store_jobs_get_many(s, fresh, 2, &got, &e_));
    assert_int_equal(json_object_size(got), 2);
    json_decref(got);
    store_rollback(s);
    struct store *r;
    assert_ok(fx_open(f, true, &r, &e_));
    assert_ok(store_jobs_get_many(r, all, 8, &got, &e_));
    assert_int_equal(check_many(s, all, 8, got), 4);
    json_decref(got);
    assert_ok(store_jobs_get_many(r, fresh, 2, &got, &e_));
    assert_int_equal(json_object_size(got), 1);
    json_decref(got);
    store_close(r);

    /* refused, naming "names", and *out untouched */
    struct ty_err err;
    got = NULL;
    const char *bad[] = {"a", "", "b"};
    assert_int_equal(store_jobs_get_many(s, bad, 3, &got, &err), TY_EINVAL);
    assert_string_equal(err.field, "names");
    assert_string_equal(err.msg, "jobs_get_many: names.1 must be 1 to 256 bytes");
    assert_null(got);
    char longname[258];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const char *toolong[] = {longname};
    assert_err(store_jobs_get_many(s, toolong, 1, &got, &e_), TY_EINVAL,
               "jobs_get_many: names.0 must be 1 to 256 bytes");
    longname[256] = '\0'; /* 256 bytes: a name, just not a job's */
    assert_ok(store_jobs_get_many(s, toolong, 1, &got, &e_));
    assert_int_equal(json_object_size(got), 0);
    json_decref(got);
    got = NULL;
    const char *null_one[] = {"a", NULL};
    assert_err(store_jobs_get_many(s, null_one, 2, &got, &e_), TY_EINVAL,
               "jobs_get_many: names.1 must be 1 to 256 bytes");
    assert_err(store_jobs_get_many(s, NULL, 2, &got, &e_), TY_EINVAL,
               "jobs_get_many: names is NULL");
    const char *not_utf8[] = {"a", "b", "c\xff"};
    assert_err(store_jobs_get_many(s, not_utf8, 3, &got, &e_), TY_EINVAL,
               "jobs_get_many: names.2 is not UTF-8");
    const char *many[1001];
    for (size_t i = 0; i < 1001; i++)
        many[i] = "a";
    assert_err(store_jobs_get_many(s, many, 1001, &got, &e_), TY_EINVAL,
               "jobs_get_many: 1001 names, at most 1000");
    assert_null(got);
    assert_ok(store_jobs_get_many(s, many, 1000, &got, &e_));
    assert_int_equal(json_object_size(got), 1);
    json_decref(got);
}

/* The most a call takes, 1,000 names: 900 of 1,200 jobs, a third of them with secrets, and
 * 100 names of no job, in an order that is neither the store's nor the request's sorted. */
static void test_jobs_get_many_1000(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    static char names[1200][16];
    assert_ok(store_begin(s, &e_));
    for (int i = 0; i < 1200; i++) {
        snprintf(names[i], sizeof names[i], "job-%04d", i);
        put_job(s, names[i], i % 2 ? "ops/a" : "ops/b", true);
        json_t *sec = nth_secrets(i);
        if (json_object_size(sec) > 0)
            assert_ok(store_secrets_put(s, names[i], sec, &e_));
        json_decref(sec);
    }
    assert_ok(store_commit(s, &e_));
    const char *want[1000];
    for (int i = 0; i < 900; i++)
        want[i] = names[(i * 7 + 300) % 1200]; /* 7 and 1200 coprime: 900 distinct jobs */
    static char nothing[100][16];
    for (int i = 0; i < 100; i++) {
        snprintf(nothing[i], sizeof nothing[i], "none-%d", i);
        want[900 + i] = nothing[i];
    }
    for (int i = 0; i < 1000; i++) { /* mix the missing ones in */
        int j = (i * 13) % 1000;
        const char *t = want[i];
        want[i] = want[j];
        want[j] = t;
    }
    json_t *got = NULL;
    assert_ok(store_jobs_get_many(s, want, 1000, &got, &e_));
    assert_int_equal(json_object_size(got), 900);
    assert_int_equal(check_many(s, want, 1000, got), 900);
    size_t with = 0;
    const char *k;
    json_t *e;
    json_object_foreach(got, k, e)
    {
        if (json_object_size(json_object_get(e, "secrets")) > 0)
            with++;
    }
    assert_int_equal(with, 300); /* the multiples of 3 among 900 of 1,200 spread evenly */
    json_decref(got);
}

/* How many SQLite VM steps the last jobs_get_many statement took. */
static int64_t many_steps;

static int many_trace(unsigned type, void *ctx, void *p, void *x)
{
    (void)ctx;
    (void)x;
    sqlite3_stmt *st = p;
    const char *sql = type == SQLITE_TRACE_PROFILE ? sqlite3_sql(st) : NULL;
    if (sql != NULL && strstr(sql, "FROM json_each(?1) AS n") != NULL)
        many_steps = sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 1);
    return 0;
}

static int trace_many(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api)
{
    (void)errmsg;
    (void)api;
    sqlite3_trace_v2(db, SQLITE_TRACE_PROFILE, many_trace, NULL);
    return SQLITE_OK;
}

/* A few names cost a few probes, however many jobs and secrets there are (SQLite's step
 * count, not a clock): a plan that walks the jobs and looks each up in the list would take
 * hundreds of thousands for 20,000 jobs. */
static void test_jobs_get_many_cost(void **state)
{
    struct fx *f = *state;
    assert_ok(store_begin(f->s, &e_));
    json_t *sec = json_pack("{s:s}", "PW", "x");
    for (int i = 0; i < 20000; i++) {
        char name[16];
        snprintf(name, sizeof name, "job-%05d", i);
        put_job(f->s, name, "ops", true);
        if (i % 2 == 0)
            assert_ok(store_secrets_put(f->s, name, sec, &e_));
    }
    json_decref(sec);
    assert_ok(store_commit(f->s, &e_));

    sqlite3_auto_extension((void (*)(void))trace_many);
    struct store *r;
    assert_ok(fx_open(f, true, &r, &e_));
    const char *few[] = {"job-00010", "job-12345", "job-19998", "none"};
    json_t *got;
    many_steps = -1;
    assert_ok(store_jobs_get_many(r, few, 4, &got, &e_));
    assert_int_equal(json_object_size(got), 3);
    json_decref(got);
    if (many_steps < 0 || many_steps > 1000)
        fail_msg("4 names among 20,000 jobs took %" PRId64 " VM steps", many_steps);
    store_close(r);
}

/* ---------------------------------------------------------------------------------------
 * Backups and migrations.
 */

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* Names in dir starting with prefix: how many, and the first (into first[cap]). */
static int count_prefixed(const char *dir, const char *prefix, char *first, size_t cap)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        if (n++ == 0 && first != NULL)
            snprintf(first, cap, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    return n;
}

/* The journal mode a file's header says it is in: 1 rollback, 2 WAL (bytes 18-19). */
static int header_mode(const char *path)
{
    unsigned char h[20];
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(h, 1, sizeof h, fp), sizeof h);
    fclose(fp);
    return h[18];
}

static void test_backup(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t v;
    assert_ok(store_obj_put(s, STORE_JOB, "b", "{\"domain\":\"d\"}", -1, "t", &v, &e_));
    assert_ok(store_obj_put(s, STORE_JOB, "b", "{\"domain\":\"e\"}", 1, "u", &v, &e_));
    assert_ok(store_token_put(s, "t", HASH_A, 0, NULL, &e_));
    for (int i = 0; i < 50; i++) {
        struct run_buf b;
        run_init(&b, "b", "d", 1000 + i, 0, 1, STORE_RUN_SUCCEEDED);
        assert_ok(store_run_put(s, &b.r, &e_));
    }
    char copy[192];
    snprintf(copy, sizeof copy, "%s/copy.db", f->dir);
    assert_ok(store_backup(s, copy, &e_));
    /* one self-contained file, private, in rollback-journal mode */
    char side[224];
    snprintf(side, sizeof side, "%s-wal", copy);
    assert_false(exists(side));
    snprintf(side, sizeof side, "%s-journal", copy);
    assert_false(exists(side));
    assert_int_equal(header_mode(copy), 1);
    struct stat st;
    assert_int_equal(stat(copy, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    check_integrity(copy);

    /* a valid Tethys store: a reader opens it and finds everything */
    struct store *c;
    assert_ok(store_open_sqlite(copy, true, &c, &e_));
    struct store_history_query q = {.job = "b"};
    assert_int_equal(history_count(c, q), 50);
    json_t *h;
    assert_ok(store_obj_history(c, STORE_JOB, "b", &h, &e_));
    assert_int_equal(json_array_size(h), 2);
    json_decref(h);
    json_t *t;
    assert_ok(store_token_lookup(c, HASH_A, &t, &e_));
    json_decref(t);
    store_close(c);
    assert_ok(store_open_sqlite(copy, false, &c, &e_)); /* and a server could run on it */
    assert_ok(store_obj_put(c, STORE_JOB, "b", "{\"domain\":\"f\"}", 2, "w", &v, &e_));
    store_close(c);

    /* never over an existing file; errors name the file */
    struct stat before;
    assert_int_equal(stat(copy, &before), 0);
    assert_err(store_backup(s, copy, &e_), TY_EEXIST, "already exists (a backup never overwrites");
    assert_err(store_backup(s, f->path, &e_), TY_EEXIST, "already exists");
    struct stat after;
    assert_int_equal(stat(copy, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
    char p[192];
    snprintf(p, sizeof p, "%s/no/such/dir/x.db", f->dir);
    assert_err(store_backup(s, p, &e_), TY_EIO, "backup: cannot create");
    assert_err(store_backup(s, "", &e_), TY_EINVAL, "the file name is empty");
    assert_ok(store_begin(s, &e_));
    snprintf(p, sizeof p, "%s/inbatch.db", f->dir);
    assert_err(store_backup(s, p, &e_), TY_EINVAL, "a transaction is open");
    store_rollback(s);
    assert_false(exists(p));

    /* from a reader connection, as `tethys backup` does */
    struct store *r;
    assert_ok(fx_open(f, true, &r, &e_));
    assert_ok(store_backup(r, p, &e_));
    store_close(r);
    assert_ok(store_open_sqlite(p, true, &c, &e_));
    assert_int_equal(history_count(c, q), 50);
    store_close(c);
}

static int limit_pages_small(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api)
{
    (void)errmsg;
    (void)api;
    sqlite3_exec(db, "PRAGMA max_page_count = 12", NULL, NULL, NULL);
    return SQLITE_OK;
}

/* A backup that meets a full disk fails with TY_ENOSPC and leaves no file behind. */
static void test_backup_disk_full(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    for (int i = 0; i < 200; i++) {
        struct run_buf b;
        run_init(&b, "b", "d", 1000 + i, 0, 1, STORE_RUN_SUCCEEDED);
        b.r.output = "some output to take up room\n";
        b.r.output_len = 28;
        assert_ok(store_run_put(s, &b.r, &e_));
    }
    char copy[192];
    snprintf(copy, sizeof copy, "%s/full.db", f->dir);
    sqlite3_auto_extension((void (*)(void))limit_pages_small); /* the copy's connection too */
    struct ty_err err;
    int rc = store_backup(s, copy, &err);
    sqlite3_cancel_auto_extension((void (*)(void))limit_pages_small);
    assert_int_equal(rc, TY_ENOSPC);
    assert_non_null(strstr(err.msg, "backup of "));
    assert_non_null(strstr(err.msg, ": disk full ("));
    assert_non_null(strstr(err.msg, copy));
    assert_false(exists(copy));
    assert_ok(store_backup(s, copy, &e_)); /* with room it works */
    check_integrity(copy);
}

/* Backups taken while a writer commits batches: each is one consistent snapshot. */
static void test_backup_under_load(void **state)
{
    struct fx *f = *state;
    struct writer_arg w = {.f = f};
    atomic_init(&w.committing, 0);
    atomic_init(&w.committed, 0);
    atomic_init(&w.done, 0);
    struct store *r;
    assert_ok(fx_open(f, true, &r, &e_));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
    int copies = 0;
    int64_t last = -1;
    while (!atomic_load(&w.done) || copies < 3) {
        int before = atomic_load(&w.committed);
        char copy[192];
        snprintf(copy, sizeof copy, "%s/load-%d.db", f->dir, copies);
        assert_ok(store_backup(r, copy, &e_));
        int after = atomic_load(&w.committing);
        check_integrity(copy);
        int64_t n = raw_int(copy, "SELECT count(*) FROM runs");
        /* everything committed before the copy began, nothing not yet committed after it,
         * and since the writer appends ever newer fires, exactly fires 0 .. n-1 */
        if (n < before || n > after || n < last)
            fail_msg("copy %d holds %" PRId64
                     " runs; %d committed before, %d after, last copy %" PRId64,
                     copies, n, before, after, last);
        if (n > 0)
            assert_int_equal(raw_int(copy, "SELECT max(scheduled_at) - min(scheduled_at) + 1 FROM"
                                           " runs"),
                             n);
        last = n;
        copies++;
    }
    pthread_join(t, NULL);
    assert_int_equal(w.failures, 0);
    store_close(r);
    print_message("backup under load: %d copies during %d batched appends\n", copies,
                  WRITER_BATCHES);
}

/* The committed fixture: a database written by schema version 1 (a real v1 server). */
static void fixture_path(char *buf, size_t cap, const char *name)
{
    const char *src = getenv("TETHYS_SOURCE_DIR");
    snprintf(buf, cap, "%s/tests/fixtures/%s", src ? src : ".", name);
}

static void test_migrate_v1(void **state)
{
    struct fx *f = *state;
    char fixture[512], manifest_path[512], path[192], bak[320];
    fixture_path(fixture, sizeof fixture, "store-v1.db");
    fixture_path(manifest_path, sizeof manifest_path, "store-v1.json");
    json_t *manifest = json_load_file(manifest_path, 0, NULL);
    assert_non_null(manifest);
    snprintf(path, sizeof path, "%s/v1.db", f->dir);
    copy_file(fixture, path);
    assert_int_equal(raw_int(path, "SELECT value FROM meta WHERE key = 'schema_version'"), 1);
    int64_t runs_v1 = raw_int(path, "SELECT count(*) FROM runs");

    struct store *s;
    assert_err(store_open_sqlite(path, true, &s, &e_), TY_EFORMAT,
               "has schema version 1 and needs migrating to 5");
    assert_int_equal(count_prefixed(f->dir, "v1.db.v1-", NULL, 0), 0);
    assert_ok(store_open_sqlite(path, false, &s, &e_));

    /* migrated, after a backup of the version 1 file beside it */
    char *v;
    assert_ok(store_meta_get(s, "schema_version", &v, &e_));
    assert_string_equal(v, "5");
    free(v);
    assert_int_equal(count_prefixed(f->dir, "v1.db.v1-", bak, sizeof bak), 1);
    assert_non_null(strstr(bak, ".bak"));
    assert_int_equal(raw_int(bak, "SELECT value FROM meta WHERE key = 'schema_version'"), 1);
    assert_int_equal(raw_int(bak, "SELECT count(*) FROM runs"), runs_v1);
    assert_int_equal(raw_int(bak, "SELECT count(*) FROM sqlite_schema WHERE name = 'tokens'"), 0);
    check_integrity(bak);
    assert_ok(store_meta_get(s, "last_migration", &v, &e_));
    json_t *note = json_loads(v, 0, NULL);
    free(v);
    assert_int_equal(jint(note, "from"), 1);
    assert_int_equal(jint(note, "to"), 5);
    assert_string_equal(jstr(note, "backup"), bak);
    json_decref(note);

    /* every object, version, run and skipped fire is there */
    const char *key;
    json_t *want;
    json_object_foreach(json_object_get(manifest, "objects"), key, want)
    {
        const char *slash = strchr(key, '/');
        enum store_kind k = strncmp(key, "job", 3) == 0      ? STORE_JOB
                            : strncmp(key, "domain", 6) == 0 ? STORE_DOMAIN
                                                             : STORE_CALENDAR;
        char *json;
        int64_t ver;
        assert_ok(store_obj_get(s, k, slash + 1, &json, &ver, &e_));
        assert_int_equal(ver, json_integer_value(want));
        free(json);
    }
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(manifest, "object_versions"), i, row)
    {
        const char *kn = json_string_value(json_array_get(row, 0));
        enum store_kind k = strcmp(kn, "job") == 0      ? STORE_JOB
                            : strcmp(kn, "domain") == 0 ? STORE_DOMAIN
                                                        : STORE_CALENDAR;
        const char *name = json_string_value(json_array_get(row, 1));
        int64_t ver = json_integer_value(json_array_get(row, 2));
        const char *op = json_string_value(json_array_get(row, 3));
        json_t *h;
        assert_ok(store_obj_history(s, k, name, &h, &e_));
        bool found = false;
        size_t x;
        json_t *it;
        json_array_foreach(h, x, it)
        {
            found |= jint(it, "version") == ver && strcmp(jstr(it, "op"), op) == 0;
        }
        json_decref(h);
        if (!found)
            fail_msg("version %" PRId64 " (%s) of %s %s is missing after the migration", ver, op,
                     kn, name);
        char *json = NULL;
        int rc = store_obj_version(s, k, name, ver, &json, NULL);
        assert_int_equal(rc, strcmp(op, "delete") == 0 ? TY_ENOENT : 0);
        free(json);
    }
    assert_int_equal(raw_int(path, "SELECT count(*) FROM object_versions"),
                     (int64_t)json_array_size(json_object_get(manifest, "object_versions")));
    json_object_foreach(json_object_get(manifest, "runs"), key, want)
    {
        json_t *run;
        assert_ok(store_run_get(s, key, &run, &e_));
        assert_string_equal(jstr(run, "status"), json_string_value(want));
        json_decref(run);
    }
    struct store_history_query q = {.status = "skipped"};
    assert_int_equal(history_count(s, q), json_array_size(json_object_get(manifest, "skips")));
    q.status = NULL;
    assert_int_equal(history_count(s, q), json_object_size(json_object_get(manifest, "runs")) +
                                              json_array_size(json_object_get(manifest, "skips")));
    /* the job index holds the version 1 jobs, and the new tables work */
    check_job_index_file(path, s);
    assert_ok(store_token_put(s, "after", HASH_A, 0, NULL, &e_));
    int64_t nv;
    assert_ok(store_obj_put(s, STORE_JOB, "ticker", "{\"name\":\"ticker\"}", 0, "t", &nv, &e_));
    assert_int_equal(nv, 3);
    store_close(s);
    check_integrity(path);

    /* a second open migrates nothing and backs up nothing */
    assert_ok(store_open_sqlite(path, false, &s, &e_));
    store_close(s);
    assert_int_equal(count_prefixed(f->dir, "v1.db.v1-", NULL, 0), 1);
    assert_ok(store_open_sqlite(path, true, &s, &e_));
    json_t *t;
    assert_ok(store_token_lookup(s, HASH_A, &t, &e_));
    json_decref(t);
    store_close(s);
    json_decref(manifest);
}

/*
 * tests/fixtures/store-v2.db, written by a real schema 2 server (make_store_v2.py): jobs
 * in nested domains, some disabled, moved or deleted.  Step 3 builds the job index from
 * them: every subtree's count is what store-v2.json counted from the jobs themselves.
 */
static void test_migrate_v2(void **state)
{
    struct fx *f = *state;
    char fixture[512], manifest_path[512], path[192], bak[320];
    fixture_path(fixture, sizeof fixture, "store-v2.db");
    fixture_path(manifest_path, sizeof manifest_path, "store-v2.json");
    json_t *manifest = json_load_file(manifest_path, 0, NULL);
    assert_non_null(manifest);
    snprintf(path, sizeof path, "%s/v2.db", f->dir);
    copy_file(fixture, path);
    assert_int_equal(raw_int(path, "SELECT value FROM meta WHERE key = 'schema_version'"), 2);

    struct store *s;
    assert_err(store_open_sqlite(path, true, &s, &e_), TY_EFORMAT,
               "has schema version 2 and needs migrating to 5");
    assert_ok(store_open_sqlite(path, false, &s, &e_));
    assert_int_equal(count_prefixed(f->dir, "v2.db.v2-", bak, sizeof bak), 1);
    assert_int_equal(raw_int(bak, "SELECT value FROM meta WHERE key = 'schema_version'"), 2);
    assert_int_equal(raw_int(bak, "SELECT count(*) FROM sqlite_schema WHERE name = 'job_counts'"),
                     0);
    char *v;
    assert_ok(store_meta_get(s, "last_migration", &v, &e_));
    json_t *note = json_loads(v, 0, NULL);
    free(v);
    assert_int_equal(jint(note, "from"), 2);
    assert_int_equal(jint(note, "to"), 5);
    json_decref(note);

    /* every subtree counts what the fixture's jobs say; look-alikes count nothing */
    const char *dom;
    json_t *want;
    json_t *counts = json_object_get(manifest, "subtree_jobs");
    assert_true(json_object_size(counts) > 5);
    json_object_foreach(counts, dom, want)
    {
        int64_t n = -1;
        assert_ok(store_job_count(s, dom, &n, &e_));
        if (n != json_integer_value(want))
            fail_msg("\"%s\": %" PRId64 " jobs after the migration, want %" PRId64, dom, n,
                     (int64_t)json_integer_value(want));
    }
    assert_int_equal(job_count(s, ""), json_object_size(json_object_get(manifest, "jobs")));
    assert_int_equal(job_count(s, "bank"), 11); /* not "bankside" */
    assert_int_equal(job_count(s, "bank/s"), 0);
    assert_int_equal(job_count(s, "ops/db/replicas/x"), 0);
    check_job_index_file(path, s);
    /* and pages them: the disabled jobs, the enabled ones of bank's subtree */
    static const struct {
        const char *domain;
        int enabled;
    } pq[] = {{NULL, 0}, {"bank", 1}, {"ops/db", -1}};
    for (size_t k = 0; k < sizeof pq / sizeof pq[0]; k++) {
        json_t *expect = json_array();
        const char *name;
        json_t *j;
        json_object_foreach(json_object_get(manifest, "jobs"), name, j)
        {
            const char *d = jstr(j, "domain");
            bool en = json_is_true(json_object_get(j, "enabled"));
            if ((pq[k].domain == NULL || domain_within(d, pq[k].domain)) &&
                (pq[k].enabled < 0 || en == (pq[k].enabled == 1)))
                json_array_append_new(expect, json_string(name));
        }
        sort_names(expect);
        assert_true(json_array_size(expect) > 0);
        struct store_obj_query q = {
            .kind = STORE_JOB, .domain = pq[k].domain, .enabled = pq[k].enabled};
        int pages;
        json_t *got = page_all(s, q, 2, &pages);
        assert_names(got, expect, &q, 2);
        json_decref(got);
        json_decref(expect);
    }

    /* the calendars' users, counted in SQL, are those the fixture's jobs name */
    static const char *const cals[] = {"cn-holidays", "eu-holidays", "none"};
    for (size_t k = 0; k < sizeof cals / sizeof cals[0]; k++) {
        int64_t want_n = 0, n = -1;
        const char *want_first = NULL, *name;
        json_t *j;
        json_object_foreach(json_object_get(manifest, "jobs"), name, j)
        {
            bool uses = false;
            const char *lists[] = {"skip", "only"};
            for (int l = 0; l < 2; l++) {
                size_t x;
                json_t *c;
                json_array_foreach(json_object_get(json_object_get(j, "calendars"), lists[l]), x, c)
                {
                    uses |= strcmp(json_string_value(c), cals[k]) == 0;
                }
            }
            if (uses && (want_first == NULL || strcmp(name, want_first) < 0))
                want_first = name;
            want_n += uses;
        }
        char first[64];
        assert_ok(store_calendar_users(s, cals[k], &n, first, sizeof first, &e_));
        assert_int_equal(n, want_n);
        assert_string_equal(first, want_first != NULL ? want_first : "");
    }

    /* the index goes on from there */
    put_job(s, "job-05", "bankside/new", false);
    assert_ok(store_obj_delete(s, STORE_JOB, "job-06", 0, "t", &e_));
    assert_int_equal(job_count(s, "bankside"), 4);
    assert_int_equal(job_count(s, "bank"), 10);
    check_job_index_file(path, s);
    store_close(s);
    check_integrity(path);
    json_decref(manifest);
}

/*
 * tests/fixtures/store-v3.db, written by a real schema 3 server (make_store_v3.py): one
 * executor's scheduled runs, failed runs and their retries, downstream runs and a manual
 * one.  Step 4 indexes runs by executor, built over the runs there are; executor_last_fires
 * then answers what store-v3.json computed from the rows, and the index follows new runs.
 */
static void test_migrate_v3(void **state)
{
    struct fx *f = *state;
    char fixture[512], manifest_path[512], path[192], bak[320];
    fixture_path(fixture, sizeof fixture, "store-v3.db");
    fixture_path(manifest_path, sizeof manifest_path, "store-v3.json");
    json_t *manifest = json_load_file(manifest_path, 0, NULL);
    assert_non_null(manifest);
    snprintf(path, sizeof path, "%s/v3.db", f->dir);
    copy_file(fixture, path);
    static const char has_index[] = "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
                                    " AND name = 'runs_executor' AND tbl_name = 'runs'";
    assert_int_equal(raw_int(path, "SELECT value FROM meta WHERE key = 'schema_version'"), 3);
    assert_int_equal(raw_int(path, has_index), 0);
    int64_t runs = raw_int(path, "SELECT count(*) FROM runs");
    assert_int_equal(runs, jint(manifest, "runs"));

    struct store *s;
    assert_err(store_open_sqlite(path, true, &s, &e_), TY_EFORMAT,
               "has schema version 3 and needs migrating to 5");
    assert_ok(store_open_sqlite(path, false, &s, &e_));
    assert_int_equal(count_prefixed(f->dir, "v3.db.v3-", bak, sizeof bak), 1);
    assert_int_equal(raw_int(bak, "SELECT value FROM meta WHERE key = 'schema_version'"), 3);
    assert_int_equal(raw_int(bak, has_index), 0);
    char *v;
    assert_ok(store_meta_get(s, "schema_version", &v, &e_));
    assert_string_equal(v, "5");
    free(v);
    assert_ok(store_meta_get(s, "last_migration", &v, &e_));
    json_t *note = json_loads(v, 0, NULL);
    free(v);
    assert_int_equal(jint(note, "from"), 3);
    assert_int_equal(jint(note, "to"), 5);
    json_decref(note);

    /* the index is there, on (executor, scheduled_at), and holds every run */
    assert_int_equal(raw_int(path, has_index), 1);
    char cols[64];
    raw_text(path,
             "SELECT group_concat(name) FROM (SELECT name FROM pragma_index_info('runs_executor')"
             " ORDER BY seqno)",
             cols, sizeof cols);
    assert_string_equal(cols, "executor,scheduled_at");
    assert_int_equal(raw_int(path, "SELECT count(*) FROM runs INDEXED BY runs_executor"), runs);

    /* what the fixture's executor fired: its scheduled jobs, not the downstream or manual */
    const char *executor = jstr(manifest, "executor");
    json_t *want = json_object_get(manifest, "last_fires"), *got;
    assert_true(json_object_size(want) >= 2);
    assert_ok(store_executor_last_fires(s, executor, 0, &got, &e_));
    got = per_job(got);
    if (!json_equal(got, want))
        fail_msg("executor_last_fires after the migration differs from store-v3.json");
    json_decref(got);
    int64_t newest = 0;
    const char *job;
    json_t *at;
    json_object_foreach(want, job, at)
    {
        if (json_integer_value(at) > newest)
            newest = json_integer_value(at);
    }
    assert_executor_fires(s, executor, newest + 1, "{}");
    assert_executor_fires(s, "another", 0, "{}");

    /* runs after it are found too */
    struct run_buf b;
    run_init(&b, "tick", "", newest + 60, 0, 1, STORE_RUN_SUCCEEDED);
    b.r.executor = executor;
    assert_ok(store_run_put(s, &b.r, &e_));
    assert_ok(store_executor_last_fires(s, executor, newest + 1, &got, &e_));
    got = per_job(got);
    assert_int_equal(json_object_size(got), 1);
    assert_int_equal(jint(got, "tick"), newest + 60);
    json_decref(got);
    store_close(s);
    check_integrity(path);
    json_decref(manifest);
}

/* A migration is all or nothing: a failing step leaves version 1 and no backup. */
static void test_migrate_fails_cleanly(void **state)
{
    struct fx *f = *state;
    char fixture[512], path[192];
    fixture_path(fixture, sizeof fixture, "store-v1.db");
    snprintf(path, sizeof path, "%s/v1.db", f->dir);
    copy_file(fixture, path);
    raw_exec(path, "CREATE TABLE tokens (x)"); /* step 2 cannot create it */
    struct store *s = NULL;
    assert_err(store_open_sqlite(path, false, &s, &e_), TY_EIO, "open: migrate schema 1 to 2");
    assert_null(s);
    assert_int_equal(raw_int(path, "SELECT value FROM meta WHERE key = 'schema_version'"), 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'secrets'"), 0);
    assert_int_equal(count_prefixed(f->dir, "v1.db.v1-", NULL, 0), 0);

    /* no migration without its backup: a backup that cannot be written stops it */
    raw_exec(path, "DROP TABLE tokens");
    for (int i = 0; i < 20; i++) /* grow the file past what the copy may hold */
        raw_exec(path, "INSERT INTO meta (key, value) VALUES (hex(randomblob(16)),"
                       " hex(randomblob(2000)))");
    sqlite3_auto_extension((void (*)(void))limit_pages_small);
    struct ty_err err;
    int rc = store_open_sqlite(path, false, &s, &err);
    sqlite3_cancel_auto_extension((void (*)(void))limit_pages_small);
    assert_int_equal(rc, TY_ENOSPC);
    assert_non_null(strstr(err.msg, "open: schema 1 is migrated to 5 only after a backup, which "
                                    "failed: backup of "));
    assert_int_equal(raw_int(path, "SELECT value FROM meta WHERE key = 'schema_version'"), 1);
    assert_int_equal(count_prefixed(f->dir, "v1.db.v1-", NULL, 0), 0);
    assert_ok(store_open_sqlite(path, false, &s, &e_));
    store_close(s);
    assert_int_equal(count_prefixed(f->dir, "v1.db.v1-", NULL, 0), 1);
}

/* store_check_sqlite: what `tethys restore` asks of a file before it puts it in place. */
static void test_check_file(void **state)
{
    struct fx *f = *state;
    char fixture[512], p[192], q[192];
    int version = -1;
    fixture_path(fixture, sizeof fixture, "store-v1.db");
    /* a name with the characters a URI gives meaning to */
    snprintf(p, sizeof p, "%s/odd?name#1%%.db", f->dir);
    copy_file(fixture, p);
    int before = count_prefixed(f->dir, "odd", NULL, 0);
    assert_ok(store_check_sqlite(p, &version, &e_));
    assert_int_equal(version, 1); /* older: fine, the server migrates it */
    assert_int_equal(count_prefixed(f->dir, "odd", NULL, 0), before); /* no -wal, no -shm */
    snprintf(q, sizeof q, "%s/copy.db", f->dir);
    assert_ok(store_backup(f->s, q, &e_));
    assert_ok(store_check_sqlite(q, &version, &e_));
    assert_int_equal(version, 5);

    /* refused: newer, not Tethys, not SQLite, corrupt, empty, missing */
    raw_exec(q, "UPDATE meta SET value = '6' WHERE key = 'schema_version'");
    assert_err(store_check_sqlite(q, &version, &e_), TY_EFORMAT,
               "has schema version 6, from a newer Tethys; this binary knows 1 to 5");
    snprintf(q, sizeof q, "%s/other.db", f->dir);
    raw_exec(q, "CREATE TABLE t (x)");
    assert_err(store_check_sqlite(q, &version, &e_), TY_EFORMAT, "not a Tethys one");
    snprintf(q, sizeof q, "%s/text.db", f->dir);
    FILE *fp = fopen(q, "w");
    for (int i = 0; i < 2000; i++)
        fputs("not a database ", fp);
    fclose(fp);
    assert_err(store_check_sqlite(q, &version, &e_), TY_EFORMAT, "is not a SQLite database");
    snprintf(q, sizeof q, "%s/torn.db", f->dir);
    copy_file(fixture, q);
    fp = fopen(q, "r+b");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    for (long off = 8192; off < size; off += 4096) { /* every page but the first two */
        fseek(fp, off + 8, SEEK_SET);
        fwrite("\xff\xff\xff\xff\x00\x01\x02\x03", 1, 8, fp);
    }
    fclose(fp);
    assert_err(store_check_sqlite(q, &version, &e_), TY_EFORMAT, "fails SQLite's integrity check");
    snprintf(q, sizeof q, "%s/empty.db", f->dir);
    fp = fopen(q, "w");
    fclose(fp);
    assert_err(store_check_sqlite(q, &version, &e_), TY_EFORMAT, "holds no Tethys store");
    snprintf(q, sizeof q, "%s/missing.db", f->dir);
    assert_err(store_check_sqlite(q, &version, &e_), TY_EIO, "cannot open");
}

/* ---------------------------------------------------------------------------------------
 * PostgreSQL only.
 */

/* URLs: a password in one is refused and never repeated; what store_open dispatches. */
static void test_pg_url(void **state)
{
    struct fx *f = *state;
    struct store *s = NULL;
    struct ty_err err;
    static const char *const with_password[] = {
        "postgresql://tethys:s3cret-pw@127.0.0.1:5432/tethys",
        "postgres://tethys:s3cret-pw@127.0.0.1/tethys?sslmode=disable",
        "postgresql://127.0.0.1/tethys?user=tethys&password=s3cret-pw",
        "postgresql://127.0.0.1/tethys?password=s3cret-pw&bogus=1",
    };
    for (size_t i = 0; i < sizeof with_password / sizeof with_password[0]; i++) {
        ty_err_clear(&err);
        if (store_open(with_password[i], false, &s, &err) != TY_EINVAL ||
            strcmp(err.field, "db") != 0 || strstr(err.msg, "PGPASSWORD or ~/.pgpass") == NULL ||
            strstr(err.msg, "s3cret") != NULL || s != NULL)
            fail_msg("%s: %d %s", with_password[i], err.code, err.msg);
    }
    assert_true(store_is_url("postgresql://h/db"));
    assert_true(store_is_url("postgres://h/db"));
    assert_false(store_is_url("/var/lib/tethys/tethys.db"));
    assert_false(store_is_url("postgresql:/h/db"));
    assert_false(store_is_url(NULL));
    assert_err(store_open_pg("", false, &s, &e_), TY_EINVAL, "the database URL is empty");
    assert_err(store_open_pg("postgresql://127.0.0.1/db?nonsense=1", false, &s, &e_), TY_EINVAL,
               "the database URL is not one libpq reads: invalid URI query parameter");
    /* nobody listens there: unavailable, at once */
    assert_err(store_open_pg("postgresql://tethys@127.0.0.1:1/tethys", false, &s, &e_), TY_EUNAVAIL,
               "store: database unavailable: cannot connect to tethys@127.0.0.1:1/");
    /* a wrong password is refused as such */
    char *pw = strdup(getenv("PGPASSWORD") != NULL ? getenv("PGPASSWORD") : "");
    setenv("PGPASSWORD", "not-the-password", 1);
    int rc = store_open_pg(f->url, false, &s, &err);
    setenv("PGPASSWORD", pw, 1);
    free(pw);
    assert_int_equal(rc, TY_EAUTH);
    assert_non_null(strstr(err.msg, "not allowed by the database"));
    /* store_open: a URL is PostgreSQL, anything else a SQLite path */
    assert_ok(store_open(f->url, true, &s, &e_));
    assert_err(store_backup(s, "/tmp/x.db", &e_), TY_EINVAL, "back it up with pg_dump");
    store_close(s);
    char path[192];
    snprintf(path, sizeof path, "%s/other.db", f->dir);
    assert_ok(store_open(path, false, &s, &e_));
    store_close(s);
    assert_int_equal(raw_int(path, "PRAGMA application_id"), 0x54455459);
}

struct opener {
    const char *url;
    pthread_barrier_t *go;
    int rc;
    char msg[TY_ERR_MSG_MAX];
};

static void *open_main(void *p)
{
    struct opener *o = p;
    struct store *s = NULL;
    struct ty_err err;
    ty_err_clear(&err);
    pthread_barrier_wait(o->go);
    o->rc = store_open_pg(o->url, false, &s, &err);
    snprintf(o->msg, sizeof o->msg, "%s", err.msg);
    store_close(s);
    return NULL;
}

static int64_t url_int(const char *url, const char *sql)
{
    PGconn *c = pg_connect(url);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
}

static void url_exec(const char *url, const char *sql)
{
    PGconn *c = pg_connect(url);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

/* The schema: created once by servers starting at once, then left alone; readers and
 * databases that are not (yet) Tethys's. */
static void test_pg_schema(void **state)
{
    struct fx *f = *state;
    char url[PG_URL_MAX];
    fx_new_db(f, "b", url, sizeof url);
    struct store *s = NULL;
    assert_err(store_open_pg(url, true, &s, &e_), TY_EFORMAT,
               "has no Tethys schema yet; open it read-write first (the server does)");
    assert_null(s);

    enum { N = 4 };
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N);
    struct opener o[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        o[i] = (struct opener){.url = url, .go = &go};
        assert_int_equal(pthread_create(&t[i], NULL, open_main, &o[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        if (o[i].rc != 0)
            fail_msg("open %d of %d at once: %s", i + 1, N, o[i].msg);
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(url_int(url, "SELECT count(*) FROM meta"), 1);
    assert_int_equal(url_int(url, "SELECT value FROM meta WHERE key = 'schema_version'"), 5);
    assert_int_equal(url_int(url, "SELECT count(*) FROM pg_class WHERE relname IN ('objects',"
                                  " 'runs', 'run_keys', 'skips', 'skip_keys', 'fire_days')"),
                     6);

    /* opening again changes nothing and keeps the data; a reader reads, never writes */
    assert_ok(store_open_pg(url, false, &s, &e_));
    assert_ok(store_meta_set(s, "epoch", "7", &e_));
    store_close(s);
    assert_ok(store_open_pg(url, false, &s, &e_));
    char *v;
    assert_ok(store_meta_get(s, "epoch", &v, &e_));
    assert_string_equal(v, "7");
    free(v);
    store_close(s);
    assert_ok(store_open_pg(url, true, &s, &e_));
    assert_ok(store_meta_get(s, "schema_version", &v, &e_));
    assert_string_equal(v, "5");
    free(v);
    assert_err(store_meta_set(s, "epoch", "8", &e_), TY_EINVAL, "is open read-only");
    store_close(s);

    /* written by a newer Tethys, or damaged */
    url_exec(url, "UPDATE meta SET value = '99' WHERE key = 'schema_version'");
    assert_err(store_open_pg(url, false, &s, &e_), TY_EFORMAT,
               "has schema version 99, from a newer Tethys; this binary knows 3 to 5: upgrade "
               "tethys");
    assert_err(store_open_pg(url, true, &s, &e_), TY_EFORMAT, "schema version 99");
    url_exec(url, "UPDATE meta SET value = 'x1' WHERE key = 'schema_version'");
    assert_err(store_open_pg(url, false, &s, &e_), TY_EFORMAT,
               "schema_version \"x1\" in meta is not a version number");
    url_exec(url, "UPDATE meta SET value = '5' WHERE key = 'schema_version'");
    assert_ok(store_open_pg(url, false, &s, &e_));
    store_close(s);

    /* somebody else's tables: refused and left alone */
    char other[PG_URL_MAX];
    fx_new_db(f, "c", other, sizeof other);
    url_exec(other, "CREATE TABLE meta (k int)");
    assert_err(store_open_pg(other, false, &s, &e_), TY_EFORMAT,
               "has a table \"meta\" that is not Tethys's");
    url_exec(other, "DROP TABLE meta; CREATE TABLE runs (x int)");
    assert_err(store_open_pg(other, false, &s, &e_), TY_EFORMAT,
               "holds tables named like Tethys's (objects, runs, ...) but no Tethys schema");
    assert_int_equal(url_int(other, "SELECT count(*) FROM pg_class WHERE relname = 'objects'"), 0);
}

/* pg.sh down / up on the test's server (tests/pg/with-pg.sh names it). */
static void pg_ctl(const char *what)
{
    const char *sh = getenv("TETHYS_TEST_PG_SH"), *dir = getenv("TETHYS_TEST_PG_DIR");
    if (sh == NULL || dir == NULL)
        fail_msg("TETHYS_TEST_PG_SH and TETHYS_TEST_PG_DIR must name pg.sh and the server's "
                 "directory (tests/pg/with-pg.sh sets them)");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash '%s' %s '%s'", sh, what, dir);
    if (system(cmd) != 0)
        fail_msg("%s failed", cmd);
}

static double since_s(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* The database stopped and started: calls fail at once while it is down and work again
 * after, a batch it interrupted stores nothing, and a server needs no restart. */
static void test_pg_reconnect(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s, *r;
    assert_ok(fx_open(f, true, &r, &e_));
    assert_ok(store_meta_set(s, "epoch", "1", &e_));
    struct store_history_query q = {0};

    /* restarted while nobody called: the next call notices and reconnects */
    pg_ctl("down");
    pg_ctl("up");
    char *v;
    assert_ok(store_meta_get(s, "epoch", &v, &e_));
    assert_string_equal(v, "1");
    free(v);
    assert_int_equal(history_count(r, q), 0);

    /* down: TY_EUNAVAIL at once, nothing changed */
    pg_ctl("down");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct run_buf b;
    run_init(&b, "rc", "d", 1767225600, 0, 1, STORE_RUN_SUCCEEDED);
    assert_err(store_meta_set(s, "epoch", "2", &e_), TY_EUNAVAIL,
               "meta_set epoch: database unavailable (database ");
    assert_err(store_run_put(s, &b.r, &e_), TY_EUNAVAIL, "run_put run ");
    assert_err(store_meta_get(r, "epoch", &v, &e_), TY_EUNAVAIL, "database unavailable");
    assert_err(store_begin(s, &e_), TY_EUNAVAIL, "database unavailable");
    int64_t ver;
    assert_err(store_obj_put(s, STORE_JOB, "j", "{}", 0, "t", &ver, &e_), TY_EUNAVAIL,
               "obj_put job \"j\": database unavailable");
    assert_true(since_s(&t0) < 5);
    pg_ctl("up");
    assert_ok(store_run_put(s, &b.r, &e_));
    assert_ok(store_meta_get(s, "epoch", &v, &e_));
    assert_string_equal(v, "1");
    free(v);
    assert_int_equal(history_count(r, q), 1);

    /* lost in the middle of a batch: the batch says so until rollback, stores nothing */
    struct run_buf c, d;
    run_init(&c, "rc", "d", 1767225660, 0, 1, STORE_RUN_SUCCEEDED);
    run_init(&d, "rc", "d", 1767225720, 0, 1, STORE_RUN_SUCCEEDED);
    assert_ok(store_begin(s, &e_));
    assert_ok(store_run_put(s, &c.r, &e_));
    pg_ctl("down");
    pg_ctl("up");
    assert_err(store_run_put(s, &d.r, &e_), TY_EUNAVAIL, "database unavailable");
    assert_err(store_run_put(s, &d.r, &e_), TY_EUNAVAIL, "the batch was rolled back");
    assert_err(store_commit(s, &e_), TY_EUNAVAIL,
               "commit: the batch was rolled back after an earlier error");
    store_rollback(s);
    assert_int_equal(history_count(r, q), 1);
    assert_ok(store_begin(s, &e_));
    assert_ok(store_run_put(s, &c.r, &e_));
    assert_ok(store_run_put(s, &d.r, &e_));
    assert_ok(store_commit(s, &e_));
    assert_int_equal(history_count(r, q), 3);
    store_close(r);
}

static int64_t partition_rows(struct fx *f, const char *name)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_class WHERE relname = '%s'", name);
    if (db_int(f, sql) == 0)
        return -1;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", name);
    return db_int(f, sql);
}

/* Day partitions: made when a day is first written (in a batch too), dropped whole by
 * retention unless a run in them still runs, made again for a late record. */
static void test_pg_partitions(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    const int64_t d0 = 1767225600; /* 2026-01-01T00:00:00Z */
    const int64_t day_s = 86400, hour_s = 3600;
    struct run_buf live;
    for (int64_t day = 0; day < 4; day++) {
        for (int64_t i = 0; i < 2; i++) {
            struct run_buf b;
            run_init(&b, "pt", "d", d0 + day * day_s + i * hour_s, 0, 1, STORE_RUN_SUCCEEDED);
            assert_ok(store_run_put(s, &b.r, &e_));
        }
        struct store_skip k;
        char fire[64];
        skip_init(&k, fire, sizeof fire, "pt", "d", d0 + day * day_s + 60, -1, STORE_SKIP_OVERLAP);
        assert_ok(store_skip_put(s, &k, &e_));
    }
    run_init(&live, "pt", "d", d0 + 86400 + 2 * hour_s, 1, 1, STORE_RUN_RUNNING);
    assert_ok(store_run_put(s, &live.r, &e_));
    assert_int_equal(partition_rows(f, "runs_20260101"), 2);
    assert_int_equal(partition_rows(f, "runs_20260102"), 3);
    assert_int_equal(partition_rows(f, "skips_20260104"), 1);
    assert_int_equal(db_int(f, "SELECT count(*) FROM runs"), 9);

    /* older than day 2: day 0 goes whole; day 1's runs keep their partition for the
     * running run and lose the rest row by row, its skips go whole */
    int64_t removed = -1;
    assert_ok(store_prune(s, (d0 + 2 * day_s) * 1000, 0, &removed, &e_));
    assert_int_equal(removed, 3 + 3);
    assert_int_equal(partition_rows(f, "runs_20260101"), -1);
    assert_int_equal(partition_rows(f, "skips_20260101"), -1);
    assert_int_equal(partition_rows(f, "runs_20260102"), 1);
    assert_int_equal(partition_rows(f, "skips_20260102"), -1);
    assert_int_equal(partition_rows(f, "runs_20260103"), 2);
    assert_int_equal(db_int(f, "SELECT count(*) FROM run_keys"), 5);
    assert_int_equal(db_int(f, "SELECT count(*) FROM skip_keys"), 2);
    assert_int_equal(db_int(f, "SELECT count(*) FROM fire_days WHERE day <= 20455"), 1);
    json_t *o;
    assert_ok(store_run_get(s, live.id, &o, &e_));
    assert_string_equal(jstr(o, "status"), "running");
    json_decref(o);
    struct store_history_query q = {.job = "pt"};
    assert_int_equal(history_count(s, q), 7);
    assert_ok(store_last_fires(s, &o, &e_));
    assert_int_equal(jint(o, "pt"), d0 + 3 * day_s + hour_s);
    json_decref(o);

    /* a late record for a dropped day makes its partition again */
    struct run_buf late;
    run_init(&late, "pt", "d", d0 + 10, 0, 1, STORE_RUN_FAILED);
    assert_ok(store_run_put(s, &late.r, &e_));
    assert_int_equal(partition_rows(f, "runs_20260101"), 1);
    /* in a batch: kept by the commit, undone by a rollback (and then made again) */
    struct run_buf b10, b11;
    run_init(&b10, "pt", "d", d0 + 10 * day_s, 0, 1, STORE_RUN_SUCCEEDED);
    run_init(&b11, "pt", "d", d0 + 11 * day_s, 0, 1, STORE_RUN_SUCCEEDED);
    assert_ok(store_begin(s, &e_));
    assert_ok(store_run_put(s, &b10.r, &e_));
    assert_ok(store_commit(s, &e_));
    assert_int_equal(partition_rows(f, "runs_20260111"), 1);
    assert_ok(store_begin(s, &e_));
    assert_ok(store_run_put(s, &b11.r, &e_));
    store_rollback(s);
    assert_int_equal(partition_rows(f, "runs_20260112"), -1);
    assert_ok(store_run_put(s, &b11.r, &e_));
    assert_int_equal(partition_rows(f, "runs_20260112"), 1);
    /* a partition this connection knows, dropped by another: made again */
    db_exec(f, "DELETE FROM run_keys WHERE scheduled_at >= 1768176000;"
               " DROP TABLE runs_20260112");
    assert_ok(store_run_put(s, &b11.r, &e_));
    assert_int_equal(partition_rows(f, "runs_20260112"), 1);
    /* ... in the middle of a batch: the batch ends (the caller retries it), then goes */
    b11.r.status = STORE_RUN_RUNNING;
    b11.r.started_at_ms = b11.r.scheduled_at * 1000 + 5;
    assert_ok(store_run_put(s, &b11.r, &e_));
    db_exec(f, "DELETE FROM run_keys WHERE scheduled_at >= 1768176000;"
               " DROP TABLE runs_20260112");
    b11.r.status = STORE_RUN_SUCCEEDED;
    assert_ok(store_begin(s, &e_));
    assert_err(store_run_put(s, &b11.r, &e_), TY_EUNAVAIL,
               "another connection dropped the day's partition meanwhile");
    assert_err(store_commit(s, &e_), TY_EUNAVAIL, "the batch was rolled back");
    store_rollback(s);
    assert_ok(store_begin(s, &e_));
    assert_ok(store_run_put(s, &b11.r, &e_));
    assert_ok(store_commit(s, &e_));
    assert_int_equal(partition_rows(f, "runs_20260112"), 1);
    assert_ok(store_run_get(s, b11.id, &o, &e_));
    assert_string_equal(jstr(o, "status"), "succeeded");
    json_decref(o);

    /* keep_per_job with the age pass: ranks only what the age pass keeps */
    assert_ok(store_prune(s, (d0 + 3 * day_s) * 1000, 3, &removed, &e_));
    /* by age: day 0's late run, day 2's two runs and skip (whole partitions); then beyond
     * the newest 3 of what is left, day 3's first run and its skip (the running run stays) */
    assert_int_equal(removed, 1 + 2 + 1 + 2);
    assert_int_equal(db_int(f, "SELECT count(*) FROM runs"),
                     db_int(f, "SELECT count(*) FROM run_keys"));
    assert_int_equal(db_int(f, "SELECT count(*) FROM runs WHERE status = 'running'"), 1);
}

/* Partitions of runs, and how many of them hold a copy of runs_executor. */
static void executor_index_spread(struct fx *f, int64_t *parts, int64_t *indexed)
{
    *parts = db_int(f, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'runs'::regclass");
    *indexed =
        db_int(f, "SELECT count(*) FROM pg_inherits i JOIN pg_index x"
                  " ON x.indexrelid = i.inhrelid WHERE i.inhparent = 'runs_executor'::regclass"
                  " AND x.indrelid IN (SELECT inhrelid FROM pg_inherits"
                  "  WHERE inhparent = 'runs'::regclass)");
}

/* Step 4 on PostgreSQL: a version 3 database with history in several day partitions gets
 * runs_executor on the parent and on every partition, and partitions made afterwards (by
 * ATTACH) get it too.  Nothing else is written: the store stays "empty" for a copy. */
static void test_pg_migrate_v4(void **state)
{
    struct fx *f = *state;
    const int64_t t0 = 1767225600, day = 86400;
    static const struct fire_row rows[] = {
        {"etl", "ex-a", 1767225600, STORE_TRIGGER_SCHEDULE, 1},
        {"etl", "ex-a", 1767312000, STORE_TRIGGER_SCHEDULE, 1},
        {"etl", "ex-b", 1767398400, STORE_TRIGGER_SCHEDULE, 1},
        {"report", "ex-a", 1767398460, STORE_TRIGGER_MANUAL, 1},
    };
    put_fire_rows(f->s, rows, sizeof rows / sizeof rows[0]);
    int64_t parts, indexed;
    executor_index_spread(f, &parts, &indexed);
    assert_true(parts >= 3);
    assert_int_equal(indexed, parts); /* a new database has it already */

    /* what a version 3 server left: no such index */
    store_close(f->s);
    f->s = NULL;
    db_exec(f, "DROP INDEX runs_executor; DROP TABLE users, sessions, grants;"
               " UPDATE meta SET value = '3' WHERE key = 'schema_version'");
    assert_int_equal(db_int(f, "SELECT count(*) FROM pg_indexes WHERE indexdef LIKE"
                               " '%(executor, scheduled_at)%'"),
                     0);
    struct store *s = NULL;
    assert_err(fx_open(f, true, &s, &e_), TY_EFORMAT,
               "has schema version 3 and needs migrating to 5; open it read-write first");
    assert_null(s);
    /* a step that fails changes nothing: the name is taken */
    db_exec(f, "CREATE TABLE runs_executor (x int)");
    assert_err(fx_open(f, false, &s, &e_), TY_EFORMAT, "open: migrate schema 3 to 4");
    assert_null(s);
    assert_int_equal(db_int(f, "SELECT value FROM meta WHERE key = 'schema_version'"), 3);
    db_exec(f, "DROP TABLE runs_executor");

    /* a writer migrates it: the parent's index, and one per partition there is */
    assert_ok(fx_open(f, false, &s, &e_));
    f->s = s;
    assert_int_equal(db_int(f, "SELECT value FROM meta WHERE key = 'schema_version'"), 5);
    char def[160];
    db_text(f, "SELECT indexdef FROM pg_indexes WHERE indexname = 'runs_executor'", def,
            sizeof def);
    assert_string_equal(def, "CREATE INDEX runs_executor ON ONLY public.runs USING btree "
                             "(executor, scheduled_at)");
    executor_index_spread(f, &parts, &indexed);
    assert_int_equal(indexed, parts);
    int64_t n = -1;
    assert_ok(store_rows_count(s, STORE_T_META, &n, &e_));
    assert_int_equal(n, 0);
    char want[160];
    snprintf(want, sizeof want, "{\"etl\": %" PRId64 "}", t0 + day);
    assert_executor_fires(s, "ex-a", 0, want);

    /* a day first written now: its partition is ATTACHed with the index */
    struct fire_row later = {"report", "ex-a", t0 + 40 * day, STORE_TRIGGER_SCHEDULE, 1};
    put_fire_rows(s, &later, 1);
    assert_int_equal(partition_rows(f, "runs_20260210"), 1);
    assert_int_equal(db_int(f, "SELECT count(*) FROM pg_indexes WHERE tablename = 'runs_20260210'"
                               " AND indexdef LIKE '%(executor, scheduled_at)%'"),
                     1);
    int64_t parts2;
    executor_index_spread(f, &parts2, &indexed);
    assert_int_equal(parts2, parts + 1);
    assert_int_equal(indexed, parts2);
    snprintf(want, sizeof want, "{\"etl\": %" PRId64 ", \"report\": %" PRId64 "}", t0 + day,
             t0 + 40 * day);
    assert_executor_fires(s, "ex-a", 0, want);

    /* opened again: nothing left to do; a reader opens */
    store_close(s);
    f->s = NULL;
    assert_ok(fx_open(f, false, &s, &e_));
    f->s = s;
    struct store *r;
    assert_ok(fx_open(f, true, &r, &e_));
    store_close(r);
    assert_int_equal(db_int(f, "SELECT count(*) FROM pg_class WHERE relname = 'runs_executor'"), 1);
}

/* Racers: two connections do the same thing at the same moment, many times. */
#define RACE_ROUNDS 40

struct racer {
    struct fx *f;
    int id;
    pthread_barrier_t *go;
    int rc[RACE_ROUNDS];
    int rc2[RACE_ROUNDS];
    char field[RACE_ROUNDS][TY_ERR_FIELD_MAX];
};

static void *obj_racer(void *p)
{
    struct racer *x = p;
    struct store *s;
    struct ty_err err;
    if (fx_open(x->f, false, &s, &err) != 0)
        return NULL;
    for (int i = 0; i < RACE_ROUNDS; i++) {
        char json[64], name[32];
        int64_t v;
        snprintf(json, sizeof json, "{\"racer\":%d,\"round\":%d}", x->id, i);
        /* one object updated from the version both read: round i is based on i + 1 */
        pthread_barrier_wait(x->go);
        x->rc[i] = store_obj_put(s, STORE_JOB, "raced", json, i + 1, "t", &v, &err);
        /* a create of a new name */
        snprintf(name, sizeof name, "new-%d", i);
        pthread_barrier_wait(x->go);
        x->rc2[i] = store_obj_put(s, STORE_DOMAIN, name, json, -1, "t", &v, &err);
    }
    store_close(s);
    return NULL;
}

static void race(struct fx *f, void *(*fn)(void *), struct racer x[2])
{
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        memset(&x[i], 0, sizeof x[i]);
        x[i].f = f;
        x[i].id = i;
        x[i].go = &go;
        for (int k = 0; k < RACE_ROUNDS; k++)
            x[i].rc[k] = x[i].rc2[k] = 99;
        assert_int_equal(pthread_create(&t[i], NULL, fn, &x[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);
}

/* Exactly one of the two won each round, and the other got `loser`. */
static void one_wins(const int a[RACE_ROUNDS], const int b[RACE_ROUNDS], int loser,
                     const char *what)
{
    for (int i = 0; i < RACE_ROUNDS; i++)
        if (!((a[i] == 0 && b[i] == loser) || (a[i] == loser && b[i] == 0)))
            fail_msg("%s round %d: %d and %d, want 0 and %d once each", what, i, a[i], b[i], loser);
}

/* Two servers editing one object at once: exactly one wins, the other is told. */
static void test_pg_obj_race(void **state)
{
    struct fx *f = *state;
    int64_t v;
    assert_ok(store_obj_put(f->s, STORE_JOB, "raced", "{\"round\":-1}", -1, "t", &v, &e_));
    struct racer x[2];
    race(f, obj_racer, x);
    one_wins(x[0].rc, x[1].rc, TY_ECONFLICT, "obj_put based on one version");
    one_wins(x[0].rc2, x[1].rc2, TY_EEXIST, "obj_put creating one name");
    char *json;
    assert_ok(store_obj_get(f->s, STORE_JOB, "raced", &json, &v, &e_));
    assert_int_equal(v, RACE_ROUNDS + 1);
    free(json);
    assert_int_equal(db_int(f, "SELECT count(*) FROM object_versions WHERE name = 'raced'"),
                     RACE_ROUNDS + 1);
    assert_int_equal(db_int(f, "SELECT count(*) FROM objects WHERE kind = 'domain'"), RACE_ROUNDS);
}

static void *fire_racer(void *p)
{
    struct racer *x = p;
    struct store *s;
    struct ty_err err;
    if (fx_open(x->f, false, &s, &err) != 0)
        return NULL;
    for (int i = 0; i < RACE_ROUNDS; i++) {
        char id[STORE_ID_MAX], fire[64];
        snprintf(id, sizeof id, "%08x%08x", x->id + 1, i);
        snprintf(fire, sizeof fire, "race@%d#0", 1767225600 + i);
        struct store_run r = {.run_id = id,
                              .fire_id = fire,
                              .job = "race",
                              .domain = "d",
                              .attempt = 1,
                              .trigger = STORE_TRIGGER_SCHEDULE,
                              .status = STORE_RUN_QUEUED,
                              .scheduled_at = 1767225600 + i,
                              .exit_code = -1};
        bool batch = i % 2 == 1; /* as the writer does, every other round */
        pthread_barrier_wait(x->go);
        ty_err_clear(&err);
        if (batch && store_begin(s, &err) != 0) {
            x->rc[i] = -100;
            continue;
        }
        x->rc[i] = store_run_put(s, &r, &err);
        snprintf(x->field[i], sizeof x->field[i], "%s", err.field);
        if (batch && store_commit(s, &err) != 0)
            x->rc[i] = -101; /* a refused fire must not fail the batch */
        /* the same record from both (a replay racing the first report) */
        snprintf(id, sizeof id, "%08x%08x", 9, i);
        snprintf(fire, sizeof fire, "replay@%d#0", 1767225600 + i);
        pthread_barrier_wait(x->go);
        x->rc2[i] = store_run_put(s, &r, &err);
    }
    store_close(s);
    return NULL;
}

/* Two servers recording one fire at once under two run ids: one is refused. */
static void test_pg_fire_race(void **state)
{
    struct fx *f = *state;
    struct racer x[2];
    race(f, fire_racer, x);
    one_wins(x[0].rc, x[1].rc, TY_EEXIST, "run_put of one fire");
    for (int i = 0; i < RACE_ROUNDS; i++) {
        const char *field = x[0].rc[i] != 0 ? x[0].field[i] : x[1].field[i];
        assert_string_equal(field, "fire_id");
        assert_int_equal(x[0].rc2[i], 0);
        assert_int_equal(x[1].rc2[i], 0);
    }
    assert_int_equal(db_int(f, "SELECT count(*) FROM runs WHERE job = 'race'"), 2 * RACE_ROUNDS);
    assert_int_equal(db_int(f, "SELECT count(*) FROM run_keys"), 2 * RACE_ROUNDS);
    assert_int_equal(db_int(f, "SELECT count(DISTINCT fire_id) FROM runs"), 2 * RACE_ROUNDS);
}

#define COUNT_OPS 150

static void *count_racer(void *p)
{
    struct racer *x = p;
    struct store *s;
    struct ty_err err;
    if (fx_open(x->f, false, &s, &err) != 0) {
        x->rc[0] = -1;
        return NULL;
    }
    static const char *const doms[] = {"", "a", "a/b", "a/c", "a/b/x", "b", "b/y"};
    int failures = 0;
    for (int i = 0; i < COUNT_OPS; i++) {
        char name[32], json[128];
        /* names both racers use, and names of their own */
        snprintf(name, sizeof name, i % 3 == 0 ? "shared-%d" : "own%d-%d",
                 i % 3 == 0 ? i % 5 : x->id, i % 11);
        snprintf(json, sizeof json, "{\"domain\":\"%s\",\"enabled\":%s,\"n\":%d}",
                 doms[(i * 3 + x->id) % 7], i % 4 == 0 ? "false" : "true", i);
        int64_t v;
        int rc;
        if (i % 10 == 9) { /* a batch of three: retried whole when it deadlocks */
            for (int tries = 0;; tries++) {
                rc = store_begin(s, &err);
                for (int k = 0; rc == 0 && k < 3; k++) {
                    char bn[32];
                    snprintf(bn, sizeof bn, "batch%d-%d", x->id, (i + k) % 7);
                    rc = store_obj_put(s, STORE_JOB, bn, json, 0, "t", &v, &err);
                }
                rc = rc == 0 ? store_commit(s, &err) : rc;
                if (rc != 0)
                    store_rollback(s);
                if (rc != TY_EUNAVAIL || tries == 5)
                    break;
            }
        } else if (i % 4 == 3) {
            rc = store_obj_delete(s, STORE_JOB, name, 0, "t", &err);
            rc = rc == TY_ENOENT ? 0 : rc;
        } else {
            rc = store_obj_put(s, STORE_JOB, name, json, 0, "t", &v, &err);
        }
        if (rc != 0 && failures++ == 0)
            print_message("racer %d op %d: %s\n", x->id, i, err.msg);
    }
    x->rc[0] = failures;
    store_close(s);
    return NULL;
}

/* Two servers creating, moving and deleting jobs in overlapping domains at once: every
 * subtree's count stays exact. */
static void test_pg_count_race(void **state)
{
    struct fx *f = *state;
    struct racer x[2];
    race(f, count_racer, x);
    assert_int_equal(x[0].rc[0], 0);
    assert_int_equal(x[1].rc[0], 0);
    check_job_index(f, f->s);
    assert_true(job_count(f->s, "") > 0);
}

struct deadlocker {
    struct fx *f;
    pthread_barrier_t *go;
    const char *first, *first_to, *second, *second_to;
    int rc_put, rc_commit, rc_retry;
    char msg[TY_ERR_MSG_MAX];
};

/* A batch of two moves: the second waits for the other batch, which waits for this one. */
static void *deadlocker_main(void *p)
{
    struct deadlocker *d = p;
    struct store *s;
    struct ty_err err;
    ty_err_clear(&err);
    if (fx_open(d->f, false, &s, &err) != 0) {
        d->rc_put = -1;
        return NULL;
    }
    char j1[64], j2[64];
    snprintf(j1, sizeof j1, "{\"domain\":\"%s\"}", d->first_to);
    snprintf(j2, sizeof j2, "{\"domain\":\"%s\"}", d->second_to);
    int64_t v;
    int rc = store_begin(s, &err);
    if (rc == 0)
        rc = store_obj_put(s, STORE_JOB, d->first, j1, 0, "t", &v, &err);
    pthread_barrier_wait(d->go);
    if (rc == 0) {
        rc = store_obj_put(s, STORE_JOB, d->second, j2, 0, "t", &v, &err);
        d->rc_put = rc;
        snprintf(d->msg, sizeof d->msg, "%s", err.msg);
    }
    d->rc_commit = store_commit(s, &err);
    if (d->rc_commit != 0) { /* the caller's part: roll back, and the batch again */
        store_rollback(s);
        rc = store_begin(s, &err);
        if (rc == 0)
            rc = store_obj_put(s, STORE_JOB, d->first, j1, 0, "t", &v, &err);
        if (rc == 0)
            rc = store_obj_put(s, STORE_JOB, d->second, j2, 0, "t", &v, &err);
        d->rc_retry = rc == 0 ? store_commit(s, &err) : rc;
    }
    store_close(s);
    return NULL;
}

/* Two batches that lock count rows in opposite orders: PostgreSQL breaks the deadlock, the
 * victim's batch fails with TY_EUNAVAIL and stores nothing, and its retry goes through. */
static void test_pg_batch_deadlock(void **state)
{
    struct fx *f = *state;
    put_job(f->s, "ja", "p/1", true);
    put_job(f->s, "jd", "p/1", true);
    put_job(f->s, "jb", "q/1", true);
    put_job(f->s, "jc", "q/1", true);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    struct deadlocker a = {
        .f = f, .go = &go, .first = "ja", .first_to = "p/2", .second = "jc", .second_to = "q/3"};
    struct deadlocker b = {
        .f = f, .go = &go, .first = "jb", .first_to = "q/2", .second = "jd", .second_to = "p/3"};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, deadlocker_main, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, deadlocker_main, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&go);
    struct deadlocker *victim = a.rc_put != 0 ? &a : &b, *winner = a.rc_put != 0 ? &b : &a;
    assert_int_equal(winner->rc_put, 0);
    assert_int_equal(winner->rc_commit, 0);
    assert_int_equal(victim->rc_put, TY_EUNAVAIL);
    assert_non_null(strstr(victim->msg, "deadlock or serialization failure"));
    assert_int_equal(victim->rc_commit, TY_EUNAVAIL);
    assert_int_equal(victim->rc_retry, 0);
    assert_int_equal(job_count(f->s, "p/1"), 0);
    assert_int_equal(job_count(f->s, "q/1"), 0);
    assert_int_equal(job_count(f->s, "p"), 2);
    check_job_index(f, f->s);
}

struct call_racer {
    struct fx *f;
    pthread_barrier_t *go;
    int rc_batch, rc_call;
    char msg[TY_ERR_MSG_MAX];
};

/* A batch: moves ja q/1 -> q/2, waits until the single call holds p/1 and waits for q/1,
 * then moves jc p/1 -> p/3 (it waits for p/1: a cycle).  Retried whole if it is the
 * deadlock's victim. */
static void *batch_side(void *p)
{
    struct call_racer *c = p;
    struct store *s;
    struct ty_err err;
    if (fx_open(c->f, false, &s, &err) != 0) {
        c->rc_batch = -1;
        pthread_barrier_wait(c->go);
        return NULL;
    }
    int64_t v;
    int rc = 0;
    for (int tries = 0; tries < 3; tries++) {
        rc = store_begin(s, &err);
        if (rc == 0)
            rc = store_obj_put(s, STORE_JOB, "ja", "{\"domain\":\"q/2\"}", 0, "t", &v, &err);
        if (tries == 0) {
            pthread_barrier_wait(c->go);
            /* until the single call waits for a lock this batch holds (q/1): then the
             * next move closes the cycle, however slow the machine */
            for (int i = 0; i < 1000; i++) {
                if (db_int(c->f, "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                                 " current_database() AND wait_event_type = 'Lock'") > 0)
                    break;
                struct timespec ts = {0, 10 * 1000000L};
                nanosleep(&ts, NULL);
            }
        }
        if (rc == 0)
            rc = store_obj_put(s, STORE_JOB, "jc", "{\"domain\":\"p/3\"}", 0, "t", &v, &err);
        rc = rc == 0 ? store_commit(s, &err) : rc;
        if (rc == 0)
            break;
        store_rollback(s);
    }
    c->rc_batch = rc;
    store_close(s);
    return NULL;
}

/* A single call moving jb p/1 -> q/1: it locks p, p/1 and q, then waits for q/1. */
static void *call_side(void *p)
{
    struct call_racer *c = p;
    struct store *s;
    struct ty_err err;
    ty_err_clear(&err);
    int rc = fx_open(c->f, false, &s, &err);
    pthread_barrier_wait(c->go);
    int64_t v;
    if (rc == 0)
        rc = store_obj_put(s, STORE_JOB, "jb", "{\"domain\":\"q/1\"}", 0, "t", &v, &err);
    c->rc_call = rc;
    snprintf(c->msg, sizeof c->msg, "%s", err.msg);
    if (s != NULL)
        store_close(s);
    return NULL;
}

/* A deadlock between a batch and a call that is its own transaction: the call never sees
 * it (PostgreSQL aborts one of the two; the call is retried from the start, the batch by
 * its caller), and the counts come out exact. */
static void test_pg_call_deadlock(void **state)
{
    struct fx *f = *state;
    put_job(f->s, "ja", "q/1", true);
    put_job(f->s, "jb", "p/1", true);
    put_job(f->s, "jc", "p/1", true);
    int64_t before = db_int(f, "SELECT deadlocks FROM pg_stat_database"
                               " WHERE datname = current_database()");
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    struct call_racer c = {.f = f, .go = &go, .rc_batch = 99, .rc_call = 99};
    pthread_t tb, tc;
    assert_int_equal(pthread_create(&tb, NULL, batch_side, &c), 0);
    assert_int_equal(pthread_create(&tc, NULL, call_side, &c), 0);
    pthread_join(tb, NULL);
    pthread_join(tc, NULL);
    pthread_barrier_destroy(&go);
    if (c.rc_call != 0)
        fail_msg("the single call: %d %s", c.rc_call, c.msg);
    assert_int_equal(c.rc_batch, 0);
    /* the statistics reach other sessions within a second or so */
    int64_t after = before;
    for (int i = 0; i < 50 && after == before; i++) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        after = db_int(f, "SELECT deadlocks FROM pg_stat_database"
                          " WHERE datname = current_database()");
    }
    assert_int_equal(after, before + 1);
    assert_int_equal(job_count(f->s, "q"), 2);
    assert_int_equal(job_count(f->s, "p"), 1);
    assert_int_equal(job_count(f->s, "p/1"), 0);
    check_job_index(f, f->s);
}

/* ---------------------------------------------------------------------------------------
 * Whole tables as rows: a SQLite store copied into the store under test (a second SQLite
 * file, or PostgreSQL in `test_store pg`) with rows_scan and rows_load, as `tethys store
 * copy` does, comes out with the same rows, the same answers, and a job index as if the
 * jobs had been put there.
 */

struct loader {
    struct store *to;
    enum store_table t;
    json_t *batch;
    size_t per; /* rows per load: small, so a table takes several */
};

static int load_batch(struct loader *l)
{
    struct ty_err err;
    int rc = store_rows_load(l->to, l->t, l->batch, &err);
    if (rc != 0)
        fail_msg("rows_load %s: %d %s", store_table_name(l->t), rc, err.msg);
    json_array_clear(l->batch);
    return 0;
}

static int loader_row(void *arg, const json_t *row)
{
    struct loader *l = arg;
    json_array_append(l->batch, (json_t *)row);
    return json_array_size(l->batch) >= l->per ? load_batch(l) : 0;
}

static int collect_row(void *arg, const json_t *row)
{
    json_array_append(arg, (json_t *)row);
    return 0;
}

static json_t *all_rows(struct store *s, enum store_table t)
{
    json_t *a = json_array();
    assert_ok(store_rows_scan(s, t, collect_row, a, &e_));
    return a;
}

/* Fill a store with a little of everything the tables hold. */
static void fill_for_copy(struct store *s)
{
    put_job(s, "j1", "bank/payments", true);
    put_job(s, "j2", "bank", false);
    put_job(s, "j3", "", true);
    put_job(s, "j1", "bank/cards", true); /* a second version, moved */
    int64_t v;
    assert_ok(store_obj_put(s, STORE_JOB, "gone", "{\"name\":\"gone\"}", 0, "alice", &v, &e_));
    assert_ok(store_obj_delete(s, STORE_JOB, "gone", 0, "bob", &e_));
    assert_ok(store_obj_put(s, STORE_DOMAIN, "bank", "{\"path\":\"bank\",\"limits\":{\"jobs\":3}}",
                            0, "root", &v, &e_));
    assert_ok(store_obj_put(s, STORE_CALENDAR, "holidays", "{\"name\":\"holidays\",  \"x\":[1]}", 0,
                            "root", &v, &e_));
    assert_ok(store_meta_set(s, "epoch", "7", &e_));
    assert_ok(store_token_put(s, "ci",
                              "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
                              4000000000000, "root", &e_));
    assert_ok(store_token_put(s, "old",
                              "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100", 0,
                              NULL, &e_));
    assert_ok(store_token_revoke(s, "old", 1234, &e_));
    json_t *g = json_pack("[{s:s, s:s}]", "domain", "bank", "role", "operator");
    assert_ok(store_grants_set(s, STORE_P_TOKEN, "ci", g, &e_));
    struct store_user u = {"bob", "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA", true, g};
    assert_ok(store_user_create(s, &u, "admin", 1700000000000, &e_));
    assert_ok(store_user_signin(s, "bob", false, 1700000000001, 5, 900000, NULL, &e_));
    json_decref(g);
    struct store_session ss = {"00112233445566778899aabbccddeeff00112233445566778899aabbccddee00",
                               "bob",
                               "csrf",
                               1700000000000,
                               4000000000000,
                               0};
    assert_ok(store_session_put(s, &ss, &e_));
    json_t *sec = json_pack("{s:s, s:s}", "DB_PASSWORD", "correct horse", "K", "v");
    assert_ok(store_secrets_put(s, "j1", sec, &e_));
    json_decref(sec);
    static const char out[] = "line 1\n\xff\xfe binary \0 nul\n";
    for (int i = 0; i < 7; i++) {
        struct run_buf b;
        run_init(&b, i % 2 ? "j1" : "j3", i % 2 ? "bank/cards" : "", 1700000000 + i * 40000, 0, 1,
                 i == 6 ? STORE_RUN_RUNNING : STORE_RUN_SUCCEEDED);
        if (i % 3 == 0) {
            b.r.output = out;
            b.r.output_len = sizeof out - 1;
            b.r.error = "it said \"no\"";
        }
        assert_ok(store_run_put(s, &b.r, &e_));
    }
    for (int i = 0; i < 4; i++) {
        struct store_skip k;
        char fire[STORE_FIRE_ID_MAX];
        skip_init(&k, fire, sizeof fire, "j2", "bank", 1700000000 + i * 50000 + 7, -1,
                  STORE_SKIP_PAUSED);
        k.detail = i == 2 ? "paused by bob" : NULL;
        assert_ok(store_skip_put(s, &k, &e_));
    }
    struct store_alert a = {.key = "failed:j1",
                            .kind = "failed",
                            .job = "j1",
                            .domain = "bank/cards",
                            .job_level = 2,
                            .shard = -1,
                            .scheduled_at = 1700000040,
                            .raised_at_ms = 5,
                            .reason = "it failed"};
    assert_ok(store_alert_raise(s, &a, &e_));
    assert_ok(store_alert_raise(s, &a, &e_));
    assert_ok(store_alert_clear(s, "failed:j1", 99, &e_));
    a.key = "resource";
    a.kind = "resource";
    a.job = NULL;
    a.domain = NULL;
    assert_ok(store_alert_raise(s, &a, &e_));
}

static void test_rows_copy(void **state)
{
    struct fx *f = *state;
    char src_path[160];
    snprintf(src_path, sizeof src_path, "%s/source.db", f->dir);
    struct store *src;
    assert_ok(store_open_sqlite(src_path, false, &src, &e_));
    fill_for_copy(src);

    /* the target is empty: every table counts 0 (meta without schema_version) */
    for (enum store_table t = STORE_T_META; t <= STORE_T_GRANTS; t++) {
        int64_t n = -1;
        assert_ok(store_rows_count(f->s, t, &n, &e_));
        assert_int_equal(n, 0);
    }

    /* configuration in one batch, history in loads of their own */
    struct loader l = {.to = f->s, .batch = json_array(), .per = 3};
    assert_ok(store_begin(f->s, &e_));
    for (enum store_table t = STORE_T_META; t <= STORE_T_GRANTS; t++) {
        if (t == STORE_T_RUNS)
            assert_ok(store_commit(f->s, &e_));
        l.t = t;
        assert_ok(store_rows_scan(src, t, loader_row, &l, &e_));
        load_batch(&l);
    }
    json_decref(l.batch);

    /* the same rows, table by table, in the same order */
    for (enum store_table t = STORE_T_META; t <= STORE_T_GRANTS; t++) {
        json_t *a = all_rows(src, t), *b = all_rows(f->s, t);
        int64_t na, nb;
        assert_ok(store_rows_count(src, t, &na, &e_));
        assert_ok(store_rows_count(f->s, t, &nb, &e_));
        assert_int_equal(na, (int64_t)json_array_size(a));
        assert_int_equal(nb, na);
        if (!json_equal(a, b)) {
            char *x = json_dumps(a, JSON_COMPACT), *y = json_dumps(b, JSON_COMPACT);
            fail_msg("%s differs:\n%s\n%s", store_table_name(t), x, y);
        }
        json_decref(a);
        json_decref(b);
    }
    json_t *meta = all_rows(f->s, STORE_T_META);
    assert_int_equal(json_array_size(meta), 1);
    assert_string_equal(jstr(json_array_get(meta, 0), "key"), "epoch");
    json_decref(meta);

    /* the same answers: the job index, versions, tokens, secrets, outputs, history */
    check_job_index(f, f->s);
    assert_int_equal(job_count(f->s, "bank"), 2);
    assert_int_equal(job_count(f->s, "bank/cards"), 1);
    assert_int_equal(job_count(f->s, ""), 3);
    json_t *h1, *h2;
    assert_ok(store_obj_history(src, STORE_JOB, "gone", &h1, &e_));
    assert_ok(store_obj_history(f->s, STORE_JOB, "gone", &h2, &e_));
    assert_true(json_equal(h1, h2));
    assert_int_equal(json_array_size(h2), 2);
    json_decref(h1);
    json_decref(h2);
    int64_t v;
    assert_ok(store_obj_put(f->s, STORE_JOB, "gone", "{\"name\":\"gone\"}", -1, "x", &v, &e_));
    assert_int_equal(v, 3); /* versions go on after the copied ones */
    assert_ok(store_token_lookup(
        f->s, "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff", &h1, &e_));
    assert_string_equal(jstr(h1, "name"), "ci");
    assert_int_equal(jint(h1, "expires_at_ms"), 4000000000000);
    json_decref(h1);
    assert_ok(store_secrets_get(f->s, "j1", &h1, &e_));
    assert_string_equal(jstr(h1, "DB_PASSWORD"), "correct horse");
    json_decref(h1);
    /* users and grants come along (with a failed sign-in); sessions do not */
    assert_ok(store_user_get(src, "bob", &h1, &e_));
    assert_ok(store_user_get(f->s, "bob", &h2, &e_));
    assert_true(json_equal(h1, h2));
    assert_int_equal(jint(h2, "failed_attempts"), 1);
    json_decref(h1);
    json_decref(h2);
    assert_ok(store_grants_get(f->s, STORE_P_TOKEN, "ci", &h1, &e_));
    assert_int_equal(json_array_size(h1), 1);
    json_decref(h1);
    assert_int_equal(db_int(f, "SELECT count(*) FROM sessions"), 0);
    struct store_history_query q = {.limit = 100};
    assert_ok(store_history(src, &q, &h1, &e_));
    assert_ok(store_history(f->s, &q, &h2, &e_));
    assert_int_equal(json_array_size(json_object_get(h2, "items")), 11);
    json_decref(h1);
    json_decref(h2);
    json_t *runs = all_rows(src, STORE_T_RUNS);
    const char *id = jstr(json_array_get(runs, 0), "run_id");
    assert_ok(store_run_get(src, id, &h1, &e_));
    assert_ok(store_run_get(f->s, id, &h2, &e_));
    assert_true(json_equal(json_object_get(h1, "output"), json_object_get(h2, "output")));
    json_decref(h1);
    json_decref(h2);
    assert_ok(store_last_fires(src, &h1, &e_));
    assert_ok(store_last_fires(f->s, &h2, &e_));
    assert_true(json_equal(h1, h2));
    json_decref(h1);
    json_decref(h2);
    assert_ok(store_runs_unfinished(f->s, &h1, &e_));
    assert_int_equal(json_array_size(h1), 1);
    json_decref(h1);
    /* and runs go on: a new record of a copied run moves it forward */
    struct run_buf b;
    run_init(&b, "j3", "", 1700000000 + 6 * 40000, 0, 1, STORE_RUN_SUCCEEDED);
    snprintf(b.id, sizeof b.id, "%s", jstr(json_array_get(runs, 6), "run_id"));
    assert_ok(store_run_put(f->s, &b.r, &e_));
    assert_ok(store_runs_unfinished(f->s, &h1, &e_));
    assert_int_equal(json_array_size(h1), 0);
    json_decref(h1);

    /* loading a row that is there already fails and changes nothing */
    json_t *one = json_array();
    json_array_append(one, json_array_get(runs, 1));
    struct ty_err err;
    assert_true(store_rows_load(f->s, STORE_T_RUNS, one, &err) != 0);
    int64_t n;
    assert_ok(store_rows_count(f->s, STORE_T_RUNS, &n, &e_));
    assert_int_equal(n, 7);
    json_decref(one);
    json_decref(runs);
    store_close(src);
}

static void test_rows_errors(void **state)
{
    struct fx *f = *state;
    int64_t n;
    assert_err(store_rows_count(f->s, (enum store_table)99, &n, &e_), TY_EINVAL,
               "rows_count: table 99 is not a store table");
    assert_err(store_rows_scan(f->s, STORE_T_RUNS, NULL, NULL, &e_), TY_EINVAL,
               "rows_scan runs: cb is NULL");
    json_t *rows = json_object();
    assert_err(store_rows_load(f->s, STORE_T_RUNS, rows, &e_), TY_EINVAL,
               "rows_load runs: rows is not a JSON array");
    json_decref(rows);
    rows = json_pack("[i]", 1);
    assert_err(store_rows_load(f->s, STORE_T_SKIPS, rows, &e_), TY_EINVAL,
               "rows_load skips: row 0 is not an object");
    json_decref(rows);
    rows = json_pack("[{s:s, s:s}]", "key", "schema_version", "value", "1");
    assert_err(store_rows_load(f->s, STORE_T_META, rows, &e_), TY_EINVAL,
               "schema_version belongs to the store");
    json_decref(rows);
    rows = json_pack("[{s:s, s:i}]", "kind", "job", "version", 1);
    json_object_set_new(json_array_get(rows, 0), "version", json_string("1"));
    assert_err(store_rows_load(f->s, STORE_T_OBJECTS, rows, &e_), TY_EINVAL,
               "rows_load objects: row 0: version is not an integer");
    json_decref(rows);
    rows = json_pack("[{s:s, s:s}]", "run_id", "00000000000000aa", "output", "not base64!");
    assert_err(store_rows_load(f->s, STORE_T_RUNS, rows, &e_), TY_EINVAL,
               "rows_load runs: row 0: output is not base64");
    json_decref(rows);
    assert_ok(store_rows_count(f->s, STORE_T_RUNS, &n, &e_));
    assert_int_equal(n, 0);
}

/* ---------------------------------------------------------------------------------------
 * Schema version 5: users, sessions and grants.
 */

#define PW_A   "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"
#define PW_B   "$argon2id$v=19$m=65536,t=2,p=1$b3RoZXJzYWx0$b3RoZXJoYXNob3RoZXI"
#define SESS_1 "1111111111111111111111111111111111111111111111111111111111111111"
#define SESS_2 "2222222222222222222222222222222222222222222222222222222222222222"
#define SESS_3 "3333333333333333333333333333333333333333333333333333333333333333"

static json_t *jload(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (v == NULL)
        fail_msg("bad test JSON: %s", text);
    return v;
}

static void assert_json(json_t *got, const char *want_text)
{
    json_t *want = jload(want_text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("got %s, want %s", g, want_text);
    }
    json_decref(want);
}

static void session_put_at(struct store *s, const char *hash, const char *user, int64_t at,
                           int64_t expires, int64_t idle_before)
{
    struct store_session ss = {hash, user, "csrf-" SESS_1, at, expires, idle_before};
    assert_ok(store_session_put(s, &ss, &e_));
}

static void test_users(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s, *r;
    json_t *grants = jload("[{\"domain\": \"finance\", \"role\": \"operator\"},"
                           " {\"domain\": \"\", \"role\": \"viewer\"}]");
    struct store_user u = {"bob", PW_A, true, grants};
    assert_ok(store_user_create(s, &u, "user:admin", 1800000000000, &e_));
    struct ty_err err;
    assert_int_equal(store_user_create(s, &u, NULL, 0, &err), TY_EEXIST);
    json_decref(grants);
    assert_string_equal(err.field, "name");
    assert_string_equal(err.msg, "user_create: a user named \"bob\" exists");
    struct store_user alice = {"alice", PW_B, false, NULL};
    assert_ok(store_user_create(s, &alice, NULL, 0, &e_));

    /* get: every field, grants by domain, the hash */
    json_t *o;
    assert_ok(store_user_get(s, "bob", &o, &e_));
    assert_json(o, "{\"name\": \"bob\", \"password_hash\": \"" PW_A "\","
                   " \"must_change_password\": true, \"failed_attempts\": 0,"
                   " \"locked_until_ms\": null, \"created_at_ms\": 1800000000000,"
                   " \"created_by\": \"user:admin\", \"updated_at_ms\": 1800000000000,"
                   " \"password_changed_at_ms\": 1800000000000, \"last_signin_at_ms\": null,"
                   " \"grants\": [{\"domain\": \"\", \"role\": \"viewer\"},"
                   "  {\"domain\": \"finance\", \"role\": \"operator\"}]}");
    json_decref(o);
    assert_err(store_user_get(s, "carol", &o, &e_), TY_ENOENT, "user_get: no user named \"carol\"");
    /* list: by name, never a hash */
    assert_ok(store_user_list(s, &o, &e_));
    assert_int_equal(json_array_size(o), 2);
    assert_string_equal(jstr(json_array_get(o, 0), "name"), "alice");
    assert_int_equal(json_array_size(json_object_get(json_array_get(o, 0), "grants")), 0);
    assert_int_equal(json_array_size(json_object_get(json_array_get(o, 1), "grants")), 2);
    char *dump = json_dumps(o, 0);
    assert_null(strstr(dump, "argon2"));
    assert_null(strstr(dump, "password_hash"));
    free(dump);
    json_decref(o);

    /* update: grants alone; then a new password ends every session but the one kept */
    session_put_at(s, SESS_1, "bob", 1800000001000, 1900000000000, 0);
    session_put_at(s, SESS_2, "bob", 1800000001000, 1900000000000, 0);
    session_put_at(s, SESS_3, "alice", 1800000001000, 1900000000000, 0);
    json_t *g2 = jload("[{\"domain\": \"hr\", \"role\": \"admin\"}]");
    struct store_user_change c = {.must_change = -1, .grants = g2};
    assert_ok(store_user_update(s, "bob", &c, 1800000002000, &e_));
    json_decref(g2);
    assert_ok(store_user_get(s, "bob", &o, &e_));
    assert_json(json_object_get(o, "grants"), "[{\"domain\": \"hr\", \"role\": \"admin\"}]");
    assert_int_equal(jint(o, "updated_at_ms"), 1800000002000);
    assert_int_equal(jint(o, "password_changed_at_ms"), 1800000000000);
    assert_true(json_is_true(json_object_get(o, "must_change_password")));
    json_decref(o);
    assert_int_equal(db_int(f, "SELECT count(*) FROM sessions"), 3);
    c = (struct store_user_change){.password_hash = PW_B, .must_change = 0, .keep_session = SESS_2};
    assert_ok(store_user_update(s, "bob", &c, 1800000003000, &e_));
    assert_ok(store_user_get(s, "bob", &o, &e_));
    assert_string_equal(jstr(o, "password_hash"), PW_B);
    assert_int_equal(jint(o, "password_changed_at_ms"), 1800000003000);
    assert_true(json_is_false(json_object_get(o, "must_change_password")));
    assert_int_equal(json_array_size(json_object_get(o, "grants")), 1); /* kept */
    json_decref(o);
    assert_err(store_session_get(s, SESS_1, &o, &e_), TY_ENOENT, "no such session");
    assert_ok(store_session_get(s, SESS_2, &o, &e_));
    json_decref(o);
    assert_ok(store_session_get(s, SESS_3, &o, &e_)); /* another user's */
    json_decref(o);
    /* the same password hashed again keeps them all */
    session_put_at(s, SESS_1, "bob", 1800000004000, 1900000000000, 0);
    c = (struct store_user_change){.password_hash = PW_A, .must_change = -1, .same_password = true};
    assert_ok(store_user_update(s, "bob", &c, 1800000005000, &e_));
    assert_int_equal(db_int(f, "SELECT count(*) FROM sessions WHERE user_name = 'bob'"), 2);
    assert_ok(store_user_get(s, "bob", &o, &e_));
    assert_string_equal(jstr(o, "password_hash"), PW_A);
    assert_int_equal(jint(o, "password_changed_at_ms"), 1800000003000);
    json_decref(o);
    /* an admin's reset keeps none of them */
    c = (struct store_user_change){.password_hash = PW_A, .must_change = 1};
    assert_ok(store_user_update(s, "bob", &c, 0, &e_));
    assert_err(store_session_get(s, SESS_2, &o, &e_), TY_ENOENT, "no such session");
    /* grants [] removes them all */
    g2 = jload("[]");
    c = (struct store_user_change){.must_change = -1, .grants = g2};
    assert_ok(store_user_update(s, "bob", &c, 0, &e_));
    json_decref(g2);
    assert_ok(store_grants_get(s, STORE_P_USER, "bob", &o, &e_));
    assert_json(o, "[]");
    json_decref(o);
    c = (struct store_user_change){.must_change = -1};
    assert_err(store_user_update(s, "carol", &c, 0, &e_), TY_ENOENT,
               "user_update: no user named \"carol\"");

    /* refused arguments change nothing */
    assert_err(store_user_create(s, &(struct store_user){"", PW_A, false, NULL}, NULL, 0, &e_),
               TY_EINVAL, "user_create: name is missing");
    assert_err(store_user_create(s, &(struct store_user){"x", NULL, false, NULL}, NULL, 0, &e_),
               TY_EINVAL, "user_create: password_hash is missing");
    json_t *bad = jload("[{\"domain\": \"a\", \"role\": \"boss\"}]");
    assert_err(store_user_create(s, &(struct store_user){"x", PW_A, false, bad}, NULL, 0, &e_),
               TY_EINVAL, "user_create: grants[0].role is not viewer, operator or admin");
    json_decref(bad);
    bad = jload("[{\"domain\": \"a\", \"role\": \"viewer\"}, {\"domain\": \"a\", \"role\": "
                "\"admin\"}]");
    c = (struct store_user_change){.must_change = -1, .grants = bad};
    assert_int_equal(store_user_update(s, "bob", &c, 0, &err), TY_EINVAL);
    assert_string_equal(err.field, "grants[1].domain");
    json_decref(bad);
    bad = jload("{\"domain\": \"a\"}");
    c = (struct store_user_change){.must_change = -1, .grants = bad};
    assert_err(store_user_update(s, "bob", &c, 0, &e_), TY_EINVAL, "grants is not an array");
    json_decref(bad);
    c = (struct store_user_change){.must_change = 2};
    assert_err(store_user_update(s, "bob", &c, 0, &e_), TY_EINVAL, "must_change 2");
    c = (struct store_user_change){.password_hash = PW_A, .must_change = -1, .keep_session = "x"};
    assert_err(store_user_update(s, "bob", &c, 0, &e_), TY_EINVAL, "64 digits");
    assert_int_equal(db_int(f, "SELECT count(*) FROM users WHERE name = 'x'"), 0);

    /* a reader reads, never writes */
    assert_ok(fx_open(f, true, &r, &e_));
    assert_ok(store_user_get(r, "alice", &o, &e_));
    json_decref(o);
    assert_err(store_user_create(r, &alice, NULL, 0, &e_), TY_EINVAL, "is open read-only");
    c = (struct store_user_change){.must_change = 1};
    assert_err(store_user_update(r, "alice", &c, 0, &e_), TY_EINVAL, "is open read-only");
    assert_err(store_user_delete(r, "alice", &e_), TY_EINVAL, "is open read-only");
    assert_err(store_user_signin(r, "alice", true, 0, 5, 1000, NULL, &e_), TY_EINVAL,
               "is open read-only");
    store_close(r);

    /* delete: the user, its sessions and grants; others stay */
    g2 = jload("[{\"domain\": \"x\", \"role\": \"viewer\"}]");
    assert_ok(store_grants_set(s, STORE_P_TOKEN, "alice", g2, &e_)); /* a token of that name */
    c = (struct store_user_change){.must_change = -1, .grants = g2};
    assert_ok(store_user_update(s, "alice", &c, 0, &e_));
    json_decref(g2);
    assert_ok(store_user_delete(s, "alice", &e_));
    assert_err(store_user_delete(s, "alice", &e_), TY_ENOENT, "user_delete: no user named");
    assert_err(store_session_get(s, SESS_3, &o, &e_), TY_ENOENT, "no such session");
    assert_int_equal(db_int(f, "SELECT count(*) FROM grants WHERE kind = 'user' AND name = "
                               "'alice'"),
                     0);
    assert_ok(store_grants_get(s, STORE_P_TOKEN, "alice", &o, &e_));
    assert_int_equal(json_array_size(o), 1);
    json_decref(o);
    assert_ok(store_user_list(s, &o, &e_));
    assert_int_equal(json_array_size(o), 1);
    json_decref(o);
}

static void test_user_signin(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct store_user u = {"bob", PW_A, false, NULL};
    assert_ok(store_user_create(s, &u, NULL, 0, &e_));
    const int64_t t0 = 1800000000000, lock = 900000;
    json_t *o = NULL;
    for (int i = 1; i <= 4; i++) {
        assert_ok(store_user_signin(s, "bob", false, t0 + i, 5, lock, &o, &e_));
        assert_int_equal(jint(o, "failed_attempts"), i);
        assert_true(json_is_null(json_object_get(o, "locked_until_ms")));
        assert_null(json_object_get(o, "password_hash"));
        json_decref(o);
    }
    /* the fifth in a row locks until 15 minutes after it, and counting starts again */
    assert_ok(store_user_signin(s, "bob", false, t0 + 5, 5, lock, &o, &e_));
    assert_int_equal(jint(o, "failed_attempts"), 0);
    assert_int_equal(jint(o, "locked_until_ms"), t0 + 5 + lock);
    json_decref(o);
    assert_ok(store_user_signin(s, "bob", false, t0 + 6, 5, lock, NULL, &e_));
    assert_int_equal(db_int(f, "SELECT failed_attempts FROM users"), 1);
    assert_int_equal(db_int(f, "SELECT locked_until_ms FROM users"), t0 + 5 + lock);
    /* a good one: no failures, no lock, the time of it */
    assert_ok(store_user_signin(s, "bob", true, t0 + 7, 5, lock, &o, &e_));
    assert_int_equal(jint(o, "failed_attempts"), 0);
    assert_true(json_is_null(json_object_get(o, "locked_until_ms")));
    assert_int_equal(jint(o, "last_signin_at_ms"), t0 + 7);
    json_decref(o);
    /* unlock by an admin */
    for (int i = 0; i < 5; i++)
        assert_ok(store_user_signin(s, "bob", false, t0 + 10, 5, lock, NULL, &e_));
    assert_int_equal(db_int(f, "SELECT locked_until_ms FROM users"), t0 + 10 + lock);
    struct store_user_change c = {.must_change = -1, .unlock = true};
    assert_ok(store_user_update(s, "bob", &c, 0, &e_));
    assert_ok(store_user_get(s, "bob", &o, &e_));
    assert_true(json_is_null(json_object_get(o, "locked_until_ms")));
    json_decref(o);
    assert_err(store_user_signin(s, "carol", false, t0, 5, lock, &o, &e_), TY_ENOENT,
               "user_signin: no user named \"carol\"");
    assert_err(store_user_signin(s, "bob", false, t0, 0, lock, &o, &e_), TY_EINVAL,
               "max_failures must be 1 or more");
}

/* Two connections counting one user's failures at once lose none. */
struct signin_racer {
    struct fx *f;
    int rc;
};

#define SIGNIN_RACE 25

static void *signin_racer(void *p)
{
    struct signin_racer *x = p;
    struct store *s;
    struct ty_err err;
    x->rc = fx_open(x->f, false, &s, &err);
    for (int i = 0; x->rc == 0 && i < SIGNIN_RACE; i++)
        x->rc = store_user_signin(s, "bob", false, 0, 1000, 1000, NULL, &err);
    if (x->rc == 0)
        store_close(s);
    return NULL;
}

static void test_user_signin_race(void **state)
{
    struct fx *f = *state;
    struct store_user u = {"bob", PW_A, false, NULL};
    assert_ok(store_user_create(f->s, &u, NULL, 0, &e_));
    pthread_t t[2];
    struct signin_racer x[2] = {{f, -1}, {f, -1}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, signin_racer, &x[i]), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(x[i].rc, 0);
    }
    assert_int_equal(db_int(f, "SELECT failed_attempts FROM users"), 2 * SIGNIN_RACE);
}

static void test_sessions(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct store_user u = {"bob", PW_A, false, NULL};
    assert_ok(store_user_create(s, &u, NULL, 0, &e_));
    const int64_t t0 = 1800000000000;
    session_put_at(s, SESS_1, "bob", t0, t0 + 1000, 0);
    json_t *o;
    assert_ok(store_session_get(s, SESS_1, &o, &e_));
    assert_json(o, "{\"user\": \"bob\", \"csrf\": \"csrf-" SESS_1 "\", \"created_at_ms\":"
                   " 1800000000000, \"expires_at_ms\": 1800000001000, \"last_seen_ms\":"
                   " 1800000000000}");
    json_decref(o);
    /* the id is never stored, only its hash; either case finds it */
    assert_int_equal(db_int(f, "SELECT count(*) FROM sessions WHERE hash = '" SESS_1 "'"), 1);
    assert_ok(store_session_touch(s, SESS_1, t0 + 500, &e_));
    assert_ok(store_session_get(s, SESS_1, &o, &e_));
    assert_int_equal(jint(o, "last_seen_ms"), t0 + 500);
    json_decref(o);
    assert_ok(store_session_touch(s, SESS_2, t0, &e_)); /* gone: no error */

    struct ty_err err;
    struct store_session ss = {SESS_1, "bob", "c", t0, t0 + 5, 0};
    assert_int_equal(store_session_put(s, &ss, &err), TY_EEXIST);
    assert_string_equal(err.field, "hash");
    ss.hash = SESS_2;
    ss.user = "carol";
    assert_int_equal(store_session_put(s, &ss, &err), TY_ENOENT);
    assert_string_equal(err.field, "user");
    assert_string_equal(err.msg, "session_put: no user named \"carol\"");
    ss.user = "bob";
    ss.expires_at_ms = t0;
    assert_err(store_session_put(s, &ss, &e_), TY_EINVAL, "expires_at_ms must come after");
    ss.expires_at_ms = t0 + 5;
    ss.csrf = "";
    assert_err(store_session_put(s, &ss, &e_), TY_EINVAL, "csrf is missing");
    ss.csrf = "c";
    ss.hash = "not-a-hash";
    assert_err(store_session_put(s, &ss, &e_), TY_EINVAL, "64 digits");
    assert_err(store_session_get(s, "zz", &o, &e_), TY_EINVAL, "64 digits");
    assert_int_equal(db_int(f, "SELECT count(*) FROM sessions"), 1);

    /* a new session clears those past their end and those idle too long */
    session_put_at(s, SESS_2, "bob", t0 + 2000, t0 + 9000, 0); /* SESS_1 ended at t0 + 1000 */
    assert_err(store_session_get(s, SESS_1, &o, &e_), TY_ENOENT, "no such session");
    session_put_at(s, SESS_3, "bob", t0 + 3000, t0 + 9000, t0 + 2500); /* SESS_2 seen at 2000 */
    assert_err(store_session_get(s, SESS_2, &o, &e_), TY_ENOENT, "no such session");
    assert_ok(store_session_get(s, SESS_3, &o, &e_));
    json_decref(o);

    assert_ok(store_session_delete(s, SESS_3, &e_));
    assert_err(store_session_delete(s, SESS_3, &e_), TY_ENOENT, "session_delete: no such session");
    struct store *r;
    assert_ok(fx_open(f, true, &r, &e_));
    assert_err(store_session_touch(r, SESS_3, 0, &e_), TY_EINVAL, "is open read-only");
    assert_err(store_session_delete(r, SESS_3, &e_), TY_EINVAL, "is open read-only");
    store_close(r);
}

static void test_grants(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    json_t *g = jload("[{\"domain\": \"ops\", \"role\": \"viewer\"},"
                      " {\"domain\": \"finance/eu\", \"role\": \"operator\"},"
                      " {\"domain\": \"\", \"role\": \"admin\"}]");
    assert_ok(store_grants_set(s, STORE_P_TOKEN, "ci", g, &e_));
    json_decref(g);
    json_t *o;
    assert_ok(store_grants_get(s, STORE_P_TOKEN, "ci", &o, &e_));
    assert_json(o, "[{\"domain\": \"\", \"role\": \"admin\"},"
                   " {\"domain\": \"finance/eu\", \"role\": \"operator\"},"
                   " {\"domain\": \"ops\", \"role\": \"viewer\"}]");
    json_decref(o);
    assert_ok(store_grants_get(s, STORE_P_USER, "ci", &o, &e_)); /* kinds apart */
    assert_json(o, "[]");
    json_decref(o);
    g = jload("[{\"domain\": \"hr\", \"role\": \"viewer\"}]");
    assert_ok(store_grants_set(s, STORE_P_TOKEN, "ci", g, &e_));
    json_decref(g);
    assert_ok(store_grants_get(s, STORE_P_TOKEN, "ci", &o, &e_));
    assert_json(o, "[{\"domain\": \"hr\", \"role\": \"viewer\"}]");
    json_decref(o);
    assert_err(store_grants_set(s, (enum store_principal)7, "ci", g, &e_), TY_EINVAL,
               "grants_set: 7 is not a principal kind");
    assert_err(store_grants_set(s, STORE_P_TOKEN, "", g, &e_), TY_EINVAL, "name is missing");
    assert_err(store_grants_set(s, STORE_P_TOKEN, "ci", NULL, &e_), TY_EINVAL,
               "grants is not an array");
    g = json_array();
    for (int i = 0; i < 65; i++) {
        char d[16];
        snprintf(d, sizeof d, "d%d", i);
        json_array_append_new(g, json_pack("{s:s, s:s}", "domain", d, "role", "viewer"));
    }
    assert_err(store_grants_set(s, STORE_P_TOKEN, "ci", g, &e_), TY_EINVAL,
               "65 grants; at most 64");
    json_array_remove(g, 64);
    assert_ok(store_grants_set(s, STORE_P_TOKEN, "ci", g, &e_));
    json_decref(g);
    g = jload("[{\"role\": \"viewer\"}]");
    assert_err(store_grants_set(s, STORE_P_TOKEN, "ci", g, &e_), TY_EINVAL,
               "grants[0].domain is missing");
    json_decref(g);
    assert_int_equal(db_int(f, "SELECT count(*) FROM grants"), 64);
    /* in a batch with the token it belongs to: both or neither */
    assert_ok(store_begin(s, &e_));
    assert_ok(store_token_put(s, "batch", HASH_B, 0, NULL, &e_));
    g = jload("[{\"domain\": \"\", \"role\": \"viewer\"}]");
    assert_ok(store_grants_set(s, STORE_P_TOKEN, "batch", g, &e_));
    json_decref(g);
    store_rollback(s);
    assert_int_equal(db_int(f, "SELECT count(*) FROM grants WHERE name = 'batch'"), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM tokens WHERE name = 'batch'"), 0);
}

/* tests/fixtures/store-v4.db, written by a real schema 4 server: its tokens become admins of
 * the whole tree, revoked ones too; no user is made (the server makes the first one). */
static void test_migrate_v4(void **state)
{
    struct fx *f = *state;
    char fixture[512], manifest_path[512], path[192], bak[320];
    fixture_path(fixture, sizeof fixture, "store-v4.db");
    fixture_path(manifest_path, sizeof manifest_path, "store-v4.json");
    json_t *manifest = json_load_file(manifest_path, 0, NULL);
    assert_non_null(manifest);
    snprintf(path, sizeof path, "%s/v4.db", f->dir);
    copy_file(fixture, path);
    assert_int_equal(raw_int(path, "SELECT value FROM meta WHERE key = 'schema_version'"), 4);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'users'"), 0);

    struct store *s;
    assert_err(store_open_sqlite(path, true, &s, &e_), TY_EFORMAT,
               "has schema version 4 and needs migrating to 5");
    assert_ok(store_open_sqlite(path, false, &s, &e_));
    assert_int_equal(count_prefixed(f->dir, "v4.db.v4-", bak, sizeof bak), 1);
    assert_int_equal(raw_int(bak, "SELECT value FROM meta WHERE key = 'schema_version'"), 4);
    char *v;
    assert_ok(store_meta_get(s, "schema_version", &v, &e_));
    assert_string_equal(v, "5");
    free(v);

    /* every token of the fixture is an admin of the whole tree */
    json_t *tokens = json_object_get(manifest, "tokens");
    assert_int_equal(json_object_size(tokens), 3);
    const char *name;
    json_t *t, *o;
    json_object_foreach(tokens, name, t)
    {
        assert_ok(store_grants_get(s, STORE_P_TOKEN, name, &o, &e_));
        assert_json(o, "[{\"domain\": \"\", \"role\": \"admin\"}]");
        json_decref(o);
    }
    assert_int_equal(raw_int(path, "SELECT count(*) FROM grants"), 3);
    assert_ok(store_token_list(s, &o, &e_));
    assert_int_equal(json_array_size(o), 3);
    json_decref(o);
    /* no user yet; the tables work */
    assert_ok(store_user_list(s, &o, &e_));
    assert_json(o, "[]");
    json_decref(o);
    struct store_user u = {"admin", PW_A, true, NULL};
    assert_ok(store_user_create(s, &u, NULL, 0, &e_));
    session_put_at(s, SESS_1, "admin", 1800000000000, 1900000000000, 0);
    /* what was there is there */
    json_t *jobs = json_object_get(manifest, "jobs");
    json_object_foreach(jobs, name, t)
    {
        char *text;
        int64_t ver;
        assert_ok(store_obj_get(s, STORE_JOB, name, &text, &ver, &e_));
        json_t *job = json_loads(text, 0, NULL);
        free(text);
        assert_string_equal(jstr(job, "domain"), json_string_value(t));
        json_decref(job);
    }
    assert_int_equal(raw_int(path, "SELECT count(*) FROM runs"), jint(manifest, "runs"));
    store_close(s);
    check_integrity(path);
    json_decref(manifest);
}

/* On PostgreSQL: a version 4 database with tokens becomes version 5, its tokens admins; a
 * step that fails leaves version 4. */
static void test_pg_migrate_v5(void **state)
{
    struct fx *f = *state;
    assert_ok(store_token_put(f->s, "ci", HASH_A, 0, NULL, &e_));
    assert_ok(store_token_put(f->s, "old", HASH_B, 0, NULL, &e_));
    assert_ok(store_token_revoke(f->s, "old", 0, &e_));
    store_close(f->s);
    f->s = NULL;
    db_exec(f, "DROP TABLE users, sessions, grants;"
               " UPDATE meta SET value = '4' WHERE key = 'schema_version'");
    struct store *s = NULL;
    assert_err(fx_open(f, true, &s, &e_), TY_EFORMAT,
               "has schema version 4 and needs migrating to 5; open it read-write first");
    db_exec(f, "CREATE TABLE sessions (x int)");
    assert_err(fx_open(f, false, &s, &e_), TY_EFORMAT, "open: migrate schema 4 to 5");
    assert_null(s);
    assert_int_equal(db_int(f, "SELECT value FROM meta WHERE key = 'schema_version'"), 4);
    assert_int_equal(db_int(f, "SELECT count(*) FROM pg_class WHERE relname = 'users'"), 0);
    db_exec(f, "DROP TABLE sessions");
    assert_ok(fx_open(f, false, &s, &e_));
    f->s = s;
    assert_int_equal(db_int(f, "SELECT value FROM meta WHERE key = 'schema_version'"), 5);
    json_t *o;
    assert_ok(store_grants_get(s, STORE_P_TOKEN, "ci", &o, &e_));
    assert_json(o, "[{\"domain\": \"\", \"role\": \"admin\"}]");
    json_decref(o);
    assert_ok(store_grants_get(s, STORE_P_TOKEN, "old", &o, &e_));
    assert_json(o, "[{\"domain\": \"\", \"role\": \"admin\"}]");
    json_decref(o);
    struct store_user u = {"admin", PW_A, true, NULL};
    assert_ok(store_user_create(s, &u, NULL, 0, &e_));
    struct store *r;
    assert_ok(fx_open(f, true, &r, &e_));
    assert_ok(store_user_get(r, "admin", &o, &e_));
    json_decref(o);
    store_close(r);
}

/* The tests of both stores, of SQLite only, and of PostgreSQL only. */
#define BOTH_TESTS(X)                                                                              \
    X(test_obj_versions)                                                                           \
    X(test_obj_errors)                                                                             \
    X(test_obj_list)                                                                               \
    X(test_job_count)                                                                              \
    X(test_obj_page)                                                                               \
    X(test_obj_page_moving)                                                                        \
    X(test_obj_page_errors)                                                                        \
    X(test_obj_scan)                                                                               \
    X(test_calendar_users)                                                                         \
    X(test_run_lifecycle)                                                                          \
    X(test_run_status_order)                                                                       \
    X(test_run_conflicts)                                                                          \
    X(test_skips)                                                                                  \
    X(test_unfinished_shards_last_fires)                                                           \
    X(test_executor_last_fires)                                                                    \
    X(test_executor_last_fires_per_shard)                                                          \
    X(test_skips_last)                                                                             \
    X(test_history_pages)                                                                          \
    X(test_stats)                                                                                  \
    X(test_prune)                                                                                  \
    X(test_alerts)                                                                                 \
    X(test_meta)                                                                                   \
    X(test_batch)                                                                                  \
    X(test_writer_and_reader)                                                                      \
    X(test_obj_history)                                                                            \
    X(test_tokens)                                                                                 \
    X(test_secrets)                                                                                \
    X(test_jobs_get_many)                                                                          \
    X(test_jobs_get_many_1000)                                                                     \
    X(test_rows_copy)                                                                              \
    X(test_rows_errors)                                                                            \
    X(test_users)                                                                                  \
    X(test_user_signin)                                                                            \
    X(test_user_signin_race)                                                                       \
    X(test_sessions)                                                                               \
    X(test_grants)

#define SQLITE_TESTS(X)                                                                            \
    X(test_open_creates_schema)                                                                    \
    X(test_open_refuses)                                                                           \
    X(test_obj_page_cost)                                                                          \
    X(test_executor_last_fires_cost)                                                               \
    X(test_jobs_get_many_cost)                                                                     \
    X(test_busy)                                                                                   \
    X(test_disk_full_tmpfs)                                                                        \
    X(test_disk_full_max_page_count)                                                               \
    X(test_backup)                                                                                 \
    X(test_backup_disk_full)                                                                       \
    X(test_backup_under_load)                                                                      \
    X(test_migrate_v1)                                                                             \
    X(test_migrate_v2)                                                                             \
    X(test_migrate_v3)                                                                             \
    X(test_migrate_v4)                                                                             \
    X(test_migrate_fails_cleanly)                                                                  \
    X(test_check_file)

#define PG_TESTS(X)                                                                                \
    X(test_pg_url)                                                                                 \
    X(test_pg_schema)                                                                              \
    X(test_pg_reconnect)                                                                           \
    X(test_pg_partitions)                                                                          \
    X(test_pg_migrate_v4)                                                                          \
    X(test_pg_migrate_v5)                                                                          \
    X(test_pg_obj_race)                                                                            \
    X(test_pg_fire_race)                                                                           \
    X(test_pg_count_race)                                                                          \
    X(test_pg_batch_deadlock)                                                                      \
    X(test_pg_call_deadlock)

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown),

/* `test_store`: SQLite.  `test_store pg`: PostgreSQL, at TETHYS_TEST_PG_URL. */
int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "pg") == 0) {
        const char *url = getenv("TETHYS_TEST_PG_URL");
        if (url == NULL || *url == '\0') {
            fprintf(stderr, "test_store pg: TETHYS_TEST_PG_URL is not set (run it through "
                            "tests/pg/with-pg.sh)\n");
            return 1;
        }
        pg_mode = true;
        snprintf(pg_admin_url, sizeof pg_admin_url, "%s", url);
        const struct CMUnitTest tests[] = {PG_TESTS(T) BOTH_TESTS(T)};
        return cmocka_run_group_tests_name("store (PostgreSQL)", tests, NULL, NULL);
    }
    if (argc > 1) {
        fprintf(stderr, "usage: test_store [pg]\n");
        return 2;
    }
    const struct CMUnitTest tests[] = {SQLITE_TESTS(T) BOTH_TESTS(T)};
    return cmocka_run_group_tests_name("store (SQLite)", tests, NULL, NULL);
}
