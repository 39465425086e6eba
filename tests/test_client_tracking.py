"""ingest.track: drop-in tracking of real OpenAI and Anthropic clients (sync, async,
streamed or not) through the background writer; a database outage during a burst."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
import uuid

import anthropic
import openai
import psycopg
import pytest
from builders import task_row
from provider_server import TEXT, ProviderServer, usage_for
from psycopg.rows import dict_row
from test_sdk_streams import MESSAGES, expected_cost

import ingest
from ingest.sdk.background_writer import BackgroundWriter
from ingest.store import database, embedded
from ingest.tracking.tracker import Tracker

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers

FULL_TEXT = "".join(TEXT)


@pytest.fixture(scope="module")
def server():
    srv = ProviderServer().start()
    yield srv
    srv.shutdown()


@pytest.fixture
def tracker(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("AI_RUNS_HOME", str(tmp_path / "home"))
    with Tracker(db_url) as t:
        yield t
    assert database.run_totals_mismatches(db_url) == []


def tasks_of(conn, run_id=None):
    if run_id is None:
        return conn.execute("SELECT * FROM ai_tasks ORDER BY created_at").fetchall()
    return conn.execute(
        "SELECT * FROM ai_tasks WHERE run_id = %s ORDER BY created_at", (run_id,)
    ).fetchall()


def test_readme_example_tracks_a_real_openai_client(server, tracker, conn):
    client = ingest.track(openai.OpenAI(api_key="x", base_url=f"{server.url}/cached/v1"), tracker)
    with tracker.run("chat", name="support") as run_id:
        reply = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    tracker.flush()
    assert reply.choices[0].message.content == FULL_TEXT  # the SDK's own object
    (row,) = tasks_of(conn, run_id)
    raw = usage_for("openai-chat", "cached")
    assert row["request_data"] == {"model": "gpt-4o", "messages": MESSAGES}
    assert row["response_data"]["usage"] == reply.usage.model_dump(mode="json")
    assert row["response_text"] == FULL_TEXT and row["status"] == "completed"
    assert (row["tokens_input"], row["tokens_cached_input"]) == (2400, 2048)
    assert row["cost"] == expected_cost(raw, "gpt-4o", "openai", "chat")
    assert row["cost_source"] == "computed"
    assert row["endpoint"] == "chat.completions" and row["provider"] == "openai"
    assert row["total_time"] >= 0 and row["time_to_first_token"] == row["total_time"]


def test_tracked_calls_store_the_answering_model_and_response_info(server, tracker, conn):
    """model_id and response_info, which the background writer once dropped, are written
    for tracked calls, streamed or not, as for every other writable column."""
    client = ingest.track(openai.OpenAI(api_key="x", base_url=f"{server.url}/plain/v1"), tracker)
    aclient = ingest.track(
        anthropic.Anthropic(api_key="x", base_url=f"{server.url}/plain"), tracker
    )
    with tracker.run("chat") as run_id:
        ids = [client.chat.completions.create(model="gpt-4o", messages=MESSAGES).id]
        chunks = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        ids.append({chunk.id for chunk in chunks}.pop())
        ids.append(
            aclient.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=MESSAGES).id
        )
        with aclient.messages.stream(
            model="claude-sonnet-4-5", max_tokens=10, messages=MESSAGES
        ) as stream:
            ids.append(stream.get_final_message().id)
    tracker.flush()
    rows = tasks_of(conn, run_id)
    assert len(set(ids)) == 4  # the provider server gives every answer its own id
    assert [(r["model_id"], r["response_info"]) for r in rows] == [
        ("gpt-4o", {"id": ids[0], "finish_reason": "stop"}),
        ("gpt-4o", {"id": ids[1], "finish_reason": "stop"}),
        ("claude-sonnet-4-5", {"id": ids[2], "finish_reason": "end_turn"}),
        ("claude-sonnet-4-5", {"id": ids[3], "finish_reason": "end_turn"}),
    ]


def test_task_id_and_run_per_call_and_created_runs(server, tracker, conn):
    client = ingest.track(openai.OpenAI(api_key="x", base_url=f"{server.url}/plain/v1"), tracker)
    run = tracker.create_run("chat", name="given")
    socket_id = uuid.uuid4()
    client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, ai_run_id=run["id"], ai_task_id=socket_id
    )
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # a new run
    tracker.flush()
    assert task_row(conn, socket_id)["run_id"] == run["id"]
    assert "ai_task_id" not in task_row(conn, socket_id)["request_data"]
    other = [t for t in tasks_of(conn) if t["task_id"] != socket_id]
    assert len(other) == 1
    new_run = conn.execute("SELECT * FROM ai_runs WHERE id = %s", (other[0]["run_id"],)).fetchone()
    assert new_run["name"] == "Explain RLS" and new_run["task_count"] == 1


def test_streamed_openai_call_returns_the_sdk_stream(server, tracker, conn):
    client = ingest.track(openai.OpenAI(api_key="x", base_url=f"{server.url}/slow/v1"), tracker)
    with tracker.run("chat") as run_id:
        stream = client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        assert type(stream).__name__ == "Stream"
        with stream:
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    tracker.flush()
    assert text == FULL_TEXT
    (row,) = tasks_of(conn, run_id)
    assert row["response_text"] == FULL_TEXT and row["tokens_input"] == 812
    assert row["time_to_first_token"] >= 280  # headers wait + first-token wait


@pytest.fixture
def no_cyclic_gc():
    """Cyclic garbage collection off: what happens must happen on reference counts alone."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def _read_one_then(stream, let_go) -> float:
    """Read up to the first text, let go of the stream as `let_go` says; the clock then."""
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    let_go(stream)
    return time.monotonic()


