/*
 * spool.c - results on disk until the store has them.
 *
 * Frames.  A segment file is a sequence of frames: a 12-byte header (magic "TSP1", the
 * payload's length and its CRC-32C, little-endian) and the payload, one JSON object and a
 * newline: a result (coord_result_to_json plus "at_ms", when it was spooled) or, first in
 * every segment, a snapshot {"k": "snapshot", "seq", "runs": [...]} of the runs not yet
 * ended.  The magic lets a reader find the next frame after a damaged one; the length and
 * checksum tell a torn tail (a crash in the middle of a write) from a good frame.
 *
 * Writing.  spool_append encodes the result and writes its frame with one write(2) under
 * the lock, so when it returns the frame is in the kernel and survives a kill -9 of this
 * process; the spool thread makes it durable (fdatasync) in batches before delivering it,
 * so a result counts as handed over only once it is on disk.  When the disk refuses a
 * write (full, I/O error) the frame waits in memory, in order, and the thread retries.
 *
 * Delivering.  The thread reads frames back from the files, from the first undelivered
 * one, in batches of up to BATCH_MAX, and calls the sink; on success it records the last
 * seq delivered in DATA/spool/delivered (a rename, not synced: delivering a result twice
 * is harmless, the store takes it idempotently) and deletes segments whose results are
 * all delivered (never the one being written).  On failure the batch stays, the failure
 * is reported (spool_status) and retried with a growing pause, up to 5 s.
 *
 * Recovering.  spool_open reads the segments from the oldest: the first frame of each is
 * a snapshot of the unfinished runs, later results update that picture (a run that ended
 * leaves it).  What remains is what the previous process had going.  Then a new segment
 * begins, with a snapshot of that picture, so every older segment can go as soon as its
 * results are delivered.
 */
#define _GNU_SOURCE
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/crc32c.h"
#include "../core/strmap.h"
#include "../os/clock.h"
#include "../os/file.h"
#include "../os/log.h"

#define MAGIC           0x31505354u /* "TSP1" read as little-endian */
#define HEADER          12
#define FRAME_MAX       ((uint32_t)24 * 1024 * 1024) /* a result with 16 MiB of output, as base64 */
#define BATCH_MAX       512
#define BATCH_BYTES     ((size_t)8 * 1024 * 1024)
#define SEGMENT_DEFAULT (16ull * 1024 * 1024)
#define MEM_MAX         (64ull * 1024 * 1024) /* held in memory while the disk refuses writes */

struct seg {
    uint64_t first; /* seq of its first result (the snapshot before it has this - 1) */
    uint64_t last;  /* seq of its last result so far; first - 1 when none */
    uint64_t bytes; /* bytes written */
    char *path;
};

struct frame { /* waiting in memory for the disk */
    struct frame *next;
    uint64_t seq;
    size_t len;
    char data[]; /* header and payload */
};

struct pend { /* an undelivered result, for the figures */
    uint64_t seq;
    int64_t at_ms;
    uint32_t bytes;
};

struct spool {
    struct spool_config cfg;
    char *dir, *ckpt_path;
    pthread_mutex_t mu;
    pthread_cond_t wake, drained;
    pthread_t thread;
    bool running, stop;

    struct seg *segs; /* oldest first; the last is being written */
    size_t n_segs, cap_segs;
    int fd; /* the last segment, O_APPEND; -1 while it cannot be made */

    uint64_t seq, synced, delivered;
    size_t rd_seg;   /* next frame to deliver: segment index ... */
    uint64_t rd_off; /* ... and offset */

    struct frame *mem_head, *mem_tail;
    uint64_t mem_bytes;

    struct strmap unfinished; /* run id -> malloc'd payload text of its latest result */

    struct pend *ring;
    size_t r_head, r_len, r_cap;
    uint64_t pending_bytes;

