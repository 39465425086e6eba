"""Scores in the mirror and the score rollup (docs/quality.md): the mirror carries scores,
incrementally like tasks (writes, replacements, deletions), and queries.quality.score_rollup
returns the same from DuckDB and from Postgres, equal to the stored scores counted by hand.
Then the Performance page shows them next to cost (AppTest)."""

from __future__ import annotations

import math
import os
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest
from dashboard_support import app_environment, open_page
from psycopg.rows import dict_row

import queries as q
from dashboard import data
from ingest import demo
from ingest.store import database, embedded
from ingest.tracking.tracker import Tracker
from queries import Filters, quality

# Recent, so that the dashboard's default period (the last 30 days) shows every task.
END = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
DAYS = 20
ALL = Filters(start=END - timedelta(days=DAYS + 1), end=END + timedelta(days=1))


@pytest.fixture(scope="module")
def scored(pg_server, template_db, tmp_path_factory):
    """A demo data set with thumbs on a third of its tasks and ratings on a fifth, synced."""
    name = f"ai_runs_quality_{os.getpid()}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        embedded.drop_database(admin, name)
        embedded.create_database(admin, name, template_db)
    url = embedded.with_database(pg_server, name)
    database._migrated.add(url)
    demo.generate(url, tasks=600, seed=5, days=DAYS, end=END)
    with psycopg.connect(url) as conn:
        task_ids = [row[0] for row in conn.execute("SELECT task_id FROM ai_tasks ORDER BY id")]
    pick = random.Random(7)
    with Tracker(url) as tracker:
        for task_id in task_ids[::3]:
            tracker.score("thumbs", pick.random() < 0.7, task_id=task_id, source="human",
                          author=pick.choice(["ana", "ben"]))  # fmt: skip
        for task_id in task_ids[::5]:
            tracker.score("rating", pick.randint(1, 5), task_id=task_id, evaluator="panel")
        tracker.score("tone", "warm", task_id=task_ids[0])  # categorical: not averaged
    path = tmp_path_factory.mktemp("quality") / "mirror.duckdb"
    first = q.sync_mirror(url, path)
    duck = q.open_mirror(path)
    pg = psycopg.connect(url, autocommit=True)
    try:
        yield {"url": url, "path": path, "duck": duck, "pg": pg, "tasks": task_ids, "first": first}
    finally:
        duck.close()
        pg.close()
        with psycopg.connect(pg_server, autocommit=True) as admin:
            embedded.drop_database(admin, name)


def assert_same(duck: pd.DataFrame, pg: pd.DataFrame) -> None:
    assert list(duck.columns) == list(pg.columns)
    assert len(duck) == len(pg) > 0, (duck, pg)
    for column in duck.columns:
        left, right = duck[column].tolist(), pg[column].tolist()
        if pd.api.types.is_float_dtype(duck[column]):
            assert np.allclose(left, right, rtol=1e-9, atol=1e-9, equal_nan=True), column
        else:
            norm = lambda values: [None if pd.isna(v) else v for v in values]  # noqa: E731
            assert norm(left) == norm(right), column


