/*
 * coord_impl.h - internal to src/coord: the field readers and writers of the JSON that
 * crosses a process boundary (results in coord.c; requests, replies, registrations and
 * placements in coord_wire.c), so every codec checks presence, type and range the same way
 * and refuses in the same words.
 *
 * A refusal is TY_EFORMAT with err->field the field's path ("assign.3.shards") and a
 * message that starts with the reader's lead and that path ("result run_id: missing",
 * "assign.3.version: not an integer").
 */
#ifndef COORD_IMPL_H
#define COORD_IMPL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/strbuf.h"
#include "../core/ty_err.h"

#define COORD__I32 2147483647LL
#define COORD__I64 INT64_MAX

/* Where the fields being read sit, for refusals. */
struct coord__where {
    const char *lead; /* starts every message: "result ", or "" */
    const char *path; /* the enclosing object's path: "" at the top, "assign.3" */
};

/* The path of w's field `key` ("assign.3" and "job": "assign.3.job"; key NULL: the path
 * itself) in buf[cap], cut short to fit.  Returns buf. */
const char *coord__path(const struct coord__where *w, const char *key, char *buf, size_t cap);

/* TY_EFORMAT naming "<path>.<key>" (key NULL: the path itself) with the message
 * "<lead><field>: <fmt...>".  Returns TY_EFORMAT. */
int coord__refuse(struct ty_err *err, const struct coord__where *w, const char *key,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* o[key] as a string without NUL bytes, borrowed from o; absent or null gives NULL, or
 * "missing" when required. */
int coord__get_str(const json_t *o, const struct coord__where *w, const char *key, bool required,
                   const char **out, struct ty_err *err);

/* o[key] as an integer in [min, max]; absent gives 0, or "missing" when required. */
int coord__get_int(const json_t *o, const struct coord__where *w, const char *key, bool required,
                   int64_t min, int64_t max, int64_t *out, struct ty_err *err);

/* o[key] as true or false; absent gives false. */
int coord__get_bool(const json_t *o, const struct coord__where *w, const char *key, bool *out,
                    struct ty_err *err);

/* o[key] (required) as one of names[1..n) (NULL entries skipped): *out its index. */
int coord__get_name(const json_t *o, const struct coord__where *w, const char *key,
                    const char *const *names, size_t n, int *out, struct ty_err *err);

/*
 * Bytes: o[key] when they are UTF-8 without NUL, else o[key_b64] as base64.  get reads
 * whichever is there (key first): *data borrowed from o, or from scratch when it was
 * base64 (scratch must then outlive the use); NULL with *len 0 when neither is.
 */
int coord__set_bytes(json_t *o, const char *key, const char *key_b64, const char *data, size_t len);
int coord__get_bytes(const json_t *o, const struct coord__where *w, const char *key,
                     const char *key_b64, struct strbuf *scratch, const char **data, size_t *len,
                     struct ty_err *err);

/* o[key] = a new string (nothing when v is NULL) / integer.  0, or TY_ENOMEM (also for a
 * string that is not UTF-8: jansson cannot hold it). */
int coord__set_str(json_t *o, const char *key, const char *v);
int coord__set_int(json_t *o, const char *key, int64_t v);

/* s[0..n) is 1..max bytes of [A-Za-z0-9._-] (executor ids, label keys and values). */
bool coord__word_ok(const char *s, size_t n, size_t max);

#endif
