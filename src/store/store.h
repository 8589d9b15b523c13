/*
 * store.h - where Tethys keeps configuration and history: the storage interface.
 *
 * Two implementations share this contract: SQLite in the data directory (embedded,
 * store_sqlite.c) and PostgreSQL (cluster, store_pg.c); store_open picks one by what it is
 * given, a file path or a postgresql:// URL.  Callers never know which one runs.  A `struct store`
 * is one connection and is used by one thread at a time; every thread that needs the store opens
 * its own (the server has one writer thread and a reader per HTTP thread).
 *
 * Every call can fail and says so: 0 on success or a negative TY_E* code, with a message
 * in err.  In particular TY_ENOSPC (disk full) and TY_EUNAVAIL (database down) are
 * ordinary results the caller handles; a failed call changes nothing (each call is one
 * transaction).  A PostgreSQL store that lost its connection fails the call that met the
 * loss with TY_EUNAVAIL and connects again before the next one.  Run results are appended
 * idempotently, keyed by (fire id, attempt).
 *
 * Config objects (jobs, domains, calendars) are stored as their canonical JSON with a
 * version that grows by one on every change; a change may be conditioned on the version
 * it was based on (optimistic concurrency, HTTP If-Match).
 */
#ifndef STORE_H
#define STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/ty_err.h"

enum store_kind {
    STORE_JOB = 1,
    STORE_DOMAIN,
    STORE_CALENDAR,
};

/* What a run is doing or how it ended. */
enum store_run_status {
    STORE_RUN_QUEUED = 1,  /* accepted, waiting for executor capacity or the previous run */
    STORE_RUN_RUNNING,     /* process started (pid known) */
    STORE_RUN_SUCCEEDED,   /* exit status 0 */
    STORE_RUN_FAILED,      /* non-zero exit, killed by a signal, or could not start */
    STORE_RUN_TIMEOUT,     /* killed after the job's timeout */
    STORE_RUN_CANCELED,    /* killed on request */
    STORE_RUN_INTERRUPTED, /* killed because the server shut down or restarted */
    STORE_RUN_LOST,        /* ended while nobody watched; exit status unknown */
    STORE_RUN_MISFIRED,    /* never started: it waited in the executor's queue past the job's
                              misfire threshold (the machine was overloaded) */
};

enum store_trigger {
    STORE_TRIGGER_SCHEDULE = 1,
    STORE_TRIGGER_MANUAL,
    STORE_TRIGGER_RETRY,
    STORE_TRIGGER_DOWNSTREAM,
    STORE_TRIGGER_MISFIRE,  /* a late fire run by the misfire policy (run once / catch up) */
    STORE_TRIGGER_FAILOVER, /* a run lost with its executor, run again elsewhere (cluster) */
};

/* Why a fire did not run. */
enum store_skip_reason {
    STORE_SKIP_PAUSED = 1,    /* inside a pause window */
    STORE_SKIP_CALENDAR,      /* a calendar excluded the day */
    STORE_SKIP_MISFIRE,       /* too late; the misfire policy skipped it */
    STORE_SKIP_OVERLAP,       /* the previous run of the shard was still going */
    STORE_SKIP_QUEUE_FULL,    /* the executor's queue was full */
    STORE_SKIP_INTERRUPTED,   /* the server stopped before it could start */
    STORE_SKIP_NO_EXECUTOR,   /* no eligible executor */
    STORE_SKIP_OUTSIDE_DATES, /* before the job's start date or after its end date */
};

const char *store_run_status_name(enum store_run_status s);   /* "succeeded" ... */
const char *store_trigger_name(enum store_trigger t);         /* "schedule" ... */
const char *store_skip_reason_name(enum store_skip_reason r); /* "paused" ... */
/* Inverse lookups: 0 and the value, or TY_EINVAL for an unknown name. */
int store_run_status_parse(const char *name, enum store_run_status *out);
int store_skip_reason_parse(const char *name, enum store_skip_reason *out);
int store_trigger_parse(const char *name, enum store_trigger *out);

#define STORE_ID_MAX      24  /* run ids: 16 hex digits and a NUL, with room */
#define STORE_FIRE_ID_MAX 192 /* "<job>@<epoch>#<shard>[!<suffix>]" */
#define STORE_OUTPUT_MAX  (16 * 1024 * 1024)

/* One shard run (one attempt).  Strings are borrowed for the call. */
struct store_run {
    const char *run_id;  /* unique; 16 hex digits */
    const char *fire_id; /* same for one (job, shard, scheduled time) across attempts */
    const char *job;
    const char *domain;
    uint32_t shard;
    uint32_t attempt; /* 1 for the first */
    enum store_trigger trigger;
    enum store_run_status status;
    int64_t scheduled_at;  /* instant, seconds */
    int64_t queued_at_ms;  /* wall-clock ms when the fire reached the executor */
    int64_t started_at_ms; /* 0 until started */
    int64_t ended_at_ms;   /* 0 until ended */
    int64_t pid;           /* 0 until started */
    int64_t pid_start;     /* the process's start time (clock ticks since boot), for reuse checks */
    const char *boot_id;   /* the kernel's boot id when the pid was recorded */
    const char *executor;  /* executor id */
    int64_t epoch;         /* fencing epoch of the assignment */
    int exit_code;         /* -1 when none (killed, not started) */
    int signal;            /* 0 when none */
    const char *output;    /* the tail of the output (may be NULL) */
    size_t output_len;
    const char *error; /* why it could not start, or extra detail; may be NULL */
};

/* A fire that did not run. */
struct store_skip {
    const char *fire_id;
    const char *job;
    const char *domain;
    int32_t shard;        /* -1: the whole fire (every shard) */
    int64_t scheduled_at; /* instant, seconds */
    int64_t recorded_at_ms;
    enum store_skip_reason reason;
    const char *detail; /* may be NULL */
    enum store_trigger trigger;
};

