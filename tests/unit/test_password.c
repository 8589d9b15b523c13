/*
 * test_password.c - users' passwords (api/password.c): Argon2id hashes that verify only
 * their own password, with a fresh salt each time and today's limits; the rehash test for
 * a hash made with weaker limits or another algorithm; the rules of a new password (with
 * the field and the words of each refusal, never the password itself); one-time passwords
 * and random identifiers; hashes made on many threads at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "api/password.h"

static void test_hash_and_verify(void **state)
{
    (void)state;
    char a[PASSWORD_HASH_MAX], b[PASSWORD_HASH_MAX];
    const char *pw = "correct horse battery";
    assert_int_equal(password_hash(pw, strlen(pw), a, NULL), 0);
    assert_int_equal(password_hash(pw, strlen(pw), b, NULL), 0);
    assert_non_null(strstr(a, "$argon2id$v=19$m=65536,t=2,p=1$"));
    assert_string_not_equal(a, b); /* a salt of its own */
    assert_true(password_verify(a, pw, strlen(pw)));
    assert_true(password_verify(b, pw, strlen(pw)));
    assert_false(password_verify(a, "correct horse batterY", strlen(pw)));
    assert_false(password_verify(a, pw, strlen(pw) - 1));
    assert_false(password_verify(a, "", 0));
    assert_null(strstr(a, pw));
    /* bytes after a NUL count: the length is the password's */
    char with_nul[] = "abc\0def";
    assert_int_equal(password_hash(with_nul, 7, a, NULL), 0);
    assert_true(password_verify(a, with_nul, 7));
    assert_false(password_verify(a, "abc", 3));
    /* not a hash */
    assert_false(password_verify("not a hash", pw, strlen(pw)));
    assert_false(password_verify("", pw, strlen(pw)));
    assert_false(password_verify(NULL, pw, strlen(pw)));
    char long_text[PASSWORD_HASH_MAX + 10];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    assert_false(password_verify(long_text, pw, strlen(pw)));
}

static void test_needs_rehash(void **state)
{
    (void)state;
    char h[PASSWORD_HASH_MAX];
    const char *pw = "correct horse battery";
    assert_int_equal(password_hash(pw, strlen(pw), h, NULL), 0);
    assert_false(password_needs_rehash(h));
    /* weaker limits: verifies, and wants making again */
    char weak[crypto_pwhash_STRBYTES];
    assert_int_equal(crypto_pwhash_str_alg(weak, pw, strlen(pw), crypto_pwhash_OPSLIMIT_MIN,
                                           crypto_pwhash_MEMLIMIT_MIN,
                                           crypto_pwhash_ALG_ARGON2ID13),
                     0);
    assert_true(password_verify(weak, pw, strlen(pw)));
    assert_true(password_needs_rehash(weak));
    /* another algorithm (Argon2i): verifies, and wants Argon2id */
    char other[crypto_pwhash_STRBYTES];
    assert_int_equal(
        crypto_pwhash_str_alg(other, pw, strlen(pw), 3, 1 << 16, crypto_pwhash_ALG_ARGON2I13), 0);
    assert_true(password_verify(other, pw, strlen(pw)));
    assert_true(password_needs_rehash(other));
    assert_true(password_needs_rehash("garbage"));
    assert_true(password_needs_rehash(NULL));
}

static void test_check_new(void **state)
{
    (void)state;
    struct ty_err err;
    static const struct {
        const char *pw, *user, *msg; /* msg NULL: accepted */
    } cases[] = {
        {"12345678", "bob", NULL},
        {"pässwörd", "bob", NULL}, /* 8 characters in 10 bytes */
        {"日本語のパスワード", "bob", NULL},
        {"with space and ! punctuation", "bob", NULL},
        {"1234567", "bob", "new: at least 8 characters; this one has 7"},
        {"日本語", "bob", "new: at least 8 characters; this one has 3"},
        {"", "bob", "new: at least 8 characters; this one has 0"},
        {"tab\there!!", "bob", "new: control characters (tab, newline, ...) are not allowed"},
        {"line\nbreak!", "bob", "control characters"},
        {"delete\x7f"
         "char",
         "bob", "control characters"},
        {"bobthebuilder", "bobthebuilder", "new: must not be the user's name"},
        {"bobthebuilder", NULL, NULL},
        {"\xff\xfe bad utf-8", "bob", "new: not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ty_err_clear(&err);
        int rc = password_check_new("new", cases[i].pw, strlen(cases[i].pw), cases[i].user, &err);
        if (cases[i].msg == NULL) {
            if (rc != 0)
                fail_msg("case %zu refused: %s", i, err.msg);
            continue;
        }
        assert_int_equal(rc, TY_EINVAL);
        assert_string_equal(err.field, "new");
        if (strstr(err.msg, cases[i].msg) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg, cases[i].msg);
        if (cases[i].pw[0] != '\0')
            assert_null(strstr(err.msg, cases[i].pw)); /* never quoted */
    }
    char big[PASSWORD_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(password_check_new("password", big, PASSWORD_MAX + 1, "x", &err), TY_EINVAL);
    assert_string_equal(err.msg, "password: longer than 1024 bytes");
    assert_int_equal(password_check_new("password", big, PASSWORD_MAX, "x", &err), 0);
}

static void test_random(void **state)
{
    (void)state;
    static const char alphabet[] = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    char a[PASSWORD_ONE_TIME + 1], b[PASSWORD_ONE_TIME + 1];
    password_one_time(a);
    password_one_time(b);
    assert_int_equal(strlen(a), PASSWORD_ONE_TIME);
    assert_string_not_equal(a, b);
    assert_int_equal(strspn(a, alphabet), PASSWORD_ONE_TIME); /* no 0/O, 1/l/I */
    assert_int_equal(password_check_new("p", a, strlen(a), "admin", NULL), 0);
    char x[PASSWORD_RANDOM_HEX], y[PASSWORD_RANDOM_HEX];
    password_random_hex(x);
    password_random_hex(y);
    assert_int_equal(strlen(x), 64);
    assert_int_equal(strspn(x, "0123456789abcdef"), 64);
    assert_string_not_equal(x, y);
}

/* Many threads hashing and verifying at once (the gate lets PASSWORD_PARALLEL run). */
static void *hasher(void *arg)
{
    int *ok = arg;
    char pw[32], h[PASSWORD_HASH_MAX];
    snprintf(pw, sizeof pw, "password-%p", arg);
    *ok = password_hash(pw, strlen(pw), h, NULL) == 0 && password_verify(h, pw, strlen(pw)) &&
          !password_verify(h, "other", 5);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    enum { N = 10 };
    pthread_t t[N];
    int ok[N] = {0};
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hasher, &ok[i]), 0);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_true(ok[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_and_verify), cmocka_unit_test(test_needs_rehash),
        cmocka_unit_test(test_check_new),       cmocka_unit_test(test_random),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
