"""Migration and configuration as code, against a real server on 127.0.0.1:

- `tethys import crontab`: a realistic 30-line crontab (environment lines, CRON_TZ, MAILTO,
  %-input, \\%, ranges, steps, names, every macro, comments, a malformed line, @reboot)
  checked job by job, two of its jobs run for real; dry runs change nothing; existing jobs
  are not overwritten; system crontabs; the machine's zone; exit statuses.
- `tethys export` / `tethys apply`: export | apply --dry-run finds nothing to change (JSON
  and YAML); a file that adds, changes and (--prune) removes jobs prints the diff and leaves
  the server as the file says; a concurrent edit during apply is refused with 412 and
  reported; bad input changes nothing.

The server helper is this file's own (conftest.py is shared and changing).
"""
import http.server
import json
import os
import pathlib
import re
import signal
import subprocess
import threading
import time

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _binary():
    path = pathlib.Path(os.environ.get("TETHYS_BIN", ROOT / "build/tethys"))
    if not path.is_absolute():
        path = ROOT / path
    if not path.exists():
        pytest.fail(f"{path} does not exist: run `make build` first")
    return str(path)


class Server:
    """`tethys server` on 127.0.0.1:0 with its own data directory."""

    def __init__(self, binary, data, log_path):
        self.binary, self.data, self.log_path = binary, pathlib.Path(data), log_path
        self.proc = None

    def start(self, timeout=10.0):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "server", "--data", str(self.data), "--listen", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"the server exited at start:\n{self.log_text()}"
            try:
                info = json.loads((self.data / "server.json").read_text())
                if info.get("pid") == self.proc.pid:
                    break
            except (OSError, ValueError):
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        self.url = info["url"]
        self.token = (self.data / "token").read_text().strip()
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"Bearer {self.token}"
        return self

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                rc = "killed"
        else:
            rc = self.proc.returncode
        self.session.close()
        self.log.close()
        return rc

    def log_text(self):
        try:
            return pathlib.Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""

    def api(self, method, path, **kw):
        return self.session.request(method, self.url + "/api/v1" + path, timeout=15, **kw)

    def ok(self, method, path, status=None, **kw):
        r = self.api(method, path, **kw)
        good = r.status_code == status if status else 200 <= r.status_code < 300
        assert good, f"{method} {path} -> {r.status_code} {r.text}"
        return r.json() if r.content else None

    def jobs(self):
        return {j["name"]: j for j in self.ok("GET", "/jobs")["items"]}

    def definitions(self):
        """Every job's stored definition and version, the live state left out."""
        return {n: {k: v for k, v in j.items() if k != "state"} for n, j in self.jobs().items()}

    def cli(self, *args, stdin=None, env=None, data=True, timeout=60):
        argv = [self.binary, *args] + (["--data", str(self.data)] if data else [])
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout,
                              env=env if env is not None else dict(os.environ))


@pytest.fixture
def srv(request, tmp_path):
    s = Server(_binary(), tmp_path / "data", tmp_path / "server.log").start()
    yield s
    rc = s.stop()
    call = getattr(request.node, "rep_call", None)
    if call is not None and call.failed:
        print(f"---- server log ----\n{s.log_text()[-8000:]}")
    assert rc == 0, f"the server exited with status {rc} on SIGTERM:\n{s.log_text()[-4000:]}"


# ---- import crontab ----------------------------------------------------------------------------

CRONTAB = r"""# crontab of the app user: the batch jobs
SHELL=/bin/sh
PATH=/usr/local/bin:/usr/bin:/bin
MAILTO=ops@example.com
GREETING = "hello from cron"
CRON_TZ=Europe/Berlin

# m h dom mon dow       command
*/5 * * * *             /usr/local/bin/healthcheck --quiet
0 2 * * *               /opt/app/bin/backup.sh --full
30 4 1,15 * *           /opt/app/bin/invoice-run
0 9-17/2 * * MON-FRI    /opt/app/bin/sync-ledger
15 22 * * 7             /opt/app/bin/weekly-report
0 0 1 JAN,JUL *         /opt/app/bin/rotate-keys
@hourly                 /opt/app/bin/flush-cache
@daily                  find /tmp/app -mtime +7 -delete
@weekly                 /opt/app/bin/vacuum
@monthly                /opt/app/bin/archive
@yearly                 /opt/app/bin/new-year
@midnight               echo "$GREETING"
0 3 * * *               cat %first line%it's the second%
5 3 * * *               date +\%Y-\%m-\%d
@reboot                 /opt/app/bin/warm-cache
0 25 * * *              /opt/app/bin/broken
	
# reports run on New York time
CRON_TZ=America/New_York
LEVEL=2
0 8 * * 1-5             /opt/app/bin/morning-report
45 23 28-31 * *         [ "$(date -d tomorrow +\%d)" = 01 ] && /opt/app/bin/month-end
"""

BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "GREETING": "hello from cron"}
NY_ENV = dict(BASE_ENV, LEVEL="2")

# line: (name, schedule, zone, env, command)
EXPECTED_JOBS = {
    9: ("crontab-9-healthcheck", "*/5 * * * *", "Europe/Berlin", BASE_ENV,
        "/usr/local/bin/healthcheck --quiet"),
    10: ("crontab-10-backup.sh", "0 2 * * *", "Europe/Berlin", BASE_ENV,
         "/opt/app/bin/backup.sh --full"),
    11: ("crontab-11-invoice-run", "30 4 1,15 * *", "Europe/Berlin", BASE_ENV,
         "/opt/app/bin/invoice-run"),
    12: ("crontab-12-sync-ledger", "0 9-17/2 * * MON-FRI", "Europe/Berlin", BASE_ENV,
         "/opt/app/bin/sync-ledger"),
    13: ("crontab-13-weekly-report", "15 22 * * 7", "Europe/Berlin", BASE_ENV,
         "/opt/app/bin/weekly-report"),
    14: ("crontab-14-rotate-keys", "0 0 1 JAN,JUL *", "Europe/Berlin", BASE_ENV,
         "/opt/app/bin/rotate-keys"),
    15: ("crontab-15-flush-cache", "@hourly", "Europe/Berlin", BASE_ENV,
         "/opt/app/bin/flush-cache"),
    16: ("crontab-16-find", "@daily", "Europe/Berlin", BASE_ENV,
         "find /tmp/app -mtime +7 -delete"),
    17: ("crontab-17-vacuum", "@weekly", "Europe/Berlin", BASE_ENV, "/opt/app/bin/vacuum"),
    18: ("crontab-18-archive", "@monthly", "Europe/Berlin", BASE_ENV, "/opt/app/bin/archive"),
    19: ("crontab-19-new-year", "@yearly", "Europe/Berlin", BASE_ENV, "/opt/app/bin/new-year"),
    20: ("crontab-20-echo", "@midnight", "Europe/Berlin", BASE_ENV, 'echo "$GREETING"'),
    21: ("crontab-21-cat", "0 3 * * *", "Europe/Berlin", BASE_ENV,
         "printf '%s\\n' 'first line' 'it'\\''s the second' | (cat)"),
    22: ("crontab-22-date", "5 3 * * *", "Europe/Berlin", BASE_ENV, "date +%Y-%m-%d"),
    29: ("crontab-29-morning-report", "0 8 * * 1-5", "America/New_York", NY_ENV,
         "/opt/app/bin/morning-report"),
    30: ("crontab-30-job", "45 23 28-31 * *", "America/New_York", NY_ENV,
         '[ "$(date -d tomorrow +%d)" = 01 ] && /opt/app/bin/month-end'),
}

# line: (result, a piece of the message) for every line that is not a created job
EXPECTED_OTHER = {
    1: ("comment", None), 2: ("env", "SHELL=/bin/sh"), 3: ("env", "PATH="),
    4: ("skipped", "MAILTO=\"ops@example.com\" is not carried over: Tethys sends no mail"),
    5: ("env", 'GREETING="hello from cron"'), 6: ("env", 'run in "Europe/Berlin"'),
    7: ("blank", None), 8: ("comment", None),
    23: ("skipped", "@reboot is not carried over"),
    24: ("error", 'schedule "0 25 * * *": field 2 (hour): "25" is out of range 0-23'),
    25: ("blank", None), 26: ("comment", None), 27: ("env", 'run in "America/New_York"'),
    28: ("env", 'LEVEL="2"'),
}


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_crontab_has_30_lines():
    assert len(CRONTAB.splitlines()) == 30
    assert set(EXPECTED_JOBS) | set(EXPECTED_OTHER) == set(range(1, 31))


