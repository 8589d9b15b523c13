"""
PostgreSQL as the store (issue 10), against a private PostgreSQL 15 on 127.0.0.1 that the
`postgres` fixture starts (tests/pg/pg.sh) and real servers with --db:

- the database stopped for 30 s under a job firing every second: every fire is in history
  exactly once, none twice, the results having waited in the executor's spool;
- the same across a restart of the server while the database is down: the server waits
  for it, saying so, and the fires it could not make are recorded as missed;
- two servers on one database: concurrent edits of one job, one gets 412 and no update is
  lost; concurrent creates through both against a domain's job limit stay exact;
- a data directory belongs to one store: started against another one it is refused.

These run in the default pass (TETHYS_TEST_STORE unset); `make system-pg` runs the rest of
the system tests against PostgreSQL too.
"""
import json
import threading
import time

import pytest

from conftest import STORE, error_of
from test_spool import every_fire_once, spool_of, store_row


# every server here names its store itself: once per run of the suite is enough
pytestmark = pytest.mark.skipif(STORE == "postgresql", reason="run in the default pass already")


def pg_server(server, postgres, *flags, db=None, data=None):
    """A server whose store is a database of its own in the run's PostgreSQL (or db)."""
    db = db or postgres.new_db()
    return server("--db", db, *flags, env=postgres.env(), data=data)


def test_thirty_seconds_of_postgresql_down_lose_and_double_no_fire(server, postgres):
    srv = pg_server(server, postgres)
    srv.add_job(name="tick", schedule="* * * * * ?", command="echo at $TETHYS_SCHEDULED_EPOCH")
    first = srv.wait_for(lambda: srv.runs("tick"), 5, what="a first run")[-1]["scheduled_at"]
    postgres.down()
    down_from = time.time()
    try:
        a = srv.wait_for(lambda: store_row(srv), 20, what="the store alert")
        assert "spool" in a["reason"], a
        # the database stays down for 30 s; the job keeps firing and its results wait
        while time.time() < down_from + 30:
            time.sleep(1)
        sp = spool_of(srv)
        assert sp["failing"] and sp["pending"] >= 25, sp
    finally:
        postgres.up()
    back = time.time()
    srv.wait_for(lambda: spool_of(srv)["pending"] == 0, 60, what="every spooled result stored")
    srv.wait_for(lambda: store_row(srv) is None, 30, what="the store alert to clear")
    last = int(back) - 1
    srv.wait_for(lambda: [r for r in srv.runs("tick") if r["scheduled_at"] >= last + 2], 15,
                 what="runs after the database is back")
    items = every_fire_once(srv, "tick", first, last)
    during = [i for i in items if down_from <= i["scheduled_at"] < back]
    assert len(during) >= 25, "the fires made while the database was down are in history"
    for i in during:
        assert i["kind"] == "run" and i["status"] == "succeeded", i
        assert srv.get_run(i["run_id"])["output"] == f"at {i['scheduled_at']}\n", i


def test_server_restarted_while_postgresql_is_down_loses_and_doubles_no_fire(server, postgres):
    srv = pg_server(server, postgres)
    srv.add_job(name="beat", schedule="* * * * * ?", command="true")
    first = srv.wait_for(lambda: srv.runs("beat"), 5, what="a first run")[-1]["scheduled_at"]
    box = {}
    starter = threading.Thread(target=lambda: box.update(srv=_restart_slow(server, srv)))
    postgres.down()
    try:
        srv.wait_for(lambda: spool_of(srv)["pending"] >= 3, 30, what="results in the spool")
        srv.kill9()
        # a new server on the same data directory waits for its database, saying so
        starter.start()
        wait_text(srv.log_path.parent, srv.log_path.stem + "-r*.log", "waiting for the store", 30)
    finally:
        postgres.up()
    starter.join(120)
    srv2 = box.get("srv")
    assert srv2 is not None and not isinstance(srv2, Exception), srv2
    assert "the store answers" in srv2.log_text()
    srv2.wait_for(lambda: spool_of(srv2)["pending"] == 0, 60, what="the spool delivered")
    now = time.time()
    srv2.wait_for(lambda: [r for r in srv2.runs("beat") if r["scheduled_at"] > now + 1], 15,
                  what="runs after the restart")
    # the fires while no server ran were made late, within the misfire threshold, or are
    # the misfire policy's skip: a record each way, checked here
    every_fire_once(srv2, "beat", first, int(now))


def _restart_slow(server, srv):
    try:
        return server.restart(srv, timeout=90)
    except Exception as e:  # handed to the test thread, which fails with it
        return e


