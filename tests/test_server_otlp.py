"""The OTLP/HTTP receiver: the real opentelemetry-sdk exporter, and OTLP/JSON bodies as the
Node exporters send them, against a real server and real Postgres."""

from __future__ import annotations

import gzip
import json
import uuid

import httpx
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


# ---------------------------------------------------------------- issue 20 and 21 defects


def _span(span_id, name, attributes, *, parent="", start=1764496800000000000, ms=1500,
          events=(), status=0):  # fmt: skip
    return {
        "spanId": span_id, "parentSpanId": parent, "name": name, "kind": 3,
        "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + int(ms * 1e6)),
        "attributes": [_attr(k, v) for k, v in attributes.items()],
        "events": [{"timeUnixNano": str(start + int(at * 1e6)), "name": event}
                   for event, at in events],
        "status": {"code": status},
    }  # fmt: skip


def export(client, trace_id, spans, scope="test"):
    body = {"resourceSpans": [{"resource": {"attributes": [_attr("service.name", "app")]},
                               "scopeSpans": [{"scope": {"name": scope},
                                               "spans": [dict(s, traceId=trace_id)
                                                         for s in spans]}]}]}  # fmt: skip
    return client.post("/v1/traces", json=body)


ANTHROPIC_SDK_SPAN = {  # as the Anthropic SDK's own span reports a call (1-hour writes)
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.response.id": "msg_abc",
    "gen_ai.usage.input_tokens": 3100, "gen_ai.usage.output_tokens": 50,
    "gen_ai.usage.cache_read.input_tokens": 2000, "gen_ai.usage.cache_write.input_tokens": 1000,
    "anthropic.usage.cache_creation.ephemeral_5m_input_tokens": 400,
    "anthropic.usage.cache_creation.ephemeral_1h_input_tokens": 600,
}  # fmt: skip
OPENINFERENCE_SPAN = {  # the OpenInference span of the same call, around it
    "openinference.span.kind": "LLM", "llm.model_name": "claude-sonnet-4-5",
    "llm.provider": "anthropic", "llm.token_count.prompt": 3100,
    "llm.token_count.completion": 50, "llm.token_count.prompt_details.cache_read": 2000,
    "llm.token_count.prompt_details.cache_write": 1000,
    "llm.input_messages.0.message.role": "user",
    "llm.input_messages.0.message.content": "Plan the launch",
    "llm.output_messages.0.message.role": "assistant",
    "llm.output_messages.0.message.contents.0.message_content.type": "text",
    "llm.output_messages.0.message.contents.0.message_content.text": "Step one",
    "llm.invocation_parameters": '{"max_tokens": 100}',
}  # fmt: skip
RAW_1H = {"input_tokens": 100, "output_tokens": 50, "cache_read_input_tokens": 2000,
          "cache_creation_input_tokens": 1000,
          "cache_creation": {"ephemeral_5m_input_tokens": 400,
                             "ephemeral_1h_input_tokens": 600}}  # fmt: skip


def genai_price(raw, model="claude-sonnet-4-5", provider="anthropic"):
    from decimal import ROUND_HALF_UP, Decimal

    from genai_prices import calc_price, extract_usage

    usage = extract_usage({"usage": raw, "model": model}, provider_id=provider).usage
    price = calc_price(usage, model, provider_id=provider).total_price
    return Decimal(price).quantize(Decimal("1e-10"), rounding=ROUND_HALF_UP)


def test_ttft_rounding_above_the_duration_is_clamped_and_noted_not_refused(served):
    span = _span("00000000000000a1", "anthropic.messages.create",
                 {"gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.provider.name":
                  "anthropic", "gen_ai.usage.input_tokens": 812,
                  "gen_ai.usage.output_tokens": 356,
                  "gen_ai.response.time_to_first_chunk": 0.0097}, ms=9.16)  # fmt: skip
    with served.client() as c:
        answer = export(c, uuid.uuid4().hex, [span])
    assert answer.status_code == 200 and "rejected" not in json.dumps(answer.json())
    (task,) = tasks_of(served.url)
    assert task["total_time"] == 9 and task["time_to_first_token"] == 9
    assert task["tokens_input"] == 812 and task["cost"] == cost_of_task(task) > 0
    (problem,) = task["response_metadata"]["otlp"]["problems"]
    assert "10 ms" in problem and "clamped" in problem


