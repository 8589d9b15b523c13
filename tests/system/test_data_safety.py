"""Change safety and data safety, against the real server and CLI on 127.0.0.1:

- every change of a job is a version with who and when: `GET .../versions`, `tethys job
  history`, `tethys job diff` (field by field), `tethys job restore` (a new version, checked
  like any edit; a stale --if-version is refused with 412 and changes nothing; a deleted
  job comes back), the same API for domains;
- two clients editing one job with the same If-Match: exactly one wins, the other gets 412
  and, re-reading, loses nothing;
- a data directory written by schema version 1 (tests/fixtures/store-v1.db, made by a real
  v1 server) is migrated when the server starts, after a backup beside it, and everything
  in it is served; a directory written by a newer schema is refused, untouched;
- `tethys backup` while a job with 4 shards fires every second and its definition keeps
  changing: each backup, restored into a fresh directory with `tethys restore` and served
  by a new server, has every run, skipped fire, job and version its own database holds,
  and everything that was committed before it began;
- `tethys restore` refuses while a server runs on the directory, without --force over a
  database, and files that are not Tethys backups.
"""
import datetime
import hashlib
import os
import json
import pathlib
import shutil
import sqlite3
import subprocess
import threading
import time

import pytest
import requests

from conftest import error_of, fill, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests/fixtures/store-v1.db"
MANIFEST = json.loads((ROOT / "tests/fixtures/store-v1.json").read_text())

# `who` of a change: the client's address, or the name of the token it used when the
# server knows one (the data directory's token is "default")
WHO = ("127.0.0.1", "default")

SCHEMA = 5  # the schema version this binary writes (store_sqlite.c migrations[])


def versions(srv, name, kind="jobs"):
    return srv.ok("GET", f"/{kind}/{name}/versions")


def read_db(path):
    """What a database file holds, read without touching it (no -wal or -shm made)."""
    db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        q = lambda sql: db.execute(sql).fetchall()  # noqa: E731
        return {
            "schema_version": int(q("SELECT value FROM meta WHERE key = 'schema_version'")[0][0]),
            "objects": {(k, n): v for k, n, v in q("SELECT kind, name, version FROM objects")},
            "versions": {(k, n, v): (op, who) for k, n, v, op, who in q(
                "SELECT kind, name, version, op, who FROM object_versions")},
            "runs": {r: s for r, s in q("SELECT run_id, status FROM runs")},
            "skips": {(f, s) for f, s in q("SELECT fire_id, shard FROM skips")},
        }
    finally:
        db.close()


def api_state(srv):
    """The same facts as served by the API."""
    hist = srv.history()
    runs = {i["run_id"]: i["status"] for i in hist if i["kind"] == "run"}
    skips = {(i["fire_id"], i["shard"]) for i in hist if i["kind"] == "skip"}
    vers = {}
    for j in srv.jobs():
        for v in versions(srv, j["name"])["items"]:
            vers[("job", j["name"], v["version"])] = (v["op"], v["who"])
    return runs, skips, vers


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


# ---- versions, history, diff ---------------------------------------------------------------