    struct spool_status st; /* failing, error, counters (under mu) */
    unsigned backoff_ms;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int io_error(struct ty_err *err, int e, const char *what, const char *path)
{
    return ty_error(err, e == ENOSPC ? TY_ENOSPC : TY_EIO, NULL, -1, 0, "spool: %s %s: %s", what,
                    path, strerror(e));
}

/* ---------------------------------------------------------------------------------------
 * Frames
 */

/* A frame for payload text[0..n) (a newline is added), malloc'd with room for a `struct
 * frame` in front: returns the frame, its bytes at f->data. */
static struct frame *frame_make(const char *text, size_t n, uint64_t seq)
{
    struct frame *f = malloc(sizeof *f + HEADER + n + 1);
    if (f == NULL)
        return NULL;
    f->next = NULL;
    f->seq = seq;
    f->len = HEADER + n + 1;
    unsigned char *h = (unsigned char *)f->data;
    memcpy(f->data + HEADER, text, n);
    f->data[HEADER + n] = '\n';
    put_u32(h, MAGIC);
    put_u32(h + 4, (uint32_t)(n + 1));
    put_u32(h + 8, crc32c(0, f->data + HEADER, n + 1));
    return f;
}

/* Read the frame at off of fd: 1 and a malloc'd NUL-terminated payload (*len bytes) and the
 * offset after it; 0 at a clean end of file; -1 when the bytes there are not a whole good
 * frame (torn or corrupt). */
static int frame_read(int fd, uint64_t off, uint64_t size, char **payload, uint32_t *len,
                      uint64_t *next)
{
    unsigned char h[HEADER];
    if (off == size)
        return 0;
    if (size - off < HEADER || pread(fd, h, HEADER, (off_t)off) != HEADER)
        return -1;
    uint32_t n = get_u32(h + 4);
    if (get_u32(h) != MAGIC || n == 0 || n > FRAME_MAX || size - off - HEADER < n)
        return -1;
    char *p = malloc((size_t)n + 1);
    if (p == NULL)
        return -1;
    if (pread(fd, p, n, (off_t)(off + HEADER)) != (ssize_t)n || crc32c(0, p, n) != get_u32(h + 8)) {
        free(p);
        return -1;
    }
    p[n] = '\0';
    *payload = p;
    *len = n;
    *next = off + HEADER + n;
    return 1;
}

/* The offset of the next frame that reads as good after a damaged one at off, or size. */
static uint64_t frame_resync(int fd, uint64_t off, uint64_t size)
{
    unsigned char buf[4096];
    for (uint64_t at = off + 1; at + HEADER <= size;) {
        ssize_t n = pread(fd, buf, sizeof buf, (off_t)at);
        if (n < 4)
            break;
        for (ssize_t i = 0; i + 4 <= n; i++) {
            if (get_u32(buf + i) != MAGIC)
                continue;
            char *p;
            uint32_t len;
            uint64_t next;
            if (frame_read(fd, at + (uint64_t)i, size, &p, &len, &next) == 1) {
                free(p);
                return at + (uint64_t)i;
            }
        }
        at += (uint64_t)n - 3;
    }
    return size;
}

/* ---------------------------------------------------------------------------------------
 * The picture of unfinished runs
 */

static bool run_ended(const json_t *o)
{
    const char *phase = json_string_value(json_object_get(o, "phase"));
    return phase != NULL && strcmp(phase, "ended") == 0;
}

/* Bring the picture up to date with result o (its payload text given too). */
static void fold(struct strmap *m, const json_t *o, const char *text)
{
    const char *k = json_string_value(json_object_get(o, "k"));
    if (k == NULL || strcmp(k, "run") != 0)
        return;
    const char *id = json_string_value(json_object_get(o, "run_id"));
    if (id == NULL)
        return;
    free(strmap_del(m, id));
    if (run_ended(o))
        return;
    char *copy = strdup(text);
    if (copy != NULL && strmap_put(m, id, copy) != 0)
        free(copy);
}

/* The snapshot payload: {"k":"snapshot","seq":seq,"runs":[...]} (malloc'd), or NULL. */
static char *snapshot_text(struct strmap *m, uint64_t seq)
{
    struct strbuf sb;
    sb_init(&sb);
    sb_addf(&sb, "{\"k\":\"snapshot\",\"seq\":%" PRIu64 ",\"runs\":[", seq);
    size_t pos = 0, n = 0;
    const char *key;
    void *val;
    while (strmap_next(m, &pos, &key, &val)) {
        if (n++ > 0)
            sb_addc(&sb, ',');
        sb_adds(&sb, val);
    }
    sb_adds(&sb, "]}");
    if (sb_failed(&sb)) {
        sb_free(&sb);
        return NULL;
    }
    return sb_detach(&sb);
}

/* ---------------------------------------------------------------------------------------
 * Segments
 */

static int seg_push(struct spool *s, uint64_t first, const char *path)
{
    if (s->n_segs == s->cap_segs) {
        size_t cap = s->cap_segs ? s->cap_segs * 2 : 8;
        struct seg *n = realloc(s->segs, cap * sizeof *n);
        if (n == NULL)
            return TY_ENOMEM;
        s->segs = n;
        s->cap_segs = cap;
    }
    char *p = strdup(path);
    if (p == NULL)
        return TY_ENOMEM;
    struct seg *g = &s->segs[s->n_segs++];
    g->first = first;
    g->last = first - 1;
    g->bytes = 0;
    g->path = p;
    return 0;
}

/* Write all of buf at the end of fd; on a short or failed write cut the file back to
 * `size` (so no torn frame stays) and return errno. */
static int write_all(int fd, const void *buf, size_t n, uint64_t size)
{
    const char *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            if (ftruncate(fd, (off_t)size) != 0)
                log_error("spool: cannot cut a partial frame; the next start will", "error=\"%s\"",
                          strerror(errno));
            return e;
        }
        done += (size_t)w;
    }
    return 0;
}

