/*
 * cli_user.c - `tethys user add|list|passwd|rm|grant|ungrant|unlock`: the people who sign
 * in to the console, over /api/v1/users; and the --role/--domain options `tethys token
 * create` shares with them.
 *
 * Passwords are read from the terminal without echo (twice, to catch a typo), or from one
 * line of standard input with --password-stdin (for scripts; never from the command line,
 * where `ps` and the shell's history would show it).  `add --generate` lets the server make
 * a one-time password, printed once.  A password set here - a new user's, or a reset -
 * must be changed by its user at the next sign-in.
 *
 * Roles: `--role R` on each `--domain D` (the whole tree without --domain); several --role
 * pair with as many --domain, in order.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "../core/role.h"
#include "../core/strbuf.h"
#include "cli.h"

#define PW_MAX 1024 /* bytes of a password (the server's limit) */

static void user_usage(FILE *out)
{
    fprintf(out,
            "usage: tethys user add NAME [--role ROLE [--domain DOMAIN]...] [--password-stdin | "
            "--generate]\n"
            "       tethys user list\n"
            "       tethys user passwd NAME [--password-stdin]\n"
            "       tethys user rm NAME\n"
            "       tethys user grant NAME --role ROLE [--domain DOMAIN]...\n"
            "       tethys user ungrant NAME [--domain DOMAIN]...\n"
            "       tethys user unlock NAME\n"
            "  (each also takes --json, --data DIR and --cacert FILE)\n"
            "\n"
            "Users of the console and the API.  ROLE is viewer, operator or admin, on each\n"
            "DOMAIN's subtree (the whole tree without --domain); several --role pair with as\n"
            "many --domain, in order.  The password is asked on the terminal (twice, not\n"
            "shown), or read from one line of standard input with --password-stdin; add\n"
            "--generate has the server make a one-time password, printed once.  A password\n"
            "set here must be changed at the next sign-in.  passwd resets NAME's password (and\n"
            "ends its sessions); grant adds or changes roles, ungrant removes the roles on\n"
            "the domains given (all of them without --domain); unlock ends a lock-out after\n"
            "failed sign-ins.  Needs an admin of the whole tree (grant and ungrant: an admin\n"
            "of the domains concerned).\n");
}

int cli_grants_from(const struct cli_list *roles, const struct cli_list *domains, json_t **out)
{
    *out = NULL;
    if (roles->n == 0 && domains->n > 0) {
        cli_error("--domain needs a --role to give on it");
        return CLI_USAGE;
    }
    if (roles->n > 1 && roles->n != domains->n) {
        cli_error("%d --role and %d --domain: give one --role for all the domains, or one per "
                  "--domain, in order",
                  roles->n, domains->n);
        return CLI_USAGE;
    }
    json_t *arr = json_array();
    int n = domains->n > 0 ? domains->n : roles->n;
    for (int i = 0; i < n; i++) {
        const char *role = roles->v[roles->n > 1 ? i : 0];
        const char *domain = domains->n > 0 ? domains->v[i] : "";
        enum role r;
        struct ty_err err;
        if (role_parse("--role", role, &r, &err) != 0 ||
            domain_check_path("--domain", domain, &err) != 0) {
            cli_error("%s", err.msg);
            json_decref(arr);
            return CLI_USAGE;
        }
        json_array_append_new(arr, json_pack("{s:s, s:s}", "domain", domain, "role", role));
    }
    *out = arr;
    return 0;
}

/* Read a line of up to PW_MAX bytes from fd into buf (NUL-terminated, newline dropped).
 * 0, or -1 at the end of input with nothing read. */
static int read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (n == 0)
                return -1;
            break;
        }
        if (c == '\n')
            break;
        if (n + 1 < cap)
            buf[n++] = c;
    }
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return 0;
}

/* Ask for a password on the terminal, not shown: prompt, read, echo restored. */
static int ask(int fd, const char *prompt, char *buf, size_t cap)
{
    struct termios old, quiet;
    if (tcgetattr(fd, &old) != 0)
        return -1;
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    (void)!write(fd, prompt, strlen(prompt));
    tcsetattr(fd, TCSAFLUSH, &quiet);
    int rc = read_line(fd, buf, cap);
    tcsetattr(fd, TCSAFLUSH, &old);
    return rc;
}