@pytest.mark.parametrize("direct", [False, True], ids=["handed-off", "direct"])
def test_refused_span_is_logged_at_warning_and_counted_in_metrics(db_url, caplog, direct):
    bad = _span("00000000000000b1", "chat", {"gen_ai.request.model": "gpt-4o",
                                             "gen_ai.usage.input_tokens": -5})  # fmt: skip
    tool = _span("00000000000000b2", "tool", {"gen_ai.operation.name": "execute_tool"})
    with serve(db_url, otlp_direct=direct) as served, served.client() as c:
        answer = export(c, uuid.uuid4().hex, [bad, tool])
        assert answer.status_code == 200
        partial = answer.json()["partialSuccess"]
        assert "skipped 1 non-LLM span" in partial["errorMessage"]
        # Written before the answer, the refusal is in it; handed off, the answer comes
        # before the span is mapped, so the log and /metrics tell it.
        assert partial["rejectedSpans"] == ("1" if direct else "0")
        scraped = httpx.get(f"{served.base}/metrics")  # no key needed: counts only
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert 'ai_runs_otlp_spans_total{outcome="refused",reason="tokens_input"} 1.0' in text
    assert 'ai_runs_otlp_spans_total{outcome="skipped",reason="not_llm"} 1.0' in text
    assert 'ai_runs_http_requests_total{method="POST",route="/v1/traces",status="200"} 1.0' in text
    assert 'ai_runs_http_request_seconds_count{route="/v1/traces"} 1.0' in text
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "refused" in r.message]
    assert warnings and "tokens_input" in warnings[0].getMessage()
    assert tasks_of(served.url) == []


def test_sdk_span_and_openinference_span_of_one_call_are_one_task_across_exports(served):
    trace = uuid.uuid4().hex
    inner = _span("00000000000000c2", "anthropic.messages.create", ANTHROPIC_SDK_SPAN,
                  parent="00000000000000c1", start=1764496800001000000, ms=900)  # fmt: skip
    outer = _span("00000000000000c1", "messages.create", OPENINFERENCE_SPAN, ms=1000)
    with served.client() as c:
        assert export(c, trace, [inner], "com.anthropic.sdk.python").status_code == 200
        assert (
            export(c, trace, [outer], "openinference.instrumentation.anthropic").status_code == 200
        )
        # exporter retries of both: nothing new
        export(c, trace, [inner], "com.anthropic.sdk.python")
        export(c, trace, [outer], "openinference.instrumentation.anthropic")
    (task,) = tasks_of(served.url)
    assert task["tokens_cache_write"] == 1000 and task["tokens_cached_input"] == 2000
    assert task["cost"] == genai_price(RAW_1H)  # the 1-hour part at the 1-hour rate
    assert task["response_text"] == "Step one"
    (run,) = runs_of(served.url)
    assert run["name"] == "Plan the launch" and run["task_count"] == 1
    assert run["total_cost"] == task["cost"]
    assert database.run_totals_mismatches(served.url) == []