LET_GO = {
    "close": lambda stream: stream.close(),
    "with block": lambda stream: stream.__exit__(None, None, None),
    "released": lambda stream: None,  # the caller's last reference goes when it returns
}


@pytest.mark.parametrize("let_go", LET_GO, ids=list(LET_GO))
def test_an_abandoned_stream_is_cancelled_when_closed_or_released(
    server, tracker, conn, no_cyclic_gc, let_go
):
    client = ingest.track(openai.OpenAI(api_key="x", base_url=f"{server.url}/slow/v1"), tracker)
    with tracker.run("chat") as run_id:
        sent = time.monotonic()
        let_go_at = _read_one_then(
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True),
            LET_GO[let_go],
        )
    time.sleep(0.6)  # a task finished only later would show a total_time this much longer
    assert tracker.flush_background(10)
    (row,) = tasks_of(conn, run_id)
    assert row["status"] == "cancelled" and row["response_text"] == TEXT[0]
    assert row["response_metadata"]["cancel_reason"]
    assert row["total_time"] <= round((let_go_at - sent) * 1000) + 50


def test_an_abandoned_async_stream_is_cancelled_when_closed(server, tracker, conn, no_cyclic_gc):
    client = ingest.track(
        openai.AsyncOpenAI(api_key="x", base_url=f"{server.url}/slow/v1"), tracker
    )

    async def read_first_text_then_close(run_id):
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, ai_run_id=run_id
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        await stream.close()
        closed_at = time.monotonic()
        await asyncio.sleep(0.6)  # the loop runs on: finishing at its shutdown is too late
        return closed_at

    run_id = tracker.create_run("chat", name="async")["id"]
    sent = time.monotonic()
    closed_at = asyncio.run(read_first_text_then_close(run_id))
    assert tracker.flush_background(10)
    (row,) = tasks_of(conn, run_id)
    assert row["status"] == "cancelled" and row["response_text"] == TEXT[0]
    assert row["total_time"] <= round((closed_at - sent) * 1000) + 50


