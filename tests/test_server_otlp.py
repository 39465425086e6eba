"""The OTLP/HTTP receiver: the real opentelemetry-sdk exporter, and OTLP/JSON bodies as the
Node exporters send them, against a real server and real Postgres."""

from __future__ import annotations

import gzip
import json
import uuid

import psycopg
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import Status, StatusCode
from psycopg.rows import dict_row

from ingest.spend.pricing import cost_of_task
from ingest.store import database
from tests.server_support import serve


@pytest.fixture
def served(db_url):
    with serve(db_url) as s:
        yield s


def tasks_of(url: str) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM ai_tasks ORDER BY created_at").fetchall()


def runs_of(url: str) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM ai_runs ORDER BY created_at").fetchall()


def test_real_sdk_exporter_spans_become_tasks_with_tokens_and_cost(served):
    exporter = OTLPSpanExporter(
        endpoint=f"{served.base}/v1/traces",
        headers={"Authorization": f"Bearer {served.key}"},
        compression=Compression.Gzip,
    )
    recorded = []

    class Recording(SimpleSpanProcessor):
        def on_end(self, span):  # keep the spans to send them again
            recorded.append(span)
            super().on_end(span)

    provider = TracerProvider(resource=Resource.create({"service.name": "chat-api"}))
    provider.add_span_processor(Recording(exporter))
    tracer = provider.get_tracer("test")
    messages = [{"role": "user", "parts": [{"type": "text", "content": "Explain RLS"}]}]
    output = [{"role": "assistant", "parts": [{"type": "text", "content": "Row level"}],
               "finish_reason": "stop"}]  # fmt: skip
    with tracer.start_as_current_span("POST /chat"):  # not an LLM call: skipped
        with tracer.start_as_current_span("chat gpt-4o") as span:
            span.set_attributes({
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.request.temperature": 0.2, "gen_ai.usage.input_tokens": 812,
                "gen_ai.usage.output_tokens": 356, "gen_ai.usage.cache_read.input_tokens": 512,
                "gen_ai.usage.reasoning.output_tokens": 0,
                "gen_ai.usage.cache_creation.input_tokens": 100,
                "gen_ai.input.messages": json.dumps(messages),
                "gen_ai.output.messages": json.dumps(output),
                "gen_ai.response.id": "chatcmpl-1",
            })  # fmt: skip
            span.add_event("gen_ai.first_chunk")
        with tracer.start_as_current_span("chat claude") as span:
            span.set_attributes({
                "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.usage.input_tokens": 10, "error.type": "overloaded_error",
            })  # fmt: skip
            span.set_status(Status(StatusCode.ERROR, "529 overloaded"))
        with tracer.start_as_current_span("get_weather") as span:
            span.set_attributes({"gen_ai.operation.name": "execute_tool",
                                 "gen_ai.tool.name": "get_weather"})  # fmt: skip
    provider.force_flush()
    tasks = tasks_of(served.url)
    assert len(tasks) == 2
    ok, failed = (t for t in sorted(tasks, key=lambda t: t["status"]))
    assert (ok["provider"], ok["model"], ok["model_id"]) == (
        "openai",
        "gpt-4o",
        "gpt-4o-2024-08-06",
    )
    assert (ok["tokens_input"], ok["tokens_output"], ok["tokens_cached_input"]) == (812, 356, 512)
    assert ok["tokens_total"] == 1168 and ok["status"] == "completed" and ok["user_id"] == "ada"
    assert ok["tokens_cache_write"] == 100 and ok["cost_source"] == "computed"
    assert ok["cost"] == cost_of_task(ok) and ok["cost"] > 0
    assert ok["response_text"] == "Row level" and ok["service"] == "chat-api"
    assert ok["request_data"]["messages"] == messages
    assert ok["request_data"]["parameters"] == {"temperature": 0.2}
    assert ok["time_to_first_token"] is not None and ok["total_time"] is not None
    assert ok["time_to_first_token"] <= ok["total_time"]
    assert failed["status"] == "failed" and failed["provider"] == "anthropic"
    assert failed["response_errors"] == [{"type": "overloaded_error", "message": "529 overloaded"}]
    runs = runs_of(served.url)
    assert len(runs) == 1 and runs[0]["task_count"] == 2 and runs[0]["name"] == "Explain RLS"
    assert runs[0]["source_id"] == ok["response_metadata"]["otlp"]["trace_id"]
    # Sent again (an exporter retry): nothing new, totals unchanged.
    assert exporter.export(recorded) == SpanExportResult.SUCCESS
    assert len(tasks_of(served.url)) == 2 and runs_of(served.url)[0]["task_count"] == 2
    assert database.run_totals_mismatches(served.url) == []
    provider.shutdown()


