/*
 * cli_backup.c - `tethys backup FILE` and `tethys restore FILE`: the data directory's
 * database, copied out and put back.  Neither talks to the server.
 *
 * backup opens DATA/tethys.db as a reader and copies it with SQLite's online backup API
 * (store_backup): one read snapshot, so the copy is consistent whether a server is
 * writing or not, and it never blocks the server (WAL: readers and the writer do not
 * wait for each other).  The copy is one self-contained file; it never overwrites one.
 *
 * restore is for a stopped server, and checks that it is: it takes the data directory's
 * lock (the flock a running server holds for its whole life) and keeps it until done, so
 * no server can start in the middle.  The file must be a Tethys store this binary can
 * open - now, or after the migration the server runs when it starts - and pass SQLite's
 * quick_check (store_check_sqlite).  It is then copied into the data directory under a
 * temporary name, fsync'd, and renamed over tethys.db: a crash at any moment leaves
 * either the old database or the restored one, never a mix.  The database it replaces
 * is kept beside it as tethys.db.before-restore-<UTC time>, with its -wal file when the
 * server did not stop cleanly (so nothing in it is lost); the -shm is removed, as a stale
 * -wal or -shm left next to the restored file would be applied to it.  Replacing a
 * database needs --force.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "../core/strbuf.h"
#include "../os/file.h"
#include "../store/store.h"

#define DB_NAME "tethys.db"

static void backup_usage(FILE *out)
{
    fprintf(out,
            "usage: tethys backup FILE [--data DIR] [--json]\n"
            "\n"
            "Copy the data directory's database to FILE, a new file (never overwritten), while\n"
            "the server runs or not: the copy is one consistent snapshot.  `tethys restore\n"
            "FILE` brings it back.\n");
}

static void restore_usage(FILE *out)
{
    fprintf(out, "usage: tethys restore FILE [--data DIR] [--force] [--json]\n"
                 "\n"
                 "Put a backup back as the data directory's database; the server must be stopped.\n"
                 "FILE must be a Tethys database (from `tethys backup`, or a tethys.db.v*.bak an\n"
                 "upgrade left) of this version of Tethys or an older one.  The database it\n"
                 "replaces is kept as DIR/tethys.db.before-restore-<time>; replacing one needs\n"
                 "--force.  DIR is created when it does not exist.\n");
}

/* The data directory: --data, else the default one.  0 or an exit status. */
static int data_dir(const struct cli_api *api, struct strbuf *dir)
{
    if (api->data != NULL) {
        sb_adds(dir, api->data);
        return 0;
    }
    char buf[4096];
    struct ty_err err;
    int rc = client_default_data_dir(buf, sizeof buf, &err);
    if (rc != 0) {
        cli_error("%s (give --data DIR)", err.msg);
        return CLI_USAGE;
    }
    sb_adds(dir, buf);
    return 0;
}

/* Backup and restore here are SQLite's: a data directory whose store is PostgreSQL
 * (DATA/store.url, tethys server --db) is backed up with PostgreSQL's own tools. */
static int sqlite_dir(const char *dir)
{
    struct strbuf marker;
    sb_init(&marker);
    sb_addf(&marker, "%s/store.url", dir);
    char url[1024];
    struct ty_err err;
    int rc = file_read_line(sb_str(&marker), url, sizeof url, &err);
    sb_free(&marker);
    if (rc != 0)
        return 0;
    cli_error("%s keeps its store in PostgreSQL (%s): back it up and restore it with pg_dump "
              "and pg_restore (docs/operations.md, \"Backup and restore\")",
              dir, url);
    return CLI_USAGE;
}

static void utc_stamp(char *buf, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, cap, "%Y%m%dT%H%M%SZ", &tm);
}

/* ---- backup ------------------------------------------------------------------------------- */