def test_an_abandoned_stream_helper_is_cancelled_on_leaving_its_block(
    server, tracker, conn, no_cyclic_gc
):
    client = ingest.track(anthropic.Anthropic(api_key="x", base_url=f"{server.url}/slow"), tracker)
    model = "claude-sonnet-4-5"
    with (
        tracker.run("chat") as run_id,
        client.messages.stream(model=model, max_tokens=10, messages=MESSAGES) as s,
    ):
        first = next(iter(s.text_stream))
    assert tracker.flush_background(10)
    (row,) = tasks_of(conn, run_id)
    assert row["status"] == "cancelled" and row["response_text"] == first


def test_anthropic_sync_async_and_stream_helper(server, tracker, conn):
    base = f"{server.url}/cached"
    client = ingest.track(anthropic.Anthropic(api_key="x", base_url=base), tracker)
    aclient = ingest.track(anthropic.AsyncAnthropic(api_key="x", base_url=base), tracker)
    raw = usage_for("anthropic", "cached")
    model = "claude-sonnet-4-5"
    with tracker.run("chat") as run_id:
        message = client.messages.create(model=model, max_tokens=10, messages=MESSAGES)
        with client.messages.stream(model=model, max_tokens=10, messages=MESSAGES) as stream:
            streamed = "".join(stream.text_stream)
            final = stream.get_final_message()

        async def main():
            reply = await aclient.messages.create(model=model, max_tokens=10, messages=MESSAGES)
            events = await aclient.messages.create(
                model=model, max_tokens=10, messages=MESSAGES, stream=True
            )
            kinds = [event.type async for event in events]
            return reply, kinds

        reply, kinds = asyncio.run(main())
    tracker.flush()
    assert message.content[0].text == streamed == final.content[0].text == FULL_TEXT
    assert reply.content[0].text == FULL_TEXT and kinds[-1] == "message_stop"
    rows = tasks_of(conn, run_id)
    assert len(rows) == 4
    for row in rows:
        assert row["status"] == "completed" and row["response_text"] == FULL_TEXT
        assert (row["tokens_input"], row["tokens_cache_write"]) == (3100, 1000)
        assert row["cost"] == expected_cost(raw, model, "anthropic")


def test_async_openai_responses_streamed_and_not(server, tracker, conn):
    async def main():
        client = ingest.track(
            openai.AsyncOpenAI(api_key="x", base_url=f"{server.url}/reasoning/v1"), tracker
        )
        with tracker.run("chat") as run_id:
            plain = await client.responses.create(model="o3", input="Explain RLS")
            stream = await client.responses.create(model="o3", input="Explain RLS", stream=True)
            events = [event async for event in stream]
        return run_id, plain, events

    run_id, plain, events = asyncio.run(main())
    tracker.flush()
    assert plain.output_text == FULL_TEXT and events[-1].type == "response.completed"
    raw = usage_for("openai-responses", "reasoning")
    rows = tasks_of(conn, run_id)
    assert len(rows) == 2
    for row in rows:
        assert row["tokens_reasoning"] == 1200 and row["response_text"] == FULL_TEXT
        assert row["cost"] == expected_cost(raw, "o3", "openai", "responses")


