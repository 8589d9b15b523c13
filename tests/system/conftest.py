"""Shared fixtures for the system tests: they drive the real `tethys` binary.

`tethys` and `run` run the CLI alone (no server).  `server` starts real servers:

    def test_x(server):
        srv = server()                       # tethys server --data <tmp> --listen 127.0.0.1:0
        srv = server("--max-runs", "1")      # extra server flags
        srv = server(test_hooks=True)        # the -DTETHYS_TEST_HOOKS build (test clock)
        srv = server("--tls-cert", c, "--tls-key", k, cacert=ca)  # HTTPS, trusting ca
        srv.api("POST", "/jobs", json={...})  # -> requests.Response (bearer token sent)
        srv.cli("job", "list", "--json")      # -> CompletedProcess, with --data DIR

Every server is stopped with SIGTERM when the test ends and must exit 0 within its
deadline (else it is killed and the test fails).  Its log is printed when a test fails.
`server.restart(old)` starts a new server on a stopped (or killed) one's data directory;
`shared_server` is one server for a whole module.  Helpers: wait_for (poll with a
deadline), once_at (a cron expression for one instant), group_members and
processes_with_env (/proc), config_snapshot (to prove a refusal changed nothing), error_of
(an API error answer, checked).
"""
import datetime
import errno
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]

# The store every server of the run uses: "sqlite" (the data directory's, the default) or
# "postgresql" (one private PostgreSQL 15 for the run, a database of its own per data
# directory; `make system-pg`).  Tests marked sqlite_only are about SQLite's file itself
# (backup, restore, migration, its disk filling up) and are skipped under PostgreSQL.
STORE = os.environ.get("TETHYS_TEST_STORE", "sqlite")
if STORE not in ("sqlite", "postgresql"):
    raise RuntimeError(f"TETHYS_TEST_STORE={STORE}: expected sqlite or postgresql")


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: about the SQLite store's file; skipped "
                            "when the run's store is PostgreSQL")
    config.addinivalue_line("markers", "cluster: a cluster (always on PostgreSQL); run once, "
                            "with the SQLite pass, not again in the PostgreSQL pass")


def pytest_collection_modifyitems(config, items):
    if STORE != "postgresql":
        return
    skip = pytest.mark.skip(reason="about the SQLite store's file (TETHYS_TEST_STORE=postgresql)")
    again = pytest.mark.skip(reason="a cluster test runs on PostgreSQL already, in the first pass")
    for item in items:
        if item.get_closest_marker("sqlite_only"):
            item.add_marker(skip)
        elif item.get_closest_marker("cluster"):
            item.add_marker(again)


