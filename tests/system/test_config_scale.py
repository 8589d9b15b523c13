"""Configuration that scales: paged lists, batched saves, and the CLI over them.

- GET /jobs, /domains, /calendars are pages ({"items", "next"}): a walk with each filter
  (domain subtree, state, text, together) returns every matching object exactly once, in
  name order; bad limit, cursor, state and domain are 400s naming the parameter.
- POST /jobs:batch: each item answers as its single request would (status, error body),
  refused items cost only themselves, the items see each other (domain limits count the
  batch's own jobs), the executor learns every saved job, alerts follow per job; malformed
  requests and items are refused naming the field.
- The CLI follows pages with more jobs than a page holds (job list and its filters,
  export, apply's diff, import's dry run) and sends large applies, imports and `job add -f`
  in batches, reporting each job as before.
"""
import http.server
import json
import os
import threading

import pytest
import requests

from conftest import error_of, wait_for


def job(name, **fields):
    fields.setdefault("command", "true")
    return {"name": name, **fields}


def batch(srv, items):
    """POST /jobs:batch that must be answered 200; returns the per-item answers."""
    return srv.ok("POST", "/jobs:batch", json={"items": items}, status=200)


def create_many(srv, jobs):
    for lo in range(0, len(jobs), 1000):
        r = batch(srv, [{"op": "create", "job": j} for j in jobs[lo:lo + 1000]])
        assert r["summary"]["failed"] == 0, [i for i in r["items"] if "error" in i][:3]


def walk(srv, path, limit, **params):
    """Every item of a paged list, following next; asserts the page sizes."""
    items, cursor, pages = [], None, 0
    while True:
        q = dict(params, limit=limit)
        if cursor:
            q["cursor"] = cursor
        page = srv.ok("GET", path, params=q)
        assert set(page) == {"items", "next"}, page.keys()
        assert len(page["items"]) <= limit
        items += page["items"]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            return items, pages
        assert len(page["items"]) == limit, "only the last page is short"


# ---- paged lists ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def listed(shared_server):
    """250 jobs in domains pay, pay/eu, payroll (a look-alike) and ops; every third
    disabled; every seventh mentions 'Ledger' in its description."""
    srv = shared_server
    jobs = []
    for i in range(250):
        dom = ("pay", "pay/eu", "payroll", "ops", "")[i % 5]
        fields = {"domain": dom, "enabled": i % 3 != 0,
                  "description": f"nightly LEDGER run {i}" if i % 7 == 0 else "other"}
        jobs.append(job(f"pg-{i:03d}", **fields))
    create_many(srv, jobs)
    return srv, {j["name"]: j for j in jobs}


def names(items):
    return [i["name"] for i in items]


def test_job_pages_walk_every_filter(listed):
    srv, jobs = listed
    cases = [
        ({}, lambda j: True),
        ({"domain": "pay"}, lambda j: j["domain"] in ("pay", "pay/eu")),
        ({"domain": "pay/eu"}, lambda j: j["domain"] == "pay/eu"),
        ({"state": "enabled"}, lambda j: j["enabled"]),
        ({"state": "disabled"}, lambda j: not j["enabled"]),
        ({"q": "ledger"}, lambda j: "LEDGER" in j["description"]),
        ({"q": "pg-01"}, lambda j: j["name"].startswith("pg-01")),
        ({"domain": "pay", "state": "disabled", "q": "Ledger"},
         lambda j: j["domain"] in ("pay", "pay/eu") and not j["enabled"]
         and "LEDGER" in j["description"]),
    ]
    for params, keep in cases:
        want = sorted(n for n, j in jobs.items() if keep(j))
        assert want, params
        got, pages = walk(srv, "/jobs", 7, **params)
        got = [i for i in got if i["name"].startswith("pg-")]
        assert names(got) == want, params  # each once, in name order
        for item in got:  # a page carries the whole job, its version and live state
            assert item["version"] == 1 and set(item["state"]) == {"next_fire", "running",
                                                                   "waiting"}
            assert item["enabled"] == jobs[item["name"]]["enabled"]


