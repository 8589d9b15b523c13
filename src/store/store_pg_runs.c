/*
 * store_pg_runs.c - history in the PostgreSQL store: runs, skipped fires, history pages,
 * statistics and retention (store.h), on tables partitioned by day.
 *
 * Years of history for many jobs: `runs` and `skips` are PARTITIONED BY RANGE on
 * scheduled_at (seconds), one partition per UTC day, so retention drops whole days
 * (DROP TABLE: no dead rows, no vacuum) and every query on a time range touches only its
 * days.  A partition is made when a write first needs its day.  Each connection keeps the
 * set of days it knows exist (read from the catalog on first need); a new day is created
 * as an empty table and ATTACHed - which locks the parent SHARE UPDATE EXCLUSIVE, so
 * readers and writers of other days go on, where CREATE TABLE ... PARTITION OF would lock
 * them all out - inside a savepoint when a batch is open, and two connections creating the
 * same day at once are both fine (the loser's "already exists" is rolled back and
 * ignored).  A writer makes today's and tomorrow's partitions ahead, outside any batch.
 *
 * Uniqueness.  PostgreSQL enforces a unique index on a partitioned table only when it
 * includes the partition key, and run_id and (fire_id, attempt) do not.  So a small
 * unpartitioned table, run_keys (run_id PRIMARY KEY, fire_id, attempt UNIQUE together,
 * scheduled_at), holds every run's identity; run_put writes it and the run in one
 * statement, and it also tells run_get which day a run id lives in.  skip_keys does the
 * same for skipped fires by (fire_id, shard).  A duplicate fire is an answer, not an error
 * (ON CONFLICT DO NOTHING), since an error would abort the caller's batch.
 *
 * run_put is one round trip in the common case: a lean statement for the likely path (a
 * queued record inserts the key and the run; a later record updates the run in its day's
 * partition, addressed by name so PostgreSQL need not plan across every partition on each
 * execution), and only when that changed nothing - a replay, a refused record, a race -
 * the full statement that decides every case.  Status never goes backwards: updates admit
 * a stored status of queued, or running unless the new one is queued, as in SQLite.
 *
 * last_fires must find every job's newest scheduled fire without reading all history:
 * fire_days (job, day) gets a row the first time a job has a schedule- or misfire-
 * triggered run or skip in a UTC day (one index probe per new run, no update, no lock
 * held), so a job's newest fire is in the newest of its days that still holds one.
 *
 * Statistics use percentile_disc, which picks the first value whose cumulative share
 * reaches p: rank ceil(p * n), the nearest-rank definition store_common.c implements for
 * SQLite, computed where the rows are.
 */
#include "store.h"
#include "store_common.h"
#include "store_pg_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/civil.h"
#include "../core/strbuf.h"

#define DAY     CIVIL_SECS_PER_DAY
#define STR_DAY "86400" /* DAY in SQL text */

/* ---------------------------------------------------------------------------------------
 * Schema version 3: the history tables (created with store_pg.c's, in its transaction;
 * the steps after it, such as runs_executor in version 4, are store_pg.c's migrations[]).
 */
/* clang-format off */
const char *const pg__runs_schema =
    /* every run's identity; the source of truth for uniqueness and the day of a run id */
    "CREATE TABLE run_keys ("
    "  run_id       text COLLATE \"C\" PRIMARY KEY,"
    "  fire_id      text COLLATE \"C\" NOT NULL,"
    "  attempt      bigint NOT NULL,"
    "  scheduled_at bigint NOT NULL,"
    "  UNIQUE (fire_id, attempt));"
    "CREATE INDEX run_keys_scheduled ON run_keys (scheduled_at);"

    /* one row per attempt; id orders rows of one second (history's cursor) */
    "CREATE SEQUENCE runs_id_seq;"
    "CREATE TABLE runs ("
    "  id            bigint NOT NULL DEFAULT nextval('runs_id_seq'),"
    "  run_id        text COLLATE \"C\" NOT NULL,"
    "  fire_id       text COLLATE \"C\" NOT NULL,"
    "  attempt       bigint NOT NULL,"
    "  job           text COLLATE \"C\" NOT NULL,"
    "  domain        text COLLATE \"C\" NOT NULL,"
    "  shard         bigint NOT NULL,"
    "  \"trigger\"     text NOT NULL,"
    "  status        text NOT NULL,"
    "  scheduled_at  bigint NOT NULL,"
    "  queued_at_ms  bigint NOT NULL,"
    "  started_at_ms bigint NOT NULL,"
    "  ended_at_ms   bigint NOT NULL,"
    "  pid           bigint NOT NULL,"
    "  pid_start     bigint NOT NULL,"
    "  boot_id       text,"
    "  executor      text,"
    "  epoch         bigint NOT NULL,"
    "  exit_code     integer NOT NULL,"
    "  signal        integer NOT NULL,"
    "  error         text,"
    "  output        bytea"
    ") PARTITION BY RANGE (scheduled_at);"
    "ALTER SEQUENCE runs_id_seq OWNED BY runs.id;"
    "CREATE UNIQUE INDEX runs_run ON runs (run_id, scheduled_at);"
    "CREATE INDEX runs_scheduled ON runs (scheduled_at, id);"
    "CREATE INDEX runs_job ON runs (job, scheduled_at, id);"
    "CREATE INDEX runs_domain ON runs (domain, scheduled_at, id);"
    "CREATE INDEX runs_status ON runs (status, scheduled_at, id);"

    "CREATE TABLE skip_keys ("
    "  fire_id      text COLLATE \"C\" NOT NULL,"
    "  shard        bigint NOT NULL,"
    "  scheduled_at bigint NOT NULL,"
    "  PRIMARY KEY (fire_id, shard));"
    "CREATE INDEX skip_keys_scheduled ON skip_keys (scheduled_at);"

    "CREATE SEQUENCE skips_id_seq;"
    "CREATE TABLE skips ("
    "  id             bigint NOT NULL DEFAULT nextval('skips_id_seq'),"
    "  fire_id        text COLLATE \"C\" NOT NULL,"
    "  shard          bigint NOT NULL,"
    "  job            text COLLATE \"C\" NOT NULL,"
    "  domain         text COLLATE \"C\" NOT NULL,"
    "  scheduled_at   bigint NOT NULL,"
    "  recorded_at_ms bigint NOT NULL,"
    "  reason         text NOT NULL,"
    "  detail         text,"
    "  \"trigger\"      text NOT NULL"
    ") PARTITION BY RANGE (scheduled_at);"
    "ALTER SEQUENCE skips_id_seq OWNED BY skips.id;"
    "CREATE INDEX skips_scheduled ON skips (scheduled_at, id);"
    "CREATE INDEX skips_job ON skips (job, scheduled_at, id);"
    "CREATE INDEX skips_domain ON skips (domain, scheduled_at, id);"

    /* the UTC days in which a job had a scheduled (or misfire) run or skip */
    "CREATE TABLE fire_days ("
    "  job text COLLATE \"C\" NOT NULL,"
    "  day bigint NOT NULL,"
    "  PRIMARY KEY (job, day));";
/* clang-format on */

/* ---------------------------------------------------------------------------------------
 * Fixed statements.
 */

#define RUN_COLS                                                                                   \
    "run_id, fire_id, attempt, job, domain, shard, \"trigger\", status, scheduled_at, "            \
    "queued_at_ms, started_at_ms, ended_at_ms, pid, pid_start, boot_id, executor, epoch, "         \
    "exit_code, signal, error"
#define RUN_NCOLS 20 /* then the output (run_get) or its length (everything else) */

/* Status never goes backwards: a stored queued run takes anything, a running one anything
 * but queued, a final one nothing ($8 the new status, as in every run statement). */
#define RUN_RANK_OK "(r.status = 'queued' OR (r.status = 'running' AND $8 <> 'queued'))"

/* The first and last second of a UTC day, clamped to bigint. */
#define DAY_FIRST(d) "(greatest(" d "::numeric * 86400, -9223372036854775808))::bigint"
#define DAY_LAST(d)  "(least(" d "::numeric * 86400 + 86399, 9223372036854775807))::bigint"

/* The newest schedule- or misfire-triggered fire of job j in day d (NULL when none). */
#define FIRE_IN_DAY(j, d)                                                                          \
    "greatest((SELECT max(r.scheduled_at) FROM runs r WHERE r.job = " j                            \
    " AND r.\"trigger\" IN ('schedule', 'misfire') AND r.scheduled_at BETWEEN " DAY_FIRST(         \
        d) " AND " DAY_LAST(d) "), (SELECT max(k.scheduled_at) FROM skips k WHERE k.job = " j      \
                               " AND k.\"trigger\" IN ('schedule', 'misfire') AND k.scheduled_at " \
                               "BETWEEN " DAY_FIRST(d) " AND " DAY_LAST(d) "))"

