#!/usr/bin/env python3
"""
overload.py - drive a real `tethys server` past what the machine can start, and measure
what an operator would: does the API stay fast, does a run ever start later than its
misfire threshold, is every fire accounted for (run, or recorded with its reason, once),
and how long until the executor is idle once the jobs are disabled.  Called by run.sh with
this machine's raw spawn rate R; the load is FACTOR x R shell jobs, each firing every
second, for DURATION seconds.  Everything is bounded in time and stops by itself.
"""
import argparse
import json
import os
import pathlib
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


class Api:
    def __init__(self, url, token):
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + "/api/v1" + path, data=data, method=method,
                                     headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def timed(self, method, path, body=None):
        """(ms from the request to the answer's last byte, status): the answer is read, not
        parsed, so the figure is the server's and the network's, not Python's JSON reader's."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + "/api/v1" + path, data=data, method=method,
                                     headers=self.headers)
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            e.read()
            status = e.code
        return (time.monotonic() - t0) * 1000.0, status


def start_server(tethys, data):
    log = open(data / "server.log", "ab")
    proc = subprocess.Popen([tethys, "server", "--data", str(data), "--listen", "127.0.0.1:0",
                             "--rate-limit", "0"], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            info = json.loads((data / "server.json").read_text())
            if info.get("pid") == proc.pid:
                return proc, Api(info["url"], (data / "token").read_text().strip())
        except (OSError, ValueError):
            pass
        if proc.poll() is not None:
            sys.exit(f"overload: the server exited at start (status {proc.returncode})")
        time.sleep(0.05)
    proc.kill()
    sys.exit("overload: the server did not start within 60 s")


def parallel(n_threads, items, fn):
    """fn(item) for every item, on n_threads threads; returns the results in order."""
    out = [None] * len(items)
    idx = iter(range(len(items)))
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                i = next(idx, None)
            if i is None:
                return
            out[i] = fn(items[i])
    ts = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def executor(api):
    return api.call("GET", "/executors")[1]["items"][0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tethys", required=True)
    ap.add_argument("--raw-rate", type=float, required=True)
    ap.add_argument("--factor", type=float, default=2.0)
    ap.add_argument("--duration", type=int, default=30)
    a = ap.parse_args()
    n_jobs = max(10, int(round(a.factor * a.raw_rate)))
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="tethys-overload-"))
    data = tmp / "data"
    data.mkdir()
    proc, api = start_server(os.path.abspath(a.tethys), data)
    try:
        run(api, proc, data, a, n_jobs)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        subprocess.run(["rm", "-rf", str(tmp)])


def run(api, proc, data, a, n_jobs):
    names = [f"load-{i:05d}" for i in range(n_jobs)]
    print(f"overload: {n_jobs} jobs firing every second ({a.factor:g} x {a.raw_rate:.0f} "
          f"starts/s), for {a.duration} s")
    # probes: jobs outside the load, disabled and enabled while it goes on (one per client)
    for k in range(2):
        api.call("POST", "/jobs", {"name": f"probe-{k}", "schedule": "0 0 3 * * ?",
                                   "command": "true"})
    t0 = time.monotonic()
    created = parallel(8, names, lambda n: api.call(
        "POST", "/jobs", {"name": n, "schedule": "* * * * * ?", "command": "true"})[0])
    bad = [s for s in created if s != 201]
    if bad:
        sys.exit(f"overload: {len(bad)} jobs could not be created (status {bad[0]})")
    print(f"overload: jobs created in {time.monotonic() - t0:.1f} s")
    begin = time.time()

    # the API while the machine is past its capacity
    lat = {"read": [], "list": [], "disable": [], "enable": []}
    errors = []
    stop = threading.Event()

    def client(k):
        while not stop.is_set():
            for kind, method, path in (
                    ("read", "GET", f"/jobs/{random.choice(names)}"),
                    ("list", "GET", "/jobs?limit=1000"),
                    ("disable", "POST", f"/jobs/probe-{k}/disable"),
                    ("enable", "POST", f"/jobs/probe-{k}/enable")):
                ms, status = api.timed(method, path)
                if status != 200:
                    errors.append((kind, status))
                lat[kind].append(ms)
            time.sleep(0.05)
    clients = [threading.Thread(target=client, args=(k,)) for k in range(2)]
    for c in clients:
        c.start()
    samples = []
    while time.time() < begin + a.duration:
        time.sleep(1)
        e = executor(api)
        samples.append(e)
        print(f"  t={time.time() - begin:4.0f}s running={e['running']} queued={e['queued']} "
              f"oldest_wait_ms={e['oldest_wait_ms']} start_rate={e['start_rate']:.0f}/s "
              f"demand={e['demand_rate']:.0f}/s misfired={e['queue_misfires']} "
              f"spool_pending={e['spool']['pending']}", flush=True)
    stop.set()
    for c in clients:
        c.join()
    alerts = api.call("GET", "/alerts")[1]
    overload = [r for r in alerts["abnormal_resources"] if r["resource"] == "queue"]

    # disable every job of the load, then wait for the executor to be idle
    t_dis = time.monotonic()
    end = time.time()  # every job was enabled until here
    disabled = parallel(8, names, lambda n: api.call("POST", f"/jobs/{n}/disable")[0])
    disable_s = time.monotonic() - t_dis
    if any(s != 200 for s in disabled):
        sys.exit("overload: a disable failed")
    t_drain = time.monotonic()
    while True:
        e = executor(api)
        if e["queued"] == 0 and e["running"] == 0:
            break
        if time.monotonic() - t_drain > 120:
            sys.exit("overload: the executor did not drain within 120 s")
        time.sleep(0.1)
    drain_s = time.monotonic() - t_drain
    while executor(api)["spool"]["pending"] > 0 and time.monotonic() - t_drain < 300:
        time.sleep(0.5)

    # every fire of the window, from the store (read-only, beside the running server)
    db = sqlite3.connect(f"file:{data / 'tethys.db'}?mode=ro", uri=True)
    lo, hi = int(begin) + 1, int(end) - 1
    fires = {}
    for job, t, status, started, trig in db.execute(
            "SELECT job, scheduled_at, status, started_at_ms, \"trigger\" FROM runs "
            "WHERE job LIKE 'load-%' AND scheduled_at BETWEEN ? AND ? AND attempt = 1",
            (lo, hi)):
        fires.setdefault((job, t), []).append(("run", status, started, trig))
    for job, t, reason, detail in db.execute(
            "SELECT job, scheduled_at, reason, detail FROM skips "
            "WHERE job LIKE 'load-%' AND scheduled_at BETWEEN ? AND ?", (lo - 3600, hi)):
        m = re.search(r"(\d+) fire\(s\) up to", detail or "")
        for k in range(int(m.group(1)) if m and reason == "misfire" else 1):
            if lo <= t + k <= hi:
                fires.setdefault((job, t + k), []).append(("skip", reason, 0, "schedule"))
    db.close()
    expected = n_jobs * (hi - lo + 1)
    once = sum(1 for v in fires.values() if len(v) == 1)
    twice = sum(1 for v in fires.values() if len(v) > 1)
    started = [(s - t * 1000) for (job, t), v in fires.items() for kind, st, s, trig in v
               if kind == "run" and s > 0 and trig in ("schedule", "misfire")]
    ran = sum(1 for v in fires.values() for x in v if x[0] == "run" and x[1] != "misfired")
    misfired = sum(1 for v in fires.values() for x in v if x[0] == "run" and x[1] == "misfired")
    skipped = sum(1 for v in fires.values() for x in v if x[0] == "skip")
    accounted_pct = 100.0 * once / expected if expected else 0.0

    api_all = [x for v in lat.values() for x in v]
    print(f"overload: window {hi - lo + 1} s, {expected} fires expected")
    print(f"  fires: ran {ran} ({100.0 * ran / expected:.1f}%), misfired in the queue "
          f"{misfired} ({100.0 * misfired / expected:.1f}%), skipped {skipped}, "
          f"recorded once {once} ({accounted_pct:.2f}%), twice {twice}")
    rates = [s["start_rate"] for s in samples[len(samples) // 3:]]
    if rates:
        mean_rate = sum(rates) / len(rates)
        print(f"  starts: {mean_rate:.0f}/s against {a.raw_rate:.0f}/s raw "
              f"(ratio {mean_rate / a.raw_rate:.2f})")
    print(f"  start lateness ms: p50 {pct(started, 50)} p99 {pct(started, 99)} "
          f"max {max(started) if started else None}")
    for kind, v in lat.items():
        print(f"  api {kind:8s} n={len(v):5d} p50={pct(v, 50):7.1f} ms p99={pct(v, 99):7.1f} ms "
              f"max={max(v):7.1f} ms")
    print(f"  api errors: {len(errors)} {errors[:3]}")
    print(f"  overload alert while loaded: {overload[0]['reason'] if overload else 'none'}")
    print(f"  disabling {n_jobs} jobs took {disable_s:.1f} s; idle {drain_s:.1f} s after")
    print(f"RESULT overload api_p99_ms={pct(api_all, 99):.1f} "
          f"start_late_p99_ms={pct(started, 99) if started else 0} "
          f"fires_accounted_pct={accounted_pct:.2f} drain_s={drain_s:.1f}")


if __name__ == "__main__":
    main()