def test_job_list_default_page_is_100(listed):
    srv, _ = listed
    page = srv.ok("GET", "/jobs")
    assert len(page["items"]) == 100 and page["next"] is not None
    rest = srv.ok("GET", "/jobs", params={"cursor": page["next"], "limit": 1000})
    assert not set(names(page["items"])) & set(names(rest["items"]))
    assert rest["next"] is None
    full = srv.ok("GET", "/jobs", params={"limit": 1000, "domain": "ops"})
    assert full["next"] is None and len(full["items"]) == 50


def test_job_list_refuses_bad_parameters(listed):
    srv, _ = listed
    for params, field, words in [
        ({"limit": "0"}, "limit", 'limit: "0" is not a number 1-1000'),
        ({"limit": "1001"}, "limit", "1-1000"),
        ({"limit": "ten"}, "limit", 'limit: "ten"'),
        ({"limit": ""}, "limit", "1-1000"),
        ({"cursor": "junk"}, "cursor", 'cursor: "junk" is not a "next" this server returned'),
        ({"cursor": "o1.zz"}, "cursor", "is not a"),
        ({"state": "paused"}, "state", 'state: "paused" is not a job state (enabled or '
                                       'disabled)'),
        ({"domain": "d" * 300}, "domain", "domain: longer than 256 bytes"),
    ]:
        err = error_of(srv.api("GET", "/jobs", params=params), 400, "invalid", field)
        assert words in err["message"], (params, err)
    error_of(srv.api("GET", "/domains", params={"limit": "0"}), 400, "invalid", "limit")
    error_of(srv.api("GET", "/calendars", params={"cursor": "x"}), 400, "invalid", "cursor")


def test_domains_and_calendars_are_paged(shared_server):
    srv = shared_server
    for i in range(5):
        srv.ok("POST", "/calendars", json={"name": f"pc-{i}", "dates": ["2030-01-0%d" % (i + 1)],
                                           "description": "Holiday" if i % 2 else ""},
               status=201)
        srv.ok("POST", "/domains", json={"path": f"pd-{i}"}, status=201)
    cals, pages = walk(srv, "/calendars", 2)
    assert [c["name"] for c in cals if c["name"].startswith("pc-")] == [f"pc-{i}" for i in
                                                                         range(5)]
    assert pages >= 3 and all(c["version"] == 1 for c in cals)
    assert "state" not in cals[0]
    doms, _ = walk(srv, "/domains", 2)
    assert [d["path"] for d in doms if d["path"].startswith("pd-")] == [f"pd-{i}" for i in
                                                                         range(5)]
    found = srv.ok("GET", "/calendars", params={"q": "holiday"})["items"]
    assert [c["name"] for c in found] == ["pc-1", "pc-3"]


# ---- batches --------------------------------------------------------------------------------

