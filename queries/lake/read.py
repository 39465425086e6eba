"""Reading the lake's Delta tables in DuckDB (docs/lake.md, "Reading").

DuckDB's own `delta` extension is downloaded at run time, which a machine without
internet cannot do; so DuckDB scans the Arrow dataset that `deltalake` builds from the
table's Delta log: exactly the files of one version (the latest, or `version`), with the
partition column `month`, filters and projections pushed down. The same works for a local
folder and for S3.
"""

from __future__ import annotations

import duckdb
import pyarrow.dataset as ds

from queries.lake import tables
from queries.lake.migrate import OLD_MANIFEST
from queries.lake.store import LakeStore


class LakeEmpty(RuntimeError):
    """The lake has no such table yet (run `ai-runs lake sync`)."""


def table_dataset(
    store: LakeStore,
    table: str,
    version: int | None = None,
    months: list[str] | None = None,
) -> tuple[ds.Dataset, int]:
    """(Arrow dataset of lake table `table` as of `version` (default: the latest), only
    the partitions `months` when given; the version read). LakeEmpty when there is no such
    table."""
    delta = tables.open_table(store, table, version)
    if delta is None:
        old = (
            " (it has the old manifest layout: run `ai-runs lake sync` once)"
            if (store.read_bytes(OLD_MANIFEST) is not None)
            else ""
        )
        raise LakeEmpty(
            f"no lake table {table} at {store.url} yet{old}: run `ai-runs lake sync --to "
            f"{store.url}`"
        )
    partitions = [(tables.PARTITION, "in", months)] if months else None
    return delta.to_pyarrow_dataset(file_pruning_predicate=partitions), delta.version()


def attach_lake(
    con: duckdb.DuckDBPyConnection,
    store: LakeStore,
    names: tuple[str, ...] = tables.LIVE_TABLES,
    as_of: dict[str, int] | None = None,
) -> dict[str, int]:
    """Create temporary views `tasks`, `runs`, `users` (or `names`) in `con` over the
    lake's Delta tables (table `t` as of version `as_of[t]` when given, else the latest);
    the version read per table. LakeEmpty when one does not exist."""
    versions = {}
    for table in names:
        dataset, versions[table] = table_dataset(store, table, (as_of or {}).get(table))
        con.from_arrow(dataset).create_view(table, replace=True)
    return versions
