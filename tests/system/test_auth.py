"""Users, sessions and roles (issue 12's first slice): the real server and CLI on 127.0.0.1.

The first start's one-time password (printed once, in DATA/initial-admin-password until it
is changed, never made again); a user who must change the password can do nothing else;
signing in (the cookie's flags, Secure under TLS), CSRF (missing, wrong, right; a bearer
needs none), signing out, idle and absolute expiry on the test clock; lock-out after five
failures and its end, an unknown name answered exactly like a known one (words, status,
lock-out, the time the answer takes); roles on domain subtrees for users and tokens alike -
a viewer changes nothing, through any write route, and sees only its subtree in every list;
an operator works within its subtree only, never on domains; a subtree admin manages its
domains and the grants within them, nothing else; `tethys user ...` and `tethys token create
--role` end to end; the security headers on every kind of answer.
"""
import json
import os
import stat
import statistics
import time

import pytest
import requests

from conftest import error_of, wait_for

PASSWORD = "correct horse battery"


# ---- helpers -----------------------------------------------------------------------------------


class Browser:
    """What a browser does: sign in, keep the cookie, echo the CSRF token on changes."""

    def __init__(self, srv, user, password=PASSWORD, status=201):
        self.srv = srv
        self.s = requests.Session()
        self.s.trust_env = False
        self.s.verify = srv.cacert or True
        self.signin = self.s.post(srv.url + "/api/v1/session",
                                  json={"user": user, "password": password}, timeout=30)
        assert self.signin.status_code == status, self.signin.text
        self.csrf = self.signin.json().get("csrf") if status == 201 else None

    def api(self, method, path, json=None, csrf=True, **kw):
        headers = dict(kw.pop("headers", None) or {})
        if csrf and self.csrf and method != "GET":
            headers["X-CSRF-Token"] = self.csrf
        return self.s.request(method, self.srv.url + "/api/v1" + path, json=json,
                              headers=headers, timeout=30, **kw)

    def ok(self, method, path, json=None, status=None, **kw):
        r = self.api(method, path, json=json, **kw)
        good = r.status_code == status if status else 200 <= r.status_code < 300
        assert good, f"{method} {path} -> {r.status_code} {r.text}"
        return r.json() if r.content else None

    def close(self):
        self.s.close()


def add_user(srv, name, *grants, password=PASSWORD, must_change=False):
    """A user made by the bootstrap token, grants as (role, domain) pairs."""
    body = {"name": name, "password": password, "must_change_password": must_change,
            "grants": [{"role": r, "domain": d} for r, d in grants]}
    return srv.ok("POST", "/users", json=body, status=201)


def bearer(srv, token, method, path, **kw):
    return srv.api(method, path, headers={"Authorization": f"Bearer {token}"}, token=False, **kw)


def first_password(srv):
    return (srv.data / "initial-admin-password").read_text().strip()


def forbidden(r, *fragments):
    err = error_of(r, 403, "forbidden")
    for f in fragments:
        assert f in err["message"], err["message"]
    return err


@pytest.fixture
def tree(server):
    """A server with domains finance (and finance/eu) and hr, a job in each, a run of each
    (failed: an alert each), and a calendar."""
    srv = server(test_hooks=True)
    for d in ("finance", "finance/eu", "hr"):
        srv.ok("POST", "/domains", json={"path": d}, status=201)
    srv.add_job(name="ledger", domain="finance", command="false")
    srv.add_job(name="ledger-eu", domain="finance/eu", command="false")
    srv.add_job(name="payroll", domain="hr", command="false")
    srv.ok("POST", "/calendars", json={"name": "holidays", "dates": ["2026-12-25"]}, status=201)
    runs = {}
    for job in ("ledger", "payroll"):
        runs[job] = srv.run_now(job)["runs"][0]["run_id"]
        srv.wait_run(runs[job])
    srv.wait_for(lambda: len(srv.alerts()["abnormal_jobs"]) >= 2, what="the failure alerts")
    srv.runs_of = runs
    return srv


# ---- the first start ----------------------------------------------------------------------------


