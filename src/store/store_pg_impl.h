/*
 * store_pg_impl.h - what the two files of the PostgreSQL store share: the connection
 * struct, statement execution with its error mapping, transactions, parameters, and
 * reading result columns into JSON.  Internal to src/store (pg__ names): callers include
 * store.h only.
 *
 * store_pg.c owns the connection (open, reconnect, schema, errors, batches) and the
 * configuration side (objects, the job index, tokens, secrets, alerts, settings);
 * store_pg_users.c owns users, sessions and grants; store_pg_runs.c owns history (runs, skipped
 * fires, their day partitions, history pages, statistics, retention).  Each keeps its own table of
 * fixed statements; both execute them through pg__exec, which prepares a statement on its first use
 * on a connection.
 */
#ifndef STORE_PG_IMPL_H
#define STORE_PG_IMPL_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/strbuf.h"
#include "../core/ty_err.h"
#include "store.h"
#include "store_common.h"

/* Fixed statements of store_pg.c (configuration) and store_pg_runs.c (history).  The SQL
 * is in each file; the names are here so struct pg can remember which are prepared. */
enum pg_cst {
    PG_C_OBJ_CUR,
    PG_C_OBJ_STATE,
    PG_C_OBJ_LASTVER,
    PG_C_OBJ_INSERT,
    PG_C_OBJ_UPDATE,
    PG_C_OBJ_DELETE,
    PG_C_OBJ_VERSION,
    PG_C_OBJ_LIST,
    PG_C_OBJ_LIST_DOMAIN,
    PG_C_COUNT_ADD,
    PG_C_COUNT_LESS,
    PG_C_COUNT_DROP,
    PG_C_PLACE_ADD,
    PG_C_PLACE_DROP,
    PG_C_JOB_COUNT,
    PG_C_JOBS_LOCK,
    PG_C_CALENDAR_USERS,
    PG_C_ALERT_RAISE,
    PG_C_ALERT_CLEAR,
    PG_C_ALERTS_OPEN,
    PG_C_META_GET,
    PG_C_META_SET,
    PG_C_OBJ_HISTORY,
    PG_C_OBJ_VERSION_GET,
    PG_C_TOKEN_INSERT,
    PG_C_TOKEN_LIST,
    PG_C_TOKEN_REVOKE,
    PG_C_TOKEN_LOOKUP,
    PG_C_TOKEN_USED,
    PG_C_TOKEN_NAMED,
    PG_C_SECRETS_DELETE,
    PG_C_SECRETS_INSERT,
    PG_C_SECRETS_GET,
    PG_C_JOBS_GET_MANY,
    PG_C_COUNT
};

enum pg_rst {
    PG_R_RUN_INSERT,
    PG_R_RUN_PUT,
    PG_R_RUN_MOVE,
    PG_R_RUN_BY_FIRE,
    PG_R_SKIP_PUT,
    PG_R_RUN_GET,
    PG_R_RUNS_UNFINISHED,
    PG_R_FIRE_SHARDS,
    PG_R_LAST_FIRES,
    PG_R_EXECUTOR_LAST_FIRES,
    PG_R_SKIPS_LAST,
    PG_R_COUNT
};

/* Fixed statements of store_pg_users.c (users, sessions, grants; schema 5). */
enum pg_ust {
    PG_U_USER_INSERT,
    PG_U_USER_SET_PASSWORD,
    PG_U_USER_REHASH,
    PG_U_USER_SET_MUST,
    PG_U_USER_UNLOCK,
    PG_U_USER_TOUCHED,
    PG_U_USER_GET,
    PG_U_USER_LIST,
    PG_U_USER_DELETE,
    PG_U_USER_SIGNIN_OK,
    PG_U_USER_SIGNIN_FAIL,
    PG_U_SESSIONS_END,
    PG_U_SESSIONS_END_BUT,
    PG_U_SESSION_PRUNE,
    PG_U_SESSION_INSERT,
    PG_U_SESSION_EXISTS,
    PG_U_SESSION_GET,
    PG_U_SESSION_TOUCH,
    PG_U_SESSION_DELETE,
    PG_U_GRANTS_DELETE,
    PG_U_GRANT_INSERT,
    PG_U_GRANTS_GET,
    PG_U_COUNT
};

/* Object page statements: walk job_domains (else objects), enabled fixed, text filter. */
enum { PG_PQ_INDEX = 1, PG_PQ_ENABLED = 2, PG_PQ_TEXT = 4, PG_PQ_LEVEL = 8, PG_PQ_MASKS = 16 };

/* The update of a run in one day's partition, prepared per day (store_pg_runs.c): the
 * last few days written keep theirs. */
#define PG_DAY_STMTS 4

struct pg_day_stmt {
    int64_t day;
    unsigned gen;  /* names "ru<day>_<gen>": a new one after the partitions were forgotten */
    bool prepared; /* on the connection */
    bool stale;    /* its partition may be gone: DEALLOCATE before the name is used again */
    uint64_t used; /* for replacing the least recently used */
};

