"""Every derived column is kept exact by the database (docs/design.md, Exactness)."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import psycopg
import pytest
from builders import make_run, make_task, run_row, task_row

from ingest.store import database


def mismatches(url: str) -> list[dict]:
    return database.run_totals_mismatches(url)


def test_insert_adds_to_run_totals(conn, db_url):
    run = make_run(conn)
    make_task(conn, run, tokens_input=10, tokens_output=5, cost=Decimal("0.5"))
    make_task(conn, run, tokens_input=1, tokens_output=2, cost=None)
    row = run_row(conn, run)
    assert (row["task_count"], row["total_tokens"], row["total_cost"]) == (2, 18, Decimal("0.5"))
    assert mismatches(db_url) == []


def test_tokens_total_defaults_to_input_plus_output_but_keeps_given_value(conn):
    run = make_run(conn)
    a = make_task(conn, run, tokens_input=7, tokens_output=3)
    b = make_task(conn, run, tokens_input=7, tokens_output=3, tokens_total=25)
    assert task_row(conn, a)["tokens_total"] == 10
    assert task_row(conn, b)["tokens_total"] == 25


def test_update_of_tokens_and_cost_moves_totals(conn, db_url):
    run = make_run(conn)
    task = make_task(conn, run, tokens_total=10, cost=Decimal("1"))
    conn.execute("UPDATE ai_tasks SET tokens_total = 40, cost = 2.25 WHERE task_id = %s", (task,))
    row = run_row(conn, run)
    assert (row["total_tokens"], row["total_cost"]) == (40, Decimal("2.25"))
    conn.execute("UPDATE ai_tasks SET cost = NULL WHERE task_id = %s", (task,))
    assert run_row(conn, run)["total_cost"] == 0
    assert mismatches(db_url) == []


def test_completing_twice_counts_once_and_sets_completed_at(conn, db_url):
    run = make_run(conn)
    task = make_task(conn, run)
    assert task_row(conn, task)["completed_at"] is None
    conn.execute("UPDATE ai_tasks SET status = 'completed' WHERE task_id = %s", (task,))
    first = task_row(conn, task)
    assert first["completed_at"] is not None
    assert run_row(conn, run)["last_message_at"] == first["completed_at"]
    conn.execute("UPDATE ai_tasks SET status = 'completed' WHERE task_id = %s", (task,))
    second = task_row(conn, task)
    assert second["completed_at"] == first["completed_at"]
    assert run_row(conn, run)["task_count"] == 1
    assert mismatches(db_url) == []


def test_task_inserted_completed_keeps_its_completed_at(conn):
    run = make_run(conn)
    task = make_task(conn, run, status="completed", completed_at="2025-01-02T03:04:05Z")
    assert task_row(conn, task)["completed_at"].isoformat().startswith("2025-01-02T03:04:05")
    assert run_row(conn, run)["last_message_at"] == task_row(conn, task)["completed_at"]


def test_last_message_at_only_advances(conn):
    run = make_run(conn)
    late = make_task(conn, run, status="completed", completed_at="2025-06-01T00:00:00Z")
    make_task(conn, run, status="completed", completed_at="2025-01-01T00:00:00Z")
    assert run_row(conn, run)["last_message_at"] == task_row(conn, late)["completed_at"]


def test_moving_a_task_to_another_run(conn, db_url):
    a, b = make_run(conn), make_run(conn)
    task = make_task(conn, a, tokens_total=11, cost=Decimal("0.25"))
    conn.execute("UPDATE ai_tasks SET run_id = %s WHERE task_id = %s", (b, task))
    ra, rb = run_row(conn, a), run_row(conn, b)
    assert (ra["task_count"], ra["total_tokens"], ra["total_cost"]) == (0, 0, 0)
    assert (rb["task_count"], rb["total_tokens"], rb["total_cost"]) == (1, 11, Decimal("0.25"))
    assert mismatches(db_url) == []


def test_delete_subtracts_and_run_delete_cascades(conn, db_url):
    run = make_run(conn)
    keep = make_task(conn, run, tokens_total=5)
    gone = make_task(conn, run, tokens_total=7)
    conn.execute("DELETE FROM ai_tasks WHERE task_id = %s", (gone,))
    assert run_row(conn, run)["total_tokens"] == 5
    conn.execute("DELETE FROM ai_runs WHERE id = %s", (run,))
    assert task_row(conn, keep) is None
    assert mismatches(db_url) == []


def test_multi_row_statements_aggregate_per_run(conn, db_url):
    runs = [make_run(conn) for _ in range(5)]
    conn.execute(
        """INSERT INTO ai_tasks (run_id, task_id, tokens_input, tokens_output, cost)
           SELECT (%s::uuid[])[1 + i %% 5], gen_random_uuid(), i, i, i / 1000.0
             FROM generate_series(1, 500) i""",
        (runs,),
    )
    conn.execute("UPDATE ai_tasks SET cost = cost * 2, status = 'completed'")
    conn.execute("DELETE FROM ai_tasks WHERE tokens_input % 3 = 0")
    assert mismatches(db_url) == []
    total = conn.execute("SELECT sum(task_count) AS n FROM ai_runs").fetchone()["n"]
    assert total == 500 - 166


def test_copy_aggregates_per_statement(conn, db_url):
    run = make_run(conn)
    with conn.cursor().copy("COPY ai_tasks (run_id, task_id, tokens_input, cost) FROM STDIN") as cp:
        for i in range(1000):
            cp.write_row((run, uuid.uuid4(), i, Decimal("0.001")))
    row = run_row(conn, run)
    assert (row["task_count"], row["total_tokens"], row["total_cost"]) == (
        1000,
        sum(range(1000)),
        Decimal("1.000"),
    )
    assert mismatches(db_url) == []


def test_streaming_update_does_not_touch_the_run(conn):
    run = make_run(conn)
    task = make_task(conn, run)
    before = run_row(conn, run)["updated_at"]
    conn.execute(
        "UPDATE ai_tasks SET response_text = 'partial', status = 'streaming' WHERE task_id = %s",
        (task,),
    )
    assert run_row(conn, run)["updated_at"] == before


def test_updated_at_changes_on_every_write(conn):
    run = make_run(conn)
    task = make_task(conn, run)
    before_run, before_task = run_row(conn, run)["updated_at"], task_row(conn, task)["updated_at"]
    time.sleep(0.01)
    conn.execute("UPDATE ai_runs SET name = 'renamed' WHERE id = %s", (run,))
    conn.execute("UPDATE ai_tasks SET response_text = 'x' WHERE task_id = %s", (task,))
    assert run_row(conn, run)["updated_at"] > before_run
    assert task_row(conn, task)["updated_at"] > before_task


def test_message_count_follows_messages(conn):
    run = make_run(conn, messages=[{"role": "user", "content": "hi"}])
    assert run_row(conn, run)["message_count"] == 1
    assert run_row(conn, run)["last_message_at"] is not None
    conn.execute(
        """UPDATE ai_runs SET messages = messages || '[{"role": "assistant", "content": "yo"}]'
           WHERE id = %s""",
        (run,),
    )
    assert run_row(conn, run)["message_count"] == 2


def test_applications_cannot_write_totals(conn, db_url):
    run = make_run(conn, task_count=99, total_tokens=5, total_cost=Decimal("3"))
    assert run_row(conn, run)["task_count"] == 0
    make_task(conn, run, tokens_total=4)
    conn.execute("UPDATE ai_runs SET total_tokens = 1000, task_count = 7 WHERE id = %s", (run,))
    row = run_row(conn, run)
    assert (row["task_count"], row["total_tokens"]) == (1, 4)
    assert mismatches(db_url) == []


def test_finished_task_cannot_go_back_to_streaming(conn):
    run = make_run(conn)
    task = make_task(conn, run, status="completed")
    with pytest.raises(psycopg.errors.CheckViolation, match="cannot go back"):
        conn.execute("UPDATE ai_tasks SET status = 'streaming' WHERE task_id = %s", (task,))
    assert task_row(conn, task)["status"] == "completed"


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("ai_runs", "source_type", "email"),
        ("ai_runs", "status", "gone"),
        ("ai_tasks", "status", "done"),
        ("ai_tasks", "tokens_input", -1),
        ("ai_tasks", "cost", -0.01),
    ],
)
def test_checks_reject_invalid_values(conn, table, column, value):
    run = make_run(conn)
    with pytest.raises(psycopg.errors.CheckViolation):
        if table == "ai_runs":
            make_run(conn, **{column: value})
        else:
            make_task(conn, run, **{column: value})


def test_sync_xid_is_restamped_on_update(conn):
    run = make_run(conn)
    first = conn.execute("SELECT sync_xid::text::bigint AS x FROM ai_runs").fetchone()["x"]
    conn.execute("UPDATE ai_runs SET name = 'n' WHERE id = %s", (run,))
    second = conn.execute("SELECT sync_xid::text::bigint AS x FROM ai_runs").fetchone()["x"]
    assert second > first


def test_deletions_are_logged_for_the_mirror(conn):
    run = make_run(conn)
    make_task(conn, run)
    task_pk = conn.execute("SELECT id FROM ai_tasks").fetchone()["id"]
    conn.execute("DELETE FROM ai_runs WHERE id = %s", (run,))
    logged = conn.execute("SELECT table_name, id FROM ai_sync_deletions ORDER BY 1").fetchall()
    assert logged == [
        {"table_name": "ai_runs", "id": str(run)},
        {"table_name": "ai_tasks", "id": str(task_pk)},
    ]


def test_deletions_and_moves_log_the_created_at_the_mirror_has(conn):
    """Migration 0030: a deleted row is logged with its created_at, a task or run whose
    created_at moves with its old one (the mirror's copy has it); other updates log
    nothing."""
    run = make_run(conn, created_at="2026-03-01T00:00:00Z")
    moved = make_task(conn, run, created_at="2026-03-02T00:00:00Z")
    doomed = make_task(conn, run, created_at="2026-03-03T00:00:00Z")
    ids = {
        task: conn.execute("SELECT id FROM ai_tasks WHERE task_id = %s", (task,)).fetchone()["id"]
        for task in (moved, doomed)
    }
    conn.execute("UPDATE ai_tasks SET cost = 1, created_at = created_at")  # not moved
    conn.execute("UPDATE ai_runs SET name = 'renamed'")
    assert conn.execute("SELECT count(*) AS n FROM ai_sync_deletions").fetchone()["n"] == 0
    conn.execute(
        "UPDATE ai_tasks SET created_at = '2026-04-02T00:00:00Z' WHERE task_id = %s", (moved,)
    )
    conn.execute("UPDATE ai_runs SET created_at = '2026-02-01T00:00:00Z' WHERE id = %s", (run,))
    conn.execute("DELETE FROM ai_tasks WHERE task_id = %s", (doomed,))
    logged = conn.execute(
        "SELECT table_name, id, created_at::text AS created_at FROM ai_sync_deletions "
        "ORDER BY created_at"
    ).fetchall()
    assert logged == [
        {"table_name": "ai_runs", "id": str(run), "created_at": "2026-03-01 00:00:00+00"},
        {"table_name": "ai_tasks", "id": str(ids[moved]), "created_at": "2026-03-02 00:00:00+00"},
        {"table_name": "ai_tasks", "id": str(ids[doomed]), "created_at": "2026-03-03 00:00:00+00"},
    ]


def test_truncate_of_tasks_zeroes_run_totals_and_is_logged(conn, db_url):
    run = make_run(conn)
    make_task(conn, run, tokens_total=9)
    conn.execute("TRUNCATE ai_tasks")
    row = run_row(conn, run)
    assert (row["task_count"], row["total_tokens"], row["total_cost"]) == (0, 0, 0)
    assert mismatches(db_url) == []
    logged = conn.execute("SELECT table_name, id FROM ai_sync_deletions").fetchall()
    assert logged == [{"table_name": "ai_tasks", "id": "*"}]


def test_keep_updated_at_setting_keeps_the_run_timestamp_but_not_the_totals(conn, db_url):
    run = make_run(conn, updated_at="2025-03-01T00:00:00Z")
    stamped = run_row(conn, run)["updated_at"]
    with conn.transaction():
        conn.execute("SELECT set_config('ai_runs.keep_updated_at', 'on', true)")
        make_task(conn, run, tokens_total=8)
    row = run_row(conn, run)
    assert (row["updated_at"], row["task_count"], row["total_tokens"]) == (stamped, 1, 8)
    make_task(conn, run, tokens_total=1)  # the setting was local to that transaction
    assert run_row(conn, run)["updated_at"] > stamped
    assert mismatches(db_url) == []


def test_keep_updated_at_does_not_let_applications_write_totals(conn):
    run = make_run(conn)
    with conn.transaction():
        conn.execute("SELECT set_config('ai_runs.keep_updated_at', 'on', true)")
        conn.execute("UPDATE ai_runs SET task_count = 5, name = 'x' WHERE id = %s", (run,))
    assert run_row(conn, run)["task_count"] == 0


def test_message_count_cannot_be_written_directly(conn):
    with pytest.raises(psycopg.errors.GeneratedAlways):
        make_run(conn, messages=[], message_count=3)