/*
 * Start segment seg-<first>.log, first being the seq of the next result written, with a
 * snapshot of the picture; it becomes the one written.  The picture may already include
 * results from `first` on (they are folded when appended, written maybe later): reading
 * them again after the snapshot changes nothing.  Called with mu held (or before the
 * thread runs).
 */
static int seg_begin(struct spool *s, uint64_t first, struct ty_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/seg-%016" PRIx64 ".log", s->dir, first);
    char *snap = snapshot_text(&s->unfinished, first - 1);
    struct frame *f = snap ? frame_make(snap, strlen(snap), first - 1) : NULL;
    free(snap);
    if (f == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "spool: out of memory");
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int rc = 0;
    if (fd < 0) {
        rc = io_error(err, errno, "cannot create", path);
    } else if (ftruncate(fd, 0) != 0 || (rc = write_all(fd, f->data, f->len, 0)) != 0) {
        rc = io_error(err, rc ? rc : errno, "cannot write", path);
        close(fd);
        unlink(path);
    }
    size_t snap_len = f->len;
    free(f);
    if (rc != 0)
        return rc;
    if (s->fd >= 0) {
        if (fdatasync(s->fd) != 0)
            log_warn("spool: cannot sync a segment", "error=\"%s\"", strerror(errno));
        close(s->fd);
    }
    if ((rc = seg_push(s, first, path)) != 0) {
        close(fd);
        unlink(path);
        s->fd = -1;
        return ty_error(err, rc, NULL, -1, 0, "spool: out of memory");
    }
    s->segs[s->n_segs - 1].bytes = snap_len;
    s->fd = fd;
    return 0;
}

/* Delete segments whose results are all delivered, but never the last.  mu held. */
static void seg_trim(struct spool *s)
{
    size_t drop = 0;
    while (drop + 1 < s->n_segs && s->segs[drop].last <= s->delivered && drop < s->rd_seg)
        drop++;
    for (size_t i = 0; i < drop; i++) {
        if (unlink(s->segs[i].path) != 0 && errno != ENOENT)
            log_warn("spool: cannot delete a delivered segment", "path=%s error=\"%s\"",
                     s->segs[i].path, strerror(errno));
        free(s->segs[i].path);
    }
    if (drop > 0) {
        memmove(s->segs, s->segs + drop, (s->n_segs - drop) * sizeof *s->segs);
        s->n_segs -= drop;
        s->rd_seg -= drop;
    }
}

/* ---------------------------------------------------------------------------------------
 * Pending figures
 */

static void pend_push(struct spool *s, uint64_t seq, int64_t at_ms, uint32_t bytes)
{
    if (s->r_len == s->r_cap) {
        size_t cap = s->r_cap ? s->r_cap * 2 : 1024;
        struct pend *n = malloc(cap * sizeof *n);
        if (n == NULL)
            return; /* the figures undercount; nothing else depends on them */
        for (size_t i = 0; i < s->r_len; i++)
            n[i] = s->ring[(s->r_head + i) % s->r_cap];
        free(s->ring);
        s->ring = n;
        s->r_cap = cap;
        s->r_head = 0;
    }
    s->ring[(s->r_head + s->r_len++) % s->r_cap] = (struct pend){seq, at_ms, bytes};
    s->pending_bytes += bytes;
}

static void pend_pop_upto(struct spool *s, uint64_t seq)
{
    while (s->r_len > 0 && s->ring[s->r_head].seq <= seq) {
        s->pending_bytes -= s->ring[s->r_head].bytes;
        s->r_head = (s->r_head + 1) % s->r_cap;
        s->r_len--;
    }
}

/* ---------------------------------------------------------------------------------------
 * Opening: reading back what is there
 */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t read_checkpoint(const char *path)
{
    FILE *fp = fopen(path, "re");
    if (fp == NULL)
        return 0;
    char line[64] = "";
    if (fgets(line, sizeof line, fp) == NULL)
        line[0] = '\0';
    fclose(fp);
    return strtoull(line, NULL, 10);
}

