"""The server's life: one server per data directory; SIGTERM lets short runs finish and
interrupts the rest after the grace; kill -9 and a restart with runs still alive (killed or
adopted as each job says, never a second copy of a shard); fires missed while down follow
the misfire policy; a full disk refuses changes with 507 and loses no run result."""
import errno
import os
import signal
import subprocess
import time

import pytest

from conftest import fill, group_members, pid_alive, processes_with_env, wait_for


def running_run(srv, rid, timeout=10):
    return srv.wait_for(lambda: (lambda r: r if r["status"] == "running" and r["pid"] else None)(
        srv.get_run(rid)), timeout, what=f"run {rid} running")


def leads_group(pid):
    """pid leads its own process group (False when it has exited meanwhile)."""
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def test_second_server_on_the_same_data_directory_refuses(server, tethys):
    srv = server()
    r = subprocess.run([tethys, "server", "--data", str(srv.data), "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2, r.stderr
    assert (f"tethys: data directory {srv.data} is in use by another tethys server "
            f"(pid {srv.pid})") in r.stderr
    assert srv.api("GET", "/health").status_code == 200, "the first one is untouched"
    assert f'"pid":{srv.pid}' in (srv.data / "server.json").read_text()


def test_sigterm_lets_a_run_finish_within_the_grace(server):
    srv = server("--shutdown-grace", "10")
    srv.add_job(name="short", command="sleep 1; echo done")
    srv.add_job(name="ticking", schedule="* * * * * ?")
    rid = srv.run_now("short")["runs"][0]["run_id"]
    running_run(srv, rid)
    t0 = time.monotonic()
    assert srv.stop(signal.SIGTERM, timeout=20) == 0
    took = time.monotonic() - t0
    assert took < 7, f"exit {took:.1f} s after TERM, though the run needed about 1 s (grace 10 s)"
    assert not (srv.data / "server.json").exists()
    srv2 = server.restart(srv)
    r = srv2.get_run(rid)
    assert r["status"] == "succeeded" and r["output"] == "done\n", r
    ticks = srv2.history(job="ticking")
    assert all(t["status"] in ("succeeded", "skipped") for t in ticks), ticks
    assert all(t["reason"] == "interrupted" for t in ticks if t["kind"] == "skip"), ticks


def test_sigterm_interrupts_a_run_that_outlives_the_grace(server):
    srv = server("--shutdown-grace", "1")
    srv.add_job(name="long", command="sh -c 'sleep 60 & sleep 60; wait'")
    rid = srv.run_now("long")["runs"][0]["run_id"]
    run = running_run(srv, rid)
    wait_for(lambda: len(group_members(run["pid"])) >= 3, 10, what="the group")
    t0 = time.monotonic()
    assert srv.stop(signal.SIGTERM, timeout=15) == 0
    assert 0.9 < time.monotonic() - t0 < 8
    wait_for(lambda: not group_members(run["pid"]), 10, what="the whole group killed")
    srv2 = server.restart(srv)
    r = srv2.get_run(rid)
    assert r["status"] == "interrupted", r
    assert r["ended_at_ms"] > 0


def test_kill9_restart_kills_runs_and_applies_the_misfire_policy(server):
    srv = server()
    srv.add_job(name="k-kill", command="sh -c 'sleep 60 & sleep 60; wait'",
                on_executor_death="kill")
    srv.add_job(name="k-skip", schedule="* * * * * ?", misfire_threshold=1, misfire="skip")
    srv.add_job(name="k-once", schedule="* * * * * ?", misfire_threshold=1, misfire="run_once")
    rid = srv.run_now("k-kill")["runs"][0]["run_id"]
    run = running_run(srv, rid)
    srv.wait_for(lambda: srv.runs("k-skip") and srv.runs("k-once"), 10, what="first ticks")
    srv.kill9()
    down_at = time.time()
    assert pid_alive(run["pid"]), "the run outlives its server"
    # kept: the downtime is the scenario (fires more than the 1 s threshold late), and with
    # the server down there is no state to wait for
    time.sleep(3.2)
    srv2 = server.restart(srv)
    wait_for(lambda: not group_members(run["pid"]), 10, what="the orphaned group killed")
    r = srv2.wait_run(rid, 10)
    assert r["status"] == "interrupted", r
    assert "on_executor_death" in r["error"], r
    # fires missed while the server was down: skip records one skip, run_once runs one
    miss = srv2.wait_for(lambda: [k for k in srv2.skips("k-skip") if k["reason"] == "misfire"],
                         10, what="the misfire record")
    assert len(miss) == 1 and miss[0]["scheduled_at"] <= down_at + 1, miss
    assert "misfire policy skip" in miss[0]["detail"]
    late = srv2.wait_for(lambda: [r for r in srv2.runs("k-once") if r["trigger"] == "misfire"],
                         10, what="the run-once run")
    assert len(late) == 1 and down_at - 1 < late[0]["scheduled_at"] < time.time(), late
    # the epoch grew: this is a new assignment
    assert srv2.ok("GET", "/executors")["items"][0]["epoch"] == run["epoch"] + 1
    # no fire made twice across the restart
    ids = [(i["fire_id"], i.get("attempt")) for i in srv2.history()]
    assert len(ids) == len(set(ids))


def test_kill9_restart_adopts_a_run_that_may_finish_and_never_starts_a_second_copy(server):
    srv = server()
    srv.add_job(name="k-fin", schedule="* * * * * ?", overlap="skip", on_executor_death="finish",
                command="echo started; sleep 4; echo finished")
    first = srv.wait_for(lambda: srv.runs("k-fin", status="running"), 10,
                         what="a running run")[0]
    run = running_run(srv, first["run_id"])
    srv.kill9()
    srv2 = server.restart(srv)
    # while it lives: one process for the shard, and the fires are skipped as overlapping
    # (sampled every 0.1 s until the adopted run's `sleep 4` is over)
    copies = []
    deadline = time.monotonic() + 30
    while pid_alive(run["pid"]):
        assert time.monotonic() < deadline, "the adopted run outlived its sleep 4 by far"
        copies.append(len([p for p in processes_with_env("TETHYS_JOB", "k-fin")
                           if leads_group(p)]))
        time.sleep(0.1)
    assert copies and max(copies) == 1, f"copies of the shard alive at once: {copies}"
    r = srv2.wait_run(first["run_id"], 10)
    assert r["status"] == "lost", r
    assert "exit status" in r["error"] and "unknown" in r["error"]
    assert r["output"] == "started\nfinished\n", "the output of the adopted run is kept"
    skips = [k for k in srv2.skips("k-fin") if k["scheduled_at"] > run["scheduled_at"]]
    assert skips and all(k["reason"] == "overlap" for k in skips), skips
    runs = [x for x in srv2.runs("k-fin") if x["run_id"] != first["run_id"]]
    for x in runs:
        assert x["started_at_ms"] >= r["ended_at_ms"] - 1000 or x["ended_at_ms"] <= \
            run["started_at_ms"], f"a second copy ran alongside the adopted run: {x}"
    a = [x for x in srv2.alerts()["abnormal_jobs"] if x["job"] == "k-fin"]
    assert a and a[0]["kind"] == "lost", a
    # and the schedule goes on with new runs
    srv2.wait_for(lambda: srv2.runs("k-fin", status="succeeded") or
                  [x for x in srv2.runs("k-fin", status="running")
                   if x["run_id"] != first["run_id"]], 10, what="a new run after the adopted one")


@pytest.mark.sqlite_only
def test_full_disk_refuses_changes_with_507_and_loses_no_result(server, small_disk):
    srv = server(data=small_disk / "data")
    try:
        srv.add_job(name="df-tick", schedule="* * * * * ?", command="true")
        srv.wait_for(lambda: len(srv.runs("df-tick")) >= 2, 10, what="ticks")
        fill(small_disk / "fill")
        full_from = time.time()
        before = {j["name"]: j["version"] for j in srv.jobs()}

        r = srv.api("POST", "/jobs", json={"name": "df-new", "command": "true"})
        assert r.status_code == 507, r.text
        err = r.json()["error"]
        assert err["code"] == "no_space"
        assert 'job "df-new"' in err["message"] and "disk is full" in err["message"], err
        assert "nothing was changed" in err["message"]
        r = srv.api("PATCH", "/jobs/df-tick", json={"description": "x"})
        assert r.status_code == 507 and r.json()["error"]["code"] == "no_space", r.text
        c = srv.cli("job", "add", "df-cli", "--command", "true")
        assert c.returncode == 3 and "disk is full" in c.stderr, c.stderr
        assert {j["name"]: j["version"] for j in srv.jobs()} == before

        def store_alert():
            rows = [a for a in srv.alerts()["abnormal_resources"] if a["resource"] == "store"]
            return rows[0] if rows else None
        a = srv.wait_for(store_alert, 10, what="the store alert")
        assert "full" in a["reason"] and a["since_ms"] >= full_from * 1000 - 2000, a
        # runs go on while the store cannot keep them: the history cannot show them yet, the
        # server's log (on another disk) does
        logged = srv.log_text().count("run ended job=df-tick ")
        srv.wait_for(lambda: srv.log_text().count("run ended job=df-tick ") >= logged + 3, 15,
                     what="three runs of df-tick to end while the store is failing")
        os.unlink(small_disk / "fill")
        freed_at = time.time()

        srv.wait_for(lambda: store_alert() is None, 15, what="the store alert to clear")
        srv.add_job(name="df-new", command="true")
        runs = srv.runs("df-tick")
        during = [r for r in runs if a["since_ms"] / 1000 - 0.5 <= r["scheduled_at"] < freed_at]
        assert len(during) >= 2, "results of runs made while the store failed are kept"
        assert all(r["status"] == "succeeded" for r in during), during
        secs = sorted(r["scheduled_at"] for r in runs)
        assert secs == list(range(secs[0], secs[0] + len(secs))), f"a fire is missing: {secs}"
    finally:
        if srv.running():
            assert srv.stop() == 0


def test_sigterm_does_not_wait_for_a_pending_retry(server):
    srv = server()
    srv.add_job(name="later", command="exit 1", retries=2, retry_backoff=3600)
    rid = srv.run_now("later")["runs"][0]["run_id"]
    assert srv.wait_run(rid)["status"] == "failed"
    t0 = time.monotonic()
    assert srv.stop(signal.SIGTERM, timeout=10) == 0
    assert time.monotonic() - t0 < 30, "shutdown waited for a retry an hour away"
    srv2 = server.restart(srv)
    first = srv2.get_run(rid)
    retry = srv2.get_run(first["retry_run_id"])
    assert (retry["status"], retry["trigger"], retry["attempt"]) == ("interrupted", "retry", 2)
    assert retry["fire_id"] == first["fire_id"] and retry["started_at_ms"] == 0
    assert "shut down before the retry" in retry["error"], retry
    assert len(srv2.runs("later")) == 2 and not srv2.skips("later")
    a = [x for x in srv2.alerts()["abnormal_jobs"] if x["job"] == "later"]
    assert a and a[0]["kind"] == "failed", "the fire failed for good: an alert"
    assert "retry attempt 2 not made" in a[0]["reason"], a


def test_open_alerts_survive_a_restart_and_still_clear(server):
    srv = server()
    srv.add_job(name="al-fail", command="exit 1")
    srv.add_job(name="al-slow", command="sleep 60", timeout_alarm=1)
    srv.wait_run(srv.run_now("al-fail")["runs"][0]["run_id"])
    slow = srv.run_now("al-slow")["runs"][0]["run_id"]
    srv.wait_for(lambda: srv.alerts()["timed_out_shards"], 10, what="the timeout alarm")
    assert [a["job"] for a in srv.alerts()["abnormal_jobs"]] == ["al-fail"]
    srv.kill9()
    srv2 = server.restart(srv)
    assert srv2.wait_run(slow)["status"] == "interrupted"
    srv2.wait_for(lambda: not srv2.alerts()["timed_out_shards"], 10,
                  what="the alarm of the run killed at restart to clear")
    assert [a["job"] for a in srv2.alerts()["abnormal_jobs"]] == ["al-fail"], \
        "an open alert stays open across a restart"
    srv2.patch("al-fail", command="true")
    assert srv2.wait_run(srv2.run_now("al-fail")["runs"][0]["run_id"])["status"] == "succeeded"
    srv2.wait_for(lambda: not srv2.alerts()["abnormal_jobs"], 10,
                  what="the failure alert raised before the restart to clear after a success")


def test_shutdown_refuses_new_work_and_ends_followers(server):
    srv = server("--shutdown-grace", "2")
    srv.add_job(name="chatty", command="while :; do echo tick; sleep 0.2; done")
    srv.add_job(name="other", command="true")
    rid = srv.run_now("chatty")["runs"][0]["run_id"]
    running_run(srv, rid)
    follower = subprocess.Popen([srv.cli_binary, "run", "logs", "-f", rid, "--data",
                                 str(srv.data)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    assert follower.stdout.readline() == "tick\n"
    srv.proc.send_signal(signal.SIGTERM)
    # the loop logs this as it starts the shutdown, after which every change is refused
    wait_for(lambda: " INFO shutting down signal=TERM" in srv.log_text(), 10,
             what="the server to begin its shutdown")
    r = srv.api("POST", "/jobs/other/run")
    assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable", r.text
    assert "shutting down" in r.json()["error"]["message"]
    assert srv.proc.wait(10) == 0
    out, err = follower.communicate(timeout=10)
    assert follower.returncode in (0, 3), err
    if follower.returncode == 3:
        assert "server" in err, err
    srv2 = server.restart(srv)
    assert srv2.get_run(rid)["status"] == "interrupted"
    assert srv2.runs("other") == [], "the refused run-now made nothing"


def test_an_adopted_job_that_ended_while_the_server_was_down_is_recorded_lost(server):
    srv = server()
    srv.add_job(name="quick-fin", on_executor_death="finish", command="sleep 1; echo done")
    rid = srv.run_now("quick-fin")["runs"][0]["run_id"]
    run = running_run(srv, rid)
    srv.kill9()
    wait_for(lambda: not pid_alive(run["pid"]), 10, what="the run to end while nobody watches")
    srv2 = server.restart(srv)
    r = srv2.wait_run(rid, 10)
    assert r["status"] == "lost", r
    assert "exit status unknown" in r["error"]
    assert r["output"] == "done\n", "its output is still collected"
    a = [x for x in srv2.alerts()["abnormal_jobs"] if x["job"] == "quick-fin"]
    assert a and a[0]["kind"] == "lost", srv2.alerts()


def test_catch_up_after_downtime_runs_the_oldest_fires_first(server):
    srv = server()
    srv.add_job(name="cu", schedule="* * * * * ?", misfire="catch_up", catch_up_max=2,
                misfire_threshold=1, overlap="queue", command="sleep 0.1")
    srv.wait_for(lambda: srv.runs("cu", status="succeeded"), 10, what="a first run")
    assert srv.stop() == 0
    stopped_at = time.time()
    # kept: the downtime is the scenario (at least three fires more than the 1 s threshold
    # late), and with the server stopped there is no state to wait for
    time.sleep(5)
    srv2 = server.restart(srv)
    made = [i for i in srv2.history(job="cu") if i["trigger"] == "schedule"]
    last = max(i["scheduled_at"] for i in made if i["scheduled_at"] <= stopped_at)
    late = srv2.wait_for(lambda: (lambda rs: rs if len(rs) == 2 and all(
        r["status"] == "succeeded" for r in rs) else None)(
        [r for r in srv2.runs("cu") if r["trigger"] == "misfire"]), 15, what="two catch-up runs")
    late.sort(key=lambda r: r["started_at_ms"])
    assert [r["scheduled_at"] for r in late] == [last + 1, last + 2], (last, late)
    skipped = [k for k in srv2.skips("cu") if k["reason"] == "misfire"]
    assert len(skipped) == 1 and skipped[0]["scheduled_at"] == last + 3, skipped
    srv2.wait_for(lambda: [r for r in srv2.runs("cu") if r["trigger"] == "schedule" and
                           r["scheduled_at"] > last + 3], 10, what="on-time fires again")
    ids = [(i["fire_id"], i.get("attempt")) for i in srv2.history(job="cu")]
    assert len(ids) == len(set(ids))


def test_a_retry_pending_at_kill9_is_recorded_interrupted_after_restart(server):
    srv = server()
    srv.add_job(name="backoff", command="exit 1", retries=1, retry_backoff=60)
    rid = srv.run_now("backoff")["runs"][0]["run_id"]
    retry_id = srv.wait_for(lambda: srv.get_run(rid)["retry_run_id"], 10, what="the retry")
    assert srv.get_run(retry_id)["status"] == "queued"
    srv.kill9()
    srv2 = server.restart(srv)
    r = srv2.get_run(retry_id)
    assert r["status"] == "interrupted" and "before the run started" in r["error"], r


def test_an_adopted_run_still_meets_its_timeout_and_alarm(server):
    srv = server()
    srv.add_job(name="fin-timeout", on_executor_death="finish", timeout=4, timeout_alarm=2,
                kill_grace=1, command="sleep 30")
    rid = srv.run_now("fin-timeout")["runs"][0]["run_id"]
    run = running_run(srv, rid)
    srv.kill9()
    srv2 = server.restart(srv)
    assert srv2.get_run(rid)["status"] == "running", "adopted"
    srv2.wait_for(lambda: [t for t in srv2.alerts()["timed_out_shards"]
                           if t["job"] == "fin-timeout"], 10, what="the alarm of the adopted run")
    r = srv2.wait_run(rid, 15)
    assert r["status"] == "timeout", r
    assert r["ended_at_ms"] - run["started_at_ms"] < 20000, "killed at its timeout, not at the end of sleep 30"
    wait_for(lambda: not pid_alive(run["pid"]), 10, what="the adopted process gone")
    srv2.wait_for(lambda: not srv2.alerts()["timed_out_shards"], 10, what="the alarm to clear")
