"""A private three-node ZooKeeper ensemble on 127.0.0.1 for the system tests (tests/zk/zk.sh).

    from zkens import ZkEnsemble

    ens = ZkEnsemble()              # nothing runs yet
    ens.start()                     # three nodes, each serving; ens.hosts is the connect string
    ens.stop_node(1); ens.start_node(1)   # SIGTERM, keeping its data; start waits until it serves
    ens.kill_node(2)                # SIGKILL
    ens.pause_node(3); ens.resume_node(3)  # SIGSTOP / SIGCONT: a hung server
    ens.mntr(1)                     # {"zk_znode_count": "12", ...}: the `mntr` four-letter word
    ens.stats()                     # znode_count, watch_count, ... of the first node that answers
    ens.stop()                      # every node stopped, the directory removed

Or as a context manager (`with ZkEnsemble() as ens:`), which always stops it.  A pytest
fixture should do the same in a finalizer, so that no java process outlives the run:

    @pytest.fixture(scope="module")
    def zk():
        ens = ZkEnsemble().start()
        yield ens
        ens.stop()

Nodes are numbered 1 to 3, like zk.sh's.  Every call has a deadline: a node that does not
serve (or stop) in time raises ZkError with the end of its log.  ZooKeeper never skips a
test: an ensemble that does not start is a failure.
"""
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
ZK_SH = ROOT / "tests/zk/zk.sh"

# zk.sh's own deadlines are 90 s to serve and 20 s (then SIGKILL, 20 s more) to stop
START_TIMEOUT = 150
STOP_TIMEOUT = 90


class ZkError(AssertionError):
    """The ensemble did not do what it was asked, in time."""


class ZkEnsemble:
    def __init__(self, base=None):
        # a directory of its own, not under pytest's tmp_path: it must outlive fixtures
        # that are torn down before the ensemble is stopped
        self.top = pathlib.Path(base) if base else pathlib.Path(tempfile.mkdtemp(prefix="tethys-zk-"))
        self.dir = self.top / "zk"
        self.hosts = None
        self._made_top = base is None

    # ---- the whole ensemble ----------------------------------------------------------

    def start(self):
        """Start every node that is not running and wait until all three serve.  Returns
        self; self.hosts is "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"."""
        out = self._run("start", timeout=START_TIMEOUT)
        self.hosts = out.strip().splitlines()[-1]
        return self

    def stop(self):
        """Stop every node and remove the directory (also after a failed start)."""
        try:
            self._run("stop", timeout=STOP_TIMEOUT, check=False)
        finally:
            if self._made_top:
                shutil.rmtree(self.top, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def hosts_with(self, chroot):
        """The connect string with a chroot ("/tethys")."""
        return self.hosts + chroot

    # ---- one node --------------------------------------------------------------------

    def stop_node(self, i):
        """SIGTERM node i and wait until it is gone (SIGKILL after 20 s); data kept."""
        self._run("stop-node", str(i), timeout=STOP_TIMEOUT)

    def start_node(self, i):
        """Start node i again (same ports, same data) and wait until it serves: that needs
        a quorum, so with two nodes down use start(), which starts them together."""
        self._run("start-node", str(i), timeout=START_TIMEOUT)

    def kill_node(self, i):
        """SIGKILL node i: no goodbye to its clients or its peers."""
        self._run("kill-node", str(i), timeout=STOP_TIMEOUT)

    def pause_node(self, i):
        """SIGSTOP node i: its sockets stay open and nothing is answered."""
        self._run("pause-node", str(i), timeout=30)

    def resume_node(self, i):
        self._run("resume-node", str(i), timeout=30)

    def port(self, i):
        """Node i's client port."""
        return int(self._run("port", str(i), timeout=30).strip())

    def pid(self, i):
        """Node i's java process id, or None when it does not run."""
        try:
            pid = int((self.dir / f"n{i}" / "pid").read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if str(self.dir / f"n{i}" / "zoo.cfg").encode() in cmdline else None

    def log(self, i, lines=40):
        """The end of node i's log, for a failure message."""
        try:
            text = (self.dir / f"n{i}" / "log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # ---- four-letter words -----------------------------------------------------------

    def four(self, i, word, timeout=5):
        """Send a four-letter word (srvr, mntr, ruok, cons, wchs, ...) to node i; its
        answer, or "" when the node does not answer."""
        chunks = []
        try:
            with socket.create_connection(("127.0.0.1", self.port(i)), timeout=timeout) as s:
                s.sendall(word.encode())
                while True:
                    data = s.recv(65536)
                    if not data:
                        break
                    chunks.append(data)
        except OSError:
            pass
        return b"".join(chunks).decode(errors="replace")

    def mntr(self, i):
        """Node i's `mntr` as a dict of strings ({} when it does not answer)."""
        out = {}
        for line in self.four(i, "mntr").splitlines():
            key, sep, value = line.partition("\t")
            if sep:
                out[key.strip()] = value.strip()
        return out

    def mode(self, i):
        """"leader", "follower", or None when node i does not serve."""
        for line in self.four(i, "srvr").splitlines():
            if line.startswith("Mode: "):
                return line[len("Mode: "):].strip()
        return None

    def stats(self, nodes=(1, 2, 3)):
        """What a test asks about the ensemble's size, from the first of `nodes` that
        answers `mntr`: znode_count, watch_count, ephemerals_count, approximate_data_size
        (bytes), alive_connections, and rss_kb: that node's java resident memory, the
        nearest thing to its heap that mntr does not give."""
        for i in nodes:
            m = self.mntr(i)
            if not m:
                continue
            stats = {"node": i}
            for key in ("znode_count", "watch_count", "ephemerals_count",
                        "approximate_data_size", "num_alive_connections"):
                if "zk_" + key in m:
                    stats[key] = int(float(m["zk_" + key]))
            stats["rss_kb"] = self._rss_kb(i)
            return stats
        raise ZkError("no node answers mntr")

    # ---- internals -------------------------------------------------------------------

    def _rss_kb(self, i):
        pid = self.pid(i)
        if pid is None:
            return None
        try:
            for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return None

    def _run(self, cmd, *args, timeout, check=True):
        argv = ["bash", str(ZK_SH), cmd, str(self.dir), *args]
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                 env=dict(os.environ))
        except subprocess.TimeoutExpired as e:
            raise ZkError(f"zk.sh {cmd} {' '.join(args)}: no answer in {timeout}s") from e
        if check and out.returncode != 0:
            raise ZkError(f"zk.sh {cmd} {' '.join(args)}: exit {out.returncode}: "
                          f"{out.stderr.strip()}")
        return out.stdout
