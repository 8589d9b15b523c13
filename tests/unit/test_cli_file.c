/*
 * test_cli_file.c - definitions from YAML and JSON: the YAML 1.2 core-schema typing of
 * scalars, structure, everything refused (with line and column), and loading files.
 * Data-driven: each vector is YAML in and the JSON expected, or the error message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "cli/cli_file.h"

struct ok_vector {
    const char *yaml;
    const char *json; /* the expected value, as JSON text */
};

static const struct ok_vector ok_vectors[] = {
    /* a job as people write it */
    {"name: nightly\nschedule: \"0 0 2 * * ?\"\ntime_zone: Asia/Shanghai\nshards: 4\n"
     "enabled: true\n",
     "{\"name\":\"nightly\",\"schedule\":\"0 0 2 * * ?\",\"time_zone\":\"Asia/Shanghai\","
     "\"shards\":4,\"enabled\":true}"},
    /* integers: decimal with sign, hex, octal; the core schema reads 007 as 7 */
    {"a: 123\nb: -4\nc: +5\nd: 0x1F\ne: 0o17\nf: 0\ng: 007\n",
     "{\"a\":123,\"b\":-4,\"c\":5,\"d\":31,\"e\":15,\"f\":0,\"g\":7}"},
    {"max: 9223372036854775807\nmin: -9223372036854775808\n",
     "{\"max\":9223372036854775807,\"min\":-9223372036854775808}"},
    /* floats */
    {"a: 1.5\nb: 2e3\nc: .5\nd: -1.25e-2\ne: 1.\nf: +0.5E+1\n",
     "{\"a\":1.5,\"b\":2000.0,\"c\":0.5,\"d\":-0.0125,\"e\":1.0,\"f\":5.0}"},
    /* null: the word in three spellings, ~, and nothing at all */
    {"a: null\nb: ~\nc:\nd: Null\ne: NULL\n",
     "{\"a\":null,\"b\":null,\"c\":null,\"d\":null,\"e\":null}"},
    {"a: true\nb: True\nc: TRUE\nd: false\ne: False\nf: FALSE\n",
     "{\"a\":true,\"b\":true,\"c\":true,\"d\":false,\"e\":false,\"f\":false}"},
    /* YAML 1.1 booleans and sexagesimals are strings in 1.2 (the "Norway problem") */
    {"a: yes\nb: no\nc: on\nd: off\ncountry: NO\nt: 08:30\ny: y\n",
     "{\"a\":\"yes\",\"b\":\"no\",\"c\":\"on\",\"d\":\"off\",\"country\":\"NO\",\"t\":\"08:30\","
     "\"y\":\"y\"}"},
    /* things that merely look numeric stay strings */
    {"a: 1_000\nb: 0x\nc: 1e\nd: .\ne: 1.2.3\nf: 2026-01-01\ng: 0o8\nh: --1\ni: 12abc\n",
     "{\"a\":\"1_000\",\"b\":\"0x\",\"c\":\"1e\",\"d\":\".\",\"e\":\"1.2.3\",\"f\":\"2026-01-01\","
     "\"g\":\"0o8\",\"h\":\"--1\",\"i\":\"12abc\"}"},
    /* quoted scalars are strings, whatever they say */
    {"a: \"123\"\nb: 'true'\nc: \"null\"\nd: ''\ne: \"\"\nf: '~'\n",
     "{\"a\":\"123\",\"b\":\"true\",\"c\":\"null\",\"d\":\"\",\"e\":\"\",\"f\":\"~\"}"},
    /* keys are always strings */
    {"1: a\ntrue: b\nnull: c\n\"q\": d\n",
     "{\"1\":\"a\",\"true\":\"b\",\"null\":\"c\",\"q\":\"d\"}"},
    /* nesting */
    {"env:\n  A: 1\n  B: x\nlist:\n  - 1\n  - two\n  - {k: v}\n  - [a, b]\n  -\n    - deep\n",
     "{\"env\":{\"A\":1,\"B\":\"x\"},\"list\":[1,\"two\",{\"k\":\"v\"},[\"a\",\"b\"],[\"deep\"]]}"},
    {"pause_windows:\n  - from: 2026-02-16\n    to: 2026-02-20\n  - daily: \"23:00-01:00\"\n",
     "{\"pause_windows\":[{\"from\":\"2026-02-16\",\"to\":\"2026-02-20\"},"
     "{\"daily\":\"23:00-01:00\"}]}"},
    {"empty_map: {}\nempty_list: []\n", "{\"empty_map\":{},\"empty_list\":[]}"},
    /* block scalars: literal keeps newlines, folded joins lines; both are strings */
    {"command: |\n  echo one\n  echo two\nfolded: >\n  a\n  b\nnum: |\n  42\n",
     "{\"command\":\"echo one\\necho two\\n\",\"folded\":\"a b\\n\",\"num\":\"42\\n\"}"},
    /* strings with colons, hashes and spaces */
    {"url: http://x:80/a#frag\ncmd: echo a # comment\ns: a b  c\n",
     "{\"url\":\"http://x:80/a#frag\",\"cmd\":\"echo a\",\"s\":\"a b  c\"}"},
    /* the standard tags */
    {"a: !!str 123\nb: !!int \"42\"\nc: !!float 3\nd: !!bool \"true\"\ne: !!null ''\n"
     "f: !!str\ng: !!float \"1.5\"\n",
     "{\"a\":\"123\",\"b\":42,\"c\":3.0,\"d\":true,\"e\":null,\"f\":\"\",\"g\":1.5}"},
    {"a: !!map {b: 1}\nc: !!seq [1]\n", "{\"a\":{\"b\":1},\"c\":[1]}"},
    /* Unicode, escapes */
    {"name: 日本の仕事\ne: \"caf\\u00e9 \\t tab\"\n",
     "{\"name\":\"日本の仕事\",\"e\":\"café \\t tab\"}"},
    /* JSON is (almost always) YAML too */
    {"{\"a\": 1, \"b\": [true, null, \"x\"], \"c\": {\"d\": 1.5}}",
     "{\"a\":1,\"b\":[true,null,\"x\"],\"c\":{\"d\":1.5}}"},
    /* document markers and comments */
    {"%YAML 1.2\n---\n# a comment\na: 1 # trailing\n...\n", "{\"a\":1}"},
    {"\xEF\xBB\xBF"
     "a: 1\n",
     "{\"a\":1}"}, /* a byte-order mark */
    /* any top-level value converts (cli_file_load is the one that wants a mapping) */
    {"42\n", "42"},
    {"- a\n- b\n", "[\"a\",\"b\"]"},
    {"---\n", "null"},
};

