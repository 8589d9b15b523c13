/*
 * cron_check.c - the cron check's JSON, shared by the CLI and the API so a person at a
 * terminal and the console's live check see the same verdict in the same words.
 */
#include "cron_check.h"

#include <stdio.h>

#include "../core/civil.h"
#include "../core/cron.h"
#include "../core/strbuf.h"
#include "../tzdb/tzdb.h"

static const char *form_name(int form)
{
    switch (form) {
    case CRON_FORM_QUARTZ: return "quartz";
    case CRON_FORM_UNIX: return "unix";
    default: return "every";
    }
}

json_t *cron_check_json(const char *expression, const char *zone, int64_t from, long count,
                        int64_t now, int *status_out, struct ty_err *err)
{
    const struct tz_zone *z;
    if (tzdb_get(zone ? zone : "UTC", &z, err) != 0)
        return NULL;
    json_t *root = json_object();
    json_object_set_new(root, "expression", json_string(expression));
    struct cron_expr e;
    struct ty_err perr;
    ty_err_clear(&perr);
    if (cron_parse(expression, &e, &perr) != 0) {
        json_object_set_new(root, "valid", json_false());
        json_object_set_new(root, "status", json_string("invalid"));
        json_object_set_new(root, "error",
                            json_pack("{s:s, s:s, s:i, s:i}", "message", perr.msg, "field",
                                      perr.field, "position", perr.pos, "length", perr.len));
        *status_out = 2;
        return root;
    }
    struct strbuf norm;
    sb_init(&norm);
    cron_format(&e, &norm);
    struct tz_info ti;
    tz_lookup(z, now, &ti);
    char off[16], buf[CIVIL_RFC3339_MAX];
    int32_t a = ti.utoff < 0 ? -ti.utoff : ti.utoff;
    snprintf(off, sizeof off, "%c%02d:%02d", ti.utoff < 0 ? '-' : '+', (int)(a / 3600),
             (int)(a / 60 % 60));
    json_t *times = json_array();
    int64_t t = from;
    for (long n = 0; n < count && cron_next(&e, z, t, &t) == 0; n++) {
        struct tz_info fi;
        tz_lookup(z, t, &fi);
        civil_format_rfc3339(t, fi.utoff, buf);
        json_array_append_new(times, json_string(buf));
    }
    int fires = json_array_size(times) > 0;
    json_object_set_new(root, "valid", json_true());
    json_object_set_new(root, "status", json_string(fires ? "valid" : "never_fires"));
    json_object_set_new(root, "form", json_string(form_name(e.form)));
    json_object_set_new(root, "normalized", json_string(sb_str(&norm)));
    json_object_set_new(root, "time_zone",
                        json_pack("{s:s, s:s, s:s, s:i}", "name", tz_name(z), "abbreviation",
                                  ti.abbr, "utc_offset", off, "utc_offset_seconds", ti.utoff));
    struct tz_info fi;
    tz_lookup(z, from, &fi);
    civil_format_rfc3339(from, fi.utoff, buf);
    json_object_set_new(root, "from", json_string(buf));
    json_object_set_new(root, "next", times);
    sb_free(&norm);
    *status_out = fires ? 0 : 1;
    return root;
}
