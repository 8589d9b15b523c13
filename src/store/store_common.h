/*
 * store_common.h - what every store implementation shares: the argument checks of the
 * store.h calls, exact percentiles for stats, the cursor formats of paged reads, and how a
 * jobs_get_many answer is put together from its rows.
 *
 * Internal to src/store (names carry a double underscore, as libuv's uv__ do): callers
 * include store.h only.  Nothing here touches a database, so SQLite and PostgreSQL refuse
 * the same input with the same message, and a cursor one returned means the same to both.
 */
#ifndef STORE_COMMON_H
#define STORE_COMMON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/strbuf.h"
#include "../core/ty_err.h"
#include "store.h"

#define STORE__NAME_MAX        256  /* bytes: object names, meta keys, alert keys, token names */
#define STORE__HASH_HEX        64   /* hex digits of a SHA-256 (tokens) */
#define STORE__PAGE_DEFAULT    100  /* items per page when a query's limit is 0 */
#define STORE__PAGE_MAX        1000 /* the most items a page may ask for */
#define STORE__CURSOR_MAX      64   /* bytes of a history cursor, NUL included */
#define STORE__NAME_CURSOR_MAX (3 + 2 * STORE__NAME_MAX + 1) /* an object page's, NUL included */

/* ---------------------------------------------------------------------------------------
 * Argument checks.  Each returns 0, or TY_EINVAL naming the field, with a message that
 * starts with the operation (`op`, "run_put") and quotes the bad value where that helps.
 */

/* "job", "domain", "calendar": a kind's stored name; NULL for a value outside the enum. */
const char *store__kind_name(enum store_kind k);

/* A config object's kind and name (1 to STORE__NAME_MAX bytes); *kn gets the kind's name. */
int store__check_obj(const char *op, enum store_kind kind, const char *name, const char **kn,
                     struct ty_err *err);

/* A required text field of fewer than `max` bytes: field "is missing" or "is longer than". */
int store__check_id(const char *v, size_t max, const char *field, const char *op,
                    struct ty_err *err);

/* A run record for run_put; *status and *trigger get the names to store (static). */
int store__check_run(const struct store_run *r, const char **status, const char **trigger,
                     struct ty_err *err);

/* A skipped fire for skip_put; *reason and *trigger get the names to store (static). */
int store__check_skip(const struct store_skip *k, const char **reason, const char **trigger,
                      struct ty_err *err);

/* An alert for alert_raise: key, kind and reason are required. */
int store__check_alert(const struct store_alert *a, struct ty_err *err);

/* A SHA-256 in hex, either case, lowercased into out.  The text is never quoted back in
 * the message: it may be a secret pasted by mistake. */
int store__check_hash(const char *op, const char *hash, char out[STORE__HASH_HEX + 1],
                      struct ty_err *err);

/* A job's secrets for secrets_put: an object of names (1 to STORE__NAME_MAX bytes) to
 * strings without NUL. */
int store__check_secrets(const char *job, const json_t *values, struct ty_err *err);

/* The names of a jobs_get_many: at most STORE__PAGE_MAX of them, names not NULL when n > 0,
 * and each 1 to STORE__NAME_MAX bytes of UTF-8; TY_EINVAL naming "names" (and the index of
 * a bad one) otherwise. */
int store__check_names(const char *op, const char *const *names, size_t n, struct ty_err *err);

/* The `after` of a skips_last: an object of at most STORE__AFTER_MAX job names (1 to
 * STORE__NAME_MAX bytes) to integers >= 0; TY_EINVAL naming "after" (and the job) else. */
#define STORE__AFTER_MAX 1000000
int store__check_after(const json_t *after, struct ty_err *err);

/* out[job][shard] = at, in a {"<job>": {"<shard>": at}} object being built (executor_last_fires,
 * skips_last).  0, or TY_ENOMEM with err naming op. */
int store__per_shard_set(json_t *out, const char *job, int64_t shard, int64_t at, const char *op,
                         struct ty_err *err);

