/*
 * store_common.h - what every store implementation shares: the argument checks of the
 * store.h calls, exact percentiles for stats, and the cursor formats of paged reads.
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