/* A query over history; zero/NULL fields do not filter. */
struct store_history_query {
    const char *job;
    const char *domain; /* this domain and its subtree */
    const char *status; /* a run status name, or "skipped" for skipped fires only */
    int64_t since;      /* scheduled_at >= since (seconds) */
    int64_t until;      /* scheduled_at < until */
    size_t limit;       /* default 100, at most 1000 */
    const char *cursor; /* from the previous page's "next" */
};

/* A page of config objects (store_obj_page).  Mind enabled: 0 keeps disabled jobs only,
 * so a query for every job sets it to -1. */
struct store_obj_query {
    enum store_kind kind;
    const char *domain; /* jobs: this domain's subtree; NULL = all (other kinds: ignored) */
    int enabled;        /* jobs: -1 any, 0 disabled only, 1 enabled only */
    const char *text;   /* case-insensitive substring of the name or the description; NULL = any */
    bool by_level;      /* jobs: only those whose level is `level` (false: any level) */
    int level;
    size_t limit;       /* 1-1000, 0 = 100 */
    const char *cursor; /* from the previous page's "next"; NULL = first page */
    bool raw;           /* items carry "json", the object's stored JSON text, instead of
                           "object" (for an answer that passes the text on unparsed) */
};

struct store_stats_query {
    const char *job;
    const char *domain;
    int64_t since, until; /* scheduled_at range, seconds */
    const char *group_by; /* "job", "domain" or "day" (day in UTC) */
};

struct store_alert {
    const char *key;  /* identity: one alert per key at a time ("timeout:<run_id>") */
    const char *kind; /* "misfire", "failed", "lost", "timeout_alarm", "no_executor",
                         "not_ha", "resource" */
    const char *job;  /* may be NULL (resource alerts) */
    const char *domain;
    int job_level;
    int domain_level;
    int32_t shard;        /* -1 when not about one shard */
    int64_t scheduled_at; /* the fire concerned, 0 when none */
    int64_t raised_at_ms;
    const char *reason; /* human sentence */
    json_t *detail;     /* extra fields (borrowed); may be NULL */
};

/* The tables a store's content lives in, for copying a whole store (store_rows_scan,
 * store_rows_load, store_rows_count): every table both back ends share and nothing they
 * derive from them (the job index, run keys, partitions). */
enum store_table {
    STORE_T_META = 1,        /* settings ("epoch", ...) but never "schema_version" */
    STORE_T_OBJECTS,         /* the current version of every job, domain and calendar */
    STORE_T_OBJECT_VERSIONS, /* every version of every object */
    STORE_T_TOKENS,
    STORE_T_SECRETS,
    STORE_T_ALERTS, /* open and cleared */
    STORE_T_RUNS,
    STORE_T_SKIPS,
    STORE_T_USERS,  /* users with their password hashes (schema 5) */
    STORE_T_GRANTS, /* the roles of users and tokens (schema 5); sessions are not copied */
};
#define STORE_T_COUNT 10

/* "meta", "objects", ... (the table's name in both schemas); NULL for an unknown value. */
const char *store_table_name(enum store_table t);

/* Who a grant is given to (schema 5). */
enum store_principal {
    STORE_P_USER = 1,
    STORE_P_TOKEN,
};

/* A new user (store_user_create).  Strings and grants are borrowed for the call. */
struct store_user {
    const char *name;          /* 1-256 bytes (the API applies the job name rules) */
    const char *password_hash; /* the password's hash as the caller made it (Argon2id text) */
    bool must_change;          /* may only change the password until it does */
    const json_t *grants;      /* [{"domain", "role"}] as role_grants_to_json makes them; NULL:
                                  none */
};

/* A change of a user (store_user_update): what is not asked for stays as it is. */
struct store_user_change {
    const char *password_hash; /* a new password's hash; NULL: keep the password */
    int must_change;           /* -1: keep; 0 or 1 */
    const json_t *grants;      /* the user's grants from now on (replacing all); NULL: keep */
    bool unlock;               /* forget failed sign-ins and end a lock-out */
    const char *keep_session;  /* with a new password every session of the user ends, but
                                  this one (its hash; NULL: none is kept) */
    bool same_password;        /* password_hash is the same password hashed again (stronger
                                  limits): sessions stay, password_changed_at_ms too */
};

/* A session, made at sign-in (store_session_put).  Strings are borrowed. */
struct store_session {
    const char *hash; /* hex SHA-256 of the session id the cookie carries */
    const char *user;
    const char *csrf; /* the token requests that change something must echo */
    int64_t created_at_ms;
    int64_t expires_at_ms;  /* absolute end */
    int64_t idle_before_ms; /* sessions (anyone's) last seen before this are deleted on the
                               way, as are those past their absolute end; 0: none */
};

struct store;

struct store_ops {
    void (*close)(struct store *s);

    /* config objects */
    int (*obj_put)(struct store *s, enum store_kind kind, const char *name, const char *json,
                   int64_t base_version, const char *who, int64_t *version, struct ty_err *err);
    int (*obj_get)(struct store *s, enum store_kind kind, const char *name, char **json,
                   int64_t *version, struct ty_err *err);
    int (*obj_delete)(struct store *s, enum store_kind kind, const char *name, int64_t base_version,
                      const char *who, struct ty_err *err);
    int (*obj_list)(struct store *s, enum store_kind kind, const char *domain_prefix, json_t **out,
                    struct ty_err *err);
    int (*job_count)(struct store *s, const char *domain, int64_t *count, struct ty_err *err);
    int (*obj_page)(struct store *s, const struct store_obj_query *q, json_t **out,
                    struct ty_err *err);
    int (*obj_scan)(struct store *s, enum store_kind kind,
                    int (*cb)(void *arg, const char *name, int64_t version, const char *json,
                              size_t json_len),
                    void *arg, struct ty_err *err);
    int (*calendar_users)(struct store *s, const char *calendar, int64_t *count, char *first,
                          size_t first_cap, struct ty_err *err);

