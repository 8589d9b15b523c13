"""The REST API's basics against a real server: authentication, every kind of bad request
(each answered with a clear error naming the field, and changing nothing), versions and
If-Match, and the job lifecycle through PUT, PATCH, DELETE, enable and disable."""
import json
import os
import stat
import subprocess

import pytest

from conftest import config_snapshot, error_of


# ---- health and authentication ---------------------------------------------------------------


def test_health_needs_no_token(shared_server, tethys):
    r = shared_server.api("GET", "/health", token=False)
    assert r.status_code == 200, r.text
    body = r.json()
    version = subprocess.run([tethys, "version"], capture_output=True, text=True).stdout.split()[1]
    assert body["status"] == "ok"
    assert body["version"] == version
    assert isinstance(body["uptime_s"], int) and 0 <= body["uptime_s"] < 3600


def test_token_file_is_private_and_server_json_names_the_server(shared_server):
    st = os.stat(shared_server.data / "token")
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert 32 <= len(shared_server.token) <= 64
    info = json.loads((shared_server.data / "server.json").read_text())
    assert info["pid"] == shared_server.pid
    assert info["url"] == shared_server.url


@pytest.mark.parametrize("headers, fragment", [
    (None, "missing bearer token"),
    ({"Authorization": "Bearer not-the-token"}, "wrong bearer token"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "bearer"),
])
def test_requests_without_the_token_get_401_and_change_nothing(shared_server, headers, fragment):
    before = config_snapshot(shared_server)
    for method, path, body in [("GET", "/jobs", None), ("GET", "/alerts", None),
                               ("POST", "/jobs", {"name": "auth-x", "command": "true"}),
                               ("DELETE", "/jobs/auth-x", None)]:
        r = shared_server.api(method, path, json=body, headers=headers, token=False)
        err = error_of(r, 401, "unauthorized")
        assert fragment in err["message"].lower()
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert config_snapshot(shared_server) == before


