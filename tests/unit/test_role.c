/*
 * test_role.c - roles on domain subtrees (core/role.c): the decision at the subtree's
 * edges ("fin" covers neither "finance" nor "fin-x", "" covers all), several grants at
 * once, the sentences of refusals, grants from JSON with every refusal naming its field,
 * the roots a list is filtered by, and which grant edits a subtree admin may make.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/role.h"

/* Grants from a compact text: "viewer:finance operator:ops admin:" ("admin:" = the tree). */
static size_t grants(const char *text, struct role_grant *out)
{
    size_t n = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", text);
    char *save = NULL;
    for (char *w = strtok_r(buf, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
        char *colon = strchr(w, ':');
        assert_non_null(colon);
        *colon = '\0';
        assert_int_equal(role_parse("role", w, &out[n].role, NULL), 0);
        snprintf(out[n].domain, sizeof out[n].domain, "%s", colon + 1);
        n++;
    }
    return n;
}

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (v == NULL)
        fail_msg("bad test JSON (%s): %s", e.text, text);
    return v;
}

/* ---- the decision --------------------------------------------------------------------- */

static void test_allows_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *grants, *need, *domain;
        bool allowed;
    } cases[] = {
        /* the subtree's edges */
        {"viewer:finance", "viewer", "finance", true},
        {"viewer:finance", "viewer", "finance/eu", true},
        {"viewer:finance", "viewer", "finance/eu/paris", true},
        {"viewer:fin", "viewer", "finance", false},
        {"viewer:finance", "viewer", "fin", false},
        {"viewer:finance", "viewer", "finance-x", false},
        {"viewer:finance", "viewer", "finance.x", false},
        {"viewer:finance", "viewer", "financeX", false},
        {"viewer:finance", "viewer", "", false},
        {"viewer:finance/eu", "viewer", "finance", false},
        {"viewer:finance/eu", "viewer", "finance/us", false},
        {"viewer:finance/eu", "viewer", "finance/eu2", false},
        /* the root covers everything */
        {"viewer:", "viewer", "", true},
        {"viewer:", "viewer", "hr", true},
        {"viewer:", "viewer", "a/b/c/d", true},
        {"viewer:", "operator", "hr", false},
        /* the roles nest */
        {"admin:finance", "viewer", "finance/eu", true},
        {"admin:finance", "operator", "finance/eu", true},
        {"admin:finance", "admin", "finance/eu", true},
        {"operator:finance", "admin", "finance", false},
        {"operator:finance", "operator", "finance", true},
        {"viewer:finance", "operator", "finance", false},
        /* several grants: the largest that covers the domain wins */
        {"viewer:finance operator:finance/eu", "operator", "finance/eu/x", true},
        {"viewer:finance operator:finance/eu", "operator", "finance/us", false},
        {"operator:finance viewer:finance/eu", "operator", "finance/eu", true},
        {"viewer:hr operator:ops", "operator", "hr", false},
        {"viewer:hr operator:ops", "operator", "ops/x", true},
        {"viewer:hr operator:ops", "viewer", "finance", false},
        {"viewer:hr admin:", "admin", "finance", true},
        /* no grants: nothing */
        {"", "viewer", "", false},
        {"", "viewer", "finance", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct role_grant g[8];
        size_t n = grants(cases[i].grants, g);
        enum role need;
        assert_int_equal(role_parse("need", cases[i].need, &need, NULL), 0);
        bool got = role_allows(g, n, need, cases[i].domain);
        if (got != cases[i].allowed)
            fail_msg("case %zu: [%s] %s on \"%s\": got %s", i, cases[i].grants, cases[i].need,
                     cases[i].domain, got ? "allowed" : "refused");
        /* role_check agrees, and refuses with TY_EPERM */
        struct ty_err err;
        ty_err_clear(&err);
        int rc = role_check(g, n, need, cases[i].domain, "user x", "doing it", &err);
        assert_int_equal(rc, cases[i].allowed ? 0 : TY_EPERM);
        if (!cases[i].allowed)
            assert_int_equal(err.code, TY_EPERM);
    }
    struct role_grant g[1];
    size_t n = grants("admin:", g);
    assert_false(role_allows(g, n, ROLE_NONE, "x")); /* nothing needs "none" */
    assert_true(role_everywhere(g, n, ROLE_ADMIN));
    n = grants("admin:finance", g);
    assert_false(role_everywhere(g, n, ROLE_VIEWER));
}