    /* runs and fires */
    int (*run_put)(struct store *s, const struct store_run *r, struct ty_err *err);
    int (*skip_put)(struct store *s, const struct store_skip *k, struct ty_err *err);
    int (*run_get)(struct store *s, const char *run_id, json_t **out, struct ty_err *err);
    int (*runs_unfinished)(struct store *s, json_t **out, struct ty_err *err);
    int (*fire_shards)(struct store *s, const char *fire_prefix, json_t **out, struct ty_err *err);
    int (*last_fires)(struct store *s, json_t **out, struct ty_err *err);
    int (*executor_last_fires)(struct store *s, const char *executor, int64_t since, json_t **out,
                               struct ty_err *err);
    int (*skips_last)(struct store *s, const json_t *after, json_t **out, struct ty_err *err);
    int (*history)(struct store *s, const struct store_history_query *q, json_t **out,
                   struct ty_err *err);
    int (*stats)(struct store *s, const struct store_stats_query *q, json_t **out,
                 struct ty_err *err);
    int (*prune)(struct store *s, int64_t older_than_ms, int64_t keep_per_job, int64_t *removed,
                 struct ty_err *err);

    /* alerts */
    int (*alert_raise)(struct store *s, const struct store_alert *a, struct ty_err *err);
    int (*alert_clear)(struct store *s, const char *key, int64_t cleared_at_ms, struct ty_err *err);
    int (*alerts_open)(struct store *s, json_t **out, struct ty_err *err);

    /* small settings ("epoch", "schema_version", ...) */
    int (*meta_get)(struct store *s, const char *key, char **value, struct ty_err *err);
    int (*meta_set)(struct store *s, const char *key, const char *value, struct ty_err *err);

    /* configuration history (every put and delete is a version) */
    int (*obj_history)(struct store *s, enum store_kind kind, const char *name, json_t **out,
                       struct ty_err *err);
    int (*obj_version)(struct store *s, enum store_kind kind, const char *name, int64_t version,
                       char **json, struct ty_err *err);

    /* API tokens: only a hash of each is kept */
    int (*token_put)(struct store *s, const char *name, const char *hash, int64_t expires_at_ms,
                     const char *who, struct ty_err *err);
    int (*token_list)(struct store *s, json_t **out, struct ty_err *err);
    int (*token_revoke)(struct store *s, const char *name, int64_t at_ms, struct ty_err *err);
    int (*token_lookup)(struct store *s, const char *hash, json_t **out, struct ty_err *err);

    /* users, sessions, grants (schema 5) */
    int (*user_create)(struct store *s, const struct store_user *u, const char *who, int64_t at_ms,
                       struct ty_err *err);
    int (*user_update)(struct store *s, const char *name, const struct store_user_change *c,
                       int64_t at_ms, struct ty_err *err);
    int (*user_get)(struct store *s, const char *name, json_t **out, struct ty_err *err);
    int (*user_list)(struct store *s, json_t **out, struct ty_err *err);
    int (*user_delete)(struct store *s, const char *name, struct ty_err *err);
    int (*user_signin)(struct store *s, const char *name, bool ok, int64_t at_ms, int max_failures,
                       int64_t lock_ms, json_t **out, struct ty_err *err);
    int (*session_put)(struct store *s, const struct store_session *ss, struct ty_err *err);
    int (*session_get)(struct store *s, const char *hash, json_t **out, struct ty_err *err);
    int (*session_touch)(struct store *s, const char *hash, int64_t at_ms, struct ty_err *err);
    int (*session_delete)(struct store *s, const char *hash, struct ty_err *err);
    int (*grants_set)(struct store *s, enum store_principal kind, const char *name,
                      const json_t *grants, struct ty_err *err);
    int (*grants_get)(struct store *s, enum store_principal kind, const char *name, json_t **out,
                      struct ty_err *err);

    /* secret environment values, kept apart from the job definitions */
    int (*secrets_put)(struct store *s, const char *job, const json_t *values, struct ty_err *err);
    int (*secrets_get)(struct store *s, const char *job, json_t **out, struct ty_err *err);

    /* many jobs' definitions and secrets at once (what a cluster's executor fetches) */
    int (*jobs_get_many)(struct store *s, const char *const *names, size_t n, json_t **out,
                         struct ty_err *err);

    /* a consistent copy of the whole store, taken while it is in use */
    int (*backup)(struct store *s, const char *path, struct ty_err *err);

    /* whole tables as rows, for copying a store to another */
    int (*rows_scan)(struct store *s, enum store_table t, int (*cb)(void *arg, const json_t *row),
                     void *arg, struct ty_err *err);
    int (*rows_load)(struct store *s, enum store_table t, const json_t *rows, struct ty_err *err);
    int (*rows_count)(struct store *s, enum store_table t, int64_t *count, struct ty_err *err);

    /* several writes as one transaction (the writer batches appends) */
    int (*begin)(struct store *s, struct ty_err *err);
    int (*commit)(struct store *s, struct ty_err *err);
    void (*rollback)(struct store *s);
};

struct store {
    const struct store_ops *ops;
};

/*
 * Open (creating if needed) the SQLite store at `path`, in WAL mode, and bring its schema
 * to the current version (inside one transaction).  read_only opens a reader connection.
 * Fails with TY_EIO (cannot open), TY_EFORMAT (not a Tethys database, or written by a
 * newer version), TY_ENOSPC.  The caller owns *out (store_close).
 */
int store_open_sqlite(const char *path, bool read_only, struct store **out, struct ty_err *err);

