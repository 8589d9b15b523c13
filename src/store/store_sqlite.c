/*
 * store_sqlite.c - the store (store.h) on one SQLite file in the data directory.
 *
 * One `struct sq` is one connection, used by one thread at a time (SQLITE_OPEN_NOMUTEX).
 * The server opens one read-write connection for its writer thread and one read-only
 * connection per reader; WAL mode lets them run at once: readers see the last committed
 * snapshot and never block the writer, and the writer never blocks them.  busy_timeout
 * (5 s) covers the moments WAL still serialises (a second writer, a checkpoint reset, a
 * reader opening while the writer recovers the log).  The writer runs with
 * synchronous=NORMAL: a commit reaches the WAL with write() but is fsync'd only at
 * checkpoints, so a power cut (not a crash of the process: that loses nothing) may lose
 * the last transactions, never corrupt the file.  Run results that must survive that are
 * the executor spool's job (DESIGN §4.3), not the database's.
 *
 * Writes are the hot path: the writer appends thousands of runs a second.  Every fixed
 * statement is prepared once per connection (SQLITE_PREPARE_PERSISTENT) and reused; values
 * are bound SQLITE_STATIC straight from the caller's struct; run_put and skip_put are one
 * UPSERT each, so outside a batch they are one implicit transaction and inside a batch
 * (store_begin .. store_commit) one statement with no savepoint.  Multi-statement calls
 * (obj_put, obj_delete, prune) run in BEGIN IMMEDIATE .. COMMIT, or inside a batch in a
 * SAVEPOINT, so a failed call changes nothing even in the middle of a batch and the batch
 * goes on.  When SQLite itself abandons the whole transaction (disk full, I/O error), the
 * batch is marked failed: later calls and commit say so until rollback.
 *
 * Schema: the migrations[] array below, one SQL step per schema version; meta holds
 * schema_version and the file carries Tethys's application_id, so store_open_sqlite can
 * tell a Tethys database from any other SQLite file.  Migrating an existing file first
 * copies it beside itself (<path>.v<old>-<time>.bak), inside the migration's transaction.
 * Copies - that one and store_backup - use SQLite's online backup API in one step over one
 * snapshot, so they are consistent while the server writes.  docs/internals/store.md
 * explains the tables, indexes, retention, the batching writer, tokens and backups.
 *
 * Jobs by domain subtree are indexed (schema 3): every job put and delete also files the
 * job under each domain of its chain (job_domains) and keeps a count per subtree
 * (job_counts), in the same transaction, so counting a subtree is one probe and never
 * reads the jobs.  Runs are indexed by executor (schema 4), so a cluster finds where a dead
 * executor stopped (executor_last_fires) without reading the other executors' history.
 * Users, their sessions and the grants of users and tokens came with schema 5.
 *
 * Reads build jansson values.  History is keyset-paginated on (scheduled_at, kind, row id)
 * with one prepared statement per filter combination, so every page is an index range
 * scan, whatever its depth; stats streams runs in group order and computes exact
 * percentiles in C, one group at a time.
 */
#include "store.h"
#include "store_common.h"
#include "store_users.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/b64.h"
#include "../core/domain.h"
#include "../core/strbuf.h"

#define STORE_BUSY_MS 5000
#define TETHYS_APP_ID 1413829721 /* 0x54455459, "TETY": the SQLite header's application_id */
#define STR_(x)       #x
#define STR(x)        STR_(x)

/* ---------------------------------------------------------------------------------------
 * Schema.  migrations[i] takes a database from schema version i to i + 1; a new version
 * appends a step and never edits an old one (a directory written by any earlier binary
 * must migrate the same way).  Enumerations (status, trigger, kind, op) are stored as
 * their text names with no CHECK, so a later version can add a value without rebuilding
 * a table; what has to be right from the start is every key and uniqueness rule.
 */
/* clang-format off */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "PRAGMA application_id = " STR(TETHYS_APP_ID) ";"

    "CREATE TABLE meta ("
    "  key   TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL"
    ") WITHOUT ROWID;"

    /* The current version of every config object.  domain is the job's domain (copied out
     * of the JSON on write, for obj_list's subtree filter), a domain's own path, NULL for
     * calendars. */
    "CREATE TABLE objects ("
    "  id            INTEGER PRIMARY KEY,"
    "  kind          TEXT NOT NULL,"
    "  name          TEXT NOT NULL,"
    "  version       INTEGER NOT NULL CHECK (version > 0),"
    "  json          TEXT NOT NULL CHECK (json_valid(json) AND json_type(json) = 'object'),"
    "  domain        TEXT,"
    "  created_at_ms INTEGER NOT NULL,"
    "  updated_at_ms INTEGER NOT NULL,"
    "  updated_by    TEXT,"
    "  UNIQUE (kind, name)"
    ");"
    "CREATE INDEX objects_domain ON objects (kind, domain);"

    /* Every change ever made: one row per put or delete.  Versions of one (kind, name)
     * keep counting across a delete and a re-create, so an ETag is never reused.  A delete
     * row has json NULL; the row before it holds what was deleted. */
    "CREATE TABLE object_versions ("
    "  kind    TEXT NOT NULL,"
    "  name    TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  op      TEXT NOT NULL,"
    "  json    TEXT CHECK (json IS NULL OR json_valid(json)),"
    "  at_ms   INTEGER NOT NULL,"
    "  who     TEXT,"
    "  PRIMARY KEY (kind, name, version)"
    ");"
    "CREATE INDEX object_versions_at ON object_versions (at_ms);"

    /* One row per attempt.  output is the last column so reading the others never walks
     * its overflow pages. */
    "CREATE TABLE runs ("
    "  id            INTEGER PRIMARY KEY,"
    "  run_id        TEXT NOT NULL UNIQUE,"
    "  fire_id       TEXT NOT NULL,"
    "  attempt       INTEGER NOT NULL,"
    "  job           TEXT NOT NULL,"
    "  domain        TEXT NOT NULL,"
    "  shard         INTEGER NOT NULL,"
    "  \"trigger\"   TEXT NOT NULL,"
    "  status        TEXT NOT NULL,"
    "  scheduled_at  INTEGER NOT NULL,"
    "  queued_at_ms  INTEGER NOT NULL,"
    "  started_at_ms INTEGER NOT NULL,"
    "  ended_at_ms   INTEGER NOT NULL,"
    "  pid           INTEGER NOT NULL,"
    "  pid_start     INTEGER NOT NULL,"
    "  boot_id       TEXT,"
    "  executor      TEXT,"
    "  epoch         INTEGER NOT NULL,"
    "  exit_code     INTEGER NOT NULL,"
    "  signal        INTEGER NOT NULL,"
    "  error         TEXT,"
    "  output        BLOB,"
    "  UNIQUE (fire_id, attempt)"
    ");"
    "CREATE INDEX runs_job ON runs (job, scheduled_at);"
    "CREATE INDEX runs_scheduled ON runs (scheduled_at);"
    "CREATE INDEX runs_unfinished ON runs (status) WHERE status IN ('queued', 'running');"

    "CREATE TABLE skips ("
    "  id             INTEGER PRIMARY KEY,"
    "  fire_id        TEXT NOT NULL,"
    "  shard          INTEGER NOT NULL,"
    "  job            TEXT NOT NULL,"
    "  domain         TEXT NOT NULL,"
    "  scheduled_at   INTEGER NOT NULL,"
    "  recorded_at_ms INTEGER NOT NULL,"
    "  reason         TEXT NOT NULL,"
    "  detail         TEXT,"
    "  \"trigger\"    TEXT NOT NULL,"
    "  UNIQUE (fire_id, shard)"
    ");"
    "CREATE INDEX skips_job ON skips (job, scheduled_at);"
    "CREATE INDEX skips_scheduled ON skips (scheduled_at);"

    /* Alerts stay after they clear (the history of an incident); at most one open per key. */
    "CREATE TABLE alerts ("
    "  id                INTEGER PRIMARY KEY,"
    "  key               TEXT NOT NULL,"
    "  kind              TEXT NOT NULL,"
    "  job               TEXT,"
    "  domain            TEXT,"
    "  job_level         INTEGER NOT NULL,"
    "  domain_level      INTEGER NOT NULL,"
    "  shard             INTEGER NOT NULL,"
    "  scheduled_at      INTEGER NOT NULL,"
    "  raised_at_ms      INTEGER NOT NULL,"
    "  last_raised_at_ms INTEGER NOT NULL,"
    "  raises            INTEGER NOT NULL DEFAULT 1,"
    "  cleared_at_ms     INTEGER,"
    "  reason            TEXT NOT NULL,"
    "  detail            TEXT CHECK (detail IS NULL OR json_valid(detail))"
    ");"
    "CREATE UNIQUE INDEX alerts_open_key ON alerts (key) WHERE cleared_at_ms IS NULL;"
    "CREATE INDEX alerts_cleared ON alerts (cleared_at_ms) WHERE cleared_at_ms IS NOT NULL;",

    /* 1 -> 2 (issue 5: API tokens, secrets) */

    /* API tokens by name; only the hex SHA-256 of the secret is kept, unique so a lookup
     * is one index probe.  NULL times mean never (expires, revoked, used).  A revoked
     * token stays, so its name is never reused and the audit trail keeps it. */
    "CREATE TABLE tokens ("
    "  name            TEXT PRIMARY KEY,"
    "  hash            TEXT NOT NULL UNIQUE,"
    "  created_at_ms   INTEGER NOT NULL,"
    "  expires_at_ms   INTEGER,"
    "  revoked_at_ms   INTEGER,"
    "  last_used_at_ms INTEGER,"
    "  created_by      TEXT"
    ");"

    /* Secret environment values, apart from the job definitions (which name them but
     * never hold them) and therefore out of object_versions and every API answer. */
    "CREATE TABLE secrets ("
    "  job   TEXT NOT NULL,"
    "  name  TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (job, name)"
    ") WITHOUT ROWID;",

    /* 2 -> 3 (a million jobs: counts and pages by domain subtree without reading every job) */

    /* Where each job lies: one row per job and per domain whose subtree holds it - its own
     * domain and each ancestor up to the root '' - with whether the job is enabled ("enabled"
     * is not false in its JSON).  The key orders a subtree's jobs by name, enabled and
     * disabled ones apart, so a page of a subtree is one index range.  Kept by obj_put and
     * obj_delete in the transaction of the change. */
    "CREATE TABLE job_domains ("
    "  domain  TEXT NOT NULL,"
    "  enabled INTEGER NOT NULL,"
    "  job     TEXT NOT NULL,"
    "  PRIMARY KEY (domain, enabled, job)"
    ") WITHOUT ROWID;"

    /* The number of jobs in each domain's subtree (a row only while there are some). */
    "CREATE TABLE job_counts ("
    "  domain TEXT PRIMARY KEY,"
    "  jobs   INTEGER NOT NULL CHECK (jobs > 0)"
    ") WITHOUT ROWID;"

    /* Fill both from the jobs there are.  The parent of d is d up to its last '/' (rtrim
     * drops the trailing characters other than '/', substr that '/'), '' when there is
     * none: domain_parent's rule, as the C code that keeps the tables applies it. */
    "INSERT INTO job_domains (domain, enabled, job)"
    " WITH RECURSIVE up (domain, enabled, job) AS ("
    "  SELECT coalesce(domain, ''),"
    "   CASE json_type(json, '$.enabled') WHEN 'false' THEN 0 ELSE 1 END, name"
    "  FROM objects WHERE kind = 'job'"
    "  UNION ALL"
    "  SELECT substr(rtrim(domain, replace(domain, '/', '')), 1,"
    "   length(rtrim(domain, replace(domain, '/', ''))) - 1), enabled, job"
    "  FROM up WHERE domain <> '')"
    " SELECT domain, enabled, job FROM up;"
    "INSERT INTO job_counts (domain, jobs)"
    " SELECT domain, count(*) FROM job_domains GROUP BY domain;",

    /* 3 -> 4 (a cluster resumes a dead executor's shards after its last fires) */

    /* executor_last_fires: one executor's runs since a time, as one range.  Built over the
     * runs there are, inside the migration's transaction. */
    "CREATE INDEX runs_executor ON runs (executor, scheduled_at);",

    /* 4 -> 5 (issue 12: users, sessions, roles) */

    /* People who sign in.  Only the password's Argon2id hash is kept.  failed_attempts
     * counts failed sign-ins since the last good one; locked_until_ms, when later than now,
     * refuses every sign-in (NULL: never locked). */
    "CREATE TABLE users ("
    "  name                   TEXT PRIMARY KEY,"
    "  password_hash          TEXT NOT NULL,"
    "  must_change_password   INTEGER NOT NULL DEFAULT 0,"
    "  failed_attempts        INTEGER NOT NULL DEFAULT 0,"
    "  locked_until_ms        INTEGER,"
    "  created_at_ms          INTEGER NOT NULL,"
    "  created_by             TEXT,"
    "  updated_at_ms          INTEGER NOT NULL,"
    "  password_changed_at_ms INTEGER NOT NULL,"
    "  last_signin_at_ms      INTEGER"
    ") WITHOUT ROWID;"

    /* Signed-in browsers, by the SHA-256 of the id their cookie carries (the id itself is
     * never stored, as for tokens).  Expired ones are deleted when a new one is made. */
    "CREATE TABLE sessions ("
    "  hash          TEXT PRIMARY KEY,"
    "  user_name     TEXT NOT NULL,"
    "  csrf          TEXT NOT NULL,"
    "  created_at_ms INTEGER NOT NULL,"
    "  expires_at_ms INTEGER NOT NULL,"
    "  last_seen_ms  INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX sessions_user ON sessions (user_name);"
    "CREATE INDEX sessions_expires ON sessions (expires_at_ms);"
    "CREATE INDEX sessions_seen ON sessions (last_seen_ms);"

    /* Roles on domain subtrees, of users and tokens alike; domain '' is the whole tree. */
    "CREATE TABLE grants ("
    "  kind   TEXT NOT NULL,"
    "  name   TEXT NOT NULL,"
    "  domain TEXT NOT NULL,"
    "  role   TEXT NOT NULL,"
    "  PRIMARY KEY (kind, name, domain)"
    ") WITHOUT ROWID;"

    /* Every token there is keeps the whole API it had: admin of the whole tree. */
    "INSERT INTO grants (kind, name, domain, role)"
    " SELECT 'token', name, '', 'admin' FROM tokens;",
};
/* clang-format on */

#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ---------------------------------------------------------------------------------------
 * Fixed statements, prepared on first use and kept for the life of the connection.
 */
#define RUN_COLS                                                                                   \
    "run_id, fire_id, attempt, job, domain, shard, \"trigger\", status, scheduled_at, "            \
    "queued_at_ms, started_at_ms, ended_at_ms, pid, pid_start, boot_id, executor, epoch, "         \
    "exit_code, signal, error"
#define RUN_NCOLS 20 /* then the output (run_get) or its length (everything else) */

enum st {
    ST_BEGIN,
    ST_BEGIN_READ,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_OBJ_CUR,
    ST_OBJ_STATE,
    ST_OBJ_LASTVER,
    ST_OBJ_INSERT,
    ST_OBJ_UPDATE,
    ST_OBJ_DELETE,
    ST_OBJ_VERSION,
    ST_OBJ_LIST,
    ST_OBJ_LIST_DOMAIN,
    ST_COUNT_ADD,
    ST_COUNT_LESS,
    ST_COUNT_DROP,
    ST_PLACE_ADD,
    ST_PLACE_DROP,
    ST_JOB_COUNT,
    ST_CALENDAR_USERS,
    ST_RUN_UPSERT,
    ST_RUN_IDENTITY,
    ST_SKIP_INSERT,
    ST_RUN_GET,
    ST_RUNS_UNFINISHED,
    ST_FIRE_SHARDS,
    ST_LAST_FIRES_RUNS,
    ST_LAST_FIRES_SKIPS,
    ST_EXECUTOR_LAST_FIRES,
    ST_SKIPS_LAST,
    ST_PRUNE_RUNS_AGE,
    ST_PRUNE_SKIPS_AGE,
    ST_PRUNE_ALERTS_AGE,
    ST_PRUNE_MARK,
    ST_PRUNE_RUNS_COUNT,
    ST_PRUNE_SKIPS_COUNT,
    ST_PRUNE_UNMARK,
    ST_ALERT_RAISE,
    ST_ALERT_CLEAR,
    ST_ALERTS_OPEN,
    ST_META_GET,
    ST_META_SET,
    ST_OBJ_HISTORY,
    ST_OBJ_VERSION_GET,
    ST_TOKEN_INSERT,
    ST_TOKEN_LIST,
    ST_TOKEN_REVOKE,
    ST_TOKEN_LOOKUP,
    ST_TOKEN_USED,
    ST_TOKEN_NAMED,
    ST_SECRETS_DELETE,
    ST_SECRET_INSERT,
    ST_SECRETS_GET,
    ST_USER_INSERT,
    ST_USER_SET_PASSWORD,
    ST_USER_REHASH,
    ST_USER_SET_MUST,
    ST_USER_UNLOCK,
    ST_USER_TOUCHED,
    ST_USER_GET,
    ST_USER_LIST,
    ST_USER_DELETE,
    ST_USER_SIGNIN_OK,
    ST_USER_SIGNIN_FAIL,
    ST_USER_SESSIONS_END,
    ST_USER_SESSIONS_END_BUT,
    ST_SESSION_PRUNE,
    ST_SESSION_INSERT,
    ST_SESSION_GET,
    ST_SESSION_TOUCH,
    ST_SESSION_DELETE,
    ST_GRANTS_DELETE,
    ST_GRANT_INSERT,
    ST_GRANTS_GET,
    ST_JOBS_GET_MANY,
    ST_COUNT
};

#define USER_COLS                                                                                  \
    "name, must_change_password, failed_attempts, locked_until_ms, created_at_ms, created_by,"     \
    " updated_at_ms, password_changed_at_ms, last_signin_at_ms, password_hash"

#define TOKEN_COLS "name, created_at_ms, expires_at_ms, revoked_at_ms, last_used_at_ms, created_by"

#define OBJ_DOMAIN_EXPR                                                                            \
    "CASE ?1 WHEN 'job' THEN CASE WHEN json_valid(?4) THEN "                                       \
    "coalesce(json_extract(?4, '$.domain'), '') END WHEN 'domain' THEN ?2 END"

/* Where a stored object lies, for the job index: its domain ('' when none) and whether it
 * is enabled (only "enabled": false disables, as the job model's default is true).  The
 * same rules as migrations[2], which fills the index for jobs stored before it. */
#define OBJ_PLACE_COLS                                                                             \
    "coalesce(domain, ''), CASE json_type(json, '$.enabled') WHEN 'false' THEN 0 ELSE 1 END"

/*
 * For every job, its newest schedule- or misfire-triggered fire: the distinct jobs by a
 * skip-scan of (job, scheduled_at) (one seek per job), then per job a backward walk of the
 * same index to the first such row, normally the newest.  Nothing is maintained on the
 * write path for it (a partial index or a trigger-kept table measured 25-300% slower
 * appends); it runs once, at start-up.
 */
#define LAST_FIRES(tbl)                                                                            \
    "WITH RECURSIVE j(job) AS (SELECT min(job) FROM " tbl " UNION ALL"                             \
    " SELECT (SELECT min(job) FROM " tbl " WHERE job > j.job) FROM j WHERE j.job IS NOT NULL)"     \
    " SELECT job, (SELECT scheduled_at FROM " tbl " WHERE job = j.job"                             \
    "  AND \"trigger\" IN ('schedule', 'misfire') ORDER BY scheduled_at DESC LIMIT 1) AS at"       \
    " FROM j WHERE job IS NOT NULL"

