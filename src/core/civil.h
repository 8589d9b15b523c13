/*
 * civil.h - proleptic Gregorian calendar arithmetic and RFC 3339 text.
 *
 * Pure functions over int64 seconds since 1970-01-01T00:00:00 (no leap seconds).
 * A "local seconds" value is the same count taken on a local wall clock: the
 * instant plus the zone's UTC offset.  Nothing here allocates or reads a clock.
 */
#ifndef CIVIL_H
#define CIVIL_H

#include <stdint.h>
#include <stddef.h>

#include "ty_err.h"

#define CIVIL_SECS_PER_DAY 86400

struct civil_time {
    int64_t year;
    int mon;  /* 1-12 */
    int mday; /* 1-31 */
    int hour; /* 0-23 */
    int min;  /* 0-59 */
    int sec;  /* 0-59 */
};

/* The value of exactly n decimal digits at s into *out (n <= 9): 0, or -1 when one of
 * them is not a digit (s is read no further than the first non-digit). */
int civil_digits(const char *s, int n, int *out);

/* Days since 1970-01-01 of the date y-m-d; m and d need not be normalised. */
int64_t civil_days_from_ymd(int64_t y, int m, int d);

/* Inverse of civil_days_from_ymd for a normalised date. */
void civil_ymd_from_days(int64_t days, int64_t *y, int *m, int *d);

/* Day of week of a day count: 0 = Sunday ... 6 = Saturday. */
int civil_weekday(int64_t days);

int civil_is_leap(int64_t y);

/* 28-31. */
int civil_days_in_month(int64_t y, int m);

/* Split seconds into a civil time (floor semantics for negative values). */
void civil_from_seconds(int64_t secs, struct civil_time *out);

/* Seconds of a civil time; fields need not be normalised. */
int64_t civil_to_seconds(const struct civil_time *t);

/* "YYYY-MM-DDTHH:MM:SS+hh:mm" and a NUL: the longest text civil_format_rfc3339 writes. */
#define CIVIL_RFC3339_MAX 32

/*
 * Write instant t as local time at UTC offset utoff (seconds east), in spec §8's
 * form: seconds always present, numeric offset, "+00:00" for zero.  An offset with
 * a seconds part (Africa/Monrovia until 1972-01-07) is rounded towards zero to whole
 * minutes and the local time written with that offset, so the text still denotes
 * exactly instant t (RFC 3339 has no seconds in offsets).  Returns the length written
 * (without the NUL).
 */
size_t civil_format_rfc3339(int64_t t, int32_t utoff, char buf[CIVIL_RFC3339_MAX]);

/*
 * Parse an RFC 3339 date-time ("2017-08-30T17:22:17+08:00", "...Z", optional
 * fractional seconds, 't'/'z'/' ' accepted as separators as RFC 3339 §5.6 notes).
 * Stores the instant, fractions dropped (floored), in *out.  Fails with TY_EINVAL and
 * a message naming `field` when the text is malformed or a component is out of range.
 */
int civil_parse_rfc3339(const char *s, const char *field, int64_t *out, struct ty_err *err);

#endif
