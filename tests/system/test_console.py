"""The web console's files as the server serves them (src/api/web.c), and the API
additions the console reads (jobs list level/type filters, stats sort/limit).

The console's pages themselves are tested in Chromium by tests/e2e."""
import re

import requests

from conftest import error_of, wait_for

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def get(srv, path, headers=None, method="GET"):
    """A request without the token: the console's files need none."""
    return requests.request(method, srv.url + path, headers=headers, timeout=10,
                            verify=srv.cacert or True)


def assert_security_headers(r):
    assert r.headers["Content-Security-Policy"] == CSP
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "same-origin"


def assets_of(index_html):
    return re.findall(r'(?:src|href)="(/assets/[^"]+)"', index_html)


def test_index_is_served_without_a_token_with_its_headers(shared_server):
    r = get(shared_server, "/")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-cache"
    assert re.fullmatch(r'"[0-9a-f]{16}"', r.headers["ETag"])
    assert_security_headers(r)
    assert '<div id="app">' in r.text
    # no inline script: every script is a file of this origin
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text) is None
    assert "style=" not in r.text
    assert len(assets_of(r.text)) >= 2


def test_client_side_routes_get_index_html(shared_server):
    index = get(shared_server, "/").text
    for path in ("/jobs", "/jobs/nightly", "/jobs/nightly/edit", "/alerts", "/x/y/z"):
        r = get(shared_server, path)
        assert r.status_code == 200, path
        assert r.headers["Content-Type"] == "text/html; charset=utf-8"
        assert r.text == index
        assert_security_headers(r)


def test_hashed_assets_are_immutable_with_their_content_type(shared_server):
    index = get(shared_server, "/").text
    seen = set()
    for path in assets_of(index):
        r = get(shared_server, path)
        assert r.status_code == 200, path
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        ext = path.rsplit(".", 1)[1]
        want = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}[ext]
        assert r.headers["Content-Type"] == want
        assert int(r.headers["Content-Length"]) == len(r.content) > 0
        assert_security_headers(r)
        seen.add(ext)
    assert seen == {"js", "css"}


def test_etag_and_if_none_match_give_304(shared_server):
    for path in ["/"] + assets_of(get(shared_server, "/").text)[:1]:
        first = get(shared_server, path)
        etag = first.headers["ETag"]
        r = get(shared_server, path, headers={"If-None-Match": etag})
        assert r.status_code == 304, path
        assert r.content == b""
        assert r.headers["ETag"] == etag
        assert_security_headers(r)
        # a list naming it, and the weak form, match too; another tag does not
        assert get(shared_server, path, headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304
        assert get(shared_server, path, headers={"If-None-Match": '"0000000000000000"'}).status_code == 200


def test_head_answers_headers_only(shared_server):
    r = get(shared_server, "/", method="HEAD")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"


def test_api_paths_and_missing_assets_are_not_pages(shared_server):
    r = get(shared_server, "/api/v1/no-such-thing")
    error_of(r, 404, "not_found", "path")
    r = get(shared_server, "/api/v1/jobs")  # a real route still needs the token
    error_of(r, 401, "unauthorized")
    r = get(shared_server, "/assets/index-00000000.js")
    error_of(r, 404, "not_found", "path")
    # a write to a console path is not a page either
    r = requests.post(shared_server.url + "/jobs", json={}, timeout=10)
    error_of(r, 404, "not_found", "path")


def test_jobs_filter_by_level_and_type(shared_server):
    srv = shared_server
    srv.add_job(name="lvl-a", domain="lvl", level=2)
    srv.add_job(name="lvl-b", domain="lvl", level=7)
    srv.add_job(name="lvl-c", domain="lvl", level=7, enabled=False)
    srv.add_job(name="lvl-d", domain="lvl", level=7, description="needle")

    def names(**params):
        return [j["name"] for j in srv.ok("GET", "/jobs", params=params)["items"]]

    assert names(domain="lvl", level=7) == ["lvl-b", "lvl-c", "lvl-d"]
    assert names(domain="lvl", level=2) == ["lvl-a"]
    assert names(domain="lvl", level=0) == []
    assert names(domain="lvl", level=7, state="enabled") == ["lvl-b", "lvl-d"]
    assert names(domain="lvl", level=7, q="needle") == ["lvl-d"]
    assert "lvl-b" in names(level=7, limit=1000)  # without a domain: the name index
    assert "lvl-a" not in names(level=7, limit=1000)
    assert names(domain="lvl", type="shell") == ["lvl-a", "lvl-b", "lvl-c", "lvl-d"]
    # paging through a level keeps the order and visits each once
    page1 = srv.ok("GET", "/jobs", params={"domain": "lvl", "level": 7, "limit": 2})
    assert [j["name"] for j in page1["items"]] == ["lvl-b", "lvl-c"]
    page2 = srv.ok("GET", "/jobs", params={"domain": "lvl", "level": 7, "limit": 2,
                                           "cursor": page1["next"]})
    assert [j["name"] for j in page2["items"]] == ["lvl-d"] and page2["next"] is None
    for bad in ("10", "-1", "x", "07"):
        err = error_of(srv.api("GET", "/jobs", params={"level": bad}), 400, "invalid", "level")
        assert err["message"] == f'level: "{bad}" is not a level 0-9'
    err = error_of(srv.api("GET", "/jobs", params={"type": "worker"}), 400, "invalid", "type")
    assert err["message"] == 'type: "worker" is not a job type (shell)'


def test_stats_sort_and_limit(shared_server):
    srv = shared_server
    for name, runs in (("st-one", 1), ("st-three", 3), ("st-two", 2)):
        srv.add_job(name=name, domain="stats-sort", command="true", overlap="parallel")
        for _ in range(runs):
            srv.run_now(name)
    srv.add_job(name="st-fail", domain="stats-sort", command="false")
    srv.run_now("st-fail")

    def groups(**params):
        params.update(group_by="job", domain="stats-sort")
        return srv.ok("GET", "/stats", params=params)["groups"]

    wait_for(lambda: sum(g["runs"] - g["unfinished"] for g in groups()) >= 7, 20, 0.2,
             "the 7 runs ended")
    assert [g["key"] for g in groups()] == ["st-fail", "st-one", "st-three", "st-two"]
    busiest = groups(sort="runs", limit=2)
    assert [(g["key"], g["runs"]) for g in busiest] == [("st-three", 3), ("st-two", 2)]
    # ties go by key
    assert [g["key"] for g in groups(sort="runs")] == ["st-three", "st-two", "st-fail", "st-one"]
    failing = groups(sort="failed", limit=1)
    assert [(g["key"], g["failed"]) for g in failing] == [("st-fail", 1)]
    assert len(groups(limit=3)) == 3
    err = error_of(srv.api("GET", "/stats", params={"sort": "name"}), 400, "invalid", "sort")
    assert err["message"].startswith('sort: "name" is not a counter (runs, succeeded')
    error_of(srv.api("GET", "/stats", params={"limit": "0"}), 400, "invalid", "limit")
