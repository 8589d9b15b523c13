/*
 * alerts_tx.h - alert changes gathered while the writer writes a batch, made the open set
 * only when the batch's transaction commits (alerts.c, writer.c).  Writer thread only.
 */
#ifndef ALERTS_TX_H
#define ALERTS_TX_H

#include "../core/strmap.h"
#include "../store/store.h"

struct server;

struct alert_change {
    bool raise; /* else clear */
    struct store_alert a;
    char *blob; /* owns a's strings */
};

struct alert_tx {
    struct alert_change *v;
    size_t n, cap;
    struct strmap overlay; /* key -> (void *)1 opened here, (void *)2 cleared here */
};

/* A copy of a's strings in one malloc'd block (returned; free it), *out pointing into it;
 * out->detail is a's (borrowed).  NULL when out of memory. */
char *alerts__copy(const struct store_alert *a, struct store_alert *out);

void alerts__tx_init(struct alert_tx *tx);
void alerts__tx_free(struct alert_tx *tx);
/* Raise (or refresh) a->key; a->detail is stolen. */
void alerts__tx_raise(struct server *s, struct alert_tx *tx, const struct store_alert *a);
/* Clear key if it is open (in the open set or in this transaction), or whatever this server
 * knows of it when `any` (another server may have raised it). */
void alerts__tx_clear(struct server *s, struct alert_tx *tx, const char *key, int64_t at_ms,
                      bool any);
/* Write the changes through st (inside the caller's transaction).  0 or the store's code. */
int alerts__tx_write(struct server *s, struct alert_tx *tx, struct store *st, struct ty_err *err);
/* The transaction committed: its changes become the open set. */
void alerts__tx_commit(struct server *s, struct alert_tx *tx);

#endif
