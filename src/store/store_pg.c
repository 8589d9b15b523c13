/*
 * store_pg.c - the store (store.h) on PostgreSQL: the connection, the schema, errors,
 * batches, and the configuration side (objects and their versions, the job index,
 * calendars in use, alerts, settings, tokens, secrets).  History - runs, skipped fires,
 * their day partitions, pages, statistics and retention - is store_pg_runs.c.
 *
 * One `struct pg` is one libpq connection, used by one thread at a time, like a SQLite
 * connection; several servers may write one database at once, so nothing here relies on
 * being the only writer.  Config writes use optimistic concurrency in the database itself:
 * an update or delete names the version it read (`... WHERE kind = $1 AND name = $2 AND
 * version = $3`) and a create is an INSERT that does nothing on conflict, so of two
 * connections changing one object at once exactly one changes it; the other reads the
 * object again and answers from what it finds (TY_ECONFLICT, TY_EEXIST, or for
 * base_version 0 simply the next version).  The job counts per domain subtree are rows
 * changed in the transaction of the job's change; the row locks serialise concurrent
 * writers, and each call changes its count rows in one order (sorted by domain) so two
 * calls never wait for each other in a cycle.  Deadlocks that remain (between two batches,
 * whose order is their callers') and serialization failures are retried from the start
 * when the call is its own transaction, and end the batch otherwise (TY_EUNAVAIL: the
 * caller rolls back and retries the batch).
 *
 * PostgreSQL aborts a whole transaction on any error, where SQLite undoes one statement.
 * So a call inside a batch must not fail in the database for an ordinary reason: every
 * outcome store.h lists (exists, conflict, not found, invalid JSON) is decided in C or by
 * statements that cannot fail for it (`ON CONFLICT DO NOTHING`, conditional updates);
 * what remains - the database gone, a full disk, a deadlock - ends the batch, which then
 * refuses further writes until rollback, as the SQLite store does when SQLite drops a
 * transaction.  No savepoint is taken per call: thousands of subtransactions in one batch
 * would overflow each backend's subtransaction cache and slow every other session.
 *
 * The connection: the URL is a libpq URI; the password comes only from PGPASSWORD or
 * ~/.pgpass (libpq reads both), and a URL that carries one is refused rather than kept in
 * the process's memory and every error path.  connect_timeout (5 s unless the URL says
 * otherwise) bounds a connect, TCP keepalives and tcp_user_timeout notice a server that
 * died without closing the socket, and no statement_timeout is set (statistics over years
 * of history may legitimately take seconds).  A lost connection fails the call that meets
 * it with TY_EUNAVAIL; before the next call outside a transaction the connection is
 * checked (a poll of its socket, free) and re-established (PQreset), its session settings
 * applied again and its prepared statements forgotten, so a server outlives PostgreSQL
 * being stopped and started.
 *
 * Statements are prepared once per connection on first use (pg__exec) and executed with
 * text parameters; bytes (a run's output) go as binary.  Text going in is made valid
 * UTF-8 first (ill-formed bytes become U+FFFD, as they would on the way out of SQLite),
 * since PostgreSQL refuses anything else.  Names, ids and domains are `COLLATE "C"`, so
 * ordering and prefix ranges are bytewise, as strcmp and SQLite's BINARY.
 *
 * Schema versions follow SQLite's numbering (a version names the same logical content in
 * both), so a PostgreSQL store starts at 3.  The schema is created, or an older one
 * migrated (migrations[], the steps after 3), in one transaction under
 * pg_advisory_xact_lock, so two servers starting on an empty database at once create it
 * once; a table comment on meta marks the database as Tethys's.  Unlike SQLite's store,
 * no copy is made before a migration: PostgreSQL is backed up with its own tools.
 * docs/internals/store.md explains the tables, partitions and indexes.
 */
#include "store.h"
#include "store_common.h"
#include "store_pg_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/domain.h"
#include "../core/strbuf.h"
#include "../core/utf8.h"

#define PG_SCHEMA_FIRST 3          /* the first version a PostgreSQL store had */
#define PG_SCHEMA_LOCK  1413829721 /* pg_advisory_xact_lock key: "TETY" */
#define PG_JOBS_LOCK    1413829706 /* the jobs' counts: "TETJ" */
#define PG_MARK         "tethys store"
#define PG_TRIES        5   /* attempts of a call after deadlocks or serialization failures */
#define PG_SCAN_FETCH   256 /* rows per FETCH of a scan */

/* ---------------------------------------------------------------------------------------
 * Schema version 3: the configuration tables.  The history tables are store_pg_runs.c's
 * (pg__runs_schema); both run in one transaction.  Names and ids are COLLATE "C"
 * (bytewise order and ranges); enumerations are text names with no CHECK, as in SQLite.
 * A config object's JSON is the `json` type, which keeps the text exactly as given.
 */
/* clang-format off */
static const char schema_config[] =
    "CREATE TABLE meta ("
    "  key   text COLLATE \"C\" PRIMARY KEY,"
    "  value text NOT NULL);"
    "COMMENT ON TABLE meta IS '" PG_MARK "';"

    "CREATE TABLE objects ("
    "  kind          text COLLATE \"C\" NOT NULL,"
    "  name          text COLLATE \"C\" NOT NULL,"
    "  version       bigint NOT NULL CHECK (version > 0),"
    "  json          json NOT NULL CHECK (json_typeof(json) = 'object'),"
    "  domain        text COLLATE \"C\","
    "  created_at_ms bigint NOT NULL,"
    "  updated_at_ms bigint NOT NULL,"
    "  updated_by    text,"
    "  PRIMARY KEY (kind, name));"
    "CREATE INDEX objects_domain ON objects (kind, domain);"

    "CREATE TABLE object_versions ("
    "  kind    text COLLATE \"C\" NOT NULL,"
    "  name    text COLLATE \"C\" NOT NULL,"
    "  version bigint NOT NULL,"
    "  op      text NOT NULL,"
    "  json    json,"
    "  at_ms   bigint NOT NULL,"
    "  who     text,"
    "  PRIMARY KEY (kind, name, version));"
    "CREATE INDEX object_versions_at ON object_versions (at_ms);"

    "CREATE TABLE alerts ("
    "  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  key               text COLLATE \"C\" NOT NULL,"
    "  kind              text NOT NULL,"
    "  job               text,"
    "  domain            text,"
    "  job_level         integer NOT NULL,"
    "  domain_level      integer NOT NULL,"
    "  shard             bigint NOT NULL,"
    "  scheduled_at      bigint NOT NULL,"
    "  raised_at_ms      bigint NOT NULL,"
    "  last_raised_at_ms bigint NOT NULL,"
    "  raises            bigint NOT NULL DEFAULT 1,"
    "  cleared_at_ms     bigint,"
    "  reason            text NOT NULL,"
    "  detail            text);"
    "CREATE UNIQUE INDEX alerts_open_key ON alerts (key) WHERE cleared_at_ms IS NULL;"
    "CREATE INDEX alerts_cleared ON alerts (cleared_at_ms) WHERE cleared_at_ms IS NOT NULL;"

    "CREATE TABLE tokens ("
    "  name            text COLLATE \"C\" PRIMARY KEY,"
    "  hash            text COLLATE \"C\" NOT NULL UNIQUE,"
    "  created_at_ms   bigint NOT NULL,"
    "  expires_at_ms   bigint,"
    "  revoked_at_ms   bigint,"
    "  last_used_at_ms bigint,"
    "  created_by      text);"

    "CREATE TABLE secrets ("
    "  job   text COLLATE \"C\" NOT NULL,"
    "  name  text COLLATE \"C\" NOT NULL,"
    "  value text NOT NULL,"
    "  PRIMARY KEY (job, name));"

    /* the job index: a row per job and per domain of its chain, and a count per subtree
     * (a row only while there are some; 0 only for the moment a call takes it away) */
    "CREATE TABLE job_domains ("
    "  domain  text COLLATE \"C\" NOT NULL,"
    "  enabled integer NOT NULL,"
    "  job     text COLLATE \"C\" NOT NULL,"
    "  PRIMARY KEY (domain, enabled, job));"
    "CREATE TABLE job_counts ("
    "  domain text COLLATE \"C\" PRIMARY KEY,"
    "  jobs   bigint NOT NULL CHECK (jobs >= 0));";

/*
 * The steps after version 3, as store_sqlite.c's migrations[] (the same numbers, the same
 * logical content): migrations[i] takes a database from version PG_SCHEMA_FIRST + i to the
 * next.  A new database gets version 3 and then every step, so it is the same whether it
 * was made now or migrated; a new version appends a step and never edits an old one.
 */
static const char *const migrations[] = {
    /* 3 -> 4: executor_last_fires, one executor's runs since a time as one range.  An index
     * on the partitioned parent is built on every partition there is, in this transaction
     * (writes to runs wait for it), and ATTACH gives it to every partition made later. */
    "CREATE INDEX runs_executor ON runs (executor, scheduled_at);",

    /* 4 -> 5: users, their sessions, and the grants of users and tokens (store_pg_users.c;
     * store_sqlite.c's migrations[4] says what each column means).  Every token there is
     * keeps the whole API it had: admin of the whole tree. */
    "CREATE TABLE users ("
    "  name                   text COLLATE \"C\" PRIMARY KEY,"
    "  password_hash          text NOT NULL,"
    "  must_change_password   bigint NOT NULL DEFAULT 0,"
    "  failed_attempts        bigint NOT NULL DEFAULT 0,"
    "  locked_until_ms        bigint,"
    "  created_at_ms          bigint NOT NULL,"
    "  created_by             text,"
    "  updated_at_ms          bigint NOT NULL,"
    "  password_changed_at_ms bigint NOT NULL,"
    "  last_signin_at_ms      bigint);"
    "CREATE TABLE sessions ("
    "  hash          text COLLATE \"C\" PRIMARY KEY,"
    "  user_name     text COLLATE \"C\" NOT NULL,"
    "  csrf          text NOT NULL,"
    "  created_at_ms bigint NOT NULL,"
    "  expires_at_ms bigint NOT NULL,"
    "  last_seen_ms  bigint NOT NULL);"
    "CREATE INDEX sessions_user ON sessions (user_name);"
    "CREATE INDEX sessions_expires ON sessions (expires_at_ms);"
    "CREATE INDEX sessions_seen ON sessions (last_seen_ms);"
    "CREATE TABLE grants ("
    "  kind   text COLLATE \"C\" NOT NULL,"
    "  name   text COLLATE \"C\" NOT NULL,"
    "  domain text COLLATE \"C\" NOT NULL,"
    "  role   text NOT NULL,"
    "  PRIMARY KEY (kind, name, domain));"
    "INSERT INTO grants (kind, name, domain, role)"
    " SELECT 'token', name, '', 'admin' FROM tokens;",
};
/* clang-format on */

#define PG_SCHEMA_VERSION (PG_SCHEMA_FIRST + (int)(sizeof migrations / sizeof migrations[0]))

/* The tables a Tethys schema has: an empty database must hold none of them. */
static const char our_tables[] = "'meta', 'objects', 'object_versions', 'alerts', 'tokens',"
                                 " 'secrets', 'job_domains', 'job_counts', 'runs', 'skips',"
                                 " 'run_keys', 'skip_keys', 'fire_days', 'users', 'sessions',"
                                 " 'grants'";

/* ---------------------------------------------------------------------------------------
 * Fixed statements.
 */

#define TOKEN_COLS "name, created_at_ms, expires_at_ms, revoked_at_ms, last_used_at_ms, created_by"

/* Where a stored object lies, for the job index: its domain ('' when none) and whether it
 * is enabled (only "enabled": false disables), as store_sqlite.c's OBJ_PLACE_COLS. */
#define OBJ_PLACE_COLS                                                                             \
    "coalesce(domain, ''), CASE WHEN json_typeof(json -> 'enabled') = 'boolean'"                   \
    " AND (json ->> 'enabled') = 'false' THEN 0 ELSE 1 END"

/* The domain column of an object: a job's "domain" ('' when none), a domain's own path. */
#define OBJ_DOMAIN_EXPR                                                                            \
    "CASE $1 WHEN 'job' THEN coalesce($4::json ->> 'domain', '') WHEN 'domain' THEN $2 END"

