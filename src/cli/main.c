/*
 * main.c - the tethys binary: dispatch to a subcommand.
 *
 * One binary carries every role (server, executor, CLI) so an installation is a single
 * file; this file only routes.  Subcommands parse their own options.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "../tzdb/tzdb.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"server", cli_server, "run the embedded server (scheduler, executor, API) in the foreground"},
    {"executor", cli_executor, "run one executor of a cluster (--zk) in the foreground"},
    {"cron", cli_cron, "check a schedule and list when it fires (no server needed)"},
    {"job", cli_job, "add, edit, show, list, remove, enable, disable and run jobs"},
    {"run", cli_run, "show a run, print or follow its output, cancel it"},
    {"history", cli_history, "runs and fires that did not run, with filters"},
    {"stats", cli_stats, "runs, failures, durations and lateness per job, domain or day"},
    {"alerts", cli_alerts, "the four alert tables (exit status 1 when any alert is open)"},
    {"domain", cli_domain, "add, edit, show, list and remove domains"},
    {"calendar", cli_calendar, "add, edit, show, list and remove calendars"},
    {"executors", cli_executors, "the executors, their capacity and load"},
    {"import", cli_import, "turn a crontab into jobs (import crontab FILE)"},
    {"export", cli_export, "write jobs as a definition file (JSON or YAML)"},
    {"apply", cli_apply, "make the server's jobs match a definition file, showing the diff"},
    {"backup", cli_backup, "copy the data directory's database to a file, server running or not"},
    {"restore", cli_restore, "put a backup back as the database (server stopped)"},
    {"token", cli_token, "create, list and revoke API tokens"},
    {"user", cli_user, "add, list, change and remove users of the console and the API"},
    {"zk", cli_zk, "the cluster's ZooKeeper ensembles; dump and restore Tethys's nodes"},
    {"store", cli_store, "copy an embedded store to PostgreSQL (store copy; server stopped)"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: tethys <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-10s %s\n", "version", "print the version");
    fprintf(out, "\n'tethys <command> --help' describes a command.\n");
}

void cli_verror(const char *fmt, va_list ap)
{
    fputs("tethys: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_verror(fmt, ap);
    va_end(ap);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("tethys %s\n", TETHYS_VERSION);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name) == 0) {
            int rc = commands[i].run(argc - 2, argv + 2);
            fflush(stdout);
            if (ferror(stdout)) {
                cli_error("could not write the output");
                return CLI_SYSTEM;
            }
            return rc;
        }
    }
    const char *later = NULL; /* "tethys --data DIR job list": the command comes later */
    for (int i = 2; cmd[0] == '-' && later == NULL && i < argc; i++)
        for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
            if (strcmp(argv[i], commands[k].name) == 0)
                later = commands[k].name;
    if (later != NULL)
        cli_error("options come after the command: `tethys %s ... %s`", later, cmd);
    else
        cli_error("unknown command \"%s\"", cmd);
    usage(stderr);
    return CLI_USAGE;
}
