"""Incremental export of the mirror into the lake's Delta tables (docs/lake.md).

Per table and month of created_at the mirror gives a fingerprint (row count and the sum
of a hash of every exported column). The months whose fingerprint differs from the one
the table's last commit recorded are rewritten, and months with no rows any more are
dropped, in one Delta transaction per table (an overwrite with the predicate
`month IN (...)`, queries.lake.tables.replace_months); other months are not touched. A
table with nothing changed gets no commit. A reader sees each table before or after an
export, whole.

The commit records the new fingerprints and the mirror state it was made from (horizon,
last sync time: Delta commit metadata that `ai-runs lake history` shows). After the
commits, Delta's vacuum deletes the files replaced longer ago than the retention.

The export reads the mirror through a connection of the process that owns it (DuckDB
locks the file): the dashboard process, or `ai-runs lake sync` when the mirror is free.
Everything is read in one DuckDB transaction, so a sync on another cursor of the same
connection cannot slip between the fingerprints and the rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from ingest.store import config
from queries import sqltext
from queries.lake import tables
from queries.lake.migrate import migrate_old_layout
from queries.lake.store import LakeStore

log = logging.getLogger(__name__)

# Lake table -> the named query (queries/lake/export.sql) that selects it from the mirror.
EXPORTED = {
    "tasks": "lake_tasks",
    "runs": "lake_runs",
    "users": "lake_users",
    "scores": "lake_scores",
}
BATCH_ROWS = 128 * 1024


@dataclass
class ExportResult:
    """Per table: written/dropped/kept months (users: one 'month', the whole table),
    rows in the lake afterwards, version afterwards (None: no table, no rows); vacuumed:
    files deleted by vacuum; migrated: what converting an old-layout lake did (None when
    there was nothing to convert); seconds."""

    written: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int | None] = field(default_factory=dict)
    vacuumed: int = 0
    migrated: str | None = None
    seconds: float = 0.0


def export_lake(
    con: duckdb.DuckDBPyConnection, store: LakeStore, *, retention_hours: int | None = None
) -> ExportResult:
    """Bring the lake at `store` up to date with the mirror behind `con` and return what
    changed. `con` must be a connection of the process that owns the mirror (it may be
    the dashboard's; a cursor of it is used). Does not sync the mirror itself. A lake of
    the old manifest layout is converted first (queries.lake.migrate). LakeConflict when
    another writer committed to the same months meanwhile (tables committed before it
    stay, whole)."""
    started = time.perf_counter()
    retention = config.lake_retention_hours() if retention_hours is None else retention_hours
    result = ExportResult()
    migration = migrate_old_layout(store, retention_hours=retention)
    cur = con.cursor()
    cur.execute("BEGIN TRANSACTION").fetchall()
    try:
        source = dict(cur.execute(_sql("mirror_source").sql).fetchall())
        for table, query in EXPORTED.items():
            _export_table(cur, store, table, query, source, result, retention)
    finally:
        cur.execute("ROLLBACK").fetchall()  # read-only: nothing to keep
        cur.close()
    if migration is not None:
        result.migrated = migration.finish(store)
    for table in EXPORTED:
        result.vacuumed += len(tables.vacuum(store, table, retention))
    result.seconds = time.perf_counter() - started
    return result


def _sql(name: str, **expressions: str):
    return sqltext.render("lake", name, **expressions)


def _export_table(
    cur: duckdb.DuckDBPyConnection,
    store: LakeStore,
    table: str,
    query: str,
    source: dict,
    result: ExportResult,
    retention: int,
) -> None:
    projection = _sql(query).sql
    prints = cur.execute(_sql("partition_fingerprints", table=projection).sql).fetchall()
    current = tables.open_table(store, table)
    state = tables.table_state(current)
    now = {month: fingerprint for month, _, fingerprint in prints}
    expected = {month: rows for month, rows, _ in prints}
    changed = sorted(m for m in now if state.fingerprints.get(m) != now[m] or not state.complete)
    dropped = sorted(set(state.fingerprints) - set(now)) if state.complete else []
    result.rows[table] = sum(expected.values())
    result.written[table], result.dropped[table] = len(changed), len(dropped)
    result.kept[table] = len(now) - len(changed)
    result.versions[table] = state.version
    if state.complete and not changed and not dropped:
        return  # nothing changed: no commit (a new table is created even when empty)
    whole = not state.complete or table == "users"
    if table == "users":
        relation = cur.sql(_sql("rows_of_unpartitioned", table=projection).sql)
    elif whole:
        relation = cur.sql(_sql("rows_of_table", table=projection).sql)
    else:
        months = pa.table({"month": pa.array(changed, pa.string())})
        cur.register("months_to_write", months)
        relation = cur.sql(_sql("rows_of_months", table=projection).sql)
    reader = _counted(
        relation.to_arrow_reader(BATCH_ROWS), sum(expected[m] for m in changed), table
    )
    months = None if whole else changed + dropped
    metadata = {"fingerprints": now, "months": months, "source": source, "writer": "lake sync"}
    result.versions[table] = tables.replace_months(
        store, table, current, reader, months, metadata, retention_hours=retention
    )
    log.info(
        "lake %s: version %s, %d months written, %d dropped, %d kept",
        table,
        result.versions[table],
        len(changed),
        len(dropped),
        result.kept[table],
    )


def _counted(reader: pa.RecordBatchReader, expected: int, table: str) -> pa.RecordBatchReader:
    """`reader`, raising before its end (so the Delta write is not committed) when it does
    not hold exactly `expected` rows. The one DuckDB transaction makes that impossible;
    this refuses to publish if it ever happens."""

    def batches() -> Iterator[pa.RecordBatch]:
        count = 0
        for batch in reader:
            count += batch.num_rows
            yield batch
        if count != expected:
            raise RuntimeError(f"lake {table}: read {count} rows, expected {expected}")

    return pa.RecordBatchReader.from_batches(reader.schema, batches())
