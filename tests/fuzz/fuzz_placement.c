/*
 * fuzz_placement.c - libFuzzer target for what executors read out of ZooKeeper, written by
 * a leader or by anyone with access (coord_wire.h): the first byte chooses, by its value
 * modulo 3, a placement chunk (coord_placements_decode), a placement head
 * (coord_placement_head_decode) or an executor's registration (coord_member_info_from_json);
 * the rest is the znode's data.
 *
 * Properties: no crash, hang or leak on any bytes.  A chunk either reads, reporting every
 * entry exactly once as read or as bad (in order), or is refused with nothing called; the
 * placements it gave, written again, read back the same.  A head and a registration that
 * read are written again and read back the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coord/coord_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct got {
    struct coord_placement *p; /* copies of the placements read */
    size_t n, cap, next;       /* next: the entry index expected next (read or bad) */
    const struct coord_placement *want;
};

static int keep(void *arg, const struct coord_placement *p)
{
    struct got *g = arg;
    if (g->want != NULL) {
        const struct coord_placement *w = &g->want[g->next++];
        if (strcmp(w->job, p->job) != 0 || w->drop != p->drop || w->version != p->version ||
            w->uncertain != p->uncertain || w->job_shards != p->job_shards ||
            w->n_shards != p->n_shards || w->resume_after != p->resume_after ||
            (w->from == NULL) != (p->from == NULL) ||
            (w->from != NULL && strcmp(w->from, p->from) != 0) ||
            (p->n_shards > 0 && memcmp(w->shards, p->shards, p->n_shards * sizeof *p->shards)))
            abort();
        return 0;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        struct coord_placement *bigger = realloc(g->p, cap * sizeof *bigger);
        if (bigger == NULL)
            abort();
        g->p = bigger;
        g->cap = cap;
    }
    struct coord_placement *c = &g->p[g->n++];
    *c = *p;
    c->job = strdup(p->job);
    c->from = p->from != NULL ? strdup(p->from) : NULL;
    c->shards = NULL;
    if (p->n_shards > 0) {
        c->shards = malloc(p->n_shards * sizeof *c->shards);
        memcpy(c->shards, p->shards, p->n_shards * sizeof *c->shards);
    }
    g->next++;
    return 0;
}

static void bad(void *arg, size_t index, const struct ty_err *err)
{
    struct got *g = arg;
    if (index != g->next++ || err->code != TY_EFORMAT || err->field[0] == '\0')
        abort();
}

static void check_chunk(const char *data, size_t len)
{
    struct got g = {0};
    struct ty_err err;
    if (coord_placements_decode(data, len, keep, bad, &g, &err) != 0) {
        if (g.next != 0)
            abort();
        return;
    }
    struct strbuf *chunks;
    size_t n_chunks;
    if (coord_placements_encode(g.p, g.n, 1 << 20, &chunks, &n_chunks, &err) != 0)
        abort();
    struct got again = {.want = g.p};
    for (size_t i = 0; i < n_chunks; i++) {
        if (coord_placements_decode(chunks[i].buf, chunks[i].len, keep, NULL, &again, &err) != 0)
            abort();
        sb_free(&chunks[i]);
    }
    free(chunks);
    if (again.next != g.n)
        abort();
    for (size_t i = 0; i < g.n; i++)
        coord_placement_clear(&g.p[i]);
    free(g.p);
}

static void check_head(const char *data, size_t len)
{
    struct coord_placement_head h, again;
    struct ty_err err;
    if (coord_placement_head_decode(data, len, &h, &err) != 0)
        return;
    struct strbuf sb;
    sb_init(&sb);
    if (coord_placement_head_encode(&h, &sb) != 0 ||
        coord_placement_head_decode(sb.buf, sb.len, &again, &err) != 0 ||
        memcmp(&h, &again, sizeof h) != 0)
        abort();
    sb_free(&sb);
}

static void check_member(const char *data, size_t len)
{
    json_t *o = json_loadb(data, len, JSON_ALLOW_NUL, NULL);
    if (o == NULL)
        return;
    struct coord_member_info m, again;
    struct ty_err err;
    if (coord_member_info_from_json(o, &m, &err) == 0) {
        json_t *w = coord_member_info_to_json(&m);
        if (w == NULL || coord_member_info_from_json(w, &again, &err) != 0)
            abort();
        json_t *w2 = coord_member_info_to_json(&again);
        if (w2 == NULL || !json_equal(w, w2))
            abort();
        json_decref(w);
        json_decref(w2);
        coord_member_info_clear(&again);
    } else if (m.host != NULL || m.labels != NULL || m.domains != NULL) {
        abort();
    }
    coord_member_info_clear(&m);
    json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *text = (const char *)data + 1;
    switch (data[0] % 3) {
    case 0: check_chunk(text, size - 1); break;
    case 1: check_head(text, size - 1); break;
    default: check_member(text, size - 1); break;
    }
    return 0;
}
