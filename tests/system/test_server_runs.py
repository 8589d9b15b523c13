"""Shell runs on a real server: every-second schedules and shards, the run environment, stdin,
working directory, exit codes and signals, output caps, live logs, timeouts that kill the
whole process group, timeout alarms, cancel, retries with backoff, run now."""
import json
import os
import re
import subprocess
import time

from conftest import error_of, group_members, once_at, pid_alive, wait_for


def runs_ended(srv, job):
    """True when the server holds no run of `job` in progress (running or waiting) and its
    history shows none queued or running: after a disable (which bumps the job's generation,
    so no later fire starts), every run that will ever exist has ended."""
    state = srv.job(job)["state"]
    return state["running"] == 0 and state["waiting"] == 0 and not [
        r for r in srv.runs(job) if r["status"] in ("queued", "running")]


def test_every_second_fires_once_per_second_per_shard(server):
    srv = server()
    srv.add_job(name="tick", schedule="* * * * * ?", shards=2, command="true")
    srv.wait_for(lambda: len(srv.runs("tick", status="succeeded")) >= 8, 20, what="8 runs")
    srv.ok("POST", "/jobs/tick/disable")
    # a fire handed over just before the disable may still be running
    srv.wait_for(lambda: runs_ended(srv, "tick"), 15, what="every run of tick to end")
    runs = srv.runs("tick")
    assert all(r["status"] == "succeeded" for r in runs), runs
    assert all(r["trigger"] == "schedule" and r["attempt"] == 1 for r in runs)
    fire_ids = [r["fire_id"] for r in runs]
    assert len(fire_ids) == len(set(fire_ids)), "a fire id was made twice"
    for shard in (0, 1):
        secs = sorted(r["scheduled_at"] for r in runs if r["shard"] == shard)
        assert secs == list(range(secs[0], secs[0] + len(secs))), \
            f"shard {shard}: not one fire per consecutive second: {secs}"
        for r in runs:
            if r["shard"] == shard:
                assert r["fire_id"] == f"tick@{r['scheduled_at']}#{shard}"
    per_second = {}
    for r in runs:
        per_second.setdefault(r["scheduled_at"], set()).add(r["shard"])
    assert all(v == {0, 1} for v in list(per_second.values())[1:-1]), per_second
    lateness = sorted(r["lateness_ms"] for r in runs)
    assert lateness[len(lateness) // 2] < 200, f"median lateness {lateness}"
    assert not srv.skips("tick"), srv.skips("tick")


def parse_env(text):
    env = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    return env


def test_run_environment_is_minimal_and_complete(server, tmp_path):
    env = dict(os.environ, TETHYS_LEAK_CHECK="server-secret", LEAKY_VAR="also-secret")
    srv = server(env=env)
    workdir = tmp_path / "work"
    workdir.mkdir()
    srv.add_job(name="envjob", schedule="* * * * * ?", time_zone="Asia/Shanghai", shards=2,
                shard_params="0=beijing,1=shanghai", job_param="full", env={"DB_HOST": "db1"},
                workdir=str(workdir),
                command="env; echo STDIN=$(readlink /proc/$$/fd/0); echo PWD_IS=$(pwd); "
                        "cat; echo CAT_DONE")
    srv.wait_for(lambda: len(srv.runs("envjob", status="succeeded")) >= 2, 15, what="two runs")
    srv.ok("POST", "/jobs/envjob/disable")
    runs = srv.runs("envjob", status="succeeded")
    first_at = min(r["scheduled_at"] for r in runs)
    fire = [r for r in runs if r["scheduled_at"] == first_at]
    assert sorted(r["shard"] for r in fire) == [0, 1], fire
    epoch = srv.ok("GET", "/executors")["items"][0]["epoch"]
    traces = set()
    for r in fire:
        run = srv.get_run(r["run_id"])
        e = parse_env(run["output"])
        shard = r["shard"]
        assert e["TETHYS_JOB"] == "envjob"
        assert e["TETHYS_SHARD"] == str(shard)
        assert e["TETHYS_SHARD_COUNT"] == "2"
        assert e["TETHYS_SHARD_PARAM"] == ["beijing", "shanghai"][shard]
        assert e["TETHYS_JOB_PARAM"] == "full"
        assert e["TETHYS_SCHEDULED_EPOCH"] == str(run["scheduled_at"])
        local = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(run["scheduled_at"] + 8 * 3600))
        assert e["TETHYS_SCHEDULED_AT"] == local + "+08:00", "in the job's own zone"
        assert e["TETHYS_RUN_ID"] == run["run_id"]
        assert re.fullmatch(r"[0-9a-f]{16}", run["run_id"])
        assert e["TETHYS_FIRE_ID"] == run["fire_id"] == f"envjob@{run['scheduled_at']}#{shard}"
        assert e["TETHYS_ATTEMPT"] == "1"
        assert e["TETHYS_TRIGGER"] == "schedule"
        assert e["TETHYS_FENCING_EPOCH"] == str(epoch) == str(run["epoch"])
        assert e["TETHYS_EXECUTOR"] == srv.executor_id() == run["executor"]
        assert e["TETHYS_DOMAIN"] == ""
        m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", e["TRACEPARENT"])
        assert m and m.group(2) == run["run_id"] and m.group(1) != "0" * 32, e["TRACEPARENT"]
        traces.add(m.group(1))
        # the job's own variables and the fixed base
        assert e["DB_HOST"] == "db1"
        assert e["TZ"] == "Asia/Shanghai"
        assert e["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        assert e["LANG"] == "C.UTF-8" and e["SHELL"] == "/bin/sh" and e["HOME"]
        # nothing of the server's own environment leaks in
        assert "TETHYS_LEAK_CHECK" not in e and "LEAKY_VAR" not in e
        assert "server-secret" not in run["output"]
        allowed = {"PATH", "HOME", "SHELL", "LANG", "TZ", "DB_HOST", "TRACEPARENT", "PWD",
                   "OLDPWD", "SHLVL", "_"}
        extra = {k for k in e if not k.startswith("TETHYS_") and k not in allowed} - \
            {"STDIN", "PWD_IS", "CAT_DONE"}
        assert not extra, f"unexpected variables in the run's environment: {extra}"
        # stdin is /dev/null (cat ends at once), the working directory is the job's
        assert e["STDIN"] == "/dev/null"
        assert e["PWD_IS"] == str(workdir)
        assert run["output"].rstrip().endswith("CAT_DONE")
    assert len(traces) == 1, "the shards of one fire share one trace"


def test_exit_code_signal_and_bad_workdir_are_recorded(server):
    srv = server()
    srv.add_job(name="ex7", command="echo about to fail; exit 7")
    srv.add_job(name="sig", command="kill -KILL $$")
    srv.add_job(name="nodir", command="true", workdir="/nonexistent/dir")
    runs = {n: srv.run_now(n)["runs"][0]["run_id"] for n in ("ex7", "sig", "nodir")}
    r = srv.wait_run(runs["ex7"])
    assert (r["status"], r["exit_code"], r["signal"]) == ("failed", 7, 0)
    assert r["output"] == "about to fail\n"
    assert r["trigger"] == "manual" and r["duration_ms"] >= 0
    r = srv.wait_run(runs["sig"])
    assert (r["status"], r["signal"]) == ("failed", 9), r
    assert r["exit_code"] in (-1, None), r
    r = srv.wait_run(runs["nodir"])
    assert r["status"] == "failed", r
    assert "/nonexistent/dir" in r["error"] and "No such file" in r["error"], r["error"]


def test_output_tail_is_capped_and_keeps_the_end(server):
    srv = server()
    # 1 MiB of numbered lines, then a last line
    srv.add_job(name="loud", output_cap=4096,
                command="seq 1 150000 | head -c 1048576; echo; echo LAST-LINE")
    run_id = srv.run_now("loud")["runs"][0]["run_id"]
    r = srv.wait_run(run_id, 20)
    assert r["status"] == "succeeded", r
    assert r["output_bytes"] <= 4096
    assert len(r["output"].encode()) <= 4096
    assert r["output"].endswith("\nLAST-LINE\n")
    assert len(r["output"]) > 3000, "the cap keeps about output_cap bytes, not much less"
    logs = srv.cli("run", "logs", run_id)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == r["output"]
    on_disk = sum(f.stat().st_blocks * 512 for f in (srv.data / "runs").iterdir())
    assert on_disk < 256 * 1024, f"output files hold {on_disk} bytes on disk"


def test_logs_follow_a_running_run_live(server):
    srv = server()
    srv.add_job(name="slowprint", command="for i in 1 2 3 4 5 6; do echo line$i; sleep 0.3; done")
    run_id = srv.run_now("slowprint")["runs"][0]["run_id"]
    p = subprocess.Popen([srv.cli_binary, "run", "logs", "-f", run_id, "--data", str(srv.data)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    arrivals = []
    for line in p.stdout:
        arrivals.append((time.monotonic() - t0, line.rstrip("\n")))
    rc = p.wait(10)
    ended_at = time.time()
    assert rc == 0, p.stderr.read()
    assert [l for _, l in arrivals] == [f"line{i}" for i in range(1, 7)]
    # the lines came as they were printed, not all at the end
    assert arrivals[-1][0] - arrivals[0][0] >= 1.0, arrivals
    run = srv.get_run(run_id)
    assert run["status"] == "succeeded"
    # measured from the run's own end, so a machine slow to start the run's processes
    # cannot fail it: only a follower that lingers after the end can
    lag = ended_at - run["ended_at_ms"] / 1000
    assert lag < 3.0, f"the follower took {lag:.1f} s to end after the run"
    # following a finished run prints its tail and ends
    r = srv.cli("run", "logs", "-f", run_id)
    assert r.returncode == 0 and r.stdout == "".join(f"line{i}\n" for i in range(1, 7))


def test_timeout_kills_the_whole_process_group(server):
    srv = server()
    srv.add_job(name="hang", timeout=2, kill_grace=1,
                command="sh -c 'sleep 300 & sleep 300; wait'")
    # a group member that ignores TERM needs the KILL after kill_grace
    srv.add_job(name="stubborn", timeout=2, kill_grace=1,
                command="trap '' TERM; sh -c 'sleep 300 & sleep 300; wait'")
    ids = {n: srv.run_now(n)["runs"][0]["run_id"] for n in ("hang", "stubborn")}
    pgids = {}
    for n, rid in ids.items():
        run = srv.wait_for(lambda: (lambda r: r if r["pid"] else None)(srv.get_run(rid)), 10,
                           what="the run's pid")
        pgids[n] = run["pid"]
        assert srv.wait_for(lambda: len(group_members(run["pid"])) >= 3, 10,
                            what="sh, sh and two sleeps in the group")
    t0 = time.monotonic()
    for n, rid in ids.items():
        r = srv.wait_run(rid, 20)
        assert r["status"] == "timeout", r
        assert r["duration_ms"] >= 2000
    # timeout 2 s + kill_grace 1 s: ended long before the sleep 300 the kill cut short
    assert time.monotonic() - t0 < 12
    for n, pgid in pgids.items():
        wait_for(lambda: not group_members(pgid), 10, what=f"no process left in {n}'s group")


def test_timeout_alarm_raises_and_clears_an_alert(server):
    srv = server()
    srv.add_job(name="slowish", timeout_alarm=1, command="sleep 3.5")
    rid = srv.run_now("slowish")["runs"][0]["run_id"]

    def row():
        rows = [t for t in srv.alerts()["timed_out_shards"] if t["job"] == "slowish"]
        return rows[0] if rows else None
    t = srv.wait_for(row, 10, what="the timed-out shard in /alerts")
    assert t["shards"] == [0] and t["seconds_over"] >= 0
    assert t["domain"] == "" and t["job_level"] == 5 and "domain_level" in t
    assert srv.get_run(rid)["status"] == "running", "an alarm does not kill"
    r = srv.wait_run(rid, 15)
    assert r["status"] == "succeeded"
    srv.wait_for(lambda: row() is None, 10, what="the alarm to clear when the run ended")


def test_cancel_running_run_and_unknown_run(server):
    srv = server()
    srv.add_job(name="longrun", command="sh -c 'sleep 300 & wait'", kill_grace=2)
    rid = srv.run_now("longrun")["runs"][0]["run_id"]
    run = srv.wait_for(lambda: (lambda r: r if r["status"] == "running" else None)(
        srv.get_run(rid)), 10, what="running")
    r = srv.cli("run", "cancel", rid)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"run {rid} canceling\n"
    r = srv.wait_run(rid, 15)
    assert r["status"] == "canceled"
    wait_for(lambda: not group_members(run["pid"]), 10, what="the canceled group to be gone")
    # again, or an unknown run: 404, CLI status 2
    err = error_of(srv.api("POST", f"/runs/{rid}/cancel"), 404, "not_found", "run_id")
    assert rid in err["message"]
    error_of(srv.api("POST", "/runs/ffffffffffffffff/cancel"), 404, "not_found")
    r = srv.cli("run", "cancel", "ffffffffffffffff")
    assert r.returncode == 2 and "ffffffffffffffff" in r.stderr


def test_retries_with_backoff_keep_the_fire_id_and_raise_then_clear_an_alert(server):
    srv = server()
    at = int(time.time()) + 2
    srv.add_job(name="flaky", schedule=once_at(at), retries=2, retry_backoff=1,
                command="echo attempt $TETHYS_ATTEMPT of $TETHYS_FIRE_ID; exit 3")
    runs = srv.wait_for(lambda: (lambda rs: rs if len(rs) == 3 and all(
        r["status"] == "failed" for r in rs) else None)(srv.runs("flaky")), 30,
        what="three failed attempts")
    runs.sort(key=lambda r: r["attempt"])
    assert [r["attempt"] for r in runs] == [1, 2, 3]
    assert [r["trigger"] for r in runs] == ["schedule", "retry", "retry"]
    assert {r["fire_id"] for r in runs} == {f"flaky@{at}#0"}
    assert {r["scheduled_at"] for r in runs} == {at}
    assert len({r["run_id"] for r in runs}) == 3
    named = [srv.get_run(r["run_id"])["retry_run_id"] for r in runs]
    assert named == [runs[1]["run_id"], runs[2]["run_id"], None], "each attempt names the next"
    gap1 = runs[1]["started_at_ms"] - runs[0]["ended_at_ms"]
    gap2 = runs[2]["started_at_ms"] - runs[1]["ended_at_ms"]
    assert 1000 <= gap1 < 1800, f"first backoff {gap1} ms"
    assert 2000 <= gap2 < 2800, f"second backoff {gap2} ms (factor 2)"
    out = srv.get_run(runs[2]["run_id"])["output"]
    assert out == f"attempt 3 of flaky@{at}#0\n"

    def alert():
        rows = [a for a in srv.alerts()["abnormal_jobs"] if a["job"] == "flaky"]
        return rows[0] if rows else None
    a = srv.wait_for(alert, 10, what="the failure alert")
    assert a["kind"] == "failed" and "attempt 3" in a["reason"]
    assert a["scheduled_at"].startswith(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)))
    assert a["job_level"] == 5 and a["domain"] == ""

    srv.patch("flaky", command="true", schedule=None)
    rid = srv.run_now("flaky")["runs"][0]["run_id"]
    assert srv.wait_run(rid)["status"] == "succeeded"
    srv.wait_for(lambda: alert() is None, 10, what="the alert to clear after a success")


def test_run_now_all_chosen_and_bad_shards_leave_the_schedule_alone(server):
    srv = server()
    srv.add_job(name="manual", schedule="0 0 4 * * ?", shards=3, command="echo $TETHYS_SHARD")
    next_fire = srv.wait_for(lambda: srv.job("manual")["state"]["next_fire"], 10, what="next fire")

    out = srv.run_now("manual")
    assert sorted(r["shard"] for r in out["runs"]) == [0, 1, 2] and out["skipped"] == []
    assert out["fire_id"].startswith("manual@")
    for r in out["runs"]:
        run = srv.wait_run(r["run_id"])
        assert run["status"] == "succeeded" and run["trigger"] == "manual"
        assert run["output"] == f"{r['shard']}\n"
        assert run["fire_id"] == f"{out['fire_id']}#{r['shard']}"
    out2 = srv.run_now("manual", shards=[0, 2])
    assert sorted(r["shard"] for r in out2["runs"]) == [0, 2]
    assert out2["fire_id"] != out["fire_id"], "two run-nows are two fires"
    for r in out2["runs"]:
        srv.wait_run(r["run_id"])

    for body, fragment in [({"shards": [3]}, "not a shard of job \"manual\" (0-2)"),
                           ({"shards": [-1]}, "not a shard"),
                           ({"shards": [0, 0]}, "listed twice"),
                           ({"shards": []}, "non-empty array"),
                           ({"shards": "all"}, "non-empty array")]:
        err = error_of(srv.api("POST", "/jobs/manual/run", json=body), 400, "invalid", "shards")
        assert fragment in err["message"], err
    err = error_of(srv.api("POST", "/jobs/manual/run", json={"shard": [1]}), 400, "invalid",
                   "shard")
    assert "unknown field" in err["message"]
    error_of(srv.api("POST", "/jobs/nobody/run"), 404, "not_found")
    assert len(srv.runs("manual")) == 5, "the refused run-nows started nothing"
    assert srv.job("manual")["state"]["next_fire"] == next_fire

    r = srv.cli("job", "run", "manual", "--shards", "1")
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"[0-9a-f]{16}  shard 1\n", r.stdout), r.stdout
    r = srv.cli("job", "run", "manual", "--shards", "7")
    assert r.returncode == 2 and "not a shard" in r.stderr


