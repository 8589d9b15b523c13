/*
 * cli_cron.c - `tethys cron next` and `tethys cron check`: the cron engine on the command
 * line, with no server.
 *
 * `next` is for programs: times only, one per line, in spec §8's format, or a one-line
 * error and exit status 2.  Its --tsv mode answers many questions in one process (the
 * conformance checker's batch protocol).  `check` is for people: the verdict, the zone
 * with its current offset, the next times with their weekday and zone abbreviation, and
 * on error the expression again with a caret under the part at fault; --json gives the
 * same to programs (the console's live check uses the same fields).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "../core/civil.h"
#include "../core/cron.h"
#include "../core/strbuf.h"
#include "../tzdb/tzdb.h"
#include "../api/cron_check.h"

#define COUNT_DEFAULT 10
#define COUNT_MAX     100000

static const char *const weekdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

struct cron_opts {
    const char *tz;
    const char *from;
    long count;
    int json;
    int tsv;
    struct strbuf expr; /* the positional words joined by single spaces */
    int have_expr;
};

static void next_usage(FILE *out)
{
    fprintf(out,
            "usage: tethys cron next [--tz ZONE] [--from RFC3339] [--count N] [--] EXPR\n"
            "       tethys cron next --tsv < LINES\n"
            "\n"
            "Print the next N (default %d) fire times of EXPR strictly after --from (default:\n"
            "now), in ZONE (default UTC), one per line as RFC 3339 local times with offset.\n"
            "Fewer lines when the schedule stops firing by 2199-12-31.\n"
            "--tsv reads EXPR<TAB>ZONE<TAB>FROM<TAB>COUNT lines and prints, for each,\n"
            "the same four fields then OK<TAB>t1,t2,... or INVALID<TAB>message.\n"
            "Exit status: 0 success; 2 invalid expression, zone, time or option.\n",
            COUNT_DEFAULT);
}

static void check_usage(FILE *out)
{
    fprintf(out,
            "usage: tethys cron check [--tz ZONE] [--from RFC3339] [--count N] [--json] [--] "
            "EXPR\n"
            "\n"
            "Say whether EXPR is valid, show ZONE (default UTC) with its current UTC offset\n"
            "and the next N (default %d) fire times; on error, point at the part at fault.\n"
            "Exit status: 0 valid; 1 valid but never fires; 2 invalid expression or option.\n",
            COUNT_DEFAULT);
}

/* Value of an option given as "--name VALUE" or "--name=VALUE". */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        cli_error("option %s needs a value", name);
        return -1;
    }
    *val = argv[++*i];
    return 1;
}

static int parse_count(const char *s, long *out)
{
    long long v;
    if (cli_whole("--count", s, 1, COUNT_MAX, &v) != 0)
        return -1;
    *out = (long)v;
    return 0;
}

/* Returns 0, or an exit status (CLI_USAGE after printing why, CLI_OK after --help). */
static int parse_opts(int argc, char **argv, struct cron_opts *o, int is_check)
{
    int opts_done = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int r;
        /* options may follow the expression too: no cron item starts with "--" */
        if (opts_done || a[0] != '-' || a[1] != '-') {
            if (strcmp(a, "-h") == 0 && !opts_done) {
                (is_check ? check_usage : next_usage)(stdout);
                return -1;
            }
            if (o->have_expr)
                sb_addc(&o->expr, ' ');
            sb_adds(&o->expr, a);
            o->have_expr = 1;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            opts_done = 1;
        } else if (strcmp(a, "--help") == 0) {
            (is_check ? check_usage : next_usage)(stdout);
            return -1;
        } else if ((r = opt_value(argc, argv, &i, "--tz", &v)) != 0) {
            if (r < 0)
                return CLI_USAGE;
            o->tz = v;
        } else if ((r = opt_value(argc, argv, &i, "--from", &v)) != 0) {
            if (r < 0)
                return CLI_USAGE;
            o->from = v;
        } else if ((r = opt_value(argc, argv, &i, "--count", &v)) != 0) {
            if (r < 0 || parse_count(v, &o->count) != 0)
                return CLI_USAGE;
        } else if (is_check && strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (!is_check && strcmp(a, "--tsv") == 0) {
            o->tsv = 1;
        } else {
            cli_error("unknown option \"%s\"", a);
            (is_check ? check_usage : next_usage)(stderr);
            return CLI_USAGE;
        }
    }
    if (o->tsv && o->have_expr) {
        cli_error("--tsv reads expressions from standard input; give none as arguments");
        return CLI_USAGE;
    }
    if (!o->tsv && !o->have_expr) {
        cli_error("no expression given");
        (is_check ? check_usage : next_usage)(stderr);
        return CLI_USAGE;
    }
    return 0;
}

static int64_t now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

