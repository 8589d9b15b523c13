"""A whole Tethys cluster on 127.0.0.1 for tests and `make cluster`: a ZooKeeper ensemble
(zkens.py), PostgreSQL (conftest's Postgres), servers and executors as separate processes.

Every cluster gets its own ZooKeeper chroot and its own database, so tests can share one
ensemble and one PostgreSQL.  Nothing here sleeps and hopes: every wait is for a condition
with a deadline.
"""
import json
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import time

import requests

from conftest import Server, wait_for


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
        self.cluster = cluster

    def start(self, timeout=30.0):
        self.log_file = open(self.log_path, "ab")
        argv = [self.binary, "server", "--data", str(self.data), "--listen",
                f"127.0.0.1:{self.port}", *self.args]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=self.log_file, env=self.pg.env())
        info_path = self.data / "server.json"

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"server {self.name} exited with status "
                                     f"{self.proc.returncode} at start:\n{self.log_tail()}")
            try:
                info = json.loads(info_path.read_text())
            except (OSError, ValueError):
                return None
            return info if info.get("pid") == self.proc.pid else None

        info = wait_for(ready, timeout, 0.05, f"server.json of server {self.name}")
        self.url = info["url"]
        self.token = (self.data / "token").read_text().strip()
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {self.token}"
        self.session.trust_env = False
        return self

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

    def logs(self):
        parts = []
        for s in self.servers:
            parts.append(f"--- server {s.name}\n{s.log_tail(40)}")
        for x in self.executors.values():
            parts.append(f"--- executor {x.name}\n{x.log_tail(40)}")
        return "\n".join(parts)