static void write_checkpoint(struct spool *s, uint64_t seq)
{
    char text[32];
    int n = snprintf(text, sizeof text, "%" PRIu64 "\n", seq);
    struct ty_err err;
    /* not synced, and a failure is harmless: the results after the old checkpoint are only
     * delivered again next start */
    if (file_write_atomic(s->ckpt_path, text, (size_t)n, 0600, false, &err) != 0)
        log_debug("spool: cannot record the delivered position", "error=\"%s\"", err.msg);
}

static void last_fire_note(json_t *last, const json_t *o)
{
    const char *trig = json_string_value(json_object_get(o, "trigger"));
    const char *job = json_string_value(json_object_get(o, "job"));
    if (trig == NULL || job == NULL ||
        (strcmp(trig, "schedule") != 0 && strcmp(trig, "misfire") != 0))
        return;
    json_int_t at = json_integer_value(json_object_get(o, "scheduled_at"));
    json_t *cur = json_object_get(last, job);
    if (cur == NULL || json_integer_value(cur) < at)
        json_object_set_new(last, job, json_integer(at));
}

/* Read one segment into the picture; position the delivery at the first undelivered
 * result.  Returns 0 or a TY_E* code for an unreadable file. */
static int read_segment(struct spool *s, size_t idx, bool newest, struct spool_recovered *rec,
                        struct ty_err *err)
{
    struct seg *g = &s->segs[idx];
    int fd = open(g->path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return io_error(err, errno, "cannot open", g->path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = io_error(err, errno, "cannot read", g->path);
        close(fd);
        return rc;
    }
    uint64_t size = (uint64_t)st.st_size, off = 0;
    bool first = true;
    for (;;) {
        char *p = NULL;
        uint32_t len = 0;
        uint64_t next = 0;
        int r = frame_read(fd, off, size, &p, &len, &next);
        if (r == 0)
            break;
        if (r < 0) {
            uint64_t good = frame_resync(fd, off, size);
            if (good == size && newest) {
                /* a torn tail: the crash came in the middle of this write */
                log_warn("spool: cut a torn frame at the end",
                         "path=%s offset=%" PRIu64 " bytes=%" PRIu64, g->path, off, size - off);
                if (ftruncate(fd, (off_t)off) != 0)
                    log_error("spool: cannot cut the torn frame", "error=\"%s\"", strerror(errno));
                size = off;
                break;
            }
            log_error("spool: unreadable bytes skipped",
                      "path=%s offset=%" PRIu64 " bytes=%" PRIu64, g->path, off, good - off);
            rec->lost_bytes += good - off;
            off = good;
            continue;
        }
        json_t *o = json_loads(p, 0, NULL);
        const char *k = json_string_value(json_object_get(o, "k"));
        json_int_t seq = json_integer_value(json_object_get(o, "seq"));
        if (o == NULL || k == NULL || seq < 0) {
            log_error("spool: a frame that is not a result skipped", "path=%s offset=%" PRIu64,
                      g->path, off);
            rec->lost_bytes += next - off;
        } else if (strcmp(k, "snapshot") == 0) {
            if (first) { /* the picture as it was when this segment began */
                strmap_clear(&s->unfinished, free);
                size_t i;
                json_t *run;
                json_array_foreach(json_object_get(o, "runs"), i, run)
                {
                    char *text = json_dumps(run, JSON_COMPACT);
                    if (text != NULL)
                        fold(&s->unfinished, run, text);
                    free(text);
                }
            }
        } else if ((uint64_t)seq > s->seq) {
            s->seq = (uint64_t)seq;
            g->last = (uint64_t)seq;
            fold(&s->unfinished, o, p);
            last_fire_note(rec->last_fires, o);
            if ((uint64_t)seq > s->delivered) {
                if (rec->undelivered++ == 0) {
                    s->rd_seg = idx;
                    s->rd_off = off;
                }
                pend_push(s, (uint64_t)seq, json_integer_value(json_object_get(o, "at_ms")),
                          (uint32_t)(next - off));
            }
        }
        first = false;
        json_decref(o);
        free(p);
        off = next;
    }
    g->bytes = size;
    close(fd);
    return 0;
}

int spool_open(const struct spool_config *cfg, struct spool **out, struct spool_recovered *rec,
               struct ty_err *err)
{
    memset(rec, 0, sizeof *rec);
    struct spool *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "spool: out of memory");
    s->cfg = *cfg;
    if (s->cfg.segment_bytes == 0)
        s->cfg.segment_bytes = SEGMENT_DEFAULT;
    s->fd = -1;
    s->backoff_ms = 250;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->drained, NULL);
    strmap_init(&s->unfinished);
    s->dir = strdup(cfg->dir);
    size_t n = strlen(cfg->dir) + 16;
    s->ckpt_path = malloc(n);
    rec->unfinished = json_array();
    rec->last_fires = json_object();
    int rc = 0;
    if (s->dir == NULL || s->ckpt_path == NULL || rec->unfinished == NULL ||
        rec->last_fires == NULL) {
        rc = ty_error(err, TY_ENOMEM, NULL, -1, 0, "spool: out of memory");
        goto fail;
    }
    snprintf(s->ckpt_path, n, "%s/delivered", cfg->dir);
    if (mkdir(cfg->dir, 0700) != 0 && errno != EEXIST) {
        rc = io_error(err, errno, "cannot create", cfg->dir);
        goto fail;
    }
    s->delivered = read_checkpoint(s->ckpt_path);

    /* the segments, oldest first */
    DIR *d = opendir(cfg->dir);
    if (d == NULL) {
        rc = io_error(err, errno, "cannot read", cfg->dir);
        goto fail;
    }
    uint64_t *firsts = NULL;
    size_t nf = 0, capf = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        /* "seg-" 16 hex digits ".log" */
        const char *fn = de->d_name;
        char *end = NULL;
        if (strlen(fn) != 24 || strncmp(fn, "seg-", 4) != 0 || strcmp(fn + 20, ".log") != 0)
            continue;
        uint64_t first = strtoull(fn + 4, &end, 16);
        if (end != fn + 20 || first == 0)
            continue;
        if (nf == capf) {
            capf = capf ? capf * 2 : 16;
            uint64_t *m = realloc(firsts, capf * sizeof *m);
            if (m == NULL)
                break;
            firsts = m;
        }
        firsts[nf++] = first;
    }
    closedir(d);
    if (nf > 0)
        qsort(firsts, nf, sizeof *firsts, cmp_u64);
    for (size_t i = 0; i < nf && rc == 0; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/seg-%016" PRIx64 ".log", cfg->dir, firsts[i]);
        if (seg_push(s, firsts[i], path) != 0)
            rc = ty_error(err, TY_ENOMEM, NULL, -1, 0, "spool: out of memory");
    }
    free(firsts);
    for (size_t i = 0; i < s->n_segs && rc == 0; i++)
        rc = read_segment(s, i, i + 1 == s->n_segs, rec, err);
    if (rc != 0)
        goto fail;
    if (s->delivered > s->seq) /* a checkpoint ahead of the files: trust the files */
        s->delivered = s->seq;
    if (rec->undelivered == 0) {
        s->rd_seg = s->n_segs;
        s->rd_off = 0;
    }
    s->synced = s->seq; /* what was read back is on disk */

    size_t pos = 0;
    const char *key;
    void *val;
    while (strmap_next(&s->unfinished, &pos, &key, &val)) {
        json_t *o = json_loads(val, 0, NULL);
        if (o != NULL)
            json_array_append_new(rec->unfinished, o);
    }
    /* a last segment with no result yet has the name the new one takes: it is remade */
    if (s->n_segs > 0 && s->segs[s->n_segs - 1].first == s->seq + 1) {
        free(s->segs[--s->n_segs].path);
        if (s->rd_seg > s->n_segs)
            s->rd_seg = s->n_segs;
    }
    if ((rc = seg_begin(s, s->seq + 1, err)) != 0)
        goto fail;
    if (rec->undelivered == 0) {
        s->rd_seg = s->n_segs - 1;
        s->rd_off = s->segs[s->n_segs - 1].bytes;
    }
    seg_trim(s);
    *out = s;
    return 0;
