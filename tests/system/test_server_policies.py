"""Policies over many fires: overlap (skip, queue, parallel), executor capacity, downstream
jobs (a fan-in barrier over shards), pause windows, calendars, start and end dates; and
what the operator sees of them: alerts, history paging and statistics."""
import datetime
import json
import time

from conftest import once_at


def noon_zone():
    """An Etc/GMT zone where it is now about midday, so 'today' is far from midnight."""
    h = datetime.datetime.now(datetime.timezone.utc).hour
    offset = (12 - h) % 24
    if offset > 14:
        offset -= 24
    zone = "UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
    return zone, datetime.timezone(datetime.timedelta(hours=offset))


def overlapping(runs):
    """Pairs of runs (sorted by start) where one started before the previous ended."""
    runs = sorted(runs, key=lambda r: r["started_at_ms"])
    return [(a, b) for a, b in zip(runs, runs[1:]) if b["started_at_ms"] < a["ended_at_ms"]]


def test_overlap_skip_queue_parallel(server):
    srv = server()
    srv.add_job(name="ov-skip", schedule="* * * * * ?", overlap="skip", command="sleep 2.5")
    srv.add_job(name="ov-queue", schedule="* * * * * ?", overlap="queue", command="sleep 1.2")
    srv.add_job(name="ov-par", schedule="* * * * * ?", overlap="parallel", command="sleep 2.5")
    srv.wait_for(lambda: len(srv.runs("ov-par")) >= 4, 20, what="four fires of ov-par")
    for name in ("ov-skip", "ov-queue", "ov-par"):
        srv.ok("POST", f"/jobs/{name}/disable")
    srv.wait_for(lambda: all(r["status"] not in ("queued", "running")
                             for n in ("ov-skip", "ov-queue", "ov-par") for r in srv.runs(n)),
                 30, what="every run to end")

    # skip: the fires while a run went on are recorded, none ran alongside
    runs, skips = srv.runs("ov-skip"), srv.skips("ov-skip")
    assert all(r["status"] == "succeeded" for r in runs)
    assert len(skips) >= 2, skips
    assert all(k["reason"] == "overlap" and k["shard"] == 0 for k in skips), skips
    assert all("still going" in k["detail"] for k in skips)
    assert not overlapping(runs), overlapping(runs)
    seconds = sorted([r["scheduled_at"] for r in runs] + [k["scheduled_at"] for k in skips])
    assert seconds == list(range(seconds[0], seconds[0] + len(seconds))), \
        f"every fire ran or was recorded skipped, once: {seconds}"

    # queue: every fire ran, one after another, in order; the waits are recorded
    runs = sorted(srv.runs("ov-queue"), key=lambda r: r["scheduled_at"])
    assert not srv.skips("ov-queue")
    assert len(runs) >= 4 and all(r["status"] == "succeeded" for r in runs)
    secs = [r["scheduled_at"] for r in runs]
    assert secs == list(range(secs[0], secs[0] + len(secs))), secs
    assert not overlapping(runs), overlapping(runs)
    starts = [r["started_at_ms"] for r in runs]
    assert starts == sorted(starts), "queued fires run oldest first"
    late = [r["lateness_ms"] for r in runs]
    assert late[1:] == sorted(late[1:]) and late[-1] >= 400, \
        f"the wait behind the previous run shows as growing lateness: {late}"

    # parallel: runs overlap, none skipped
    runs = srv.runs("ov-par")
    assert not srv.skips("ov-par")
    assert len(overlapping(runs)) >= 2, runs
    assert all(r["status"] == "succeeded" for r in runs)