int cli_backup(int argc, char **argv)
{
    struct cli_api api = {0};
    const char *pos[1] = {NULL};
    int n_pos;
    static const struct cli_opt none[] = {{NULL, NULL, CLI_FLAG, NULL}};
    int rc = cli_parse(argc, argv, none, &api, pos, 1, &n_pos, backup_usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    if (n_pos == 0) {
        cli_error("backup: give the FILE to write the copy to");
        backup_usage(stderr);
        return CLI_USAGE;
    }
    const char *file = pos[0];
    struct strbuf dir, db;
    sb_init(&dir);
    sb_init(&db);
    if ((rc = data_dir(&api, &dir)) != 0 || (rc = sqlite_dir(sb_str(&dir))) != 0) {
        sb_free(&dir);
        sb_free(&db);
        return rc;
    }
    sb_addf(&db, "%s/" DB_NAME, sb_str(&dir));
    struct stat st;
    struct ty_err err;
    ty_err_clear(&err);
    struct store *s = NULL;
    if (stat(sb_str(&db), &st) != 0) {
        cli_error("no database in %s (%s: %s): is it a Tethys data directory?", sb_str(&dir),
                  sb_str(&db), strerror(errno));
        rc = CLI_USAGE;
    } else if ((rc = store_open_sqlite(sb_str(&db), true, &s, &err)) != 0 ||
               (rc = store_backup(s, file, &err)) != 0) {
        cli_error("%s", err.msg);
        rc = cli_exit_for(rc);
    }
    char *version = NULL;
    if (rc == 0 && store_meta_get(s, "schema_version", &version, NULL) != 0)
        version = NULL;
    store_close(s);
    if (rc == 0) {
        long long bytes = stat(file, &st) == 0 ? (long long)st.st_size : -1;
        if (api.json) {
            json_t *out = json_pack("{s:s, s:s, s:I, s:I}", "file", file, "database", sb_str(&db),
                                    "bytes", (json_int_t)bytes, "schema_version",
                                    (json_int_t)(version ? strtoll(version, NULL, 10) : 0));
            cli_print_json(out);
            json_decref(out);
        } else {
            printf("backed up %s to %s (%lld bytes, schema version %s)\n", sb_str(&db), file, bytes,
                   version ? version : "?");
        }
    }
    free(version);
    sb_free(&dir);
    sb_free(&db);
    return rc;
}

/* ---- restore ------------------------------------------------------------------------------ */

/* mkdir -p with mode 0700 for what it creates.  0 or -1 (errno set). */
static int make_dirs(const char *path)
{
    char *p = strdup(path);
    if (p == NULL)
        return -1;
    int rc = 0;
    for (char *s = p + 1; rc == 0; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            rc = -1;
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    return rc;
}

int cli_lock_dir(const char *dir, const char *op, const char *why, int *status)
{
    int fd;
    long holder;
    struct ty_err err;
    int rc = file_lock_dir(dir, &fd, &holder, &err);
    if (rc == TY_EBUSY) {
        cli_error("%s: the data directory %s is in use by a running tethys server (pid %ld); "
                  "stop it first: %s",
                  op, dir, holder, why);
        *status = CLI_USAGE;
    } else if (rc != 0) {
        cli_error("%s: %s", op, err.msg);
        *status = CLI_SYSTEM;
    }
    return rc == 0 ? fd : -1;
}

/* Copy from -> to (a new file, 0600), fsync'd.  0, or an exit status after saying why. */
static int copy_synced(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        cli_error("restore: cannot read %s: %s", from, strerror(errno));
        return CLI_SYSTEM;
    }
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        cli_error("restore: cannot create %s: %s", to, strerror(errno));
        close(in);
        return CLI_SYSTEM;
    }
    static char buf[1 << 16];
    int rc = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cli_error("restore: cannot read %s: %s", from, strerror(errno));
            rc = CLI_SYSTEM;
            break;
        }
        if (n == 0)
            break;
        for (ssize_t done = 0; done < n && rc == 0;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                cli_error("restore: cannot write %s: %s%s", to, strerror(errno),
                          errno == ENOSPC ? " (nothing was changed)" : "");
                rc = CLI_SYSTEM;
            }
            done += w > 0 ? w : 0;
        }
        if (rc != 0)
            break;
    }
    if (rc == 0 && fsync(out) != 0) {
        cli_error("restore: cannot sync %s: %s", to, strerror(errno));
        rc = CLI_SYSTEM;
    }
    if (close(out) != 0 && rc == 0) {
        cli_error("restore: cannot write %s: %s", to, strerror(errno));
        rc = CLI_SYSTEM;
    }
    close(in);
    if (rc != 0)
        unlink(to);
    return rc;
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static bool exists(const char *path, struct stat *st)
{
    struct stat tmp;
    return stat(path, st != NULL ? st : &tmp) == 0;
}