fail:
    json_decref(rec->unfinished);
    json_decref(rec->last_fires);
    rec->unfinished = rec->last_fires = NULL;
    spool_close(s);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Appending
 */

/* Write f at the end of the current segment (rotating first when it is big).  mu held.
 * 0, or an errno when the disk refused it. */
static int put_frame(struct spool *s, struct frame *f)
{
    struct seg *g = &s->segs[s->n_segs - 1];
    if (s->fd >= 0 && g->bytes >= s->cfg.segment_bytes && g->last >= g->first) {
        struct ty_err err;
        if (seg_begin(s, f->seq, &err) != 0)
            log_warn("spool: cannot begin a new segment; the current one grows", "error=\"%s\"",
                     err.msg);
        g = &s->segs[s->n_segs - 1];
    }
    if (s->fd < 0) {
        struct ty_err err;
        if (seg_begin(s, f->seq, &err) != 0)
            return err.code == TY_ENOSPC ? ENOSPC : EIO;
        g = &s->segs[s->n_segs - 1];
    }
    int e = write_all(s->fd, f->data, f->len, g->bytes);
    if (e != 0)
        return e;
    g->bytes += f->len;
    g->last = f->seq;
    return 0;
}

static void set_disk_failing(struct spool *s, int e)
{
    if (!s->st.disk_failing)
        log_error("spool: cannot write; results held in memory until it can", "dir=%s error=\"%s\"",
                  s->dir, strerror(e));
    s->st.disk_failing = true;
    snprintf(s->st.error, sizeof s->st.error, "spool %s cannot be written: %s", s->dir,
             strerror(e));
}

