"""Domains (a tree with levels and limits its jobs inherit) and calendars, through the API
and the CLI: every limit refused with the reason naming the domain, deletes of objects in
use refused with 409, versions checked."""
import json

from conftest import config_snapshot, error_of


def test_domain_tree_levels_and_limits(shared_server):
    srv = shared_server
    bank = srv.ok("POST", "/domains", json={"path": "bank", "level": 3, "description": "banking",
                                            "limits": {"max_shards": 4, "max_jobs": 2,
                                                       "min_interval": 60}}, status=201)
    assert bank["version"] == 1 and bank["limits"]["max_shards"] == 4
    srv.ok("POST", "/domains", json={"path": "bank/settlement", "level": 7}, status=201)
    r = srv.api("GET", "/domains/bank%2Fsettlement")
    assert r.status_code == 200 and r.json()["level"] == 7 and r.headers["ETag"] == '"1"'
    paths = {d["path"]: d["level"] for d in srv.ok("GET", "/domains")["items"]}
    assert paths["bank"] == 3 and paths["bank/settlement"] == 7

    before = config_snapshot(srv)
    # max_shards of the parent applies to a job in the child
    err = error_of(srv.api("POST", "/jobs", json={"name": "dl-shards", "command": "true",
                                                  "domain": "bank/settlement", "shards": 8}),
                   400, "invalid", "shards")
    assert err["message"] == 'domain "bank": at most 4 shards per job; this job has 8'
    # min_interval
    err = error_of(srv.api("POST", "/jobs", json={"name": "dl-often", "command": "true",
                                                  "domain": "bank/settlement",
                                                  "schedule": "*/5 * * * * ?"}),
                   400, "invalid", "schedule")
    assert err["message"] == ('domain "bank": jobs may fire at most every 60 s; this schedule '
                              'fires 5 s apart')
    assert config_snapshot(srv) == before

    # max_jobs counts the whole subtree
    srv.add_job(name="dl-1", domain="bank", schedule="0 0 * * * ?")
    srv.add_job(name="dl-2", domain="bank/settlement", shards=4)
    before = config_snapshot(srv)
    err = error_of(srv.api("POST", "/jobs", json={"name": "dl-3", "command": "true",
                                                  "domain": "bank/settlement"}),
                   400, "invalid")
    assert err["message"] == 'domain "bank": at most 2 jobs; it has 2'
    # an edit that breaks a limit is refused too
    err = error_of(srv.api("PATCH", "/jobs/dl-2", json={"shards": 5}), 400, "invalid", "shards")
    assert 'domain "bank"' in err["message"]
    assert config_snapshot(srv) == before

    # listing by domain gives the subtree
    names = {j["name"] for j in srv.ok("GET", "/jobs", params={"domain": "bank"})["items"]}
    assert names == {"dl-1", "dl-2"}
    names = {j["name"] for j in srv.ok("GET", "/jobs",
                                       params={"domain": "bank/settlement"})["items"]}
    assert names == {"dl-2"}

    # a domain with jobs in its subtree cannot be deleted
    for path in ("bank", "bank%2Fsettlement"):
        err = error_of(srv.api("DELETE", f"/domains/{path}"), 409, "busy")
        assert "used by" in err["message"] and "dl-" in err["message"]
    srv.ok("DELETE", "/jobs/dl-2", status=204)
    srv.ok("DELETE", "/domains/bank%2Fsettlement", status=204)
    error_of(srv.api("GET", "/domains/bank%2Fsettlement"), 404, "not_found")
    error_of(srv.api("POST", "/domains", json={"path": "bank"}), 409, "exists")