def test_versions_history_and_diff(server):
    srv = server()
    srv.add_job(name="nightly", schedule="0 30 2 * * ?", command="echo a", env={"LANG": "C"},
                calendars={"skip": [], "only": []})
    srv.patch("nightly", schedule="0 0 3 * * ?")
    srv.patch("nightly", env={"REGION": "eu"}, retries=2)

    got = versions(srv, "nightly")
    items = got["items"]
    assert [i["version"] for i in items] == [3, 2, 1]
    assert [i["op"] for i in items] == ["update", "update", "create"]
    assert got["current"] == 3
    for i in items:
        assert set(i) == {"version", "op", "at_ms", "at", "who"}
        assert i["who"] in WHO
        at = datetime.datetime.fromisoformat(i["at"])
        assert int(at.timestamp()) == i["at_ms"] // 1000
        assert abs(i["at_ms"] / 1000 - time.time()) < 60
    assert items[0]["at_ms"] >= items[1]["at_ms"] >= items[2]["at_ms"]

    v1 = srv.ok("GET", "/jobs/nightly/versions/1")
    assert v1["version"] == 1 and v1["schedule"] == "0 30 2 * * ?" and v1["env"] == {"LANG": "C"}
    assert "state" not in v1
    cur = srv.job("nightly")
    v3 = srv.ok("GET", "/jobs/nightly/versions/3")
    assert {k: v for k, v in cur.items() if k != "state"} == v3

    # the CLI: history with what each version changed
    r = srv.cli("job", "history", "nightly")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["VERSION", "OP", "AT", "WHO", "CHANGES"]
    assert lines[1].split()[:2] == ["3", "update"] and lines[1].endswith("env.REGION, retries")
    assert lines[2].split()[:2] == ["2", "update"] and lines[2].endswith("schedule")
    assert lines[3].split()[:2] == ["1", "create"] and lines[3].endswith("created")
    assert lines[-1] == "current: version 3"
    r = srv.cli("job", "history", "nightly", "--json")
    assert json.loads(r.stdout) == got

    # diff: one line per field path
    r = srv.cli("job", "diff", "nightly", "1", "3")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        'job "nightly": version 1 -> version 3',
        '+ env.REGION: "eu"',  # in the order of the job's canonical fields
        '  schedule: "0 30 2 * * ?" -> "0 0 3 * * ?"',
        "  retries: 0 -> 2",
    ]
    r = srv.cli("job", "diff", "nightly", "3", "1")
    assert '- env.REGION: "eu"' in r.stdout.splitlines()
    r = srv.cli("job", "diff", "nightly", "3", "3")
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "no differences"
    r = srv.cli("job", "diff", "nightly", "2")  # against the current definition
    assert r.stdout.splitlines()[0] == 'job "nightly": version 2 -> current'
    assert "  retries: 0 -> 2" in r.stdout.splitlines()
    r = srv.cli("job", "diff", "nightly", "1", "2", "--json")
    assert json.loads(r.stdout)["changes"] == [
        {"path": "schedule", "op": "change", "old": "0 30 2 * * ?", "new": "0 0 3 * * ?"}]

    # errors name what is wrong
    r = srv.cli("job", "diff", "nightly", "1", "9")
    assert r.returncode == 2 and 'job "nightly" has no version 9' in r.stderr
    r = srv.cli("job", "diff", "nightly", "one", "2")
    assert r.returncode == 2 and 'V1: "one" is not a version number' in r.stderr
    r = srv.cli("job", "history", "ghost")
    assert r.returncode == 2 and 'no job "ghost", now or ever' in r.stderr
    error_of(srv.api("GET", "/jobs/nightly/versions/x"), 400, "invalid", "version")
    error_of(srv.api("GET", "/jobs/nightly/versions/0"), 400, "invalid", "version")

    # a delete is a version too; its row has no definition
    srv.ok("DELETE", "/jobs/nightly", status=204)
    got = versions(srv, "nightly")
    assert got["items"][0]["version"] == 4 and got["items"][0]["op"] == "delete"
    assert got["items"][0]["who"] in WHO and got["current"] is None
    err = error_of(srv.api("GET", "/jobs/nightly/versions/4"), 404, "not_found", "version")
    assert err["message"] == 'version 4 of job "nightly" is its deletion: it has no definition'
    r = srv.cli("job", "history", "nightly")
    assert r.stdout.splitlines()[1].split()[:2] == ["4", "delete"]
    assert r.stdout.splitlines()[-1].startswith('job "nightly" is deleted')


# ---- restore -------------------------------------------------------------------------------