def test_job_run_wait_exit_status(server):
    srv = server()
    srv.add_job(name="good", command="echo fine")
    srv.add_job(name="bad", command="exit 4", shards=2)
    r = srv.cli("job", "run", "good", "--wait")
    assert r.returncode == 0, r.stderr
    assert "succeeded" in r.stdout
    r = srv.cli("job", "run", "bad", "--wait", "--json")
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    assert [x["status"] for x in out["runs"]] == ["failed", "failed"]
    assert {x["exit_code"] for x in out["runs"]} == {4}

    # a shard that does not start (its previous run still going) is no success either
    srv.add_job(name="busy", command="sleep 2", shards=2)
    first = srv.run_now("busy")
    out = srv.ok("POST", "/jobs/busy/run", json={"shards": [1]}, status=202)
    assert out["runs"] == [] and out["skipped"] == [{"shard": 1, "reason": "overlap"}]
    r = srv.cli("job", "run", "busy", "--wait")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert 'shard 0 of job "busy" was not started (overlap)' in r.stderr
    assert 'shard 1 of job "busy" was not started (overlap)' in r.stderr
    r = srv.cli("job", "run", "busy")
    assert r.returncode == 1 and r.stdout == "", (r.stdout, r.stderr)
    for x in first["runs"]:
        srv.wait_run(x["run_id"])
    r = srv.cli("job", "run", "busy", "--wait")
    assert r.returncode == 0, r.stderr


