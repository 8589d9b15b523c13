/*
 * cli_server.c - `tethys server`: parse the options and run the embedded server in the
 * foreground (logs to stderr).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "../os/client.h"
#include "daemon.h"

static void server_usage(FILE *out)
{
    fprintf(out, "usage: tethys server [--data DIR] [--listen HOST:PORT] [--max-runs N]\n"
                 "                     [--queue-max N] [--shutdown-grace S] [--retention-days D]\n"
                 "                     [--retention-runs N] [--tls-cert FILE --tls-key FILE]\n"
                 "                     [--rate-limit N] [--rate-burst N] [--spool-max MIB]\n"
                 "                     [--db postgresql://USER@HOST:PORT/DB]\n"
                 "                     [--zk HOST:PORT,...[/CHROOT] [--zk-auth FILE]\n"
                 "                      [--zk-session-timeout S] [--advertise URL]]\n"
                 "\n"
                 "Run the embedded server in the foreground: it schedules and runs jobs, keeps\n"
                 "their history in DIR (SQLite) and serves the REST API.  Logs go to stderr.\n"
                 "  --data DIR          data directory (default $XDG_DATA_HOME/tethys, or\n"
                 "                      ~/.local/share/tethys); created if missing\n"
                 "  --db URL            keep configuration and history in PostgreSQL instead\n"
                 "                      (password from PGPASSWORD or ~/.pgpass, never the URL;\n"
                 "                      ?sslmode=verify-full for TLS); DIR keeps the token, the\n"
                 "                      lock, run output and the result spool\n"
                 "  --zk HOSTS          be one server of a cluster coordinated by this ZooKeeper\n"
                 "                      ensemble (chroot default /tethys); needs --db; its\n"
                 "                      executors run as `tethys executor` processes\n"
                 "                      (repeat --zk NAME=HOSTS for several ensembles, and\n"
                 "                      --zk-domains NAME=D,... to say which domains live in\n"
                 "                      which; others live in the first)\n"
                 "  --zk-auth FILE      the ZooKeeper digest credential, user:password on one\n"
                 "                      line, shared by the cluster (default DIR/zk-auth)\n"
                 "  --zk-session-timeout S  ZooKeeper session timeout (default 10)\n"
                 "  --advertise URL     where executors and other servers reach this API\n"
                 "                      (default from --listen)\n"
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
                 "  --retention-runs N  newest runs kept per job (default 10000)\n"
                 "  --spool-max MIB     results waiting for the store (DATA/spool) past which\n"
                 "                      runs are recorded without their output (default 256)\n");
}

/* A numeric option into *out, from min to max (its text NULL: left as it is). */
static int number(const char *option, const char *text, long long min, long long max, uint32_t *out)
{
    long long v;
    if (text == NULL)
        return 0;
    if (cli_whole(option, text, min, max, &v) != 0)
        return CLI_USAGE;
    *out = (uint32_t)v;
    return 0;
}

