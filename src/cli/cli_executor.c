/*
 * cli_executor.c - `tethys executor`: one executor of a cluster, as its own process.
 *
 * It needs only ZooKeeper's address and the shared credential: through ZooKeeper it finds
 * the servers (the leader takes its results, any server gives it job definitions), the
 * secret they share, and its placement.  Three parts run in it:
 *   - the executor (src/executor: its own loop thread, trigger engine, spool), the same
 *     one the embedded server runs;
 *   - the agent (coord_agent, on this process's main loop): registration, lease, placements,
 *     results handed to the leader;
 *   - an HTTP endpoint (src/api's member routes) where servers send run now, cancel,
 *     output and status requests, answered by the executor.
 * SIGTERM/SIGINT: the executor stops firing and lets running shards finish for the grace
 * period; then the endpoint stops, and the session closes (its registration goes, so the
 * leader moves its shards at once).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../api/http.h"
#include "../api/routes.h"
#include "../coord/coord_zk.h"
#include "../exec/exec.h"
#include "../executor/executor.h"
#include "../os/client.h"
#include "../os/file.h"
#include "../os/log.h"
#include "cli.h"

struct xproc {
    uv_loop_t loop;
    struct executor *x;
    _Atomic(struct coord_agent *) agent;
    struct http_server *http;
    struct http_config hc;
    struct coord_member_info info;
    uv_signal_t sigterm, sigint;
    uv_async_t stopped;
    uint32_t grace;
    bool stopping;
    /* cpu sampling */
    int64_t cpu_prev_ns, wall_prev_ns;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tethys executor --zk HOST:PORT,...[/CHROOT] [--data DIR] [--name NAME]\n"
            "                       [--labels K=V,...] [--capacity N] [--domains D,...]\n"
            "                       [--zk-auth FILE] [--zk-session-timeout S]\n"
            "                       [--listen HOST:PORT] [--advertise URL]\n"
            "                       [--queue-max N] [--spool-max MIB] [--shutdown-grace S]\n"
            "                       [--tls-cert FILE --tls-key FILE]\n"
            "\n"
            "Run one executor of a cluster in the foreground: it registers in ZooKeeper,\n"
            "fires the shards the leader places on it from its own clock, runs them, and\n"
            "hands the results to the leader (kept in DIR/spool while none answers).\n"
            "  --zk HOSTS          the cluster's ZooKeeper ensemble (chroot default /tethys)\n"
            "  --zk-auth FILE      the cluster's digest credential, user:password (default\n"
            "                      DIR/zk-auth)\n"
            "  --zk-session-timeout S  session timeout (default 10); runs stop starting\n"
            "                      within 0.6 of it after losing ZooKeeper\n"
            "  --name NAME         executor id (default DIR/executor-id, made on first start)\n"
            "  --labels K=V,...    labels jobs may prefer (prefer: [\"K=V\"])\n"
            "  --capacity N        runs at once (default 4 x CPUs)\n"
            "  --domains D,...     serve only jobs of these domain subtrees (default all)\n"
            "  --listen HOST:PORT  where servers reach it (default 127.0.0.1:0)\n"
            "  --advertise URL     the URL servers use, when not the listen address\n"
            "  --tls-cert FILE     serve servers' requests over HTTPS with this certificate...\n"
            "  --tls-key FILE      ...and this key; needed to listen off loopback (the\n"
            "                      cluster's secret travels in every request)\n"
            "  --queue-max N       runs waiting for capacity before fires are skipped\n"
            "  --spool-max MIB     results waiting for the leader before output is dropped\n"
            "  --shutdown-grace S  seconds SIGTERM lets running shards finish (default 30)\n");
}

/* ---------------------------------------------------------------------------------------
 * What the parts ask of each other
 */

static int deliver(void *arg, const struct coord_result *const *results, size_t n,
                   struct ty_err *err)
{
    struct xproc *xp = arg;
    struct coord_agent *a = atomic_load(&xp->agent);
    if (a == NULL)
        return ty_error(err, TY_EUNAVAIL, NULL, -1, 0, "not connected to the cluster yet");
    return coord_agent_deliver(a, results, n, err);
}

static void secret(void *arg, char *buf, size_t cap)
{
    struct xproc *xp = arg;
    struct coord_agent *a = atomic_load(&xp->agent);
    if (a == NULL)
        buf[0] = '\0';
    else
        coord_agent_secret(a, buf, cap);
}

static void fence(void *arg, bool fenced)
{
    struct xproc *xp = arg;
    executor_fence(xp->x, fenced);
}

static void lease(void *arg, int64_t until_ns)
{
    struct xproc *xp = arg;
    /* no lease yet (0) must not read as "no lease needed": one nanosecond is long past */
    executor_set_lease(xp->x, until_ns > 0 ? until_ns : 1);
}