uint64_t spool_append(struct spool *s, struct coord_result *r)
{
    pthread_mutex_lock(&s->mu);
    r->seq = s->seq + 1;
    bool drop = r->kind == COORD_RESULT_RUN && r->run.output_len > 0 &&
                (s->pending_bytes >= s->cfg.max_bytes || s->mem_bytes >= MEM_MAX);
    if (drop) {
        r->run.output = NULL;
        r->run.output_len = 0;
        r->output_dropped = true;
        if (r->run.error == NULL)
            r->run.error = "output not kept: the spool was past its limit while the store "
                           "could not be written";
        s->st.dropped_output++;
        if (!s->st.over_limit)
            log_warn("spool: past its limit; runs are recorded without their output",
                     "pending_bytes=%" PRIu64 " max_bytes=%" PRIu64, s->pending_bytes,
                     s->cfg.max_bytes);
        s->st.over_limit = true;
    }
    int64_t now = wall_ms();
    json_t *o = coord_result_to_json(r);
    char *text = NULL;
    if (o != NULL) {
        json_object_set_new(o, "at_ms", json_integer(now));
        text = json_dumps(o, JSON_COMPACT);
    }
    struct frame *f = text ? frame_make(text, strlen(text), r->seq) : NULL;
    if (f == NULL) {
        pthread_mutex_unlock(&s->mu);
        log_error("spool: out of memory; a result is lost", "kind=%d", (int)r->kind);
        json_decref(o);
        free(text);
        return 0;
    }
    s->seq = r->seq;
    fold(&s->unfinished, o, text);
    json_decref(o);
    free(text);
    int e = s->mem_head != NULL ? EAGAIN : put_frame(s, f);
    if (e != 0) {
        if (e != EAGAIN)
            set_disk_failing(s, e);
        if (s->mem_tail != NULL)
            s->mem_tail->next = f;
        else
            s->mem_head = f;
        s->mem_tail = f;
        s->mem_bytes += f->len;
    }
    pend_push(s, r->seq, now, (uint32_t)f->len);
    if (e == 0)
        free(f);
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    return r->seq;
}

uint64_t spool_last_seq(struct spool *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t v = s->seq;
    pthread_mutex_unlock(&s->mu);
    return v;
}