/* A page size: 0 means STORE__PAGE_DEFAULT, else 1 to STORE__PAGE_MAX; *out gets it. */
int store__check_limit(const char *op, size_t limit, size_t *out, struct ty_err *err);

/* A domain path to query by: NULL or at most STORE__NAME_MAX bytes (DOMAIN_PATH_MAX).
 * Any text is accepted otherwise: a path no job has simply holds no job. */
int store__check_domain(const char *op, const char *domain, struct ty_err *err);

/*
 * An object page query (store_obj_page): its kind (*kn gets the stored name), limit (*limit
 * gets the page size), enabled (-1, 0 or 1), domain (as store__check_domain) and cursor
 * (*after gets the name it stands for, "" for the first page).
 */
int store__check_obj_query(const struct store_obj_query *q, const char **kn, size_t *limit,
                           char after[STORE__NAME_MAX + 1], struct ty_err *err);

/* base_version of an obj_put (-1, 0 or a version) and its json (present). */
int store__check_put(const char *kn, const char *name, const char *json, int64_t base_version,
                     struct ty_err *err);

/* Whether a put based on base_version may change an object now at version cur (0: none):
 * TY_EEXIST, TY_ENOENT or TY_ECONFLICT, each naming the versions; `what` starts the
 * message ("obj_put job \"x\""). */
int store__put_allowed(int64_t cur, int64_t base_version, const char *what, struct ty_err *err);

/* base_version of an obj_delete (0 or a version). */
int store__check_delete(const char *kn, const char *name, int64_t base_version, struct ty_err *err);

/* Whether a delete based on base_version may delete an object now at version cur (0:
 * none): TY_ENOENT or TY_ECONFLICT. */
int store__delete_allowed(int64_t cur, int64_t base_version, const char *what, struct ty_err *err);

/* The version asked of obj_version (1 or more). */
int store__check_version(const char *kn, const char *name, int64_t version, struct ty_err *err);

/* The kind of an obj_list (*kn gets its name). */
int store__check_list(enum store_kind kind, const char **kn, struct ty_err *err);

/* The kind and callback of an obj_scan (*kn gets the kind's name). */
int store__check_scan(enum store_kind kind, const void *cb, const char **kn, struct ty_err *err);

/* A meta_set: key as store__check_id, not "schema_version", value present. */
int store__check_meta_set(const char *key, const char *value, struct ty_err *err);

/* A token_put: name, hash (lowercased into h) and expiry (0 or a time). */
int store__check_token_put(const char *name, const char *hash, int64_t expires_at_ms,
                           char h[STORE__HASH_HEX + 1], struct ty_err *err);

/* The arguments of a prune (neither negative). */
int store__check_prune(int64_t older_than_ms, int64_t keep_per_job, struct ty_err *err);

/*
 * A fire_shards prefix (as store__check_id, field "fire_prefix") and the smallest text
 * above every text that starts with it, into hi: the prefix with its last byte below 0xFF
 * increased (a prefix of 0xFF bytes only has no such bound: TY_EINVAL).  The ids starting
 * with the prefix are then the range [prefix, hi) in bytewise order.
 */
int store__prefix_range(const char *prefix, char hi[STORE_FIRE_ID_MAX], struct ty_err *err);

/* ---------------------------------------------------------------------------------------
 * History and statistics queries, decided before any database reads them.
 */

/* A history query's filters as a bit set (one statement per set), and which rows it
 * reads: runs and skips merged, runs of one status, or skips only. */
enum { STORE__HQ_JOB = 1, STORE__HQ_DOMAIN = 2, STORE__HQ_SINCE = 4, STORE__HQ_UNTIL = 8 };
#define STORE__HQ_MASKS 16
enum { STORE__HM_BOTH, STORE__HM_RUNS, STORE__HM_SKIPS };
#define STORE__HM_MODES 3

/* A domain's subtree as one index range over a bytewise-ordered text column: [d, d || '0')
 * holds d, "d/..." and also "d-x", "d.x" ('-' and '.' sort before '/'), which the last term
 * drops.  SQL text, `col` a column and `p` a parameter (both dialects). */