/* Resolve --from (or now).  On failure the message is in err. */
static int resolve_from(const char *from, int64_t *out, struct ty_err *err)
{
    if (from == NULL) {
        *out = now_seconds();
        return 0;
    }
    int rc = civil_parse_rfc3339(from, "--from", out, err);
    if (rc != 0)
        return rc;
    if (*out < CRON_MIN_TIME)
        return ty_error(err, TY_ERANGE, "--from", 0, (int)strlen(from),
                        "--from: \"%s\" is before 1972-01-01T00:00:00Z, the earliest time "
                        "supported (spec §8)",
                        from);
    return 0;
}

/* Append up to count fire times after `from` to sb, separated by sep. Returns how many. */
static long list_times(const struct cron_expr *e, const struct tz_zone *z, int64_t from, long count,
                       const char *sep, struct strbuf *sb)
{
    long n = 0;
    int64_t t = from;
    while (n < count && cron_next(e, z, t, &t) == 0) {
        char buf[CIVIL_RFC3339_MAX];
        struct tz_info ti;
        tz_lookup(z, t, &ti);
        civil_format_rfc3339(t, ti.utoff, buf);
        if (n > 0)
            sb_adds(sb, sep);
        sb_adds(sb, buf);
        n++;
    }
    return n;
}

/* One line of the --tsv protocol: EXPR TZ FROM COUNT in, the same plus STATUS PAYLOAD out. */
static void tsv_line(char *line, struct strbuf *out)
{
    char *f[4] = {line, NULL, NULL, NULL};
    int nf = 1;
    for (char *c = line; *c != '\0' && nf < 4; c++) {
        if (*c == '\t') {
            *c = '\0';
            f[nf++] = c + 1;
        }
    }
    for (int i = 0; i < nf; i++) {
        if (i > 0)
            sb_addc(out, '\t');
        sb_adds(out, f[i]);
    }
    sb_addc(out, '\t');
    if (nf < 4) {
        sb_adds(out, "ERROR\tline must be EXPR<TAB>ZONE<TAB>FROM<TAB>COUNT\n");
        return;
    }
    struct ty_err err;
    ty_err_clear(&err);
    struct cron_expr e;
    const struct tz_zone *z;
    int64_t from;
    char *end;
    long count = strtol(f[3], &end, 10);
    if (end == f[3] || *end != '\0' || count < 1 || count > COUNT_MAX) {
        sb_addf(out, "ERROR\tCOUNT: \"%s\" is not a whole number from 1 to %d\n", f[3], COUNT_MAX);
        return;
    }
    if (cron_parse(f[0], &e, &err) != 0) {
        sb_addf(out, "INVALID\t%s\n", err.msg);
        return;
    }
    if (tzdb_get(f[1], &z, &err) != 0 || resolve_from(f[2], &from, &err) != 0) {
        sb_addf(out, "ERROR\t%s\n", err.msg);
        return;
    }
    sb_adds(out, "OK\t");
    list_times(&e, z, from, count, ",", out);
    sb_addc(out, '\n');
}

static int run_tsv(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    struct strbuf out;
    sb_init(&out);
    while ((n = getline(&line, &cap, stdin)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        tsv_line(line, &out);
        if (fwrite(sb_str(&out), 1, out.len, stdout) != out.len)
            break;
        sb_truncate(&out, 0);
    }
    free(line);
    sb_free(&out);
    return CLI_OK;
}

static int cmd_next(int argc, char **argv)
{
    struct cron_opts o = {"UTC", NULL, COUNT_DEFAULT, 0, 0, {0}, 0};
    sb_init(&o.expr);
    int rc = parse_opts(argc, argv, &o, 0);
    if (rc != 0 || o.tsv) {
        if (rc == 0)
            rc = run_tsv();
        sb_free(&o.expr);
        return rc < 0 ? CLI_OK : rc;
    }
    struct ty_err err;
    ty_err_clear(&err);
    struct cron_expr e;
    const struct tz_zone *z;
    int64_t from;
    rc = CLI_USAGE;
    if (cron_parse(sb_str(&o.expr), &e, &err) != 0)
        cli_error("invalid cron expression \"%s\": %s", sb_str(&o.expr), err.msg);
    else if (tzdb_get(o.tz, &z, &err) != 0 || resolve_from(o.from, &from, &err) != 0)
        cli_error("%s", err.msg);
    else {
        struct strbuf out;
        sb_init(&out);
        if (list_times(&e, z, from, o.count, "\n", &out) > 0)
            sb_addc(&out, '\n');
        fwrite(sb_str(&out), 1, out.len, stdout);
        sb_free(&out);
        rc = CLI_OK;
    }
    sb_free(&o.expr);
    return rc;
}

static const char *form_text(int form)
{
    switch (form) {
    case CRON_FORM_QUARTZ:
        return "Quartz (second minute hour day-of-month month day-of-week [year])";
    case CRON_FORM_UNIX: return "Unix crontab (minute hour day-of-month month day-of-week)";
    default: return "fixed rate (@every)";
    }
}

static void offset_text(int32_t off, char buf[16])
{
    int32_t a = off < 0 ? -off : off;
    snprintf(buf, 16, "%c%02d:%02d", off < 0 ? '-' : '+', (int)(a / 3600), (int)(a / 60 % 60));
}

static void print_caret(const char *text, int pos, int len)
{
    printf("  %s\n  ", text);
    for (int i = 0; i < pos; i++)
        putchar(text[i] == '\t' ? '\t' : ' ');
    for (int i = 0; i < (len > 0 ? len : 1); i++)
        putchar('^');
    putchar('\n');
}

static int check_json(struct cron_opts *o, int64_t from)
{
    struct ty_err err;
    int status = 0;
    json_t *root =
        cron_check_json(sb_str(&o->expr), o->tz, from, o->count, now_seconds(), &status, &err);
    if (root == NULL) {
        cli_error("%s", err.msg);
        return CLI_USAGE;
    }
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s != NULL)
        printf("%s\n", s);
    free(s);
    json_decref(root);
    return status == 0 ? CLI_OK : status == 1 ? CLI_NEGATIVE : CLI_USAGE;
}