/*
 * The file must be a backup, not a live database: a -wal with content or a -journal
 * beside it holds changes a byte copy would miss.  0, or an exit status after saying why.
 */
static int check_standalone(const char *file)
{
    static const char *const sides[] = {"-wal", "-journal"};
    for (size_t i = 0; i < 2; i++) {
        struct strbuf p;
        sb_init(&p);
        sb_addf(&p, "%s%s", file, sides[i]);
        struct stat st;
        bool live = exists(sb_str(&p), &st) && st.st_size > 0;
        if (live)
            cli_error("restore: %s has a %s file beside it: it is a live database, not a "
                      "backup (take one with `tethys backup`)",
                      file, sides[i] + 1);
        sb_free(&p);
        if (live)
            return CLI_USAGE;
    }
    return 0;
}

/*
 * Set the current database aside as keep (a hard link, so tethys.db stays in place until
 * the rename over it), with its -wal and -journal; remove its -shm.  0 or an exit status.
 */
static int set_aside(const char *db, const char *keep, bool has_db)
{
    if (has_db && link(db, keep) != 0) {
        cli_error("restore: cannot keep %s as %s: %s; nothing was changed", db, keep,
                  strerror(errno));
        return CLI_SYSTEM;
    }
    static const char *const sides[] = {"-wal", "-journal"};
    for (size_t i = 0; i < 2; i++) {
        struct strbuf from, to;
        sb_init(&from);
        sb_init(&to);
        sb_addf(&from, "%s%s", db, sides[i]);
        sb_addf(&to, "%s%s", keep, sides[i]);
        if (exists(sb_str(&from), NULL) && rename(sb_str(&from), sb_str(&to)) != 0)
            cli_error("warning: cannot move %s to %s: %s", sb_str(&from), sb_str(&to),
                      strerror(errno));
        sb_free(&from);
        sb_free(&to);
    }
    struct strbuf shm;
    sb_init(&shm);
    sb_addf(&shm, "%s-shm", db);
    unlink(sb_str(&shm));
    sb_free(&shm);
    return 0;
}

struct restore_paths {
    struct strbuf dir, db, tmp, keep;
};