static const char *const cfg_sql[PG_C_COUNT] = {
    [PG_C_OBJ_CUR] = "SELECT version, json FROM objects WHERE kind = $1 AND name = $2",
    [PG_C_OBJ_STATE] = "SELECT version, json::text = $3, " OBJ_PLACE_COLS " FROM objects"
                       " WHERE kind = $1 AND name = $2",
    [PG_C_OBJ_LASTVER] = "SELECT coalesce(max(version), 0) FROM object_versions"
                         " WHERE kind = $1 AND name = $2",
    [PG_C_OBJ_INSERT] = "INSERT INTO objects (kind, name, version, json, domain, created_at_ms,"
                        " updated_at_ms, updated_by)"
                        " VALUES ($1, $2, $3, $4::json, " OBJ_DOMAIN_EXPR ", $5, $5, $6)"
                        " ON CONFLICT (kind, name) DO NOTHING RETURNING " OBJ_PLACE_COLS,
    [PG_C_OBJ_UPDATE] = "UPDATE objects SET version = $3, json = $4::json,"
                        " domain = " OBJ_DOMAIN_EXPR ", updated_at_ms = $5, updated_by = $6"
                        " WHERE kind = $1 AND name = $2 AND version = $7"
                        " RETURNING " OBJ_PLACE_COLS,
    [PG_C_OBJ_DELETE] = "DELETE FROM objects WHERE kind = $1 AND name = $2 AND version = $3",
    [PG_C_OBJ_VERSION] = "INSERT INTO object_versions (kind, name, version, op, json, at_ms, who)"
                         " VALUES ($1, $2, $3, $4, $5::json, $6, $7)",
    [PG_C_OBJ_LIST] = "SELECT name, version, updated_at_ms, updated_by, json FROM objects"
                      " WHERE kind = $1 ORDER BY name",
    [PG_C_OBJ_LIST_DOMAIN] =
        "SELECT name, version, updated_at_ms, updated_by, json FROM objects"
        " WHERE kind = $1 AND " STORE__DOMAIN_RANGE("domain", "$2::text") " ORDER BY name",
    [PG_C_COUNT_ADD] = "INSERT INTO job_counts (domain, jobs) VALUES ($1, 1)"
                       " ON CONFLICT (domain) DO UPDATE SET jobs = job_counts.jobs + 1",
    /* unconditional, so it takes the row lock and counts from the latest committed value */
    [PG_C_COUNT_LESS] = "UPDATE job_counts SET jobs = jobs - 1 WHERE domain = $1 RETURNING jobs",
    [PG_C_COUNT_DROP] = "DELETE FROM job_counts WHERE domain = $1 AND jobs = 0",
    [PG_C_PLACE_ADD] = "INSERT INTO job_domains (domain, enabled, job) VALUES ($1, $2, $3)",
    [PG_C_PLACE_DROP] = "DELETE FROM job_domains WHERE domain = $1 AND enabled = $2 AND job = $3",
    [PG_C_JOB_COUNT] = "SELECT jobs FROM job_counts WHERE domain = $1",
    [PG_C_JOBS_LOCK] = "SELECT pg_advisory_xact_lock(1413829706)", /* PG_JOBS_LOCK */
    /* a job uses a calendar when a string in its calendars.skip or .only array names it;
     * the CASEs keep json_each and json_array_elements away from other shapes */
    [PG_C_CALENDAR_USERS] =
        "SELECT count(*), min(o.name) FROM objects o WHERE o.kind = 'job' AND EXISTS ("
        " SELECT 1 FROM json_each(CASE WHEN json_typeof(o.json -> 'calendars') = 'object'"
        "  THEN o.json -> 'calendars' END) AS l(key, value),"
        "  json_array_elements(CASE WHEN json_typeof(l.value) = 'array' THEN l.value END)"
        "  AS c(v)"
        " WHERE l.key IN ('skip', 'only') AND json_typeof(c.v) = 'string'"
        " AND (c.v #>> '{}') = $1)",
    [PG_C_ALERT_RAISE] =
        "INSERT INTO alerts (key, kind, job, domain, job_level, domain_level, shard,"
        " scheduled_at, raised_at_ms, last_raised_at_ms, reason, detail)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11)"
        " ON CONFLICT (key) WHERE cleared_at_ms IS NULL DO UPDATE SET"
        " reason = excluded.reason, detail = excluded.detail, job_level = excluded.job_level,"
        " domain_level = excluded.domain_level, last_raised_at_ms = excluded.last_raised_at_ms,"
        " raises = alerts.raises + 1",
    [PG_C_ALERT_CLEAR] = "UPDATE alerts SET cleared_at_ms = $2"
                         " WHERE key = $1 AND cleared_at_ms IS NULL",
    [PG_C_ALERTS_OPEN] = "SELECT id, key, kind, job, domain, job_level, domain_level, shard,"
                         " scheduled_at, raised_at_ms, last_raised_at_ms, raises, reason, detail"
                         " FROM alerts WHERE cleared_at_ms IS NULL ORDER BY raised_at_ms, id",
    [PG_C_META_GET] = "SELECT value FROM meta WHERE key = $1",
    [PG_C_META_SET] = "INSERT INTO meta (key, value) VALUES ($1, $2)"
                      " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [PG_C_OBJ_HISTORY] = "SELECT version, op, at_ms, who FROM object_versions"
                         " WHERE kind = $1 AND name = $2 ORDER BY version DESC",
    [PG_C_OBJ_VERSION_GET] = "SELECT op, json FROM object_versions"
                             " WHERE kind = $1 AND name = $2 AND version = $3",
    [PG_C_TOKEN_INSERT] = "INSERT INTO tokens (name, hash, created_at_ms, expires_at_ms,"
                          " created_by) VALUES ($1, $2, $3, $4, $5)"
                          " ON CONFLICT DO NOTHING RETURNING 1",
    [PG_C_TOKEN_LIST] = "SELECT " TOKEN_COLS " FROM tokens ORDER BY name",
    [PG_C_TOKEN_REVOKE] = "UPDATE tokens SET revoked_at_ms = coalesce(revoked_at_ms, $2)"
                          " WHERE name = $1",
    [PG_C_TOKEN_LOOKUP] = "SELECT " TOKEN_COLS " FROM tokens WHERE hash = $1",
    /* the condition again: another connection may have recorded the use meanwhile */
    [PG_C_TOKEN_USED] = "UPDATE tokens SET last_used_at_ms = $2 WHERE hash = $1"
                        " AND (last_used_at_ms IS NULL OR last_used_at_ms <= $2 - $3"
                        "      OR last_used_at_ms > $2)",
    [PG_C_TOKEN_NAMED] = "SELECT 1 FROM tokens WHERE name = $1",
    [PG_C_SECRETS_DELETE] = "DELETE FROM secrets WHERE job = $1",
    [PG_C_SECRETS_INSERT] = "INSERT INTO secrets (job, name, value)"
                            " SELECT $1, e.key, e.value FROM json_each_text($2::json) AS e",
    [PG_C_SECRETS_GET] = "SELECT name, value FROM secrets WHERE job = $1 ORDER BY name",
    /* $1: the names as a JSON array (store__names_json); each branch is one index probe
     * per name (a semi-join of the list's elements with the key), and a definition crosses
     * the wire once however many secrets its job has */
    [PG_C_JOBS_GET_MANY] = "SELECT o.name, o.version, o.json, NULL, NULL FROM objects o"
                           " WHERE o.kind = 'job'"
                           " AND o.name IN (SELECT json_array_elements_text($1::json))"
                           " UNION ALL SELECT s.job, NULL, NULL, s.name, s.value FROM secrets s"
                           " WHERE s.job IN (SELECT json_array_elements_text($1::json))",
};

/* Execute one of the fixed statements above. */
static int cfg_exec(struct pg *s, enum pg_cst id, const struct pg_params *p, PGresult **res,
                    const char *what, struct ty_err *err)
{
    char name[16];
    snprintf(name, sizeof name, "c%d", (int)id);
    return pg__exec(s, name, cfg_sql[id], &s->prep.cfg[id], p, res, what, err);
}

int64_t pg__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------------------------
 * Parameters.
 */

enum { OID_INT8 = 20, OID_TEXT = 25, OID_BYTEA = 17 };

static void p_slot(struct pg_params *p, const char *v, int len, int fmt, unsigned type)
{
    /* a fixed statement never has more: an overflow is a programming error */
    if (p->n >= PG_MAXP)
        abort();
    p->v[p->n] = v;
    p->len[p->n] = len;
    p->fmt[p->n] = fmt;
    p->type[p->n] = type;
    p->owned[p->n] = NULL;
    p->n++;
}

void pg__p_text(struct pg_params *p, const char *v)
{
    if (v == NULL) {
        p_slot(p, NULL, 0, 0, OID_TEXT);
        return;
    }
    size_t n = strlen(v);
    if (utf8_invalid_at((const unsigned char *)v, n) == n) {
        p_slot(p, v, 0, 0, OID_TEXT);
        return;
    }
    /* PostgreSQL takes UTF-8 only: store what store__json_lossy would have shown */
    struct strbuf sb;
    sb_init(&sb);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq((const unsigned char *)v + i, n - i);
        sb_add(&sb, k != 0 ? v + i : "\xEF\xBF\xBD", k != 0 ? k : 3);
        i += k != 0 ? k : 1;
    }
    char *copy = sb_detach(&sb);
    p_slot(p, copy != NULL ? copy : "\xEF\xBF\xBD", 0, 0, OID_TEXT);
    p->owned[p->n - 1] = copy;
}

void pg__p_int(struct pg_params *p, int64_t v)
{
    if (p->n >= PG_MAXP)
        abort();
    snprintf(p->num[p->n], sizeof p->num[p->n], "%" PRId64, v);
    p_slot(p, p->num[p->n], 0, 0, OID_INT8);
}

void pg__p_bytes(struct pg_params *p, const void *v, size_t n)
{
    p_slot(p, v, (int)n, 1, OID_BYTEA);
}

void pg__p_null_int(struct pg_params *p)
{
    p_slot(p, NULL, 0, 0, OID_INT8);
}

void pg__p_free(struct pg_params *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->owned[i]);
    p->n = 0;
}

/* ---------------------------------------------------------------------------------------
 * Errors.
 */

static bool state_is(const char *state, const char *prefix)
{
    return state != NULL && strncmp(state, prefix, strlen(prefix)) == 0;
}

/* The TY_E* code for a SQLSTATE (NULL: libpq's own failure, lost tells whether the
 * connection went with it). */
static int code_of(const char *state, bool lost)
{
    if (lost || state == NULL)
        return lost ? TY_EUNAVAIL : TY_EIO;
    if (state_is(state, "08") || state_is(state, "57P0") || state_is(state, "57014") ||
        state_is(state, "40001") || state_is(state, "40P01"))
        return TY_EUNAVAIL;
    if (state_is(state, "53100"))
        return TY_ENOSPC;
    if (state_is(state, "53"))
        return TY_EUNAVAIL;
    if (state_is(state, "23505"))
        return TY_EEXIST;
    if (state_is(state, "23") || state_is(state, "22") || state_is(state, "54") ||
        state_is(state, "25"))
        return TY_EINVAL;
    if (state_is(state, "28"))
        return TY_EAUTH;
    if (state_is(state, "55P03"))
        return TY_EBUSY;
    if (state_is(state, "42"))
        return TY_EFORMAT;
    return TY_EIO; /* 58 (system errors), XX (internal), others */
}

static const char *meaning_of(int code, const char *state)
{
    if (state_is(state, "40001") || state_is(state, "40P01"))
        return "conflict with a concurrent transaction (deadlock or serialization failure): "
               "roll back and try again";
    switch (code) {
    case TY_EUNAVAIL: return "database unavailable";
    case TY_ENOSPC: return "disk full";
    case TY_EEXIST: return "already exists";
    case TY_EINVAL: return "rejected by the database";
    case TY_EAUTH: return "not allowed by the database";
    case TY_EBUSY: return "database busy";
    case TY_EFORMAT: return "the database does not have the schema this binary expects";
    case TY_ENOMEM: return "out of memory";
    default: return "I/O error";
    }
}

/* PostgreSQL's own words without the trailing newline, into buf. */
static void pg_words(const struct pg *s, const PGresult *r, char *buf, size_t cap)
{
    const char *m = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (m == NULL && r != NULL)
        m = PQresultErrorMessage(r);
    if (m == NULL || *m == '\0')
        m = PQerrorMessage(s->conn);
    snprintf(buf, cap, "%s", m != NULL && *m != '\0' ? m : "no message");
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    for (char *c = buf; *c; c++)
        if (*c == '\n')
            *c = ' ';
}