#define STORE__DOMAIN_RANGE(col, p)                                                                \
    col " >= " p " AND " col " < (" p " || '0') AND (" col " = " p " OR " col " >= (" p " || "     \
        "'/'))"

struct store__history {
    int mode;      /* STORE__HM_* */
    unsigned mask; /* STORE__HQ_* */
    size_t limit;  /* the page size */
    int64_t cs;    /* rows strictly after the cursor: scheduled_at <= cs, and at cs */
    int64_t crun;  /* runs with id < crun */
    int64_t cskip; /* skips with id < cskip (INT64_MAX / 0 when the cursor is not at cs) */
};

/* Check a history query and work out its plan; TY_EINVAL naming "limit", "status" or
 * "cursor". */
int store__history_args(const struct store_history_query *q, struct store__history *h,
                        struct ty_err *err);

/* The filter bits of a stats query (job, domain, since, until). */
unsigned store__stats_mask(const struct store_stats_query *q);

/* A stats query's grouping: "job" (the default), "domain" or "day"; TY_EINVAL naming
 * "group_by" otherwise. */
enum store__group { STORE__BY_JOB, STORE__BY_DOMAIN, STORE__BY_DAY };
int store__stats_group(const struct store_stats_query *q, enum store__group *g, struct ty_err *err);

/* The counters of a stats group, in the order of store__stats_names. */
enum {
    STORE__SC_RUNS,
    STORE__SC_OK,
    STORE__SC_FAILED,
    STORE__SC_TIMEOUT,
    STORE__SC_CANCELED,
    STORE__SC_INTERRUPTED,
    STORE__SC_LOST,
    STORE__SC_MISFIRED,
    STORE__SC_UNFINISHED,
    STORE__SC_SKIPPED,
    STORE__SC_COUNT
};
extern const char *const store__stats_names[STORE__SC_COUNT];

/* ---------------------------------------------------------------------------------------
 * JSON out.
 */

/* A JSON string of the n bytes at data, each ill-formed UTF-8 byte replaced by U+FFFD
 * (jansson insists on UTF-8, and a job's output or error text need not be).  New
 * reference, NULL when memory ran out. */
json_t *store__json_lossy(const void *data, size_t n);

/* An instant (seconds) as RFC 3339 text in UTC ("2026-01-01T00:00:00+00:00").  New
 * reference. */
json_t *store__time_text(int64_t t);

/* TY_ENOMEM, "<op>: out of memory". */
int store__oom(struct ty_err *err, const char *op);

/* ---------------------------------------------------------------------------------------
 * jobs_get_many: both back ends send the names as one parameter and read rows of two kinds
 * back, a job's definition and one of its secrets, in whatever order their database gives.
 */

/* names[0..n) (UTF-8: store__check_names) as the text of a JSON array of strings, appended
 * to sb (check sb_failed).  Only '"', '\\' and control characters need escaping, so
 * SQLite's json_each and PostgreSQL's json_array_elements_text give each name back byte
 * for byte. */
void store__names_json(const char *const *names, size_t n, struct strbuf *sb);

/*
 * Add a row to `out`, the answer being built ({"<job>": {"version", "definition",
 * "secrets"}}, store.h): job's definition (its stored text as a JSON string, and its
 * version) or one of its secrets (name, and the value as secrets_get reads it).  Each takes
 * definition or value, also when it fails: false when memory ran out (or either is NULL,
 * the caller's own allocation having failed).  A job's rows may come in any order and more
 * than once; store__jobs_done then drops the entries that got secrets but no definition
 * (secrets of a name that is no job).
 */
bool store__jobs_def(json_t *out, const char *job, int64_t version, json_t *definition);
bool store__jobs_secret(json_t *out, const char *job, const char *name, json_t *value);
void store__jobs_done(json_t *out);

/* ---------------------------------------------------------------------------------------
 * Whole tables as rows (store_rows_scan / _load / _count): the columns both schemas share,
 * with how each is carried in a JSON row.
 */

