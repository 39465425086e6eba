"""One finished-task row for every writer (ingest/tracking/task_row.py): a task with every
writable column, written through the Tracker, its background writer, the server's batch
endpoint (the OTLP receiver's writer) and the importer, reads back as the same row; without
a cost every path that prices it prices it the same way."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from ingest.sdk import TaskWriter
from ingest.store.vocabulary import TASK_WRITABLE_COLUMNS
from ingest.tracking import Tracker
from ingest.transfer import import_export
from tests.server_support import serve

CREATED = datetime(2026, 11, 2, 10, 15, 3, 200000, tzinfo=UTC)
# Every column a writer may set, each with a value no default would give. The columns
# create_task takes are set when the task starts, the others when it finishes.
AT_CREATE = {
    "service": "support-bot",
    "task_name": "answer",
    "provider": "openai",
    "endpoint": "chat.completions",
    "model": "gpt-4o",
    "model_id": "gpt-4o-2024-08-06",
    "request_data": {"messages": [{"role": "user", "content": "Hi"}], "temperature": 0.2},
    "response_metadata": {"region": "eu", "attempt": 2},
}
AT_FINISH = {
    "response_data": {"id": "chatcmpl-1", "choices": [{"index": 0}]},
    "response_info": {"finish_reason": "stop", "system_fingerprint": "fp_1"},
    "response_errors": [{"type": "Retry", "message": "first attempt timed out"}],
    "tool_updates": [{"id": "call_1", "name": "lookup", "arguments": "{}"}],
    "response_complete": True,
    "tokens_input": 812,
    "tokens_output": 356,
    "tokens_cached_input": 512,
    "tokens_reasoning": 100,
    "tokens_total": 1168,
    "tokens_cache_write": 200,
    "cost": Decimal("0.0123456789"),
    "cost_source": "computed",
    "time_to_first_token": 640,
    "total_time": 4870,
}
TEXT = "Row level security is ..."
COMPARED = (*TASK_WRITABLE_COLUMNS, "run_id", "user_id", "created_at", "price_ref")


def test_the_task_columns_here_are_every_writable_column():
    given = {*AT_CREATE, *AT_FINISH, "response_text", "status"}
    assert given == set(TASK_WRITABLE_COLUMNS)


def test_tracker_and_its_background_writer_share_one_task_api(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("AI_RUNS_HOME", str(tmp_path))
    with Tracker(db_url, user_id="ada") as tracker:
        assert isinstance(tracker, TaskWriter)
        assert isinstance(tracker.background, TaskWriter)


def _run(db_url: str) -> uuid.UUID:
    with Tracker(db_url, user_id="ada") as tracker:
        return tracker.create_run("chat", name="every column")["id"]


def _by_tracker(db_url: str, run_id: uuid.UUID, finish: dict[str, Any], tmp_path) -> uuid.UUID:
    task_id = uuid.uuid4()
    with Tracker(db_url, user_id="ada") as tracker:
        tracker.create_task(run_id, task_id=task_id, created_at=CREATED, **AT_CREATE)
        tracker.complete_task(task_id, TEXT, **finish)
    return task_id


def _by_background(db_url: str, run_id: uuid.UUID, finish: dict[str, Any], tmp_path) -> uuid.UUID:
    task_id = uuid.uuid4()
    with Tracker(db_url, user_id="ada") as tracker:
        writer = tracker.background
        writer.create_task(run_id, task_id=task_id, created_at=CREATED, **AT_CREATE)
        writer.complete_task(task_id, TEXT, **finish)
        assert tracker.flush_background()
    return task_id


def _row(run_id: uuid.UUID, task_id: uuid.UUID, finish: dict[str, Any]) -> dict[str, Any]:
    """The task as one JSON object of our formats (batch body, import line)."""
    row = {"run_id": run_id, "task_id": task_id, "created_at": CREATED, **AT_CREATE, **finish}
    row |= {"response_text": TEXT, "status": "completed"}
    return json.loads(json.dumps(row, default=str))


def _by_batch(db_url: str, run_id: uuid.UUID, finish: dict[str, Any], tmp_path) -> uuid.UUID:
    task_id = uuid.uuid4()
    with serve(db_url, user="ada") as served, served.client() as client:
        answer = client.post("/v1/batch", json={"tasks": [_row(run_id, task_id, finish)]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["tasks"]["inserted"] == 1
    return task_id


def _by_import(db_url: str, run_id: uuid.UUID, finish: dict[str, Any], tmp_path) -> uuid.UUID:
    task_id = uuid.uuid4()
    line = {"type": "task", "user_id": "ada", **_row(run_id, task_id, finish)}
    path = tmp_path / f"{task_id}.jsonl"
    path.write_text(json.dumps(line) + "\n")
    summary = import_export.import_files([path], db_url)
    assert summary.inserted["task"] == 1 and not summary.rejected
    return task_id


PATHS = {
    "tracker": _by_tracker,
    "background writer": _by_background,
    "batch endpoint": _by_batch,
    "importer": _by_import,
}


def _read(db_url: str, task_id: uuid.UUID) -> dict[str, Any]:
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        row = conn.execute("SELECT * FROM ai_tasks WHERE task_id = %s", (task_id,)).fetchone()
    return {column: row[column] for column in COMPARED}


def test_every_writable_column_reads_back_the_same_through_every_path(
    db_url, tmp_path, monkeypatch
):
    monkeypatch.setenv("AI_RUNS_HOME", str(tmp_path))
    run_id = _run(db_url)
    rows = {name: _read(db_url, write(db_url, run_id, AT_FINISH, tmp_path))
            for name, write in PATHS.items()}  # fmt: skip
    expected = {**AT_CREATE, **AT_FINISH, "response_text": TEXT, "status": "completed"}
    expected |= {"run_id": run_id, "user_id": "ada", "created_at": CREATED, "price_ref": None}
    for name, row in rows.items():
        different = {c: (row[c], expected[c]) for c in COMPARED if row[c] != expected[c]}
        assert not different, f"{name} wrote {different} (stored, given)"


@pytest.mark.parametrize("cost_given", [False, True], ids=["priced here", "provider's cost"])
def test_cost_and_its_source_are_the_same_on_every_path_that_prices(
    db_url, tmp_path, monkeypatch, cost_given
):
    monkeypatch.setenv("AI_RUNS_HOME", str(tmp_path))
    run_id = _run(db_url)
    finish = {k: v for k, v in AT_FINISH.items() if k not in ("cost", "cost_source")}
    if cost_given:
        finish["cost"] = Decimal("0.5")  # without cost_source: the provider's
    priced = {name: _read(db_url, PATHS[name](db_url, run_id, finish, tmp_path))
              for name in ("tracker", "background writer", "batch endpoint")}  # fmt: skip
    prices = {name: (r["cost"], r["cost_source"], r["price_ref"]) for name, r in priced.items()}
    assert len(set(prices.values())) == 1, prices
    cost, source, ref = prices["tracker"]
    if cost_given:
        assert (cost, source, ref) == (Decimal("0.5"), "provider", None)
    else:
        assert cost > 0 and source == "computed" and ref.startswith("genai-prices")
