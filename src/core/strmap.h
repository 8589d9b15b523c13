/*
 * strmap.h - a hash map from NUL-terminated strings to pointers (open addressing,
 * linear probing, tombstones).  Keys are copied and owned by the map; values are the
 * caller's.  Single-threaded: the owner of the map serialises access.
 */
#ifndef STRMAP_H
#define STRMAP_H

#include <stddef.h>

struct strmap {
    struct strmap_slot *slots;
    size_t cap;  /* a power of two, or 0 */
    size_t len;  /* live entries */
    size_t used; /* live + tombstones */
};

void strmap_init(struct strmap *m);

/* Free the map's own memory (keys and slots); values are left to the caller. */
void strmap_free(struct strmap *m);

/* Free the map's memory and every value with free_value (e.g. free), leaving the map
 * empty and ready for use. */
void strmap_clear(struct strmap *m, void (*free_value)(void *));

/* The value for key, or NULL. */
void *strmap_get(const struct strmap *m, const char *key);

/* Set key to value (replacing).  0, or TY_ENOMEM (the map is unchanged). */
int strmap_put(struct strmap *m, const char *key, void *value);

/* Remove key; returns its value, or NULL when absent. */
void *strmap_del(struct strmap *m, const char *key);

/* Iterate: start with *pos = 0; returns 0 when done, else fills key/value and advances. */
int strmap_next(const struct strmap *m, size_t *pos, const char **key, void **value);

#endif
