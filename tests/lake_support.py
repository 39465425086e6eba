"""Helpers for the lake tests: a demo database with a synced mirror, the lake read back by
plain Delta readers (no code of ours), and the same numbers from Postgres."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pyarrow.compute as pc

import queries as q
from ingest import demo
from queries import sqltext

END = datetime(2026, 6, 1, tzinfo=UTC)
PROJECTIONS = {"tasks": "lake_tasks", "runs": "lake_runs", "users": "lake_users"}
# Per table: the columns summed for the totals, as named in the lake and in Postgres.
TOTALS = {
    "tasks": ("cost", "tokens_total", "ai_tasks", "cost", "tokens_total"),
    "runs": ("total_cost", "total_tokens", "ai_runs", "total_cost", "total_tokens"),
}


def demo_mirror(url: str, folder: Path, *, tasks: int = 1500, days: int = 75, seed: int = 5):
    """Demo data over `days` days up to END in `url`, synced into a mirror in `folder`;
    the open mirror connection."""
    demo.generate(url, tasks=tasks, seed=seed, days=days, end=END)
    path = folder / "mirror.duckdb"
    q.sync_mirror(url, path)
    return q.open_mirror(path)


def mirror_rows(con: duckdb.DuckDBPyConnection, table: str) -> tuple[list[str], list[tuple]]:
    """(columns, rows) the lake should hold for `table` (with month, but users), ordered
    by id."""
    projection = sqltext.render("lake", PROJECTIONS[table]).sql
    drop = " EXCLUDE (month)" if table == "users" else ""
    relation = con.sql(f"SELECT *{drop} FROM ({projection}) ORDER BY id")
    return list(relation.columns), relation.fetchall()


def lake_rows(uri: str, columns: list[str], storage_options: dict | None = None) -> list[tuple]:
    """The rows of the Delta table at `uri`, read by deltalake alone, as tuples of
    `columns`, ordered by id."""
    from deltalake import DeltaTable

    arrow = DeltaTable(uri, storage_options=storage_options).to_pyarrow_table()
    rows = sorted(arrow.to_pylist(), key=lambda row: row["id"])
    return [tuple(row[c] for c in columns) for row in rows]


def assert_lake_equals_mirror(con: duckdb.DuckDBPyConnection, lake: str, **options) -> None:
    """Every live table at the lake folder or URL `lake` equals the mirror, row by row."""
    for table in PROJECTIONS:
        columns, expected = mirror_rows(con, table)
        assert expected, f"compare something: the mirror has no {table}"
        got = lake_rows(f"{lake}/{table}", columns, options.get("storage_options"))
        assert got == expected, table


def postgres_totals(url: str) -> dict[str, tuple]:
    """(rows, sum of money, sum of tokens) of ai_tasks and ai_runs, exact."""
    out = {}
    with psycopg.connect(url) as conn:
        for table, (_, _, source, money, tokens) in TOTALS.items():
            row = conn.execute(
                f"SELECT count(*), coalesce(sum({money}), 0), coalesce(sum({tokens}), 0) "
                f"FROM {source}"  # fixed names of this module
            ).fetchone()
            out[table] = (row[0], Decimal(row[1]), int(row[2]))
    return out


def plain_reader_totals(lake: str, storage_options: dict | None = None, endpoint=None) -> dict:
    """reader -> table -> (rows, sum of money, sum of tokens) of the live tables at `lake`
    (a folder or s3:// URL), each read by a Delta reader with no code of ours: deltalake to
    Arrow, DuckDB over deltalake's Arrow dataset, Polars scan_delta and ClickHouse (chdb).
    chdb reads a local lake from its folder (it refuses paths outside the working
    directory) and an S3 lake over `endpoint`."""
    import polars as pl
    from deltalake import DeltaTable

    found: dict[str, dict[str, tuple]] = {"deltalake": {}, "duckdb": {}, "polars": {}}
    found["chdb"] = {}
    for table, (money, tokens, *_) in TOTALS.items():
        uri = f"{lake}/{table}"
        delta = DeltaTable(uri, storage_options=storage_options)
        arrow = delta.to_pyarrow_table(columns=[money, tokens])
        found["deltalake"][table] = (
            arrow.num_rows,
            Decimal(pc.sum(arrow[money]).as_py() or 0),
            int(pc.sum(arrow[tokens]).as_py() or 0),
        )
        dataset = delta.to_pyarrow_dataset()  # noqa: F841 (DuckDB finds it by name)
        row = duckdb.sql(
            f"SELECT count(*), coalesce(sum({money}), 0), coalesce(sum({tokens}), 0) FROM dataset"
        ).fetchall()[0]
        found["duckdb"][table] = (row[0], Decimal(row[1]), int(row[2]))
        frame = (
            pl.scan_delta(uri, storage_options=storage_options)
            .select(pl.len(), pl.col(money).sum(), pl.col(tokens).sum())
            .collect()
        )
        count, cost, token_sum = frame.row(0)
        found["polars"][table] = (count, Decimal(cost or 0), int(token_sum or 0))
        found["chdb"][table] = _chdb_totals(uri, money, tokens, endpoint)
    return found


def _chdb_totals(uri: str, money: str, tokens: str, endpoint: str | None) -> tuple:
    import chdb

    select = f"SELECT count(), toString(sum({money})), sum({tokens}) FROM "
    if uri.startswith("s3://"):
        where = f"{endpoint}/{uri.removeprefix('s3://')}"
        key, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
        sql = select + "deltaLake({where:String}, {key:String}, {secret:String})"
        params = {"where": where, "key": key, "secret": secret}
        text = chdb.query(sql, "CSV", params=params)
    else:
        before = os.getcwd()
        os.chdir(Path(uri).parent)  # chdb reads local tables below its working directory
        try:
            sql = select + "deltaLakeLocal({where:String})"
            text = chdb.query(sql, "CSV", params={"where": uri})
        finally:
            os.chdir(before)
    count, cost, token_sum = str(text).strip().split(",")
    return int(count), Decimal(cost.strip('"')), int(token_sum)


def assert_plain_readers_equal_postgres(url: str, lake: str, **options) -> None:
    """Every plain reader of the lake gets Postgres's exact counts and sums."""
    expected = postgres_totals(url)
    for reader, got in plain_reader_totals(lake, **options).items():
        assert got == expected, (reader, got, expected)
