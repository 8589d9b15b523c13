#!/usr/bin/env python3
"""Configuration at scale: the real server with many jobs (stdlib only).

  config_bench.py --tethys build/tethys [--jobs 1000000] [--levels 1000,10000,100000]
                  [--creates 1000] [--dir DIR]

Every phase drives a real `tethys server` on 127.0.0.1 (--rate-limit 0, its own data
directory under DIR) and is bounded in time; a phase that overruns stops the benchmark
with a message naming it.

1. Create rate (server A): the store is filled to each level with the batch API, then
   jobs are created one per request (POST /api/v1/jobs, one keep-alive connection, as a
   user's script would), in three windows of up to --creates jobs or 5 s each.  Jobs/s at
   each level: the median window (this machine is shared; one window swings 10-20%).
2. apply (server B, empty): a file of --jobs jobs, `tethys apply -f FILE` (plan output to
   /dev/null).  Seconds and jobs/s.
3. Memory: the whole server's RSS holding the jobs minus an empty server's, per job;
   measured after the apply and again after a restart (the figure reported).
4. Restart: SIGTERM, then the time from exec to server.json naming the new process and
   /api/v1/health answering (the server publishes server.json once its executor holds
   every job).
5. Reads at that size: p50/p99 of GET /api/v1/jobs/{name} (random names) and of a page of
   100 (GET /api/v1/jobs?limit=100 from a random cursor).

Jobs are small and realistic: a name, '0 0 3 * * ?' (every day at 03:00), a command.
Prints key=value lines, then exactly
  RESULT config create_per_s_1k=<n> create_per_s_100k=<n> rss_per_job_b=<n> restart_1m_s=<n>
"""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

SCHEDULE = "0 0 3 * * ?"


def job(name):
    return {"name": name, "schedule": SCHEDULE, "command": f"/usr/local/bin/report --name {name}"}


def fail(msg):
    raise SystemExit(f"config_bench: {msg}")


class Deadline:
    """A phase's time budget: check() fails the benchmark once it is spent."""

    def __init__(self, what, seconds):
        self.what, self.end = what, time.monotonic() + seconds

    def left(self):
        return self.end - time.monotonic()

    def check(self):
        if self.left() <= 0:
            fail(f"{self.what} did not finish in time; stopping")


class Api:
    """One keep-alive connection to the server."""

    def __init__(self, data):
        info = json.load(open(os.path.join(data, "server.json")))
        url = urllib.parse.urlsplit(info["url"])
        self.host, self.port = url.hostname, url.port
        self.token = open(os.path.join(data, "token")).read().strip()
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)

    def call(self, method, path, body=None, ok=(200, 201, 204)):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": "Bearer " + self.token}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                text = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
                if attempt == 1:
                    raise
        if r.status not in ok:
            fail(f"{method} {path} -> {r.status} {text[:300]!r}")
        return json.loads(text) if text else None

    def status(self, method, path):
        """The HTTP status of one request (its body read and dropped)."""
        self.conn.request(method, path, headers={"Authorization": "Bearer " + self.token})
        r = self.conn.getresponse()
        r.read()
        return r.status

    def close(self):
        self.conn.close()


