"""The overview rollups on the lake give the dashboard's numbers with every reader of the
Delta tables (DuckDB, ClickHouse via chdb, Polars scan_delta, deltalake to Arrow), for the
latest version and as of an older one (time travel); docs/lake.md's reading snippets run."""

from __future__ import annotations

import os
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
READERS = {
    "duckdb": lake.LakeDuckDB,
    "clickhouse": lake.LakeClickHouse,
    "polars": lake.LakePolars,
    "deltalake": lake.LakeArrow,
}


@pytest.fixture(scope="module")
def lake_data(pg_server, template_db, tmp_path_factory):
    """(mirror connection, the lake's store, the mirror's KPIs before the last export) over
    one demo data set exported twice: version 0, then version 1 after changing costs in
    the window. The working directory is the lake's folder (chdb reads local Delta tables
    only below it)."""
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
    before = q.kpis(mirror, WINDOW)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ai_tasks SET cost = coalesce(cost, 0) + 1 WHERE id IN "
            "(SELECT id FROM ai_tasks WHERE created_at >= %s ORDER BY id LIMIT 40)",
            (END - timedelta(days=10),),
        )
    q.sync_mirror(url, con=mirror)
    assert export_lake(mirror, store).versions["tasks"] == 1
    working = os.getcwd()
    os.chdir(store.root)
    try:
        yield mirror, store, before
    finally:
        os.chdir(working)
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


@pytest.mark.parametrize("reader", READERS)
def test_overview_rollups_on_the_lake_equal_the_mirror(lake_data, reader):
    mirror, store, _ = lake_data
    engine = READERS[reader](store)
    assert engine.version == 1
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


@pytest.mark.parametrize("reader", READERS)
def test_every_reader_reads_the_lake_as_of_an_older_version(lake_data, reader):
    _, store, before = lake_data
    engine = READERS[reader](store, as_of=0)
    assert engine.version == 0
    old = lake.kpis(engine, WINDOW)
    assert_same(before, old)
    latest = lake.kpis(READERS[reader](store), WINDOW)
    assert latest.loc[0, "value"] == pytest.approx(old.loc[0, "value"] + 40)  # spend


def test_the_readers_agree_over_every_grouping(lake_data):
    _, store, _ = lake_data
    everything = Filters(start=END - timedelta(days=75), end=END)
    duck = lake.LakeDuckDB(store)
    for other in (lake.LakeClickHouse(store), lake.LakePolars(store), lake.LakeArrow(store)):
        for by in lake.GROUPS:
            assert_same(
                lake.usage_over_time(duck, everything, "week", by),
                lake.usage_over_time(other, everything, "week", by),
            )
            assert_same(
                lake.latency_percentiles(duck, everything, "total_time", by, None),
                lake.latency_percentiles(other, everything, "total_time", by, None),
            )


def test_the_lake_refuses_what_it_does_not_offer(lake_data, tmp_path):
    _, store, _ = lake_data
    with pytest.raises(ValueError, match="choose one of"):
        lake.usage_by(lake.LakeDuckDB(store), WINDOW, "tag")
    elsewhere = open_store(str(tmp_path / "lake"))
    with pytest.raises(lake.LakeEmpty, match="lake sync"):
        lake.LakePolars(elsewhere)


def test_clickhouse_says_where_to_run_it_from(lake_data, monkeypatch):
    _, store, _ = lake_data
    monkeypatch.chdir("/")
    lake.LakeClickHouse(store)  # below / : fine
    monkeypatch.chdir(store.root + "/tasks/_delta_log")
    with pytest.raises(ValueError, match="below its working directory"):
        lake.LakeClickHouse(store)


def test_the_reading_snippets_of_docs_lake_md_run(lake_data, capsys):
    """docs/lake.md's Python snippets (deltalake, DuckDB, Polars, chdb), pointed at a real
    lake, print the models' spend: the latest version and as of version 0."""
    import re
    from pathlib import Path

    _, store, _ = lake_data
    doc = (Path(__file__).parent.parent / "docs" / "lake.md").read_text()
    snippets = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "/data/" in b]
    assert len(snippets) == 4
    for snippet in snippets:
        assert "as_of = None" in snippet, snippet
        code = snippet.replace('"/data/ai-runs-lake"', repr(store.root))
        exec(code, {})
        printed = capsys.readouterr().out
        assert "claude" in printed, printed
        assert "version 1" in printed or "version latest" in printed, printed
        exec(code.replace("as_of = None", "as_of = 0"), {})
        printed_then = capsys.readouterr().out
        assert "claude" in printed_then and "version 0" in printed_then, printed_then
        assert printed != printed_then