static const char *const st_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_BEGIN_READ] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT store_call",
    [ST_RELEASE] = "RELEASE store_call",
    [ST_ROLLBACK_TO] = "ROLLBACK TO store_call",
    [ST_OBJ_CUR] = "SELECT version, json FROM objects WHERE kind = ?1 AND name = ?2",
    [ST_OBJ_STATE] = "SELECT version, json, " OBJ_PLACE_COLS " FROM objects"
                     " WHERE kind = ?1 AND name = ?2",
    [ST_OBJ_LASTVER] = "SELECT coalesce(max(version), 0) FROM object_versions"
                       " WHERE kind = ?1 AND name = ?2",
    [ST_OBJ_INSERT] = "INSERT INTO objects (kind, name, version, json, domain, created_at_ms,"
                      " updated_at_ms, updated_by)"
                      " VALUES (?1, ?2, ?3, ?4, " OBJ_DOMAIN_EXPR ", ?5, ?5, ?6)"
                      " RETURNING " OBJ_PLACE_COLS,
    [ST_OBJ_UPDATE] = "UPDATE objects SET version = ?3, json = ?4, domain = " OBJ_DOMAIN_EXPR
                      ", updated_at_ms = ?5, updated_by = ?6 WHERE kind = ?1 AND name = ?2"
                      " RETURNING " OBJ_PLACE_COLS,
    [ST_OBJ_DELETE] = "DELETE FROM objects WHERE kind = ?1 AND name = ?2",
    [ST_OBJ_VERSION] = "INSERT INTO object_versions (kind, name, version, op, json, at_ms, who)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_OBJ_LIST] = "SELECT name, version, updated_at_ms, updated_by, json FROM objects"
                    " WHERE kind = ?1 ORDER BY name",
    [ST_OBJ_LIST_DOMAIN] =
        "SELECT name, version, updated_at_ms, updated_by, json FROM objects"
        " WHERE kind = ?1 AND " STORE__DOMAIN_RANGE("domain", "?2") " ORDER BY name",
    [ST_COUNT_ADD] = "INSERT INTO job_counts (domain, jobs) VALUES (?1, 1)"
                     " ON CONFLICT (domain) DO UPDATE SET jobs = jobs + 1",
    [ST_COUNT_LESS] = "UPDATE job_counts SET jobs = jobs - 1 WHERE domain = ?1 AND jobs > 1",
    [ST_COUNT_DROP] = "DELETE FROM job_counts WHERE domain = ?1",
    [ST_PLACE_ADD] = "INSERT INTO job_domains (domain, enabled, job) VALUES (?1, ?2, ?3)",
    [ST_PLACE_DROP] = "DELETE FROM job_domains WHERE domain = ?1 AND enabled = ?2 AND job = ?3",
    [ST_JOB_COUNT] = "SELECT jobs FROM job_counts WHERE domain = ?1",
    /* a job uses a calendar when a string in its calendars.skip or .only array names it */
    [ST_CALENDAR_USERS] = "SELECT count(*), min(o.name) FROM objects o WHERE o.kind = 'job'"
                          " AND EXISTS (SELECT 1 FROM json_each(o.json, '$.calendars') l,"
                          "  json_each(l.value) c WHERE l.key IN ('skip', 'only')"
                          "  AND l.type = 'array' AND c.type = 'text' AND c.value = ?1)",
    [ST_RUN_UPSERT] =
        "INSERT INTO runs (" RUN_COLS ", output) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
        " ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)"
        " ON CONFLICT (run_id) DO UPDATE SET status = excluded.status,"
        " queued_at_ms = excluded.queued_at_ms, started_at_ms = excluded.started_at_ms,"
        " ended_at_ms = excluded.ended_at_ms, pid = excluded.pid, pid_start = excluded.pid_start,"
        " boot_id = excluded.boot_id, executor = excluded.executor, epoch = excluded.epoch,"
        " exit_code = excluded.exit_code, signal = excluded.signal, error = excluded.error,"
        " output = excluded.output"
        " WHERE runs.fire_id = excluded.fire_id AND runs.attempt = excluded.attempt"
        " AND (runs.status = 'queued'"
        "      OR (runs.status = 'running' AND excluded.status <> 'queued'))",
    [ST_RUN_IDENTITY] = "SELECT fire_id, attempt, status FROM runs WHERE run_id = ?1",
    [ST_SKIP_INSERT] = "INSERT INTO skips (fire_id, shard, job, domain, scheduled_at,"
                       " recorded_at_ms, reason, detail, \"trigger\")"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                       " ON CONFLICT (fire_id, shard) DO NOTHING",
    [ST_RUN_GET] = "SELECT " RUN_COLS ", output,"
                   " (SELECT n.run_id FROM runs n WHERE n.fire_id = runs.fire_id"
                   "  AND n.attempt = runs.attempt + 1)"
                   " FROM runs WHERE run_id = ?1",
    [ST_RUNS_UNFINISHED] = "SELECT " RUN_COLS ", length(output) FROM runs"
                           " WHERE status IN ('queued', 'running') ORDER BY scheduled_at, id",
    [ST_FIRE_SHARDS] = "SELECT shard, max(attempt), status FROM runs"
                       " WHERE fire_id >= ?1 AND fire_id < ?2 GROUP BY shard ORDER BY shard",
    [ST_LAST_FIRES_RUNS] = LAST_FIRES("runs"),
    [ST_LAST_FIRES_SKIPS] = LAST_FIRES("skips"),
    /* a range of runs_executor; the rows it finds give their job and trigger */
    [ST_EXECUTOR_LAST_FIRES] = "SELECT job, shard, max(scheduled_at) FROM runs"
                               " WHERE executor = ?1 AND scheduled_at >= ?2"
                               " AND \"trigger\" IN ('schedule', 'misfire') GROUP BY job, shard",
    /* per job, a range of skips_job from its own instant (CROSS JOIN keeps that order) */
    [ST_SKIPS_LAST] = "SELECT k.job, k.shard, max(k.scheduled_at) FROM json_each(?1) AS u"
                      " CROSS JOIN skips AS k ON k.job = u.key AND k.scheduled_at > u.value"
                      " WHERE k.\"trigger\" IN ('schedule', 'misfire') GROUP BY k.job, k.shard",
    [ST_PRUNE_RUNS_AGE] = "DELETE FROM runs WHERE scheduled_at < ?1"
                          " AND status NOT IN ('queued', 'running')",
    [ST_PRUNE_SKIPS_AGE] = "DELETE FROM skips WHERE scheduled_at < ?1",
    [ST_PRUNE_ALERTS_AGE] = "DELETE FROM alerts WHERE cleared_at_ms < ?1",
    [ST_PRUNE_MARK] = "INSERT INTO temp.prune_victims (src, id) SELECT src, id FROM ("
                      " SELECT src, id, row_number() OVER (PARTITION BY job"
                      "  ORDER BY scheduled_at DESC, src DESC, id DESC) AS rn FROM ("
                      "  SELECT 1 AS src, id, job, scheduled_at FROM runs"
                      "  UNION ALL SELECT 0, id, job, scheduled_at FROM skips))"
                      " WHERE rn > ?1",
    [ST_PRUNE_RUNS_COUNT] = "DELETE FROM runs WHERE id IN"
                            " (SELECT id FROM temp.prune_victims WHERE src = 1)"
                            " AND status NOT IN ('queued', 'running')",
    [ST_PRUNE_SKIPS_COUNT] = "DELETE FROM skips WHERE id IN"
                             " (SELECT id FROM temp.prune_victims WHERE src = 0)",
    [ST_PRUNE_UNMARK] = "DELETE FROM temp.prune_victims",
    [ST_ALERT_RAISE] =
        "INSERT INTO alerts (key, kind, job, domain, job_level, domain_level, shard,"
        " scheduled_at, raised_at_ms, last_raised_at_ms, reason, detail)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11)"
        " ON CONFLICT (key) WHERE cleared_at_ms IS NULL DO UPDATE SET"
        " reason = excluded.reason, detail = excluded.detail, job_level = excluded.job_level,"
        " domain_level = excluded.domain_level, last_raised_at_ms = excluded.last_raised_at_ms,"
        " raises = raises + 1",
    [ST_ALERT_CLEAR] = "UPDATE alerts SET cleared_at_ms = ?2"
                       " WHERE key = ?1 AND cleared_at_ms IS NULL",
    [ST_ALERTS_OPEN] = "SELECT id, key, kind, job, domain, job_level, domain_level, shard,"
                       " scheduled_at, raised_at_ms, last_raised_at_ms, raises, reason, detail"
                       " FROM alerts WHERE cleared_at_ms IS NULL ORDER BY raised_at_ms, id",
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [ST_META_SET] = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [ST_OBJ_HISTORY] = "SELECT version, op, at_ms, who FROM object_versions"
                       " WHERE kind = ?1 AND name = ?2 ORDER BY version DESC",
    [ST_OBJ_VERSION_GET] = "SELECT op, json FROM object_versions"
                           " WHERE kind = ?1 AND name = ?2 AND version = ?3",
    [ST_TOKEN_INSERT] = "INSERT INTO tokens (name, hash, created_at_ms, expires_at_ms, created_by)"
                        " VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_TOKEN_LIST] = "SELECT " TOKEN_COLS " FROM tokens ORDER BY name",
    [ST_TOKEN_REVOKE] = "UPDATE tokens SET revoked_at_ms = coalesce(revoked_at_ms, ?2)"
                        " WHERE name = ?1",
    [ST_TOKEN_LOOKUP] = "SELECT " TOKEN_COLS " FROM tokens WHERE hash = ?1",
    /* the condition again: another connection may have recorded the use meanwhile */
    [ST_TOKEN_USED] = "UPDATE tokens SET last_used_at_ms = ?2 WHERE hash = ?1"
                      " AND (last_used_at_ms IS NULL OR last_used_at_ms <= ?2 - ?3"
                      "      OR last_used_at_ms > ?2)",
    [ST_TOKEN_NAMED] = "SELECT 1 FROM tokens WHERE name = ?1",
    [ST_SECRETS_DELETE] = "DELETE FROM secrets WHERE job = ?1",
    [ST_SECRET_INSERT] = "INSERT INTO secrets (job, name, value) VALUES (?1, ?2, ?3)",
    [ST_SECRETS_GET] = "SELECT name, value FROM secrets WHERE job = ?1 ORDER BY name",
    [ST_USER_INSERT] = "INSERT INTO users (name, password_hash, must_change_password,"
                       " created_at_ms, created_by, updated_at_ms, password_changed_at_ms)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?4, ?4)",
    [ST_USER_SET_PASSWORD] = "UPDATE users SET password_hash = ?2, password_changed_at_ms = ?3"
                             " WHERE name = ?1",
    [ST_USER_REHASH] = "UPDATE users SET password_hash = ?2 WHERE name = ?1",
    [ST_USER_SET_MUST] = "UPDATE users SET must_change_password = ?2 WHERE name = ?1",
    [ST_USER_UNLOCK] = "UPDATE users SET failed_attempts = 0, locked_until_ms = NULL"
                       " WHERE name = ?1",
    [ST_USER_TOUCHED] = "UPDATE users SET updated_at_ms = ?2 WHERE name = ?1",
    [ST_USER_GET] = "SELECT " USER_COLS " FROM users WHERE name = ?1",
    [ST_USER_LIST] = "SELECT " USER_COLS " FROM users ORDER BY name",
    [ST_USER_DELETE] = "DELETE FROM users WHERE name = ?1",
    [ST_USER_SIGNIN_OK] = "UPDATE users SET failed_attempts = 0, locked_until_ms = NULL,"
                          " last_signin_at_ms = ?2 WHERE name = ?1",
    /* the max_failures-th failure in a row locks and starts counting again */
    [ST_USER_SIGNIN_FAIL] = "UPDATE users SET"
                            " locked_until_ms = CASE WHEN failed_attempts + 1 >= ?3"
                            "  THEN ?2 + ?4 ELSE locked_until_ms END,"
                            " failed_attempts = CASE WHEN failed_attempts + 1 >= ?3"
                            "  THEN 0 ELSE failed_attempts + 1 END"
                            " WHERE name = ?1",
    [ST_USER_SESSIONS_END] = "DELETE FROM sessions WHERE user_name = ?1",
    [ST_USER_SESSIONS_END_BUT] = "DELETE FROM sessions WHERE user_name = ?1 AND hash <> ?2",
    [ST_SESSION_PRUNE] = "DELETE FROM sessions WHERE expires_at_ms <= ?1 OR last_seen_ms < ?2",
    [ST_SESSION_INSERT] = "INSERT INTO sessions (hash, user_name, csrf, created_at_ms,"
                          " expires_at_ms, last_seen_ms)"
                          " SELECT ?1, ?2, ?3, ?4, ?5, ?4 WHERE EXISTS"
                          " (SELECT 1 FROM users WHERE name = ?2)",
    [ST_SESSION_GET] = "SELECT user_name, csrf, created_at_ms, expires_at_ms, last_seen_ms"
                       " FROM sessions WHERE hash = ?1",
    [ST_SESSION_TOUCH] = "UPDATE sessions SET last_seen_ms = ?2 WHERE hash = ?1",
    [ST_SESSION_DELETE] = "DELETE FROM sessions WHERE hash = ?1",
    [ST_GRANTS_DELETE] = "DELETE FROM grants WHERE kind = ?1 AND name = ?2",
    [ST_GRANT_INSERT] = "INSERT INTO grants (kind, name, domain, role) VALUES (?1, ?2, ?3, ?4)",
    [ST_GRANTS_GET] = "SELECT domain, role FROM grants WHERE kind = ?1 AND name = ?2"
                      " ORDER BY domain",
    /* ?1: the names as a JSON array (store__names_json).  CROSS JOIN keeps json_each the
     * outer loop, so a name costs a probe of each key; left to itself the planner walks
     * every job and looks each up in the list. */
    [ST_JOBS_GET_MANY] = "SELECT o.name, o.version, o.json, NULL, NULL FROM json_each(?1) AS n"
                         " CROSS JOIN objects AS o ON o.kind = 'job' AND o.name = n.value"
                         " UNION ALL SELECT s.job, NULL, NULL, s.name, s.value"
                         " FROM json_each(?1) AS n CROSS JOIN secrets AS s ON s.job = n.value",
};

/* History statements: one per (mode, filter set) (store_common.h), built on first use. */

/* Object page statements: walk job_domains (else objects), enabled fixed, text filter. */
enum { PQ_INDEX = 1, PQ_ENABLED = 2, PQ_TEXT = 4, PQ_LEVEL = 8, PQ_MASKS = 16 };

struct sq {
    struct store base; /* first: a struct store * is a struct sq * */
    sqlite3 *db;
    char *path;
    bool read_only;
    bool batch;       /* inside store_begin .. store_commit */
    int batch_failed; /* 0, or the TY_E* code of the error that made SQLite drop it */
    bool prune_table; /* temp.prune_victims exists on this connection */
    sqlite3_stmt *st[ST_COUNT];
    sqlite3_stmt *hist[STORE__HM_MODES][STORE__HQ_MASKS];
    sqlite3_stmt *page[PQ_MASKS];
};

#define SQ(base) ((struct sq *)(base))

/* ---------------------------------------------------------------------------------------
 * Errors.
 */

/* The TY_E* code for an (extended) SQLite result code. */
static int code_of(int xrc, int sys_errno)
{
    switch (xrc & 0xff) {
    case SQLITE_FULL: return TY_ENOSPC;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return TY_EBUSY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return TY_EFORMAT;
    case SQLITE_NOMEM: return TY_ENOMEM;
    case SQLITE_IOERR: return sys_errno == ENOSPC || sys_errno == EDQUOT ? TY_ENOSPC : TY_EIO;
    case SQLITE_CONSTRAINT:
        return xrc == SQLITE_CONSTRAINT_UNIQUE || xrc == SQLITE_CONSTRAINT_PRIMARYKEY ? TY_EEXIST
                                                                                      : TY_EINVAL;
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH: return TY_EINVAL;
    default: return TY_EIO; /* CANTOPEN, PERM, READONLY, PROTOCOL, ... */
    }
}

static const char *meaning_of(int code)
{
    switch (code) {
    case TY_ENOSPC: return "disk full";
    case TY_EBUSY: return "database busy past the 5 s timeout";
    case TY_EFORMAT: return "not a database, or corrupt";
    case TY_ENOMEM: return "out of memory";
    case TY_EEXIST: return "already exists";
    case TY_EINVAL: return "rejected by the database";
    default: return "I/O error";
    }
}

/* SQLite's last error on connection db (to the file at path) as a TY_E* code and message:
 * the operation, what the code means, the file, and SQLite's own words. */
static int db_fail(sqlite3 *db, const char *path, struct ty_err *err, const char *what)
{
    int code = code_of(sqlite3_extended_errcode(db), sqlite3_system_errno(db));
    return ty_error(err, code, NULL, -1, 0, "%s: %s (database %s: %s)", what, meaning_of(code),
                    path, sqlite3_errmsg(db));
}

/*
 * Report SQLite's last error on s->db for the operation `fmt` names ("run_put run
 * 00ab..."), as db_fail.  When the failure made SQLite abandon an open batch, the batch
 * is marked failed.
 */
static int sq_fail(struct sq *s, struct ty_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int sq_fail(struct sq *s, struct ty_err *err, const char *fmt, ...)
{
    int code = code_of(sqlite3_extended_errcode(s->db), sqlite3_system_errno(s->db));
    if (s->batch && !s->batch_failed && sqlite3_get_autocommit(s->db))
        s->batch_failed = code;
    if (err == NULL)
        return code;
    char what[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return db_fail(s->db, s->path, err, what);
}

/* Refuse writes on a read-only connection, and inside a batch SQLite already dropped. */
static int writable(struct sq *s, const char *op, struct ty_err *err)
{
    if (s->read_only)
        return ty_error(err, TY_EINVAL, NULL, -1, 0, "%s: the store %s is open read-only", op,
                        s->path);
    if (s->batch && s->batch_failed)
        return ty_error(err, s->batch_failed, NULL, -1, 0,
                        "%s: the batch was rolled back after an earlier error (%s); call "
                        "rollback first",
                        op, ty_strerror(s->batch_failed));
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Statements and transactions.
 */

static int prepare(struct sq *s, const char *sql, sqlite3_stmt **out, struct ty_err *err)
{
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    if (rc != SQLITE_OK) {
        *out = NULL;
        return sq_fail(s, err, "prepare \"%.60s\"", sql);
    }
    return 0;
}

/* The cached statement `id`, prepared on first use; reset and ready to bind. */
static int stmt(struct sq *s, enum st id, sqlite3_stmt **out, struct ty_err *err)
{
    if (s->st[id] == NULL) {
        int rc = prepare(s, st_sql[id], &s->st[id], err);
        if (rc != 0)
            return rc;
    }
    *out = s->st[id];
    return 0;
}

/* Run a cached statement that returns no rows. */
static int exec_st(struct sq *s, enum st id, const char *what, struct ty_err *err)
{
    sqlite3_stmt *st;
    int rc = stmt(s, id, &st, err);
    if (rc != 0)
        return rc;
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(s, err, "%s", what);
    sqlite3_reset(st);
    return rc;
}

/* Start one store call that writes several statements (see the top comment). */
static int tx_begin(struct sq *s, const char *what, struct ty_err *err)
{
    return exec_st(s, s->batch ? ST_SAVEPOINT : ST_BEGIN, what, err);
}

/* End the call started by tx_begin: keep its changes when rc is 0, else undo them. */
static int tx_end(struct sq *s, int rc, const char *what, struct ty_err *err)
{
    if (rc == 0) {
        rc = exec_st(s, s->batch ? ST_RELEASE : ST_COMMIT, what, err);
        if (rc == 0)
            return 0;
    }
    if (sqlite3_get_autocommit(s->db)) {
        if (s->batch && !s->batch_failed)
            s->batch_failed = rc;
        return rc;
    }
    if (s->batch) {
        exec_st(s, ST_ROLLBACK_TO, what, NULL);
        exec_st(s, ST_RELEASE, what, NULL);
    } else {
        exec_st(s, ST_ROLLBACK, what, NULL);
    }
    return rc;
}

/* Bind helpers: strings are borrowed for the duration of the step (SQLITE_STATIC). */
static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v == NULL)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

static void bind_named_text(sqlite3_stmt *st, const char *name, const char *v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0)
        bind_text(st, i, v);
}

static void bind_named_int(sqlite3_stmt *st, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0)
        sqlite3_bind_int64(st, i, v);
}

