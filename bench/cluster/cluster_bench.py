#!/usr/bin/env python3
"""The cluster benchmark (make bench-cluster): failover, rebalance, what ZooKeeper pays, and
what one server set pays for many ensembles.

  cluster_bench.py --tethys build/tethys --raw-rate R [--jobs 500000] [--reps 5]
                   [--window 40] [--rebalance-jobs 10000] [--create-budget S] [--dir DIR]
                   [--only PHASE,...] [--ensembles 1,10,50,100] [--ens-executors 100]
                   [--ens-jobs 3] [--ens-window 30] [--ens-samples 10]
                   [--ens-session-timeout 10]

--only runs only the phases named (run.sh: PHASES=ensembles); rebalance needs znodes.

Everything runs on 127.0.0.1: a three-node ZooKeeper ensemble (tests/zk/zk.sh through
tests/system/zkens.py; tickTime 500 ms, so session timeouts of 1-10 s are granted; each
node's heap is ZK_HEAP, which run.sh sets to 1 GB), one PostgreSQL 15 (tests/pg/pg.sh
through conftest.Postgres; run.sh sets PG_DURABLE=1, fsync on), and servers and executors
as separate processes (tests/system/cluster.py, the system tests' own harness; the servers
with --rate-limit 0).  R is this machine's raw spawn rate, measured by run.sh just before
(bench/spawn/raw_spawn: posix_spawn + waitpid of `/bin/sh -c /bin/true`, 8 in flight).

"An executor holds its share" is read from ZooKeeper itself (python3-kazoo, with the
cluster's credential): its placement head names the jobs and its registration's
applied_gen has reached the head's generation, i.e. every definition is fetched and handed
to its trigger engine; the leader's GET /api/v1/executors must agree.  (That list counts
an executor's shards from the moment the leader starts writing a placement, which at
500,000 jobs is seconds before the placement exists.)

Phases, in this order, each bounded in time (a phase that fails or runs out of time says
so with <phase>.complete=0, its figures read nan, and the benchmark goes on where it can):

  failover.t10  cluster B: 1 server, 3 executors, --zk-session-timeout 10.  A job firing
                every second with 6 shards; the executor holding most of them is killed
                (SIGKILL); the figure is from the kill to the earliest started_at_ms, in
                history, of a run of one of its shards on another executor.  REPS times
                (the victim restarted under the same name and given its share back
                between two), median and max.  Cluster B is then stopped.
  failover.t4   cluster A (2 servers, 3 executors, timeout 4): the same.
  steady        cluster A, N = max(30, R/2) jobs firing every second (`true`), placed over
                the 3 executors; a WINDOW-second window of scheduled seconds [t0, t1):
                the ZooKeeper leader's zxid (srvr) at t0 and at t1, whose low 32 bits
                count the transactions of the epoch, so writes = their difference;
                fires = the history's runs + skips of the window (GET /api/v1/stats);
                zk_writes_per_fire = writes / fires; mntr's zk_packets_received summed over
                the nodes (reads, writes and pings) per fire too.  The same window gives
                the sustained figures: runs started a second, lateness p50/p99 (stats:
                process start - scheduled instant), and runs/s / R.  The jobs are deleted
                after.
  znodes        cluster A with 2 executors (e3 stopped): mntr with 0 jobs, then with
                REBALANCE_JOBS daily jobs placed: zk_znode_count and approximate data size
                from the ZooKeeper leader (the tree is the same on every node), watches
                summed over the three nodes (each counts the watches of the sessions
                connected to it); the difference per job.
  rebalance     a fresh executor e4 joins the 2 holding REBALANCE_JOBS jobs: the time
                from its exec until it holds its share, floor(jobs / 3); shards moved =
                what e1 and e2 gave up.
  large         cluster A grown to JOBS daily jobs (POST /api/v1/jobs:batch, 1,000 a
                request, to the leader), every 10% of the way: the create rate, where the
                CPU went, the servers' RSS, the ZooKeeper leader's RSS, heap and disk.
                Once all are placed: each ZooKeeper node's heap used after a full
                collection (`jcmd PID GC.run`, then GC.heap_info: used of the young and
                old generations; SerialGC), its RSS, mntr's znode count and data size;
                every server's and executor's RSS; then a fresh executor e5, from exec
                to holding its share, floor(jobs / 4).  Jobs are created only while
                CREATE_BUDGET lasts (default jobs/300 s); a shortfall is printed
                (large.complete=0) and the figures are taken at the size reached.
  ensembles     one server set (a leader and a standby) over N ensembles, for each N of
                --ensembles, SIMULATED: every ensemble is a chroot (HOSTS/<tag>-e017) of
                one three-node ZooKeeper of the phase's own (the phases before are
                stopped first, so it runs alone on the machine whatever ran before).  The
                servers hold N sessions, N elections, N sets of watches, doorbells and
                placements exactly as for N real ensembles, so their cost per ensemble
                (memory, threads, descriptors, CPU, start-up) is real; ZooKeeper's side is
                shared (3 JVMs serve all N), so its load is not multiplied and a slow or
                lost ensemble is not simulated.  Ensemble i (e<i>) holds domain d<i> (e000
                also every unrouted domain) with ENS_JOBS daily jobs, and one executor x<i>
                (a process each, up to --ens-executors, spread over the range; 100 idle
                executors take ~13 MB and ~0.1% of a core each).  Measured for each N:
                the leader from exec to every ensemble connected and led (ready_s, GET
                /api/v1/zk/clusters polled every 20 ms); the executors from exec to each
                holding its domain's jobs; the standby from exec to every ensemble
                connected with its leader known; then, idle (no change for 5 s), over
                --ens-window seconds: the CPU of the leader, the standby, the executors,
                ZooKeeper and the machine; RSS, threads and descriptors of both servers;
                the time of GET /zk/clusters and of GET /executors (which asks every
                ensemble).  Refresh: a daily job created in domain d<i> (walking over the
                executors' ensembles), --ens-samples times on the leader and as many on
                the standby: placed = from the POST until x<i>'s placement head names one
                more job and its registration has applied it (ZooKeeper read with kazoo);
                seen = until the other server's GET /zk/clusters counts it in e<i> (it
                learns through e<i>'s doorbell and reads the job back from the store).
                Then a second executor joins 3 ensembles in turn: online = until the
                leader counts it, placed = until it holds half of that domain's jobs.
                Last, SIGTERM to exit for the standby and the leader.  Printed as
                ensembles.n<N>.<figure>, a table of them, and ensembles.per_ensemble.*:
                the slope between the smallest and the largest N.

Prints key=value lines; the last line is exactly
  RESULT cluster failover_s=<t4 median> zk_writes_per_fire=<n> znodes_per_job=<n> jobs_500k_zk_heap_mb=<n>
with znodes_per_job and the heap from the large phase at the size reached (znodes_per_job
from the znodes phase when the large one did not get that far), the heap the ZooKeeper
leader's.  Everything started is stopped at the end, also on failure or SIGTERM, and the
temporary directory removed (BENCH_KEEP=1 keeps it, for the logs).
"""
import argparse
import json
import logging
import math
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/system"))

