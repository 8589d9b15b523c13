/*
 * store_names.c - the text names of the store's enums, shared by every store implementation.
 *
 * The names are part of the stored data and of the API ("status": "succeeded"), so they
 * live in one table per enum and never change: a renamed value would orphan every row
 * written before.  Lookups by value are array indexing; lookups by name are a linear scan
 * over at most eight strings, cheaper than anything cleverer at that size.
 */
#include "store.h"

#include <string.h>

static const char *const run_status_names[] = {
    [STORE_RUN_QUEUED] = "queued",           [STORE_RUN_RUNNING] = "running",
    [STORE_RUN_SUCCEEDED] = "succeeded",     [STORE_RUN_FAILED] = "failed",
    [STORE_RUN_TIMEOUT] = "timeout",         [STORE_RUN_CANCELED] = "canceled",
    [STORE_RUN_INTERRUPTED] = "interrupted", [STORE_RUN_LOST] = "lost",
    [STORE_RUN_MISFIRED] = "misfired",
};

static const char *const trigger_names[] = {
    [STORE_TRIGGER_SCHEDULE] = "schedule", [STORE_TRIGGER_MANUAL] = "manual",
    [STORE_TRIGGER_RETRY] = "retry",       [STORE_TRIGGER_DOWNSTREAM] = "downstream",
    [STORE_TRIGGER_MISFIRE] = "misfire",   [STORE_TRIGGER_FAILOVER] = "failover",
};

static const char *const skip_reason_names[] = {
    [STORE_SKIP_PAUSED] = "paused",           [STORE_SKIP_CALENDAR] = "calendar",
    [STORE_SKIP_MISFIRE] = "misfire",         [STORE_SKIP_OVERLAP] = "overlap",
    [STORE_SKIP_QUEUE_FULL] = "queue_full",   [STORE_SKIP_INTERRUPTED] = "interrupted",
    [STORE_SKIP_NO_EXECUTOR] = "no_executor", [STORE_SKIP_OUTSIDE_DATES] = "outside_dates",
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* The name of value v in table t, or NULL when v is not one of the enum's values. */
static const char *name_of(const char *const *t, size_t n, int v)
{
    if (v <= 0 || (size_t)v >= n)
        return NULL;
    return t[v];
}

/* The value named `name` in table t (index 0 is unused), or 0. */
static int value_of(const char *const *t, size_t n, const char *name)
{
    if (name == NULL)
        return 0;
    for (size_t i = 1; i < n; i++)
        if (t[i] != NULL && strcmp(t[i], name) == 0)
            return (int)i;
    return 0;
}

/* "succeeded" ...; NULL for a value outside the enum (the store refuses it). */
const char *store_run_status_name(enum store_run_status s)
{
    return name_of(run_status_names, N_OF(run_status_names), (int)s);
}

/* "schedule" ...; NULL for a value outside the enum. */
const char *store_trigger_name(enum store_trigger t)
{
    return name_of(trigger_names, N_OF(trigger_names), (int)t);
}

/* "paused" ...; NULL for a value outside the enum. */
const char *store_skip_reason_name(enum store_skip_reason r)
{
    return name_of(skip_reason_names, N_OF(skip_reason_names), (int)r);
}

int store_run_status_parse(const char *name, enum store_run_status *out)
{
    int v = value_of(run_status_names, N_OF(run_status_names), name);
    if (v == 0)
        return TY_EINVAL;
    *out = (enum store_run_status)v;
    return 0;
}

int store_skip_reason_parse(const char *name, enum store_skip_reason *out)
{
    int v = value_of(skip_reason_names, N_OF(skip_reason_names), name);
    if (v == 0)
        return TY_EINVAL;
    *out = (enum store_skip_reason)v;
    return 0;
}

int store_trigger_parse(const char *name, enum store_trigger *out)
{
    int v = value_of(trigger_names, N_OF(trigger_names), name);
    if (v == 0)
        return TY_EINVAL;
    *out = (enum store_trigger)v;
    return 0;
}
