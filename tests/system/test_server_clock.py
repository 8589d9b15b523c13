"""The wall clock stepped under a running server (the test build's clock hook): fires
skipped by a forward step follow each job's misfire policy (skip, run once, catch up at
most N, oldest first), with an alert that clears when on-time fires resume; a backward step
never makes a fire twice, even when a job is edited meanwhile."""
import collections
import datetime
import time

from conftest import wait_for


def misfire_alert(srv, job):
    rows = [a for a in srv.alerts()["abnormal_jobs"] if a["job"] == job and a["kind"] == "misfire"]
    return rows[0] if rows else None


def fire_ids_made(sink):
    """Fire ids the job itself saw (one line per run): a repeat means a fire ran twice."""
    lines = sink.read_text().split() if sink.exists() else []
    return lines, [k for k, n in collections.Counter(lines).items() if n > 1]


def test_clock_steps_forward_then_back(server, tmp_path):
    srv = server(test_hooks=True)
    every5 = {"schedule": "*/5 * * * * ?", "misfire_threshold": 1, "command": "true"}
    srv.add_job(name="mf-skip", misfire="skip", **every5)
    srv.add_job(name="mf-once", misfire="run_once", **every5)
    srv.add_job(name="mf-catch", misfire="catch_up", catch_up_max=3, overlap="queue",
                **dict(every5, command="sleep 0.2"))
    sink = tmp_path / "fires.txt"
    srv.add_job(name="mf-tick", schedule="* * * * * ?", misfire_threshold=1,
                command=f"echo $TETHYS_FIRE_ID >> {sink}")

    # jump just after a five-second boundary, so that nothing is due for a while
    wait_for(lambda: 0.3 < time.time() % 5 < 2.5, 6, 0.05, "a quiet moment")
    nf = datetime.datetime.fromisoformat(srv.job("mf-catch")["state"]["next_fire"])
    first_missed = int(nf.timestamp())
    real = int(time.time())
    offset = 120 + (2 - (real + 120)) % 5  # now + offset is 2 s past a boundary: 2 s late
    srv.clock(offset)
    new_now = real + offset
    last_missed = new_now - (new_now % 5)
    n_missed = (last_missed - first_missed) // 5 + 1
    assert 23 <= n_missed <= 26

    # skip: one record for the whole run of missed fires, and an alert
    k = srv.wait_for(lambda: srv.skips("mf-skip"), 3, what="the misfire record")
    assert len(k) == 1 and k[0]["reason"] == "misfire", k
    assert f"{n_missed} fire(s)" in k[0]["detail"] and "misfire policy skip" in k[0]["detail"]
    assert k[0]["scheduled_at"] == first_missed
    assert [r for r in srv.runs("mf-skip") if r["scheduled_at"] >= first_missed] == [], \
        "no run for skipped misfires"
    # run once: the latest late fire runs; the rest are one skip record
    late = lambda job: [r for r in srv.runs(job) if r["scheduled_at"] >= first_missed]  # noqa
    once = srv.wait_for(lambda: late("mf-once"), 3, what="the run-once run")
    assert len(once) == 1 and once[0]["trigger"] == "misfire", once
    assert once[0]["scheduled_at"] == last_missed
    assert srv.wait_run(once[0]["run_id"])["status"] == "succeeded"
    k = srv.skips("mf-once")
    assert len(k) == 1 and k[0]["reason"] == "misfire" and k[0]["scheduled_at"] == first_missed
    # catch up 3: the three oldest run, oldest first; the rest recorded skipped
    catch = srv.wait_for(lambda: (lambda rs: rs if len(rs) == 3 and all(
        r["status"] == "succeeded" for r in rs) else None)(late("mf-catch")), 5,
        what="three catch-up runs")
    catch.sort(key=lambda r: r["started_at_ms"])
    assert [r["scheduled_at"] for r in catch] == [first_missed + 5 * i for i in range(3)]
    assert all(r["trigger"] == "misfire" for r in catch)
    k = srv.skips("mf-catch")
    assert len(k) == 1 and k[0]["scheduled_at"] == first_missed + 15, k
    assert f"{n_missed - 3} fire(s)" in k[0]["detail"]
    # every policy raised a misfire alert, still open before the next on-time fire
    for job in ("mf-skip", "mf-once", "mf-catch"):
        a = misfire_alert(srv, job)
        assert a is not None, (job, srv.alerts())
        assert a["reason"] and a["job_level"] == 5
    # on-time fires resume and the alerts clear
    srv.wait_for(lambda: all(any(r["trigger"] == "schedule" and r["scheduled_at"] > last_missed
                                 for r in srv.runs(j)) for j in ("mf-skip", "mf-once", "mf-catch")),
                 6, what="on-time fires after the step")
    srv.wait_for(lambda: not any(misfire_alert(srv, j) for j in ("mf-skip", "mf-once",
                                                                 "mf-catch", "mf-tick")),
                 3, what="the misfire alerts to clear")

    # step back a minute: nothing is made again, not even after an edit reschedules the job
    srv.wait_for(lambda: len(srv.runs("mf-tick", status="succeeded")) >= 2, 4, what="ticks")
    before = {r["run_id"] for r in srv.runs("mf-tick")}
    made = max(r["scheduled_at"] for r in srv.runs("mf-tick"))
    srv.clock(offset - 60)
    srv.patch("mf-tick", description="edited while the clock is a minute behind")
    srv.patch("mf-once", description="edited too")
    time.sleep(1.5)
    srv.clock(offset - 3)  # back among the fires that ran
    srv.patch("mf-tick", description="edited while the clock is 3 s behind")
    time.sleep(1.5)
    lines, repeats = fire_ids_made(sink)
    assert not repeats, f"fires made twice after the clock went back: {repeats}"
    again = [r["fire_id"] for r in srv.runs("mf-tick") if r["run_id"] not in before]
    assert not again, f"fires of instants already past (run or skipped) were made: {again}"
    nf = datetime.datetime.fromisoformat(srv.job("mf-tick")["state"]["next_fire"])
    assert nf.timestamp() > made - 1, "the next fire is after the last one made"
    # and forward again: the ticks resume, still without repeats
    srv.clock(offset)
    srv.wait_for(lambda: max(r["scheduled_at"] for r in srv.runs("mf-tick")) > made + 1, 4,
                 what="ticks after the clock came back")
    lines, repeats = fire_ids_made(sink)
    assert not repeats, repeats
    ids = [(i["fire_id"], i.get("attempt")) for i in srv.history()]
    assert len(ids) == len(set(ids)), "a fire id appears twice in the history"