def test_unknown_route_404_and_wrong_method_405(shared_server):
    error_of(shared_server.api("GET", "/nothing-here"), 404, "not_found")
    r = shared_server.api("DELETE", "/jobs")
    err = error_of(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "GET, POST"
    assert "DELETE" in err["message"]


# ---- bad requests: a clear error and no change ----------------------------------------------

BAD_JOBS = [
    # (body, status, code, field, message fragment)
    ('{"name": "bad-1",', 400, "invalid", "body", "malformed JSON at line 1, column 17"),
    ('{"name": "bad-1", "command": "a", "command": "b"}', 400, "invalid", "body",
     "duplicate object key"),
    ("[1, 2]", 400, "invalid", "body", "expected a JSON object, got an array"),
    ('"text"', 400, "invalid", "body", "'[' or '{' expected"),
    ("", 400, "invalid", "body", "a JSON object is required"),
    ('{"name": "bad-1", "command": "true", "shardz": 3}', 400, "invalid", "shardz",
     'unknown field "shardz"; did you mean "shards"?'),
    ('{"name": "bad-1", "command": "true", "timeuot": 3}', 400, "invalid", "timeuot",
     'did you mean "timeout"?'),
    ('{"name": "bad-1", "command": "true", "shards": 20000}', 400, "invalid", "shards",
     "shards: 20000 is out of range 1-10000"),
    ('{"name": "bad-1", "command": "true", "shards": 0}', 400, "invalid", "shards",
     "shards: 0 is out of range 1-10000"),
    ('{"name": "bad-1", "command": "true", "level": 10}', 400, "invalid", "level",
     "level: 10 is out of range 0-9"),
    ('{"name": "bad-1", "command": "true", "timeout": -1}', 400, "invalid", "timeout",
     "timeout"),
    ('{"name": "bad-1", "command": "true", "output_cap": 100}', 400, "invalid", "output_cap",
     "output_cap: 100 is out of range 1024-16777216"),
    ('{"name": "bad-1", "command": "true", "misfire_threshold": 0}', 400, "invalid",
     "misfire_threshold", "misfire_threshold"),
    ('{"name": "bad-1", "command": "true", "catch_up_max": 1001}', 400, "invalid",
     "catch_up_max", "catch_up_max"),
    ('{"name": "bad-1", "command": "true", "retry_backoff_factor": 11.0}', 400, "invalid",
     "retry_backoff_factor", "retry_backoff_factor"),
    ('{"name": "bad-1", "command": "true", "timeout": "3600"}', 400, "invalid", "timeout",
     'timeout: "3600" is a string; expected an integer from 0 to 2678400'),
    ('{"name": "bad-1", "command": "true", "shards": 2.0}', 400, "invalid", "shards",
     "shards: 2.0 is a floating-point number"),
    ('{"name": "bad-1", "command": "true", "enabled": "yes"}', 400, "invalid", "enabled",
     'enabled: "yes" is a string; expected true or false'),
    ('{"name": 5, "command": "true"}', 400, "invalid", "name", "name"),
    ('{"name": "bad-1", "command": "true", "overlap": "sometimes"}', 400, "invalid", "overlap",
     "sometimes"),
    ('{"name": "bad-1"}', 400, "invalid", "command", "command: missing"),
    ('{"command": "true"}', 400, "invalid", "name", "name: missing"),
    ('{"name": "-bad", "command": "true"}', 400, "invalid", "name", "name"),
    ('{"name": "bad-1", "command": "true", "schedule": "0 0 12 32 * ?"}', 400, "invalid",
     "schedule", 'schedule: field 4 (day-of-month): "32" is out of range 1-31'),
    ('{"name": "bad-1", "command": "true", "time_zone": "Mars/Olympus"}', 400, "invalid",
     "time_zone", 'unknown time zone "Mars/Olympus"'),
    ('{"name": "bad-1", "command": "true", "env": {"TETHYS_JOB": "x"}}', 400, "invalid",
     "env.TETHYS_JOB", '"TETHYS_JOB" is reserved'),
    ('{"name": "bad-1", "command": "true", "shards": 4, "shard_params": {"7": "x"}}', 400,
     "invalid", "shard_params.7", "shard 7 does not exist; the job has 4 shards (0-3)"),
    ('{"name": "bad-1", "command": "true", "timeout": 1800, "timeout_alarm": 3600}', 400,
     "invalid", "timeout_alarm", "timeout_alarm: 3600 s is not less than timeout 1800 s"),
    ('{"name": "bad-1", "command": "true", "pause_windows": [{"daily": ["12:00", "24:00"]}]}',
     400, "invalid", "pause_windows[0].daily[1]", '"24:00" is out of range 00:00:00-23:59:59'),
    ('{"name": "bad-1", "command": "true", "calendars": {"skip": ["no-such-cal"]}}', 400,
     "invalid", "calendars.skip", 'no calendar named "no-such-cal"'),
    ('{"name": "bad-1", "command": "true", "downstream": ["bad-1"]}', 400, "invalid",
     "downstream[0]", "a job cannot trigger itself"),
    ('{"name": "bad-1", "command": "true", "schedule": "* * * * * ?", '
     '"end_at": "2020-01-01T00:00:00Z"}', 400, "invalid", "schedule", "never fires"),
    ('{"name": "bad-1", "command": "true", "strategy": "spread"}', 400, "invalid", "strategy",
     'strategy: "spread" is not one of "even", "hash" or "local"'),
    ('{"name": "bad-1", "command": "true", "prefer": ["exec-1", "gpu yes"]}', 400, "invalid",
     "prefer[1]", 'prefer[1]: "gpu yes" has a character other than letters'),
    ('{"name": "bad-1", "command": "true", "prefer_only": true}', 400, "invalid",
     "prefer_only", "prefer_only: true without a prefer list"),
]


@pytest.mark.parametrize("body, status, code, field, fragment", BAD_JOBS,
                         ids=[f"{i}-{b[3]}" for i, b in enumerate(BAD_JOBS)])
def test_bad_job_is_refused_naming_the_field_and_nothing_changes(shared_server, body, status,
                                                                 code, field, fragment):
    before = config_snapshot(shared_server)
    r = shared_server.api("POST", "/jobs", data=body.encode(),
                          headers={"Content-Type": "application/json"})
    err = error_of(r, status, code, field)
    assert fragment in err["message"], err
    assert config_snapshot(shared_server) == before


def test_oversized_body_413_and_wrong_media_type_415(shared_server):
    before = config_snapshot(shared_server)
    big = b'{"name": "big", "command": "' + b"x" * (1024 * 1024) + b'"}'
    r = shared_server.api("POST", "/jobs", data=big, headers={"Content-Type": "application/json"})
    err = error_of(r, 413, "too_large", "body")
    assert "more than the limit of 1048576 bytes" in err["message"]
    r = shared_server.api("POST", "/jobs", data=b'{"name": "mt", "command": "true"}',
                          headers={"Content-Type": "text/plain"})
    err = error_of(r, 415, "unsupported_media_type", "Content-Type")
    assert "application/json" in err["message"]
    assert config_snapshot(shared_server) == before
    # the server still answers normally afterwards
    assert shared_server.api("GET", "/health").status_code == 200


def test_bad_edits_change_nothing(shared_server):
    srv = shared_server
    srv.add_job(name="edit-me", command="true", timeout=60)
    before = config_snapshot(srv)
    cases = [
        ("PATCH", {"shards": 0}, 400, "shards"),
        ("PATCH", {"timeuot": 5}, 400, "timeuot"),
        ("PATCH", {"timeout_alarm": 120}, 400, "timeout_alarm"),
        ("PATCH", {"name": "other"}, 400, "name"),
        ("PUT", {"name": "edit-me", "command": "true", "level": "high"}, 400, "level"),
        ("PUT", {"name": "renamed", "command": "true"}, 400, "name"),
        ("PUT", {"name": "edit-me"}, 400, "command"),
    ]
    for method, body, status, field in cases:
        err = error_of(srv.api(method, "/jobs/edit-me", json=body), status, "invalid", field)
        assert err["message"], err
    error_of(srv.api("PATCH", "/jobs/edit-me", data=b"{nope",
                     headers={"Content-Type": "application/merge-patch+json"}), 400, "invalid",
             "body")
    assert config_snapshot(srv) == before


# ---- versions, If-Match, the job lifecycle ---------------------------------------------------


def test_duplicate_name_409(shared_server):
    srv = shared_server
    first = srv.add_job(name="dup", command="echo one")
    before = config_snapshot(srv)
    r = srv.api("POST", "/jobs", json={"name": "dup", "command": "echo two"})
    err = error_of(r, 409, "exists", "name")
    assert 'a job named "dup" already exists' == err["message"]
    assert config_snapshot(srv) == before
    assert srv.job("dup")["command"] == first["command"] == "echo one"


def test_etag_is_the_version_and_stale_if_match_is_412_with_no_change(shared_server):
    srv = shared_server
    r = srv.api("POST", "/jobs", json={"name": "ver", "command": "true"})
    assert r.status_code == 201 and r.headers["ETag"] == '"1"' and r.json()["version"] == 1
    r = srv.api("GET", "/jobs/ver")
    assert r.headers["ETag"] == '"1"' and r.json()["version"] == 1

    r = srv.api("PATCH", "/jobs/ver", json={"description": "first edit"},
                headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"2"' and r.json()["version"] == 2
    before = config_snapshot(srv)

    # every kind of change based on version 1 is now refused
    err = error_of(srv.api("PATCH", "/jobs/ver", json={"description": "lost"},
                           headers={"If-Match": '"1"'}), 412, "conflict", "version")
    assert "version 2, not 1" in err["message"]
    err = error_of(srv.api("PUT", "/jobs/ver", json={"command": "false"},
                           headers={"If-Match": '"1"'}), 412, "conflict", "version")
    assert "read it again" in err["message"]
    err = error_of(srv.api("DELETE", "/jobs/ver", headers={"If-Match": '"1"'}), 412, "conflict",
                   "version")
    assert err["message"].startswith('job "ver" ') and "read it again" in err["message"], err
    error_of(srv.api("DELETE", "/jobs/ver", headers={"If-Match": "soon"}), 400, "invalid",
             "If-Match")
    err = error_of(srv.api("PUT", "/jobs/ver", json={"command": "false"},
                           headers={"If-Match": "soon"}), 400, "invalid", "If-Match")
    assert config_snapshot(srv) == before

    # and the current version works; a weak ETag is accepted too
    r = srv.api("PUT", "/jobs/ver", json={"command": "echo replaced"}, headers={"If-Match": 'W/"2"'})
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["version"] == 3 and job["command"] == "echo replaced"
    assert job["description"] == "", "PUT replaces: fields left out return to their defaults"
    r = srv.api("DELETE", "/jobs/ver", headers={"If-Match": '"3"'})
    assert r.status_code == 204 and r.content == b""


def test_put_patch_delete_enable_disable(shared_server):
    srv = shared_server
    job = srv.add_job(name="life", command="true", schedule="0 0 3 * * ?",
                      time_zone="Asia/Shanghai", env={"A": "1", "B": "2"}, timeout=30,
                      shards=2, shard_params="0=beijing,1=shanghai")
    assert job["shard_params"] == {"0": "beijing", "1": "shanghai"}
    assert job["state"]["next_fire"] is not None and job["state"]["next_fire"].endswith(
        "T03:00:00+08:00"), job["state"]

    # PATCH merges objects key by key; null restores a default
    job = srv.patch("life", env={"A": None, "C": "3"}, timeout=None, shard_params={"1": "sz"})
    assert job["env"] == {"B": "2", "C": "3"}
    assert job["timeout"] == 0
    assert job["shard_params"] == {"0": "beijing", "1": "sz"}
    assert job["version"] == 2

    # disable: no next fire; enable: back
    job = srv.ok("POST", "/jobs/life/disable")
    assert job["enabled"] is False and job["version"] == 3
    assert srv.job("life")["state"]["next_fire"] is None
    job = srv.ok("POST", "/jobs/life/enable")
    assert job["enabled"] is True and job["version"] == 4
    assert srv.wait_for(lambda: srv.job("life")["state"]["next_fire"], 5, what="next_fire")

    # PUT without If-Match replaces the current version; the name may be left out
    job = srv.ok("PUT", "/jobs/life", json={"command": "echo put", "schedule": None})
    assert job["version"] == 5 and job["command"] == "echo put" and job["schedule"] is None
    assert job["env"] == {} and job["shards"] == 1

    # unknown jobs
    error_of(srv.api("PUT", "/jobs/no-such", json={"command": "true"}), 404, "not_found", "name")
    error_of(srv.api("PATCH", "/jobs/no-such", json={"level": 1}), 404, "not_found", "name")
    error_of(srv.api("POST", "/jobs/no-such/enable"), 404, "not_found", "name")

    r = srv.api("DELETE", "/jobs/life")
    assert r.status_code == 204
    err = error_of(srv.api("GET", "/jobs/life"), 404, "not_found", "name")
    assert err["message"] == 'no job named "life"'
    error_of(srv.api("DELETE", "/jobs/life"), 404, "not_found")
    assert "life" not in config_snapshot(srv)


def test_canonical_form_round_trips(shared_server):
    srv = shared_server
    job = srv.add_job(name="canon", command="true", start_at="2030-01-01T00:00:00+08:00",
                      schedule="@daily", pause_windows=[{"daily": ["22:00", "06:00"]}],
                      env={"Z": "1", "A": "2"}, retries=3)
    assert job["start_at"] == "2029-12-31T16:00:00Z"
    assert list(job["env"]) == ["A", "Z"]
    assert job["retry_backoff_max"] == 3600 and job["retry_backoff_factor"] == 2.0
    canon = {k: v for k, v in job.items() if k not in ("version", "state")}
    again = srv.ok("PUT", "/jobs/canon", json=canon)
    assert {k: v for k, v in again.items() if k not in ("version", "state")} == canon


def test_placement_fields_appear_only_when_set(shared_server):
    """strategy, prefer and prefer_only are left out of a job at their defaults: a job
    stored before they existed reads back, and compares, as it was."""
    srv = shared_server
    plain = srv.add_job(name="place-plain", command="true", shards=4)
    assert not {"strategy", "prefer", "prefer_only"} & set(plain)
    job = srv.add_job(name="place-set", command="true", shards=4, strategy="hash",
                      prefer=["gpu=yes", "exec-1"], prefer_only=True)
    assert (job["strategy"], job["prefer"], job["prefer_only"]) == \
        ("hash", ["gpu=yes", "exec-1"], True)
    keys = list(job)
    assert keys.index("job_param") < keys.index("strategy") < keys.index("prefer") < \
        keys.index("prefer_only") < keys.index("timeout")
    back = srv.patch("place-set", strategy=None, prefer=None, prefer_only=None)
    assert not {"strategy", "prefer", "prefer_only"} & set(back)


def test_cron_check_and_executors(shared_server):
    srv = shared_server
    out = srv.ok("POST", "/cron/check", json={"expression": "0/5 * * * * ?",
                                              "time_zone": "Asia/Shanghai", "count": 2,
                                              "from": "2017-08-30T17:22:17+08:00"})
    assert out["valid"] is True
    assert out["next"] == ["2017-08-30T17:22:20+08:00", "2017-08-30T17:22:25+08:00"]
    out = srv.ok("POST", "/cron/check", json={"expression": "0 0 12 32 * ?"})
    assert out["valid"] is False and out["error"]["field"] == "day-of-month"
    err = error_of(srv.api("POST", "/cron/check", json={"expression": "* * * * *",
                                                         "time_zone": "Mars/Olympus"}), 400,
                   "invalid", "time_zone")
    assert "Mars/Olympus" in err["message"]
    error_of(srv.api("POST", "/cron/check", json={"expresion": "* * * * *"}), 400, "invalid",
             "expresion")

    ex = srv.ok("GET", "/executors")["items"]
    assert len(ex) == 1
    # the executor's id is its data directory's own, kept across restarts
    assert ex[0]["id"] == srv.executor_id()
    assert ex[0]["kind"] == "embedded" and ex[0]["available"] is True
    assert ex[0]["capacity"] == 4 * os.cpu_count()
    assert ex[0]["epoch"] >= 1


def test_history_and_stats_parameters_are_checked(shared_server):
    srv = shared_server
    err = error_of(srv.api("GET", "/history", params={"limit": "0"}), 400, "invalid", "limit")
    assert "1-1000" in err["message"]
    error_of(srv.api("GET", "/history", params={"limit": "many"}), 400, "invalid", "limit")
    err = error_of(srv.api("GET", "/history", params={"since": "yesterday"}), 400, "invalid",
                   "since")
    assert "yesterday" in err["message"]
    error_of(srv.api("GET", "/history", params={"status": "exploded"}), 400, "invalid", "status")
    error_of(srv.api("GET", "/stats", params={"group_by": "planet"}), 400, "invalid", "group_by")
    error_of(srv.api("GET", "/runs/0123456789abcdef"), 404, "not_found", "run_id")
    error_of(srv.api("GET", "/runs/0123456789abcdef/log"), 404, "not_found", "run_id")


def test_answers_to_changes_show_the_new_next_fire(server):
    srv = server()
    for i in range(5):
        job = srv.add_job(name=f"nf-{i}", schedule="0 0 1 * * ?", time_zone="Asia/Tokyo")
        assert job["state"]["next_fire"] is not None, job["state"]
        assert job["state"]["next_fire"].endswith("T01:00:00+09:00"), job["state"]
    job = srv.patch("nf-0", schedule="0 30 5 * * ?")
    assert job["state"]["next_fire"].endswith("T05:30:00+09:00"), job["state"]
    job = srv.ok("POST", "/jobs/nf-1/disable")
    assert job["state"]["next_fire"] is None
    job = srv.ok("POST", "/jobs/nf-1/enable")
    assert job["state"]["next_fire"].endswith("T01:00:00+09:00"), job["state"]
    job = srv.ok("PUT", "/jobs/nf-2", json={"command": "true", "schedule": "0 15 3 * * ?",
                                            "start_at": "2031-05-05T00:00:00Z"})
    assert job["state"]["next_fire"] == "2031-05-05T03:15:00+00:00", job["state"]