/* Which statements are prepared on the connection; all false again after a reconnect. */
struct pg_prepared {
    bool cfg[PG_C_COUNT];
    bool run[PG_R_COUNT];
    bool users[PG_U_COUNT];
    bool hist[STORE__HM_MODES][STORE__HQ_MASKS];
    bool page[PG_PQ_MASKS];
    struct pg_day_stmt day[PG_DAY_STMTS];
};

/* A partition of runs or skips known to exist: its UTC day and its table's name. */
struct pg_day {
    int64_t day;
    char name[64];
};

/* The partitions of runs (0) or skips (1) known to exist, sorted by day. */
struct pg_days {
    struct pg_day *v;
    size_t n, cap;
    bool loaded; /* read from the catalog since the last time it was forgotten */
};

struct pg {
    struct store base; /* first: a struct store * is a struct pg * */
    PGconn *conn;
    char *label; /* "user@host:port/db": how messages name the database (no password) */
    bool read_only;
    bool batch;       /* inside store_begin .. store_commit */
    int batch_failed; /* 0, or the TY_E* code of the error that ended the batch's transaction */
    bool tx;          /* a transaction this store opened is in progress (batch, call, scan) */
    bool broken;      /* the connection was lost: reset before the next call */
    bool retry;       /* the last failure was a deadlock or serialization failure */
    char state[6];    /* the SQLSTATE of the last failure, "" when it had none */
    unsigned scans;   /* cursors opened, for their names */
    unsigned day_gen; /* generation of the per-day statements' names */
    uint64_t day_tick;
    struct pg_prepared prep;
    struct pg_days days[2];
};

#define PG(base) ((struct pg *)(base))

enum { PG_DAYS_RUNS, PG_DAYS_SKIPS };

/* ---------------------------------------------------------------------------------------
 * Parameters: text (made valid UTF-8), integers, bytes.  Values are borrowed from the
 * caller for the call; text that has to be repaired is copied (pg__p_free releases it).
 */

#define PG_MAXP 24

struct pg_params {
    int n;
    const char *v[PG_MAXP];
    int len[PG_MAXP];
    int fmt[PG_MAXP];
    unsigned type[PG_MAXP]; /* OIDs: 20 int8, 25 text, 17 bytea */
    char num[PG_MAXP][24];
    char *owned[PG_MAXP];
};

void pg__p_text(struct pg_params *p, const char *v); /* NULL: SQL NULL */
void pg__p_int(struct pg_params *p, int64_t v);
void pg__p_bytes(struct pg_params *p, const void *v, size_t n); /* v NULL: SQL NULL */
void pg__p_null_int(struct pg_params *p);
void pg__p_free(struct pg_params *p);

/* ---------------------------------------------------------------------------------------
 * Execution.  Every function returns 0 or a TY_E* code with a message in err naming the
 * operation (`what`), the database and PostgreSQL's words.
 */

/*
 * Execute the statement `sql` under the per-connection name `name`, prepared on first use
 * (*prepared remembers it).  *res receives the result (PQclear it), or is NULL when res
 * is NULL.  Outside a transaction the connection is checked first and re-established if
 * it was lost, and a deadlock or serialization failure is retried.
 */
int pg__exec(struct pg *s, const char *name, const char *sql, bool *prepared,
             const struct pg_params *p, PGresult **res, const char *what, struct ty_err *err);

/* A usable connection for the next statement: outside a transaction re-established if it
 * was lost; inside one, TY_EUNAVAIL when it was. */
int pg__ready(struct pg *s, const char *what, struct ty_err *err);

/* Execute `sql` once, unprepared, with parameters (p may be NULL; without parameters
 * `sql` may be several statements). */
int pg__exec_once(struct pg *s, const char *sql, const struct pg_params *p, PGresult **res,
                  const char *what, struct ty_err *err);

/* The failure in r (NULL: the connection's) as a TY_E* code and message; marks the batch
 * failed when its transaction cannot go on, and the connection lost when it is. */
