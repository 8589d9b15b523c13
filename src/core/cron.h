/*
 * cron.h - the cron dialect of spec/cron.md: parse once into a small immutable value,
 * then ask for the next fire instant in any zone without allocating.
 *
 * Four forms are accepted: Quartz (6 or 7 fields, seconds first), Unix (5 fields),
 * macros (@daily ...) and fixed rates (@every 1h30m).  A compiled expression is a
 * plain value (no pointers): copy it, compare it with cron_equal, share it freely.
 */
#ifndef CRON_H
#define CRON_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"
#include "ty_err.h"
#include "tz.h"

enum cron_form {
    CRON_FORM_QUARTZ = 1, /* SEC MIN HOUR DOM MON DOW [YEAR]; macros compile to this form */
    CRON_FORM_UNIX = 2,   /* MIN HOUR DOM MON DOW, Vixie day semantics */
    CRON_FORM_EVERY = 3,  /* @every D: instants t with t mod D == 0 */
};

/* flags */
#define CRON_F_DOM_STAR  0x01 /* day-of-month unrestricted (Quartz * or ?; Unix begins with *) */
#define CRON_F_DOW_STAR  0x02 /* day-of-week unrestricted, likewise */
#define CRON_F_DOM_QMARK 0x04 /* day-of-month was ? */
#define CRON_F_DOW_QMARK 0x08 /* day-of-week was ? */
#define CRON_F_DOM_LW    0x10 /* day-of-month has LW: the last weekday of the month */
#define CRON_F_YEAR      0x20 /* a year field was given (7-field Quartz form) */

/*
 * A compiled expression: one bit per allowed value of each field, plus the day
 * specials.  Bits beyond a field's range are always zero, and unused members are
 * zero, so two expressions with the same schedule and spelling class compare equal
 * byte for byte.
 */
struct cron_expr {
    uint64_t sec;      /* bit s, 0-59 */
    uint64_t min;      /* bit m, 0-59 */
    uint64_t year[4];  /* bit y-1970, 1970-2199 */
    uint64_t dow_nth;  /* bit (k-1)*7+d: the k-th (1-5) weekday d (0 = Sunday) of the month */
    uint32_t hour;     /* bit h, 0-23 */
    uint32_t dom;      /* bit d-1, days 1-31 */
    uint32_t dom_last; /* bit n: the day n days before the last (L-n; L is n = 0) */
    uint32_t dom_near; /* bit n-1: the weekday nearest day n (nW) */
    uint32_t every;    /* seconds, CRON_FORM_EVERY only (1 .. 366 days) */
    uint16_t mon;      /* bit m-1, months 1-12 */
    uint8_t dow;       /* bit d, 0 = Sunday .. 6 = Saturday */
    uint8_t dow_last;  /* bit d: the last weekday d of the month (nL) */
    uint8_t form;      /* enum cron_form */
    uint8_t flags;     /* CRON_F_* */
};

/* 1972-01-01T00:00:00Z: the earliest instant cron_next accepts (spec §8). */
#define CRON_MIN_TIME INT64_C(63072000)
/* The last year a schedule can fire in (local time). */
#define CRON_MAX_YEAR 2199

/*
 * Compile text into *out.  Case-insensitive; blanks around and between fields are
 * ignored.  On failure returns TY_EINVAL and fills err with a message naming the field
 * and the offending text ("day-of-month: \"32\" is out of range 1-31") and err->pos /
 * err->len locating that text in `text`; *out is then zeroed.  A valid expression that
 * can never fire is accepted (see cron_next).  Does not allocate.
 */
int cron_parse(const char *text, struct cron_expr *out, struct ty_err *err);

/*
 * The earliest fire instant strictly after `after`, for local wall-clock time in zone z
 * (spec §7 decides daylight-saving gaps and overlaps).  Stores it in *out and returns 0;
 * returns TY_ENOENT when there is none up to 2199-12-31T23:59:59 local time, and
 * TY_ERANGE when `after` is before CRON_MIN_TIME.  Does not allocate; z is borrowed.
 */
int cron_next(const struct cron_expr *e, const struct tz_zone *z, int64_t after, int64_t *out);

/*
 * Append the canonical text of e to sb: Quartz expressions as 6 or 7 fields, Unix ones
 * as 5, fixed rates as "@every 1h30m".  The text parses back to an expression equal
 * (cron_equal) to e.  Names and ranges are written as numbers and the shortest lists.
 */
void cron_format(const struct cron_expr *e, struct strbuf *sb);

/* Non-zero when a and b are the same schedule with the same spelling class. */
int cron_equal(const struct cron_expr *a, const struct cron_expr *b);

/* Non-zero when the hour field matches all 24 hours (spec §7's table). */
int cron_hour_all(const struct cron_expr *e);

/* Display names of the fields of a form, for messages ("second", "day-of-month", ...). */
const char *cron_field_name(int form, int field_index);

#endif