def _attr(key, value):
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}  # int64 as a string, as in JS
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def node_body(trace_id: str, spans: list[dict]) -> dict:
    """An ExportTraceServiceRequest as @opentelemetry/exporter-trace-otlp-http (JSON) sends."""
    return {
        "resourceSpans": [{
            "resource": {"attributes": [_attr("service.name", "web-app"),
                                        _attr("telemetry.sdk.language", "nodejs")],
                         "droppedAttributesCount": 0},
            "scopeSpans": [{
                "scope": {"name": "@opentelemetry/instrumentation-openai", "version": "0.1.0"},
                "spans": [{
                    "traceId": trace_id, "spanId": s["span_id"], "name": s["name"], "kind": 3,
                    "startTimeUnixNano": "1764496800000000000",
                    "endTimeUnixNano": "1764496801500000000",
                    "attributes": [_attr(k, v) for k, v in s["attributes"].items()],
                    "droppedAttributesCount": 0,
                    "events": [{"timeUnixNano": "1764496800400000000", "name": "gen_ai.first_chunk",
                                "attributes": [], "droppedAttributesCount": 0}],
                    "droppedEventsCount": 0,
                    "status": {"code": 0}, "links": [], "droppedLinksCount": 0,
                } for s in spans],
            }],
        }]
    }  # fmt: skip


def test_otlp_json_as_node_sends_it_gzip_or_not_with_openinference_and_sessions(served):
    trace = uuid.uuid4().hex
    spans = [
        {"span_id": "0000000000000001", "name": "ChatOpenAI", "attributes": {
            "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
            "llm.provider": "openai", "llm.token_count.prompt": 1000,
            "llm.token_count.completion": 200, "llm.token_count.prompt_details.cache_read": 400,
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "Summarise the meeting",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "The meeting ...",
            "session.id": "conversation-42"}},
        {"span_id": "0000000000000002", "name": "retriever", "attributes": {
            "openinference.span.kind": "RETRIEVER", "session.id": "conversation-42"}},
    ]  # fmt: skip
    body = json.dumps(node_body(trace, spans)).encode()
    with served.client() as c:
        plain = c.post("/v1/traces", content=body, headers={"Content-Type": "application/json"})
        assert plain.status_code == 200
        assert "skipped 1 non-LLM span" in plain.json()["partialSuccess"]["errorMessage"]
        zipped = c.post("/v1/traces", content=gzip.compress(body),
                        headers={"Content-Type": "application/json",
                                 "Content-Encoding": "gzip"})  # fmt: skip
        assert zipped.status_code == 200
    (task,) = tasks_of(served.url)
    assert (task["provider"], task["model"], task["endpoint"]) == ("openai", "gpt-4o-mini", "LLM")
    assert (task["tokens_input"], task["tokens_output"], task["tokens_cached_input"]) == (
        1000, 200, 400,
    )  # fmt: skip
    assert task["total_time"] == 1500 and task["time_to_first_token"] == 400
    assert task["response_text"] == "The meeting ..." and task["cost"] == cost_of_task(task)
    (run,) = runs_of(served.url)
    assert run["source_id"] == "conversation-42" and run["name"] == "Summarise the meeting"


def test_otlp_bad_bodies_get_400_and_no_key_gets_401(served):
    with served.client() as c:
        garbage = c.post("/v1/traces", content=b"\xff\x00garbage",
                         headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
        assert garbage.status_code == 400 and garbage.json()["error"]["field"] == "body"
        wrong = c.post("/v1/traces", content=b"{}", headers={"Content-Type": "text/plain"})
        assert wrong.status_code == 400
        assert "application/json" in wrong.json()["error"]["allowed"]
        bad_id = node_body("xyz", [{"span_id": "01", "name": "x", "attributes": {}}])
        answer = c.post("/v1/traces", json=bad_id)
        assert answer.status_code == 400
        assert answer.json()["error"]["field"].endswith("spans[0].traceId")
        not_gzip = c.post("/v1/traces", content=b"{}", headers={
            "Content-Type": "application/json", "Content-Encoding": "gzip"})  # fmt: skip
        assert not_gzip.status_code == 400
    with served.client(None) as c:
        span = {"span_id": "0000000000000001", "name": "x",
                "attributes": {"gen_ai.request.model": "gpt-4o"}}  # fmt: skip
        body = node_body(uuid.uuid4().hex, [span])
        assert c.post("/v1/traces", json=body).status_code == 401
    assert tasks_of(served.url) == []