def by_hand(url: str) -> dict[tuple[str, str], tuple[int, float]]:
    """(model, score name) -> (scores, mean), from the stored rows."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT t.model, s.name, s.value FROM ai_scores s JOIN ai_tasks t"
            " ON t.task_id = s.task_id WHERE s.data_type <> 'categorical'"
        ).fetchall()
    groups: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["name"]), []).append(row["value"])
    return {key: (len(v), sum(v) / len(v)) for key, v in groups.items()}


def as_dict(frame: pd.DataFrame) -> dict[tuple[str, str], tuple[int, float]]:
    return {(r.group, r.name): (r.scores, r.mean) for r in frame.itertuples()}


def test_the_full_load_carries_every_score(scored):
    tasks = scored["tasks"]
    expected = len(tasks[::3]) + len(tasks[::5]) + 1
    assert scored["first"].scores == {"upserted": expected, "deleted": 0}
    count = scored["duck"].execute("SELECT count(*) FROM scores").fetchall()[0][0]
    assert count == expected


@pytest.mark.parametrize(("by", "grain"), [(None, None), ("model", None), ("provider", "week"),
                                           ("team", "day"), ("tag", None)])  # fmt: skip
def test_both_engines_agree(scored, by, grain):
    duck, pg = scored["duck"], scored["pg"]
    for filters in (ALL, Filters(start=END - timedelta(days=6), end=END, statuses=("completed",))):
        assert_same(
            quality.score_rollup(duck, filters, by, grain),
            quality.score_rollup(pg, filters, by, grain),
        )


def test_the_rollup_counts_what_is_stored(scored):
    frame = quality.score_rollup(scored["duck"], ALL, by="model")
    got, want = as_dict(frame), by_hand(scored["url"])
    assert got.keys() == want.keys()
    for key, (n, mean) in want.items():
        assert got[key][0] == n and got[key][1] == pytest.approx(mean), key
    whole = quality.score_rollup(scored["duck"], ALL)
    thumbs = whole[whole["name"] == "thumbs"].iloc[0]
    assert thumbs["scores"] == len(scored["tasks"][::3])
    assert 0 < thumbs["mean"] < 1 and thumbs["tasks"] == len(scored["tasks"])
    only = quality.score_rollup(scored["duck"], ALL, names=["rating"])
    assert set(only["name"]) == {"rating"}


def test_by_evaluator_both_engines_agree_with_intervals(scored):
    duck, pg = scored["duck"], scored["pg"]
    for grain in (None, "week"):
        assert_same(
            quality.score_rollup(duck, ALL, "evaluator", grain),
            quality.score_rollup(pg, ALL, "evaluator", grain),
        )
    frame = quality.score_rollup(duck, ALL, by="evaluator")
    groups = {(r.group, r.name): r for r in frame.itertuples()}
    assert set(groups) == {("", "thumbs"), ("panel", "rating")}
    whole = quality.score_rollup(duck, ALL)
    # tasks and cost of an evaluator's row are those of the whole period
    assert set(frame["tasks"]) == set(whole["tasks"]) == {len(scored["tasks"])}
    assert np.allclose(frame["cost"], whole["cost"].iloc[0])


def test_the_intervals_are_wilson_for_booleans_and_t_for_numbers(scored):
    import statistics

    with psycopg.connect(scored["url"]) as conn:
        values = {
            name: [row[0] for row in conn.execute(
                "SELECT value FROM ai_scores WHERE name = %s", (name,))]
            for name in ("thumbs", "rating")
        }  # fmt: skip
    frame = quality.score_rollup(scored["pg"], ALL)
    got = {r.name: r for r in frame.itertuples()}
    ups, n = sum(values["thumbs"]), len(values["thumbs"])
    p, z = ups / n, 1.959963984540054
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert got["thumbs"].data_type == "boolean"
    assert (got["thumbs"].ci_low, got["thumbs"].ci_high) == pytest.approx(
        (centre - half, centre + half), rel=1e-9
    )
    ratings = values["rating"]
    mean, sd, m = statistics.fmean(ratings), statistics.stdev(ratings), len(ratings)
    half = quality.t_quantile_975(m - 1) * sd / math.sqrt(m)
    assert (got["rating"].ci_low, got["rating"].ci_high) == pytest.approx(
        (mean - half, mean + half), rel=1e-9
    )
    assert got["rating"].ci_low < got["rating"].mean < got["rating"].ci_high


def test_interval_edge_cases_and_the_t_quantile():
    assert quality.t_quantile_975(1) == pytest.approx(12.7062047)
    assert quality.t_quantile_975(31) == pytest.approx(2.0395134, abs=1e-6)
    assert quality.t_quantile_975(40) == pytest.approx(2.0210754, abs=1e-6)
    assert quality.t_quantile_975(120) == pytest.approx(1.9799304, abs=1e-6)
    assert quality.t_quantile_975(100_000) == pytest.approx(1.959994, abs=1e-5)
    low, high = quality.wilson_interval(1.0, 5)  # all thumbs up: still an interval below 1
    assert 0.5 < low < 1 and high == 1.0
    assert quality.wilson_interval(0.0, 5)[0] == 0.0
    assert all(math.isnan(v) for v in quality.t_interval(4.0, math.nan, 1))
    assert all(math.isnan(v) for v in quality.wilson_interval(0.5, 0))


def test_changes_reach_the_mirror_incrementally(scored):
    url, tasks = scored["url"], scored["tasks"]
    with Tracker(url) as tracker:
        tracker.score("rating", 5, task_id=tasks[0], evaluator="panel")  # replaces
        tracker.score("rating", 1, task_id=tasks[1], evaluator="panel")  # new
        gone = tracker.scores(task_id=tasks[5])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM ai_scores WHERE id = ANY(%s)", ([s["id"] for s in gone],))
        conn.execute("DELETE FROM ai_tasks WHERE task_id = %s", (tasks[3],))  # its thumbs go
        # What the sync reads: the scores stamped at or above the previous horizon; the 2
        # written here, and every other one again if a transaction elsewhere on the server
        # held the horizon back (docs/design.md).
        previous = (
            scored["duck"]
            .execute("SELECT value FROM mirror_meta WHERE key = 'horizon'")
            .fetchone()[0]
        )
        stamped = conn.execute(
            "SELECT count(*) FROM ai_scores WHERE sync_xid >= %s::text::xid8", (previous,)
        ).fetchone()[0]
    result = q.sync_mirror(url, scored["path"], verify=True)
    assert not result.full and result.verified and result.reason is None
    assert result.scores == {"upserted": stamped, "deleted": len(gone) + 1} and stamped >= 2
    with q.open_mirror(scored["path"]) as duck:
        assert_same(
            quality.score_rollup(duck, ALL, "model"),
            quality.score_rollup(scored["pg"], ALL, "model"),
        )
        assert as_dict(quality.score_rollup(duck, ALL, "model")).keys() == by_hand(url).keys()


def test_the_performance_page_shows_scores_next_to_cost(scored, tmp_path):
    with app_environment(scored["url"], tmp_path):
        at = open_page("performance", perf_tab="Scores", perf_by="model")
        assert not at.exception, at.exception
        tables = [d.value for d in at.dataframe if "score" in d.value.columns]
        assert tables, [d.value.columns.tolist() for d in at.dataframe]
        shown = tables[0]
        assert {"thumbs", "rating"} <= set(shown["score"])
        assert "cost (USD)" in shown.columns and "model" in shown.columns
        # a sync that brings only scores shows them too (the rollup cache follows it)
        with Tracker(scored["url"]) as tracker:
            tracker.score("fresh", 1, task_id=scored["tasks"][2])
        data.sync(force=True)
        at = open_page("performance", perf_tab="Scores", perf_by="model")
        shown = next(d.value for d in at.dataframe if "score" in d.value.columns)
        assert "fresh" in set(shown["score"])
