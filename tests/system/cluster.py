"""A whole Tethys cluster on 127.0.0.1 for tests and `make cluster`: a ZooKeeper ensemble
(zkens.py), PostgreSQL (conftest's Postgres), servers and executors as separate processes.

Every cluster gets its own ZooKeeper chroot and its own database, so tests can share one
ensemble and one PostgreSQL.  Nothing here sleeps and hopes: every wait is for a condition
with a deadline.

The cluster tests (test_cluster*.py) share from here their fixtures (`zk`: an ensemble per
module; `cluster`: a Cluster per test, its logs printed when the test fails) and the
counting every one of them does: every_second (a job definition), records and
check_every_fire (each (shard, scheduled second) has exactly one record),
runs_per_attempt (no fire attempt run twice) and no_double_start_alert.
"""
import collections
import json
import os
import pathlib
import re
import secrets
import signal
import socket
import subprocess
import time

import pytest
import requests

from conftest import Server, processes_with_env, wait_for
from zkens import ZkEnsemble

SESSION_S = 4  # a short session timeout keeps failover tests quick


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ClusterServer(Server):
    """A `tethys server --zk ...`: listens on a fixed port (the election carries it)."""

    def __init__(self, cluster, name):
        self.port = free_port()
        self.name = name
        data = cluster.dir / name
        super().__init__(cluster.tethys, cluster.tethys, data, cluster.dir / f"{name}.log",
                         args=["--zk", cluster.hosts, "--zk-auth", str(cluster.auth),
                               "--zk-session-timeout", str(cluster.session_timeout),
                               "--db", cluster.db, "--shutdown-grace", "2"],
                         pg=cluster.pg)
        self.listen = f"127.0.0.1:{self.port}"  # the election carries this server's URL
        self.cluster = cluster

    def start(self, timeout=30.0):
        return super().start(timeout)

    def role(self):
        try:
            r = self.api("GET", "/health", token=False, timeout=3)
            return r.json().get("role") if r.status_code == 200 else None
        except requests.RequestException:
            return None


class Executor:
    """A `tethys executor` process."""

    def __init__(self, cluster, name, labels=None, capacity=None, domains=None, extra=()):
        self.cluster = cluster
        self.name = name
        self.data = cluster.dir / f"x-{name}"
        self.log_path = cluster.dir / f"x-{name}.log"
        self.args = ["--zk", cluster.hosts, "--zk-auth", str(cluster.auth), "--data",
                     str(self.data), "--name", name, "--zk-session-timeout",
                     str(cluster.session_timeout), "--shutdown-grace", "2", *extra]
        if labels:
            self.args += ["--labels", labels]
        if capacity:
            self.args += ["--capacity", str(capacity)]
        if domains:
            self.args += ["--domains", domains]
        self.proc = None

    def start(self):
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.cluster.tethys, "executor", *self.args],
                                     stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=self.log_file)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        self.proc.kill()
        self.proc.wait(5)
        self.log_file.close()

    def stop(self, timeout=30.0):
        if not self.running():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log_file.close()

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=60):
        return "\n".join(self.log_text().splitlines()[-lines:])


class Cluster:
    """Servers and executors of one cluster, on a shared ensemble and PostgreSQL."""

    def __init__(self, base, tethys, pg, zk, session_timeout=4):
        self.dir = pathlib.Path(base)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tethys = str(tethys)
        self.pg = pg
        self.zk = zk
        self.session_timeout = session_timeout
        self.db = pg.new_db()
        self.hosts = f"{zk.hosts}/t{secrets.token_hex(4)}"
        self.auth = self.dir / "zk-auth"
        self.auth.write_text(f"tethys:{secrets.token_hex(16)}\n")
        self.auth.chmod(0o600)
        self.servers = []
        self.executors = {}
        # jobs that set env=cluster.job_env() carry it: their processes outlive a killed
        # executor (each run is its own process group), and stop() finds them by it
        self.tag = secrets.token_hex(8)

    def job_env(self):
        return {"CLUSTER_TEST_TAG": self.tag}

    def leftovers(self):
        """Pids of live processes of this cluster's jobs (those with env=job_env())."""
        return processes_with_env("CLUSTER_TEST_TAG", self.tag)

    def add_server(self):
        s = ClusterServer(self, f"s{len(self.servers) + 1}").start()
        self.servers.append(s)
        return s

    def add_executor(self, name, wait=True, **kw):
        x = Executor(self, name, **kw).start()
        self.executors[name] = x
        if wait:
            self.wait_executor(name, "online")
        return x

    def any_server(self):
        for s in self.servers:
            if s.running():
                return s
        raise AssertionError("no server of the cluster is running")

    def leader(self, timeout=30.0):
        def find():
            for s in self.servers:
                if s.running() and s.role() == "leader":
                    return s
            return None
        return wait_for(find, timeout, 0.1, "a leader among the servers")

    def executors_state(self):
        items = self.any_server().ok("GET", "/executors")["items"]
        return {e["id"]: e for e in items}

    def wait_executor(self, name, state, timeout=30.0):
        def check():
            e = self.executors_state().get(name)
            return e if e is not None and e.get("state") == state else None
        return wait_for(check, timeout, 0.2, f"executor {name} {state}")

    def wait_placed(self, job, shards, executors=None, timeout=30.0):
        """Wait until every shard of job runs somewhere (history shows a run of each shard
        scheduled after this call), optionally only on the given executors."""
        since = int(time.time())

        def check():
            runs = [r for r in self.any_server().runs(job, since=since)]
            got = {r["shard"] for r in runs
                   if executors is None or r.get("executor") in executors}
            return runs if got >= set(range(shards)) else None
        return wait_for(check, timeout, 0.3, f"every shard of {job} running")

    def stop(self):
        for x in self.executors.values():
            if x.running():
                try:
                    x.stop(timeout=15)
                except subprocess.TimeoutExpired:
                    x.proc.kill()
                    x.proc.wait(5)
        for s in self.servers:
            if s.running():
                try:
                    s.stop(timeout=15)
                except AssertionError:
                    pass
        for pid in self.leftovers():  # runs a killed executor left behind
            try:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass

    def logs(self):
        parts = []
        for s in self.servers:
            parts.append(f"--- server {s.name}\n{s.log_tail(40)}")
        for x in self.executors.values():
            parts.append(f"--- executor {x.name}\n{x.log_tail(40)}")
        return "\n".join(parts)