int pg__fail(struct pg *s, const PGresult *r, struct ty_err *err, const char *fmt, ...)
{
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(s->state, sizeof s->state, "%s", state != NULL ? state : "");
    bool lost = PQstatus(s->conn) != CONNECTION_OK;
    if (lost || state_is(state, "08") || state_is(state, "57P0"))
        s->broken = true;
    int code = code_of(state, lost);
    s->retry = state_is(state, "40001") || state_is(state, "40P01");
    if (s->batch && !s->batch_failed &&
        (s->broken || PQtransactionStatus(s->conn) != PQTRANS_INTRANS))
        s->batch_failed = code;
    if (err == NULL)
        return code;
    char what[160], words[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    pg_words(s, r, words, sizeof words);
    return ty_error(err, code, NULL, -1, 0, "%s: %s (database %s: %s)", what,
                    meaning_of(code, state), s->label, words);
}

int pg__writable(struct pg *s, const char *op, struct ty_err *err)
{
    if (s->read_only)
        return ty_error(err, TY_EINVAL, NULL, -1, 0, "%s: the store %s is open read-only", op,
                        s->label);
    if (s->batch && s->batch_failed)
        return ty_error(err, s->batch_failed, NULL, -1, 0,
                        "%s: the batch was rolled back after an earlier error (%s); call "
                        "rollback first",
                        op, ty_strerror(s->batch_failed));
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * The connection: checked before every call outside a transaction, re-established when
 * it was lost.
 */

/* libpq prints notices (CREATE ... IF NOT EXISTS, "skipping") to stderr by default; a
 * library does not print. */
static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/*
 * The settings of a session, again after every reconnect.  JIT compilation is off: the
 * store's statements are either small (where PostgreSQL would not compile them anyway) or
 * aggregates over many rows, where compiling costs more than it saves (stats by day over
 * 600,000 runs: 3.6 s with JIT, 1.2 s without).
 */
static int session_setup(struct pg *s, struct ty_err *err)
{
    const char *sql =
        s->read_only ? "SET jit = off; SET default_transaction_read_only = on" : "SET jit = off";
    PGresult *r = PQexec(s->conn, sql);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : pg__fail(s, r, err, "connect");
    PQclear(r);
    return rc;
}

/* TY_EAUTH when libpq's message says the credentials were refused, else TY_EUNAVAIL. */
static int connect_code(const PGconn *c)
{
    const char *m = PQerrorMessage(c);
    return strstr(m, "password authentication failed") != NULL ||
                   strstr(m, "no password supplied") != NULL ||
                   strstr(m, "authentication failed") != NULL
               ? TY_EAUTH
               : TY_EUNAVAIL;
}

/*
 * Make the connection usable before a call that is not inside a transaction: if the
 * server closed it meanwhile (a restart), its socket is readable and libpq notices; a
 * lost connection is reset (bounded by connect_timeout) and set up again.
 */
static int ensure_conn(struct pg *s, const char *what, struct ty_err *err)
{
    if (!s->broken && PQstatus(s->conn) == CONNECTION_OK) {
        /* an idle connection has nothing to read unless the server spoke: a shutdown sends
         * its FATAL message, then the end of the stream, which a second read finds */
        struct pollfd pfd = {.fd = PQsocket(s->conn), .events = POLLIN};
        for (int i = 0;
             i < 4 && PQstatus(s->conn) == CONNECTION_OK && pfd.fd >= 0 && poll(&pfd, 1, 0) > 0;
             i++) {
            PQconsumeInput(s->conn);
            PGnotify *n;
            while ((n = PQnotifies(s->conn)) != NULL)
                PQfreemem(n);
            pfd.fd = PQsocket(s->conn);
        }
        if (PQstatus(s->conn) == CONNECTION_OK)
            return 0;
    }
    PQreset(s->conn);
    if (PQstatus(s->conn) != CONNECTION_OK) {
        s->broken = true;
        char words[400];
        pg_words(s, NULL, words, sizeof words);
        int code = connect_code(s->conn);
        return ty_error(err, code, NULL, -1, 0, "%s: %s (database %s: %s)", what,
                        code == TY_EAUTH ? "not allowed by the database" : "database unavailable",
                        s->label, words);
    }
    s->broken = false;
    memset(&s->prep, 0, sizeof s->prep);
    return session_setup(s, err);
}

/* Before a statement: outside a transaction, a usable connection; inside one, the one it
 * runs on (a connection lost mid-transaction took the transaction with it). */
int pg__ready(struct pg *s, const char *what, struct ty_err *err)
{
    if (!s->tx)
        return ensure_conn(s, what, err);
    if (s->broken || PQstatus(s->conn) != CONNECTION_OK)
        return pg__fail(s, NULL, err, "%s", what);
    return 0;
}

/* A short pause before trying a call again after a deadlock: 2, 4, 8 ... ms, plus up to
 * as much again at random so two retrying connections drift apart. */
static void backoff(int attempt)
{
    long ms = 2L << attempt;
    ms += (long)((uint64_t)pg__now_ms() * 2654435761u % (uint64_t)ms);
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool result_ok(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

int pg__exec(struct pg *s, const char *name, const char *sql, bool *prepared,
             const struct pg_params *p, PGresult **res, const char *what, struct ty_err *err)
{
    static const struct pg_params none = {0};
    if (p == NULL)
        p = &none;
    if (res != NULL)
        *res = NULL;
    for (int attempt = 0;; attempt++) {
        int rc = pg__ready(s, what, err);
        if (rc != 0)
            return rc;
        s->retry = false;
        if (!*prepared) {
            PGresult *r = PQprepare(s->conn, name, sql, p->n, p->type);
            bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
            rc = ok ? 0 : pg__fail(s, r, err, "%s", what);
            PQclear(r);
            *prepared = ok;
        }
        if (rc == 0) {
            PGresult *r = PQexecPrepared(s->conn, name, p->n, p->v, p->len, p->fmt, 0);
            if (result_ok(r)) {
                if (res != NULL)
                    *res = r;
                else
                    PQclear(r);
                return 0;
            }
            rc = pg__fail(s, r, err, "%s", what);
            PQclear(r);
        }
        /* an autocommit statement that deadlocked was rolled back whole: run it again */
        if (!s->tx && s->retry && attempt < PG_TRIES - 1) {
            backoff(attempt);
            continue;
        }
        return rc;
    }
}

int pg__exec_once(struct pg *s, const char *sql, const struct pg_params *p, PGresult **res,
                  const char *what, struct ty_err *err)
{
    static const struct pg_params none = {0};
    if (p == NULL)
        p = &none;
    if (res != NULL)
        *res = NULL;
    int rc = pg__ready(s, what, err);
    if (rc != 0)
        return rc;
    /* without parameters, the simple protocol: it also takes several statements at once */
    PGresult *r = p->n == 0 ? PQexec(s->conn, sql)
                            : PQexecParams(s->conn, sql, p->n, p->type, p->v, p->len, p->fmt, 0);
    if (!result_ok(r)) {
        rc = pg__fail(s, r, err, "%s", what);
        PQclear(r);
        return rc;
    }
    if (res != NULL)
        *res = r;
    else
        PQclear(r);
    return 0;
}

/* A statement without parameters or result (BEGIN, COMMIT, ...). */
static int simple(struct pg *s, const char *sql, const char *what, struct ty_err *err)
{
    return pg__exec_once(s, sql, NULL, NULL, what, err);
}

/* Undo the transaction this store opened, if the connection still has one. */
static void abort_tx(struct pg *s)
{
    if (!s->broken && PQstatus(s->conn) == CONNECTION_OK &&
        PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        PQclear(PQexec(s->conn, "ROLLBACK"));
    s->tx = false;
}

int pg__tx(struct pg *s, int (*body)(struct pg *, void *, struct ty_err *), void *arg,
           const char *what, struct ty_err *err)
{
    if (s->tx) /* part of the caller's batch (or scan) */
        return body(s, arg, err);
    for (int attempt = 0;; attempt++) {
        int rc = simple(s, "BEGIN", what, err);
        if (rc != 0)
            return rc;
        s->tx = true;
        s->retry = false;
        rc = body(s, arg, err);
        bool retry = s->retry;
        if (rc == 0 && PQtransactionStatus(s->conn) == PQTRANS_INTRANS) {
            rc = simple(s, "COMMIT", what, err);
            retry = s->retry;
        } else if (rc == 0) { /* an error body did not report: never commit half a call */
            rc = pg__fail(s, NULL, err, "%s", what);
        }
        abort_tx(s);
        if (rc != 0 && retry && attempt < PG_TRIES - 1 && !s->broken) {
            backoff(attempt);
            continue;
        }
        return rc;
    }
}

/* ---------------------------------------------------------------------------------------
 * Result columns.
 */

int64_t pg__int(const PGresult *r, int row, int col)
{
    const char *v = pg__v(r, row, col);
    return v != NULL ? strtoll(v, NULL, 10) : 0;
}

json_t *pg__jtext(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return json_null();
    return store__json_lossy(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

json_t *pg__jint(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return json_null();
    return json_integer(pg__int(r, row, col));
}

json_t *pg__jjson(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return json_null();
    json_t *v = json_loadb(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col),
                           JSON_DECODE_ANY, NULL);
    return v != NULL ? v : json_null();
}

int pg__collect(const PGresult *r, json_t *(*row)(const PGresult *, int), json_t **out,
                const char *op, struct ty_err *err)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return store__oom(err, op);
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *v = row(r, i);
        if (v == NULL || json_array_append_new(arr, v) != 0) {
            json_decref(arr);
            return store__oom(err, op);
        }
    }
    *out = arr;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Open, schema, close.
 */

/* Whether the URL carries a password: in its user part ("user:secret@host") or as a
 * query parameter ("?password=secret"). */
static bool url_has_password(const char *url)
{
    const char *p = strstr(url, "://");
    if (p == NULL)
        return false;
    p += 3;
    size_t auth = strcspn(p, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < auth; i++)
        if (p[i] == '@')
            at = p + i;
    if (at != NULL && memchr(p, ':', (size_t)(at - p)) != NULL)
        return true;
    for (const char *q = strchr(p, '?'); q != NULL; q = strchr(q + 1, '&'))
        if (strncmp(q + 1, "password=", 9) == 0)
            return true;
    return false;
}

/* Refuse a URL that holds a password: it would stay in memory and could reach a message
 * or a log; the message never repeats the URL. */
static int check_url(const char *url, struct ty_err *err)
{
    if (url_has_password(url))
        return ty_error(err, TY_EINVAL, "db", -1, 0,
                        "store: the database URL holds a password; give it in PGPASSWORD or "
                        "~/.pgpass instead (the URL is not repeated here)");
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &msg);
    if (opts == NULL) {
        int rc = strstr(url, "password") != NULL
                     ? ty_error(err, TY_EINVAL, "db", -1, 0,
                                "store: the database URL is not one libpq reads")
                     : ty_error(err, TY_EINVAL, "db", -1, 0,
                                "store: the database URL is not one libpq reads: %.200s",
                                msg != NULL ? msg : "out of memory");
        PQfreemem(msg);
        return rc;
    }
    int rc = 0;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val != NULL && *o->val != '\0')
            rc = ty_error(err, TY_EINVAL, "db", -1, 0,
                          "store: the database URL holds a password; give it in PGPASSWORD or "
                          "~/.pgpass instead (the URL is not repeated here)");
    PQconninfoFree(opts);
    return rc;
}

/* "user@host:port/db" of the connection, for messages. */
static char *label_of(const PGconn *c)
{
    const char *user = PQuser(c), *host = PQhost(c), *port = PQport(c), *db = PQdb(c);
    struct strbuf sb;
    sb_init(&sb);
    if (user != NULL && *user != '\0')
        sb_addf(&sb, "%s@", user);
    sb_adds(&sb, host != NULL && *host != '\0' ? host : "localhost");
    if (port != NULL && *port != '\0')
        sb_addf(&sb, ":%s", port);
    sb_addf(&sb, "/%s", db != NULL ? db : "");
    return sb_detach(&sb);
}

/* What the database says about itself before the schema is created or checked. */
struct identity {
    bool has_meta;  /* a table named meta is on the search path */
    bool marked;    /* ... with Tethys's comment */
    int64_t ours;   /* tables with the names of Tethys's */
    char value[64]; /* meta.schema_version, "" when none */
    bool has_version;
};

static int read_identity(struct pg *s, struct identity *id, struct ty_err *err)
{
    memset(id, 0, sizeof *id);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT to_regclass('meta') IS NOT NULL,"
             " coalesce(obj_description(to_regclass('meta'), 'pg_class') = '" PG_MARK "', false),"
             " (SELECT count(*) FROM pg_class c WHERE c.relnamespace = ANY"
             "  (current_schemas(false)::regnamespace[]) AND c.relname IN (%s))",
             our_tables);
    PGresult *r;
    int rc = pg__exec_once(s, sql, NULL, &r, "open", err);
    if (rc != 0)
        return rc;
    id->has_meta = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    id->marked = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    id->ours = pg__int(r, 0, 2);
    PQclear(r);
    if (!id->has_meta || !id->marked)
        return 0;
    if ((rc = pg__exec_once(s, "SELECT value FROM meta WHERE key = 'schema_version'", NULL, &r,
                            "open: read schema_version", err)) != 0)
        return rc;
    if (PQntuples(r) == 1) {
        id->has_version = true;
        snprintf(id->value, sizeof id->value, "%s", PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    return 0;
}

/* Refuse a database that is not Tethys's or has a newer schema; *version is what was found
 * (0: no Tethys schema yet, and nothing in the way of creating one). */
static int check_identity(struct pg *s, const struct identity *id, int *version, struct ty_err *err)
{
    *version = 0;
    if (!id->has_meta) {
        if (id->ours > 0)
            return ty_error(err, TY_EFORMAT, NULL, -1, 0,
                            "database %s holds tables named like Tethys's (objects, runs, ...) "
                            "but no Tethys schema; refusing to use it",
                            s->label);
        return 0;
    }
    if (!id->marked)
        return ty_error(err, TY_EFORMAT, NULL, -1, 0,
                        "database %s has a table \"meta\" that is not Tethys's; refusing to use "
                        "it",
                        s->label);
    if (!id->has_version)
        return ty_error(err, TY_EFORMAT, NULL, -1, 0,
                        "database %s: Tethys database without a schema_version in meta", s->label);
    char *end;
    errno = 0;
    long n = strtol(id->value, &end, 10);
    if (id->value[0] == '\0' || *end != '\0' || errno != 0 || n < 1 || n > INT_MAX)
        return ty_error(err, TY_EFORMAT, NULL, -1, 0,
                        "database %s: schema_version \"%.40s\" in meta is not a version number",
                        s->label, id->value);
    if (n > PG_SCHEMA_VERSION)
        return ty_error(err, TY_EFORMAT, NULL, -1, 0,
                        "database %s has schema version %ld, from a newer Tethys; this binary "
                        "knows %d to %d: upgrade tethys",
                        s->label, n, PG_SCHEMA_FIRST, PG_SCHEMA_VERSION);
    if (n < PG_SCHEMA_FIRST)
        return ty_error(err, TY_EFORMAT, NULL, -1, 0,
                        "database %s has schema version %ld, which no PostgreSQL store ever had",
                        s->label, n);
    *version = (int)n;
    return 0;
}

/* Create the schema in an empty database, or bring an older one to PG_SCHEMA_VERSION: the
 * body of one transaction, under an advisory lock, so servers starting at once do it once
 * and a failed step leaves the old version as it was. */
static int migrate_body(struct pg *s, void *arg, struct ty_err *err)
{
    (void)arg;
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(%d)", PG_SCHEMA_LOCK);
    int rc = simple(s, sql, "open: lock the schema", err);
    struct identity id;
    int version = 0;
    if (rc == 0)
        rc = read_identity(s, &id, err);
    if (rc == 0)
        rc = check_identity(s, &id, &version, err);
    if (rc != 0 || version == PG_SCHEMA_VERSION)
        return rc; /* made or migrated meanwhile by another server, or there all along */
    /* an empty database: version 3 at once, then the steps as for any older one (which
     * check_identity let through only from PG_SCHEMA_FIRST on) */
    size_t step = 0;
    if (version == 0) {
        if ((rc = simple(s, schema_config, "open: create the schema", err)) != 0 ||
            (rc = simple(s, pg__runs_schema, "open: create the history tables", err)) != 0)
            return rc;
    } else {
        step = (size_t)(version - PG_SCHEMA_FIRST);
    }
    char what[64];
    for (; step < sizeof migrations / sizeof migrations[0]; step++) {
        snprintf(what, sizeof what, "open: migrate schema %d to %d", PG_SCHEMA_FIRST + (int)step,
                 PG_SCHEMA_FIRST + (int)step + 1);
        if ((rc = simple(s, migrations[step], what, err)) != 0)
            return rc;
    }
    snprintf(sql, sizeof sql,
             "INSERT INTO meta (key, value) VALUES ('schema_version', '%d')"
             " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
             PG_SCHEMA_VERSION);
    return simple(s, sql, "open: record the schema version", err);
}

/* A reader opens only a database a writer has set up. */
static int check_reader(struct pg *s, struct ty_err *err)
{
    struct identity id;
    int version = 0;
    int rc = read_identity(s, &id, err);
    if (rc == 0)
        rc = check_identity(s, &id, &version, err);
    if (rc == 0 && version == 0)
        rc = ty_error(err, TY_EFORMAT, NULL, -1, 0,
                      "database %s has no Tethys schema yet; open it read-write first (the server "
                      "does)",
                      s->label);
    else if (rc == 0 && version < PG_SCHEMA_VERSION)
        rc = ty_error(err, TY_EFORMAT, NULL, -1, 0,
                      "database %s has schema version %d and needs migrating to %d; open it "
                      "read-write first (the server does)",
                      s->label, version, PG_SCHEMA_VERSION);
    return rc;
}

static void pg_close(struct store *base)
{
    struct pg *s = PG(base);
    if (s->conn != NULL)
        PQfinish(s->conn); /* an open transaction is rolled back by the server */
    for (int i = 0; i < 2; i++)
        free(s->days[i].v);
    free(s->label);
    free(s);
}

static const struct store_ops pg_ops;

/* Connect: the URL's settings over our defaults (a bounded connect, keepalives). */
static PGconn *connect_url(const char *url)
{
    /* keywords before "dbname" are defaults the URL may override; libpq expands the URL */
    static const char *const keys[] = {
        "connect_timeout",           "keepalives",       "keepalives_idle",
        "keepalives_interval",       "keepalives_count", "tcp_user_timeout",
        "fallback_application_name", "dbname",           NULL};
    const char *vals[] = {"5", "1", "10", "5", "3", "30000", "tethys", url, NULL};
    return PQconnectdbParams(keys, vals, 1);
}

int store_open_pg(const char *url, bool read_only, struct store **out, struct ty_err *err)
{
    *out = NULL;
    if (url == NULL || *url == '\0')
        return ty_error(err, TY_EINVAL, "db", -1, 0, "store: the database URL is empty");
    int rc = check_url(url, err);
    if (rc != 0)
        return rc;
    struct pg *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "store: out of memory opening a database");
    s->base.ops = &pg_ops;
    s->read_only = read_only;
    s->conn = connect_url(url);
    s->label = s->conn != NULL ? label_of(s->conn) : NULL;
    if (s->conn == NULL || s->label == NULL) {
        pg_close(&s->base);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "store: out of memory opening a database");
    }
    PQsetNoticeProcessor(s->conn, quiet, NULL);
    if (PQstatus(s->conn) != CONNECTION_OK) {
        char words[400];
        pg_words(s, NULL, words, sizeof words);
        int code = connect_code(s->conn);
        rc = ty_error(err, code, NULL, -1, 0, "store: %s: cannot connect to %s: %s",
                      code == TY_EAUTH ? "not allowed by the database" : "database unavailable",
                      s->label, words);
        pg_close(&s->base);
        return rc;
    }
    if (PQserverVersion(s->conn) < 120000) {
        rc = ty_error(err, TY_EFORMAT, NULL, -1, 0,
                      "store: database %s runs PostgreSQL %d.%d; Tethys needs 12 or newer",
                      s->label, PQserverVersion(s->conn) / 10000, PQserverVersion(s->conn) % 10000);
        pg_close(&s->base);
        return rc;
    }
    rc = session_setup(s, err);
    if (rc == 0)
        rc = read_only ? check_reader(s, err) : pg__tx(s, migrate_body, NULL, "open", err);
    if (rc == 0 && !read_only)
        rc = pg__partitions_ahead(s, err);
    if (rc != 0) {
        pg_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Config objects.
 */

/* Where a job lies: its domain (malloc'd) and whether it is enabled; domain NULL when
 * there is no such job. */
struct place {
    char *domain;
    int enabled;
};

static bool place_of(const PGresult *r, int row, int c, struct place *p)
{
    const char *d = pg__v(r, row, c);
    p->domain = strdup(d != NULL ? d : "");
    p->enabled = (int)pg__int(r, row, c + 1);
    return p->domain != NULL;
}

/* The current version of (kind, name) (0 when none), whether its JSON equals `json` (may
 * be NULL), and where it lies (*at; its domain is the caller's to free). */
static int obj_current(struct pg *s, const char *kn, const char *name, const char *json,
                       int64_t *version, bool *same, struct place *at, const char *what,
                       struct ty_err *err)
{
    *version = 0;
    *same = false;
    at->domain = NULL;
    struct pg_params p = {0};
    pg__p_text(&p, kn);
    pg__p_text(&p, name);
    pg__p_text(&p, json);
    PGresult *r;
    int rc = cfg_exec(s, PG_C_OBJ_STATE, &p, &r, what, err);
    pg__p_free(&p);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 1) {
        *version = pg__int(r, 0, 0);
        *same = json != NULL && strcmp(PQgetvalue(r, 0, 1), "t") == 0;
        if (!place_of(r, 0, 2, at))
            rc = store__oom(err, what);
    }
    PQclear(r);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * The job index (see store_sqlite.c for the rules, which are the same): counts per
 * subtree and a row per job and domain of its chain, changed in the job's transaction.
 * Here the count changes of one call are applied in domain order, so concurrent calls
 * lock count rows in one order and never deadlock on them.
 */

struct change {
    char *domain;
    int delta; /* +1, -1 (counts), or 0: only a job_domains row */
    int place; /* +1 add, -1 drop the job_domains row with `enabled`, 0 none */
    int enabled;
};

struct changes {
    struct change *v;
    size_t n, cap;
    bool bad;
};

static void change_add(struct changes *c, const char *domain, int delta, int place, int enabled)
{
    if (c->n == c->cap) {
        size_t cap = c->cap != 0 ? c->cap * 2 : 16;
        struct change *v = realloc(c->v, cap * sizeof *v);
        if (v == NULL) {
            c->bad = true;
            return;
        }
        c->v = v;
        c->cap = cap;
    }
    struct change *ch = &c->v[c->n];
    if ((ch->domain = strdup(domain)) == NULL) {
        c->bad = true;
        return;
    }
    ch->delta = delta;
    ch->place = place;
    ch->enabled = enabled;
    c->n++;
}

static int change_cmp(const void *a, const void *b)
{
    const struct change *x = a, *y = b;
    int c = strcmp(x->domain, y->domain);
    return c != 0 ? c : x->place - y->place; /* a drop before an add of the same domain */
}

static void changes_free(struct changes *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].domain);
    free(c->v);
}

/* What filing job `name` from `from` to `to` changes (either without a domain: created,
 * deleted): the domains of each chain the other does not share. */
static void changes_of(struct changes *c, const struct place *from, const struct place *to)
{
    for (int leaving = 1; leaving >= 0; leaving--) {
        const struct place *a = leaving ? from : to, *b = leaving ? to : from;
        if (a->domain == NULL)
            continue;
        char *d = strdup(a->domain);
        if (d == NULL) {
            c->bad = true;
            return;
        }
        do {
            bool shared = b->domain != NULL && domain_within(b->domain, d);
            if (!shared || a->enabled != b->enabled)
                change_add(c, d, shared ? 0 : (leaving ? -1 : 1), leaving ? -1 : 1, a->enabled);
        } while (store__domain_up(d));
        free(d);
    }
}

static int count_step(struct pg *s, enum pg_cst id, const char *domain, const char *what,
                      PGresult **res, struct ty_err *err)
{
    struct pg_params p = {0};
    pg__p_text(&p, domain);
    int rc = cfg_exec(s, id, &p, res, what, err);
    pg__p_free(&p);
    return rc;
}

static int apply_change(struct pg *s, const char *name, const struct change *ch, const char *what,
                        struct ty_err *err)
{
    int rc = 0;
    PGresult *r = NULL;
    if (ch->delta > 0) {
        rc = count_step(s, PG_C_COUNT_ADD, ch->domain, what, NULL, err);
    } else if (ch->delta < 0) {
        rc = count_step(s, PG_C_COUNT_LESS, ch->domain, what, &r, err);
        if (rc == 0 && PQntuples(r) == 1 && pg__int(r, 0, 0) <= 0)
            rc = count_step(s, PG_C_COUNT_DROP, ch->domain, what, NULL, err);
        PQclear(r);
    }
    if (rc == 0 && ch->place != 0) {
        struct pg_params p = {0};
        pg__p_text(&p, ch->domain);
        pg__p_int(&p, ch->enabled);
        pg__p_text(&p, name);
        rc = cfg_exec(s, ch->place > 0 ? PG_C_PLACE_ADD : PG_C_PLACE_DROP, &p, NULL, what, err);
        pg__p_free(&p);
    }
    return rc;
}

static int job_moved(struct pg *s, const char *name, const struct place *from,
                     const struct place *to, const char *what, struct ty_err *err)
{
    struct changes c = {0};
    changes_of(&c, from, to);
    int rc = c.bad ? store__oom(err, what) : 0;
    if (c.n > 1)
        qsort(c.v, c.n, sizeof *c.v, change_cmp);
    for (size_t i = 0; rc == 0 && i < c.n; i++)
        rc = apply_change(s, name, &c.v[i], what, err);
    changes_free(&c);
    return rc;
}

static int obj_version_row(struct pg *s, const char *kn, const char *name, int64_t version,
                           const char *op, const char *json, int64_t at, const char *who,
                           const char *what, struct ty_err *err)
{
    struct pg_params p = {0};
    pg__p_text(&p, kn);
    pg__p_text(&p, name);
    pg__p_int(&p, version);
    pg__p_text(&p, op);
    pg__p_text(&p, json);
    pg__p_int(&p, at);
    pg__p_text(&p, who);
    int rc = cfg_exec(s, PG_C_OBJ_VERSION, &p, NULL, what, err);
    pg__p_free(&p);
    return rc;
}

struct put_call {
    enum store_kind kind;
    const char *kn, *name, *json, *who, *what;
    int64_t base_version, version;
};

/*
 * Write the new version of an object now at version cur (0: none) lying at `was`.  The
 * write names the version read (or is a create that does nothing on conflict), so *raced
 * is set, and nothing written, when another connection changed the object since.
 */
static int obj_write(struct pg *s, struct put_call *c, int64_t cur, const struct place *was,
                     bool *raced, struct ty_err *err)
{
    *raced = false;
    int64_t next = cur + 1;
    PGresult *r;
    struct pg_params p = {0};
    int rc;
    if (cur == 0) { /* versions continue after a delete, so an ETag never comes back */
        pg__p_text(&p, c->kn);
        pg__p_text(&p, c->name);
        rc = cfg_exec(s, PG_C_OBJ_LASTVER, &p, &r, c->what, err);
        pg__p_free(&p);
        if (rc != 0)
            return rc;
        next = pg__int(r, 0, 0) + 1;
        PQclear(r);
    }
    int64_t at = pg__now_ms();
    pg__p_text(&p, c->kn);
    pg__p_text(&p, c->name);
    pg__p_int(&p, next);
    pg__p_text(&p, c->json);
    pg__p_int(&p, at);
    pg__p_text(&p, c->who);
    if (cur > 0)
        pg__p_int(&p, cur);
    rc = cfg_exec(s, cur == 0 ? PG_C_OBJ_INSERT : PG_C_OBJ_UPDATE, &p, &r, c->what, err);
    pg__p_free(&p);
    if (rc != 0)
        return rc;
    struct place now = {0};
    if (PQntuples(r) == 0)
        *raced = true;
    else if (!place_of(r, 0, 0, &now))
        rc = store__oom(err, c->what);
    PQclear(r);
    if (rc == 0 && !*raced && c->kind == STORE_JOB)
        rc = job_moved(s, c->name, was, &now, c->what, err);
    if (rc == 0 && !*raced)
        rc = obj_version_row(s, c->kn, c->name, next, cur == 0 ? "create" : "update", c->json, at,
                             c->who, c->what, err);
    if (rc == 0 && !*raced)
        c->version = next;
    free(now.domain);
    return rc;
}

/* How often a call reads an object again after losing a race for it; only a connection
 * that loses this many races in a row gives up. */
#define OBJ_ROUNDS 8

/*
 * A count read inside a transaction decides a write: a save checks its domains' job limits
 * (job_count) and then writes the job, in one transaction.  Under READ COMMITTED two
 * servers would both read 9 of 10 and both write; so such a read first takes one
 * transaction-scoped lock that every checked save takes, and the check and the write are
 * one step for all of them.  Saves that check nothing (no limit on the chain) take no
 * lock: they cannot break a limit, and they keep the concurrency the count rows allow.
 */
static int jobs_lock(struct pg *s, const char *what, struct ty_err *err)
{
    return cfg_exec(s, PG_C_JOBS_LOCK, &(struct pg_params){0}, NULL, what, err);
}

static int obj_put_body(struct pg *s, void *arg, struct ty_err *err)
{
    struct put_call *c = arg;
    for (int round = 0; round < OBJ_ROUNDS; round++) {
        int64_t cur;
        bool same, raced = false;
        struct place was;
        int rc = obj_current(s, c->kn, c->name, c->json, &cur, &same, &was, c->what, err);
        if (rc == 0)
            rc = store__put_allowed(cur, c->base_version, c->what, err);
        if (rc == 0 && same) /* not a change: no new version, no history row */
            c->version = cur;
        else if (rc == 0)
            rc = obj_write(s, c, cur, &was, &raced, err);
        free(was.domain);
        if (rc != 0 || !raced)
            return rc;
    }
    return ty_error(err, TY_ECONFLICT, NULL, -1, 0,
                    "%s: changed by others %d times while this change was being written", c->what,
                    OBJ_ROUNDS);
}

/* The JSON of a put must be an object: decided here, since a value PostgreSQL refused
 * would end the caller's batch. */
static int check_json_object(const char *json, const char *what, struct ty_err *err)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    bool ok = json_is_object(v);
    json_decref(v);
    if (!ok)
        return ty_error(err, TY_EINVAL, "json", -1, 0, "%s: json is not a JSON object", what);
    return 0;
}

static int pg_obj_put(struct store *base, enum store_kind kind, const char *name, const char *json,
                      int64_t base_version, const char *who, int64_t *version, struct ty_err *err)
{
    struct pg *s = PG(base);
    const char *kn;
    int rc = store__check_obj("obj_put", kind, name, &kn, err);
    if (rc != 0 || (rc = store__check_put(kn, name, json, base_version, err)) != 0 ||
        (rc = pg__writable(s, "obj_put", err)) != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "obj_put %s \"%.100s\"", kn, name);
    if ((rc = check_json_object(json, what, err)) != 0)
        return rc;
    struct put_call c = {.kind = kind,
                         .kn = kn,
                         .name = name,
                         .json = json,
                         .who = who,
                         .what = what,
                         .base_version = base_version};
    rc = pg__tx(s, obj_put_body, &c, what, err);
    if (rc == 0 && version != NULL)
        *version = c.version;
    return rc;
}

static int pg_obj_get(struct store *base, enum store_kind kind, const char *name, char **json,
                      int64_t *version, struct ty_err *err)
{
    struct pg *s = PG(base);
    const char *kn;
    int rc = store__check_obj("obj_get", kind, name, &kn, err);
    if (rc != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "obj_get %s \"%.100s\"", kn, name);
    struct pg_params p = {0};
    pg__p_text(&p, kn);
    pg__p_text(&p, name);
    PGresult *r;
    rc = cfg_exec(s, PG_C_OBJ_CUR, &p, &r, what, err);
    pg__p_free(&p);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0) {
        rc = ty_error(err, TY_ENOENT, NULL, -1, 0, "%s: not found", what);
    } else {
        if (version != NULL)
            *version = pg__int(r, 0, 0);
        if (json != NULL && (*json = strdup(PQgetvalue(r, 0, 1))) == NULL)
            rc = store__oom(err, "obj_get");
    }
    PQclear(r);
    return rc;
}