struct bad_vector {
    const char *yaml;
    size_t len;      /* 0: strlen */
    const char *msg; /* the whole message, or its start when it ends in '*' */
};

static const struct bad_vector bad_vectors[] = {
    {"a: 1\nb: 2\na: 3\n", 0, "line 3, column 1: duplicate key \"a\""},
    {"x:\n  a: 1\n  \"a\": 2\n", 0, "line 3, column 3: duplicate key \"a\""},
    {"base: &b 1\nother: *b\n", 0,
     "line 1, column 7: anchors (&b) are not supported: write each value out where it is used"},
    {"a: *x\n", 0, "line 1, column 4: aliases (*x) are not supported: write the value out in full"},
    {"a: &m\n  b: 1\n", 0,
     "line 1, column 4: anchors (&m) are not supported: write each value out where it is used"},
    {"a: &l [1]\n", 0,
     "line 1, column 4: anchors (&l) are not supported: write each value out where it is used"},
    {"<<: *base\nb: 1\n", 0,
     "line 1, column 5: aliases (*base) are not supported: write the value out in full"},
    {"? [a, b]\n: 1\n", 0,
     "line 1, column 3: a mapping key must be a plain value, not a mapping or a list"},
    {"? {a: 1}\n: 1\n", 0,
     "line 1, column 3: a mapping key must be a plain value, not a mapping or a list"},
    {"a: 1\n---\nb: 2\n", 0,
     "line 2, column 1: a second document (---): a file holds one definition"},
    {"a: .inf\n", 0,
     "line 1, column 4: .inf cannot be written in JSON (no infinities or NaN); quote it for a "
     "string"},
    {"a: -.Inf\n", 0, "line 1, column 4: -.Inf cannot be written in JSON*"},
    {"a: .nan\n", 0, "line 1, column 4: .nan cannot be written in JSON*"},
    {"a: 9223372036854775808\n", 0,
     "line 1, column 4: the integer 9223372036854775808 is out of range "
     "(-9223372036854775808 to 9223372036854775807)"},
    {"a: -9223372036854775809\n", 0, "line 1, column 4: the integer -9223372036854775809 is out*"},
    {"a: 0x10000000000000000\n", 0, "line 1, column 4: the integer 0x10000000000000000 is out*"},
    {"a: 1e999\n", 0, "line 1, column 4: the number 1e999 is too large"},
    {"a: !custom x\n", 0,
     "line 1, column 4: tag !custom is not supported (only !!str, !!int, !!float, !!bool, "
     "!!null)"},
    {"a: !!binary aGk=\n", 0, "line 1, column 4: tag tag:yaml.org,2002:binary is not supported*"},
    {"a: !!int abc\n", 0, "line 1, column 4: \"abc\" is not a valid !!int"},
    {"a: !!bool yes\n", 0, "line 1, column 4: \"yes\" is not a valid !!bool"},
    {"a: !!null x\n", 0, "line 1, column 4: \"x\" is not a valid !!null"},
    {"a: !!seq {b: 1}\n", 0, "line 1, column 4: tag tag:yaml.org,2002:seq is not supported here"},
    {"a: \"x\\0y\"\n", 0, "line 1, column 4: NUL characters are not allowed in values"},
    {"\"k\\0\": 1\n", 0, "line 1, column 1: NUL characters are not allowed in keys"},
    {"", 0, "the file is empty"},
    {"# only a comment\n\n", 0, "the file is empty"},
    {"a: \xff\n", 0, "byte 4: invalid leading UTF-8 octet"},
    {"a: \x01\n", 0, "byte 4: control characters are not allowed"},
    {"a: b\0c\n", 6, "byte 5: control characters are not allowed"},
    {"a:\n\tb: 1\n", 0, "line 2, column 1: found character that cannot start any token*"},
    {"a: 1\n b: 2\n", 0, "line 2, column 3: mapping values are not allowed in this context"},
    {"a: \"abc\n", 0,
     "line 2, column 1: found unexpected end of stream (while scanning a quoted scalar at line "
     "1, column 4)"},
    {"a: [1, 2\n", 0, "line 2, column 1: did not find expected ',' or ']'*"},
    {"- a\nb: 1\n", 0, "line 2, column 1: did not find expected '-' indicator*"},
};

