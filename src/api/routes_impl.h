/*
 * routes_impl.h - what the API's route files (src/api/routes*.c) share with routes.c.
 *
 * routes.c owns the handlers that save configuration: their validation, the checks that
 * look at other objects, If-Match, telling the loop and the answer.  Another route file
 * that needs a save (restoring an old version) goes through them instead of repeating
 * them, and hands its own table of routes to routes.c's tables[].
 */
#ifndef ROUTES_IMPL_H
#define ROUTES_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/role.h"
#include "routes.h"
#include "token.h"

/* ---------------------------------------------------------------------------------------
 * Who may call what (routes_auth.c).  Every route declares what it needs (http_route.perm);
 * routes__permit decides it in one place, after the body is read and before the handler
 * runs, looking up the domain the request is about: the job's (its stored definition), a
 * run's, a domain's own path, the one in the body of a create, both of a move.  Routes
 * that answer lists (ROUTES_P_ANY) filter their answers by what the caller may read.
 */
enum routes_perm {
    ROUTES_P_UNDECLARED = 0, /* refused by http_start: every route declares one */
    ROUTES_P_SELF,           /* any caller, even a user who must change the password first */
    ROUTES_P_ANY,            /* any caller; the handler answers only what it may read, or
                                checks each item (a batch) */
    ROUTES_P_PEER,           /* cluster members; the handler checks (routes_cluster.c) */
    ROUTES_P_ROOT,           /* admin of the whole tree: users, tokens, server-wide */
    ROUTES_P_ADMIN_SOME,     /* admin of some subtree; the handler decides the rest */
    ROUTES_P_JOB_READ,       /* viewer of the job's domain */
    ROUTES_P_JOB_OPERATE,    /* operator of the job's domain: run, enable, disable, delete */
    ROUTES_P_JOB_CREATE,     /* operator of the domain the body names */
    ROUTES_P_JOB_REPLACE,    /* PUT, PATCH: operator of the job's domain and the body's */
    ROUTES_P_JOB_HISTORY,    /* viewer of the job's domain, or the last it had (versions) */
    ROUTES_P_JOB_RESTORE,    /* operator of the job's domain and of the version restored */
    ROUTES_P_RUN_READ,       /* viewer of the run's domain */
    ROUTES_P_RUN_OPERATE,    /* operator of the run's domain: cancel */
    ROUTES_P_DOMAIN_READ,    /* viewer of the domain in the path */
    ROUTES_P_DOMAIN_CREATE,  /* admin of the domain the body names ("path") */
    ROUTES_P_DOMAIN_WRITE,   /* admin of the domain in the path: replace, delete, restore */
    ROUTES_P_CALENDAR_WRITE, /* operator of the whole tree: a calendar is every job's that
                                names it */
};

enum routes_kind {
    ROUTES_K_PEER = 1,  /* the cluster's secret */
    ROUTES_K_BOOTSTRAP, /* DATA/token ("default"), and a cluster server's own */
    ROUTES_K_TOKEN,     /* a named token */
    ROUTES_K_USER,      /* a user, by a session cookie */
};

/* The caller of a request (req->principal), made by routes__authenticate. */
struct routes_principal {
    enum routes_kind kind;
    char name[HTTP_WHO_MAX];      /* the token's or user's name */
    bool all;                     /* everything, whatever the grants: bootstrap token, peers */
    bool must_change;             /* a user who may only change the password */
    char session[TOKEN_HASH_HEX]; /* a user's: the session's hash */
    int64_t expires_at_ms;        /* a user's: the session's absolute end */
    int64_t idle_at_ms;           /* a user's: when it ends unless used again */
    size_t n_grants;
    struct role_grant grants[ROLE_GRANTS_MAX];
};

#define ROUTES_SESSION_COOKIE  "tethys_session"
#define ROUTES_SESSION_IDLE_MS ((int64_t)12 * 3600 * 1000)     /* a session unused this long ends */
#define ROUTES_SESSION_MAX_MS  ((int64_t)7 * 24 * 3600 * 1000) /* and any after this long */
#define ROUTES_SIGNIN_FAILURES 5                         /* in a row, and the user is locked */
#define ROUTES_LOCK_MS         ((int64_t)15 * 60 * 1000) /* ... for this long */
#define ROUTES_FIRST_USER      "admin"
#define ROUTES_FIRST_FILE      "initial-admin-password"

/* The http_config callbacks (routes_auth.c). */
int routes__authenticate(void *ctx, const struct http_credentials *cred, char *who, size_t who_cap,
                         void **principal, char *why, size_t why_cap);
int routes__permit(void *ctx, const struct http_request *req, char *why, size_t why_cap);
void routes__principal_free(void *principal);

/* The caller of req: its principal, or a stand-in with every right when the request came
 * through no authenticate callback (never NULL). */
const struct routes_principal *routes__principal(const struct http_request *req);

/* "user bob", "token ci" into buf[cap]. */
void routes__describe(const struct routes_principal *p, char *buf, size_t cap);

/* Whether the caller of req holds `need` on `domain` (all: always). */
bool routes__may(const struct http_request *req, enum role need, const char *domain);

/* 0, or TY_EPERM with the sentence of a refusal ("user bob is a viewer of finance: running
 * job x needs operator on hr") when the caller of req lacks `need` on `domain`. */
int routes__check(const struct http_request *req, enum role need, const char *domain,
                  const char *doing, struct ty_err *err);

/*
 * What the caller of req may read, for lists: *all when everything; else the subtrees
 * (role_roots: none inside another; borrowed from the principal) into roots[0..cap), their
 * number returned (0: nothing at all).
 */
size_t routes__read_roots(const struct http_request *req, const char **roots, size_t cap,
                          bool *all);

/* A job's domain from its stored JSON text ("" when it names none) into buf[cap]. */
void routes__domain_of(const char *json, char *buf, size_t cap);

/* routes_tokens.c: the caller a named token stands for (grants included, cached), or why
 * not: TY_EAUTH (401), another code when it cannot be decided. */
int routes__token_principal(struct server *s, const char *bearer, size_t len,
                            struct routes_principal *p, char *why, size_t why_cap);

/* routes_users.c: the caller a session cookie stands for, or why not: TY_EAUTH (401) for a
 * session that is unknown, ended or ambiguous, TY_EPERM (403) for a change without the
 * session's CSRF token; another code when it cannot be decided (the store is down). */
int routes__session_principal(struct server *s, const struct http_credentials *cred,
                              struct routes_principal *p, char *why, size_t why_cap);

/* routes_users.c: /api/v1/session and /api/v1/users. */
extern const struct http_route routes__users[];
extern const size_t routes__users_n;

/* routes_versions.c: the versions of jobs, domains and calendars, and restoring one. */
extern const struct http_route routes__versions[];
extern const size_t routes__versions_n;

/* routes_batch.c: POST /api/v1/jobs:batch, many job changes in one request. */
extern const struct http_route routes__batch[];
extern const size_t routes__batch_n;

/* routes_cluster.c: results and definitions for cluster members. */
extern const struct http_route routes__cluster[];
extern const size_t routes__cluster_n;

/*
 * Save the definition in req->body (JSON text) as the object of `kind` named
 * req->params[0], exactly as `PUT /<kind>s/{name}` (create false: it replaces the object,
 * which must exist; If-Match honoured) or `POST /<kind>s` (create true) would, answering
 * in resp as they do.  req may be made up by the caller (a copy of its own request with
 * another body); everything is borrowed.
 */
void routes__save_object(struct server *s, enum store_kind kind, bool create,
                         const struct http_request *req, struct http_response *resp);

#endif
