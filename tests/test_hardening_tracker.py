"""Issue 13: the Tracker refuses hostile and out-of-range values with a ValidationError that
names the field, before anything is written (limits: docs/limits.md)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from ingest.errors import ValidationError
from ingest.store import limits
from ingest.tracking.tracker import Tracker

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers


@pytest.fixture
def tracker(db_url):
    with Tracker(db_url, user_id="ada", debounce_seconds=0) as t:
        yield t


@pytest.fixture
def task(tracker):
    run = tracker.create_run("chat", name="r")
    return tracker.create_task(run["id"], provider="openai", model="gpt-4o")


def _refused(field: str, call, *args, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        call(*args, **kwargs)
    assert info.value.field == field, str(info.value)
    return info.value


def _run_totals(tracker, run_id):
    run = tracker.get_run(run_id, with_tasks=False)
    return run["task_count"], run["total_tokens"], run["total_cost"]


def test_tokens_near_int64_are_refused_and_the_run_keeps_working(tracker, task):
    _refused("tokens_input", tracker.complete_task, task["task_id"],
             tokens_input=2**63 - 1, tokens_output=1)  # fmt: skip
    assert tracker.get_task(task["task_id"])["status"] == "pending"
    other = tracker.create_task(task["run_id"])
    top = limits.MAX_TOKENS
    tracker.complete_task(task["task_id"], tokens_input=top, tokens_output=top, cost=0)
    tracker.complete_task(other["task_id"], tokens_input=top, tokens_output=top, cost=0)
    assert _run_totals(tracker, task["run_id"])[1] == 4 * top


def test_tokens_total_bound(tracker, task):
    _refused("tokens_total", tracker.complete_task, task["task_id"],
             tokens_total=limits.MAX_TOKENS_TOTAL + 1)  # fmt: skip
    _refused("tokens_output", tracker.update_task, task["task_id"],
             tokens_output=limits.MAX_TOKENS + 1)  # fmt: skip


def test_cost_that_rounds_past_numeric_20_10_is_refused(tracker, task):
    _refused("cost", tracker.complete_task, task["task_id"],
             cost=Decimal("9999999999.99999999999"))  # fmt: skip
    _refused("cost", tracker.complete_task, task["task_id"], cost=limits.MAX_COST)
    done = tracker.complete_task(task["task_id"], cost=Decimal("9999999999.12345678901"))
    assert done["cost"] == Decimal("9999999999.1234567890")


@pytest.mark.parametrize("moment", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_timestamps_outside_years_1_to_9999_in_utc_are_refused(tracker, moment):
    _refused("created_at", tracker.create_run, "chat", created_at=moment)
    run = tracker.create_run("chat")
    _refused("created_at", tracker.create_task, run["id"], created_at=moment)
    _refused("message.timestamp", tracker.add_message, run["id"], "user", "x", timestamp=moment)
    assert tracker.list_runs().total == 1


def test_ttft_after_total_time_is_refused(tracker, task):
    _refused("time_to_first_token", tracker.complete_task, task["task_id"],
             time_to_first_token=900, total_time=800)  # fmt: skip
    tracker.update_task(task["task_id"], "x", time_to_first_token=900)
    _refused("time_to_first_token", tracker.complete_task, task["task_id"], total_time=800)
    done = tracker.complete_task(task["task_id"], total_time=900)
    assert (done["time_to_first_token"], done["total_time"]) == (900, 900)


def test_ttft_given_without_total_time_keeps_them_in_order(tracker, task):
    done = tracker.complete_task(task["task_id"], time_to_first_token=3_600_000)
    assert done["total_time"] >= done["time_to_first_token"] == 3_600_000


def test_cached_input_above_input_is_refused(tracker, task):
    _refused("tokens_cached_input", tracker.complete_task, task["task_id"],
             tokens_input=10, tokens_cached_input=11)  # fmt: skip
    tracker.complete_task(task["task_id"], tokens_input=10, tokens_cached_input=10)


def test_nul_in_upsert_user_id_and_cancel_reason(tracker, task):
    _refused("id", tracker.upsert_user, "a\x00b")
    _refused("reason", tracker.cancel_task, task["task_id"], "user\x00left")
    assert tracker.get_task(task["task_id"])["status"] == "pending"


LONE = "x\ud800y"


@pytest.mark.parametrize(
    ("field", "call"),
    [
        ("name", lambda t, r: t.create_run("chat", name=LONE)),
        ("description", lambda t, r: t.create_run("chat", description=LONE)),
        ("tags[0]", lambda t, r: t.create_run("chat", tags=[LONE])),
        ("settings", lambda t, r: t.create_run("chat", settings={"k": LONE})),
        ("settings", lambda t, r: t.create_run("chat", settings={LONE: 1})),
        (
            "messages[0]",
            lambda t, r: t.create_run("chat", messages=[{"role": "user", "content": LONE}]),
        ),  # fmt: skip
        ("message", lambda t, r: t.add_message(r, "user", [{"text": LONE}])),
        ("model", lambda t, r: t.create_task(r, model=LONE)),
        ("request_data", lambda t, r: t.create_task(r, request_data=[LONE])),
        ("id", lambda t, r: t.upsert_user(LONE)),
        ("team", lambda t, r: t.upsert_user("u", team=LONE)),
        ("search", lambda t, r: t.list_runs(search=LONE)),
        ("name", lambda t, r: t.rename_run(r, LONE)),
    ],
)
def test_lone_surrogates_are_refused_everywhere(tracker, field, call):
    run = tracker.create_run("chat", name="keep")
    _refused(field, call, tracker, run["id"])
    assert tracker.list_runs().total == 1
    assert tracker.get_run(run["id"])["task_count"] == 0


def test_lone_surrogate_in_tracker_user_id(db_url):
    _refused("user_id", Tracker, db_url, user_id=LONE)


def test_lone_surrogate_in_task_text_fields(tracker, task):
    _refused("response_text", tracker.update_task, task["task_id"], LONE)
    _refused("response_text", tracker.complete_task, task["task_id"], LONE)
    _refused("tool_updates", tracker.complete_task, task["task_id"], tool_updates={"a": LONE})
    _refused("response_errors", tracker.fail_task, task["task_id"], LONE)
    assert tracker.get_task(task["task_id"])["status"] == "pending"


def _nested(depth: int):
    value: object = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def test_json_nested_1000_deep_is_a_validation_error(tracker, task):
    deep = _nested(1000)
    _refused("metadata", tracker.create_run, "chat", metadata={"a": deep})
    _refused("request_data", tracker.create_task, task["run_id"], request_data=deep)
    _refused("response_data", tracker.complete_task, task["task_id"], response_data=deep)
    tracker.complete_task(task["task_id"], response_data=_nested(limits.MAX_JSON_DEPTH - 1))


def test_complete_task_with_another_status_is_refused_not_ignored(tracker, task):
    _refused("status", tracker.complete_task, task["task_id"], status="failed")
    _refused("status", tracker.fail_task, task["task_id"], status="completed")
    _refused("status", tracker.cancel_task, task["task_id"], status="completed")
    assert tracker.get_task(task["task_id"])["status"] == "pending"


def test_unknown_or_read_only_keywords_are_validation_errors(tracker, task):
    _refused("colour", tracker.create_run, "chat", colour="red")
    _refused("total_cost", tracker.create_run, "chat", total_cost=5)
    _refused("completed_at", tracker.complete_task, task["task_id"], completed_at="2026-01-01")
    _refused("run_id", tracker.update_task, task["task_id"], run_id=uuid.uuid4())
    _refused("tokens", tracker.create_task, task["run_id"], tokens=5)
    assert tracker.list_runs().total == 1
