"""One behaviour suite, two engines: every rollup with a Postgres twin returns the same
result from DuckDB (the mirror) and from Postgres (the system of record), on the same demo
data. Decimals must be equal exactly; percentiles within float rounding."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import psycopg
import pytest

import queries as q
from ingest import database, demo, embedded
from queries import DIMENSIONS, GRAINS, Filters

END = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 45


@pytest.fixture(scope="module")
def engines(pg_server, template_db, tmp_path_factory):
    """(duckdb connection, psycopg connection, filter options) over one demo data set."""
    name = f"ai_runs_two_engines_{os.getpid()}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    url = embedded.with_database(pg_server, name)
    database._migrated.add(url)
    demo.generate(url, tasks=4000, seed=11, days=DAYS, end=END)
    path = tmp_path_factory.mktemp("two_engines") / "mirror.duckdb"
    q.sync_mirror(url, path)
    duck = q.open_mirror(path)
    pg = psycopg.connect(url, autocommit=True)
    try:
        yield duck, pg, q.filter_options(duck)
    finally:
        duck.close()
        pg.close()
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def assert_same(duck: pd.DataFrame, pg: pd.DataFrame) -> None:
    assert list(duck.columns) == list(pg.columns)
    assert len(duck) == len(pg), (duck, pg)
    assert len(duck) > 0, "compare something, not two empty frames"
    for column in duck.columns:
        left, right = duck[column].tolist(), pg[column].tolist()
        if pd.api.types.is_float_dtype(duck[column]) and not isinstance(left[0], Decimal):
            assert np.allclose(left, right, rtol=1e-9, atol=1e-9, equal_nan=True), column
        else:
            norm = lambda values: [None if pd.isna(v) else v for v in values]  # noqa: E731
            assert norm(left) == norm(right), column


def variants(options: dict[str, list[str]]) -> list[Filters]:
    start = END - timedelta(days=DAYS)
    return [
        Filters(start=start, end=END),
        Filters(start=END - timedelta(days=10, hours=5), end=END - timedelta(days=2)),
        Filters(
            start=start,
            end=END,
            providers=tuple(options["providers"][:2]),
            tags=tuple(options["tags"][:2]),
        ),
        Filters(
            start=start,
            end=END,
            teams=tuple(options["teams"][:2]),
            source_types=("chat", "workflow"),
            statuses=("completed", "failed"),
        ),
        Filters(start=start, end=END, users=tuple(options["users"][:3])),
    ]


def test_demo_data_is_rich_enough(engines):
    _, _, options = engines
    for key in ("providers", "models", "users", "teams", "tags", "source_types", "statuses"):
        assert len(options[key]) >= 2, key


@pytest.mark.parametrize("by", sorted(DIMENSIONS))
def test_usage_by_every_dimension(engines, by):
    duck, pg, options = engines
    for filters in variants(options)[:3]:
        assert_same(
            q.usage_by(duck, filters, by, exact=True), q.usage_by(pg, filters, by, exact=True)
        )


@pytest.mark.parametrize("grain", GRAINS)
def test_usage_over_time(engines, grain):
    duck, pg, options = engines
    for filters in variants(options):
        for by in (None, "model", "tag", "team"):
            assert_same(
                q.usage_over_time(duck, filters, grain, by, exact=True),
                q.usage_over_time(pg, filters, grain, by, exact=True),
            )
        assert_same(
            q.usage_over_time(duck, filters, grain, "provider", exact=True, counts=False),
            q.usage_over_time(pg, filters, grain, "provider", exact=True, counts=False),
        )


def test_kpis(engines):
    duck, pg, options = engines
    for filters in variants(options):
        assert_same(q.kpis(duck, filters, exact=True), q.kpis(pg, filters, exact=True))
    spend = q.kpis(duck, variants(options)[0], exact=True).set_index("metric")
    assert isinstance(spend.loc["spend", "value"], Decimal)


@pytest.mark.parametrize("metric", ["ttft", "total_time"])
def test_latency_percentiles(engines, metric):
    duck, pg, options = engines
    for filters in variants(options):
        for by, grain in ((None, None), ("model", None), ("provider", "day"), ("tag", "week")):
            assert_same(
                q.latency_percentiles(duck, filters, metric, by, grain),
                q.latency_percentiles(pg, filters, metric, by, grain),
            )


def test_failure_rates(engines):
    duck, pg, options = engines
    for filters in variants(options):
        for by, grain in ((None, None), ("provider", None), ("model", "week"), ("team", "day")):
            assert_same(
                q.failure_rates(duck, filters, by, grain),
                q.failure_rates(pg, filters, by, grain),
            )
