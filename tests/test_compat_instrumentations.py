"""Compatibility suite: the real OpenTelemetry instrumentations integrators use drive the
real `openai` and `anthropic` SDKs against the local provider server and export over
OTLP/HTTP to a running `ai-runs serve`. For each call: exactly one task, whose tokens are
the provider's usage, whose cost is genai-prices' `calc_price` on that usage, with its TTFT
(streams) and its text. docs/server.md has the resulting table.

Instrumentations: OpenInference (`openinference-instrumentation-openai`, `-anthropic`) and
Traceloop OpenLLMetry (`opentelemetry-instrumentation-openai`, `-anthropic`), each with the
Anthropic SDK's own gen_ai spans on (its default when it has a tracer provider): so every
Anthropic call is reported by two tracers and must still be one task.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import pkgutil
import uuid
from decimal import ROUND_HALF_UP, Decimal

import anthropic
import openai
import psycopg
import pytest
from genai_prices import calc_price, extract_usage
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from psycopg.rows import dict_row

from ingest.sdk.provider_usage import read_usage
from ingest.store import database, embedded
from tests.provider_server import TEXT, ProviderServer, usage_for
from tests.server_support import serve

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = [pytest.mark.compat, pytest.mark.through_the_layers]

QUANTUM = Decimal("1e-10")
ANSWER = "".join(TEXT)


@pytest.fixture(scope="module")
def module_db(pg_server, template_db):
    """One database for the module (one server per module keeps the suite fast)."""
    name = f"ai_runs_compat_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        embedded.create_database(conn, name, template_db)
    url = embedded.with_database(pg_server, name)
    database._migrated.add(url)
    yield url
    with psycopg.connect(pg_server, autocommit=True) as conn:
        embedded.drop_database(conn, name)


@pytest.fixture(scope="module")
def served(module_db):
    with serve(module_db) as s:
        yield s


@pytest.fixture(scope="module")
def provider():
    server = ProviderServer().start()
    yield server
    server.shutdown()


def _instrumentors(library: str) -> list:
    if library == "openinference":
        from openinference.instrumentation.anthropic import AnthropicInstrumentor
        from openinference.instrumentation.openai import OpenAIInstrumentor
    else:
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    return [OpenAIInstrumentor(), AnthropicInstrumentor()]


def _sdk_methods() -> list[tuple[type, str, object]]:
    """Every method of the SDKs' resource classes, as they are now."""
    found = []
    for package in (openai.resources, anthropic.resources):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for cls in vars(module).values():
                if isinstance(cls, type) and cls.__module__ == module.__name__:
                    found += [(cls, name, value) for name, value in vars(cls).items()]
    return found


def _restore(methods: list[tuple[type, str, object]]) -> None:
    """Put back what an instrumentation left patched: Traceloop's uninstrument leaves the
    OpenAI methods wrapped, which would change the SDKs for the rest of the test run."""
    for cls, name, value in methods:
        if vars(cls).get(name) is not value:
            setattr(cls, name, value)


@pytest.fixture(scope="module", params=["openinference", "traceloop"])
def tracing(request, served):
    """A tracer provider exporting to the server, with one library's instrumentations
    (removed afterwards, and the SDKs restored as they were)."""
    methods = _sdk_methods()
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "compat"}))
    # 30 s, not the exporter's 10: on a busy 2-core machine the server's first answer once
    # took longer, the exporter gave the batch up, and the span reached the next test.
    exporter = OTLPSpanExporter(
        endpoint=f"{served.base}/v1/traces",
        headers={"Authorization": f"Bearer {served.key}"},
        timeout=30,
    )
    tracer_provider.add_span_processor(
        BatchSpanProcessor(exporter, max_export_batch_size=4, schedule_delay_millis=50)
    )
    instrumentors = _instrumentors(request.param)
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=tracer_provider)
    yield tracer_provider
    for instrumentor in instrumentors:
        instrumentor.uninstrument()
    _restore(methods)
    tracer_provider.shutdown()


def task_ids(url: str) -> set:
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute("SELECT task_id FROM ai_tasks").fetchall()}


def the_new_task(url: str, before: set) -> dict:
    """The one task the call made (exactly one)."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT * FROM ai_tasks").fetchall()
    new = [row for row in rows if row["task_id"] not in before]
    assert len(new) == 1, [(r["task_name"], r["response_metadata"]["otlp"]["scope"]) for r in new]
    return new[0]


def expected_cost(raw_usage, model, provider_id, api_flavor="default"):
    extracted = extract_usage(
        {"usage": raw_usage, "model": model}, provider_id=provider_id, api_flavor=api_flavor
    )
    price = calc_price(extracted.usage, model, provider_id=provider_id).total_price
    return Decimal(price).quantize(QUANTUM, rounding=ROUND_HALF_UP)


def check(task, raw_usage, model, provider_id, *, api_flavor="default", streamed):
    """Tokens, cost, TTFT and text of the call's task."""
    columns = read_usage(raw_usage).columns
    for column, value in columns.items():
        # A part the provider reports as 0 (no reasoning) may be left out by a tracer.
        stored = task[column] if value else task[column] or 0
        if column != "tokens_total":
            assert stored == value, (column, task[column], value)
    assert task["tokens_total"] == columns["tokens_input"] + columns["tokens_output"]
    assert task["cost"] == expected_cost(raw_usage, model, provider_id, api_flavor)
    assert task["response_text"] == ANSWER
    assert task["status"] == "completed"
    if streamed:
        assert task["time_to_first_token"] is not None
        assert 0 <= task["time_to_first_token"] <= task["total_time"]