def test_first_start_makes_admin_with_a_one_time_password(server):
    srv = server()
    path = srv.data / "initial-admin-password"
    pw = first_password(srv)
    assert len(pw) == 20
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    line = f"sign in at {srv.url}/ as admin with password {pw} — you must change it."
    assert line in srv.log_text()
    assert "created the first user user=admin" in srv.log_text()
    assert srv.log_text().count(pw) == 1  # printed once; the log lines never hold it
    users = srv.ok("GET", "/users")["items"]
    assert [(u["name"], u["grants"], u["must_change_password"]) for u in users] == \
        [("admin", [{"domain": "", "role": "admin"}], True)]
    # no default password: a guess is refused like any other
    error_of(srv.api("POST", "/session", json={"user": "admin", "password": "admin"},
                     token=False), 401, "unauthorized")

    # a restart makes no second admin and prints nothing; the file stays until changed
    srv.stop()
    srv = server.restart(srv)
    assert first_password(srv) == pw
    assert srv.log_text().count("as admin with password") == 0
    assert len(srv.ok("GET", "/users")["items"]) == 1

    # the admin may only change the password, and then the file goes
    b = Browser(srv, "admin", pw)
    assert b.signin.json()["must_change_password"] is True
    for method, path in (("GET", "/jobs"), ("GET", "/users"), ("POST", "/jobs/x/run")):
        forbidden(b.api(method, path), "user admin must change the password before anything "
                  "else: POST /api/v1/session/password")
    me = b.ok("GET", "/session")
    assert me["name"] == "admin" and me["must_change_password"] is True
    err = error_of(b.api("POST", "/session/password", json={"old": pw, "new": "short"}), 400,
                   "invalid", "new")
    assert "at least 8 characters" in err["message"]
    error_of(b.api("POST", "/session/password", json={"old": pw, "new": pw}), 400, "invalid", "new")
    error_of(b.api("POST", "/session/password", json={"old": "nope-nope", "new": PASSWORD}), 400,
             "invalid", "old")
    error_of(b.api("POST", "/session/password", json={"old": pw, "new": PASSWORD, "x": 1}), 400,
             "invalid", "x")
    assert b.ok("POST", "/session/password", json={"old": pw, "new": PASSWORD})[
        "must_change_password"] is False
    assert not (srv.data / "initial-admin-password").exists()
    assert "password changed user=admin" in srv.log_text()
    assert b.ok("GET", "/jobs")["items"] == []  # the same session goes on
    # the one-time password no longer opens anything; the new one does
    Browser(srv, "admin", pw, status=401)
    Browser(srv, "admin", PASSWORD).close()
    b.close()
    srv.stop()
    srv = server.restart(srv)
    assert not (srv.data / "initial-admin-password").exists()


# ---- sessions --------------------------------------------------------------------------------


def test_signin_cookie_csrf_and_signout(server):
    srv = server()
    add_user(srv, "alice", ("admin", ""))
    b = Browser(srv, "alice")
    cookie = b.signin.headers["Set-Cookie"]
    value = b.s.cookies["tethys_session"]
    assert len(value) == 64 and int(value, 16) >= 0  # 256 random bits
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=604800"):
        assert flag in cookie, cookie
    assert "Secure" not in cookie  # plain HTTP on loopback
    body = b.signin.json()
    assert body["name"] == "alice" and body["kind"] == "user"
    assert body["grants"] == [{"domain": "", "role": "admin"}]
    assert len(body["csrf"]) == 64 and body["expires_at_ms"] > time.time() * 1000
    assert body["idle_timeout_s"] == 12 * 3600
    # the store keeps neither the session id nor a password
    log = srv.log_text()
    assert value not in log and PASSWORD not in log
    assert "signed in user=alice remote=127.0.0.1" in log

    # reading needs no CSRF token; a change without it, or with a wrong one, is refused
    assert b.ok("GET", "/jobs")["items"] == []
    job = {"name": "by-alice", "command": "true"}
    forbidden(b.api("POST", "/jobs", json=job, csrf=False), "missing X-CSRF-Token header")
    forbidden(b.api("POST", "/jobs", json=job, csrf=False, headers={"X-CSRF-Token": "0" * 64}),
              "wrong X-CSRF-Token header")
    assert srv.api("GET", "/jobs/by-alice").status_code == 404  # nothing was made
    assert b.ok("POST", "/jobs", json=job, status=201)["name"] == "by-alice"
    assert srv.ok("GET", "/jobs/by-alice/versions")["items"][0]["who"] == "user:alice"
    assert 'user="alice"' in srv.log_text()  # refusals name the user
    # GET /session gives the csrf token again (a reloaded page)
    assert b.ok("GET", "/session")["csrf"] == b.csrf
    # a bearer token needs none, and wins over a cookie
    r = srv.api("POST", "/jobs", json={"name": "by-token", "command": "true"})
    assert r.status_code == 201
    r = b.s.get(srv.url + "/api/v1/session", headers={"Authorization": f"Bearer {srv.token}"})
    assert r.json()["name"] == "default" and r.json()["all"] is True

    # signing out ends the session here and now; the cookie is dropped
    forbidden(b.api("DELETE", "/session", csrf=False), "X-CSRF-Token")
    r = b.api("DELETE", "/session")
    assert r.status_code == 204
    assert "Max-Age=0" in r.headers["Set-Cookie"]
    assert "signed out user=alice" in srv.log_text()
    stale = requests.get(srv.url + "/api/v1/jobs", cookies={"tethys_session": value}, timeout=10)
    err = error_of(stale, 401, "unauthorized")
    assert "no such session" in err["message"]
    # a token is revoked, not signed out; it has no password
    error_of(srv.api("DELETE", "/session"), 400, "invalid")
    error_of(srv.api("POST", "/session/password", json={"old": "a", "new": "b" * 10}), 400)
    # cookies that are not ours
    for v in ("x", "G" * 64, "0" * 64):
        r = requests.get(srv.url + "/api/v1/jobs", cookies={"tethys_session": v}, timeout=10)
        error_of(r, 401, "unauthorized")
    r = requests.get(srv.url + "/api/v1/jobs", timeout=10,
                     headers={"Cookie": "tethys_session=" + "1" * 64 + "; tethys_session=" +
                              "2" * 64})
    assert "two different tethys_session cookies" in error_of(r, 401)["message"]
    b.close()


