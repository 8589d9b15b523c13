"""The deployment files are valid: the systemd unit passes `systemd-analyze verify` with its
ExecStart pointed at the binary under test, and keeps its hardening; `make install` puts
the binary, the documentation and the unit where the unit says they are."""
import os
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "tethys.service"


def test_unit_is_hardened():
    text = UNIT.read_text()
    for line in ("User=tethys", "ProtectSystem=strict", "NoNewPrivileges=yes",
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
