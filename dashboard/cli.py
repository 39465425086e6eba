"""`ai-runs dashboard [--demo] [--port P]`: database, demo data, mirror, then Streamlit."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"
DEMO_TASKS = 200_000
DEMO_DAYS = 90


def register(commands: argparse._SubParsersAction) -> None:
    """Add this area's subcommands to `ai-runs`."""
    parser = commands.add_parser(
        "dashboard",
        help="open the analytics dashboard (Streamlit)",
        description="Start (or use) the database, optionally fill it with demo data, sync "
        "the analytics mirror, and serve the Streamlit dashboard.",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help=f"when the database has no task yet, fill it with demo data first "
        f"({DEMO_TASKS:,} tasks over {DEMO_DAYS} days; change with --demo-tasks)",
    )
    parser.add_argument(
        "--demo-tasks", type=int, default=DEMO_TASKS, metavar="N", help="demo size (tasks)"
    )
    parser.add_argument("--port", type=int, default=8501, help="HTTP port (default 8501)")
    parser.add_argument(
        "--address", default="localhost", help="address to listen on (default localhost)"
    )
    parser.set_defaults(handler=run)


def streamlit_command(port: int, address: str = "localhost") -> list[str]:
    """The command that serves the app: `python -m streamlit run <app.py> ...`."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--browser.gatherUsageStats",
        "false",
        "--server.headless",
        "true",
        "--server.runOnSave",
        "false",
        "--server.fileWatcherType",
        "none",
        "--runner.postScriptGC",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--theme.base",
        "light",
        "--server.port",
        str(port),
        "--server.address",
        address,
    ]


def _sign_in_configured() -> bool:
    """OIDC ([auth] in .streamlit/secrets.toml) or a trusted header (dashboard/auth.py)."""
    secrets = Path(".streamlit") / "secrets.toml"
    has_auth = secrets.is_file() and "[auth]" in secrets.read_text(errors="replace")
    return has_auth or bool(os.environ.get("AI_RUNS_TRUSTED_HEADER", "").strip())


def run(args: argparse.Namespace) -> int:
    import queries
    from ingest.store import database
    from queries.cli import horizon_lines

    if args.address not in ("localhost", "127.0.0.1", "::1") and not _sign_in_configured():
        print(
            f"Refusing to listen on {args.address}: without sign-in the dashboard is a single "
            "local admin that sees everything, so it serves localhost only. Configure OIDC "
            "(.streamlit/secrets.toml [auth]) or AI_RUNS_TRUSTED_HEADER (README: Access).",
            file=sys.stderr,
        )
        return 2

    url = database.database_url()
    print(f"Database: {_redacted(url)}", flush=True)
    empty = _is_empty(url)
    if empty and not args.demo:
        print("The database is empty: rerun with --demo for demo data.", flush=True)
    if args.demo and empty:
        from ingest import demo

        print(
            f"The database is empty: generating demo data ({args.demo_tasks:,} tasks over "
            f"{DEMO_DAYS} days)…",
            flush=True,
        )
        summary = demo.generate(
            url, tasks=args.demo_tasks, days=DEMO_DAYS, progress=True, quality=True
        )
        print(
            f"Demo data: {summary.runs:,} runs, {summary.tasks:,} tasks, "
            f"{summary.scores_added:,} scores, {summary.users:,} users in "
            f"{summary.seconds:.1f} s.",
            flush=True,
        )
    print("Syncing the analytics mirror…", flush=True)
    result = queries.sync_mirror(url)
    print(
        f"Mirror: {result.rows.get('tasks', 0):,} tasks, {result.rows.get('runs', 0):,} runs "
        f"({'full rebuild' if result.full else 'incremental'}, {result.seconds:.1f} s).",
        flush=True,
    )
    for line in horizon_lines(result.held_back_by):
        print(line, flush=True)
    print(f"Dashboard: http://{args.address}:{args.port}  (Ctrl+C to stop)", flush=True)
    # The child uses this very database, not a second embedded start of its own.
    env = {**os.environ, "DATABASE_URL": url}
    return run_child(streamlit_command(args.port, args.address), env)


def run_child(command: list[str], env: dict[str, str]) -> int:
    """Run the Streamlit server until it exits. SIGTERM and SIGHUP to this process are
    passed on to it, and Ctrl+C too, and this process waits for it: stopping
    `ai-runs dashboard` frees the port and the mirror file (which the child holds).
    Returns its exit code (0 when it stopped on a signal)."""
    child = subprocess.Popen(command, env=env)

    def forward(signum: int, frame: object) -> None:
        child.send_signal(signum)

    passed_on = (signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, forward) for signum in passed_on}
    try:
        while True:
            try:
                code = child.wait()
                break
            except KeyboardInterrupt:
                child.send_signal(signal.SIGINT)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if code < 0 else code


def _is_empty(url: str) -> bool:
    """True when the database holds no run at all (any status)."""
    from ingest import Tracker

    with Tracker(url=url) as tracker:
        return tracker.list_runs(status=None, limit=1).total == 0


def _redacted(url: str) -> str:
    """The URL without its password, for printing."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"
