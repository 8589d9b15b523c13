"""
Results are never lost (issue 9, section 2): while the history store cannot be written -
the disk full, the database locked by someone else - every result waits in the executor's
spool (DATA/spool), the alert dashboard says so with the spool's figures, and when the store
is back every fire is in history exactly once, none twice; also when the server is killed
with -9 while results sit in the spool.  Past its size limit the spool keeps recording runs
without their output.
"""
import os
import re
import signal
import sqlite3
import time

import pytest

from conftest import fill, tmpfs


def fires_covered(items):
    """{second: [items]} for an every-second job: a run covers its scheduled second; a
    skipped range ("N fire(s) up to ...", the misfire policy's record) covers N seconds."""
    covered = {}
    for i in items:
        n = 1
        if i["kind"] == "skip":
            m = re.search(r"(\d+) fire\(s\) up to", i.get("detail") or "")
            n = int(m.group(1)) if m else 1
        for k in range(n):
            covered.setdefault(i["scheduled_at"] + k, []).append(i)
    return covered


def every_fire_once(srv, job, first, last):
    """Check that each second from first to last is in history exactly once."""
    items = [i for i in srv.history(job=job) if first <= i["scheduled_at"] <= last]
    covered = fires_covered(items)
    missing = [t for t in range(first, last + 1) if t not in covered]
    doubled = {t: v for t, v in covered.items() if first <= t <= last and len(v) > 1}
    assert not missing, f"fires with no record: {missing}"
    assert not doubled, f"fires recorded twice: {doubled}"
    ids = [(i["fire_id"], i.get("attempt")) for i in srv.history(job=job)]
    assert len(ids) == len(set(ids)), "a fire made twice"
    return items


def spool_of(srv):
    return srv.ok("GET", "/executors")["items"][0]["spool"]


def store_row(srv):
    rows = [a for a in srv.alerts()["abnormal_resources"] if a["resource"] == "store"]
    return rows[0] if rows else None


class Locked:
    """The server's database held by another process's write transaction (as a backup tool
    or an operator's sqlite3 shell can): the server's writes fail with 'busy'."""

    def __init__(self, path):
        self.db = sqlite3.connect(str(path), timeout=10, isolation_level=None)
        self.db.execute("BEGIN IMMEDIATE")

    def release(self):
        self.db.execute("ROLLBACK")
        self.db.close()


@pytest.fixture
def disk(tmp_path):
    """A 48 MiB tmpfs of the test's own: room for a data directory, and small enough to
    fill."""
    yield from tmpfs(tmp_path / "disk", "48m")


@pytest.mark.sqlite_only
def test_thirty_seconds_of_full_disk_lose_and_double_no_fire(server, disk):
    srv = server(data=disk / "data")
    try:
        srv.add_job(name="full", schedule="* * * * * ?", command="true")
        first = srv.wait_for(lambda: srv.runs("full"), 5, what="a first run")[-1]["scheduled_at"]
        fill(disk / "fill")
        full_from = time.time()
        a = srv.wait_for(lambda: store_row(srv), 20, what="the store alert")
        assert "cannot be written" in a["reason"] and "spool" in a["reason"], a
        assert a["since_ms"] >= full_from * 1000 - 2000, a
        # the disk stays full for 30 s; the job keeps firing meanwhile
        while time.time() < full_from + 30:
            time.sleep(1)
        sp = spool_of(srv)
        assert sp["pending"] >= 25, sp  # about a result a second waited
        (disk / "fill").unlink()
        freed = time.time()
        srv.wait_for(lambda: spool_of(srv)["pending"] == 0, 30,
                     what="every spooled result in the store")
        srv.wait_for(lambda: store_row(srv) is None, 15, what="the store alert to clear")
        last = int(freed) - 1
        srv.wait_for(lambda: [r for r in srv.runs("full") if r["scheduled_at"] >= last + 2], 10,
                     what="runs after the disk has room again")
        items = every_fire_once(srv, "full", first, last)
        during = [i for i in items if full_from <= i["scheduled_at"] < freed]
        assert len(during) >= 25, "the fires made while the disk was full are in history"
        assert all(i["kind"] == "run" and i["status"] == "succeeded" for i in during), during
    finally:
        if (disk / "fill").exists():
            (disk / "fill").unlink()
        if srv.running():
            assert srv.stop() == 0