def test_a_more_complete_span_arriving_later_replaces_the_task_of_its_call(served):
    trace = uuid.uuid4().hex
    outer = _span("00000000000000d1", "messages.create", OPENINFERENCE_SPAN, ms=1000)
    inner = _span("00000000000000d2", "anthropic.messages.create", ANTHROPIC_SDK_SPAN,
                  parent="00000000000000d1", start=1764496800001000000, ms=900)  # fmt: skip
    with served.client() as c:
        export(c, trace, [outer], "openinference.instrumentation.anthropic")
        first = tasks_of(served.url)
        export(c, trace, [inner], "com.anthropic.sdk.python")
    (task,) = tasks_of(served.url)
    assert len(first) == 1 and first[0]["task_id"] != task["task_id"]
    assert task["cost"] == genai_price(RAW_1H) and task["cost"] > first[0]["cost"]
    assert runs_of(served.url)[0]["total_cost"] == task["cost"]
    assert database.run_totals_mismatches(served.url) == []


def test_same_response_id_in_two_traces_is_one_task(served):
    traceloop = dict(ANTHROPIC_SDK_SPAN)
    for key in [k for k in traceloop if k.startswith("anthropic.")]:
        del traceloop[key]
    traceloop["gen_ai.usage.output_tokens"] = 51  # Traceloop adds message_start's token
    traceloop["gen_ai.usage.cache_read.input_tokens"] = 2000
    with served.client() as c:
        export(c, uuid.uuid4().hex, [_span("00000000000000e1", "anthropic.chat", traceloop)],
               "opentelemetry.instrumentation.anthropic")  # fmt: skip
        export(c, uuid.uuid4().hex,
               [_span("00000000000000e2", "anthropic.messages.create", ANTHROPIC_SDK_SPAN)],
               "com.anthropic.sdk.python")  # fmt: skip
    (task,) = tasks_of(served.url)
    assert task["tokens_output"] == 50 and task["cost"] == genai_price(RAW_1H)
    assert [r["task_count"] for r in runs_of(served.url)] in ([1], [1, 0], [0, 1])


def test_count_tokens_spans_are_not_tasks(served):
    span = _span("00000000000000f1", "anthropic.messages.count_tokens",
                 {"gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.provider.name":
                  "anthropic", "anthropic.message.count_tokens.input_tokens": 12})  # fmt: skip
    with served.client() as c:
        assert export(c, uuid.uuid4().hex, [span]).status_code == 200
    assert tasks_of(served.url) == []