def test_batch_items_answer_as_their_single_requests(server):
    srv = server()
    srv.add_job(name="b-old", description="before")
    srv.add_job(name="b-gone")
    r = batch(srv, [
        {"op": "create", "job": job("b-new", schedule="0 0 3 * * ?")},
        {"op": "create", "job": job("b-old")},                                  # exists
        {"op": "replace", "job": job("b-old", description="after"), "base_version": 1},
        {"op": "replace", "job": job("b-old", description="stale"), "base_version": 1},
        {"op": "replace", "job": job("b-missing")},                             # no such job
        {"op": "delete", "name": "b-gone", "base_version": 1},
        {"op": "delete", "name": "b-gone"},                                     # gone already
        {"op": "create", "job": job("b-bad", shards=0)},                       # invalid field
        {"op": "create", "name": "b-named", "job": {"command": "true"}},
        {"op": "replace", "job": job("b-new", command="echo later")},          # sees b-new
    ])
    items = r["items"]
    assert [i["index"] for i in items] == list(range(10))
    assert [i["status"] for i in items] == [201, 409, 200, 412, 404, 204, 404, 400, 201, 200]
    assert r["summary"] == {"succeeded": 5, "failed": 5}
    assert items[0] == {"index": 0, "op": "create", "name": "b-new", "status": 201, "version": 1}
    assert items[1]["error"] == {"code": "exists", "field": "name",
                                 "message": 'a job named "b-old" already exists'}
    assert items[2]["version"] == 2
    assert items[3]["error"]["code"] == "conflict" and items[3]["error"]["field"] == "version"
    assert items[4]["error"] == {"code": "not_found", "field": "name",
                                 "message": 'no job named "b-missing"'}
    assert items[5] == {"index": 5, "op": "delete", "name": "b-gone", "status": 204}
    assert items[7]["error"] == {"code": "invalid", "field": "shards",
                                 "message": "shards: 0 is out of range 1-10000"}
    assert items[8]["name"] == "b-named" and items[8]["version"] == 1
    assert items[9]["version"] == 2
    # what was refused changed nothing; what was made is there, with its history
    assert srv.job("b-old")["description"] == "after"
    assert srv.job("b-new")["command"] == "echo later"
    error_of(srv.api("GET", "/jobs/b-gone"), 404)
    error_of(srv.api("GET", "/jobs/b-bad"), 404)
    versions = srv.ok("GET", "/jobs/b-new/versions")["items"]
    assert [v["op"] for v in versions] == ["update", "create"]
    assert all(v["who"] == "default" for v in versions)
    # the executor has every saved job, and not the deleted one
    srv.wait_run(srv.run_now("b-new")["runs"][0]["run_id"])
    srv.wait_run(srv.run_now("b-named")["runs"][0]["run_id"])
    error_of(srv.api("POST", "/jobs/b-gone/run"), 404)
    assert "job batch saved created=2 replaced=2 deleted=1 refused=5" in srv.log_text()


def test_batch_sees_its_own_jobs_in_domain_limits(server):
    srv = server()
    srv.ok("POST", "/domains", json={"path": "small", "limits": {"max_jobs": 3}}, status=201)
    r = batch(srv, [{"op": "create", "job": job(f"lim-{i}", domain="small")} for i in range(5)])
    assert [i["status"] for i in r["items"]] == [201, 201, 201, 400, 400]
    err = r["items"][3]["error"]
    assert err["code"] == "invalid" and "at most 3 jobs" in err["message"], err
    # a deletion earlier in the batch makes room for a creation after it
    r = batch(srv, [{"op": "delete", "name": "lim-0"},
                    {"op": "create", "job": job("lim-9", domain="small")}])
    assert [i["status"] for i in r["items"]] == [204, 201]
    assert sorted(names(srv.ok("GET", "/jobs", params={"domain": "small"})["items"])) == [
        "lim-1", "lim-2", "lim-9"]


def test_batch_keeps_secrets_and_alerts_per_job(server):
    srv = server()
    r = batch(srv, [
        {"op": "create", "job": job("s-env", command="echo $TOKEN",
                                    secret_env={"TOKEN": "t0p-s3cret-value"})},
        {"op": "create", "job": job("s-ha", failover=True, schedule="0 0 3 * * ?")},
    ])
    assert r["summary"]["failed"] == 0
    assert srv.job("s-env")["secret_env"] == {"TOKEN": "********"}
    run = srv.wait_run(srv.run_now("s-env")["runs"][0]["run_id"])
    assert run["status"] == "succeeded" and run["output"] == "********\n"
    noha = srv.alerts()["not_highly_available"]
    assert [a["job"] for a in noha] == ["s-ha"]
    # the mask sent back keeps the value; the alert follows the job's change
    r = batch(srv, [
        {"op": "replace", "job": job("s-env", command="echo ${TOKEN}x",
                                     secret_env={"TOKEN": "********"})},
        {"op": "replace", "job": job("s-ha", failover=False, schedule="0 0 3 * * ?")},
    ])
    assert r["summary"]["failed"] == 0
    run = srv.wait_run(srv.run_now("s-env")["runs"][0]["run_id"])
    assert run["output"] == "********x\n"
    srv.wait_for(lambda: srv.alerts()["not_highly_available"] == [], what="not_ha to clear")
    assert "t0p-s3cret-value" not in srv.log_text()


