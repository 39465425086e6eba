"""Connections, the embedded-or-configured database, and versioned migrations."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import conninfo
from psycopg.rows import dict_row

from ingest.store import config, embedded, sqlfiles

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")
_MIGRATION_LOCK = 7_141_592_653  # advisory lock key: one migrator at a time per database

APP_ROLE = "ai_runs_app"  # created by migration 0010; does not bypass row-level security

_migrated: set[str] = set()
_lock = threading.Lock()


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    """The shipped migrations, in version order. Numbers are unique and increasing; a gap
    is allowed (numbers are handed out to parallel branches, which land in any order), and
    `migrate` applies every missing one, lower numbers included."""
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name} must be named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in found]
    # Gaps are allowed (branches take numbers in advance): migrate() applies every version
    # a database lacks, lower ones included.
    if versions != sorted(set(versions)) or (versions and versions[0] < 1):
        raise ValueError(f"migration versions must be distinct and >= 1, found {versions}")
    return found


def migrate(url: str, target: int | None = None) -> list[int]:
    """Apply pending migrations (up to `target`, default all) in order; return those applied.

    Safe to call concurrently and repeatedly: an advisory lock serialises migrators and
    applied versions are skipped. An applied migration whose file changed is an error.
    """
    applied_now: list[int] = []
    with psycopg.connect(url, autocommit=True) as conn:
        # One migrator at a time per database; the lock goes with the session.
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            """CREATE TABLE IF NOT EXISTS ai_runs_migrations (
                   version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = dict(conn.execute("SELECT version, checksum FROM ai_runs_migrations").fetchall())
        for migration in migrations():
            if target is not None and migration.version > target:
                break
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise RuntimeError(
                        f"migration {migration.version:04d}_{migration.name} was changed "
                        "after it was applied; add a new migration instead of editing it"
                    )
                continue
            with conn.transaction():
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO ai_runs_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            applied_now.append(migration.version)
            log.info("applied migration %04d_%s", migration.version, migration.name)
    return applied_now


def schema_version(url: str) -> int:
    """Highest applied migration version (0 for an empty database)."""
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('ai_runs_migrations')").fetchone()[0]
        if not exists:
            return 0
        return conn.execute("SELECT coalesce(max(version), 0) FROM ai_runs_migrations").fetchone()[
            0
        ]


def database_url(url: str | None = None) -> str:
    """The URL of a migrated database, ready for use.

    `url` if given, else DATABASE_URL, else the embedded server in $AI_RUNS_HOME/pgdata
    (started if needed, database `ai_runs` created). Migrations run once per process.
    """
    with _lock:
        if url is None:
            url = config.database_url_setting()
        if url is None:
            url = embedded.ensure_database(embedded.start())
        if url not in _migrated:
            migrate(url)
            _migrated.add(url)
    return url


def app_url(url: str | None = None) -> str:
    """The URL the application role (APP_ROLE, subject to row-level security) connects with.

    AI_RUNS_APP_DATABASE_URL if set (a managed Postgres: the role has a password there);
    else the owner's URL (`database_url(url)`, migrated first) with the user replaced by
    APP_ROLE, which works where the server trusts local connections (the embedded server,
    a development server). See docs/access.md for which paths use which connection.
    """
    owner = database_url(url)
    configured = config.app_database_url_setting()
    if configured:
        return configured
    params = conninfo.conninfo_to_dict(owner)
    params["user"] = APP_ROLE
    params.pop("password", None)
    return conninfo.make_conninfo(**params)


def connect(url: str | None = None, **kwargs) -> psycopg.Connection:
    """A psycopg connection (dict rows) to a migrated database."""
    return psycopg.connect(database_url(url), row_factory=dict_row, **kwargs)


def queries() -> dict[str, sqlfiles.Query]:
    """The store's named SQL (ingest/store/sql/*.sql: the invariant, retention, the schema
    dump), ready to run."""
    return sqlfiles.beside(__file__)


def run_totals_mismatches(url: str | None = None) -> list[dict]:
    """Runs whose derived totals disagree with ai_tasks; [] when the invariant holds."""
    with connect(url) as conn:
        return conn.execute(queries()["run_totals_mismatches"].psycopg).fetchall()
