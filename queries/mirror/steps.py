"""What every step of a mirror sync shares (queries/mirror.py runs the steps): the result a
sync reports, the mirror's tables, the named SQL of both engines, the step timer and a
rollback that never raises."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb

from ingest.store import sqlfiles
from queries import sqltext

# One logger for the whole sync: bench/queries.py turns on its DEBUG step timings.
log = logging.getLogger("queries.mirror")

TABLES = ("tasks", "runs", "users")


@dataclass
class SyncResult:
    """What one sync did.

    full: True when the mirror was rebuilt from scratch; reason: why (None when incremental).
    upserted: rows read from Postgres and written, per mirror table (tasks, runs, users).
    deleted: rows removed because they were deleted in Postgres, per mirror table (tasks of a
    deleted run are counted under tasks). horizon: the xid8 horizon the next sync starts
    from. rows: row counts of the mirror afterwards. seconds: wall time of the sync.
    """

    full: bool
    reason: str | None = None
    upserted: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    horizon: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    verified: bool = False


def duck_sql() -> dict[str, sqlfiles.Query]:
    """The named DuckDB queries of queries/sql/ (the mirror's are in mirror*.sql)."""
    return sqltext.named("duckdb")


def pg_sql() -> dict[str, sqlfiles.Query]:
    """The named Postgres queries of queries/sql/postgres/."""
    return sqltext.named("postgres")


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """Log the wall time of one sync step at DEBUG."""
    started = time.perf_counter()
    yield
    log.debug("sync step %s: %.0f ms", name, (time.perf_counter() - started) * 1000)


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the mirror's open transaction, if any (errors ignored)."""
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK").fetchall()
