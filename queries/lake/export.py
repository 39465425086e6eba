"""Incremental export of the mirror into the lake (docs/lake.md).

Per table and month of created_at the mirror gives a fingerprint (row count and the sum
of a hash of every exported column). A partition is rewritten only when its fingerprint
differs from the manifest's, dropped when the month has no rows any more, and left alone
otherwise, so an export costs one scan for the fingerprints plus the changed months.

New files get fresh names; the manifest is replaced atomically once all of them are
written; files no manifest references any more are deleted after that. An export that
dies midway leaves the previous manifest and all its files in place.

The export reads the mirror through a connection of the process that owns it (DuckDB
locks the file): the dashboard process, or `ai-runs lake sync` when the mirror is free.
Everything is read in one DuckDB transaction, so a sync on another cursor of the same
connection cannot slip between the fingerprints and the rows.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import pyarrow.parquet as pq

from queries import sqltext
from queries.lake.manifest import Manifest, Partition, Table, read_manifest, swap_manifest
from queries.lake.store import LakeStore

log = logging.getLogger(__name__)

# Lake table -> the named query (queries/lake/export.sql) that selects it from the mirror.
EXPORTED = {"tasks": "lake_tasks", "runs": "lake_runs", "users": "lake_users"}
ARCHIVES = ("archive_tasks", "archive_runs")
ROW_GROUP_ROWS = 128 * 1024


@dataclass
class ExportResult:
    """written/dropped/kept: partitions per table rewritten, removed, left as they were;
    rows: rows per table in the lake afterwards; generation: the manifest's; seconds."""

    written: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    generation: int = 0
    seconds: float = 0.0


def export_lake(con: duckdb.DuckDBPyConnection, store: LakeStore) -> ExportResult:
    """Bring the lake at `store` up to date with the mirror behind `con` and return what
    changed. `con` must be a connection of the process that owns the mirror (it may be
    the dashboard's; a cursor of it is used). Does not sync the mirror itself."""
    started = time.perf_counter()
    cur = con.cursor()
    result = ExportResult()
    with store.writer_lock():
        old = read_manifest(store)
        new = Manifest(source={}, tables={})
        cur.execute("BEGIN TRANSACTION").fetchall()
        try:
            new.source = dict(cur.execute(_sql("mirror_source").sql).fetchall())
            for table, query in EXPORTED.items():
                before = old.tables.get(table) if old else None
                new.tables[table] = _export_table(cur, store, table, query, before, result)
        finally:
            cur.execute("ROLLBACK").fetchall()  # read-only: nothing to keep
            cur.close()
        for table in ARCHIVES:  # the archive is written by retention only
            if old is not None and table in old.tables:
                new.tables[table] = old.tables[table]
        swap_manifest(store, new, old)
    result.generation = new.generation
    result.seconds = time.perf_counter() - started
    return result


def _sql(name: str, **expressions: str):
    return sqltext.render("lake", name, **expressions)


def _export_table(
    cur: duckdb.DuckDBPyConnection,
    store: LakeStore,
    table: str,
    query: str,
    before: Table | None,
    result: ExportResult,
) -> Table:
    projection = _sql(query).sql
    prints = cur.execute(_sql("partition_fingerprints", table=projection).sql).fetchall()
    partitioned = table != "users"
    out = Table(partition_by="month" if partitioned else None)
    written = kept = 0
    for month, rows, fingerprint in prints:
        previous = before.partitions.get(month) if before else None
        if previous is not None and previous.fingerprint == fingerprint:
            out.partitions[month] = previous
            kept += 1
            continue
        folder = f"{table}/month={month}" if partitioned else table
        rel = partition_file(folder)
        if partitioned:
            lo, hi = _month_bounds(month)
            query = _sql("partition_rows", table=projection).duckdb
            relation = cur.sql(query, params={"lo": lo, "hi": hi})
            reader = relation.to_arrow_reader(ROW_GROUP_ROWS)
        else:
            reader = cur.sql(_sql("all_rows", table=projection).sql).to_arrow_reader(ROW_GROUP_ROWS)
        count = write_parquet(store, rel, reader)
        if count != rows:  # the transaction makes this impossible; refuse to publish if not
            raise RuntimeError(f"lake {table} {month}: wrote {count} rows, expected {rows}")
        out.partitions[month] = Partition(files=[rel], rows=int(rows), fingerprint=fingerprint)
        out.columns = _columns(reader.schema)
        written += 1
    if not out.columns and before is not None:
        out.columns = before.columns
    if not out.columns:
        schema = cur.sql(_sql("all_rows", table=projection).sql).limit(0).to_arrow_table().schema
        out.columns = _columns(schema)
    gone = set(before.partitions) - {p[0] for p in prints} if before else set()
    result.written[table], result.kept[table], result.dropped[table] = written, kept, len(gone)
    result.rows[table] = sum(p.rows for p in out.partitions.values())
    log.info("lake %s: %d partitions written, %d kept, %d dropped", table, written, kept, len(gone))
    return out


def partition_file(folder: str) -> str:
    """A fresh file for a new version of the partition in `folder`. Each version gets a
    directory of its own (v-<random>/), so an engine with a metastore can point the
    partition's location at exactly one version (docs/lake.md, "Engines")."""
    return f"{folder}/v-{uuid.uuid4().hex[:16]}/part-0.parquet"


def _columns(schema) -> list[list[str]]:
    return [[f.name, str(f.type)] for f in schema]


def _month_bounds(month: str) -> tuple[datetime, datetime]:
    year, number = (int(part) for part in month.split("-"))
    lo = datetime(year, number, 1, tzinfo=UTC)
    hi = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return lo, hi


def write_parquet(store: LakeStore, rel: str, reader) -> int:
    """Write a record batch stream to `rel` (zstd); rows written."""
    path = store.path(rel)
    store.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    count = 0
    with (
        store.fs.open_output_stream(path) as sink,
        pq.ParquetWriter(sink, reader.schema, compression="zstd") as writer,
    ):
        for batch in reader:
            writer.write_batch(batch, row_group_size=ROW_GROUP_ROWS)
            count += batch.num_rows
    return count