def test_batch_refuses_malformed_requests(server):
    srv = server()
    for body, field, words in [
        ({}, "items", "items: required"),
        ({"items": {}}, "items", "items: required, a list"),
        ({"items": [], "atomic": True}, "atomic", 'unknown field "atomic" (known: items)'),
        ({"items": [{"op": "delete", "name": "x"}] * 1001}, "items",
         "items: 1001 changes; at most 1000 per request"),
    ]:
        err = error_of(srv.api("POST", "/jobs:batch", json=body), 400, "invalid", field)
        assert words in err["message"], (body, err)
    error_of(srv.api("POST", "/jobs:batch", data=b"[1]",
                     headers={"Content-Type": "application/json"}), 400, "invalid", "body")
    big = {"items": [{"op": "create", "job": job(f"big-{i}", description="x" * 2000)}
                     for i in range(600)]}
    error_of(srv.api("POST", "/jobs:batch", json=big), 413, "too_large")
    assert srv.ok("POST", "/jobs:batch", json={"items": []}) == {
        "items": [], "summary": {"succeeded": 0, "failed": 0}}
    assert srv.jobs() == []


def test_batch_refuses_malformed_items_one_by_one(server):
    srv = server()
    r = batch(srv, [
        3,
        {"job": job("i-1")},
        {"op": "upsert", "job": job("i-2")},
        {"op": "create", "job": job("i-3"), "extra": 1},
        {"op": "create", "job": job("i-4"), "base_version": 2},
        {"op": "replace", "job": job("i-5"), "base_version": 0},
        {"op": "delete"},
        {"op": "delete", "name": "i-7", "job": job("i-7")},
        {"op": "delete", "name": "bad name!"},
        {"op": "create"},
        {"op": "replace", "name": "i-10", "job": job("i-other")},
        {"op": "create", "job": job("i-ok")},
    ])
    want = [
        ("item", 'item: expected an object'),
        ("op", "op: required (create, replace or delete)"),
        ("op", 'op: "upsert" is not an operation (create, replace or delete)'),
        ("extra", 'unknown field "extra" (known: op, job, name, base_version)'),
        ("base_version", "base_version: a create has no version to be based on"),
        ("base_version", "base_version: expected a version number (1 or more)"),
        ("name", "name: required for a delete"),
        ("job", 'job: a delete names the job with "name" only'),
        ("name", "name"),
        ("job", "job: required"),
        ("name", 'name: "i-10" differs from the job\'s ("i-other"); a job cannot be renamed'),
    ]
    for item, (field, words) in zip(r["items"], want):
        assert item["status"] == 400, item
        assert item["error"]["field"] == field and words in item["error"]["message"], item
    assert r["items"][2]["name"] == "i-2" and r["items"][0]["name"] is None
    assert r["items"][-1]["status"] == 201
    assert names(srv.jobs()) == ["i-ok"]