# ---- fixtures and counting, for the cluster tests -------------------------------------------


@pytest.fixture(scope="module")
def zk(tmp_path_factory):
    ens = ZkEnsemble(tmp_path_factory.mktemp("zk"))
    ens.start()
    yield ens
    ens.stop()


@pytest.fixture
def cluster(tmp_path, tethys, postgres, zk, request):
    c = Cluster(tmp_path / "cluster", tethys, postgres, zk, session_timeout=SESSION_S)
    yield c
    c.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(c.logs())


def every_second(name, shards=1, **fields):
    job = {"name": name, "schedule": "* * * * * ?", "command": "echo $TETHYS_SHARD",
           "shards": shards, "misfire_threshold": 30}
    job.update(fields)
    return job


def records(server, job, since, until, items=None, every=1):
    """{(shard, second): [records]} for the job's scheduled fires in [since, until) (from
    items, the job's history, when the caller has read it already).  A misfire skip may
    stand for a range of fires ("N fire(s) up to ..."): it is filed under each of them,
    `every` seconds apart (the job's period)."""
    by = collections.defaultdict(list)
    if items is None:
        items = server.history(job=job, since=since, until=until)
    for item in items:
        if item.get("trigger") not in (None, "schedule", "misfire"):
            continue
        if item["kind"] == "run" and item["attempt"] != 1:
            continue
        n = 1
        if item["kind"] == "skip":
            m = re.search(r"(\d+) fire\(s\) up to", item.get("detail") or "")
            n = int(m.group(1)) if m else 1
        for k in range(n):
            by[(item.get("shard", -1), item["scheduled_at"] + k * every)].append(item)
    return by


def check_every_fire(server, job, shards, since, until, items=None, every=1):
    """Each (shard, second) in [since, until) has exactly one record (of the seconds that
    are a multiple of `every`: 5 for a job every 5 s); returns them."""
    by = records(server, job, since, until, items, every)
    missing, doubled = [], []
    for sec in range(since, until):
        if sec % every:
            continue
        for sh in range(shards):
            got = by.get((sh, sec), []) + by.get((-1, sec), [])
            if not got:
                missing.append((sh, sec))
            elif len(got) > 1:
                doubled.append((sh, sec, [(g["kind"], g.get("executor"), g.get("run_id"))
                                          for g in got]))
    # what the other shards of a second without a record have, to tell why
    beside = {(sh, sec): sorted((o, g["kind"], g.get("status") or g.get("reason"),
                                 g.get("executor"))
                                for o in range(shards) if o != sh
                                for g in by.get((o, sec), []))
              for sh, sec in missing[:5]}
    assert not missing, (f"{job}: fires without a record: {missing[:20]} ({len(missing)} in "
                         f"all); the other shards of those seconds: {beside}")
    assert not doubled, f"{job}: fires recorded twice: {doubled[:5]}"
    return by


def runs_per_attempt(items):
    """{(fire id, attempt): [runs]} of history items; fails when one attempt has two runs
    (two starts of one fire attempt, whatever the store's guard said)."""
    by = collections.defaultdict(list)
    for item in items:
        if item["kind"] == "run":
            by[(item["fire_id"], item["attempt"])].append(item)
    twice = {k: [(r["run_id"], r.get("executor"), r["status"]) for r in v]
             for k, v in by.items() if len(v) > 1}
    assert not twice, f"fire attempts run twice: {dict(list(twice.items())[:5])}"
    return by


def no_double_start_alert(server):
    rows = server.alerts()
    text = str(rows)
    assert "started twice" not in text, text
