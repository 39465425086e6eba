"""The incremental sync finds the mirror's copies of changed tasks and runs by time first
(migration 0030, queries/mirror/sql/apply.sql, task_copies_by_time): the copy has the
staged row's created_at or one the deletion log gives, and the mirror stays equal to
Postgres when a task or run moves to another day, when tasks of many days are deleted, and
when the log has rows without a time (logged before the migration)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from builders import make_run, make_task

from ingest.store import embedded
from queries import open_mirror, sync_mirror
from queries.mirror import sync as mirror_sync

START = datetime(2026, 3, 1, tzinfo=UTC)
TASK_COLUMNS = "id, run_id, created_at, cost, total_time"
RUN_COLUMNS = "id, created_at, task_count, total_cost"


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    return tmp_path / "analytics.duckdb"


def spread(conn: psycopg.Connection, days: int = 30, runs_per_day: int = 2) -> list:
    """Runs over `days` days, each with three tasks of its day; the run ids."""
    runs = []
    for day in range(days):
        for n in range(runs_per_day):
            at = START + timedelta(days=day, hours=n)
            run = make_run(conn, created_at=at)
            for k in range(3):
                make_task(conn, run, created_at=at + timedelta(minutes=k), total_time=k)
            runs.append(run)
    return runs


def same_as_postgres(conn: psycopg.Connection, mirror: Path) -> None:
    """Tasks and runs of the mirror equal Postgres' (each row once)."""
    with open_mirror(mirror, read_only=True) as con:
        for table, source, columns in (
            ("tasks", "ai_tasks", TASK_COLUMNS),
            ("runs", "ai_runs", RUN_COLUMNS),
        ):
            ours = con.execute(f"SELECT {columns} FROM {table} ORDER BY id").fetchall()
            theirs = conn.execute(f"SELECT {columns} FROM {source} ORDER BY id").fetchall()
            assert [row[0] for row in ours] == [row["id"] for row in theirs], table
            assert ours == [tuple(row.values()) for row in theirs], table


