"""The COPY bulk path: exact values, idempotent, parents checked, triggers exact."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from builders import run_row, task_row

from ingest.store import database
from ingest.transfer import bulk

T0 = datetime(2026, 5, 1, 8, 0, 0, 123456, tzinfo=UTC)


def run_batch(*runs: dict) -> bulk.Batch:
    columns = ("id", "source_type", "name", "tags", "messages", "settings", "created_at",
               "updated_at", "parent_run_id")  # fmt: skip
    return bulk.Batch(
        "ai_runs",
        columns,
        [bulk.encode_row(columns, r) for r in runs],
        [str(r["id"]) for r in runs],
        [str(r["parent_run_id"]) if r.get("parent_run_id") else None for r in runs],
    )


def task_batch(*tasks: dict) -> bulk.Batch:
    columns = ("id", "run_id", "task_id", "model", "request_data", "response_text",
               "tokens_input", "tokens_output", "tokens_total", "cost", "status",
               "created_at", "updated_at", "completed_at")  # fmt: skip
    return bulk.Batch(
        "ai_tasks",
        columns,
        [bulk.encode_row(columns, t) for t in tasks],
        [str(t["task_id"]) for t in tasks],
        [str(t["run_id"]) for t in tasks],
    )


def make_run(**fields) -> dict:
    return {"id": uuid.uuid4(), "source_type": "chat", "name": "r", "tags": [], "messages": [],
            "settings": {}, "created_at": T0, "updated_at": T0 + timedelta(hours=1),
            **fields}  # fmt: skip


def make_task(run: dict, **fields) -> dict:
    return {"id": uuid.uuid4(), "run_id": run["id"], "task_id": uuid.uuid4(), "model": "gpt-4o",
            "request_data": {}, "response_text": "ok", "tokens_input": 10, "tokens_output": 5,
            "tokens_total": 15, "cost": Decimal("0.0000012345"), "status": "completed",
            "created_at": T0, "updated_at": T0 + timedelta(seconds=2),
            "completed_at": T0 + timedelta(seconds=2), **fields}  # fmt: skip


NASTY = "tab\there\nnew line\r\\N back\\slash \"quoted\" {brace,comma} ü 日本 🙂 'single'"


@pytest.mark.parametrize("strategy", ["direct", "staging"])
def test_values_arrive_exactly_and_totals_stay_exact(db_url, conn, strategy):
    run = make_run(
        name=NASTY,
        tags=[NASTY, "a,b", "{x}", "NULL", ""],
        messages=[{"role": "user", "content": NASTY, "timestamp": T0.isoformat()}],
        settings={"nested": {"text": NASTY, "list": [1, 2.5, None, True]}, "t": 0.7},
    )
    tasks = [make_task(run, response_text=NASTY, request_data={"q": NASTY}) for _ in range(3)]
    tasks[1].update(tokens_total=None, cost=None, status="failed", completed_at=None)
    with bulk.BulkWriter(db_url, strategy=strategy) as writer:
        results = writer.write(run_batch(run), task_batch(*tasks))
    assert [r.inserted for r in results] == [1, 3]
    stored = run_row(conn, run["id"])
    assert stored["name"] == NASTY
    assert stored["tags"] == [NASTY, "a,b", "{x}", "NULL", ""]
    assert stored["messages"] == run["messages"]
    assert stored["settings"] == run["settings"]
    assert stored["task_count"] == 3 and stored["total_tokens"] == 45
    assert stored["total_cost"] == Decimal("0.0000024690")
    assert stored["created_at"] == T0
    assert stored["updated_at"] == run["updated_at"]  # not the import time
    first = task_row(conn, tasks[0]["task_id"])
    assert first["response_text"] == NASTY and first["request_data"] == {"q": NASTY}
    assert first["completed_at"] == tasks[0]["completed_at"]
    assert task_row(conn, tasks[1]["task_id"])["tokens_total"] == 15
    assert database.run_totals_mismatches(db_url) == []


def test_rewriting_the_same_rows_inserts_nothing(db_url, conn):
    run = make_run()
    tasks = [make_task(run) for _ in range(5)]
    with bulk.BulkWriter(db_url) as writer:
        writer.write(run_batch(run), task_batch(*tasks[:3]))
        runs, written = writer.write(run_batch(run), task_batch(*tasks, tasks[4]))
    assert (runs.inserted, runs.duplicates) == (0, 1)
    assert (written.inserted, written.duplicates) == (2, 4)
    assert run_row(conn, run["id"])["task_count"] == 5
    assert database.run_totals_mismatches(db_url) == []


def test_rows_whose_parent_is_missing_are_returned_not_written(db_url, conn):
    run = make_run()
    orphan_run = make_run(parent_run_id=uuid.uuid4())
    child = make_run(parent_run_id=run["id"])
    grandchild = make_run(parent_run_id=orphan_run["id"])
    tasks = [make_task(run), make_task({"id": uuid.uuid4()}), make_task(child)]
    with bulk.BulkWriter(db_url) as writer:
        runs, written = writer.write(
            run_batch(run, orphan_run, child, grandchild), task_batch(*tasks)
        )
    assert runs.missing_parent == [1, 3] and runs.inserted == 2
    assert written.missing_parent == [1] and written.inserted == 2
    assert conn.execute("SELECT count(*) AS n FROM ai_tasks").fetchone()["n"] == 2
    assert database.run_totals_mismatches(db_url) == []


def test_rejects_unknown_table():
    with pytest.raises(ValueError, match="table must be one of"):
        bulk.Batch("ai_nope", ("id",), ["x"], ["x"])