/*
 * Look at the SQLite file at `path` without changing it or making any file beside it
 * (`tethys restore` checks a backup before putting it in place): it must be a Tethys
 * store this binary can open, now or after migrating it, and pass SQLite's quick_check
 * (which reads the whole file).  *version gets its schema version.  TY_EFORMAT with
 * store_open_sqlite's reasons (not SQLite, not Tethys's, written by a newer Tethys) or
 * "fails SQLite's integrity check"; TY_EIO when it cannot be read.
 */
int store_check_sqlite(const char *path, int *version, struct ty_err *err);

/*
 * Open the PostgreSQL store at `url`, a libpq URI "postgresql://USER@HOST:PORT/DB?..."
 * (any libpq parameter may follow, sslmode=verify-full for one).  The password comes only
 * from PGPASSWORD or ~/.pgpass, as libpq reads them: a URL that holds one is refused with
 * TY_EINVAL (field "db") without repeating it.  connect_timeout is 5 s unless the URL sets
 * it; TCP keepalives notice a server that went away silently.  A read-write open creates
 * the schema in an empty database, or brings an older one to the current version (schema
 * versions follow store_open_sqlite's numbering, and a PostgreSQL store starts at 3), in
 * one transaction under an advisory lock, so two servers starting at once do it once (no
 * copy is made first: back PostgreSQL up with its own tools); read_only opens a reader
 * (transactions are read only) that needs the schema there already, at the current
 * version.  Fails with TY_EUNAVAIL (cannot connect), TY_EAUTH (credentials refused),
 * TY_EFORMAT (no Tethys schema or an older one for a reader, a newer schema, tables in
 * the way that are not Tethys's, PostgreSQL older than 12), TY_EINVAL (a bad URL).  The
 * caller owns *out (store_close).
 */
int store_open_pg(const char *url, bool read_only, struct store **out, struct ty_err *err);

/* Whether `where` names a PostgreSQL database: it starts with "postgresql://" or
 * "postgres://". */
bool store_is_url(const char *where);

/*
 * Open the store `where` names: a PostgreSQL URL (store_is_url) with store_open_pg, any
 * other text as a SQLite file path with store_open_sqlite.  Fails as those do; the caller
 * owns *out (store_close).
 */
int store_open(const char *where, bool read_only, struct store **out, struct ty_err *err);

static inline void store_close(struct store *s)
{
    if (s != NULL)
        s->ops->close(s);
}

/*
 * Config objects.  obj_put creates or replaces `name` of `kind` with `json` (canonical
 * JSON text, copied): base_version -1 means "create; TY_EEXIST if it exists", 0 means
 * "whatever the current version", n > 0 means "only if the current version is n, else
 * TY_ECONFLICT" (TY_ENOENT if it does not exist).  *version receives the new version.
 * `who` is recorded (may be NULL).  obj_get gives a malloc'd copy of the JSON (free()).
 * obj_list gives a JSON array of {"name","version","updated_at","object"} ordered by
 * name, limited to objects whose "domain" lies in domain_prefix's subtree when it is not
 * NULL (jobs only).  obj_list holds every object in memory at once: where there may be
 * many, page with store_obj_page or stream with store_obj_scan.
 */
static inline int store_obj_put(struct store *s, enum store_kind k, const char *name,
                                const char *json, int64_t base_version, const char *who,
                                int64_t *version, struct ty_err *err)
{
    return s->ops->obj_put(s, k, name, json, base_version, who, version, err);
}
static inline int store_obj_get(struct store *s, enum store_kind k, const char *name, char **json,
                                int64_t *version, struct ty_err *err)
{
    return s->ops->obj_get(s, k, name, json, version, err);
}
static inline int store_obj_delete(struct store *s, enum store_kind k, const char *name,
                                   int64_t base_version, const char *who, struct ty_err *err)
{
    return s->ops->obj_delete(s, k, name, base_version, who, err);
}
static inline int store_obj_list(struct store *s, enum store_kind k, const char *domain_prefix,
                                 json_t **out, struct ty_err *err)
{
    return s->ops->obj_list(s, k, domain_prefix, out, err);
}

/*
 * The number of jobs in the subtree of `domain` into *count: jobs whose "domain" is
 * `domain` or lies under it (domain_within, core/domain.h: "a/b" counts "a/b" and
 * "a/b/...", not "a/bc"); "" or NULL counts every job.  O(log N): the store keeps a count
 * per subtree in the transaction of every job obj_put and obj_delete, so a batch that
 * changes jobs sees its own counts.  A domain nobody uses counts 0.  TY_EINVAL (field
 * "domain") when domain is longer than 256 bytes.
 */
static inline int store_job_count(struct store *s, const char *domain, int64_t *count,
                                  struct ty_err *err)
{
    return s->ops->job_count(s, domain, count, err);
}

/*
 * One page of config objects of q->kind, ordered by name (bytewise): {"items": [{"name",
 * "version", "updated_at_ms", "object"}, ...], "next": "<cursor>" | null}; *out is the
 * caller's.  Filters, all at once: for jobs, q->domain keeps the jobs in that domain's
 * subtree (as store_job_count; NULL or "" keeps all) and q->enabled the enabled (1) or
 * disabled (0; "enabled": false in the JSON) ones, -1 both; for other kinds both are
 * ignored.  q->text keeps objects whose name or "description" contains it, ASCII letters
 * compared case-insensitively (NULL or "": any).
 *
 * "next" is null on the last page (also when it is exactly full).  Passed back as
 * q->cursor, with the same filters, it gives the objects after the last one returned: an
 * object that exists throughout a walk is returned exactly once, whatever is created or
 * deleted between pages (those may or may not appear).  Cursors are opaque text.
 *
 * Cost: O(log N + page) without a text filter, whatever the filters and the depth of the
 * page (index ranges); a text filter reads objects in order until the page is full.
 * TY_EINVAL naming "kind", "limit" (above 1000), "enabled" (not -1, 0 or 1), "domain"
 * (longer than 256 bytes) or "cursor" (not a "next" this store returned).
 */