def test_restore(server):
    srv = server()
    srv.ok("POST", "/calendars", json={"name": "hol", "dates": ["2030-01-01"]}, status=201)
    srv.add_job(name="rj", schedule="0 0 4 * * ?", command="echo one",
                calendars={"skip": ["hol"], "only": []})
    srv.patch("rj", command="echo two", calendars={"skip": [], "only": []})
    srv.ok("POST", "/jobs/rj/disable")
    assert srv.job("rj")["version"] == 3 and srv.job("rj")["state"]["next_fire"] is None

    # restore: a new version with the old definition, and the loop schedules it
    srv.ok("DELETE", "/calendars/hol", status=204)
    r = srv.cli("job", "restore", "rj", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout == 'job "rj" restored from version 2 (now version 4)\n'
    job = srv.job("rj")
    assert job["version"] == 4 and job["command"] == "echo two" and job["enabled"] is True
    assert job["state"]["next_fire"] is not None
    assert versions(srv, "rj")["items"][0]["op"] == "update"

    # checked like any edit: version 1 names a calendar that no longer exists
    before = versions(srv, "rj")
    err = error_of(srv.api("POST", "/jobs/rj/restore", json={"version": 1}), 400)
    assert "hol" in err["message"]
    assert versions(srv, "rj") == before

    # If-Match: a stale one is refused with 412 and changes nothing
    r = srv.cli("job", "restore", "rj", "3", "--if-version", "3")
    assert r.returncode == 2
    assert 'job "rj" was changed by someone else since version 3' in r.stderr
    error_of(srv.api("POST", "/jobs/rj/restore", json={"version": 3}, headers={"If-Match": '"3"'}),
             412, "conflict", "version")
    assert versions(srv, "rj") == before and srv.job("rj")["version"] == 4
    r = srv.cli("job", "restore", "rj", "3", "--if-version", "4")
    assert r.returncode == 0 and "now version 5" in r.stdout
    assert srv.job("rj")["enabled"] is False
    # restoring what is already current makes no version
    r = srv.api("POST", "/jobs/rj/restore", json={"version": 3})
    assert r.status_code == 200 and r.json()["version"] == 5 and r.headers["ETag"] == '"5"'

    # a deleted job comes back, its version count going on
    srv.ok("DELETE", "/jobs/rj", status=204)
    error_of(srv.api("POST", "/jobs/rj/restore", json={"version": 4}, headers={"If-Match": '"5"'}),
             412, "conflict")
    assert srv.api("GET", "/jobs/rj").status_code == 404
    r = srv.api("POST", "/jobs/rj/restore", json={"version": 4})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 7 and r.json()["state"]["next_fire"] is not None
    assert [i["op"] for i in versions(srv, "rj")["items"][:2]] == ["create", "delete"]

    # bad requests
    error_of(srv.api("POST", "/jobs/rj/restore", json={}), 400, "invalid", "version")
    error_of(srv.api("POST", "/jobs/rj/restore", json={"version": "2"}), 400, "invalid", "version")
    error_of(srv.api("POST", "/jobs/rj/restore", json={"version": 2, "x": 1}), 400, "invalid", "x")
    error_of(srv.api("POST", "/jobs/rj/restore", json={"version": 99}), 404, "not_found",
             "version")
    error_of(srv.api("POST", "/jobs/rj/restore", json={"version": 6}), 404, "not_found", "version")
    error_of(srv.api("POST", "/jobs/nope/restore", json={"version": 1}), 404, "not_found", "name")
    r = srv.cli("job", "restore", "rj", "0")
    assert r.returncode == 2 and "not a version number" in r.stderr

    # domains (and calendars) have the same versions and restore
    srv.ok("POST", "/domains", json={"path": "bank/eu", "level": 1}, status=201)
    srv.ok("PUT", "/domains/bank%2Feu", json={"path": "bank/eu", "level": 7})
    assert [i["version"] for i in versions(srv, "bank%2Feu", "domains")["items"]] == [2, 1]
    assert srv.ok("GET", "/domains/bank%2Feu/versions/1")["level"] == 1
    d = srv.ok("POST", "/domains/bank%2Feu/restore", json={"version": 1})
    assert d["level"] == 1 and d["version"] == 3
    assert srv.ok("GET", "/calendars/hol/versions")["current"] is None
    c = srv.ok("POST", "/calendars/hol/restore", json={"version": 1})
    assert c["dates"] == ["2030-01-01"] and c["version"] == 3


# ---- concurrent edits ----------------------------------------------------------------------


def test_concurrent_edits_one_wins(server):
    srv = server()
    srv.add_job(name="race", schedule="0 0 5 * * ?", command="true")
    rounds = 10
    sessions = []
    for _ in range(2):
        s = requests.Session()
        s.trust_env = False
        s.headers["Authorization"] = f"Bearer {srv.token}"
        sessions.append(s)
    url = f"{srv.url}/api/v1/jobs/race"
    for rnd in range(rounds):
        base = srv.job("race")["version"]
        barrier = threading.Barrier(2)
        answers = [None, None]
        edits = [{"description": f"a{rnd}"}, {"owner": f"b{rnd}"}]

        def edit(k):
            barrier.wait()
            answers[k] = sessions[k].patch(url, json=edits[k], headers={"If-Match": f'"{base}"'},
                                           timeout=15)

        threads = [threading.Thread(target=edit, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(a.status_code for a in answers)
        assert codes == [200, 412], [a.text for a in answers]
        loser = 0 if answers[0].status_code == 412 else 1
        error_of(answers[loser], 412, "conflict", "version")
        # the loser reads again and makes its change on top: nothing is lost
        now = srv.job("race")["version"]
        assert now == base + 1
        r = sessions[loser].patch(url, json=edits[loser], headers={"If-Match": f'"{now}"'},
                                  timeout=15)
        assert r.status_code == 200, r.text
    job = srv.job("race")
    assert job["description"] == f"a{rounds - 1}" and job["owner"] == f"b{rounds - 1}"
    assert job["version"] == 1 + 2 * rounds
    assert [i["version"] for i in versions(srv, "race")["items"]] == list(
        range(1 + 2 * rounds, 0, -1))
    for s in sessions:
        s.close()


# ---- migration -----------------------------------------------------------------------------


@pytest.mark.sqlite_only
def test_migration_from_schema_1(server, tmp_path):
    data = tmp_path / "v1data"
    data.mkdir(mode=0o700)
    shutil.copyfile(FIXTURE, data / "tethys.db")
    assert read_db(data / "tethys.db")["schema_version"] == 1
    srv = server(data=data)

    # migrated, after a backup of the version 1 database beside it
    baks = sorted(data.glob("tethys.db.v1-*.bak"))
    assert len(baks) == 1, list(data.iterdir())
    bak = read_db(baks[0])
    v1 = read_db(FIXTURE)
    assert bak == v1 and bak["schema_version"] == 1
    db = sqlite3.connect(f"file:{data / 'tethys.db'}?mode=ro", uri=True)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        str(SCHEMA),)
    db.close()

    # every job, version, run and skipped fire is served
    jobs = {j["name"]: j for j in srv.jobs()}
    for key, version in MANIFEST["objects"].items():
        kind, name = key.split("/", 1)
        if kind == "job":
            assert jobs[name]["version"] == version
        else:
            got = srv.ok("GET", f"/{kind}s/{name.replace('/', '%2F')}")
            assert got["version"] == version
    assert set(jobs) == {k.split("/", 1)[1] for k in MANIFEST["objects"] if k.startswith("job/")}
    for kind, name, version, op, who in MANIFEST["object_versions"]:
        path = f"/{kind}s/{name.replace('/', '%2F')}/versions"
        got = {i["version"]: (i["op"], i["who"]) for i in srv.ok("GET", path)["items"]}
        assert got[version] == (op, who), (kind, name, version)
    assert versions(srv, "temp")["current"] is None
    assert srv.ok("GET", "/jobs/nightly/versions/1")["description"] == ""
    for run_id, status in MANIFEST["runs"].items():
        assert srv.get_run(run_id)["status"] == status
    hist = srv.history()
    assert set(MANIFEST["runs"]) <= {i["run_id"] for i in hist if i["kind"] == "run"}
    assert {(f, s) for f, s, _ in MANIFEST["skips"]} <= {
        (i["fire_id"], i["shard"]) for i in hist if i["kind"] == "skip"}

    # and the server works: a new job runs, a migrated one changes and is restored
    srv.add_job(name="after", schedule="0 0 1 * * ?", command="echo migrated")
    run = srv.run_now("after")["runs"][0]["run_id"]
    assert srv.wait_run(run)["status"] == "succeeded"
    srv.patch("nightly", description="after the upgrade")
    r = srv.cli("job", "restore", "nightly", "1")
    assert r.returncode == 0 and "now version 5" in r.stdout, r.stdout + r.stderr
    assert srv.job("nightly")["description"] == ""

    # a restart migrates nothing more
    assert srv.stop() == 0
    srv2 = server.restart(srv)
    assert sorted(data.glob("tethys.db.v1-*.bak")) == baks
    assert srv2.job("after")["version"] == 1


@pytest.mark.sqlite_only
def test_newer_schema_refused(server, tethys, tmp_path):
    srv = server()
    srv.add_job(name="keep", schedule="0 0 1 * * ?", command="true")
    assert srv.stop() == 0
    db = srv.data / "tethys.db"
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    before = sha256(db)
    names = sorted(p.name for p in srv.data.iterdir())

    r = subprocess.run([tethys, "server", "--data", str(srv.data), "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert (f"tethys: {db} has schema version 99, from a newer Tethys; this binary knows 1 to "
            f"{SCHEMA}: upgrade tethys, or `tethys restore` the tethys.db.v{SCHEMA}-*.bak the "
            "upgrade left\n"
            ) in r.stderr
    assert sha256(db) == before
    assert not list(srv.data.glob("*.bak"))
    assert not (srv.data / "server.json").exists()
    assert {p.name for p in srv.data.iterdir()} <= set(names) | {"tethys.db-shm", "tethys.db-wal"}

    # nor do backup and restore take such a file
    r = subprocess.run([tethys, "backup", str(tmp_path / "b.db"), "--data", str(srv.data)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and "schema version 99" in r.stderr
    assert not (tmp_path / "b.db").exists()
    fresh = tmp_path / "fresh"
    r = subprocess.run([tethys, "restore", str(db), "--data", str(fresh)], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 2 and "schema version 99" in r.stderr
    assert not (fresh / "tethys.db").exists()


@pytest.mark.sqlite_only
def test_migration_on_a_full_disk_changes_nothing(server, tethys, small_disk):
    data = small_disk / "v1data"
    data.mkdir(mode=0o700)
    shutil.copyfile(FIXTURE, data / "tethys.db")
    (data / "token").write_text("t" * 64 + "\n")  # an existing installation has its token
    (data / "token").chmod(0o600)
    fill(small_disk / "fill")
    # room to open the database (its -shm and -wal) but not for the copy made before
    # migrating, the step most likely to meet a full disk
    size = (small_disk / "fill").stat().st_size
    os.truncate(small_disk / "fill", size - 48 * 1024)
    before = sha256(data / "tethys.db")
    r = subprocess.run([tethys, "server", "--data", str(data), "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "tethys.db" in r.stderr and "disk full" in r.stderr, r.stderr
    assert sha256(data / "tethys.db") == before
    assert read_db(data / "tethys.db")["schema_version"] == 1
    assert not list(data.glob("*.bak")), "no half-written copy is left behind"
    assert not (data / "server.json").exists()

    # with room again the same directory migrates
    (small_disk / "fill").unlink()
    srv = server(data=data)
    assert len(list(data.glob("tethys.db.v1-*.bak"))) == 1
    assert {j["name"] for j in srv.jobs()} == {
        k.split("/", 1)[1] for k in MANIFEST["objects"] if k.startswith("job/")}


# ---- backup and restore --------------------------------------------------------------------


@pytest.mark.sqlite_only
def test_backup_under_load_and_restore(server, tmp_path):
    srv = server("--max-runs", "16")
    srv.add_job(name="load", schedule="* * * * * ?", shards=4, command="echo $TETHYS_SHARD")
    srv.add_job(name="slow", schedule="* * * * * ?", command="sleep 1.5")  # overlaps: skips
    stop = threading.Event()
    edits = []

    def editor():
        s = requests.Session()
        s.trust_env = False
        s.headers["Authorization"] = f"Bearer {srv.token}"
        n = 0
        while not stop.is_set():
            r = s.patch(f"{srv.url}/api/v1/jobs/load", json={"description": f"edit {n}"},
                        timeout=15)
            edits.append(r.status_code)
            n += 1
            time.sleep(0.2)
        s.close()

    t = threading.Thread(target=editor)
    t.start()
    backups = []
    try:
        srv.wait_for(lambda: len(srv.runs("load")) >= 8, 15, 0.2, "the load job to run")
        for k in range(4):
            runs0, skips0, vers0 = api_state(srv)
            path = tmp_path / f"backup-{k}.db"
            r = srv.cli("backup", str(path))
            assert r.returncode == 0, r.stderr
            assert r.stdout.startswith(f"backed up {srv.data}/tethys.db to {path} (")
            runs1, skips1, vers1 = api_state(srv)
            got = read_db(path)
            # everything committed before the backup began, nothing not yet there after it
            assert set(runs0) <= set(got["runs"]) <= set(runs1)
            assert skips0 <= got["skips"] <= skips1
            job_versions = {k: v for k, v in got["versions"].items() if k[0] == "job"}
            assert set(vers0) <= set(job_versions) <= set(vers1)
            backups.append((path, got))
            time.sleep(0.7)
    finally:
        stop.set()
        t.join()
    assert set(edits) == {200}, edits
    assert srv.stop() == 0
    # and with the server stopped
    path = tmp_path / "backup-stopped.db"
    r = srv.cli("backup", str(path))
    assert r.returncode == 0, r.stderr
    backups.append((path, read_db(path)))
    counts = [(len(g["runs"]), len(g["versions"])) for _, g in backups]
    assert counts == sorted(counts) and counts[0][0] >= 8, counts
    assert len(backups[-1][1]["skips"]) > 0

    # each backup restored into a fresh directory and served by a new server
    for k, (path, got) in enumerate(backups):
        fresh = tmp_path / f"restored-{k}"
        r = subprocess.run([srv.cli_binary, "restore", str(path), "--data", str(fresh)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"restored {path} as {fresh}/tethys.db (schema version {SCHEMA}")
        assert read_db(fresh / "tethys.db") == got
        rs = server(data=fresh)
        runs, skips, vers = api_state(rs)
        jobs = {j["name"]: j["version"] for j in rs.jobs()}
        assert jobs == {n: v for (kind, n), v in got["objects"].items() if kind == "job"}
        assert set(got["runs"]) <= set(runs)
        assert got["skips"] <= skips
        assert {k: v for k, v in got["versions"].items() if k[0] == "job"} == vers
        for run_id, status in got["runs"].items():
            if status not in ("queued", "running"):  # those end as lost or interrupted
                assert runs[run_id] == status, run_id
        assert rs.stop() == 0


@pytest.mark.sqlite_only
def test_backup_onto_a_full_disk_leaves_no_file(server, small_disk):
    srv = server()
    # enough history that the copy cannot fit in what is left of the small disk
    srv.add_job(name="big", command="true", description="x" * 4000)
    for k in range(40):
        srv.patch("big", description=f"{k}" + "x" * 4000)
    fill(small_disk / "fill")
    (small_disk / "fill").write_bytes(b"")  # then free a little: room for some pages only
    fill(small_disk / "fill")
    target = small_disk / "b.db"
    r = srv.cli("backup", str(target))
    assert r.returncode != 0
    assert str(target) in r.stderr and "disk full" in r.stderr, r.stderr
    assert not target.exists(), "a partial backup would look like a good one"
    assert srv.job("big")["version"] == 41  # the server is untouched and still serves


@pytest.mark.sqlite_only
def test_backup_killed_midway_leaves_no_backup_file(server, tmp_path):
    srv = server()
    srv.add_job(name="a", schedule="0 0 1 * * ?", command="true")
    assert srv.stop() == 0
    # make the copy take a while: 256 MiB of run output, written with the server stopped
    db = sqlite3.connect(srv.data / "tethys.db")
    blob = b"x" * (1 << 20)
    db.executemany(
        "INSERT INTO runs (run_id, fire_id, attempt, job, domain, shard, \"trigger\", status, "
        "scheduled_at, queued_at_ms, started_at_ms, ended_at_ms, pid, pid_start, epoch, "
        "exit_code, signal, output) VALUES (?, ?, 1, 'a', '', 0, 'manual', 'succeeded', 0, 0, "
        "0, 0, 0, 0, 1, 0, 0, ?)",
        [(f"{i:016x}", f"a@{i}#0", blob) for i in range(256)])
    db.commit()
    db.close()

    target = tmp_path / "killed.db"
    p = subprocess.Popen([srv.cli_binary, "backup", str(target), "--data", str(srv.data)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = tmp_path / f"killed.db.partial-{p.pid}"
    seen = wait_for(lambda: partial.exists() and partial.stat().st_size > (1 << 20), 20,
                    0.005, "the copy under way")
    p.kill()
    p.wait()
    assert seen
    if target.exists():  # it finished between the look and the kill: then it is whole
        assert read_db(target)["runs"] == read_db(srv.data / "tethys.db")["runs"]
    else:
        assert partial.exists(), "what a killed backup leaves is named for what it is"
    # a new backup is not disturbed by the leftover, and is whole
    r = srv.cli("backup", str(tmp_path / "again.db"))
    assert r.returncode == 0, r.stderr
    assert len(read_db(tmp_path / "again.db")["runs"]) == 256
    assert not list(tmp_path.glob("again.db.partial-*"))


@pytest.mark.sqlite_only
def test_restore_refusals(server, tmp_path):
    srv = server()
    srv.add_job(name="a", schedule="0 0 1 * * ?", command="true")
    backup = tmp_path / "a.db"
    r = srv.cli("backup", str(backup), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["file"] == str(backup) and info["schema_version"] == SCHEMA
    assert info["bytes"] == backup.stat().st_size
    # never over an existing file
    before = sha256(backup)
    r = srv.cli("backup", str(backup))
    assert r.returncode == 2 and f"{backup} already exists" in r.stderr
    assert sha256(backup) == before

    # refused while the server runs, naming it
    r = srv.cli("restore", str(backup), "--force")
    assert r.returncode == 2
    assert f"is in use by a running tethys server (pid {srv.pid})" in r.stderr
    srv.add_job(name="b", schedule="0 0 1 * * ?", command="true")
    assert srv.stop() == 0

    # over an existing database only with --force; the old one is kept
    r = srv.cli("restore", str(backup))
    assert r.returncode == 2 and "add --force" in r.stderr
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n" * 500)
    r = srv.cli("restore", str(junk), "--force")
    assert r.returncode == 2 and "is not a SQLite database" in r.stderr
    other = tmp_path / "other.db"
    c = sqlite3.connect(other)
    c.execute("CREATE TABLE t (x)")
    c.commit()
    c.close()
    r = srv.cli("restore", str(other), "--force")
    assert r.returncode == 2 and "not a Tethys one" in r.stderr
    r = srv.cli("restore", str(tmp_path / "missing.db"), "--force")
    assert r.returncode == 2
    r = srv.cli("restore", str(srv.data / "tethys.db"), "--force")
    assert r.returncode == 2 and "the data directory's own database" in r.stderr
    assert not list(srv.data.glob("tethys.db.before-restore-*"))

    r = srv.cli("restore", str(backup), "--force")
    assert r.returncode == 0, r.stderr
    kept = list(srv.data.glob("tethys.db.before-restore-*"))
    assert len(kept) == 1 and r.stdout.splitlines()[-1] == f"the database it replaced is kept as {kept[0]}"
    assert not (srv.data / "tethys.db-wal").exists() and not (srv.data / "tethys.db-shm").exists()
    assert not list(srv.data.glob(".tethys.db.restore-*"))
    assert set(read_db(kept[0])["objects"]) >= {("job", "a"), ("job", "b")}
    srv2 = server.restart(srv)
    assert {j["name"] for j in srv2.jobs()} == {"a"}
    # the migration's .bak is a backup too: restore takes an older schema
    assert srv2.stop() == 0
    r = srv.cli("restore", str(FIXTURE), "--force")
    assert r.returncode == 0, r.stderr
    assert "schema version 1; the server migrates it when it starts" in r.stdout
    srv3 = server.restart(srv2)
    assert "nightly" in {j["name"] for j in srv3.jobs()}
