"""The DuckDB analytics mirror of ai_tasks, ai_runs and ai_users (SPEC section 5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

MIRROR_SCHEMA_VERSION = 1


@dataclass
class SyncResult:
    """What one sync did: rows upserted and deleted per mirror table (tasks, runs, users),
    whether it was a full rebuild (and why), the new horizon, and the wall time in seconds."""

    full: bool
    reason: str | None = None
    upserted: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    horizon: int = 0
    seconds: float = 0.0


def open_mirror(
    path: str | Path | None = None,
    *,
    read_only: bool = False,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the mirror file (default config.mirror_path())."""
    raise NotImplementedError


def sync_mirror(
    url: str | None = None,
    path: str | Path | None = None,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    full: bool = False,
) -> SyncResult:
    """Bring the mirror up to date with Postgres."""
    raise NotImplementedError


def mirror_freshness(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Footer facts of the mirror."""
    raise NotImplementedError
