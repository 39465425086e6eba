"""Helpers for the lake tests: a demo database with a synced mirror, and comparisons of
the lake with the mirror it was exported from."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

import queries as q
from ingest import demo
from queries import sqltext
from queries.lake.read import current_manifest, table_relation
from queries.lake.store import LakeStore

END = datetime(2026, 6, 1, tzinfo=UTC)
PROJECTIONS = {"tasks": "lake_tasks", "runs": "lake_runs", "users": "lake_users"}


def demo_mirror(url: str, folder: Path, *, tasks: int = 1500, days: int = 75, seed: int = 5):
    """Demo data over `days` days up to END in `url`, synced into a mirror in `folder`;
    the open mirror connection."""
    demo.generate(url, tasks=tasks, seed=seed, days=days, end=END)
    path = folder / "mirror.duckdb"
    q.sync_mirror(url, path)
    return q.open_mirror(path)


def mirror_rows(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    """The rows the lake should hold for `table`, with month, ordered by id."""
    projection = sqltext.render("lake", PROJECTIONS[table]).sql
    return con.sql(f"SELECT * FROM ({projection}) ORDER BY id").fetchall()


def lake_rows(store: LakeStore, table: str) -> list[tuple]:
    """The rows of lake table `table` read through the current manifest, columns in the
    mirror projection's order (month last), ordered by id."""
    reader = duckdb.connect()
    reader.execute("SET TimeZone = 'UTC'")
    manifest = current_manifest(store)
    if not manifest.table_files(table):
        return []
    relation = table_relation(reader, store, manifest, table)
    columns = [c for c, _ in manifest.tables[table].columns] + ["month"]
    if table == "users":
        relation = reader.sql("SELECT *, '' AS month FROM relation")
    return relation.select(*columns).order("id").fetchall()


def assert_lake_equals_mirror(con: duckdb.DuckDBPyConnection, store: LakeStore) -> None:
    for table in PROJECTIONS:
        expected = mirror_rows(con, table)
        assert expected, f"compare something: the mirror has no {table}"
        assert lake_rows(store, table) == expected, table