static void check_message(const char *got, const char *want, const char *input)
{
    size_t n = strlen(want);
    bool prefix = n > 0 && want[n - 1] == '*';
    if (prefix ? strncmp(got, want, n - 1) != 0 : strcmp(got, want) != 0)
        fail_msg("input %s\n  got:  %s\n  want: %s", input, got, want);
}

static void test_ok_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ok_vectors / sizeof ok_vectors[0]; i++) {
        const struct ok_vector *v = &ok_vectors[i];
        json_t *got = NULL;
        struct ty_err err;
        ty_err_clear(&err);
        if (cli_yaml_to_json(v->yaml, strlen(v->yaml), &got, &err) != 0)
            fail_msg("vector %zu: %s: %s", i, v->yaml, err.msg);
        json_t *want = json_loads(v->json, JSON_DECODE_ANY, NULL);
        assert_non_null(want);
        if (!json_equal(got, want)) {
            char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
            fail_msg("vector %zu: %s\n  got:  %s\n  want: %s", i, v->yaml, g, v->json);
        }
        /* integers stay integers, floats floats: json_equal would not tell 2 from 2.0 */
        char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
        char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
        if (strcmp(g, w) != 0)
            fail_msg("vector %zu: %s\n  got:  %s\n  want: %s", i, v->yaml, g, w);
        free(g);
        free(w);
        json_decref(got);
        json_decref(want);
    }
}

