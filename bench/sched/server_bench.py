#!/usr/bin/env python3
"""The real server under a load sized from this machine's own spawn rate (stdlib only).

  server_bench.py --tethys build/tethys --raw build/raw_spawn [--seconds 10] [--load 0.5]
                  [--parallel 8] [--burst-seconds 5] [--data DIR]

Machines of this kind start anywhere from ~190 to ~1,600 shell processes a second, so no
fixed load fits them all: 1,000 runs a second is most of what a fast one can do and five
times what a slow one can. Everything here is sized from R, measured first in the same run:

0. R: build/raw_spawn, a plain posix_spawn + waitpid loop of /bin/sh -c /bin/true with
   PARALLEL in flight, for 3 s. This is the machine's floor for a shell run.
1. Lateness: JOBS = LOAD x R shell jobs (/bin/true) every second for SECONDS seconds, with
   history written; lateness = process start - scheduled second, read back from the
   history. LOAD (default 0.5) is a fraction of R the server should sustain.
2. Throughput: one job with R x BURST_SECONDS shards (100 to 4,000) started at once (run
   now), --max-runs PARALLEL: shell runs per second from the first start to the last end,
   against raw_spawn with the same parallelism and run count measured right after.

Every wait has a deadline scaled from R, so a slow machine gives smaller loads, not longer
runs (about 40 s at SECONDS=10 whatever R is). A phase that runs out of time reports what it
has (`...complete=0`). Prints key=value lines; figures against R are `*_vs_raw` and
`load_vs_raw`; the last line is always `spawn.ratio_vs_raw=<x>` (nan when the throughput
phase did not get that far). The server listens on 127.0.0.1 only and is stopped (SIGTERM,
then SIGKILL) at the end, whatever happens, also when this script gets SIGTERM.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request


class Api:
    def __init__(self, data):
        info = json.load(open(os.path.join(data, "server.json")))
        self.url = info["url"]
        self.token = open(os.path.join(data, "token")).read().strip()

    def call(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": "Bearer " + self.token,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read()
            return json.loads(text) if text else None

    def history_all(self, **q):
        items, cursor = [], None
        while True:
            params = dict(q, limit=1000)
            if cursor:
                params["cursor"] = cursor
            qs = "&".join(f"{k}={v}" for k, v in params.items())
            page = self.call("GET", "/api/v1/history?" + qs)
            items += page["items"]
            cursor = page.get("next")
            if not cursor:
                return items


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


def wait_until(cond, timeout, interval=0.2):
    """Poll cond() until it is true (True) or timeout seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def raw_rate(raw, parallel, runs, seconds):
    """raw_spawn's runs per second: `runs` runs or `seconds` seconds, whichever ends first."""
    r = subprocess.run([raw, "-p", str(parallel), "-n", str(runs), "-t", str(seconds)],
                       capture_output=True, text=True, timeout=seconds + 60)
    if r.returncode != 0:
        raise SystemExit(f"raw_spawn failed: {r.stderr.strip()}")
    return float([l.split("=")[1] for l in r.stdout.splitlines()
                  if l.startswith("raw.runs_per_s=")][0])


def start_server(tethys, data, parallel):
    log = open(os.path.join(data, "server.log"), "w")
    # the benchmark creates its jobs as fast as it can: no per-client rate limit; a short
    # shutdown grace, so stopping never waits long for runs a deadline cut off
    proc = subprocess.Popen([tethys, "server", "--data", data, "--listen", "127.0.0.1:0",
                             "--max-runs", str(parallel), "--rate-limit", "0",
                             "--shutdown-grace", "5"],
                            stdout=log, stderr=log)
    info = os.path.join(data, "server.json")
    if not wait_until(lambda: os.path.exists(info) or proc.poll() is not None, 30, 0.05) or \
            proc.poll() is not None:
        proc.kill()
        raise SystemExit("server did not start; see " + log.name)
    return proc, Api(data)


