/*
 * test_strmap.c - the string map against a brute-force model under random puts and
 * deletes (tombstones and growth exercised).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/strmap.h"

#define N 2000

static void test_model(void **state)
{
    (void)state;
    static int model[N]; /* 0 absent, else value tag */
    static int tags[N + 1];
    struct strmap m;
    strmap_init(&m);
    uint32_t x = 12345;
    for (int step = 0; step < 200000; step++) {
        x = x * 1103515245u + 12345u;
        int k = (int)(x >> 8) % N;
        char key[16];
        snprintf(key, sizeof key, "k%d", k);
        if ((x >> 4) % 3 == 0) {
            void *v = strmap_del(&m, key);
            assert_ptr_equal(v, model[k] ? &tags[model[k]] : NULL);
            model[k] = 0;
        } else {
            int tag = 1 + (int)((x >> 12) % N);
            assert_int_equal(strmap_put(&m, key, &tags[tag]), 0);
            model[k] = tag;
        }
    }
    size_t live = 0;
    for (int k = 0; k < N; k++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", k);
        assert_ptr_equal(strmap_get(&m, key), model[k] ? &tags[model[k]] : NULL);
        live += model[k] != 0;
    }
    assert_int_equal(m.len, live);
    size_t pos = 0, seen = 0;
    const char *key;
    void *val;
    while (strmap_next(&m, &pos, &key, &val))
        seen++;
    assert_int_equal(seen, live);
    assert_null(strmap_get(&m, "absent"));
    strmap_free(&m);
    assert_null(strmap_get(&m, "k1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_model)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
