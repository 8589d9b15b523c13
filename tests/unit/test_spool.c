/*
 * test_spool.c - the executor's spool: results handed to the sink in order and in
 * batches; kept and offered again while the sink refuses them; read back after a restart
 * (what had not been delivered is delivered, exactly the runs that had not ended are
 * reported unfinished); a torn last frame cut, a damaged frame in the middle skipped;
 * segments rotated and deleted once delivered; output dropped past the size limit.
 *
 * The sink here is a function of the test that records what it is given (the store side
 * is tested in test_store.c and by the system tests).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "executor/spool.h"

struct sink {
    pthread_mutex_t mu;
    int fail;            /* > 0: refuse that many batches; < 0: refuse all */
    uint64_t seqs[4096]; /* what was delivered, in order */
    char ids[4096][24];
    size_t n;
    size_t batches;
    bool had_output[4096];
};

static int deliver(void *arg, const struct coord_result *const *r, size_t n, struct ty_err *err)
{
    struct sink *k = arg;
    pthread_mutex_lock(&k->mu);
    k->batches++;
    if (k->fail != 0) {
        if (k->fail > 0)
            k->fail--;
        pthread_mutex_unlock(&k->mu);
        return ty_error(err, TY_EUNAVAIL, NULL, -1, 0, "database is down (test)");
    }
    for (size_t i = 0; i < n && k->n < 4096; i++) {
        k->seqs[k->n] = r[i]->seq;
        snprintf(k->ids[k->n], sizeof k->ids[0], "%s",
                 r[i]->kind == COORD_RESULT_SKIP ? r[i]->skip.fire_id : r[i]->run.run_id);
        k->had_output[k->n] = r[i]->kind == COORD_RESULT_RUN && r[i]->run.output_len > 0;
        k->n++;
    }
    pthread_mutex_unlock(&k->mu);
    return 0;
}

static size_t delivered(struct sink *k)
{
    pthread_mutex_lock(&k->mu);
    size_t n = k->n;
    pthread_mutex_unlock(&k->mu);
    return n;
}

static void set_fail(struct sink *k, int fail)
{
    pthread_mutex_lock(&k->mu);
    k->fail = fail;
    pthread_mutex_unlock(&k->mu);
}

struct fx {
    char dir[64];
    struct sink sink;
};

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tethys-spool-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    pthread_mutex_init(&f->sink.mu, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    pthread_mutex_destroy(&f->sink.mu);
    free(f);
    return 0;
}

static struct spool *open_spool(struct fx *f, uint64_t max_bytes, uint64_t segment,
                                struct spool_recovered *rec)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/spool", f->dir);
    struct spool_config cfg = {.dir = dir,
                               .max_bytes = max_bytes,
                               .segment_bytes = segment,
                               .deliver = deliver,
                               .deliver_arg = &f->sink};
    struct spool *s = NULL;
    struct ty_err err;
    assert_int_equal(spool_open(&cfg, &s, rec, &err), 0);
    return s;
}

/* A run result in phase `phase` (ENDED: succeeded), with some output. */
static void append_run(struct spool *s, const char *id, const char *job, enum coord_phase phase,
                       int64_t at)
{
    char fire[64];
    snprintf(fire, sizeof fire, "%s@%lld#0", job, (long long)at);
    struct coord_result r = {
        .kind = COORD_RESULT_RUN,
        .run = {.run_id = id,
                .fire_id = fire,
                .job = job,
                .domain = "",
                .attempt = 1,
                .trigger = STORE_TRIGGER_SCHEDULE,
                .status = phase == COORD_PHASE_ENDED     ? STORE_RUN_SUCCEEDED
                          : phase == COORD_PHASE_RUNNING ? STORE_RUN_RUNNING
                                                         : STORE_RUN_QUEUED,
                .scheduled_at = at,
                .pid = phase == COORD_PHASE_RUNNING ? 1234 : 0,
                .output = phase == COORD_PHASE_ENDED ? "done\n" : NULL,
                .output_len = phase == COORD_PHASE_ENDED ? 5 : 0},
        .phase = phase,
        .fire_shards = 1,
    };
    assert_true(spool_append(s, &r) > 0);
}

