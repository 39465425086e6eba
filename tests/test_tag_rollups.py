"""Usage by tag is exact on the mirror for the tag lists the demo never makes: runs without
tags, a tag named twice in one list, a NULL tag, the same tags in another order, and the
same list on many runs. DuckDB (per-tag bitmaps of runs and users, or count(DISTINCT) when
over budget) gives Postgres's numbers, with filters, after an incremental sync that moves
a run to other tags and adds tasks to old runs (docs/scale.md, "Usage by tag with exact
distinct counts")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from builders import make_run, make_task
from test_two_engines import assert_same

import queries as q
from queries import GRAINS, Filters, distinct_counts

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
END = START + timedelta(days=21)
LISTS = {
    "xy": ["x", "y"],
    "yx": ["y", "x"],
    "xx": ["x", "x"],
    "x-null": ["x", None],
    "none": [],
    "xy-again": ["x", "y"],
    "z": ["z"],
    "xy-third": ["x", "y"],
}


def at(day: int, hour: int = 9) -> datetime:
    return START + timedelta(days=day, hours=hour)


@pytest.fixture
def tagged(db_url, conn, tmp_path):
    """Runs with the lists above, two to four tasks each over three weeks, synced."""
    conn.execute("INSERT INTO ai_users (id, team) VALUES ('alice', 'red'), ('bob', 'blue')")
    runs = {}
    for n, (name, tags) in enumerate(LISTS.items()):
        user = ("alice", "bob")[n % 2]
        runs[name] = make_run(conn, user_id=user, tags=tags, created_at=at(n % 15, 8))
        for k in range(2 + n % 3):
            make_task(
                conn,
                runs[name],
                user_id=("alice", "bob")[(n + k) % 2],
                model=("gpt-4o", "claude-sonnet-4-5")[k % 2],
                provider=("openai", "anthropic")[k % 2],
                created_at=at(n % 15 + 3 * k, 10 + k),
                cost=None if k == 2 else Decimal("0.001") * (n + 1) * (k + 1),
            )
    path = tmp_path / "mirror.duckdb"
    assert q.sync_mirror(db_url, path).full
    return db_url, path, runs


def filter_cases() -> list[Filters]:
    return [
        Filters(start=START, end=END),
        Filters(start=START, end=END, tags=("x",)),
        Filters(start=START, end=END, tags=("z", "y")),
        Filters(start=START, end=END, models=("gpt-4o",)),
        Filters(start=START, end=END, users=("bob",)),
        Filters(start=at(4, 12), end=at(13)),
    ]


def compare_by_tag(duck, pg) -> None:
    for filters in filter_cases():
        for grain in GRAINS:
            for counts in (True, False):
                assert_same(
                    q.usage_over_time(duck, filters, grain, "tag", exact=True, counts=counts),
                    q.usage_over_time(pg, filters, grain, "tag", exact=True, counts=counts),
                )
        assert_same(
            q.usage_by(duck, filters, "tag", exact=True), q.usage_by(pg, filters, "tag", exact=True)
        )


def test_tag_lists_the_demo_never_makes_agree_with_postgres(tagged, monkeypatch):
    db_url, path, _ = tagged
    with q.open_mirror(path) as duck, psycopg.connect(db_url, autocommit=True) as pg:
        assert distinct_counts.distinct_counts(duck, filter_cases()[0], "week", "tag").bitmaps
        compare_by_tag(duck, pg)
        by_tag = q.usage_by(duck, filter_cases()[0], "tag", exact=True).set_index("group")
        # A run naming x twice counts once among x's runs; its tasks count twice.
        assert by_tag.loc["x", "runs"] == 6
        monkeypatch.setattr(distinct_counts, "BITMAP_BUDGET_BYTES", 0)
        assert not distinct_counts.distinct_counts(duck, filter_cases()[0], "week", "tag").bitmaps
        compare_by_tag(duck, pg)


def test_tag_rollups_stay_exact_after_an_incremental_sync(tagged, conn):
    db_url, path, runs = tagged
    conn.execute("UPDATE ai_runs SET tags = '{z,x}' WHERE id = %s", (runs["yx"],))
    conn.execute("UPDATE ai_runs SET tags = '{}' WHERE id = %s", (runs["xy-again"],))
    for name, day in (("xy", 18), ("xx", 16), ("none", 12)):  # old runs, new weeks
        make_task(conn, runs[name], user_id="bob", created_at=at(day), cost=Decimal("0.5"))
    conn.execute(
        "DELETE FROM ai_tasks WHERE id = (SELECT min(id::text)::uuid FROM ai_tasks "
        "WHERE run_id = %s)",
        (runs["xy-third"],),
    )
    with q.open_mirror(path) as duck, psycopg.connect(db_url, autocommit=True) as pg:
        assert not q.sync_mirror(db_url, con=duck).full
        compare_by_tag(duck, pg)


def test_runs_with_tasks_on_days_without_new_runs_count_once(tagged):
    """Tasks on days when no run was created (every day after the eighth here) and on the
    day their run was created: the KPI row and usage by model count each run once."""
    db_url, path, _ = tagged
    with q.open_mirror(path) as duck, psycopg.connect(db_url, autocommit=True) as pg:
        for filters in filter_cases():
            assert_same(q.kpis(duck, filters, exact=True), q.kpis(pg, filters, exact=True))
            for grain in GRAINS:
                for by in (None, "model"):
                    assert_same(
                        q.usage_over_time(duck, filters, grain, by, exact=True),
                        q.usage_over_time(pg, filters, grain, by, exact=True),
                    )
