"""The deployment files are valid: the systemd unit passes `systemd-analyze verify` with its
ExecStart pointed at the binary under test, and keeps its hardening."""
import pathlib
import re
import shutil
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


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_unit_verifies(tethys, tmp_path):
    unit = tmp_path / "tethys.service"
    unit.write_text(re.sub(r"^ExecStart=\S+", f"ExecStart={tethys}", UNIT.read_text(),
                           flags=re.M))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    # verify also reports unrelated units of the host; only lines about ours count
    ours = [l for l in (r.stdout + r.stderr).splitlines() if "tethys.service" in l]
    assert ours == [], ours