class Server:
    def __init__(self, tethys, data):
        self.tethys, self.data, self.proc = tethys, data, None
        os.makedirs(data, exist_ok=True)

    def start(self, budget_s):
        """Start and wait until it serves; returns the seconds from exec to ready."""
        info = os.path.join(self.data, "server.json")
        log = open(os.path.join(self.data, "server.log"), "a")
        t0 = time.monotonic()
        self.proc = subprocess.Popen([self.tethys, "server", "--data", self.data,
                                      "--listen", "127.0.0.1:0", "--rate-limit", "0"],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        d = Deadline("the server's start", budget_s)
        while True:
            if self.proc.poll() is not None:
                fail(f"the server exited ({self.proc.returncode}); see {self.data}/server.log")
            try:
                if json.load(open(info)).get("pid") == self.proc.pid:
                    break
            except (OSError, ValueError):
                pass
            d.check()
            time.sleep(0.01)
        self.api = Api(self.data)
        self.api.call("GET", "/api/v1/health")
        return time.monotonic() - t0

    def rss(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self, budget_s=120):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.api.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(budget_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail("the server did not stop within %d s of SIGTERM" % budget_s)


def fill(api, prefix, start, end, budget):
    """Create jobs prefix<start..end) with the batch API, 1000 a request."""
    for lo in range(start, end, 1000):
        hi = min(end, lo + 1000)
        items = [{"op": "create", "job": job(f"{prefix}{i:07d}")} for i in range(lo, hi)]
        r = api.call("POST", "/api/v1/jobs:batch", {"items": items})
        if r["summary"]["failed"]:
            bad = next(i for i in r["items"] if "error" in i)
            fail(f"filling: {bad}")
        budget.check()


def create_rate(api, prefix, count, seconds):
    """Jobs created per second, one request each (at most count jobs or seconds)."""
    t0 = time.monotonic()
    n = 0
    while n < count and time.monotonic() - t0 < seconds:
        api.call("POST", "/api/v1/jobs", job(f"{prefix}{n:07d}"), ok=(201,))
        n += 1
    return n / (time.monotonic() - t0)


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


def timed(api, method, path, repeat, pick):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        api.call(method, pick(path))
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tethys", required=True)
    ap.add_argument("--jobs", type=int, default=1000000)
    ap.add_argument("--levels", default="1000,10000,100000")
    ap.add_argument("--creates", type=int, default=1000)
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    tethys = os.path.abspath(a.tethys)
    levels = [int(x) for x in a.levels.split(",")]
    top = tempfile.mkdtemp(prefix="tethys-bench-config-", dir=a.dir)
    servers = []
    try:
        # ---- 1. create rate at each level ------------------------------------------------
        srv = Server(tethys, os.path.join(top, "a"))
        servers.append(srv)
        srv.start(60)
        rates = {}
        have = 0
        for level in levels:
            budget = Deadline(f"filling to {level} jobs", 60 + level / 100)
            fill(srv.api, "fill-", have, level, budget)
            have = level
            windows = sorted(create_rate(srv.api, f"c{level}-{w}-", a.creates, 5)
                             for w in range(3))
            rates[level] = windows[1]
            print(f"create.at_{level}.windows=" + ",".join(f"{r:.0f}" for r in windows),
                  flush=True)
            print(f"create.at_{level}.per_s={rates[level]:.0f}", flush=True)
        srv.stop()
        shutil.rmtree(srv.data, ignore_errors=True)

        # ---- 2. apply of the whole file into an empty server -----------------------------
        srv = Server(tethys, os.path.join(top, "b"))
        servers.append(srv)
        srv.start(60)
        time.sleep(1)
        rss_empty = srv.rss()
        print(f"rss.empty_mb={rss_empty / 1048576:.1f}", flush=True)
        path = os.path.join(top, "jobs.json")
        with open(path, "w") as f:
            f.write("[\n")
            for i in range(a.jobs):
                f.write(json.dumps(job(f"job-{i:07d}")) + (",\n" if i + 1 < a.jobs else "\n"))
            f.write("]\n")
        print(f"apply.file_mb={os.path.getsize(path) / 1048576:.1f}", flush=True)
        budget = 120 + a.jobs / 500  # 2,000 s for a million: far above what it takes
        t0 = time.monotonic()
        with open(os.devnull, "w") as null, open(os.path.join(top, "apply.err"), "w") as err:
            p = subprocess.run([tethys, "apply", "-f", path, "--data", srv.data],
                               stdout=null, stderr=err, timeout=budget)
        took = time.monotonic() - t0
        if p.returncode != 0:
            fail(f"apply exited {p.returncode}: {open(os.path.join(top, 'apply.err')).read()}")
        print(f"apply.jobs={a.jobs}", flush=True)
        print(f"apply.s={took:.1f}", flush=True)
        print(f"apply.per_s={a.jobs / took:.0f}", flush=True)
        os.unlink(path)
        time.sleep(2)  # the executor takes the last assignments
        rss_applied = srv.rss()
        print(f"rss.after_apply_mb={rss_applied / 1048576:.1f}", flush=True)
        print(f"rss.after_apply_per_job_b={(rss_applied - rss_empty) / a.jobs:.0f}", flush=True)

        # ---- 3, 4. restart, memory ------------------------------------------------------
        srv.stop()
        restart = srv.start(120)
        print(f"restart.s={restart:.2f}", flush=True)
        # the executor holds the jobs of the first and the last start-up batch (a run now
        # of each: the command does not exist, the run fails, which is fine)
        held = all(srv.api.status("POST", f"/api/v1/jobs/job-{i:07d}/run") == 202
                   for i in (0, a.jobs - 1))
        print(f"restart.jobs_held={'yes' if held else 'NO: the executor lost jobs'}", flush=True)
        time.sleep(1)
        rss = srv.rss()
        per_job = (rss - rss_empty) / a.jobs
        print(f"rss.after_restart_mb={rss / 1048576:.1f}", flush=True)
        print(f"rss.per_job_b={per_job:.0f}", flush=True)

        # ---- 5. reads at that size ------------------------------------------------------
        rnd = random.Random(1)
        reads = timed(srv.api, "GET", None, 2000,
                      lambda _: f"/api/v1/jobs/job-{rnd.randrange(a.jobs):07d}")
        print(f"read.job.p50_ms={pct(reads, 50):.2f}", flush=True)
        print(f"read.job.p99_ms={pct(reads, 99):.2f}", flush=True)

        def page(_):
            name = f"job-{rnd.randrange(a.jobs):07d}"
            return "/api/v1/jobs?limit=100&cursor=o1." + name.encode().hex()
        pages = timed(srv.api, "GET", None, 300, page)
        print(f"read.page100.p50_ms={pct(pages, 50):.2f}", flush=True)
        print(f"read.page100.p99_ms={pct(pages, 99):.2f}", flush=True)
        srv.stop()

        print(f"RESULT config create_per_s_1k={rates.get(1000, 0):.0f} "
              f"create_per_s_100k={rates.get(100000, 0):.0f} rss_per_job_b={per_job:.0f} "
              f"restart_1m_s={restart:.2f}", flush=True)
    finally:
        for s in servers:
            try:
                s.stop(30)
            except SystemExit:
                pass
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
