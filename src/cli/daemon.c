/*
 * daemon.c - the embedded server's process: data directory, lock, token, and the pieces
 * put together.
 *
 * Start: refuse a listen address off loopback without TLS (the bearer token would cross
 * the network in clear), take the data directory's lock (a second server on it refuses to
 * start), read or create the API token and the executor's id, open the control plane (the
 * store, migrated when older) and the executor (its spool, read back), join them with
 * coord_local, start both; once the executor has its jobs, serve the API, publish
 * server.json so the CLI can find us, and tell a service manager we are ready.
 *
 * Stop (SIGTERM/SIGINT, seen by the control plane's loop): the executor stops firing and
 * lets running shards finish for the grace period, kills what is left, hands its results
 * to the store; then the API stops, server.json goes, the lock is let go.
 */
#define _GNU_SOURCE
#include "daemon.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../api/password.h"
#include "../api/routes.h"
#include "../api/token.h"
#include "../api/web.h"
#include "../coord/coord_zk.h"
#include "../exec/exec.h"
#include "../executor/executor.h"
#include "../os/file.h"
#include "../os/log.h"
#include "../os/notify.h"
#include "../server/server.h"
#include "../store/store.h"

#define DAEMON_ENSEMBLES_MAX 128u

struct daemon {
    struct daemon_opts opts;
    char *data_dir, *url;
    int lock_fd;
    char token[65];
    struct server *server;
    struct executor *executor;
    struct http_server *http;
    bool http_failed;
    struct coord *zk; /* cluster mode: the coordination (owned by the server once started) */
    struct coord *ens[DAEMON_ENSEMBLES_MAX]; /* each ensemble's coord_zk (zk holds them) */
    struct ens_arg {
        struct daemon *d;
        size_t i;
    } ens_arg[DAEMON_ENSEMBLES_MAX];
    bool leads[DAEMON_ENSEMBLES_MAX];
    size_t n_ens;
    char id[COORD_ID_MAX];
};

/* ---------------------------------------------------------------------------------------
 * Files in the data directory
 */

