/*
 * civil.c - calendar arithmetic on day counts, after the well-known "days from civil"
 * construction: shift the year to start in March so the leap day is the last day of
 * the year, then count 400-year eras of 146097 days.  Branch-light, exact for every
 * int64 year the rest of the code can produce, and independent of the C library's
 * time functions (which depend on the process-wide TZ).
 */
#include "civil.h"

#include <stdio.h>

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

int64_t civil_days_from_ymd(int64_t y, int m, int d)
{
    /* normalise the month so callers may pass 13 or 0 */
    int64_t mm = (int64_t)m - 1;
    y += floor_div(mm, 12);
    mm -= floor_div(mm, 12) * 12;
    m = (int)mm + 1;

    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                                  /* [0, 399] */
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

void civil_ymd_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    days += 719468;
    int64_t era = floor_div(days, 146097);
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int dd = (int)(doy - (153 * mp + 2) / 5 + 1);
    int mo = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (mo <= 2);
    *m = mo;
    *d = dd;
}

int civil_weekday(int64_t days)
{
    /* 1970-01-01 was a Thursday (4) */
    int64_t w = (days + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

int civil_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int civil_days_in_month(int64_t y, int m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2)
        return 28 + civil_is_leap(y);
    return dim[m - 1];
}

void civil_from_seconds(int64_t secs, struct civil_time *out)
{
    int64_t days = floor_div(secs, CIVIL_SECS_PER_DAY);
    int64_t rem = secs - days * CIVIL_SECS_PER_DAY;
    civil_ymd_from_days(days, &out->year, &out->mon, &out->mday);
    out->hour = (int)(rem / 3600);
    out->min = (int)(rem / 60 % 60);
    out->sec = (int)(rem % 60);
}

int64_t civil_to_seconds(const struct civil_time *t)
{
    return civil_days_from_ymd(t->year, t->mon, t->mday) * CIVIL_SECS_PER_DAY +
           (int64_t)t->hour * 3600 + (int64_t)t->min * 60 + t->sec;
}

size_t civil_format_rfc3339(int64_t t, int32_t utoff, char buf[CIVIL_RFC3339_MAX])
{
    /* RFC 3339 offsets have no seconds: use the offset rounded towards zero to whole
     * minutes for the local time too, so the text still names exactly instant t */
    utoff -= utoff % 60;
    struct civil_time c;
    civil_from_seconds(t + utoff, &c);
    char sign = utoff < 0 ? '-' : '+';
    int32_t a = utoff < 0 ? -utoff : utoff;
    int n = snprintf(buf, CIVIL_RFC3339_MAX, "%04lld-%02d-%02dT%02d:%02d:%02d%c%02d:%02d",
                     (long long)c.year, c.mon, c.mday, c.hour, c.min, c.sec, sign, (int)(a / 3600),
                     (int)(a / 60 % 60));
    return n < 0 ? 0 : (size_t)n;
}

int civil_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int civil_parse_rfc3339(const char *s, const char *field, int64_t *out, struct ty_err *err)
{
    int y, mo, d, h, mi, sec;
    const char *p = s;
    int slen = 0;
    while (s[slen] != '\0')
        slen++;
#define BAD(what)                                                                                  \
    return ty_error(err, TY_EINVAL, field, 0, slen,                                                \
                    "%s: \"%s\" is not an RFC 3339 date-time (%s); expected "                      \
                    "YYYY-MM-DDTHH:MM:SS followed by Z or +hh:mm",                                 \
                    field, s, what)
    if (civil_digits(p, 4, &y) || p[4] != '-' || civil_digits(p + 5, 2, &mo) || p[7] != '-' ||
        civil_digits(p + 8, 2, &d))
        BAD("bad date");
    p += 10;
    if (*p != 'T' && *p != 't' && *p != ' ')
        BAD("missing 'T' between date and time");
    p++;
    if (civil_digits(p, 2, &h) || p[2] != ':' || civil_digits(p + 3, 2, &mi) || p[5] != ':' ||
        civil_digits(p + 6, 2, &sec))
        BAD("bad time of day");
    p += 8;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            BAD("empty fraction of a second");
        while (*p >= '0' && *p <= '9')
            p++;
    }
    int32_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (civil_digits(p + 1, 2, &oh) || p[3] != ':' || civil_digits(p + 4, 2, &om))
            BAD("bad UTC offset");
        if (oh > 23 || om > 59)
            BAD("UTC offset out of range");
        off = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        BAD("missing UTC offset");
    }
    if (*p != '\0')
        BAD("trailing characters");
    if (mo < 1 || mo > 12 || d < 1 || d > civil_days_in_month(y, mo))
        BAD("no such date");
    /* 60 seconds is allowed for a leap second and read as the next second */
    if (h > 23 || mi > 59 || sec > 60)
        BAD("time of day out of range");
#undef BAD
    struct civil_time c = {y, mo, d, h, mi, sec};
    *out = civil_to_seconds(&c) - off;
    return 0;
}
