"""An incremental sync of changes scattered over many days (queries/mirror/sync.py,
apply_changes) leaves the mirror equal to a full build of the same database: tasks
inserted, updated, deleted and moved to other days, runs changed and deleted, users and
scores changed, in one sync. The changed tasks' old copies are removed while the changed
runs still stream in over a second connection; the test runs with that connection and
without it, and with an error in DuckDB while the runs are still being read."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from builders import make_run, make_task

from queries import open_mirror, sync_mirror
from queries.mirror import sync as mirror_sync

START = datetime(2026, 3, 1, tzinfo=UTC)
# Mirror tables and the columns to compare: the integer keys (run_key, user_key) are given
# in another order by a build than by syncs, so each is compared as the id it names.
COMPARED = {
    "tasks": "* EXCLUDE (run_key, user_key), "
    "(SELECT id FROM run_keys k WHERE k.key = run_key) AS keyed_run, "
    "(SELECT id FROM user_keys k WHERE k.key = user_key) AS keyed_user",
    "runs": "*",
    "users": "*",
    "scores": "*",
    "task_scores": "* EXCLUDE (run_key), (SELECT id FROM run_keys k WHERE k.key = run_key)",
}


def scattered(conn: psycopg.Connection, days: int = 40) -> list:
    """Users of two teams, runs over `days` days with three tasks each, and a score on
    some tasks; the run ids."""
    for n in range(4):
        conn.execute(
            "INSERT INTO ai_users (id, display_name, team) VALUES (%s, %s, %s)",
            (f"user-{n}", f"User {n}", f"team-{n % 2}"),
        )
    runs = []
    for day in range(days):
        at = START + timedelta(days=day, hours=day % 5)
        user = f"user-{day % 4}"
        run = make_run(conn, created_at=at, user_id=user, tags=[f"tag-{day % 3}"])
        for k in range(3):
            make_task(conn, run, created_at=at + timedelta(minutes=k), user_id=user, total_time=k)
        runs.append(run)
    conn.execute(
        "INSERT INTO ai_scores (run_id, task_id, name, data_type, value, source)"
        " SELECT run_id, task_id, 'quality', 'numeric', 0.5, 'api' FROM ai_tasks"
        " WHERE total_time = 1"
    )
    return runs


def change_everywhere(conn: psycopg.Connection, runs: list, seed: int) -> None:
    """Inserts, updates, deletes and moves of tasks at random over the days, and changes of
    runs, a user and scores, as separate transactions."""
    rng = random.Random(seed)
    ids = [row["id"] for row in conn.execute("SELECT id FROM ai_tasks ORDER BY id").fetchall()]
    picked = rng.sample(ids, len(ids) // 3)
    third = len(picked) // 3
    conn.execute(
        "UPDATE ai_tasks SET cost = 7, total_time = total_time + 10 WHERE id = ANY(%s)",
        (picked[:third],),
    )
    conn.execute("DELETE FROM ai_tasks WHERE id = ANY(%s)", (picked[third : 2 * third],))
    conn.execute(
        "UPDATE ai_tasks SET created_at = created_at + interval '9 days' WHERE id = ANY(%s)",
        (picked[2 * third :],),
    )
    for run in rng.sample(runs, 5):
        make_task(conn, run, created_at=START + timedelta(days=rng.randrange(40)), total_time=5)
    conn.execute("UPDATE ai_runs SET tags = ARRAY['retagged'] WHERE id = %s", (runs[3],))
    conn.execute("UPDATE ai_runs SET source_type = 'workflow' WHERE id = %s", (runs[17],))
    conn.execute("DELETE FROM ai_runs WHERE id = %s", (runs[25],))
    conn.execute("UPDATE ai_users SET team = 'team-9' WHERE id = 'user-1'")
    conn.execute("UPDATE ai_scores SET value = 0.9 WHERE id IN (SELECT min(id) FROM ai_scores)")


def mirror_rows(path: Path) -> dict[str, list]:
    """The compared rows of each COMPARED table, sorted."""
    with open_mirror(path, read_only=True) as con:
        return {
            table: sorted(con.execute(f"SELECT {columns} FROM {table}").fetchall(), key=repr)
            for table, columns in COMPARED.items()
        }


def same_as_a_build(db_url: str, synced: Path, tmp_path: Path) -> None:
    built = tmp_path / "built.duckdb"
    assert sync_mirror(db_url, built, full=True).full
    ours, theirs = mirror_rows(synced), mirror_rows(built)
    for table in COMPARED:
        assert ours[table] == theirs[table], table


@pytest.mark.parametrize("connections", [2, 1])
def test_scattered_changes_leave_the_mirror_equal_to_a_build(
    conn, db_url, tmp_path, monkeypatch, connections
):
    monkeypatch.setattr(mirror_sync, "EXTRACT_CONNECTIONS", connections)
    mirror = tmp_path / "analytics.duckdb"
    runs = scattered(conn)
    assert sync_mirror(db_url, mirror).full
    for seed in (1, 2):
        change_everywhere(conn, runs, seed)
        result = sync_mirror(db_url, mirror, verify=True)
        assert not result.full and result.verified, result.reason
        assert result.deleted["tasks"] > 10 and result.upserted["runs"] > 5
        same_as_a_build(db_url, mirror, tmp_path)


def test_an_error_while_the_runs_stream_in_rebuilds(conn, db_url, tmp_path, monkeypatch):
    """DuckDB fails while removing the tasks' old copies (the runs' read over the second
    connection may still be under way): the sync rolls back, waits for that read, closes
    the connection and rebuilds the mirror."""
    mirror = tmp_path / "analytics.duckdb"
    runs = scattered(conn)
    sync_mirror(db_url, mirror)
    change_everywhere(conn, runs, 3)
    removal = mirror_sync._removal

    def failing(sql, queries, by_time):
        if queries["remove"] == "remove_changed_tasks":
            return "SELECT * FROM no_such_table"
        return removal(sql, queries, by_time)

    monkeypatch.setattr(mirror_sync, "_removal", failing)
    result = sync_mirror(db_url, mirror)
    assert result.full and "unreadable" in result.reason
    monkeypatch.setattr(mirror_sync, "_removal", removal)
    same_as_a_build(db_url, mirror, tmp_path)
    assert not sync_mirror(db_url, mirror).full
    count = conn.execute(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
    )
    assert count.fetchone()["n"] == 1  # this test's own connection only