def test_import_realistic_crontab(srv, tmp_path):
    path = write(tmp_path, "crontab", CRONTAB)
    r = srv.cli("import", "crontab", path, "--json")
    assert r.returncode == 1, r.stderr  # some lines were not carried over
    report = json.loads(r.stdout)
    assert report["dry_run"] is False
    lines = {row["line"]: row for row in report["lines"]}
    assert sorted(lines) == list(range(1, 31))
    for n, (result, words) in EXPECTED_OTHER.items():
        assert lines[n]["result"] == result, (n, lines[n])
        if words:
            assert words in lines[n]["message"], (n, lines[n])
    assert report["summary"] == {"jobs": 16, "created": 16, "exists": 0, "failed": 0,
                                 "not_sent": 0, "not_carried_over": 2, "malformed": 1, "env": 6,
                                 "comments_or_blank": 5}

    jobs = srv.jobs()
    assert len(jobs) == 16
    for n, (name, schedule, zone, env, command) in EXPECTED_JOBS.items():
        assert lines[n]["result"] == "created" and lines[n]["name"] == name, lines[n]
        assert lines[n]["version"] == 1
        job = jobs[name]
        assert job["schedule"] == schedule, name
        assert job["time_zone"] == zone, name
        assert job["env"] == env, name
        assert job["command"] == command, name
        assert job["overlap"] == "parallel", "cron starts a run even when one is going"
        assert job["user"] is None and job["enabled"] is True
        assert job["description"] == f"from {path} line {n}: {CRONTAB.splitlines()[n - 1]}"
        assert job["state"]["next_fire"] is not None, name

    # the text after % is the command's standard input, as cron feeds it
    out = run_job(srv, "crontab-21-cat")
    assert out == "first line\nit's the second\n"
    # environment lines reach the command; \% is a literal %
    assert run_job(srv, "crontab-20-echo") == "hello from cron\n"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d\n", run_job(srv, "crontab-22-date"))

    # the table for people says the same
    r = srv.cli("import", "crontab", path, "--dry-run")
    assert r.returncode == 1
    assert "already exists; it would not be overwritten" in r.stdout
    assert "0 jobs would be created, 16 already existed (not overwritten); 2 lines not " \
           "carried over, 1 malformed; 6 environment lines, 5 comments or blank lines" in r.stdout


def run_job(srv, name):
    """Run a job now and wait (`job run --wait`); its output."""
    r = srv.cli("job", "run", name, "--wait", "--json")
    assert r.returncode == 0, (r.stdout, r.stderr)
    runs = json.loads(r.stdout)["runs"]
    assert len(runs) == 1 and runs[0]["status"] == "succeeded", runs
    return runs[0]["output"]


def test_import_table_output(srv, tmp_path):
    path = write(tmp_path, "crontab", "# c\nMAILTO=x@y\n@daily echo hi\n0 2 32 * * bad\n"
                                      "@reboot up\n0 3 * * * cat %a%b\n")
    r = srv.cli("import", "crontab", path, "--tz", "Asia/Tokyo")
    assert r.returncode == 1, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "time zone: Asia/Tokyo (--tz), for every entry"
    assert re.split(r"\s{2,}", out[1]) == ["LINE", "RESULT", "JOB", "SCHEDULE", "TIME ZONE",
                                           "DETAIL"]
    rows = [re.split(r"\s{2,}", line.strip()) for line in out[2:8]]
    assert rows[0] == ["1", "comment"]
    assert rows[1][:2] == ["2", "skipped"] and rows[1][2].startswith("MAILTO=\"x@y\" is not")
    assert rows[2] == ["3", "created", "crontab-3-echo", "@daily", "Asia/Tokyo", "echo hi"]
    assert rows[3] == ["4", "error", 'schedule "0 2 32 * *": field 3 (day-of-month): "32" is '
                                     'out of range 1-31']
    assert rows[4][:2] == ["5", "skipped"]
    assert rows[5] == ["6", "created", "crontab-6-cat", "0 3 * * *", "Asia/Tokyo",
                       "printf '%s\\n' 'a' 'b' | (cat)",
                       "(the text after % becomes the command's standard input (2 lines))"]
    assert out[8] == ("2 jobs created; 2 lines not carried over, 1 malformed; 0 environment "
                      "lines, 1 comment or blank line")
    assert len(out) == 9