from cluster import Cluster, ClusterServer, Executor  # noqa: E402  the system tests' harness
from conftest import Postgres  # noqa: E402
from zkens import ZkEnsemble  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402  Debian's python3-kazoo (make deps)
from kazoo.exceptions import NoNodeError  # noqa: E402

PHASES = ["failover.t10", "failover.t4", "steady", "znodes", "rebalance", "large", "ensembles"]
ENS_EXECUTORS = 100  # executors of the ensembles phase: one an ensemble, up to this many
EVERY_SECOND = "* * * * * ?"
DAILY = "0 0 3 * * ?"
NAN = float("nan")


def out(key, value):
    if isinstance(value, float):
        value = "nan" if math.isnan(value) else f"{value:.6g}"
    print(f"{key}={value}", flush=True)


def note(text):
    print(f"# {text}", flush=True)


class PhaseTimeout(Exception):
    pass


def until(pred, seconds, what, interval=0.1):
    """pred()'s first truthy value within `seconds`; PhaseTimeout after."""
    end = time.monotonic() + seconds
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            raise PhaseTimeout(f"{what}: not within {seconds:.0f} s")
        time.sleep(interval)


def median(v):
    s = sorted(v)
    if not s:
        return NAN
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def pct(v, p):
    s = sorted(v)
    return s[min(len(s) - 1, int(len(s) * p / 100))] if s else NAN


# ---- processes --------------------------------------------------------------------------

def rss_mb(pid):
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return NAN


def cpu_s(pid, tid=None):
    """User + system CPU seconds of a process (its children not counted), or of its thread
    tid."""
    try:
        path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
        stat = pathlib.Path(path).read_text()
        f = stat[stat.rfind(")") + 2:].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return NAN