def synced(url: str, mirror: Path, caplog: pytest.LogCaptureFixture, table: str = "tasks"):
    """One sync, and whether it found the copies of `table` by time (its step log)."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="queries.mirror"):
        result = sync_mirror(url, mirror)
    return result, f"remove {table} by time" in caplog.text


def test_a_task_moved_to_another_day_leaves_no_copy_behind(conn, db_url, mirror, caplog):
    runs = spread(conn)
    assert sync_mirror(db_url, mirror).full  # writes the fact that the log has times
    moved = conn.execute(
        "SELECT id FROM ai_tasks WHERE run_id = %s ORDER BY created_at LIMIT 1", (runs[0],)
    ).fetchone()["id"]
    # Later and earlier, and its cost: the new row is staged with its new time only.
    conn.execute(
        "UPDATE ai_tasks SET created_at = created_at + interval '20 days', cost = 9 WHERE id = %s",
        (moved,),
    )
    conn.execute(
        "UPDATE ai_tasks SET created_at = created_at - interval '5 days' WHERE run_id = %s",
        (runs[30],),
    )
    result, by_time = synced(db_url, mirror, caplog)
    assert by_time and not result.full and result.deleted["tasks"] == 0
    same_as_postgres(conn, mirror)
    # Moved twice between syncs: both old times are logged.
    conn.execute("UPDATE ai_tasks SET created_at = '2026-05-01' WHERE id = %s", (moved,))
    conn.execute("UPDATE ai_tasks SET created_at = '2026-05-02' WHERE id = %s", (moved,))
    assert synced(db_url, mirror, caplog)[1]
    same_as_postgres(conn, mirror)


def test_a_run_moved_to_another_day_leaves_no_copy_behind(conn, db_url, mirror, caplog):
    runs = spread(conn, days=10)
    sync_mirror(db_url, mirror)
    conn.execute(
        "UPDATE ai_runs SET created_at = created_at - interval '3 days' WHERE id = %s", (runs[7],)
    )
    assert synced(db_url, mirror, caplog, "runs")[1]
    same_as_postgres(conn, mirror)


def test_deleted_tasks_and_runs_of_many_days_and_new_ones(conn, db_url, mirror, caplog):
    runs = spread(conn)
    sync_mirror(db_url, mirror)
    conn.execute(
        "DELETE FROM ai_tasks WHERE id IN (SELECT id FROM ai_tasks ORDER BY created_at "
        "OFFSET 1 LIMIT 40)"
    )
    conn.execute("DELETE FROM ai_runs WHERE id = ANY(%s)", (runs[40:44],))
    conn.execute("UPDATE ai_tasks SET cost = cost * 2 WHERE total_time = 2")
    for run in runs[50:55]:
        make_task(conn, run)  # created now, in no day of the mirror
    # Deleted and written again with another time: the log gives the old one.
    again = conn.execute(
        "DELETE FROM ai_tasks WHERE id = (SELECT id FROM ai_tasks ORDER BY created_at DESC "
        "LIMIT 1) RETURNING id, run_id, task_id"
    ).fetchone()
    make_task(conn, again["run_id"], id=again["id"], task_id=again["task_id"],
              created_at=START - timedelta(days=40))  # fmt: skip
    result, by_time = synced(db_url, mirror, caplog)
    assert by_time
    assert result.deleted == {"tasks": 40 + 4 * 3, "runs": 4, "users": 0}
    same_as_postgres(conn, mirror)


def test_logged_rows_without_a_time_compare_ids_everywhere(conn, db_url, mirror, caplog):
    """A row logged before migration 0030 has no created_at: the copies are found by id."""
    spread(conn, days=5)
    sync_mirror(db_url, mirror)
    conn.execute("DELETE FROM ai_tasks WHERE total_time = 1")
    conn.execute("UPDATE ai_sync_deletions SET created_at = NULL")  # as if logged before
    result, by_time = synced(db_url, mirror, caplog)
    assert not by_time and result.deleted["tasks"] == 10
    same_as_postgres(conn, mirror)
    # On a shared server another database's open transaction can hold the horizon back, and
    # the next sync then reads those log rows again: give them a time, which finds nothing
    # (their copies are gone), so that only the rows logged from now on are at stake.
    conn.execute("UPDATE ai_sync_deletions SET created_at = %s WHERE created_at IS NULL", (START,))
    conn.execute("DELETE FROM ai_tasks WHERE total_time = 2")
    assert synced(db_url, mirror, caplog)[1]  # logged with times again
    same_as_postgres(conn, mirror)


def test_first_sync_after_the_migration_compares_ids_everywhere(conn, db_url, mirror, caplog):
    """A mirror last synced before migration 0030 (no `logged_times` fact) may hold a task
    that moved unlogged: its next sync finds the copies by id, then by time."""
    spread(conn, days=5)
    sync_mirror(db_url, mirror)
    with open_mirror(mirror) as con:
        con.execute("DELETE FROM mirror_meta WHERE key = 'logged_times'")
    conn.execute(
        "UPDATE ai_tasks SET created_at = created_at + interval '9 days' WHERE total_time = 0"
    )
    conn.execute("DELETE FROM ai_sync_deletions")  # as if moved before the migration
    assert not synced(db_url, mirror, caplog)[1]
    same_as_postgres(conn, mirror)
    conn.execute("UPDATE ai_tasks SET created_at = created_at + interval '1 day'")
    assert synced(db_url, mirror, caplog)[1]
    same_as_postgres(conn, mirror)


def test_a_staged_task_takes_its_users_team_staged_or_mirrored(conn, db_url, mirror):
    """The task extract leaves the team out: the mirror takes the staged user's, else the
    mirrored user's; a user deleted in the same sync leaves its tasks without a team."""
    for user, team in (("ann", "red"), ("bob", "blue"), ("cy", "green")):
        conn.execute("INSERT INTO ai_users (id, team) VALUES (%s, %s)", (user, team))
    run = make_run(conn)
    for user in ("ann", "bob", "cy", "nobody"):
        make_task(conn, run, user_id=user)
    sync_mirror(db_url, mirror)
    conn.execute("UPDATE ai_users SET team = 'violet' WHERE id = 'ann'")
    conn.execute("DELETE FROM ai_users WHERE id = 'cy'")
    conn.execute("INSERT INTO ai_users (id, team) VALUES ('dee', 'teal')")
    for user in ("ann", "bob", "cy", "dee", "nobody"):
        make_task(conn, run, user_id=user)
    sync_mirror(db_url, mirror)
    expected = conn.execute(
        "SELECT t.id, u.team FROM ai_tasks t LEFT JOIN ai_users u ON u.id = t.user_id ORDER BY 1"
    ).fetchall()
    want = {row["id"]: row["team"] for row in expected}
    with open_mirror(mirror, read_only=True) as con:
        assert dict(con.execute("SELECT id, team FROM tasks").fetchall()) == want
        rare = dict(con.execute("SELECT id, team FROM rare_tasks").fetchall())
        assert rare == {task: want[task] for task in rare}
        teams = {value for (value,) in con.execute(
            "SELECT value FROM dim_values WHERE dimension = 'team'").fetchall()}  # fmt: skip
    assert {"violet", "blue", "teal"} <= teams


def test_changes_are_read_over_one_connection_when_a_second_is_refused(
    conn, db_url, mirror, monkeypatch, caplog
):
    """The changed runs are read over a second connection in the sync's snapshot; when it
    cannot be opened, the sync reads everything over its own and says so."""
    runs = spread(conn, days=3)
    sync_mirror(db_url, mirror)
    conn.execute("UPDATE ai_tasks SET cost = 2 WHERE run_id = %s", (runs[1],))
    connect = mirror_sync.connect_source
    calls = []

    def second_refused(url):
        calls.append(url)
        if len(calls) > 1:  # a database that is not there: the connection fails
            return connect(embedded.with_database(url, "no_such_database"))
        return connect(url)

    monkeypatch.setattr(mirror_sync, "connect_source", second_refused)
    with caplog.at_level(logging.WARNING, logger="queries.mirror"):
        result = sync_mirror(db_url, mirror)
    assert not result.full and result.upserted["runs"] >= 1 and len(calls) == 2
    assert "over one connection" in caplog.text
    same_as_postgres(conn, mirror)
