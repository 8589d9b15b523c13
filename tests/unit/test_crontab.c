/*
 * test_crontab.c - crontab lines into job definitions.  Data-driven: each vector is a
 * crontab (and the options), and the result expected for every line: its kind, the job
 * object (its description aside, checked on its own) or the exact message.  Then the
 * bytes a command with % input feeds its command, checked by running it with /bin/sh
 * against cronie's rules written out by hand, and the options refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/wait.h>

#include "core/crontab.h"

#define EXPECT_MAX 12

struct expect {
    int line;
    enum crontab_kind kind;
    const char *job; /* the job object (without "description") as JSON text; NULL: none */
    const char *msg; /* the exact message; NULL: none */
};

struct vector {
    const char *what;
    struct crontab_opts opts;
    const char *text;
    struct expect lines[EXPECT_MAX]; /* every line, in order; ends at line 0 */
};

#define J(body) "{" body ", \"overlap\": \"parallel\"}"
#define UTC     ", \"time_zone\": \"UTC\""
#define MAIL_WHY                                                                                   \
    "Tethys sends no mail: it keeps each run's output in its history (tethys run logs, tethys "    \
    "history) and raises an alert when a run fails (tethys alerts)"
#define FIELDS_WHY                                                                                 \
    "an entry is 5 time fields (minute hour day-of-month month day-of-week) or a macro (@daily "   \
    "...), then the command"