static inline int store_obj_page(struct store *s, const struct store_obj_query *q, json_t **out,
                                 struct ty_err *err)
{
    return s->ops->obj_page(s, q, out, err);
}

/*
 * Call cb(arg, name, version, json, json_len) for every object of `kind`, ordered by name
 * (bytewise), without building them into JSON values: json is the object's stored JSON
 * text, json_len bytes and NUL-terminated.  The pointers are valid only during that call
 * (copy what you keep), so memory stays that of one object whatever their number (the
 * server loads a million jobs this way at start).  The scan reads one consistent snapshot:
 * what other connections change meanwhile is not seen.  cb may read through the same
 * store, not write through it.  cb returning non-zero stops the scan and store_obj_scan
 * returns that value (make it one the caller can tell from a TY_E* code); otherwise 0
 * after the last object.  TY_EINVAL naming "kind" or "cb" (NULL); a database failure as
 * for any read, possibly after some calls of cb.
 */
static inline int store_obj_scan(struct store *s, enum store_kind kind,
                                 int (*cb)(void *arg, const char *name, int64_t version,
                                           const char *json, size_t json_len),
                                 void *arg, struct ty_err *err)
{
    return s->ops->obj_scan(s, kind, cb, arg, err);
}

/*
 * The jobs that use a calendar: *count gets how many name `calendar` in their "calendars":
 * {"skip": [...], "only": [...]} (a job naming it in both counts once; anything but a
 * string in one of those two arrays is no use of it), and first[first_cap] the first of
 * them by name (bytewise), cut short to fit, "" when there is none (first may be NULL when
 * first_cap is 0).  The store reads the jobs' JSON itself, once each: O(jobs), with no
 * job built in the caller's memory - for refusing to delete a calendar in use, not for a
 * hot path.  TY_EINVAL naming "calendar" when it is missing or longer than 256 bytes.
 */
static inline int store_calendar_users(struct store *s, const char *calendar, int64_t *count,
                                       char *first, size_t first_cap, struct ty_err *err)
{
    return s->ops->calendar_users(s, calendar, count, first, first_cap, err);
}

/*
 * Record a run, or update it: the row is keyed by run_id and also unique by
 * (fire_id, attempt).  Inserting a (fire_id, attempt) that exists under another run id
 * fails with TY_EEXIST (field "fire_id") and changes nothing: the fire was already made;
 * a known run id sent with another (fire_id, attempt) is TY_EEXIST (field "run_id").
 *
 * Status never goes backwards.  Statuses rank queued (1) < running (2) < every final
 * status (3).  An update of a known run id applies only when the new status ranks higher
 * than the stored one, or the same and not final (queued -> queued and running -> running
 * refresh the fields); it then overwrites status, times, pid, pid_start, boot_id,
 * executor, epoch, exit code, signal, output and error (job, domain, shard, trigger and
 * scheduled_at stay as inserted).  Otherwise - an older record, or anything after a final
 * status, including the same final record again - it changes nothing and returns 0, so
 * records may be replayed (from a spool, after a crash) in any order, any number of times.
 */
static inline int store_run_put(struct store *s, const struct store_run *r, struct ty_err *err)
{
    return s->ops->run_put(s, r, err);
}

/* Record a fire that did not run; idempotent by (fire_id, shard). */
static inline int store_skip_put(struct store *s, const struct store_skip *k, struct ty_err *err)
{
    return s->ops->skip_put(s, k, err);
}

/* One run as a JSON object (every column, output included, and "retry_run_id": the run id
 * of the next attempt of the same fire, or null); TY_ENOENT if unknown. */
static inline int store_run_get(struct store *s, const char *run_id, json_t **out,
                                struct ty_err *err)
{
    return s->ops->run_get(s, run_id, out, err);
}

/* Runs whose status is queued or running, as a JSON array of run objects. */
static inline int store_runs_unfinished(struct store *s, json_t **out, struct ty_err *err)
{
    return s->ops->runs_unfinished(s, out, err);
}

/*
 * The latest attempt of every shard of one fire: runs whose fire_id starts with
 * fire_prefix ("<job>@<epoch>#"), as a JSON array of {"shard","attempt","status"}.
 */
static inline int store_fire_shards(struct store *s, const char *fire_prefix, json_t **out,
                                    struct ty_err *err)
{
    return s->ops->fire_shards(s, fire_prefix, out, err);
}

/*
 * For every job, the latest scheduled_at of a schedule-triggered fire (run or skipped):
 * a JSON object {"<job>": <epoch>, ...}.  Used after a restart to find missed fires.
 */
static inline int store_last_fires(struct store *s, json_t **out, struct ty_err *err)
{
    return s->ops->last_fires(s, out, err);
}

/*
 * What `executor` last fired of each job, for the leader of a cluster to tell the
 * executors that take over a dead one's shards where to resume: a JSON object
 * {"<job>": {"<shard>": <epoch>, ...}, ...} (*out is the caller's) holding, per job and
 * shard (an executor dies between two shards of one fire as easily as between two fires),
 * the newest scheduled_at among the runs that executor made of it, any attempt, triggered
 * by the schedule or the
 * misfire policy (trigger "schedule" or "misfire", as store_last_fires counts them), with
 * scheduled_at >= since.  A job with no such run is absent; an executor with none gets {}.
 * Manual and downstream runs do not count, and neither does a retry on its own: the
 * executor records attempts after the first with trigger "retry", and the first attempt
 * holds the fire's scheduled_at.  Skipped fires carry no executor and do not count.  A
 * run counts for the executor its latest record names.
 *
 * Cost: one index range over runs (executor, scheduled_at), i.e. the executor's runs since
 * `since` whatever else is stored, so pass the window that matters (the dead executor's
 * last assignment, say) rather than 0.  TY_EINVAL naming "executor" when it is missing
 * or longer than 256 bytes; a database failure as for any read (TY_EIO, TY_EUNAVAIL,
 * TY_ENOMEM).
 */
