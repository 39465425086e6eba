"""The TypeScript flow in docs/examples/seed-flow.ts, run by Node against a real server,
writes the same rows as the Python Tracker doing the same steps."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from ingest import Tracker
from tests.server_support import serve

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers

EXAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "seed-flow.ts"
RUN_COLUMNS = ("user_id", "source_type", "name", "settings", "status", "message_count",
               "task_count", "total_tokens", "total_cost")  # fmt: skip
TASK_COLUMNS = ("user_id", "provider", "endpoint", "model", "request_data", "response_text",
                "response_complete", "tokens_input", "tokens_output", "tokens_cached_input",
                "tokens_total", "cost", "status")  # fmt: skip


def python_flow(tracker: Tracker, task_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """The same five steps with the Python API."""
    prompt = "Explain row level security in one paragraph"
    run = tracker.create_run(
        "chat",
        messages=[{"role": "user", "content": prompt}],
        settings={"model": "gpt-4o", "temperature": 0.2},
    )
    tracker.create_task(
        run["id"], task_id=task_id, provider="openai", endpoint="chat.completions",
        model="gpt-4o",
        request_data={"messages": [{"role": "user", "content": prompt}], "temperature": 0.2},
    )  # fmt: skip
    text = ""
    for chunk in ["Row level ", "security lets ", "Postgres decide ", "which rows each user sees."]:
        text += chunk
        tracker.update_task(task_id, text)
    usage = {"prompt_tokens": 812, "completion_tokens": 356,
             "prompt_tokens_details": {"cached_tokens": 512}}  # fmt: skip
    tracker.complete_task(task_id, text, usage=usage)
    tracker.add_message(run["id"], "assistant", text, task_id=task_id)
    return run["id"], task_id


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (18+) to run the example")
def test_typescript_seed_flow_writes_what_the_python_tracker_writes(db_url, tmp_path):
    script = tmp_path / "seed-flow.mjs"  # the same text; .mjs so Node runs it as a module
    script.write_text(EXAMPLE.read_text())
    socket_task = uuid.uuid4()
    with serve(db_url, user="ada") as served:
        env = {**os.environ, "AI_RUNS_URL": served.base, "AI_RUNS_KEY": served.key,
               "SOCKET_TASK_ID": str(socket_task)}  # fmt: skip
        done = subprocess.run(
            ["node", str(script)], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        printed = json.loads(done.stdout)
    assert printed["task_id"] == str(socket_task)
    tracker = Tracker(db_url, user_id="ada")
    py_run_id, py_task_id = python_flow(tracker, uuid.uuid4())
    ts_run = tracker.get_run(printed["run_id"])
    py_run = tracker.get_run(py_run_id)
    tracker.close()
    assert {c: ts_run[c] for c in RUN_COLUMNS} == {c: py_run[c] for c in RUN_COLUMNS}
    (ts_task,), (py_task,) = ts_run["tasks"], py_run["tasks"]
    assert {c: ts_task[c] for c in TASK_COLUMNS} == {c: py_task[c] for c in TASK_COLUMNS}
    assert ts_task["task_id"] == socket_task and ts_task["cost"] > 0
    assert str(ts_task["cost"]) == printed["cost"]
    for run, task_id in ((ts_run, socket_task), (py_run, py_task_id)):
        assert [(m["role"], m["content"]) for m in run["messages"]] == [
            (m["role"], m["content"]) for m in py_run["messages"]
        ]
        assert run["messages"][1]["task_id"] == str(task_id)
    for task in (ts_task, py_task):
        assert task["time_to_first_token"] is not None and task["total_time"] is not None