static const struct vector vectors[] = {
    {"blank lines, comments, one entry",
     {0},
     "# m h dom mon dow command\n\n   \t\n  # indented comment\n0 2 * * * /usr/local/bin/backup.sh "
     "--full\n",
     {{1, CRONTAB_COMMENT, NULL, NULL},
      {2, CRONTAB_BLANK, NULL, NULL},
      {3, CRONTAB_BLANK, NULL, NULL},
      {4, CRONTAB_COMMENT, NULL, NULL},
      {5, CRONTAB_JOB,
       J("\"name\": \"crontab-5-backup.sh\", \"command\": \"/usr/local/bin/backup.sh --full\", "
         "\"schedule\": \"0 2 * * *\"" UTC),
       NULL}}},

    {"a last line without its newline, CRLF line ends",
     {0},
     "# windows\r\n*/5 * * * * echo hi\r\n@hourly date",
     {{1, CRONTAB_COMMENT, NULL, NULL},
      {2, CRONTAB_JOB,
       J("\"name\": \"crontab-2-echo\", \"command\": \"echo hi\", \"schedule\": \"*/5 * * * "
         "*\"" UTC),
       NULL},
      {3, CRONTAB_JOB,
       J("\"name\": \"crontab-3-date\", \"command\": \"date\", \"schedule\": \"@hourly\"" UTC),
       NULL}}},

    {"environment: spaces around =, quotes removed, trailing blanks of unquoted values dropped",
     {0},
     "PATH=/usr/bin:/bin\nA = spaced value   \nB=\"double quoted  \"\nC='single \"quoted\"'\n"
     "D =   \n\"E\"=quoted name\nF=x\"y\"\n0 1 * * * run\n",
     {{1, CRONTAB_ENV, NULL, "PATH=\"/usr/bin:/bin\": in the environment of the entries below"},
      {2, CRONTAB_ENV, NULL, "A=\"spaced value\": in the environment of the entries below"},
      {3, CRONTAB_ENV, NULL, "B=\"double quoted  \": in the environment of the entries below"},
      {4, CRONTAB_ENV, NULL,
       "C=\"single \\\"quoted\\\"\": in the environment of the entries below"},
      {5, CRONTAB_ENV, NULL, "D=\"\": in the environment of the entries below"},
      {6, CRONTAB_ENV, NULL, "E=\"quoted name\": in the environment of the entries below"},
      {7, CRONTAB_ENV, NULL, "F=\"x\\\"y\\\"\": in the environment of the entries below"},
      {8, CRONTAB_JOB,
       J("\"name\": \"crontab-8-run\", \"command\": \"run\", \"env\": {\"PATH\": "
         "\"/usr/bin:/bin\", "
         "\"A\": \"spaced value\", \"B\": \"double quoted  \", \"C\": \"single \\\"quoted\\\"\", "
         "\"D\": \"\", \"E\": \"quoted name\", \"F\": \"x\\\"y\\\"\"}, \"schedule\": \"0 1 * * "
         "*\"" UTC),
       NULL}}},

    {"environment applies below, the latest of each name; a reassignment does not reach up",
     {0},
     "@daily first\nLEVEL=1\n@daily second\nLEVEL=2\nHOME=/srv\n@daily third\n",
     {{1, CRONTAB_JOB,
       J("\"name\": \"crontab-1-first\", \"command\": \"first\", \"schedule\": \"@daily\"" UTC),
       NULL},
      {2, CRONTAB_ENV, NULL, "LEVEL=\"1\": in the environment of the entries below"},
      {3, CRONTAB_JOB,
       J("\"name\": \"crontab-3-second\", \"command\": \"second\", \"env\": {\"LEVEL\": \"1\"}, "
         "\"schedule\": \"@daily\"" UTC),
       NULL},
      {4, CRONTAB_ENV, NULL, "LEVEL=\"2\": in the environment of the entries below"},
      {5, CRONTAB_ENV, NULL, "HOME=\"/srv\": in the environment of the entries below"},
      {6, CRONTAB_JOB,
       J("\"name\": \"crontab-6-third\", \"command\": \"third\", \"env\": {\"LEVEL\": \"2\", "
         "\"HOME\": \"/srv\"}, \"schedule\": \"@daily\"" UTC),
       NULL}}},

    {"what looks like an assignment but is not one: an entry (and refused)",
     {0},
     "A=\"unterminated\nB=\"x\" trailing\nJUST_A_NAME\n",
     {{1, CRONTAB_ERROR, NULL, "too few fields (1): " FIELDS_WHY},
      {2, CRONTAB_ERROR, NULL, "too few fields (2): " FIELDS_WHY},
      {3, CRONTAB_ERROR, NULL, "too few fields (1): " FIELDS_WHY}}},

    {"an entry whose command is an assignment stays an entry",
     {0},
     "* * * * * X=1 /bin/true\n",
     {{1, CRONTAB_JOB,
       J("\"name\": \"crontab-1-true\", \"command\": \"X=1 /bin/true\", \"schedule\": \"* * * * "
         "*\"" UTC),
       NULL}}},

    {"names Tethys cannot set, and reserved ones, are not carried over",
     {0},
     "MY-VAR=1\n2FAST=1\nTETHYS_JOB=x\n@daily x\n",
     {{1, CRONTAB_UNSUPPORTED, NULL,
       "\"MY-VAR\" is not carried over: a Tethys environment variable name is letters, digits and "
       "'_', not starting with a digit (at most 128 bytes)"},
      {2, CRONTAB_UNSUPPORTED, NULL,
       "\"2FAST\" is not carried over: a Tethys environment variable name is letters, digits and "
       "'_', not starting with a digit (at most 128 bytes)"},
      {3, CRONTAB_UNSUPPORTED, NULL,
       "\"TETHYS_JOB\" is not carried over: Tethys sets the TETHYS_* variables of every run "
       "itself"},
      {4, CRONTAB_JOB,
       J("\"name\": \"crontab-4-x\", \"command\": \"x\", \"schedule\": \"@daily\"" UTC), NULL}}},

    {"MAILTO and MAILFROM: reported; empty ones need nothing",
     {0},
     "MAILTO=ops@example.com\nMAILFROM=\"cron@example.com\"\nMAILTO=\"\"\nMAILTO=\n@daily x\n",
     {{1, CRONTAB_UNSUPPORTED, NULL, "MAILTO=\"ops@example.com\" is not carried over: " MAIL_WHY},
      {2, CRONTAB_UNSUPPORTED, NULL,
       "MAILFROM=\"cron@example.com\" is not carried over: " MAIL_WHY},
      {3, CRONTAB_ENV, NULL,
       "MAILTO is empty (no mail): nothing to carry over, Tethys sends no mail"},
      {4, CRONTAB_ENV, NULL,
       "MAILTO is empty (no mail): nothing to carry over, Tethys sends no mail"},
      {5, CRONTAB_JOB,
       J("\"name\": \"crontab-5-x\", \"command\": \"x\", \"schedule\": \"@daily\"" UTC), NULL}}},

    {"SHELL: /bin/sh is what Tethys uses; another shell is reported; RANDOM_DELAY too",
     {0},
     "SHELL=/bin/sh\nSHELL=/bin/bash\nRANDOM_DELAY=30\n@daily x\n",
     {{1, CRONTAB_ENV, NULL, "SHELL=/bin/sh: Tethys runs every command with /bin/sh already"},
      {2, CRONTAB_UNSUPPORTED, NULL,
       "SHELL=\"/bin/bash\" is not carried over: Tethys runs every command with /bin/sh; a command "
       "that needs another shell must call it (bash -c '...')"},
      {3, CRONTAB_UNSUPPORTED, NULL,
       "RANDOM_DELAY=\"30\" is not carried over: Tethys starts each run at its scheduled time, "
       "without a random delay"},
      {4, CRONTAB_JOB,
       J("\"name\": \"crontab-4-x\", \"command\": \"x\", \"schedule\": \"@daily\"" UTC), NULL}}},

    {"CRON_TZ sets the zone of the entries below; empty goes back to the default",
     {.default_tz = "Europe/Berlin"},
     "@daily a\nCRON_TZ=Asia/Tokyo\n@daily b\nCRON_TZ = \"America/New_York\"\n@daily c\nCRON_TZ=\n"
     "@daily d\n",
     {{1, CRONTAB_JOB,
       J("\"name\": \"crontab-1-a\", \"command\": \"a\", \"schedule\": \"@daily\", \"time_zone\": "
         "\"Europe/Berlin\""),
       NULL},
      {2, CRONTAB_ENV, NULL, "CRON_TZ: the entries below run in \"Asia/Tokyo\""},
      {3, CRONTAB_JOB,
       J("\"name\": \"crontab-3-b\", \"command\": \"b\", \"schedule\": \"@daily\", \"time_zone\": "
         "\"Asia/Tokyo\""),
       NULL},
      {4, CRONTAB_ENV, NULL, "CRON_TZ: the entries below run in \"America/New_York\""},
      {5, CRONTAB_JOB,
       J("\"name\": \"crontab-5-c\", \"command\": \"c\", \"schedule\": \"@daily\", \"time_zone\": "
         "\"America/New_York\""),
       NULL},
      {6, CRONTAB_ENV, NULL, "CRON_TZ is empty: the entries below run in the default zone"},
      {7, CRONTAB_JOB,
       J("\"name\": \"crontab-7-d\", \"command\": \"d\", \"schedule\": \"@daily\", \"time_zone\": "
         "\"Europe/Berlin\""),
       NULL}}},

    {"--tz overrides CRON_TZ",
     {.tz = "Asia/Shanghai", .default_tz = "Europe/Berlin"},
     "CRON_TZ=Asia/Tokyo\n@daily b\n",
     {{1, CRONTAB_ENV, NULL,
       "CRON_TZ=\"Asia/Tokyo\" is overridden by --tz \"Asia/Shanghai\": every entry runs in that "
       "zone"},
      {2, CRONTAB_JOB,
       J("\"name\": \"crontab-2-b\", \"command\": \"b\", \"schedule\": \"@daily\", \"time_zone\": "
         "\"Asia/Shanghai\""),
       NULL}}},

    {"a CRON_TZ that is no zone name: refused, and so are the entries that would use it",
     {0},
     "CRON_TZ=Mars Base\n@daily a\nCRON_TZ=UTC\n@daily b\n",
     {{1, CRONTAB_ERROR, NULL,
       "CRON_TZ: \"Mars Base\" is not a time zone name (only letters, digits, '/', '_', '+', '-' "
       "and '.' may appear); expected an IANA name such as \"Asia/Shanghai\"; the entries below it "
       "are not imported"},
      {2, CRONTAB_ERROR, NULL,
       "CRON_TZ (line 1): \"Mars Base\" is not a time zone name (only letters, digits, '/', '_', "
       "'+', '-' and '.' may appear); expected an IANA name such as \"Asia/Shanghai\""},
      {3, CRONTAB_ENV, NULL, "CRON_TZ: the entries below run in \"UTC\""},
      {4, CRONTAB_JOB,
       J("\"name\": \"crontab-4-b\", \"command\": \"b\", \"schedule\": \"@daily\"" UTC), NULL}}},

    {"every macro; case does not matter; @reboot is reported",
     {0},
     "@yearly y\n@annually a\n@monthly m\n@weekly w\n@daily d\n@midnight n\n@hourly h\n@DAILY u\n"
     "@reboot /usr/local/bin/start-cache\n@every 5m x\n@weekly\n",
     {{1, CRONTAB_JOB,
       J("\"name\": \"crontab-1-y\", \"command\": \"y\", \"schedule\": \"@yearly\"" UTC), NULL},
      {2, CRONTAB_JOB,
       J("\"name\": \"crontab-2-a\", \"command\": \"a\", \"schedule\": \"@annually\"" UTC), NULL},
      {3, CRONTAB_JOB,
       J("\"name\": \"crontab-3-m\", \"command\": \"m\", \"schedule\": \"@monthly\"" UTC), NULL},
      {4, CRONTAB_JOB,
       J("\"name\": \"crontab-4-w\", \"command\": \"w\", \"schedule\": \"@weekly\"" UTC), NULL},
      {5, CRONTAB_JOB,
       J("\"name\": \"crontab-5-d\", \"command\": \"d\", \"schedule\": \"@daily\"" UTC), NULL},
      {6, CRONTAB_JOB,
       J("\"name\": \"crontab-6-n\", \"command\": \"n\", \"schedule\": \"@midnight\"" UTC), NULL},
      {7, CRONTAB_JOB,
       J("\"name\": \"crontab-7-h\", \"command\": \"h\", \"schedule\": \"@hourly\"" UTC), NULL},
      {8, CRONTAB_JOB,
       J("\"name\": \"crontab-8-u\", \"command\": \"u\", \"schedule\": \"@daily\"" UTC), NULL},
      {9, CRONTAB_UNSUPPORTED, NULL,
       "@reboot is not carried over: Tethys runs jobs on a schedule or on demand, not when the "
       "machine starts; a command to run at boot belongs in a systemd unit"},
      {10, CRONTAB_ERROR, NULL,
       "unknown macro \"@every\" (crontab knows @reboot @yearly @annually @monthly @weekly @daily "
       "@midnight @hourly)"},
      {11, CRONTAB_ERROR, NULL, "no command after the schedule"}}},

    {"fields: ranges, steps, lists, names, 7 for Sunday, tabs between fields",
     {0},
     "0 9-17/2 * JAN-MAR,Dec mon-fri a\n*/15\t0,12\t1-7\t*\t7 b\n30 4 1,15 * 5 c\n",
     {{1, CRONTAB_JOB,
       J("\"name\": \"crontab-1-a\", \"command\": \"a\", \"schedule\": \"0 9-17/2 * JAN-MAR,Dec "
         "mon-fri\"" UTC),
       NULL},
      {2, CRONTAB_JOB,
       J("\"name\": \"crontab-2-b\", \"command\": \"b\", \"schedule\": \"*/15 0,12 1-7 * 7\"" UTC),
       NULL},
      {3, CRONTAB_JOB,
       J("\"name\": \"crontab-3-c\", \"command\": \"c\", \"schedule\": \"30 4 1,15 * 5\"" UTC),
       NULL}}},

    {"malformed lines are refused with the reason; the others still import",
     {0},
     "0 2 32 * * a\n61 * * * * b\n* * * * 8 c\n0 0 L * * d\n1 2 3\n0 0 * * *\n@daily ok\n"
     "0 0 * * MON#2 e\n%x\n",
     {{1, CRONTAB_ERROR, NULL,
       "schedule \"0 2 32 * *\": field 3 (day-of-month): \"32\" is out of range 1-31"},
      {2, CRONTAB_ERROR, NULL,
       "schedule \"61 * * * *\": field 1 (minute): \"61\" is out of range 0-59"},
      {3, CRONTAB_ERROR, NULL,
       "schedule \"* * * * 8\": field 5 (day-of-week): \"8\" is out of range 0-7"},
      {4, CRONTAB_ERROR, NULL,
       "schedule \"0 0 L * *\": field 3 (day-of-month): \"L\": L is allowed only in the Quartz "
       "form (6 or 7 fields)"},
      {5, CRONTAB_ERROR, NULL, "too few fields (3): " FIELDS_WHY},
      {6, CRONTAB_ERROR, NULL, "no command after the schedule"},
      {7, CRONTAB_JOB,
       J("\"name\": \"crontab-7-ok\", \"command\": \"ok\", \"schedule\": \"@daily\"" UTC), NULL},
      {8, CRONTAB_ERROR, NULL,
       "schedule \"0 0 * * MON#2\": field 5 (day-of-week): \"MON#2\": # is allowed only in the "
       "Quartz form (6 or 7 fields)"},
      {9, CRONTAB_ERROR, NULL, "too few fields (1): " FIELDS_WHY}}},

    {"% ends the command: the rest is its standard input, % a newline, \\% a literal %",
     {0},
     "0 8 * * * mail -s \"50\\% off\" root%Hello,%it's me%\n"
     "0 8 * * * cat %one\n"
     "0 8 * * * date +\\%Y-\\%m-\\%d\n"
     "0 8 * * * cat %\n"
     "0 8 * * * cat %%\n"
     "0 8 * * * cat # a comment %in\n"
     "0 8 * * * sort   %b%a\n"
     "0 8 * * * %x\n",
     {{1, CRONTAB_JOB,
       J("\"name\": \"crontab-1-mail\", \"command\": \"printf '%s\\\\n' 'Hello,' 'it'\\\\''s me' | "
         "(mail -s \\\"50% off\\\" root)\", \"schedule\": \"0 8 * * *\"" UTC),
       "the text after % becomes the command's standard input (2 lines)"},
      {2, CRONTAB_JOB,
       J("\"name\": \"crontab-2-cat\", \"command\": \"printf '%s\\\\n' 'one' | (cat)\", "
         "\"schedule\": \"0 8 * * *\"" UTC),
       "the text after % becomes the command's standard input (1 line)"},
      {3, CRONTAB_JOB,
       J("\"name\": \"crontab-3-date\", \"command\": \"date +%Y-%m-%d\", \"schedule\": \"0 8 * * "
         "*\"" UTC),
       NULL},
      {4, CRONTAB_JOB,
       J("\"name\": \"crontab-4-cat\", \"command\": \"cat\", \"schedule\": \"0 8 * * *\"" UTC),
       "nothing follows the %: the command gets no input, as under cron"},
      {5, CRONTAB_JOB,
       J("\"name\": \"crontab-5-cat\", \"command\": \"printf '%s\\\\n' '' | (cat)\", \"schedule\": "
         "\"0 8 * * *\"" UTC),
       "the text after % becomes the command's standard input (1 line)"},
      {6, CRONTAB_JOB,
       J("\"name\": \"crontab-6-cat\", \"command\": \"printf '%s\\\\n' 'in' | (cat # a "
         "comment\\n)\", "
         "\"schedule\": \"0 8 * * *\"" UTC),
       "the text after % becomes the command's standard input (1 line)"},
      {7, CRONTAB_JOB,
       J("\"name\": \"crontab-7-sort\", \"command\": \"printf '%s\\\\n' 'b' 'a' | (sort)\", "
         "\"schedule\": \"0 8 * * *\"" UTC),
       "the text after % becomes the command's standard input (2 lines)"},
      {8, CRONTAB_ERROR, NULL, "no command before the %: cron would run nothing"}}},

    {"backslashes: only \\% loses its backslash; \\\\% still ends the command",
     {0},
     "0 8 * * * echo a\\\\b\\n\n0 8 * * * cat \\\\%x\\y\\%z\n0 8 * * * cat %\\\n",
     {{1, CRONTAB_JOB,
       J("\"name\": \"crontab-1-echo\", \"command\": \"echo a\\\\\\\\b\\\\n\", \"schedule\": \"0 8 "
         "* * *\"" UTC),
       NULL},
      {2, CRONTAB_JOB,
       J("\"name\": \"crontab-2-cat\", \"command\": \"printf '%s\\\\n' 'x\\\\y%z' | (cat "
         "\\\\\\\\\\n)\", \"schedule\": \"0 8 * * *\"" UTC),
       "the text after % becomes the command's standard input (1 line)"},
      {3, CRONTAB_JOB,
       J("\"name\": \"crontab-3-cat\", \"command\": \"printf '%s' '\\\\' | (cat)\", \"schedule\": "
         "\"0 8 * * *\"" UTC),
       "the text after % becomes the command's standard input (1 line)"}}},

    {"system crontab: a user column before the command",
     {.system = true},
     "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n"
     "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n"
     "@daily www-data php /var/www/cron.php\n@reboot root /usr/local/bin/warm\n0 0 * * *  root\n"
     "0 0 * * *\n0 0 * * * -x cmd\n",
     {{1, CRONTAB_ENV, NULL, "SHELL=/bin/sh: Tethys runs every command with /bin/sh already"},
      {2, CRONTAB_ENV, NULL,
       "PATH=\"/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\": in the environment "
       "of the entries below"},
      {3, CRONTAB_JOB,
       J("\"name\": \"crontab-3-cd\", \"command\": \"cd / && run-parts --report "
         "/etc/cron.hourly\", "
         "\"user\": \"root\", \"env\": {\"PATH\": "
         "\"/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\"}, \"schedule\": \"17 * "
         "* "
         "* *\"" UTC),
       NULL},
      {4, CRONTAB_JOB,
       J("\"name\": \"crontab-4-php\", \"command\": \"php /var/www/cron.php\", \"user\": "
         "\"www-data\", \"env\": {\"PATH\": "
         "\"/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\"}, \"schedule\": "
         "\"@daily\"" UTC),
       NULL},
      {5, CRONTAB_UNSUPPORTED, NULL,
       "@reboot is not carried over: Tethys runs jobs on a schedule or on demand, not when the "
       "machine starts; a command to run at boot belongs in a systemd unit"},
      {6, CRONTAB_ERROR, NULL, "no command after the user"},
      {7, CRONTAB_ERROR, NULL,
       "no user and no command after the schedule (a system crontab has a user column, then the "
       "command)"},
      {8, CRONTAB_ERROR, NULL,
       "user: \"-x\" is not a user name; expected letters, digits, '.', '_' and '-', not "
       "starting with '-'"}}},

    {"a user crontab line that starts with root gets a hint",
     {0},
     "17 * * * * root run-parts /etc/cron.hourly\n",
     {{1, CRONTAB_JOB,
       J("\"name\": \"crontab-1-root\", \"command\": \"root run-parts /etc/cron.hourly\", "
         "\"schedule\": \"17 * * * *\"" UTC),
       "the command starts with \"root\": if this is a system crontab (/etc/crontab, "
       "/etc/cron.d/*) with a user column, import it with --system"}}},

    {"names: the first word without directories, quotes or assignments; prefix and domain",
     {.prefix = "legacy.db", .domain = "ops/db"},
     "* * * * * /opt/bin/Nightly_Report.SH x\n* * * * * TZ=UTC LANG=C \"/opt/my app/Run It\"\n"
     "* * * * * [ -x /x ] && /x\n* * * * * $(which php) cron.php\n* * * * * ./--weird--name--\n",
     {{1, CRONTAB_JOB,
       J("\"name\": \"legacy.db-1-nightly_report.sh\", \"domain\": \"ops/db\", \"command\": "
         "\"/opt/bin/Nightly_Report.SH x\", \"schedule\": \"* * * * *\"" UTC),
       NULL},
      {2, CRONTAB_JOB,
       J("\"name\": \"legacy.db-2-run-it\", \"domain\": \"ops/db\", \"command\": \"TZ=UTC LANG=C "
         "\\\"/opt/my app/Run It\\\"\", \"schedule\": \"* * * * *\"" UTC),
       NULL},
      {3, CRONTAB_JOB,
       J("\"name\": \"legacy.db-3-job\", \"domain\": \"ops/db\", \"command\": \"[ -x /x ] && /x\", "
         "\"schedule\": \"* * * * *\"" UTC),
       NULL},
      {4, CRONTAB_JOB,
       J("\"name\": \"legacy.db-4-job\", \"domain\": \"ops/db\", \"command\": \"$(which php) "
         "cron.php\", \"schedule\": \"* * * * *\"" UTC),
       NULL},
      {5, CRONTAB_JOB,
       J("\"name\": \"legacy.db-5-weird-name\", \"domain\": \"ops/db\", \"command\": "
         "\"./--weird--name--\", \"schedule\": \"* * * * *\"" UTC),
       NULL}}},

    {"lines that are not text",
     {0},
     "@daily caf\xc3\xa9\n@daily \xff\xfe\n",
     {{1, CRONTAB_JOB,
       J("\"name\": \"crontab-1-caf\", \"command\": \"caf\xc3\xa9\", \"schedule\": \"@daily\"" UTC),
       NULL},
      {2, CRONTAB_ERROR, NULL, "the line is not valid UTF-8"}}},
};

