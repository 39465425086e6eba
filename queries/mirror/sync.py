"""The DuckDB analytics mirror of ai_tasks, ai_runs and ai_users (docs/design.md, The mirror).

Change capture (migration 0003): every source row carries `sync_xid`, the id of the
transaction that last wrote it, and deletions are logged with the same stamp. A sync runs in
one REPEATABLE READ transaction; it remembers the snapshot horizon
`pg_snapshot_xmin(pg_current_snapshot())` — every transaction below it has finished — and
the next sync reads only rows stamped at or above that horizon. A transaction that was still
running (so invisible) gets an id >= the horizon, so the next sync sees it once it commits.
Rows are applied by delete-by-id then insert, so reading a row twice never counts it twice;
a logged deletion is applied only when the row is absent from the snapshot.

Rows move Postgres -> Arrow (ADBC) -> DuckDB, never row by row through Python. NUMERIC
arrives as text and is cast to DECIMAL(20,10) (task cost) and DECIMAL(24,10) (run total).

A mirror that is missing, has another schema version, is unreadable (corrupt), or was
synced from another database (system identifier / database oid / name) is rebuilt from
scratch, with a warning saying why.

Self-check (docs/limits.md): at most every VERIFY_EVERY_SECONDS (and on every
`verify=True` sync, which `ai-runs sync` uses), a sync reads every block of the mirror (so
DuckDB verifies each block's checksum) and compares row counts and token and cost sums
with Postgres in the sync's own snapshot. A damaged or diverging mirror is rebuilt, with a
warning saying what was wrong.

This module opens the mirror and runs one sync; the steps live beside their SQL:
`mirror_load.py` (the full load), `mirror_apply.py` (the incremental apply),
`mirror_check.py` (the self-check), `mirror_extract.py` (reading Postgres through ADBC),
`mirror_steps.py` (what the steps share: SyncResult, the step timer); opening the file is
`mirror_open.py`.

Processes: DuckDB lets one process open a file read-write. The dashboard process opens the
mirror once and syncs through that connection (`sync_mirror(con=con)`); threads use
`con.cursor()`. A second process (`ai-runs sync`) gets a clear error while it is held.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import duckdb

from ingest.store import config, database, retention
from queries.mirror import check as mirror_check
from queries.mirror.apply import apply_changes
from queries.mirror.check import VERIFY_EVERY_SECONDS
from queries.mirror.extract import BATCH_SIZE_HINT, extract
from queries.mirror.files import (
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_THREADS,
    MirrorLocked,
    discard_mirror,
    is_damage,
    open_mirror,
    remove_mirror_files,
)
from queries.mirror.load import full_load
from queries.mirror.steps import TABLES, SyncResult, duck_sql, log, pg_sql, rollback, step

__all__ = [
    "BATCH_SIZE_HINT",
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_THREADS",
    "MIRROR_SCHEMA_VERSION",
    "TABLES",
    "VERIFY_EVERY_SECONDS",
    "MirrorLocked",
    "SyncResult",
    "discard_mirror",
    "is_damage",
    "mirror_file",
    "mirror_freshness",
    "open_mirror",
    "sync_mirror",
]

MIRROR_SCHEMA_VERSION = 3  # 2: run_key/user_key surrogates; 3: tokens_cache_write, cost_source
_SYNC_LOCK = threading.Lock()  # one sync at a time per process (staged_* names are shared)


def sync_mirror(
    url: str | None = None,
    path: str | Path | None = None,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    full: bool = False,
    verify: bool | None = None,
) -> SyncResult:
    """Bring the mirror up to date with Postgres and return what changed.

    url: Postgres (default: DATABASE_URL or the embedded server). path: mirror file (default
    `config.mirror_path()`), ignored when `con` (an open mirror connection of this process)
    is given. full=True rebuilds from scratch. Incremental otherwise: the cost follows the
    number of rows written or deleted since the previous sync, not the table sizes.
    verify: True checks the mirror against Postgres after an incremental sync (module
    docstring), False never, None when the last check is VERIFY_EVERY_SECONDS old.
    `verified` in the result says whether it ran; a failed check rebuilds (`reason`).
    """
    started = time.perf_counter()
    url = database.database_url(url)
    own = con is None
    if own:
        con = open_mirror(path)
    try:
        with _SYNC_LOCK:
            try:
                result = _sync(con, url, full=full, path=path, verify=verify)
            except duckdb.Error as exc:
                if not own:
                    raise
                # Damaged beyond an in-place rebuild: start from a new file.
                log.warning("mirror %s is damaged (%s): recreating the file", path, exc)
                con.close()
                target = Path(path) if path is not None else config.mirror_path()
                remove_mirror_files(target)
                con = open_mirror(target)
                result = _sync(con, url, full=True, path=path, verify=False)
                result.reason = f"mirror file was damaged ({exc})"
    finally:
        if own:
            con.close()
    result.seconds = time.perf_counter() - started
    return result


def _sync(
    con: duckdb.DuckDBPyConnection, url: str, *, full: bool, path: Any, verify: bool | None
) -> SyncResult:
    with step("connect"):
        pg = adbc.connect(url)
    try:
        cur = pg.cursor()
        # One snapshot for the horizon, the rows and the deletions.
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute(pg_sql()["source_identity"].sql)
        horizon, pruned, identity = cur.fetchone()
        meta = _read_meta(con)
        reason = _rebuild_reason(meta, identity, pruned) if not full else "full sync requested"
        if reason is None:
            # TRUNCATE logs no row ids: start again from the snapshot.
            truncated = extract(cur, "truncations", meta["horizon"]).column(0).to_pylist()
            if truncated:
                reason = f"{', '.join(sorted(truncated))} truncated in Postgres"
        if reason is None:
            try:
                result = apply_changes(con, cur, since=meta["horizon"])
                if verify or (verify is None and mirror_check.verify_due(meta)):
                    problem = mirror_check.verify(con, cur)
                    result.verified = True
                    if problem is not None:
                        rollback(con)
                        reason = f"mirror check failed: {problem}"
            except duckdb.Error as exc:
                rollback(con)
                reason = f"mirror is unreadable ({exc})"
        if reason is not None:
            where = path or "the mirror"
            if full:
                log.info("rebuilding %s from scratch: %s", where, reason)
            else:
                log.warning("rebuilding %s from scratch: %s", where, reason)
            result = full_load(con, cur)
            result.reason = reason
        _write_meta(
            con,
            horizon=horizon,
            identity=identity,
            full=result.full,
            verified=result.full or result.verified,
        )
        with step("commit"):
            con.execute("COMMIT").fetchall()
        pg.commit()
    except BaseException:
        rollback(con)  # never leave the mirror's transaction open
        raise
    finally:
        pg.close()
    result.horizon = int(horizon)
    _register(con, url, horizon)
    counts = con.execute(duck_sql()["counts"].sql).fetchall()[0]
    result.rows = dict(zip(TABLES, counts, strict=True))
    return result


def mirror_file(con: duckdb.DuckDBPyConnection) -> str:
    """The absolute path of the file behind a mirror connection ("memory" when none)."""
    row = con.execute(duck_sql()["mirror_file"].sql).fetchall()
    return str(row[0][0]) if row and row[0][0] else "memory"


def _register(con: duckdb.DuckDBPyConnection, url: str, horizon: str) -> None:
    """Tell Postgres this mirror has applied everything below `horizon`, so deletions it
    no longer needs can be pruned (migration 0009). Best effort: a read-only source (a
    replica) or an outage only means less pruning, never a failed sync."""
    try:
        retention.record_mirror_horizon(url, retention.mirror_name(mirror_file(con)), horizon)
    except Exception as exc:  # noqa: BLE001 - pruning waits; the sync itself succeeded
        log.warning("could not register the mirror's horizon in Postgres: %s", exc)


def _read_meta(con: duckdb.DuckDBPyConnection) -> dict[str, str] | None:
    """The mirror's facts; None when there are none; {"unreadable": why} when damaged."""
    try:
        return dict(con.execute(duck_sql()["read_meta"].sql).fetchall())
    except duckdb.CatalogException:
        return None
    except duckdb.Error as exc:
        rollback(con)
        return {"unreadable": str(exc)}