def wait_text(folder, pattern, text, timeout):
    """Wait until a file in folder matching pattern holds text."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(text in p.read_text(errors="replace") for p in folder.glob(pattern)):
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in {folder}/{pattern} within {timeout} s")


def test_two_servers_on_one_database(server, postgres):
    db = postgres.new_db()
    a = pg_server(server, postgres, db=db)
    a.ok("POST", "/domains", json={"path": "ops", "limits": {"max_jobs": 10}}, status=201)
    a.add_job(name="shared", schedule="0 0 3 * * ?", command="echo v1", enabled=False)
    b = pg_server(server, postgres, db=db)
    assert b.job("shared")["command"] == "echo v1"

    # concurrent edits of one job, both based on version 1: one wins, the other gets 412
    answers = {}

    def edit(srv, cmd):
        answers[cmd] = srv.api("PATCH", "/jobs/shared", json={"command": cmd},
                               headers={"If-Match": '"1"'})

    ts = [threading.Thread(target=edit, args=(s, c)) for s, c in ((a, "echo a"), (b, "echo b"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    codes = sorted(r.status_code for r in answers.values())
    assert codes == [200, 412], {c: (r.status_code, r.text) for c, r in answers.items()}
    winner = next(c for c, r in answers.items() if r.status_code == 200)
    for srv in (a, b):
        got = srv.api("GET", "/jobs/shared")
        assert got.json()["command"] == winner and got.headers["ETag"] == '"2"', got.text
    loser = next(r for r in answers.values() if r.status_code == 412)
    error_of(loser, 412)

    # 20 creates at once through both servers against a limit of 10 jobs: exactly 10 made
    made, refused = [], []

    def create(srv, i):
        r = srv.api("POST", "/jobs", json={"name": f"ops-{i}", "domain": "ops",
                                           "command": "true", "enabled": False})
        (made if r.status_code == 201 else refused).append((i, r.status_code, r.text))

    ts = [threading.Thread(target=create, args=(a if i % 2 else b, i)) for i in range(20)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert len(made) == 10, (made, refused)
    for i, code, text in refused:
        assert code == 400 and 'domain "ops": at most 10 jobs' in json.loads(text)["error"]["message"], text
    for srv in (a, b):
        names = {j["name"] for j in srv.ok("GET", "/jobs?domain=ops&limit=100")["items"]}
        assert names == {f"ops-{i}" for i, _, _ in made}


def test_a_data_directory_belongs_to_one_store(server, postgres):
    db = postgres.new_db()
    srv = pg_server(server, postgres, db=db)
    assert (srv.data / "store.url").read_text().strip() == db
    assert srv.stop() == 0
    # without --db: refused, naming the store and the way to start it
    r = srv.cli("server", "--listen", "127.0.0.1:0", timeout=30)
    assert r.returncode == 2, r.stderr
    assert f"keeps its store in {db}" in r.stderr and f"--db {db}" in r.stderr, r.stderr
    # another database: refused
    other = postgres.new_db()
    r = srv.cli("server", "--listen", "127.0.0.1:0", "--db", other, timeout=30)
    assert r.returncode == 2 and f"belongs to the store {db}, not {other}" in r.stderr, r.stderr
    assert not (srv.data / "tethys.db").exists()
    # backup and restore are SQLite's: they point at PostgreSQL's own tools
    for argv in (("backup", str(srv.data / "x.db")), ("restore", str(srv.data / "x.db"))):
        r = srv.cli(*argv)
        assert r.returncode == 2 and "keeps its store in PostgreSQL" in r.stderr, r.stderr
        assert "pg_dump" in r.stderr, r.stderr
    # an embedded data directory is not silently abandoned for PostgreSQL
    emb = server()
    assert emb.stop() == 0
    r = emb.cli("server", "--listen", "127.0.0.1:0", "--db", other, timeout=30)
    assert r.returncode == 2 and "holds an embedded store" in r.stderr, r.stderr
    assert "tethys store copy" in r.stderr and not (emb.data / "store.url").exists()


def test_bad_db_urls_are_refused_with_the_field(run, tmp_path):
    r = run("server", "--data", str(tmp_path / "d"), "--db", "/var/lib/x.db")
    assert r.returncode == 2 and "--db: expected a PostgreSQL URL" in r.stderr, r.stderr
    r = run("server", "--data", str(tmp_path / "d"), "--listen", "127.0.0.1:0", "--db",
            "postgresql://u:secret@127.0.0.1:1/x")
    assert r.returncode == 2 and "PGPASSWORD" in r.stderr and "secret" not in r.stderr, r.stderr