static int obj_delete_body(struct pg *s, void *arg, struct ty_err *err)
{
    struct put_call *c = arg;
    for (int round = 0; round < OBJ_ROUNDS; round++) {
        int64_t cur;
        bool same;
        struct place was, gone = {0};
        int rc = obj_current(s, c->kn, c->name, NULL, &cur, &same, &was, c->what, err);
        if (rc == 0)
            rc = store__delete_allowed(cur, c->base_version, c->what, err);
        PGresult *r = NULL;
        if (rc == 0) {
            struct pg_params p = {0};
            pg__p_text(&p, c->kn);
            pg__p_text(&p, c->name);
            pg__p_int(&p, cur);
            rc = cfg_exec(s, PG_C_OBJ_DELETE, &p, &r, c->what, err);
            pg__p_free(&p);
        }
        bool raced = rc == 0 && strcmp(PQcmdTuples(r), "0") == 0;
        PQclear(r);
        if (rc == 0 && !raced && c->kind == STORE_JOB)
            rc = job_moved(s, c->name, &was, &gone, c->what, err);
        if (rc == 0 && !raced)
            rc = obj_version_row(s, c->kn, c->name, cur + 1, "delete", NULL, pg__now_ms(), c->who,
                                 c->what, err);
        free(was.domain);
        if (rc != 0 || !raced)
            return rc;
    }
    return ty_error(err, TY_ECONFLICT, NULL, -1, 0,
                    "%s: changed by others %d times while it was being deleted", c->what,
                    OBJ_ROUNDS);
}