static inline int store_executor_last_fires(struct store *s, const char *executor, int64_t since,
                                            json_t **out, struct ty_err *err)
{
    return s->ops->executor_last_fires(s, executor, since, out, err);
}

/*
 * The newest skipped fire of each shard of some jobs, each after its own instant: `after` is
 * {"<job>": <epoch>, ...} (borrowed), *out (the caller's) {"<job>": {"<shard>": <epoch>}}
 * holding, per job and shard, the newest scheduled_at of a skip triggered by the schedule
 * or the misfire policy with scheduled_at > the job's instant; jobs and shards without one
 * are absent.  Skips name no executor, so this is how the leader of a cluster finds the
 * fires a dead executor recorded as skipped after its last run of each job (overlap,
 * calendars, misfires): only the owner of a shard records its fires, so a skip after that
 * executor's newest run of the shard is that executor's.  The executor that takes the
 * shard over resumes after both, and never records a fire a second time.
 *
 * Cost: one index range over skips (job, scheduled_at) per job, from its instant.
 * TY_EINVAL naming "after" when it is not an object of job names to integers (or holds
 * more than 1,000,000 jobs); a database failure as for any read.
 */
static inline int store_skips_last(struct store *s, const json_t *after, json_t **out,
                                   struct ty_err *err)
{
    return s->ops->skips_last(s, after, out, err);
}

/*
 * History, newest scheduled first: {"items": [...], "next": "<cursor>"|null}.  Items are
 * run objects ("kind": "run") and skipped fires ("kind": "skip"), merged.
 */
static inline int store_history(struct store *s, const struct store_history_query *q, json_t **out,
                                struct ty_err *err)
{
    return s->ops->history(s, q, out, err);
}

/*
 * Statistics: {"groups": [{"key": "<job|domain|YYYY-MM-DD>", "runs", "succeeded",
 * "failed", "timeouts", "skipped", "duration_ms": {"p50","p95"},
 * "lateness_ms": {"p50","p99"}}, ...]}.
 */
static inline int store_stats(struct store *s, const struct store_stats_query *q, json_t **out,
                              struct ty_err *err)
{
    return s->ops->stats(s, q, out, err);
}

/* Retention: delete runs and skips older than older_than_ms, and all but the newest
 * keep_per_job per job (0 = no count limit).  *removed gets the number of rows removed. */
static inline int store_prune(struct store *s, int64_t older_than_ms, int64_t keep_per_job,
                              int64_t *removed, struct ty_err *err)
{
    return s->ops->prune(s, older_than_ms, keep_per_job, removed, err);
}

/* Raise (or refresh the reason of) the open alert with a->key. */
static inline int store_alert_raise(struct store *s, const struct store_alert *a,
                                    struct ty_err *err)
{
    return s->ops->alert_raise(s, a, err);
}

/* Clear the open alert with this key (no-op when there is none). */
static inline int store_alert_clear(struct store *s, const char *key, int64_t cleared_at_ms,
                                    struct ty_err *err)
{
    return s->ops->alert_clear(s, key, cleared_at_ms, err);
}

/* Open alerts as a JSON array of objects with every store_alert field. */
static inline int store_alerts_open(struct store *s, json_t **out, struct ty_err *err)
{
    return s->ops->alerts_open(s, out, err);
}

/* A setting; TY_ENOENT when unset.  *value is malloc'd (free()). */
static inline int store_meta_get(struct store *s, const char *key, char **value, struct ty_err *err)
{
    return s->ops->meta_get(s, key, value, err);
}
static inline int store_meta_set(struct store *s, const char *key, const char *value,
                                 struct ty_err *err)
{
    return s->ops->meta_set(s, key, value, err);
}

/*
 * Every version of one object, newest first: a JSON array of {"version", "op" ("create",
 * "update" or "delete"), "at_ms", "who"} (caller owns it).  TY_ENOENT when the object
 * never existed.  obj_delete records `who` (may be NULL) as obj_put does.
 */
static inline int store_obj_history(struct store *s, enum store_kind k, const char *name,
                                    json_t **out, struct ty_err *err)
{
    return s->ops->obj_history(s, k, name, out, err);
}

/* The JSON of one version (malloc'd, free()); TY_ENOENT when there is no such version or
 * it is a delete. */
static inline int store_obj_version(struct store *s, enum store_kind k, const char *name,
                                    int64_t version, char **json, struct ty_err *err)
{
    return s->ops->obj_version(s, k, name, version, json, err);
}

/*
 * Tokens.  token_put adds a named token by the hex SHA-256 of its secret (TY_EEXIST when
 * the name is taken, also by a revoked token); expires_at_ms 0 = never.  token_list gives
 * [{"name", "created_at_ms", "expires_at_ms", "revoked_at_ms", "last_used_at_ms",
 * "created_by"}] (never the hash).  token_revoke marks it revoked (TY_ENOENT if unknown).
 * token_lookup finds the token with this hash, revoked or expired ones included (the
 * caller decides), as one object of token_list's shape (TY_ENOENT when none), and records
 * its use in last_used_at_ms at most once a minute per token (best effort, and only on a
 * read-write connection: a reader's lookup does not write).  Times not set are null;
 * hashes are accepted in either case.  *out is the caller's.
 */