def test_import_dry_run_changes_nothing(srv, tmp_path):
    srv.ok("POST", "/jobs", json={"name": "already-here", "command": "true"}, status=201)
    before = srv.definitions()
    path = write(tmp_path, "crontab", CRONTAB)
    r = srv.cli("import", "crontab", path, "--dry-run", "--json")
    assert r.returncode == 1, r.stderr
    report = json.loads(r.stdout)
    assert report["dry_run"] is True
    assert report["summary"]["would_create"] == 16
    assert {row["result"] for row in report["lines"] if row["kind"] == "job"} == {"would create"}
    assert srv.definitions() == before, "a dry run changed the server"

    r = srv.cli("import", "crontab", path, "--dry-run")
    assert "dry run: 16 jobs would be created" in r.stdout
    assert r.stdout.rstrip().endswith("dry run: nothing was changed")
    assert srv.definitions() == before

    # a dry run reports what the server would refuse: an unknown zone, a schedule that never
    # fires, a name that exists
    path = write(tmp_path, "bad", "@daily ok\nCRON_TZ=Mars/Olympus\n@daily a\nCRON_TZ=UTC\n"
                                  "0 0 30 2 * b\n")
    r = srv.cli("import", "crontab", path, "--dry-run", "--prefix", "x", "--json")
    assert r.returncode == 1
    rows = {row["line"]: row for row in json.loads(r.stdout)["lines"]}
    assert rows[1]["result"] == "would create"
    assert rows[3]["result"] == "failed" and rows[3]["error"]["field"] == "time_zone"
    assert rows[5]["result"] == "failed"
    assert rows[5]["error"]["message"] == 'schedule: "0 0 30 2 *" never fires in UTC; the ' \
                                          'server refuses such a job'
    assert srv.definitions() == before


def test_import_does_not_overwrite(srv, tmp_path):
    path = write(tmp_path, "crontab", "@daily echo one\n@hourly echo two\n")
    assert srv.cli("import", "crontab", path, "--tz", "UTC").returncode == 0
    srv.ok("PATCH", "/jobs/crontab-1-echo", json={"description": "edited by hand"})
    before = srv.definitions()
    r = srv.cli("import", "crontab", path, "--tz", "UTC", "--json")
    assert r.returncode == 1
    rows = json.loads(r.stdout)["lines"]
    assert [row["result"] for row in rows] == ["exists", "exists"]
    assert rows[0]["error"] == {"code": "exists", "field": "name", "message":
                                'a job named "crontab-1-echo" already exists; not overwritten'}
    assert srv.definitions() == before
    assert before["crontab-1-echo"]["description"] == "edited by hand"


def test_import_system_crontab(srv, tmp_path):
    text = ("SHELL=/bin/sh\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\n"
            "17 *\t* * *\troot    cd / && run-parts --report /etc/cron.hourly\n"
            "25 6\t* * *\twww-data php /var/www/cron.php\n"
            "@reboot root /usr/local/bin/warm\n0 0 * * * root\n")
    path = write(tmp_path, "crontab", text)
    r = srv.cli("import", "crontab", path, "--system", "--domain", "legacy/system",
                "--prefix", "etc-crontab", "--tz", "UTC", "--json")
    assert r.returncode == 1, r.stderr
    rows = {row["line"]: row for row in json.loads(r.stdout)["lines"]}
    assert rows[6]["result"] == "error" and rows[6]["message"] == "no command after the user"
    jobs = srv.jobs()
    assert sorted(jobs) == ["etc-crontab-3-cd", "etc-crontab-4-php"]
    assert jobs["etc-crontab-3-cd"]["user"] == "root"
    assert jobs["etc-crontab-3-cd"]["command"] == "cd / && run-parts --report /etc/cron.hourly"
    assert jobs["etc-crontab-3-cd"]["domain"] == "legacy/system"
    assert jobs["etc-crontab-4-php"]["user"] == "www-data"
    assert jobs["etc-crontab-4-php"]["schedule"] == "25 6 * * *"
    assert jobs["etc-crontab-4-php"]["env"] == {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}

    # the same file without --system: the user becomes the command's first word, with a hint
    r = srv.cli("import", "crontab", path, "--dry-run", "--prefix", "u", "--json")
    rows = {row["line"]: row for row in json.loads(r.stdout)["lines"]}
    assert rows[3]["job"]["command"].startswith("root    cd /")
    assert "import it with --system" in rows[3]["message"]


def machine_zone():
    try:
        zone = pathlib.Path("/etc/timezone").read_text().split()[0]
        if zone:
            return zone, "/etc/timezone"
    except (OSError, IndexError):
        pass
    try:
        link = os.readlink("/etc/localtime")
        return link.split("zoneinfo/", 1)[1], "/etc/localtime"
    except (OSError, IndexError):
        return None, None