static int64_t ns_of(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Figures for the registration: CPU (this process and its finished children), memory,
 * the host's load. */
static void sample(void *arg, struct coord_member_info *m)
{
    struct xproc *xp = arg;
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    int64_t cpu = ((int64_t)self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec +
                   kids.ru_stime.tv_sec) *
                      1000000000 +
                  ((int64_t)self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec +
                   kids.ru_stime.tv_usec) *
                      1000;
    int64_t wall = ns_of(CLOCK_MONOTONIC);
    if (xp->wall_prev_ns > 0 && wall > xp->wall_prev_ns)
        m->cpu = (double)(cpu - xp->cpu_prev_ns) / (double)(wall - xp->wall_prev_ns);
    xp->cpu_prev_ns = cpu;
    xp->wall_prev_ns = wall;
    /* resident now (statm's second field, in pages), not the peak ru_maxrss gives */
    char line[128];
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL && fgets(line, sizeof line, f) != NULL) {
        char *end = NULL;
        (void)strtoll(line, &end, 10); /* the size; the resident set follows */
        long long resident = end != NULL ? strtoll(end, NULL, 10) : 0;
        m->mem_bytes = (int64_t)resident * sysconf(_SC_PAGESIZE);
    }
    if (f != NULL)
        fclose(f);
    m->running = executor_running(xp->x);
    double load[1];
    if (getloadavg(load, 1) == 1)
        m->load1 = load[0];
}

/* ---------------------------------------------------------------------------------------
 * Stop
 */

static void closed(uv_handle_t *h)
{
    (void)h;
}

static void on_stopped(uv_async_t *h)
{
    struct xproc *xp = h->data;
    if (xp->http != NULL) {
        http_stop(xp->http);
        xp->http = NULL;
    }
    coord_agent_close(atomic_load(&xp->agent));
    uv_close((uv_handle_t *)&xp->sigterm, closed);
    uv_close((uv_handle_t *)&xp->sigint, closed);
    uv_close((uv_handle_t *)&xp->stopped, closed);
}

static void executor_done(void *arg)
{
    struct xproc *xp = arg;
    uv_async_send(&xp->stopped); /* the executor's thread: over to the main loop */
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct xproc *xp = h->data;
    if (xp->stopping)
        return;
    xp->stopping = true;
    log_info("stopping: no new runs; running shards get the grace period", "signal=%s grace_s=%u",
             signum == SIGTERM ? "TERM" : "INT", xp->grace);
    executor_stop(xp->x, xp->grace, executor_done, xp);
}

/* ---------------------------------------------------------------------------------------
 * Start
 */

static int split_domains(const char *text, struct coord_member_info *m, struct ty_err *err)
{
    if (text == NULL || text[0] == '\0')
        return 0;
    size_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == ',';
    if (n > COORD_DOMAINS_MAX)
        return ty_error(err, TY_EINVAL, "--domains", -1, 0, "--domains: at most %d domains",
                        COORD_DOMAINS_MAX);
    m->domains = calloc(n, sizeof *m->domains);
    if (m->domains == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char *d = strndup(p, len);
        if (d == NULL)
            return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        m->domains[m->n_domains++] = d;
        p += len + (end != NULL);
    }
    return 0;
}

static int run(struct xproc *xp, const char *data, const char *zk, const char *auth_file,
               uint32_t timeout_ms, const char *listen, const char *advertise, const char *tls_cert,
               const char *tls_key, const struct executor_config *base, struct ty_err *err)
{
    char auth[256], *hosts = NULL;
    int rc = coord_zk_read_auth(auth_file, auth, sizeof auth, err);
    if (rc == 0)
        rc = coord_zk_hosts(zk, &hosts, err);
    if (rc != 0)
        return rc;
    struct executor_config xc = *base;
    xc.deliver = deliver;
    xc.deliver_arg = xp;
    if ((rc = executor_new(&xc, &xp->x, err)) != 0 || (rc = executor_start(xp->x, err)) != 0) {
        free(hosts);
        return rc;
    }
    executor_fence(xp->x, true); /* until a placement is applied under a lease */
    executor_set_lease(xp->x, 1);
    struct coord_member member;
    executor_member(xp->x, &member);
    rc = routes_member_config(&member, secret, xp, listen, &xp->hc, err);
    xp->hc.tls_cert = tls_cert;
    xp->hc.tls_key = tls_key;
    if (rc == 0)
        rc = http_start(&xp->hc, &xp->http, err);
    if (rc == 0) {
        char url[512];
        if (advertise != NULL) {
            snprintf(url, sizeof url, "%s", advertise);
        } else {
            char host[256];
            snprintf(host, sizeof host, "%s", listen);
            char *colon = strrchr(host, ':');
            if (colon != NULL)
                *colon = '\0';
            if (strcmp(host, "0.0.0.0") == 0) {
                char name[200];
                if (gethostname(name, sizeof name) != 0)
                    snprintf(name, sizeof name, "127.0.0.1");
                snprintf(host, sizeof host, "%s", name);
            }
            snprintf(url, sizeof url, "%s://%s:%d", tls_cert ? "https" : "http", host,
                     http_port(xp->http));
        }
        xp->info.url = strdup(url);
        struct coord_agent_config ac = {
            .hosts = hosts,
            .auth = auth,
            .session_timeout_ms = timeout_ms,
            .member = member,
            .info = &xp->info,
            .fence = fence,
            .lease = lease,
            .sample = sample,
            .arg = xp,
        };
        struct coord_agent *a = NULL;
        rc = coord_agent_new(&xp->loop, &ac, &a, err);
        atomic_store(&xp->agent, a);
        if (rc == 0)
            log_info("tethys executor started", "id=%s url=%s zk=%s capacity=%u data=%s",
                     xp->info.id, url, zk, xp->info.capacity, data);
    }
    free(hosts);
    if (rc != 0) {
        if (xp->http != NULL)
            http_stop(xp->http);
        xp->http = NULL;
        executor_stop(xp->x, 0, executor_done, xp);
        return rc;
    }
    return 0;
}