static inline int store_token_put(struct store *s, const char *name, const char *hash,
                                  int64_t expires_at_ms, const char *who, struct ty_err *err)
{
    return s->ops->token_put(s, name, hash, expires_at_ms, who, err);
}
static inline int store_token_list(struct store *s, json_t **out, struct ty_err *err)
{
    return s->ops->token_list(s, out, err);
}
static inline int store_token_revoke(struct store *s, const char *name, int64_t at_ms,
                                     struct ty_err *err)
{
    return s->ops->token_revoke(s, name, at_ms, err);
}
static inline int store_token_lookup(struct store *s, const char *hash, json_t **out,
                                     struct ty_err *err)
{
    return s->ops->token_lookup(s, hash, out, err);
}

/*
 * Users (schema 5).  A user has a name, a password hash (the caller hashes: the store
 * never sees a password), must_change_password, the count of failed sign-ins since the
 * last good one, locked_until_ms (0: not locked) and grants.
 *
 * user_create adds one, with its grants, in one transaction: TY_EEXIST (field "name")
 * when the name is taken.  user_update changes what c asks for, in one transaction
 * (TY_ENOENT, field "name", when there is no such user): a new password hash also sets
 * password_changed_at_ms and ends the user's sessions but c->keep_session (neither when
 * c->same_password says it is the same password hashed again).  user_get
 * gives {"name", "password_hash", "must_change_password", "failed_attempts",
 * "locked_until_ms", "created_at_ms", "created_by", "updated_at_ms",
 * "password_changed_at_ms", "last_signin_at_ms", "grants": [{"domain", "role"}, ...]}
 * (times not set are null; grants ordered by domain); user_list gives every user, by name,
 * in the same shape without "password_hash".  user_delete removes the user with its
 * sessions and grants (TY_ENOENT).  *out is the caller's.
 *
 * user_signin records the outcome of a sign-in attempt, atomically (two servers counting
 * one user's failures never lose one): ok resets the failures, ends a lock and sets
 * last_signin_at_ms; a failure adds one, and the max_failures-th in a row locks the user
 * until at_ms + lock_ms and starts the count again.  *out (may be NULL) gets the user as
 * user_get shows it after the change.  TY_ENOENT when there is no such user.
 *
 * Names are 1-256 bytes and grants an array of {"domain": text of at most 256 bytes,
 * "role": "viewer" | "operator" | "admin"}: TY_EINVAL naming the field otherwise (the
 * API checks the rules that matter to people before).
 */
static inline int store_user_create(struct store *s, const struct store_user *u, const char *who,
                                    int64_t at_ms, struct ty_err *err)
{
    return s->ops->user_create(s, u, who, at_ms, err);
}
static inline int store_user_update(struct store *s, const char *name,
                                    const struct store_user_change *c, int64_t at_ms,
                                    struct ty_err *err)
{
    return s->ops->user_update(s, name, c, at_ms, err);
}
static inline int store_user_get(struct store *s, const char *name, json_t **out,
                                 struct ty_err *err)
{
    return s->ops->user_get(s, name, out, err);
}
static inline int store_user_list(struct store *s, json_t **out, struct ty_err *err)
{
    return s->ops->user_list(s, out, err);
}
static inline int store_user_delete(struct store *s, const char *name, struct ty_err *err)
{
    return s->ops->user_delete(s, name, err);
}
static inline int store_user_signin(struct store *s, const char *name, bool ok, int64_t at_ms,
                                    int max_failures, int64_t lock_ms, json_t **out,
                                    struct ty_err *err)
{
    return s->ops->user_signin(s, name, ok, at_ms, max_failures, lock_ms, out, err);
}

/*
 * Sessions (schema 5), keyed by the hex SHA-256 of the id the cookie carries (the id itself
 * is never stored).  session_put adds one (TY_EEXIST for a hash that exists; TY_ENOENT,
 * field "user", when the user does not) and, in the same transaction, deletes every
 * session past its absolute end or last seen before ss->idle_before_ms.  session_get gives
 * {"user", "csrf", "created_at_ms", "expires_at_ms", "last_seen_ms"} (TY_ENOENT when
 * none; the caller checks the times).  session_touch sets last_seen_ms (a session that is
 * gone is no error).  session_delete removes it (TY_ENOENT when none).  Hashes are checked
 * as token hashes are (64 hex digits, either case).
 */
static inline int store_session_put(struct store *s, const struct store_session *ss,
                                    struct ty_err *err)
{
    return s->ops->session_put(s, ss, err);
}
static inline int store_session_get(struct store *s, const char *hash, json_t **out,
                                    struct ty_err *err)
{
    return s->ops->session_get(s, hash, out, err);
}
static inline int store_session_touch(struct store *s, const char *hash, int64_t at_ms,
                                      struct ty_err *err)
{
    return s->ops->session_touch(s, hash, at_ms, err);
}
static inline int store_session_delete(struct store *s, const char *hash, struct ty_err *err)
{
    return s->ops->session_delete(s, hash, err);
}

/*
 * Grants of a user or token by name (schema 5): grants_set replaces them all with `grants`
 * (an array as for users; [] removes them), grants_get gives them ([] when none), ordered
 * by domain.  The store does not check that the user or token exists: a token's grants
 * are set right after token_put, in the caller's batch.
 */
static inline int store_grants_set(struct store *s, enum store_principal kind, const char *name,
                                   const json_t *grants, struct ty_err *err)
{
    return s->ops->grants_set(s, kind, name, grants, err);
}
static inline int store_grants_get(struct store *s, enum store_principal kind, const char *name,
                                   json_t **out, struct ty_err *err)
{
    return s->ops->grants_get(s, kind, name, out, err);
}

/*
 * Secrets of a job: secrets_put replaces all of them with `values` ({"NAME": "value"}; an
 * empty object removes them); secrets_get gives them (an empty object when none).  They
 * never enter the objects' JSON or its history.
 */
