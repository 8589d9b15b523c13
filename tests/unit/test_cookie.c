/*
 * test_cookie.c - the Cookie header as the HTTP layer reads it (api/cookie.c), from
 * vectors: spacing, quotes, pairs without '=', names that merely start alike, a name given
 * twice (the same value: fine; another: ambiguous), empty values, bytes a browser would not
 * send; and the Set-Cookie value of a session.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/cookie.h"

static void test_find(void **state)
{
    (void)state;
    static const struct {
        const char *header, *want; /* want NULL: not found */
        bool ambiguous;
    } cases[] = {
        {"s=abc", "abc", false},
        {"a=1; s=abc; b=2", "abc", false},
        {"a=1;s=abc;b=2", "abc", false},
        {"  s  =  abc  ;", "abc", false},
        {"\ts=abc\t", "abc", false},
        {"s=\"abc\"", "abc", false},
        {"s=\"\"", "", false},
        {"s=", "", false},
        {"s=\"abc", "\"abc", false}, /* an unmatched quote is part of the value */
        {"s=a=b", "a=b", false},     /* the first '=' splits */
        {"ss=1; xs=2; s_=3", NULL, false},
        {"S=abc", NULL, false}, /* names are exact */
        {"s", NULL, false},     /* no '=': skipped */
        {"s; s=abc", "abc", false},
        {"=abc; s=x", "x", false},
        {"", NULL, false},
        {";;;;", NULL, false},
        {"s=1; s=1", "1", false},
        {"s=1; s=2", "1", true},
        {"s=1; s=\"1\"", "1", false},
        {"s=1; a=2; s=", "1", true},
        {"s=\xff\xfe", "\xff\xfe", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *v = NULL;
        size_t n = 0;
        bool amb = false;
        bool found = cookie_find(cases[i].header, strlen(cases[i].header), "s", &v, &n, &amb);
        if (found != (cases[i].want != NULL))
            fail_msg("case %zu (%s): found %d", i, cases[i].header, found);
        if (found && (n != strlen(cases[i].want) || memcmp(v, cases[i].want, n) != 0))
            fail_msg("case %zu (%s): got \"%.*s\", want \"%s\"", i, cases[i].header, (int)n, v,
                     cases[i].want);
        if (amb != cases[i].ambiguous)
            fail_msg("case %zu (%s): ambiguous %d", i, cases[i].header, amb);
    }
    /* the length bounds the header, not a NUL: nothing is read past it */
    const char *h = "s=abcdef";
    const char *v;
    size_t n;
    assert_true(cookie_find(h, 5, "s", &v, &n, NULL));
    assert_int_equal(n, 3);
    assert_memory_equal(v, "abc", 3);
    assert_false(cookie_find(h, 1, "s", &v, &n, NULL));
    assert_false(cookie_find(h, 0, "s", &v, &n, NULL));
}

static void test_session_cookie(void **state)
{
    (void)state;
    struct strbuf sb;
    sb_init(&sb);
    cookie_session(&sb, "tethys_session", "abc", 604800, false);
    assert_string_equal(sb_str(&sb),
                        "tethys_session=abc; Path=/; Max-Age=604800; HttpOnly; SameSite=Strict");
    sb_truncate(&sb, 0);
    cookie_session(&sb, "tethys_session", "", 0, true);
    assert_string_equal(sb_str(&sb),
                        "tethys_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure");
    sb_free(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_session_cookie),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