static void test_bad_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_vectors / sizeof bad_vectors[0]; i++) {
        const struct bad_vector *v = &bad_vectors[i];
        json_t *got = (json_t *)1;
        struct ty_err err;
        ty_err_clear(&err);
        size_t len = v->len ? v->len : strlen(v->yaml);
        int rc = cli_yaml_to_json(v->yaml, len, &got, &err);
        if (rc != TY_EINVAL)
            fail_msg("vector %zu (%s): rc %d, want TY_EINVAL", i, v->yaml, rc);
        assert_null(got);
        assert_int_equal(err.code, TY_EINVAL);
        check_message(err.msg, v->msg, v->yaml);
    }
}

static void test_error_position(void **state)
{
    (void)state;
    json_t *got;
    struct ty_err err;
    const char *y = "name: a\nshards: 2\nname: b\n";
    assert_int_equal(cli_yaml_to_json(y, strlen(y), &got, &err), TY_EINVAL);
    assert_int_equal(err.pos, 18); /* the byte offset of the second "name" */
    assert_int_equal(strncmp(y + err.pos, "name", 4), 0);
}

static void test_depth(void **state)
{
    (void)state;
    char deep[200];
    size_t n = 0;
    for (int i = 0; i < CLI_YAML_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i < CLI_YAML_DEPTH; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    json_t *got;
    struct ty_err err;
    assert_int_equal(cli_yaml_to_json(deep, n, &got, &err), 0); /* exactly the limit */
    json_decref(got);
    memmove(deep + 1, deep, n);
    deep[0] = '[';
    deep[n + 1] = ']';
    deep[n + 2] = '\0';
    assert_int_equal(cli_yaml_to_json(deep, n + 2, &got, &err), TY_EINVAL);
    assert_string_equal(err.msg, "line 1, column 65: nested more than 64 levels deep");
}

static void test_json_parse(void **state)
{
    (void)state;
    json_t *got;
    struct ty_err err;
    const char *j = "{\"a\": 1,\n \"b\": }";
    assert_int_equal(cli_json_parse(j, strlen(j), &got, &err), TY_EINVAL);
    check_message(err.msg, "line 2, column 7: unexpected token near '}'", j);
    j = "{\"a\": 1, \"a\": 2}";
    assert_int_equal(cli_json_parse(j, strlen(j), &got, &err), TY_EINVAL);
    check_message(err.msg, "line 1, column 12: duplicate object key near '\"a\"'*", j);
    j = "[1, 2.0]";
    assert_int_equal(cli_json_parse(j, strlen(j), &got, &err), 0);
    assert_true(json_is_integer(json_array_get(got, 0)));
    assert_true(json_is_real(json_array_get(got, 1)));
    json_decref(got);
}

/* ---- files ---------------------------------------------------------------------------------- */

static char dir[64];

static const char *write_tmp(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_file_load(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tethys-file-XXXXXX");
    assert_non_null(mkdtemp(dir));
    json_t *v;
    struct ty_err err;
    char want[256];

    const char *p = write_tmp("job.yaml", "name: nightly\nshards: 2\n");
    assert_int_equal(cli_file_load(p, &v, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(v, "shards")), 2);
    json_decref(v);

    p = write_tmp("job.json", "{\"name\": \"nightly\",\n \"shards\": }\n");
    assert_int_equal(cli_file_load(p, &v, &err), TY_EINVAL);
    snprintf(want, sizeof want, "%s: line 2, column 12: unexpected token near '}'", p);
    assert_string_equal(err.msg, want);
    assert_string_equal(err.field, "file");
    assert_null(v);

    /* no extension, but it starts like JSON: read as JSON (duplicates refused) */
    p = write_tmp("job", "  {\"a\": 1, \"a\": 2}");
    assert_int_equal(cli_file_load(p, &v, &err), TY_EINVAL);
    assert_non_null(strstr(err.msg, "duplicate object key"));

    /* a .json file with YAML inside is an error, not silently YAML */
    p = write_tmp("yaml.json", "name: x\n");
    assert_int_equal(cli_file_load(p, &v, &err), TY_EINVAL);

    p = write_tmp("job.yml", "name: a\nname: b\n");
    assert_int_equal(cli_file_load(p, &v, &err), TY_EINVAL);
    snprintf(want, sizeof want, "%s: line 2, column 1: duplicate key \"name\"", p);
    assert_string_equal(err.msg, want);
    assert_int_equal(err.pos, 8);

    p = write_tmp("list.yaml", "- name: a\n- name: b\n");
    assert_int_equal(cli_file_load(p, &v, &err), TY_EINVAL);
    snprintf(want, sizeof want, "%s: expected a mapping of fields (name: value), got a list", p);
    assert_string_equal(err.msg, want);

    p = write_tmp("scalar.yaml", "just text\n");
    assert_int_equal(cli_file_load(p, &v, &err), TY_EINVAL);
    snprintf(want, sizeof want, "%s: expected a mapping of fields (name: value), got a string", p);
    assert_string_equal(err.msg, want);

    p = write_tmp("empty.yaml", "");
    assert_int_equal(cli_file_load(p, &v, &err), TY_EINVAL);
    snprintf(want, sizeof want, "%s: the file is empty", p);
    assert_string_equal(err.msg, want);

    char missing[128];
    snprintf(missing, sizeof missing, "%s/missing.yaml", dir);
    assert_int_equal(cli_file_load(missing, &v, &err), TY_EIO);
    snprintf(want, sizeof want, "%s: No such file or directory", missing);
    assert_string_equal(err.msg, want);

    assert_int_equal(cli_file_load(dir, &v, &err), TY_EIO); /* a directory */

    /* too large */
    char big[128];
    snprintf(big, sizeof big, "%s/big.yaml", dir);
    FILE *f = fopen(big, "w");
    for (size_t i = 0; i < CLI_FILE_MAX / 16 + 2; i++)
        fputs("# padding line.\n", f);
    fclose(f);
    assert_int_equal(cli_file_load(big, &v, &err), TY_EINVAL);
    snprintf(want, sizeof want, "%s: larger than %zu bytes", big, CLI_FILE_MAX);
    assert_string_equal(err.msg, want);
    /* a file of definitions may be larger: apply -f of a million jobs */
    char many[128];
    snprintf(many, sizeof many, "%s/many.json", dir);
    f = fopen(many, "w");
    fputs("[", f);
    size_t n_jobs = CLI_FILE_MAX / 30 + 1; /* 34 bytes each: more than CLI_FILE_MAX */
    for (size_t i = 0; i < n_jobs; i++)
        fprintf(f, "%s{\"name\": \"job-%08zu\", \"a\": 1}", i ? "," : "", i);
    fputs("]\n", f);
    fclose(f);
    assert_int_equal(cli_file_load_list(many, &v, &err), 0);
    assert_int_equal(json_array_size(v), n_jobs);
    json_decref(v);
    assert_int_equal(cli_file_load(many, &v, &err), TY_EINVAL); /* not as one definition */

    /* "-" is standard input, named so in messages */
    p = write_tmp("stdin.yaml", "name: a\nname: b\n");
    int saved = dup(0);
    FILE *in = fopen(p, "r");
    dup2(fileno(in), 0);
    assert_int_equal(cli_file_load("-", &v, &err), TY_EINVAL);
    assert_string_equal(err.msg, "standard input: line 2, column 1: duplicate key \"name\"");
    fclose(in);
    p = write_tmp("stdin.json", "{\"name\": \"x\"}");
    in = fopen(p, "r");
    dup2(fileno(in), 0);
    assert_int_equal(cli_file_load("-", &v, &err), 0);
    assert_string_equal(json_string_value(json_object_get(v, "name")), "x");
    json_decref(v);
    fclose(in);
    dup2(saved, 0);
    close(saved);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Lists of definitions: one mapping, or a list of mappings; anything else is named. */
static void test_file_load_list(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tethys-file-XXXXXX");
    assert_non_null(mkdtemp(dir));
    json_t *v;
    struct ty_err err;
    char want[256];

    const char *p = write_tmp("one.yaml", "name: a\ncommand: x\n");
    assert_int_equal(cli_file_load_list(p, &v, &err), 0);
    assert_int_equal(json_array_size(v), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "name")), "a");
    json_decref(v);

    p = write_tmp("two.yaml", "- name: a\n  command: x\n- name: b\n  command: y\n");
    assert_int_equal(cli_file_load_list(p, &v, &err), 0);
    assert_int_equal(json_array_size(v), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(v, 1), "name")), "b");
    json_decref(v);

    p = write_tmp("two.json", "[{\"name\": \"a\"}, {\"name\": \"b\"}]");
    assert_int_equal(cli_file_load_list(p, &v, &err), 0);
    assert_int_equal(json_array_size(v), 2);
    json_decref(v);

    p = write_tmp("none.json", "[]");
    assert_int_equal(cli_file_load_list(p, &v, &err), 0);
    assert_int_equal(json_array_size(v), 0);
    json_decref(v);

    p = write_tmp("mixed.yaml", "- name: a\n- just text\n");
    assert_int_equal(cli_file_load_list(p, &v, &err), TY_EINVAL);
    snprintf(want, sizeof want,
             "%s: item 2: expected a mapping of fields (name: value), got a string", p);
    assert_string_equal(err.msg, want);
    assert_null(v);

    p = write_tmp("scalar.json", "42");
    assert_int_equal(cli_file_load_list(p, &v, &err), TY_EINVAL);
    snprintf(want, sizeof want,
             "%s: expected a mapping of fields (name: value) or a list of them, got a number", p);
    assert_string_equal(err.msg, want);

    p = write_tmp("dup.yaml", "- name: a\n  name: b\n");
    assert_int_equal(cli_file_load_list(p, &v, &err), TY_EINVAL);
    snprintf(want, sizeof want, "%s: line 2, column 3: duplicate key \"name\"", p);
    assert_string_equal(err.msg, want);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* YAML written for people: the exact text of a job list, and of each quoting decision. */