static json_t *parse_json(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    if (v == NULL)
        fail_msg("bad expected JSON (%s) in %s", e.text, text);
    return v;
}

static void check_vector(const struct vector *v)
{
    struct crontab c;
    struct ty_err err;
    ty_err_clear(&err);
    int rc = crontab_parse(v->text, strlen(v->text), &v->opts, &c, &err);
    if (rc != 0)
        fail_msg("%s: crontab_parse failed: %s", v->what, err.msg);
    size_t n = 0;
    while (n < EXPECT_MAX && v->lines[n].line != 0)
        n++;
    if (c.n_lines != n)
        fail_msg("%s: %zu results, expected %zu", v->what, c.n_lines, n);
    size_t jobs = 0;
    for (size_t i = 0; i < n; i++) {
        const struct expect *x = &v->lines[i];
        const struct crontab_line *l = &c.lines[i];
        if (l->line != x->line || l->kind != x->kind)
            fail_msg("%s: result %zu: line %d %s, expected line %d %s (%s)", v->what, i, l->line,
                     crontab_kind_name(l->kind), x->line, crontab_kind_name(x->kind),
                     l->msg ? l->msg : "no message");
        if ((x->msg == NULL) != (l->msg == NULL) || (x->msg != NULL && strcmp(x->msg, l->msg) != 0))
            fail_msg("%s: line %d: message\n  got      %s\n  expected %s", v->what, l->line,
                     l->msg ? l->msg : "(none)", x->msg ? x->msg : "(none)");
        if ((x->job == NULL) != (l->job == NULL))
            fail_msg("%s: line %d: a job %s", v->what, l->line,
                     l->job ? "that was not expected" : "was expected");
        if (x->job == NULL)
            continue;
        jobs++;
        json_t *want = parse_json(x->job);
        json_t *got = json_deep_copy(l->job);
        const char *desc = json_string_value(json_object_get(got, "description"));
        assert_non_null(desc);
        json_object_del(got, "description");
        if (!json_equal(want, got)) {
            char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
            char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
            fail_msg("%s: line %d: job\n  got      %s\n  expected %s", v->what, l->line, g, w);
        }
        json_decref(want);
        json_decref(got);
    }
    assert_int_equal(c.n_jobs, jobs);
    crontab_free(&c);
}