static bool wait_delivered(struct sink *k, size_t n)
{
    for (int i = 0; i < 500; i++) {
        if (delivered(k) >= n)
            return true;
        struct timespec d = {0, 10L * 1000000};
        nanosleep(&d, NULL);
    }
    return false;
}

static void test_delivers_in_order(void **state)
{
    struct fx *f = *state;
    struct spool_recovered rec;
    struct spool *s = open_spool(f, 1 << 30, 0, &rec);
    assert_int_equal(json_array_size(rec.unfinished), 0);
    assert_int_equal(rec.undelivered, 0);
    json_decref(rec.unfinished);
    json_decref(rec.last_fires);
    struct ty_err err;
    assert_int_equal(spool_start(s, &err), 0);
    char id[24];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "r%04d", i);
        append_run(s, id, "j", i % 3 == 2 ? COORD_PHASE_ENDED : COORD_PHASE_QUEUED, 1000 + i);
    }
    assert_true(spool_drain(s, 10000));
    assert_int_equal(delivered(&f->sink), 1000);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(f->sink.seqs[i], i + 1);
    assert_true(f->sink.batches < 1000); /* batched */
    struct spool_status st;
    spool_status(s, &st);
    assert_int_equal(st.appended, 1000);
    assert_int_equal(st.delivered, 1000);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.oldest_ms, 0);
    assert_false(st.failing);
    spool_close(s);
}

static void test_kept_while_refused(void **state)
{
    struct fx *f = *state;
    struct spool_recovered rec;
    struct spool *s = open_spool(f, 1 << 30, 0, &rec);
    json_decref(rec.unfinished);
    json_decref(rec.last_fires);
    set_fail(&f->sink, -1);
    struct ty_err err;
    assert_int_equal(spool_start(s, &err), 0);
    append_run(s, "a", "j", COORD_PHASE_QUEUED, 10);
    append_run(s, "a", "j", COORD_PHASE_ENDED, 10);
    struct spool_status st;
    for (int i = 0; i < 500; i++) {
        spool_status(s, &st);
        if (st.failing)
            break;
        struct timespec d = {0, 10L * 1000000};
        nanosleep(&d, NULL);
    }
    assert_true(st.failing);
    assert_int_equal(st.pending, 2);
    assert_true(st.pending_bytes > 0);
    assert_true(st.oldest_ms > 0);
    assert_non_null(strstr(st.error, "database is down (test)"));
    assert_false(spool_drain(s, 100)); /* failing: it does not wait for nothing */
    set_fail(&f->sink, 0);
    append_run(s, "b", "j", COORD_PHASE_QUEUED, 11);
    assert_true(wait_delivered(&f->sink, 3));
    assert_int_equal(f->sink.seqs[0], 1);
    assert_int_equal(f->sink.seqs[2], 3);
    spool_status(s, &st);
    assert_false(st.failing);
    spool_close(s);
}

