"""ingest.store.validation: pure checks shared by the live API and the bulk importer."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from ingest.errors import ValidationError
from ingest.store.validation import (
    ATTACHMENT_KINDS,
    MESSAGE_ROLES,
    RUN_STATUSES,
    SOURCE_TYPES,
    TASK_STATUSES,
    check_json,
    validate_run,
    validate_task,
)

RUN_ID = "3f2b8c9e-1d4a-4c6b-9e7f-0a1b2c3d4e5f"
TASK_ID = "0a1b2c3d-4e5f-4c6b-9e7f-3f2b8c9e1d4a"


def task(**fields):
    return {"run_id": RUN_ID, "task_id": TASK_ID, **fields}


def raises(field: str, allowed=None):
    """Context manager: a ValidationError naming `field` (and `allowed`, when given)."""

    class _Check:
        def __enter__(self):
            self.ctx = pytest.raises(ValidationError)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self.ctx.__exit__(*exc)
            assert self.info.value.field == field, str(self.info.value)
            assert field in str(self.info.value)
            if allowed is not None:
                assert self.info.value.allowed == list(allowed)
                for value in allowed:
                    assert str(value) in str(self.info.value)
            return handled

    return _Check()


def test_valid_run_is_normalized():
    out = validate_run(
        {
            "id": RUN_ID,
            "source_type": "chat",
            "tags": ["a", " b ", "a"],
            "messages": [
                {"role": "user", "content": "hi", "task_id": uuid.UUID(TASK_ID)},
                {"role": "assistant", "content": None, "timestamp": datetime(2026, 1, 1)},
            ],
            "settings": {"model": "gpt-4o", "temperature": 0.2},
            "attachments": [{"kind": "youtube", "url": "https://youtu.be/x"}],
            "is_starred": "true",
            "created_at": "2026-11-25T10:32:00Z",
            "forked_from_message": "3",
            "total_cost": 12,  # derived by the database: dropped
            "message_count": 99,
        }
    )
    assert out["id"] == uuid.UUID(RUN_ID)
    assert out["tags"] == ["a", "b"]
    assert out["messages"][0]["task_id"] == TASK_ID
    assert out["messages"][1]["timestamp"] == "2026-01-01T00:00:00+00:00"
    assert out["is_starred"] is True
    assert out["created_at"] == datetime(2026, 11, 25, 10, 32, tzinfo=UTC)
    assert out["forked_from_message"] == 3
    assert "total_cost" not in out and "message_count" not in out


def test_valid_task_is_normalized():
    out = validate_task(
        task(
            tokens_input="12",
            tokens_output=3.0,
            cost="0.0015",
            time_to_first_token=250,
            request_data={"messages": [{"role": "user", "content": "x"}]},
            completed_at=datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))),
            tokens_total=None,
            status="completed",
        )
    )
    assert out["run_id"] == uuid.UUID(RUN_ID) and out["task_id"] == uuid.UUID(TASK_ID)
    assert out["tokens_input"] == 12 and isinstance(out["tokens_input"], int)
    assert out["tokens_output"] == 3 and isinstance(out["tokens_output"], int)
    assert out["cost"] == Decimal("0.0015")
    assert out["completed_at"].utcoffset() == timedelta(hours=2)
    assert out["tokens_total"] is None


def test_float_cost_keeps_its_decimal_digits():
    assert validate_task(task(cost=0.1))["cost"] == Decimal("0.1")


def test_unknown_column_names_it_and_lists_columns():
    with raises("colour") as info:
        validate_run({"source_type": "chat", "colour": "red"})
    assert "source_type" in info.value.allowed
    with raises("tokens"):
        validate_task(task(tokens=3))


@pytest.mark.parametrize("value", ["web", "", None, 3])
def test_unknown_source_type(value):
    with raises("source_type", SOURCE_TYPES if value is not None else None):
        validate_run({"source_type": value})


def test_required_columns():
    with raises("source_type", SOURCE_TYPES):
        validate_run({"name": "x"})
    with raises("task_id"):
        validate_task({"run_id": RUN_ID})
    with raises("run_id"):
        validate_task({"task_id": TASK_ID})
    # partial: nothing required
    assert validate_run({"name": "x"}, partial=True) == {"name": "x"}
    assert validate_task({"status": "streaming"}, partial=True) == {"status": "streaming"}


def test_unknown_statuses():
    with raises("status", RUN_STATUSES):
        validate_run({"source_type": "chat", "status": "done"})
    with raises("status", TASK_STATUSES):
        validate_task(task(status="done"))


@pytest.mark.parametrize(
    "column", ["tokens_input", "tokens_output", "tokens_cached_input", "tokens_reasoning"]
)
@pytest.mark.parametrize("value", [-1, 1.5, "1.5", "abc", True, math.nan, [1]])
def test_bad_tokens(column, value):
    with raises(column):
        validate_task(task(**{column: value}))


@pytest.mark.parametrize("column", ["time_to_first_token", "total_time"])
@pytest.mark.parametrize("value", [-5, 2.5, 2**31, "x"])
def test_bad_times(column, value):
    with raises(column):
        validate_task(task(**{column: value}))


@pytest.mark.parametrize("value", [-0.01, "-1", "abc", math.inf, math.nan, True, 10**10])
def test_bad_cost(value):
    with raises("cost"):
        validate_task(task(cost=value))


@pytest.mark.parametrize("column", ["run_id", "task_id", "id"])
@pytest.mark.parametrize("value", ["not-a-uuid", 12, "3f2b8c9e"])
def test_malformed_task_uuids(column, value):
    with raises(column):
        validate_task(task(**{column: value}))


def test_malformed_run_uuids():
    with raises("parent_run_id"):
        validate_run({"source_type": "chat", "parent_run_id": "nope"})
    with raises("id"):
        validate_run({"source_type": "chat", "id": 7})


@pytest.mark.parametrize(
    "column", ["request_data", "response_data", "response_errors", "tool_updates"]
)
@pytest.mark.parametrize("value", [{"x": {1, 2}}, {"when": datetime.now()}, [math.nan], object()])
def test_non_json_payloads(column, value):
    with raises(column):
        validate_task(task(**{column: value}))


def test_json_objects_and_nul():
    with raises("settings"):
        validate_run({"source_type": "chat", "settings": ["not", "an", "object"]})
    with raises("metadata"):
        validate_run({"source_type": "chat", "metadata": {"x": "a\x00b"}})
    with raises("response_text"):
        validate_task(task(response_text="a\x00b"))
    with raises("request_data"):
        validate_task(task(request_data=None))


@pytest.mark.parametrize(
    ("messages", "field", "allowed"),
    [
        ("hello", "messages", None),
        ({"role": "user", "content": "x"}, "messages", None),
        (["hello"], "messages[0]", None),
        ([{"content": "x"}], "messages[0].role", MESSAGE_ROLES),
        (
            [{"role": "user", "content": "x"}, {"role": "robot", "content": "x"}],
            "messages[1].role",
            MESSAGE_ROLES,
        ),
        ([{"role": "user"}], "messages[0].content", None),
        ([{"role": "user", "content": "x", "task_id": "zz"}], "messages[0].task_id", None),
        (
            [{"role": "user", "content": "x", "timestamp": "yesterday"}],
            "messages[0].timestamp",
            None,
        ),
        ([{"role": "user", "content": {1, 2}}], "messages[0]", None),
    ],
)
def test_bad_messages(messages, field, allowed):
    with raises(field, allowed):
        validate_run({"source_type": "chat", "messages": messages})


@pytest.mark.parametrize(
    ("attachments", "field", "allowed"),
    [
        ({"kind": "file"}, "attachments", None),
        (["file"], "attachments[0]", ATTACHMENT_KINDS),
        ([{"url": "x"}], "attachments[0].kind", ATTACHMENT_KINDS),
        ([{"kind": "file"}, {"kind": "video"}], "attachments[1].kind", ATTACHMENT_KINDS),
    ],
)
def test_bad_attachments(attachments, field, allowed):
    with raises(field, allowed):
        validate_run({"source_type": "chat", "attachments": attachments})


@pytest.mark.parametrize(
    ("tags", "field"),
    [("a,b", "tags"), (["a", 2], "tags[1]"), (["a", "  "], "tags[1]"), ({"a": 1}, "tags")],
)
def test_bad_tags(tags, field):
    with raises(field):
        validate_run({"source_type": "chat", "tags": tags})


def test_bad_booleans_and_timestamps():
    with raises("is_starred", [True, False]):
        validate_run({"source_type": "chat", "is_starred": "maybe"})
    with raises("created_at"):
        validate_run({"source_type": "chat", "created_at": "25/11/2026"})
    with raises("completed_at"):
        validate_task(task(completed_at=1700000000))


def test_not_null_columns_reject_none():
    with raises("name"):
        validate_run({"name": None}, partial=True)
    with raises("response_text"):
        validate_task(task(response_text=None))
    # Token counts are nullable: NULL means the provider reported no usage (unknown).
    assert validate_task(task(tokens_input=None))["tokens_input"] is None


def test_fields_must_be_a_dict():
    with raises("fields"):
        validate_run([("source_type", "chat")])


def test_check_json_returns_text():
    assert check_json("x", {"a": [1, "é"]}) == '{"a": [1, "é"]}'


def test_inputs_are_not_mutated():
    messages = [{"role": "user", "content": "hi", "task_id": uuid.UUID(TASK_ID)}]
    validate_run({"source_type": "chat", "messages": messages})
    assert isinstance(messages[0]["task_id"], uuid.UUID)
