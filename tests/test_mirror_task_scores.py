"""The mirror's task_scores table (docs/quality.md, "Score rollups at scale"): each numeric or
boolean score of a task with its task's columns and first-score flags, so the score rollup
reads no join and no distinct count. It must stay equal to the join it stands for through
every kind of change an incremental sync applies, and the score rollup read from it must
equal Postgres's, where several scores share a task and a name (the flags then matter)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from test_quality_rollups import assert_same

import queries as q
from ingest import demo
from ingest.store import database, embedded, sqlfiles
from ingest.tracking.tracker import Tracker
from queries import Filters, quality
from queries.mirror import sync as mirror_sync

END = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
DAYS = 10
ALL = Filters(start=END - timedelta(days=DAYS + 1), end=END + timedelta(days=1))
GROUPINGS = [(None, None), ("model", "day"), ("tag", None), ("team", "week"),
             ("evaluator", None), ("variant", None)]  # fmt: skip


@pytest.fixture(scope="module")
def mirrored(pg_server, template_db, tmp_path_factory):
    """A small demo where many tasks carry two or three scores of one name (two authors'
    thumbs, a judge run at two versions), synced to a mirror."""
    name = f"ai_runs_task_scores_{os.getpid()}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        embedded.drop_database(admin, name)
        embedded.create_database(admin, name, template_db)
    url = embedded.with_database(pg_server, name)
    database._migrated.add(url)
    demo.generate(url, tasks=300, seed=11, days=DAYS, end=END)
    with psycopg.connect(url) as conn:
        tasks = [row[0] for row in conn.execute("SELECT task_id FROM ai_tasks ORDER BY id")]
    with Tracker(url) as tracker:
        for i, task_id in enumerate(tasks[::2]):
            tracker.score("thumbs", i % 3 != 0, task_id=task_id, source="human", author="ana")
            if i % 2:
                tracker.score("thumbs", i % 5 != 0, task_id=task_id, source="human",
                              author="ben")  # fmt: skip
        for i, task_id in enumerate(tasks[::3]):
            for version in ("v1", "v2")[: 1 + i % 2]:
                tracker.score("helpfulness", 1 + (i + len(version)) % 5, task_id=task_id,
                              evaluator="judge", evaluator_version=version)  # fmt: skip
            tracker.score("helpfulness", 3, task_id=task_id, evaluator="panel")
        tracker.score("tone", "warm", task_id=tasks[0])  # categorical: not in task_scores
    path = tmp_path_factory.mktemp("task_scores") / "mirror.duckdb"
    q.sync_mirror(url, path)
    pg = psycopg.connect(url, autocommit=True)
    try:
        yield {"url": url, "path": path, "pg": pg, "tasks": tasks}
    finally:
        pg.close()
        with psycopg.connect(pg_server, autocommit=True) as admin:
            embedded.drop_database(admin, name)


def out_of_step(path) -> bool:
    """Whether task_scores differs from the join of tasks and scores (check.sql)."""
    with q.open_mirror(path) as duck:
        text = sqlfiles.render(mirror_sync.duck_sql(), "verify_task_scores").sql
        have, want, same = duck.execute(text).fetchall()[0]
        return have != want or not same


def assert_rollups_equal(mirrored) -> None:
    with q.open_mirror(mirrored["path"]) as duck:
        for by, grain in GROUPINGS:
            assert_same(
                quality.score_rollup(duck, ALL, by, grain),
                quality.score_rollup(mirrored["pg"], ALL, by, grain),
            )


def sync_and_check(mirrored) -> mirror_sync.SyncResult:
    result = q.sync_mirror(mirrored["url"], mirrored["path"], verify=True)
    assert not result.full and result.verified and result.reason is None, result.reason
    assert not out_of_step(mirrored["path"])
    assert_rollups_equal(mirrored)
    return result


def test_the_full_load_writes_one_row_per_numeric_or_boolean_task_score(mirrored):
    with psycopg.connect(mirrored["url"]) as conn:
        want = conn.execute(
            "SELECT count(*), count(DISTINCT (task_id, name, data_type)),"
            "       count(DISTINCT (task_id, name, data_type, evaluator))"
            "  FROM ai_scores WHERE data_type IN ('numeric', 'boolean')"
            "   AND task_id IN (SELECT task_id FROM ai_tasks)"
        ).fetchone()
    with q.open_mirror(mirrored["path"]) as duck:
        got = duck.execute(
            "SELECT count(*), count(*) FILTER (WHERE first_in_name),"
            "       count(*) FILTER (WHERE first_in_evaluator) FROM task_scores"
        ).fetchone()
    assert got == want
    assert want[0] > want[1] > 0  # several scores share a task and a name
    assert not out_of_step(mirrored["path"])
    assert_rollups_equal(mirrored)


def test_scored_tasks_count_each_task_once_per_name(mirrored):
    with q.open_mirror(mirrored["path"]) as duck:
        whole = quality.score_rollup(duck, ALL)
    thumbs = whole[whole["name"] == "thumbs"].iloc[0]
    assert thumbs["scored_tasks"] == len(mirrored["tasks"][::2])
    assert thumbs["scores"] > thumbs["scored_tasks"]


def test_a_second_score_then_deleting_the_first_moves_the_flag(mirrored):
    task = mirrored["tasks"][1]  # odd: no score yet
    with Tracker(mirrored["url"]) as tracker:
        tracker.score("thumbs", True, task_id=task, source="human", author="ana")
        tracker.score("thumbs", False, task_id=task, source="human", author="ben")
    sync_and_check(mirrored)
    with mirrored["pg"].cursor() as cur:
        cur.execute(
            "DELETE FROM ai_scores WHERE id = (SELECT min(id) FROM ai_scores"
            " WHERE task_id = %s AND name = 'thumbs')",
            (task,),
        )
    sync_and_check(mirrored)
    with q.open_mirror(mirrored["path"]) as duck:
        rows = duck.execute(
            "SELECT first_in_name, value FROM task_scores WHERE task_id = ? AND name = 'thumbs'",
            [task],
        ).fetchall()
    assert rows == [(True, 0.0)]


def test_a_score_alone_on_an_unchanged_task_reads_the_task_from_the_mirror(mirrored):
    task = mirrored["tasks"][7]  # never scored, and its row is not written again below
    with mirrored["pg"].cursor() as cur:
        run = cur.execute("SELECT run_id FROM ai_tasks WHERE task_id = %s", (task,)).fetchone()[0]
        cur.execute(
            "INSERT INTO ai_scores (run_id, task_id, name, data_type, value, source)"
            " VALUES (%s, %s, 'latency_ok', 'boolean', 1, 'rule')",
            (run, task),
        )
    result = sync_and_check(mirrored)
    assert result.upserted["tasks"] == 0 and result.scores["upserted"] >= 1
    with q.open_mirror(mirrored["path"]) as duck:
        rows = duck.execute(
            "SELECT name, first_in_name, model IS NOT NULL FROM task_scores WHERE task_id = ?",
            [task],
        ).fetchall()
    assert rows == [("latency_ok", True, True)]


def test_a_task_changed_or_deleted_takes_its_scores_along(mirrored):
    scored_task, other = mirrored["tasks"][0], mirrored["tasks"][6]
    with mirrored["pg"].cursor() as cur:
        cur.execute("UPDATE ai_tasks SET model = 'gpt-renamed' WHERE task_id = %s", (scored_task,))
        cur.execute("DELETE FROM ai_tasks WHERE task_id = %s", (other,))
    sync_and_check(mirrored)
    with q.open_mirror(mirrored["path"]) as duck:
        models = duck.execute(
            "SELECT DISTINCT model FROM task_scores WHERE task_id = ?", [scored_task]
        ).fetchall()
        left = duck.execute("SELECT count(*) FROM task_scores WHERE task_id = ?", [other])
        assert left.fetchall()[0][0] == 0
    assert models == [("gpt-renamed",)]


def test_team_and_tag_changes_reach_task_scores(mirrored):
    with mirrored["pg"].cursor() as cur:
        user, run = cur.execute(
            "SELECT t.user_id, t.run_id FROM ai_tasks t JOIN ai_scores s ON s.task_id = t.task_id"
            " ORDER BY t.id LIMIT 1"
        ).fetchone()
        cur.execute("UPDATE ai_users SET team = 'moved-team' WHERE id = %s", (user,))
        cur.execute("UPDATE ai_runs SET tags = ARRAY['retagged'] WHERE id = %s", (run,))
    sync_and_check(mirrored)
    with q.open_mirror(mirrored["path"]) as duck:
        teams = duck.execute(
            "SELECT DISTINCT team FROM task_scores WHERE user_id = ?", [user]
        ).fetchall()
        tags = duck.execute(
            "SELECT DISTINCT tags FROM task_scores WHERE run_id = ?", [run]
        ).fetchall()
    assert teams == [("moved-team",)] and tags == [(["retagged"],)]


def test_a_deleted_run_takes_its_task_scores(mirrored):
    with mirrored["pg"].cursor() as cur:
        run = cur.execute(
            "SELECT t.run_id FROM ai_tasks t JOIN ai_scores s ON s.task_id = t.task_id"
            " ORDER BY t.id DESC LIMIT 1"
        ).fetchone()[0]
        cur.execute("DELETE FROM ai_runs WHERE id = %s", (run,))
    sync_and_check(mirrored)
    with q.open_mirror(mirrored["path"]) as duck:
        left = duck.execute("SELECT count(*) FROM task_scores WHERE run_id = ?", [run])
        assert left.fetchall()[0][0] == 0


def test_the_self_check_rebuilds_a_task_scores_out_of_step(mirrored):
    with q.open_mirror(mirrored["path"]) as duck:
        duck.execute(
            "UPDATE task_scores SET first_in_name = NOT first_in_name"
            " WHERE score_id = (SELECT min(score_id) FROM task_scores)"
        )
    assert out_of_step(mirrored["path"])
    result = q.sync_mirror(mirrored["url"], mirrored["path"], verify=True)
    assert result.full and "task_scores is out of step" in result.reason
    assert "contents differ" in result.reason
    assert not out_of_step(mirrored["path"])
    assert_rollups_equal(mirrored)
