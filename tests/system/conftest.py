"""Shared fixtures for the system tests: they drive the real `tethys` binary."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tethys():
    """Path of the binary under test (TETHYS_BIN, default build/tethys)."""
    path = pathlib.Path(os.environ.get("TETHYS_BIN", ROOT / "build" / "tethys"))
    if not path.exists():
        pytest.fail(f"{path} does not exist: run `make build` first")
    return str(path)


@pytest.fixture
def run(tethys):
    """run(*args, stdin=None) -> CompletedProcess of `tethys args...` (text, captured)."""
    def _run(*args, stdin=None, timeout=30):
        return subprocess.run([tethys, *args], input=stdin, capture_output=True, text=True,
                              timeout=timeout)
    return _run