def test_capacity_makes_runs_wait_in_order(server):
    srv = server("--max-runs", "1")
    srv.add_job(name="cap-a", command="sleep 1")
    srv.add_job(name="cap-b", command="sleep 1")
    srv.add_job(name="cap-c", command="true")
    a = srv.run_now("cap-a")["runs"][0]["run_id"]
    b = srv.run_now("cap-b")["runs"][0]["run_id"]
    c = srv.run_now("cap-c")["runs"][0]["run_id"]
    ex = srv.ok("GET", "/executors")["items"][0]
    assert (ex["capacity"], ex["running"], ex["queued"]) == (1, 1, 2), ex
    assert srv.get_run(b)["status"] == "queued"
    assert srv.job("cap-b")["state"]["running"] == 1, "queued runs count as in progress"
    ra, rb, rc = srv.wait_run(a), srv.wait_run(b, 15), srv.wait_run(c, 15)
    assert all(r["status"] == "succeeded" for r in (ra, rb, rc))
    assert rb["started_at_ms"] >= ra["ended_at_ms"], "never two at once"
    assert rc["started_at_ms"] >= rb["ended_at_ms"], "waiting runs start oldest first"
    assert rb["started_at_ms"] - rb["queued_at_ms"] >= 900, rb
    assert rc["started_at_ms"] - rc["queued_at_ms"] >= 1900, rc
    assert rb["lateness_ms"] >= 900, "lateness counts the wait for capacity"


def test_downstream_fires_once_per_upstream_fire_when_every_shard_succeeded(server):
    srv = server()
    srv.add_job(name="down", command="echo $TETHYS_TRIGGER $TETHYS_SCHEDULED_EPOCH")
    srv.add_job(name="up", schedule="* * * * * ?", shards=2, downstream=["down"], command="true")
    srv.add_job(name="down2", command="true")
    srv.add_job(name="up-fail", shards=2, downstream=["down2"],
                command='test "$TETHYS_SHARD" = 1 && exit 1; exit 0')
    srv.wait_for(lambda: len(srv.runs("down")) >= 3, 20, what="three downstream runs")
    srv.ok("POST", "/jobs/up/disable")
    fail_runs = srv.run_now("up-fail")["runs"]
    for r in fail_runs:
        srv.wait_run(r["run_id"])

    def complete_fires():
        up_fires = {}
        for r in srv.runs("up"):
            up_fires.setdefault(r["scheduled_at"], []).append(r["status"])
        return sorted(t for t, st in up_fires.items() if st == ["succeeded", "succeeded"])

    # a downstream fire is made when the last shard of its upstream fire ends: once every
    # run of `up` has ended, every downstream fire there will be has been made; wait for
    # those runs to end (whether there are too many is what the assertions below check)
    def settled():
        if any(r["status"] in ("queued", "running") for r in srv.runs("up")):
            return False
        down = srv.runs("down")
        return len(down) >= len(complete_fires()) and all(
            r["status"] not in ("queued", "running") for r in down)
    srv.wait_for(settled, 15, what="every run of up and down to end")

    complete = complete_fires()
    down = srv.runs("down")
    assert all(r["status"] == "succeeded" for r in down), down
    assert sorted(r["scheduled_at"] for r in down) == complete, \
        "exactly one downstream fire per upstream fire whose every shard succeeded"
    for r in down:
        assert r["trigger"] == "downstream"
        assert r["fire_id"] == f"down@{r['scheduled_at']}!dup#0"
        assert srv.get_run(r["run_id"])["output"] == f"downstream {r['scheduled_at']}\n"
    statuses = sorted(srv.get_run(r["run_id"])["status"] for r in fail_runs)
    assert statuses == ["failed", "succeeded"]
    assert srv.runs("down2") == [], "a failed shard holds the downstream fire back"