def test_domain_and_calendar_versions(shared_server):
    srv = shared_server
    srv.ok("POST", "/domains", json={"path": "verdom", "level": 1}, status=201)
    r = srv.api("PUT", "/domains/verdom", json={"level": 2}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    err = error_of(srv.api("PUT", "/domains/verdom", json={"level": 3},
                           headers={"If-Match": '"1"'}), 412, "conflict", "version")
    assert err["message"].startswith('domain "verdom"'), err
    err = error_of(srv.api("DELETE", "/domains/verdom", headers={"If-Match": '"1"'}), 412,
                   "conflict", "version")
    assert err["message"].startswith('domain "verdom"'), err
    error_of(srv.api("DELETE", "/domains/verdom", headers={"If-Match": "later"}), 400, "invalid",
             "If-Match")
    assert srv.ok("GET", "/domains/verdom")["level"] == 2
    error_of(srv.api("POST", "/domains", json={"path": "x", "level": 12}), 400, "invalid", "level")
    error_of(srv.api("POST", "/domains", json={"path": "x", "limits": {"max_jobz": 1}}), 400,
             "invalid")
    error_of(srv.api("POST", "/domains", json={"path": "/x/"}), 400, "invalid", "path")

    cal = srv.ok("POST", "/calendars", json={"name": "vcal", "dates": ["2026-10-02", "2026-10-01",
                                                                       "2026-10-01"]}, status=201)
    assert cal["dates"] == ["2026-10-01", "2026-10-02"], "sorted, each once"
    err = error_of(srv.api("PUT", "/calendars/vcal", json={"dates": []},
                           headers={"If-Match": '"9"'}), 412, "conflict", "version")
    assert err["message"].startswith('calendar "vcal"'), err
    err = error_of(srv.api("POST", "/calendars", json={"name": "vcal2", "dates": ["2026-02-30"]}),
                   400, "invalid")
    assert "2026-02-30" in err["message"]
    error_of(srv.api("POST", "/calendars", json={"name": "vcal"}), 409, "exists", "name")
    error_of(srv.api("DELETE", "/calendars/no-such"), 404, "not_found")


def test_calendar_in_use_cannot_be_deleted(shared_server):
    srv = shared_server
    srv.ok("POST", "/calendars", json={"name": "hol", "dates": ["2030-01-01"]}, status=201)
    srv.add_job(name="cal-user", calendars={"skip": ["hol"]})
    err = error_of(srv.api("DELETE", "/calendars/hol"), 409, "busy", "name")
    assert err["message"] == ('calendar "hol" is used by 1 job(s) ("cal-user"); change or remove '
                              'them first')
    assert srv.ok("GET", "/calendars/hol")["dates"] == ["2030-01-01"]
    srv.ok("DELETE", "/jobs/cal-user", status=204)
    srv.ok("DELETE", "/calendars/hol", status=204)


def test_cli_domain_and_calendar_commands(shared_server, tmp_path):
    srv = shared_server
    r = srv.cli("domain", "add", "corp", "--level", "2", "--max-shards", "3",
                "--description", "the corporation")
    assert r.returncode == 0, r.stderr
    r = srv.cli("domain", "add", "corp/hr", "--level", "6")
    assert r.returncode == 0, r.stderr
    r = srv.cli("domain", "list", "--json")
    assert r.returncode == 0, r.stderr
    doms = {d["path"]: d for d in json.loads(r.stdout)["items"]}
    assert doms["corp"]["level"] == 2 and doms["corp"]["limits"]["max_shards"] == 3
    assert doms["corp/hr"]["level"] == 6
    r = srv.cli("domain", "list")
    assert r.returncode == 0 and "corp/hr" in r.stdout
    r = srv.cli("domain", "add", "corp", "--level", "2")
    assert r.returncode == 2 and r.stderr.startswith("tethys: ") and "corp" in r.stderr
    r = srv.cli("domain", "add", "corp/x", "--level", "11")
    assert r.returncode == 2 and "level" in r.stderr

    r = srv.cli("job", "add", "cli-dj", "--command", "true", "--domain", "corp/hr",
                "--shards", "4")
    assert r.returncode == 2
    assert r.stderr == 'tethys: domain "corp": at most 3 shards per job; this job has 4\n'
    # edit: the fields given change, the others stay; nothing to change is a usage error
    r = srv.cli("domain", "edit", "corp", "--max-jobs", "7")
    assert r.returncode == 0 and 'domain "corp" updated' in r.stdout, r.stdout + r.stderr
    corp = json.loads(srv.cli("domain", "show", "corp", "--json").stdout)
    assert corp["limits"]["max_jobs"] == 7 and corp["limits"]["max_shards"] == 3
    assert corp["description"] == "the corporation"
    r = srv.cli("domain", "edit", "corp")
    assert r.returncode == 2 and "nothing to change" in r.stderr
    r = srv.cli("domain", "rm", "corp/hr")
    assert r.returncode == 0 and 'domain "corp/hr" removed' in r.stdout, r.stderr
    r = srv.cli("domain", "rm", "corp")
    assert r.returncode == 0, r.stderr  # no jobs in it: it may go
    r = srv.cli("domain", "show", "corp")
    assert r.returncode == 2 and "corp" in r.stderr

    r = srv.cli("calendar", "add", "cli-cal", "--dates", "2026-01-01,2026-02-17",
                "--description", "holidays")
    assert r.returncode == 0, r.stderr
    f = tmp_path / "cal.yaml"
    f.write_text('name: cli-cal2\ndates: ["2027-01-01"]\n')
    r = srv.cli("calendar", "add", "-f", str(f))
    assert r.returncode == 0, r.stderr
    r = srv.cli("calendar", "show", "cli-cal", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["dates"] == ["2026-01-01", "2026-02-17"]
    r = srv.cli("calendar", "list", "--json")
    names = {c["name"] for c in json.loads(r.stdout)["items"]}
    assert {"cli-cal", "cli-cal2"} <= names
    r = srv.cli("calendar", "add", "cli-bad", "--dates", "2026-13-01")
    assert r.returncode == 2 and "2026-13-01" in r.stderr
    r = srv.cli("calendar", "edit", "cli-cal", "--dates", "2026-05-01")
    assert r.returncode == 0 and 'calendar "cli-cal" updated' in r.stdout, r.stdout + r.stderr
    cal = json.loads(srv.cli("calendar", "show", "cli-cal", "--json").stdout)
    assert cal["dates"] == ["2026-05-01"] and cal["description"] == "holidays"
    f.write_text('name: cli-cal2\ndates: ["2028-01-01"]\n')
    r = srv.cli("calendar", "edit", "cli-cal2", "-f", str(f))
    assert r.returncode == 0 and 'calendar "cli-cal2" replaced' in r.stdout, r.stderr
    r = srv.cli("calendar", "edit", "cli-cal2")
    assert r.returncode == 2 and "--dates" in r.stderr
    # usage errors, the same for both kinds
    for args, why in ((("calendar", "list", "x"), "calendar list takes no NAME"),
                      (("domain", "list", "x"), "domain list takes no PATH"),
                      (("calendar", "show"), "calendar show: which calendar? give its NAME"),
                      (("domain", "frob"), 'unknown domain command "frob"')):
        r = srv.cli(*args)
        assert r.returncode == 2 and r.stderr.startswith(f"tethys: {why}"), (args, r.stderr)