static int check_text(struct cron_opts *o, int parse_rc, const struct ty_err *err,
                      const struct cron_expr *e, const struct tz_zone *z, int64_t from)
{
    const char *text = sb_str(&o->expr);
    if (parse_rc != 0) {
        printf("expression:\n");
        print_caret(text, err->pos, err->len);
        printf("result:     invalid\n");
        printf("error:      %s\n", err->msg);
        return CLI_USAGE;
    }
    struct strbuf norm;
    sb_init(&norm);
    cron_format(e, &norm);
    struct tz_info now;
    tz_lookup(z, now_seconds(), &now);
    char off[16], buf[CIVIL_RFC3339_MAX];
    offset_text(now.utoff, off);

    printf("expression: %s\n", text);
    printf("form:       %s\n", form_text(e->form));
    printf("normalized: %s\n", sb_str(&norm));
    printf("time zone:  %s (%s, UTC%s now)\n", tz_name(z), now.abbr, off);
    sb_free(&norm);

    int64_t t = from;
    long n = 0;
    struct strbuf lines;
    sb_init(&lines);
    for (; n < o->count && cron_next(e, z, t, &t) == 0; n++) {
        struct tz_info ti;
        tz_lookup(z, t, &ti);
        civil_format_rfc3339(t, ti.utoff, buf);
        sb_addf(&lines, "  %s  %s  %s\n", buf, weekdays[civil_weekday((t + ti.utoff) / 86400)],
                ti.abbr);
    }
    struct tz_info fi;
    tz_lookup(z, from, &fi);
    civil_format_rfc3339(from, fi.utoff, buf);
    if (n == 0) {
        printf("result:     valid, but never fires after %s (up to 2199-12-31)\n", buf);
        sb_free(&lines);
        return CLI_NEGATIVE;
    }
    printf("result:     valid\n");
    printf("next %ld fire time%s after %s:\n%s", n, n == 1 ? "" : "s", buf, sb_str(&lines));
    if (n < o->count)
        printf("(no more fire times up to 2199-12-31)\n");
    sb_free(&lines);
    return CLI_OK;
}

static int cmd_check(int argc, char **argv)
{
    struct cron_opts o = {"UTC", NULL, COUNT_DEFAULT, 0, 0, {0}, 0};
    sb_init(&o.expr);
    int rc = parse_opts(argc, argv, &o, 1);
    if (rc != 0) {
        sb_free(&o.expr);
        return rc < 0 ? CLI_OK : rc;
    }
    struct ty_err err, zerr;
    ty_err_clear(&err);
    ty_err_clear(&zerr);
    struct cron_expr e;
    const struct tz_zone *z = NULL;
    int64_t from = 0;
    int prc = cron_parse(sb_str(&o.expr), &e, &err);
    if (tzdb_get(o.tz, &z, &zerr) != 0 || resolve_from(o.from, &from, &zerr) != 0) {
        cli_error("%s", zerr.msg);
        sb_free(&o.expr);
        return CLI_USAGE;
    }
    rc = o.json ? check_json(&o, from) : check_text(&o, prc, &err, &e, z, from);
    sb_free(&o.expr);
    return rc;
}

static void cron_usage(FILE *out)
{
    fprintf(out, "usage: tethys cron <next|check> [options] [--] EXPR\n"
                 "  next   print the next fire times, one per line (for programs)\n"
                 "  check  validate and explain a schedule (for people; --json for programs)\n");
}

int cli_cron(int argc, char **argv)
{
    if (argc < 1) {
        cron_usage(stderr);
        return CLI_USAGE;
    }
    int rc;
    if (strcmp(argv[0], "next") == 0)
        rc = cmd_next(argc - 1, argv + 1);
    else if (strcmp(argv[0], "check") == 0)
        rc = cmd_check(argc - 1, argv + 1);
    else if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        cron_usage(stdout);
        return CLI_OK;
    } else {
        cli_error("unknown cron command \"%s\"", argv[0]);
        cron_usage(stderr);
        return CLI_USAGE;
    }
    tzdb_shutdown();
    return rc;
}
