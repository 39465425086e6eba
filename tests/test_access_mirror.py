"""The mirror respects row-level security (docs/access.md), tested as strictly as RLS.

For a member (with a run shared to them), a manager, an unknown person and an admin:
1. every rollup on the full mirror restricted to `visible_runs` equals the same rollup,
   unrestricted, on a reference mirror of a copy of the database that holds only the
   runs Postgres lets that viewer read (the rest deleted by the owner);
2. the rollups with a Postgres twin equal that twin run as the application role with the
   viewer named, where RLS alone does the restricting.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import pytest
from test_two_engines import assert_same

import ingest
import queries as q
from ingest import demo
from ingest.access import viewer
from ingest.store import database, embedded
from queries import Filters
from queries.usage import daily_cost

END = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 30
START = END - timedelta(days=DAYS)


def _copy(pg_server: str, source: str, name: str) -> str:
    with psycopg.connect(pg_server, autocommit=True) as admin:
        embedded.drop_database(admin, name)
        embedded.create_database(admin, name, source)
    url = embedded.with_database(pg_server, name)
    database._migrated.add(url)
    return url


def _keep_only(url: str, visible: tuple[str, ...]) -> None:
    """As the owner: delete every run outside `visible` (tasks go with them) and the people
    left without a run or task."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM ai_runs WHERE NOT (id = ANY(%s::uuid[]))", (list(visible),))
        conn.execute(
            "DELETE FROM ai_users WHERE id NOT IN (SELECT user_id FROM ai_runs "
            "WHERE user_id IS NOT NULL UNION SELECT user_id FROM ai_tasks "
            "WHERE user_id IS NOT NULL)"
        )


@pytest.fixture(scope="module")
def world(pg_server, template_db, tmp_path_factory):
    """The full mirror, the database URL, and per viewer (visible_runs, reference mirror)."""
    tag = f"{os.getpid()}"
    base = f"ai_runs_access_{tag}"
    url = _copy(pg_server, template_db, base)
    demo.generate(url, tasks=3000, seed=7, days=DAYS, end=END)
    with psycopg.connect(url) as conn:
        people = dict(conn.execute("SELECT role, min(id) FROM ai_users GROUP BY role").fetchall())
        other = conn.execute(
            "SELECT r.id FROM ai_runs r JOIN ai_users u ON u.id = r.user_id "
            "WHERE u.role = 'member' AND r.user_id <> %s ORDER BY r.task_count DESC LIMIT 1",
            (people["member"],),
        ).fetchone()[0]
    with ingest.Tracker(url) as owner:
        owner.share_run(other, people["member"], "view")
    viewers = {"member": people["member"], "manager": people["manager"],
               "admin": people["admin"], "stranger": "nobody@example.com"}  # fmt: skip
    folder = tmp_path_factory.mktemp("access_mirror")
    q.sync_mirror(url, folder / "full.duckdb")
    full = q.open_mirror(folder / "full.duckdb")
    refs, copies = {}, []
    for role, who in viewers.items():
        visible = viewer.visible_runs(url, who)
        if visible is None:
            refs[role] = (who, None, full)
            continue
        copy = _copy(pg_server, base, f"ai_runs_access_{role}_{tag}")
        copies.append(copy)
        _keep_only(copy, visible)
        q.sync_mirror(copy, folder / f"{role}.duckdb")
        refs[role] = (who, visible, q.open_mirror(folder / f"{role}.duckdb"))
    try:
        yield url, full, refs, other
    finally:
        for _, _, con in refs.values():
            if con is not full:
                con.close()
        full.close()
        with psycopg.connect(pg_server, autocommit=True) as admin:
            for name in [base] + [f"ai_runs_access_{r}_{tag}" for r in viewers]:
                embedded.drop_database(admin, name)