def test_import_zone_precedence(srv, tmp_path):
    path = write(tmp_path, "crontab", "@daily a\nCRON_TZ=Asia/Kolkata\n@daily b\n")
    zone, source = machine_zone()
    r = srv.cli("import", "crontab", path, "--dry-run")
    if zone:
        assert r.stdout.splitlines()[0] == (f"time zone: {zone} (the machine's, from {source}), "
                                            "for entries without CRON_TZ")
    report = json.loads(srv.cli("import", "crontab", path, "--dry-run", "--json").stdout)
    rows = {row["line"]: row for row in report["lines"]}
    assert rows[1]["time_zone"] == (zone or "UTC")
    assert rows[3]["time_zone"] == "Asia/Kolkata"
    # --tz overrides CRON_TZ, and says so on the CRON_TZ line
    report = json.loads(srv.cli("import", "crontab", path, "--dry-run", "--json", "--tz",
                                "America/Sao_Paulo").stdout)
    rows = {row["line"]: row for row in report["lines"]}
    assert report["time_zone"] == {"name": "America/Sao_Paulo", "from": "--tz"}
    assert rows[1]["time_zone"] == rows[3]["time_zone"] == "America/Sao_Paulo"
    assert rows[2]["message"] == 'CRON_TZ="Asia/Kolkata" is overridden by --tz ' \
                                 '"America/Sao_Paulo": every entry runs in that zone'


def test_import_exit_statuses(srv, tmp_path):
    good = write(tmp_path, "good", "# all fine\nPATH=/bin\n@daily true\n")
    assert srv.cli("import", "crontab", good, "--dry-run").returncode == 0
    assert srv.cli("import", "crontab", good).returncode == 0
    # standard input
    r = srv.cli("import", "crontab", "-", "--prefix", "stdin", stdin="@hourly true\n")
    assert r.returncode == 0, r.stderr
    assert "stdin-1-true" in srv.jobs()
    # nothing importable
    only = write(tmp_path, "only", "# nothing\nMAILTO=x\n@reboot y\n")
    r = srv.cli("import", "crontab", only)
    assert r.returncode == 2
    assert r.stderr == f"tethys: {only}: nothing to import (no crontab entry could become a " \
                       "job)\n"
    # unreadable
    r = srv.cli("import", "crontab", str(tmp_path / "missing"))
    assert r.returncode == 2
    assert r.stderr == f"tethys: {tmp_path / 'missing'}: No such file or directory\n"
    # usage
    r = srv.cli("import", "crontab", good, "--prefix", "-bad")
    assert (r.returncode, r.stderr) == (2, 'tethys: --prefix: "-bad" must start with a letter '
                                           'or digit\n')
    assert srv.cli("import", "anacron", good).returncode == 2
    assert srv.cli("import", "crontab", good, "--nope").returncode == 2
    # no server
    env = dict(os.environ, TETHYS_URL="http://127.0.0.1:9", TETHYS_TOKEN="x")
    r = srv.cli("import", "crontab", good, env=env, data=False)
    assert r.returncode == 3
    assert "no Tethys server at http://127.0.0.1:9" in r.stderr


# ---- export / apply ----------------------------------------------------------------------------

FULL_JOB = {
    "name": "nightly-import", "domain": "bank/settlement", "level": 7,
    "description": "Import the day's settlement files", "owner": "ops@example.com",
    "command": "import.sh --date \"$TETHYS_SCHEDULED_AT\"\necho 'done: 100%'\n",
    "workdir": "/srv/import", "env": {"DB_HOST": "db1", "BATCH": "500", "NO": "NO"},
    "schedule": "0 30 2 * * ?", "time_zone": "Asia/Shanghai",
    "start_at": "2026-01-01T00:00:00+08:00",
    "pause_windows": [{"dates": ["2026-12-24", "2026-12-26"]}, {"daily": ["12:00", "13:30"]}],
    "calendars": {"skip": ["cn-holidays"], "only": []},
    "shards": 4, "shard_params": "0=beijing,1=shanghai", "job_param": "full",
    "timeout": 3600, "timeout_alarm": 1800, "retries": 2, "retry_backoff_factor": 1.5,
    "overlap": "queue", "misfire": "catch_up", "catch_up_max": 3, "downstream": ["report-daily"],
}