def test_restarted_jobs_run_as_they_were_defined(server):
    """After a restart the executor holds jobs compact and parses each when it runs: every
    kind of definition must come back exactly (secrets, a zone, a start date, shards, a
    changed definition, a removal)."""
    srv = server()
    batch(srv, [
        {"op": "create", "job": job("r-secret", command="echo $TOKEN $TETHYS_SHARD",
                                    secret_env={"TOKEN": "t0p-s3cret-value"}, shards=2)},
        {"op": "create", "job": job("r-zone", command="echo zoned", schedule="0 0 3 * * ?",
                                    time_zone="Asia/Shanghai", enabled=False)},
        {"op": "create", "job": job("r-start", command="echo started",
                                    schedule="0 0 3 * * ?", start_at="2030-01-01T00:00:00Z",
                                    misfire="catch_up", catch_up_max=2)},
        {"op": "create", "job": job("r-edit", command="echo before")},
        {"op": "create", "job": job("r-gone", command="echo gone")},
    ])
    assert srv.stop() == 0
    srv = server.restart(srv)
    out = sorted(srv.wait_run(r["run_id"])["output"]
                 for r in srv.run_now("r-secret")["runs"])
    assert out == ["******** 0\n", "******** 1\n"]
    for name, text in [("r-zone", "zoned\n"), ("r-start", "started\n")]:
        run = srv.wait_run(srv.run_now(name)["runs"][0]["run_id"])
        assert run["status"] == "succeeded" and run["output"] == text, run
    assert srv.job("r-zone")["state"]["next_fire"] is None  # disabled
    assert srv.job("r-start")["state"]["next_fire"] == "2030-01-01T03:00:00+00:00"
    srv.patch("r-edit", command="echo after")
    run = srv.wait_run(srv.run_now("r-edit")["runs"][0]["run_id"])
    assert run["output"] == "after\n"
    srv.ok("DELETE", "/jobs/r-gone", status=204)
    error_of(srv.api("POST", "/jobs/r-gone/run"), 404)
    assert "t0p-s3cret-value" not in srv.log_text()


def test_restart_keeps_every_job_beyond_one_assignment_batch(server):
    # the start-up set comes in batches of 1,000: each batch's jobs are part of the set the
    # last batch completes (a bug once dropped all but the last batch's)
    srv = server()
    create_many(srv, [job(f"many-{i:04d}") for i in range(2001)])
    assert srv.stop() == 0
    srv = server.restart(srv)
    for name in ("many-0000", "many-1500", "many-2000"):
        srv.wait_run(srv.run_now(name)["runs"][0]["run_id"])
    assert "job removed" not in srv.log_text()


# ---- the CLI over pages and batches --------------------------------------------------------

@pytest.fixture(scope="module")
def crowded(tmp_path_factory, tethys):
    """A server with 2,300 jobs: more than two pages of 1,000."""
    from conftest import Server
    d = tmp_path_factory.mktemp("crowded")
    srv = Server(tethys, tethys, d / "data", d / "server.log").start()
    create_many(srv, [job(f"cr-{i:04d}", domain="big" if i % 2 else "small",
                          enabled=i % 4 != 0, description="Invoice" if i % 100 == 0 else "")
                      for i in range(2300)])
    yield srv
    assert srv.stop() == 0


def test_cli_job_list_follows_pages(crowded):
    srv = crowded
    r = srv.cli("job", "list")
    assert r.returncode == 0, r.stderr
    rows = r.stdout.splitlines()[1:]
    assert len(rows) == 2300 and rows[0].startswith("cr-0000") and rows[-1].startswith("cr-2299")
    out = json.loads(srv.cli("job", "list", "--json").stdout)
    assert len(out["items"]) == 2300 and out["next"] is None
    assert len({i["name"] for i in out["items"]}) == 2300
    for args, n in [(["--domain", "big"], 1150), (["--state", "disabled"], 575),
                    (["--state", "enabled", "--domain", "small"], 575),
                    (["--search", "invoice"], 23)]:
        out = json.loads(srv.cli("job", "list", "--json", *args).stdout)
        assert len(out["items"]) == n, args
    # part of a long list, and the rest from its cursor
    out = json.loads(srv.cli("job", "list", "--json", "--limit", "1500").stdout)
    assert len(out["items"]) == 1500 and out["next"] is not None
    rest = json.loads(srv.cli("job", "list", "--json", "--cursor", out["next"]).stdout)
    assert [i["name"] for i in out["items"] + rest["items"]] == [f"cr-{i:04d}" for i in
                                                                 range(2300)]
    r = srv.cli("job", "list", "--limit", "3")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 4
    assert "(more jobs: --cursor o1." in r.stderr