/*
 * Waiting for another connection's write lock: SQLite's own busy timeout sleeps in steps
 * that grow to 100 ms, so a short write (a job's save) behind a batch of history could
 * wait 50 ms for a lock freed after 5.  Poll every millisecond instead, up to
 * STORE_BUSY_MS in all.  `n` is how many times this wait has been called.
 */
static int busy_wait(void *arg, int n)
{
    (void)arg;
    if ((int64_t)n >= STORE_BUSY_MS)
        return 0; /* give up: SQLITE_BUSY, reported as "busy past the timeout" */
    sqlite3_sleep(1);
    return 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------------------------
 * JSON out.  Text from the database goes through store__json_lossy: jansson insists on
 * UTF-8 and a job's output or error text need not be.
 */

/* Collects one object; any allocation failure is remembered and reported once. */
struct jb {
    json_t *o;
    bool bad;
};

static void jb_set(struct jb *b, const char *key, json_t *v)
{
    if (json_object_set_new(b->o, key, v) != 0) /* takes v even when it fails */
        b->bad = true;
}

static json_t *col_text(sqlite3_stmt *st, int c)
{
    if (sqlite3_column_type(st, c) == SQLITE_NULL)
        return json_null();
    const unsigned char *p = sqlite3_column_text(st, c);
    return store__json_lossy(p, (size_t)sqlite3_column_bytes(st, c));
}

static json_t *col_int(sqlite3_stmt *st, int c)
{
    if (sqlite3_column_type(st, c) == SQLITE_NULL)
        return json_null();
    return json_integer(sqlite3_column_int64(st, c));
}

/* A JSON column parsed back into a value (null when NULL or unparsable). */
static json_t *col_json(sqlite3_stmt *st, int c)
{
    if (sqlite3_column_type(st, c) == SQLITE_NULL)
        return json_null();
    const char *p = (const char *)sqlite3_column_text(st, c);
    size_t n = (size_t)sqlite3_column_bytes(st, c);
    json_t *v = json_loadb(p, n, JSON_DECODE_ANY, NULL);
    return v != NULL ? v : json_null();
}

/* Output forms of the column after RUN_COLS. */
enum { OUT_LENGTH, OUT_BLOB };

/* A run object from RUN_COLS starting at column c. */
static json_t *run_json(sqlite3_stmt *st, int c, int out)
{
    struct jb b = {json_object(), false};
    int64_t sched = sqlite3_column_int64(st, c + 8);
    int64_t started = sqlite3_column_int64(st, c + 10);
    int64_t ended = sqlite3_column_int64(st, c + 11);
    jb_set(&b, "kind", json_string("run"));
    jb_set(&b, "run_id", col_text(st, c + 0));
    jb_set(&b, "fire_id", col_text(st, c + 1));
    jb_set(&b, "attempt", col_int(st, c + 2));
    jb_set(&b, "job", col_text(st, c + 3));
    jb_set(&b, "domain", col_text(st, c + 4));
    jb_set(&b, "shard", col_int(st, c + 5));
    jb_set(&b, "trigger", col_text(st, c + 6));
    jb_set(&b, "status", col_text(st, c + 7));
    jb_set(&b, "scheduled_at", json_integer(sched));
    jb_set(&b, "scheduled_at_text", store__time_text(sched));
    jb_set(&b, "queued_at_ms", col_int(st, c + 9));
    jb_set(&b, "started_at_ms", json_integer(started));
    jb_set(&b, "ended_at_ms", json_integer(ended));
    jb_set(&b, "duration_ms",
           started > 0 && ended > 0 ? json_integer(ended - started) : json_null());
    jb_set(&b, "lateness_ms", started > 0 ? json_integer(started - sched * 1000) : json_null());
    jb_set(&b, "pid", col_int(st, c + 12));
    jb_set(&b, "pid_start", col_int(st, c + 13));
    jb_set(&b, "boot_id", col_text(st, c + 14));
    jb_set(&b, "executor", col_text(st, c + 15));
    jb_set(&b, "epoch", col_int(st, c + 16));
    jb_set(&b, "exit_code", col_int(st, c + 17));
    jb_set(&b, "signal", col_int(st, c + 18));
    jb_set(&b, "error", col_text(st, c + 19));
    if (out == OUT_BLOB) {
        bool null = sqlite3_column_type(st, c + RUN_NCOLS) == SQLITE_NULL;
        const void *p = sqlite3_column_blob(st, c + RUN_NCOLS);
        size_t n = (size_t)sqlite3_column_bytes(st, c + RUN_NCOLS);
        jb_set(&b, "output", null ? json_null() : store__json_lossy(p, n));
        jb_set(&b, "output_bytes", json_integer((json_int_t)n));
    } else {
        jb_set(&b, "output_bytes", json_integer(sqlite3_column_int64(st, c + RUN_NCOLS)));
    }
    if (b.bad) {
        json_decref(b.o);
        return NULL;
    }
    return b.o;
}

/* A skipped fire from the skip half of the history union (see history_sql). */
static json_t *skip_json(sqlite3_stmt *st, int c)
{
    struct jb b = {json_object(), false};
    int64_t sched = sqlite3_column_int64(st, c + 8);
    jb_set(&b, "kind", json_string("skip"));
    jb_set(&b, "fire_id", col_text(st, c + 1));
    jb_set(&b, "job", col_text(st, c + 3));
    jb_set(&b, "domain", col_text(st, c + 4));
    jb_set(&b, "shard", col_int(st, c + 5));
    jb_set(&b, "trigger", col_text(st, c + 6));
    jb_set(&b, "status", json_string("skipped"));
    jb_set(&b, "reason", col_text(st, c + 7));
    jb_set(&b, "scheduled_at", json_integer(sched));
    jb_set(&b, "scheduled_at_text", store__time_text(sched));
    jb_set(&b, "recorded_at_ms", col_int(st, c + 9));
    jb_set(&b, "detail", col_text(st, c + 19));
    if (b.bad) {
        json_decref(b.o);
        return NULL;
    }
    return b.o;
}

/* Append every row of st to a new array through row(); the statement is reset after. */
static int collect(struct sq *s, sqlite3_stmt *st, json_t *(*row)(sqlite3_stmt *), json_t **out,
                   const char *op, struct ty_err *err)
{
    json_t *arr = json_array();
    int rc = arr == NULL ? store__oom(err, op) : 0, src = SQLITE_DONE;
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *v = row(st);
        if (v == NULL || json_array_append_new(arr, v) != 0)
            rc = store__oom(err, op);
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = sq_fail(s, err, "%s", op);
    sqlite3_reset(st);
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Copies: store_backup, and the backup taken before a migration.
 */

/* Remove a database file and the companions SQLite may have made beside it. */
static void unlink_db(const char *path)
{
    static const char *const suffix[] = {"", "-journal", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        struct strbuf p;
        sb_init(&p);
        sb_addf(&p, "%s%s", path, suffix[i]);
        if (!sb_failed(&p))
            unlink(sb_str(&p));
        sb_free(&p);
    }
}

/* fsync the directory that holds path, so a new file's name survives a power cut. */
static void sync_dir_of(const char *path)
{
    struct strbuf d;
    sb_init(&d);
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        sb_adds(&d, ".");
    else if (slash == path)
        sb_adds(&d, "/");
    else
        sb_add(&d, path, (size_t)(slash - path));
    int fd = sb_failed(&d) ? -1 : open(sb_str(&d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd); /* best effort: the file itself is already synced */
        close(fd);
    }
    sb_free(&d);
}

/*
 * Copy the database open on `src` (the file src_path) to a new file at dest with SQLite's
 * online backup API.  The whole copy is one step over one read snapshot: consistent while
 * other connections write (in WAL mode a snapshot never blocks the writer), where copying
 * in chunks would restart after every write by another connection and could starve under
 * load.  The copy is a self-contained rollback-journal file (no -wal to carry along),
 * fsync'd with its directory entry.  dest must not exist (TY_EEXIST).  The copy is made
 * under a temporary name beside dest and published with link(2), which never replaces a
 * file: dest appears whole or not at all, even if this process is killed midway (a
 * "DEST.partial-PID" file is then what is left, named for what it is).  After a failure
 * nothing is left.  `op` names the operation in messages.
 */
static int copy_db(sqlite3 *src, const char *src_path, const char *dest, const char *op,
                   struct ty_err *err)
{
    struct stat st;
    if (lstat(dest, &st) == 0) /* fail before the copy, not after it */
        return ty_error(err, TY_EEXIST, "path", -1, 0,
                        "%s: %s already exists (a backup never overwrites a file)", op, dest);
    struct strbuf tmp;
    sb_init(&tmp);
    sb_addf(&tmp, "%s.partial-%ld", dest, (long)getpid());
    if (sb_failed(&tmp))
        return store__oom(err, op);
    int fd = open(sb_str(&tmp), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) { /* left by a killed process whose pid we now have */
        unlink_db(sb_str(&tmp));
        fd = open(sb_str(&tmp), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
        int e = errno;
        sb_free(&tmp);
        return ty_error(err, e == ENOSPC || e == EDQUOT ? TY_ENOSPC : TY_EIO, "path", -1, 0,
                        "%s: cannot create %s: %s", op, dest, strerror(e));
    }
    close(fd);
    char what[TY_ERR_MSG_MAX / 2];
    snprintf(what, sizeof what, "%s of %s to %s", op, src_path, dest);
    const char *path = sb_str(&tmp);
    sqlite3 *d = NULL;
    int rc = 0;
    if (sqlite3_open_v2(path, &d, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        rc = d == NULL ? store__oom(err, op) : db_fail(d, dest, err, what);
    } else {
        sqlite3_extended_result_codes(d, 1);
        sqlite3_backup *b = sqlite3_backup_init(d, "main", src, "main");
        if (b == NULL) {
            rc = db_fail(d, dest, err, what);
        } else {
            int64_t deadline = now_ms() + STORE_BUSY_MS;
            int step;
            while ((step = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || step == SQLITE_LOCKED) {
                if (now_ms() >= deadline)
                    break;
                sqlite3_sleep(10);
            }
            if (sqlite3_backup_finish(b) != SQLITE_OK) {
                rc = db_fail(d, dest, err, what);
            } else if (step != SQLITE_DONE) {
                int code = code_of(step, 0);
                rc = ty_error(err, code, NULL, -1, 0, "%s: %s (%s)", what, meaning_of(code),
                              sqlite3_errstr(step));
            }
        }
        /* the copied header says WAL, as the source does: make the copy one plain file */
        if (rc == 0 && sqlite3_exec(d, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL) != 0)
            rc = db_fail(d, dest, err, what);
    }
    if (sqlite3_close(d) != SQLITE_OK && rc == 0)
        rc = ty_error(err, TY_EIO, NULL, -1, 0, "%s: cannot close the copy", what);
    if (rc == 0 && (fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
        if (fsync(fd) != 0) /* SQLite synced its commits; this covers the journal-mode change */
            rc = ty_error(err, TY_EIO, NULL, -1, 0, "%s: cannot sync the copy: %s", what,
                          strerror(errno));
        close(fd);
    }
    if (rc == 0 && link(path, dest) != 0) {
        int e = errno;
        rc = ty_error(err,
                      e == EEXIST   ? TY_EEXIST
                      : e == ENOSPC ? TY_ENOSPC
                                    : TY_EIO,
                      "path", -1, 0, "%s: %s%s", what,
                      e == EEXIST ? "the file was created meanwhile (a backup never "
                                    "overwrites a file)"
                                  : "cannot name the copy: ",
                      e == EEXIST ? "" : strerror(e));
    }
    unlink_db(path); /* the temporary name (and any journal); dest, when linked, stays */
    sb_free(&tmp);
    if (rc == 0)
        sync_dir_of(dest);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Open, migrate, close.
 */

struct identity {
    int64_t app_id;
    int64_t objects; /* entries in sqlite_schema */
    int version;     /* meta.schema_version; 0 when there is no meta table */
    bool has_meta;
};

static int read_int(struct sq *s, const char *sql, int64_t *v, const char *what, struct ty_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "%s", what);
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        *v = sqlite3_column_int64(st, 0);
    else
        rc = sq_fail(s, err, "%s", what);
    sqlite3_finalize(st);
    return rc;
}

/* What the file says about itself; TY_EFORMAT when it is not a SQLite database at all. */
static int read_identity(struct sq *s, struct identity *id, struct ty_err *err)
{
    memset(id, 0, sizeof *id);
    int64_t has_meta = 0;
    int rc = read_int(s, "PRAGMA application_id", &id->app_id, "open", err);
    if (rc == 0)
        rc = read_int(s, "SELECT count(*) FROM sqlite_schema", &id->objects, "open", err);
    if (rc == 0)
        rc =
            read_int(s, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'meta'",
                     &has_meta, "open", err);
    if (rc == TY_EFORMAT)
        return ty_error(err, TY_EFORMAT, NULL, -1, 0,
                        "%s is not a SQLite database (or is corrupt): %s", s->path,
                        sqlite3_errmsg(s->db));
    if (rc != 0)
        return rc;
    id->has_meta = has_meta != 0;
    if (!id->has_meta)
        return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st,
                           NULL) != SQLITE_OK)
        return sq_fail(s, err, "open: read schema_version");
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        char *end;
        errno = 0;
        long n = v != NULL ? strtol(v, &end, 10) : 0;
        if (v == NULL || *v == '\0' || *end != '\0' || errno != 0 || n < 1 || n > INT_MAX)
            rc = ty_error(err, TY_EFORMAT, NULL, -1, 0,
                          "%s: schema_version \"%.40s\" in meta is not a version number", s->path,
                          v != NULL ? v : "");
        else
            id->version = (int)n;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Refuse a file that is not Tethys's, or is written by a newer schema; *version is the
 * schema version found (0: an empty file, ready to be created). */
static int check_identity(struct sq *s, const struct identity *id, int *version, struct ty_err *err)
{
    if (id->app_id == 0 && id->objects == 0) {
        *version = 0;
        return 0;
    }
    if (id->app_id != TETHYS_APP_ID)
        return ty_error(err, TY_EFORMAT, NULL, -1, 0,
                        "%s is a SQLite database but not a Tethys one (application_id 0x%08" PRIx64
                        ", %" PRId64 " schema objects)",
                        s->path, id->app_id, id->objects);
    if (id->version == 0)
        return ty_error(err, TY_EFORMAT, NULL, -1, 0,
                        "%s: Tethys database without a schema_version in meta", s->path);
    if (id->version > SCHEMA_VERSION) {
        const char *base = strrchr(s->path, '/');
        return ty_error(err, TY_EFORMAT, NULL, -1, 0,
                        "%s has schema version %d, from a newer Tethys; this binary knows 1 to "
                        "%d: upgrade tethys, or `tethys restore` the %s.v%d-*.bak the upgrade "
                        "left",
                        s->path, id->version, SCHEMA_VERSION, base ? base + 1 : s->path,
                        SCHEMA_VERSION);
    }
    *version = id->version;
    return 0;
}

/*
 * Before migrating from schema `version`: copy the file as it is to
 * "<path>.v<version>-<UTC time>.bak" beside it (a numbered name when that exists).  Runs
 * inside the migration's write transaction, through a second, read-only connection: it
 * sees the last commit, which is exactly what the migration is about to change, and no
 * other writer can slip in between.  *bak receives the name (malloc'd).
 */
static int backup_before_migrating(struct sq *s, int version, char **bak, struct ty_err *err)
{
    sqlite3 *r = NULL;
    struct ty_err e;
    ty_err_clear(&e);
    int rc;
    if (sqlite3_open_v2(s->path, &r, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rc = r == NULL ? store__oom(&e, "backup") : db_fail(r, s->path, &e, "backup: open");
    } else {
        sqlite3_busy_timeout(r, STORE_BUSY_MS);
        time_t now = (time_t)(now_ms() / 1000);
        struct tm tm;
        char stamp[32];
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
        rc = TY_EEXIST;
        for (int n = 1; rc == TY_EEXIST && n <= 100; n++) {
            struct strbuf p;
            sb_init(&p);
            sb_addf(&p, "%s.v%d-%s", s->path, version, stamp);
            if (n > 1)
                sb_addf(&p, "-%d", n);
            sb_adds(&p, ".bak");
            rc = sb_failed(&p) ? store__oom(&e, "backup")
                               : copy_db(r, s->path, sb_str(&p), "backup", &e);
            if (rc == 0)
                *bak = sb_detach(&p);
            sb_free(&p);
        }
    }
    sqlite3_close(r);
    if (rc != 0)
        return ty_error(err, rc, e.field, -1, 0,
                        "open: schema %d is migrated to %d only after a backup, which failed: %s",
                        version, SCHEMA_VERSION, e.msg);
    return 0;
}

/* Record the migration in meta ("last_migration"): from, to, when, and the backup made. */
static int note_migration(struct sq *s, int from, const char *bak, struct ty_err *err)
{
    json_t *o = json_pack("{s:i, s:i, s:I, s:s}", "from", from, "to", SCHEMA_VERSION, "at_ms",
                          (json_int_t)now_ms(), "backup", bak);
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (text == NULL)
        return store__oom(err, "open");
    sqlite3_stmt *st;
    int rc = 0;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_migration', ?1)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = sq_fail(s, err, "open: record the migration");
    } else {
        bind_text(st, 1, text);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sq_fail(s, err, "open: record the migration");
        sqlite3_finalize(st);
    }
    free(text);
    return rc;
}

/*
 * Bring the schema to SCHEMA_VERSION inside one IMMEDIATE transaction: all steps or none.
 * An existing database is backed up first (backup_before_migrating); a new one is not.
 */
static int migrate(struct sq *s, struct ty_err *err)
{
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(s, err, "open: begin schema check");
    struct identity id;
    int version = 0;
    char *bak = NULL;
    int rc = read_identity(s, &id, err);
    if (rc == 0)
        rc = check_identity(s, &id, &version, err);
    if (rc == 0 && version > 0 && version < SCHEMA_VERSION)
        rc = backup_before_migrating(s, version, &bak, err);
    for (int v = version; rc == 0 && v < SCHEMA_VERSION; v++) {
        if (sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
            rc = sq_fail(s, err, "open: migrate schema %d to %d", v, v + 1);
            break;
        }
        char sql[96];
        snprintf(sql, sizeof sql,
                 "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', '%d')", v + 1);
        if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
            rc = sq_fail(s, err, "open: record schema version %d", v + 1);
    }
    if (rc == 0 && bak != NULL)
        rc = note_migration(s, version, bak, err);
    if (rc == 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = sq_fail(s, err, "open: commit schema version %d", SCHEMA_VERSION);
    if (rc != 0 && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc != 0 && bak != NULL)
        unlink_db(bak); /* the old file is intact: the copy is not needed */
    free(bak);
    return rc;
}

static int pragma(struct sq *s, const char *sql, struct ty_err *err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(s, err, "open: %s", sql);
    return 0;
}

static int set_wal(struct sq *s, struct ty_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "open: journal_mode = WAL");
    int rc = 0;
    if (sqlite3_step(st) != SQLITE_ROW)
        rc = sq_fail(s, err, "open: journal_mode = WAL");
    else if (strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0)
        rc = ty_error(err, TY_EIO, NULL, -1, 0,
                      "open: %s cannot use WAL mode (journal mode stays \"%s\")", s->path,
                      (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return rc;
}

static void sq_close(struct store *base)
{
    struct sq *s = SQ(base);
    if (s->db != NULL && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    for (int m = 0; m < STORE__HM_MODES; m++)
        for (int i = 0; i < STORE__HQ_MASKS; i++)
            sqlite3_finalize(s->hist[m][i]);
    for (int i = 0; i < PQ_MASKS; i++)
        sqlite3_finalize(s->page[i]);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

static const struct store_ops sq_ops;

int store_open_sqlite(const char *path, bool read_only, struct store **out, struct ty_err *err)
{
    *out = NULL;
    if (path == NULL || *path == '\0')
        return ty_error(err, TY_EINVAL, "path", -1, 0, "store: the database path is empty");
    struct sq *s = calloc(1, sizeof *s);
    if (s == NULL || (s->path = strdup(path)) == NULL) {
        free(s);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "store: out of memory opening %s", path);
    }
    s->base.ops = &sq_ops;
    s->read_only = read_only;
    int flags = SQLITE_OPEN_NOMUTEX |
                (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        if (s->db == NULL) {
            rc = ty_error(err, TY_ENOMEM, NULL, -1, 0, "store: out of memory opening %s", path);
        } else {
            int code = code_of(sqlite3_extended_errcode(s->db), sqlite3_system_errno(s->db));
            rc = ty_error(err, code == TY_ENOMEM ? code : TY_EIO, NULL, -1, 0,
                          "store: cannot open %s%s: %s", path, read_only ? " read-only" : "",
                          sqlite3_errmsg(s->db));
        }
        sq_close(&s->base);
        return rc;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_handler(s->db, busy_wait, NULL);

    /* Look before touching: a foreign file must not be switched to WAL. */
    struct identity id;
    int version = 0;
    rc = read_identity(s, &id, err);
    if (rc == 0)
        rc = check_identity(s, &id, &version, err);
    if (rc == 0 && read_only) {
        if (version == 0)
            rc = ty_error(err, TY_EFORMAT, NULL, -1, 0,
                          "%s has no Tethys schema yet; open it read-write first (the server "
                          "does)",
                          path);
        else if (version < SCHEMA_VERSION)
            rc = ty_error(err, TY_EFORMAT, NULL, -1, 0,
                          "%s has schema version %d and needs migrating to %d; open it "
                          "read-write first (the server does)",
                          path, version, SCHEMA_VERSION);
        if (rc == 0)
            rc = pragma(s, "PRAGMA query_only = ON", err);
    } else if (rc == 0) {
        rc = set_wal(s, err);
        if (rc == 0)
            rc = pragma(s, "PRAGMA synchronous = NORMAL", err);
        if (rc == 0)
            rc = pragma(s, "PRAGMA journal_size_limit = 67108864", err);
        if (rc == 0)
            rc = pragma(s, "PRAGMA cache_size = -16384", err);
        if (rc == 0)
            rc = migrate(s, err);
    }
    if (rc == 0)
        rc = pragma(s, "PRAGMA foreign_keys = ON", err);
    if (rc != 0) {
        sq_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}

/* "file:" URI of path, with the characters a URI gives meaning to escaped. */
static void file_uri(struct strbuf *sb, const char *path)
{
    sb_adds(sb, "file:");
    for (const char *p = path; *p; p++) {
        if (*p == '%' || *p == '?' || *p == '#')
            sb_addf(sb, "%%%02X", (unsigned)(unsigned char)*p);
        else
            sb_addc(sb, *p);
    }
}

int store_check_sqlite(const char *path, int *version, struct ty_err *err)
{
    if (path == NULL || *path == '\0')
        return ty_error(err, TY_EINVAL, "path", -1, 0, "store: the database path is empty");
    /* immutable: no locks, no -wal or -shm made beside it, only the file itself is read */
    struct strbuf uri;
    sb_init(&uri);
    file_uri(&uri, path);
    sb_adds(&uri, "?immutable=1");
    struct sq s = {.path = (char *)path, .read_only = true};
    int rc = 0;
    if (sb_failed(&uri)) {
        rc = ty_error(err, TY_ENOMEM, NULL, -1, 0, "store: out of memory opening %s", path);
    } else if (sqlite3_open_v2(sb_str(&uri), &s.db,
                               SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                               NULL) != SQLITE_OK) {
        rc = s.db == NULL
                 ? ty_error(err, TY_ENOMEM, NULL, -1, 0, "store: out of memory opening %s", path)
                 : ty_error(err, TY_EIO, NULL, -1, 0, "store: cannot open %s read-only: %s", path,
                            sqlite3_errmsg(s.db));
    }
    sb_free(&uri);
    struct identity id;
    if (rc == 0) {
        sqlite3_extended_result_codes(s.db, 1);
        rc = read_identity(&s, &id, err);
    }
    if (rc == 0)
        rc = check_identity(&s, &id, version, err);
    if (rc == 0 && *version == 0)
        rc = ty_error(err, TY_EFORMAT, NULL, -1, 0, "%s is empty: it holds no Tethys store", path);
    sqlite3_stmt *st = NULL;
    if (rc == 0 && sqlite3_prepare_v2(s.db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK)
        rc = sq_fail(&s, err, "check %s", path);
    if (rc == 0) {
        int src = sqlite3_step(st);
        const char *res = src == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        if (src != SQLITE_ROW)
            rc = sq_fail(&s, err, "check %s", path);
        else if (res == NULL || strcmp(res, "ok") != 0)
            rc = ty_error(err, TY_EFORMAT, NULL, -1, 0, "%s fails SQLite's integrity check: %.120s",
                          path, res ? res : "?");
    }
    sqlite3_finalize(st);
    sqlite3_close(s.db);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Config objects.
 */

/* Where a job lies: its domain (malloc'd) and whether it is enabled; domain NULL when
 * there is no such job (before a create, after a delete). */
struct place {
    char *domain;
    int enabled;
};

/* Copy the place in columns c and c + 1 of st (OBJ_PLACE_COLS); false when out of memory. */
static bool place_of(sqlite3_stmt *st, int c, struct place *p)
{
    const char *d = (const char *)sqlite3_column_text(st, c);
    p->domain = strdup(d != NULL ? d : "");
    p->enabled = sqlite3_column_int(st, c + 1);
    return p->domain != NULL;
}

/*
 * The current version of (kind, name) (0 when there is none), whether its JSON equals
 * `json` (may be NULL), and where it lies (*at; its domain is the caller's to free).
 */
static int obj_current(struct sq *s, const char *kn, const char *name, const char *json,
                       int64_t *version, bool *same, struct place *at, const char *what,
                       struct ty_err *err)
{
    *version = 0;
    *same = false;
    at->domain = NULL;
    sqlite3_stmt *st;
    int rc = stmt(s, ST_OBJ_STATE, &st, err);
    if (rc != 0)
        return rc;
    bind_text(st, 1, kn);
    bind_text(st, 2, name);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *version = sqlite3_column_int64(st, 0);
        const char *cur = (const char *)sqlite3_column_text(st, 1);
        *same = json != NULL && cur != NULL && strcmp(cur, json) == 0;
        if (!place_of(st, 2, at))
            rc = store__oom(err, what);
    } else if (src != SQLITE_DONE) {
        rc = sq_fail(s, err, "%s", what);
    }
    sqlite3_reset(st);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * The job index: job_domains (a row per job and per domain of its chain, see
 * store__domain_up) and job_counts (jobs per subtree), changed in the transaction of every
 * job put and delete, so a count or a page by subtree never reads the jobs themselves.
 * A job moving from one place to another leaves the domains its old and new chains share
 * alone ("a/b" -> "a/c" touches "a/b" and "a/c", not "a" or the root) unless its enabled
 * flag changed too, which moves its job_domains rows but not its counts.
 */

static int step_domain(struct sq *s, enum st id, const char *domain, int enabled, const char *job,
                       const char *what, struct ty_err *err)
{
    sqlite3_stmt *st;
    int rc = stmt(s, id, &st, err);
    if (rc != 0)
        return rc;
    bind_text(st, 1, domain);
    if (job != NULL) {
        sqlite3_bind_int(st, 2, enabled);
        bind_text(st, 3, job);
    }
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(s, err, "%s", what);
    sqlite3_reset(st);
    return rc;
}

/* One job fewer in domain's subtree: the count goes down, or its row when it was 1. */
static int count_less(struct sq *s, const char *domain, const char *what, struct ty_err *err)
{
    int rc = step_domain(s, ST_COUNT_LESS, domain, 0, NULL, what, err);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        rc = step_domain(s, ST_COUNT_DROP, domain, 0, NULL, what, err);
    return rc;
}

/* File job `name` from `from` to `to` (either without a domain: created, deleted). */
static int job_moved(struct sq *s, const char *name, const struct place *from,
                     const struct place *to, const char *what, struct ty_err *err)
{
    int rc = 0;
    for (int leaving = 1; leaving >= 0 && rc == 0; leaving--) {
        const struct place *a = leaving ? from : to, *b = leaving ? to : from;
        if (a->domain == NULL)
            continue;
        char *d = strdup(a->domain);
        if (d == NULL)
            return store__oom(err, what);
        do {
            bool shared = b->domain != NULL && domain_within(b->domain, d);
            if (!shared)
                rc = leaving ? count_less(s, d, what, err)
                             : step_domain(s, ST_COUNT_ADD, d, 0, NULL, what, err);
            if (rc == 0 && (!shared || a->enabled != b->enabled))
                rc = step_domain(s, leaving ? ST_PLACE_DROP : ST_PLACE_ADD, d, a->enabled, name,
                                 what, err);
        } while (rc == 0 && store__domain_up(d));
        free(d);
    }
    return rc;
}

static int obj_version_row(struct sq *s, const char *kn, const char *name, int64_t version,
                           const char *op, const char *json, int64_t at, const char *who,
                           const char *what, struct ty_err *err)
{
    sqlite3_stmt *st;
    int rc = stmt(s, ST_OBJ_VERSION, &st, err);
    if (rc != 0)
        return rc;
    bind_text(st, 1, kn);
    bind_text(st, 2, name);
    sqlite3_bind_int64(st, 3, version);
    bind_text(st, 4, op);
    bind_text(st, 5, json);
    sqlite3_bind_int64(st, 6, at);
    bind_text(st, 7, who);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(s, err, "%s", what);
    sqlite3_reset(st);
    return rc;
}

/* Write the new version of an object now at version cur (0: none) and lying at `was`. */
static int obj_write(struct sq *s, enum store_kind kind, const char *kn, const char *name,
                     const char *json, int64_t cur, const char *who, const struct place *was,
                     int64_t *version, const char *what, struct ty_err *err)
{
    int64_t next = cur + 1;
    sqlite3_stmt *st;
    int rc;
    if (cur == 0) { /* versions continue after a delete, so an ETag never comes back */
        if ((rc = stmt(s, ST_OBJ_LASTVER, &st, err)) != 0)
            return rc;
        bind_text(st, 1, kn);
        bind_text(st, 2, name);
        if (sqlite3_step(st) == SQLITE_ROW)
            next = sqlite3_column_int64(st, 0) + 1;
        else
            rc = sq_fail(s, err, "%s", what);
        sqlite3_reset(st);
        if (rc != 0)
            return rc;
    }
    int64_t at = now_ms();
    if ((rc = stmt(s, cur == 0 ? ST_OBJ_INSERT : ST_OBJ_UPDATE, &st, err)) != 0)
        return rc;
    bind_text(st, 1, kn);
    bind_text(st, 2, name);
    sqlite3_bind_int64(st, 3, next);
    bind_text(st, 4, json);
    sqlite3_bind_int64(st, 5, at);
    bind_text(st, 6, who);
    struct place now = {0};
    int src = sqlite3_step(st); /* RETURNING: the row's place, then done */
    if (src == SQLITE_ROW && !place_of(st, 0, &now))
        rc = store__oom(err, what);
    else if (src == SQLITE_ROW)
        src = sqlite3_step(st);
    if (rc == 0 && src != SQLITE_DONE) {
        if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_CHECK)
            rc = ty_error(err, TY_EINVAL, "json", -1, 0, "%s: json is not a JSON object", what);
        else
            rc = sq_fail(s, err, "%s", what);
    }
    sqlite3_reset(st);
    if (rc == 0 && kind == STORE_JOB)
        rc = job_moved(s, name, was, &now, what, err);
    if (rc == 0)
        rc = obj_version_row(s, kn, name, next, cur == 0 ? "create" : "update", json, at, who, what,
                             err);
    if (rc == 0)
        *version = next;
    free(now.domain);
    return rc;
}

static int obj_put_tx(struct sq *s, enum store_kind kind, const char *kn, const char *name,
                      const char *json, int64_t base_version, const char *who, int64_t *version,
                      const char *what, struct ty_err *err)
{
    int64_t cur;
    bool same;
    struct place was;
    int rc = obj_current(s, kn, name, json, &cur, &same, &was, what, err);
    if (rc == 0)
        rc = store__put_allowed(cur, base_version, what, err);
    if (rc == 0 && same) /* not a change: no new version, no history row */
        *version = cur;
    else if (rc == 0)
        rc = obj_write(s, kind, kn, name, json, cur, who, &was, version, what, err);
    free(was.domain);
    return rc;
}

static int sq_obj_put(struct store *base, enum store_kind kind, const char *name, const char *json,
                      int64_t base_version, const char *who, int64_t *version, struct ty_err *err)
{
    struct sq *s = SQ(base);
    const char *kn;
    int rc = store__check_obj("obj_put", kind, name, &kn, err);
    if (rc != 0)
        return rc;
    if ((rc = store__check_put(kn, name, json, base_version, err)) != 0 ||
        (rc = writable(s, "obj_put", err)) != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "obj_put %s \"%.100s\"", kn, name);
    int64_t v = 0;
    if ((rc = tx_begin(s, what, err)) != 0)
        return rc;
    rc =
        tx_end(s, obj_put_tx(s, kind, kn, name, json, base_version, who, &v, what, err), what, err);
    if (rc == 0 && version != NULL)
        *version = v;
    return rc;
}

static int sq_obj_get(struct store *base, enum store_kind kind, const char *name, char **json,
                      int64_t *version, struct ty_err *err)
{
    struct sq *s = SQ(base);
    const char *kn;
    int rc = store__check_obj("obj_get", kind, name, &kn, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st;
    if ((rc = stmt(s, ST_OBJ_CUR, &st, err)) != 0)
        return rc;
    bind_text(st, 1, kn);
    bind_text(st, 2, name);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        if (version != NULL)
            *version = sqlite3_column_int64(st, 0);
        if (json != NULL) {
            *json = strdup((const char *)sqlite3_column_text(st, 1));
            if (*json == NULL)
                rc = store__oom(err, "obj_get");
        }
    } else if (src == SQLITE_DONE) {
        rc = ty_error(err, TY_ENOENT, NULL, -1, 0, "obj_get %s \"%.100s\": not found", kn, name);
    } else {
        rc = sq_fail(s, err, "obj_get %s \"%.100s\"", kn, name);
    }
    sqlite3_reset(st);
    return rc;
}

static int obj_delete_tx(struct sq *s, enum store_kind kind, const char *kn, const char *name,
                         int64_t base_version, const char *who, const char *what,
                         struct ty_err *err)
{
    int64_t cur;
    bool same;
    struct place was, gone = {0};
    sqlite3_stmt *st = NULL;
    int rc = obj_current(s, kn, name, NULL, &cur, &same, &was, what, err);
    if (rc == 0)
        rc = store__delete_allowed(cur, base_version, what, err);
    if (rc == 0)
        rc = stmt(s, ST_OBJ_DELETE, &st, err);
    if (rc == 0) {
        bind_text(st, 1, kn);
        bind_text(st, 2, name);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sq_fail(s, err, "%s", what);
        sqlite3_reset(st);
    }
    if (rc == 0 && kind == STORE_JOB)
        rc = job_moved(s, name, &was, &gone, what, err);
    if (rc == 0)
        rc = obj_version_row(s, kn, name, cur + 1, "delete", NULL, now_ms(), who, what, err);
    free(was.domain);
    return rc;
}

static int sq_obj_delete(struct store *base, enum store_kind kind, const char *name,
                         int64_t base_version, const char *who, struct ty_err *err)
{
    struct sq *s = SQ(base);
    const char *kn;
    int rc = store__check_obj("obj_delete", kind, name, &kn, err);
    if (rc != 0)
        return rc;
    if ((rc = store__check_delete(kn, name, base_version, err)) != 0 ||
        (rc = writable(s, "obj_delete", err)) != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "obj_delete %s \"%.100s\"", kn, name);
    if ((rc = tx_begin(s, what, err)) != 0)
        return rc;
    return tx_end(s, obj_delete_tx(s, kind, kn, name, base_version, who, what, err), what, err);
}

static json_t *obj_row(sqlite3_stmt *st)
{
    struct jb b = {json_object(), false};
    int64_t at = sqlite3_column_int64(st, 2);
    jb_set(&b, "name", col_text(st, 0));
    jb_set(&b, "version", col_int(st, 1));
    jb_set(&b, "updated_at", json_integer(at / 1000));
    jb_set(&b, "updated_at_ms", json_integer(at));
    jb_set(&b, "updated_by", col_text(st, 3));
    jb_set(&b, "object", col_json(st, 4));
    if (b.bad) {
        json_decref(b.o);
        return NULL;
    }
    return b.o;
}

static int sq_obj_list(struct store *base, enum store_kind kind, const char *domain_prefix,
                       json_t **out, struct ty_err *err)
{
    struct sq *s = SQ(base);
    const char *kn;
    int rc = store__check_list(kind, &kn, err);
    if (rc != 0)
        return rc;
    /* the root "" holds everything; calendars belong to no domain */
    bool filter = domain_prefix != NULL && *domain_prefix != '\0' && kind != STORE_CALENDAR;
    sqlite3_stmt *st;
    if ((rc = stmt(s, filter ? ST_OBJ_LIST_DOMAIN : ST_OBJ_LIST, &st, err)) != 0)
        return rc;
    bind_text(st, 1, kn);
    if (filter)
        bind_text(st, 2, domain_prefix);
    return collect(s, st, obj_row, out, "obj_list", err);
}

/*
 * Pages of objects: keyset-paginated on name, the cursor (store__name_cursor_format) the
 * last name of the previous page.  Without a job filter a page is a range of the
 * (kind, name) index.  With a domain or enabled filter it is a range of job_domains,
 * whose key (domain, enabled, job) holds each subtree's jobs in name order twice over,
 * enabled and disabled apart: one range for one flag, two for both (enabled IN (0, 1):
 * SQLite reads each range in order and stops each once the page is full of smaller names,
 * then merges at most 2 x (limit + 1) rows).  The names found are then joined to objects
 * for their rows.  The key range is a single-table query of its own, and the text filter
 * a correlated subquery of it, so nothing in a join defeats that early stop.  A text
 * filter is checked on each row walked (instr of lowered text, so ASCII letters only fold)
 * and may walk far for a rare text: it and the level filter are the ones without an index.
 */

#define PAGE_TEXT(t)                                                                               \
    "(instr(lower(" t "name), lower(:text)) > 0 OR instr(lower(coalesce(json_extract(" t "json,"   \
    " '$.description'), '')), lower(:text)) > 0)"

#define PAGE_LEVEL(t) "json_extract(" t "json, '$.level') = :level"

/* The filters on the object's own JSON (text, level), each " AND ..."; t the table's
 * prefix ("" or "t."). */
static void page_json_filters(struct strbuf *sb, unsigned mask, bool t)
{
    if (mask & PQ_TEXT)
        sb_adds(sb, t ? " AND " PAGE_TEXT("t.") : " AND " PAGE_TEXT(""));
    if (mask & PQ_LEVEL)
        sb_adds(sb, t ? " AND " PAGE_LEVEL("t.") : " AND " PAGE_LEVEL(""));
}

static void page_sql(struct strbuf *sb, unsigned mask)
{
    if (!(mask & PQ_INDEX)) {
        sb_adds(sb, "SELECT name, version, updated_at_ms, json FROM objects"
                    " WHERE kind = :kind AND name > :after");
        page_json_filters(sb, mask, false);
        sb_adds(sb, " ORDER BY name LIMIT :n");
        return;
    }
    sb_adds(sb, "SELECT o.name, o.version, o.updated_at_ms, o.json FROM"
                " (SELECT job FROM job_domains j WHERE domain = :dom AND enabled ");
    sb_adds(sb, mask & PQ_ENABLED ? "= :en" : "IN (0, 1)");
    sb_adds(sb, " AND job > :after");
    if (mask & (PQ_TEXT | PQ_LEVEL)) {
        sb_adds(sb, " AND EXISTS (SELECT 1 FROM objects t WHERE t.kind = 'job' AND t.name = j.job");
        page_json_filters(sb, mask, true);
        sb_adds(sb, ")");
    }
    sb_adds(sb, " ORDER BY job LIMIT :n) k"
                " CROSS JOIN objects o ON o.kind = 'job' AND o.name = k.job ORDER BY k.job");
}

static int page_stmt(struct sq *s, unsigned mask, sqlite3_stmt **out, struct ty_err *err)
{
    if (s->page[mask] == NULL) {
        struct strbuf sb;
        sb_init(&sb);
        page_sql(&sb, mask);
        int rc = sb_failed(&sb) ? store__oom(err, "obj_page")
                                : prepare(s, sb_str(&sb), &s->page[mask], err);
        sb_free(&sb);
        if (rc != 0)
            return rc;
    }
    *out = s->page[mask];
    return 0;
}

static json_t *page_row(sqlite3_stmt *st, bool raw)
{
    struct jb b = {json_object(), false};
    jb_set(&b, "name", col_text(st, 0));
    jb_set(&b, "version", col_int(st, 1));
    jb_set(&b, "updated_at_ms", col_int(st, 2));
    jb_set(&b, raw ? "json" : "object", raw ? col_text(st, 3) : col_json(st, 3));
    if (b.bad) {
        json_decref(b.o);
        return NULL;
    }
    return b.o;
}

static int sq_obj_page(struct store *base, const struct store_obj_query *q, json_t **out,
                       struct ty_err *err)
{
    struct sq *s = SQ(base);
    const char *kn;
    size_t limit;
    char after[STORE__NAME_MAX + 1];
    int rc = store__check_obj_query(q, &kn, &limit, after, err);
    if (rc != 0)
        return rc;
    bool job = q->kind == STORE_JOB;
    bool dom = job && q->domain != NULL && *q->domain != '\0';
    unsigned mask = (dom || (job && q->enabled >= 0) ? PQ_INDEX : 0) |
                    (job && q->enabled >= 0 ? PQ_ENABLED : 0) |
                    (q->text != NULL && *q->text != '\0' ? PQ_TEXT : 0) |
                    (job && q->by_level ? PQ_LEVEL : 0);
    sqlite3_stmt *st;
    if ((rc = page_stmt(s, mask, &st, err)) != 0)
        return rc;
    bind_named_text(st, ":kind", kn);
    bind_named_text(st, ":dom", dom ? q->domain : "");
    bind_named_int(st, ":en", q->enabled);
    bind_named_text(st, ":after", after);
    bind_named_text(st, ":text", q->text);
    bind_named_int(st, ":level", q->level);
    bind_named_int(st, ":n", (int64_t)limit + 1);

    json_t *items = json_array(), *result = json_object();
    if (items == NULL || result == NULL)
        rc = store__oom(err, "obj_page");
    size_t n = 0;
    bool more = false;
    char next[STORE__NAME_CURSOR_MAX] = "";
    while (rc == 0) {
        int src = sqlite3_step(st);
        if (src != SQLITE_ROW) {
            if (src != SQLITE_DONE)
                rc = sq_fail(s, err, "obj_page %s", kn);
            break;
        }
        if (n == limit) { /* the row past the page: there is a next page */
            more = true;
            break;
        }
        json_t *v = page_row(st, q->raw);
        if (v == NULL || json_array_append_new(items, v) != 0)
            rc = store__oom(err, "obj_page");
        n++;
        store__name_cursor_format((const char *)sqlite3_column_text(st, 0), next);
    }
    sqlite3_reset(st);
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

/*
 * A scan is one statement over the (kind, name) index, stepped row by row into cb: one
 * read snapshot, one row in memory.  It is prepared per call rather than cached, so cb may
 * use the connection for other reads, even another scan, while this one is open.
 */
static int sq_obj_scan(struct store *base, enum store_kind kind,
                       int (*cb)(void *arg, const char *name, int64_t version, const char *json,
                                 size_t json_len),
                       void *arg, struct ty_err *err)
{
    struct sq *s = SQ(base);
    const char *kn;
    int rc = store__check_scan(kind, (const void *)cb, &kn, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v3(s->db,
                           "SELECT name, version, json FROM objects WHERE kind = ?1 ORDER BY name",
                           -1, 0, &st, NULL) != SQLITE_OK)
        return sq_fail(s, err, "obj_scan %s", kn);
    bind_text(st, 1, kn);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *json = (const char *)sqlite3_column_text(st, 2);
        if (name == NULL || json == NULL) { /* NOT NULL columns: SQLite ran out of memory */
            rc = store__oom(err, "obj_scan");
            break;
        }
        size_t n = (size_t)sqlite3_column_bytes(st, 2);
        if ((rc = cb(arg, name, sqlite3_column_int64(st, 1), json, n)) != 0)
            break;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = sq_fail(s, err, "obj_scan %s", kn);
    sqlite3_finalize(st);
    return rc;
}

static int sq_calendar_users(struct store *base, const char *calendar, int64_t *count, char *first,
                             size_t first_cap, struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc = store__check_id(calendar, STORE__NAME_MAX + 1, "calendar", "calendar_users", err);
    sqlite3_stmt *st;
    if (rc != 0 || (rc = stmt(s, ST_CALENDAR_USERS, &st, err)) != 0)
        return rc;
    bind_text(st, 1, calendar);
    if (sqlite3_step(st) == SQLITE_ROW) { /* an aggregate: always one row */
        const char *name = (const char *)sqlite3_column_text(st, 1); /* NULL when no user */
        *count = sqlite3_column_int64(st, 0);
        if (*count > 0 && name == NULL)
            rc = store__oom(err, "calendar_users");
        else if (first_cap > 0)
            snprintf(first, first_cap, "%s", name != NULL ? name : "");
    } else {
        rc = sq_fail(s, err, "calendar_users \"%.100s\"", calendar);
    }
    sqlite3_reset(st);
    return rc;
}

static int sq_job_count(struct store *base, const char *domain, int64_t *count, struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc = store__check_domain("job_count", domain, err);
    sqlite3_stmt *st;
    if (rc != 0 || (rc = stmt(s, ST_JOB_COUNT, &st, err)) != 0)
        return rc;
    bind_text(st, 1, domain != NULL ? domain : "");
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *count = sqlite3_column_int64(st, 0);
    else if (src == SQLITE_DONE) /* no row: no job in that subtree */
        *count = 0;
    else
        rc = sq_fail(s, err, "job_count \"%.100s\"", domain != NULL ? domain : "");
    sqlite3_reset(st);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Runs and skipped fires: the write path.
 *
 * A run's status only moves forward: queued (rank 1) < running (2) < final (3).  An
 * update applies when its rank is higher than the stored one, or equal and not final
 * (a queued or running record refreshes its fields); a final status is never changed.
 * The executor spool replays records after a crash, older ones included, so replaying
 * any record of a run must leave the newest state standing.  The rule is the upsert's
 * WHERE, evaluated on the row it conflicts with: no extra read on the write path.
 */

/* The upsert changed nothing: an older or final status kept (fine: a replay), or a run id
 * reused for another (fire, attempt), which is refused. */
static int run_unchanged(struct sq *s, const struct store_run *r, struct ty_err *err)
{
    sqlite3_stmt *st;
    int rc = stmt(s, ST_RUN_IDENTITY, &st, err);
    if (rc != 0)
        return rc;
    bind_text(st, 1, r->run_id);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        const char *fire = (const char *)sqlite3_column_text(st, 0);
        int64_t attempt = sqlite3_column_int64(st, 1);
        if (strcmp(fire, r->fire_id) != 0 || attempt != (int64_t)r->attempt)
            rc = ty_error(err, TY_EEXIST, "run_id", -1, 0,
                          "run_put run %s: that run id is already fire %.80s attempt %" PRId64,
                          r->run_id, fire, attempt);
    } else if (src != SQLITE_DONE) {
        rc = sq_fail(s, err, "run_put run %s", r->run_id);
    }
    sqlite3_reset(st);
    return rc;
}

static int sq_run_put(struct store *base, const struct store_run *r, struct ty_err *err)
{
    struct sq *s = SQ(base);
    const char *status, *trigger;
    int rc = store__check_run(r, &status, &trigger, err);
    if (rc != 0 || (rc = writable(s, "run_put", err)) != 0)
        return rc;
    sqlite3_stmt *st;
    if ((rc = stmt(s, ST_RUN_UPSERT, &st, err)) != 0)
        return rc;
    bind_text(st, 1, r->run_id);
    bind_text(st, 2, r->fire_id);
    sqlite3_bind_int64(st, 3, r->attempt);
    bind_text(st, 4, r->job);
    bind_text(st, 5, r->domain != NULL ? r->domain : "");
    sqlite3_bind_int64(st, 6, r->shard);
    bind_text(st, 7, trigger);
    bind_text(st, 8, status);
    sqlite3_bind_int64(st, 9, r->scheduled_at);
    sqlite3_bind_int64(st, 10, r->queued_at_ms);
    sqlite3_bind_int64(st, 11, r->started_at_ms);
    sqlite3_bind_int64(st, 12, r->ended_at_ms);
    sqlite3_bind_int64(st, 13, r->pid);
    sqlite3_bind_int64(st, 14, r->pid_start);
    bind_text(st, 15, r->boot_id);
    bind_text(st, 16, r->executor);
    sqlite3_bind_int64(st, 17, r->epoch);
    sqlite3_bind_int(st, 18, r->exit_code);
    sqlite3_bind_int(st, 19, r->signal);
    bind_text(st, 20, r->error);
    if (r->output != NULL)
        sqlite3_bind_blob64(st, 21, r->output, r->output_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 21);
    if (sqlite3_step(st) != SQLITE_DONE) {
        if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE)
            rc = ty_error(err, TY_EEXIST, "fire_id", -1, 0,
                          "run_put run %s: fire %.80s attempt %" PRIu32
                          " is already recorded under another run id",
                          r->run_id, r->fire_id, r->attempt);
        else
            rc = sq_fail(s, err, "run_put run %s", r->run_id);
        sqlite3_reset(st);
        return rc;
    }
    sqlite3_reset(st);
    if (sqlite3_changes(s->db) == 0)
        return run_unchanged(s, r, err);
    return 0;
}

static int sq_skip_put(struct store *base, const struct store_skip *k, struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc;
    const char *reason, *trigger;
    if ((rc = store__check_skip(k, &reason, &trigger, err)) != 0)
        return rc;
    if ((rc = writable(s, "skip_put", err)) != 0)
        return rc;
    sqlite3_stmt *st;
    if ((rc = stmt(s, ST_SKIP_INSERT, &st, err)) != 0)
        return rc;
    bind_text(st, 1, k->fire_id);
    sqlite3_bind_int(st, 2, k->shard);
    bind_text(st, 3, k->job);
    bind_text(st, 4, k->domain != NULL ? k->domain : "");
    sqlite3_bind_int64(st, 5, k->scheduled_at);
    sqlite3_bind_int64(st, 6, k->recorded_at_ms);
    bind_text(st, 7, reason);
    bind_text(st, 8, k->detail);
    bind_text(st, 9, trigger);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(s, err, "skip_put fire %s shard %" PRId32, k->fire_id, k->shard);
    sqlite3_reset(st);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Runs: reads.
 */

static json_t *run_row_blob(sqlite3_stmt *st)
{
    return run_json(st, 0, OUT_BLOB);
}

static json_t *run_row_length(sqlite3_stmt *st)
{
    return run_json(st, 0, OUT_LENGTH);
}

static int sq_run_get(struct store *base, const char *run_id, json_t **out, struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc = store__check_id(run_id, STORE_ID_MAX, "run_id", "run_get", err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st;
    if ((rc = stmt(s, ST_RUN_GET, &st, err)) != 0)
        return rc;
    bind_text(st, 1, run_id);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *out = run_row_blob(st);
        /* the next attempt of the same fire, once a retry has been scheduled */
        if (*out != NULL &&
            json_object_set_new(*out, "retry_run_id", col_text(st, RUN_NCOLS + 1)) != 0) {
            json_decref(*out);
            *out = NULL;
        }
        if (*out == NULL)
            rc = store__oom(err, "run_get");
    } else if (src == SQLITE_DONE) {
        rc = ty_error(err, TY_ENOENT, NULL, -1, 0, "run_get run %s: not found", run_id);
    } else {
        rc = sq_fail(s, err, "run_get run %s", run_id);
    }
    sqlite3_reset(st);
    return rc;
}

static int sq_runs_unfinished(struct store *base, json_t **out, struct ty_err *err)
{
    struct sq *s = SQ(base);
    sqlite3_stmt *st;
    int rc = stmt(s, ST_RUNS_UNFINISHED, &st, err);
    if (rc != 0)
        return rc;
    return collect(s, st, run_row_length, out, "runs_unfinished", err);
}

static json_t *shard_row(sqlite3_stmt *st)
{
    struct jb b = {json_object(), false};
    jb_set(&b, "shard", col_int(st, 0));
    jb_set(&b, "attempt", col_int(st, 1));
    jb_set(&b, "status", col_text(st, 2));
    if (b.bad) {
        json_decref(b.o);
        return NULL;
    }
    return b.o;
}

static int sq_fire_shards(struct store *base, const char *fire_prefix, json_t **out,
                          struct ty_err *err)
{
    struct sq *s = SQ(base);
    /* every id starting with the prefix sorts in [prefix, hi) */
    char hi[STORE_FIRE_ID_MAX];
    int rc = store__prefix_range(fire_prefix, hi, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st;
    if ((rc = stmt(s, ST_FIRE_SHARDS, &st, err)) != 0)
        return rc;
    bind_text(st, 1, fire_prefix);
    bind_text(st, 2, hi);
    return collect(s, st, shard_row, out, "fire_shards", err);
}

/* Merge one table's newest fire per job into obj, keeping the later of the two. */
static int last_fires_of(struct sq *s, enum st id, json_t *obj, struct ty_err *err)
{
    sqlite3_stmt *st;
    int rc = stmt(s, id, &st, err), src = SQLITE_DONE;
    if (rc != 0)
        return rc;
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_type(st, 1) == SQLITE_NULL)
            continue; /* only manual, retry or downstream runs */
        const char *job = (const char *)sqlite3_column_text(st, 0);
        int64_t at = sqlite3_column_int64(st, 1);
        json_t *prev = json_object_get(obj, job);
        if (prev != NULL && json_integer_value(prev) >= at)
            continue;
        if (json_object_set_new(obj, job, json_integer(at)) != 0)
            rc = store__oom(err, "last_fires");
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = sq_fail(s, err, "last_fires");
    sqlite3_reset(st);
    return rc;
}

static int sq_last_fires(struct store *base, json_t **out, struct ty_err *err)
{
    struct sq *s = SQ(base);
    json_t *obj = json_object();
    if (obj == NULL)
        return store__oom(err, "last_fires");
    /* one snapshot for both tables, unless the caller's batch already is one */
    bool own = !s->batch;
    int rc = own ? exec_st(s, ST_BEGIN_READ, "last_fires", err) : 0;
    if (rc == 0)
        rc = last_fires_of(s, ST_LAST_FIRES_RUNS, obj, err);
    if (rc == 0)
        rc = last_fires_of(s, ST_LAST_FIRES_SKIPS, obj, err);
    if (own && !sqlite3_get_autocommit(s->db))
        exec_st(s, ST_COMMIT, "last_fires", NULL);
    if (rc != 0) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

/* The rows of st (job, shard, instant) into a new {job: {shard: instant}} at *out. */
static int sq_per_shard(struct sq *s, sqlite3_stmt *st, const char *what, json_t **out,
                        struct ty_err *err)
{
    json_t *obj = json_object();
    int rc = obj == NULL ? store__oom(err, what) : 0;
    int src = SQLITE_DONE;
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW)
        rc = store__per_shard_set(obj, (const char *)sqlite3_column_text(st, 0),
                                  sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2), what,
                                  err);
    if (rc == 0 && src != SQLITE_DONE)
        rc = sq_fail(s, err, "%s", what);
    sqlite3_reset(st);
    if (rc != 0) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

static int sq_executor_last_fires(struct store *base, const char *executor, int64_t since,
                                  json_t **out, struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc = store__check_id(executor, STORE__NAME_MAX + 1, "executor", "executor_last_fires", err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st;
    if ((rc = stmt(s, ST_EXECUTOR_LAST_FIRES, &st, err)) != 0)
        return rc;
    bind_text(st, 1, executor);
    sqlite3_bind_int64(st, 2, since);
    char what[160];
    snprintf(what, sizeof what, "executor_last_fires \"%.100s\"", executor);
    return sq_per_shard(s, st, what, out, err);
}

static int sq_skips_last(struct store *base, const json_t *after, json_t **out, struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc = store__check_after(after, err);
    if (rc != 0)
        return rc;
    char *text = json_dumps(after, JSON_COMPACT);
    sqlite3_stmt *st;
    if (text == NULL)
        return store__oom(err, "skips_last");
    if ((rc = stmt(s, ST_SKIPS_LAST, &st, err)) != 0) {
        free(text);
        return rc;
    }
    bind_text(st, 1, text);
    rc = sq_per_shard(s, st, "skips_last", out, err);
    free(text);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * History: runs and skips merged, newest first, keyset-paginated.
 *
 * The order is (scheduled_at DESC, src DESC, id DESC) with src 1 for runs and 0 for skips:
 * a total order over both tables.  The cursor (store__cursor_format) is the key of the
 * last row returned; the next page takes rows strictly after it, so rows appended
 * meanwhile never shift a page and every page costs the same.
 */

/*
 * The WHERE terms of a filter set.  Runs and skips have no domain index: a subtree filter
 * rides on the scheduled_at or job index (a history page stays an ordered index walk, costing
 * limit / the subtree's share of the rows), and a domain index would be one more B-tree page
 * dirtied per append for queries that seldom need it.
 */
static void add_filters(struct strbuf *sb, unsigned mask)
{
    if (mask & STORE__HQ_JOB)
        sb_adds(sb, " AND job = :job");
    if (mask & STORE__HQ_DOMAIN)
        sb_adds(sb, " AND " STORE__DOMAIN_RANGE("domain", ":dom"));
    if (mask & STORE__HQ_SINCE)
        sb_adds(sb, " AND scheduled_at >= :since");
    if (mask & STORE__HQ_UNTIL)
        sb_adds(sb, " AND scheduled_at < :until");
}

static void history_sql(struct strbuf *sb, int mode, unsigned mask)
{
    if (mode == STORE__HM_BOTH)
        sb_adds(sb, "SELECT * FROM (SELECT * FROM (");
    if (mode != STORE__HM_SKIPS) {
        sb_adds(sb, "SELECT 1 AS src, id, " RUN_COLS ", length(output) FROM runs"
                    " WHERE scheduled_at <= :cs AND (scheduled_at < :cs OR id < :crun)");
        add_filters(sb, mask);
        if (mode == STORE__HM_RUNS)
            sb_adds(sb, " AND status = :status");
        sb_adds(sb, " ORDER BY scheduled_at DESC, id DESC LIMIT :n");
    }
    if (mode == STORE__HM_BOTH)
        sb_adds(sb, ") UNION ALL SELECT * FROM (");
    if (mode != STORE__HM_RUNS) {
        /* the skip columns in the places of the run columns they stand for */
        sb_adds(sb, "SELECT 0 AS src, id, NULL, fire_id, NULL, job, domain, shard, \"trigger\","
                    " reason, scheduled_at, recorded_at_ms, NULL, NULL, NULL, NULL, NULL, NULL,"
                    " NULL, NULL, NULL, detail, NULL FROM skips"
                    " WHERE scheduled_at <= :cs AND (scheduled_at < :cs OR id < :cskip)");
        add_filters(sb, mask);
        sb_adds(sb, " ORDER BY scheduled_at DESC, id DESC LIMIT :n");
    }
    if (mode == STORE__HM_BOTH)
        sb_adds(sb, ")) ORDER BY scheduled_at DESC, src DESC, id DESC LIMIT :n");
}

static int history_stmt(struct sq *s, int mode, unsigned mask, sqlite3_stmt **out,
                        struct ty_err *err)
{
    if (s->hist[mode][mask] == NULL) {
        struct strbuf sb;
        sb_init(&sb);
        history_sql(&sb, mode, mask);
        int rc = sb_failed(&sb) ? store__oom(err, "history")
                                : prepare(s, sb_str(&sb), &s->hist[mode][mask], err);
        sb_free(&sb);
        if (rc != 0)
            return rc;
    }
    *out = s->hist[mode][mask];
    return 0;
}

static int sq_history(struct store *base, const struct store_history_query *q, json_t **out,
                      struct ty_err *err)
{
    struct sq *s = SQ(base);
    struct store__history h;
    int rc = store__history_args(q, &h, err);
    if (rc != 0)
        return rc;
    size_t limit = h.limit;
    sqlite3_stmt *st;
    if ((rc = history_stmt(s, h.mode, h.mask, &st, err)) != 0)
        return rc;
    bind_named_int(st, ":cs", h.cs);
    bind_named_int(st, ":crun", h.crun);
    bind_named_int(st, ":cskip", h.cskip);
    bind_named_int(st, ":n", (int64_t)limit + 1);
    bind_named_text(st, ":job", q->job);
    bind_named_text(st, ":dom", q->domain);
    bind_named_text(st, ":status", q->status);
    bind_named_int(st, ":since", q->since);
    bind_named_int(st, ":until", q->until);

    json_t *items = json_array(), *result = json_object();
    if (items == NULL || result == NULL)
        rc = store__oom(err, "history");
    size_t n = 0;
    bool more = false;
    char next[STORE__CURSOR_MAX] = "";
    while (rc == 0) {
        int src = sqlite3_step(st);
        if (src != SQLITE_ROW) {
            if (src != SQLITE_DONE)
                rc = sq_fail(s, err, "history");
            break;
        }
        if (n == limit) { /* the row past the page: there is a next page */
            more = true;
            break;
        }
        int kind = sqlite3_column_int(st, 0);
        json_t *v = kind == 1 ? run_json(st, 2, OUT_LENGTH) : skip_json(st, 2);
        if (v == NULL || json_array_append_new(items, v) != 0)
            rc = store__oom(err, "history");
        n++;
        store__cursor_format(next, sqlite3_column_int64(st, 2 + 8), kind,
                             sqlite3_column_int64(st, 1));
    }
    sqlite3_reset(st);
    if (rc == 0 &&
        (json_object_set(result, "items", items) != 0 ||
         json_object_set_new(result, "next", more ? json_string(next) : json_null()) != 0))
        rc = store__oom(err, "history");
    json_decref(items);
    if (rc != 0) {
        json_decref(result);
        return rc;
    }
    *out = result;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Statistics.  Percentiles are exact, by nearest rank: the p-th percentile of n sorted
 * values is the value at rank ceil(p * n / 100).  SQLite has no percentile function and
 * window functions (row_number over each group) measured 5x slower than this: the runs
 * come ordered by group (by job and by day straight off an index, by domain through
 * SQLite's sorter), and C keeps the current group's durations and latenesses only, sorts
 * them when the group ends and picks the ranks (store__percentiles, store_common.c).
 * Memory is the largest group's, not the range's.  Skips are counted by a second
 * statement in the same read transaction.
 */

/* One group's object with its counts and percentiles; resets the value lists. */
static json_t *stats_group(const char *key, const int64_t *counts, struct store__vals *dur,
                           struct store__vals *late)
{
    struct jb b = {json_object(), false};
    jb_set(&b, "key", store__json_lossy(key, strlen(key)));
    for (int i = 0; i < STORE__SC_COUNT; i++)
        jb_set(&b, store__stats_names[i], json_integer(counts[i]));
    jb_set(&b, "duration_ms", store__percentiles(dur, "p50", 50, "p95", 95));
    jb_set(&b, "lateness_ms", store__percentiles(late, "p50", 50, "p99", 99));
    dur->n = late->n = 0;
    if (b.bad) {
        json_decref(b.o);
        return NULL;
    }
    return b.o;
}

static int counter_of(const char *status)
{
    static const struct {
        const char *name;
        int counter;
    } map[] = {{"succeeded", STORE__SC_OK},
               {"failed", STORE__SC_FAILED},
               {"timeout", STORE__SC_TIMEOUT},
               {"canceled", STORE__SC_CANCELED},
               {"interrupted", STORE__SC_INTERRUPTED},
               {"lost", STORE__SC_LOST},
               {"misfired", STORE__SC_MISFIRED},
               {"queued", STORE__SC_UNFINISHED},
               {"running", STORE__SC_UNFINISHED}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(status, map[i].name) == 0)
            return map[i].counter;
    return -1;
}

/* Stream the runs (ordered by group) into `groups`, a JSON object keyed by group. */
static int stats_runs(struct sq *s, sqlite3_stmt *st, json_t *groups, struct ty_err *err)
{
    struct store__vals dur = {0}, late = {0};
    struct strbuf key;
    sb_init(&key);
    int64_t counts[STORE__SC_COUNT] = {0};
    bool open = false;
    int rc = 0, src = SQLITE_DONE;
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        k = k != NULL ? k : "";
        if (!open || strcmp(k, sb_str(&key)) != 0) {
            if (open && json_object_set_new(groups, sb_str(&key),
                                            stats_group(sb_str(&key), counts, &dur, &late)) != 0)
                rc = store__oom(err, "stats");
            sb_truncate(&key, 0);
            sb_adds(&key, k);
            memset(counts, 0, sizeof counts);
            open = true;
            if (sb_failed(&key))
                rc = store__oom(err, "stats");
        }
        const char *status = (const char *)sqlite3_column_text(st, 1);
        int64_t started = sqlite3_column_int64(st, 2), ended = sqlite3_column_int64(st, 3);
        int64_t sched = sqlite3_column_int64(st, 4);
        int c = counter_of(status != NULL ? status : "");
        counts[STORE__SC_RUNS]++;
        if (c >= 0)
            counts[c]++;
        if (started > 0 && ended > 0 && !store__vals_add(&dur, ended - started))
            rc = store__oom(err, "stats");
        /* lateness is the scheduler's: of scheduled fires, not of runs started by hand,
         * retries (they wait for their backoff) or downstream runs (for their upstream) */
        bool timed = sqlite3_column_int(st, 5) != 0;
        if (started > 0 && timed && !store__vals_add(&late, started - sched * 1000))
            rc = store__oom(err, "stats");
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = sq_fail(s, err, "stats");
    if (rc == 0 && open &&
        json_object_set_new(groups, sb_str(&key), stats_group(sb_str(&key), counts, &dur, &late)) !=
            0)
        rc = store__oom(err, "stats");
    sqlite3_reset(st);
    sb_free(&key);
    free(dur.v);
    free(late.v);
    return rc;
}

/* Add the skip counts to `groups`, creating groups that only have skips. */
static int stats_skips(struct sq *s, sqlite3_stmt *st, json_t *groups, struct ty_err *err)
{
    int rc = 0, src = SQLITE_DONE;
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        k = k != NULL ? k : "";
        json_int_t n = sqlite3_column_int64(st, 1);
        json_t *g = json_object_get(groups, k);
        if (g == NULL) {
            int64_t counts[STORE__SC_COUNT] = {0};
            struct store__vals none = {0};
            g = stats_group(k, counts, &none, &none);
            if (g == NULL || json_object_set_new(groups, k, g) != 0) {
                rc = store__oom(err, "stats");
                break;
            }
        }
        if (json_object_set_new(g, "skipped", json_integer(n)) != 0)
            rc = store__oom(err, "stats");
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = sq_fail(s, err, "stats");
    sqlite3_reset(st);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The groups of the keyed object as an array ordered by key. */
static json_t *groups_sorted(json_t *groups)
{
    size_t n = json_object_size(groups), i = 0;
    const char **keys = malloc((n != 0 ? n : 1) * sizeof *keys);
    json_t *arr = json_array();
    if (keys == NULL || arr == NULL) {
        free(keys);
        json_decref(arr);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(groups, k, v) keys[i++] = k;
    qsort(keys, n, sizeof *keys, cmp_str);
    for (i = 0; i < n; i++)
        if (json_array_append(arr, json_object_get(groups, keys[i])) != 0) {
            json_decref(arr);
            arr = NULL;
            break;
        }
    free(keys);
    return arr;
}

static int stats_query(struct sq *s, const char *key, const char *order, unsigned mask,
                       const struct store_stats_query *q, json_t *groups, struct ty_err *err)
{
    struct strbuf sb;
    sqlite3_stmt *runs = NULL, *skips = NULL;
    int rc = 0;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        sb_init(&sb);
        if (pass == 0)
            sb_addf(&sb,
                    "SELECT %s, status, started_at_ms, ended_at_ms, scheduled_at,"
                    " \"trigger\" IN ('schedule', 'misfire') FROM runs WHERE 1",
                    key);
        else
            sb_addf(&sb, "SELECT %s, count(*) FROM skips WHERE 1", key);
        add_filters(&sb, mask);
        if (pass == 0)
            sb_addf(&sb, " ORDER BY %s", order);
        else
            sb_adds(&sb, " GROUP BY 1");
        sqlite3_stmt **st = pass == 0 ? &runs : &skips;
        if (sb_failed(&sb))
            rc = store__oom(err, "stats");
        else if (sqlite3_prepare_v2(s->db, sb_str(&sb), -1, st, NULL) != SQLITE_OK)
            rc = sq_fail(s, err, "stats");
        sb_free(&sb);
        if (rc == 0) {
            bind_named_text(*st, ":job", q->job);
            bind_named_text(*st, ":dom", q->domain);
            bind_named_int(*st, ":since", q->since);
            bind_named_int(*st, ":until", q->until);
        }
    }
    if (rc == 0)
        rc = stats_runs(s, runs, groups, err);
    if (rc == 0)
        rc = stats_skips(s, skips, groups, err);
    sqlite3_finalize(runs);
    sqlite3_finalize(skips);
    return rc;
}

static int sq_stats(struct store *base, const struct store_stats_query *q, json_t **out,
                    struct ty_err *err)
{
    struct sq *s = SQ(base);
    enum store__group g;
    int rc = store__stats_group(q, &g, err);
    if (rc != 0)
        return rc;
    const char *key = g == STORE__BY_DAY      ? "strftime('%Y-%m-%d', scheduled_at, 'unixepoch')"
                      : g == STORE__BY_DOMAIN ? "domain"
                                              : "job";
    /* by day: scheduled_at is in the same order as the day, and on an index */
    const char *order = g == STORE__BY_DAY ? "scheduled_at" : key;
    unsigned mask = store__stats_mask(q);
    /* one snapshot for both statements, unless the caller's batch already is one */
    bool own = !s->batch;
    rc = own ? exec_st(s, ST_BEGIN_READ, "stats", err) : 0;
    if (rc != 0)
        return rc;
    json_t *groups = json_object();
    rc = groups == NULL ? store__oom(err, "stats")
                        : stats_query(s, key, order, mask, q, groups, err);
    if (own && !sqlite3_get_autocommit(s->db))
        exec_st(s, ST_COMMIT, "stats", NULL);
    json_t *arr = rc == 0 ? groups_sorted(groups) : NULL;
    json_decref(groups);
    if (rc == 0 && arr == NULL)
        rc = store__oom(err, "stats");
    if (rc == 0 &&
        ((*out = json_object()) == NULL || json_object_set_new(*out, "groups", arr) != 0)) {
        json_decref(*out);
        *out = NULL;
        rc = store__oom(err, "stats");
    } else if (rc != 0) {
        json_decref(arr);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Retention.
 */

static int prune_step(struct sq *s, enum st id, int64_t v, int64_t *removed, struct ty_err *err)
{
    sqlite3_stmt *st;
    int rc = stmt(s, id, &st, err);
    if (rc != 0)
        return rc;
    if (sqlite3_bind_parameter_count(st) > 0)
        sqlite3_bind_int64(st, 1, v);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(s, err, "prune");
    else if (id != ST_PRUNE_MARK && id != ST_PRUNE_UNMARK)
        *removed += sqlite3_changes(s->db);
    sqlite3_reset(st);
    return rc;
}

static int prune_tx(struct sq *s, int64_t older_than_ms, int64_t keep_per_job, int64_t *removed,
                    struct ty_err *err)
{
    int rc = 0;
    if (older_than_ms > 0) {
        /* scheduled_at * 1000 < older_than_ms, as a bound on the indexed column */
        int64_t cut = older_than_ms / 1000 + (older_than_ms % 1000 != 0);
        if ((rc = prune_step(s, ST_PRUNE_RUNS_AGE, cut, removed, err)) != 0 ||
            (rc = prune_step(s, ST_PRUNE_SKIPS_AGE, cut, removed, err)) != 0 ||
            (rc = prune_step(s, ST_PRUNE_ALERTS_AGE, older_than_ms, removed, err)) != 0)
            return rc;
    }
    if (keep_per_job > 0) {
        /* rank runs and skips together first, then delete: deleting runs first would
         * change the skips' ranks */
        if (!s->prune_table) {
            if (sqlite3_exec(s->db,
                             "CREATE TEMP TABLE IF NOT EXISTS prune_victims"
                             " (src INTEGER NOT NULL, id INTEGER NOT NULL)",
                             NULL, NULL, NULL) != SQLITE_OK)
                return sq_fail(s, err, "prune");
            s->prune_table = true;
        }
        if ((rc = prune_step(s, ST_PRUNE_MARK, keep_per_job, removed, err)) != 0 ||
            (rc = prune_step(s, ST_PRUNE_RUNS_COUNT, 0, removed, err)) != 0 ||
            (rc = prune_step(s, ST_PRUNE_SKIPS_COUNT, 0, removed, err)) != 0)
            return rc;
        rc = prune_step(s, ST_PRUNE_UNMARK, 0, removed, err);
    }
    return rc;
}

static int sq_prune(struct store *base, int64_t older_than_ms, int64_t keep_per_job,
                    int64_t *removed, struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc = store__check_prune(older_than_ms, keep_per_job, err);
    if (rc != 0 || (rc = writable(s, "prune", err)) != 0 || (rc = tx_begin(s, "prune", err)) != 0)
        return rc;
    int64_t n = 0;
    rc = tx_end(s, prune_tx(s, older_than_ms, keep_per_job, &n, err), "prune", err);
    if (rc == 0 && removed != NULL)
        *removed = n;
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Alerts.
 */

static int sq_alert_raise(struct store *base, const struct store_alert *a, struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc;
    if ((rc = store__check_alert(a, err)) != 0)
        return rc;
    if ((rc = writable(s, "alert_raise", err)) != 0)
        return rc;
    char *detail = NULL;
    if (a->detail != NULL &&
        (detail = json_dumps(a->detail, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
        return store__oom(err, "alert_raise");
    sqlite3_stmt *st;
    if ((rc = stmt(s, ST_ALERT_RAISE, &st, err)) != 0) {
        free(detail);
        return rc;
    }
    bind_text(st, 1, a->key);
    bind_text(st, 2, a->kind);
    bind_text(st, 3, a->job);
    bind_text(st, 4, a->domain);
    sqlite3_bind_int(st, 5, a->job_level);
    sqlite3_bind_int(st, 6, a->domain_level);
    sqlite3_bind_int(st, 7, a->shard);
    sqlite3_bind_int64(st, 8, a->scheduled_at);
    sqlite3_bind_int64(st, 9, a->raised_at_ms);
    bind_text(st, 10, a->reason);
    bind_text(st, 11, detail);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(s, err, "alert_raise %.100s", a->key);
    sqlite3_reset(st);
    free(detail);
    return rc;
}

static int sq_alert_clear(struct store *base, const char *key, int64_t cleared_at_ms,
                          struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc = store__check_id(key, STORE__NAME_MAX + 1, "key", "alert_clear", err);
    if (rc != 0 || (rc = writable(s, "alert_clear", err)) != 0)
        return rc;
    sqlite3_stmt *st;
    if ((rc = stmt(s, ST_ALERT_CLEAR, &st, err)) != 0)
        return rc;
    bind_text(st, 1, key);
    sqlite3_bind_int64(st, 2, cleared_at_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(s, err, "alert_clear %.100s", key);
    sqlite3_reset(st);
    return rc;
}

static json_t *alert_row(sqlite3_stmt *st)
{
    struct jb b = {json_object(), false};
    jb_set(&b, "id", col_int(st, 0));
    jb_set(&b, "key", col_text(st, 1));
    jb_set(&b, "kind", col_text(st, 2));
    jb_set(&b, "job", col_text(st, 3));
    jb_set(&b, "domain", col_text(st, 4));
    jb_set(&b, "job_level", col_int(st, 5));
    jb_set(&b, "domain_level", col_int(st, 6));
    jb_set(&b, "shard", col_int(st, 7));
    int64_t sched = sqlite3_column_int64(st, 8);
    jb_set(&b, "scheduled_at", json_integer(sched));
    jb_set(&b, "scheduled_at_text", sched != 0 ? store__time_text(sched) : json_null());
    jb_set(&b, "raised_at_ms", col_int(st, 9));
    jb_set(&b, "last_raised_at_ms", col_int(st, 10));
    jb_set(&b, "raises", col_int(st, 11));
    jb_set(&b, "reason", col_text(st, 12));
    jb_set(&b, "detail", col_json(st, 13));
    if (b.bad) {
        json_decref(b.o);
        return NULL;
    }
    return b.o;
}

static int sq_alerts_open(struct store *base, json_t **out, struct ty_err *err)
{
    struct sq *s = SQ(base);
    sqlite3_stmt *st;
    int rc = stmt(s, ST_ALERTS_OPEN, &st, err);
    if (rc != 0)
        return rc;
    return collect(s, st, alert_row, out, "alerts_open", err);
}

/* ---------------------------------------------------------------------------------------
 * Settings.
 */

static int sq_meta_get(struct store *base, const char *key, char **value, struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc = store__check_id(key, STORE__NAME_MAX + 1, "key", "meta_get", err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st;
    if ((rc = stmt(s, ST_META_GET, &st, err)) != 0)
        return rc;
    bind_text(st, 1, key);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *value = strdup((const char *)sqlite3_column_text(st, 0));
        if (*value == NULL)
            rc = store__oom(err, "meta_get");
    } else if (src == SQLITE_DONE) {
        rc = ty_error(err, TY_ENOENT, NULL, -1, 0, "meta_get %.100s: not set", key);
    } else {
        rc = sq_fail(s, err, "meta_get %.100s", key);
    }
    sqlite3_reset(st);
    return rc;
}

static int sq_meta_set(struct store *base, const char *key, const char *value, struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc = store__check_meta_set(key, value, err);
    if (rc != 0 || (rc = writable(s, "meta_set", err)) != 0)
        return rc;
    sqlite3_stmt *st;
    if ((rc = stmt(s, ST_META_SET, &st, err)) != 0)
        return rc;
    bind_text(st, 1, key);
    bind_text(st, 2, value);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(s, err, "meta_set %.100s", key);
    sqlite3_reset(st);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Configuration history.
 */

static json_t *version_row(sqlite3_stmt *st)
{
    struct jb b = {json_object(), false};
    jb_set(&b, "version", col_int(st, 0));
    jb_set(&b, "op", col_text(st, 1));
    jb_set(&b, "at_ms", col_int(st, 2));
    jb_set(&b, "who", col_text(st, 3));
    if (b.bad) {
        json_decref(b.o);
        return NULL;
    }
    return b.o;
}

static int sq_obj_history(struct store *base, enum store_kind kind, const char *name, json_t **out,
                          struct ty_err *err)
{
    struct sq *s = SQ(base);
    const char *kn;
    int rc = store__check_obj("obj_history", kind, name, &kn, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st;
    if ((rc = stmt(s, ST_OBJ_HISTORY, &st, err)) != 0)
        return rc;
    bind_text(st, 1, kn);
    bind_text(st, 2, name);
    json_t *rows;
    if ((rc = collect(s, st, version_row, &rows, "obj_history", err)) != 0)
        return rc;
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        return ty_error(err, TY_ENOENT, NULL, -1, 0, "obj_history %s \"%.100s\": never existed", kn,
                        name);
    }
    *out = rows;
    return 0;
}

static int sq_obj_version(struct store *base, enum store_kind kind, const char *name,
                          int64_t version, char **json, struct ty_err *err)
{
    struct sq *s = SQ(base);
    const char *kn;
    int rc = store__check_obj("obj_version", kind, name, &kn, err);
    if (rc != 0)
        return rc;
    if ((rc = store__check_version(kn, name, version, err)) != 0)
        return rc;
    sqlite3_stmt *st;
    if ((rc = stmt(s, ST_OBJ_VERSION_GET, &st, err)) != 0)
        return rc;
    bind_text(st, 1, kn);
    bind_text(st, 2, name);
    sqlite3_bind_int64(st, 3, version);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW && sqlite3_column_type(st, 1) == SQLITE_NULL) {
        rc = ty_error(err, TY_ENOENT, "version", -1, 0,
                      "obj_version %s \"%.100s\": version %" PRId64
                      " is its deletion, which has no definition",
                      kn, name, version);
    } else if (src == SQLITE_ROW) {
        *json = strdup((const char *)sqlite3_column_text(st, 1));
        if (*json == NULL)
            rc = store__oom(err, "obj_version");
    } else if (src == SQLITE_DONE) {
        rc = ty_error(err, TY_ENOENT, "version", -1, 0,
                      "obj_version %s \"%.100s\": no version %" PRId64, kn, name, version);
    } else {
        rc = sq_fail(s, err, "obj_version %s \"%.100s\"", kn, name);
    }
    sqlite3_reset(st);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * API tokens.  Only the hex SHA-256 of a token's secret is stored (the caller hashes), so
 * the database - or a backup of it - cannot be used to authenticate.
 */

#define TOKEN_USE_EVERY 60000 /* ms: last_used_at_ms is written at most this often */

static json_t *token_row(sqlite3_stmt *st)
{
    struct jb b = {json_object(), false};
    jb_set(&b, "name", col_text(st, 0));
    jb_set(&b, "created_at_ms", col_int(st, 1));
    jb_set(&b, "expires_at_ms", col_int(st, 2));
    jb_set(&b, "revoked_at_ms", col_int(st, 3));
    jb_set(&b, "last_used_at_ms", col_int(st, 4));
    jb_set(&b, "created_by", col_text(st, 5));
    if (b.bad) {
        json_decref(b.o);
        return NULL;
    }
    return b.o;
}

static int sq_token_put(struct store *base, const char *name, const char *hash,
                        int64_t expires_at_ms, const char *who, struct ty_err *err)
{
    struct sq *s = SQ(base);
    char h[STORE__HASH_HEX + 1];
    int rc = store__check_token_put(name, hash, expires_at_ms, h, err);
    if (rc == 0)
        rc = writable(s, "token_put", err);
    sqlite3_stmt *st;
    if (rc != 0 || (rc = stmt(s, ST_TOKEN_INSERT, &st, err)) != 0)
        return rc;
    bind_text(st, 1, name);
    bind_text(st, 2, h);
    sqlite3_bind_int64(st, 3, now_ms());
    if (expires_at_ms > 0)
        sqlite3_bind_int64(st, 4, expires_at_ms);
    else
        sqlite3_bind_null(st, 4);
    bind_text(st, 5, who);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(s, err, "token_put \"%.100s\"", name);
    sqlite3_reset(st);
    if (rc != TY_EEXIST)
        return rc;
    /* which one: the name (reported first when both are taken), or the secret */
    bool named = false;
    if (stmt(s, ST_TOKEN_NAMED, &st, NULL) == 0) {
        bind_text(st, 1, name);
        named = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_reset(st);
    }
    if (named)
        return ty_error(err, TY_EEXIST, "name", -1, 0,
                        "token_put: a token named \"%.100s\" exists (a revoked token keeps its "
                        "name)",
                        name);
    return ty_error(err, TY_EEXIST, "hash", -1, 0,
                    "token_put \"%.100s\": another token has the same secret", name);
}

static int sq_token_list(struct store *base, json_t **out, struct ty_err *err)
{
    struct sq *s = SQ(base);
    sqlite3_stmt *st;
    int rc = stmt(s, ST_TOKEN_LIST, &st, err);
    if (rc != 0)
        return rc;
    return collect(s, st, token_row, out, "token_list", err);
}

static int sq_token_revoke(struct store *base, const char *name, int64_t at_ms, struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc = store__check_id(name, STORE__NAME_MAX + 1, "name", "token_revoke", err);
    if (rc == 0)
        rc = writable(s, "token_revoke", err);
    sqlite3_stmt *st;
    if (rc != 0 || (rc = stmt(s, ST_TOKEN_REVOKE, &st, err)) != 0)
        return rc;
    bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, at_ms > 0 ? at_ms : now_ms());
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(s, err, "token_revoke \"%.100s\"", name);
    else if (sqlite3_changes(s->db) == 0)
        rc = ty_error(err, TY_ENOENT, "name", -1, 0, "token_revoke: no token named \"%.100s\"",
                      name);
    sqlite3_reset(st);
    return rc;
}

/*
 * Record a use of the token with hash h, unless one was recorded in the last minute:
 * authentication reads on every request and must not write on every request.  Best
 * effort (a failure to record does not fail the lookup); only on a connection that may
 * write.  Returns true when it wrote.
 */
static bool token_used(struct sq *s, const char *h, const json_t *tok, int64_t now)
{
    const json_t *last = json_object_get(tok, "last_used_at_ms");
    int64_t t = json_is_integer(last) ? json_integer_value(last) : 0;
    if (s->read_only || (s->batch && s->batch_failed) ||
        (json_is_integer(last) && t > now - TOKEN_USE_EVERY && t <= now))
        return false;
    sqlite3_stmt *st;
    if (stmt(s, ST_TOKEN_USED, &st, NULL) != 0)
        return false;
    bind_text(st, 1, h);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, TOKEN_USE_EVERY);
    bool wrote = false;
    if (sqlite3_step(st) == SQLITE_DONE)
        wrote = sqlite3_changes(s->db) > 0;
    else
        sq_fail(s, NULL, "token_lookup"); /* marks a batch SQLite dropped */
    sqlite3_reset(st);
    return wrote;
}

static int sq_token_lookup(struct store *base, const char *hash, json_t **out, struct ty_err *err)
{
    struct sq *s = SQ(base);
    char h[STORE__HASH_HEX + 1];
    int rc = store__check_hash("token_lookup", hash, h, err);
    sqlite3_stmt *st;
    if (rc != 0 || (rc = stmt(s, ST_TOKEN_LOOKUP, &st, err)) != 0)
        return rc;
    bind_text(st, 1, h);
    json_t *tok = NULL;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        if ((tok = token_row(st)) == NULL)
            rc = store__oom(err, "token_lookup");
    } else if (src == SQLITE_DONE) {
        rc = ty_error(err, TY_ENOENT, NULL, -1, 0, "token_lookup: no token has this secret");
    } else {
        rc = sq_fail(s, err, "token_lookup");
    }
    sqlite3_reset(st);
    if (rc != 0)
        return rc;
    int64_t now = now_ms();
    if (token_used(s, h, tok, now))
        json_object_set_new(tok, "last_used_at_ms", json_integer(now));
    *out = tok;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Users, sessions and grants (schema 5).  A user's grants are written in the transaction
 * that creates or changes the user; a new password ends the user's other sessions in the
 * same transaction, so a stolen session does not outlive the password that made it.
 */

static int grants_write(struct sq *s, const char *kn, const char *name, const json_t *grants,
                        const char *what, struct ty_err *err)
{
    sqlite3_stmt *st;
    int rc = stmt(s, ST_GRANTS_DELETE, &st, err);
    if (rc != 0)
        return rc;
    bind_text(st, 1, kn);
    bind_text(st, 2, name);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(s, err, "%s", what);
    sqlite3_reset(st);
    if (rc != 0 || (rc = stmt(s, ST_GRANT_INSERT, &st, err)) != 0)
        return rc;
    size_t i;
    const json_t *g;
    json_array_foreach(grants, i, g)
    {
        bind_text(st, 1, kn);
        bind_text(st, 2, name);
        bind_text(st, 3, json_string_value(json_object_get(g, "domain")));
        bind_text(st, 4, json_string_value(json_object_get(g, "role")));
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sq_fail(s, err, "%s", what);
        sqlite3_reset(st);
        if (rc != 0)
            break;
    }
    return rc;
}

static json_t *grant_row(sqlite3_stmt *st)
{
    struct jb b = {json_object(), false};
    jb_set(&b, "domain", col_text(st, 0));
    jb_set(&b, "role", col_text(st, 1));
    if (b.bad) {
        json_decref(b.o);
        return NULL;
    }
    return b.o;
}

static int grants_read(struct sq *s, const char *kn, const char *name, json_t **out,
                       const char *what, struct ty_err *err)
{
    sqlite3_stmt *st;
    int rc = stmt(s, ST_GRANTS_GET, &st, err);
    if (rc != 0)
        return rc;
    bind_text(st, 1, kn);
    bind_text(st, 2, name);
    return collect(s, st, grant_row, out, what, err);
}

/* A user from USER_COLS, the password hash only when asked for. */
static json_t *user_row(sqlite3_stmt *st, bool hash)
{
    struct jb b = {json_object(), false};
    jb_set(&b, "name", col_text(st, 0));
    if (hash)
        jb_set(&b, "password_hash", col_text(st, 9));
    jb_set(&b, "must_change_password", json_boolean(sqlite3_column_int64(st, 1) != 0));
    jb_set(&b, "failed_attempts", col_int(st, 2));
    jb_set(&b, "locked_until_ms", col_int(st, 3));
    jb_set(&b, "created_at_ms", col_int(st, 4));
    jb_set(&b, "created_by", col_text(st, 5));
    jb_set(&b, "updated_at_ms", col_int(st, 6));
    jb_set(&b, "password_changed_at_ms", col_int(st, 7));
    jb_set(&b, "last_signin_at_ms", col_int(st, 8));
    if (b.bad) {
        json_decref(b.o);
        return NULL;
    }
    return b.o;
}

/* Run a cached statement keyed by a name (?1) and a second value; *changed gets the rows
 * it changed.  v2 text when t2 is not NULL, else the integer i2 (unless no2). */
static int run_named(struct sq *s, enum st id, const char *name, const char *t2, int64_t i2,
                     bool has2, int64_t *changed, const char *what, struct ty_err *err)
{
    sqlite3_stmt *st;
    int rc = stmt(s, id, &st, err);
    if (rc != 0)
        return rc;
    bind_text(st, 1, name);
    if (t2 != NULL)
        bind_text(st, 2, t2);
    else if (has2)
        sqlite3_bind_int64(st, 2, i2);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(s, err, "%s", what);
    else if (changed != NULL)
        *changed = sqlite3_changes(s->db);
    sqlite3_reset(st);
    return rc;
}

static int user_create_tx(struct sq *s, const struct store_user *u, const char *who, int64_t at_ms,
                          const char *what, struct ty_err *err)
{
    sqlite3_stmt *st;
    int rc = stmt(s, ST_USER_INSERT, &st, err);
    if (rc != 0)
        return rc;
    bind_text(st, 1, u->name);
    bind_text(st, 2, u->password_hash);
    sqlite3_bind_int(st, 3, u->must_change ? 1 : 0);
    sqlite3_bind_int64(st, 4, at_ms);
    bind_text(st, 5, who);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(s, err, "%s", what);
    sqlite3_reset(st);
    if (rc == TY_EEXIST)
        return ty_error(err, TY_EEXIST, "name", -1, 0,
                        "user_create: a user named \"%.100s\" exists", u->name);
    if (rc == 0 && u->grants != NULL)
        rc = grants_write(s, "user", u->name, u->grants, what, err);
    return rc;
}

static int sq_user_create(struct store *base, const struct store_user *u, const char *who,
                          int64_t at_ms, struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc = store__check_user(u, err);
    if (rc == 0)
        rc = writable(s, "user_create", err);
    if (rc != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "user_create \"%.100s\"", u->name);
    if ((rc = tx_begin(s, what, err)) != 0)
        return rc;
    return tx_end(s, user_create_tx(s, u, who, at_ms > 0 ? at_ms : now_ms(), what, err), what, err);
}

static int user_update_tx(struct sq *s, const char *name, const struct store_user_change *c,
                          int64_t at_ms, const char *what, struct ty_err *err)
{
    int64_t changed = 0;
    int rc = run_named(s, ST_USER_TOUCHED, name, NULL, at_ms, true, &changed, what, err);
    if (rc == 0 && changed == 0)
        return ty_error(err, TY_ENOENT, "name", -1, 0, "user_update: no user named \"%.100s\"",
                        name);
    if (rc == 0 && c->password_hash != NULL) {
        sqlite3_stmt *st;
        if ((rc = stmt(s, c->same_password ? ST_USER_REHASH : ST_USER_SET_PASSWORD, &st, err)) != 0)
            return rc;
        bind_text(st, 1, name);
        bind_text(st, 2, c->password_hash);
        if (!c->same_password)
            sqlite3_bind_int64(st, 3, at_ms);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sq_fail(s, err, "%s", what);
        sqlite3_reset(st);
        if (rc == 0 && c->same_password) {
            /* the same password: its sessions stay */
        } else if (rc == 0 && c->keep_session != NULL) {
            char h[STORE__HASH_HEX + 1];
            store__check_hash(what, c->keep_session, h, NULL); /* checked before */
            rc = run_named(s, ST_USER_SESSIONS_END_BUT, name, h, 0, false, NULL, what, err);
        } else if (rc == 0) {
            rc = run_named(s, ST_USER_SESSIONS_END, name, NULL, 0, false, NULL, what, err);
        }
    }
    if (rc == 0 && c->must_change >= 0)
        rc = run_named(s, ST_USER_SET_MUST, name, NULL, c->must_change, true, NULL, what, err);
    if (rc == 0 && c->unlock)
        rc = run_named(s, ST_USER_UNLOCK, name, NULL, 0, false, NULL, what, err);
    if (rc == 0 && c->grants != NULL)
        rc = grants_write(s, "user", name, c->grants, what, err);
    return rc;
}

static int sq_user_update(struct store *base, const char *name, const struct store_user_change *c,
                          int64_t at_ms, struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc = store__check_user_change(name, c, err);
    if (rc == 0)
        rc = writable(s, "user_update", err);
    if (rc != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "user_update \"%.100s\"", name);
    if ((rc = tx_begin(s, what, err)) != 0)
        return rc;
    return tx_end(s, user_update_tx(s, name, c, at_ms > 0 ? at_ms : now_ms(), what, err), what,
                  err);
}

/* One user with its grants (the hash when asked for); TY_ENOENT naming `op`. */
static int user_read(struct sq *s, const char *name, bool hash, json_t **out, const char *op,
                     struct ty_err *err)
{
    sqlite3_stmt *st;
    int rc = stmt(s, ST_USER_GET, &st, err);
    if (rc != 0)
        return rc;
    bind_text(st, 1, name);
    json_t *u = NULL;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW && (u = user_row(st, hash)) == NULL)
        rc = store__oom(err, op);
    else if (src == SQLITE_DONE)
        rc = ty_error(err, TY_ENOENT, "name", -1, 0, "%s: no user named \"%.100s\"", op, name);
    else if (src != SQLITE_ROW)
        rc = sq_fail(s, err, "%s \"%.100s\"", op, name);
    sqlite3_reset(st);
    json_t *grants = NULL;
    if (rc == 0 && (rc = grants_read(s, "user", name, &grants, op, err)) == 0 &&
        json_object_set_new(u, "grants", grants) != 0)
        rc = store__oom(err, op);
    if (rc != 0) {
        json_decref(u);
        return rc;
    }
    *out = u;
    return 0;
}

static int sq_user_get(struct store *base, const char *name, json_t **out, struct ty_err *err)
{
    int rc = store__check_id(name, STORE__NAME_MAX + 1, "name", "user_get", err);
    return rc != 0 ? rc : user_read(SQ(base), name, true, out, "user_get", err);
}

static json_t *user_row_public(sqlite3_stmt *st)
{
    return user_row(st, false);
}

static int sq_user_list(struct store *base, json_t **out, struct ty_err *err)
{
    struct sq *s = SQ(base);
    sqlite3_stmt *st;
    json_t *users = NULL;
    int rc = stmt(s, ST_USER_LIST, &st, err);
    if (rc == 0)
        rc = collect(s, st, user_row_public, &users, "user_list", err);
    size_t i;
    json_t *u;
    json_array_foreach(users, i, u)
    {
        json_t *grants = NULL;
        if (rc == 0)
            rc = grants_read(s, "user", json_string_value(json_object_get(u, "name")), &grants,
                             "user_list", err);
        if (rc == 0 && json_object_set_new(u, "grants", grants) != 0)
            rc = store__oom(err, "user_list");
    }
    if (rc != 0) {
        json_decref(users);
        return rc;
    }
    *out = users;
    return 0;
}

static int user_delete_tx(struct sq *s, const char *name, const char *what, struct ty_err *err)
{
    int64_t changed = 0;
    int rc = run_named(s, ST_USER_DELETE, name, NULL, 0, false, &changed, what, err);
    if (rc == 0 && changed == 0)
        return ty_error(err, TY_ENOENT, "name", -1, 0, "user_delete: no user named \"%.100s\"",
                        name);
    if (rc == 0)
        rc = run_named(s, ST_USER_SESSIONS_END, name, NULL, 0, false, NULL, what, err);
    if (rc == 0)
        rc = run_named(s, ST_GRANTS_DELETE, "user", name, 0, false, NULL, what, err);
    return rc;
}

static int sq_user_delete(struct store *base, const char *name, struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc = store__check_id(name, STORE__NAME_MAX + 1, "name", "user_delete", err);
    if (rc == 0)
        rc = writable(s, "user_delete", err);
    if (rc != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "user_delete \"%.100s\"", name);
    if ((rc = tx_begin(s, what, err)) != 0)
        return rc;
    return tx_end(s, user_delete_tx(s, name, what, err), what, err);
}

struct signin {
    const char *name;
    bool ok;
    int64_t at_ms, lock_ms;
    int max_failures;
};

static int user_signin_tx(struct sq *s, const struct signin *a, const char *what,
                          struct ty_err *err)
{
    sqlite3_stmt *st;
    int rc = stmt(s, a->ok ? ST_USER_SIGNIN_OK : ST_USER_SIGNIN_FAIL, &st, err);
    if (rc != 0)
        return rc;
    bind_text(st, 1, a->name);
    sqlite3_bind_int64(st, 2, a->at_ms);
    if (!a->ok) {
        sqlite3_bind_int(st, 3, a->max_failures);
        sqlite3_bind_int64(st, 4, a->lock_ms);
    }
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(s, err, "%s", what);
    else if (sqlite3_changes(s->db) == 0)
        rc = ty_error(err, TY_ENOENT, "name", -1, 0, "user_signin: no user named \"%.100s\"",
                      a->name);
    sqlite3_reset(st);
    return rc;
}

static int sq_user_signin(struct store *base, const char *name, bool ok, int64_t at_ms,
                          int max_failures, int64_t lock_ms, json_t **out, struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc = store__check_id(name, STORE__NAME_MAX + 1, "name", "user_signin", err);
    if (rc == 0 && (max_failures < 1 || lock_ms < 0))
        rc = ty_error(err, TY_EINVAL, "max_failures", -1, 0,
                      "user_signin: max_failures must be 1 or more and lock_ms not negative");
    if (rc == 0)
        rc = writable(s, "user_signin", err);
    if (rc != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "user_signin \"%.100s\"", name);
    struct signin a = {name, ok, at_ms > 0 ? at_ms : now_ms(), lock_ms, max_failures};
    if ((rc = tx_begin(s, what, err)) != 0)
        return rc;
    json_t *u = NULL;
    rc = user_signin_tx(s, &a, what, err);
    if (rc == 0 && out != NULL)
        rc = user_read(s, name, false, &u, "user_signin", err);
    rc = tx_end(s, rc, what, err);
    if (rc != 0) {
        json_decref(u);
        return rc;
    }
    if (out != NULL)
        *out = u;
    return 0;
}

static int session_put_tx(struct sq *s, const struct store_session *ss, const char *h,
                          const char *what, struct ty_err *err)
{
    sqlite3_stmt *st;
    int rc = stmt(s, ST_SESSION_PRUNE, &st, err);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, ss->created_at_ms);
    sqlite3_bind_int64(st, 2, ss->idle_before_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(s, err, "%s", what);
    sqlite3_reset(st);
    if (rc != 0 || (rc = stmt(s, ST_SESSION_INSERT, &st, err)) != 0)
        return rc;
    bind_text(st, 1, h);
    bind_text(st, 2, ss->user);
    bind_text(st, 3, ss->csrf);
    sqlite3_bind_int64(st, 4, ss->created_at_ms);
    sqlite3_bind_int64(st, 5, ss->expires_at_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(s, err, "%s", what);
    else if (sqlite3_changes(s->db) == 0)
        rc = ty_error(err, TY_ENOENT, "user", -1, 0, "session_put: no user named \"%.100s\"",
                      ss->user);
    sqlite3_reset(st);
    if (rc == TY_EEXIST)
        rc = ty_error(err, TY_EEXIST, "hash", -1, 0, "session_put: the session exists");
    return rc;
}

static int sq_session_put(struct store *base, const struct store_session *ss, struct ty_err *err)
{
    struct sq *s = SQ(base);
    char h[STORE__HASH_HEX + 1];
    int rc = store__check_session(ss, h, err);
    if (rc == 0)
        rc = writable(s, "session_put", err);
    if (rc != 0 || (rc = tx_begin(s, "session_put", err)) != 0)
        return rc;
    return tx_end(s, session_put_tx(s, ss, h, "session_put", err), "session_put", err);
}

static json_t *session_row(sqlite3_stmt *st)
{
    struct jb b = {json_object(), false};
    jb_set(&b, "user", col_text(st, 0));
    jb_set(&b, "csrf", col_text(st, 1));
    jb_set(&b, "created_at_ms", col_int(st, 2));
    jb_set(&b, "expires_at_ms", col_int(st, 3));
    jb_set(&b, "last_seen_ms", col_int(st, 4));
    if (b.bad) {
        json_decref(b.o);
        return NULL;
    }
    return b.o;
}

static int sq_session_get(struct store *base, const char *hash, json_t **out, struct ty_err *err)
{
    struct sq *s = SQ(base);
    char h[STORE__HASH_HEX + 1];
    int rc = store__check_hash("session_get", hash, h, err);
    sqlite3_stmt *st;
    if (rc != 0 || (rc = stmt(s, ST_SESSION_GET, &st, err)) != 0)
        return rc;
    bind_text(st, 1, h);
    json_t *o = NULL;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW && (o = session_row(st)) == NULL)
        rc = store__oom(err, "session_get");
    else if (src == SQLITE_DONE)
        rc = ty_error(err, TY_ENOENT, NULL, -1, 0, "session_get: no such session");
    else if (src != SQLITE_ROW)
        rc = sq_fail(s, err, "session_get");
    sqlite3_reset(st);
    if (rc == 0)
        *out = o;
    return rc;
}

static int sq_session_touch(struct store *base, const char *hash, int64_t at_ms, struct ty_err *err)
{
    struct sq *s = SQ(base);
    char h[STORE__HASH_HEX + 1];
    int rc = store__check_hash("session_touch", hash, h, err);
    if (rc == 0)
        rc = writable(s, "session_touch", err);
    return rc != 0 ? rc
                   : run_named(s, ST_SESSION_TOUCH, h, NULL, at_ms > 0 ? at_ms : now_ms(), true,
                               NULL, "session_touch", err);
}

static int sq_session_delete(struct store *base, const char *hash, struct ty_err *err)
{
    struct sq *s = SQ(base);
    char h[STORE__HASH_HEX + 1];
    int64_t changed = 0;
    int rc = store__check_hash("session_delete", hash, h, err);
    if (rc == 0)
        rc = writable(s, "session_delete", err);
    if (rc == 0)
        rc = run_named(s, ST_SESSION_DELETE, h, NULL, 0, false, &changed, "session_delete", err);
    if (rc == 0 && changed == 0)
        rc = ty_error(err, TY_ENOENT, NULL, -1, 0, "session_delete: no such session");
    return rc;
}

static int sq_grants_set(struct store *base, enum store_principal kind, const char *name,
                         const json_t *grants, struct ty_err *err)
{
    struct sq *s = SQ(base);
    const char *kn;
    int rc = store__check_principal("grants_set", kind, name, &kn, err);
    if (rc == 0)
        rc = store__check_grants("grants_set", grants, false, err);
    if (rc == 0)
        rc = writable(s, "grants_set", err);
    if (rc != 0 || (rc = tx_begin(s, "grants_set", err)) != 0)
        return rc;
    return tx_end(s, grants_write(s, kn, name, grants, "grants_set", err), "grants_set", err);
}

static int sq_grants_get(struct store *base, enum store_principal kind, const char *name,
                         json_t **out, struct ty_err *err)
{
    const char *kn;
    int rc = store__check_principal("grants_get", kind, name, &kn, err);
    return rc != 0 ? rc : grants_read(SQ(base), kn, name, out, "grants_get", err);
}

/* ---------------------------------------------------------------------------------------
 * Secrets: environment values a job marks secret, one row each, never in objects.
 */

static int secrets_put_tx(struct sq *s, const char *job, const json_t *values, const char *what,
                          struct ty_err *err)
{
    sqlite3_stmt *st;
    int rc = stmt(s, ST_SECRETS_DELETE, &st, err);
    if (rc != 0)
        return rc;
    bind_text(st, 1, job);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(s, err, "%s", what);
    sqlite3_reset(st);
    if (rc != 0 || (rc = stmt(s, ST_SECRET_INSERT, &st, err)) != 0)
        return rc;
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)values, k, v)
    {
        bind_text(st, 1, job);
        bind_text(st, 2, k);
        bind_text(st, 3, json_string_value(v));
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sq_fail(s, err, "%s", what);
        sqlite3_reset(st);
        if (rc != 0)
            break;
    }
    return rc;
}

static int sq_secrets_put(struct store *base, const char *job, const json_t *values,
                          struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc = store__check_id(job, STORE__NAME_MAX + 1, "job", "secrets_put", err);
    if (rc == 0)
        rc = store__check_secrets(job, values, err);
    if (rc == 0)
        rc = writable(s, "secrets_put", err);
    if (rc != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "secrets_put job \"%.100s\"", job);
    if ((rc = tx_begin(s, what, err)) != 0)
        return rc;
    return tx_end(s, secrets_put_tx(s, job, values, what, err), what, err);
}

static int sq_secrets_get(struct store *base, const char *job, json_t **out, struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc = store__check_id(job, STORE__NAME_MAX + 1, "job", "secrets_get", err);
    sqlite3_stmt *st;
    if (rc != 0 || (rc = stmt(s, ST_SECRETS_GET, &st, err)) != 0)
        return rc;
    bind_text(st, 1, job);
    json_t *o = json_object();
    int src = SQLITE_DONE;
    if (o == NULL)
        rc = store__oom(err, "secrets_get");
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *v = col_text(st, 1);
        if (v == NULL || json_object_set_new(o, (const char *)sqlite3_column_text(st, 0), v) != 0)
            rc = store__oom(err, "secrets_get");
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = sq_fail(s, err, "secrets_get job \"%.100s\"", job);
    sqlite3_reset(st);
    if (rc != 0) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

/* Many jobs' definitions and secrets in one statement: a row per definition (version
 * not NULL) and one per secret, made into the answer by store__jobs_*. */
static int sq_jobs_get_many(struct store *base, const char *const *names, size_t n, json_t **out,
                            struct ty_err *err)
{
    struct sq *s = SQ(base);
    int rc = store__check_names("jobs_get_many", names, n, err);
    if (rc != 0)
        return rc;
    json_t *o = json_object();
    if (o == NULL)
        return store__oom(err, "jobs_get_many");
    sqlite3_stmt *st = NULL;
    struct strbuf list;
    sb_init(&list);
    if (n > 0) {
        store__names_json(names, n, &list);
        rc = sb_failed(&list) ? store__oom(err, "jobs_get_many")
                              : stmt(s, ST_JOBS_GET_MANY, &st, err);
    }
    if (st != NULL) {
        bind_text(st, 1, sb_str(&list));
        int src = SQLITE_DONE;
        while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
            const char *job = (const char *)sqlite3_column_text(st, 0);
            bool ok = sqlite3_column_type(st, 1) != SQLITE_NULL
                          ? store__jobs_def(o, job, sqlite3_column_int64(st, 1), col_text(st, 2))
                          : store__jobs_secret(o, job, (const char *)sqlite3_column_text(st, 3),
                                               col_text(st, 4));
            if (!ok)
                rc = store__oom(err, "jobs_get_many");
        }
        if (rc == 0 && src != SQLITE_DONE)
            rc = sq_fail(s, err, "jobs_get_many (%zu names)", n);
        sqlite3_reset(st);
    }
    sb_free(&list);
    if (rc != 0) {
        json_decref(o);
        return rc;
    }
    store__jobs_done(o);
    *out = o;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Backup.
 */

static int sq_backup(struct store *base, const char *path, struct ty_err *err)
{
    struct sq *s = SQ(base);
    if (path == NULL || *path == '\0')
        return ty_error(err, TY_EINVAL, "path", -1, 0, "backup: the file name is empty");
    if (s->batch)
        return ty_error(err, TY_EINVAL, NULL, -1, 0,
                        "backup: a transaction is open on %s (commit or rollback first)", s->path);
    return copy_db(s->db, s->path, path, "backup", err);
}

/* ---------------------------------------------------------------------------------------
 * Batches.  A read-only connection may begin too: its calls then read one snapshot.
 */

static int sq_begin(struct store *base, struct ty_err *err)
{
    struct sq *s = SQ(base);
    if (s->batch)
        return ty_error(err, TY_EINVAL, NULL, -1, 0,
                        "begin: a transaction is already open on %s (commit or rollback first)",
                        s->path);
    int rc = exec_st(s, s->read_only ? ST_BEGIN_READ : ST_BEGIN, "begin", err);
    if (rc != 0)
        return rc;
    s->batch = true;
    s->batch_failed = 0;
    return 0;
}

static int sq_commit(struct store *base, struct ty_err *err)
{
    struct sq *s = SQ(base);
    if (!s->batch)
        return ty_error(err, TY_EINVAL, NULL, -1, 0, "commit: no transaction is open on %s",
                        s->path);
    int rc = s->batch_failed;
    if (rc != 0)
        ty_error(err, rc, NULL, -1, 0,
                 "commit: the batch was rolled back after an earlier error (%s); nothing in it "
                 "was stored",
                 ty_strerror(rc));
    else
        rc = exec_st(s, ST_COMMIT, "commit", err);
    if (rc != 0 && !sqlite3_get_autocommit(s->db))
        exec_st(s, ST_ROLLBACK, "rollback", NULL);
    s->batch = false;
    s->batch_failed = 0;
    return rc;
}

static void sq_rollback(struct store *base)
{
    struct sq *s = SQ(base);
    if (!sqlite3_get_autocommit(s->db))
        exec_st(s, ST_ROLLBACK, "rollback", NULL);
    s->batch = false;
    s->batch_failed = 0;
}

/* ---------------------------------------------------------------------------------------
 * Whole tables as rows (store_rows_*), for copying a store: statements built from the
 * column lists store_common.c keeps for both back ends, prepared per call.  Loading files
 * every job in the job index as obj_put does (job_moved from nowhere).
 */

static void cols_sql(struct strbuf *sb, const struct store__table *t)
{
    for (size_t c = 0; c < t->ncols; c++)
        sb_addf(sb, "%s\"%s\"", c > 0 ? ", " : "", t->cols[c].name);
}

/* Row st as a JSON object of t's columns; NULL when memory ran out. */
static json_t *table_row(sqlite3_stmt *st, const struct store__table *t)
{
    struct jb b = {json_object(), false};
    if (b.o == NULL)
        return NULL;
    for (int c = 0; c < (int)t->ncols; c++) {
        json_t *v;
        if (sqlite3_column_type(st, c) == SQLITE_NULL) {
            v = json_null();
        } else if (t->cols[c].type == STORE__COL_INT) {
            v = json_integer(sqlite3_column_int64(st, c));
        } else if (t->cols[c].type == STORE__COL_BYTES) {
            struct strbuf sb;
            sb_init(&sb);
            const void *p = sqlite3_column_blob(st, c);
            b64_encode(&sb, p, (size_t)sqlite3_column_bytes(st, c));
            v = sb_failed(&sb) ? NULL : json_stringn(sb_str(&sb), sb.len);
            sb_free(&sb);
        } else {
            v = col_text(st, c);
        }
        jb_set(&b, t->cols[c].name, v);
    }
    if (b.bad) {
        json_decref(b.o);
        return NULL;
    }
    return b.o;
}

static int sq_rows_scan(struct store *base, enum store_table tn,
                        int (*cb)(void *arg, const json_t *row), void *arg, struct ty_err *err)
{
    struct sq *s = SQ(base);
    const struct store__table *t;
    int rc = store__check_table(tn, "rows_scan", &t, err);
    if (rc != 0)
        return rc;
    if (cb == NULL)
        return ty_error(err, TY_EINVAL, "cb", -1, 0, "rows_scan %s: cb is NULL", t->name);
    struct strbuf sql;
    sb_init(&sql);
    sb_adds(&sql, "SELECT ");
    cols_sql(&sql, t);
    sb_addf(&sql, " FROM %s", t->name);
    if (t->where != NULL)
        sb_addf(&sql, " WHERE %s", t->where);
    sb_addf(&sql, " ORDER BY %s", t->order != NULL ? t->order : "id");
    sqlite3_stmt *st = NULL;
    if (sb_failed(&sql))
        rc = store__oom(err, "rows_scan");
    else if (sqlite3_prepare_v3(s->db, sb_str(&sql), -1, 0, &st, NULL) != SQLITE_OK)
        rc = sq_fail(s, err, "rows_scan %s", t->name);
    sb_free(&sql);
    if (rc != 0)
        return rc;
    int src; /* one statement: one read snapshot */
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = table_row(st, t);
        if (row == NULL) {
            rc = store__oom(err, "rows_scan");
            break;
        }
        rc = cb(arg, row);
        json_decref(row);
        if (rc != 0)
            break;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = sq_fail(s, err, "rows_scan %s", t->name);
    sqlite3_finalize(st);
    return rc;
}

/* Bind row's columns to st (bytes decoded into *bytes, which must outlive the step). */
static int bind_row(sqlite3_stmt *st, const struct store__table *t, const json_t *row, size_t i,
                    struct strbuf *bytes, const char *what, struct ty_err *err)
{
    for (int c = 0; c < (int)t->ncols; c++) {
        const json_t *v = json_object_get(row, t->cols[c].name);
        if (v == NULL || json_is_null(v)) {
            sqlite3_bind_null(st, c + 1);
        } else if (t->cols[c].type == STORE__COL_INT) {
            sqlite3_bind_int64(st, c + 1, json_integer_value(v));
        } else if (t->cols[c].type == STORE__COL_BYTES) {
            sb_truncate(bytes, 0);
            if (b64_decode(bytes, json_string_value(v), json_string_length(v)) != 0)
                return ty_error(err, TY_EINVAL, t->cols[c].name, -1, 0,
                                "%s: row %zu: %s is not base64", what, i, t->cols[c].name);
            if (sb_failed(bytes))
                return store__oom(err, what);
            sqlite3_bind_blob(st, c + 1, sb_str(bytes), (int)bytes->len, SQLITE_STATIC);
        } else {
            sqlite3_bind_text(st, c + 1, json_string_value(v), (int)json_string_length(v),
                              SQLITE_STATIC);
        }
    }
    return 0;
}

static int rows_insert(struct sq *s, const struct store__table *t, sqlite3_stmt *st,
                       const json_t *rows, const char *what, struct ty_err *err)
{
    struct strbuf bytes;
    sb_init(&bytes);
    int rc = 0;
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row)
    {
        if ((rc = bind_row(st, t, row, i, &bytes, what, err)) != 0)
            break;
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sq_fail(s, err, "%s: row %zu", what, i);
        sqlite3_reset(st);
        const char *domain;
        int enabled;
        if (rc == 0 && strcmp(t->name, "objects") == 0 &&
            store__row_job_place(row, &domain, &enabled)) {
            struct place none = {NULL, 0}, at = {(char *)domain, enabled};
            rc = job_moved(s, json_string_value(json_object_get(row, "name")), &none, &at, what,
                           err);
        }
        if (rc != 0)
            break;
    }
    sb_free(&bytes);
    return rc;
}

static int sq_rows_load(struct store *base, enum store_table tn, const json_t *rows,
                        struct ty_err *err)
{
    struct sq *s = SQ(base);
    const struct store__table *t;
    int rc = store__check_table(tn, "rows_load", &t, err);
    if (rc != 0 || (rc = store__check_rows(t, rows, "rows_load", err)) != 0)
        return rc;
    char what[64];
    snprintf(what, sizeof what, "rows_load %s", t->name);
    if ((rc = writable(s, what, err)) != 0 || json_array_size(rows) == 0)
        return rc;
    struct strbuf sql;
    sb_init(&sql);
    sb_addf(&sql, "INSERT INTO %s (", t->name);
    cols_sql(&sql, t);
    sb_adds(&sql, ") VALUES (");
    for (size_t c = 0; c < t->ncols; c++)
        sb_adds(&sql, c > 0 ? ", ?" : "?");
    sb_adds(&sql, ")");
    sqlite3_stmt *st = NULL;
    if (sb_failed(&sql))
        rc = store__oom(err, what);
    else if (sqlite3_prepare_v3(s->db, sb_str(&sql), -1, 0, &st, NULL) != SQLITE_OK)
        rc = sq_fail(s, err, "%s", what);
    sb_free(&sql);
    if (rc == 0 && (rc = tx_begin(s, what, err)) == 0)
        rc = tx_end(s, rows_insert(s, t, st, rows, what, err), what, err);
    sqlite3_finalize(st);
    return rc;
}

static int sq_rows_count(struct store *base, enum store_table tn, int64_t *count,
                         struct ty_err *err)
{
    struct sq *s = SQ(base);
    const struct store__table *t;
    int rc = store__check_table(tn, "rows_count", &t, err);
    if (rc != 0)
        return rc;
    char sql[160], what[64];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s%s%s", t->name,
             t->where != NULL ? " WHERE " : "", t->where != NULL ? t->where : "");
    snprintf(what, sizeof what, "rows_count %s", t->name);
    return read_int(s, sql, count, what, err);
}

static const struct store_ops sq_ops = {
    .close = sq_close,
    .obj_put = sq_obj_put,
    .obj_get = sq_obj_get,
    .obj_delete = sq_obj_delete,
    .obj_list = sq_obj_list,
    .job_count = sq_job_count,
    .obj_page = sq_obj_page,
    .obj_scan = sq_obj_scan,
    .calendar_users = sq_calendar_users,
    .run_put = sq_run_put,
    .skip_put = sq_skip_put,
    .run_get = sq_run_get,
    .runs_unfinished = sq_runs_unfinished,
    .fire_shards = sq_fire_shards,
    .last_fires = sq_last_fires,
    .executor_last_fires = sq_executor_last_fires,
    .skips_last = sq_skips_last,
    .history = sq_history,
    .stats = sq_stats,
    .prune = sq_prune,
    .alert_raise = sq_alert_raise,
    .alert_clear = sq_alert_clear,
    .alerts_open = sq_alerts_open,
    .meta_get = sq_meta_get,
    .meta_set = sq_meta_set,
    .obj_history = sq_obj_history,
    .obj_version = sq_obj_version,
    .token_put = sq_token_put,
    .token_list = sq_token_list,
    .token_revoke = sq_token_revoke,
    .token_lookup = sq_token_lookup,
    .user_create = sq_user_create,
    .user_update = sq_user_update,
    .user_get = sq_user_get,
    .user_list = sq_user_list,
    .user_delete = sq_user_delete,
    .user_signin = sq_user_signin,
    .session_put = sq_session_put,
    .session_get = sq_session_get,
    .session_touch = sq_session_touch,
    .session_delete = sq_session_delete,
    .grants_set = sq_grants_set,
    .grants_get = sq_grants_get,
    .secrets_put = sq_secrets_put,
    .secrets_get = sq_secrets_get,
    .jobs_get_many = sq_jobs_get_many,
    .backup = sq_backup,
    .rows_scan = sq_rows_scan,
    .rows_load = sq_rows_load,
    .rows_count = sq_rows_count,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
};