/* What an update of a known run sets (parameters as PG_R_RUN_PUT's). */
#define RUN_UPDATE_SET                                                                             \
    "status = $8, queued_at_ms = $10, started_at_ms = $11, ended_at_ms = $12, pid = $13,"          \
    " pid_start = $14, boot_id = $15, executor = $16, epoch = $17, exit_code = $18,"               \
    " signal = $19, error = $20, output = $21"

static const char *const run_sql[PG_R_COUNT] = {
    /* The likely case of a first (queued) record, with PG_R_RUN_PUT's parameters: a new run,
     * nothing more to decide; no row back means it was not new (PG_R_RUN_PUT decides). */
    [PG_R_RUN_INSERT] =
        "WITH k AS (INSERT INTO run_keys (run_id, fire_id, attempt, scheduled_at)"
        "  VALUES ($1, $2, $3, $9) ON CONFLICT DO NOTHING RETURNING 1),"
        " ins AS (INSERT INTO runs (" RUN_COLS ", output)"
        "  SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,"
        "  $18, $19, $20, $21 FROM k RETURNING 1),"
        " fd AS (INSERT INTO fire_days (job, day) SELECT $4, $22 FROM k"
        "  WHERE $7 IN ('schedule', 'misfire') ON CONFLICT DO NOTHING)"
        " SELECT count(*) FROM ins",
    /* $1 run_id, $2 fire_id, $3 attempt, $4 job, $5 domain, $6 shard, $7 trigger, $8 status,
     * $9 scheduled_at, $10..$21 times .. output (run_params), $22 the UTC day */
    [PG_R_RUN_PUT] =
        "WITH old AS (SELECT fire_id, attempt, scheduled_at FROM run_keys WHERE run_id = $1),"
        " k AS (INSERT INTO run_keys (run_id, fire_id, attempt, scheduled_at)"
        "  SELECT $1, $2, $3, $9 WHERE NOT EXISTS (SELECT FROM old)"
        "  ON CONFLICT DO NOTHING RETURNING 1),"
        " ins AS (INSERT INTO runs (" RUN_COLS ", output)"
        "  SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,"
        "  $18, $19, $20, $21 FROM k RETURNING 1),"
        " fd AS (INSERT INTO fire_days (job, day) SELECT $4, $22 FROM k"
        "  WHERE $7 IN ('schedule', 'misfire') ON CONFLICT DO NOTHING),"
        " upd AS (UPDATE runs r SET " RUN_UPDATE_SET
        "  FROM old WHERE r.run_id = $1 AND r.scheduled_at = $9 AND old.scheduled_at = $9"
        "  AND old.fire_id = $2 AND old.attempt = $3 AND " RUN_RANK_OK " RETURNING 1)"
        " SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM upd),"
        " o.fire_id, o.attempt, o.scheduled_at FROM (VALUES (1)) v LEFT JOIN old o ON true",
    /* an update of a run stored under another scheduled_at than this record says:
     * PG_R_RUN_PUT's parameters with $9 the stored scheduled_at */
    [PG_R_RUN_MOVE] = "UPDATE runs r SET " RUN_UPDATE_SET " WHERE r.run_id = $1"
                      " AND r.scheduled_at = $9 AND " RUN_RANK_OK,
    [PG_R_RUN_BY_FIRE] = "SELECT run_id FROM run_keys WHERE fire_id = $1 AND attempt = $2",
    /* $1 fire_id, $2 shard, $3 job, $4 domain, $5 scheduled_at, $6 recorded, $7 reason,
     * $8 detail, $9 trigger, $10 the UTC day */
    [PG_R_SKIP_PUT] =
        "WITH k AS (INSERT INTO skip_keys (fire_id, shard, scheduled_at) VALUES ($1, $2, $5)"
        "  ON CONFLICT DO NOTHING RETURNING 1),"
        " ins AS (INSERT INTO skips (fire_id, shard, job, domain, scheduled_at, recorded_at_ms,"
        "  reason, detail, \"trigger\") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 FROM k"
        "  RETURNING 1),"
        " fd AS (INSERT INTO fire_days (job, day) SELECT $3, $10 FROM k"
        "  WHERE $9 IN ('schedule', 'misfire') ON CONFLICT DO NOTHING)"
        " SELECT count(*) FROM ins",
    [PG_R_RUN_GET] = "SELECT " RUN_COLS ", output,"
                     " (SELECT n.run_id FROM run_keys n WHERE n.fire_id = r.fire_id"
                     "  AND n.attempt = r.attempt + 1)"
                     " FROM runs r WHERE r.run_id = $1"
                     " AND r.scheduled_at = (SELECT k.scheduled_at FROM run_keys k"
                     "  WHERE k.run_id = $1)",
    [PG_R_RUNS_UNFINISHED] = "SELECT " RUN_COLS ", octet_length(output) FROM runs"
                             " WHERE status IN ('queued', 'running') ORDER BY scheduled_at, id",
    /* the keys find the fire's runs (one range of their unique index) and their days */
    [PG_R_FIRE_SHARDS] = "SELECT DISTINCT ON (r.shard) r.shard, r.attempt, r.status"
                         " FROM run_keys k JOIN runs r ON r.run_id = k.run_id"
                         " AND r.scheduled_at = k.scheduled_at"
                         " WHERE k.fire_id >= $1 AND k.fire_id < $2"
                         " ORDER BY r.shard, r.attempt DESC",
    /* every job's newest fire: its days newest first, until one still holds a fire */
    [PG_R_LAST_FIRES] = "SELECT j.job, (SELECT f.at FROM fire_days d,"
                        "  LATERAL (SELECT " FIRE_IN_DAY(
                            "d.job", "d.day") " AS at) f"
                                              "  WHERE d.job = j.job AND f.at IS NOT NULL"
                                              "  ORDER BY d.day DESC LIMIT 1)"
                                              " FROM (SELECT DISTINCT job FROM fire_days) j",
    /* one range of runs_executor per day since $2; the rows give their job and trigger */
    [PG_R_EXECUTOR_LAST_FIRES] = "SELECT job, shard, max(scheduled_at) FROM runs"
                                 " WHERE executor = $1 AND scheduled_at >= $2"
                                 " AND \"trigger\" IN ('schedule', 'misfire') GROUP BY job, shard",
    /* per job, a range of skips_job from its own instant */
    [PG_R_SKIPS_LAST] = "SELECT k.job, k.shard, max(k.scheduled_at)"
                        " FROM jsonb_each_text($1::jsonb) AS u(job, after)"
                        " JOIN skips AS k ON k.job = u.job AND k.scheduled_at > u.after::bigint"
                        " WHERE k.\"trigger\" IN ('schedule', 'misfire') GROUP BY k.job, k.shard",
};

static int run_exec(struct pg *s, enum pg_rst id, const struct pg_params *p, PGresult **res,
                    const char *what, struct ty_err *err)
{
    char name[16];
    snprintf(name, sizeof name, "r%d", (int)id);
    return pg__exec(s, name, run_sql[id], &s->prep.run[id], p, res, what, err);
}

/* ---------------------------------------------------------------------------------------
 * Day partitions.
 */

/* The UTC day of an instant (floor division: day -1 holds the second before 1970). */
static int64_t day_of(int64_t t)
{
    int64_t d = t / DAY;
    return t % DAY < 0 ? d - 1 : d;
}

/* The bounds of a day's partition as SQL: its first second and the next day's (MINVALUE
 * or MAXVALUE where bigint ends). */
static void day_bounds(int64_t day, char lo[24], char hi[24])
{
    int64_t a, b;
    if (__builtin_mul_overflow(day, (int64_t)DAY, &a))
        snprintf(lo, 24, "MINVALUE");
    else
        snprintf(lo, 24, "%" PRId64, a);
    if (__builtin_mul_overflow(day, (int64_t)DAY, &b) || __builtin_add_overflow(b, DAY, &b))
        snprintf(hi, 24, day < 0 ? "MINVALUE" : "MAXVALUE");
    else
        snprintf(hi, 24, "%" PRId64, b);
}

/* "runs_20260101": a table's partition for a day (day numbers where the year has no four
 * digits). */
static void part_name(const char *table, int64_t day, char out[64])
{
    int64_t y;
    int m, d;
    civil_ymd_from_days(day, &y, &m, &d);
    if (y >= 0 && y <= 9999)
        snprintf(out, 64, "%s_%04" PRId64 "%02d%02d", table, y, m, d);
    else
        snprintf(out, 64, "%s_day%s%" PRId64, table, day < 0 ? "m" : "", day < 0 ? -day : day);
}

static bool days_find(const struct pg_days *d, int64_t day, size_t *at)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->v[mid].day < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    *at = lo;
    return lo < d->n && d->v[lo].day == day;
}