def test_cli_job_list_refuses_bad_options(crowded):
    srv = crowded
    r = srv.cli("job", "list", "--state", "paused")
    assert r.returncode == 2 and '--state: "paused" is not a job state' in r.stderr
    r = srv.cli("job", "list", "--limit", "0")
    assert r.returncode == 2 and '--limit: "0" is not a number of jobs' in r.stderr
    r = srv.cli("job", "list", "--cursor", "junk")
    assert r.returncode == 2 and 'cursor: "junk" is not a "next"' in r.stderr


def test_cli_export_and_dry_runs_see_every_job(crowded, tmp_path):
    srv = crowded
    r = srv.cli("export", "-o", str(tmp_path / "all.json"))
    assert r.returncode == 0 and "2300 jobs written" in r.stdout, r.stderr
    exported = json.loads((tmp_path / "all.json").read_text())
    assert len(exported) == 2300
    r = srv.cli("export", "--domain", "small", "--format", "json")
    assert len(json.loads(r.stdout)) == 1150
    # the whole export applied back: nothing to do (the diff saw every job)
    r = srv.cli("apply", "-f", str(tmp_path / "all.json"), "--dry-run")
    assert r.returncode == 0 and r.stdout == "nothing to do: 2300 jobs unchanged\n", r.stdout[-300:]
    # an import's dry run finds a job on the last page too
    srv.add_job(name="cr-9-1-true")
    crontab = tmp_path / "crontab"
    crontab.write_text("0 3 * * * true\n")
    r = srv.cli("import", "crontab", str(crontab), "--prefix", "cr-9", "--dry-run", "--json")
    report = json.loads(r.stdout)
    assert report["summary"]["exists"] == 1 and report["summary"]["would_create"] == 0
    srv.ok("DELETE", "/jobs/cr-9-1-true", status=204)