class Postgres:
    """A private PostgreSQL 15 on 127.0.0.1 (tests/pg/pg.sh), and databases in it."""

    def __init__(self):
        # PostgreSQL runs as its own user (it refuses root): its directory must not lie
        # under pytest's private temporary directories
        self.top = pathlib.Path(tempfile.mkdtemp(prefix="tethys-pg-"))
        self.top.chmod(0o755)
        self.dir = self.top / "cluster"
        self.script = str(ROOT / "tests/pg/pg.sh")
        out = subprocess.run([self.script, "start", str(self.dir)], capture_output=True,
                             text=True, timeout=120)
        if out.returncode != 0:
            raise AssertionError(f"PostgreSQL did not start: {out.stderr}")
        self.url = out.stdout.strip().splitlines()[-1]
        self.password = (self.dir / "password").read_text().strip()
        self.count = 0

    def env(self, base=None):
        e = dict(base if base is not None else os.environ)
        e["PGPASSWORD"] = self.password
        return e

    def psql(self, sql, db="tethys"):
        url = self.url.rsplit("/", 1)[0] + "/" + db
        out = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", url,
                              "-c", sql], capture_output=True, text=True, env=self.env(),
                             timeout=60)
        if out.returncode != 0:
            raise AssertionError(f"psql {sql!r}: {out.stderr}")
        return out.stdout

    def new_db(self):
        """The URL of a new, empty database."""
        self.count += 1
        name = f"t{os.getpid()}_{self.count}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + "/" + name

    def down(self):
        subprocess.run([self.script, "down", str(self.dir)], check=True, timeout=120)

    def up(self):
        subprocess.run([self.script, "up", str(self.dir)], check=True, timeout=120)

    def stop(self):
        subprocess.run([self.script, "stop", str(self.dir)], check=False, timeout=120)
        shutil.rmtree(self.top, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    """One private PostgreSQL for the whole run (started at first use)."""
    pg = Postgres()
    yield pg
    pg.stop()


def _binary(var, default):
    path = pathlib.Path(os.environ.get(var, ROOT / default))
    if not path.is_absolute():
        path = ROOT / path
    return path


@pytest.fixture(scope="session")
def tethys():
    """Path of the binary under test (TETHYS_BIN, default build/tethys)."""
    path = _binary("TETHYS_BIN", "build/tethys")
    if not path.exists():
        pytest.fail(f"{path} does not exist: run `make build` first")
    return str(path)


@pytest.fixture(scope="session")
def tethys_test_bin():
    """The test-hooks build (TETHYS_TEST_BIN, default build-test/tethys)."""
    path = _binary("TETHYS_TEST_BIN", "build-test/tethys")
    if not path.exists():
        pytest.fail(f"{path} does not exist: run `make build-test` first")
    return str(path)


@pytest.fixture
def run(tethys):
    """run(*args, stdin=None) -> CompletedProcess of `tethys args...` (text, captured)."""
    def _run(*args, stdin=None, timeout=30, env=None, cwd=None):
        return subprocess.run([tethys, *args], input=stdin, capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=cwd)
    return _run


# ---- helpers usable from any test ----------------------------------------------------------


def tmpfs(where, size):
    """Mount a tmpfs of `size` ("2m") at a new directory `where` (the tests run as root; a
    test skips when it cannot) and yield it; unmounted afterwards.  Use with `yield from`
    in a fixture."""
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs of the test's own, unmounted after it."""
    yield from tmpfs(tmp_path / "mnt", "2m")


def fill(path):
    """Write zeros into path until the file system is full."""
    with open(path, "wb", buffering=0) as f:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e


def wait_for(predicate, timeout=10.0, interval=0.1, what="condition"):
    """Poll predicate() until it returns something truthy (returned); fail after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def once_at(epoch):
    """A Quartz expression (UTC) that fires exactly once, at the whole second `epoch`."""
    t = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return f"{t.second} {t.minute} {t.hour} {t.day} {t.month} ? {t.year}"


def group_members(pgid):
    """Pids of live (not zombie) processes whose process group is pgid, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            found.append(int(entry))
    return found


def processes_with_env(name, value):
    """Pids of live processes whose environment holds name=value (jobs carry TETHYS_*)."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if needle in env and stat[stat.rfind(")") + 2] not in "ZX":
            found.append(int(entry))
    return found


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


# ---- the server ------------------------------------------------------------------------------


class Server:
    """One `tethys server` process on 127.0.0.1 and the ways to talk to it."""

    def __init__(self, binary, cli_binary, data, log_path, args=(), env=None, cacert=None,
                 pg=None, db=None):
        self.binary = binary
        self.pg = pg  # the Postgres of the run when its store is PostgreSQL
        self.db = db  # then this server's database URL
        self.cacert = cacert  # CA file the API session trusts (a server with --tls-cert)
        self.cli_binary = cli_binary
        self.data = pathlib.Path(data)
        self.log_path = pathlib.Path(log_path)
        self.args = list(args)
        self.env = env
        self.proc = None
        self.url = None
        self.token = None
        self.session = None
        self.listen = "127.0.0.1:0"  # a cluster's servers need a fixed port

    # -- lifecycle --

    def start(self, timeout=10.0):
        self.log_file = open(self.log_path, "ab")
        argv = [self.binary, "server", "--data", str(self.data), "--listen", self.listen]
        env = self.env
        if self.db is not None and "--db" not in self.args:
            argv += ["--db", self.db]
        if self.pg is not None:
            env = self.pg.env(env)
        self.proc = subprocess.Popen([*argv, *self.args], stdin=subprocess.DEVNULL,
                                     stdout=self.log_file, stderr=self.log_file, env=env)
        info_path = self.data / "server.json"

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited with status {self.proc.returncode} "
                                     f"at start:\n{self.log_tail()}")
            try:
                info = json.loads(info_path.read_text())
            except (OSError, ValueError):
                return None
            return info if info.get("pid") == self.proc.pid else None

        info = wait_for(ready, timeout, 0.02, "server.json of the new server")
        self.url = info["url"]
        assert self.url.startswith(("http://127.0.0.1:", "https://127.0.0.1:")), self.url
        self.token = (self.data / "token").read_text().strip()
        self.session = requests.Session()
        self.session.verify = self.cacert or True
        self.session.headers["Authorization"] = f"Bearer {self.token}"
        self.session.trust_env = False  # never a proxy for 127.0.0.1
        return self

    @property
    def pid(self):
        return self.proc.pid

    def executor_id(self):
        """The embedded executor's id: made once per data directory, kept in executor-id."""
        return (self.data / "executor-id").read_text().strip()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Send sig and wait for the exit; returns the exit status (kill -9 after timeout:
        AssertionError)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"the server did not exit within {timeout} s of signal {sig}; "
                                 f"killed:\n{self.log_tail()}")
        finally:
            self._close()
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait(5)
        self._close()

    def _close(self):
        if self.session is not None:
            self.session.close()
            self.session = None
        if not self.log_file.closed:
            self.log_file.close()

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=60):
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- the API --

    def api(self, method, path, json=None, headers=None, data=None, token=True, timeout=15,
            params=None):
        """One request; path is under /api/v1 unless it starts with /api/."""
        if not path.startswith("/api/"):
            path = "/api/v1" + path
        if token and self.session is not None:
            sess = self.session
        else:
            sess = requests.Session()  # no token
            sess.trust_env = False
            sess.verify = self.cacert or True
        return sess.request(method, self.url + path, json=json, data=data, headers=headers,
                            timeout=timeout, params=params)

    def ok(self, method, path, json=None, status=None, **kw):
        """api() that must succeed (2xx, or exactly `status`); returns the JSON (or None)."""
        r = self.api(method, path, json=json, **kw)
        good = r.status_code == status if status else 200 <= r.status_code < 300
        assert good, f"{method} {path} -> {r.status_code} {r.text}"
        return r.json() if r.content else None

    def add_job(self, **fields):
        fields.setdefault("command", "true")
        return self.ok("POST", "/jobs", json=fields, status=201)

    def job(self, name):
        return self.ok("GET", f"/jobs/{name}")

    def jobs(self):
        return self.ok("GET", "/jobs")["items"]

    def patch(self, name, **fields):
        return self.ok("PATCH", f"/jobs/{name}", json=fields)

    def run_now(self, name, shards=None):
        body = {"shards": shards} if shards is not None else None
        return self.ok("POST", f"/jobs/{name}/run", json=body, status=202)

    def get_run(self, run_id):
        return self.ok("GET", f"/runs/{run_id}")

    def history(self, **query):
        """Every history item matching the filters, newest scheduled first (all pages)."""
        items, cursor = [], None
        query.setdefault("limit", 1000)
        while True:
            q = dict(query)
            if cursor:
                q["cursor"] = cursor
            page = self.ok("GET", "/history", params=q)
            items += page["items"]
            cursor = page["next"]
            if not cursor:
                return items

    def runs(self, job, **query):
        return [i for i in self.history(job=job, **query) if i["kind"] == "run"]

    def skips(self, job, **query):
        return [i for i in self.history(job=job, **query) if i["kind"] == "skip"]

    def alerts(self):
        return self.ok("GET", "/alerts")

    def wait_for(self, predicate, timeout=10.0, interval=0.1, what="condition"):
        def checked():
            if not self.running():
                raise AssertionError(f"the server exited ({self.proc.returncode}) while waiting "
                                     f"for {what}:\n{self.log_tail()}")
            return predicate()
        return wait_for(checked, timeout, interval, what)

    def wait_run(self, run_id, timeout=15.0):
        """Wait for a run to end; returns it."""
        return self.wait_for(
            lambda: (lambda r: r if r["status"] not in ("queued", "running") else None)(
                self.get_run(run_id)),
            timeout, 0.1, f"run {run_id} to end")

    def clock(self, offset_s):
        """Shift the server's wall clock (test-hooks build only)."""
        return self.ok("POST", "/test/clock", json={"offset_s": offset_s})

    # -- the CLI --

    def cli(self, *args, env=None, stdin=None, timeout=30, data=True, cwd=None):
        argv = [self.cli_binary, *args]
        if data:
            argv += ["--data", str(self.data)]
        e = dict(os.environ) if env is None else env
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout,
                              env=e, cwd=cwd)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def server(request, tmp_path, tethys, tethys_test_bin):
    """server(*flags, test_hooks=False, env=None, data=None, cacert=None) -> a started Server."""
    started = []

    def start(*flags, test_hooks=False, env=None, data=None, cacert=None):
        n = len(started)
        pg = db = None
        if STORE == "postgresql":
            pg = request.getfixturevalue("postgres")
            db = _db_of(data) or pg.new_db()
        srv = Server(tethys_test_bin if test_hooks else tethys, tethys,
                     data or tmp_path / f"data{n}", tmp_path / f"server{n}.log", flags, env,
                     cacert, pg, db)
        started.append(srv)
        return srv.start()

    start.restart = lambda old, *flags, **kw: _restart(old, started, flags, kw)
    yield start

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    problems = []
    for srv in started:
        if srv.running():
            try:
                rc = srv.stop(timeout=20)
                if rc != 0:
                    problems.append(f"server {srv.data} exited with status {rc} on SIGTERM")
            except AssertionError as e:
                problems.append(str(e))
        if failed or problems:
            print(f"---- log of the server on {srv.data} ----\n{srv.log_tail(120)}")
    if problems and not failed:
        pytest.fail("; ".join(problems))