static void test_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++)
        check_vector(&vectors[i]);
}

/* Counts by kind, and where each job's zone came from. */
static void test_counts_and_zone_sources(void **state)
{
    (void)state;
    const char *text = "# c\n\nA=1\nMAILTO=x\n@daily a\nCRON_TZ=Asia/Tokyo\n@daily b\nbad\n";
    struct crontab_opts o = {.default_tz = "Europe/Paris"};
    struct crontab c;
    assert_int_equal(crontab_parse(text, strlen(text), &o, &c, NULL), 0);
    assert_int_equal(c.n_lines, 8);
    assert_int_equal(c.n_comments, 1);
    assert_int_equal(c.n_blank, 1);
    assert_int_equal(c.n_env, 2);
    assert_int_equal(c.n_unsupported, 1);
    assert_int_equal(c.n_jobs, 2);
    assert_int_equal(c.n_errors, 1);
    assert_int_equal(c.lines[4].tz_from, CRONTAB_TZ_DEFAULT);
    assert_int_equal(c.lines[4].tz_line, 0);
    assert_int_equal(c.lines[6].tz_from, CRONTAB_TZ_CRON_TZ);
    assert_int_equal(c.lines[6].tz_line, 6);
    crontab_free(&c);

    o.tz = "UTC";
    assert_int_equal(crontab_parse(text, strlen(text), &o, &c, NULL), 0);
    assert_int_equal(c.lines[6].tz_from, CRONTAB_TZ_OPTION);
    crontab_free(&c);

    /* nothing at all */
    assert_int_equal(crontab_parse("", 0, &o, &c, NULL), 0);
    assert_int_equal(c.n_lines, 0);
    crontab_free(&c);
}