static void test_yaml_write_text(void **state)
{
    (void)state;
    static char long_key_json[200], long_key_yaml[200];
    char k[131];
    memset(k, 'k', 130);
    k[130] = '\0';
    snprintf(long_key_json, sizeof long_key_json, "{\"%s\": {\"a\": 1}, \"short\": [1]}", k);
    snprintf(long_key_yaml, sizeof long_key_yaml, "? %s\n: a: 1\nshort:\n- 1\n", k);
    const struct {
        const char *json;
        const char *yaml;
    } cases[] = {
        {"[{\"name\": \"nightly\", \"schedule\": \"0 30 2 * * ?\", \"time_zone\": "
         "\"Asia/Shanghai\","
         " \"command\": \"echo one\\necho two\\n\", \"env\": {\"A\": \"500\", \"B\": \"x y\"},"
         " \"shards\": 4, \"retry_backoff_factor\": 2.0, \"enabled\": true, \"workdir\": null,"
         " \"downstream\": [], \"calendars\": {\"skip\": [\"cn-holidays\"], \"only\": []},"
         " \"pause_windows\": [{\"daily\": [\"12:00\", \"13:30\"]}],"
         " \"shard_params\": {\"0\": \"beijing\"}},"
         " {\"name\": \"b\", \"command\": \"no newline\\nat the end\"}]",
         "- name: nightly\n"
         "  schedule: 0 30 2 * * ?\n"
         "  time_zone: Asia/Shanghai\n"
         "  command: |\n"
         "    echo one\n"
         "    echo two\n"
         "  env:\n"
         "    A: '500'\n"
         "    B: x y\n"
         "  shards: 4\n"
         "  retry_backoff_factor: 2.0\n"
         "  enabled: true\n"
         "  workdir: null\n"
         "  downstream: []\n"
         "  calendars:\n"
         "    skip:\n"
         "    - cn-holidays\n"
         "    only: []\n"
         "  pause_windows:\n"
         "  - daily:\n"
         "    - '12:00'\n"
         "    - '13:30'\n"
         "  shard_params:\n"
         "    '0': beijing\n"
         "- name: b\n"
         "  command: |-\n"
         "    no newline\n"
         "    at the end\n"},
        {"{}", "{}\n"},
        {"[]", "[]\n"},
        {"[[1, [2]], []]", "- - 1\n  - - 2\n- []\n"},
        /* quoted: what a 1.2 or a 1.1 reader would type, what plain text cannot carry */
        {"{\"yes\": \"no\", \"n\": \"1.5\", \"date\": \"2026-01-01\", \"at\": \"12:30\","
         " \"null\": \"~\", \"empty\": \"\", \"hash\": \"a #b\", \"colon\": \"a: b\","
         " \"tab\": \"a\\tb\", \"quote\": \"it's\"}",
         "'yes': 'no'\n"
         "'n': '1.5'\n"
         "date: '2026-01-01'\n"
         "at: '12:30'\n"
         "'null': '~'\n"
         "empty: ''\n"
         "hash: 'a #b'\n"
         "colon: 'a: b'\n"
         "tab: \"a\\tb\"\n"
         "quote: it's\n"},
        /* multi-line: a literal block, with the indentation and chomping that keep it exact;
         * as a key, double-quoted and explicit */
        {"{\"a\": \"  indented\\nline\", \"b\": \"x\\n\\n\", \"multi\\nkey\": 1}",
         "a: |2-\n"
         "    indented\n"
         "  line\n"
         "b: |+\n"
         "  x\n"
         "\n"
         "? \"multi\\nkey\"\n"
         ": 1\n"
         "...\n"}, /* the emitter ends a document that had a |+ block explicitly */
        /* a key past 128 bytes is an explicit key */
        {long_key_json, long_key_yaml},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *v = json_loads(cases[i].json, 0, NULL);
        assert_non_null(v);
        struct strbuf sb;
        sb_init(&sb);
        assert_int_equal(cli_yaml_write(v, &sb), 0);
        assert_string_equal(sb_str(&sb), cases[i].yaml);
        sb_free(&sb);
        json_decref(v);
    }
}