static bool days_add(struct pg_days *d, int64_t day, const char *name)
{
    size_t at;
    if (days_find(d, day, &at))
        return true;
    if (d->n == d->cap) {
        size_t cap = d->cap != 0 ? d->cap * 2 : 64;
        struct pg_day *v = realloc(d->v, cap * sizeof *v);
        if (v == NULL)
            return false;
        d->v = v;
        d->cap = cap;
    }
    memmove(d->v + at + 1, d->v + at, (d->n - at) * sizeof *d->v);
    d->v[at].day = day;
    snprintf(d->v[at].name, sizeof d->v[at].name, "%s", name);
    d->n++;
    return true;
}

void pg__days_forget(struct pg *s)
{
    for (int i = 0; i < 2; i++) {
        s->days[i].n = 0;
        s->days[i].loaded = false;
    }
    /* a statement naming a partition that is gone would fail, and end a batch */
    for (int i = 0; i < PG_DAY_STMTS; i++)
        s->prep.day[i].stale = s->prep.day[i].prepared;
    s->day_gen++;
}

/* The partitions of runs and skips, with the bounds they were made with (NULL for
 * MINVALUE / MAXVALUE): rows of (is skips, name, lower, upper). */
#define PARTITIONS_SQL                                                                             \
    "SELECT p.relname = 'skips', c.relname,"                                                       \
    " (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''(-?[0-9]+)''\\)'))[1],"         \
    " (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''(-?[0-9]+)''\\)'))[1]"            \
    " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"                                    \
    " JOIN pg_class p ON p.oid = i.inhparent"                                                      \
    " WHERE i.inhparent IN ('runs'::regclass, 'skips'::regclass)"

static int days_load(struct pg *s, const char *what, struct ty_err *err)
{
    PGresult *r;
    int rc = pg__exec_once(s, PARTITIONS_SQL, NULL, &r, what, err);
    if (rc != 0)
        return rc;
    pg__days_forget(s);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        if (PQgetisnull(r, i, 2))
            continue;
        int which = strcmp(PQgetvalue(r, i, 0), "t") == 0 ? PG_DAYS_SKIPS : PG_DAYS_RUNS;
        if (!days_add(&s->days[which], day_of(pg__int(r, i, 2)), PQgetvalue(r, i, 1)))
            rc = store__oom(err, what);
    }
    PQclear(r);
    s->days[0].loaded = s->days[1].loaded = rc == 0;
    return rc;
}

/* Errors that mean another connection made the same partition at the same moment: the
 * table (42P07) or its row type (42710, 23505) exists, or it is attached already (42809). */
static bool made_meanwhile(const PGresult *r)
{
    static const char *const states[] = {"42P07", "42710", "23505", "42809"};
    const char *st = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    for (size_t i = 0; st != NULL && i < sizeof states / sizeof states[0]; i++)
        if (strcmp(st, states[i]) == 0)
            return true;
    return false;
}

/* Make the partition of `table` for `day`: inside the caller's transaction in a savepoint
 * (so a clash with another connection making it too is undone alone), else in one of its
 * own. */
static int partition_create(struct pg *s, const char *table, int64_t day, const char *what,
                            struct ty_err *err)
{
    char name[64], lo[24], hi[24];
    part_name(table, day, name);
    day_bounds(day, lo, hi);
    struct strbuf sb;
    sb_init(&sb);
    sb_adds(&sb, s->tx ? "SAVEPOINT tethys_partition;" : "BEGIN;");
    sb_addf(&sb,
            "CREATE TABLE IF NOT EXISTS %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS);"
            "ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s);",
            name, table, table, name, lo, hi);
    sb_adds(&sb, s->tx ? "RELEASE SAVEPOINT tethys_partition" : "COMMIT");
    if (sb_failed(&sb)) {
        sb_free(&sb);
        return store__oom(err, what);
    }
    int rc = pg__ready(s, what, err);
    PGresult *r = rc == 0 ? PQexec(s->conn, sb_str(&sb)) : NULL;
    sb_free(&sb);
    if (rc != 0)
        return rc;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        bool ok = made_meanwhile(r);
        if (!ok)
            rc = pg__fail(s, r, err, "%s: make partition %s", what, name);
        if (PQstatus(s->conn) == CONNECTION_OK)
            PQclear(PQexec(s->conn, s->tx ? "ROLLBACK TO SAVEPOINT tethys_partition;"
                                            "RELEASE SAVEPOINT tethys_partition"
                                          : "ROLLBACK"));
        if (rc != 0 && s->batch && !s->broken && PQtransactionStatus(s->conn) == PQTRANS_INTRANS &&
            s->batch_failed == rc)
            s->batch_failed = 0; /* the savepoint undid it: the batch goes on */
    }
    PQclear(r);
    return rc;
}

/*
 * After a write failed with rc: when it found no partition for its row (23514), or the
 * partition it named is not there (42P01), another connection dropped a day this one
 * thought was there (retention elsewhere).  The days
 * known are forgotten; a write that was its own transaction may simply be repeated (0 and
 * *again), one in a batch ended the batch, which its caller retries (TY_EUNAVAIL).
 */
static int partition_gone(struct pg *s, int rc, bool *again, const char *what, struct ty_err *err)
{
    *again = false;
    if (rc == 0 || (strcmp(s->state, "23514") != 0 && strcmp(s->state, "42P01") != 0))
        return rc;
    pg__days_forget(s);
    if (!s->tx) {
        *again = true;
        return 0;
    }
    if (s->batch)
        s->batch_failed = TY_EUNAVAIL;
    return ty_error(err, TY_EUNAVAIL, NULL, -1, 0,
                    "%s: another connection dropped the day's partition meanwhile (retention); "
                    "roll back and try again",
                    what);
}

/* The partition of runs or skips for `day` exists (made now if it did not); its name
 * into name[64] when name is not NULL. */
static int partition_for(struct pg *s, int which, int64_t day, char *name, const char *what,
                         struct ty_err *err)
{
    struct pg_days *d = &s->days[which];
    size_t at = 0;
    int rc = d->loaded ? 0 : days_load(s, what, err);
    if (rc == 0 && !days_find(d, day, &at)) {
        const char *table = which == PG_DAYS_RUNS ? "runs" : "skips";
        char made[64];
        part_name(table, day, made);
        rc = partition_create(s, table, day, what, err);
        if (rc == 0 && !days_add(d, day, made))
            rc = store__oom(err, what);
        days_find(d, day, &at);
    }
    if (rc == 0 && name != NULL)
        snprintf(name, 64, "%s", d->v[at].name);
    return rc;
}

int pg__partitions_ahead(struct pg *s, struct ty_err *err)
{
    int64_t today = day_of(pg__now_ms() / 1000);
    int rc = 0;
    for (int which = 0; rc == 0 && which < 2; which++)
        for (int64_t d = today; rc == 0 && d <= today + 1; d++)
            rc = partition_for(s, which, d, NULL, "partitions", err);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Runs and skipped fires: the write path.
 */

static void run_params(struct pg_params *p, const struct store_run *r, const char *status,
                       const char *trigger)
{
    pg__p_text(p, r->run_id);
    pg__p_text(p, r->fire_id);
    pg__p_int(p, r->attempt);
    pg__p_text(p, r->job);
    pg__p_text(p, r->domain != NULL ? r->domain : "");
    pg__p_int(p, r->shard);
    pg__p_text(p, trigger);
    pg__p_text(p, status);
    pg__p_int(p, r->scheduled_at);
    pg__p_int(p, r->queued_at_ms);
    pg__p_int(p, r->started_at_ms);
    pg__p_int(p, r->ended_at_ms);
    pg__p_int(p, r->pid);
    pg__p_int(p, r->pid_start);
    pg__p_text(p, r->boot_id);
    pg__p_text(p, r->executor);
    pg__p_int(p, r->epoch);
    pg__p_int(p, r->exit_code);
    pg__p_int(p, r->signal);
    pg__p_text(p, r->error);
    pg__p_bytes(p, r->output, r->output_len);
    pg__p_int(p, day_of(r->scheduled_at));
}

/* A known run id whose record carries another scheduled_at than the stored one: update
 * the row where it is (scheduled_at stays as inserted). */
static int run_move(struct pg *s, const struct store_run *r, const char *status,
                    const char *trigger, int64_t stored, const char *what, struct ty_err *err)
{
    struct store_run where = *r;
    where.scheduled_at = stored;
    struct pg_params p = {0};
    run_params(&p, &where, status, trigger);
    int rc = run_exec(s, PG_R_RUN_MOVE, &p, NULL, what, err);
    pg__p_free(&p);
    return rc;
}

/* Nothing was inserted and the run id is unknown: its (fire, attempt) is taken - by
 * another run id (refused), or by this one, inserted by another connection since the
 * statement's snapshot (*again: run the statement again). */
static int fire_taken(struct pg *s, const struct store_run *r, bool *again, const char *what,
                      struct ty_err *err)
{
    struct pg_params p = {0};
    pg__p_text(&p, r->fire_id);
    pg__p_int(&p, r->attempt);
    PGresult *res;
    int rc = run_exec(s, PG_R_RUN_BY_FIRE, &p, &res, what, err);
    pg__p_free(&p);
    if (rc != 0)
        return rc;
    *again = PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 0), r->run_id) == 0;
    PQclear(res);
    if (*again)
        return 0;
    return ty_error(err, TY_EEXIST, "fire_id", -1, 0,
                    "run_put run %s: fire %.80s attempt %" PRIu32
                    " is already recorded under another run id",
                    r->run_id, r->fire_id, r->attempt);
}