/* The description says where the job came from, with the line as written. */
static void test_description(void **state)
{
    (void)state;
    const char *text = "\n0\t2 * * *   backup.sh  %in\n";
    struct crontab_opts o = {.source = "/etc/cron.d/backup"};
    struct crontab c;
    assert_int_equal(crontab_parse(text, strlen(text), &o, &c, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(c.lines[1].job, "description")),
                        "from /etc/cron.d/backup line 2: 0\t2 * * *   backup.sh  %in");
    crontab_free(&c);

    /* a very long line is cut, on a character boundary */
    char *big = malloc(8000);
    assert_non_null(big);
    size_t n = (size_t)snprintf(big, 8000, "@daily echo ");
    while (n < 7000) {
        memcpy(big + n, "\xc3\xa9", 2); /* é */
        n += 2;
    }
    big[n] = '\0';
    assert_int_equal(crontab_parse(big, n, &(struct crontab_opts){0}, &c, NULL), 0);
    assert_int_equal(c.lines[0].kind, CRONTAB_JOB);
    const char *d = json_string_value(json_object_get(c.lines[0].job, "description"));
    assert_true(strlen(d) < 4096);
    assert_string_equal(d + strlen(d) - 3, "...");
    crontab_free(&c);
    free(big);
}

/* Names are unique within a file, even when every command is the same: the line number is
 * part of each name. */
