"""Scores in the lake (docs/lake.md, docs/quality.md): the mirror's scores exported as the
Delta table `scores`, incrementally like tasks (a replaced or removed score rewrites only
its month, other tables untouched), read back by deltalake alone equal to the mirror, and
the score rollup on the lake equal to the mirror's, intervals included."""

from __future__ import annotations

import random
from datetime import timedelta

import psycopg
import pytest
from deltalake import DeltaTable
from lake_support import END, demo_mirror
from test_lake_rollups import assert_same

import queries as q
from ingest.tracking.tracker import Tracker
from queries import Filters, quality, sqltext
from queries.lake import rollups as lake
from queries.lake.export import export_lake
from queries.lake.store import open_store

WINDOW = Filters(start=END - timedelta(days=30), end=END)


def mirror_scores(mirror) -> tuple[list[str], list[tuple]]:
    projection = sqltext.render("lake", "lake_scores").sql
    relation = mirror.sql(f"SELECT * FROM ({projection}) ORDER BY id")
    return list(relation.columns), relation.fetchall()


def lake_scores(folder: str, columns: list[str]) -> list[tuple]:
    rows = DeltaTable(f"{folder}/scores").to_pyarrow_table().to_pylist()
    return [tuple(row[c] for c in columns) for row in sorted(rows, key=lambda r: r["id"])]


def rollups_agree(mirror, store) -> None:
    engine = lake.LakeDuckDB(store)
    for by in (None, "model", "team", "provider", "evaluator"):
        for grain in (None, "day", "week"):
            assert_same(
                quality.score_rollup(mirror, WINDOW, by, grain),
                lake.score_rollup(engine, WINDOW, by, grain),
            )


@pytest.fixture
def scored(db_url, tmp_path):
    """Demo data with thumbs (two people), ratings (two evaluators) and a category."""
    mirror = demo_mirror(db_url, tmp_path, tasks=900, days=60)
    with psycopg.connect(db_url) as conn:
        tasks = [r[0] for r in conn.execute("SELECT task_id FROM ai_tasks ORDER BY id")]
    pick = random.Random(3)
    with Tracker(db_url) as tracker:
        for task_id in tasks[::4]:
            tracker.score("thumbs", pick.random() < 0.6, task_id=task_id, source="human",
                          author=pick.choice(["ana", "ben"]))  # fmt: skip
        for task_id in tasks[::3]:
            tracker.score("rating", pick.randint(1, 5), task_id=task_id,
                          evaluator=pick.choice(["panel", "judge"]), source="model")  # fmt: skip
        tracker.score("tone", "warm", task_id=tasks[0])
    q.sync_mirror(db_url, con=mirror)
    yield db_url, mirror, tasks
    mirror.close()


def test_scores_reach_the_lake_incrementally_and_roll_up_as_on_the_mirror(scored, tmp_path):
    url, mirror, tasks = scored
    folder = str(tmp_path / "lake")
    store = open_store(folder)
    first = export_lake(mirror, store)
    assert first.versions["scores"] == 0 and first.written["scores"] >= 1
    columns, expected = mirror_scores(mirror)
    assert len(expected) == len(tasks[::4]) + len(tasks[::3]) + 1
    assert lake_scores(folder, columns) == expected
    rollups_agree(mirror, store)

    with Tracker(url) as tracker:
        rating = next(s for s in tracker.scores(task_id=tasks[0]) if s["name"] == "rating")
        tracker.score("rating", 5 if rating["value"] != 5 else 1, task_id=tasks[0],
                      evaluator=rating["evaluator"], source="model")  # fmt: skip
        thumbs = tracker.scores(task_id=tasks[4])
        tracker.delete_score(thumbs[0]["id"])
    q.sync_mirror(url, con=mirror)
    changed = export_lake(mirror, store)
    assert changed.versions["scores"] == 1  # one transaction, of the scores' month only
    assert changed.written["scores"] == 1 and changed.written["tasks"] == 0
    assert lake_scores(folder, columns) == mirror_scores(mirror)[1]
    assert len(mirror_scores(mirror)[1]) == len(expected) - 1
    rollups_agree(mirror, store)
    again = export_lake(mirror, store)  # nothing changed: no commit
    assert again.written["scores"] == 0 and again.versions["scores"] == 1


def test_the_lake_score_rollup_runs_on_duckdb_only(scored, tmp_path):
    _url, mirror, _tasks = scored
    store = open_store(str(tmp_path / "lake"))
    export_lake(mirror, store)
    with pytest.raises(ValueError, match="LakeDuckDB"):
        lake.score_rollup(lake.LakeArrow(store), WINDOW, None, None)
