/*
 * cli_run.c - `tethys run show|logs|cancel`: one run of one shard.
 *
 * `run logs` copies the run's output to standard output byte for byte (it is the job's
 * own output: no cleaning, no framing); with -f it keeps the connection open and prints
 * output as the run writes it, ending when the run has ended and everything was sent,
 * like `tail -f` that knows when to stop.  Each piece is flushed at once, so a pipe
 * reader sees lines as they come.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "../core/strbuf.h"

static void run_usage(FILE *out)
{
    fprintf(out, "usage: tethys run show RUN\n"
                 "       tethys run logs [-f] RUN\n"
                 "       tethys run cancel RUN\n"
                 "  (each also takes --json and --data DIR; logs ignores --json)\n"
                 "\n"
                 "RUN is a run id as `tethys job run` and `tethys history` print it.\n"
                 "logs prints the output kept for the run (its tail, up to the job's cap);\n"
                 "-f follows a running run until it ends.\n");
}

/* Output bytes to stdout as they arrive. */
static int write_out(void *arg, const char *buf, size_t n)
{
    (void)arg;
    if (fwrite(buf, 1, n, stdout) != n || fflush(stdout) != 0)
        return TY_EIO;
    return 0;
}

static int cmd_logs(struct cli_api *api, const char *run, int follow)
{
    struct strbuf path;
    sb_init(&path);
    sb_adds(&path, "/api/v1/runs");
    client_path_add(&path, run);
    sb_adds(&path, "/log");
    if (follow)
        client_query_add(&path, "follow", "1");
    struct ty_err err;
    ty_err_clear(&err);
    int rc = client_stream(&api->client, sb_str(&path), write_out, NULL, &err);
    sb_free(&path);
    if (rc == TY_EIO && err.msg[0] == '\0') {
        cli_error("could not write the output");
        return CLI_SYSTEM;
    }
    if (rc != 0) {
        cli_error("%s", err.msg);
        return cli_exit_for(rc);
    }
    return CLI_OK;
}

int cli_run(int argc, char **argv)
{
    if (argc < 1) {
        run_usage(stderr);
        return CLI_USAGE;
    }
    const char *sub = argv[0];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        run_usage(stdout);
        return CLI_OK;
    }
    if (strcmp(sub, "show") != 0 && strcmp(sub, "logs") != 0 && strcmp(sub, "cancel") != 0) {
        cli_error("unknown run command \"%s\"", sub);
        run_usage(stderr);
        return CLI_USAGE;
    }
    struct cli_api api = {0};
    int follow = 0;
    const struct cli_opt log_opts[] = {
        {"--follow", "-f", CLI_FLAG, &follow},
        {NULL, NULL, CLI_FLAG, NULL},
    };
    const char *pos[1] = {NULL};
    int n_pos;
    int rc = cli_parse(argc - 1, argv + 1, strcmp(sub, "logs") == 0 ? log_opts : NULL, &api, pos, 1,
                       &n_pos, run_usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    if (n_pos == 0) {
        cli_error("run %s: which run? give its id", sub);
        return CLI_USAGE;
    }
    if ((rc = cli_api_open(&api)) != 0)
        return rc;
    if (strcmp(sub, "logs") == 0) {
        rc = cmd_logs(&api, pos[0], follow);
    } else {
        struct strbuf path;
        sb_init(&path);
        sb_adds(&path, "/api/v1/runs");
        client_path_add(&path, pos[0]);
        bool cancel = strcmp(sub, "cancel") == 0;
        if (cancel)
            sb_adds(&path, "/cancel");
        json_t *resp = NULL;
        rc = cli_api_call(&api, cancel ? "POST" : "GET", sb_str(&path), NULL, NULL, &resp, NULL);
        if (rc == 0) {
            if (api.json) {
                cli_print_json(resp);
            } else if (cancel) {
                char status[64];
                cli_cell_text(resp, "status", status, sizeof status);
                printf("run %s %s\n", pos[0], status);
            } else {
                cli_show(resp);
            }
        }
        json_decref(resp);
        sb_free(&path);
    }
    cli_api_close(&api);
    return rc;
}