def test_run_id_of_a_running_process_matches_proc(server):
    srv = server()
    srv.add_job(name="visible", command="sleep 2")
    rid = srv.run_now("visible")["runs"][0]["run_id"]
    run = srv.wait_for(lambda: (lambda r: r if r["pid"] else None)(srv.get_run(rid)), 10,
                       what="pid")
    assert pid_alive(run["pid"])
    assert os.getpgid(run["pid"]) == run["pid"], "a run leads its own process group"
    with open(f"/proc/{run['pid']}/environ", "rb") as f:
        assert f"TETHYS_RUN_ID={rid}".encode() in f.read().split(b"\0")
    job = srv.job("visible")
    assert job["state"]["running"] == 1
    srv.wait_run(rid)
    assert srv.job("visible")["state"]["running"] == 0


def test_cancel_runs_that_have_not_started(server):
    srv = server("--max-runs", "1")
    srv.add_job(name="blocker", command="sleep 1.5")
    srv.add_job(name="waits-capacity", command="echo ran")
    srv.add_job(name="waits-shard", command="sleep 0.2", overlap="queue")
    b = srv.run_now("blocker")["runs"][0]["run_id"]
    q = srv.run_now("waits-capacity")["runs"][0]["run_id"]
    w1 = srv.run_now("waits-shard")["runs"][0]["run_id"]
    w2 = srv.run_now("waits-shard")["runs"][0]["run_id"]  # behind w1, on its shard
    assert srv.get_run(q)["status"] == "queued" and srv.get_run(w2)["status"] == "queued"
    for rid in (q, w2):
        out = srv.ok("POST", f"/runs/{rid}/cancel", status=202)
        assert out == {"run_id": rid, "status": "canceled"}
        r = srv.get_run(rid)
        assert r["status"] == "canceled" and r["error"] == "canceled before it started"
        assert r["started_at_ms"] == 0 and r["pid"] == 0
    assert srv.job("waits-shard")["state"]["waiting"] == 0
    assert srv.wait_run(b, 15)["status"] == "succeeded"
    assert srv.wait_run(w1, 15)["status"] == "succeeded", "the rest of the queue goes on"
    # the ends of b and w1 are when a canceled run would wrongly have been started: once the
    # executor is idle, nothing is left that could start one later
    ex = srv.wait_for(lambda: (lambda e: e if (e["running"], e["queued"]) == (0, 0) else None)(
        srv.ok("GET", "/executors")["items"][0]), 10, what="the executor to be idle")
    assert srv.get_run(q)["status"] == "canceled" and srv.get_run(w2)["status"] == "canceled"
    assert (ex["running"], ex["queued"]) == (0, 0), ex
    assert srv.job("waits-shard")["state"] == {"next_fire": None, "running": 0, "waiting": 0}