def seed(srv):
    srv.ok("POST", "/calendars", json={"name": "cn-holidays", "dates": ["2026-10-01"]},
           status=201)
    srv.ok("POST", "/jobs", json=FULL_JOB, status=201)
    srv.ok("POST", "/jobs", json={"name": "report-daily", "domain": "bank", "command": "report",
                                  "schedule": "@daily", "enabled": False}, status=201)
    srv.ok("POST", "/jobs", json={"name": "plain", "command": "true"}, status=201)


def test_export_then_apply_finds_nothing_to_change(srv, tmp_path):
    seed(srv)
    import_path = write(tmp_path, "crontab", CRONTAB)
    srv.cli("import", "crontab", import_path)
    before = srv.definitions()
    for fmt in ("json", "yaml"):
        r = srv.cli("export", "--format", fmt)
        assert r.returncode == 0, r.stderr
        if fmt == "json":
            exported = json.loads(r.stdout)
            assert [j["name"] for j in exported] == sorted(before)
            assert all("version" not in j and "state" not in j for j in exported)
            by_name = {j["name"]: j for j in exported}
            assert by_name["nightly-import"] == {k: v for k, v in before["nightly-import"].items()
                                                 if k != "version"}
        d = srv.cli("apply", "-f", "-", "--dry-run", stdin=r.stdout)
        assert d.returncode == 0, d.stderr
        assert d.stdout == f"nothing to do: {len(before)} jobs unchanged\n"
        # and without --dry-run: still nothing sent
        d = srv.cli("apply", "-f", "-", stdin=r.stdout)
        assert (d.returncode, d.stdout) == (0, f"nothing to do: {len(before)} jobs unchanged\n")
    assert srv.definitions() == before

    # the file written for people: YAML by its name, one job as a mapping
    out = tmp_path / "nightly.yaml"
    r = srv.cli("export", "--job", "nightly-import", "-o", str(out))
    assert (r.returncode, r.stdout) == (0, f"1 job written to {out}\n")
    text = out.read_text()
    assert text.startswith("name: nightly-import\ndomain: bank/settlement\n")
    assert "command: |\n  import.sh --date \"$TETHYS_SCHEDULED_AT\"\n  echo 'done: 100%'\n" in text
    # quoted: what YAML 1.1 reads as a boolean or a timestamp; plain: a cron expression
    assert "  'NO': 'NO'\n" in text and "start_at: '2025-12-31T16:00:00Z'\n" in text
    assert "schedule: 0 30 2 * * ?\n" in text
    d = srv.cli("apply", "-f", str(out), "--dry-run")
    assert (d.returncode, d.stdout) == (0, "nothing to do: 1 job unchanged\n")
    # a file as people write it (fields left out, local offsets) is the same job
    short = dict(FULL_JOB)
    d = srv.cli("apply", "-f", "-", "--dry-run", stdin=json.dumps(short))
    assert (d.returncode, d.stdout) == (0, "nothing to do: 1 job unchanged\n"), d.stderr


def test_export_filters(srv, tmp_path):
    seed(srv)
    r = srv.cli("export", "--domain", "bank")
    assert [j["name"] for j in json.loads(r.stdout)] == ["nightly-import", "report-daily"]
    r = srv.cli("export", "--domain", "bank/settlement")
    assert json.loads(r.stdout)["name"] == "nightly-import", "one job: a mapping"
    r = srv.cli("export", "--job", "plain", "--job", "report-daily", "--format", "yaml")
    assert r.stdout.startswith("- name: plain\n")
    r = srv.cli("export", "--job", "nope")
    assert (r.returncode, r.stderr) == (2, 'tethys: no job named "nope"\n')
    r = srv.cli("export", "--domain", "bank", "--job", "plain")
    assert (r.returncode, r.stderr) == (2, 'tethys: no job named "plain" in domain "bank" (or '
                                           'below it)\n')
    r = srv.cli("export", "--format", "toml")
    assert r.returncode == 2
    r = srv.cli("export", "--domain", "nothing/here")
    assert (r.returncode, r.stdout) == (0, "[]\n")


APPLY_BASE = [
    {"name": "keep", "domain": "app", "command": "echo keep", "schedule": "@daily"},
    {"name": "change-me", "domain": "app", "command": "echo change", "schedule": "@daily",
     "env": {"MODE": "a"}},
    {"name": "remove-me", "domain": "app", "command": "echo bye", "schedule": "@daily"},
    {"name": "elsewhere", "domain": "other", "command": "echo other"},
]