def test_raw_response_parse_and_stream_helpers_are_tracked(server, tracker, conn, caplog):
    client = ingest.track(openai.OpenAI(api_key="x", base_url=f"{server.url}/plain/v1"), tracker)
    aclient = ingest.track(
        anthropic.AsyncAnthropic(api_key="x", base_url=f"{server.url}/plain"), tracker
    )
    chat = client.chat.completions
    options = {"model": "gpt-4o", "messages": MESSAGES}
    usage = {"stream_options": {"include_usage": True}}
    with tracker.run("chat") as run_id:
        raw = chat.with_raw_response.create(**options)
        assert raw.parse().choices[0].message.content == FULL_TEXT  # the SDK's own answer
        raw_stream = chat.with_raw_response.create(**options, stream=True, **usage)
        streamed = "".join(
            c.choices[0].delta.content or "" for c in raw_stream.parse() if c.choices
        )
        parsed = chat.parse(**options)
        with chat.stream(**options, **usage) as helper:
            deltas = [e.delta for e in helper if e.type == "content.delta"]

        async def anthropic_raw():
            answer = await aclient.messages.with_raw_response.create(
                model="claude-sonnet-4-5", max_tokens=10, messages=MESSAGES
            )
            return await answer.parse()

        message = asyncio.run(anthropic_raw())
    tracker.flush()
    assert streamed == parsed.choices[0].message.content == "".join(deltas) == FULL_TEXT
    assert message.content[0].text == FULL_TEXT
    rows = tasks_of(conn, run_id)
    assert [r["endpoint"] for r in rows] == ["chat.completions"] * 4 + ["messages"]
    for row in rows:
        assert row["status"] == "completed" and row["response_text"] == FULL_TEXT
        assert row["cost_source"] == "computed" and row["cost"] > 0
    assert [r["tokens_input"] for r in rows[:4]] == [812] * 4
    caplog.set_level(logging.WARNING, "ingest.client_tracking")
    for _ in range(2):
        with chat.with_streaming_response.create(**options) as answer:
            answer.read()
    warned = [r for r in caplog.records if "with_streaming_response" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING


def test_failed_request_is_recorded_and_raised(server, tracker, conn):
    client = ingest.track(
        openai.OpenAI(api_key="x", base_url=f"{server.url}/notfound/v1", max_retries=0), tracker
    )
    with tracker.run("chat") as run_id, pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    tracker.flush()
    (row,) = tasks_of(conn, run_id)
    assert row["status"] == "failed" and row["response_errors"][0]["type"] == "NotFoundError"
    assert row["tokens_input"] is None and row["cost"] is None and row["cost_source"] is None


def test_database_outage_during_a_burst_loses_nothing_and_writes_once(
    server, tmp_path, monkeypatch, caplog
):
    """Stop the database mid-burst: every call succeeds; after the restart every task is
    there exactly once."""
    monkeypatch.setenv("AI_RUNS_HOME", str(tmp_path / "home"))
    pgdata = tmp_path / "outage" / "pgdata"
    pgdata.parent.mkdir()
    url = embedded.ensure_database(embedded.start(pgdata), "outage")
    database.migrate(url)
    tracker = Tracker(url)
    run_id = tracker.create_run("chat", name="burst")["id"]
    client = ingest.track(
        openai.OpenAI(api_key="x", base_url=f"{server.url}/plain/v1"), tracker, run=run_id
    )
    ids = [uuid.uuid4() for _ in range(60)]
    caplog.set_level(logging.WARNING, "ingest.background_writer")
    try:
        for i, task_id in enumerate(ids):
            if i == 20:
                tracker.flush()
                embedded.stop(pgdata)
            if i == 40:
                assert tracker.background.writer.spooled_files()  # spooled while down
                embedded.start(pgdata)
            reply = client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, ai_task_id=task_id
            )
            assert reply.choices[0].message.content == FULL_TEXT
        assert tracker.flush_background(60)
        assert not tracker.background.writer.spooled_files()
        assert "database unreachable" in caplog.text
        with psycopg.connect(url, row_factory=dict_row) as conn:
            rows = conn.execute("SELECT task_id, status FROM ai_tasks").fetchall()
            assert sorted(r["task_id"] for r in rows) == sorted(ids)  # each exactly once
            run = conn.execute("SELECT task_count FROM ai_runs WHERE id = %s", (run_id,)).fetchone()
            assert run["task_count"] == 60
        assert database.run_totals_mismatches(url) == []
    finally:
        tracker.close()
        embedded.stop(pgdata)