/* What the upsert's result row says: done, refused, or *again. */
static int run_outcome(struct pg *s, const struct store_run *r, const char *status,
                       const char *trigger, const PGresult *res, bool *again, const char *what,
                       struct ty_err *err)
{
    *again = false;
    if (pg__int(res, 0, 0) > 0 || pg__int(res, 0, 1) > 0)
        return 0; /* inserted, or updated */
    if (PQgetisnull(res, 0, 2))
        return fire_taken(s, r, again, what, err);
    const char *fire = PQgetvalue(res, 0, 2);
    int64_t attempt = pg__int(res, 0, 3), stored = pg__int(res, 0, 4);
    if (strcmp(fire, r->fire_id) != 0 || attempt != (int64_t)r->attempt)
        return ty_error(err, TY_EEXIST, "run_id", -1, 0,
                        "run_put run %s: that run id is already fire %.80s attempt %" PRId64,
                        r->run_id, fire, attempt);
    if (stored != r->scheduled_at)
        return run_move(s, r, status, trigger, stored, what, err);
    return 0; /* an older record, or after a final one: a replay, nothing to change */
}

/*
 * Most records take one path: the first (queued) record of a run inserts it, a later one
 * moves an existing run's status forward.  A lean statement for that path costs a third of
 * PG_R_RUN_PUT's server time (which initialises five table changes on every execution);
 * when it changes nothing - a replay, a refused record, a run first reported final -
 * PG_R_RUN_PUT decides, so the outcome is the same whichever statement ran.  Returns 0
 * when written, RUN_UNLIKELY when the full statement must decide, or an error (a
 * partition dropped meanwhile is left to the full path's recovery, as RUN_UNLIKELY).
 */
#define RUN_UNLIKELY 1

/*
 * The likely case of a later record - the run is there, under this fire and attempt, and
 * the status moves forward - as an UPDATE of the day's partition itself, prepared once per
 * day.  Through the partitioned parent PostgreSQL would plan it again on every execution
 * (a generic plan over every partition always looks dearer than a custom one), or, with
 * a generic plan, lock every partition of years of history on every execution.
 */
static int day_update(struct pg *s, int64_t day, const char *part, const struct pg_params *p,
                      PGresult **res, const char *what, struct ty_err *err)
{
    struct pg_day_stmt *slot = NULL, *lru = &s->prep.day[0];
    for (int i = 0; i < PG_DAY_STMTS; i++) {
        struct pg_day_stmt *d = &s->prep.day[i];
        if (d->prepared && !d->stale && d->day == day && d->gen == s->day_gen)
            slot = d;
        if (d->used < lru->used)
            lru = d;
    }
    if (slot == NULL) { /* the least recently used one goes */
        slot = lru;
        if (slot->prepared) {
            char sql[80];
            snprintf(sql, sizeof sql, "DEALLOCATE ru%" PRId64 "_%u", slot->day, slot->gen);
            int rc = pg__exec_once(s, sql, NULL, NULL, what, err);
            if (rc != 0)
                return rc;
        }
        *slot = (struct pg_day_stmt){.day = day, .gen = s->day_gen};
    }
    slot->used = ++s->day_tick;
    char name[48];
    snprintf(name, sizeof name, "ru%" PRId64 "_%u", day, slot->gen);
    char *ident = PQescapeIdentifier(s->conn, part, strlen(part));
    if (ident == NULL)
        return store__oom(err, what);
    struct strbuf sb;
    sb_init(&sb);
    sb_addf(&sb,
            "UPDATE %s r SET " RUN_UPDATE_SET " WHERE r.run_id = $1 AND r.scheduled_at = $9"
            " AND r.fire_id = $2 AND r.attempt = $3 AND " RUN_RANK_OK,
            ident);
    PQfreemem(ident);
    int rc = sb_failed(&sb) ? store__oom(err, what)
                            : pg__exec(s, name, sb_str(&sb), &slot->prepared, p, res, what, err);
    sb_free(&sb);
    return rc;
}

/* Deallocate the per-day statements whose partitions may be gone, when the connection can
 * take a command (not inside a failed transaction). */
static void day_updates_flush(struct pg *s)
{
    if (s->broken || PQstatus(s->conn) != CONNECTION_OK ||
        PQtransactionStatus(s->conn) == PQTRANS_INERROR)
        return;
    for (int i = 0; i < PG_DAY_STMTS; i++) {
        struct pg_day_stmt *d = &s->prep.day[i];
        if (!d->stale)
            continue;
        char sql[80];
        snprintf(sql, sizeof sql, "DEALLOCATE ru%" PRId64 "_%u", d->day, d->gen);
        PQclear(PQexec(s->conn, sql));
        *d = (struct pg_day_stmt){0};
    }
}

static int run_likely(struct pg *s, const struct store_run *r, const struct pg_params *p,
                      const char *what, struct ty_err *err)
{
    char part[64];
    int64_t day = day_of(r->scheduled_at);
    int rc = partition_for(s, PG_DAYS_RUNS, day, part, what, err);
    if (rc != 0)
        return rc;
    bool insert = r->status == STORE_RUN_QUEUED;
    PGresult *res;
    rc = insert ? run_exec(s, PG_R_RUN_INSERT, p, &res, what, err)
                : day_update(s, day, part, p, &res, what, err);
    if (rc != 0) { /* a partition dropped meanwhile: outside a batch, the full path recovers */
        bool again;
        rc = partition_gone(s, rc, &again, what, err);
        return again ? RUN_UNLIKELY : rc;
    }
    bool done = insert ? pg__int(res, 0, 0) > 0 : strcmp(PQcmdTuples(res), "0") != 0;
    PQclear(res);
    return done ? 0 : RUN_UNLIKELY;
}

/* How often run_put runs its statement again after a concurrent insert of the same run. */
#define RUN_ROUNDS 4

int pg__run_put(struct store *base, const struct store_run *r, struct ty_err *err)
{
    struct pg *s = PG(base);
    const char *status, *trigger;
    int rc = store__check_run(r, &status, &trigger, err);
    if (rc != 0 || (rc = pg__writable(s, "run_put", err)) != 0)
        return rc;
    char what[64];
    snprintf(what, sizeof what, "run_put run %s", r->run_id);
    struct pg_params p = {0};
    run_params(&p, r, status, trigger);
    bool again = true;
    day_updates_flush(s);
    rc = run_likely(s, r, &p, what, err);
    if (rc == RUN_UNLIKELY)
        rc = 0;
    else /* written by the likely statement, or failed */
        again = false;
    for (int round = 0; again && round < RUN_ROUNDS; round++) {
        PGresult *res = NULL;
        rc = partition_for(s, PG_DAYS_RUNS, day_of(r->scheduled_at), NULL, what, err);
        if (rc == 0 && (rc = run_exec(s, PG_R_RUN_PUT, &p, &res, what, err)) == 0)
            rc = run_outcome(s, r, status, trigger, res, &again, what, err);
        else
            rc = partition_gone(s, rc, &again, what, err);
        PQclear(res);
        if (rc != 0)
            break;
    }
    pg__p_free(&p);
    if (rc == 0 && again)
        rc = ty_error(err, TY_EUNAVAIL, NULL, -1, 0,
                      "%s: written by another connection at the same moment %d times; try again",
                      what, RUN_ROUNDS);
    return rc;
}

