"""The CLI over the REST API, as people and scripts use it: jobs from JSON and YAML files,
show/list/edit/rm/enable/disable, run show and logs, --json output, exit statuses (0, 1, 2,
3), and how the CLI finds the server (--data from any directory, TETHYS_URL/TETHYS_TOKEN,
the default data directory)."""
import json
import os
import re

import pytest

def show_fields(text):
    """`key: value` lines (aligned) of `show` as a dict; continuation lines are skipped."""
    out = {}
    for line in text.splitlines():
        if line[:1] not in (" ", "") and ":" in line:
            k, v = line.split(":", 1)
            out[k] = v.strip()
    return out


JOB_YAML = """\
# a nightly job, every field people usually set
name: from-yaml
schedule: "0 30 2 * * ?"
time_zone: Asia/Shanghai
command: |
  echo "shard $TETHYS_SHARD of $TETHYS_SHARD_COUNT: $TETHYS_SHARD_PARAM"
shards: 2
shard_params: 0=beijing,1=shanghai
job_param: full
env:
  BATCH: "500"
  country: NO
pause_windows:
  - daily: ["12:00", "13:30"]
retries: 1
enabled: true
"""


def test_job_add_from_json_and_yaml_then_show_list(shared_server, tmp_path):
    srv = shared_server
    jf = tmp_path / "job.json"
    jf.write_text(json.dumps({"name": "from-json", "command": "echo hi", "schedule": "@daily",
                              "timeout": 60, "description": "made from JSON"}))
    r = srv.cli("job", "add", "-f", str(jf))
    assert r.returncode == 0, r.stderr
    assert r.stdout == 'job "from-json" added (version 1)\n'
    yf = tmp_path / "job.yaml"
    yf.write_text(JOB_YAML)
    r = srv.cli("job", "add", "-f", str(yf), "--level", "7")
    assert r.returncode == 0, r.stderr
    job = srv.job("from-yaml")
    assert job["shard_params"] == {"0": "beijing", "1": "shanghai"}
    assert job["env"] == {"BATCH": "500", "country": "NO"}, "YAML 1.2 core schema: NO is text"
    assert job["pause_windows"] == [{"daily": ["12:00", "13:30"]}]
    assert job["command"] == 'echo "shard $TETHYS_SHARD of $TETHYS_SHARD_COUNT: ' \
                             '$TETHYS_SHARD_PARAM"\n'
    assert job["level"] == 7, "options override the file"

    r = srv.cli("job", "show", "from-yaml")
    assert r.returncode == 0, r.stderr
    f = show_fields(r.stdout)
    assert f["name"] == "from-yaml" and f["version"] == "1", f
    assert f["time_zone"] == "Asia/Shanghai" and f["shards"] == "2"
    assert f["shard_params.0"] == "beijing" and f["env.country"] == "NO", f
    assert re.fullmatch(r"\S+T02:30:00\+08:00", f["state.next_fire"]), f
    r = srv.cli("job", "show", "from-yaml", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["job_param"] == "full"

    r = srv.cli("job", "list")
    assert r.returncode == 0, r.stderr
    header = r.stdout.splitlines()[0].split()
    assert header[:3] == ["NAME", "DOMAIN", "SCHEDULE"] or header[0] == "NAME", header
    names = [l.split()[0] for l in r.stdout.splitlines()[1:]]
    assert "from-json" in names and "from-yaml" in names
    r = srv.cli("job", "list", "--json")
    items = json.loads(r.stdout)["items"]
    assert {"from-json", "from-yaml"} <= {j["name"] for j in items}


def test_job_add_file_with_several_jobs(shared_server, tmp_path):
    """`job add -f` reads what `tethys export` writes: several jobs at once."""
    srv = shared_server
    many = tmp_path / "many.json"
    many.write_text(json.dumps([{"name": "many-a", "command": "true", "schedule": "@daily"},
                                {"name": "many-b", "command": "true"},
                                {"name": "many-a", "command": "true"}]))
    r = srv.cli("job", "add", "-f", str(many))
    assert r.returncode == 2, r.stdout + r.stderr  # the duplicate is refused (exists)
    assert 'job "many-a" added' in r.stdout and 'job "many-b" added' in r.stdout
    assert "1 of 3 jobs" in r.stderr
    assert srv.job("many-a")["schedule"] == "@daily" and srv.job("many-b")["schedule"] is None
    r = srv.cli("job", "add", "many-c", "-f", str(many))
    assert r.returncode == 2 and "holds 3 jobs" in r.stderr
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    r = srv.cli("job", "add", "-f", str(empty))
    assert r.returncode == 2 and "no job in the file" in r.stderr
    for name in ("many-a", "many-b"):
        assert srv.cli("job", "rm", name).returncode == 0


def test_job_placement_options(shared_server):
    """--strategy and --prefer (a comma-separated list) set the placement fields; a job
    without them shows none, as jobs stored before they existed."""
    srv = shared_server
    r = srv.cli("job", "add", "placed", "--command", "true", "--strategy", "local",
                "--prefer", "exec-1,zone=east", "--set", "prefer_only=true")
    assert r.returncode == 0, r.stderr
    job = srv.job("placed")
    assert (job["strategy"], job["prefer"], job["prefer_only"]) == \
        ("local", ["exec-1", "zone=east"], True)
    r = srv.cli("job", "edit", "placed", "--prefer", "exec-1,zone=a=b")
    assert r.returncode == 2
    assert r.stderr == "tethys: prefer[1]: \"zone=a=b\" has more than one '='; " \
                       "expected key=value\n", r.stderr
    r = srv.cli("job", "edit", "placed", "--unset", "strategy", "--unset", "prefer_only",
                "--prefer", "")
    assert r.returncode == 0, r.stderr
    assert not {"strategy", "prefer", "prefer_only"} & set(srv.job("placed"))


def test_job_edit_enable_disable_rm(shared_server, tmp_path):
    srv = shared_server
    r = srv.cli("job", "add", "ed", "--cron", "0 0 5 * * ?", "--command", "true",
                "--set", "env.LANG=C", "--set", "timeout=60", "--disabled")
    assert r.returncode == 0, r.stderr
    job = srv.job("ed")
    assert job["enabled"] is False and job["env"] == {"LANG": "C"} and job["timeout"] == 60

    r = srv.cli("job", "edit", "ed", "--set", "timeout=30", "--set", 'job_param="007"',
                "--unset", "env.LANG", "--description", "edited")
    assert r.returncode == 0, r.stderr
    assert r.stdout == 'job "ed" updated (version 2)\n'
    job = srv.job("ed")
    assert (job["timeout"], job["job_param"], job["env"], job["description"]) == \
        (30, "007", {}, "edited")

    # a change conditioned on a stale version is refused and changes nothing
    r = srv.cli("job", "edit", "ed", "--set", "timeout=5", "--if-version", "1")
    assert r.returncode == 2
    assert r.stderr.startswith('tethys: job "ed"') and "version" in r.stderr, r.stderr
    assert srv.job("ed")["timeout"] == 30
    r = srv.cli("job", "edit", "ed", "--set", "timeout=5", "--if-version", "2")
    assert r.returncode == 0, r.stderr

    r = srv.cli("job", "edit", "ed", "--set", "shards=0")
    assert r.returncode == 2
    assert r.stderr == "tethys: shards: 0 is out of range 1-10000\n"

    f = tmp_path / "ed.yaml"
    f.write_text('command: "echo replaced"\nschedule: "0 0 6 * * ?"\n')
    r = srv.cli("job", "edit", "ed", "-f", str(f))
    assert r.returncode == 0, r.stderr
    assert r.stdout == 'job "ed" replaced (version 4)\n'
    job = srv.job("ed")
    assert job["command"] == "echo replaced" and job["timeout"] == 0 and job["enabled"] is True

    r = srv.cli("job", "disable", "ed")
    assert r.returncode == 0 and r.stdout == 'job "ed" disabled\n'
    assert srv.job("ed")["enabled"] is False
    r = srv.cli("job", "enable", "ed", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["enabled"] is True

    r = srv.cli("job", "rm", "ed", "--if-version", "1")
    assert r.returncode == 2
    r = srv.cli("job", "rm", "ed")
    assert r.returncode == 0 and r.stdout == 'job "ed" removed\n'
    r = srv.cli("job", "show", "ed")
    assert r.returncode == 2 and r.stderr == 'tethys: no job named "ed"\n'


@pytest.mark.parametrize("text, fragment", [
    ("name: a\ncommand: true\nshards: 2\nshards: 3\n", 'line 4, column 1: duplicate key "shards"'),
    ("name: [a\ncommand: x\n", "line 2, column 8"),
    ("name: &x a\ncommand: *x\n", "line 1"),
    ("- just a string\n", "item 1: expected a mapping"),
    ("", "empty"),
])
def test_malformed_yaml_files_exit_2_with_line_and_column(shared_server, tmp_path, text, fragment):
    f = tmp_path / "job.yaml"
    f.write_text(text)
    before = len(shared_server.jobs())
    r = shared_server.cli("job", "add", "-f", str(f))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith(f"tethys: {f}") and fragment in r.stderr, r.stderr
    assert len(shared_server.jobs()) == before


def test_malformed_json_file_and_missing_file(shared_server, tmp_path):
    f = tmp_path / "job.json"
    f.write_text('{"name": "a",\n "command": }\n')
    r = shared_server.cli("job", "add", "-f", str(f))
    assert r.returncode == 2 and "line 2, column 13" in r.stderr, r.stderr
    f.write_text('{"name": "a", "name": "b", "command": "true"}')
    r = shared_server.cli("job", "add", "-f", str(f))
    assert r.returncode == 2 and "duplicate object key" in r.stderr, r.stderr
    r = shared_server.cli("job", "add", "-f", str(tmp_path / "missing.yaml"))
    assert r.returncode == 3 and "No such file or directory" in r.stderr


def test_invalid_input_exit_2(shared_server):
    srv = shared_server
    cases = [
        (["job", "add", "bad-cli", "--command", "true", "--cron", "0 0 12 32 * ?"],
         'schedule: field 4 (day-of-month): "32" is out of range 1-31'),
        (["job", "add", "bad-cli", "--command", "true", "--set", "shardz=2"],
         'unknown field "shardz"; did you mean "shards"?'),
        (["job", "add", "bad-cli", "--command", "true", "--timeout", "soon"],
         '--timeout: "soon" is not a whole number'),
        (["job", "add", "bad-cli", "--command", "true", "--bogus"], 'unknown option "--bogus"'),
        (["job", "frobnicate"], 'unknown job command "frobnicate"'),
        (["job", "run", "no-such-job"], 'no job named "no-such-job"'),
        (["run", "show", "0000000000000000"], "no run 0000000000000000"),
        (["history", "--limit", "0"], "limit"),
    ]
    for args, fragment in cases:
        r = srv.cli(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr.startswith("tethys: ") and fragment in r.stderr, (args, r.stderr)
    assert "bad-cli" not in {j["name"] for j in srv.jobs()}


def test_run_show_and_logs(shared_server):
    srv = shared_server
    srv.add_job(name="cli-run", command="echo out; echo err >&2; exit 5")
    rid = srv.run_now("cli-run")["runs"][0]["run_id"]
    srv.wait_run(rid)
    r = srv.cli("run", "show", rid)
    assert r.returncode == 0, r.stderr
    f = show_fields(r.stdout)
    assert (f["status"], f["exit_code"], f["job"]) == ("failed", "5", "cli-run"), f
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", f["started_at_ms"]), f
    r = srv.cli("run", "show", rid, "--json")
    assert json.loads(r.stdout)["run_id"] == rid
    r = srv.cli("run", "logs", rid)
    assert r.returncode == 0 and r.stdout == "out\nerr\n"
    r = srv.cli("history", "--job", "cli-run")
    assert r.returncode == 0 and rid in r.stdout and "failed" in r.stdout
    r = srv.cli("executors", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["items"][0]["id"] == srv.executor_id()


def test_finding_the_server(server, tmp_path, tethys):
    home = tmp_path / "home"
    home.mkdir()
    xdg = tmp_path / "xdg"
    srv = server(data=xdg / "tethys")
    srv.add_job(name="found", command="true")
    clean = {"PATH": os.environ["PATH"], "HOME": str(home)}

    # --data, from any directory
    r = srv.cli("job", "list", "--json", env=clean, cwd="/")
    assert r.returncode == 0 and [j["name"] for j in json.loads(r.stdout)["items"]] == ["found"]
    # the default data directory, through XDG_DATA_HOME
    r = srv.cli("job", "list", "--json", env=dict(clean, XDG_DATA_HOME=str(xdg)), data=False,
                cwd="/")
    assert r.returncode == 0, r.stderr
    assert [j["name"] for j in json.loads(r.stdout)["items"]] == ["found"]
    # TETHYS_URL and TETHYS_TOKEN
    env = dict(clean, TETHYS_URL=srv.url, TETHYS_TOKEN=srv.token)
    r = srv.cli("job", "list", "--json", env=env, data=False)
    assert r.returncode == 0, r.stderr
    r = srv.cli("job", "list", env=dict(env, TETHYS_TOKEN="x" * 64), data=False)
    assert r.returncode == 3 and "wrong bearer token" in r.stderr, r.stderr
    r = srv.cli("job", "list", env=dict(clean, TETHYS_URL=srv.url), data=False)
    assert r.returncode == 3 and "bearer token" in r.stderr, r.stderr
    # nothing to find: status 3 and a message that says what to do
    r = srv.cli("job", "list", env=clean, data=False)
    assert r.returncode == 3
    assert "no Tethys server found" in r.stderr and str(home) in r.stderr, r.stderr

    # a server that is gone
    pid = srv.pid
    srv.kill9()
    r = srv.cli("job", "list", env=clean)
    assert r.returncode == 3
    assert f"pid {pid}, which has exited" in r.stderr and "no Tethys server at" in r.stderr, \
        r.stderr
    srv2 = server.restart(srv)
    assert srv2.stop() == 0
    r = srv.cli("job", "list", env=clean)
    assert r.returncode == 3 and "server.json does not exist" in r.stderr, r.stderr
    r = srv.cli("alerts", env=clean)
    assert r.returncode == 3
