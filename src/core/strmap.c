/*
 * strmap.c - FNV-1a hashing, linear probing, load kept under 3/4 (tombstones counted) so
 * probes stay short; the table is rebuilt without tombstones when it grows.
 */
#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ty_err.h"

#define TOMBSTONE ((char *)&tombstone_mark)
static const char tombstone_mark = 0;

struct strmap_slot {
    char *key; /* NULL: empty; TOMBSTONE: deleted */
    void *value;
    uint64_t hash;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

void strmap_init(struct strmap *m)
{
    m->slots = NULL;
    m->cap = m->len = m->used = 0;
}

void strmap_free(struct strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key != NULL && m->slots[i].key != TOMBSTONE)
            free(m->slots[i].key);
    free(m->slots);
    strmap_init(m);
}

static struct strmap_slot *find(const struct strmap *m, const char *key, uint64_t h)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        struct strmap_slot *sl = &m->slots[i];
        if (sl->key == NULL)
            return NULL;
        if (sl->key != TOMBSTONE && sl->hash == h && strcmp(sl->key, key) == 0)
            return sl;
    }
}

void *strmap_get(const struct strmap *m, const char *key)
{
    struct strmap_slot *sl = find(m, key, hash_str(key));
    return sl ? sl->value : NULL;
}

static int grow(struct strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    while (m->len * 2 >= cap)
        cap *= 2;
    struct strmap_slot *n = calloc(cap, sizeof *n);
    if (n == NULL)
        return TY_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        struct strmap_slot *sl = &m->slots[i];
        if (sl->key == NULL || sl->key == TOMBSTONE)
            continue;
        size_t j = sl->hash & (cap - 1);
        while (n[j].key != NULL)
            j = (j + 1) & (cap - 1);
        n[j] = *sl;
    }
    free(m->slots);
    m->slots = n;
    m->cap = cap;
    m->used = m->len;
    return 0;
}

int strmap_put(struct strmap *m, const char *key, void *value)
{
    uint64_t h = hash_str(key);
    struct strmap_slot *sl = find(m, key, h);
    if (sl != NULL) {
        sl->value = value;
        return 0;
    }
    if ((m->used + 1) * 4 > m->cap * 3 && grow(m) != 0)
        return TY_ENOMEM;
    char *k = strdup(key);
    if (k == NULL)
        return TY_ENOMEM;
    size_t i = h & (m->cap - 1);
    while (m->slots[i].key != NULL && m->slots[i].key != TOMBSTONE)
        i = (i + 1) & (m->cap - 1);
    if (m->slots[i].key == NULL)
        m->used++;
    m->slots[i] = (struct strmap_slot){k, value, h};
    m->len++;
    return 0;
}

void *strmap_del(struct strmap *m, const char *key)
{
    struct strmap_slot *sl = find(m, key, hash_str(key));
    if (sl == NULL)
        return NULL;
    void *v = sl->value;
    free(sl->key);
    sl->key = TOMBSTONE;
    sl->value = NULL;
    m->len--;
    return v;
}

int strmap_next(const struct strmap *m, size_t *pos, const char **key, void **value)
{
    while (*pos < m->cap) {
        struct strmap_slot *sl = &m->slots[(*pos)++];
        if (sl->key != NULL && sl->key != TOMBSTONE) {
            *key = sl->key;
            *value = sl->value;
            return 1;
        }
    }
    return 0;
}

void strmap_clear(struct strmap *m, void (*free_value)(void *))
{
    size_t pos = 0;
    const char *key;
    void *val;
    while (free_value != NULL && strmap_next(m, &pos, &key, &val))
        free_value(val);
    strmap_free(m);
    strmap_init(m);
}