def test_pause_windows_calendars_and_dates(server):
    zone, tz = noon_zone()
    now = datetime.datetime.now(tz)
    today = now.date().isoformat()
    srv = server()
    srv.ok("POST", "/calendars", json={"name": "today", "dates": [today]}, status=201)
    srv.ok("POST", "/calendars", json={"name": "elsewhen", "dates": ["2001-01-01"]}, status=201)
    daily = [(now - datetime.timedelta(minutes=5)).strftime("%H:%M"),
             (now + datetime.timedelta(minutes=5)).strftime("%H:%M")]
    later = [(now + datetime.timedelta(minutes=30)).strftime("%H:%M"),
             (now + datetime.timedelta(minutes=40)).strftime("%H:%M")]
    every = {"schedule": "* * * * * ?", "time_zone": zone}
    srv.add_job(name="p-daily", pause_windows=[{"daily": daily}], **every)
    srv.add_job(name="p-dates", pause_windows=[{"dates": [today, today]}], **every)
    srv.add_job(name="p-later", pause_windows=[{"daily": later}], **every)
    srv.add_job(name="c-skip", calendars={"skip": ["today"]}, **every)
    srv.add_job(name="c-only-other", calendars={"only": ["elsewhen"]}, **every)
    srv.add_job(name="c-only-today", calendars={"only": ["today"]}, **every)
    end = int(time.time()) + 2
    srv.add_job(name="d-end", end_at=datetime.datetime.fromtimestamp(
        end, datetime.timezone.utc).isoformat(), **every)
    start = int(time.time()) + 3600
    j = srv.add_job(name="d-start", start_at=datetime.datetime.fromtimestamp(
        start, datetime.timezone.utc).isoformat(), **every)
    expect = {"p-daily": ("paused", "pause window"), "p-dates": ("paused", "pause window"),
              "c-skip": ("calendar", 'calendar "today" lists the day'),
              "c-only-other": ("calendar", "no calendar the job runs only on lists the day")}

    # "nothing after end_at" means something once the server has handled the fires of the
    # seconds after end_at: the every-second jobs witness it, since the fires of one second
    # are handed over together and handled before the next second's
    def witnessed():
        return (all(len(srv.skips(n)) >= 2 for n in expect) and
                all(len(srv.runs(n, status="succeeded")) >= 2 for n in ("p-later", "c-only-today"))
                and any(r["scheduled_at"] >= end + 2 for r in srv.runs("p-later")) and
                srv.job("d-end")["state"]["next_fire"] is None and
                all(r["status"] not in ("queued", "running") for r in srv.runs("d-end")))
    srv.wait_for(witnessed, 20, 0.2, what="two fires of every job, and the seconds after d-end's end")

    for name, (reason, detail) in expect.items():
        skips = srv.skips(name)
        assert len(skips) >= 2, (name, skips)
        assert srv.runs(name) == [], f"{name} must not run"
        for k in skips:
            assert k["reason"] == reason and detail in k["detail"], (name, k)
            assert k["shard"] == -1 and k["trigger"] == "schedule"
            assert k["fire_id"] == f"{name}@{k['scheduled_at']}#*"
    for name in ("p-later", "c-only-today"):
        assert len(srv.runs(name, status="succeeded")) >= 2, name
        assert srv.skips(name) == [], name

    # dates: nothing after end_at, nothing before start_at
    runs = srv.runs("d-end")
    assert runs and max(r["scheduled_at"] for r in runs) <= end, runs
    assert srv.job("d-end")["state"]["next_fire"] is None
    assert srv.runs("d-start") == [] and srv.skips("d-start") == []
    assert j["start_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
    next_fire = srv.job("d-start")["state"]["next_fire"]
    assert next_fire is not None
    assert start <= datetime.datetime.fromisoformat(next_fire).timestamp() <= start + 1, next_fire

    # an enabled job whose dates are over is refused; disabled it may be kept
    past = {"schedule": "* * * * * ?", "end_at": "2020-01-01T00:00:00Z"}
    r = srv.api("POST", "/jobs", json={"name": "d-past", "command": "true", **past})
    assert r.status_code == 400 and r.json()["error"]["field"] == "schedule"
    assert "never fires" in r.json()["error"]["message"]
    srv.add_job(name="d-past", enabled=False, **past)
    r = srv.api("POST", "/jobs/d-past/enable")
    assert r.status_code == 400 and "never fires" in r.json()["error"]["message"]
    assert srv.job("d-past")["enabled"] is False


def test_alert_tables_and_not_highly_available(server):
    srv = server()
    srv.ok("POST", "/domains", json={"path": "pay", "level": 8}, status=201)
    srv.add_job(name="ha", domain="pay", level=9, failover=True)
    a = srv.alerts()
    assert set(a) == {"abnormal_jobs", "timed_out_shards", "not_highly_available",
                      "abnormal_resources", "incomplete"}
    assert a.pop("incomplete") is None  # the stored alerts were read
    assert all(isinstance(v, list) for v in a.values())
    rows = [r for r in a["not_highly_available"] if r["job"] == "ha"]
    assert len(rows) == 1, a
    row = rows[0]
    assert (row["domain"], row["domain_level"], row["job_level"]) == ("pay", 8, 9)
    assert "failover" in row["reason"]
    r = srv.cli("alerts")
    assert r.returncode == 1, "open alerts: exit status 1"
    assert "ha" in r.stdout
    srv.ok("POST", "/jobs/ha/disable")
    assert not srv.alerts()["not_highly_available"]
    srv.ok("POST", "/jobs/ha/enable")
    assert srv.alerts()["not_highly_available"]
    srv.patch("ha", failover=False)
    assert not srv.alerts()["not_highly_available"]
    r = srv.cli("alerts")
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_history_paging_and_stats_match(server):
    srv = server()
    srv.add_job(name="st-ok", command="true", overlap="parallel")
    srv.add_job(name="st-bad", command="exit 2", overlap="parallel")
    srv.add_job(name="st-slow", command="sleep 3", timeout=1, kill_grace=0)
    ids = [srv.run_now(n)["runs"][0]["run_id"] for n in ["st-ok"] * 4 + ["st-bad"] * 2 +
           ["st-slow"]]
    for i in ids:
        srv.wait_run(i, 15)
    # one skip: a run-now while the previous run is going
    srv.add_job(name="st-skip", command="sleep 1")
    first = srv.run_now("st-skip")["runs"]
    assert len(first) == 1
    assert srv.run_now("st-skip")["runs"] == [], "overlap skip: the second is skipped"
    srv.wait_run(first[0]["run_id"])

    items = srv.history()
    assert len(items) == 9
    keys = [(i["scheduled_at"]) for i in items]
    assert keys == sorted(keys, reverse=True), "newest scheduled first"
    # paging with a cursor gives the same items, each once
    seen, cursor = [], None
    while True:
        q = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = srv.ok("GET", "/history", params=q)
        assert len(page["items"]) <= 2
        seen += page["items"]
        cursor = page["next"]
        if not cursor:
            break
    assert seen == items
    assert [i["job"] for i in srv.history(status="skipped")] == ["st-skip"]
    assert {i["job"] for i in srv.history(status="failed")} == {"st-bad"}

    groups = {g["key"]: g for g in srv.ok("GET", "/stats")["groups"]}
    for name in ("st-ok", "st-bad", "st-slow", "st-skip"):
        runs = srv.runs(name)
        g = groups[name]
        assert g["runs"] == len(runs)
        assert g["succeeded"] == sum(r["status"] == "succeeded" for r in runs)
        assert g["failed"] == sum(r["status"] == "failed" for r in runs)
        assert g["timeouts"] == sum(r["status"] == "timeout" for r in runs)
        assert g["skipped"] == len(srv.skips(name))
        assert set(g["duration_ms"]) == {"p50", "p95"} and set(g["lateness_ms"]) == {"p50", "p99"}
    assert (groups["st-ok"]["runs"], groups["st-ok"]["succeeded"]) == (4, 4)
    assert (groups["st-bad"]["runs"], groups["st-bad"]["failed"]) == (2, 2)
    assert groups["st-slow"]["timeouts"] == 1
    assert groups["st-skip"]["skipped"] == 1
    assert 900 <= groups["st-slow"]["duration_ms"]["p50"] < 2500
    assert 900 <= groups["st-skip"]["duration_ms"]["p95"] < 2000
    assert groups["st-ok"]["lateness_ms"] == {"p50": None, "p99": None}, "run by hand"
    one = srv.ok("GET", "/stats", params={"job": "st-ok"})["groups"]
    assert [g["key"] for g in one] == ["st-ok"]
    day = srv.ok("GET", "/stats", params={"group_by": "day"})["groups"]
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    assert [g["key"] for g in day] in ([today], [today, today])
    assert sum(g["runs"] for g in day) == 8

    r = srv.cli("stats")
    assert r.returncode == 0 and "st-ok" in r.stdout and "st-bad" in r.stdout
    r = srv.cli("history", "--job", "st-bad", "--json")
    assert r.returncode == 0
    r = srv.cli("history", "--limit", "3")
    assert r.returncode == 0
    assert "--cursor" in r.stderr, "more pages: the cursor is printed on stderr"
    assert len(r.stdout.strip().splitlines()) == 4, r.stdout
    r = srv.cli("history", "--limit", "3", "--all")
    assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 10, r.stdout


def test_a_full_executor_queue_skips_the_fire_once_and_raises_then_clears_an_alert(server):
    srv = server("--max-runs", "1", "--queue-max", "1")
    srv.add_job(name="qf", command="sleep 1", overlap="parallel")
    first = srv.run_now("qf")["runs"]
    second = srv.run_now("qf")["runs"]
    assert len(first) == 1 and len(second) == 1
    third = srv.run_now("qf")
    assert third["runs"] == [], "a fire that found the queue full started nothing"
    assert third["skipped"] == [{"shard": 0, "reason": "queue_full"}]
    items = [i for i in srv.history(job="qf") if i["fire_id"].startswith(third["fire_id"])]
    assert len(items) == 1, f"one record for the fire that did not run: {items}"
    assert (items[0]["kind"], items[0]["reason"]) == ("skip", "queue_full"), items
    rows = [r for r in srv.alerts()["abnormal_resources"] if r["resource"] == "queue"]
    assert rows and "queue full" in rows[0]["reason"], srv.alerts()
    for r in first + second:
        assert srv.wait_run(r["run_id"], 15)["status"] == "succeeded"
    srv.wait_for(lambda: not [r for r in srv.alerts()["abnormal_resources"]
                              if r["resource"] == "queue"], 10,
                 what="the queue alert to clear once the queue has drained")
    g = {x["key"]: x for x in srv.ok("GET", "/stats")["groups"]}["qf"]
    assert (g["runs"], g["succeeded"], g["failed"], g["skipped"]) == (2, 2, 0, 1), g


def test_calendar_changes_apply_at_once_and_run_now_fires_downstream(server):
    zone, tz = noon_zone()
    today = datetime.datetime.now(tz).date().isoformat()
    srv = server()
    srv.ok("POST", "/calendars", json={"name": "holidays", "dates": ["2001-01-01"]}, status=201)
    srv.add_job(name="cal-live", schedule="* * * * * ?", time_zone=zone,
                calendars={"skip": ["holidays"]})
    srv.wait_for(lambda: srv.runs("cal-live"), 10, what="a run before the change")
    srv.ok("PUT", "/calendars/holidays", json={"dates": [today]})
    changed = time.time()
    # each second's fire either runs or is skipped: once a calendar skip is recorded for a
    # second after changed + 1, every fire between was handled, and none of them may have run
    srv.wait_for(lambda: [k for k in srv.skips("cal-live") if k["reason"] == "calendar" and
                          k["scheduled_at"] >= changed + 2], 10,
                 what="calendar skips of the seconds after the change")
    late_runs = [r for r in srv.runs("cal-live") if r["scheduled_at"] > changed + 1]
    assert not late_runs, late_runs

    srv.add_job(name="after-manual", command="echo $TETHYS_TRIGGER")
    srv.add_job(name="manual-up", command="true", shards=3, downstream=["after-manual"])
    out = srv.run_now("manual-up")
    down = srv.wait_for(lambda: srv.runs("after-manual"), 10, what="the downstream run")
    assert len(down) == 1 and down[0]["trigger"] == "downstream"
    assert srv.wait_run(down[0]["run_id"])["output"] == "downstream\n"
    assert down[0]["fire_id"].startswith("after-manual@")
    assert out["fire_id"].startswith("manual-up@")
    # run-now of some shards is a fire of those shards: it completes when they succeed
    srv.run_now("manual-up", shards=[1])
    srv.wait_for(lambda: len(srv.runs("after-manual")) == 2, 10, what="a second downstream run")


def test_history_filters(server):
    srv = server()
    srv.add_job(name="hf-a", domain="ops/east", command="true")
    srv.add_job(name="hf-b", domain="ops", command="exit 1")
    srv.add_job(name="hf.c", domain="dev", command="true")
    ids = [srv.run_now(n)["runs"][0]["run_id"] for n in ("hf-a", "hf-b", "hf.c")]
    for i in ids:
        srv.wait_run(i)
    assert {i["job"] for i in srv.history(domain="ops")} == {"hf-a", "hf-b"}
    assert {i["job"] for i in srv.history(domain="ops/east")} == {"hf-a"}
    assert {i["job"] for i in srv.history(status="succeeded")} == {"hf-a", "hf.c"}
    assert [i["job"] for i in srv.history(job="hf.c")] == ["hf.c"]
    assert srv.ok("GET", "/jobs/hf.c")["name"] == "hf.c"
    t = srv.get_run(ids[0])["scheduled_at"]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t + 3600))
    assert srv.history(since=stamp) == []
    assert len(srv.history(until=stamp)) == 3
    assert len(srv.history(since=str(t - 5), until=str(t + 5))) == 3
    groups = {g["key"]: g for g in srv.ok("GET", "/stats", params={"group_by": "domain"})["groups"]}
    assert groups["ops"]["runs"] == 1 and groups["ops/east"]["runs"] == 1, groups
    assert groups["dev"]["runs"] == 1
    r = srv.cli("history", "--domain", "ops", "--status", "failed", "--json")
    assert r.returncode == 0
    assert [i["job"] for i in json.loads(r.stdout)["items"]] == ["hf-b"]


