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
from ingest import demo
from ingest.store import database, embedded
from ingest.tracking.tracker import Tracker
from queries import DIMENSIONS, GRAINS, Filters

END = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 45


@pytest.fixture(scope="module")
def engines(pg_server, template_db, tmp_path_factory):
    """(duckdb connection, psycopg connection, filter options) over one demo data set."""
    name = f"ai_runs_two_engines_{os.getpid()}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        embedded.drop_database(admin, name)
        embedded.create_database(admin, name, template_db)
    url = embedded.with_database(pg_server, name)
    database._migrated.add(url)
    demo.generate(url, tasks=4000, seed=11, days=DAYS, end=END)
    add_cache_writes_and_unknown_usage(url)
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
            embedded.drop_database(admin, name)


def add_cache_writes_and_unknown_usage(url: str) -> None:
    """Tasks the demo does not make: Anthropic cache writes (5-minute and 1-hour) and a
    response without usage (NULL tokens and cost), so both engines sum them alike."""
    at = END - timedelta(days=3)
    usage = {"input_tokens": 100, "cache_read_input_tokens": 2000,
             "cache_creation_input_tokens": 1000, "output_tokens": 50,
             "cache_creation": {"ephemeral_5m_input_tokens": 400,
                                "ephemeral_1h_input_tokens": 600}}  # fmt: skip
    with Tracker(url) as tracker:
        run = tracker.create_run("chat", name="cache writes", created_at=at)
        for hour, given in enumerate([usage, usage, None]):
            task = tracker.create_task(run["id"], provider="anthropic", model="claude-sonnet-4-5",
                                       created_at=at + timedelta(hours=hour))  # fmt: skip
            tracker.complete_task(task["task_id"], "ok", usage=given, total_time=900)


def test_cache_writes_and_unpriced_tasks_agree(engines):
    duck, pg, _ = engines
    filters = Filters(start=END - timedelta(days=DAYS), end=END)
    both = [q.usage_over_time(con, filters, "day", "provider", exact=True) for con in (duck, pg)]
    assert_same(*both)
    anthropic = both[0][both[0]["group"] == "anthropic"]
    assert anthropic["tokens_cache_write"].sum() >= 2000
    assert both[0]["unpriced"].sum() >= 1


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


def compare_counts(duck, pg, filters: Filters) -> None:
    for grain in GRAINS:
        for by in (None, "model", "tag", "team", "user", "status"):
            assert_same(
                q.usage_over_time(duck, filters, grain, by, exact=True),
                q.usage_over_time(pg, filters, grain, by, exact=True),
            )
    for by in ("provider", "user", "tag"):
        assert_same(
            q.usage_by(duck, filters, by, exact=True), q.usage_by(pg, filters, by, exact=True)
        )
    assert_same(q.kpis(duck, filters, exact=True), q.kpis(pg, filters, exact=True))


def test_distinct_counts_stay_exact_after_incremental_syncs(db_url, conn, tmp_path, monkeypatch):
    """Bitmaps over run_key/user_key and the rare_tasks side table give the same distinct
    runs and users as Postgres after syncs with late runs, moves, deletes and attribute
    changes; so does the count(DISTINCT) fallback."""
    from builders import make_run, make_task

    from queries import distinct_counts

    demo.generate(db_url, tasks=1500, seed=5, days=20, end=END)
    path = tmp_path / "mirror.duckdb"
    assert q.sync_mirror(db_url, path).full
    day = timedelta(days=1)
    old = make_run(conn, created_at=END - 15 * day, tags=["late", "x"], user_id="late-user")
    for back in (15, 9, 2):  # one run with tasks on three days, written after the first sync
        make_task(conn, old, user_id="late-user", created_at=END - back * day + timedelta(hours=1))
    runs = [row["id"] for row in conn.execute("SELECT id FROM ai_runs ORDER BY id LIMIT 40")]
    conn.execute(  # tasks move to a run of another day
        "UPDATE ai_tasks SET run_id = %s "
        "WHERE id IN (SELECT id FROM ai_tasks ORDER BY id LIMIT 30)",
        (runs[0],),
    )
    conn.execute(
        "DELETE FROM ai_tasks WHERE id IN (SELECT id FROM ai_tasks ORDER BY id DESC LIMIT 25)"
    )
    conn.execute("DELETE FROM ai_runs WHERE id = %s", (runs[1],))
    conn.execute("UPDATE ai_runs SET tags = '{moved}' WHERE id = %s", (runs[2],))
    conn.execute(
        "UPDATE ai_users SET team = 'renamed' WHERE id IN (SELECT id FROM ai_users LIMIT 2)"
    )
    first_keys = {}
    with q.open_mirror(path) as duck:
        first_keys = dict(duck.execute("SELECT id, key FROM run_keys").fetchall())
        result = q.sync_mirror(db_url, con=duck)
        assert not result.full
        keys = dict(duck.execute("SELECT id, key FROM run_keys").fetchall())
        assert all(keys[run] == key for run, key in first_keys.items()), "keys are stable"
        assert len(set(keys.values())) == len(keys), "one key per run"
        assert duck.execute("SELECT day, lo, n FROM run_key_days ORDER BY day").fetchall() == (
            duck.execute(
                "SELECT day, min(key), count(*) FROM run_keys GROUP BY day ORDER BY day"
            ).fetchall()
        )
        # Every task carries its run's and user's key; rare_tasks holds exact copies.
        assert duck.execute(
            "SELECT count(*) FROM tasks t LEFT JOIN run_keys k ON k.id = t.run_id "
            "LEFT JOIN user_keys u ON u.id = t.user_id "
            "WHERE t.run_key IS DISTINCT FROM k.key OR t.user_key IS DISTINCT FROM u.key"
        ).fetchall() == [(0,)]
        rare = duck.execute("SELECT * FROM rare_tasks ORDER BY id").fetchall()
        ids = [row[0] for row in rare]
        assert len(ids) >= 3  # the late run's tasks at least
        copies = duck.execute(
            "SELECT * FROM tasks WHERE id IN (SELECT id FROM rare_tasks) ORDER BY id"
        ).fetchall()
        assert copies == rare
        with psycopg.connect(db_url, autocommit=True) as pg:
            filters = Filters(start=END - timedelta(days=21), end=END)
            assert distinct_counts.distinct_counts(duck, filters, "week", "tag").bitmaps
            compare_counts(duck, pg, filters)
            compare_counts(duck, pg, Filters(start=END - 10 * day, end=END - 3 * day))
            monkeypatch.setattr(distinct_counts, "BITMAP_BUDGET_BYTES", 0)
            assert not distinct_counts.distinct_counts(duck, filters, "week", "tag").bitmaps
            compare_counts(duck, pg, filters)