int cli_server(int argc, char **argv)
{
    char data[4096];
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    struct daemon_opts o = {
        .listen = "127.0.0.1:8080",
        .max_runs = (uint32_t)(cpus > 0 ? cpus * 4 : 8),
        .queue_max = 100000,
        .shutdown_grace = 30,
        .retention_days = 30,
        .retention_runs = 10000,
        .max_jobs = 4000000,
        .spool_max = 256ull * 1024 * 1024,
        .rate_limit = 50,
        .rate_burst = 200,
    };
    const char *max_runs = NULL, *queue_max = NULL, *grace = NULL, *days = NULL, *runs = NULL,
               *rate = NULL, *burst = NULL, *spool = NULL, *zk_timeout = NULL;
    struct cli_list zk_list = {0}, zk_domains = {0};
    const struct cli_opt opts[] = {
        {"--listen", NULL, CLI_VALUE, &o.listen},
        {"--max-runs", NULL, CLI_VALUE, &max_runs},
        {"--queue-max", NULL, CLI_VALUE, &queue_max},
        {"--shutdown-grace", NULL, CLI_VALUE, &grace},
        {"--retention-days", NULL, CLI_VALUE, &days},
        {"--retention-runs", NULL, CLI_VALUE, &runs},
        {"--tls-cert", NULL, CLI_VALUE, &o.tls_cert},
        {"--tls-key", NULL, CLI_VALUE, &o.tls_key},
        {"--rate-limit", NULL, CLI_VALUE, &rate},
        {"--rate-burst", NULL, CLI_VALUE, &burst},
        {"--spool-max", NULL, CLI_VALUE, &spool},
        {"--db", NULL, CLI_VALUE, &o.db},
        {"--zk", NULL, CLI_LIST, &zk_list},
        {"--zk-domains", NULL, CLI_LIST, &zk_domains},
        {"--zk-auth", NULL, CLI_VALUE, &o.zk_auth},
        {"--zk-session-timeout", NULL, CLI_VALUE, &zk_timeout},
        {"--advertise", NULL, CLI_VALUE, &o.advertise},
        {NULL, NULL, 0, NULL},
    };
    struct cli_api api = {0};
    int n_pos = 0;
    int rc = cli_parse(argc, argv, opts, &api, NULL, 0, &n_pos, server_usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    if (api.json || api.cacert != NULL) {
        cli_error("%s is not an option of `tethys server`", api.json ? "--json" : "--cacert");
        server_usage(stderr);
        return CLI_USAGE;
    }
    uint32_t rate_limit = (uint32_t)o.rate_limit, spool_mib = (uint32_t)(o.spool_max >> 20);
    if (number("--max-runs", max_runs, 1, 100000, &o.max_runs) != 0 ||
        number("--queue-max", queue_max, 1, 10000000, &o.queue_max) != 0 ||
        number("--shutdown-grace", grace, 0, 86400, &o.shutdown_grace) != 0 ||
        number("--retention-days", days, 1, 36500, &o.retention_days) != 0 ||
        number("--retention-runs", runs, 1, 100000000, &o.retention_runs) != 0 ||
        number("--rate-limit", rate, 0, 1000000, &rate_limit) != 0 ||
        number("--rate-burst", burst, 1, 10000000, &o.rate_burst) != 0 ||
        number("--spool-max", spool, 1, 1048576, &spool_mib) != 0)
        return CLI_USAGE;
    uint32_t zk_s = 10;
    if (number("--zk-session-timeout", zk_timeout, 2, 600, &zk_s) != 0)
        return CLI_USAGE;
    o.zk_timeout_ms = zk_s * 1000;
    o.zk = zk_list.v;
    o.n_zk = (size_t)zk_list.n;
    o.zk_domains = zk_domains.v;
    o.n_zk_domains = (size_t)zk_domains.n;
    if (o.n_zk_domains > 0 && o.n_zk < 2) {
        cli_error("--zk-domains places domains in one of several ensembles: give each with "
                  "--zk NAME=HOSTS");
        return CLI_USAGE;
    }
    if (o.n_zk > 0 && o.db == NULL) {
        cli_error("--zk needs --db postgresql://...: the servers of a cluster share one "
                  "PostgreSQL store");
        return CLI_USAGE;
    }
    if (o.n_zk == 0 && (o.zk_auth != NULL || zk_timeout != NULL || o.advertise != NULL)) {
        cli_error("%s is for a cluster server: give --zk too", o.zk_auth    ? "--zk-auth"
                                                               : zk_timeout ? "--zk-session-timeout"
                                                                            : "--advertise");
        return CLI_USAGE;
    }
    o.rate_limit = rate_limit;
    o.spool_max = (uint64_t)spool_mib << 20;
    o.data_dir = api.data;
    if (o.data_dir == NULL) {
        struct ty_err err;
        if (client_default_data_dir(data, sizeof data, &err) != 0) {
            cli_error("%s", err.msg);
            return CLI_USAGE;
        }
        o.data_dir = data;
    }
    if (o.db != NULL && strncmp(o.db, "postgresql://", 13) != 0 &&
        strncmp(o.db, "postgres://", 11) != 0) {
        cli_error("--db: expected a PostgreSQL URL, postgresql://USER@HOST:PORT/DB (without --db "
                  "the store is SQLite in the data directory)");
        return CLI_USAGE;
    }
    if (o.db != NULL) {
        /* a password in the URL would be in ps, the logs and DATA/store.url */
        const char *auth = strstr(o.db, "://") + 3, *at = strchr(auth, '@');
        const char *slash = strchr(auth, '/');
        if (at != NULL && (slash == NULL || at < slash) && memchr(auth, ':', (size_t)(at - auth))) {
            cli_error("--db: the URL holds a password; give it in PGPASSWORD or ~/.pgpass "
                      "instead, where ps and the logs do not show it");
            return CLI_USAGE;
        }
    }
    if ((o.tls_cert == NULL) != (o.tls_key == NULL)) {
        cli_error("%s needs %s too: a TLS certificate and its key go together",
                  o.tls_cert ? "--tls-cert" : "--tls-key", o.tls_cert ? "--tls-key" : "--tls-cert");
        return CLI_USAGE;
    }
    return daemon_run(&o);
}
