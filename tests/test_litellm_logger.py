"""The LiteLLM custom logger: real litellm against the local provider server."""

from __future__ import annotations

import asyncio
import gc
import os
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no internet: its own snapshot

import pytest
from provider_server import TEXT, ProviderServer, usage_for  # noqa: E402
from test_sdk_streams import MESSAGES, expected_cost  # noqa: E402

from ingest.tracking.tracker import Tracker

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers


@pytest.fixture(scope="module")
def server():
    srv = ProviderServer().start()
    yield srv
    srv.shutdown()


@pytest.fixture(scope="module")
def litellm():
    """LiteLLM, imported when the module's first test runs, not when the file is collected:
    its import costs seconds of CPU, and every xdist worker collects every file
    (docs/testing.md, "Why it is fast enough")."""
    import litellm

    return litellm


@pytest.fixture(scope="module")
def logger(litellm):
    """One logger for the module: LiteLLM registers a callback object the first time it
    sees it and keeps calling that one, so each test hands it its own tracker."""
    from ingest.sdk.litellm_logger import AiRunsLogger

    return AiRunsLogger(None)  # type: ignore[arg-type]


@pytest.fixture
def tracker(db_url, tmp_path, monkeypatch, litellm, logger):
    monkeypatch.setenv("AI_RUNS_HOME", str(tmp_path / "home"))
    with Tracker(db_url) as t:
        monkeypatch.setattr(logger, "tracker", t)
        monkeypatch.setattr(litellm, "callbacks", [logger])
        yield t


def test_litellm_success_sync_async_and_failure(server, tracker, conn, litellm):
    base = f"{server.url}/cached/v1"
    common = {"model": "openai/gpt-4o", "messages": MESSAGES, "api_key": "x", "api_base": base}
    with tracker.run("chat") as run_id:
        reply = litellm.completion(**common)

        async def call_async():
            await litellm.acompletion(**common)
            await asyncio.sleep(0.5)  # LiteLLM runs its async success hook as a task

        asyncio.run(call_async())
        with pytest.raises(Exception):  # noqa: B017 (litellm maps the 404 to its own class)
            litellm.completion(**{**common, "api_base": f"{server.url}/notfound/v1"})
    assert reply.choices[0].message.content == "".join(TEXT)
    deadline = 0
    rows = []
    while deadline < 150:  # LiteLLM logs from its own worker threads
        tracker.flush()
        rows = conn.execute(
            "SELECT * FROM ai_tasks WHERE run_id = %s ORDER BY created_at", (run_id,)
        ).fetchall()
        if len(rows) == 3:
            break
        deadline += 1
        time.sleep(0.1)
    assert sorted(r["status"] for r in rows) == ["completed"] * 2 + ["failed"]
    raw = usage_for("openai-chat", "cached")
    for row in (r for r in rows if r["status"] == "completed"):
        assert row["provider"] == "openai" and row["response_text"] == "".join(TEXT)
        assert (row["tokens_input"], row["tokens_cached_input"]) == (2400, 2048)
        assert row["cost"] == expected_cost(raw, "gpt-4o", "openai", "chat")
        assert row["cost_source"] == "computed"
        assert "litellm_cost" in row["response_metadata"]
        assert row["total_time"] >= (row["time_to_first_token"] or 0)


def _rows_when(tracker, conn, run_id, count):
    """The run's tasks once `count` are written (LiteLLM logs from its worker threads, and
    its stream object is freed by the cyclic garbage collector once those let it go)."""
    rows = []
    for _ in range(50):
        gc.collect()
        tracker.flush()
        rows = conn.execute(
            "SELECT * FROM ai_tasks WHERE run_id = %s ORDER BY created_at", (run_id,)
        ).fetchall()
        if len(rows) >= count:
            break
        time.sleep(0.1)
    return rows


def _stream(server, scenario, run_id=None, **options):
    """A LiteLLM stream; with `run_id`, its run named in the call's metadata."""
    import litellm  # imported by the `litellm` fixture, which `tracker` needs

    base = f"{server.url}/{scenario}/v1"
    if run_id is not None:
        options["metadata"] = {"ai_run_id": str(run_id)}
    return litellm.completion(model="openai/gpt-4o", messages=MESSAGES, api_key="x",
                              api_base=base, stream=True, **options)  # fmt: skip


def _text(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_litellm_stream_usage_is_the_providers_or_null(server, tracker, conn):
    """Without usage from the provider, LiteLLM's own token estimate is not stored."""
    run_id = tracker.create_run("chat", name="usage")["id"]
    estimated = _text(_stream(server, "nousage", run_id))
    reported = _stream(server, "plain", run_id, stream_options={"include_usage": True})
    assert _text(reported) == estimated
    rows = _rows_when(tracker, conn, run_id, 2)
    by_usage = sorted(rows, key=lambda r: r["tokens_input"] is not None)
    assert [r["status"] for r in by_usage] == ["completed", "completed"]
    assert all(r["response_text"] == "".join(TEXT) for r in by_usage)
    unknown, known = by_usage
    assert (unknown["tokens_input"], unknown["tokens_output"], unknown["cost"]) == (None,) * 3
    assert (known["tokens_input"], known["tokens_output"]) == (812, 356)
    assert known["cost"] == expected_cost(
        usage_for("openai-chat", "plain"), "gpt-4o", "openai", "chat"
    )


def test_litellm_stream_ttft_is_at_the_first_text(server, tracker, conn):
    """LiteLLM stamps its first chunk, an empty role chunk; TTFT is the first text. The
    stream is logged from LiteLLM's thread, and still lands in the `with tracker.run()`
    run it was made in."""
    pause = 2.0
    with tracker.run("chat") as run_id:
        stream = _stream(server, "plain")
        first = next(stream)
        assert first.choices[0].delta.content in ("", None)
        time.sleep(pause)  # the application is slow to ask for the next chunk
        rest = _text(stream)
    (row,) = _rows_when(tracker, conn, run_id, 1)
    assert rest == "".join(TEXT) and row["status"] == "completed"
    # LiteLLM's own stamps: its start and its first (empty) chunk, before the pause.
    call = stream.logging_obj
    first_chunk = round((call.completion_start_time - call.start_time).total_seconds() * 1000)
    assert row["time_to_first_token"] >= first_chunk + pause * 1000 - 20
    assert row["time_to_first_token"] <= row["total_time"]


def test_litellm_stream_stopped_early_is_cancelled_with_what_was_seen(server, tracker, conn):
    run_id = tracker.create_run("chat", name="stopped")["id"]
    stream = _stream(server, "plain", run_id)
    seen = ""
    for chunk in stream:
        seen += chunk.choices[0].delta.content or ""
        if seen:
            break
    del stream, chunk  # the application lets go of it
    (row,) = _rows_when(tracker, conn, run_id, 1)
    assert row["status"] == "cancelled" and row["response_text"] == seen == TEXT[0]
    assert row["response_metadata"]["cancel_reason"]
    assert (row["tokens_input"], row["cost"]) == (None, None)
    assert row["time_to_first_token"] is not None
    assert row["total_time"] >= row["time_to_first_token"]
