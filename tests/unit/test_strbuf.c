/*
 * test_strbuf.c - the string builder: growth, formatting, fixed buffers that refuse to
 * overflow and say so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/strbuf.h"

static void test_grow(void **state)
{
    (void)state;
    struct strbuf sb;
    sb_init(&sb);
    assert_string_equal(sb_str(&sb), "");
    for (int i = 0; i < 1000; i++)
        sb_addf(&sb, "%d,", i % 10);
    assert_int_equal(sb.len, 2000);
    assert_false(sb_failed(&sb));
    assert_int_equal(strncmp(sb_str(&sb), "0,1,2,", 6), 0);
    sb_truncate(&sb, 3);
    assert_string_equal(sb_str(&sb), "0,1");
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sb_addf(&sb, "[%s]", big); /* longer than the formatting fast path */
    assert_int_equal(sb.len, 3 + 601);
    assert_int_equal(sb_str(&sb)[sb.len - 1], ']');
    char *s = sb_detach(&sb);
    assert_int_equal(strlen(s), 604);
    free(s);
    assert_int_equal(sb.len, 0);
    sb_free(&sb);
}

static void test_fixed(void **state)
{
    (void)state;
    char buf[8];
    struct strbuf sb;
    sb_init_fixed(&sb, buf, sizeof buf);
    sb_adds(&sb, "abc");
    sb_addc(&sb, 'd');
    assert_false(sb_failed(&sb));
    assert_string_equal(buf, "abcd");
    sb_adds(&sb, "efghij"); /* does not fit: truncated, NUL-terminated, marked failed */
    assert_true(sb_failed(&sb));
    assert_string_equal(buf, "abcdefg");
    sb_free(&sb);
    sb_addf(&sb, "%s-%d", "long text here", 12345);
    assert_true(sb_failed(&sb));
    assert_int_equal(strlen(buf), 7);
    assert_null(sb_detach(&sb));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_grow), cmocka_unit_test(test_fixed)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
