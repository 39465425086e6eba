"""The overview rollups on the lake give the dashboard's numbers: DuckDB over the lake and
ClickHouse (chdb) over the lake both equal the mirror's rollups on the same demo data."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from lake_support import END, demo_mirror

import queries as q
from queries import Filters
from queries.lake import rollups as lake
from queries.lake.export import export_lake
from queries.lake.store import open_store

WINDOW = Filters(start=END - timedelta(days=40), end=END)


@pytest.fixture(scope="module")
def engines(pg_server, template_db, tmp_path_factory):
    """(mirror connection, DuckDB on the lake, ClickHouse on the lake, the lake's folder)
    over one demo data set."""
    import psycopg

    from ingest.store import database, embedded

    name = "ai_runs_lake_rollups"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    url = embedded.with_database(pg_server, name)
    database._migrated.add(url)
    folder = tmp_path_factory.mktemp("lake_rollups")
    mirror = demo_mirror(url, folder, tasks=3000, days=75)
    store = open_store(str(folder / "lake"))
    export_lake(mirror, store)
    try:
        yield mirror, lake.LakeDuckDB(store), lake.LakeClickHouse(store), store.root
    finally:
        mirror.close()
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def assert_same(expected: pd.DataFrame, got: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected) > 0, (expected, got)
    for column in expected.columns:
        left, right = expected[column].tolist(), got[column].tolist()
        if isinstance(left[0], float | Decimal) or pd.api.types.is_float_dtype(expected[column]):
            left = [float("nan") if v is None else float(v) for v in left]
            right = [float("nan") if v is None else float(v) for v in right]
            assert np.allclose(left, right, rtol=1e-9, atol=1e-9, equal_nan=True), column
        else:
            norm = lambda values: [None if pd.isna(v) else v for v in values]  # noqa: E731
            assert norm(left) == norm(right), column


@pytest.mark.parametrize("engine_index", [1, 2], ids=["duckdb", "clickhouse"])
def test_overview_rollups_on_the_lake_equal_the_mirror(engines, engine_index):
    mirror, engine = engines[0], engines[engine_index]
    assert_same(
        q.usage_over_time(mirror, WINDOW, "day", by="model"),
        lake.usage_over_time(engine, WINDOW, "day", "model"),
    )
    assert_same(q.usage_by(mirror, WINDOW, "team"), lake.usage_by(engine, WINDOW, "team"))
    assert_same(q.kpis(mirror, WINDOW), lake.kpis(engine, WINDOW))
    assert_same(
        q.latency_percentiles(mirror, WINDOW, "ttft", by="model", grain="day"),
        lake.latency_percentiles(engine, WINDOW, "ttft", "model", "day"),
    )
    assert_same(
        q.failure_rates(mirror, WINDOW, by="provider", grain="week"),
        lake.failure_rates(engine, WINDOW, "provider", "week"),
    )


def test_clickhouse_equals_duckdb_on_the_lake(engines):
    _, duck, clickhouse, _ = engines
    everything = Filters(start=END - timedelta(days=75), end=END)
    for by in lake.GROUPS:
        assert_same(
            lake.usage_over_time(duck, everything, "week", by),
            lake.usage_over_time(clickhouse, everything, "week", by),
        )
        assert_same(
            lake.latency_percentiles(duck, everything, "total_time", by, None),
            lake.latency_percentiles(clickhouse, everything, "total_time", by, None),
        )


def test_the_lake_refuses_what_it_does_not_offer(engines):
    _, duck, _, _ = engines
    with pytest.raises(ValueError, match="choose one of"):
        lake.usage_by(duck, WINDOW, "tag")


def test_the_reading_snippets_of_docs_lake_md_run(engines, capsys):
    """docs/lake.md's DuckDB and chdb snippets, pointed at a real lake, print the models."""
    import re
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "lake.md").read_text()
    snippets = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "/data/" in b]
    assert len(snippets) == 2
    lake_path = engines[3]
    for snippet in snippets:
        exec(snippet.replace('"/data/ai-runs-lake"', repr(lake_path)), {})
        printed = capsys.readouterr().out
        assert "model" in printed and "claude" in printed, printed