def test_the_viewers_see_what_rls_gives_them(world):
    url, full, refs, shared = world
    member, visible, _ = refs["member"]
    assert str(shared) in visible
    with psycopg.connect(url) as conn:
        own = conn.execute("SELECT count(*) FROM ai_runs WHERE user_id = %s", (member,))
        assert len(visible) == own.fetchone()[0] + 1
        total = conn.execute("SELECT count(*) FROM ai_runs").fetchone()[0]
    assert 0 < len(visible) < len(refs["manager"][1]) < total
    assert refs["stranger"][1] == ()
    assert refs["admin"][1] is None
    tasks = {
        role: q.kpis(full, Filters(start=START, end=END, visible_runs=visible))
        .set_index("metric")
        .loc["tasks", "value"]
        for role, (_, visible, _) in refs.items()
    }
    assert tasks["stranger"] == 0 < tasks["member"] < tasks["manager"] < tasks["admin"]


ROLLUPS = {
    "kpis": lambda con, f: q.kpis(con, f, exact=True),
    "usage_day_model": lambda con, f: q.usage_over_time(con, f, "day", "model", exact=True),
    "usage_week_tag": lambda con, f: q.usage_over_time(con, f, "week", "tag", exact=True),
    "usage_month": lambda con, f: q.usage_over_time(con, f, "month", None, exact=True),
    "usage_by_user": lambda con, f: q.usage_by(con, f, "user", exact=True),
    "usage_by_team": lambda con, f: q.usage_by(con, f, "team", exact=True),
    "daily_cost": lambda con, f: daily_cost(con, f),
    "latency": lambda con, f: q.latency_percentiles(con, f, "ttft", "model", "week"),
    "histogram": lambda con, f: q.latency_histogram(con, f, "total_time", 20),
    "tokens_per_second": lambda con, f: q.tokens_per_second(con, f),
    "failures": lambda con, f: q.failure_rates(con, f, "provider", "day"),
    "errors": lambda con, f: q.error_groups(con, f),
    "slowest": lambda con, f: q.slowest_tasks(con, f, limit=25),
    "expensive_tasks": lambda con, f: q.most_expensive_tasks(con, f, limit=25),
    "expensive_runs": lambda con, f: q.most_expensive_runs(con, f, limit=25),
    "cost_per_run": lambda con, f: q.cost_per_run(con, f),
    "what_if": lambda con, f: q.what_if_cost(con, f, "openai", "gpt-4o-mini"),
}


def _same(left, right) -> None:
    if isinstance(left, dict):
        assert left == right
        return
    assert list(left.columns) == list(right.columns)
    assert len(left) == len(right), (left, right)
    if len(left):
        assert_same(left, right)


@pytest.mark.parametrize("role", ["member", "manager", "stranger"])
@pytest.mark.parametrize("name", sorted(ROLLUPS))
def test_every_rollup_on_the_mirror_shows_exactly_the_visible_runs(world, role, name):
    _, full, refs, _ = world
    _, visible, reference = refs[role]
    for filters in (Filters(start=START, end=END), Filters(start=END - timedelta(days=9), end=END)):
        restricted = Filters(start=filters.start, end=filters.end, visible_runs=visible)
        _same(ROLLUPS[name](full, restricted), ROLLUPS[name](reference, filters))


@pytest.mark.parametrize("role", ["member", "manager", "stranger", "admin"])
def test_sidebar_choices_and_forecast_are_restricted_too(world, role):
    _, full, refs, _ = world
    _, visible, reference = refs[role]
    assert q.filter_options(full, visible) == q.filter_options(reference)
    today = (END - timedelta(days=3)).date()
    restricted = Filters(start=START, end=END, visible_runs=visible)
    mine = q.spend_forecast(full, restricted, today=today)
    theirs = q.spend_forecast(reference, Filters(start=START, end=END), today=today)
    assert mine.keys() == theirs.keys()
    for key, value in mine.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, theirs[key])
        else:
            assert value == theirs[key], key


TWINS = ("kpis", "usage_day_model", "usage_week_tag", "usage_by_user", "latency", "failures")


@pytest.mark.parametrize("role", ["member", "manager", "admin"])
def test_rollups_equal_their_postgres_twin_under_rls(world, role):
    url, full, refs, _ = world
    who, visible, _ = refs[role]
    filters = Filters(start=START, end=END)
    restricted = Filters(start=START, end=END, visible_runs=visible)
    for name in TWINS:
        with viewer.connect_as(url, who) as pg:
            _same(ROLLUPS[name](full, restricted), ROLLUPS[name](pg, filters))
