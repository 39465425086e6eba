"""stream_task / astream_task with the real OpenAI, Anthropic and google-genai SDKs, talking
to a local server that answers like the providers (tests/provider_server.py). Every stored
column is compared with what the server sent; every cost with genai-prices' calc_price on
the provider's raw usage JSON."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import ROUND_HALF_UP, Decimal

import anthropic
import openai
import pytest
from builders import task_row
from genai_prices import calc_price, extract_usage
from google import genai
from google.genai import types as genai_types
from provider_server import TEXT, ProviderServer, usage_for

import ingest
from ingest.store import database
from ingest.tracking.tracker import Tracker

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers

FULL_TEXT = "".join(TEXT)
QUANTUM = Decimal("1e-10")


@pytest.fixture(scope="module")
def server():
    srv = ProviderServer().start()
    yield srv
    srv.shutdown()


@pytest.fixture
def tracker(db_url):
    with Tracker(db_url) as t:
        yield t
    assert database.run_totals_mismatches(db_url) == []


@pytest.fixture
def run_id(tracker):
    return tracker.create_run("chat", name="sdk streams")["id"]


def openai_client(server, scenario, cls=openai.OpenAI):
    return cls(api_key="x", base_url=f"{server.url}/{scenario}/v1", max_retries=0)


def anthropic_client(server, scenario, cls=anthropic.Anthropic):
    return cls(api_key="x", base_url=f"{server.url}/{scenario}", max_retries=0)


def gemini_client(server, scenario):
    options = genai_types.HttpOptions(base_url=f"{server.url}/{scenario}")
    return genai.Client(api_key="x", http_options=options)


def expected_cost(raw_usage, model, provider_id, api_flavor="default", root="usage"):
    """genai-prices' own price of the provider's raw JSON, rounded as ai_tasks.cost."""
    extracted = extract_usage(
        {root: raw_usage, "model": model}, provider_id=provider_id, api_flavor=api_flavor
    )
    price = calc_price(extracted.usage, model, provider_id=provider_id).total_price
    return Decimal(price).quantize(QUANTUM, rounding=ROUND_HALF_UP)


MESSAGES = [{"role": "user", "content": "Explain RLS"}]


# ---------------------------------------------------------------- OpenAI chat


@pytest.mark.parametrize("scenario", ["plain", "cached", "reasoning"])
def test_openai_chat_stream_passes_through_and_stores_usage_and_cost(
    server, tracker, run_id, conn, scenario
):
    client = openai_client(server, scenario)
    model = "o3" if scenario == "reasoning" else "gpt-4o"
    sent = tracker.clock()
    stream = client.chat.completions.create(
        model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    tracked = ingest.stream_task(
        tracker, run_id, stream, provider="openai", model=model, started_at=sent
    )
    items = list(tracked)
    assert all(type(i).__name__ == "ChatCompletionChunk" for i in items)
    assert "".join(c.choices[0].delta.content or "" for c in items if c.choices) == FULL_TEXT
    row = task_row(conn, tracked.task_id)
    raw = usage_for("openai-chat", scenario)
    assert row["status"] == "completed" and row["response_text"] == FULL_TEXT
    assert row["tokens_input"] == raw["prompt_tokens"]
    assert row["tokens_output"] == raw["completion_tokens"]
    assert row["tokens_total"] == raw["total_tokens"]
    details = raw.get("prompt_tokens_details", {})
    assert row["tokens_cached_input"] == details.get("cached_tokens")
    reasoning = raw.get("completion_tokens_details", {}).get("reasoning_tokens")
    assert row["tokens_reasoning"] == reasoning
    assert row["cost"] == expected_cost(raw, model, "openai", "chat")
    assert row["cost_source"] == "computed"
    assert row["total_time"] >= row["time_to_first_token"] >= 0


def test_openai_chat_stream_tool_calls(server, tracker, run_id, conn):
    stream = openai_client(server, "tools").chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    tracked = ingest.stream_task(tracker, run_id, stream, provider="openai", model="gpt-4o")
    for _ in tracked:
        pass
    row = task_row(conn, tracked.task_id)
    assert row["tool_updates"] == [
        {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}
    ]


def test_stream_without_usage_stores_null_tokens_and_cost(server, tracker, run_id, conn):
    stream = openai_client(server, "nousage").chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True
    )
    tracked = ingest.stream_task(tracker, run_id, stream, provider="openai", model="gpt-4o")
    assert len(list(tracked)) == len(TEXT) + 2
    row = task_row(conn, tracked.task_id)
    assert row["status"] == "completed" and row["response_text"] == FULL_TEXT
    for column in (
        "tokens_input",
        "tokens_output",
        "tokens_total",
        "tokens_cached_input",
        "tokens_cache_write",
        "tokens_reasoning",
        "cost",
        "cost_source",
    ):
        assert row[column] is None, column


def test_openai_midstream_error_fails_the_task_and_reaches_the_app(server, tracker, run_id, conn):
    stream = openai_client(server, "midstream").chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True
    )
    tracked = ingest.stream_task(tracker, run_id, stream, provider="openai", model="gpt-4o")
    with pytest.raises(openai.APIError, match="upstream overloaded"):
        for _ in tracked:
            pass
    row = task_row(conn, tracked.task_id)
    assert row["status"] == "failed" and row["response_text"] == TEXT[0]
    assert row["response_errors"][-1]["type"] == "APIError"


def test_ttft_and_total_time_include_the_wait_for_headers(server, tracker, run_id, conn):
    sent = tracker.clock()
    stream = openai_client(server, "slow").chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    tracked = ingest.stream_task(
        tracker, run_id, stream, provider="openai", model="gpt-4o", started_at=sent
    )
    list(tracked)
    row = task_row(conn, tracked.task_id)
    assert row["time_to_first_token"] >= 280  # 0.15 s before headers + 0.15 s before token
    assert row["total_time"] >= row["time_to_first_token"]


def test_async_openai_stream(server, tracker, run_id, conn):
    async def main():
        client = openai_client(server, "cached", openai.AsyncOpenAI)
        stream = await client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        tracked = ingest.astream_task(tracker, run_id, stream, provider="openai", model="gpt-4o")
        items = [item async for item in tracked]
        await client.close()
        return tracked, items

    tracked, items = asyncio.run(main())
    assert len(items) == len(TEXT) + 3
    row = task_row(conn, tracked.task_id)
    raw = usage_for("openai-chat", "cached")
    assert row["status"] == "completed" and row["response_text"] == FULL_TEXT
    assert row["cost"] == expected_cost(raw, "gpt-4o", "openai", "chat")


# ---------------------------------------------------------------- OpenAI responses


@pytest.mark.parametrize("scenario", ["plain", "cached", "reasoning"])
def test_openai_responses_stream(server, tracker, run_id, conn, scenario):
    model = "o3" if scenario == "reasoning" else "gpt-4.1"
    stream = openai_client(server, scenario).responses.create(
        model=model, input="Explain RLS", stream=True
    )
    tracked = ingest.stream_task(tracker, run_id, stream, provider="openai", model=model)
    events = list(tracked)
    assert events[-1].type == "response.completed"
    row = task_row(conn, tracked.task_id)
    raw = usage_for("openai-responses", scenario)
    assert row["response_text"] == FULL_TEXT
    assert (row["tokens_input"], row["tokens_output"]) == (
        raw["input_tokens"],
        raw["output_tokens"],
    )
    assert row["tokens_cached_input"] == raw.get("input_tokens_details", {}).get("cached_tokens")
    assert row["cost"] == expected_cost(raw, model, "openai", "responses")


# ---------------------------------------------------------------- Anthropic


@pytest.mark.parametrize("scenario", ["plain", "cached", "cached5m", "reasoning"])
def test_anthropic_raw_event_stream(server, tracker, run_id, conn, scenario):
    model = "claude-sonnet-4-5"
    stream = anthropic_client(server, scenario).messages.create(
        model=model, max_tokens=1024, messages=MESSAGES, stream=True
    )
    tracked = ingest.stream_task(tracker, run_id, stream, provider="anthropic", model=model)
    events = list(tracked)
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    row = task_row(conn, tracked.task_id)
    raw = usage_for("anthropic", scenario)
    read = raw.get("cache_read_input_tokens") or 0
    written = raw.get("cache_creation_input_tokens") or 0
    assert row["response_text"] == FULL_TEXT
    assert row["tokens_input"] == raw["input_tokens"] + read + written
    assert row["tokens_output"] == raw["output_tokens"]  # thinking included
    if "cache_read_input_tokens" in raw:
        assert (row["tokens_cached_input"], row["tokens_cache_write"]) == (read, written)
    assert row["cost"] == expected_cost(raw, model, "anthropic")


def test_anthropic_cache_writes_are_priced_at_the_write_rates(server, tracker, run_id, conn):
    stream = anthropic_client(server, "cached").messages.create(
        model="claude-sonnet-4-5", max_tokens=1024, messages=MESSAGES, stream=True
    )
    tracked = ingest.stream_task(
        tracker, run_id, stream, provider="anthropic", model="claude-sonnet-4-5"
    )
    list(tracked)
    row = task_row(conn, tracked.task_id)
    # 100 input at $3, 400 5-minute writes at $3.75, 600 1-hour writes at $6, 2000 reads at
    # $0.30, 50 output at $15 (per million tokens).
    by_hand = 100 * 3 + 400 * Decimal("3.75") + 600 * 6 + 2000 * Decimal("0.3") + 50 * 15
    assert row["cost"] == by_hand / 10**6


def test_anthropic_stream_helper_tool_use(server, tracker, run_id, conn):
    client = anthropic_client(server, "tools")
    manager = client.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=MESSAGES)
    tracked = ingest.stream_task(
        tracker, run_id, manager, provider="anthropic", model="claude-sonnet-4-5"
    )
    kinds = [event.type for event in tracked]
    assert "text" in kinds and "message_stop" in kinds  # the helper's own events
    row = task_row(conn, tracked.task_id)
    assert row["response_text"] == FULL_TEXT
    assert row["tool_updates"] == [
        {"id": "toolu_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}
    ]
    assert row["tokens_input"] == 812 and row["tokens_output"] == 356


def test_anthropic_midstream_error(server, tracker, run_id, conn):
    stream = anthropic_client(server, "midstream").messages.create(
        model="claude-sonnet-4-5", max_tokens=100, messages=MESSAGES, stream=True
    )
    tracked = ingest.stream_task(tracker, run_id, stream, provider="anthropic")
    with pytest.raises(anthropic.APIStatusError):
        list(tracked)
    row = task_row(conn, tracked.task_id)
    assert row["status"] == "failed" and row["response_text"] == TEXT[0]
    assert row["model"] == "claude-sonnet-4-5"  # taken from the stream


def test_async_anthropic_stream_helper(server, tracker, run_id, conn):
    async def main():
        client = anthropic_client(server, "cached", anthropic.AsyncAnthropic)
        manager = client.messages.stream(
            model="claude-sonnet-4-5", max_tokens=100, messages=MESSAGES
        )
        tracked = ingest.astream_task(tracker, run_id, manager, provider="anthropic")
        async for _ in tracked:
            pass
        await client.close()
        return tracked

    tracked = asyncio.run(main())
    row = task_row(conn, tracked.task_id)
    assert row["status"] == "completed" and row["tokens_cache_write"] == 1000
    assert row["cost"] == expected_cost(
        usage_for("anthropic", "cached"), "claude-sonnet-4-5", "anthropic"
    )


# ---------------------------------------------------------------- google-genai


@pytest.mark.parametrize("scenario", ["plain", "cached", "reasoning", "tools"])
def test_gemini_stream_passes_every_chunk(server, tracker, run_id, conn, scenario):
    model = "gemini-2.5-flash"
    client = gemini_client(server, scenario)  # kept: a dropped client closes its connection
    stream = client.models.generate_content_stream(model=model, contents="Explain RLS")
    tracked = ingest.stream_task(tracker, run_id, stream, provider="google", model=model)
    chunks = list(tracked)
    assert len(chunks) >= len(TEXT)
    row = task_row(conn, tracked.task_id)
    raw = usage_for("google", scenario)
    assert row["status"] == "completed" and row["response_text"] == FULL_TEXT
    assert row["tokens_input"] == raw["promptTokenCount"]
    thoughts = raw.get("thoughtsTokenCount")
    assert row["tokens_output"] == raw["candidatesTokenCount"] + (thoughts or 0)
    assert row["tokens_reasoning"] == thoughts
    assert row["tokens_cached_input"] == raw.get("cachedContentTokenCount")
    assert row["cost"] == expected_cost(raw, model, "google", root="usageMetadata")
    if scenario == "tools":
        assert row["tool_updates"][0]["name"] == "get_weather"
        assert json.loads(row["tool_updates"][0]["arguments"]) == {"city": "Paris"}


# ---------------------------------------------------------------- refused chunks


def test_refused_chunk_in_an_sdk_stream_keeps_the_app_going(server, tracker, run_id, conn):
    stream = openai_client(server, "refused").chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    tracked = ingest.stream_task(tracker, run_id, stream, provider="openai", model="gpt-4o")
    items = list(tracked)  # no exception: the application keeps receiving the SDK's items
    assert "".join(c.choices[0].delta.content or "" for c in items if c.choices) == (
        "Row lev\x00el security"
    )
    tracked.close()
    row = task_row(conn, tracked.task_id)
    assert row["status"] == "failed" and row["response_text"] == "Row "
    assert row["response_errors"][-1]["field"] == "response_text"
    assert "NUL" in row["response_errors"][-1]["message"]


def test_plain_stream_refused_chunk_raises_once_and_fails_the_task(tracker, run_id, conn):
    for bad in ("lev\x00el", "lev\ud800el"):
        tracked = ingest.stream_task(tracker, run_id, iter(["Row ", bad, "after"]))
        iterator = iter(tracked)
        assert next(iterator) == "Row "
        with pytest.raises(ingest.ValidationError) as info:
            next(iterator)
        assert info.value.field == "response_text"
        with pytest.raises(StopIteration):  # the error comes once; the stream has ended
            next(iterator)
        tracked.close()
        row = task_row(conn, tracked.task_id)
        assert row["status"] == "failed" and row["response_text"] == "Row "
        assert row["response_errors"][-1]["field"] == "response_text"


def test_started_at_default_is_when_stream_task_was_called(tracker, run_id, conn):
    def slow():
        time.sleep(0.05)
        yield "x"

    tracked = ingest.stream_task(tracker, run_id, slow())
    list(tracked)
    assert task_row(conn, tracked.task_id)["time_to_first_token"] >= 45


def test_async_stream_given_to_stream_task_is_refused_before_writing(server, tracker, run_id, conn):
    async def main():
        client = openai_client(server, "plain", openai.AsyncOpenAI)
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True
        )
        with pytest.raises(TypeError, match="astream_task"):
            ingest.stream_task(tracker, run_id, stream)
        await stream.close()
        await client.close()

    asyncio.run(main())
    assert conn.execute("SELECT count(*) AS n FROM ai_tasks").fetchone()["n"] == 0