@pytest.mark.sqlite_only
def test_kill9_while_results_wait_in_the_spool_loses_and_doubles_nothing(server):
    srv = server()
    srv.add_job(name="held", schedule="* * * * * ?", command="echo tick $TETHYS_SCHEDULED_EPOCH")
    first = srv.wait_for(lambda: srv.runs("held"), 5, what="a first run")[-1]["scheduled_at"]
    lock = Locked(srv.data / "tethys.db")
    try:
        # deliveries now wait for the database's busy timeout and fail: results pile up
        sp = srv.wait_for(lambda: (lambda s: s if s["failing"] and s["pending"] >= 4 else None)(
            spool_of(srv)), 30, what="results waiting in the spool")
        assert "busy" in sp["error"] or "locked" in sp["error"], sp
        a = srv.wait_for(lambda: store_row(srv), 15, what="the store alert")
        assert re.search(r"\d+ results \(\d+ KiB\) wait in the spool, the oldest for \d+ s",
                         a["reason"]), a
        assert a["pending"] >= 4 and a["pending_bytes"] > 0, a
        pending = spool_of(srv)["pending"]
        killed_at = time.time()
        srv.kill9()
    finally:
        lock.release()
    # the spool holds what the store never got
    segs = sorted((srv.data / "spool").glob("seg-*.log"))
    assert segs and sum(p.stat().st_size for p in segs) > 0
    srv2 = server.restart(srv)
    srv2.wait_for(lambda: spool_of(srv2)["pending"] == 0, 30, what="the spool delivered")
    restarted = time.time()
    srv2.wait_for(lambda: [r for r in srv2.runs("held") if r["scheduled_at"] > restarted + 1],
                  10, what="runs after the restart")
    items = every_fire_once(srv2, "held", first, int(restarted))
    ran = [i for i in items if i["kind"] == "run" and i["scheduled_at"] < killed_at - 1]
    assert len(ran) >= pending // 3 - 1, "the runs that were only in the spool are in history"
    for r in ran:
        # a run the kill caught before its end is lost (or never started: interrupted)
        assert r["status"] in ("succeeded", "lost", "interrupted"), r
        if r["status"] == "succeeded":
            assert srv2.get_run(r["run_id"])["output"] == f"tick {r['scheduled_at']}\n", r
    # the fires while the server was down ran late (within the misfire threshold) or are
    # the misfire policy's skip: a record either way, never a silent gap (checked above)
    for i in items:
        if i["kind"] == "skip":
            assert i["reason"] == "misfire" and killed_at - 1 <= i["scheduled_at"] <= restarted, i


@pytest.mark.sqlite_only
def test_past_its_limit_the_spool_keeps_runs_and_drops_their_output(server):
    srv = server("--spool-max", "1")
    srv.add_job(name="chatty", shards=24,
                command="head -c 60000 /dev/zero | tr '\\0' x; echo; echo shard $TETHYS_SHARD")
    lock = Locked(srv.data / "tethys.db")
    try:
        out = srv.ok("POST", "/jobs/chatty/run", status=202, timeout=30)
        assert len(out["runs"]) == 24
        sp = srv.wait_for(lambda: (lambda s: s if s["over_limit"] else None)(spool_of(srv)), 30,
                          what="the spool past its limit")
        assert sp["dropped_output"] > 0, sp
        rows = [a for a in srv.alerts()["abnormal_resources"] if a["resource"] == "spool"]
        assert rows and "without their output" in rows[0]["reason"], srv.alerts()
    finally:
        lock.release()
    srv.wait_for(lambda: spool_of(srv)["pending"] == 0, 30, what="the spool delivered")
    runs = {}
    for x in out["runs"]:
        r = srv.wait_run(x["run_id"], 15)
        assert r["status"] == "succeeded", r  # every run is recorded, with how it ended
        runs[r["run_id"]] = r
    kept = [r for r in runs.values() if r["output"]]
    dropped = [r for r in runs.values() if not r["output"]]
    assert kept and dropped, "the first runs keep their output, the later ones lose it"
    for r in kept:
        assert r["output"].endswith(f"shard {r['shard']}\n"), r["output"][-40:]
    for r in dropped:
        assert "output not kept" in (r["error"] or ""), r
    srv.wait_for(lambda: not [a for a in srv.alerts()["abnormal_resources"]
                              if a["resource"] == "spool"], 15, what="the spool alert to clear")


def test_a_run_killed_or_found_dead_after_a_restart_keeps_its_output(server):
    srv = server()
    srv.add_job(name="killed", on_executor_death="kill",
                command="echo before the crash; exec sleep 60")
    srv.add_job(name="died", on_executor_death="finish",
                command="echo before the crash; exec sleep 60")
    k = srv.run_now("killed")["runs"][0]["run_id"]
    d = srv.run_now("died")["runs"][0]["run_id"]
    for rid in (k, d):
        srv.wait_for(lambda rid=rid: srv.get_run(rid)["status"] == "running", 10,
                     what="the run going")
    pid = srv.get_run(d)["pid"]
    srv.wait_for(lambda: b"before" in (srv.data / "runs" / f"{d}.out").read_bytes(), 10,
                 what="its first line written")
    srv.kill9()
    os.kill(pid, signal.SIGKILL)  # the adopted one dies while the server is down
    srv2 = server.restart(srv)
    rk, rd = srv2.wait_run(k, 10), srv2.wait_run(d, 10)
    assert rk["status"] == "interrupted" and rd["status"] == "lost", (rk, rd)
    for r in (rk, rd):
        # the record keeps what the run wrote (it was null while runs/ID.out still held it)
        assert srv2.get_run(r["run_id"])["output"] == "before the crash\n", r