/*
 * A new password for `who` into buf[cap]: from standard input (one line) with from_stdin,
 * else asked twice on the terminal.  0, or an exit status after saying why.
 */
static int new_password(const char *who, bool from_stdin, char *buf, size_t cap)
{
    if (from_stdin) {
        if (read_line(STDIN_FILENO, buf, cap) != 0 || buf[0] == '\0') {
            cli_error("--password-stdin: standard input holds no password (one line)");
            return CLI_USAGE;
        }
        return 0;
    }
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        cli_error("no terminal to ask %s's password on: give --password-stdin%s", who,
                  strcmp(who, "the new user") == 0 ? " or --generate" : "");
        return CLI_USAGE;
    }
    char again[PW_MAX + 2];
    char prompt[200];
    snprintf(prompt, sizeof prompt, "New password for %s: ", who);
    int rc = ask(fd, prompt, buf, cap);
    if (rc == 0)
        rc = ask(fd, "Again: ", again, sizeof again);
    close(fd);
    if (rc != 0) {
        cli_error("no password given");
        return CLI_USAGE;
    }
    bool same = strcmp(buf, again) == 0;
    memset(again, 0, sizeof again);
    if (!same) {
        cli_error("the two passwords differ; nothing was changed");
        return CLI_USAGE;
    }
    return 0;
}

static void user_path(struct strbuf *sb, const char *name)
{
    sb_adds(sb, "/api/v1/users");
    client_path_add(sb, name);
}

void cli_roles_cell(const json_t *item, char *buf, size_t cap)
{
    struct strbuf sb;
    sb_init_fixed(&sb, buf, cap);
    size_t i;
    const json_t *g;
    json_array_foreach(json_object_get(item, "grants"), i, g)
    {
        const char *d = json_string_value(json_object_get(g, "domain"));
        sb_addf(&sb, "%s%s of %s", i ? ", " : "", json_string_value(json_object_get(g, "role")),
                d != NULL && d[0] ? d : "the whole tree");
    }
    if (sb.len == 0)
        sb_adds(&sb, "-");
}

static void yes_no_locked(const json_t *item, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s",
             json_is_true(json_object_get(item, "locked"))
                 ? json_string_value(json_object_get(item, "locked_until"))
                 : "no");
}

static void yes_no_must(const json_t *item, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s",
             json_is_true(json_object_get(item, "must_change_password")) ? "yes" : "no");
}

/* Connect once, whatever the number of calls a command makes. */
static int api_open(struct cli_api *api)
{
    return api->open ? 0 : cli_api_open(api);
}

static int cmd_add(struct cli_api *api, const char *name, const json_t *grants, bool from_stdin,
                   bool generate)
{
    char pw[PW_MAX + 2] = "";
    json_t *body = json_pack("{s:s, s:O}", "name", name, "grants", grants);
    int rc = 0;
    if (!generate && (rc = new_password(name, from_stdin, pw, sizeof pw)) == 0)
        json_object_set_new(body, "password", json_string(pw));
    memset(pw, 0, sizeof pw);
    json_t *resp = NULL;
    if (rc == 0)
        rc = api_open(api);
    if (rc == 0)
        rc = cli_api_call(api, "POST", "/api/v1/users", body, NULL, &resp, NULL);
    json_decref(body);
    if (rc != 0)
        return rc;
    const char *made = json_string_value(json_object_get(resp, "password"));
    if (api->json) {
        cli_print_json(resp);
    } else {
        char roles[512];
        cli_roles_cell(resp, roles, sizeof roles);
        printf("user \"%s\" added (%s)\n", name, roles);
        if (made != NULL)
            printf("one-time password: %s\n", made);
        fprintf(stderr, "tethys: %s must change the password at the first sign-in.\n", name);
    }
    json_decref(resp);
    return CLI_OK;
}

