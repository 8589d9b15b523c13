/*
 * fuzz_result.c - libFuzzer target for what executors hand over: a result's JSON (the
 * wire and spool form, coord_result_from_json) and a spool segment file as a crash, a
 * bad disk or someone else may have left it (spool_open reading it back).
 *
 * Properties: no crash, hang or leak on any bytes.  A result that reads is written again
 * and reads back to the same fields (the form is lossless).  A spool opened over any
 * segment bytes opens, says how many bytes it could not read, and delivers only results
 * that read as results, in increasing order.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coord/coord.h"
#include "executor/spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_result(const uint8_t *data, size_t size)
{
    json_t *o = json_loadb((const char *)data, size, 0, NULL);
    if (o == NULL)
        return;
    struct coord_result r, again;
    struct ty_err err;
    struct strbuf s1, s2;
    sb_init(&s1);
    sb_init(&s2);
    if (coord_result_from_json(o, &r, &s1, &err) == 0) {
        json_t *w = coord_result_to_json(&r);
        if (w == NULL || coord_result_from_json(w, &again, &s2, &err) != 0)
            abort();
        if (again.kind != r.kind || again.seq != r.seq ||
            again.run.output_len != r.run.output_len ||
            (r.run.output_len > 0 &&
             memcmp(again.run.output, r.run.output, r.run.output_len) != 0) ||
            again.run.status != r.run.status || again.skip.reason != r.skip.reason)
            abort();
        json_decref(w);
    }
    sb_free(&s1);
    sb_free(&s2);
    json_decref(o);
}

static uint64_t last_seq;
static int deliver(void *arg, const struct coord_result *const *r, size_t n, struct ty_err *err)
{
    (void)arg;
    (void)err;
    for (size_t i = 0; i < n; i++) {
        if (r[i]->seq <= last_seq)
            abort(); /* in order, never twice */
        last_seq = r[i]->seq;
    }
    return 0;
}

static void check_spool(const uint8_t *data, size_t size)
{
    static char dir[64];
    if (dir[0] == '\0') {
        snprintf(dir, sizeof dir, "/tmp/fuzz-spool-%d", (int)getpid());
        mkdir(dir, 0700);
    }
    char path[128];
    snprintf(path, sizeof path, "%s/seg-0000000000000001.log", dir);
    FILE *fp = fopen(path, "wb");
    if (fp == NULL)
        return;
    fwrite(data, 1, size, fp);
    fclose(fp);
    char ckpt[128];
    snprintf(ckpt, sizeof ckpt, "%s/delivered", dir);
    unlink(ckpt);
    struct spool_config cfg = {.dir = dir, .max_bytes = 1 << 20, .deliver = deliver};
    struct spool *s;
    struct spool_recovered rec;
    struct ty_err err;
    if (spool_open(&cfg, &s, &rec, &err) != 0)
        return;
    if (rec.lost_bytes > size)
        abort();
    json_decref(rec.unfinished);
    json_decref(rec.last_fires);
    last_seq = 0;
    if (rec.undelivered > 0 && spool_start(s, &err) == 0)
        spool_drain(s, 2000);
    spool_close(s);
    /* leave the directory empty for the next input */
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        check_result(data + 1, size - 1);
    else
        check_spool(data + 1, size - 1);
    return 0;
}
