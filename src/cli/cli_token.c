/*
 * cli_token.c - `tethys token create|list|revoke`: the API's named tokens.
 *
 * create prints the new token's secret once, on standard output and alone on its line
 * (so `TOKEN=$(tethys token create ci)` captures just it); what to do with it goes to
 * standard error.  The server keeps only its hash: a lost secret is revoked and replaced,
 * never recovered.  --expires takes a duration (30d, 12h, 1d12h, 90m) and sends seconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../api/token.h"
#include "../core/strbuf.h"
#include "cli.h"

static void token_usage(FILE *out)
{
    fprintf(out, "usage: tethys token create NAME [--expires DURATION] [--role ROLE [--domain "
                 "DOMAIN]...]\n"
                 "       tethys token list\n"
                 "       tethys token revoke NAME\n"
                 "  (each also takes --json, --data DIR and --cacert FILE)\n"
                 "\n"
                 "Named API tokens, for clients other than the CLI on the server's machine (which\n"
                 "uses the data directory's token, named \"default\").  create prints the secret\n"
                 "once: the server keeps only its hash.  --expires: 30d, 12h, 1d12h, 90m, 2w or\n"
                 "seconds; without it the token does not expire.  A revoked token is refused at\n"
                 "once.  \"default\" cannot be revoked here: stop the server and delete\n"
                 "DATA/token to replace it.\n"
                 "--role (viewer, operator or admin) on each --domain's subtree (the whole tree\n"
                 "without --domain; several --role pair with as many --domain): what the token\n"
                 "may do.  Without --role a token is a viewer of the whole tree: it reads\n"
                 "everything and changes nothing.\n");
}

static int cmd_create(struct cli_api *api, const char *name, const char *expires,
                      const json_t *grants)
{
    json_t *body = json_pack("{s:s}", "name", name);
    if (json_array_size(grants) > 0)
        json_object_set(body, "grants", (json_t *)grants);
    if (expires != NULL) {
        int64_t secs;
        struct ty_err err;
        if (token_parse_duration(expires, "--expires", &secs, &err) != 0) {
            cli_error("%s", err.msg);
            json_decref(body);
            return CLI_USAGE;
        }
        json_object_set_new(body, "expires_in_s", json_integer(secs));
    }
    int rc = cli_api_open(api);
    json_t *resp = NULL;
    if (rc == 0)
        rc = cli_api_call(api, "POST", "/api/v1/tokens", body, NULL, &resp, NULL);
    json_decref(body);
    if (rc != 0)
        return rc;
    if (api->json) {
        cli_print_json(resp);
    } else {
        const char *secret = json_string_value(json_object_get(resp, "token"));
        const char *until = json_string_value(json_object_get(resp, "expires_at"));
        char roles[512];
        cli_roles_cell(resp, roles, sizeof roles);
        printf("%s\n", secret ? secret : "");
        fprintf(stderr,
                "tethys: token \"%s\" created (%s)%s%s; this is the only time its secret is "
                "shown.\n"
                "        Clients send it as \"Authorization: Bearer <token>\" (the CLI: "
                "TETHYS_TOKEN).\n",
                name, roles, until ? ", expires " : "", until ? until : "");
    }
    json_decref(resp);
    return CLI_OK;
}

static int cmd_list(struct cli_api *api)
{
    int rc = cli_api_open(api);
    json_t *resp = NULL;
    if (rc == 0)
        rc = cli_api_call(api, "GET", "/api/v1/tokens", NULL, NULL, &resp, NULL);
    if (rc != 0)
        return rc;
    if (api->json) {
        cli_print_json(resp);
    } else {
        static const struct cli_col cols[] = {
            {"NAME", "name", NULL, false},
            {"STATUS", "status", NULL, false},
            {"CREATED", "created_at_ms", NULL, false},
            {"EXPIRES", "expires_at_ms", NULL, false},
            {"LAST USED", "last_used_at_ms", NULL, false},
            {"REVOKED", "revoked_at_ms", NULL, true},
            {"CREATED BY", "created_by", NULL, false},
            {"ROLES", NULL, cli_roles_cell, false},
        };
        cli_table(json_object_get(resp, "items"), cols, sizeof cols / sizeof cols[0]);
    }
    json_decref(resp);
    return CLI_OK;
}

static int cmd_revoke(struct cli_api *api, const char *name)
{
    struct strbuf path;
    sb_init(&path);
    sb_adds(&path, "/api/v1/tokens");
    client_path_add(&path, name);
    int rc = cli_api_open(api);
    if (rc == 0)
        rc = cli_api_call(api, "DELETE", sb_str(&path), NULL, NULL, NULL, NULL);
    sb_free(&path);
    if (rc != 0)
        return rc;
    if (api->json) {
        json_t *o = json_pack("{s:s, s:b}", "name", name, "revoked", 1);
        cli_print_json(o);
        json_decref(o);
    } else
        printf("token \"%s\" revoked\n", name);
    return CLI_OK;
}

int cli_token(int argc, char **argv)
{
    if (argc < 1) {
        token_usage(stderr);
        return CLI_USAGE;
    }
    const char *sub = argv[0];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        token_usage(stdout);
        return CLI_OK;
    }
    bool create = strcmp(sub, "create") == 0, list = strcmp(sub, "list") == 0,
         revoke = strcmp(sub, "revoke") == 0;
    if (!create && !list && !revoke) {
        cli_error("unknown token command \"%s\"", sub);
        token_usage(stderr);
        return CLI_USAGE;
    }
    struct cli_api api = {0};
    const char *expires = NULL;
    struct cli_list roles = {0}, domains = {0};
    const struct cli_opt create_opts[] = {
        {"--expires", NULL, CLI_VALUE, &expires},
        {"--role", NULL, CLI_LIST, &roles},
        {"--domain", NULL, CLI_LIST, &domains},
        {NULL, NULL, CLI_FLAG, NULL},
    };
    const char *pos[1] = {NULL};
    int n_pos;
    int rc = cli_parse(argc - 1, argv + 1, create ? create_opts : NULL, &api, pos, list ? 0 : 1,
                       &n_pos, token_usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    if (!list && n_pos == 0) {
        cli_error("token %s: which token? give its name", sub);
        return CLI_USAGE;
    }
    json_t *grants = NULL;
    if (create && (rc = cli_grants_from(&roles, &domains, &grants)) != 0)
        return rc;
    if (create)
        rc = cmd_create(&api, pos[0], expires, grants);
    else if (list)
        rc = cmd_list(&api);
    else
        rc = cmd_revoke(&api, pos[0]);
    json_decref(grants);
    if (api.open)
        cli_api_close(&api);
    return rc;
}