static int pg_obj_delete(struct store *base, enum store_kind kind, const char *name,
                         int64_t base_version, const char *who, struct ty_err *err)
{
    struct pg *s = PG(base);
    const char *kn;
    int rc = store__check_obj("obj_delete", kind, name, &kn, err);
    if (rc != 0 || (rc = store__check_delete(kn, name, base_version, err)) != 0 ||
        (rc = pg__writable(s, "obj_delete", err)) != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "obj_delete %s \"%.100s\"", kn, name);
    struct put_call c = {.kind = kind,
                         .kn = kn,
                         .name = name,
                         .who = who,
                         .what = what,
                         .base_version = base_version};
    return pg__tx(s, obj_delete_body, &c, what, err);
}

static json_t *obj_row(const PGresult *r, int i)
{
    struct pg_jb b = {json_object(), false};
    int64_t at = pg__int(r, i, 2);
    pg__jb_set(&b, "name", pg__jtext(r, i, 0));
    pg__jb_set(&b, "version", pg__jint(r, i, 1));
    pg__jb_set(&b, "updated_at", json_integer(at / 1000));
    pg__jb_set(&b, "updated_at_ms", json_integer(at));
    pg__jb_set(&b, "updated_by", pg__jtext(r, i, 3));
    pg__jb_set(&b, "object", pg__jjson(r, i, 4));
    return pg__jb_done(&b);
}

static int pg_obj_list(struct store *base, enum store_kind kind, const char *domain_prefix,
                       json_t **out, struct ty_err *err)
{
    struct pg *s = PG(base);
    const char *kn;
    int rc = store__check_list(kind, &kn, err);
    if (rc != 0)
        return rc;
    /* the root "" holds everything; calendars belong to no domain */
    bool filter = domain_prefix != NULL && *domain_prefix != '\0' && kind != STORE_CALENDAR;
    struct pg_params p = {0};
    pg__p_text(&p, kn);
    if (filter)
        pg__p_text(&p, domain_prefix);
    PGresult *r;
    rc = cfg_exec(s, filter ? PG_C_OBJ_LIST_DOMAIN : PG_C_OBJ_LIST, &p, &r, "obj_list", err);
    pg__p_free(&p);
    if (rc == 0)
        rc = pg__collect(r, obj_row, out, "obj_list", err);
    PQclear(r);
    return rc;
}

static int pg_job_count(struct store *base, const char *domain, int64_t *count, struct ty_err *err)
{
    struct pg *s = PG(base);
    int rc = store__check_domain("job_count", domain, err);
    if (rc != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "job_count \"%.100s\"", domain != NULL ? domain : "");
    /* inside a transaction the count is read to decide a write: hold it (jobs_lock) */
    if (s->tx && (rc = jobs_lock(s, what, err)) != 0)
        return rc;
    PGresult *r;
    if ((rc = count_step(s, PG_C_JOB_COUNT, domain != NULL ? domain : "", what, &r, err)) != 0)
        return rc;
    *count = PQntuples(r) == 1 ? pg__int(r, 0, 0) : 0; /* no row: no job in that subtree */
    PQclear(r);
    return 0;
}

/*
 * Pages of objects, keyset-paginated on the name as in store_sqlite.c: a range of
 * objects' primary key, or with a job filter a range of job_domains (both enabled flags:
 * two ordered ranges merged, each stopping at the page size), joined to objects for the
 * rows.  Parameters by position: $1 kind, $2 domain, $3 enabled, $4 after, $5 text,
 * $6 limit + 1, $7 level; each statement uses those it needs.  The text filter folds ASCII letters
 * only (lower() under the "C" collation), as SQLite's lower() does.
 */
#define PAGE_TEXT(t)                                                                               \
    "(strpos(lower(" t "name), lower($5 COLLATE \"C\")) > 0 OR strpos(lower(coalesce(" t           \
    "json ->> 'description', '') COLLATE \"C\"), lower($5 COLLATE \"C\")) > 0)"

#define PAGE_LEVEL(t) "(" t "json ->> 'level')::int8 = $7"

static void page_range(struct strbuf *sb, const char *enabled, unsigned mask)
{
    sb_addf(sb, "SELECT job FROM job_domains j WHERE domain = $2 AND enabled %s AND job > $4",
            enabled);
    if (mask & (PG_PQ_TEXT | PG_PQ_LEVEL)) {
        sb_adds(sb, " AND EXISTS (SELECT 1 FROM objects t WHERE t.kind = 'job' AND t.name = j.job");
        if (mask & PG_PQ_TEXT)
            sb_adds(sb, " AND " PAGE_TEXT("t."));
        if (mask & PG_PQ_LEVEL)
            sb_adds(sb, " AND " PAGE_LEVEL("t."));
        sb_adds(sb, ")");
    }
    sb_adds(sb, " ORDER BY job LIMIT $6");
}