def test_deleting_a_job_lets_its_run_finish_and_keeps_its_history(server):
    srv = server()
    srv.add_job(name="doomed", command="sleep 1; echo bye", retries=3, retry_backoff=0)
    rid = srv.run_now("doomed")["runs"][0]["run_id"]
    srv.wait_for(lambda: srv.get_run(rid)["status"] == "running", 10, what="running")
    srv.ok("DELETE", "/jobs/doomed", status=204)
    r = srv.wait_run(rid, 15)
    assert r["status"] == "succeeded" and r["output"] == "bye\n"
    assert [x["run_id"] for x in srv.runs("doomed")] == [rid], "history stays after rm"
    srv.add_job(name="doomed", command="true")  # the name is free again
    assert srv.wait_run(srv.run_now("doomed")["runs"][0]["run_id"])["status"] == "succeeded"


def test_run_as_another_user(server, tmp_path):
    srv = server()
    srv.add_job(name="as-nobody", user="nobody", workdir="/", command="id -un; echo $HOME $USER")
    srv.add_job(name="as-nobody-bad", user="no-such-user-x", command="true")
    r = srv.wait_run(srv.run_now("as-nobody")["runs"][0]["run_id"])
    assert r["status"] == "succeeded", r
    assert r["output"] == "nobody\n/ nobody\n"
    r = srv.wait_run(srv.run_now("as-nobody-bad")["runs"][0]["run_id"])
    assert r["status"] == "failed" and "no-such-user-x" in r["error"], r