void spool_status(struct spool *s, struct spool_status *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->appended = s->seq;
    out->delivered = s->delivered;
    out->pending = s->seq - s->delivered;
    out->pending_bytes = s->pending_bytes;
    out->oldest_ms = s->r_len > 0 ? s->ring[s->r_head].at_ms : 0;
    pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------------------------------
 * The thread: sync, deliver
 */

/* Move frames held in memory to the disk, in order.  mu held. */
static void flush_memory(struct spool *s)
{
    while (s->mem_head != NULL) {
        struct frame *f = s->mem_head;
        int e = put_frame(s, f);
        if (e != 0) {
            set_disk_failing(s, e);
            return;
        }
        s->mem_head = f->next;
        if (s->mem_head == NULL)
            s->mem_tail = NULL;
        s->mem_bytes -= f->len;
        free(f);
    }
    if (s->st.disk_failing)
        log_info("spool: writable again", "dir=%s", s->dir);
    s->st.disk_failing = false;
}

/* The last seq written to the files (not held in memory).  mu held. */
static uint64_t written_seq(const struct spool *s)
{
    return s->mem_head != NULL ? s->mem_head->seq - 1 : s->seq;
}

struct batch {
    json_t *obj[BATCH_MAX];
    struct coord_result res[BATCH_MAX];
    const struct coord_result *ptr[BATCH_MAX];
    struct strbuf scratch[BATCH_MAX];
    size_t n;
    uint64_t last_seq;
    size_t end_seg; /* where reading stopped */
    uint64_t end_off;
};

/* Read up to BATCH_MAX results from the delivery position, none past `upto`.  mu not
 * held: the segments read from are not deleted meanwhile (only this thread deletes), and
 * their bytes are read up to the sizes taken under the lock. */
static void batch_read(struct batch *b, uint64_t upto, const struct seg *segs, size_t n_segs,
                       size_t seg, uint64_t off)
{
    b->n = 0;
    size_t bytes = 0;
    int fd = -1;
    size_t fd_seg = SIZE_MAX;
    while (seg < n_segs && b->n < BATCH_MAX && bytes < BATCH_BYTES) {
        if (fd_seg != seg) {
            if (fd >= 0)
                close(fd);
            fd = open(segs[seg].path, O_RDONLY | O_CLOEXEC);
            fd_seg = seg;
            if (fd < 0) {
                log_error("spool: cannot read a segment; its results are skipped",
                          "path=%s error=\"%s\"", segs[seg].path, strerror(errno));
                seg++;
                off = 0;
                continue;
            }
        }
        char *p;
        uint32_t len;
        uint64_t next;
        int r = frame_read(fd, off, segs[seg].bytes, &p, &len, &next);
        if (r == 0) {
            if (seg + 1 >= n_segs)
                break;
            seg++;
            off = 0;
            continue;
        }
        if (r < 0) {
            uint64_t good = frame_resync(fd, off, segs[seg].bytes);
            log_error("spool: unreadable bytes skipped",
                      "path=%s offset=%" PRIu64 " bytes=%" PRIu64, segs[seg].path, off, good - off);
            off = good;
            continue;
        }
        json_t *o = json_loads(p, 0, NULL);
        free(p);
        const char *k = json_string_value(json_object_get(o, "k"));
        json_int_t seq = json_integer_value(json_object_get(o, "seq"));
        if (o == NULL || k == NULL || strcmp(k, "snapshot") == 0 || seq <= 0 ||
            (uint64_t)seq <= b->last_seq) {
            json_decref(o); /* the snapshot, or a result already delivered */
            off = next;
            continue;
        }
        if ((uint64_t)seq > upto) {
            json_decref(o);
            break;
        }
        size_t i = b->n;
        struct ty_err err;
        if (coord_result_from_json(o, &b->res[i], &b->scratch[i], &err) != 0) {
            log_error("spool: a result that cannot be read is skipped", "seq=%lld error=\"%s\"",
                      (long long)seq, err.msg);
            json_decref(o);
            b->last_seq = (uint64_t)seq;
            off = next;
            continue;
        }
        b->obj[i] = o;
        b->ptr[i] = &b->res[i];
        b->n++;
        b->last_seq = (uint64_t)seq;
        bytes += len;
        off = next;
    }
    if (fd >= 0)
        close(fd);
    b->end_seg = seg;
    b->end_off = off;
}

static void batch_clear(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        json_decref(b->obj[i]);
        sb_truncate(&b->scratch[i], 0);
    }
    b->n = 0;
}