def jvm_heap_used_mb(pid):
    """Heap used after a full collection: jcmd GC.run, then GC.heap_info (SerialGC's young
    and old generations' `used`).  nan when the JVM does not answer."""
    try:
        subprocess.run(["jcmd", str(pid), "GC.run"], capture_output=True, timeout=120)
        r = subprocess.run(["jcmd", str(pid), "GC.heap_info"], capture_output=True, text=True,
                           timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return NAN
    used = [int(k) for k in re.findall(r"generation\s+total \d+K, used (\d+)K", r.stdout)]
    return sum(used) / 1024 if used else NAN


# ---- ZooKeeper --------------------------------------------------------------------------

def zk_leader(zk):
    for i in (1, 2, 3):
        if zk.mode(i) == "leader":
            return i
    return 1


def check_zk(zk):
    """Fail the phase at once when a ZooKeeper node has died (its log says why)."""
    for i in (1, 2, 3):
        if zk.pid(i) is None:
            log = zk.log(i, 400)
            why = "OutOfMemoryError" if "OutOfMemoryError" in log else "see its log"
            raise RuntimeError(f"ZooKeeper node {i} exited ({why})")


def zk_disk_mb(zk):
    """What the three nodes keep on disk: transaction logs and snapshots."""
    total = 0
    for p in zk.dir.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return total / 1048576


def zxid(zk, i):
    for line in zk.four(i, "srvr").splitlines():
        if line.startswith("Zxid: "):
            return int(line.split()[1], 16)
    return None


def zk_figures(zk):
    """znodes and data size from the ZooKeeper leader; watches and packets summed over the
    three nodes."""
    lead = zk_leader(zk)
    m = zk.mntr(lead)
    f = {"znodes": int(m.get("zk_znode_count", -1)),
         "data_bytes": int(m.get("zk_approximate_data_size", -1)),
         "watches": 0, "packets_received": 0}
    for i in (1, 2, 3):
        mi = m if i == lead else zk.mntr(i)
        f["watches"] += int(mi.get("zk_watch_count", 0))
        f["packets_received"] += int(mi.get("zk_packets_received", 0))
    return f


# ---- the cluster ------------------------------------------------------------------------

def add_server(cluster):
    """A server of the cluster, with no API rate limit (the benchmark's client and the
    executors all come from 127.0.0.1)."""
    s = ClusterServer(cluster, f"s{len(cluster.servers) + 1}")
    s.args += ["--rate-limit", "0"]
    s.start(timeout=60)
    cluster.servers.append(s)
    return s


def executors(leader):
    return {e["id"]: e for e in leader.ok("GET", "/executors", timeout=60)["items"]}


def applied(e):
    """The leader's view: the executor has applied the newest placement published for it."""
    return (e.get("state") == "online" and e.get("applied_gen", 0) > 0
            and e.get("applied_gen", 0) >= e.get("placement_gen", 0))


class ZkView:
    """The cluster's own nodes, read with its credential: an executor's placement head
    ({"gen", "jobs", ...}) and its registration ({"applied_gen", ...}).  The leader's
    GET /executors counts an executor's shards from the moment it starts writing a
    placement, seconds before the head that makes it real at 500,000 jobs, so "holding
    its share" is decided here: the head names the share and the registration has
    applied that generation."""

    def __init__(self, cluster):
        logging.getLogger("kazoo").setLevel(logging.CRITICAL)
        self.cluster, self.kz = cluster, None

    def node(self, path):
        if self.kz is None:  # connected on first use (and again after close)
            self.kz = KazooClient(hosts=self.cluster.hosts, timeout=10.0,
                                  auth_data=[("digest", self.cluster.auth.read_text().strip())])
            self.kz.start(timeout=30)
        try:
            return json.loads(self.kz.get(path)[0])
        except (NoNodeError, ValueError):
            return None

    def caught_up(self, name):
        """The executor's head when its registration has applied it, else None."""
        head = self.node(f"/placements/{name}")
        reg = self.node(f"/executors/{name}")
        if head is None or reg is None or reg.get("applied_gen", 0) < head.get("gen", 0):
            return None
        return head

    def close(self):
        """Disconnect (its session's pings would count in a window of ZooKeeper packets)."""
        if self.kz is not None:
            self.kz.stop()
            self.kz.close()
            self.kz = None


def settled(leader, names, shards=None, zv=None, jobs=None):
    """Every named executor online with its placement applied (and, given shards, their
    shards adding up to it; given zv and jobs, their heads naming that many jobs, each
    head applied): the executors' state, else None."""
    st = executors(leader)
    live = [st.get(n) for n in names]
    if any(e is None or not applied(e) for e in live):
        return None
    if shards is not None and sum(e["shards"] for e in live) != shards:
        return None
    if zv is not None:
        heads = [zv.caught_up(n) for n in names]
        if any(h is None for h in heads):
            return None
        # "held": the jobs a head's parts hold once applied ("jobs" counts their entries)
        if jobs is not None and sum(h.get("held", h.get("jobs", 0)) for h in heads) != jobs:
            return None
    return st


def batch(leader, op_items, timeout=300):
    r = leader.ok("POST", "/jobs:batch", json={"items": op_items}, timeout=timeout)
    if r["summary"]["failed"]:
        bad = next(i for i in r["items"] if "error" in i)
        raise RuntimeError(f"batch: {bad}")


def create_jobs(leader, names, schedule, shards=1):
    for lo in range(0, len(names), 1000):
        batch(leader, [{"op": "create", "job": {"name": n, "schedule": schedule,
                                                 "command": "true", "shards": shards}}
                       for n in names[lo:lo + 1000]])


def delete_jobs(leader, names):
    for lo in range(0, len(names), 1000):
        batch(leader, [{"op": "delete", "name": n} for n in names[lo:lo + 1000]])


# ---- phases -----------------------------------------------------------------------------

def failover(cluster, leader, tag, reps, timeout_s):
    """kill -9 of the executor holding most shards of an every-second job, to the first run
    of one of its shards elsewhere.  Returns the figures in seconds."""
    names = sorted(cluster.executors)
    job = f"failover-{tag}"
    leader.ok("POST", "/jobs", json={"name": job, "schedule": EVERY_SECOND, "command": "true",
                                     "shards": 6, "misfire_threshold": 30}, status=201)
    figures = []
    for rep in range(reps):
        st = until(lambda: settled(leader, names, 6), 60, "the job's 6 shards placed", 0.2)
        victim = max(names, key=lambda n: (st[n]["shards"], n))
        want = st[victim]["shards"]
        placed = time.time()

        def victim_shards():
            runs = leader.runs(job, since=int(placed))
            got = {r["shard"] for r in runs if r.get("executor") == victim}
            return got if len(got) >= want else None
        shards = until(victim_shards, 30, f"runs of {victim}'s {want} shards", 0.3)
        killed_ms = time.time() * 1000
        cluster.executors[victim].kill9()

        def taken():
            runs = leader.runs(job, since=int(killed_ms / 1000) - 1)
            t = [r["started_at_ms"] for r in runs
                 if r["shard"] in shards and r.get("executor") != victim
                 and (r.get("started_at_ms") or 0) > killed_ms]
            return min(t) if t else None
        first = until(taken, timeout_s + 60, f"a run of {victim}'s shards elsewhere", 0.25)
        s = (first - killed_ms) / 1000
        figures.append(s)
        out(f"failover.t{tag}.rep{rep + 1}_s", round(s, 3))
        # the victim comes back under its name and gets its share again
        x = Executor(cluster, victim).start()
        cluster.executors[victim] = x
        until(lambda: (lambda e: e is not None and e["shards"] > 0 and applied(e))(
            executors(leader).get(victim)), timeout_s + 60, f"{victim} back with shards", 0.2)
    leader.ok("DELETE", f"/jobs/{job}", status=204)
    return figures


def steady(zk, zv, cluster, leader, n_jobs, window, raw_rate):
    names = [f"steady-{i:05d}" for i in range(n_jobs)]
    xs = sorted(cluster.executors)
    t_create = time.monotonic()
    create_jobs(leader, names, EVERY_SECOND)
    until(lambda: settled(leader, xs, n_jobs, zv, n_jobs), 120, f"{n_jobs} jobs placed", 0.2)
    out("steady.jobs", n_jobs)
    out("steady.placed_s", round(time.monotonic() - t_create, 2))
    zv.close()  # the window counts the cluster's ZooKeeper traffic alone
    time.sleep(5)  # warm-up: every executor has fired a few seconds
    t0 = int(time.time()) + 1
    while time.time() < t0:
        time.sleep(0.01)
    lead = zk_leader(zk)
    z0 = zxid(zk, lead)
    f0 = zk_figures(zk)
    pids = {"leader": leader.pid, "executors": [x.pid for x in cluster.executors.values()],
            "zk": [zk.pid(i) for i in (1, 2, 3)]}
    c0 = {k: sum(cpu_s(p) for p in (v if isinstance(v, list) else [v])) for k, v in pids.items()}
    t1 = t0 + window
    while time.time() < t1:
        time.sleep(0.05)
    z1 = zxid(zk, lead)
    f1 = zk_figures(zk)
    c1 = {k: sum(cpu_s(p) for p in (v if isinstance(v, list) else [v])) for k, v in pids.items()}
    if zk_leader(zk) != lead or z0 is None or z1 is None or (z0 >> 32) != (z1 >> 32):
        raise RuntimeError("the ZooKeeper leader or epoch changed during the window")
    writes = (z1 & 0xFFFFFFFF) - (z0 & 0xFFFFFFFF)

    def stats():
        g = leader.ok("GET", "/stats", params={"since": t0, "until": t1,
                                                "group_by": "domain"})["groups"]
        return g[0] if g else None
    # the results reach the leader through the executors' spools: wait until they stop coming
    last, stable_since = None, time.monotonic()
    end = time.monotonic() + 60
    while time.monotonic() < end:
        g = stats()
        key = g and (g["runs"], g["skipped"], g["unfinished"])
        if key != last:
            last, stable_since = key, time.monotonic()
        elif g and g["unfinished"] == 0 and time.monotonic() - stable_since > 3:
            break
        time.sleep(0.5)
    g = stats() or {"runs": 0, "skipped": 0, "misfired": 0, "lateness_ms": {}}
    fires = g["runs"] + g["skipped"]
    started = g["runs"] - g["misfired"]
    expected = n_jobs * window
    out("steady.window_s", window)
    out("steady.fires_expected", expected)
    out("steady.fires_recorded", fires)
    out("steady.runs_started", started)
    out("steady.skipped", g["skipped"])
    out("steady.misfired", g["misfired"])
    if g["skipped"]:
        reasons = {}
        for item in leader.history(status="skipped", since=t0, until=t1):
            reasons[item.get("reason")] = reasons.get(item.get("reason"), 0) + 1
        out("steady.skip_reasons", ",".join(f"{k}:{v}" for k, v in sorted(reasons.items())))
    out("zk.writes_in_window", writes)
    out("zk.writes_per_s", round(writes / window, 3))
    zk_wpf = writes / fires if fires else NAN
    out("zk_writes_per_fire", f"{zk_wpf:.6f}")
    pkts = f1["packets_received"] - f0["packets_received"]
    out("zk.packets_received_in_window", pkts)
    out("zk_packets_per_fire", f"{pkts / fires:.6f}" if fires else "nan")
    rate = started / window
    late = g.get("lateness_ms") or {}
    out("sustained.fires_per_s", round(rate, 1))
    out("sustained.floor_raw_spawn_per_s", round(raw_rate, 1))
    out("sustained.ratio_vs_raw", round(rate / raw_rate, 3) if raw_rate else NAN)
    out("sustained.delivered_pct", round(100.0 * started / expected, 2) if expected else NAN)
    out("sustained.lateness_p50_ms", late.get("p50"))
    out("sustained.lateness_p99_ms", late.get("p99"))
    for k in c0:
        out(f"steady.cpu_pct.{k}", round(100.0 * (c1[k] - c0[k]) / window, 1))
    delete_jobs(leader, names)
    until(lambda: settled(leader, xs, 0, zv, 0), 120, "the steady jobs removed", 0.2)
    return zk_wpf, late.get("p99")


def machine_cpu_s():
    """CPU seconds the whole machine has spent (every core), from /proc/stat."""
    f = pathlib.Path("/proc/stat").read_text().splitlines()[0].split()
    busy = sum(int(x) for x in f[1:9]) - int(f[4]) - int(f[5])  # less idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def grow(zk, cluster, leader, prefix, start, end, budget_s, report_every):
    """Create daily jobs prefix<start..end) in batches of 1,000, to the leader; returns how
    many exist when done or when the budget is spent.  Every report_every jobs: the create
    rate since the last mark, the ZooKeeper leader's RSS, and where the CPU went."""
    t0 = time.monotonic()
    mark_t, mark_n = t0, start

    def cpu():
        c = {"leader": cpu_s(leader.pid),
             "standby": sum(cpu_s(s.pid) for s in cluster.servers if s is not leader),
             "executors": sum(cpu_s(x.pid) for x in cluster.executors.values()),
             "zk": sum(cpu_s(zk.pid(i)) for i in (1, 2, 3))}
        c["machine"] = machine_cpu_s()
        return c
    mark_c = cpu()
    n = start
    while n < end:
        if time.monotonic() - t0 > budget_s:
            note(f"creating stopped at {n} jobs: the {budget_s:.0f} s budget is spent")
            break
        check_zk(zk)
        hi = min(end, n + 1000)
        create_jobs(leader, [f"{prefix}{i:07d}" for i in range(n, hi)], DAILY)
        n = hi
        if n % report_every == 0 or n == end:
            now, c = time.monotonic(), cpu()
            dt = now - mark_t
            out(f"large.create.at_{n}.per_s", round((n - mark_n) / dt))
            out(f"large.create.at_{n}.cpu_pct",
                ",".join(f"{k}:{100.0 * (c[k] - mark_c[k]) / dt:.0f}" for k in c))
            lead = zk.pid(zk_leader(zk))
            out(f"large.create.at_{n}.servers_rss_mb",
                ",".join(f"{x.name}:{rss_mb(x.pid):.0f}" for x in cluster.servers))
            out(f"large.create.at_{n}.zk_leader_rss_mb", round(rss_mb(lead), 1))
            # after a full collection: what the ensemble's leader really holds (the pause
            # and jcmd's own start-up are left out of the next mark's rate)
            out(f"large.create.at_{n}.zk_leader_heap_used_mb", round(jvm_heap_used_mb(lead), 1))
            out(f"large.create.at_{n}.zk_disk_mb", round(zk_disk_mb(zk)))
            mark_t, mark_n, mark_c = time.monotonic(), n, cpu()
    return n


def join_time(zv, cluster, leader, name, share, budget_s):
    """Start a fresh executor; seconds from its exec to holding `share` one-shard jobs:
    its placement head names them, its registration has applied that generation (every
    definition fetched and handed to its trigger engine), and the leader lists it with
    at least that many shards."""
    t0 = time.monotonic()
    x = Executor(cluster, name).start()
    cluster.executors[name] = x

    def held():
        if not x.running():
            raise RuntimeError(f"executor {name} exited: {x.log_tail(10)}")
        head = zv.caught_up(name)
        if (head is None or head.get("gen", 0) < 1
                or head.get("held", head.get("jobs", 0)) < share):
            return None
        e = executors(leader).get(name)
        return e if e is not None and e["shards"] >= share and applied(e) else None
    e = until(held, budget_s, f"{name} holding {share} shards", 0.1)
    return time.monotonic() - t0, e


# ---- the ensembles phase ----------------------------------------------------------------

class EnsembleSet(Cluster):
    """N ensembles simulated as N chroots of one real ensemble: ensemble i is
    HOSTS/<tag>-e<i>, named e<i>, holding domain d<i> (e000 also every unrouted domain).
    A server opens a session, an election, watches and a placement of its own in each,
    exactly as it would for N separate ensembles; only ZooKeeper's side is shared."""

    def __init__(self, base, tethys, pg, zk, n, session_timeout):
        super().__init__(base, tethys, pg, zk, session_timeout)
        tag = self.hosts.rsplit("/", 1)[1]
        self.n = n
        self.names = [f"e{i:03d}" for i in range(n)]
        self.domains = [f"d{i:03d}" for i in range(n)]
        self.chroots = [f"/{tag}-e{i:03d}" for i in range(n)]

    def server(self, name):
        s = ClusterServer(self, name)
        zk = []
        for name_i, chroot in zip(self.names, self.chroots):
            zk += ["--zk", f"{name_i}={self.zk.hosts}{chroot}"]
        for name_i, dom in zip(self.names[1:], self.domains[1:]):
            zk += ["--zk-domains", f"{name_i}={dom}"]
        i = s.args.index("--zk")
        s.args[i:i + 2] = zk
        s.args += ["--rate-limit", "0"]
        return s

    def executor(self, i, name=None):
        x = Executor(self, name or f"x{i:03d}")
        x.args[x.args.index("--zk") + 1] = self.zk.hosts + self.chroots[i]
        return x


def proc_threads(pid):
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return -1


def proc_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def zk_clusters(server):
    return {c["name"]: c for c in server.ok("GET", "/zk/clusters", timeout=30)["items"]}


def all_led(es, server, role):
    """Every ensemble connected in server's view, and server leading it (role "leader")
    or knowing its leader (role "standby")."""
    try:
        cl = zk_clusters(server)
    except (AssertionError, OSError, ValueError) as e:  # not answering yet
        if not server.running():
            raise RuntimeError(f"server {server.name} exited: {server.log_tail(10)}") from e
        return None
    if len(cl) != es.n:
        return None
    for c in cl.values():
        if not c["connected"] or c["role"] != role or (role == "standby" and not c["leader_url"]):
            return None
    return cl


def log_counts(path):
    """(WARN lines, ERROR lines) of a process's log."""
    try:
        text = pathlib.Path(path).read_text(errors="replace")
    except OSError:
        return 0, 0
    return len(re.findall(r"Z WARN ", text)), len(re.findall(r"Z ERROR ", text))


def ensembles_run(top, tethys, pg, zk, n, a, kz):
    """One server set (a leader, a standby) over n simulated ensembles; returns its figures."""
    es = EnsembleSet(top / f"ens-{n}", tethys, pg, zk, n, a.ens_session_timeout)
    kz.add_auth("digest", es.auth.read_text().strip())  # each set has its own credential
    f = {"n": n}
    p = f"ensembles.n{n}"
    # the executors: one on each of at most ENS_EXECUTORS ensembles, spread over the range
    k = min(n, a.ens_executors)
    with_x = sorted({round(i * (n - 1) / (k - 1)) for i in range(k)}) if k > 1 else [0]
    try:
        # ---- the leader: exec to every ensemble connected and led
        s1 = es.server("s1")
        t0 = time.monotonic()
        s1.start(timeout=300)
        f["listen_s"] = time.monotonic() - t0
        until(lambda: all_led(es, s1, "leader"), 300, f"s1 leading {n} ensembles", 0.02)
        f["ready_s"] = time.monotonic() - t0
        es.servers.append(s1)
        f["empty_rss_mb"] = rss_mb(s1.pid)
        # ---- domains, and JOBS daily jobs in each
        for d in es.domains:
            s1.ok("POST", "/domains", json={"path": d}, status=201)
        names = []
        for i, d in enumerate(es.domains):
            names += [(f"j{i:03d}-{j}", d) for j in range(a.ens_jobs)]
        for lo in range(0, len(names), 1000):
            batch(s1, [{"op": "create", "job": {"name": nm, "schedule": DAILY, "command": "true",
                                                 "domain": d}} for nm, d in names[lo:lo + 1000]])
        until(lambda: all(c["jobs"] == a.ens_jobs for c in zk_clusters(s1).values()), 120,
              "every ensemble holding its jobs", 0.1)
        # ---- executors, all at once: exec to every one holding its domain's jobs
        t0 = time.monotonic()
        for i in with_x:
            x = es.executor(i).start()
            es.executors[x.name] = x

        def heads():
            for i in with_x:
                x = es.executors[f"x{i:03d}"]
                if not x.running():
                    raise RuntimeError(f"executor {x.name} exited: {x.log_tail(10)}")
                if held(kz, es.chroots[i], x.name) != a.ens_jobs:
                    return None
            return True
        until(heads, 300, f"{k} executors holding their jobs", 0.1)
        f["executors"] = k
        f["executors_placed_s"] = time.monotonic() - t0
        # ---- the standby: exec to every ensemble connected with its leader known
        s2 = es.server("s2")
        t0 = time.monotonic()
        s2.start(timeout=300)
        until(lambda: all_led(es, s2, "standby"), 300, f"s2 standing by in {n} ensembles", 0.02)
        f["standby_ready_s"] = time.monotonic() - t0
        es.servers.append(s2)
        cl2 = zk_clusters(s2)
        f["standby_jobs_ok"] = int(all(c["jobs"] == a.ens_jobs for c in cl2.values()))
        # ---- idle: a window with nothing changing
        time.sleep(5)
        xp = [x.pid for x in es.executors.values()]
        zp = [zk.pid(i) for i in (1, 2, 3)]

        def cpu():
            # the loop is the main thread; the others are mostly ZooKeeper's client's (two
            # a session), plus the API's, the writer's and libuv's pool
            return {"leader": cpu_s(s1.pid), "leader_loop": cpu_s(s1.pid, s1.pid),
                    "standby": cpu_s(s2.pid), "standby_loop": cpu_s(s2.pid, s2.pid),
                    "executors": sum(cpu_s(q) for q in xp), "zk": sum(cpu_s(q) for q in zp),
                    "machine": machine_cpu_s()}
        c0, t0 = cpu(), time.monotonic()
        time.sleep(a.ens_window)
        c1, dt = cpu(), time.monotonic() - t0
        for key in c0:
            f[f"idle_cpu_pct.{key}"] = 100.0 * (c1[key] - c0[key]) / dt
        for role, s in (("leader", s1), ("standby", s2)):
            f[f"{role}_rss_mb"] = rss_mb(s.pid)
            f[f"{role}_threads"] = proc_threads(s.pid)
            f[f"{role}_fds"] = proc_fds(s.pid)
        xr = [rss_mb(q) for q in xp]
        f["executor_rss_mb_mean"] = sum(xr) / len(xr)
        f["zk_connections"] = sum(int(zk.mntr(i).get("zk_num_alive_connections", 0))
                                  for i in (1, 2, 3))
        f["zk_rss_mb"] = sum(rss_mb(q) for q in zp)
        # ---- the API's answers that go to every ensemble
        lat = []
        for _ in range(5):
            t = time.monotonic()
            zk_clusters(s1)
            lat.append(1000 * (time.monotonic() - t))
        f["api_zk_clusters_ms"] = median(lat)
        lat = []
        for _ in range(3):
            t = time.monotonic()
            got = executors(s1)
            lat.append(1000 * (time.monotonic() - t))
        f["api_executors_ms"] = median(lat)
        f["api_executors_listed"] = len(got)
        # ---- refresh: a job created in the domain of ensemble i, on the leader or on the
        # standby; placed = the executor of i holds it (its head names one more job and its
        # registration has applied it); seen = the other server's view of ensemble i counts
        # it (the doorbell, read back from the store)
        want = {}
        placed = {"leader": [], "standby": []}
        seen = {"leader": [], "standby": []}
        for r in range(a.ens_samples * 2):
            i = with_x[(r // 2 * 7) % len(with_x)]  # the samples walk over the executors
            via, other, side = (s1, s2, "leader") if r % 2 == 0 else (s2, s1, "standby")
            want[i] = want.get(i, a.ens_jobs) + 1
            xname = f"x{i:03d}"
            t0 = time.monotonic()
            via.ok("POST", "/jobs", json={"name": f"r{r:03d}", "schedule": DAILY,
                                          "command": "true", "domain": es.domains[i]},
                   status=201)
            got = {}
            end = t0 + 30
            while len(got) < 2:
                now = time.monotonic()
                if "placed" not in got and held(kz, es.chroots[i], xname) == want[i]:
                    got["placed"] = now - t0
                if "seen" not in got and zk_clusters(other)[es.names[i]]["jobs"] == want[i]:
                    got["seen"] = now - t0
                if now > end:
                    raise PhaseTimeout(f"job r{r:03d} in {es.names[i]}: {sorted(got)} in 30 s")
                time.sleep(0.005)
            placed[side].append(1000 * got["placed"])
            seen[side].append(1000 * got["seen"])
        for side in ("leader", "standby"):
            f[f"refresh.via_{side}.placed_ms_p50"] = median(placed[side])
            f[f"refresh.via_{side}.placed_ms_max"] = max(placed[side])
            f[f"refresh.via_{side}.seen_ms_p50"] = median(seen[side])
            f[f"refresh.via_{side}.seen_ms_max"] = max(seen[side])
        f["refresh_ms_p50"] = median(placed["leader"] + placed["standby"])
        # ---- refresh: a second executor joins ensemble i; online = the leader's view of i
        # counts it, placed = it holds its share (half of i's jobs) under an applied head
        online, share = [], []
        for i in with_x[1::max(1, len(with_x) // 3)][:3] or with_x[:1]:
            cl = zk_clusters(s1)[es.names[i]]
            t0 = time.monotonic()
            y = es.executor(i, f"y{i:03d}").start()
            es.executors[y.name] = y
            got = {}
            while len(got) < 2:
                now = time.monotonic()
                if "online" not in got and \
                        zk_clusters(s1)[es.names[i]]["executors_online"] > cl["executors_online"]:
                    got["online"] = now - t0
                if "placed" not in got and (held(kz, es.chroots[i], y.name) or 0) >= \
                        want.get(i, a.ens_jobs) // 2:
                    got["placed"] = now - t0
                if now > t0 + 30:
                    raise PhaseTimeout(f"executor {y.name} joining: {sorted(got)} in 30 s")
                time.sleep(0.005)
            online.append(1000 * got["online"])
            share.append(1000 * got["placed"])
        f["refresh.join.online_ms_p50"] = median(online)
        f["refresh.join.placed_ms_p50"] = median(share)
        f["refresh.join.placed_ms_max"] = max(share)
        for role, s in (("leader", s1), ("standby", s2)):
            w, e = log_counts(s.log_path)
            f[f"{role}_log_warn"], f[f"{role}_log_error"] = w, e
        # ---- stop: SIGTERM to exit, the standby then the leader (the executors first)
        for x in es.executors.values():
            x.stop(timeout=30)
        for role, s in (("standby", s2), ("leader", s1)):
            t0 = time.monotonic()
            s.stop(timeout=60)
            f[f"{role}_stop_s"] = time.monotonic() - t0
    finally:
        try:
            es.stop()
        finally:
            for key, v in f.items():
                if key != "n":
                    out(f"{p}.{key}", round(v, 3) if isinstance(v, float) else v)
    return f


def ensembles_summary(figs):
    """A table of the figures against N, and what one more ensemble costs (the slope from
    the smallest N to the largest)."""
    cols = ["ready_s", "standby_ready_s", "leader_rss_mb", "standby_rss_mb", "leader_threads",
            "leader_fds", "idle_cpu_pct.leader", "idle_cpu_pct.standby", "executors",
            "refresh.via_leader.placed_ms_p50", "refresh.via_standby.placed_ms_p50",
            "refresh.via_leader.seen_ms_p50", "api_executors_ms", "leader_stop_s"]
    note("n " + " ".join(cols))
    for f in figs:
        note(f"{f['n']} " + " ".join(
            "nan" if not isinstance(f.get(c), (int, float)) else
            f"{f[c]:.3g}" if isinstance(f[c], float) else str(f[c]) for c in cols))
    done = [f for f in figs if "leader_stop_s" in f]
    if len(done) < 2:
        return
    lo, hi = min(done, key=lambda f: f["n"]), max(done, key=lambda f: f["n"])
    dn = hi["n"] - lo["n"]
    if dn <= 0:
        return
    for key, name, scale in (("leader_rss_mb", "leader_rss_kb", 1024),
                             ("standby_rss_mb", "standby_rss_kb", 1024),
                             ("leader_threads", "leader_threads", 1),
                             ("leader_fds", "leader_fds", 1),
                             ("idle_cpu_pct.leader", "leader_idle_cpu_pct", 1),
                             ("idle_cpu_pct.standby", "standby_idle_cpu_pct", 1),
                             ("ready_s", "leader_ready_ms", 1000),
                             ("standby_ready_s", "standby_ready_ms", 1000)):
        out(f"ensembles.per_ensemble.{name}", round((hi[key] - lo[key]) * scale / dn, 3))


def held(kz, chroot, xname):
    """How many jobs the executor's placement head names once its registration has applied
    it; None before (or when either node is missing)."""
    def node(path):
        try:
            return json.loads(kz.get(path)[0])
        except (NoNodeError, ValueError):
            return None
    head = node(f"{chroot}/placements/{xname}")
    reg = node(f"{chroot}/executors/{xname}")
    if head is None or reg is None or reg.get("applied_gen", 0) < head.get("gen", 0):
        return None
    return head.get("jobs", 0)


# ---- main -------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tethys", required=True)
    ap.add_argument("--raw-rate", type=float, required=True)
    ap.add_argument("--jobs", type=int, default=500000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--window", type=int, default=40)
    ap.add_argument("--rebalance-jobs", type=int, default=10000)
    ap.add_argument("--create-budget", type=float, default=None,
                    help="seconds for creating the large phase's jobs (default jobs/300)")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--only", default=None,
                    help="comma-separated phases to run, of: " + ",".join(PHASES))
    ap.add_argument("--ensembles", default="1,10,50,100",
                    help="the ensemble counts of the ensembles phase (each at most 128)")
    ap.add_argument("--ens-executors", type=int, default=ENS_EXECUTORS,
                    help="executors of the ensembles phase, one an ensemble, spread")
    ap.add_argument("--ens-jobs", type=int, default=3, help="daily jobs in each domain")
    ap.add_argument("--ens-window", type=int, default=30, help="idle window, seconds")
    ap.add_argument("--ens-samples", type=int, default=10,
                    help="jobs created through each server for the refresh figures")
    ap.add_argument("--ens-session-timeout", type=int, default=10)
    a = ap.parse_args()
    only = PHASES if a.only is None else [x.strip() for x in a.only.split(",") if x.strip()]
    bad = [x for x in only if x not in PHASES]
    if bad or not only:
        ap.error(f"--only {a.only}: phases are {','.join(PHASES)}")
    if "rebalance" in only and "znodes" not in only:
        ap.error("--only: rebalance needs znodes (it moves the jobs znodes placed)")
    try:
        ens_ns = [int(x) for x in a.ensembles.split(",")]
    except ValueError:
        ens_ns = []
    if not ens_ns or any(not 1 <= x <= 128 for x in ens_ns) or a.ens_executors < 1:
        ap.error(f"--ensembles {a.ensembles}: counts from 1 to 128, and --ens-executors >= 1")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tethys = os.path.abspath(a.tethys)
    top = pathlib.Path(tempfile.mkdtemp(prefix="tethys-bench-cluster-", dir=a.dir))
    top.chmod(0o755)
    t_start = time.monotonic()
    res = {"failover": NAN, "wpf": NAN, "zpj": NAN, "heap": NAN}
    failed = []
    zk = pg = None
    clusters, views = [], []

    def phase(name, fn):
        if name not in only:
            return False
        t = time.monotonic()
        note(f"phase {name}")
        try:
            fn()
            out(f"{name}.phase_s", round(time.monotonic() - t, 1))
            return True
        except (Exception, PhaseTimeout) as e:  # noqa: BLE001  a phase reports, the run goes on
            failed.append(name)
            out(f"{name}.complete", 0)
            print(f"cluster_bench: phase {name} failed after {time.monotonic() - t:.0f} s: "
                  f"{e}", file=sys.stderr, flush=True)
            traceback.print_exc(limit=3)
            return False

    try:
        out("floor.raw_spawn_per_s", a.raw_rate)
        out("zk.xmx", os.environ.get("ZK_HEAP", "160m"))
        if set(only) - {"ensembles"}:
            zk = ZkEnsemble(top / "zk").start()
        pg = Postgres()
        out("setup.s", round(time.monotonic() - t_start, 1))

        # ---- failover at a 10 s session timeout: cluster B, stopped after --------------
        def failover10():
            b = Cluster(top / "b", tethys, pg, zk, session_timeout=10)
            clusters.append(b)
            try:
                lead = add_server(b)
                for n in ("e1", "e2", "e3"):
                    b.add_executor(n)
                b.leader()
                f = failover(b, lead, "10", a.reps, 10)
                out("failover.t10.median_s", round(median(f), 3))
                out("failover.t10.max_s", round(max(f), 3))
            finally:
                b.stop()
        phase("failover.t10", failover10)

        # ---- cluster A: 2 servers, 3 executors, 4 s -------------------------------------
        if set(only) & {"failover.t4", "steady", "znodes", "rebalance", "large"}:
            c = Cluster(top / "a", tethys, pg, zk, session_timeout=4)
            clusters.append(c)
            add_server(c)
            add_server(c)
            for n in ("e1", "e2", "e3"):
                c.add_executor(n)
            leader = c.leader()
            zv = ZkView(c)
            views.append(zv)
            out("cluster_a.leader", leader.name)

        def failover4():
            f = failover(c, leader, "4", a.reps, 4)
            res["failover"] = median(f)
            out("failover.t4.median_s", round(median(f), 3))
            out("failover.t4.max_s", round(max(f), 3))
        phase("failover.t4", failover4)

        def steady_phase():
            n = max(30, int(round(a.raw_rate / 2)))
            res["wpf"], _ = steady(zk, zv, c, leader, n, a.window, a.raw_rate)
        phase("steady", steady_phase)

        base = {}
        rb = a.rebalance_jobs

        def znodes():
            c.executors["e3"].stop(timeout=30)
            del c.executors["e3"]
            until(lambda: executors(leader).get("e3", {}).get("state") != "online", 30,
                  "e3 gone")
            until(lambda: settled(leader, ["e1", "e2"], 0, zv, 0), 60, "two executors settled")
            time.sleep(2)
            base.update(zk_figures(zk))
            out("znodes.at_0.znodes", base["znodes"])
            out("znodes.at_0.watches", base["watches"])
            out("znodes.at_0.data_bytes", base["data_bytes"])
            t = time.monotonic()
            create_jobs(leader, [f"job-{i:07d}" for i in range(rb)], DAILY)
            out(f"znodes.create_{rb}.per_s", round(rb / (time.monotonic() - t)))
            until(lambda: settled(leader, ["e1", "e2"], rb, zv, rb), 300, f"{rb} jobs placed", 0.2)
            out(f"znodes.placed_{rb}_s", round(time.monotonic() - t, 2))
            time.sleep(2)
            f = zk_figures(zk)
            out(f"znodes.at_{rb}.znodes", f["znodes"])
            out(f"znodes.at_{rb}.watches", f["watches"])
            out(f"znodes.at_{rb}.data_bytes", f["data_bytes"])
            res["zpj"] = (f["znodes"] - base["znodes"]) / rb
            out("znodes_per_job", f"{res['zpj']:.6f}")
            out("watches_per_job", f"{(f['watches'] - base['watches']) / rb:.6f}")
            out("zk_bytes_per_job", round((f["data_bytes"] - base["data_bytes"]) / rb, 1))
        ok = phase("znodes", znodes)

        def rebalance():
            before = executors(leader)
            s, e = join_time(zv, c, leader, "e4", rb // 3, 300)
            after = executors(leader)
            moved = sum(max(0, before[n]["shards"] - after[n]["shards"]) for n in ("e1", "e2"))
            out("rebalance.jobs", rb)
            out("rebalance.s", round(s, 2))
            out("rebalance.e4_shards", e["shards"])
            out("rebalance.moved_shards", moved)
        if ok:
            phase("rebalance", rebalance)

        def large():
            xs = sorted(c.executors)
            have = sum(e["shards"] for n, e in executors(leader).items() if n in xs)
            budget = a.create_budget if a.create_budget else max(300.0, a.jobs / 300)
            t = time.monotonic()
            n = grow(zk, c, leader, "job-", have, a.jobs, budget, max(1000, a.jobs // 10 // 1000 * 1000))
            took = time.monotonic() - t
            out("large.jobs", n)
            out("large.complete", int(n >= a.jobs))
            out("large.create_s", round(took, 1))
            out("large.create_per_s", round((n - have) / took) if took > 0 else NAN)
            until(lambda: check_zk(zk) or settled(leader, xs, n, zv, n), 900, f"{n} jobs placed",
                  1.0)
            out("large.placed_s", round(time.monotonic() - t, 1))
            time.sleep(3)
            lead = zk_leader(zk)
            heaps = {i: jvm_heap_used_mb(zk.pid(i)) for i in (1, 2, 3)}
            for i in (1, 2, 3):
                role = "leader" if i == lead else "follower"
                out(f"large.zk{i}.{role}.heap_used_mb", round(heaps[i], 1))
                out(f"large.zk{i}.{role}.rss_mb", round(rss_mb(zk.pid(i)), 1))
            res["heap"] = heaps[lead]
            f = zk_figures(zk)
            out("large.zk.znodes", f["znodes"])
            out("large.zk.watches", f["watches"])
            out("large.zk.data_mb", round(f["data_bytes"] / 1048576, 1))
            out("large.zk.disk_mb", round(zk_disk_mb(zk)))
            zpj = (f["znodes"] - base["znodes"]) / n if base else NAN
            out("large.znodes_per_job", f"{zpj:.6f}")
            res["zpj_large"] = zpj
            for s in c.servers:
                out(f"large.server_{s.name}.{s.role()}.rss_mb", round(rss_mb(s.pid), 1))
            for name, x in sorted(c.executors.items()):
                out(f"large.executor_{name}.rss_mb", round(rss_mb(x.pid), 1))
            share = n // (len(xs) + 1)
            s, e = join_time(zv, c, leader, "e5", share, 900)
            out("large.executor_start_s", round(s, 2))
            out("large.executor_start_shards", e["shards"])
            out("large.executor_start_rss_mb", round(rss_mb(c.executors["e5"].pid), 1))
        phase("large", large)

        # ---- N simulated ensembles: alone on the machine, on a ZooKeeper of their own ------
        if "ensembles" in only:
            for v in views:  # the phases before are done: their load would count here
                v.close()
            views.clear()
            for cl in clusters:
                cl.stop()
            if zk is not None:
                zk.stop()
                zk = None
            zk = ZkEnsemble(top / "zk-ens").start()
            figs = []

            def ensembles():
                note("each ensemble is a chroot of one three-node ZooKeeper ensemble: the "
                     "servers' cost per ensemble (sessions, threads, watches, elections, "
                     "placements) is real; ZooKeeper's load is shared, not multiplied")
                kz = KazooClient(hosts=zk.hosts, timeout=10.0)
                logging.getLogger("kazoo").setLevel(logging.CRITICAL)
                kz.start(timeout=30)
                try:
                    for n in ens_ns:
                        try:
                            figs.append(ensembles_run(top, tethys, pg, zk, n, a, kz))
                        except (Exception, PhaseTimeout) as e:  # noqa: BLE001  the next N
                            out(f"ensembles.n{n}.complete", 0)
                            print(f"cluster_bench: ensembles n={n}: {e}", file=sys.stderr,
                                  flush=True)
                            failed.append(f"ensembles.n{n}")
                finally:
                    kz.stop()
                    kz.close()
                ensembles_summary(figs)
            phase("ensembles", ensembles)
    finally:
        t = time.monotonic()
        for v in views:
            v.close()
        for cl in clusters:
            try:
                cl.stop()
            except Exception as e:  # noqa: BLE001  stop the rest whatever happens
                print(f"cluster_bench: stopping a cluster: {e}", file=sys.stderr)
        if zk is not None:
            zk.stop()
        if pg is not None:
            pg.stop()
        if os.environ.get("BENCH_KEEP") == "1":
            note(f"kept {top}")
        else:
            shutil.rmtree(top, ignore_errors=True)
        out("teardown_s", round(time.monotonic() - t, 1))
        out("total_s", round(time.monotonic() - t_start, 1))
        if failed:
            note("phases that failed or ran out of time: " + " ".join(failed))

        def num(v, fmt):
            return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt % v
        print(f"RESULT cluster failover_s={num(res['failover'], '%.3f')} "
              f"zk_writes_per_fire={num(res['wpf'], '%.6f')} "
              f"znodes_per_job={num(res.get('zpj_large', res['zpj']), '%.6f')} "
              f"jobs_500k_zk_heap_mb={num(res['heap'], '%.1f')}", flush=True)


if __name__ == "__main__":
    main()
