"""OpenTelemetry GenAI evaluation events become scores (docs/quality.md, docs/server.md):
`gen_ai.evaluation.result` sent by the real opentelemetry-sdk, as log records to /v1/logs
(before or after the span they evaluate) and as span events to /v1/traces, score the task
of the evaluated span, once however often they are sent."""

from __future__ import annotations

import psycopg
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from psycopg.rows import dict_row

from tests.server_support import serve

# In the service's run too: it alone sends otlp_move_score (a score moved to the task that
# replaced its span's), which the trace of docs/testing.md, "Which tests run on both
# engines", found sent only by marked files.

EVENT = "gen_ai.evaluation.result"
LLM_CALL = {
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 120,
    "gen_ai.usage.output_tokens": 40,
}  # fmt: skip


@pytest.fixture
def otel(db_url):
    """The server, and a tracer and an event logger exporting to it with the real SDK."""
    with serve(db_url) as served:
        headers = {"Authorization": f"Bearer {served.key}"}
        tracing = TracerProvider()
        tracing.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(f"{served.base}/v1/traces", headers=headers))
        )
        logging = LoggerProvider()
        logging.add_log_record_processor(
            SimpleLogRecordProcessor(OTLPLogExporter(f"{served.base}/v1/logs", headers=headers))
        )
        yield served, tracing.get_tracer("app"), logging.get_logger("evaluator")
        tracing.shutdown()
        logging.shutdown()


def rows(url: str, query: str) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(query).fetchall()


def scores(url: str) -> dict[str, dict]:
    found = rows(url, "SELECT * FROM ai_scores ORDER BY id")
    return {row["name"]: row for row in found}


def test_evaluation_log_records_before_and_after_their_span_score_its_task(otel):
    served, tracer, events = otel

    def evaluate(span, **attributes):
        context = trace.set_span_in_context(span)
        events.emit(event_name=EVENT, attributes=attributes, context=context)

    with tracer.start_as_current_span("chat gpt-4o") as span:
        span.set_attributes(LLM_CALL)
        # Sent before the span ends (so before it is exported): it waits for its task.
        evaluate(span, **{
            "gen_ai.evaluation.name": "Relevance", "gen_ai.evaluation.score.value": 0.8,
            "gen_ai.evaluation.score.label": "relevant",
            "gen_ai.evaluation.explanation": "answers the question",
            "gen_ai.request.model": "gpt-4o-mini",  # the judge: source model
        })  # fmt: skip
        assert rows(served.url, "SELECT * FROM ai_scores") == []
        assert len(rows(served.url, "SELECT * FROM ai_otlp_log_events")) == 1
    (task,) = rows(served.url, "SELECT task_id, run_id FROM ai_tasks")
    for _ in range(2):  # after the span; sent twice (a retry): one score each
        evaluate(
            span, **{"gen_ai.evaluation.name": "tone", "gen_ai.evaluation.score.label": "calm"}
        )
        evaluate(span, **{"gen_ai.evaluation.name": "grounded",
                          "gen_ai.evaluation.score.value": True})  # fmt: skip
        evaluate(span, **{"gen_ai.evaluation.name": "failed_eval", "error.type": "timeout"})
    got = scores(served.url)
    assert set(got) == {"Relevance", "tone", "grounded"}
    relevance, tone, grounded = got["Relevance"], got["tone"], got["grounded"]
    assert (relevance["data_type"], relevance["value"], relevance["label"]) == (
        "numeric", 0.8, "relevant",
    )  # fmt: skip
    assert (relevance["source"], relevance["evaluator"]) == ("model", "Relevance")
    assert relevance["comment"] == "answers the question" and relevance["author"] == "ada"
    assert (tone["data_type"], tone["value"], tone["label"], tone["source"]) == (
        "categorical", None, "calm", "api",
    )  # fmt: skip
    assert (grounded["data_type"], grounded["value"], grounded["label"]) == (
        "boolean", 1.0, "true",
    )  # fmt: skip
    for score in got.values():
        assert (score["task_id"], score["run_id"]) == (task["task_id"], task["run_id"])
    assert rows(served.url, "SELECT * FROM ai_otlp_log_events") == []


def test_evaluation_span_events_score_the_evaluated_task(otel):
    served, tracer, _events = otel
    with tracer.start_as_current_span("chat gpt-4o") as call:
        call.set_attributes(LLM_CALL)
        call.add_event(EVENT, {"gen_ai.evaluation.name": "helpfulness",
                               "gen_ai.evaluation.score.value": 4})  # fmt: skip
        # An evaluator's own span under the call (exported first): its events wait.
        with tracer.start_as_current_span("evaluate faithfulness") as judge:
            judge.add_event(EVENT, {
                "gen_ai.evaluation.name": "faithfulness", "gen_ai.evaluation.score.value": 0.25,
                "gen_ai.provider.name": "anthropic"})  # fmt: skip
    (task,) = rows(served.url, "SELECT task_id FROM ai_tasks")
    got = scores(served.url)
    assert set(got) == {"helpfulness", "faithfulness"}
    assert (got["helpfulness"]["value"], got["helpfulness"]["source"]) == (4.0, "api")
    assert (got["faithfulness"]["value"], got["faithfulness"]["source"]) == (0.25, "model")
    assert {score["task_id"] for score in got.values()} == {task["task_id"]}
    with tracer.start_as_current_span("chat gpt-4o") as call:
        call.set_attributes(LLM_CALL)
        # helpfulness is numeric: a categorical one is passed over, the other still counts
        call.add_event(EVENT, {"gen_ai.evaluation.name": "helpfulness",
                               "gen_ai.evaluation.score.label": "high"})  # fmt: skip
        call.add_event(EVENT, {"gen_ai.evaluation.name": "concise",
                               "gen_ai.evaluation.score.value": False})  # fmt: skip
    names = [(r["name"], r["data_type"]) for r in rows(served.url, "SELECT * FROM ai_scores")]
    assert sorted(names) == [("concise", "boolean"), ("faithfulness", "numeric"),
                             ("helpfulness", "numeric")]  # fmt: skip
    assert len(rows(served.url, "SELECT * FROM ai_tasks")) == 2


def test_a_score_moves_with_its_call_when_a_more_complete_span_replaces_the_task(otel):
    served, tracer, events = otel
    with tracer.start_as_current_span("chat gpt-4o") as first:  # a tracer with little usage
        first.set_attributes({"gen_ai.request.model": "gpt-4o", "gen_ai.response.id": "r-7",
                              "gen_ai.usage.input_tokens": 120})  # fmt: skip
    events.emit(
        event_name=EVENT,
        context=trace.set_span_in_context(first),
        attributes={"gen_ai.evaluation.name": "Relevance", "gen_ai.evaluation.score.value": 3},
    )
    (before,) = rows(served.url, "SELECT task_id FROM ai_tasks")
    assert scores(served.url)["Relevance"]["task_id"] == before["task_id"]
    with tracer.start_as_current_span("chat gpt-4o") as better:  # the same call, complete
        better.set_attributes({**LLM_CALL, "gen_ai.response.id": "r-7"})
    (after,) = rows(served.url, "SELECT task_id, tokens_output FROM ai_tasks")
    assert after["task_id"] != before["task_id"] and after["tokens_output"] == 40
    moved = scores(served.url)["Relevance"]
    assert (moved["task_id"], moved["value"]) == (after["task_id"], 3.0)