static int cmd_list(struct cli_api *api)
{
    int rc = api_open(api);
    json_t *resp = NULL;
    if (rc == 0)
        rc = cli_api_call(api, "GET", "/api/v1/users", NULL, NULL, &resp, NULL);
    if (rc != 0)
        return rc;
    if (api->json) {
        cli_print_json(resp);
    } else {
        static const struct cli_col cols[] = {
            {"NAME", "name", NULL, false},
            {"ROLES", NULL, cli_roles_cell, false},
            {"MUST CHANGE", NULL, yes_no_must, false},
            {"LOCKED", NULL, yes_no_locked, false},
            {"LAST SIGN-IN", "last_signin_at_ms", NULL, false},
            {"CREATED BY", "created_by", NULL, false},
        };
        cli_table(json_object_get(resp, "items"), cols, sizeof cols / sizeof cols[0]);
    }
    json_decref(resp);
    return CLI_OK;
}

/* PUT /users/NAME with body; prints `done` (or the JSON). */
static int put_user(struct cli_api *api, const char *name, json_t *body, const char *done)
{
    struct strbuf path;
    sb_init(&path);
    user_path(&path, name);
    int rc = api_open(api);
    json_t *resp = NULL;
    if (rc == 0)
        rc = cli_api_call(api, "PUT", sb_str(&path), body, NULL, &resp, NULL);
    sb_free(&path);
    if (rc != 0)
        return rc;
    if (api->json)
        cli_print_json(resp);
    else
        printf("%s\n", done);
    json_decref(resp);
    return CLI_OK;
}

static int cmd_passwd(struct cli_api *api, const char *name, bool from_stdin)
{
    char pw[PW_MAX + 2];
    int rc = new_password(name, from_stdin, pw, sizeof pw);
    if (rc != 0)
        return rc;
    json_t *body = json_pack("{s:s}", "password", pw);
    memset(pw, 0, sizeof pw);
    char done[300];
    snprintf(done, sizeof done,
             "password of user \"%s\" reset; its sessions ended; it must be changed at the next "
             "sign-in",
             name);
    rc = put_user(api, name, body, done);
    json_decref(body);
    return rc;
}

/* The user's grants now (GET /users/NAME), a new reference, or NULL after saying why. */
static json_t *grants_now(struct cli_api *api, const char *name, int *rc)
{
    struct strbuf path;
    sb_init(&path);
    user_path(&path, name);
    json_t *resp = NULL;
    *rc = api_open(api);
    if (*rc == 0)
        *rc = cli_api_call(api, "GET", sb_str(&path), NULL, NULL, &resp, NULL);
    sb_free(&path);
    if (*rc != 0)
        return NULL;
    json_t *g = json_incref(json_object_get(resp, "grants"));
    json_decref(resp);
    return g != NULL ? g : json_array();
}

/* Grants without the ones on the domains of `drop` (all when drop is NULL). */
static json_t *without(const json_t *grants, const json_t *drop)
{
    json_t *out = json_array();
    size_t i, k;
    const json_t *g, *d;
    json_array_foreach(grants, i, g)
    {
        bool gone = drop == NULL;
        json_array_foreach(drop, k, d)
        {
            if (json_equal(json_object_get(g, "domain"), json_object_get(d, "domain")))
                gone = true;
        }
        if (!gone)
            json_array_append(out, (json_t *)g);
    }
    return out;
}

static int cmd_grant(struct cli_api *api, const char *name, const json_t *add, bool remove_all)
{
    int rc;
    json_t *now = grants_now(api, name, &rc);
    if (now == NULL)
        return rc;
    json_t *next = without(now, remove_all ? NULL : add);
    if (!remove_all && json_array_size(add) > 0 &&
        json_object_get(json_array_get(add, 0), "role") != NULL &&
        json_string_length(json_object_get(json_array_get(add, 0), "role")) > 0)
        json_array_extend(next, (json_t *)add);
    json_t *body = json_pack("{s:o}", "grants", next);
    char done[200];
    snprintf(done, sizeof done, "roles of user \"%s\" changed", name);
    rc = put_user(api, name, body, done);
    json_decref(body);
    json_decref(now);
    return rc;
}