int pg__skip_put(struct store *base, const struct store_skip *k, struct ty_err *err)
{
    struct pg *s = PG(base);
    const char *reason, *trigger;
    int rc = store__check_skip(k, &reason, &trigger, err);
    if (rc != 0 || (rc = pg__writable(s, "skip_put", err)) != 0)
        return rc;
    char what[256];
    snprintf(what, sizeof what, "skip_put fire %s shard %" PRId32, k->fire_id, k->shard);
    struct pg_params p = {0};
    pg__p_text(&p, k->fire_id);
    pg__p_int(&p, k->shard);
    pg__p_text(&p, k->job);
    pg__p_text(&p, k->domain != NULL ? k->domain : "");
    pg__p_int(&p, k->scheduled_at);
    pg__p_int(&p, k->recorded_at_ms);
    pg__p_text(&p, reason);
    pg__p_text(&p, k->detail);
    pg__p_text(&p, trigger);
    pg__p_int(&p, day_of(k->scheduled_at));
    bool again = true;
    for (int round = 0; again && round < 2; round++) {
        rc = partition_for(s, PG_DAYS_SKIPS, day_of(k->scheduled_at), NULL, what, err);
        if (rc == 0)
            rc = run_exec(s, PG_R_SKIP_PUT, &p, NULL, what, err);
        rc = partition_gone(s, rc, &again, what, err);
    }
    pg__p_free(&p);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Runs: reads.
 */

/* Output forms of the column after RUN_COLS. */
enum { OUT_LENGTH, OUT_BYTES };

/* A run object from RUN_COLS starting at column c of row i. */
static json_t *run_json(const PGresult *r, int i, int c, int out)
{
    struct pg_jb b = {json_object(), false};
    int64_t sched = pg__int(r, i, c + 8);
    int64_t started = pg__int(r, i, c + 10), ended = pg__int(r, i, c + 11);
    pg__jb_set(&b, "kind", json_string("run"));
    pg__jb_set(&b, "run_id", pg__jtext(r, i, c + 0));
    pg__jb_set(&b, "fire_id", pg__jtext(r, i, c + 1));
    pg__jb_set(&b, "attempt", pg__jint(r, i, c + 2));
    pg__jb_set(&b, "job", pg__jtext(r, i, c + 3));
    pg__jb_set(&b, "domain", pg__jtext(r, i, c + 4));
    pg__jb_set(&b, "shard", pg__jint(r, i, c + 5));
    pg__jb_set(&b, "trigger", pg__jtext(r, i, c + 6));
    pg__jb_set(&b, "status", pg__jtext(r, i, c + 7));
    pg__jb_set(&b, "scheduled_at", json_integer(sched));
    pg__jb_set(&b, "scheduled_at_text", store__time_text(sched));
    pg__jb_set(&b, "queued_at_ms", pg__jint(r, i, c + 9));
    pg__jb_set(&b, "started_at_ms", json_integer(started));
    pg__jb_set(&b, "ended_at_ms", json_integer(ended));
    pg__jb_set(&b, "duration_ms",
               started > 0 && ended > 0 ? json_integer(ended - started) : json_null());
    pg__jb_set(&b, "lateness_ms", started > 0 ? json_integer(started - sched * 1000) : json_null());
    pg__jb_set(&b, "pid", pg__jint(r, i, c + 12));
    pg__jb_set(&b, "pid_start", pg__jint(r, i, c + 13));
    pg__jb_set(&b, "boot_id", pg__jtext(r, i, c + 14));
    pg__jb_set(&b, "executor", pg__jtext(r, i, c + 15));
    pg__jb_set(&b, "epoch", pg__jint(r, i, c + 16));
    pg__jb_set(&b, "exit_code", pg__jint(r, i, c + 17));
    pg__jb_set(&b, "signal", pg__jint(r, i, c + 18));
    pg__jb_set(&b, "error", pg__jtext(r, i, c + 19));
    int oc = c + RUN_NCOLS;
    if (out == OUT_BYTES && PQgetisnull(r, i, oc)) {
        pg__jb_set(&b, "output", json_null());
        pg__jb_set(&b, "output_bytes", json_integer(0));
    } else if (out == OUT_BYTES) {
        size_t n = 0;
        unsigned char *bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, oc), &n);
        pg__jb_set(&b, "output", bytes != NULL ? store__json_lossy(bytes, n) : NULL);
        pg__jb_set(&b, "output_bytes", json_integer((json_int_t)n));
        PQfreemem(bytes);
    } else {
        pg__jb_set(&b, "output_bytes", json_integer(pg__int(r, i, oc)));
    }
    return pg__jb_done(&b);
}

/* A skipped fire from the skip half of the history union (see history_sql). */
static json_t *skip_json(const PGresult *r, int i, int c)
{
    struct pg_jb b = {json_object(), false};
    int64_t sched = pg__int(r, i, c + 8);
    pg__jb_set(&b, "kind", json_string("skip"));
    pg__jb_set(&b, "fire_id", pg__jtext(r, i, c + 1));
    pg__jb_set(&b, "job", pg__jtext(r, i, c + 3));
    pg__jb_set(&b, "domain", pg__jtext(r, i, c + 4));
    pg__jb_set(&b, "shard", pg__jint(r, i, c + 5));
    pg__jb_set(&b, "trigger", pg__jtext(r, i, c + 6));
    pg__jb_set(&b, "status", json_string("skipped"));
    pg__jb_set(&b, "reason", pg__jtext(r, i, c + 7));
    pg__jb_set(&b, "scheduled_at", json_integer(sched));
    pg__jb_set(&b, "scheduled_at_text", store__time_text(sched));
    pg__jb_set(&b, "recorded_at_ms", pg__jint(r, i, c + 9));
    pg__jb_set(&b, "detail", pg__jtext(r, i, c + 19));
    return pg__jb_done(&b);
}

int pg__run_get(struct store *base, const char *run_id, json_t **out, struct ty_err *err)
{
    struct pg *s = PG(base);
    int rc = store__check_id(run_id, STORE_ID_MAX, "run_id", "run_get", err);
    if (rc != 0)
        return rc;
    char what[64];
    snprintf(what, sizeof what, "run_get run %s", run_id);
    struct pg_params p = {0};
    pg__p_text(&p, run_id);
    PGresult *r;
    rc = run_exec(s, PG_R_RUN_GET, &p, &r, what, err);
    pg__p_free(&p);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0) {
        rc = ty_error(err, TY_ENOENT, NULL, -1, 0, "%s: not found", what);
    } else {
        *out = run_json(r, 0, 0, OUT_BYTES);
        /* the next attempt of the same fire, once a retry has been scheduled */
        if (*out != NULL &&
            json_object_set_new(*out, "retry_run_id", pg__jtext(r, 0, RUN_NCOLS + 1)) != 0) {
            json_decref(*out);
            *out = NULL;
        }
        if (*out == NULL)
            rc = store__oom(err, "run_get");
    }
    PQclear(r);
    return rc;
}

static json_t *run_row_length(const PGresult *r, int i)
{
    return run_json(r, i, 0, OUT_LENGTH);
}

int pg__runs_unfinished(struct store *base, json_t **out, struct ty_err *err)
{
    struct pg *s = PG(base);
    PGresult *r;
    int rc = run_exec(s, PG_R_RUNS_UNFINISHED, NULL, &r, "runs_unfinished", err);
    if (rc == 0)
        rc = pg__collect(r, run_row_length, out, "runs_unfinished", err);
    PQclear(r);
    return rc;
}

static json_t *shard_row(const PGresult *r, int i)
{
    struct pg_jb b = {json_object(), false};
    pg__jb_set(&b, "shard", pg__jint(r, i, 0));
    pg__jb_set(&b, "attempt", pg__jint(r, i, 1));
    pg__jb_set(&b, "status", pg__jtext(r, i, 2));
    return pg__jb_done(&b);
}

int pg__fire_shards(struct store *base, const char *fire_prefix, json_t **out, struct ty_err *err)
{
    struct pg *s = PG(base);
    char hi[STORE_FIRE_ID_MAX];
    int rc = store__prefix_range(fire_prefix, hi, err);
    if (rc != 0)
        return rc;
    struct pg_params p = {0};
    pg__p_text(&p, fire_prefix);
    pg__p_text(&p, hi);
    PGresult *r;
    rc = run_exec(s, PG_R_FIRE_SHARDS, &p, &r, "fire_shards", err);
    pg__p_free(&p);
    if (rc == 0)
        rc = pg__collect(r, shard_row, out, "fire_shards", err);
    PQclear(r);
    return rc;
}

int pg__last_fires(struct store *base, json_t **out, struct ty_err *err)
{
    struct pg *s = PG(base);
    PGresult *r;
    int rc = run_exec(s, PG_R_LAST_FIRES, NULL, &r, "last_fires", err); /* one snapshot */
    if (rc != 0)
        return rc;
    json_t *obj = json_object();
    if (obj == NULL)
        rc = store__oom(err, "last_fires");
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        if (PQgetisnull(r, i, 1))
            continue; /* only manual, retry or downstream runs left */
        if (json_object_set_new(obj, PQgetvalue(r, i, 0), json_integer(pg__int(r, i, 1))) != 0)
            rc = store__oom(err, "last_fires");
    }
    PQclear(r);
    if (rc != 0) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

/* The rows of r (job, shard, instant) into a new {job: {shard: instant}} at *out; r is
 * cleared. */