def test_signin_errors(server):
    srv = server()

    def signin(body):
        return srv.api("POST", "/session", json=body, token=False)

    error_of(signin({"user": "a"}), 400, "invalid", "password")
    error_of(signin({"password": "a"}), 400, "invalid", "user")
    error_of(signin({"user": "a", "password": "b", "remember": True}), 400, "invalid", "remember")
    error_of(signin({"user": "bad name", "password": "b"}), 400, "invalid", "user")
    error_of(signin({"user": 3, "password": "b"}), 400, "invalid", "user")
    r = srv.api("POST", "/session", data="user=a&password=b", token=False,
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    error_of(r, 415)  # a cross-site form cannot sign anyone in


def test_secure_cookie_under_tls(server, pki):
    srv = server("--tls-cert", pki["cert"], "--tls-key", pki["key"], cacert=pki["ca"])
    add_user(srv, "alice", ("viewer", ""))
    b = Browser(srv, "alice")
    cookie = b.signin.headers["Set-Cookie"]
    assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert b.ok("GET", "/jobs")["items"] == []
    b.close()


def test_sessions_expire_idle_and_absolute(server):
    srv = server(test_hooks=True)
    add_user(srv, "alice", ("viewer", ""))
    # idle: 12 hours unused
    b = Browser(srv, "alice")
    srv.clock(11 * 3600)
    assert b.api("GET", "/jobs").status_code == 200  # used: the 12 hours start again
    srv.clock(22 * 3600)
    assert b.api("GET", "/jobs").status_code == 200
    srv.clock(34 * 3600 + 120)
    err = error_of(b.api("GET", "/jobs"), 401, "unauthorized")
    assert "12 hours after its last use" in err["message"]
    b.close()
    # absolute: 7 days however busy
    b = Browser(srv, "alice")
    start = 34 * 3600 + 120
    for step in range(1, 16):
        srv.clock(start + step * 11 * 3600)
        assert b.api("GET", "/jobs").status_code == 200, step
    srv.clock(start + 7 * 86400 + 60)
    err = error_of(b.api("GET", "/jobs"), 401, "unauthorized")
    assert "sessions last 7 days" in err["message"]
    b.close()
    # a new sign-in clears sessions that ended
    Browser(srv, "alice").close()
    srv.clock(0)


def test_a_new_password_ends_the_other_sessions(server):
    srv = server()
    add_user(srv, "alice", ("viewer", ""))
    a, b = Browser(srv, "alice"), Browser(srv, "alice")
    a.ok("POST", "/session/password", json={"old": PASSWORD, "new": "a whole new one"})
    assert a.api("GET", "/jobs").status_code == 200
    assert error_of(b.api("GET", "/jobs"), 401)["message"].startswith("no such session")
    # an admin's reset ends them all, and must be changed at the next sign-in
    srv.ok("PUT", "/users/alice", json={"password": "reset by admin"})
    error_of(a.api("GET", "/jobs"), 401)
    c = Browser(srv, "alice", "reset by admin")
    assert c.signin.json()["must_change_password"] is True
    forbidden(c.api("GET", "/jobs"), "must change the password")
    for x in (a, b, c):
        x.close()


# ---- lock-out ----------------------------------------------------------------------------------


def _timed_signin(srv, user, password):
    t0 = time.monotonic()
    r = srv.api("POST", "/session", json={"user": user, "password": password}, token=False)
    return r, time.monotonic() - t0


def test_lockout_after_five_failures_and_unknown_names_alike(server):
    srv = server("--rate-limit", "0", test_hooks=True)
    add_user(srv, "bob", ("viewer", ""))
    known, unknown = [], []
    for i in range(4):
        r, t = _timed_signin(srv, "bob", f"wrong-{i}")
        known.append(t)
        e1 = error_of(r, 401, "unauthorized")
        r, t = _timed_signin(srv, "nobody", f"wrong-{i}")
        unknown.append(t)
        e2 = error_of(r, 401, "unauthorized")
        assert e1 == e2 == {"code": "unauthorized", "field": None,
                            "message": "sign-in failed: wrong user name or password"}
    # an unknown name costs the same work as a known one (its password checked against a
    # dummy hash): without that it would answer in a fraction of the time
    assert statistics.median(unknown) > 0.4 * statistics.median(known), (known, unknown)
    assert srv.ok("GET", "/users/bob")["failed_attempts"] == 4
    # the fifth locks, for 15 minutes, both alike
    for user in ("bob", "nobody"):
        r = srv.api("POST", "/session", json={"user": user, "password": "wrong-5"}, token=False)
        err = error_of(r, 429, "too_many_requests", "user")
        assert f"user {user} is locked after 5 failed sign-ins in a row" in err["message"]
        assert 880 <= int(r.headers["Retry-After"]) <= 900
    # locked: even the right password is refused, and counts nothing
    r = srv.api("POST", "/session", json={"user": "bob", "password": PASSWORD}, token=False)
    error_of(r, 429, "too_many_requests")
    bob = srv.ok("GET", "/users/bob")
    assert bob["locked"] is True and bob["locked_until_ms"] > time.time() * 1000
    log = srv.log_text()
    assert "user locked out user=bob" in log and 'reason="locked out"' in log
    assert 'sign-in refused user=nobody remote=127.0.0.1 reason="no such user"' in log
    # 15 minutes later it opens again
    srv.clock(15 * 60 + 5)
    Browser(srv, "bob").close()
    assert srv.ok("GET", "/users/bob")["failed_attempts"] == 0
    # an admin can end a lock-out at once
    for i in range(5):
        srv.api("POST", "/session", json={"user": "bob", "password": "x"}, token=False)
    Browser(srv, "bob", status=429)
    r = srv.cli("user", "unlock", "bob")
    assert r.returncode == 0 and r.stdout == 'user "bob" unlocked\n', r.stderr
    Browser(srv, "bob").close()
    srv.clock(0)


# ---- roles ----------------------------------------------------------------------------------


def _writes(srv, run_id):
    """(method, path, body) of every write route, aimed at finance's or hr's objects."""
    return [
        ("POST", "/jobs", {"name": "new-fin", "domain": "finance", "command": "true"}),
        ("PUT", "/jobs/ledger", {"name": "ledger", "domain": "finance", "command": "true"}),
        ("PATCH", "/jobs/ledger", {"description": "x"}),
        ("DELETE", "/jobs/ledger", None),
        ("POST", "/jobs/ledger/enable", None),
        ("POST", "/jobs/ledger/disable", None),
        ("POST", "/jobs/ledger/run", None),
        ("POST", "/jobs/ledger/restore", {"version": 1}),
        ("POST", f"/runs/{run_id}/cancel", None),
        ("POST", "/domains", {"path": "finance/new"}),
        ("PUT", "/domains/finance", {"path": "finance", "level": 3}),
        ("DELETE", "/domains/finance%2Feu", None),
        ("POST", "/domains/finance/restore", {"version": 1}),
        ("POST", "/calendars", {"name": "c2", "dates": []}),
        ("PUT", "/calendars/holidays", {"name": "holidays", "dates": []}),
        ("DELETE", "/calendars/holidays", None),
        ("POST", "/calendars/holidays/restore", {"version": 1}),
        ("POST", "/tokens", {"name": "t"}),
        ("DELETE", "/tokens/x", None),
        ("POST", "/users", {"name": "eve", "password": PASSWORD}),
        ("PUT", "/users/vic", {"grants": [{"domain": "", "role": "admin"}]}),
        ("DELETE", "/users/vic", None),
        ("POST", "/test/clock", {"offset_s": 0}),
    ]


def test_a_viewer_changes_nothing_and_sees_only_its_subtree(tree):
    srv = tree
    add_user(srv, "vic", ("viewer", "finance"))
    b = Browser(srv, "vic")
    before = {j["name"]: j["version"] for j in srv.jobs()}
    for method, path, body in _writes(srv, srv.runs_of["ledger"]):
        r = b.api(method, path, json=body)
        err = forbidden(r, "user vic is a viewer of finance")
        assert "needs" in err["message"], (method, path, err)
    err = forbidden(b.api("POST", "/jobs/payroll/run"))
    assert err["message"] == "user vic is a viewer of finance: running job payroll needs " \
                             "operator on hr"
    assert forbidden(b.api("POST", "/jobs/ledger/run"))["message"] == \
        "user vic is a viewer of finance: running job ledger needs operator on finance"
    # a batch refuses each change alone
    out = b.ok("POST", "/jobs:batch", json={"items": [
        {"op": "create", "job": {"name": "b1", "domain": "finance", "command": "true"}},
        {"op": "delete", "name": "payroll"}]})
    assert [i["status"] for i in out["items"]] == [403, 403]
    assert out["items"][0]["error"]["code"] == "forbidden"
    assert {j["name"]: j["version"] for j in srv.jobs()} == before  # nothing changed

    # reading: its subtree only, in every list
    assert [j["name"] for j in b.ok("GET", "/jobs")["items"]] == ["ledger", "ledger-eu"]
    assert b.ok("GET", "/jobs", params={"domain": "finance/eu"})["items"][0]["name"] == \
        "ledger-eu"
    forbidden(b.api("GET", "/jobs", params={"domain": "hr"}),
              "listing jobs of hr needs viewer on hr")
    assert b.ok("GET", "/jobs/ledger")["domain"] == "finance"
    forbidden(b.api("GET", "/jobs/payroll"), "reading job payroll needs viewer on hr")
    forbidden(b.api("GET", "/jobs/payroll/versions"), "needs viewer on hr")
    hist = b.ok("GET", "/history")["items"]
    assert hist and {i["domain"] for i in hist} == {"finance"}
    forbidden(b.api("GET", "/history", params={"job": "payroll"}), "needs viewer on hr")
    forbidden(b.api("GET", "/history", params={"domain": "hr"}), "needs viewer on hr")
    stats = b.ok("GET", "/stats")["groups"]
    assert [g["key"] for g in stats] == ["ledger"]
    b.ok("GET", f"/runs/{srv.runs_of['ledger']}")
    forbidden(b.api("GET", f"/runs/{srv.runs_of['payroll']}"), "needs viewer on hr")
    forbidden(b.api("GET", f"/runs/{srv.runs_of['payroll']}/log"), "needs viewer on hr")
    alerts = b.ok("GET", "/alerts")
    assert {a["job"] for a in alerts["abnormal_jobs"]} == {"ledger"}
    assert {a["job"] for a in srv.alerts()["abnormal_jobs"]} >= {"ledger", "payroll"}
    assert sorted(d["path"] for d in b.ok("GET", "/domains")["items"]) == ["finance",
                                                                             "finance/eu"]
    b.ok("GET", "/domains/finance%2Feu")
    forbidden(b.api("GET", "/domains/hr"), "reading domain hr needs viewer on hr")
    assert [c["name"] for c in b.ok("GET", "/calendars")["items"]] == ["holidays"]
    b.ok("GET", "/executors")
    b.ok("POST", "/cron/check", json={"expression": "0 0 * * * ?"})
    forbidden(b.api("GET", "/users"), "needs admin on some domain")
    forbidden(b.api("GET", "/tokens"), "needs admin on the whole tree")
    b.close()


def test_a_viewer_of_several_subtrees_sees_each(tree):
    srv = tree
    add_user(srv, "two", ("viewer", "finance/eu"), ("viewer", "hr"))
    b = Browser(srv, "two")
    assert [j["name"] for j in b.ok("GET", "/jobs")["items"]] == ["ledger-eu", "payroll"]
    page = b.ok("GET", "/jobs", params={"limit": 1})
    assert [j["name"] for j in page["items"]] == ["ledger-eu"] and page["next"]
    page = b.ok("GET", "/jobs", params={"limit": 1, "cursor": page["next"]})
    assert [j["name"] for j in page["items"]] == ["payroll"]
    assert [j["name"] for j in b.ok("GET", "/jobs", params={"domain": "finance"})["items"]] == \
        ["ledger-eu"]
    assert {i["job"] for i in b.ok("GET", "/history")["items"]} == {"payroll"}
    assert [g["key"] for g in b.ok("GET", "/stats", params={"group_by": "domain"})["groups"]] == \
        ["hr"]
    forbidden(b.api("GET", "/stats", params={"group_by": "day"}), "statistics by day need domain=")
    assert b.ok("GET", "/stats", params={"group_by": "day", "domain": "hr"})["groups"]
    assert sorted(d["path"] for d in b.ok("GET", "/domains")["items"]) == ["finance/eu", "hr"]
    b.close()
    # no grant at all: empty lists, nothing readable
    add_user(srv, "nobody")
    b = Browser(srv, "nobody")
    assert b.ok("GET", "/jobs")["items"] == [] and b.ok("GET", "/history")["items"] == []
    assert b.ok("GET", "/domains")["items"] == [] and b.ok("GET", "/stats")["groups"] == []
    assert b.ok("GET", "/alerts")["abnormal_jobs"] == []
    forbidden(b.api("GET", "/jobs/ledger"), "user nobody has no role: reading job ledger")
    b.close()


def test_an_operator_works_within_its_subtree_only(tree):
    srv = tree
    add_user(srv, "ops", ("operator", "finance"))
    b = Browser(srv, "ops")
    b.ok("POST", "/jobs", json={"name": "fin2", "domain": "finance/eu", "command": "true"},
         status=201)
    b.ok("PATCH", "/jobs/fin2", json={"description": "mine"})
    b.ok("POST", "/jobs/fin2/disable")
    b.ok("POST", "/jobs/fin2/enable")
    run = b.ok("POST", "/jobs/ledger/run", status=202)["runs"][0]["run_id"]
    srv.wait_run(run)
    b.ok("POST", "/jobs/fin2/restore", json={"version": 1})
    b.ok("DELETE", "/jobs/fin2", status=204)
    # outside the subtree, and moving a job out of it
    forbidden(b.api("POST", "/jobs", json={"name": "x", "domain": "hr", "command": "true"}),
              "user ops is an operator of finance: creating job x needs operator on hr")
    forbidden(b.api("POST", "/jobs", json={"name": "x", "command": "true"}),
              "needs operator on the whole tree")
    forbidden(b.api("POST", "/jobs/payroll/run"), "needs operator on hr")
    forbidden(b.api("PATCH", "/jobs/ledger", json={"domain": "hr"}),
              "moving job ledger from finance to hr needs operator on hr")
    forbidden(b.api("PUT", "/jobs/ledger", json={"name": "ledger", "command": "true"}),
              "moving job ledger from finance to the root needs operator on the whole tree")
    assert srv.job("ledger")["domain"] == "finance"
    # domains are admins'; calendars are the whole tree's operators'
    forbidden(b.api("POST", "/domains", json={"path": "finance/x"}),
              "creating domain finance/x needs admin on finance/x")
    forbidden(b.api("PUT", "/domains/finance", json={"path": "finance"}), "needs admin on finance")
    forbidden(b.api("PUT", "/calendars/holidays", json={"name": "holidays", "dates": []}),
              "changing calendar holidays needs operator on the whole tree")
    # a batch: what it may, made; what it may not, refused alone
    out = b.ok("POST", "/jobs:batch", json={"items": [
        {"op": "create", "job": {"name": "b1", "domain": "finance", "command": "true"}},
        {"op": "create", "job": {"name": "b2", "domain": "hr", "command": "true"}},
        {"op": "replace", "job": {"name": "payroll", "domain": "hr", "command": "true"}},
        {"op": "replace", "job": {"name": "ledger", "domain": "hr", "command": "true"}}]})
    assert [i["status"] for i in out["items"]] == [201, 403, 403, 403]
    assert "moving job ledger from finance to hr" in out["items"][3]["error"]["message"]
    assert out["summary"] == {"succeeded": 1, "failed": 3}
    assert srv.job("b1")["domain"] == "finance" and srv.job("ledger")["domain"] == "finance"
    b.close()


def test_a_subtree_admin_manages_its_domains_and_grants(tree):
    srv = tree
    add_user(srv, "fa", ("admin", "finance"))
    add_user(srv, "carol", ("viewer", "hr"))
    b = Browser(srv, "fa")
    b.ok("POST", "/domains", json={"path": "finance/us", "level": 2}, status=201)
    b.ok("PUT", "/domains/finance%2Fus", json={"path": "finance/us", "level": 3})
    b.ok("DELETE", "/domains/finance%2Fus", status=204)
    forbidden(b.api("POST", "/domains", json={"path": "hr/x"}), "needs admin on hr/x")
    forbidden(b.api("POST", "/domains", json={"path": "fin"}), "needs admin on fin")
    # grants within finance, on anyone; the ones outside stay and are not shown
    users = {u["name"]: u for u in b.ok("GET", "/users")["items"]}
    assert users["carol"]["grants"] == []
    out = b.ok("PUT", "/users/carol", json={"grants": [{"domain": "finance/eu",
                                                         "role": "operator"}]})
    assert out["grants"] == [{"domain": "finance/eu", "role": "operator"}]
    assert srv.ok("GET", "/users/carol")["grants"] == [
        {"domain": "finance/eu", "role": "operator"}, {"domain": "hr", "role": "viewer"}]
    forbidden(b.api("PUT", "/users/carol", json={"grants": [{"domain": "hr", "role": "admin"}]}),
              "user fa is an admin of finance: granting admin on hr needs admin on hr")
    forbidden(b.api("PUT", "/users/carol", json={"grants": [{"role": "viewer"}]}),
              "granting viewer on the whole tree needs admin on the whole tree")
    forbidden(b.api("PUT", "/users/carol", json={"password": "x" * 12}),
              "changing password of user carol needs admin on the whole tree")
    forbidden(b.api("POST", "/users", json={"name": "dave", "password": PASSWORD}),
              "needs admin on the whole tree")
    forbidden(b.api("DELETE", "/users/carol"), "needs admin on the whole tree")
    forbidden(b.api("POST", "/tokens", json={"name": "t"}), "needs admin on the whole tree")
    b.close()


def test_tokens_have_roles_too(tree):
    srv = tree
    r = srv.cli("token", "create", "fin-ci", "--role", "operator", "--domain", "finance")
    assert r.returncode == 0, r.stderr
    assert "(operator of finance)" in r.stderr
    fin = r.stdout.strip()
    # a bearer needs no CSRF token; its roles are a user's
    assert bearer(srv, fin, "POST", "/jobs/ledger/run").status_code == 202
    err = forbidden(bearer(srv, fin, "POST", "/jobs/payroll/run"))
    assert err["message"] == "token fin-ci is an operator of finance: running job payroll " \
                             "needs operator on hr"
    assert [j["name"] for j in bearer(srv, fin, "GET", "/jobs").json()["items"]] == \
        ["ledger", "ledger-eu"]
    # without --role: a viewer of everything, changing nothing
    viewer = srv.ok("POST", "/tokens", json={"name": "reader"}, status=201)
    assert viewer["grants"] == [{"domain": "", "role": "viewer"}]
    assert len(bearer(srv, viewer["token"], "GET", "/jobs").json()["items"]) == 3
    forbidden(bearer(srv, viewer["token"], "POST", "/jobs/ledger/disable"),
              "token reader is a viewer of the whole tree")
    # roles pair in order; bad ones are refused before anything is made
    r = srv.cli("token", "create", "two", "--role", "viewer", "--domain", "hr", "--role",
                "admin", "--domain", "finance/eu")
    assert r.returncode == 0, r.stderr
    listed = {t["name"]: t for t in srv.ok("GET", "/tokens")["items"]}
    assert listed["two"]["grants"] == [{"domain": "finance/eu", "role": "admin"},
                                       {"domain": "hr", "role": "viewer"}]
    assert listed["default"]["grants"] == [{"domain": "", "role": "admin"}]
    r = srv.cli("token", "create", "bad", "--role", "boss")
    assert r.returncode == 2 and '--role: "boss" is not a role' in r.stderr
    r = srv.cli("token", "create", "bad", "--role", "viewer", "--role", "admin", "--domain", "a")
    assert r.returncode == 2 and "2 --role and 1 --domain" in r.stderr
    r = srv.cli("token", "create", "bad", "--domain", "a")
    assert r.returncode == 2 and "--domain needs a --role" in r.stderr
    err = error_of(srv.api("POST", "/tokens", json={"name": "bad", "grants": [
        {"domain": "a//b", "role": "viewer"}]}), 400, "invalid", "grants[0].domain")
    assert "empty part" in err["message"]
    assert "bad" not in {t["name"] for t in srv.ok("GET", "/tokens")["items"]}
    r = srv.cli("token", "list")
    assert "operator of finance" in r.stdout and "viewer of the whole tree" in r.stdout


# ---- users: the API's refusals and the CLI ----------------------------------------------------


def test_user_api_refusals(server):
    srv = server()
    add_user(srv, "bob")
    cases = [
        ({"name": "bob", "password": PASSWORD}, 409, "exists", "name"),
        ({"name": "bad name", "password": PASSWORD}, 400, "invalid", "name"),
        ({"password": PASSWORD}, 400, "invalid", "name"),
        ({"name": "x", "password": "short"}, 400, "invalid", "password"),
        ({"name": "x", "password": "x" * 1025}, 400, "invalid", "password"),
        ({"name": "x", "password": "tab\there!"}, 400, "invalid", "password"),
        ({"name": "xavier1", "password": "xavier1"}, 400, "invalid", "password"),
        ({"name": "x", "password": PASSWORD, "role": "admin"}, 400, "invalid", "role"),
        ({"name": "x", "password": PASSWORD, "grants": [{"role": "root"}]}, 400, "invalid",
         "grants[0].role"),
        ({"name": "x", "password": PASSWORD, "grants": {}}, 400, "invalid", "grants"),
        ({"name": "x", "password": PASSWORD, "must_change_password": "yes"}, 400, "invalid",
         "must_change_password"),
    ]
    for body, status, code, field in cases:
        error_of(srv.api("POST", "/users", json=body), status, code, field)
    assert [u["name"] for u in srv.ok("GET", "/users")["items"]] == ["admin", "bob"]
    error_of(srv.api("GET", "/users/nobody"), 404, "not_found", "name")
    error_of(srv.api("PUT", "/users/nobody", json={"unlock": True}), 404, "not_found", "name")
    error_of(srv.api("DELETE", "/users/nobody"), 404, "not_found", "name")
    error_of(srv.api("PUT", "/users/bob", json={"unlock": "yes"}), 400, "invalid", "unlock")
    error_of(srv.api("PUT", "/users/bob", json={"name": "x"}), 400, "invalid", "name")
    # a user made without a password gets a one-time one
    made = srv.ok("POST", "/users", json={"name": "gen"}, status=201)
    assert len(made["password"]) == 20 and made["must_change_password"] is True
    b = Browser(srv, "gen", made["password"])
    assert b.signin.json()["must_change_password"] is True
    b.close()
    # no answer ever holds a hash
    text = json.dumps(srv.ok("GET", "/users"))
    assert "argon2" not in text and "password_hash" not in text


def test_user_cli_end_to_end(server):
    srv = server()
    r = srv.cli("user", "add", "bob", "--role", "operator", "--domain", "finance",
                "--password-stdin", stdin="first password\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == 'user "bob" added (operator of finance)\n'
    assert "must change the password at the first sign-in" in r.stderr
    r = srv.cli("user", "list")
    assert r.returncode == 0, r.stderr
    lines = {ln.split()[0]: ln for ln in r.stdout.splitlines()[1:]}
    assert "operator of finance" in lines["bob"] and "yes" in lines["bob"]
    out = json.loads(srv.cli("user", "list", "--json").stdout)
    assert [u["name"] for u in out["items"]] == ["admin", "bob"]
    b = Browser(srv, "bob", "first password")
    assert b.signin.json()["must_change_password"] is True
    b.close()
    # roles: added, changed, removed
    r = srv.cli("user", "grant", "bob", "--role", "viewer", "--domain", "hr")
    assert r.returncode == 0 and r.stdout == 'roles of user "bob" changed\n', r.stderr
    assert srv.ok("GET", "/users/bob")["grants"] == [{"domain": "finance", "role": "operator"},
                                                     {"domain": "hr", "role": "viewer"}]
    assert srv.cli("user", "grant", "bob", "--role", "admin", "--domain", "hr").returncode == 0
    assert srv.ok("GET", "/users/bob")["grants"][1] == {"domain": "hr", "role": "admin"}
    assert srv.cli("user", "ungrant", "bob", "--domain", "finance").returncode == 0
    assert srv.ok("GET", "/users/bob")["grants"] == [{"domain": "hr", "role": "admin"}]
    assert srv.cli("user", "ungrant", "bob").returncode == 0
    assert srv.ok("GET", "/users/bob")["grants"] == []
    # a reset: the old password no longer works, the new one must be changed
    r = srv.cli("user", "passwd", "bob", "--password-stdin", stdin="second password\n")
    assert r.returncode == 0 and "reset" in r.stdout, r.stderr
    Browser(srv, "bob", "first password", status=401)
    b = Browser(srv, "bob", "second password")
    assert b.signin.json()["must_change_password"] is True
    b.close()
    # --generate: the server makes one, shown once
    r = srv.cli("user", "add", "gen", "--generate")
    assert r.returncode == 0, r.stderr
    pw = r.stdout.split("one-time password: ")[1].strip()
    Browser(srv, "gen", pw).close()
    # refusals
    r = srv.cli("user", "add", "x", "--role", "boss", "--password-stdin", stdin="x\n")
    assert r.returncode == 2 and '--role: "boss" is not a role' in r.stderr
    r = srv.cli("user", "add", "x", "--role", "viewer", "--domain", "a//b", "--generate")
    assert r.returncode == 2 and "--domain" in r.stderr
    r = srv.cli("user", "add", "x", stdin="")
    assert r.returncode == 2 and "no terminal to ask" in r.stderr and "--password-stdin" in r.stderr
    r = srv.cli("user", "add", "x", "--password-stdin", stdin="short\n")
    assert r.returncode == 2 and "password: at least 8 characters" in r.stderr
    r = srv.cli("user", "add", "bob", "--generate")
    assert r.returncode == 2 and 'a user named "bob" exists' in r.stderr
    r = srv.cli("user", "grant", "bob")
    assert r.returncode == 2 and "give --role" in r.stderr
    r = srv.cli("user", "frobnicate", "bob")
    assert r.returncode == 2 and 'unknown user command "frobnicate"' in r.stderr
    # a user without the right gets 403 from the CLI too (exit 2, the reason)
    token = srv.ok("POST", "/tokens", json={"name": "ro"}, status=201)["token"]
    env = dict(os.environ, TETHYS_URL=srv.url, TETHYS_TOKEN=token)
    r = srv.cli("user", "rm", "bob", env=env, data=False)
    assert r.returncode == 2 and "token ro is a viewer of the whole tree" in r.stderr, r.stderr
    # removed: its sessions end, it cannot sign in
    b = Browser(srv, "gen", pw)
    r = srv.cli("user", "rm", "gen")
    assert r.returncode == 0 and r.stdout == 'user "gen" removed; its sessions ended\n'
    error_of(b.api("GET", "/session"), 401)
    Browser(srv, "gen", pw, status=401)
    r = srv.cli("user", "rm", "gen")
    assert r.returncode == 2 and 'no user named "gen"' in r.stderr
    b.close()


# ---- security headers ------------------------------------------------------------------------


def test_security_headers_on_every_answer(server):
    srv = server()
    run = srv.run_now(srv.add_job(name="echo", command="echo hi")["name"])["runs"][0]["run_id"]
    srv.wait_run(run)
    answers = [
        srv.api("GET", "/health", token=False),                  # public
        srv.api("GET", "/jobs"),                                 # a raw JSON page
        srv.api("GET", "/jobs/nope"),                            # 404 from a handler
        srv.api("GET", "/nope"),                                 # 404 from the router
        srv.api("GET", "/jobs", token=False),                    # 401
        srv.api("GET", f"/runs/{run}/log"),                      # a stream
        srv.api("POST", "/session", json={"user": "a", "password": "b"}, token=False),
        srv.api("DELETE", "/jobs/echo"),                         # 204
    ]
    for r in answers:
        h = r.headers
        assert h["X-Content-Type-Options"] == "nosniff", r.url
        assert h["X-Frame-Options"] == "DENY", r.url
        assert h["Referrer-Policy"] == "same-origin", r.url
        csp = h["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, csp
        assert "connect-src 'self'" in csp and "," not in csp, csp  # one policy, not two
    # the console's files (one of its pages) have their own caching, the same headers once each
    r = requests.get(srv.url + "/jobs/echo", timeout=10)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-cache"
    assert "," not in r.headers["X-Frame-Options"] + r.headers["Content-Security-Policy"]
