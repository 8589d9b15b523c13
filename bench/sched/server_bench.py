#!/usr/bin/env python3
"""The real server under load (stdlib only).

  server_bench.py --tethys build/tethys --raw build/raw_spawn [--jobs 1000] [--seconds 20]
                  [--parallel 8] [--burst 4000] [--data DIR]

1. Lateness: JOBS shell jobs (/bin/true) every second for SECONDS seconds, history being
   written; lateness = process start - scheduled second, read back from the history.
2. Throughput: one job with BURST shards started at once (run now), --max-runs PARALLEL:
   shell runs per second from the first start to the last end, against build/raw_spawn
   (a plain posix_spawn + wait loop of /bin/sh -c /bin/true with the same parallelism)
   measured right after, in the same invocation.

Prints key=value lines (server.*); the ratio is spawn.ratio_vs_raw.  The server listens on
127.0.0.1 only and is stopped (SIGTERM) at the end, whatever happens.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
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


def start_server(tethys, data, parallel):
    log = open(os.path.join(data, "server.log"), "w")
    # the benchmark creates a thousand jobs as fast as it can: no per-client rate limit
    proc = subprocess.Popen([tethys, "server", "--data", data, "--listen", "127.0.0.1:0",
                             "--max-runs", str(parallel), "--rate-limit", "0"],
                            stdout=log, stderr=log)
    for _ in range(100):
        if os.path.exists(os.path.join(data, "server.json")):
            return proc, Api(data)
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start; see " + log.name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tethys", default="build/tethys")
    ap.add_argument("--raw", default="build/raw_spawn")
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--burst", type=int, default=4000)
    ap.add_argument("--data", help="data directory (default: a new one under $TMPDIR)")
    a = ap.parse_args()

    data = a.data or tempfile.mkdtemp(prefix="tethys-bench-")
    os.makedirs(data, exist_ok=True)
    proc, api = start_server(a.tethys, data, a.parallel)
    try:
        # 1. lateness with JOBS jobs every second
        for i in range(a.jobs):
            api.call("POST", "/api/v1/jobs", {"name": f"b{i}", "schedule": "* * * * * ?",
                                              "command": "/bin/true", "overlap": "parallel"})
        t0 = int(time.time()) + 2
        time.sleep(a.seconds + 2)
        t1 = int(time.time()) - 1
        for i in range(a.jobs):
            api.call("POST", f"/api/v1/jobs/b{i}/disable")
        time.sleep(3)
        runs = [r for r in api.history_all(since=t0, until=t1) if r.get("kind") == "run"]
        skips = [r for r in api.history_all(since=t0, until=t1) if r.get("kind") == "skip"]
        late = [r["started_at_ms"] - r["scheduled_at"] * 1000 for r in runs
                if r.get("started_at_ms")]
        expected = a.jobs * (t1 - t0)
        print(f"server.lateness.jobs={a.jobs}")
        print(f"server.lateness.seconds={t1 - t0}")
        print(f"server.lateness.expected_runs={expected}")
        print(f"server.lateness.runs={len(runs)}")
        print(f"server.lateness.skipped={len(skips)}")
        print(f"server.lateness.succeeded={sum(r['status'] == 'succeeded' for r in runs)}")
        print(f"server.lateness.p50_ms={pct(late, 0.5):.1f}")
        print(f"server.lateness.p99_ms={pct(late, 0.99):.1f}")
        print(f"server.lateness.max_ms={max(late) if late else float('nan'):.1f}")

        # 2. throughput: BURST shards at once
        api.call("POST", "/api/v1/jobs", {"name": "burst", "command": "/bin/true",
                                          "shards": a.burst})
        t_req = time.time()
        api.call("POST", "/api/v1/jobs/burst/run")
        while True:
            time.sleep(0.5)
            st = api.call("GET", "/api/v1/jobs/burst")["state"]
            if st["running"] == 0:
                break
        time.sleep(2)
        burst = [r for r in api.history_all(job="burst") if r.get("kind") == "run"]
        first = min(r["started_at_ms"] for r in burst if r.get("started_at_ms"))
        last = max(r["ended_at_ms"] for r in burst if r.get("ended_at_ms"))
        ok = sum(r["status"] == "succeeded" for r in burst)
        rate = len(burst) / ((last - first) / 1000.0)
        print(f"server.spawn.parallel={a.parallel}")
        print(f"server.spawn.runs={len(burst)}")
        print(f"server.spawn.succeeded={ok}")
        print(f"server.spawn.runs_per_s={rate:.0f}")
        print(f"server.spawn.request_to_last_end_s={last / 1000.0 - t_req:.2f}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()

    raw = subprocess.run([a.raw, "-p", str(a.parallel), "-n", str(a.burst)], capture_output=True,
                         text=True)
    raw_rate = float([l.split("=")[1] for l in raw.stdout.splitlines()
                      if l.startswith("raw.runs_per_s=")][0])
    print(f"raw.runs_per_s={raw_rate:.0f}")
    print(f"spawn.ratio_vs_raw={rate / raw_rate:.2f}")
    if not a.data:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