def in_progress(api, **q):
    return (api.history_all(status="running", **q) or api.history_all(status="queued", **q))


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def lateness_phase(api, r, a):
    t_phase = time.monotonic()
    jobs = max(1, round(a.load * r))
    print(f"server.lateness.jobs={jobs}")
    print(f"server.lateness.load_vs_raw={jobs / r:.2f}")
    # Every job fires exactly at the seconds t0 .. t1 - 1 (start_at, end_at): none fires
    # while the others are being created, and none needs stopping afterwards. t0 leaves
    # three times what the creations should take, timed on five jobs like them that fire in
    # 2099; jobs not created by then are left out (jobs_created says how many were).
    t = time.monotonic()
    for i in range(5):
        api.call("POST", "/api/v1/jobs", {"name": f"probe{i}", "schedule": "* * * * * ?",
                                          "command": "/bin/true",
                                          "start_at": "2099-01-01T00:00:00Z"})
    per_job = (time.monotonic() - t) / 5
    t0 = int(time.time() + 3 + 3 * per_job * jobs)
    t1 = t0 + a.seconds
    made = 0
    for i in range(jobs):
        if time.time() > t0 - 1:
            break
        api.call("POST", "/api/v1/jobs", {"name": f"b{i}", "schedule": "* * * * * ?",
                                          "command": "/bin/true", "overlap": "parallel",
                                          "start_at": rfc3339(t0), "end_at": rfc3339(t1 - 1)})
        made += 1
    print(f"server.lateness.jobs_created={made}")
    print(f"server.lateness.create_s={time.monotonic() - t_phase:.1f}")
    time.sleep(max(0.0, t1 + 1 - time.time()))  # the measurement window itself
    # what was made should end within seconds at a sustainable load; a deadline all the same
    drained = wait_until(lambda: not in_progress(api), 10 + 2 * a.seconds * a.load)
    items = api.history_all(since=t0, until=t1)
    runs = [i for i in items if i.get("kind") == "run"]
    skips = [i for i in items if i.get("kind") == "skip"]
    late = [i["started_at_ms"] - i["scheduled_at"] * 1000 for i in runs if i.get("started_at_ms")]
    ok = sum(i["status"] == "succeeded" for i in runs)
    expected = made * (t1 - t0)
    print(f"server.lateness.seconds={t1 - t0}")
    print(f"server.lateness.complete={int(drained)}")
    print(f"server.lateness.expected_runs={expected}")
    print(f"server.lateness.runs={len(runs)}")
    print(f"server.lateness.skipped={len(skips)}")
    print(f"server.lateness.succeeded={ok}")
    print(f"server.lateness.delivered_pct={100.0 * ok / expected if expected else float('nan'):.1f}")
    print(f"server.lateness.runs_per_s_vs_raw={ok / (t1 - t0) / r:.2f}")
    print(f"server.lateness.p50_ms={pct(late, 0.5):.1f}")
    print(f"server.lateness.p99_ms={pct(late, 0.99):.1f}")
    print(f"server.lateness.max_ms={max(late) if late else float('nan'):.1f}")
    print(f"server.lateness.phase_s={time.monotonic() - t_phase:.1f}")


def burst_phase(api, r, a):
    """Returns (runs per second, shards) of the burst, or (None, shards)."""
    shards = int(min(4000, max(100, r * a.burst_seconds)))
    api.call("POST", "/api/v1/jobs", {"name": "burst", "command": "/bin/true", "shards": shards})
    t_req = time.time()
    api.call("POST", "/api/v1/jobs/burst/run")
    # at R runs a second it takes BURST_SECONDS; allow four times that (the server's own share
    # and a noisy machine), then report what ended by then
    complete = wait_until(lambda: api.call("GET", "/api/v1/jobs/burst")["state"]["running"] == 0,
                          4 * a.burst_seconds + 15, 0.25)
    burst = [i for i in api.history_all(job="burst") if i.get("kind") == "run"]
    ended = [i for i in burst if i.get("ended_at_ms") and i["status"] not in ("queued", "running")]
    print(f"server.spawn.parallel={a.parallel}")
    print(f"server.spawn.shards={shards}")
    print(f"server.spawn.complete={int(complete)}")
    print(f"server.spawn.runs={len(ended)}")
    print(f"server.spawn.succeeded={sum(i['status'] == 'succeeded' for i in ended)}")
    if len(ended) < 2:
        return None, shards
    first = min(i["started_at_ms"] for i in ended if i.get("started_at_ms"))
    last = max(i["ended_at_ms"] for i in ended)
    rate = len(ended) / max(0.001, (last - first) / 1000.0)
    print(f"server.spawn.runs_per_s={rate:.0f}")
    print(f"server.spawn.runs_per_s_vs_raw={rate / r:.2f}")
    print(f"server.spawn.request_to_last_end_s={last / 1000.0 - t_req:.2f}")
    return rate, len(ended)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tethys", default="build/tethys")
    ap.add_argument("--raw", default="build/raw_spawn")
    ap.add_argument("--seconds", type=int, default=10, help="lateness window, seconds")
    ap.add_argument("--load", type=float, default=0.5,
                    help="jobs every second, as a fraction of the raw spawn rate")
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--burst-seconds", type=float, default=5,
                    help="burst size, in seconds of the raw spawn rate")
    ap.add_argument("--data", help="data directory (default: a new one under $TMPDIR)")
    a = ap.parse_args()
    # a SIGTERM (run.sh's time limit) still stops the server: SystemExit runs the finally
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    ratio = float("nan")
    data = a.data or tempfile.mkdtemp(prefix="tethys-bench-")
    os.makedirs(data, exist_ok=True)
    try:
        r = raw_rate(a.raw, a.parallel, 10**9, 3)
        print(f"raw.before.runs_per_s={r:.0f}")
        proc, api = start_server(a.tethys, data, a.parallel)
        try:
            lateness_phase(api, r, a)
            rate, runs = burst_phase(api, r, a)
        finally:
            stop(proc)
        if rate is not None:
            after = raw_rate(a.raw, a.parallel, runs, max(5, 3 * a.burst_seconds))
            print(f"raw.runs_per_s={after:.0f}")
            ratio = rate / after
    finally:
        print(f"spawn.ratio_vs_raw={ratio:.2f}")
        sys.stdout.flush()
        if not a.data:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
