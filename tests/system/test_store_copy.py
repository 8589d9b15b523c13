"""
`tethys store copy --from DIR --to URL` (issue 10): an embedded installation moved to
PostgreSQL, against the private PostgreSQL 15 of the `postgres` fixture.

- a real server on SQLite with jobs (several versions, a secret, a domain with a job limit,
  a calendar that skips fires), a token made with `tethys token create`, runs with output
  and skipped fires; stopped; copied; started with --db: the jobs and every version, the
  token, history and outputs are the same, the domain's limit still counts its jobs, and
  runs go on;
- refusals: a server running (naming its pid), a directory that already belongs to
  PostgreSQL, a target that is not empty, a URL that is not one or holds a password.  (A
  spool with undelivered results is not made here: a stopped server leaves none, and a
  faked checkpoint does not bring delivered results back.)

Every server here names its store itself: once per run of the suite is enough.
"""
import datetime
import json

import pytest

from conftest import STORE
from test_spool import Locked, spool_of

pytestmark = pytest.mark.skipif(STORE == "postgresql", reason="run in the default pass already")


def copy(run, data, url, env):
    return run("store", "copy", "--from", str(data), "--to", url, env=env, timeout=120)


def everything(srv, names):
    """What must survive the copy, read through the API."""
    hist = srv.ok("GET", "/history?limit=1000")["items"]
    outputs = {i["run_id"]: srv.get_run(i["run_id"])["output"] for i in hist if i["kind"] == "run"}
    return {
        "jobs": {j["name"]: {k: v for k, v in j.items() if k != "state"} for j in srv.jobs()},
        "versions": {n: srv.ok("GET", f"/jobs/{n}/versions") for n in names},
        "domains": srv.ok("GET", "/domains")["items"],
        "calendars": srv.ok("GET", "/calendars")["items"],
        "history": hist,
        "outputs": outputs,
    }


def test_an_embedded_store_moves_to_postgresql(server, postgres, run):
    srv = server()
    days = [str(datetime.date.today() + datetime.timedelta(days=d)) for d in (-1, 0, 1)]
    srv.ok("POST", "/calendars", json={"name": "closed", "dates": days}, status=201)
    srv.ok("POST", "/domains", json={"path": "bank", "limits": {"max_jobs": 2}}, status=201)
    srv.add_job(name="pay", domain="bank", schedule="0 0 1 1 *", command="printf 'paid\\n'",
                secret_env={"DB_PASSWORD": "hunter2"})
    srv.patch("pay", command="printf 'paid %s\\n' \"$DB_PASSWORD\"")
    srv.patch("pay", description="the second change")
    srv.add_job(name="skipper", schedule="* * * * * ?", command="true",
                calendars={"skip": ["closed"], "only": []})
    r = srv.cli("token", "create", "ci")
    assert r.returncode == 0, r.stderr
    ci = r.stdout.strip()
    for _ in range(3):
        srv.wait_run(srv.run_now("pay")["runs"][0]["run_id"])
    srv.wait_for(lambda: len(srv.skips("skipper")) >= 2, 10, what="skipped fires")
    srv.patch("skipper", enabled=False)
    before = everything(srv, ["pay", "skipper"])
    assert before["outputs"] and set(before["outputs"].values()) == {"paid ********\n"}
    assert srv.stop() == 0

    url = postgres.new_db()
    r = copy(run, srv.data, url, postgres.env())
    assert r.returncode == 0, r.stderr
    assert f"tethys server --data {srv.data} --db {url}" in r.stdout, r.stdout
    for table in ("objects", "object_versions", "tokens", "secrets", "runs", "skips"):
        assert table in r.stdout, r.stdout
    assert (srv.data / "store.url").read_text().strip() == url
    assert (srv.data / "tethys.db").exists()
    n = int(postgres.psql("SELECT count(*) FROM runs", db=url.rsplit("/", 1)[1]))
    assert n == len(before["outputs"]), n
    # copying again into the same database: refused, it is not empty (and the directory
    # belongs to PostgreSQL now anyway)
    r = copy(run, srv.data, url, postgres.env())
    assert r.returncode == 2 and "already keeps its store in" in r.stderr, r.stderr

    # the directory now needs --db
    r = srv.cli("server", "--listen", "127.0.0.1:0", timeout=30)
    assert r.returncode == 2 and f"--db {url}" in r.stderr, r.stderr
    pg = server.restart(srv, "--db", url, env=postgres.env())
    after = everything(pg, ["pay", "skipper"])
    for k in before:
        assert after[k] == before[k], k
    assert len(after["versions"]["pay"]["items"]) >= 3, after["versions"]["pay"]
    # the token made with `tethys token create` still opens the API
    r = pg.api("GET", "/jobs", token=False, headers={"Authorization": f"Bearer {ci}"})
    assert r.status_code == 200, r.text
    # the domain's limit counts the copied job: one more fits, the next does not
    pg.add_job(name="pay2", domain="bank", schedule="0 0 1 1 *", command="true")
    r = pg.api("POST", "/jobs", json={"name": "pay3", "domain": "bank", "schedule": "0 0 1 1 *",
                                      "command": "true"})
    assert r.status_code == 400 and "at most 2 jobs" in r.json()["error"]["message"], r.text
    # runs go on, with the secret
    run_id = pg.run_now("pay")["runs"][0]["run_id"]
    done = pg.wait_run(run_id)
    assert done["status"] == "succeeded" and done["output"] == "paid ********\n", done
    assert len(pg.runs("pay")) == len(before["outputs"]) + 1