def test_spool_replayed_twice_is_written_once_and_full_spool_is_logged(db_url, tmp_path, caplog):
    writer = BackgroundWriter(db_url, spool_dir=tmp_path / "spool", max_spool_bytes=3000)
    with psycopg.connect(db_url, autocommit=True) as conn:
        run_id = conn.execute(
            "INSERT INTO ai_runs (source_type, name) VALUES ('chat', 'r') RETURNING id"
        ).fetchone()[0]
    row = {
        "run_id": str(run_id),
        "task_id": str(uuid.uuid4()),
        "status": "completed",
        "response_text": "x",
        "tokens_input": 1,
        "tokens_output": 2,
    }
    writer._spool([("task", row)])
    copy = writer.spooled_files()[0].read_text()
    (tmp_path / "spool" / "99999999999999999999-copy.jsonl").write_text(copy)  # a 2nd replayer
    assert writer.flush(10)
    caplog.set_level(logging.ERROR, "ingest.background_writer")
    big = {**row, "response_text": "y" * 4000}
    writer._spool([("task", big)])
    writer._spool([("task", big)])
    assert caplog.text.count("is full") == 1 and writer.dropped == 2
    writer.close()
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM ai_tasks").fetchone()[0] == 1


def _run_and_task(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        run_id = conn.execute(
            "INSERT INTO ai_runs (source_type, name) VALUES ('chat', 'r') RETURNING id"
        ).fetchone()[0]
    task = {"run_id": str(run_id), "task_id": str(uuid.uuid4()), "status": "completed",
            "response_text": "kept", "tokens_input": 3, "tokens_output": 4}  # fmt: skip
    return run_id, task


def _stored_task_ids(db_url):
    with psycopg.connect(db_url) as conn:
        return {str(r[0]) for r in conn.execute("SELECT task_id FROM ai_tasks").fetchall()}


def test_a_malformed_spool_file_is_set_aside_and_the_writer_goes_on(db_url, tmp_path, caplog):
    spool = tmp_path / "spool"
    spool.mkdir()
    _, good = _run_and_task(db_url)
    (spool / "00000000000000000001-bad.jsonl").write_text('{"not": "a row"}\n')
    (spool / "00000000000000000002-torn.jsonl").write_bytes(b'["task", {"run_id": \xff')
    (spool / "00000000000000000003-good.jsonl").write_text(json.dumps(["task", good]) + "\n")
    caplog.set_level(logging.WARNING, "ingest.background_writer")
    writer = BackgroundWriter(db_url, spool_dir=spool)
    try:
        assert writer.flush(10)  # the idle replay met the bad files first
        _, later = _run_and_task(db_url)
        writer.submit_task(later)  # the thread is alive: written after the bad files
        assert writer.flush(10)
    finally:
        writer.close()
    assert _stored_task_ids(db_url) == {good["task_id"], later["task_id"]}
    assert sorted(p.name for p in spool.iterdir()) == [
        "00000000000000000001-bad.bad",
        "00000000000000000002-torn.bad",
    ]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("cannot be read" in r.getMessage() for r in warnings) == 2


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_close_spools_what_is_queued_when_the_writer_thread_died(db_url, tmp_path):
    spool = tmp_path / "spool"
    _, task = _run_and_task(db_url)
    writer = BackgroundWriter(db_url, spool_dir=spool)

    def die() -> None:  # something the thread does not survive (it is not an Exception)
        raise SystemExit("writer thread killed")

    writer._replay_if_due = die  # the idle replay kills the thread
    writer._thread.join(5)
    assert not writer._thread.is_alive()
    writer.submit_task(task)
    assert writer.flush(0.5) is False  # promptly: nothing will write it
    writer.close()
    assert [p.suffix for p in spool.iterdir()] == [".jsonl"]  # spooled, not lost
    later = BackgroundWriter(db_url, spool_dir=spool)  # the next process replays it
    try:
        assert later.flush(10)
    finally:
        later.close()
    assert _stored_task_ids(db_url) == {task["task_id"]}
