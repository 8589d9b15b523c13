/*
 * role.h - who may do what where: roles granted on domain subtrees, and the decision.
 *
 * A principal (a user, or an API token) holds grants: a role on a domain subtree.  A grant
 * on "finance" covers "finance" and everything under "finance/", not "fin" nor
 * "financeX" (domain_within decides, the one subtree rule of the project); a grant on ""
 * covers the whole tree.  The roles nest:
 *
 *   viewer    reads jobs, runs, history, statistics, alerts and domains of the subtree;
 *   operator  viewer, and runs now, cancels, enables and disables, creates, edits, deletes
 *             and restores jobs of the subtree;
 *   admin     operator, and creates, edits and deletes the domains of the subtree and the
 *             grants within it.  An admin of the whole tree ("") is a root admin: users,
 *             tokens and everything server-wide.
 *
 * Pure: grants in, a decision out, with a sentence that says who was refused what and
 * why ("user bob is a viewer of finance: running job hr.payroll needs operator on hr").
 */
#ifndef ROLE_H
#define ROLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "domain.h"
#include "ty_err.h"

enum role { ROLE_NONE = 0, ROLE_VIEWER, ROLE_OPERATOR, ROLE_ADMIN };

#define ROLE_GRANTS_MAX 64 /* grants one principal may hold */

struct role_grant {
    char domain[DOMAIN_PATH_MAX + 1]; /* the subtree's root; "" is the whole tree */
    enum role role;
};

/* "viewer", "operator", "admin"; "none" for ROLE_NONE and anything else.  Static. */
const char *role_name(enum role r);

/* "viewer", "operator" or "admin" into *out; TY_EINVAL naming `field` otherwise
 * (`role: "boss" is not a role (viewer, operator or admin)`). */
int role_parse(const char *field, const char *text, enum role *out, struct ty_err *err);

/*
 * Grants from JSON: an array of {"domain": PATH, "role": ROLE} ("domain" may be left out
 * for the whole tree), at most cap (and ROLE_GRANTS_MAX) of them, into out[0..*n).  Each
 * domain is checked by domain_check_path and may appear once.  TY_EINVAL naming the
 * element's field (`grants[1].role`, `grants[2].domain`) and the bad text.  `field` names
 * the array ("grants").  Nothing is allocated.
 */
int role_grants_from_json(const json_t *arr, const char *field, struct role_grant *out, size_t cap,
                          size_t *n, struct ty_err *err);

/* [{"domain", "role"}, ...], in the order given.  New reference (NULL: out of memory). */
json_t *role_grants_to_json(const struct role_grant *g, size_t n);

/* The highest role grants g[0..n) give on `domain` (the largest among the grants whose
 * subtree holds it); ROLE_NONE when none does. */
enum role role_on(const struct role_grant *g, size_t n, const char *domain);

/* Whether g[0..n) allow something that needs `need` on `domain`. */
bool role_allows(const struct role_grant *g, size_t n, enum role need, const char *domain);

/* Whether g[0..n) hold `need` on the whole tree ("" - a root admin for ROLE_ADMIN). */
bool role_everywhere(const struct role_grant *g, size_t n, enum role need);

/*
 * Whether g[0..n) give `need` somewhere in, or over, `domain`: on `domain` itself, on an
 * ancestor of it, or on a subtree below it.  For lists filtered by subtree: a viewer of
 * "finance/eu" sees part of what `domain=finance` asks for.
 */
bool role_any_within(const struct role_grant *g, size_t n, enum role need, const char *domain);

/*
 * The decision with its reason.  0 when g[0..n) allow `need` on `domain`; else TY_EPERM with
 * err's message "<who> <what its grants make it>: <doing> needs <need> on <domain>", e.g.
 * "user bob is a viewer of finance: running job hr.payroll needs operator on hr" ("the
 * whole tree" for ""; "has no role" for a principal without grants).  who ("user bob") and
 * doing ("running job hr.payroll") are the caller's words.
 */
int role_check(const struct role_grant *g, size_t n, enum role need, const char *domain,
               const char *who, const char *doing, struct ty_err *err);

/* What g[0..n) make a principal, as the words after its name: "is a viewer of finance and an
 * operator of ops", "is an admin of the whole tree", "has no role".  Into buf[cap], cut short
 * to fit. */
void role_describe(const struct role_grant *g, size_t n, char *buf, size_t cap);

/*
 * The subtrees g[0..n) let a principal see with at least `need`, with none inside another:
 * pointers into g (borrowed) into out[0..cap), their number returned.  One of them is ""
 * when it sees everything.  For answering a list with only what may be read.
 */
size_t role_roots(const struct role_grant *g, size_t n, enum role need, const char **out,
                  size_t cap);

/*
 * Whether an editor holding e[0..ne) may change a principal's grants from old[0..nold) to
 * new[0..nnew): every grant added, removed or changed must lie in a subtree where the
 * editor is an admin (a root admin may change any).  0, or TY_EPERM naming the first grant
 * it may not touch ("user alice is an admin of finance: granting operator on hr needs admin
 * on hr").
 */
int role_check_grant_edit(const struct role_grant *e, size_t ne, const struct role_grant *old,
                          size_t nold, const struct role_grant *new_, size_t nnew, const char *who,
                          struct ty_err *err);

#endif
