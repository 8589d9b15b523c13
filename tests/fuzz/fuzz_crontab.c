/*
 * fuzz_crontab.c - libFuzzer target for the crontab reader (`tethys import crontab`).
 *
 * Properties: no crash, hang or leak on any bytes, in user and system format; one result
 * per line; every job result is a valid job definition (it passes job_from_json again).
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/crontab.h"
#include "core/job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int system = 0; system < 2; system++) {
        struct crontab_opts opts = {0};
        opts.system = system;
        struct crontab c;
        struct ty_err err;
        if (crontab_parse((const char *)data, size, &opts, &c, &err) != 0)
            abort(); /* only bad options may fail, and these are fine */
        size_t lines = 0;
        for (size_t i = 0; i < size; i++)
            lines += data[i] == '\n';
        if (c.n_lines < lines || c.n_lines > lines + 1)
            abort();
        for (size_t i = 0; i < c.n_lines; i++) {
            if (c.lines[i].kind != CRONTAB_JOB)
                continue;
            struct job j;
            if (c.lines[i].job == NULL || job_from_json(c.lines[i].job, &j, &err) != 0)
                abort();
            job_free(&j);
        }
        crontab_free(&c);
    }
    return 0;
}