static void page_sql(struct strbuf *sb, unsigned mask)
{
    if (!(mask & PG_PQ_INDEX)) {
        sb_adds(sb, "SELECT name, version, updated_at_ms, json FROM objects"
                    " WHERE kind = $1 AND name > $4");
        if (mask & PG_PQ_TEXT)
            sb_adds(sb, " AND " PAGE_TEXT(""));
        if (mask & PG_PQ_LEVEL)
            sb_adds(sb, " AND " PAGE_LEVEL(""));
        sb_adds(sb, " ORDER BY name LIMIT $6");
        return;
    }
    sb_adds(sb, "SELECT o.name, o.version, o.updated_at_ms, o.json FROM (");
    if (mask & PG_PQ_ENABLED) {
        page_range(sb, "= $3", mask);
    } else {
        sb_adds(sb, "SELECT job FROM ((");
        page_range(sb, "= 0", mask);
        sb_adds(sb, ") UNION ALL (");
        page_range(sb, "= 1", mask);
        sb_adds(sb, ")) u ORDER BY job LIMIT $6");
    }
    sb_adds(sb, ") k JOIN objects o ON o.kind = 'job' AND o.name = k.job ORDER BY k.job");
}

static json_t *page_row(const PGresult *r, int i, bool raw)
{
    struct pg_jb b = {json_object(), false};
    pg__jb_set(&b, "name", pg__jtext(r, i, 0));
    pg__jb_set(&b, "version", pg__jint(r, i, 1));
    pg__jb_set(&b, "updated_at_ms", pg__jint(r, i, 2));
    pg__jb_set(&b, raw ? "json" : "object", raw ? pg__jtext(r, i, 3) : pg__jjson(r, i, 3));
    return pg__jb_done(&b);
}

static int page_result(const PGresult *r, size_t limit, bool raw, json_t **out, struct ty_err *err)
{
    json_t *items = json_array(), *result = json_object();
    int rc = items == NULL || result == NULL ? store__oom(err, "obj_page") : 0;
    size_t n = (size_t)PQntuples(r);
    bool more = n > limit;
    char next[STORE__NAME_CURSOR_MAX] = "";
    for (size_t i = 0; rc == 0 && i < n && i < limit; i++) {
        json_t *v = page_row(r, (int)i, raw);
        if (v == NULL || json_array_append_new(items, v) != 0)
            rc = store__oom(err, "obj_page");
        store__name_cursor_format(PQgetvalue(r, (int)i, 0), next);
    }
    if (rc == 0 &&
        (json_object_set(result, "items", items) != 0 ||
         json_object_set_new(result, "next", more ? json_string(next) : json_null()) != 0))
        rc = store__oom(err, "obj_page");
    json_decref(items);
    if (rc != 0) {
        json_decref(result);
        return rc;
    }
    *out = result;
    return 0;
}

static int pg_obj_page(struct store *base, const struct store_obj_query *q, json_t **out,
                       struct ty_err *err)
{
    struct pg *s = PG(base);
    const char *kn;
    size_t limit;
    char after[STORE__NAME_MAX + 1];
    int rc = store__check_obj_query(q, &kn, &limit, after, err);
    if (rc != 0)
        return rc;
    bool job = q->kind == STORE_JOB;
    bool dom = job && q->domain != NULL && *q->domain != '\0';
    unsigned mask = (dom || (job && q->enabled >= 0) ? PG_PQ_INDEX : 0) |
                    (job && q->enabled >= 0 ? PG_PQ_ENABLED : 0) |
                    (q->text != NULL && *q->text != '\0' ? PG_PQ_TEXT : 0) |
                    (job && q->by_level ? PG_PQ_LEVEL : 0);
    struct strbuf sb;
    sb_init(&sb);
    page_sql(&sb, mask);
    char name[16];
    snprintf(name, sizeof name, "p%u", mask);
    struct pg_params p = {0};
    pg__p_text(&p, kn);
    pg__p_text(&p, dom ? q->domain : "");
    pg__p_int(&p, q->enabled);
    pg__p_text(&p, after);
    pg__p_text(&p, q->text != NULL ? q->text : "");
    pg__p_int(&p, (int64_t)limit + 1);
    pg__p_int(&p, q->level);
    PGresult *r = NULL;
    rc = sb_failed(&sb)
             ? store__oom(err, "obj_page")
             : pg__exec(s, name, sb_str(&sb), &s->prep.page[mask], &p, &r, "obj_page", err);
    sb_free(&sb);
    pg__p_free(&p);
    if (rc == 0)
        rc = page_result(r, limit, q->raw, out, err);
    PQclear(r);
    return rc;
}

/*
 * A scan is a cursor over the (kind, name) key, fetched a few hundred rows at a time into
 * cb: one snapshot (the cursor's), memory of one fetch whatever the number of objects, and
 * between fetches the connection is free, so cb may read through the same store (another
 * scan included: each cursor has its own name).  Outside a batch the scan opens a
 * read-only transaction of its own for the cursor to live in.
 */
static int scan_rows(struct pg *s, const char *cursor, const char *kn,
                     int (*cb)(void *, const char *, int64_t, const char *, size_t), void *arg,
                     struct ty_err *err)
{
    char sql[96];
    snprintf(sql, sizeof sql, "FETCH %d FROM %s", PG_SCAN_FETCH, cursor);
    for (;;) {
        PGresult *r;
        char what[64];
        snprintf(what, sizeof what, "obj_scan %s", kn);
        int rc = pg__exec_once(s, sql, NULL, &r, what, err);
        if (rc != 0)
            return rc;
        int n = PQntuples(r);
        for (int i = 0; rc == 0 && i < n; i++)
            rc = cb(arg, PQgetvalue(r, i, 0), pg__int(r, i, 1), PQgetvalue(r, i, 2),
                    (size_t)PQgetlength(r, i, 2));
        PQclear(r);
        if (rc != 0 || n < PG_SCAN_FETCH)
            return rc;
    }
}

static int pg_obj_scan(struct store *base, enum store_kind kind,
                       int (*cb)(void *arg, const char *name, int64_t version, const char *json,
                                 size_t json_len),
                       void *arg, struct ty_err *err)
{
    struct pg *s = PG(base);
    const char *kn;
    int rc = store__check_scan(kind, (const void *)cb, &kn, err);
    if (rc != 0)
        return rc;
    char what[64], cursor[32], sql[160];
    snprintf(what, sizeof what, "obj_scan %s", kn);
    snprintf(cursor, sizeof cursor, "tethys_scan_%u", ++s->scans);
    bool own = !s->tx;
    if (own && (rc = simple(s, "BEGIN READ ONLY", what, err)) != 0)
        return rc;
    s->tx = true;
    snprintf(sql, sizeof sql,
             "DECLARE %s NO SCROLL CURSOR FOR SELECT name, version, json FROM objects"
             " WHERE kind = $1 ORDER BY name",
             cursor);
    struct pg_params p = {0};
    pg__p_text(&p, kn);
    rc = pg__exec_once(s, sql, &p, NULL, what, err);
    pg__p_free(&p);
    if (rc == 0) {
        rc = scan_rows(s, cursor, kn, cb, arg, err);
        snprintf(sql, sizeof sql, "CLOSE %s", cursor);
        if (PQtransactionStatus(s->conn) == PQTRANS_INTRANS)
            simple(s, sql, what, NULL);
    }
    if (own) {
        if (PQtransactionStatus(s->conn) == PQTRANS_INTRANS)
            PQclear(PQexec(s->conn, "COMMIT"));
        abort_tx(s);
    }
    return rc;
}