def test_attributes_the_instrumentations_send_are_read(served):
    trace = uuid.uuid4().hex
    traceloop_stream = _span("0000000000000101", "openai.chat", {
        "gen_ai.provider.name": "openai", "gen_ai.request.model": "o4-mini",
        "gen_ai.usage.input_tokens": 300, "gen_ai.usage.output_tokens": 900,
        "gen_ai.usage.reasoning_tokens": 640, "gen_ai.response.id": "chatcmpl-r"},
        events=[("gen_ai.content.completion.chunk", 120),
                ("gen_ai.content.completion.chunk", 130)])  # fmt: skip
    openinference_stream = _span("0000000000000102", "ChatCompletion", {
        "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o", "llm.system": "openai",
        "llm.token_count.prompt": 10, "llm.token_count.completion": 5,
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "Be brief",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": "Name the run after me"},
        events=[("First Token Stream Event", 250)])  # fmt: skip
    failed = _span("0000000000000103", "messages.create", {
        "openinference.span.kind": "LLM", "llm.provider": "anthropic",
        "llm.invocation_parameters": '{"model": "claude-sonnet-4-5", "max_tokens": 5}'},
        status=2)  # fmt: skip
    with served.client() as c:
        assert export(c, trace, [traceloop_stream, openinference_stream, failed]).status_code == 200
    tasks = {t["task_name"]: t for t in tasks_of(served.url)}
    assert tasks["openai.chat"]["tokens_reasoning"] == 640
    assert tasks["openai.chat"]["time_to_first_token"] == 120
    assert tasks["ChatCompletion"]["time_to_first_token"] == 250
    assert tasks["messages.create"]["model"] == "claude-sonnet-4-5"
    assert tasks["messages.create"]["status"] == "failed"
    (run,) = runs_of(served.url)
    assert run["name"] == "Name the run after me"


def test_cache_write_attribute_is_priced_as_cache_write(served):
    attrs = {k: v for k, v in ANTHROPIC_SDK_SPAN.items() if not k.startswith("anthropic.")}
    with served.client() as c:
        export(c, uuid.uuid4().hex, [_span("0000000000000201", "chat", attrs)])
    (task,) = tasks_of(served.url)
    raw = {k: v for k, v in RAW_1H.items() if k != "cache_creation"}  # all at the 5-minute rate
    assert task["tokens_cache_write"] == 1000 and task["cost"] == genai_price(raw)


# ---------------------------------------------------------------- issue 21 items 3 and 6


def _nested(kind: str, depth: int) -> str:
    """An AnyValue nested `depth` levels, as JSON text (too deep for json.dumps)."""
    if kind == "kvlist":
        return (
            '{"kvlistValue":{"values":[{"key":"k","value":' * depth
            + '{"stringValue":"x"}'
            + ("}]}}" * depth)
        )
    return '{"arrayValue":{"values":[' * depth + '{"stringValue":"x"}' + "]}}" * depth


def _json_with(span: dict, key: str, value_text: str) -> str:
    """An export of `span` with one more attribute whose value is raw JSON text."""
    marker = "__VALUE__"
    span = dict(span, traceId=uuid.uuid4().hex)
    span["attributes"] = [*span["attributes"], {"key": key, "value": marker}]
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    return json.dumps(body).replace(f'"{marker}"', value_text)


@pytest.mark.parametrize(
    "case", ["kvlist-2000", "array-100k", "year-10000", "ns-1e30", "ttft-infinity"]
)
def test_hostile_otlp_json_gets_400_not_500(served, case):
    span = _span("0000000000000301", "chat", {"gen_ai.request.model": "gpt-4o"})
    if case == "kvlist-2000":
        body = _json_with(span, "deep", _nested("kvlist", 2000))
    elif case == "array-100k":
        body = _json_with(span, "deep", _nested("array", 100_000))
    elif case == "year-10000":
        span["startTimeUnixNano"] = str(253402300800 * 10**9)
        body = None
    elif case == "ns-1e30":
        span["endTimeUnixNano"] = str(10**30)
        body = None
    else:
        span["attributes"].append(
            {"key": "gen_ai.response.time_to_first_chunk", "value": {"doubleValue": "Infinity"}}
        )
        body = None
    with served.client() as c:
        if body is None:
            answer = export(c, uuid.uuid4().hex, [span])
        else:
            answer = c.post("/v1/traces", content=body,
                            headers={"Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"]
    assert tasks_of(served.url) == []


def test_protobuf_infinite_ttft_gets_400(served):
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    request = trace_service_pb2.ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = uuid.uuid4().bytes, b"\x01" * 8, "chat"
    span.start_time_unix_nano, span.end_time_unix_nano = 10**18, 10**18 + 10**9
    for key, value in (("gen_ai.request.model", "gpt-4o"),):
        span.attributes.add(key=key).value.string_value = value
    span.attributes.add(key="gen_ai.response.time_to_first_chunk").value.double_value = float("inf")
    with served.client() as c:
        answer = c.post("/v1/traces", content=request.SerializeToString(),
                        headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["error"]["field"].endswith("gen_ai.response.time_to_first_chunk")


def test_otlp_run_ids_are_unpredictable_and_a_squatted_id_never_blocks_the_owner(served):
    from ingest.server.otlp_map import NAMESPACE, derived_id

    trace = uuid.uuid4().hex
    published = uuid.uuid5(NAMESPACE, f"run:ada:trace:{trace}")  # the old, public rule
    with psycopg.connect(served.url, autocommit=True) as conn:
        secret = conn.execute("SELECT secret FROM ai_otlp_secret").fetchone()[0]
        # someone who got hold of the derived id claims it first
        claimed = derived_id(secret, f"run:ada:trace:{trace}")
        for run_id in (published, claimed):
            conn.execute(
                "INSERT INTO ai_runs (id, user_id, source_type, name) "
                "VALUES (%s, 'eve', 'custom', 'x')",
                (run_id,),
            )
    span = _span("0000000000000401", "chat", {"gen_ai.request.model": "gpt-4o",
                                              "gen_ai.usage.input_tokens": 3})  # fmt: skip
    with served.client() as c:
        answer = export(c, trace, [span])
    assert answer.status_code == 200, answer.text
    (task,) = tasks_of(served.url)
    assert task["user_id"] == "ada" and task["run_id"] not in (published, claimed)
    owners = {r["id"]: r["user_id"] for r in runs_of(served.url)}
    assert owners[task["run_id"]] == "ada"


# ---------------------------------------------------------------- /v1/logs


TRACELOOP_EVENT_MODE = """
import sys
import openai
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

server, key, provider = sys.argv[1:4]
headers = {"Authorization": f"Bearer {key}"}
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(
    SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{server}/v1/traces", headers=headers)))
logger_provider = LoggerProvider()
logger_provider.add_log_record_processor(
    SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{server}/v1/logs", headers=headers)))
OpenAIInstrumentor(use_attributes=False).instrument(
    tracer_provider=tracer_provider, logger_provider=logger_provider)
client = openai.OpenAI(base_url=f"{provider}/plain/v1", api_key="x", max_retries=0)
client.chat.completions.create(
    model="gpt-4o", messages=[{"role": "user", "content": "Log my prompt"}])
tracer_provider.shutdown()
logger_provider.shutdown()
"""


def test_traceloop_content_log_events_reach_the_task_of_their_call(served):
    """Traceloop with use_attributes=False sends prompts and replies as log events, before
    its span ends: they wait for the span, then fill its task and name its run. (In a
    process of its own: an instrumentation patches the SDK for the whole process.)"""
    import subprocess
    import sys

    from tests.provider_server import TEXT, ProviderServer

    provider = ProviderServer().start()
    try:
        subprocess.run(
            [sys.executable, "-c", TRACELOOP_EVENT_MODE, served.base, served.key, provider.url],
            check=True,
            timeout=120,
        )
    finally:
        provider.shutdown()
    (task,) = tasks_of(served.url)
    assert task["response_text"] == "".join(TEXT)
    assert task["request_data"]["messages"] == [{"role": "user", "content": "Log my prompt"}]
    assert (task["tokens_input"], task["tokens_output"]) == (812, 356)
    (run,) = runs_of(served.url)
    assert run["name"] == "Log my prompt"
    with psycopg.connect(served.url) as conn:
        assert conn.execute("SELECT count(*) FROM ai_otlp_log_events").fetchone()[0] == 0


def _log_body(trace_id, span_id, records):
    return {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"traceId": trace_id, "spanId": span_id, "timeUnixNano": "1764496800100000000",
         "eventName": name, "body": value} for name, value in records]}]}]}  # fmt: skip


