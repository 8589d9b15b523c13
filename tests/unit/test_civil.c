/*
 * test_civil.c - calendar arithmetic and RFC 3339 text, checked against known dates and
 * exhaustively against a day-by-day walk over four centuries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/civil.h"

static void test_known_days(void **state)
{
    (void)state;
    assert_int_equal(civil_days_from_ymd(1970, 1, 1), 0);
    assert_int_equal(civil_days_from_ymd(2000, 3, 1), 11017);
    assert_int_equal(civil_days_from_ymd(1969, 12, 31), -1);
    assert_int_equal(civil_weekday(0), 4);                                /* Thursday */
    assert_int_equal(civil_weekday(civil_days_from_ymd(2024, 6, 15)), 6); /* Saturday */
    assert_int_equal(civil_weekday(-1), 3);
    /* month normalisation: month 13 of 2023 is January 2024 */
    assert_int_equal(civil_days_from_ymd(2023, 13, 1), civil_days_from_ymd(2024, 1, 1));
    assert_int_equal(civil_days_in_month(2024, 2), 29);
    assert_int_equal(civil_days_in_month(2100, 2), 28);
    assert_int_equal(civil_days_in_month(2000, 2), 29);
    assert_int_equal(civil_days_in_month(2023, 4), 30);
}

static void test_walk(void **state)
{
    (void)state;
    /* every day from 1900 to 2300 round-trips and follows the previous one */
    int64_t d = civil_days_from_ymd(1900, 1, 1);
    for (int64_t y = 1900; y < 2300; y++) {
        for (int m = 1; m <= 12; m++) {
            for (int day = 1; day <= civil_days_in_month(y, m); day++, d++) {
                assert_int_equal(civil_days_from_ymd(y, m, day), d);
                int64_t yy;
                int mm, dd;
                civil_ymd_from_days(d, &yy, &mm, &dd);
                assert_true(yy == y && mm == m && dd == day);
            }
        }
    }
}

static void test_seconds(void **state)
{
    (void)state;
    struct civil_time c;
    civil_from_seconds(-1, &c);
    assert_true(c.year == 1969 && c.mon == 12 && c.mday == 31 && c.hour == 23 && c.min == 59 &&
                c.sec == 59);
    civil_from_seconds(951782400, &c); /* 2000-02-29T00:00:00Z */
    assert_true(c.year == 2000 && c.mon == 2 && c.mday == 29 && c.hour == 0);
    assert_int_equal(civil_to_seconds(&c), 951782400);
}

static void test_format(void **state)
{
    (void)state;
    char buf[CIVIL_RFC3339_MAX];
    civil_format_rfc3339(1504084940, 8 * 3600, buf);
    assert_string_equal(buf, "2017-08-30T17:22:20+08:00");
    civil_format_rfc3339(0, 0, buf);
    assert_string_equal(buf, "1970-01-01T00:00:00+00:00");
    civil_format_rfc3339(0, -(9 * 3600 + 30 * 60), buf);
    assert_string_equal(buf, "1969-12-31T14:30:00-09:30");
    civil_format_rfc3339(0, 12 * 3600 + 45 * 60, buf);
    assert_string_equal(buf, "1970-01-01T12:45:00+12:45");
}

static void test_parse(void **state)
{
    (void)state;
    int64_t t;
    struct ty_err err;
    assert_int_equal(civil_parse_rfc3339("2017-08-30T17:22:20+08:00", "from", &t, &err), 0);
    assert_int_equal(t, 1504084940);
    assert_int_equal(civil_parse_rfc3339("2017-08-30T09:22:20Z", "from", &t, &err), 0);
    assert_int_equal(t, 1504084940);
    assert_int_equal(civil_parse_rfc3339("2017-08-30t09:22:20.999z", "from", &t, &err), 0);
    assert_int_equal(t, 1504084940);
    assert_int_equal(civil_parse_rfc3339("2017-08-30 09:22:20-00:30", "from", &t, &err), 0);
    assert_int_equal(t, 1504084940 + 1800);
    static const char *const bad[][2] = {
        {"2017-08-30", "missing 'T'"},
        {"2017-08-30T09:22", "bad time of day"},
        {"2017-08-30T09:22:20", "missing UTC offset"},
        {"2017-02-30T09:22:20Z", "no such date"},
        {"2017-13-01T09:22:20Z", "no such date"},
        {"2017-08-30T24:00:00Z", "out of range"},
        {"2017-08-30T09:22:20+0800", "bad UTC offset"},
        {"2017-08-30T09:22:20Zjunk", "trailing"},
        {"2017-08-30T09:22:20.Z", "empty fraction"},
        {"yesterday", "bad date"},
        {"", "bad date"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(civil_parse_rfc3339(bad[i][0], "--from", &t, &err), TY_EINVAL);
        if (strstr(err.msg, bad[i][1]) == NULL || strstr(err.msg, "--from") == NULL)
            fail_msg("\"%s\": message \"%s\" lacks \"%s\"", bad[i][0], err.msg, bad[i][1]);
        assert_string_equal(err.field, "--from");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_days), cmocka_unit_test(test_walk),
        cmocka_unit_test(test_seconds),    cmocka_unit_test(test_format),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
