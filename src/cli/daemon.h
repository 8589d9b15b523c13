/*
 * daemon.h - `tethys server`: the embedded deployment, assembled.
 *
 * One process holds the control plane (src/server), one executor (src/executor), the
 * in-process coordination between them (coord_local) and the REST API (src/api).  This is
 * the only place that knows all of them; each knows only the interfaces below it.  With
 * --zk the same process is one server of a cluster: no executor inside, coord_zk instead
 * of coord_local, and the store must be PostgreSQL.
 */
#ifndef DAEMON_H
#define DAEMON_H

#include <stddef.h>
#include <stdint.h>

struct daemon_opts {
    const char *data_dir;    /* created 0700 if missing */
    const char *db;          /* a postgresql:// URL, or NULL for SQLite in data_dir */
    const char *listen;      /* "127.0.0.1:8080" */
    uint32_t max_runs;       /* executor capacity: runs at once (default 4 x CPUs) */
    uint32_t queue_max;      /* runs waiting for capacity before "queue full" (100000) */
    uint32_t shutdown_grace; /* seconds SIGTERM waits for running shards (30) */
    uint32_t retention_days; /* history kept (30) */
    uint32_t retention_runs; /* newest runs kept per job (10000) */
    uint32_t max_jobs;       /* jobs the trigger engine can hold (4,000,000) */
    uint64_t spool_max;      /* bytes of results waiting for the store before output is
                                dropped (256 MiB) */
    const char *tls_cert;    /* PEM certificate (chain) for HTTPS, or NULL */
    const char *tls_key;     /* its private key, or NULL; both or neither */
    double rate_limit;       /* API requests a second per client address (50; 0 = none) */
    uint32_t rate_burst;     /* bucket size per client address (200; 0 = 4 x rate_limit) */
    /* cluster mode (--zk): executors are other processes, found through ZooKeeper */
    const char *const *zk; /* [n_zk] "[NAME=]host:port,...[/chroot]": the ensembles (the
                              first is the default one); none: embedded */
    size_t n_zk;
    const char *const *zk_domains; /* [n_zk_domains] "NAME=domain,...": the domain subtrees
                                      living in ensemble NAME (others: the first) */
    size_t n_zk_domains;
    const char *zk_auth;    /* file holding the digest credential (default DATA/zk-auth) */
    uint32_t zk_timeout_ms; /* session timeout asked for (10000) */
    const char *advertise;  /* the URL executors and other servers reach this one at;
                               NULL: from --listen */
};

/* Run the embedded server in the foreground until SIGTERM/SIGINT.  Returns a process exit
 * status (0 after a clean stop; 2 for bad options or a data directory in use; 3 when it
 * cannot start) and logs why it stopped. */
int daemon_run(const struct daemon_opts *opts);

#endif