static int per_shard(PGresult *r, const char *what, json_t **out, struct ty_err *err)
{
    json_t *obj = json_object();
    int rc = obj == NULL ? store__oom(err, what) : 0;
    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        rc = store__per_shard_set(obj, PQgetvalue(r, i, 0), pg__int(r, i, 1), pg__int(r, i, 2),
                                  what, err);
    PQclear(r);
    if (rc != 0) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

int pg__executor_last_fires(struct store *base, const char *executor, int64_t since, json_t **out,
                            struct ty_err *err)
{
    struct pg *s = PG(base);
    int rc = store__check_id(executor, STORE__NAME_MAX + 1, "executor", "executor_last_fires", err);
    if (rc != 0)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "executor_last_fires \"%.100s\"", executor);
    struct pg_params p = {0};
    pg__p_text(&p, executor);
    pg__p_int(&p, since);
    PGresult *r;
    rc = run_exec(s, PG_R_EXECUTOR_LAST_FIRES, &p, &r, what, err);
    pg__p_free(&p);
    return rc != 0 ? rc : per_shard(r, what, out, err);
}

int pg__skips_last(struct store *base, const json_t *after, json_t **out, struct ty_err *err)
{
    struct pg *s = PG(base);
    int rc = store__check_after(after, err);
    if (rc != 0)
        return rc;
    char *text = json_dumps(after, JSON_COMPACT);
    if (text == NULL)
        return store__oom(err, "skips_last");
    struct pg_params p = {0};
    pg__p_text(&p, text);
    PGresult *r;
    rc = run_exec(s, PG_R_SKIPS_LAST, &p, &r, "skips_last", err);
    pg__p_free(&p);
    free(text);
    return rc != 0 ? rc : per_shard(r, "skips_last", out, err);
}

/* ---------------------------------------------------------------------------------------
 * History: runs and skips merged, newest first, keyset-paginated on (scheduled_at, src,
 * id) as in store_sqlite.c, one prepared statement per (mode, filter set).  Each half is
 * an ordered walk of its partitions newest first (PostgreSQL's ordered Append over range
 * partitions), of the index the filters choose, that stops at limit + 1 rows.
 * Parameters by position: $1 cs, $2 crun, $3 cskip, $4 limit + 1, $5 job, $6 domain,
 * $7 since, $8 until, $9 status.
 */

/* The WHERE terms of a filter set, whose values are parameters first .. first + 3 (job,
 * domain, since, until). */
static void add_filters(struct strbuf *sb, unsigned mask, int first)
{
    if (mask & STORE__HQ_JOB)
        sb_addf(sb, " AND job = $%d", first);
    /* The subtree as "the domain itself, or the range of its children", not the shared
     * STORE__DOMAIN_RANGE: that one repeats a range holding its own equality, and
     * PostgreSQL, taking the two for independent, expects a third of a leaf domain's rows
     * and sorts all of them for a page instead of walking the index in order (EXPLAIN at
     * 1M runs: ~100 ms against 5-10 ms; docs/performance.md). */
    if (mask & STORE__HQ_DOMAIN)
        sb_addf(sb,
                " AND (domain = $%1$d::text OR (domain >= ($%1$d::text || '/') AND"
                " domain < ($%1$d::text || '0')))",
                first + 1);
    if (mask & STORE__HQ_SINCE)
        sb_addf(sb, " AND scheduled_at >= $%d", first + 2);
    if (mask & STORE__HQ_UNTIL)
        sb_addf(sb, " AND scheduled_at < $%d", first + 3);
}

static void history_sql(struct strbuf *sb, int mode, unsigned mask)
{
    if (mode == STORE__HM_BOTH)
        sb_adds(sb, "SELECT * FROM ((");
    if (mode != STORE__HM_SKIPS) {
        sb_adds(sb, "SELECT 1 AS src, id, " RUN_COLS ", octet_length(output) FROM runs"
                    " WHERE (scheduled_at, id) < ($1, $2)");
        add_filters(sb, mask, 5);
        if (mode == STORE__HM_RUNS)
            sb_adds(sb, " AND status = $9");
        sb_adds(sb, " ORDER BY scheduled_at DESC, id DESC LIMIT $4");
    }
    if (mode == STORE__HM_BOTH)
        sb_adds(sb, ") UNION ALL (");
    if (mode != STORE__HM_RUNS) {
        /* the skip columns in the places of the run columns they stand for */
        sb_adds(sb, "SELECT 0 AS src, id, NULL::text, fire_id, NULL::bigint, job, domain,"
                    " shard, \"trigger\", reason, scheduled_at, recorded_at_ms, NULL::bigint,"
                    " NULL::bigint, NULL::bigint, NULL::bigint, NULL::text, NULL::text,"
                    " NULL::bigint, NULL::integer, NULL::integer, detail, NULL::integer"
                    " FROM skips WHERE (scheduled_at, id) < ($1, $3)");
        add_filters(sb, mask, 5);
        sb_adds(sb, " ORDER BY scheduled_at DESC, id DESC LIMIT $4");
    }
    if (mode == STORE__HM_BOTH)
        sb_adds(sb, ")) u ORDER BY scheduled_at DESC, src DESC, id DESC LIMIT $4");
}

static int history_page(const PGresult *r, size_t limit, json_t **out, struct ty_err *err)
{
    json_t *items = json_array(), *result = json_object();
    int rc = items == NULL || result == NULL ? store__oom(err, "history") : 0;
    size_t n = (size_t)PQntuples(r);
    char next[STORE__CURSOR_MAX] = "";
    for (size_t k = 0; rc == 0 && k < n && k < limit; k++) {
        int i = (int)k, src = (int)pg__int(r, i, 0);
        json_t *v = src == 1 ? run_json(r, i, 2, OUT_LENGTH) : skip_json(r, i, 2);
        if (v == NULL || json_array_append_new(items, v) != 0)
            rc = store__oom(err, "history");
        store__cursor_format(next, pg__int(r, i, 2 + 8), src, pg__int(r, i, 1));
    }
    if (rc == 0 &&
        (json_object_set(result, "items", items) != 0 ||
         json_object_set_new(result, "next", n > limit ? json_string(next) : json_null()) != 0))
        rc = store__oom(err, "history");
    json_decref(items);
    if (rc != 0) {
        json_decref(result);
        return rc;
    }
    *out = result;
    return 0;
}