def test_content_log_events_after_their_span_are_joined_and_others_ignored(served):
    trace = uuid.uuid4().hex
    span = _span("0000000000000501", "chat gpt-4o", {
        "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 20, "gen_ai.usage.output_tokens": 4})  # fmt: skip
    user = {"kvlistValue": {"values": [{"key": "content", "value": {"stringValue": "Hi logs"}}]}}
    choice = {"kvlistValue": {"values": [
        {"key": "index", "value": {"intValue": "0"}},
        {"key": "message", "value": {"kvlistValue": {"values": [
            {"key": "content", "value": {"stringValue": "Hello back"}}]}}}]}}  # fmt: skip
    with served.client() as c:
        export(c, trace, [span])
        answer = c.post("/v1/logs", json=_log_body(trace, "0000000000000501", [
            ("gen_ai.user.message", user), ("gen_ai.choice", choice),
            ("app.started", {"stringValue": "not ours"})]))  # fmt: skip
        assert answer.status_code == 200
        assert "ignored 1 log record" in answer.json()["partialSuccess"]["errorMessage"]
        bad = c.post("/v1/logs", json={"resourceLogs": [{"scopeLogs": [{"logRecords": [
            {"traceId": "xyz"}]}]}]})  # fmt: skip
        assert bad.status_code == 400 and bad.json()["error"]["field"].endswith("traceId")
        text = httpx.get(f"{served.base}/metrics").text
    (task,) = tasks_of(served.url)
    assert task["response_text"] == "Hello back"
    assert task["request_data"]["messages"] == [{"role": "user", "content": "Hi logs"}]
    assert runs_of(served.url)[0]["name"] == "Hi logs"
    assert 'ai_runs_otlp_log_events_total{outcome="joined"} 2.0' in text
    assert 'ai_runs_otlp_log_events_total{outcome="ignored"} 1.0' in text


def test_spans_of_one_call_sent_at_once_by_two_exporters_make_one_task(served):
    """The per-trace and per-response locks: two exports racing with the two spans of each
    call still give one task per call, and run totals that agree."""
    from concurrent.futures import ThreadPoolExecutor

    calls = 12

    def send(which: str) -> None:
        with served.client() as c:
            for i in range(calls):
                trace = f"{i + 1:032x}"
                attrs = dict(ANTHROPIC_SDK_SPAN, **{"gen_ai.response.id": f"msg_race_{i}"})
                if which == "inner":
                    span = _span(f"{i + 1:015x}2", "anthropic.messages.create", attrs,
                                 parent=f"{i + 1:015x}1")  # fmt: skip
                    assert export(c, trace, [span], "com.anthropic.sdk.python").status_code == 200
                else:
                    span = _span(f"{i + 1:015x}1", "messages.create", OPENINFERENCE_SPAN)
                    assert export(c, trace, [span]).status_code == 200

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(send, ["inner", "outer"]))
    tasks = tasks_of(served.url)
    assert len(tasks) == calls
    assert all(t["cost"] == genai_price(RAW_1H) and t["response_text"] == "Step one" for t in tasks)
    assert database.run_totals_mismatches(served.url) == []


def test_anthropic_sdk_own_spans_alone_make_exact_tasks(served):
    """The Anthropic SDK's own gen_ai spans (on by default when it has a tracer provider),
    with no instrumentation library: a stream with cache reads and 1-hour and 5-minute
    cache writes, content mode on; tokens, cost, TTFT, text and run name exact."""
    import anthropic
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from tests.provider_server import TEXT, ProviderServer, usage_for

    tracer_provider = TracerProvider()
    exporter = OTLPSpanExporter(
        endpoint=f"{served.base}/v1/traces", headers={"Authorization": f"Bearer {served.key}"}
    )
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    provider = ProviderServer().start()
    options = {"tracer_provider": tracer_provider, "traces": {"content_mode": "content"}}
    try:
        client = anthropic.Anthropic(base_url=f"{provider.url}/cached", api_key="x",
                                     max_retries=0, open_telemetry=options)  # fmt: skip
        with client.messages.stream(model="claude-sonnet-4-5", max_tokens=100,
                                    messages=[{"role": "user", "content": "Explain RLS"}]
                                    ) as stream:  # fmt: skip
            assert "".join(stream.text_stream) == "".join(TEXT)
        tracer_provider.force_flush()
    finally:
        provider.shutdown()
        tracer_provider.shutdown()
    (task,) = tasks_of(served.url)
    assert task["cost"] == genai_price(usage_for("anthropic", "cached"))
    assert (task["tokens_input"], task["tokens_output"]) == (3100, 50)
    assert (task["tokens_cached_input"], task["tokens_cache_write"]) == (2000, 1000)
    assert task["response_text"] == "".join(TEXT)
    assert 0 < task["time_to_first_token"] <= task["total_time"]
    assert runs_of(served.url)[0]["name"] == "Explain RLS"
