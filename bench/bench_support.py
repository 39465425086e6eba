"""What the benchmark scripts share. bench/ is a folder of scripts, not a package: each
script's folder is on sys.path, so `from bench_support import bench_queries` works."""

from __future__ import annotations

import argparse
import importlib.util
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import IO

ROOT = Path(__file__).resolve().parent.parent


def bench_queries() -> ModuleType:
    """bench/queries.py as a module (its `prepare` of a demo database in a folder, `timed`
    medians): imported by path, since its name would clash with the `queries` package."""
    spec = importlib.util.spec_from_file_location("bench_queries", ROOT / "bench" / "queries.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def demo_database_arguments(parser: argparse.ArgumentParser, tasks: int = 1_000_000) -> None:
    """--tasks, --days, --dir, --reuse: the demo database that bench/queries.py's `prepare`
    fills in a folder, shared by the benchmarks that read one (demo_folder)."""
    parser.add_argument("--tasks", type=int, default=tasks)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--dir", type=Path, default=None, help="data folder (default: demo_folder)")
    parser.add_argument("--reuse", action="store_true", help="keep existing data in --dir")


def demo_folder(args: argparse.Namespace) -> Path:
    """The folder of the demo database: --dir, else $TMPDIR/ai-runs-bench-<tasks>, so that
    every benchmark run with the same --tasks and --reuse reads the same database."""
    return args.dir or Path(tempfile.gettempdir()) / f"ai-runs-bench-{args.tasks}"


# --- A dashboard in headless Chromium (bench/pages.py, bench/charts.py) -------------------

CHROMIUM = "/usr/bin/chromium"  # Debian's; playwright drives it (never `playwright install`)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(base: str, process: subprocess.Popen, timeout: float = 300) -> None:
    """Wait until the Streamlit server at `base` answers its health check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the dashboard exited before it answered")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("the dashboard did not come up")


def serve(app: Path, env: dict, log: IO, cwd: Path = ROOT) -> tuple[subprocess.Popen, str]:
    """`streamlit run app` on a free port in its own session, from folder `cwd`; the
    process and its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(app)]
    command += ["--server.port", str(port), "--server.address", "127.0.0.1"]
    command += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return process, f"http://127.0.0.1:{port}"
