"""Reading the lake through its manifest (docs/lake.md, "Reading").

Only the files the current manifest lists are opened, so a reader never sees a partition
that is being rewritten, nor the leftovers of an interrupted export. Local lakes are read
by DuckDB's own Parquet reader; S3 lakes through pyarrow datasets (DuckDB's httpfs is not
needed). Each table gets the Hive partition column `month` (YYYY-MM; '' for users).
"""

from __future__ import annotations

import duckdb
import pyarrow.dataset as ds

from queries.lake.manifest import Manifest, read_manifest
from queries.lake.store import LakeStore

LIVE_TABLES = ("tasks", "runs", "users")


class LakeEmpty(RuntimeError):
    """The lake has no manifest yet (run `ai-runs lake sync`) or the table has no rows."""


def current_manifest(store: LakeStore) -> Manifest:
    """The lake's current manifest; LakeEmpty when there is none."""
    manifest = read_manifest(store)
    if manifest is None:
        raise LakeEmpty(f"no lake at {store.url} yet: run `ai-runs lake sync --to {store.url}`")
    return manifest


def table_relation(
    con: duckdb.DuckDBPyConnection,
    store: LakeStore,
    manifest: Manifest,
    table: str,
    months: set[str] | None = None,
) -> duckdb.DuckDBPyRelation:
    """A DuckDB relation over lake table `table` (only the partitions `months`, when
    given). LakeEmpty when the manifest lists no file for it."""
    files = manifest.table_files(table, months)
    if not files:
        raise LakeEmpty(f"lake table {table} has no files{' in ' + str(months) if months else ''}")
    if store.local:
        return con.read_parquet([store.uri(f) for f in files], hive_partitioning=True)
    dataset = ds.dataset(
        [store.path(f) for f in files],
        filesystem=store.fs,
        format="parquet",
        partitioning=ds.partitioning(flavor="hive"),
        partition_base_dir=store.root,
    )
    return con.from_arrow(dataset)


def attach_lake(
    con: duckdb.DuckDBPyConnection, store: LakeStore, tables: tuple[str, ...] = LIVE_TABLES
) -> Manifest:
    """Create temporary views `tasks`, `runs`, `users` (or `tables`) in `con` over the lake's
    current manifest; the manifest read. Tables without files get no view."""
    manifest = current_manifest(store)
    for table in tables:
        if manifest.table_files(table):
            table_relation(con, store, manifest, table).create_view(table, replace=True)
    return manifest
