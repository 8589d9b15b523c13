/*
 * cli.h - the tethys command line: one entry point per subcommand group.
 *
 * Each cli_* function receives the arguments after its own name and returns the
 * process exit status.  Exit statuses are part of the interface, documented in
 * docs/cli.md: 0 success, 1 a negative answer (a schedule that never fires, a waited-for
 * run that failed), 2 bad usage or invalid input (including the API's 400, 404, 409,
 * 412), 3 a system failure (a file could not be read, the server is unreachable).
 */
#ifndef CLI_H
#define CLI_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "../os/client.h"

enum cli_exit {
    CLI_OK = 0,
    CLI_NEGATIVE = 1,
    CLI_USAGE = 2,
    CLI_SYSTEM = 3,
};

/* tethys cron next|check ... */
int cli_cron(int argc, char **argv);

/* tethys server ...: run the embedded server in the foreground. */
int cli_server(int argc, char **argv);
int cli_executor(int argc, char **argv);

/* tethys zk clusters|dump|restore (cli_zk.c). */
int cli_zk(int argc, char **argv);

/* Print "tethys: " and the message (and a newline) to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_verror(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Commands over the REST API (see docs/cli.md).  Each takes --json, --data DIR and
 * --cacert FILE. */
int cli_job(int argc, char **argv);       /* job add|edit|show|list|rm|enable|disable|run */
int cli_run(int argc, char **argv);       /* run show|logs|cancel */
int cli_history(int argc, char **argv);   /* history [filters] */
int cli_stats(int argc, char **argv);     /* stats [filters] [--by job|domain|day] */
int cli_alerts(int argc, char **argv);    /* alerts */
int cli_domain(int argc, char **argv);    /* domain add|edit|show|list|rm */
int cli_calendar(int argc, char **argv);  /* calendar add|edit|show|list|rm */
int cli_executors(int argc, char **argv); /* executors */
int cli_import(int argc, char **argv);    /* import crontab FILE (cli_import.c) */
int cli_export(int argc, char **argv);    /* export [--domain D] [--job NAME]... */
int cli_apply(int argc, char **argv);     /* apply -f FILE [--dry-run] [--prune] */
/* job history|diff|restore (cli_history.c); argv[0] is the subcommand */
int cli_job_versions(int argc, char **argv);
/* backup FILE, restore FILE (cli_backup.c): no server needed, see docs/operations.md */
int cli_backup(int argc, char **argv);
int cli_restore(int argc, char **argv);
/* Take DIR's lock (file_lock_dir) for a command that needs the server stopped: the fd, or
 * -1 after printing why - "<op>: ... in use by a running tethys server (pid N); stop it
 * first: <why>" (*status CLI_USAGE), or that the lock cannot be opened (CLI_SYSTEM). */
int cli_lock_dir(const char *dir, const char *op, const char *why, int *status);
int cli_token(int argc, char **argv); /* token create|list|revoke (cli_token.c) */
/* user add|list|passwd|rm|grant|ungrant|unlock (cli_user.c) */
int cli_user(int argc, char **argv);
/* store copy --from DIR --to URL (cli_store.c): no server; the embedded store moved to
 * PostgreSQL, see docs/operations.md */
int cli_store(int argc, char **argv);

/* ---- shared by the commands over the API (cli_admin.c) ---------------------------- */

/* The exit status for a TY_E* code: invalid input and refusals 2, system trouble 3. */
int cli_exit_for(int code);

enum cli_opt_kind {
    CLI_FLAG,  /* --name; dest is int*, set to 1 */
    CLI_VALUE, /* --name V or --name=V; dest is const char** (borrowed from argv) */
    CLI_LIST,  /* like CLI_VALUE, repeatable; dest is struct cli_list* */
};

#define CLI_LIST_MAX 128

struct cli_list {
    const char *v[CLI_LIST_MAX];
    int n;
};

struct cli_opt {
    const char *name;  /* "--cron" */
    const char *alias; /* "-f", or NULL */
    enum cli_opt_kind kind;
    void *dest;
};

/* What every API command shares: its options and its connection. */
struct cli_api {
    const char *data;   /* --data DIR */
    const char *cacert; /* --cacert FILE: CA certificates to trust for HTTPS */
    int json;           /* --json */
    struct client client;
    bool open;
};

/*
 * Parse argv (the words after the command's own name).  Options may come anywhere, as
 * "--name VALUE" or "--name=VALUE"; "--" ends them.  --json, --data, --cacert and
 * -h/--help are always understood (into api and by printing usage to stdout).  Other words are
 * positional, at most max_pos of them, into pos[] (*n_pos).  Returns 0; CLI_USAGE after
 * printing why (and usage to stderr); or -1 after --help (the command then exits 0).
 */