int cli_executor(int argc, char **argv)
{
    const char *zk = NULL, *auth_file = NULL, *name = NULL, *labels = NULL, *capacity = NULL,
               *domains = NULL, *zk_timeout = NULL, *listen = "127.0.0.1:0", *advertise = NULL,
               *queue_max = NULL, *spool = NULL, *grace = NULL, *tls_cert = NULL, *tls_key = NULL;
    const struct cli_opt opts[] = {
        {"--zk", NULL, CLI_VALUE, &zk},
        {"--zk-auth", NULL, CLI_VALUE, &auth_file},
        {"--zk-session-timeout", NULL, CLI_VALUE, &zk_timeout},
        {"--name", NULL, CLI_VALUE, &name},
        {"--labels", NULL, CLI_VALUE, &labels},
        {"--capacity", NULL, CLI_VALUE, &capacity},
        {"--domains", NULL, CLI_VALUE, &domains},
        {"--listen", NULL, CLI_VALUE, &listen},
        {"--advertise", NULL, CLI_VALUE, &advertise},
        {"--queue-max", NULL, CLI_VALUE, &queue_max},
        {"--spool-max", NULL, CLI_VALUE, &spool},
        {"--shutdown-grace", NULL, CLI_VALUE, &grace},
        {"--tls-cert", NULL, CLI_VALUE, &tls_cert},
        {"--tls-key", NULL, CLI_VALUE, &tls_key},
        {NULL, NULL, 0, NULL},
    };
    struct cli_api api = {0};
    int n_pos = 0;
    int rc = cli_parse(argc, argv, opts, &api, NULL, 0, &n_pos, usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    if (zk == NULL) {
        cli_error("--zk: required (the cluster's ZooKeeper ensemble, HOST:PORT,...[/CHROOT])");
        usage(stderr);
        return CLI_USAGE;
    }
    /* the cluster's secret is the bearer of every request servers send here: off loopback
     * it must not cross the network in clear */
    bool loopback = false;
    struct ty_err lerr;
    if (http_listen_is_loopback(listen, &loopback, &lerr) != 0) {
        cli_error("--listen: %s", lerr.msg);
        return CLI_USAGE;
    }
    if ((tls_cert == NULL) != (tls_key == NULL)) {
        cli_error("%s needs %s too: a TLS certificate and its key go together",
                  tls_cert ? "--tls-cert" : "--tls-key", tls_cert ? "--tls-key" : "--tls-cert");
        return CLI_USAGE;
    }
    if (!loopback && tls_cert == NULL) {
        cli_error("--listen %s needs --tls-cert and --tls-key: the cluster's secret would cross "
                  "the network in clear",
                  listen);
        return CLI_USAGE;
    }
    if (tls_cert != NULL && http_tls_check(tls_cert, tls_key, &lerr) != 0) {
        cli_error("%s", lerr.msg);
        return CLI_USAGE;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long long cap = cpus > 0 ? cpus * 4 : 8, qmax = 100000, spool_mib = 256, grace_s = 30,
              timeout_s = 10;
    if ((capacity && cli_whole("--capacity", capacity, 1, 100000, &cap) != 0) ||
        (queue_max && cli_whole("--queue-max", queue_max, 1, 10000000, &qmax) != 0) ||
        (spool && cli_whole("--spool-max", spool, 1, 1048576, &spool_mib) != 0) ||
        (grace && cli_whole("--shutdown-grace", grace, 0, 86400, &grace_s) != 0) ||
        (zk_timeout && cli_whole("--zk-session-timeout", zk_timeout, 2, 600, &timeout_s) != 0))
        return CLI_USAGE;
    char data[4096];
    struct ty_err err;
    ty_err_clear(&err);
    if (api.data != NULL) {
        snprintf(data, sizeof data, "%s", api.data);
    } else if (client_default_data_dir(data, sizeof data, &err) != 0) {
        cli_error("%s", err.msg);
        return CLI_USAGE;
    } else {
        /* beside an embedded server's directory, never in it */
        size_t n = strlen(data);
        snprintf(data + n, sizeof data - n, "-executor");
    }
    struct xproc *xp = calloc(1, sizeof *xp);
    if (xp == NULL) {
        cli_error("out of memory");
        return CLI_SYSTEM;
    }
    xp->grace = (uint32_t)grace_s;
    int status = 0;
    int lock_fd = -1;
    long holder = 0;
    char id[COORD_ID_MAX], boot[64], auth_path[4200];
    snprintf(auth_path, sizeof auth_path, "%s/zk-auth", data);
    rc = file_mkdir_p(data, 0700, &err);
    if (rc == 0 && (rc = file_lock_dir(data, &lock_fd, &holder, &err)) == TY_EBUSY)
        rc = ty_error(&err, TY_EBUSY, "--data", -1, 0,
                      "data directory %s is in use by another tethys process (pid %ld)", data,
                      holder);
    if (rc == 0 && name != NULL) {
        snprintf(id, sizeof id, "%s", name);
        if (!coord_id_ok(name))
            rc =
                ty_error(&err, TY_EINVAL, "--name", -1, 0,
                         "--name: \"%s\" is not an executor id ([A-Za-z0-9._-], 1-63 bytes)", name);
    } else if (rc == 0) {
        rc = executor_load_id(data, id, sizeof id, &err);
    }
    if (rc == 0)
        rc = exec_boot_id(boot, sizeof boot, &err);
    if (rc == 0 && labels != NULL)
        rc = coord_labels_parse(labels, &xp->info, &err);
    if (rc == 0)
        rc = split_domains(domains, &xp->info, &err);
    if (rc != 0) {
        cli_error("%s", err.msg);
        coord_member_info_clear(&xp->info);
        free(xp);
        if (lock_fd >= 0)
            close(lock_fd);
        return rc == TY_EINVAL || rc == TY_EBUSY ? CLI_USAGE : CLI_SYSTEM;
    }
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    snprintf(xp->info.id, sizeof xp->info.id, "%s", id);
    xp->info.host = strdup(host);
    xp->info.version = strdup(TETHYS_VERSION);
    xp->info.pid = getpid();
    xp->info.capacity = (uint32_t)cap;
    xp->info.started_ms = ns_of(CLOCK_REALTIME) / 1000000;
    struct executor_config base = {
        .id = id,
        .kind = "standalone",
        .data_dir = data,
        .boot_id = boot,
        .max_runs = (uint32_t)cap,
        .queue_max = (uint32_t)qmax,
        .max_jobs = 4000000,
        .spool_max = (uint64_t)spool_mib << 20,
    };
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&xp->loop);
    uv_signal_init(&xp->loop, &xp->sigterm);
    uv_signal_init(&xp->loop, &xp->sigint);
    uv_async_init(&xp->loop, &xp->stopped, on_stopped);
    xp->sigterm.data = xp->sigint.data = xp->stopped.data = xp;
    uv_signal_start(&xp->sigterm, on_signal, SIGTERM);
    uv_signal_start(&xp->sigint, on_signal, SIGINT);
    rc = run(xp, data, zk, auth_file ? auth_file : auth_path, (uint32_t)timeout_s * 1000, listen,
             advertise, tls_cert, tls_key, &base, &err);
    if (rc != 0) {
        log_error("cannot start", "error=\"%s\"", err.msg);
        fprintf(stderr, "tethys: %s\n", err.msg);
        status = rc == TY_EINVAL || rc == TY_ENOENT ? CLI_USAGE : CLI_SYSTEM;
        if (xp->x == NULL)
            on_stopped(&xp->stopped);
    }
    uv_run(&xp->loop, UV_RUN_DEFAULT);
    executor_free(xp->x);
    coord_agent_free(atomic_load(&xp->agent));
    routes_member_free(&xp->hc);
    uv_loop_close(&xp->loop);
    coord_member_info_clear(&xp->info);
    free(xp);
    if (lock_fd >= 0)
        close(lock_fd);
    log_info("tethys executor stopped", "status=%d", status);
    return status;
}