def run_call(served, tracing, call):
    """Make the call; flush the spans to the server; the one task it made."""
    before = task_ids(served.url)
    call()
    assert tracing.force_flush(10_000)
    return the_new_task(served.url, before)


MESSAGES = [{"role": "user", "content": "Explain RLS"}]


# ---------------------------------------------------------------- OpenAI


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_openai_chat_sync_cached(served, provider, tracing, stream):
    client = openai.OpenAI(base_url=f"{provider.url}/cached/v1", api_key="x", max_retries=0)

    def call():
        if stream:
            chunks = client.chat.completions.create(
                model="gpt-4o",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    task = run_call(served, tracing, call)
    check(task, usage_for("openai-chat", "cached"), "gpt-4o", "openai", api_flavor="chat",
          streamed=stream)  # fmt: skip


def test_openai_chat_async_stream(served, provider, tracing):
    client = openai.AsyncOpenAI(base_url=f"{provider.url}/plain/v1", api_key="x", max_retries=0)

    async def call():
        chunks = await client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        async for _ in chunks:
            pass

    task = run_call(served, tracing, lambda: asyncio.run(call()))
    check(task, usage_for("openai-chat", "plain"), "gpt-4o", "openai", api_flavor="chat",
          streamed=True)  # fmt: skip


def test_openai_responses_reasoning(served, provider, tracing):
    client = openai.OpenAI(base_url=f"{provider.url}/reasoning/v1", api_key="x", max_retries=0)
    task = run_call(
        served, tracing, lambda: client.responses.create(model="o4-mini", input="Explain RLS")
    )
    check(task, usage_for("openai-responses", "reasoning"), "o4-mini", "openai",
          api_flavor="responses", streamed=False)  # fmt: skip


# ---------------------------------------------------------------- Anthropic


def anthropic_client(provider, tracing, scenario, cls=anthropic.Anthropic):
    # The SDK's own spans: on by default with the global tracer provider; given ours here.
    return cls(
        base_url=f"{provider.url}/{scenario}",
        api_key="x",
        max_retries=0,
        open_telemetry={"tracer_provider": tracing},
    )


@pytest.mark.parametrize(
    "scenario", ["cached", "cached5m", "reasoning"], ids=["write-1h", "write-5m", "thinking"]
)
def test_anthropic_create_sync(served, provider, tracing, scenario):
    client = anthropic_client(provider, tracing, scenario)
    task = run_call(
        served,
        tracing,
        lambda: client.messages.create(
            model="claude-sonnet-4-5", max_tokens=2000, messages=MESSAGES
        ),
    )
    check(task, usage_for("anthropic", scenario), "claude-sonnet-4-5", "anthropic",
          streamed=False)  # fmt: skip


def test_anthropic_stream_sync_cache_writes(served, provider, tracing):
    client = anthropic_client(provider, tracing, "cached")

    def call():
        with client.messages.stream(
            model="claude-sonnet-4-5", max_tokens=100, messages=MESSAGES
        ) as stream:
            assert "".join(stream.text_stream) == ANSWER

    task = run_call(served, tracing, call)
    check(task, usage_for("anthropic", "cached"), "claude-sonnet-4-5", "anthropic",
          streamed=True)  # fmt: skip


def test_anthropic_async_create_and_stream(served, provider, tracing):
    def client():  # one per event loop
        return anthropic_client(provider, tracing, "plain", anthropic.AsyncAnthropic)

    async def create():
        await client().messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=MESSAGES)

    async def stream():
        chunks = await client().messages.create(
            model="claude-sonnet-4-5", max_tokens=100, messages=MESSAGES, stream=True
        )
        async for _ in chunks:
            pass

    usage = usage_for("anthropic", "plain")
    task = run_call(served, tracing, lambda: asyncio.run(create()))
    check(task, usage, "claude-sonnet-4-5", "anthropic", streamed=False)
    task = run_call(served, tracing, lambda: asyncio.run(stream()))
    check(task, usage, "claude-sonnet-4-5", "anthropic", streamed=True)


def test_every_run_holds_its_tasks_and_totals_agree(served, tracing):
    with psycopg.connect(served.url, row_factory=dict_row) as conn:
        empty = conn.execute("SELECT id, name FROM ai_runs WHERE task_count = 0").fetchall()
        names = [r["name"] for r in conn.execute("SELECT name FROM ai_runs").fetchall()]
    assert empty == []
    assert set(names) == {"Explain RLS"}
    assert database.run_totals_mismatches(served.url) == []