int cli_parse(int argc, char **argv, const struct cli_opt *opts, struct cli_api *api,
              const char **pos, int max_pos, int *n_pos, void (*usage)(FILE *out));

/*
 * A whole number given for `option`, from min to max.  0 and *out, or CLI_USAGE after
 * printing `OPTION: "TEXT" is not a whole number` (with "from MIN to MAX" when the range
 * is narrower than any long long).
 */
int cli_whole(const char *option, const char *text, long long min, long long max, long long *out);

/* Connect (client_open with --data).  0, or an exit status after printing the error. */
int cli_api_open(struct cli_api *api);
void cli_api_close(struct cli_api *api);

/*
 * One API call (client_call); on failure the error is printed ("tethys: <message>") and
 * the exit status returned (cli_exit_for); 0 on success with *resp and *etag as
 * client_call gives them (either may be NULL when not wanted).
 */
int cli_api_call(struct cli_api *api, const char *method, const char *path, const json_t *body,
                 const char *if_match, json_t **resp, char **etag);

/*
 * The items of a paged list (GET path, following "next"; client_pages): at most max of
 * them (0: all) into *items (a new array), *next (may be NULL) the cursor when more
 * remain, else NULL (malloc'd).  0, or an exit status after printing the error.
 */
int cli_api_list(struct cli_api *api, const char *path, size_t max, json_t **items, char **next);

/*
 * Grants from --role and --domain options (cli_user.c): one --role on every --domain (the
 * whole tree without one), or as many --role as --domain, paired in order.  0 and *out (a
 * new JSON array of {"domain", "role"}; [] when neither was given), or CLI_USAGE after
 * printing why (a role or domain that is not one).
 */
int cli_grants_from(const struct cli_list *roles, const struct cli_list *domains, json_t **out);

/* An item's "grants" as a table cell into buf[cap] ("operator of finance, viewer of the
 * whole tree"; "-" for none; cut at cap).  The signature of a struct cli_col cell
 * (cli_user.c). */
void cli_roles_cell(const json_t *item, char *buf, size_t cap);

/* Many job changes sent as few requests (POST /api/v1/jobs:batch; cli_batch.c). */
struct cli_batch {
    size_t n; /* changes */
    /* change i as a batch item ({"op", "job" or "name", "base_version"}): a new reference
     * (NULL: out of memory) */
    json_t *(*item)(void *arg, size_t i);
    /* the answer to change i, in order: rc 0 and the version saved (0 for a delete), or
     * the refusal (a TY_E* code) and err, as the single request would have answered */
    void (*result)(void *arg, size_t i, int rc, const struct ty_err *err, json_int_t version);
    void *arg;
};

/*
 * Send changes 0..n-1 in order, in requests of at most 1000 changes and under the 1 MiB
 * body limit (a handful of changes: one request each, as their single requests); every
 * change sent gets its result call.  0, or an exit status after printing
 * what stopped the sending (the server unreachable, its store failing): the changes not
 * sent by then get no result call.
 */
int cli_batch_send(struct cli_api *api, const struct cli_batch *b);

/* Print a JSON value indented, as the API sent it (--json). */
void cli_print_json(const json_t *v);

/* One column of a table: a title and the field (a dotted path into each item), or a
 * function that writes the cell.  optional: hidden when no item has the field. */
struct cli_col {
    const char *title;
    const char *field;
    void (*cell)(const json_t *item, char *buf, size_t cap);
    bool optional;
};

/* Print items (an array of objects) as an aligned table with a header; "(none)" when
 * empty.  cols NULL: one column per field, in order of first appearance. */
void cli_table(const json_t *items, const struct cli_col *cols, size_t n_cols);

/* Print an object as aligned "key: value" lines; nested objects as "a.b:", lists of
 * objects as "a[0].b:", multi-line text indented below its key; *_ms instants as RFC 3339. */
void cli_show(const json_t *obj);

/* A field's value as display text ("-" when absent or null); dotted paths go down into
 * objects.  Control characters become '?', so a name cannot drive the terminal. */
void cli_cell_text(const json_t *item, const char *field, char *buf, size_t cap);

/* Build a JSON value from "path=value" (--set): value as JSON when it parses (42, true,
 * null, [1,2], {"a":1}, "\"quoted\""), else as a string; a dotted path makes nested
 * objects.  Merged into obj.  0, or CLI_USAGE after printing why. */
int cli_set_field(json_t *obj, const char *assignment, const char *option);

#endif
