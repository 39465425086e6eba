"""`sync_lake`: sync a mirror, then export it to the lake, from any process.

DuckDB lets one process open the mirror file. The export reads through a connection of
that process: pass `con` from the process that owns the mirror (the dashboard can call
`sync_lake(target, con=its_connection)` after its own sync), or let `sync_lake` open the
mirror when it is free. When another process holds it, the export uses a mirror of its
own beside it (`lake-mirror.duckdb`): incremental like any mirror, so only the first run
is a full load, at the cost of a second copy on disk (docs/lake.md, "Who writes").
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

from ingest.store import config
from queries.lake.export import ExportResult, export_lake
from queries.lake.store import open_store
from queries.mirror import MirrorLocked, open_mirror, sync_mirror

log = logging.getLogger(__name__)


def sync_lake(
    target: str | None = None,
    *,
    url: str | None = None,
    mirror: str | Path | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> tuple[ExportResult, str]:
    """Sync the mirror (through `con` when given), export it to `target` (default
    AI_RUNS_LAKE); returns (what the export did, the mirror file used)."""
    store = open_store(target)
    if con is not None:
        sync_mirror(url, con=con)
        return export_lake(con, store), "the caller's mirror"
    path = Path(mirror) if mirror is not None else config.mirror_path()
    try:
        own = open_mirror(path)
    except MirrorLocked:
        path = path.with_name("lake-mirror.duckdb")
        log.warning("the mirror is held by another process: exporting through %s", path)
        own = open_mirror(path)
    try:
        sync_mirror(url, con=own)
        return export_lake(own, store), str(path)
    finally:
        own.close()
