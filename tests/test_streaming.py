"""ingest.stream_task: a wrapped stream tracks itself as a task; usage shapes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from anthropic.types import MessageDeltaUsage, Usage
from builders import task_row
from test_sdk_streams import expected_cost

import ingest
from ingest.errors import ValidationError
from ingest.sdk.provider_usage import normalize_usage
from ingest.spend import pricing
from ingest.store import database
from ingest.tracking.tracker import Tracker

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tracker(db_url, clock):
    with Tracker(db_url, clock=clock) as t:
        yield t
    assert database.run_totals_mismatches(db_url) == []


@pytest.fixture
def run_id(tracker):
    return tracker.create_run("chat", name="streams")["id"]


def timed(clock: FakeClock, steps: list[tuple[float, object]]) -> Iterator[object]:
    """Yield each item after moving the clock by its delay (seconds)."""
    for delay, item in steps:
        clock.now += delay
        yield item


def test_stream_records_text_ttft_total_time_usage_and_cost(tracker, clock, run_id, conn):
    steps = [
        (0.30, ""),  # an empty chunk is not the first token
        (0.12, "Hel"),
        (0.05, "lo"),
        (0.40, ", world"),
        (0.10, {"prompt_tokens": 20, "completion_tokens": 4, "total_tokens": 24}),
    ]
    stream = ingest.stream_task(
        tracker, run_id, timed(clock, steps), provider="openai", model="gpt-4o-mini"
    )
    assert task_row(conn, stream.task_id)["status"] == "pending"
    seen = []
    for text in stream:
        seen.append(text)
        if text == "Hel":  # the first text is written at once
            assert task_row(conn, stream.task_id)["response_text"] == "Hel"
            assert task_row(conn, stream.task_id)["status"] == "streaming"
        if text == "lo":  # 50 ms later: debounced, not written yet
            assert task_row(conn, stream.task_id)["response_text"] == "Hel"
    assert seen == ["", "Hel", "lo", ", world"]
    task = stream.task
    assert task == tracker.get_task(stream.task_id)
    assert task["status"] == "completed" and stream.status == "completed"
    assert task["response_text"] == "Hello, world" == stream.text
    assert task["time_to_first_token"] == 420
    assert task["total_time"] == 970
    assert (task["tokens_input"], task["tokens_output"], task["tokens_total"]) == (20, 4, 24)
    expected = pricing.task_cost("openai", "gpt-4o-mini", 20, 4, 0, task["created_at"])
    assert task["cost"] == expected


def test_stream_writes_while_streaming_at_most_every_debounce(tracker, clock, run_id, conn):
    steps = [(0.1, f"c{i} ") for i in range(20)]  # 2 s of chunks, 100 ms apart
    stream = tracker.stream_task(run_id, timed(clock, steps))
    written = []
    for _ in stream:
        text = task_row(conn, stream.task_id)["response_text"]
        if not written or written[-1] != text:
            written.append(text)
    assert len(written) == 4  # at 0.1 s, 0.6 s, 1.1 s, 1.6 s
    assert stream.task["response_text"] == "".join(text for _, text in steps)


def test_final_usage_from_a_callable_and_sdk_objects(tracker, clock, run_id):
    usage = SimpleNamespace(
        input_tokens=30,
        output_tokens=7,
        input_tokens_details=SimpleNamespace(cached_tokens=10),
        output_tokens_details=SimpleNamespace(reasoning_tokens=3),
    )
    stream = ingest.stream_task(
        tracker, run_id, iter(["a", "b"]), usage=lambda: usage, provider="openai", model="o3"
    )
    assert list(stream) == ["a", "b"]
    task = stream.task
    assert (task["tokens_input"], task["tokens_cached_input"]) == (30, 10)
    assert (task["tokens_output"], task["tokens_reasoning"]) == (7, 3)
    assert task["cost"] == pricing.task_cost("openai", "o3", 30, 7, 10, task["created_at"])


def test_usage_parts_given_as_chunks_merge(tracker, run_id):
    """Anthropic's message_start usage, then its message_delta usage, as chunks: a later
    value that is set wins, an unset one keeps the earlier value."""
    start = Usage(
        input_tokens=40,
        output_tokens=1,
        cache_read_input_tokens=2000,
        cache_creation_input_tokens=300,
    )
    delta = MessageDeltaUsage(output_tokens=95)  # input and cache counts unset (None)
    chunks = iter([start, "Row level ", "security", delta])
    model = "claude-sonnet-4-5"
    stream = ingest.stream_task(tracker, run_id, chunks, provider="anthropic", model=model)
    assert list(stream) == ["Row level ", "security"]
    task = stream.task
    assert task["tokens_input"] == 40 + 2000 + 300
    assert (task["tokens_cached_input"], task["tokens_cache_write"]) == (2000, 300)
    assert (task["tokens_output"], task["tokens_total"]) == (95, 40 + 2000 + 300 + 95)
    merged = {**start.model_dump(), "output_tokens": 95}
    assert task["cost"] == expected_cost(merged, model, "anthropic")


def test_consumer_stopping_early_cancels(tracker, clock, run_id, conn):
    closed = []

    def source():
        try:
            for i in range(100):
                clock.now += 0.01
                yield f"t{i}"
        finally:
            closed.append(True)

    stream = ingest.stream_task(tracker, run_id, source(), model="gpt-4o")
    for text in stream:
        if text == "t2":
            break
    assert stream.status == "cancelled"
    row = task_row(conn, stream.task_id)
    assert row["status"] == "cancelled" and row["response_text"] == "t0t1t2"
    assert row["response_metadata"]["cancel_reason"]
    assert row["time_to_first_token"] == 10 and row["total_time"] == 30
    assert closed == [True]


def test_close_and_with_block_cancel(tracker, run_id, conn):
    with ingest.stream_task(tracker, run_id, iter(["never read"])) as stream:
        pass
    assert task_row(conn, stream.task_id)["status"] == "cancelled"
    other = ingest.stream_task(tracker, run_id, iter(["a", "b"]))
    iterator = iter(other)
    assert next(iterator) == "a"
    other.close()
    assert task_row(conn, other.task_id)["status"] == "cancelled"
    assert task_row(conn, other.task_id)["response_text"] == "a"
    with pytest.raises(RuntimeError):
        iter(other)


def test_source_error_fails_the_task_and_is_reraised(tracker, clock, run_id, conn):
    def source():
        clock.now += 0.2
        yield "partial "
        raise ConnectionError("stream reset by peer")

    stream = ingest.stream_task(tracker, run_id, source(), provider="openai", model="gpt-4o")
    with pytest.raises(ConnectionError):
        for _ in stream:
            pass
    row = task_row(conn, stream.task_id)
    assert row["status"] == "failed" and row["response_text"] == "partial "
    assert row["response_errors"] == [
        {"type": "ConnectionError", "message": "stream reset by peer"}
    ]
    assert row["time_to_first_token"] == 200


def test_stream_reuses_an_existing_task_id(tracker, run_id, conn):
    task_id = uuid.uuid4()
    tracker.create_task(run_id, task_id=task_id, model="gpt-4o")
    stream = ingest.stream_task(tracker, run_id, iter(["x"]), task_id=task_id)
    assert list(stream) == ["x"]
    assert conn.execute("SELECT count(*) AS n FROM ai_tasks").fetchone()["n"] == 1
    assert task_row(conn, task_id)["status"] == "completed"


def test_empty_stream_completes_without_ttft(tracker, run_id):
    stream = ingest.stream_task(tracker, run_id, iter([]))
    assert list(stream) == []
    assert stream.task["status"] == "completed"
    assert stream.task["time_to_first_token"] is None and stream.task["response_text"] == ""


# ---------------------------------------------------------------- usage shapes


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {
                "prompt_tokens": 100,
                "completion_tokens": 40,
                "total_tokens": 140,
                "prompt_tokens_details": {"cached_tokens": 60},
                "completion_tokens_details": {"reasoning_tokens": 12},
            },
            {
                "tokens_input": 100,
                "tokens_output": 40,
                "tokens_total": 140,
                "tokens_cached_input": 60,
                "tokens_reasoning": 12,
            },
        ),
        (
            {
                "input_tokens": 10,
                "cache_read_input_tokens": 90,
                "cache_creation_input_tokens": 5,
                "output_tokens": 7,
            },
            {
                "tokens_input": 105,
                "tokens_output": 7,
                "tokens_cached_input": 90,
                "tokens_cache_write": 5,
            },
        ),
        (
            {
                "promptTokenCount": 50,
                "candidatesTokenCount": 20,
                "thoughtsTokenCount": 30,
                "totalTokenCount": 100,
            },
            {
                "tokens_input": 50,
                "tokens_output": 50,
                "tokens_reasoning": 30,
                "tokens_total": 100,
            },
        ),
        (
            {"usage": {"input_tokens": 3, "output_tokens": 4}},
            {"tokens_input": 3, "tokens_output": 4},
        ),
        ({"tokens_input": 1, "tokens_output": 2}, {"tokens_input": 1, "tokens_output": 2}),
    ],
)
def test_normalize_usage(usage, expected):
    assert normalize_usage(usage) == expected


@pytest.mark.parametrize("usage", [{"foo": 1}, 42, "tokens"])
def test_normalize_usage_rejects_unknown_shapes(usage):
    with pytest.raises(ValidationError) as info:
        normalize_usage(usage)
    assert info.value.field == "usage"


def test_stream_for_a_missing_run_writes_nothing(tracker, conn):
    before = conn.execute("SELECT count(*) AS n FROM ai_tasks").fetchone()["n"]
    with pytest.raises(ingest.NotFoundError) as info:
        ingest.stream_task(tracker, uuid.uuid4(), iter(["x"]))
    assert info.value.kind == "run"
    assert conn.execute("SELECT count(*) AS n FROM ai_tasks").fetchone()["n"] == before


def test_a_chunk_that_is_not_text_or_usage_fails_the_task(tracker, run_id, conn):
    stream = ingest.stream_task(tracker, run_id, iter(["ok", {"choices": []}]))
    with pytest.raises(ValidationError) as info:
        list(stream)
    assert info.value.field == "usage"
    assert task_row(conn, stream.task_id)["status"] == "failed"
