/*
 * ty_err.h - error codes and the error record every fallible Tethys call fills.
 *
 * Functions that can fail return int: 0 on success, a negative TY_E* code otherwise.
 * When the caller passes a struct ty_err, the callee also fills it with a message for
 * humans that names the field and the offending text, plus where in the input that
 * text sits (so a CLI can draw a caret under it).  Passing NULL is always allowed.
 */
#ifndef TY_ERR_H
#define TY_ERR_H

#include <stddef.h>

enum ty_code {
    TY_OK = 0,
    TY_EINVAL = -1,    /* input rejected: malformed, out of range, inconsistent */
    TY_ENOMEM = -2,    /* allocation failed */
    TY_ENOENT = -3,    /* no such thing (zone, file, next fire) */
    TY_EIO = -4,       /* the operating system refused a read or write */
    TY_EFORMAT = -5,   /* data from outside (a TZif file) is corrupt or unsupported */
    TY_ERANGE = -6,    /* a value outside what the operation supports (a time before 1972) */
    TY_EEXIST = -7,    /* already exists (a job name, a fire already made) */
    TY_ECONFLICT = -8, /* the object changed since the version the caller based its change on */
    TY_EBUSY = -9,     /* held by someone else (a data directory, a running shard) */
    TY_ENOSPC = -10,   /* the disk is full */
    TY_EUNAVAIL = -11, /* a service is down or not answering (database, server) */
    TY_EAUTH = -12,    /* missing or wrong credentials */
    TY_EPERM = -13,    /* the caller is known but its role does not allow this */
    TY_ECODE_MIN = -13,
};

#define TY_ERR_MSG_MAX   768
#define TY_ERR_FIELD_MAX 128

struct ty_err {
    int code;                     /* the TY_E* code also returned */
    int pos;                      /* byte offset of the offending text in the input, or -1 */
    int len;                      /* its length in bytes (0 when pos is -1) */
    char field[TY_ERR_FIELD_MAX]; /* the field or parameter at fault ("day-of-month"), or "" */
    char msg[TY_ERR_MSG_MAX];     /* the whole human message, field named first */
};

/* Short, static description of a TY_E* code ("invalid input").  Never NULL. */
const char *ty_strerror(int code);

/*
 * Fill err (if not NULL) and return code, so callers write `return ty_error(...)`.
 * field may be NULL; pos is -1 when there is no location.  The message is formatted
 * with printf rules and truncated to TY_ERR_MSG_MAX-1 bytes.
 */
int ty_error(struct ty_err *err, int code, const char *field, int pos, int len, const char *fmt,
             ...) __attribute__((format(printf, 6, 7)));

/* The API's name of a TY_E* code, as error bodies carry it ("invalid", "not_found", ...);
 * "internal" for a code it has no name for.  Static. */
const char *ty_code_name(int code);

/* The TY_E* code an error body's name stands for: the names ty_code_name gives, and the
 * HTTP layer's own ("too_large", "too_many_requests", ...).  0 for a name it does not know
 * (or NULL). */
int ty_code_parse(const char *name);

/* Reset err to "no error". */
void ty_err_clear(struct ty_err *err);

#endif