static void *spool_main(void *arg)
{
    struct spool *s = arg;
    struct batch *b = calloc(1, sizeof *b);
    if (b == NULL) {
        log_error("spool: out of memory; results are not delivered", "dir=%s", s->dir);
        return NULL;
    }
    for (size_t i = 0; i < BATCH_MAX; i++)
        sb_init(&b->scratch[i]);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->mem_head != NULL)
            flush_memory(s);
        uint64_t written = written_seq(s);
        /* 1. sync what was written */
        if (s->synced < written && s->fd >= 0) {
            int fd = dup(s->fd);
            pthread_mutex_unlock(&s->mu);
            if (fd >= 0 && fdatasync(fd) != 0)
                log_error("spool: cannot sync", "error=\"%s\"", strerror(errno));
            if (fd >= 0)
                close(fd);
            pthread_mutex_lock(&s->mu);
            s->synced = written;
        }
        /* 2. deliver what is synced */
        bool more = s->delivered < s->synced;
        if (more && !(s->stop && s->st.failing)) {
            size_t n_segs = s->n_segs;
            struct seg *segs = malloc(n_segs * sizeof *segs);
            if (segs != NULL)
                memcpy(segs, s->segs, n_segs * sizeof *segs);
            size_t seg = s->rd_seg;
            uint64_t off = s->rd_off, upto = s->synced;
            b->last_seq = s->delivered;
            pthread_mutex_unlock(&s->mu);
            struct ty_err err;
            ty_err_clear(&err);
            int rc = 0;
            if (segs != NULL) {
                batch_read(b, upto, segs, n_segs, seg, off);
                if (b->n > 0)
                    rc = s->cfg.deliver(s->cfg.deliver_arg, b->ptr, b->n, &err);
            } else {
                rc = ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
            }
            free(segs);
            bool changed = false;
            pthread_mutex_lock(&s->mu);
            if (rc == 0 && segs != NULL) {
                s->delivered = b->last_seq;
                s->rd_seg = b->end_seg;
                s->rd_off = b->end_off;
                pend_pop_upto(s, s->delivered);
                seg_trim(s);
                if (s->st.failing) {
                    log_info("spool: the store takes results again", "pending=%" PRIu64,
                             s->seq - s->delivered);
                    changed = true;
                }
                s->st.failing = false;
                if (s->st.over_limit && s->pending_bytes < s->cfg.max_bytes / 2)
                    s->st.over_limit = false;
                s->backoff_ms = 250;
                uint64_t d = s->delivered;
                pthread_mutex_unlock(&s->mu);
                batch_clear(b);
                write_checkpoint(s, d);
                pthread_mutex_lock(&s->mu);
                pthread_cond_broadcast(&s->drained);
                if (changed && s->cfg.changed != NULL) {
                    pthread_mutex_unlock(&s->mu);
                    s->cfg.changed(s->cfg.changed_arg);
                    pthread_mutex_lock(&s->mu);
                }
                continue;
            }
            batch_clear(b);
            if (!s->st.failing) {
                log_error("spool: the store refuses results; they stay in the spool",
                          "error=\"%s\" pending=%" PRIu64, err.msg, s->seq - s->delivered);
                changed = true;
            }
            s->st.failing = true;
            snprintf(s->st.error, sizeof s->st.error, "%s", err.msg);
            pthread_cond_broadcast(&s->drained);
            if (changed && s->cfg.changed != NULL) {
                pthread_mutex_unlock(&s->mu);
                s->cfg.changed(s->cfg.changed_arg);
                pthread_mutex_lock(&s->mu);
            }
            if (s->stop)
                break;
            struct timespec ts = clock_deadline(s->backoff_ms);
            pthread_cond_timedwait(&s->wake, &s->mu, &ts);
            if (s->backoff_ms < 5000)
                s->backoff_ms *= 2;
            continue;
        }
        if (s->stop)
            break;
        if (s->mem_head != NULL) {
            struct timespec ts = clock_deadline(1000);
            pthread_cond_timedwait(&s->wake, &s->mu, &ts);
        } else if (s->synced >= written_seq(s) && s->delivered >= s->synced) {
            pthread_cond_wait(&s->wake, &s->mu);
        }
    }
    pthread_cond_broadcast(&s->drained);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < BATCH_MAX; i++)
        sb_free(&b->scratch[i]);
    free(b);
    return NULL;
}

int spool_start(struct spool *s, struct ty_err *err)
{
    if (pthread_create(&s->thread, NULL, spool_main, s) != 0)
        return ty_error(err, TY_EIO, NULL, -1, 0, "spool: cannot start its thread");
    s->running = true;
    return 0;
}

bool spool_drain(struct spool *s, int timeout_ms)
{
    struct timespec ts = clock_deadline(timeout_ms);
    pthread_mutex_lock(&s->mu);
    uint64_t target = s->seq;
    pthread_cond_signal(&s->wake);
    while (s->delivered < target && !s->st.failing && s->running)
        if (pthread_cond_timedwait(&s->drained, &s->mu, &ts) != 0)
            break;
    bool all = s->delivered >= target;
    pthread_mutex_unlock(&s->mu);
    return all;
}

void spool_close(struct spool *s)
{
    if (s == NULL)
        return;
    if (s->running) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
        s->running = false;
    }
    if (s->mem_head != NULL)
        log_error("spool: stopping with results the disk did not take; they are lost",
                  "results=%" PRIu64, s->seq - written_seq(s));
    while (s->mem_head != NULL) {
        struct frame *f = s->mem_head;
        s->mem_head = f->next;
        free(f);
    }
    if (s->fd >= 0) {
        if (fdatasync(s->fd) != 0)
            log_warn("spool: cannot sync on close", "error=\"%s\"", strerror(errno));
        close(s->fd);
    }
    for (size_t i = 0; i < s->n_segs; i++)
        free(s->segs[i].path);
    free(s->segs);
    strmap_clear(&s->unfinished, free);
    free(s->ring);
    free(s->dir);
    free(s->ckpt_path);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->drained);
    free(s);
}
