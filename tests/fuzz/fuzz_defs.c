/*
 * fuzz_defs.c - libFuzzer target for definitions as users send them: JSON and YAML text
 * (the CLI's readers) and the validation of jobs and domains (what the API runs on every
 * body).
 *
 * The first byte picks the reader (even: JSON, odd: YAML); the rest is the text.
 * Properties: no crash, hang or leak on any bytes; whatever is read, the YAML writer
 * writes something the YAML reader gives back equal (the promise `tethys export` makes);
 * a value that validates as a job or domain has a canonical JSON that validates again to
 * the same canonical JSON; a merge patch either fails with a field named or keeps the
 * job's name.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_file.h"
#include "core/domain.h"
#include "core/job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_yaml_round_trip(const json_t *v)
{
    struct strbuf out;
    sb_init(&out);
    if (cli_yaml_write(v, &out) != 0)
        abort();
    json_t *back = NULL;
    struct ty_err err;
    if (cli_yaml_to_json(sb_str(&out), out.len, &back, &err) != 0 || !json_equal(v, back))
        abort();
    json_decref(back);
    sb_free(&out);
}

static void check_job(const json_t *v)
{
    struct job j;
    struct ty_err err;
    if (job_from_json(v, &j, &err) != 0) {
        if (err.msg[0] == '\0')
            abort(); /* a refusal always says why */
        job_free(&j);
        return;
    }
    json_t *canon = job_to_json(&j);
    struct job again;
    if (canon == NULL || job_from_json(canon, &again, &err) != 0)
        abort();
    json_t *canon2 = job_to_json(&again);
    if (canon2 == NULL || !json_equal(canon, canon2))
        abort();

    /* the same value as a merge patch of the job itself */
    struct job patched;
    if (job_patch(&j, v, &patched, &err) == 0) {
        if (strcmp(patched.name, j.name) != 0)
            abort();
        job_free(&patched);
    }
    json_decref(canon2);
    json_decref(canon);
    job_free(&again);
    job_free(&j);
}

static void check_domain(const json_t *v)
{
    struct domain d;
    struct ty_err err;
    if (domain_from_json(v, &d, &err) != 0) {
        domain_free(&d);
        return;
    }
    json_t *canon = domain_to_json(&d);
    struct domain again;
    if (canon == NULL || domain_from_json(canon, &again, &err) != 0)
        abort();
    json_t *canon2 = domain_to_json(&again);
    if (canon2 == NULL || !json_equal(canon, canon2))
        abort();
    json_decref(canon2);
    json_decref(canon);
    domain_free(&again);
    domain_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    json_t *v = NULL;
    struct ty_err err;
    int rc =
        (data[0] & 1) ? cli_yaml_to_json(text, len, &v, &err) : cli_json_parse(text, len, &v, &err);
    if (rc != 0) {
        if (err.msg[0] == '\0')
            abort();
        return 0;
    }
    check_yaml_round_trip(v);
    if (json_is_object(v)) {
        check_job(v);
        check_domain(v);
    }
    json_decref(v);
    return 0;
}