static void test_names_unique(void **state)
{
    (void)state;
    char text[4096];
    size_t o = 0;
    for (int i = 0; i < 120; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "* * * * * /usr/bin/backup\n");
    struct crontab c;
    assert_int_equal(crontab_parse(text, o, &(struct crontab_opts){0}, &c, NULL), 0);
    assert_int_equal(c.n_jobs, 120);
    for (size_t i = 0; i < c.n_lines; i++) {
        char want[64];
        snprintf(want, sizeof want, "crontab-%zu-backup", i + 1);
        assert_string_equal(json_string_value(json_object_get(c.lines[i].job, "name")), want);
    }
    crontab_free(&c);

    /* the longest prefix and a long first word still make a valid name */
    char prefix[CRONTAB_PREFIX_MAX + 1];
    memset(prefix, 'p', CRONTAB_PREFIX_MAX);
    prefix[CRONTAB_PREFIX_MAX] = '\0';
    const char *t = "* * * * * /bin/a-really-long-command-name-that-goes-on-and-on-and-on x\n";
    assert_int_equal(
        crontab_parse(t, strlen(t), &(struct crontab_opts){.prefix = prefix}, &c, NULL), 0);
    assert_int_equal(c.lines[0].kind, CRONTAB_JOB);
    const char *name = json_string_value(json_object_get(c.lines[0].job, "name"));
    /* the slug is cut at CRONTAB_SLUG_MAX bytes, and the '-' the cut leaves at its end dropped */
    assert_int_equal(strncmp(name, prefix, CRONTAB_PREFIX_MAX), 0);
    assert_string_equal(name + CRONTAB_PREFIX_MAX, "-1-a-really-long-command-name-that-goes-on");
    crontab_free(&c);
}

