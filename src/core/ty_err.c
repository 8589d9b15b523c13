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
    case TY_EPERM: return "forbidden";
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

/* The names of error bodies: one table both ways.  A code with several names (the HTTP
 * layer's refusals) is listed under the name ty_code_name gives first. */
static const struct {
    const char *name;
    int code;
} code_names[] = {
    {"invalid", TY_EINVAL},
    {"out_of_range", TY_ERANGE},
    {"unauthorized", TY_EAUTH},
    {"forbidden", TY_EPERM},
    {"not_found", TY_ENOENT},
    {"exists", TY_EEXIST},
    {"busy", TY_EBUSY},
    {"conflict", TY_ECONFLICT},
    {"no_space", TY_ENOSPC},
    {"unavailable", TY_EUNAVAIL},
    {"out_of_memory", TY_ENOMEM},
    {"io_error", TY_EIO},
    {"corrupt_data", TY_EFORMAT},
    {"too_large", TY_EINVAL},
    {"unsupported_media_type", TY_EINVAL},
    {"method_not_allowed", TY_EINVAL},
    {"too_many_requests", TY_EBUSY},
    {"internal", TY_EIO},
};

const char *ty_code_name(int code)
{
    for (size_t i = 0; i < sizeof code_names / sizeof code_names[0]; i++)
        if (code_names[i].code == code)
            return code_names[i].name;
    return "internal";
}

int ty_code_parse(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof code_names / sizeof code_names[0]; i++)
        if (strcmp(code_names[i].name, name) == 0)
            return code_names[i].code;
    return 0;
}