/* Whatever a value holds, the YAML written for it reads back as the same value. */
static void test_yaml_write_round_trip(void **state)
{
    (void)state;
    static const char *const strings[] = {
        "",
        " ",
        "plain",
        "Asia/Shanghai",
        "a-b_c.d",
        "yes",
        "No",
        "ON",
        "y",
        "n",
        "true",
        "False",
        "null",
        "~",
        "NULL",
        "123",
        "-4",
        "0x1F",
        "0o17",
        "1.5",
        "1e3",
        ".inf",
        ".NaN",
        "1_000",
        "2026-01-01",
        "12:00",
        "08:30",
        "a: b",
        "a #b",
        "#x",
        "- x",
        "-x",
        "[x]",
        "{x}",
        "x,y",
        "&a",
        "*a",
        "!tag",
        "|",
        ">",
        "'q'",
        "\"dq\"",
        "%x",
        "@x",
        "`x`",
        "?x",
        "x?",
        "trailing ",
        " leading",
        "tab\there",
        "back\\slash",
        "caf\xc3\xa9",
        "\xe6\x97\xa5\xe6\x9c\xac",
        "del\x7f",
        "c1\xc2\x85nel",
        "ls\xe2\x80\xa8",
        "bom\xef\xbb\xbf",
        "ctl\x01\x1f",
        "cr\rlf",
        "one\ntwo",
        "one\ntwo\n",
        "one\ntwo\n\n",
        "one\n\ntwo",
        "\nleading newline",
        " indented\nblock",
        "x\n  indented second\n",
        "x\n   \ny\n",
        "trailing spaces  \nnext  \n",
        "x\n\n\n",
        "a\tb\nc\td\n",
        "\n",
        "\n\n",
        "x\r\ny\n",
        "printf '%s\\n' 'a' | (cat # c\n)",
        "0 30 2 * * ?",
        "@daily",
        "*/5 * * * MON-FRI",
        "--- x",
        "...",
        "---",
        "= x",
        "x=y",
        "key:",
        ":key",
        /* YAML 1.1's other types (quoted for those readers) */
        "0b101",
        "1:20",
        "190:20:30",
        "2026-01-01T10:00:00Z",
        "2026-01-01 10:00:00 +8",
        "<<",
        "=",
        "Y",
        "OFF",
        "+.5",
        "-.inf",
        /* indicators alone and at the start */
        "#",
        "-",
        "?",
        ":",
        "- ",
        "? x",
        ": x",
        "{",
        "]",
        ",",
        "!",
        "|-",
        ">+",
        "'",
        "\"",
        "\\",
        /* what a literal block cannot carry: tabs, spaces before a break, lone breaks */
        "\t",
        "a\tb\nc\n",
        "x \ny",
        " \n",
        "\t\n",
        "line\t\nnext",
        "ps\xe2\x80\xa9",
        "x\n\xc2\x85",
        "\n\n\n",
        "   ",
    };
    json_t *v = json_array();
    json_t *obj = json_object();
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        json_array_append_new(v, json_string(strings[i]));
        char key[32];
        snprintf(key, sizeof key, "k%zu", i);
        json_object_set_new(obj, key, json_string(strings[i]));
        json_object_set_new(obj, strings[i], json_integer((json_int_t)i)); /* as keys too */
    }
    /* long lines (no folding, which would have to keep every space exactly), as values
     * and as keys */
    char long_words[1500];
    for (size_t i = 0; i + 1 < sizeof long_words; i++)
        long_words[i] = i % 7 == 6 ? ' ' : (i % 50 == 49 ? '\n' : 'w');
    long_words[sizeof long_words - 1] = '\0';
    json_array_append_new(v, json_string(long_words));
    json_object_set_new(obj, long_words, json_string(long_words));
    long_words[200] = '\0'; /* one line of words and spaces, past the 128 of a simple key */
    for (size_t i = 0; i < 200; i++)
        if (long_words[i] == '\n')
            long_words[i] = ' ';
    json_array_append_new(v, json_string(long_words));
    json_object_set_new(obj, long_words, json_string(long_words));
    json_array_append_new(v, obj);
    json_array_append_new(v, json_pack("{s:f, s:f, s:f, s:f, s:I, s:I, s:b, s:n}", "a", 2.0, "b",
                                       0.1, "c", -1.5e-7, "d", 1e300, "e", (json_int_t)INT64_MAX,
                                       "f", (json_int_t)INT64_MIN, "g", 0, "h"));
    json_array_append_new(v, json_pack("[[],{},[[]],[{}],{s:[]}]", "x"));
    /* keys past a reader's 1024-character look-ahead for ':' (found by fuzz_defs), with
     * every kind of value after them, at the top and inside a sequence item */
    char long_plain[2000], long_escaped[400];
    memset(long_plain, 'k', sizeof long_plain - 1);
    long_plain[sizeof long_plain - 1] = '\0';
    for (size_t i = 0; i + 1 < sizeof long_escaped; i++)
        long_escaped[i] = i % 2 ? '\x7f' : 'e'; /* each \x7f is written as 6 bytes */
    long_escaped[sizeof long_escaped - 1] = '\0';
    json_t *values = json_pack("[i, s, {s:i}, [i,i], s, {}, [], n]", 1, "scalar", "nested", 1, 1, 2,
                               "multi\nline\n");
    json_t *long_keys = json_object();
    for (size_t i = 0; i < json_array_size(values); i++) {
        for (int esc = 0; esc < 2; esc++) {
            char key[sizeof long_plain + 24];
            snprintf(key, sizeof key, "%zu%s", i, esc ? long_escaped : long_plain);
            json_object_set(long_keys, key, json_array_get(values, i));
        }
    }
    json_decref(values);
    json_object_set_new(long_keys, "short", json_integer(3));
    json_array_append(v, long_keys);
    json_array_append_new(v, json_pack("[o]", long_keys));
    json_decref(long_keys);
    for (int top = 0; top < 2; top++) {
        const json_t *val = top == 0 ? v : obj;
        struct strbuf sb;
        sb_init(&sb);
        assert_int_equal(cli_yaml_write(val, &sb), 0);
        json_t *back = NULL;
        struct ty_err err;
        ty_err_clear(&err);
        if (cli_yaml_to_json(sb_str(&sb), sb.len, &back, &err) != 0)
            fail_msg("%s\n--- not read back: %s", sb_str(&sb), err.msg);
        if (!json_equal(val, back)) {
            size_t i;
            const json_t *e;
            json_array_foreach(val, i, e)
            {
                if (!json_equal(e, json_array_get(back, i)))
                    fail_msg("item %zu differs; the YAML:\n%s", i, sb_str(&sb));
            }
            fail_msg("not equal after the round trip:\n%s", sb_str(&sb));
        }
        json_decref(back);
        sb_free(&sb);
    }
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok_vectors),
        cmocka_unit_test(test_bad_vectors),
        cmocka_unit_test(test_error_position),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_json_parse),
        cmocka_unit_test(test_file_load),
        cmocka_unit_test(test_file_load_list),
        cmocka_unit_test(test_yaml_write_text),
        cmocka_unit_test(test_yaml_write_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
