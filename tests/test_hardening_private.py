"""Issue 21, private by default: the mirror (with its WAL), AI_RUNS_HOME and the lake folder
are created for their owner only, and stopping `ai-runs dashboard` with SIGTERM stops its
Streamlit child too (port and mirror file freed)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dashboard import command as cli
from ingest.store import config
from queries import open_mirror, sync_mirror
from queries.lake.store import open_store
from tests.server_support import free_port

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers


@pytest.fixture
def open_umask():
    """The usual umask (022): files would be world-readable unless made private."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_mirror_is_readable_by_its_owner_only(db_url, tmp_path, open_umask):
    path = tmp_path / "shared" / "analytics.duckdb"
    sync_mirror(db_url, path)
    assert mode(path) == 0o600
    for wal in path.parent.glob("*.wal"):
        assert mode(wal) == 0o600


def test_ai_runs_creates_home_mirror_and_wal_privately(
    db_url, tmp_path, monkeypatch, open_umask, capsys
):
    home = tmp_path / "home"
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("AI_RUNS_HOME", str(home))
    monkeypatch.delenv("AI_RUNS_MIRROR", raising=False)
    assert cli.main(["sync"]) == 0
    assert mode(home) == 0o700
    created = [p for p in home.iterdir() if p.name.startswith("analytics.duckdb")]
    assert created and all(mode(p) == 0o600 for p in created)
    assert os.umask(0o022) == 0o022  # the caller's umask is given back


def test_the_home_and_the_lake_folder_are_created_private(tmp_path, monkeypatch, open_umask):
    monkeypatch.setenv("AI_RUNS_HOME", str(tmp_path / "new-home"))
    assert mode(config.home()) == 0o700
    lake = tmp_path / "lake" / "here"
    open_store(str(lake))
    assert mode(lake) == 0o700


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_sigterm_to_the_dashboard_command_stops_streamlit_and_frees_port_and_mirror(
    db_url, tmp_path
):
    port = free_port()
    mirror = tmp_path / "analytics.duckdb"
    env = {**os.environ, "DATABASE_URL": db_url, "AI_RUNS_HOME": str(tmp_path),
           "AI_RUNS_MIRROR": str(mirror)}  # fmt: skip
    command = [sys.executable, "-m", "dashboard.command", "dashboard", "--port", str(port)]
    parent = subprocess.Popen(
        command,
        env=env,
        cwd=Path(__file__).parent.parent,
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the cleanup below reaches the child
    )
    try:
        deadline = time.monotonic() + 90
        while not _listening(port):
            assert parent.poll() is None, "ai-runs dashboard stopped by itself"
            assert time.monotonic() < deadline, "Streamlit did not start"
            time.sleep(0.2)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == 0
        assert _port_free(port), "the Streamlit child still holds the port"
        open_mirror(mirror).close()  # read-write: no other process holds it
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)  # whatever of this test's group is left