static void test_role_on(void **state)
{
    (void)state;
    struct role_grant g[4];
    size_t n = grants("viewer: operator:finance admin:finance/eu", g);
    assert_int_equal(role_on(g, n, "hr"), ROLE_VIEWER);
    assert_int_equal(role_on(g, n, "finance"), ROLE_OPERATOR);
    assert_int_equal(role_on(g, n, "finance/eu/x"), ROLE_ADMIN);
    assert_int_equal(role_on(g, n, "finance/eux"), ROLE_OPERATOR);
    assert_int_equal(role_on(g, 0, "finance"), ROLE_NONE);
}

static void test_messages(void **state)
{
    (void)state;
    static const struct {
        const char *grants, *need, *domain, *who, *doing, *msg;
    } cases[] = {
        {"viewer:finance", "operator", "hr", "user bob", "running job hr.payroll",
         "user bob is a viewer of finance: running job hr.payroll needs operator on hr"},
        {"", "viewer", "hr", "user carol", "reading job x",
         "user carol has no role: reading job x needs viewer on hr"},
        {"operator:finance", "admin", "", "token ci", "creating users",
         "token ci is an operator of finance: creating users needs admin on the whole tree"},
        {"viewer:finance operator:ops", "admin", "ops", "user bob", "editing domain ops",
         "user bob is a viewer of finance and an operator of ops: editing domain ops needs admin "
         "on ops"},
        {"viewer:a operator:b viewer:", "admin", "c", "user d", "x",
         "user d is a viewer of a, an operator of b and a viewer of the whole tree: x needs admin "
         "on c"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct role_grant g[8];
        size_t n = grants(cases[i].grants, g);
        enum role need;
        assert_int_equal(role_parse("need", cases[i].need, &need, NULL), 0);
        struct ty_err err;
        assert_int_equal(
            role_check(g, n, need, cases[i].domain, cases[i].who, cases[i].doing, &err), TY_EPERM);
        assert_string_equal(err.msg, cases[i].msg);
    }
    char buf[64];
    struct role_grant g[2];
    size_t n = grants("admin:", g);
    role_describe(g, n, buf, sizeof buf);
    assert_string_equal(buf, "is an admin of the whole tree");
    role_describe(g, 0, buf, sizeof buf);
    assert_string_equal(buf, "has no role");
    char tiny[8];
    role_describe(g, n, tiny, sizeof tiny); /* cut short, still a string */
    assert_int_equal(strlen(tiny), 7);
}

/* ---- roles and grants from text and JSON ---------------------------------------------- */

static void test_parse(void **state)
{
    (void)state;
    enum role r;
    assert_int_equal(role_parse("role", "viewer", &r, NULL), 0);
    assert_int_equal(r, ROLE_VIEWER);
    assert_int_equal(role_parse("role", "admin", &r, NULL), 0);
    assert_int_equal(r, ROLE_ADMIN);
    struct ty_err err;
    assert_int_equal(role_parse("--role", "boss", &r, &err), TY_EINVAL);
    assert_string_equal(err.field, "--role");
    assert_string_equal(err.msg, "--role: \"boss\" is not a role (viewer, operator or admin)");
    assert_int_equal(role_parse("role", "Admin", &r, &err), TY_EINVAL); /* exact words */
    assert_int_equal(role_parse("role", "none", &r, &err), TY_EINVAL);
    assert_int_equal(role_parse("role", NULL, &r, &err), TY_EINVAL);
    assert_string_equal(role_name(ROLE_OPERATOR), "operator");
    assert_string_equal(role_name(ROLE_NONE), "none");
    assert_string_equal(role_name((enum role)42), "none");
}

static void test_grants_json(void **state)
{
    (void)state;
    struct role_grant g[ROLE_GRANTS_MAX];
    size_t n;
    struct ty_err err;
    json_t *in = load("[{\"domain\": \"finance\", \"role\": \"operator\"}, {\"role\": \"viewer\"},"
                      " {\"domain\": \"hr/payroll\", \"role\": \"admin\"}]");
    assert_int_equal(role_grants_from_json(in, "grants", g, ROLE_GRANTS_MAX, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(g[0].domain, "finance");
    assert_int_equal(g[0].role, ROLE_OPERATOR);
    assert_string_equal(g[1].domain, "");
    assert_int_equal(g[1].role, ROLE_VIEWER);
    json_t *out = role_grants_to_json(g, n);
    char *text = json_dumps(out, JSON_COMPACT);
    assert_string_equal(text,
                        "[{\"domain\":\"finance\",\"role\":\"operator\"},{\"domain\":\"\","
                        "\"role\":\"viewer\"},{\"domain\":\"hr/payroll\",\"role\":\"admin\"}]");
    free(text);
    json_decref(out);
    json_decref(in);

    static const struct {
        const char *json, *field, *msg;
    } bad[] = {
        {"{}", "grants", "grants: {...} is not a list of {\"domain\": PATH, \"role\": ROLE}"},
        {"[1]", "grants[0]", "grants[0]: 1 is not an object"},
        {"[{\"role\": \"viewer\", \"domains\": \"x\"}]", "grants[0].domains", "unknown field"},
        {"[{\"domain\": 3, \"role\": \"viewer\"}]", "grants[0].domain",
         "grants[0].domain: 3 is not a domain path"},
        {"[{\"domain\": \"a//b\", \"role\": \"viewer\"}]", "grants[0].domain", "empty part"},
        {"[{\"domain\": \"/a\", \"role\": \"viewer\"}]", "grants[0].domain", "empty part"},
        {"[{\"domain\": \"a\"}]", "grants[0].role", "grants[0].role: missing"},
        {"[{\"domain\": \"a\", \"role\": \"root\"}]", "grants[0].role",
         "grants[0].role: \"root\" is not a role (viewer, operator or admin)"},
        {"[{\"domain\": \"a\", \"role\": 1}]", "grants[0].role", "1 is not a role"},
        {"[{\"domain\": \"a\", \"role\": \"viewer\"}, {\"domain\": \"a\", \"role\": \"admin\"}]",
         "grants[1].domain", "grants[1].domain: \"a\" has a grant already (grants[0])"},
        {"[{\"role\": \"viewer\"}, {\"domain\": \"\", \"role\": \"admin\"}]", "grants[1].domain",
         "the whole tree has a grant already"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        in = load(bad[i].json);
        ty_err_clear(&err);
        int rc = role_grants_from_json(in, "grants", g, ROLE_GRANTS_MAX, &n, &err);
        json_decref(in);
        if (rc != TY_EINVAL)
            fail_msg("case %zu (%s): rc %d", i, bad[i].json, rc);
        if (strcmp(err.field, bad[i].field) != 0 || strstr(err.msg, bad[i].msg) == NULL)
            fail_msg("case %zu (%s): field \"%s\" message \"%s\"", i, bad[i].json, err.field,
                     err.msg);
    }
    /* more than the room given */
    in = load("[{\"domain\": \"a\", \"role\": \"viewer\"}, {\"domain\": \"b\", \"role\": "
              "\"viewer\"}]");
    assert_int_equal(role_grants_from_json(in, "grants", g, 1, &n, &err), TY_EINVAL);
    assert_string_equal(err.msg, "grants: 2 grants; at most 1");
    json_decref(in);
}

/* ---- what lists are filtered by ------------------------------------------------------- */

static void test_roots(void **state)
{
    (void)state;
    struct role_grant g[8];
    const char *roots[8];
    size_t n = grants("viewer:finance operator:finance/eu viewer:hr admin:ops/x", g);
    size_t k = role_roots(g, n, ROLE_VIEWER, roots, 8);
    assert_int_equal(k, 3);
    assert_string_equal(roots[0], "finance");
    assert_string_equal(roots[1], "hr");
    assert_string_equal(roots[2], "ops/x");
    k = role_roots(g, n, ROLE_OPERATOR, roots, 8);
    assert_int_equal(k, 2);
    assert_string_equal(roots[0], "finance/eu");
    assert_string_equal(roots[1], "ops/x");
    n = grants("viewer:finance viewer: viewer:hr", g);
    k = role_roots(g, n, ROLE_VIEWER, roots, 8);
    assert_int_equal(k, 1);
    assert_string_equal(roots[0], "");
    n = grants("viewer:fin viewer:finance", g); /* neither holds the other */
    assert_int_equal(role_roots(g, n, ROLE_VIEWER, roots, 8), 2);
    assert_int_equal(role_roots(g, 0, ROLE_VIEWER, roots, 8), 0);
    n = grants("viewer:a viewer:b viewer:c", g);
    assert_int_equal(role_roots(g, n, ROLE_VIEWER, roots, 2), 2); /* room for two */

    n = grants("viewer:finance/eu", g);
    assert_true(role_any_within(g, n, ROLE_VIEWER, "finance"));
    assert_true(role_any_within(g, n, ROLE_VIEWER, "finance/eu/x"));
    assert_true(role_any_within(g, n, ROLE_VIEWER, ""));
    assert_false(role_any_within(g, n, ROLE_VIEWER, "finance/us"));
    assert_false(role_any_within(g, n, ROLE_VIEWER, "fin"));
    assert_false(role_any_within(g, n, ROLE_OPERATOR, "finance"));
}

/* ---- who may change whose grants ------------------------------------------------------- */

static void test_grant_edit(void **state)
{
    (void)state;
    static const struct {
        const char *editor, *old, *new_, *msg; /* msg NULL: allowed */
    } cases[] = {
        {"admin:", "viewer:hr", "admin:finance", NULL},
        {"admin:finance", "", "operator:finance/eu", NULL},
        {"admin:finance", "viewer:hr", "viewer:hr operator:finance", NULL},
        {"admin:finance", "viewer:hr operator:finance", "viewer:hr", NULL},
        {"admin:finance", "viewer:hr", "viewer:hr", NULL},
        {"admin:finance", "viewer:hr", "",
         "user alice is an admin of finance: removing the viewer grant on hr needs admin on hr"},
        {"admin:finance", "", "operator:hr",
         "user alice is an admin of finance: granting operator on hr needs admin on hr"},
        {"admin:finance", "viewer:finance", "admin:",
         "user alice is an admin of finance: granting admin on the whole tree needs admin on "
         "the whole tree"},
        {"admin:finance", "viewer:fin", "operator:fin",
         "user alice is an admin of finance: granting operator on fin needs admin on fin"},
        {"operator:finance", "", "viewer:finance",
         "user alice is an operator of finance: granting viewer on finance needs admin on "
         "finance"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct role_grant e[4], o[4], w[4];
        size_t ne = grants(cases[i].editor, e), no = grants(cases[i].old, o),
               nw = grants(cases[i].new_, w);
        struct ty_err err;
        ty_err_clear(&err);
        int rc = role_check_grant_edit(e, ne, o, no, w, nw, "user alice", &err);
        if (cases[i].msg == NULL) {
            if (rc != 0)
                fail_msg("case %zu: refused: %s", i, err.msg);
        } else {
            assert_int_equal(rc, TY_EPERM);
            assert_string_equal(err.msg, cases[i].msg);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allows_vectors), cmocka_unit_test(test_role_on),
        cmocka_unit_test(test_messages),       cmocka_unit_test(test_parse),
        cmocka_unit_test(test_grants_json),    cmocka_unit_test(test_roots),
        cmocka_unit_test(test_grant_edit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
