"""`tethys cron next` and `tethys cron check` as a user and a script see them: output
format, exit statuses, and the error message for each kind of bad input."""
import json

import pytest


def test_next_prints_spec_format(run):
    r = run("cron", "next", "--tz", "Asia/Shanghai", "--from", "2017-08-30T17:22:17+08:00",
            "--count", "3", "--", "0/5 * * * * ?")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["2017-08-30T17:22:20+08:00", "2017-08-30T17:22:25+08:00",
                                     "2017-08-30T17:22:30+08:00"]
    assert r.stderr == ""


def test_next_defaults_to_ten_times_in_utc(run):
    r = run("cron", "next", "--from", "2024-01-01T00:00:00Z", "@hourly")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert len(lines) == 10
    assert lines[0] == "2024-01-01T01:00:00+00:00"


def test_next_words_are_joined_and_options_may_follow(run):
    r = run("cron", "next", "0", "0", "12", "*", "*", "?", "--count", "1",
            "--from", "2024-01-01T00:00:00Z")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "2024-01-01T12:00:00+00:00\n"


def test_next_fewer_lines_when_it_stops(run):
    r = run("cron", "next", "--from", "2024-01-01T00:00:00Z", "--count", "5",
            "0 0 0 1 1 ? 2025-2026")
    assert r.stdout.splitlines() == ["2025-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"]
    r = run("cron", "next", "--from", "2024-01-01T00:00:00Z", "0 0 0 30 2 ?")
    assert r.returncode == 0 and r.stdout == ""


@pytest.mark.parametrize("args, fragment", [
    (["0 0 12 32 * ?"], 'field 4 (day-of-month): "32" is out of range 1-31'),
    (["--tz", "Mars/Olympus", "* * * * *"], 'unknown time zone "Mars/Olympus"'),
    (["--tz", "../../etc/passwd", "* * * * *"], "not a valid zone name"),
    (["--from", "1971-12-31T23:59:59Z", "* * * * *"], "before 1972-01-01T00:00:00Z"),
    (["--from", "tomorrow", "* * * * *"], '--from: "tomorrow" is not an RFC 3339 date-time'),
    (["--count", "0", "* * * * *"], "--count"),
    (["--count", "many", "* * * * *"], "--count"),
    (["--bogus", "* * * * *"], 'unknown option "--bogus"'),
    ([], "no expression given"),
    (["--tz"], "option --tz needs a value"),
])
def test_next_errors_exit_2_with_a_message(run, args, fragment):
    r = run("cron", "next", *args)
    assert r.returncode == 2
    assert r.stdout == ""
    assert fragment in r.stderr
    assert r.stderr.startswith("tethys: ")


def test_next_tsv_batch(run):
    lines = ("0 0 12 * * ?\tEurope/Berlin\t2024-03-30T12:00:00Z\t2\n"
             "0 0 12 32 * ?\tUTC\t2024-01-01T00:00:00Z\t1\n"
             "* * * * *\tNo/Where\t2024-01-01T00:00:00Z\t1\n"
             "too few fields\n")
    r = run("cron", "next", "--tsv", stdin=lines)
    assert r.returncode == 0
    out = r.stdout.splitlines()
    assert len(out) == 4
    assert out[0].split("\t")[4:] == ["OK", "2024-03-31T12:00:00+02:00,2024-04-01T12:00:00+02:00"]
    assert out[1].split("\t")[4] == "INVALID" and "day-of-month" in out[1]
    assert out[2].split("\t")[4] == "ERROR" and "unknown time zone" in out[2]
    assert "ERROR" in out[3]


def test_check_text_valid(run):
    r = run("cron", "check", "--tz", "Europe/Berlin", "--from", "2024-03-30T12:00:00+01:00",
            "--count", "2", "0 30 2 * * ?")
    assert r.returncode == 0
    assert "result:     valid" in r.stdout
    assert "time zone:  Europe/Berlin (C" in r.stdout  # CET or CEST, depending on today
    assert "2024-03-31T03:00:00+02:00  Sun  CEST" in r.stdout
    assert "2024-04-01T02:30:00+02:00  Mon  CEST" in r.stdout


def test_check_text_invalid_points_at_the_fault(run):
    r = run("cron", "check", "0 0 12 ? * MON#6")
    assert r.returncode == 2
    lines = r.stdout.splitlines()
    i = lines.index("  0 0 12 ? * MON#6")
    caret = lines[i + 1]
    assert caret.strip() == "^" and caret.index("^") == len("  0 0 12 ? * MON#")
    assert "error:      field 6 (day-of-week)" in r.stdout


def test_check_never_fires_exits_1(run):
    r = run("cron", "check", "0 0 0 1 1 ? 2020")
    assert r.returncode == 1
    assert "never fires" in r.stdout


def test_check_json(run):
    r = run("cron", "check", "--json", "--tz", "Asia/Kathmandu", "--from",
            "2024-01-01T00:00:00Z", "--count", "2", "@daily")
    assert r.returncode == 0
    d = json.loads(r.stdout)
    assert d["valid"] is True and d["status"] == "valid" and d["form"] == "quartz"
    assert d["normalized"] == "0 0 0 * * ?"
    assert d["time_zone"] == {"name": "Asia/Kathmandu", "abbreviation": "+0545",
                              "utc_offset": "+05:45", "utc_offset_seconds": 20700}
    assert d["from"] == "2024-01-01T05:45:00+05:45"
    assert d["next"] == ["2024-01-02T00:00:00+05:45", "2024-01-03T00:00:00+05:45"]


def test_check_json_invalid(run):
    r = run("cron", "check", "--json", "0 0 12 2W-4 * ?")
    assert r.returncode == 2
    d = json.loads(r.stdout)
    assert d["valid"] is False and d["status"] == "invalid"
    assert d["error"]["field"] == "day-of-month"
    assert d["expression"][d["error"]["position"]:][:d["error"]["length"]] == "-4"


def test_version_and_help(run):
    assert run("version").stdout.startswith("tethys ")
    assert "cron" in run("--help").stdout
    r = run("frobnicate")
    assert r.returncode == 2 and 'unknown command "frobnicate"' in r.stderr
    # an option before the command is pointed to its place
    r = run("--data", "/nonexistent", "job", "list")
    assert r.returncode == 2
    assert r.stderr.startswith("tethys: options come after the command: `tethys job ... --data`")