/* Options that would make every job invalid are refused, naming the option. */
static void test_bad_options(void **state)
{
    (void)state;
    static const struct {
        struct crontab_opts opts;
        const char *field;
        const char *msg;
    } cases[] = {
        {{.prefix = "-x"}, "--prefix", "--prefix: \"-x\" must start with a letter or digit"},
        {{.prefix = "a b"},
         "--prefix",
         "--prefix: \"a b\" has a character other than letters, digits, '.', '_' and '-' at byte "
         "1"},
        {{.prefix = ""}, "--prefix", "--prefix: must not be empty"},
        {{.prefix = "ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"},
         "--prefix",
         "--prefix: 65 bytes; at most 64"},
        {{.tz = "Not A Zone"},
         "--tz",
         "--tz: time_zone: \"Not A Zone\" is not a time zone name (only letters, digits, '/', '_', "
         "'+', '-' and '.' may appear); expected an IANA name such as \"Asia/Shanghai\""},
        {{.domain = "/bad/"}, "--domain", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct crontab c;
        struct ty_err err;
        ty_err_clear(&err);
        assert_int_equal(crontab_parse("@daily x\n", 9, &cases[i].opts, &c, &err), TY_EINVAL);
        assert_string_equal(err.field, cases[i].field);
        if (cases[i].msg != NULL)
            assert_string_equal(err.msg, cases[i].msg);
        else
            assert_true(strncmp(err.msg, "--domain: domain: ", 18) == 0);
        assert_int_equal(c.n_lines, 0);
        assert_null(c.lines);
    }
}

/* ---- what the commands feed their standard input, run for real -------------------------- */

struct feed {
    const char *after_cat; /* the crontab text after "@daily cat" */
    const char *bytes;     /* what cron writes to the command's standard input */
    size_t len;
};

#define FEED(a, b)                                                                                 \
    {                                                                                              \
        (a), (b), sizeof(b) - 1                                                                    \
    }

/* cronie's do_command.c, applied by hand. */
static const struct feed feeds[] = {
    FEED("%hello", "hello\n"),
    FEED("%a%b%c", "a\nb\nc\n"),
    FEED("%a%b%", "a\nb\n"),
    FEED("%%", "\n"),
    FEED("%%%x", "\n\nx\n"),
    FEED("%50\\% off", "50% off\n"),
    FEED("%back\\slash", "back\\slash\n"),
    FEED("%end\\", "end\\\n"),
    FEED("%\\", "\\"),
    FEED("%\\\\%", "\\%\n"),
    FEED("%it's 'quoted' \"twice\"", "it's 'quoted' \"twice\"\n"),
    FEED("%$HOME `date` $(id) *", "$HOME `date` $(id) *\n"),
    FEED("%  spaced  %\ttabbed\t", "  spaced  \n\ttabbed\t\n"),
};

static void test_stdin_bytes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof feeds / sizeof feeds[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "@daily cat%s\n", feeds[i].after_cat);
        struct crontab c;
        assert_int_equal(crontab_parse(text, strlen(text), &(struct crontab_opts){0}, &c, NULL), 0);
        if (c.lines[0].kind != CRONTAB_JOB)
            fail_msg("%s: %s", text, c.lines[0].msg);
        const char *cmd = json_string_value(json_object_get(c.lines[0].job, "command"));
        FILE *p = popen(cmd, "r"); /* /bin/sh -c cmd, as Tethys runs it */
        assert_non_null(p);
        char out[512];
        size_t n = fread(out, 1, sizeof out, p);
        int status = pclose(p);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (n != feeds[i].len || memcmp(out, feeds[i].bytes, n) != 0)
            fail_msg("%s-> %s\n  got %zu bytes \"%.*s\", expected %zu \"%s\"", text, cmd, n, (int)n,
                     out, feeds[i].len, feeds[i].bytes);
        crontab_free(&c);
    }
}