def test_store_copy_refusals(server, postgres, run, tmp_path):
    env = postgres.env()
    url = postgres.new_db()
    # not a URL, a password in it, no such directory, no store in it
    r = copy(run, tmp_path, "/var/lib/x.db", env)
    assert r.returncode == 2 and "is not a postgresql:// URL" in r.stderr, r.stderr
    r = copy(run, tmp_path / "nope", url, env)
    assert r.returncode == 2 and "is not a directory" in r.stderr, r.stderr
    r = copy(run, tmp_path, url, env)
    assert r.returncode == 2 and "has no store to copy" in r.stderr, r.stderr

    srv = server()
    srv.add_job(name="one", schedule="0 0 1 1 *", command="echo one")
    srv.wait_run(srv.run_now("one")["runs"][0]["run_id"])
    # the server is running: refused, naming its pid
    r = copy(run, srv.data, url, env)
    assert r.returncode == 2 and f"running tethys server (pid {srv.pid})" in r.stderr, r.stderr
    assert srv.stop() == 0

    bad = url.replace("://", "://tethys:secret@", 1) if "@" not in url else \
        url.replace("@", ":secret@", 1)
    r = copy(run, srv.data, bad, env)
    assert r.returncode == 2 and "PGPASSWORD" in r.stderr and "secret" not in r.stderr, r.stderr

    # a target that is not empty: refused, and nothing written
    other = server(data=tmp_path / "other")
    other.add_job(name="x", schedule="0 0 1 1 *", command="true")
    assert other.stop() == 0
    full = postgres.new_db()
    assert copy(run, other.data, full, env).returncode == 0
    r = copy(run, srv.data, full, env)
    assert r.returncode == 2 and "is not empty" in r.stderr and "in objects" in r.stderr, r.stderr
    assert not (srv.data / "store.url").exists()

    # a directory that belongs to PostgreSQL already
    r = copy(run, other.data, postgres.new_db(), env)
    assert r.returncode == 2 and "already keeps its store in" in r.stderr, r.stderr

    # and the refused directory still copies into an empty database
    r = copy(run, srv.data, url, env)
    assert r.returncode == 0, r.stderr
    assert "--db " + url in r.stdout


def test_store_copy_refuses_results_still_in_the_spool(server, postgres, run):
    """Results the SQLite store never got (a database held locked, then kill -9) belong to
    it: the copy refuses until a server has delivered them, and writes nothing."""
    env = postgres.env()
    url = postgres.new_db()
    srv = server()
    srv.add_job(name="held", schedule="* * * * * ?", command="true")
    srv.wait_for(lambda: srv.runs("held"), 5, what="a first run")
    lock = Locked(srv.data / "tethys.db")
    try:
        srv.wait_for(lambda: spool_of(srv)["pending"] >= 2, 30, what="results in the spool")
        srv.kill9()
    finally:
        lock.release()
    r = copy(run, srv.data, url, env)
    assert r.returncode == 2 and "run results not yet in" in r.stderr, r.stderr
    assert "without --db" in r.stderr, r.stderr
    assert not (srv.data / "store.url").exists()
    assert postgres.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                         url.rsplit("/", 1)[1]).strip() == "0"
    # a server started once delivers them; then the copy goes through
    srv2 = server.restart(srv)
    srv2.wait_for(lambda: spool_of(srv2)["pending"] == 0, 30, what="the spool delivered")
    assert srv2.stop() == 0
    r = copy(run, srv.data, url, env)
    assert r.returncode == 0, r.stderr
    assert (srv.data / "store.url").read_text().strip() == url