int pg__history(struct store *base, const struct store_history_query *q, json_t **out,
                struct ty_err *err)
{
    struct pg *s = PG(base);
    struct store__history h;
    int rc = store__history_args(q, &h, err);
    if (rc != 0)
        return rc;
    struct strbuf sb;
    sb_init(&sb);
    history_sql(&sb, h.mode, h.mask);
    char name[16];
    snprintf(name, sizeof name, "h%d_%u", h.mode, h.mask);
    struct pg_params p = {0};
    pg__p_int(&p, h.cs);
    pg__p_int(&p, h.crun);
    pg__p_int(&p, h.cskip);
    pg__p_int(&p, (int64_t)h.limit + 1);
    pg__p_text(&p, q->job);
    pg__p_text(&p, q->domain);
    pg__p_int(&p, q->since);
    pg__p_int(&p, q->until);
    pg__p_text(&p, q->status);
    PGresult *r = NULL;
    rc = sb_failed(&sb) ? store__oom(err, "history")
                        : pg__exec(s, name, sb_str(&sb), &s->prep.hist[h.mode][h.mask], &p, &r,
                                   "history", err);
    sb_free(&sb);
    pg__p_free(&p);
    if (rc == 0)
        rc = history_page(r, h.limit, out, err);
    PQclear(r);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Statistics: one statement (one snapshot) that counts and takes exact percentiles per
 * group in the database - percentile_disc is nearest rank, the definition store_common.c
 * applies for SQLite - and joins the skip counts.  Parameters: $1 job, $2 domain,
 * $3 since, $4 until.  A day is grouped by its number (floor division, any bigint) and
 * written as a date here.
 */

#define STATS_DAY "(scheduled_at / 86400 - CASE WHEN scheduled_at % 86400 < 0 THEN 1 ELSE 0 END)"

static void stats_sql(struct strbuf *sb, enum store__group g, unsigned mask)
{
    const char *key = g == STORE__BY_DAY ? STATS_DAY : g == STORE__BY_DOMAIN ? "domain" : "job";
    sb_addf(sb,
            "WITH r AS (SELECT %s AS key, count(*) AS runs,"
            " count(*) FILTER (WHERE status = 'succeeded'),"
            " count(*) FILTER (WHERE status = 'failed'),"
            " count(*) FILTER (WHERE status = 'timeout'),"
            " count(*) FILTER (WHERE status = 'canceled'),"
            " count(*) FILTER (WHERE status = 'interrupted'),"
            " count(*) FILTER (WHERE status = 'lost'),"
            " count(*) FILTER (WHERE status = 'misfired'),"
            " count(*) FILTER (WHERE status IN ('queued', 'running')),"
            " percentile_disc(0.5) WITHIN GROUP (ORDER BY ended_at_ms - started_at_ms)"
            "  FILTER (WHERE started_at_ms > 0 AND ended_at_ms > 0),"
            " percentile_disc(0.95) WITHIN GROUP (ORDER BY ended_at_ms - started_at_ms)"
            "  FILTER (WHERE started_at_ms > 0 AND ended_at_ms > 0),"
            /* lateness is the scheduler's: of scheduled fires, not of manual runs,
             * retries (they wait for their backoff) or downstream runs */
            " percentile_disc(0.5) WITHIN GROUP (ORDER BY started_at_ms - scheduled_at * 1000)"
            "  FILTER (WHERE started_at_ms > 0 AND \"trigger\" IN ('schedule', 'misfire')),"
            " percentile_disc(0.99) WITHIN GROUP (ORDER BY started_at_ms - scheduled_at * 1000)"
            "  FILTER (WHERE started_at_ms > 0 AND \"trigger\" IN ('schedule', 'misfire'))"
            " FROM runs WHERE true",
            key);
    add_filters(sb, mask, 1);
    sb_addf(sb, " GROUP BY 1), k AS (SELECT %s AS key, count(*) AS skipped FROM skips WHERE true",
            key);
    add_filters(sb, mask, 1);
    sb_adds(sb, " GROUP BY 1) SELECT coalesce(r.key, k.key), r.*, coalesce(k.skipped, 0)"
                " FROM r FULL JOIN k ON k.key = r.key ORDER BY 1");
}

/* {"p50": a, "p95": b} from two nullable columns. */
static json_t *pair(const PGresult *r, int i, int c, const char *na, const char *nb)
{
    struct pg_jb b = {json_object(), false};
    pg__jb_set(&b, na, pg__jint(r, i, c));
    pg__jb_set(&b, nb, pg__jint(r, i, c + 1));
    return pg__jb_done(&b);
}

static json_t *stats_row(const PGresult *r, int i, enum store__group g)
{
    struct pg_jb b = {json_object(), false};
    if (g == STORE__BY_DAY) {
        int64_t y;
        int m, d;
        civil_ymd_from_days(pg__int(r, i, 0), &y, &m, &d);
        char key[48];
        snprintf(key, sizeof key, "%04" PRId64 "-%02d-%02d", y, m, d);
        pg__jb_set(&b, "key", json_string(key));
    } else {
        pg__jb_set(&b, "key", pg__jtext(r, i, 0));
    }
    /* columns: key, r.key, the 9 run counters, 4 percentiles, skipped */
    for (int c = 0; c < STORE__SC_SKIPPED; c++)
        pg__jb_set(&b, store__stats_names[c], json_integer(pg__int(r, i, 2 + c)));
    pg__jb_set(&b, store__stats_names[STORE__SC_SKIPPED], json_integer(pg__int(r, i, 15)));
    pg__jb_set(&b, "duration_ms", pair(r, i, 11, "p50", "p95"));
    pg__jb_set(&b, "lateness_ms", pair(r, i, 13, "p50", "p99"));
    return pg__jb_done(&b);
}

int pg__stats(struct store *base, const struct store_stats_query *q, json_t **out,
              struct ty_err *err)
{
    struct pg *s = PG(base);
    enum store__group g;
    int rc = store__stats_group(q, &g, err);
    if (rc != 0)
        return rc;
    struct strbuf sb;
    sb_init(&sb);
    stats_sql(&sb, g, store__stats_mask(q));
    char *sql = sb_detach(&sb);
    if (sql == NULL)
        return store__oom(err, "stats");
    struct pg_params p = {0};
    pg__p_text(&p, q->job);
    pg__p_text(&p, q->domain);
    pg__p_int(&p, q->since);
    pg__p_int(&p, q->until);
    PGresult *r;
    rc = pg__exec_once(s, sql, &p, &r, "stats", err);
    pg__p_free(&p);
    free(sql);
    if (rc != 0)
        return rc;
    json_t *groups = json_array();
    if (groups == NULL)
        rc = store__oom(err, "stats");
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        json_t *v = stats_row(r, i, g);
        if (v == NULL || json_array_append_new(groups, v) != 0)
            rc = store__oom(err, "stats");
    }
    PQclear(r);
    if (rc == 0 && ((*out = json_object()) == NULL ||
                    json_object_set_new(*out, "groups", json_incref(groups)) != 0)) {
        json_decref(*out);
        *out = NULL;
        rc = store__oom(err, "stats");
    }
    json_decref(groups);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Retention.  Days entirely older than the cut are dropped whole (with their keys and
 * fire_days rows), unless a run in them is still queued or running (a restart needs it):
 * those days, and the day the cut falls in, are deleted row by row.  Then keep_per_job
 * ranks runs and skips together per job as SQLite does, in one statement (its CTEs read
 * one snapshot, so deleting runs cannot re-rank the skips).  The DROPs come last: a DROP
 * locks the parent table until commit, and they are quick.
 */

struct part {
    bool skips;
    char *name;
    int64_t lo, hi; /* [lo, hi) seconds; INT64_MIN / INT64_MAX for MINVALUE / MAXVALUE */
    bool drop;
};

struct prune_call {
    int64_t older_than_ms, keep_per_job, removed;
    struct part *parts;
    size_t n;
};

static int prune_count(struct pg *s, const char *sql, const struct pg_params *p, int64_t *n,
                       struct ty_err *err)
{
    PGresult *r;
    int rc = pg__exec_once(s, sql, p, &r, "prune", err);
    if (rc == 0) {
        *n = PQntuples(r) > 0 ? pg__int(r, 0, 0) : strtoll(PQcmdTuples(r), NULL, 10);
        PQclear(r);
    }
    return rc;
}

static int parts_list(struct pg *s, struct prune_call *c, struct ty_err *err)
{
    PGresult *r;
    int rc = pg__exec_once(s, PARTITIONS_SQL, NULL, &r, "prune", err);
    if (rc != 0)
        return rc;
    int n = PQntuples(r);
    c->parts = calloc((size_t)n + 1, sizeof *c->parts);
    if (c->parts == NULL) {
        PQclear(r);
        return store__oom(err, "prune");
    }
    for (int i = 0; rc == 0 && i < n; i++) {
        struct part *pt = &c->parts[c->n++];
        pt->skips = strcmp(PQgetvalue(r, i, 0), "t") == 0;
        pt->lo = PQgetisnull(r, i, 2) ? INT64_MIN : pg__int(r, i, 2);
        pt->hi = PQgetisnull(r, i, 3) ? INT64_MAX : pg__int(r, i, 3);
        if ((pt->name = strdup(PQgetvalue(r, i, 1))) == NULL)
            rc = store__oom(err, "prune");
    }
    PQclear(r);
    return rc;
}

/* Whether a partition entirely older than the cut may go whole; *rows gets its rows. */
static int part_droppable(struct pg *s, struct part *pt, int64_t *rows, struct ty_err *err)
{
    char *ident = PQescapeIdentifier(s->conn, pt->name, strlen(pt->name));
    if (ident == NULL)
        return store__oom(err, "prune");
    char sql[256];
    snprintf(sql, sizeof sql,
             pt->skips ? "SELECT count(*), 0 FROM ONLY %s"
                       : "SELECT count(*), count(*) FILTER (WHERE status IN ('queued', 'running'))"
                         " FROM ONLY %s",
             ident);
    PQfreemem(ident);
    PGresult *r;
    int rc = pg__exec_once(s, sql, NULL, &r, "prune", err);
    if (rc != 0)
        return rc;
    *rows = pg__int(r, 0, 0);
    pt->drop = pg__int(r, 0, 1) == 0;
    PQclear(r);
    return 0;
}

/* Delete row by row what is older than the cut in [lo, hi) of runs or skips. */
static int prune_rows(struct pg *s, bool skips, int64_t lo, int64_t hi, int64_t *removed,
                      struct ty_err *err)
{
    static const char runs_sql[] =
        "WITH d AS (DELETE FROM runs WHERE scheduled_at >= $1 AND scheduled_at < $2"
        "  AND status NOT IN ('queued', 'running') RETURNING run_id),"
        " k AS (DELETE FROM run_keys WHERE run_id IN (SELECT run_id FROM d))"
        " SELECT count(*) FROM d";
    static const char skips_sql[] =
        "WITH d AS (DELETE FROM skips WHERE scheduled_at >= $1 AND scheduled_at < $2"
        "  RETURNING fire_id, shard),"
        " k AS (DELETE FROM skip_keys sk USING d WHERE sk.fire_id = d.fire_id"
        "  AND sk.shard = d.shard)"
        " SELECT count(*) FROM d";
    struct pg_params p = {0};
    pg__p_int(&p, lo);
    pg__p_int(&p, hi);
    int64_t n = 0;
    int rc = prune_count(s, skips ? skips_sql : runs_sql, &p, &n, err);
    pg__p_free(&p);
    *removed += n;
    return rc;
}

/* Drop a whole partition, its keys and (when no partition of that day is left) the
 * fire_days rows of its days. */
static int prune_drop(struct pg *s, const struct prune_call *c, const struct part *pt,
                      struct ty_err *err)
{
    struct pg_params p = {0};
    pg__p_int(&p, pt->lo);
    pg__p_int(&p, pt->hi);
    int64_t n;
    int rc = prune_count(s,
                         pt->skips ? "DELETE FROM skip_keys WHERE scheduled_at >= $1"
                                     " AND scheduled_at < $2"
                                   : "DELETE FROM run_keys WHERE scheduled_at >= $1"
                                     " AND scheduled_at < $2",
                         &p, &n, err);
    pg__p_free(&p);
    bool other_kept = false; /* the other table's partition of the same days stays */
    for (size_t i = 0; i < c->n; i++)
        if (c->parts[i].skips != pt->skips && !c->parts[i].drop && c->parts[i].lo < pt->hi &&
            c->parts[i].hi > pt->lo)
            other_kept = true;
    if (rc == 0 && !other_kept) {
        pg__p_int(&p, day_of(pt->lo));
        pg__p_int(&p, day_of(pt->hi - 1));
        rc = prune_count(s, "DELETE FROM fire_days WHERE day >= $1 AND day <= $2", &p, &n, err);
        pg__p_free(&p);
    }
    char *ident = rc == 0 ? PQescapeIdentifier(s->conn, pt->name, strlen(pt->name)) : NULL;
    if (rc == 0 && ident == NULL)
        rc = store__oom(err, "prune");
    if (rc == 0) {
        char sql[160];
        snprintf(sql, sizeof sql, "DROP TABLE %s", ident);
        rc = pg__exec_once(s, sql, NULL, NULL, "prune", err);
    }
    PQfreemem(ident);
    return rc;
}

static int prune_age(struct pg *s, struct prune_call *c, struct ty_err *err)
{
    /* scheduled_at * 1000 < older_than_ms, as a bound on scheduled_at */
    int64_t cut = c->older_than_ms / 1000 + (c->older_than_ms % 1000 != 0);
    int rc = parts_list(s, c, err);
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        struct part *pt = &c->parts[i];
        int64_t rows = 0;
        if (pt->lo >= cut)
            continue;
        if (pt->hi <= cut && pt->lo != INT64_MIN && (rc = part_droppable(s, pt, &rows, err)) != 0)
            break;
        if (pt->drop)
            c->removed += rows;
        else
            rc = prune_rows(s, pt->skips, pt->lo, pt->hi < cut ? pt->hi : cut, &c->removed, err);
    }
    struct pg_params p = {0};
    pg__p_int(&p, c->older_than_ms);
    int64_t n = 0;
    if (rc == 0)
        rc = prune_count(s, "DELETE FROM alerts WHERE cleared_at_ms < $1", &p, &n, err);
    pg__p_free(&p);
    c->removed += n;
    return rc;
}

