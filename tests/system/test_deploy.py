"""The deployment files are valid: the systemd unit passes `systemd-analyze verify` with its
ExecStart pointed at the binary under test, and keeps its hardening; `make install` puts
the binary, the documentation and the unit where the unit says they are."""
import os
import pathlib
import re
import shutil
import socket
import tempfile
import time
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "tethys.service"


def test_unit_is_hardened():
    text = UNIT.read_text()
    for line in ("User=tethys", "Type=notify", "WatchdogSec=30", "ProtectSystem=strict",
                 "NoNewPrivileges=yes",
                 "Restart=on-failure", "RestartPreventExitStatus=2", "PrivateTmp=yes",
                 "ReadWritePaths=/var/lib/tethys"):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line
    exec_start = re.search(r"^ExecStart=(.*)$", text, re.M).group(1)
    assert "--listen 127.0.0.1:" in exec_start, "loopback unless TLS is configured"


def test_unit_verifies(tethys, tmp_path):
    unit = tmp_path / "tethys.service"
    unit.write_text(re.sub(r"^ExecStart=\S+", f"ExecStart={tethys}", UNIT.read_text(),
                           flags=re.M))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    # verify also reports unrelated units of the host; only lines about ours count
    ours = [l for l in (r.stdout + r.stderr).splitlines() if "tethys.service" in l]
    assert ours == [], ours


def test_install_layout(tethys, tmp_path):
    build = pathlib.Path(tethys).resolve().parent
    assert (build / "CMakeCache.txt").exists(), f"{build} is not a CMake build directory"
    dest = tmp_path / "root"
    env = dict(os.environ, DESTDIR=str(dest))
    r = subprocess.run(["cmake", "--install", str(build), "--prefix", "/usr/local"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    prefix = dest / "usr" / "local"
    binary = prefix / "bin" / "tethys"
    assert os.access(binary, os.X_OK)
    v = subprocess.run([str(binary), "version"], capture_output=True, text=True)
    assert v.returncode == 0 and v.stdout.startswith("tethys "), v.stdout + v.stderr

    text = UNIT.read_text()
    # the unit's ExecStart and Documentation name the files `make install` wrote
    exec_bin = re.search(r"^ExecStart=(\S+)", text, re.M).group(1)
    assert (dest / exec_bin.lstrip("/")).exists(), exec_bin
    doc = re.search(r"^Documentation=file://(\S+)", text, re.M).group(1)
    assert (dest / doc.lstrip("/")).exists(), doc
    for name in ("api.md", "cli.md", "jobs.md", "internals/store.md", "README.md"):
        assert (prefix / "share" / "doc" / "tethys" / name).exists(), name
    installed_unit = prefix / "share" / "tethys" / "systemd" / "tethys.service"
    assert installed_unit.read_text() == text


def _notify_socket(name):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(name)
    s.settimeout(10)
    return s


def _messages(sock, seconds):
    """Every datagram that arrives within `seconds`, as lists of lines."""
    got, end = [], time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            got.append(sock.recv(4096).decode().split("\n"))
        except socket.timeout:
            break
    return got


def test_service_manager_notifications(server):
    d = tempfile.mkdtemp(prefix="tethys-notify-", dir="/tmp")  # short: sun_path is 108 bytes
    path = os.path.join(d, "notify")
    sock = _notify_socket(path)
    try:
        env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
        srv = server(env=env)
        ready = sock.recv(4096).decode().split("\n")
        assert "READY=1" in ready and f"MAINPID={srv.proc.pid}" in ready, ready
        assert f"STATUS=listening on {srv.url}" in ready, ready
        # the watchdog at half the interval the manager asked for: about 5 in a second
        pings = [m for m in _messages(sock, 1.0) if m == ["WATCHDOG=1"]]
        assert 3 <= len(pings) <= 7, pings
        assert srv.stop() == 0
        after = _messages(sock, 0.5)
        assert ["STOPPING=1"] in after, after
    finally:
        sock.close()
        shutil.rmtree(d)


def test_notifications_only_where_asked(server):
    # an abstract socket name works; a watchdog meant for another process is not served
    name = f"tethys-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = _notify_socket("\0" + name)
    try:
        env = dict(os.environ, NOTIFY_SOCKET="@" + name, WATCHDOG_USEC="200000",
                   WATCHDOG_PID="1")
        srv = server(env=env)
        assert "READY=1" in sock.recv(4096).decode().split("\n")
        assert [m for m in _messages(sock, 0.6) if "WATCHDOG=1" in m] == []
        # without NOTIFY_SOCKET the server runs the same and says nothing
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        srv2 = server(env=env)
        assert srv2.ok("GET", "/health")["status"] == "ok"
        assert _messages(sock, 0.3) == []
        # a socket name that cannot be used is logged, and the server serves anyway
        srv3 = server(env=dict(os.environ, NOTIFY_SOCKET="relative/name"))
        assert srv3.ok("GET", "/health")["status"] == "ok"
        assert ('cannot notify the service manager socket="relative/name" error="Invalid '
                'argument"') in srv3.log_text()
    finally:
        sock.close()
