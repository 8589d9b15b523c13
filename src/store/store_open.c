/*
 * store_open.c - which store a configured location names.
 *
 * The server, the CLI and the tools take one setting for where the store is: a file path
 * (SQLite, embedded) or a PostgreSQL URL (a cluster).  Deciding which is one rule, here,
 * so every caller decides it the same way.
 */
#include "store.h"

#include <string.h>

bool store_is_url(const char *where)
{
    return where != NULL &&
           (strncmp(where, "postgresql://", 13) == 0 || strncmp(where, "postgres://", 11) == 0);
}

int store_open(const char *where, bool read_only, struct store **out, struct ty_err *err)
{
    if (store_is_url(where))
        return store_open_pg(where, read_only, out, err);
    return store_open_sqlite(where, read_only, out, err);
}