static void test_restart_redelivers_and_recovers(void **state)
{
    struct fx *f = *state;
    struct spool_recovered rec;
    struct spool *s = open_spool(f, 1 << 30, 0, &rec);
    json_decref(rec.unfinished);
    json_decref(rec.last_fires);
    /* the thread never starts: as if the store was down until the process died */
    append_run(s, "done1", "j", COORD_PHASE_QUEUED, 100);
    append_run(s, "done1", "j", COORD_PHASE_RUNNING, 100);
    append_run(s, "done1", "j", COORD_PHASE_ENDED, 100);
    append_run(s, "runs1", "j", COORD_PHASE_QUEUED, 105);
    append_run(s, "runs1", "j", COORD_PHASE_RUNNING, 105);
    append_run(s, "wait1", "k", COORD_PHASE_QUEUED, 107);
    spool_close(s);

    s = open_spool(f, 1 << 30, 0, &rec);
    assert_int_equal(rec.undelivered, 6);
    assert_int_equal(rec.lost_bytes, 0);
    assert_int_equal(json_array_size(rec.unfinished), 2);
    bool runs1 = false, wait1 = false;
    size_t i;
    json_t *o;
    json_array_foreach(rec.unfinished, i, o)
    {
        const char *id = json_string_value(json_object_get(o, "run_id"));
        const char *phase = json_string_value(json_object_get(o, "phase"));
        runs1 |= strcmp(id, "runs1") == 0 && strcmp(phase, "running") == 0;
        wait1 |= strcmp(id, "wait1") == 0 && strcmp(phase, "queued") == 0;
    }
    assert_true(runs1 && wait1);
    assert_int_equal(json_integer_value(json_object_get(rec.last_fires, "j")), 105);
    assert_int_equal(json_integer_value(json_object_get(rec.last_fires, "k")), 107);
    json_decref(rec.unfinished);
    json_decref(rec.last_fires);
    struct ty_err err;
    assert_int_equal(spool_start(s, &err), 0);
    append_run(s, "runs1", "j", COORD_PHASE_ENDED, 105);
    assert_true(spool_drain(s, 10000));
    assert_int_equal(delivered(&f->sink), 7);
    for (size_t k = 0; k < 7; k++)
        assert_int_equal(f->sink.seqs[k], k + 1); /* in order, none twice */
    spool_close(s);

    /* delivered and reopened: nothing again, one unfinished run left */
    s = open_spool(f, 1 << 30, 0, &rec);
    assert_int_equal(rec.undelivered, 0);
    assert_int_equal(json_array_size(rec.unfinished), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(rec.unfinished, 0), "run_id")), "wait1");
    json_decref(rec.unfinished);
    json_decref(rec.last_fires);
    assert_int_equal(spool_start(s, &err), 0);
    append_run(s, "x", "j", COORD_PHASE_QUEUED, 200);
    assert_true(spool_drain(s, 10000));
    assert_int_equal(delivered(&f->sink), 8);
    assert_int_equal(f->sink.seqs[7], 8); /* the sequence goes on */
    spool_close(s);
}

/* The one segment being written: its path. */
static void last_segment(struct fx *f, char *out, size_t cap)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/spool", f->dir);
    DIR *d = opendir(dir);
    assert_non_null(d);
    char best[256] = "";
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "seg-", 4) == 0 && strcmp(de->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", de->d_name);
    closedir(d);
    assert_true(best[0] != '\0');
    snprintf(out, cap, "%s/%s", dir, best);
}

static size_t count_segments(struct fx *f)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/spool", f->dir);
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strncmp(de->d_name, "seg-", 4) == 0;
    closedir(d);
    return n;
}

static void test_torn_tail_is_cut(void **state)
{
    struct fx *f = *state;
    struct spool_recovered rec;
    struct spool *s = open_spool(f, 1 << 30, 0, &rec);
    json_decref(rec.unfinished);
    json_decref(rec.last_fires);
    append_run(s, "a", "j", COORD_PHASE_QUEUED, 1);
    append_run(s, "b", "j", COORD_PHASE_QUEUED, 2);
    spool_close(s);
    char path[512];
    last_segment(f, path, sizeof path);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size - 7), 0); /* b's frame, torn */
    s = open_spool(f, 1 << 30, 0, &rec);
    assert_int_equal(rec.undelivered, 1);
    assert_int_equal(json_array_size(rec.unfinished), 1);
    json_decref(rec.unfinished);
    json_decref(rec.last_fires);
    struct ty_err err;
    assert_int_equal(spool_start(s, &err), 0);
    append_run(s, "c", "j", COORD_PHASE_QUEUED, 3);
    assert_true(spool_drain(s, 10000));
    assert_int_equal(delivered(&f->sink), 2);
    assert_string_equal(f->sink.ids[0], "a");
    assert_string_equal(f->sink.ids[1], "c");
    assert_int_equal(f->sink.seqs[1], 2); /* b's seq is given again: it never was */
    spool_close(s);
}

