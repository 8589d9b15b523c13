/*
 * spool.h - the executor's results on their way to the store: append-only, checksummed,
 * synced, replayed.
 *
 * Every result goes into the spool before anything else sees it (spool_append writes it to
 * the file at once, so a kill -9 a moment later loses nothing), is synced to disk in
 * batches, and is then handed to the store side of the sink in batches, in order.  Results
 * the store refused stay and are offered again; after a crash everything past the last
 * delivered result is offered again (the store takes each idempotently).  The files are
 * segments DATA/spool/seg-<first seq>.log; each begins with a snapshot of the runs that
 * had not ended, so the executor can rebuild what it had going from the newest segments
 * alone.  Format and recovery: docs/internals/spool.md.
 *
 * Threads: spool_append, spool_status and spool_last_seq from any thread (one lock); the
 * spool's own thread syncs and delivers.
 */
#ifndef SPOOL_H
#define SPOOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../coord/coord.h"
#include "../core/ty_err.h"

struct spool_config {
    const char *dir;        /* created (0700) when missing */
    uint64_t max_bytes;     /* undelivered bytes past which output text is dropped */
    uint64_t segment_bytes; /* a new segment after this many bytes (default 16 MiB) */
    int (*deliver)(void *arg, const struct coord_result *const *results, size_t n,
                   struct ty_err *err);
    void *deliver_arg;
    void (*changed)(void *arg); /* called (spool thread) when the failing state changes */
    void *changed_arg;
};

/* What was left by the previous process, read by spool_open. */
struct spool_recovered {
    json_t *unfinished;   /* array of run results (JSON, the newest of each run) not ended */
    json_t *last_fires;   /* {"job": t}: the latest scheduled_at (s) of a scheduled fire */
    uint64_t undelivered; /* results still to hand to the store */
    uint64_t lost_bytes;  /* bytes that could not be read back (torn or corrupt frames) */
};

struct spool_status {
    uint64_t appended;          /* last seq appended */
    uint64_t delivered;         /* last seq the store has */
    uint64_t pending;           /* results not yet in the store */
    uint64_t pending_bytes;     /* their size in the spool */
    int64_t oldest_ms;          /* when the oldest of them was appended (wall ms), 0: none */
    bool failing;               /* the last delivery failed */
    bool over_limit;            /* past max_bytes: output text is being dropped */
    bool disk_failing;          /* the spool itself cannot be written: results held in memory */
    uint64_t dropped_output;    /* results whose output text was not kept */
    char error[TY_ERR_MSG_MAX]; /* why the last delivery (or write) failed */
};

struct spool;

/*
 * Open the spool in cfg->dir: read every segment, cut a torn last frame, and fill *rec
 * (the caller owns its JSON).  Nothing is delivered until spool_start.  The caller owns
 * *out (spool_close).  TY_EIO / TY_ENOSPC / TY_ENOMEM with a message naming the file.
 */
int spool_open(const struct spool_config *cfg, struct spool **out, struct spool_recovered *rec,
               struct ty_err *err);

/* Start the spool's thread: sync and deliver from now on.  TY_EIO. */
int spool_start(struct spool *s, struct ty_err *err);

/*
 * Append one result (r->seq is set here, 1, 2, ...; the text is written to the file before
 * this returns, or held in memory while the disk refuses it).  Past max_bytes the run's
 * output text is left out (r->output_dropped) and counted.  Returns the seq given, or 0
 * when the result could not even be encoded (out of memory; logged).
 */
uint64_t spool_append(struct spool *s, struct coord_result *r);

/* The last seq appended (0: none yet). */
uint64_t spool_last_seq(struct spool *s);

/* A copy of the spool's figures, for status and alerts. */
void spool_status(struct spool *s, struct spool_status *out);

/* Wait at most timeout_ms until everything appended so far is delivered (or delivery is
 * failing).  true when it was all delivered. */
bool spool_drain(struct spool *s, int timeout_ms);

/* Stop the thread (after one last sync) and free everything. */
void spool_close(struct spool *s);

#endif