/* A command with input and a comment, a list and a background job still gets the input. */
static void test_stdin_shapes(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        const char *out;
    } cases[] = {
        {"@daily cat # a comment that would swallow the parenthesis%x%y", "x\ny\n"},
        {"@daily read a; read b; echo \"$b-$a\"%1%2", "2-1\n"},
        {"@daily tr a-z A-Z | sed s/B/-/%abc", "A-C\n"},
        {"@daily cat;%only", "only\n"},
        {"@daily   cat   %padded", "padded\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct crontab c;
        const char *t = cases[i].line;
        assert_int_equal(crontab_parse(t, strlen(t), &(struct crontab_opts){0}, &c, NULL), 0);
        assert_int_equal(c.lines[0].kind, CRONTAB_JOB);
        FILE *p = popen(json_string_value(json_object_get(c.lines[0].job, "command")), "r");
        assert_non_null(p);
        char out[256];
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = '\0';
        assert_int_equal(pclose(p), 0);
        assert_string_equal(out, cases[i].out);
        crontab_free(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),      cmocka_unit_test(test_counts_and_zone_sources),
        cmocka_unit_test(test_description),  cmocka_unit_test(test_names_unique),
        cmocka_unit_test(test_bad_options),  cmocka_unit_test(test_stdin_bytes),
        cmocka_unit_test(test_stdin_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