int pg__fail(struct pg *s, const PGresult *r, struct ty_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* TY_EINVAL on a read-only store, the batch's error after it failed. */
int pg__writable(struct pg *s, const char *op, struct ty_err *err);

/*
 * Run body(s, arg, err) as one transaction: inside the caller's batch (or scan) as part
 * of it, else in a BEGIN .. COMMIT of its own (READ COMMITTED), tried again from the start
 * (a few times) after a deadlock or serialization failure.  Returns body's result or the
 * commit's.
 */
int pg__tx(struct pg *s, int (*body)(struct pg *, void *, struct ty_err *), void *arg,
           const char *what, struct ty_err *err);

/* Wall-clock milliseconds. */
int64_t pg__now_ms(void);

/* ---------------------------------------------------------------------------------------
 * Result columns (text format).
 */

/* The value, NULL when SQL NULL. */
static inline const char *pg__v(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

int64_t pg__int(const PGresult *r, int row, int col);   /* 0 when NULL */
json_t *pg__jtext(const PGresult *r, int row, int col); /* null when NULL; valid UTF-8 */
json_t *pg__jint(const PGresult *r, int row, int col);  /* null when NULL */
json_t *pg__jjson(const PGresult *r, int row, int col); /* parsed; null when NULL or bad */

/* Collects one object; an allocation failure is remembered and reported once. */
struct pg_jb {
    json_t *o;
    bool bad;
};

static inline void pg__jb_set(struct pg_jb *b, const char *key, json_t *v)
{
    if (b->o == NULL || json_object_set_new(b->o, key, v) != 0) /* takes v even when it fails */
        b->bad = true;
}

/* The object, or NULL (and nothing leaked) when something failed. */
static inline json_t *pg__jb_done(struct pg_jb *b)
{
    if (b->bad) {
        json_decref(b->o);
        return NULL;
    }
    return b->o;
}

/* Every row of r through row() into a new array *out. */
int pg__collect(const PGresult *r, json_t *(*row)(const PGresult *, int), json_t **out,
                const char *op, struct ty_err *err);

/* ---------------------------------------------------------------------------------------
 * History (store_pg_runs.c).
 */

/* the history tables of schema version 3 (store_pg.c's migrations[] change them later) */
extern const char *const pg__runs_schema;

int pg__run_put(struct store *base, const struct store_run *r, struct ty_err *err);
int pg__skip_put(struct store *base, const struct store_skip *k, struct ty_err *err);
int pg__run_get(struct store *base, const char *run_id, json_t **out, struct ty_err *err);
int pg__runs_unfinished(struct store *base, json_t **out, struct ty_err *err);
int pg__fire_shards(struct store *base, const char *fire_prefix, json_t **out, struct ty_err *err);
int pg__last_fires(struct store *base, json_t **out, struct ty_err *err);
int pg__skips_last(struct store *base, const json_t *after, json_t **out, struct ty_err *err);
int pg__executor_last_fires(struct store *base, const char *executor, int64_t since, json_t **out,
                            struct ty_err *err);
int pg__history(struct store *base, const struct store_history_query *q, json_t **out,
                struct ty_err *err);
int pg__stats(struct store *base, const struct store_stats_query *q, json_t **out,
              struct ty_err *err);
int pg__prune(struct store *base, int64_t older_than_ms, int64_t keep_per_job, int64_t *removed,
              struct ty_err *err);

/* ---------------------------------------------------------------------------------------
 * Users, sessions, grants (store_pg_users.c): the store.h calls of the same names.
 */

int pg__user_create(struct store *base, const struct store_user *u, const char *who, int64_t at_ms,
                    struct ty_err *err);
int pg__user_update(struct store *base, const char *name, const struct store_user_change *c,
                    int64_t at_ms, struct ty_err *err);
int pg__user_get(struct store *base, const char *name, json_t **out, struct ty_err *err);
int pg__user_list(struct store *base, json_t **out, struct ty_err *err);
int pg__user_delete(struct store *base, const char *name, struct ty_err *err);
int pg__user_signin(struct store *base, const char *name, bool ok, int64_t at_ms, int max_failures,
                    int64_t lock_ms, json_t **out, struct ty_err *err);
int pg__session_put(struct store *base, const struct store_session *ss, struct ty_err *err);
int pg__session_get(struct store *base, const char *hash, json_t **out, struct ty_err *err);
int pg__session_touch(struct store *base, const char *hash, int64_t at_ms, struct ty_err *err);
int pg__session_delete(struct store *base, const char *hash, struct ty_err *err);
int pg__grants_set(struct store *base, enum store_principal kind, const char *name,
                   const json_t *grants, struct ty_err *err);
int pg__grants_get(struct store *base, enum store_principal kind, const char *name, json_t **out,
                   struct ty_err *err);

/* ---------------------------------------------------------------------------------------
 * Whole tables as rows (store_rows_load).
 */

/* Append "SELECT <each column of t, from JSON row v> AS "<name>", ..., ord FROM
 * json_array_elements($1::json) WITH ORDINALITY AS e(v, ord)": the rows of a batch sent as
 * one JSON parameter, in SQL, with their place in it. */
void pg__rows_select(struct strbuf *sb, const struct store__table *t);

/* Append t's column names, quoted, comma-separated. */
void pg__rows_cols(struct strbuf *sb, const struct store__table *t);

/* Load rows (text: the same as JSON) into runs or skips, with their keys, days and
 * partitions, inside the caller's transaction (store_pg_runs.c). */
int pg__rows_load_history(struct pg *s, enum store_table tn, const struct store__table *t,
                          const json_t *rows, const char *text, const char *what,
                          struct ty_err *err);

/* Make sure the partitions of runs and skips for the UTC days around now exist (so a
 * batch seldom has to create one), outside any transaction. */
int pg__partitions_ahead(struct pg *s, struct ty_err *err);

/* Forget the known partitions (they are read again from the catalog when next needed),
 * and the per-day statements that name them. */
void pg__days_forget(struct pg *s);

#endif