static int do_restore(const struct cli_api *api, const char *file, bool force,
                      struct restore_paths *p)
{
    struct stat fst, dst;
    if (!exists(file, &fst) || !S_ISREG(fst.st_mode)) {
        cli_error("restore: %s: %s", file, exists(file, NULL) ? "not a file" : strerror(ENOENT));
        return CLI_USAGE;
    }
    bool has_db = exists(sb_str(&p->db), &dst);
    if (has_db && dst.st_dev == fst.st_dev && dst.st_ino == fst.st_ino) {
        cli_error("restore: %s is the data directory's own database", file);
        return CLI_USAGE;
    }
    int rc = check_standalone(file);
    if (rc != 0)
        return rc;
    int version = 0;
    struct ty_err err;
    ty_err_clear(&err);
    if ((rc = store_check_sqlite(file, &version, &err)) != 0) {
        cli_error("restore: %s", err.msg);
        return rc == TY_EIO || rc == TY_ENOMEM ? CLI_SYSTEM : CLI_USAGE;
    }
    if (has_db && !force) {
        cli_error("restore: %s already holds a database; restoring replaces it (it is kept as "
                  "%s.before-restore-<time>): add --force",
                  sb_str(&p->dir), DB_NAME);
        return CLI_USAGE;
    }
    sb_addf(&p->tmp, "%s/.%s.restore-%ld.tmp", sb_str(&p->dir), DB_NAME, (long)getpid());
    unlink(sb_str(&p->tmp)); /* a leftover of an interrupted restore by a reused pid */
    if ((rc = copy_synced(file, sb_str(&p->tmp))) != 0)
        return rc;
    char stamp[32];
    utc_stamp(stamp, sizeof stamp);
    for (int n = 1; n < 100; n++) {
        sb_truncate(&p->keep, 0);
        sb_addf(&p->keep, "%s.before-restore-%s", sb_str(&p->db), stamp);
        if (n > 1)
            sb_addf(&p->keep, "-%d", n);
        if (!exists(sb_str(&p->keep), NULL))
            break;
    }
    if ((rc = set_aside(sb_str(&p->db), sb_str(&p->keep), has_db)) != 0) {
        unlink(sb_str(&p->tmp));
        return rc;
    }
    if (rename(sb_str(&p->tmp), sb_str(&p->db)) != 0) {
        cli_error("restore: cannot rename %s to %s: %s", sb_str(&p->tmp), sb_str(&p->db),
                  strerror(errno));
        unlink(sb_str(&p->tmp));
        return CLI_SYSTEM;
    }
    sync_dir(sb_str(&p->dir));
    if (api->json) {
        json_t *out =
            json_pack("{s:s, s:s, s:i, s:s?}", "file", file, "database", sb_str(&p->db),
                      "schema_version", version, "kept", has_db ? sb_str(&p->keep) : NULL);
        cli_print_json(out);
        json_decref(out);
        return 0;
    }
    printf("restored %s as %s (schema version %d%s)\n", file, sb_str(&p->db), version,
           version < 2 ? "; the server migrates it when it starts" : "");
    if (has_db)
        printf("the database it replaced is kept as %s\n", sb_str(&p->keep));
    return 0;
}

int cli_restore(int argc, char **argv)
{
    struct cli_api api = {0};
    const char *pos[1] = {NULL};
    int n_pos, force = 0;
    const struct cli_opt opts[] = {{"--force", NULL, CLI_FLAG, &force},
                                   {NULL, NULL, CLI_FLAG, NULL}};
    int rc = cli_parse(argc, argv, opts, &api, pos, 1, &n_pos, restore_usage);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    if (n_pos == 0) {
        cli_error("restore: give the backup FILE to restore");
        restore_usage(stderr);
        return CLI_USAGE;
    }
    struct restore_paths p;
    sb_init(&p.dir);
    sb_init(&p.db);
    sb_init(&p.tmp);
    sb_init(&p.keep);
    int lock = -1;
    if ((rc = data_dir(&api, &p.dir)) == 0 && (rc = sqlite_dir(sb_str(&p.dir))) == 0 &&
        make_dirs(sb_str(&p.dir)) != 0) {
        cli_error("restore: cannot create %s: %s", sb_str(&p.dir), strerror(errno));
        rc = CLI_SYSTEM;
    }
    if (rc == 0 && (lock = cli_lock_dir(sb_str(&p.dir), "restore",
                                        "a restore replaces the database under it", &rc)) >= 0) {
        sb_addf(&p.db, "%s/" DB_NAME, sb_str(&p.dir));
        rc = do_restore(&api, pos[0], force, &p);
        close(lock); /* releases the flock: a server may start now */
    }
    sb_free(&p.dir);
    sb_free(&p.db);
    sb_free(&p.tmp);
    sb_free(&p.keep);
    return rc;
}
