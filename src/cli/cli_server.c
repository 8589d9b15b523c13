/*
 * cli_server.c - `tethys server`: parse the options and run the embedded server in the
 * foreground (logs to stderr).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "daemon.h"

static void server_usage(FILE *out)
{
    fprintf(out, "usage: tethys server [--data DIR] [--listen HOST:PORT] [--max-runs N]\n"
                 "                     [--queue-max N] [--shutdown-grace S] [--retention-days D]\n"
                 "                     [--retention-runs N] [--tls-cert FILE --tls-key FILE]\n"
                 "                     [--rate-limit N] [--rate-burst N]\n"
                 "\n"
                 "Run the embedded server in the foreground: it schedules and runs jobs, keeps\n"
                 "their history in DIR (SQLite) and serves the REST API.  Logs go to stderr.\n"
                 "  --data DIR          data directory (default $XDG_DATA_HOME/tethys, or\n"
                 "                      ~/.local/share/tethys); created if missing\n"
                 "  --listen HOST:PORT  API address (default 127.0.0.1:8080; port 0 picks one);\n"
                 "                      an address other than loopback needs TLS\n"
                 "  --tls-cert FILE     serve HTTPS with this PEM certificate (chain)...\n"
                 "  --tls-key FILE      ...and this PEM private key (no passphrase)\n"
                 "  --rate-limit N      API requests a second per client address (default 50;\n"
                 "                      0 turns the limit off)\n"
                 "  --rate-burst N      requests a client may make at once (default 200)\n"
                 "  --max-runs N        runs at once (default 4 x CPUs)\n"
                 "  --queue-max N       runs waiting for capacity before fires are skipped\n"
                 "                      (default 100000)\n"
                 "  --shutdown-grace S  seconds SIGTERM lets running shards finish (default 30)\n"
                 "  --retention-days D  history kept (default 30)\n"
                 "  --retention-runs N  newest runs kept per job (default 10000)\n");
}

static int parse_u32(const char *opt, const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || v[0] == '-' || n < min || n > max) {
        cli_error("%s: \"%s\" is not a whole number from %u to %u", opt, v, min, max);
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

int cli_server(int argc, char **argv)
{
    char data[4096];
    const char *data_dir = NULL, *listen = "127.0.0.1:8080";
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    struct daemon_opts o = {
        .max_runs = (uint32_t)(cpus > 0 ? cpus * 4 : 8),
        .queue_max = 100000,
        .shutdown_grace = 30,
        .retention_days = 30,
        .retention_runs = 10000,
        .max_jobs = 4000000,
        .rate_limit = 50,
        .rate_burst = 200,
    };
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            server_usage(stdout);
            return CLI_OK;
        }
        bool takes = strcmp(a, "--data") == 0 || strcmp(a, "--listen") == 0 ||
                     strcmp(a, "--max-runs") == 0 || strcmp(a, "--queue-max") == 0 ||
                     strcmp(a, "--shutdown-grace") == 0 || strcmp(a, "--retention-days") == 0 ||
                     strcmp(a, "--retention-runs") == 0 || strcmp(a, "--tls-cert") == 0 ||
                     strcmp(a, "--tls-key") == 0 || strcmp(a, "--rate-limit") == 0 ||
                     strcmp(a, "--rate-burst") == 0;
        if (!takes) {
            cli_error("unknown option \"%s\"", a);
            server_usage(stderr);
            return CLI_USAGE;
        }
        if (v == NULL) {
            cli_error("option %s needs a value", a);
            return CLI_USAGE;
        }
        i++;
        int rc = 0;
        if (strcmp(a, "--data") == 0)
            data_dir = v;
        else if (strcmp(a, "--listen") == 0)
            listen = v;
        else if (strcmp(a, "--max-runs") == 0)
            rc = parse_u32(a, v, 1, 100000, &o.max_runs);
        else if (strcmp(a, "--queue-max") == 0)
            rc = parse_u32(a, v, 1, 10000000, &o.queue_max);
        else if (strcmp(a, "--shutdown-grace") == 0)
            rc = parse_u32(a, v, 0, 86400, &o.shutdown_grace);
        else if (strcmp(a, "--retention-days") == 0)
            rc = parse_u32(a, v, 1, 36500, &o.retention_days);
        else if (strcmp(a, "--tls-cert") == 0)
            o.tls_cert = v;
        else if (strcmp(a, "--tls-key") == 0)
            o.tls_key = v;
        else if (strcmp(a, "--rate-limit") == 0) {
            uint32_t rate = 0;
            rc = parse_u32(a, v, 0, 1000000, &rate);
            o.rate_limit = rate;
        } else if (strcmp(a, "--rate-burst") == 0)
            rc = parse_u32(a, v, 1, 10000000, &o.rate_burst);
        else
            rc = parse_u32(a, v, 1, 100000000, &o.retention_runs);
        if (rc != 0)
            return CLI_USAGE;
    }
    if (data_dir == NULL) {
        struct ty_err err;
        if (client_default_data_dir(data, sizeof data, &err) != 0) {
            cli_error("%s", err.msg);
            return CLI_USAGE;
        }
        data_dir = data;
    }
    if ((o.tls_cert == NULL) != (o.tls_key == NULL)) {
        cli_error("%s needs %s too: a TLS certificate and its key go together",
                  o.tls_cert ? "--tls-cert" : "--tls-key", o.tls_cert ? "--tls-key" : "--tls-cert");
        return CLI_USAGE;
    }
    o.data_dir = data_dir;
    o.listen = listen;
    return daemon_run(&o);
}
