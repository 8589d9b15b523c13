/*
 * ty_err.c - the error record.  Kept apart so every module, pure or not, can report
 * failures the same way without pulling in anything else.
 */
#include "ty_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *ty_strerror(int code)
{
    switch (code) {
    case TY_OK: return "success";
    case TY_EINVAL: return "invalid input";
    case TY_ENOMEM: return "out of memory";
    case TY_ENOENT: return "not found";
    case TY_EIO: return "input/output error";
    case TY_EFORMAT: return "corrupt or unsupported data";
    case TY_ERANGE: return "value out of supported range";
    case TY_EEXIST: return "already exists";
    case TY_ECONFLICT: return "changed by someone else";
    case TY_EBUSY: return "busy";
    case TY_ENOSPC: return "no space left on device";
    case TY_EUNAVAIL: return "service unavailable";
    case TY_EAUTH: return "not authorised";
    default: return "unknown error";
    }
}

void ty_err_clear(struct ty_err *err)
{
    if (err == NULL)
        return;
    err->code = TY_OK;
    err->pos = -1;
    err->len = 0;
    err->field[0] = '\0';
    err->msg[0] = '\0';
}

int ty_error(struct ty_err *err, int code, const char *field, int pos, int len, const char *fmt,
             ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    err->pos = pos;
    err->len = pos < 0 ? 0 : len;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}