def test_a_timed_out_run_is_retried(server):
    srv = server()
    srv.add_job(name="slow-then-fast", timeout=1, kill_grace=0, retries=1, retry_backoff=0,
                command='test "$TETHYS_ATTEMPT" = 2 || sleep 10; echo attempt $TETHYS_ATTEMPT')
    rid = srv.run_now("slow-then-fast")["runs"][0]["run_id"]
    assert srv.wait_run(rid, 15)["status"] == "timeout"
    runs = srv.wait_for(lambda: (lambda rs: rs if len(rs) == 2 and rs[0]["status"] not in (
        "queued", "running") else None)(srv.runs("slow-then-fast")), 15, what="the retry")
    retry = [r for r in runs if r["attempt"] == 2][0]
    assert retry["status"] == "succeeded" and retry["trigger"] == "retry"
    assert srv.get_run(retry["run_id"])["output"] == "attempt 2\n"
    assert not [a for a in srv.alerts()["abnormal_jobs"] if a["job"] == "slow-then-fast"]


def test_edits_while_firing_every_second_lose_no_fire_and_repeat_none(server):
    srv = server()
    srv.add_job(name="edited", schedule="* * * * * ?", shards=2, command="true")
    srv.wait_for(lambda: srv.runs("edited"), 10, what="the first fire")
    # edits spread over at least 3.5 s (several fires), and at least 21 of them however long
    # each takes; the pause only spaces them out so they land all around the fire instants
    t_end = time.time() + 3.5
    n = 0
    while time.time() < t_end or n <= 20:
        n += 1
        srv.patch("edited", description=f"edit {n}")
        time.sleep(0.05)
    srv.ok("POST", "/jobs/edited/disable")
    srv.wait_for(lambda: runs_ended(srv, "edited"), 15, what="every run of edited to end")
    items = srv.history(job="edited")
    runs = [i for i in items if i["kind"] == "run"]
    assert not [i for i in items if i["kind"] == "skip"], items
    ids = [r["fire_id"] for r in runs]
    assert len(ids) == len(set(ids)), "a fire made twice"
    for shard in (0, 1):
        secs = sorted(r["scheduled_at"] for r in runs if r["shard"] == shard)
        assert secs == list(range(secs[0], secs[0] + len(secs))), \
            f"shard {shard}: a fire lost around an edit: {secs}"
    assert n > 20 and srv.job("edited")["version"] == n + 2