static char *path_join(const char *dir, const char *name)
{
    if (dir == NULL)
        return NULL;
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* One server per data directory: an flock held for the process's life. */
static int take_lock(struct daemon *d, struct ty_err *err)
{
    long holder;
    int fd;
    int rc = file_lock_dir(d->data_dir, &fd, &holder, err);
    if (rc == 0)
        d->lock_fd = fd;
    if (rc == TY_EBUSY)
        rc = ty_error(err, TY_EBUSY, "--data", -1, 0,
                      "data directory %s is in use by another tethys server (pid %ld); stop it "
                      "first or use another --data",
                      d->data_dir, holder);
    return rc;
}

/*
 * Which store this data directory belongs to.  DATA/store.url names the PostgreSQL store
 * of a directory started with --db (and after `tethys store copy`); without it the store
 * is DATA/tethys.db.  The spool holds results on their way to that store, so starting the
 * directory against another one would deliver them to the wrong place, or start a new
 * empty SQLite store beside the real one: refuse, naming both.
 */
static int check_store(struct daemon *d, struct ty_err *err)
{
    char *marker = path_join(d->data_dir, "store.url");
    char *sqlite = path_join(d->data_dir, "tethys.db");
    int rc = 0;
    if (marker == NULL || sqlite == NULL) {
        rc = ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        goto out;
    }
    char url[1024];
    rc = file_read_line(marker, url, sizeof url, err);
    if (rc != 0 && rc != TY_ENOENT)
        goto out;
    bool has_marker = rc == 0;
    rc = 0;
    if (has_marker && d->opts.db == NULL) {
        rc = ty_error(err, TY_EINVAL, "--db", -1, 0,
                      "data directory %s keeps its store in %s (%s): start the server with "
                      "--db %s",
                      d->data_dir, url, marker, url);
    } else if (has_marker && strcmp(url, d->opts.db) != 0) {
        rc = ty_error(err, TY_EINVAL, "--db", -1, 0,
                      "data directory %s belongs to the store %s, not %s; if that database "
                      "moved, write its new URL into %s",
                      d->data_dir, url, d->opts.db, marker);
    } else if (!has_marker && d->opts.db != NULL) {
        if (access(sqlite, F_OK) == 0) {
            rc = ty_error(err, TY_EINVAL, "--db", -1, 0,
                          "data directory %s holds an embedded store (%s); move it first with "
                          "`tethys store copy --from %s --to %s`, or use another --data",
                          d->data_dir, sqlite, d->data_dir, d->opts.db);
        } else {
            char text[1100];
            snprintf(text, sizeof text, "%s\n", d->opts.db);
            rc = file_write_atomic(marker, text, strlen(text), 0600, true, err);
        }
    }
out:
    free(marker);
    free(sqlite);
    return rc;
}

/* The API token: read it, or create it (mode 0600) on the first start. */
static int load_token(struct daemon *d, struct ty_err *err)
{
    char *path = path_join(d->data_dir, "token");
    if (path == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    char line[128];
    int rc = file_read_line(path, line, sizeof line, err);
    if (rc == 0) {
        if (strlen(line) < 32 || strlen(line) > 64)
            rc = ty_error(err, TY_EFORMAT, NULL, -1, 0,
                          "%s does not hold a token (32-64 characters); delete it to have a "
                          "new one made",
                          path);
        else
            snprintf(d->token, sizeof d->token, "%.64s", line); /* checked: 32-64 */
    } else if (rc == TY_ENOENT) {
        unsigned char raw[32];
        if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
            rc = ty_error(err, TY_EIO, NULL, -1, 0, "getrandom: %s", strerror(errno));
        } else {
            for (size_t i = 0; i < sizeof raw; i++)
                snprintf(d->token + 2 * i, 3, "%02x", raw[i]);
            char text[80];
            snprintf(text, sizeof text, "%s\n", d->token);
            rc = file_write_atomic(path, text, strlen(text), 0600, true, err);
            if (rc == 0)
                log_info("created the API token", "path=%s", path);
        }
    }
    free(path);
    return rc;
}

static void write_server_json(struct daemon *d)
{
    char *path = path_join(d->data_dir, "server.json");
    json_t *o = json_pack("{s:s, s:I, s:s}", "url", d->url, "pid", (json_int_t)getpid(), "version",
                          TETHYS_VERSION);
    char *text = json_dumps(o, JSON_COMPACT);
    struct ty_err err;
    if (path != NULL && text != NULL &&
        file_write_atomic(path, text, strlen(text), 0644, true, &err) != 0)
        log_warn("cannot write server.json", "error=\"%s\"", err.msg);
    free(text);
    json_decref(o);
    free(path);
}

static void remove_server_json(struct daemon *d)
{
    char *path = path_join(d->data_dir, "server.json");
    if (path != NULL)
        unlink(path);
    free(path);
}

/* Listening off loopback needs TLS: the bearer token travels in every request. */
static int check_listen(const struct daemon_opts *o, struct ty_err *err)
{
    bool loopback = false;
    int rc = http_listen_is_loopback(o->listen, &loopback, err);
    if (rc != 0)
        return rc;
    if ((o->tls_cert == NULL) != (o->tls_key == NULL))
        return ty_error(err, TY_EINVAL, o->tls_cert ? "--tls-key" : "--tls-cert", -1, 0,
                        "%s needs %s too: a TLS certificate and its key go together",
                        o->tls_cert ? "--tls-cert" : "--tls-key",
                        o->tls_cert ? "--tls-key" : "--tls-cert");
    if (!loopback && o->tls_cert == NULL)
        return ty_error(err, TY_EINVAL, "--listen", -1, 0,
                        "listening on %s needs --tls-cert and --tls-key: the API token would "
                        "cross the network in clear",
                        o->listen);
    return o->tls_cert != NULL ? http_tls_check(o->tls_cert, o->tls_key, err) : 0;
}

/* The URL the CLI on this machine uses (server.json): a wildcard address becomes the
 * loopback one, which is where a local client finds a server listening everywhere. */
static char *make_url(const struct daemon_opts *o, int port)
{
    char host[256];
    snprintf(host, sizeof host, "%s", o->listen);
    char *colon = strrchr(host, ':');
    if (colon != NULL)
        *colon = '\0';
    if (strcmp(host, "0.0.0.0") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    else if (strcmp(host, "[::]") == 0)
        snprintf(host, sizeof host, "[::1]");
    char url[320];
    snprintf(url, sizeof url, "%s://%s:%d", o->tls_cert ? "https" : "http", host, port);
    return strdup(url);
}

/*
 * The first user: on a store without users the server makes "admin" with a one-time
 * password, tells the operator once - on standard output (the journal under systemd) - and
 * leaves it in DATA/initial-admin-password (0600) until it is changed.  There is no
 * default password.  A failure here does not stop the server: the bootstrap token still
 * works, and `tethys user add` can make a user.
 */
static void first_user(struct daemon *d)
{
    char pw[PASSWORD_ONE_TIME + 1];
    bool created = false;
    struct ty_err err;
    if (routes_first_user(d->server, pw, &created, &err) != 0) {
        log_error("cannot make the first user", "error=\"%s\"", err.msg);
        return;
    }
    if (!created)
        return;
    char *path = path_join(d->data_dir, "initial-admin-password");
    char text[PASSWORD_ONE_TIME + 2];
    snprintf(text, sizeof text, "%s\n", pw);
    if (path != NULL && file_write_atomic(path, text, strlen(text), 0600, true, &err) == 0)
        log_info("wrote the first user's one-time password", "path=%s", path);
    else if (path != NULL)
        log_warn("cannot write the one-time password file", "path=%s error=\"%s\"", path, err.msg);
    printf("\ntethys: sign in at %s/ as admin with password %s — you must change it.\n"
           "        (It is also in %s until you do; there is no other way to get it back.)\n\n",
           d->url != NULL ? d->url : d->opts.listen, pw, path != NULL ? path : "DATA");
    fflush(stdout);
    memset(pw, 0, sizeof pw);
    memset(text, 0, sizeof text);
    free(path);
}

/* ---------------------------------------------------------------------------------------
 * Hooks the control plane calls on its loop
 */

/* The web console: every GET the API's routes do not answer (src/api/web.c). */
static const struct http_route console_route = {HTTP_GET, "/", web_serve, true, &web_console, 0, 0};

/* The executor has its jobs: serve. */
static void on_ready(void *arg)
{
    struct daemon *d = arg;
    struct http_config hc;
    routes_config(d->server, d->opts.listen, d->token, &hc);
    hc.fallback = &console_route;
    hc.tls_cert = d->opts.tls_cert;
    hc.tls_key = d->opts.tls_key;
    hc.rate_per_s = d->opts.rate_limit;
    hc.rate_burst = d->opts.rate_burst;
    struct ty_err err;
    if (http_start(&hc, &d->http, &err) != 0) {
        log_error("cannot serve the API", "error=\"%s\"", err.msg);
        fprintf(stderr, "tethys: %s\n", err.msg);
        d->http_failed = true;
        server_stop(d->server);
        return;
    }
    d->url = make_url(&d->opts, http_port(d->http));
    first_user(d);
    if (d->url != NULL)
        write_server_json(d);
    char state[600];
    snprintf(state, sizeof state, "READY=1\nMAINPID=%ld\nSTATUS=listening on %s", (long)getpid(),
             d->url ? d->url : d->opts.listen);
    int rc = notify_send(state);
    if (rc < 0)
        log_warn("cannot notify the service manager", "socket=\"%s\" error=\"%s\"",
                 getenv("NOTIFY_SOCKET"), strerror(-rc));
    log_info("tethys server started",
             "version=%s url=%s data=%s store=%s max_runs=%u tls=%s rate_limit=%g "
             "rate_burst=%u",
             TETHYS_VERSION, d->url ? d->url : "", d->data_dir,
             d->opts.db != NULL ? d->opts.db : "sqlite", d->opts.max_runs,
             d->opts.tls_cert ? "on" : "off", d->opts.rate_limit, d->opts.rate_burst);
}

static void executor_stopped(void *arg)
{
    struct daemon *d = arg;
    server_executors_stopped(d->server);
}

static void executor_changed(void *arg)
{
    struct daemon *d = arg;
    server_executors_changed(d->server);
}

static void stop_executors(void *arg, uint32_t grace_s)
{
    struct daemon *d = arg;
    if (d->executor == NULL) /* a cluster server: its executors are other processes */
        server_executors_stopped(d->server);
    else
        executor_stop(d->executor, grace_s, executor_stopped, d);
}

/* ---------------------------------------------------------------------------------------
 * Cluster mode
 */

static json_t *clusters_info(void *arg)
{
    struct daemon *d = arg;
    json_t *items = json_array();
    for (size_t i = 0; i < d->n_ens; i++)
        json_array_append_new(items, coord_zk_info(d->ens[i]));
    return items;
}

/* The server leads when it leads any of its ensembles (each elects its own leader). */
static void on_leader(void *arg, bool leader)
{
    struct ens_arg *e = arg;
    struct daemon *d = e->d;
    d->leads[e->i] = leader;
    bool any = false;
    for (size_t i = 0; i < d->n_ens; i++)
        any |= d->leads[i];
    server_set_leader(d->server, any);
    log_info(leader ? "leading an ensemble" : "standing by in an ensemble", "server=%s zk=%s",
             d->id, d->opts.zk[e->i]);
}

static void on_peer_secret_of(void *arg, const char *secret)
{
    struct ens_arg *e = arg;
    server_set_peer_secret(e->d->server, secret);
}

static int record_lost_of(void *arg, const json_t *runs, const char *executor, struct ty_err *err)
{
    struct ens_arg *e = arg;
    return server_record_lost(e->d->server, runs, executor, err);
}

static void not_ha_of(void *arg, const char *job, const char *domain, int level, const char *reason)
{
    struct ens_arg *e = arg;
    server_not_ha(e->d->server, job, domain, level, reason);
}

/* "[NAME=]HOSTS": the name (into name[cap]) and where the hosts begin. */
static const char *ensemble_spec(const char *spec, size_t i, char *name, size_t cap)
{
    const char *eq = strchr(spec, '=');
    const char *colon = strchr(spec, ':');
    if (eq != NULL && (colon == NULL || eq < colon)) {
        snprintf(name, cap, "%.*s", (int)(eq - spec), spec);
        return eq + 1;
    }
    if (i == 0)
        snprintf(name, cap, "default");
    else
        snprintf(name, cap, "zk%zu", i + 1);
    return spec;
}

/*
 * Every server's DATA/token works against all of them: its hash goes into the shared
 * store as the named token "server-<id>-<8 hex digits of its hash>" (kept when there).
 */
static int share_token(struct daemon *d, struct ty_err *err)
{
    char hash[TOKEN_HASH_HEX];
    if (token_hash(d->token, strlen(d->token), hash) != 0)
        return ty_error(err, TY_EIO, NULL, -1, 0, "cannot hash the API token (GnuTLS)");
    struct store *st = NULL;
    int rc = store_open(d->opts.db, false, &st, err);
    if (rc != 0)
        return rc;
    char name[COORD_ID_MAX + 24];
    snprintf(name, sizeof name, "server-%s-%.8s", d->id, hash);
    rc = store_token_put(st, name, hash, 0, name, err);
    if (rc == TY_EEXIST)
        rc = 0;
    else if (rc == 0)
        log_info("this server's token is known to the whole cluster", "token=%s", name);
    /* a data directory's token may do everything, on every server of the cluster */
    json_t *all = json_pack("[{s:s, s:s}]", "domain", "", "role", "admin");
    if (rc == 0)
        rc = all != NULL ? store_grants_set(st, STORE_P_TOKEN, name, all, err)
                         : ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    json_decref(all);
    store_close(st);
    return rc;
}

/* The URL other members reach this server at: --advertise, else --listen (a port is
 * needed then: port 0 is known only after binding, too late for the election). */
static int cluster_url(struct daemon *d, char **out, struct ty_err *err)
{
    if (d->opts.advertise != NULL) {
        if (strncmp(d->opts.advertise, "http://", 7) != 0 &&
            strncmp(d->opts.advertise, "https://", 8) != 0)
            return ty_error(err, TY_EINVAL, "--advertise", -1, 0,
                            "--advertise: \"%s\" is not an http:// or https:// URL",
                            d->opts.advertise);
        *out = strdup(d->opts.advertise);
        return *out ? 0 : ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    const char *colon = strrchr(d->opts.listen, ':');
    long port = colon ? strtol(colon + 1, NULL, 10) : 0;
    if (port <= 0)
        return ty_error(err, TY_EINVAL, "--listen", -1, 0,
                        "--listen %s: a cluster server needs a fixed port (or --advertise URL) "
                        "so that its executors can reach it",
                        d->opts.listen);
    *out = make_url(&d->opts, (int)port);
    return *out ? 0 : ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
}

static int start_cluster(struct daemon *d, struct ty_err *err)
{
    char auth[256], *url = NULL;
    char *auth_path = d->opts.zk_auth ? strdup(d->opts.zk_auth) : path_join(d->data_dir, "zk-auth");
    int rc = auth_path == NULL ? ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory")
                               : coord_zk_read_auth(auth_path, auth, sizeof auth, err);
    free(auth_path);
    if (rc == 0 && d->opts.n_zk > DAEMON_ENSEMBLES_MAX)
        rc = ty_error(err, TY_EINVAL, "--zk", -1, 0, "--zk: at most %d ensembles",
                      DAEMON_ENSEMBLES_MAX);
    if (rc == 0)
        rc = cluster_url(d, &url, err);
    if (rc == 0)
        rc = share_token(d, err);
    /* each ensemble: its name, its coordination */
    char names[DAEMON_ENSEMBLES_MAX][64];
    for (size_t i = 0; rc == 0 && i < d->opts.n_zk; i++) {
        char *hosts = NULL;
        const char *spec = ensemble_spec(d->opts.zk[i], i, names[i], sizeof names[i]);
        for (size_t k = 0; k < i; k++)
            if (strcmp(names[k], names[i]) == 0)
                rc = ty_error(err, TY_EINVAL, "--zk", -1, 0, "--zk: two ensembles are named \"%s\"",
                              names[i]);
        if (rc == 0)
            rc = coord_zk_hosts(spec, &hosts, err);
        if (rc == 0) {
            d->ens_arg[i] = (struct ens_arg){d, i};
            struct coord_zk_config zc = {
                .name = names[i],
                .hosts = hosts,
                .auth = auth,
                .session_timeout_ms = d->opts.zk_timeout_ms,
                .id = d->id,
                .url = url,
                .store = d->opts.db,
                .on_leader = on_leader,
                .on_secret = on_peer_secret_of,
                .record_lost = record_lost_of,
                .not_ha = not_ha_of,
                .arg = &d->ens_arg[i],
            };
            rc = coord_zk_new(server_loop(d->server), &zc, &d->ens[i], err);
            if (rc == 0)
                d->n_ens++;
        }
        free(hosts);
    }
    free(url);
    /* which domains live where */
    const char *route_dom[256];
    size_t route_idx[256], n_routes = 0;
    char *copies[DAEMON_ENSEMBLES_MAX] = {0};
    for (size_t i = 0; rc == 0 && i < d->opts.n_zk_domains && i < DAEMON_ENSEMBLES_MAX; i++) {
        const char *spec = d->opts.zk_domains[i], *eq = strchr(spec, '=');
        size_t at = SIZE_MAX;
        for (size_t k = 0; eq != NULL && k < d->n_ens; k++)
            if (strlen(names[k]) == (size_t)(eq - spec) && strncmp(names[k], spec, eq - spec) == 0)
                at = k;
        if (at == SIZE_MAX) {
            rc = ty_error(err, TY_EINVAL, "--zk-domains", -1, 0,
                          "--zk-domains %s: expected NAME=DOMAIN,... naming an ensemble of --zk",
                          spec);
            break;
        }
        if ((copies[i] = strdup(eq + 1)) == NULL) {
            rc = ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
            break;
        }
        char *save = NULL;
        for (char *dom = strtok_r(copies[i], ",", &save); dom != NULL && n_routes < 256;
             dom = strtok_r(NULL, ",", &save)) {
            route_dom[n_routes] = dom;
            route_idx[n_routes++] = at;
        }
    }
    if (rc == 0 && d->n_ens == 1 && n_routes == 0) {
        d->zk = d->ens[0];
    } else if (rc == 0) {
        rc = coord_multi_new(d->ens, d->n_ens, route_dom, route_idx, n_routes, &d->zk, err);
    }
    for (size_t i = 0; i < DAEMON_ENSEMBLES_MAX; i++)
        free(copies[i]);
    if (rc != 0) {
        for (size_t i = 0; i < d->n_ens; i++)
            coord_close(d->ens[i]);
        d->n_ens = 0;
        return rc;
    }
    server_set_clusters(d->server, clusters_info, d);
    log_info("cluster server", "id=%s ensembles=%zu zk=%s", d->id, d->n_ens, d->opts.zk[0]);
    return server_start(d->server, d->zk, err);
}

/* ---------------------------------------------------------------------------------------
 * Start and stop
 */

/*
 * A PostgreSQL store may be down when the server starts (a host rebooting, a failover in
 * progress): wait for it, saying so, rather than exit and leave the spool undelivered and
 * the jobs unrun until someone restarts us.  SIGTERM or SIGINT meanwhile ends the wait
 * (TY_EUNAVAIL); other failures (a bad URL, a refused password, a newer schema) end it at
 * once, since waiting would not mend them.
 */
static int wait_for_store(const char *db, struct ty_err *err)
{
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, &old);
    int rc, tries = 0;
    struct store *probe = NULL;
    while ((rc = store_open(db, false, &probe, err)) == TY_EUNAVAIL) {
        int wait_s = tries < 5 ? 1 : 5;
        if (tries++ == 0 || tries % 12 == 0)
            log_warn("waiting for the store", "store=%s retry_s=%d error=\"%s\"", db, wait_s,
                     err->msg);
        struct timespec ts = {wait_s, 0};
        int sig = sigtimedwait(&stop, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            rc = ty_error(err, TY_EUNAVAIL, "--db", -1, 0,
                          "stopped while waiting for the store %s: %s", db, err->msg);
            break;
        }
    }
    store_close(probe);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0 && tries > 0)
        log_info("the store answers", "store=%s", db);
    return rc;
}

static int start(struct daemon *d, struct ty_err *err)
{
    int rc;
    if ((rc = check_listen(&d->opts, err)) != 0 ||
        (rc = file_mkdir_p(d->data_dir, 0700, err)) != 0 || (rc = take_lock(d, err)) != 0 ||
        (rc = check_store(d, err)) != 0 || (rc = load_token(d, err)) != 0)
        return rc;
    if (d->opts.db != NULL && (rc = wait_for_store(d->opts.db, err)) != 0)
        return rc;
    char *id = d->id, boot[64];
    if ((rc = executor_load_id(d->data_dir, id, sizeof d->id, err)) != 0 ||
        (rc = exec_boot_id(boot, sizeof boot, err)) != 0)
        return rc;
    char *db = d->opts.db != NULL ? strdup(d->opts.db) : path_join(d->data_dir, "tethys.db");
    if (db == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    struct server_config sc = {
        .data_dir = d->data_dir,
        .db = db,
        .token = d->token,
        .shutdown_grace = d->opts.shutdown_grace,
        .retention_days = d->opts.retention_days,
        .retention_runs = d->opts.retention_runs,
        .on_ready = on_ready,
        .stop_executors = stop_executors,
        .hook_arg = d,
        .cluster = d->opts.n_zk > 0,
    };
    rc = server_open(&sc, &d->server, err);
    free(db);
    if (rc != 0)
        return rc;
    if (d->opts.n_zk > 0)
        return start_cluster(d, err);
    struct executor_config xc = {
        .id = id,
        .kind = "embedded",
        .data_dir = d->data_dir,
        .boot_id = boot,
        .max_runs = d->opts.max_runs,
        .queue_max = d->opts.queue_max,
        .max_jobs = d->opts.max_jobs,
        .spool_max = d->opts.spool_max,
        .deliver = server_ingest,
        .deliver_arg = d->server,
        .changed = executor_changed,
        .changed_arg = d,
    };
    if ((rc = executor_new(&xc, &d->executor, err)) != 0 ||
        (rc = executor_start(d->executor, err)) != 0)
        return rc;
    struct coord_member member;
    executor_member(d->executor, &member);
    struct coord *c = NULL;
    if ((rc = coord_local_new(server_loop(d->server), &member, &c, err)) != 0)
        return rc;
    return server_start(d->server, c, err);
}

int daemon_run(const struct daemon_opts *opts)
{
    struct daemon dd;
    struct daemon *d = &dd;
    memset(d, 0, sizeof *d);
    d->opts = *opts;
    d->lock_fd = -1;
    d->data_dir = strdup(opts->data_dir);
    signal(SIGPIPE, SIG_IGN);
    struct ty_err err;
    ty_err_clear(&err);
    int status = 0;
    int rc = d->data_dir ? start(d, &err) : ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    if (rc != 0) {
        log_error("cannot start", "error=\"%s\"", err.msg);
        fprintf(stderr, "tethys: %s\n", err.msg);
        status = rc == TY_EBUSY || rc == TY_EINVAL ? 2 : 3;
        if (d->executor != NULL && d->server != NULL) {
            /* started halfway: the executor's thread runs; stop it and let the loop end */
            executor_stop(d->executor, 0, executor_stopped, d);
            server_run(d->server);
        } else if (d->zk != NULL) {
            coord_close(d->zk); /* never handed to the server: its handles close here */
            server_executors_stopped(d->server);
            server_run(d->server);
        }
    } else {
        status = server_run(d->server);
        if (d->http_failed)
            status = 3;
    }
    if (d->http != NULL)
        http_stop(d->http);
    executor_free(d->executor);
    server_close(d->server);
    if (d->url != NULL)
        remove_server_json(d);
    if (d->lock_fd >= 0)
        close(d->lock_fd);
    log_info("tethys server stopped", "status=%d", status);
    free(d->url);
    free(d->data_dir);
    return status;
}