static int pg_calendar_users(struct store *base, const char *calendar, int64_t *count, char *first,
                             size_t first_cap, struct ty_err *err)
{
    struct pg *s = PG(base);
    int rc = store__check_id(calendar, STORE__NAME_MAX + 1, "calendar", "calendar_users", err);
    if (rc != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "calendar_users \"%.100s\"", calendar);
    PGresult *r;
    if ((rc = count_step(s, PG_C_CALENDAR_USERS, calendar, what, &r, err)) != 0)
        return rc;
    *count = pg__int(r, 0, 0); /* an aggregate: always one row */
    const char *name = pg__v(r, 0, 1);
    if (first_cap > 0)
        snprintf(first, first_cap, "%s", name != NULL ? name : "");
    PQclear(r);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Alerts.
 */

static int pg_alert_raise(struct store *base, const struct store_alert *a, struct ty_err *err)
{
    struct pg *s = PG(base);
    int rc;
    if ((rc = store__check_alert(a, err)) != 0 || (rc = pg__writable(s, "alert_raise", err)) != 0)
        return rc;
    char *detail = NULL;
    if (a->detail != NULL &&
        (detail = json_dumps(a->detail, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
        return store__oom(err, "alert_raise");
    char what[160];
    snprintf(what, sizeof what, "alert_raise %.100s", a->key);
    struct pg_params p = {0};
    pg__p_text(&p, a->key);
    pg__p_text(&p, a->kind);
    pg__p_text(&p, a->job);
    pg__p_text(&p, a->domain);
    pg__p_int(&p, a->job_level);
    pg__p_int(&p, a->domain_level);
    pg__p_int(&p, a->shard);
    pg__p_int(&p, a->scheduled_at);
    pg__p_int(&p, a->raised_at_ms);
    pg__p_text(&p, a->reason);
    pg__p_text(&p, detail);
    rc = cfg_exec(s, PG_C_ALERT_RAISE, &p, NULL, what, err);
    pg__p_free(&p);
    free(detail);
    return rc;
}

static int pg_alert_clear(struct store *base, const char *key, int64_t cleared_at_ms,
                          struct ty_err *err)
{
    struct pg *s = PG(base);
    int rc = store__check_id(key, STORE__NAME_MAX + 1, "key", "alert_clear", err);
    if (rc != 0 || (rc = pg__writable(s, "alert_clear", err)) != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "alert_clear %.100s", key);
    struct pg_params p = {0};
    pg__p_text(&p, key);
    pg__p_int(&p, cleared_at_ms);
    rc = cfg_exec(s, PG_C_ALERT_CLEAR, &p, NULL, what, err);
    pg__p_free(&p);
    return rc;
}

static json_t *alert_row(const PGresult *r, int i)
{
    struct pg_jb b = {json_object(), false};
    pg__jb_set(&b, "id", pg__jint(r, i, 0));
    pg__jb_set(&b, "key", pg__jtext(r, i, 1));
    pg__jb_set(&b, "kind", pg__jtext(r, i, 2));
    pg__jb_set(&b, "job", pg__jtext(r, i, 3));
    pg__jb_set(&b, "domain", pg__jtext(r, i, 4));
    pg__jb_set(&b, "job_level", pg__jint(r, i, 5));
    pg__jb_set(&b, "domain_level", pg__jint(r, i, 6));
    pg__jb_set(&b, "shard", pg__jint(r, i, 7));
    int64_t sched = pg__int(r, i, 8);
    pg__jb_set(&b, "scheduled_at", json_integer(sched));
    pg__jb_set(&b, "scheduled_at_text", sched != 0 ? store__time_text(sched) : json_null());
    pg__jb_set(&b, "raised_at_ms", pg__jint(r, i, 9));
    pg__jb_set(&b, "last_raised_at_ms", pg__jint(r, i, 10));
    pg__jb_set(&b, "raises", pg__jint(r, i, 11));
    pg__jb_set(&b, "reason", pg__jtext(r, i, 12));
    pg__jb_set(&b, "detail", pg__jjson(r, i, 13));
    return pg__jb_done(&b);
}

/* A read of a fixed statement without parameters into an array of rows. */
static int read_all(struct pg *s, enum pg_cst id, json_t *(*row)(const PGresult *, int),
                    json_t **out, const char *op, struct ty_err *err)
{
    PGresult *r;
    int rc = cfg_exec(s, id, NULL, &r, op, err);
    if (rc == 0)
        rc = pg__collect(r, row, out, op, err);
    PQclear(r);
    return rc;
}

static int pg_alerts_open(struct store *base, json_t **out, struct ty_err *err)
{
    return read_all(PG(base), PG_C_ALERTS_OPEN, alert_row, out, "alerts_open", err);
}

/* ---------------------------------------------------------------------------------------
 * Settings.
 */

static int pg_meta_get(struct store *base, const char *key, char **value, struct ty_err *err)
{
    struct pg *s = PG(base);
    int rc = store__check_id(key, STORE__NAME_MAX + 1, "key", "meta_get", err);
    if (rc != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "meta_get %.100s", key);
    PGresult *r;
    if ((rc = count_step(s, PG_C_META_GET, key, what, &r, err)) != 0)
        return rc;
    if (PQntuples(r) == 0)
        rc = ty_error(err, TY_ENOENT, NULL, -1, 0, "%s: not set", what);
    else if ((*value = strdup(PQgetvalue(r, 0, 0))) == NULL)
        rc = store__oom(err, "meta_get");
    PQclear(r);
    return rc;
}

static int pg_meta_set(struct store *base, const char *key, const char *value, struct ty_err *err)
{
    struct pg *s = PG(base);
    int rc = store__check_meta_set(key, value, err);
    if (rc != 0 || (rc = pg__writable(s, "meta_set", err)) != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "meta_set %.100s", key);
    struct pg_params p = {0};
    pg__p_text(&p, key);
    pg__p_text(&p, value);
    rc = cfg_exec(s, PG_C_META_SET, &p, NULL, what, err);
    pg__p_free(&p);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Configuration history.
 */

static json_t *version_row(const PGresult *r, int i)
{
    struct pg_jb b = {json_object(), false};
    pg__jb_set(&b, "version", pg__jint(r, i, 0));
    pg__jb_set(&b, "op", pg__jtext(r, i, 1));
    pg__jb_set(&b, "at_ms", pg__jint(r, i, 2));
    pg__jb_set(&b, "who", pg__jtext(r, i, 3));
    return pg__jb_done(&b);
}

static int pg_obj_history(struct store *base, enum store_kind kind, const char *name, json_t **out,
                          struct ty_err *err)
{
    struct pg *s = PG(base);
    const char *kn;
    int rc = store__check_obj("obj_history", kind, name, &kn, err);
    if (rc != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "obj_history %s \"%.100s\"", kn, name);
    struct pg_params p = {0};
    pg__p_text(&p, kn);
    pg__p_text(&p, name);
    PGresult *r;
    rc = cfg_exec(s, PG_C_OBJ_HISTORY, &p, &r, what, err);
    pg__p_free(&p);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0)
        rc = ty_error(err, TY_ENOENT, NULL, -1, 0, "%s: never existed", what);
    else
        rc = pg__collect(r, version_row, out, "obj_history", err);
    PQclear(r);
    return rc;
}

static int pg_obj_version(struct store *base, enum store_kind kind, const char *name,
                          int64_t version, char **json, struct ty_err *err)
{
    struct pg *s = PG(base);
    const char *kn;
    int rc = store__check_obj("obj_version", kind, name, &kn, err);
    if (rc != 0 || (rc = store__check_version(kn, name, version, err)) != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "obj_version %s \"%.100s\"", kn, name);
    struct pg_params p = {0};
    pg__p_text(&p, kn);
    pg__p_text(&p, name);
    pg__p_int(&p, version);
    PGresult *r;
    rc = cfg_exec(s, PG_C_OBJ_VERSION_GET, &p, &r, what, err);
    pg__p_free(&p);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0)
        rc = ty_error(err, TY_ENOENT, "version", -1, 0, "%s: no version %" PRId64, what, version);
    else if (PQgetisnull(r, 0, 1))
        rc = ty_error(err, TY_ENOENT, "version", -1, 0,
                      "%s: version %" PRId64 " is its deletion, which has no definition", what,
                      version);
    else if ((*json = strdup(PQgetvalue(r, 0, 1))) == NULL)
        rc = store__oom(err, "obj_version");
    PQclear(r);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * API tokens (the rules are store_sqlite.c's: only the hash is stored, a use is recorded
 * at most once a minute, by a connection that may write).
 */

#define TOKEN_USE_EVERY 60000 /* ms */

static json_t *token_row(const PGresult *r, int i)
{
    struct pg_jb b = {json_object(), false};
    pg__jb_set(&b, "name", pg__jtext(r, i, 0));
    pg__jb_set(&b, "created_at_ms", pg__jint(r, i, 1));
    pg__jb_set(&b, "expires_at_ms", pg__jint(r, i, 2));
    pg__jb_set(&b, "revoked_at_ms", pg__jint(r, i, 3));
    pg__jb_set(&b, "last_used_at_ms", pg__jint(r, i, 4));
    pg__jb_set(&b, "created_by", pg__jtext(r, i, 5));
    return pg__jb_done(&b);
}

static int pg_token_put(struct store *base, const char *name, const char *hash,
                        int64_t expires_at_ms, const char *who, struct ty_err *err)
{
    struct pg *s = PG(base);
    char h[STORE__HASH_HEX + 1];
    int rc = store__check_token_put(name, hash, expires_at_ms, h, err);
    if (rc != 0 || (rc = pg__writable(s, "token_put", err)) != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "token_put \"%.100s\"", name);
    struct pg_params p = {0};
    pg__p_text(&p, name);
    pg__p_text(&p, h);
    pg__p_int(&p, pg__now_ms());
    if (expires_at_ms > 0)
        pg__p_int(&p, expires_at_ms);
    else
        pg__p_null_int(&p); /* never */
    pg__p_text(&p, who);
    PGresult *r;
    rc = cfg_exec(s, PG_C_TOKEN_INSERT, &p, &r, what, err);
    pg__p_free(&p);
    if (rc != 0)
        return rc;
    bool inserted = PQntuples(r) == 1;
    PQclear(r);
    if (inserted)
        return 0;
    /* which one: the name (reported first when both are taken), or the secret */
    pg__p_text(&p, name);
    rc = cfg_exec(s, PG_C_TOKEN_NAMED, &p, &r, what, err);
    pg__p_free(&p);
    if (rc != 0)
        return rc;
    bool named = PQntuples(r) > 0;
    PQclear(r);
    if (named)
        return ty_error(err, TY_EEXIST, "name", -1, 0,
                        "token_put: a token named \"%.100s\" exists (a revoked token keeps its "
                        "name)",
                        name);
    return ty_error(err, TY_EEXIST, "hash", -1, 0,
                    "token_put \"%.100s\": another token has the same secret", name);
}

static int pg_token_list(struct store *base, json_t **out, struct ty_err *err)
{
    return read_all(PG(base), PG_C_TOKEN_LIST, token_row, out, "token_list", err);
}

static int pg_token_revoke(struct store *base, const char *name, int64_t at_ms, struct ty_err *err)
{
    struct pg *s = PG(base);
    int rc = store__check_id(name, STORE__NAME_MAX + 1, "name", "token_revoke", err);
    if (rc != 0 || (rc = pg__writable(s, "token_revoke", err)) != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "token_revoke \"%.100s\"", name);
    struct pg_params p = {0};
    pg__p_text(&p, name);
    pg__p_int(&p, at_ms > 0 ? at_ms : pg__now_ms());
    PGresult *r;
    rc = cfg_exec(s, PG_C_TOKEN_REVOKE, &p, &r, what, err);
    pg__p_free(&p);
    if (rc != 0)
        return rc;
    if (strcmp(PQcmdTuples(r), "0") == 0)
        rc = ty_error(err, TY_ENOENT, "name", -1, 0, "token_revoke: no token named \"%.100s\"",
                      name);
    PQclear(r);
    return rc;
}

/* Record a use of the token with hash h unless one was recorded in the last minute; best
 * effort, and only on a connection that may write.  Returns true when it wrote. */
static bool token_used(struct pg *s, const char *h, const json_t *tok, int64_t now)
{
    const json_t *last = json_object_get(tok, "last_used_at_ms");
    int64_t t = json_is_integer(last) ? json_integer_value(last) : 0;
    if (s->read_only || (s->batch && s->batch_failed) ||
        (json_is_integer(last) && t > now - TOKEN_USE_EVERY && t <= now))
        return false;
    struct pg_params p = {0};
    pg__p_text(&p, h);
    pg__p_int(&p, now);
    pg__p_int(&p, TOKEN_USE_EVERY);
    PGresult *r;
    bool wrote = cfg_exec(s, PG_C_TOKEN_USED, &p, &r, "token_lookup", NULL) == 0 &&
                 strcmp(PQcmdTuples(r), "0") != 0;
    if (r != NULL)
        PQclear(r);
    pg__p_free(&p);
    return wrote;
}

static int pg_token_lookup(struct store *base, const char *hash, json_t **out, struct ty_err *err)
{
    struct pg *s = PG(base);
    char h[STORE__HASH_HEX + 1];
    int rc = store__check_hash("token_lookup", hash, h, err);
    if (rc != 0)
        return rc;
    PGresult *r;
    if ((rc = count_step(s, PG_C_TOKEN_LOOKUP, h, "token_lookup", &r, err)) != 0)
        return rc;
    json_t *tok = NULL;
    if (PQntuples(r) == 0)
        rc = ty_error(err, TY_ENOENT, NULL, -1, 0, "token_lookup: no token has this secret");
    else if ((tok = token_row(r, 0)) == NULL)
        rc = store__oom(err, "token_lookup");
    PQclear(r);
    if (rc != 0)
        return rc;
    int64_t now = pg__now_ms();
    if (token_used(s, h, tok, now))
        json_object_set_new(tok, "last_used_at_ms", json_integer(now));
    *out = tok;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Secrets: all of a job's in one call, one statement each for the delete and the insert
 * (the values go as one JSON object, which PostgreSQL takes apart).
 */

struct secrets_call {
    const char *job, *what;
    const json_t *values;
};

static int secrets_put_body(struct pg *s, void *arg, struct ty_err *err)
{
    struct secrets_call *c = arg;
    struct pg_params p = {0};
    pg__p_text(&p, c->job);
    int rc = cfg_exec(s, PG_C_SECRETS_DELETE, &p, NULL, c->what, err);
    pg__p_free(&p);
    if (rc != 0 || json_object_size(c->values) == 0)
        return rc;
    char *text = json_dumps(c->values, JSON_COMPACT);
    if (text == NULL)
        return store__oom(err, c->what);
    pg__p_text(&p, c->job);
    pg__p_text(&p, text);
    rc = cfg_exec(s, PG_C_SECRETS_INSERT, &p, NULL, c->what, err);
    pg__p_free(&p);
    free(text);
    return rc;
}

static int pg_secrets_put(struct store *base, const char *job, const json_t *values,
                          struct ty_err *err)
{
    struct pg *s = PG(base);
    int rc = store__check_id(job, STORE__NAME_MAX + 1, "job", "secrets_put", err);
    if (rc == 0)
        rc = store__check_secrets(job, values, err);
    if (rc != 0 || (rc = pg__writable(s, "secrets_put", err)) != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "secrets_put job \"%.100s\"", job);
    struct secrets_call c = {job, what, values};
    return pg__tx(s, secrets_put_body, &c, what, err);
}

static int pg_secrets_get(struct store *base, const char *job, json_t **out, struct ty_err *err)
{
    struct pg *s = PG(base);
    int rc = store__check_id(job, STORE__NAME_MAX + 1, "job", "secrets_get", err);
    if (rc != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "secrets_get job \"%.100s\"", job);
    PGresult *r;
    if ((rc = count_step(s, PG_C_SECRETS_GET, job, what, &r, err)) != 0)
        return rc;
    json_t *o = json_object();
    if (o == NULL)
        rc = store__oom(err, "secrets_get");
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        json_t *v = pg__jtext(r, i, 1);
        if (v == NULL || json_object_set_new(o, PQgetvalue(r, i, 0), v) != 0)
            rc = store__oom(err, "secrets_get");
    }
    PQclear(r);
    if (rc != 0) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

/* Many jobs' definitions and secrets in one statement, one round trip: a row per
 * definition (version not NULL) and one per secret, made into the answer by
 * store__jobs_*. */
static int pg_jobs_get_many(struct store *base, const char *const *names, size_t n, json_t **out,
                            struct ty_err *err)
{
    struct pg *s = PG(base);
    int rc = store__check_names("jobs_get_many", names, n, err);
    if (rc != 0)
        return rc;
    json_t *o = json_object();
    if (o == NULL)
        return store__oom(err, "jobs_get_many");
    PGresult *r = NULL;
    struct strbuf list;
    sb_init(&list);
    if (n > 0) {
        store__names_json(names, n, &list);
        if (sb_failed(&list)) {
            rc = store__oom(err, "jobs_get_many");
        } else {
            char what[64];
            snprintf(what, sizeof what, "jobs_get_many (%zu names)", n);
            struct pg_params p = {0};
            pg__p_text(&p, sb_str(&list));
            rc = cfg_exec(s, PG_C_JOBS_GET_MANY, &p, &r, what, err);
            pg__p_free(&p);
        }
    }
    sb_free(&list);
    for (int i = 0; rc == 0 && r != NULL && i < PQntuples(r); i++) {
        const char *job = PQgetvalue(r, i, 0);
        bool ok = !PQgetisnull(r, i, 1)
                      ? store__jobs_def(o, job, pg__int(r, i, 1), pg__jtext(r, i, 2))
                      : store__jobs_secret(o, job, PQgetvalue(r, i, 3), pg__jtext(r, i, 4));
        if (!ok)
            rc = store__oom(err, "jobs_get_many");
    }
    PQclear(r);
    if (rc != 0) {
        json_decref(o);
        return rc;
    }
    store__jobs_done(o);
    *out = o;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Backup: PostgreSQL's own tools do it (pg_dump, or base backups with WAL archiving),
 * consistently and without copying the database through this process.
 */

static int pg_backup(struct store *base, const char *path, struct ty_err *err)
{
    (void)path;
    return ty_error(err, TY_EINVAL, NULL, -1, 0,
                    "backup: the store is the PostgreSQL database %s; back it up with pg_dump "
                    "(or the server's base backups), not with tethys backup",
                    PG(base)->label);
}

/* ---------------------------------------------------------------------------------------
 * Batches.  A writer's batch is READ COMMITTED (each statement sees the latest commits,
 * so the optimistic checks of config writes see a concurrent change); a reader's is one
 * snapshot (REPEATABLE READ, read only), as a SQLite read transaction is.
 */

static int pg_begin(struct store *base, struct ty_err *err)
{
    struct pg *s = PG(base);
    if (s->batch || s->tx)
        return ty_error(err, TY_EINVAL, NULL, -1, 0,
                        "begin: a transaction is already open on %s (commit or rollback first)",
                        s->label);
    int rc = s->read_only ? 0 : pg__partitions_ahead(s, err);
    if (rc == 0)
        rc = simple(s, s->read_only ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN",
                    "begin", err);
    if (rc != 0)
        return rc;
    s->tx = s->batch = true;
    s->batch_failed = 0;
    return 0;
}

static int pg_commit(struct store *base, struct ty_err *err)
{
    struct pg *s = PG(base);
    if (!s->batch)
        return ty_error(err, TY_EINVAL, NULL, -1, 0, "commit: no transaction is open on %s",
                        s->label);
    if (!s->batch_failed && !s->broken && PQtransactionStatus(s->conn) == PQTRANS_INERROR)
        s->batch_failed = TY_EIO; /* an error nobody reported: never commit a half batch */
    int rc = s->batch_failed;
    if (rc != 0)
        ty_error(err, rc, NULL, -1, 0,
                 "commit: the batch was rolled back after an earlier error (%s); nothing in it "
                 "was stored",
                 ty_strerror(rc));
    else
        rc = simple(s, "COMMIT", "commit", err);
    abort_tx(s);
    if (rc != 0)
        pg__days_forget(s); /* partitions made in the batch went with it */
    s->batch = false;
    s->batch_failed = 0;
    return rc;
}

static void pg_rollback(struct store *base)
{
    struct pg *s = PG(base);
    if (s->batch) {
        abort_tx(s);
        pg__days_forget(s); /* partitions made in the batch went with it */
    }
    s->batch = false;
    s->batch_failed = 0;
}

/* ---------------------------------------------------------------------------------------
 * Whole tables as rows (store_rows_*), for copying a store: statements built from the
 * column lists store_common.c keeps for both back ends.  A load sends its whole batch as
 * one JSON parameter and inserts it with one statement (json_array_elements, in the
 * batch's order, so sequences number the rows as the source did); objects then file
 * their jobs in the job index as obj_put does, and history (store_pg_runs.c) also fills
 * its keys, its days and its partitions.
 */

void pg__rows_select(struct strbuf *sb, const struct store__table *t)
{
    sb_adds(sb, "SELECT ");
    for (size_t c = 0; c < t->ncols; c++) {
        const char *n = t->cols[c].name;
        switch (t->cols[c].type) {
        case STORE__COL_INT: sb_addf(sb, "(v ->> '%s')::bigint", n); break;
        case STORE__COL_JSON: sb_addf(sb, "(v ->> '%s')::json", n); break;
        case STORE__COL_BYTES: sb_addf(sb, "decode(v ->> '%s', 'base64')", n); break;
        case STORE__COL_TEXT: sb_addf(sb, "(v ->> '%s')", n); break;
        }
        sb_addf(sb, " AS \"%s\", ", n);
    }
    sb_adds(sb, "ord FROM json_array_elements($1::json) WITH ORDINALITY AS e(v, ord)");
}

void pg__rows_cols(struct strbuf *sb, const struct store__table *t)
{
    for (size_t c = 0; c < t->ncols; c++)
        sb_addf(sb, "%s\"%s\"", c > 0 ? ", " : "", t->cols[c].name);
}

struct rows_call {
    enum store_table tn;
    const struct store__table *t;
    const json_t *rows;
    const char *text; /* rows as JSON text */
    const char *what;
};

static int rows_load_body(struct pg *s, void *arg, struct ty_err *err)
{
    const struct rows_call *c = arg;
    if (c->tn == STORE_T_RUNS || c->tn == STORE_T_SKIPS)
        return pg__rows_load_history(s, c->tn, c->t, c->rows, c->text, c->what, err);
    struct strbuf sql;
    sb_init(&sql);
    sb_adds(&sql, "WITH x AS (");
    pg__rows_select(&sql, c->t);
    sb_addf(&sql, ") INSERT INTO %s (", c->t->name);
    pg__rows_cols(&sql, c->t);
    sb_adds(&sql, ") SELECT ");
    pg__rows_cols(&sql, c->t);
    sb_adds(&sql, " FROM x ORDER BY ord");
    struct pg_params p = {0};
    pg__p_text(&p, c->text);
    int rc = sb_failed(&sql) ? store__oom(err, c->what)
                             : pg__exec_once(s, sb_str(&sql), &p, NULL, c->what, err);
    pg__p_free(&p);
    sb_free(&sql);
    size_t i;
    const json_t *row;
    json_array_foreach(c->rows, i, row)
    {
        const char *domain;
        int enabled;
        if (rc != 0)
            break;
        if (c->tn == STORE_T_OBJECTS && store__row_job_place(row, &domain, &enabled)) {
            struct place none = {NULL, 0}, at = {(char *)domain, enabled};
            rc = job_moved(s, json_string_value(json_object_get(row, "name")), &none, &at, c->what,
                           err);
        }
    }
    return rc;
}

static int pg_rows_load(struct store *base, enum store_table tn, const json_t *rows,
                        struct ty_err *err)
{
    struct pg *s = PG(base);
    const struct store__table *t;
    int rc = store__check_table(tn, "rows_load", &t, err);
    if (rc != 0 || (rc = store__check_rows(t, rows, "rows_load", err)) != 0)
        return rc;
    char what[64];
    snprintf(what, sizeof what, "rows_load %s", t->name);
    if ((rc = pg__writable(s, what, err)) != 0 || json_array_size(rows) == 0)
        return rc;
    char *text = json_dumps(rows, JSON_COMPACT);
    if (text == NULL)
        return store__oom(err, what);
    struct rows_call c = {tn, t, rows, text, what};
    rc = pg__tx(s, rows_load_body, &c, what, err);
    free(text);
    return rc;
}

/* Row i of r as a JSON object of t's columns; NULL when memory ran out. */
static json_t *table_row(const PGresult *r, int i, const struct store__table *t)
{
    struct pg_jb b = {json_object(), false};
    for (int c = 0; c < (int)t->ncols; c++)
        pg__jb_set(&b, t->cols[c].name,
                   t->cols[c].type == STORE__COL_INT ? pg__jint(r, i, c) : pg__jtext(r, i, c));
    return pg__jb_done(&b);
}

static int pg_rows_scan(struct store *base, enum store_table tn,
                        int (*cb)(void *arg, const json_t *row), void *arg, struct ty_err *err)
{
    struct pg *s = PG(base);
    const struct store__table *t;
    int rc = store__check_table(tn, "rows_scan", &t, err);
    if (rc != 0)
        return rc;
    if (cb == NULL)
        return ty_error(err, TY_EINVAL, "cb", -1, 0, "rows_scan %s: cb is NULL", t->name);
    char what[64], cursor[32];
    snprintf(what, sizeof what, "rows_scan %s", t->name);
    snprintf(cursor, sizeof cursor, "tethys_scan_%u", ++s->scans);
    struct strbuf sql;
    sb_init(&sql);
    sb_addf(&sql, "DECLARE %s NO SCROLL CURSOR FOR SELECT ", cursor);
    for (size_t c = 0; c < t->ncols; c++) {
        const char *n = t->cols[c].name;
        if (c > 0)
            sb_adds(&sql, ", ");
        if (t->cols[c].type == STORE__COL_BYTES) /* base64 without encode's line breaks */
            sb_addf(&sql, "translate(encode(\"%s\", 'base64'), E'\\n', '')", n);
        else if (t->cols[c].type == STORE__COL_JSON)
            sb_addf(&sql, "\"%s\"::text", n);
        else
            sb_addf(&sql, "\"%s\"", n);
    }
    sb_addf(&sql, " FROM %s", t->name);
    if (t->where != NULL)
        sb_addf(&sql, " WHERE %s", t->where);
    sb_addf(&sql, " ORDER BY %s",
            t->order != NULL       ? t->order
            : tn == STORE_T_ALERTS ? "id"
                                   : "scheduled_at, id");
    if (sb_failed(&sql)) {
        sb_free(&sql);
        return store__oom(err, what);
    }
    bool own = !s->tx;
    if (own && (rc = simple(s, "BEGIN READ ONLY", what, err)) != 0) {
        sb_free(&sql);
        return rc;
    }
    s->tx = true;
    rc = pg__exec_once(s, sb_str(&sql), NULL, NULL, what, err);
    sb_free(&sql);
    char fetch[96];
    snprintf(fetch, sizeof fetch, "FETCH %d FROM %s", PG_SCAN_FETCH, cursor);
    for (bool more = rc == 0; more;) {
        PGresult *r;
        if ((rc = pg__exec_once(s, fetch, NULL, &r, what, err)) != 0)
            break;
        int n = PQntuples(r);
        for (int i = 0; rc == 0 && i < n; i++) {
            json_t *row = table_row(r, i, t);
            rc = row != NULL ? cb(arg, row) : store__oom(err, what);
            json_decref(row);
        }
        PQclear(r);
        more = rc == 0 && n == PG_SCAN_FETCH;
    }
    if (own) {
        if (PQtransactionStatus(s->conn) == PQTRANS_INTRANS)
            PQclear(PQexec(s->conn, "COMMIT"));
        abort_tx(s);
    } else if (PQtransactionStatus(s->conn) == PQTRANS_INTRANS) {
        char close[64];
        snprintf(close, sizeof close, "CLOSE %s", cursor);
        simple(s, close, what, NULL);
    }
    return rc;
}

static int pg_rows_count(struct store *base, enum store_table tn, int64_t *count,
                         struct ty_err *err)
{
    struct pg *s = PG(base);
    const struct store__table *t;
    int rc = store__check_table(tn, "rows_count", &t, err);
    if (rc != 0)
        return rc;
    char sql[160], what[64];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s%s%s", t->name,
             t->where != NULL ? " WHERE " : "", t->where != NULL ? t->where : "");
    snprintf(what, sizeof what, "rows_count %s", t->name);
    PGresult *r;
    if ((rc = pg__exec_once(s, sql, NULL, &r, what, err)) != 0)
        return rc;
    *count = pg__int(r, 0, 0);
    PQclear(r);
    return 0;
}

static const struct store_ops pg_ops = {
    .close = pg_close,
    .obj_put = pg_obj_put,
    .obj_get = pg_obj_get,
    .obj_delete = pg_obj_delete,
    .obj_list = pg_obj_list,
    .job_count = pg_job_count,
    .obj_page = pg_obj_page,
    .obj_scan = pg_obj_scan,
    .calendar_users = pg_calendar_users,
    .run_put = pg__run_put,
    .skip_put = pg__skip_put,
    .run_get = pg__run_get,
    .runs_unfinished = pg__runs_unfinished,
    .fire_shards = pg__fire_shards,
    .last_fires = pg__last_fires,
    .executor_last_fires = pg__executor_last_fires,
    .skips_last = pg__skips_last,
    .history = pg__history,
    .stats = pg__stats,
    .prune = pg__prune,
    .alert_raise = pg_alert_raise,
    .alert_clear = pg_alert_clear,
    .alerts_open = pg_alerts_open,
    .meta_get = pg_meta_get,
    .meta_set = pg_meta_set,
    .obj_history = pg_obj_history,
    .obj_version = pg_obj_version,
    .token_put = pg_token_put,
    .token_list = pg_token_list,
    .token_revoke = pg_token_revoke,
    .token_lookup = pg_token_lookup,
    .user_create = pg__user_create,
    .user_update = pg__user_update,
    .user_get = pg__user_get,
    .user_list = pg__user_list,
    .user_delete = pg__user_delete,
    .user_signin = pg__user_signin,
    .session_put = pg__session_put,
    .session_get = pg__session_get,
    .session_touch = pg__session_touch,
    .session_delete = pg__session_delete,
    .grants_set = pg__grants_set,
    .grants_get = pg__grants_get,
    .secrets_put = pg_secrets_put,
    .secrets_get = pg_secrets_get,
    .jobs_get_many = pg_jobs_get_many,
    .backup = pg_backup,
    .rows_scan = pg_rows_scan,
    .rows_load = pg_rows_load,
    .rows_count = pg_rows_count,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
};