def test_cli_apply_in_batches(server, tmp_path):
    srv = server()
    jobs = [job(f"ap-{i:04d}", schedule="0 0 3 * * ?") for i in range(2500)]
    f = tmp_path / "jobs.json"
    f.write_text(json.dumps(jobs))
    r = srv.cli("apply", "-f", str(f), timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("apply: 2500 created, 0 changed, 0 deleted, 0 unchanged, 0 failed\n")
    assert "created   ap-2499 (version 1)\n" in r.stdout
    assert srv.log_text().count("job batch saved created=1000") == 2, "1000 a request"
    # change every other job, drop the rest
    half = [job(f"ap-{i:04d}", schedule="0 0 4 * * ?") for i in range(0, 2500, 2)]
    f.write_text(json.dumps(half))
    r = srv.cli("apply", "-f", str(f), "--prune", "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["summary"] == {"create": 0, "change": 1250, "delete": 1250, "unchanged": 0,
                              "failed": 0, "not_applied": 0}
    changed = [p for p in out["plan"] if p["action"] == "change"]
    assert changed[0]["changes"] == [{"field": "schedule", "old": "0 0 3 * * ?",
                                      "new": "0 0 4 * * ?"}]
    assert all(p["result"] == "changed" and p["new_version"] == 2 for p in changed)
    listed = srv.ok("GET", "/jobs", params={"limit": 1000})
    assert listed["items"][0]["schedule"] == "0 0 4 * * ?"
    rest = srv.ok("GET", "/jobs", params={"limit": 1000, "cursor": listed["next"]})
    assert len(listed["items"]) + len(rest["items"]) == 1250 and rest["next"] is None


class BatchInterferer(http.server.BaseHTTPRequestHandler):
    """Forwards to the server; before the first batch that replaces `victim` it edits that
    job itself, as a colleague would between apply's read and its write."""
    protocol_version = "HTTP/1.1"
    upstream = token = victim = None
    batches = []

    def log_message(self, *args):
        pass

    def _forward(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        cls = type(self)
        s = requests.Session()
        s.trust_env = False
        auth = {"Authorization": f"Bearer {cls.token}"}
        if self.command == "POST" and self.path == "/api/v1/jobs:batch":
            items = json.loads(body)["items"]
            cls.batches.append(len(items))
            if any(i.get("op") == "replace" and i["job"]["name"] == cls.victim for i in items):
                r = s.patch(f"{cls.upstream}/api/v1/jobs/{cls.victim}",
                            json={"description": "edited meanwhile"}, headers=auth, timeout=10)
                assert r.status_code == 200, r.text
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("authorization", "content-type", "if-match")}
        r = s.request(self.command, cls.upstream + self.path, data=body, headers=headers,
                      timeout=30)
        self.send_response(r.status_code)
        for k in ("Content-Type", "ETag"):
            if k in r.headers:
                self.send_header(k, r.headers[k])
        self.send_header("Content-Length", str(len(r.content)))
        self.end_headers()
        self.wfile.write(r.content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


def test_cli_apply_batch_reports_a_concurrent_edit(server, tmp_path):
    srv = server()
    create_many(srv, [job(f"cc-{i:02d}") for i in range(20)])
    f = tmp_path / "jobs.json"
    f.write_text(json.dumps([job(f"cc-{i:02d}", description="by apply") for i in range(20)]))
    handler = type("Proxy", (BatchInterferer,), {"upstream": srv.url, "token": srv.token,
                                                 "victim": "cc-07", "batches": []})
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=proxy.serve_forever, daemon=True)
    t.start()
    try:
        env = dict(os.environ, TETHYS_URL=f"http://127.0.0.1:{proxy.server_address[1]}",
                   TETHYS_TOKEN=srv.token)
        r = srv.cli("apply", "-f", str(f), env=env, data=False)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert handler.batches == [20], "one batch for the 20 changes"
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert ('conflict  cc-07: job "cc-07" was changed on the server since version 1 was read; '
            'not changed (run apply again to see the changes)\n') in r.stdout
    assert "changed   cc-08 (version 2)\n" in r.stdout
    assert r.stdout.endswith("apply: 0 created, 19 changed, 0 deleted, 0 unchanged, 1 failed\n")
    assert srv.job("cc-07")["description"] == "edited meanwhile"


def test_cli_import_and_add_in_batches(server, tmp_path):
    srv = server()
    srv.add_job(name="crontab-3-true")
    crontab = tmp_path / "crontab"
    crontab.write_text("".join(f"{i} 3 * * * true\n" for i in range(20)))
    r = srv.cli("import", "crontab", str(crontab), "--tz", "UTC", "--json")
    assert r.returncode == 1, r.stderr  # one existed
    report = json.loads(r.stdout)
    assert report["summary"]["created"] == 19 and report["summary"]["exists"] == 1
    row = next(l for l in report["lines"] if l["line"] == 3)
    assert row["result"] == "exists"
    assert row["error"]["message"] == ('a job named "crontab-3-true" already exists; not '
                                       'overwritten')
    assert "job batch saved created=19 replaced=0 deleted=0 refused=1" in srv.log_text()
    many = tmp_path / "many.json"
    many.write_text(json.dumps([job(f"add-{i}") for i in range(12)] + [job("add-3")]))
    r = srv.cli("job", "add", "-f", str(many))
    assert r.returncode == 2
    assert r.stdout.count("added (version 1)") == 12
    assert 'a job named "add-3" already exists' in r.stderr and "1 of 13 jobs" in r.stderr
