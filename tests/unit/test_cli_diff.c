/*
 * test_cli_diff.c - the field-level JSON diff of `tethys job diff`, from the vectors in
 * tests/unit/vectors/json_diff.txt (each case: two values and the expected lines), plus
 * the JSON form of the differences and the large-list fallback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli_diff.h"

static char *read_all(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    struct strbuf sb;
    sb_init(&sb);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
        sb_add(&sb, buf, n);
    fclose(fp);
    return sb_detach(&sb);
}

static json_t *parse(const char *line, const char *title)
{
    json_error_t e;
    json_t *v = json_loads(line, JSON_DECODE_ANY, &e);
    if (v == NULL)
        fail_msg("case \"%s\": bad JSON \"%s\": %s", title, line, e.text);
    return v;
}

static void test_vectors(void **state)
{
    (void)state;
    const char *src = getenv("TETHYS_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/unit/vectors/json_diff.txt", src ? src : ".");
    char *text = read_all(path);
    if (text == NULL)
        fail_msg("cannot read %s (set TETHYS_SOURCE_DIR)", path);
    int cases = 0;
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    while (line != NULL) {
        if (strncmp(line, "=== ", 4) != 0) {
            if (line[0] != '#' && line[0] != '\0')
                fail_msg("%s: unexpected line \"%s\" outside a case", path, line);
            line = strtok_r(NULL, "\n", &save);
            continue;
        }
        const char *title = line + 4;
        char *la = strtok_r(NULL, "\n", &save), *lb = strtok_r(NULL, "\n", &save);
        assert_non_null(la);
        assert_non_null(lb);
        json_t *a = parse(la, title), *b = parse(lb, title);
        struct strbuf want;
        sb_init(&want);
        while ((line = strtok_r(NULL, "\n", &save)) != NULL && strncmp(line, "=== ", 4) != 0) {
            if (line[0] == '#')
                continue;
            sb_adds(&want, line);
            sb_addc(&want, '\n');
        }
        json_t *d = cli_json_diff(a, b);
        assert_non_null(d);
        struct strbuf got;
        sb_init(&got);
        cli_diff_format(d, &got);
        if (strcmp(sb_str(&got), sb_str(&want)) != 0)
            fail_msg("case \"%s\":\n--- want\n%s--- got\n%s", title, sb_str(&want), sb_str(&got));
        /* the diff both ways has as many entries, adds and removes swapped */
        json_t *back = cli_json_diff(b, a);
        assert_int_equal(json_array_size(back), json_array_size(d));
        json_decref(back);
        sb_free(&got);
        sb_free(&want);
        json_decref(d);
        json_decref(a);
        json_decref(b);
        cases++;
    }
    free(text);
    assert_true(cases >= 15);
    print_message("%d diff vectors\n", cases);
}

static void test_json_form(void **state)
{
    (void)state;
    json_t *a = json_pack("{s:i, s:{s:s}}", "retries", 1, "env", "A", "x");
    json_t *b = json_pack("{s:i, s:{s:s}, s:b}", "retries", 2, "env", "B", "y", "enabled", 0);
    json_t *d = cli_json_diff(a, b);
    char *s = json_dumps(d, JSON_COMPACT);
    assert_string_equal(s, "[{\"path\":\"retries\",\"op\":\"change\",\"old\":1,\"new\":2},"
                           "{\"path\":\"env.A\",\"op\":\"remove\",\"old\":\"x\"},"
                           "{\"path\":\"env.B\",\"op\":\"add\",\"new\":\"y\"},"
                           "{\"path\":\"enabled\",\"op\":\"add\",\"new\":false}]");
    free(s);
    json_decref(d);
    d = cli_json_diff(a, a);
    assert_int_equal(json_array_size(d), 0);
    json_decref(d);
    json_decref(a);
    json_decref(b);
}

/* Lists past the alignment bound are compared position by position (and quickly). */
static void test_long_lists(void **state)
{
    (void)state;
    json_t *a = json_array(), *b = json_array();
    for (int i = 0; i < 5000; i++) {
        json_array_append_new(a, json_integer(i));
        json_array_append_new(b, json_integer(i == 4000 ? -1 : i));
    }
    json_t *d = cli_json_diff(a, b);
    assert_int_equal(json_array_size(d), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(d, 0), "path")), "[4000]");
    json_decref(d);
    json_array_insert_new(b, 0, json_integer(7)); /* misaligned: every item differs */
    d = cli_json_diff(a, b);
    assert_true(json_array_size(d) > 4000);
    json_decref(d);
    json_decref(a);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_json_form),
        cmocka_unit_test(test_long_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