APPLY_FILE = """\
# app jobs, as code
- name: keep
  domain: app
  command: echo keep
  schedule: "@daily"
- name: change-me
  domain: app
  command: echo change
  schedule: "@hourly"
  env:
    MODE: b
    LEVEL: "2"
- name: add-me
  domain: app
  command: echo added
  schedule: "@weekly"
"""


def test_apply_adds_changes_and_prunes(srv, tmp_path):
    for job in APPLY_BASE:
        srv.ok("POST", "/jobs", json=job, status=201)
    path = write(tmp_path, "app.yaml", APPLY_FILE)
    diff = ('~ job "change-me" (change, version 1)\n'
            '    env.MODE: "a" -> "b"\n'
            '    env.LEVEL: (none) -> "2"\n'
            '    schedule: "@daily" -> "@hourly"\n'
            '+ job "add-me" (create)\n'
            '    domain: "app"\n'
            '    command: "echo added"\n'
            '    schedule: "@weekly"\n'
            '- job "remove-me" (delete, version 1)\n')
    before = srv.definitions()
    r = srv.cli("apply", "-f", path, "--prune", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert r.stdout == diff + ("dry run: 1 to create, 1 to change, 1 to delete, 1 unchanged; "
                               "nothing was changed\n")
    assert srv.definitions() == before

    # without --prune nothing is deleted
    r = srv.cli("apply", "-f", path, "--dry-run", "--json")
    plan = json.loads(r.stdout)
    assert [(p["job"], p["action"]) for p in plan["plan"]] == [
        ("keep", "unchanged"), ("change-me", "change"), ("add-me", "create")]
    assert plan["plan"][1]["changes"] == [
        {"field": "env.MODE", "old": "a", "new": "b"},
        {"field": "env.LEVEL", "old": None, "new": "2"},
        {"field": "schedule", "old": "@daily", "new": "@hourly"}]

    r = srv.cli("apply", "-f", path, "--prune")
    assert r.returncode == 0, r.stderr
    assert r.stdout == diff + ("created   add-me (version 1)\n"
                               "changed   change-me (version 2)\n"
                               "deleted   remove-me\n"
                               "apply: 1 created, 1 changed, 1 deleted, 1 unchanged, 0 failed\n")
    jobs = srv.jobs()
    assert sorted(jobs) == ["add-me", "change-me", "elsewhere", "keep"], \
        "--prune stays in the file's domains"
    assert jobs["change-me"]["schedule"] == "@hourly"
    assert jobs["change-me"]["env"] == {"LEVEL": "2", "MODE": "b"}
    assert jobs["keep"]["version"] == 1, "an unchanged job is not written"
    assert jobs["add-me"]["command"] == "echo added"
    # applying again: nothing to do
    r = srv.cli("apply", "-f", path, "--prune")
    assert (r.returncode, r.stdout) == (0, "nothing to do: 3 jobs unchanged\n")

    # --domain sets the scope of --prune: the whole subtree, and the file must stay in it
    srv.ok("POST", "/jobs", json={"name": "deep", "domain": "app/sub", "command": "x"},
           status=201)
    r = srv.cli("apply", "-f", path, "--prune", "--domain", "app", "--dry-run")
    assert r.stdout == '- job "deep" (delete, version 1)\n' \
                       'dry run: 0 to create, 0 to change, 1 to delete, 3 unchanged; nothing ' \
                       'was changed\n'
    r = srv.cli("apply", "-f", path, "--domain", "other")
    assert r.returncode == 2
    assert 'job "keep" is in domain "app", outside --domain "other"' in r.stderr


class InterferingProxy(http.server.BaseHTTPRequestHandler):
    """Forwards to the server; before the first PUT of `victim` it edits that job itself,
    as a colleague would between apply's read and its write."""
    protocol_version = "HTTP/1.1"
    upstream = None
    token = None
    victim = None
    seen = []

    def log_message(self, *args):
        pass

    def _forward(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        cls = type(self)
        cls.seen.append((self.command, self.path, self.headers.get("If-Match")))
        s = requests.Session()
        s.trust_env = False
        if self.command == "PUT" and self.path == f"/api/v1/jobs/{cls.victim}":
            r = s.patch(f"{cls.upstream}{self.path}", json={"description": "edited meanwhile"},
                        headers={"Authorization": f"Bearer {cls.token}"}, timeout=10)
            assert r.status_code == 200, r.text
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("authorization", "content-type", "if-match", "accept")}
        r = s.request(self.command, cls.upstream + self.path, data=body, headers=headers,
                      timeout=15)
        self.send_response(r.status_code)
        for k in ("Content-Type", "ETag", "WWW-Authenticate"):
            if k in r.headers:
                self.send_header(k, r.headers[k])
        self.send_header("Content-Length", str(len(r.content)))
        self.end_headers()
        self.wfile.write(r.content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


def test_apply_concurrent_edit_is_refused(srv, tmp_path):
    for job in APPLY_BASE:
        srv.ok("POST", "/jobs", json=job, status=201)
    handler = type("Proxy", (InterferingProxy,), {"upstream": srv.url, "token": srv.token,
                                                  "victim": "change-me", "seen": []})
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=proxy.serve_forever, daemon=True)
    t.start()
    try:
        env = dict(os.environ, TETHYS_URL=f"http://127.0.0.1:{proxy.server_address[1]}",
                   TETHYS_TOKEN=srv.token)
        path = write(tmp_path, "app.yaml", APPLY_FILE)
        r = srv.cli("apply", "-f", path, env=env, data=False)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert ('conflict  change-me: job "change-me" was changed on the server since version 1 was '
            'read; not changed (run apply again to see the changes)\n') in r.stdout
    assert "created   add-me (version 1)\n" in r.stdout
    assert r.stdout.endswith("apply: 1 created, 0 changed, 0 deleted, 1 unchanged, 1 failed\n")
    assert ("PUT", "/api/v1/jobs/change-me", '"1"') in handler.seen, handler.seen
    job = srv.jobs()["change-me"]
    assert job["description"] == "edited meanwhile", "the concurrent edit survives"
    assert job["schedule"] == "@daily" and job["version"] == 2
    # read again, the diff shows what is left to do
    r = srv.cli("apply", "-f", path, "--dry-run")
    assert r.stdout.startswith('~ job "change-me" (change, version 2)\n'
                               '    description: "edited meanwhile" -> ""\n')


def test_apply_refusals(srv, tmp_path):
    for job in APPLY_BASE:
        srv.ok("POST", "/jobs", json=job, status=201)
    before = srv.definitions()
    # invalid input: every problem named, nothing sent
    bad = write(tmp_path, "bad.yaml", "- name: a\n  command: x\n  shards: 0\n"
                                      "- command: no name\n"
                                      "- name: b\n  command: x\n  comand: typo\n"
                                      "- name: a\n  command: again\n")
    r = srv.cli("apply", "-f", bad)
    assert r.returncode == 2
    assert r.stderr == (f'tethys: {bad}: job "a" (item 1): shards: 0 is out of range 1-10000\n'
                        f'tethys: {bad}: item 2: a job needs a "name" (a string)\n'
                        f'tethys: {bad}: job "b" (item 3): unknown field "comand"; did you mean '
                        f'"command"?\n'
                        f'tethys: {bad}: item 4: job "a" is defined twice\n'
                        f'tethys: {bad}: 4 problems; nothing was changed\n')
    assert r.stdout == ""
    assert srv.definitions() == before
    r = srv.cli("apply", "-f", write(tmp_path, "x.yaml", "- name: [1\n"))
    assert r.returncode == 2 and "line 1" in r.stderr
    assert srv.cli("apply", "-f", str(tmp_path / "missing.yaml")).returncode == 2
    assert srv.cli("apply").returncode == 2

    # refused by the server (it knows the zones): reported with the field, the rest applied
    f = write(tmp_path, "zone.json", json.dumps([
        {"name": "keep", "domain": "app", "command": "echo keep", "schedule": "@daily"},
        {"name": "zoned", "command": "x", "schedule": "@daily", "time_zone": "Mars/Olympus"},
        {"name": "fine", "command": "x"}]))
    r = srv.cli("apply", "-f", f, "--json")
    assert r.returncode == 1
    plan = {p["job"]: p for p in json.loads(r.stdout)["plan"]}
    assert plan["zoned"]["result"] == "failed"
    assert plan["zoned"]["error"]["field"] == "time_zone"
    assert plan["fine"]["result"] == "created" and plan["fine"]["new_version"] == 1
    assert "zoned" not in srv.jobs() and "fine" in srv.jobs()

    # no server
    env = dict(os.environ, TETHYS_URL="http://127.0.0.1:9", TETHYS_TOKEN="x")
    r = srv.cli("apply", "-f", f, env=env, data=False)
    assert r.returncode == 3