def _db_of(data):
    """The database a data directory already belongs to (DATA/store.url), or None."""
    try:
        return (pathlib.Path(data) / "store.url").read_text().strip() if data else None
    except FileNotFoundError:
        return None


def _restart(old, started, flags, kw):
    """A new server on the same data directory (the old one must have stopped)."""
    assert not old.running()
    srv = Server(old.binary, old.cli_binary, old.data,
                 old.log_path.with_name(old.log_path.stem + f"-r{len(started)}.log"),
                 flags or old.args, kw.get("env", old.env), kw.get("cacert", old.cacert),
                 old.pg, old.db)
    started.append(srv)
    return srv.start(kw.get("timeout", 10.0))


@pytest.fixture(scope="module")
def shared_server(request, tmp_path_factory, tethys):
    """One server for a whole module (tests use their own job names)."""
    d = tmp_path_factory.mktemp("shared")
    pg = request.getfixturevalue("postgres") if STORE == "postgresql" else None
    srv = Server(tethys, tethys, d / "data", d / "server.log", pg=pg,
                 db=pg.new_db() if pg else None).start()
    yield srv
    if srv.running():
        rc = srv.stop()
        assert rc == 0, f"the shared server exited with status {rc}:\n{srv.log_tail()}"


def config_snapshot(srv):
    """Every job's stored definition and version (the live state left out), by name."""
    return {j["name"]: {k: v for k, v in j.items() if k != "state"} for j in srv.jobs()}


def error_of(r, status, code=None, field=None):
    """The error object of an answer that must have this status (and code, field)."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    assert r.headers["Content-Type"].startswith("application/json")
    err = r.json()["error"]
    assert set(err) == {"code", "message", "field"}, err
    if code is not None:
        assert err["code"] == code, err
    if field is not None:
        assert err["field"] == field, err
    return err


# ---- a private CA, made with openssl (TLS tests) ----------------------------------------------


def _openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """ca.pem (the test's CA), srv.pem/srv.key (for 127.0.0.1 and localhost, signed by it),
    other.key (a key that belongs to nothing)."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.pem", "-days", "2", "-subj", "/CN=Tethys test CA", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
             "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    _openssl("genrsa", "-out", "other.key", "2048", cwd=d)
    for key in ("srv.key", "other.key", "ca.key"):
        os.chmod(d / key, 0o600)
    return {k: str(d / f) for k, f in [("ca", "ca.pem"), ("cert", "srv.pem"),
                                        ("key", "srv.key"), ("other_key", "other.key"),
                                        ("dir", ".")]}