enum store__col_type {
    STORE__COL_INT,   /* a JSON integer */
    STORE__COL_TEXT,  /* a JSON string */
    STORE__COL_JSON,  /* a JSON string holding a config object's stored JSON text */
    STORE__COL_BYTES, /* a JSON string holding the base64 of the bytes */
};

struct store__col {
    const char *name; /* the column's name in both schemas (quote it: "trigger") */
    enum store__col_type type;
};

struct store__table {
    const char *name;
    const struct store__col *cols;
    size_t ncols;
    const char *where; /* rows that count (a condition), NULL: all */
    const char *order; /* scan order by key, NULL: by row id (the back end says which) */
};

/* The description of table t; TY_EINVAL naming "table" (op in the message) when t is not
 * one. */
int store__check_table(enum store_table t, const char *op, const struct store__table **out,
                       struct ty_err *err);

/* Check a store_rows_load argument against table t: an array of objects whose members
 * named as columns have the column's JSON type (or are null), and no meta row for
 * "schema_version".  TY_EINVAL naming "rows", the column or "key". */
int store__check_rows(const struct store__table *t, const json_t *rows, const char *op,
                      struct ty_err *err);

/* Where a loaded objects row files its job in the job index: *domain its "domain" column
 * ("" when null; borrowed from row) and *enabled 0 when its JSON says "enabled": false.
 * false when the row is not a job's. */
bool store__row_job_place(const json_t *row, const char **domain, int *enabled);

/* ---------------------------------------------------------------------------------------
 * Domain chains.  A job lies in the subtree of its own domain and of every ancestor up to
 * the root "" - the domains d for which domain_within(job's domain, d) holds
 * (core/domain.h) - so a store that counts or indexes jobs by subtree files each job under
 * every domain of that chain.
 */

/* Replace the domain path in buf by its parent, in place, as domain_parent does ("a/b" ->
 * "a", "a" -> ""); false, leaving buf alone, when it already is the root "".  Walks a
 * chain: do { use(buf); } while (store__domain_up(buf)); */
bool store__domain_up(char *buf);

/* ---------------------------------------------------------------------------------------
 * Statistics: exact percentiles by nearest rank (the value at rank ceil(p * n / 100) of
 * the sorted values), computed in C because SQLite has none.
 */

/* A growable list of values; zero-initialise, free(v) when done. */
struct store__vals {
    int64_t *v;
    size_t n, cap;
};

/* Append x; false when memory ran out (the list is unchanged). */
bool store__vals_add(struct store__vals *a, int64_t x);

/* {"<na>": pa-th percentile, "<nb>": pb-th percentile} of the values, which it sorts in
 * place; both null when there are none.  New reference, NULL when memory ran out. */
json_t *store__percentiles(struct store__vals *a, const char *na, int pa, const char *nb, int pb);

/* ---------------------------------------------------------------------------------------
 * History cursors: "v1.<scheduled_at>.<src>.<id>", the key of the last item of a page
 * (src 1 for a run, 0 for a skipped fire; id the row's id, > 0).  Opaque to callers.
 */

/* Write the cursor for a key into buf. */
void store__cursor_format(char buf[STORE__CURSOR_MAX], int64_t sched, int src, int64_t id);

/* Read a cursor back; TY_EINVAL naming "cursor" when it is not one cursor_format made. */
int store__cursor_parse(const char *c, int64_t *sched, int *src, int64_t *id, struct ty_err *err);

/* ---------------------------------------------------------------------------------------
 * Object page cursors: "o1.<the last name of the page, in lowercase hex>".  Opaque to
 * callers; hex keeps any name (any bytes but NUL) safe in a URL and in JSON.
 */

/* Write the cursor that resumes after `name` (1 to STORE__NAME_MAX bytes) into buf. */
void store__name_cursor_format(const char *name, char buf[STORE__NAME_CURSOR_MAX]);

/* Read a cursor back into name; TY_EINVAL naming "cursor" when name_cursor_format did not
 * make it. */
int store__name_cursor_parse(const char *c, char name[STORE__NAME_MAX + 1], struct ty_err *err);

#endif