static int prune_keep(struct pg *s, struct prune_call *c, struct ty_err *err)
{
    static const char sql[] =
        "WITH v AS (SELECT src, id, sched FROM (SELECT src, id, sched, row_number() OVER"
        "  (PARTITION BY job ORDER BY sched DESC, src DESC, id DESC) AS rn FROM ("
        "  SELECT 1 AS src, id, job, scheduled_at AS sched FROM runs"
        "   WHERE scheduled_at >= $2 OR status IN ('queued', 'running')"
        "  UNION ALL SELECT 0, id, job, scheduled_at FROM skips WHERE scheduled_at >= $2) a) b"
        " WHERE rn > $1),"
        " dr AS (DELETE FROM runs r USING v WHERE v.src = 1 AND r.scheduled_at = v.sched"
        "  AND r.id = v.id AND r.status NOT IN ('queued', 'running') RETURNING r.run_id),"
        " drk AS (DELETE FROM run_keys WHERE run_id IN (SELECT run_id FROM dr)),"
        " ds AS (DELETE FROM skips s USING v WHERE v.src = 0 AND s.scheduled_at = v.sched"
        "  AND s.id = v.id RETURNING s.fire_id, s.shard),"
        " dsk AS (DELETE FROM skip_keys k USING ds WHERE k.fire_id = ds.fire_id"
        "  AND k.shard = ds.shard)"
        " SELECT (SELECT count(*) FROM dr) + (SELECT count(*) FROM ds)";
    /* what the age pass keeps: rows from the cut on, and unfinished runs (the rest of the
     * old days is deleted already, or goes with its partition at the end) */
    int64_t cut =
        c->older_than_ms > 0 ? c->older_than_ms / 1000 + (c->older_than_ms % 1000 != 0) : INT64_MIN;
    struct pg_params p = {0};
    pg__p_int(&p, c->keep_per_job);
    pg__p_int(&p, cut);
    int64_t n = 0;
    int rc = prune_count(s, sql, &p, &n, err);
    pg__p_free(&p);
    c->removed += n;
    return rc;
}

static int prune_body(struct pg *s, void *arg, struct ty_err *err)
{
    struct prune_call *c = arg;
    c->removed = 0;
    for (size_t i = 0; i < c->n; i++)
        free(c->parts[i].name);
    free(c->parts);
    c->parts = NULL;
    c->n = 0;
    int rc = c->older_than_ms > 0 ? prune_age(s, c, err) : 0;
    if (rc == 0 && c->keep_per_job > 0)
        rc = prune_keep(s, c, err);
    /* a DROP waits for the readers of the table and holds it until commit: not forever */
    if (rc == 0)
        rc = pg__exec_once(s, "SET LOCAL lock_timeout = '10s'", NULL, NULL, "prune", err);
    for (size_t i = 0; rc == 0 && i < c->n; i++)
        if (c->parts[i].drop)
            rc = prune_drop(s, c, &c->parts[i], err);
    if (rc == 0)
        rc = pg__exec_once(s, "SET LOCAL lock_timeout TO DEFAULT", NULL, NULL, "prune", err);
    return rc;
}

int pg__prune(struct store *base, int64_t older_than_ms, int64_t keep_per_job, int64_t *removed,
              struct ty_err *err)
{
    struct pg *s = PG(base);
    int rc = store__check_prune(older_than_ms, keep_per_job, err);
    if (rc != 0 || (rc = pg__writable(s, "prune", err)) != 0)
        return rc;
    struct prune_call c = {.older_than_ms = older_than_ms, .keep_per_job = keep_per_job};
    rc = pg__tx(s, prune_body, &c, "prune", err);
    for (size_t i = 0; i < c.n; i++)
        free(c.parts[i].name);
    free(c.parts);
    pg__days_forget(s); /* dropped days are made again when a late record needs one */
    if (rc == 0 && removed != NULL)
        *removed = c.removed;
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Whole tables as rows: history loaded in batches (store_rows_load, via store_pg.c).
 */

int pg__rows_load_history(struct pg *s, enum store_table tn, const struct store__table *t,
                          const json_t *rows, const char *text, const char *what,
                          struct ty_err *err)
{
    bool runs = tn == STORE_T_RUNS;
    /* the partitions first: rows come mostly in order, so a day is asked for once */
    int rc = 0;
    int64_t last = 0;
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row)
    {
        int64_t day = day_of(json_integer_value(json_object_get(row, "scheduled_at")));
        if (i > 0 && day == last)
            continue;
        if ((rc = partition_for(s, runs ? PG_DAYS_RUNS : PG_DAYS_SKIPS, day, NULL, what, err)) != 0)
            break;
        last = day;
    }
    if (rc != 0)
        return rc;
    struct strbuf sql;
    sb_init(&sql);
    sb_adds(&sql, "WITH x AS (");
    pg__rows_select(&sql, t);
    sb_adds(&sql, runs ? "), k AS (INSERT INTO run_keys (run_id, fire_id, attempt, scheduled_at)"
                         " SELECT run_id, fire_id, attempt, scheduled_at FROM x)"
                       : "), k AS (INSERT INTO skip_keys (fire_id, shard, scheduled_at)"
                         " SELECT fire_id, shard, scheduled_at FROM x)");
    /* day_of in SQL: floor division */
    sb_adds(&sql, ", fd AS (INSERT INTO fire_days (job, day) SELECT DISTINCT job,"
                  " floor(scheduled_at::numeric / " STR_DAY ")::bigint FROM x"
                  " WHERE \"trigger\" IN ('schedule', 'misfire') ON CONFLICT DO NOTHING)");
    sb_addf(&sql, " INSERT INTO %s (", t->name);
    pg__rows_cols(&sql, t);
    sb_adds(&sql, ") SELECT ");
    pg__rows_cols(&sql, t);
    sb_adds(&sql, " FROM x ORDER BY ord");
    struct pg_params p = {0};
    pg__p_text(&p, text);
    rc = sb_failed(&sql) ? store__oom(err, what)
                         : pg__exec_once(s, sb_str(&sql), &p, NULL, what, err);
    pg__p_free(&p);
    sb_free(&sql);
    return rc;
}
