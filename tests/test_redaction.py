"""Redaction (docs/access.md): the same masks through every way in (Tracker, streaming
helper, importer), counted per task; nothing masked while no rule is enabled."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from psycopg.rows import dict_row

import ingest
from ingest.access import redaction
from ingest.errors import AccessDeniedError, ValidationError
from ingest.transfer import import_export as transfer

EMAIL = "jane.doe@corp.example"
KEY = "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0" * 2
TEXT = f"mail {EMAIL} with key {KEY}, and the ticket ZX-12345"


@pytest.fixture
def redacting(db_url):
    """A database with the built-in rules on and one admin-added pattern (tickets)."""
    owner = ingest.Tracker(db_url)
    owner.set_redaction_rule("email")
    owner.set_redaction_rule("secret")
    owner.set_redaction_rule("ticket", pattern=r"ZX-\d{5}", replacement="[TICKET]")
    yield db_url, owner
    owner.close()


def stored_task(url: str, task_id) -> dict:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM ai_tasks WHERE task_id = %s", (task_id,)).fetchone()


def stored_messages(url: str, run_id) -> list:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute("SELECT messages FROM ai_runs WHERE id = %s", (run_id,)).fetchone()[
            "messages"
        ]


MASKED = "mail [EMAIL] with key [SECRET], and the ticket [TICKET]"


def test_the_function_masks_every_string_inside_a_value():
    rules = [
        redaction.compile_rule("email", r"[\w.]+@[\w.]+", "[EMAIL]"),
        redaction.compile_rule("n", r"\d{3}", "###"),
    ]
    value = {"a": ["x@y.z 123", {"k@e.y": 42, "deep": ("456",)}], "n": None}
    masked, count = redaction.redact(value, rules)
    assert masked == {"a": ["[EMAIL] ###", {"k@e.y": 42, "deep": ["###"]}], "n": None}
    assert count == 3
    assert redaction.redact(value, []) == (value, 0)
    with pytest.raises(ValidationError, match="pattern"):
        redaction.compile_rule("bad", "(")
    with pytest.raises(ValidationError, match="empty string"):
        redaction.compile_rule("bad", "x*")
    with pytest.raises(ValidationError, match="name"):
        redaction.compile_rule("Bad Name", "x")


def test_tracker_masks_messages_payloads_and_response_text(redacting):
    url, owner = redacting
    run = owner.create_run("chat", messages=[{"role": "user", "content": TEXT}])
    owner.add_message(run["id"], "assistant", [{"type": "text", "text": TEXT}])
    request = {"messages": [{"role": "user", "content": TEXT}]}
    task = owner.create_task(run["id"], provider="openai", model="gpt-4o", request_data=request)
    owner.update_task(task["task_id"], "partial " + EMAIL)
    owner.complete_task(task["task_id"], TEXT, response_data={"raw": KEY},
                        tokens_input=5, tokens_output=5)  # fmt: skip
    row = stored_task(url, task["task_id"])
    assert row["request_data"]["messages"][0]["content"] == MASKED
    assert row["response_text"] == MASKED
    assert row["response_data"] == {"raw": "[SECRET]"}
    messages = stored_messages(url, run["id"])
    assert messages[0]["content"] == MASKED
    assert messages[1]["content"][0]["text"] == MASKED
    assert owner.task_redactions(task["task_id"]) == {
        "masks": 7,
        "fields": {"request_data": 3, "response_text": 3, "response_data": 1},
    }
    assert EMAIL not in json.dumps(owner.get_run(run["id"]), default=str)
    with psycopg.connect(url, autocommit=True) as conn:  # the counts go with their task
        conn.execute("DELETE FROM ai_tasks WHERE task_id = %s", (task["task_id"],))
        assert conn.execute("SELECT count(*) FROM ai_task_redactions").fetchone()[0] == 0


def test_streaming_helper_masks_the_same(redacting):
    url, owner = redacting
    run = owner.create_run("chat", name="stream")
    chunks = ["mail ", EMAIL, " with key ", KEY, ", and the ticket ZX-12345"]
    stream = ingest.stream_task(owner, run["id"], iter(chunks), provider="openai",
                                model="gpt-4o", request_data={"prompt": TEXT})  # fmt: skip
    assert "".join(stream) == TEXT  # the application still gets its own stream untouched
    row = stored_task(url, stream.task_id)
    assert row["response_text"] == MASKED and row["request_data"] == {"prompt": MASKED}
    assert owner.task_redactions(stream.task_id)["masks"] == 6


def test_importer_masks_the_same_and_counts_per_task(redacting, tmp_path):
    url, owner = redacting
    run_id, task_id = uuid.uuid4(), uuid.uuid4()
    lines = [
        {"type": "run", "id": str(run_id), "source_type": "chat",
         "messages": [{"role": "user", "content": TEXT}]},
        {"type": "task", "run_id": str(run_id), "task_id": str(task_id), "status": "completed",
         "request_data": {"prompt": TEXT}, "response_text": TEXT},
    ]  # fmt: skip
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    summary = transfer.import_files([path], url)
    assert summary.inserted["task"] == 1 and not summary.rejected
    row = stored_task(url, task_id)
    assert row["response_text"] == MASKED and row["request_data"] == {"prompt": MASKED}
    assert stored_messages(url, run_id)[0]["content"] == MASKED
    assert owner.task_redactions(task_id) == {
        "masks": 6,
        "fields": {"request_data": 3, "response_text": 3},
    }


def test_without_enabled_rules_nothing_is_touched_and_only_admins_change_rules(db_url):
    owner = ingest.Tracker(db_url)
    rules = {r["name"]: r["enabled"] for r in owner.redaction_rules()}
    assert rules == {"email": False, "secret": False}
    run = owner.create_run("chat", messages=[{"role": "user", "content": TEXT}])
    assert stored_messages(db_url, run["id"])[0]["content"] == TEXT
    owner.upsert_user("alice", role="member")
    with pytest.raises(AccessDeniedError):
        ingest.Tracker(db_url, viewer="alice").set_redaction_rule("email")
    with pytest.raises(ValidationError, match="needs a pattern"):
        owner.set_redaction_rule("new-rule")


def test_http_server_masks_the_same_through_rest_and_batch(redacting):
    from server_support import serve

    url, owner = redacting
    with serve(url) as served, served.client() as c:
        message = {"role": "user", "content": TEXT}
        run = c.post("/v1/runs", json={"source_type": "chat", "messages": [message]})
        run_id = run.json()["id"]
        task = c.post("/v1/tasks", json={"run_id": run_id, "request_data": {"prompt": TEXT}})
        tid = task.json()["task_id"]
        done = c.post(f"/v1/tasks/{tid}/complete", json={"response_text": TEXT})
        assert done.status_code == 200, done.text
        batch_run, batch_task = str(uuid.uuid4()), str(uuid.uuid4())
        answer = c.post("/v1/batch", json={
            "runs": [{"id": batch_run, "source_type": "chat",
                      "messages": [{"role": "user", "content": TEXT}]}],
            "tasks": [{"run_id": batch_run, "task_id": batch_task, "status": "completed",
                       "request_data": {"prompt": TEXT}, "response_text": TEXT}],
        })  # fmt: skip
        assert answer.status_code == 200, answer.text
    for task_id, run in ((tid, run_id), (batch_task, batch_run)):
        row = stored_task(url, task_id)
        assert row["response_text"] == MASKED and row["request_data"] == {"prompt": MASKED}
        assert stored_messages(url, run)[0]["content"] == MASKED
        assert owner.task_redactions(task_id)["masks"] == 6


def test_background_writer_masks_the_same(redacting, tmp_path, monkeypatch):
    url, _ = redacting
    monkeypatch.setenv("AI_RUNS_HOME", str(tmp_path / "home"))
    with ingest.Tracker(url) as tracker:
        with tracker.run("chat", name="tracked") as run_id:
            background = tracker.background
            task = background.create_task(run_id, provider="openai", model="gpt-4o",
                                          request_data={"prompt": TEXT})  # fmt: skip
            background.complete_task(task["task_id"], TEXT, tokens_input=3, tokens_output=3)
        tracker.flush()
        row = stored_task(url, task["task_id"])
        assert row["response_text"] == MASKED and row["request_data"] == {"prompt": MASKED}
        assert tracker.task_redactions(task["task_id"])["masks"] == 6