def test_lateness_statistics_count_scheduled_fires_only(server):
    srv = server()
    at = int(time.time()) + 2
    srv.add_job(name="late-retry", schedule=once_at(at), retries=1, retry_backoff=2,
                command='test "$TETHYS_ATTEMPT" = 2')
    srv.add_job(name="late-manual", command="true")
    srv.wait_run(srv.run_now("late-manual")["runs"][0]["run_id"])
    runs = srv.wait_for(lambda: (lambda rs: rs if len(rs) == 2 and all(
        r["status"] == "succeeded" or r["attempt"] == 1 for r in rs) and any(
        r["status"] == "succeeded" for r in rs) else None)(srv.runs("late-retry")), 20,
        what="the fire and its retry")
    retry = [r for r in runs if r["attempt"] == 2][0]
    assert retry["lateness_ms"] >= 2000, "the run itself still says how late it started"
    groups = {g["key"]: g for g in srv.ok("GET", "/stats")["groups"]}
    assert groups["late-retry"]["lateness_ms"]["p99"] < 1000, \
        f"the backoff is not scheduling lateness: {groups['late-retry']}"
    assert groups["late-manual"]["lateness_ms"] == {"p50": None, "p99": None}
    assert groups["late-manual"]["duration_ms"]["p50"] is not None