def _rebuild_reason(meta: dict[str, str] | None, identity: str, pruned: str) -> str | None:
    if meta is not None and "unreadable" in meta:
        return f"mirror is unreadable ({meta['unreadable']})"
    if meta is None or "horizon" not in meta:
        return "mirror is missing or empty"
    version = meta.get("schema_version")
    if version != str(MIRROR_SCHEMA_VERSION):
        return f"mirror schema version {version}, this code needs {MIRROR_SCHEMA_VERSION}"
    if meta.get("source_identity") != identity:
        return (
            f"mirror was synced from another database ({meta.get('source_identity')}), "
            f"now reading {identity}"
        )
    if int(meta["horizon"]) < int(pruned):
        return "deletions it had not applied were pruned from ai_sync_deletions"
    return None


def _write_meta(
    con: duckdb.DuckDBPyConnection, *, horizon: str, identity: str, full: bool, verified: bool
) -> None:
    now = datetime.now(UTC).isoformat()
    values = {
        "schema_version": str(MIRROR_SCHEMA_VERSION),
        "source_identity": identity,
        "horizon": horizon,
        "last_sync_at": now,
    }
    if full:
        values["last_full_sync_at"] = now
    if verified:
        values["last_verified_at"] = now
    query = duck_sql()["write_meta"].duckdb
    for key, value in values.items():
        con.execute(query, {"key": key, "value": value}).fetchall()


def mirror_freshness(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Footer facts: last_sync_at and last_full_sync_at (UTC datetimes, None if never),
    tasks, runs, users (rows in the mirror), schema_version (int), horizon (int)."""
    meta = _read_meta(con) or {}
    counts = (0, 0, 0)
    if meta:
        counts = con.execute(duck_sql()["counts"].sql).fetchall()[0]

    def when(key: str) -> datetime | None:
        return datetime.fromisoformat(meta[key]) if key in meta else None

    return {
        "last_sync_at": when("last_sync_at"),
        "last_full_sync_at": when("last_full_sync_at"),
        **dict(zip(TABLES, (int(n) for n in counts), strict=True)),
        "schema_version": int(meta["schema_version"]) if "schema_version" in meta else None,
        "horizon": int(meta["horizon"]) if "horizon" in meta else None,
    }