def test_many_jobs_every_second(server):
    srv = server()
    for i in range(40):
        srv.add_job(name=f"many-{i:02d}", schedule="* * * * * ?", command="true")

    def two_runs_each():
        per_job = {}
        for r in srv.history():
            if r["kind"] == "run" and r["status"] == "succeeded":
                per_job[r["job"]] = per_job.get(r["job"], 0) + 1
        return len(per_job) == 40 and min(per_job.values()) >= 2
    srv.wait_for(two_runs_each, 30, 0.2, what="two succeeded runs of each of the 40 jobs")
    for i in range(40):
        srv.ok("POST", f"/jobs/many-{i:02d}/disable")
    srv.wait_for(lambda: not srv.history(status="running") and not srv.history(status="queued"),
                 15, what="every run to end")
    items = srv.history()
    runs = [i for i in items if i["kind"] == "run"]
    assert not [i for i in items if i["kind"] == "skip"], [i for i in items if i["kind"] == "skip"]
    assert all(r["status"] == "succeeded" for r in runs)
    by_job = {}
    for r in runs:
        by_job.setdefault(r["job"], []).append(r["scheduled_at"])
    assert len(by_job) == 40
    for job, secs in by_job.items():
        secs.sort()
        assert secs == list(range(secs[0], secs[0] + len(secs))), (job, secs)
        assert len(secs) >= 2, (job, secs)
    late = sorted(r["lateness_ms"] for r in runs)
    assert late[len(late) * 9 // 10] < 500, f"p90 lateness {late[len(late) * 9 // 10]} ms"


def test_job_run_wait_follows_retries_and_a_pending_retry_can_be_canceled(server):
    srv = server()
    srv.add_job(name="second-time", retries=2, retry_backoff=1,
                command='echo try $TETHYS_ATTEMPT; test "$TETHYS_ATTEMPT" = 2')
    r = srv.cli("job", "run", "second-time", "--wait", "--json", timeout=20)
    assert r.returncode == 0, (r.stdout, r.stderr)
    out = json.loads(r.stdout)
    assert [(x["attempt"], x["status"]) for x in out["runs"]] == [(2, "succeeded")]
    srv.add_job(name="never", retries=1, retry_backoff=1, command="exit 9")
    r = srv.cli("job", "run", "never", "--wait", timeout=20)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert len(srv.runs("never")) == 2, "--wait ended after the last attempt"

    srv.add_job(name="patient", retries=3, retry_backoff=60, command="exit 1")
    rid = srv.run_now("patient")["runs"][0]["run_id"]
    first = srv.wait_run(rid)
    retry_id = first["retry_run_id"]
    assert first["status"] == "failed" and retry_id
    pending = srv.get_run(retry_id)
    assert (pending["status"], pending["attempt"], pending["trigger"]) == ("queued", 2, "retry")
    out = srv.ok("POST", f"/runs/{retry_id}/cancel", status=202)
    assert out == {"run_id": retry_id, "status": "canceled"}
    r = srv.get_run(retry_id)
    assert r["status"] == "canceled" and r["error"] == "canceled before it started"
    assert [x["status"] for x in srv.runs("patient")] in (["canceled", "failed"],
                                                          ["failed", "canceled"])
    error_of(srv.api("POST", f"/runs/{retry_id}/cancel"), 404, "not_found")


def test_runs_reported_by_run_now_and_cancel_are_readable_at_once(server):
    srv = server()
    srv.add_job(name="ryw", command="sleep 5", overlap="parallel", shards=3)
    for _ in range(15):
        for r in srv.run_now("ryw")["runs"]:
            got = srv.api("GET", f"/runs/{r['run_id']}")
            assert got.status_code == 200, got.text
            assert got.json()["status"] in ("queued", "running")
    def cancel_the_rest():
        live = [r for r in srv.runs("ryw") if r["status"] in ("queued", "running")]
        for r in live:
            out = srv.ok("POST", f"/runs/{r['run_id']}/cancel", status=202)
            if out["status"] == "canceled":  # it had not started: final at once
                assert srv.get_run(r["run_id"])["status"] == "canceled"
        return not live
    srv.wait_for(cancel_the_rest, 20, what="every run canceled")
    assert {r["status"] for r in srv.runs("ryw")} == {"canceled"}