static void test_damaged_frame_is_skipped(void **state)
{
    struct fx *f = *state;
    struct spool_recovered rec;
    struct spool *s = open_spool(f, 1 << 30, 0, &rec);
    json_decref(rec.unfinished);
    json_decref(rec.last_fires);
    append_run(s, "aaaa", "j", COORD_PHASE_QUEUED, 1);
    append_run(s, "bbbb", "j", COORD_PHASE_QUEUED, 2);
    append_run(s, "cccc", "j", COORD_PHASE_QUEUED, 3);
    spool_close(s);
    char path[512];
    last_segment(f, path, sizeof path);
    /* damage b's payload: find "bbbb" and change one byte */
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, fp);
    char *p = memmem(buf, n, "bbbb", 4);
    assert_non_null(p);
    fseek(fp, p - buf, SEEK_SET);
    fputc('X', fp);
    fclose(fp);
    s = open_spool(f, 1 << 30, 0, &rec);
    assert_true(rec.lost_bytes > 0);
    assert_int_equal(rec.undelivered, 2);
    json_decref(rec.unfinished);
    json_decref(rec.last_fires);
    struct ty_err err;
    assert_int_equal(spool_start(s, &err), 0);
    assert_true(spool_drain(s, 10000));
    assert_int_equal(delivered(&f->sink), 2);
    assert_string_equal(f->sink.ids[0], "aaaa");
    assert_string_equal(f->sink.ids[1], "cccc");
    spool_close(s);
}

static void test_segments_rotate_and_go(void **state)
{
    struct fx *f = *state;
    struct spool_recovered rec;
    struct spool *s = open_spool(f, 1 << 30, 4096, &rec);
    json_decref(rec.unfinished);
    json_decref(rec.last_fires);
    /* store down: segments pile up */
    set_fail(&f->sink, -1);
    struct ty_err err;
    assert_int_equal(spool_start(s, &err), 0);
    append_run(s, "long", "j", COORD_PHASE_RUNNING, 1); /* never ends: carried by snapshots */
    char id[24];
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof id, "r%03d", i);
        append_run(s, id, "j", COORD_PHASE_ENDED, 10 + i);
    }
    assert_true(count_segments(f) > 3);
    set_fail(&f->sink, 0);
    assert_true(wait_delivered(&f->sink, 201));
    assert_true(spool_drain(s, 10000));
    spool_close(s);
    /* delivered: only the segment being written is left */
    s = open_spool(f, 1 << 30, 4096, &rec);
    assert_int_equal(count_segments(f), 1);
    assert_int_equal(rec.undelivered, 0);
    assert_int_equal(json_array_size(rec.unfinished), 1); /* "long", through the snapshots */
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(rec.unfinished, 0), "run_id")), "long");
    json_decref(rec.unfinished);
    json_decref(rec.last_fires);
    spool_close(s);
}

static void test_output_dropped_past_the_limit(void **state)
{
    struct fx *f = *state;
    struct spool_recovered rec;
    struct spool *s = open_spool(f, 2000, 0, &rec);
    json_decref(rec.unfinished);
    json_decref(rec.last_fires);
    set_fail(&f->sink, -1);
    struct ty_err err;
    assert_int_equal(spool_start(s, &err), 0);
    char id[24];
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "r%03d", i);
        append_run(s, id, "j", COORD_PHASE_ENDED, i);
    }
    struct spool_status st;
    spool_status(s, &st);
    assert_true(st.over_limit);
    assert_true(st.dropped_output > 0);
    assert_int_equal(st.appended, 40); /* every run is still recorded */
    set_fail(&f->sink, 0);
    append_run(s, "last", "j", COORD_PHASE_QUEUED, 99);
    assert_true(wait_delivered(&f->sink, 41));
    assert_true(f->sink.had_output[0]);
    assert_false(f->sink.had_output[39]);
    spool_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delivers_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kept_while_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_redelivers_and_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_is_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_frame_is_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segments_rotate_and_go, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_dropped_past_the_limit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