static int cmd_rm(struct cli_api *api, const char *name)
{
    struct strbuf path;
    sb_init(&path);
    user_path(&path, name);
    int rc = api_open(api);
    if (rc == 0)
        rc = cli_api_call(api, "DELETE", sb_str(&path), NULL, NULL, NULL, NULL);
    sb_free(&path);
    if (rc != 0)
        return rc;
    if (api->json) {
        json_t *o = json_pack("{s:s, s:b}", "name", name, "removed", 1);
        cli_print_json(o);
        json_decref(o);
    } else {
        printf("user \"%s\" removed; its sessions ended\n", name);
    }
    return CLI_OK;
}

int cli_user(int argc, char **argv)
{
    if (argc < 1) {
        user_usage(stderr);
        return CLI_USAGE;
    }
    const char *sub = argv[0];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        user_usage(stdout);
        return CLI_OK;
    }
    static const char *const subs[] = {"add", "list", "passwd", "rm", "grant", "ungrant", "unlock"};
    size_t which = sizeof subs / sizeof subs[0];
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(sub, subs[i]) == 0)
            which = i;
    if (which == sizeof subs / sizeof subs[0]) {
        cli_error("unknown user command \"%s\"", sub);
        user_usage(stderr);
        return CLI_USAGE;
    }
    struct cli_api api = {0};
    struct cli_list roles = {0}, domains = {0};
    int from_stdin = 0, generate = 0;
    const struct cli_opt opts[] = {
        {"--role", NULL, CLI_LIST, &roles},
        {"--domain", NULL, CLI_LIST, &domains},
        {"--password-stdin", NULL, CLI_FLAG, &from_stdin},
        {"--generate", NULL, CLI_FLAG, &generate},
        {NULL, NULL, CLI_FLAG, NULL},
    };
    const char *pos[1] = {NULL};
    int n_pos = 0;
    bool list = which == 1;
    int rc = cli_parse(argc - 1, argv + 1, opts, &api, pos, list ? 0 : 1, &n_pos, user_usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    if (!list && n_pos == 0) {
        cli_error("user %s: which user? give its name", sub);
        return CLI_USAGE;
    }
    bool roles_ok = which == 0 || which == 4 || which == 5;
    if ((!roles_ok && (roles.n > 0 || domains.n > 0)) || (which == 5 && roles.n > 0) ||
        (which != 0 && which != 2 && from_stdin) || (which != 0 && generate) ||
        (generate && from_stdin)) {
        cli_error("user %s: an option it does not take was given (see tethys user --help)", sub);
        return CLI_USAGE;
    }
    json_t *grants = NULL;
    if (which == 4 && roles.n == 0) {
        cli_error("user grant: which role? give --role (viewer, operator or admin)");
        return CLI_USAGE;
    }
    if (which == 5) { /* ungrant: the domains only; a role is never looked at */
        grants = json_array();
        for (int i = 0; i < domains.n; i++)
            json_array_append_new(grants,
                                  json_pack("{s:s, s:s}", "domain", domains.v[i], "role", ""));
    } else if (roles_ok && (rc = cli_grants_from(&roles, &domains, &grants)) != 0) {
        return rc;
    }
    switch (which) {
    case 0: rc = cmd_add(&api, pos[0], grants, from_stdin, generate); break;
    case 1: rc = cmd_list(&api); break;
    case 2: rc = cmd_passwd(&api, pos[0], from_stdin); break;
    case 3: rc = cmd_rm(&api, pos[0]); break;
    case 4: rc = cmd_grant(&api, pos[0], grants, false); break;
    case 5: rc = cmd_grant(&api, pos[0], grants, domains.n == 0); break;
    default: {
        json_t *body = json_pack("{s:b}", "unlock", 1);
        char done[200];
        snprintf(done, sizeof done, "user \"%s\" unlocked", pos[0]);
        rc = put_user(&api, pos[0], body, done);
        json_decref(body);
    }
    }
    json_decref(grants);
    if (api.open)
        cli_api_close(&api);
    return rc;
}