static inline int store_secrets_put(struct store *s, const char *job, const json_t *values,
                                    struct ty_err *err)
{
    return s->ops->secrets_put(s, job, values, err);
}
static inline int store_secrets_get(struct store *s, const char *job, json_t **out,
                                    struct ty_err *err)
{
    return s->ops->secrets_get(s, job, out, err);
}

/*
 * What it takes to run the jobs names[0..n) names, read at once (an executor of a cluster
 * fetches the definitions of the jobs placed on it, up to a thousand a request): *out (the
 * caller's) gets a JSON object with, for each name that is a job,
 *   "<name>": {"version": <its version>, "definition": "<its JSON text as stored, as
 *              obj_get gives it>", "secrets": {"NAME": "value", ...}}
 * the secrets as secrets_get gives them ({} when it has none).  A name that is no job is
 * left out (and so are secrets still kept under it); a name given twice is answered once;
 * n 0 gives {} without reading anything.  The names are borrowed for the call.
 *
 * Cost: one statement whatever n, reading one snapshot (the names go as one parameter;
 * each costs a probe of the objects' key and one of the secrets' key), where obj_get and
 * secrets_get cost two statements - on PostgreSQL two round trips - per name.  TY_EINVAL
 * naming "names" when n is above 1000, names is NULL while n is not 0, or a name is NULL,
 * empty, longer than 256 bytes or not UTF-8 (the message gives its index); a database
 * failure as for any read (TY_EIO, TY_EUNAVAIL, TY_ENOMEM).
 */
static inline int store_jobs_get_many(struct store *s, const char *const *names, size_t n,
                                      json_t **out, struct ty_err *err)
{
    return s->ops->jobs_get_many(s, names, n, out, err);
}

/* Write a consistent copy of the store to `path` (a new file, mode 0600; TY_EEXIST if it
 * exists) while others keep using it; the copy is a store of the same schema version that
 * store_open_sqlite opens.  TY_ENOSPC / TY_EIO as for writes (nothing is left at path);
 * TY_EINVAL inside a batch.  A PostgreSQL store is backed up with PostgreSQL's own tools
 * (pg_dump, base backups): there it is always TY_EINVAL, with a message saying so. */
static inline int store_backup(struct store *s, const char *path, struct ty_err *err)
{
    return s->ops->backup(s, path, err);
}

/*
 * Whole tables as rows, to copy one store into another (`tethys store copy`).  A row is a
 * JSON object with one member per column the two schemas share, named as the column
 * ("trigger", "created_at_ms", ...; row ids are not carried: the target numbers its rows
 * in the order they are loaded): integers as integers, text as strings, a config object's
 * JSON as the string of its stored text (kept byte for byte), a run's output as the
 * base64 (b64.h) of its bytes, SQL NULL as null.
 *
 * store_rows_scan calls cb(arg, row) for every row of table t, in an order that keeps
 * history's order when the rows are loaded in it (runs and skips by their row id, SQLite,
 * or by (scheduled_at, id), PostgreSQL; alerts by id; other tables by key); the meta
 * table gives every setting but "schema_version", which belongs to each store.  The row
 * is borrowed for the call (json_incref what you keep); one row is in memory at a time,
 * whatever the table's size.  The scan reads one consistent snapshot.  cb may read
 * through the same store, not write through it; cb returning non-zero stops the scan and
 * that value is returned (make it one the caller can tell from a TY_E* code).  TY_EINVAL
 * naming "table" or "cb"; a database failure as for any read, possibly after some calls.
 *
 * store_rows_load inserts `rows` (a JSON array of such rows, borrowed) into table t as
 * they are, in order, as one call: inside the caller's batch (store_begin) when there is
 * one, else in a transaction of its own.  What the store derives from them comes out as
 * if the rows had been written by obj_put, run_put and skip_put (the job index and its
 * counts; on PostgreSQL also run and skip keys, the days of scheduled fires and the day
 * partitions).  It is for filling an empty store: a row whose key exists already fails
 * the call (TY_EEXIST, or the database's constraint error), and so does a meta row for
 * "schema_version" (TY_EINVAL, field "key").  TY_EINVAL naming "table", "rows" (not an
 * array, or an item not an object) or a column whose value has the wrong JSON type or is
 * not base64; database failures as for any write - in a batch they end the batch
 * (roll back), and on PostgreSQL any failure of a row does.
 *
 * store_rows_count gives the number of rows of t (meta: without "schema_version"), so a
 * copy can be checked and a target proved empty.  TY_EINVAL naming "table".
 */
static inline int store_rows_scan(struct store *s, enum store_table t,
                                  int (*cb)(void *arg, const json_t *row), void *arg,
                                  struct ty_err *err)
{
    return s->ops->rows_scan(s, t, cb, arg, err);
}
static inline int store_rows_load(struct store *s, enum store_table t, const json_t *rows,
                                  struct ty_err *err)
{
    return s->ops->rows_load(s, t, rows, err);
}
static inline int store_rows_count(struct store *s, enum store_table t, int64_t *count,
                                   struct ty_err *err)
{
    return s->ops->rows_count(s, t, count, err);
}

/*
 * Group several calls into one transaction (each call otherwise commits alone).  A call
 * that fails inside the batch for a reason it reports (exists, conflict, not found,
 * invalid) changes nothing and the batch goes on.  A failure that ends the transaction
 * itself - disk full, the database gone, and on PostgreSQL a deadlock or serialization
 * failure with another writer (TY_EUNAVAIL: roll back and retry the batch) - makes every
 * later write and the commit return that error until store_rollback; nothing of the
 * batch is stored.  On a read-only store a batch reads one snapshot.
 */
static inline int store_begin(struct store *s, struct ty_err *err)
{
    return s->ops->begin(s, err);
}
static inline int store_commit(struct store *s, struct ty_err *err)
{
    return s->ops->commit(s, err);
}
static inline void store_rollback(struct store *s)
{
    s->ops->rollback(s);
}

#endif
