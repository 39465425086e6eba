"""/v1/traces and /v1/logs: the OTLP/HTTP receivers. Protobuf or JSON, gzip or not; LLM spans
become tasks (ingest/server/otlp_map.py), written by the bulk path; other spans are skipped
and counted. The answer is an ExportTraceServiceResponse in the request's encoding, whose
partial_success says how many spans were rejected and how many were skipped. /v1/logs
joins GenAI content log events to the tasks of their spans (ingest/server/otlp_logs.py).
GenAI evaluation events, as log records or as span events, become scores of the task of
the span they evaluate (ingest/server/otlp_evaluations.py)."""

from __future__ import annotations

import gzip
import io
import json
import logging
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from starlette.concurrency import run_in_threadpool

from ingest.errors import ValidationError
from ingest.server import models
from ingest.server.auth import current_user
from ingest.server.batch import write_rows
from ingest.server.body_limit import check_size
from ingest.server.encoding import error_body, json_response
from ingest.server.metrics import ServerMetrics
from ingest.server.otlp_calls import (
    CallSpan,
    call_span,
    fill_from_call,
    fill_task,
    group_calls,
    install_secret,
    keep_one_task_per_call,
    move_scores,
)
from ingest.server.otlp_evaluations import EVALUATION_EVENT
from ingest.server.otlp_logs import is_content_event, join_waiting, receive
from ingest.server.otlp_map import run_id_of, run_name, run_of, skip_reason, task_of
from ingest.server.otlp_parse import (
    LogEvent,
    Span,
    parse_json,
    parse_logs_json,
    parse_logs_protobuf,
    parse_protobuf,
)
from ingest.server.state import ServerState

log = logging.getLogger("ingest.server.otlp")
router = APIRouter(tags=["otlp"], responses=models.ERROR_RESPONSES)

_OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


def _body(raw: bytes, encoding: str, limit: int) -> bytes:
    """The request body, gunzipped when so encoded: at most `limit` bytes once decompressed
    (BodyTooLarge, a 413, otherwise; the decompression stops there)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise ValidationError(
            "Content-Encoding", f"unsupported: {encoding!r}", ["gzip", "identity"]
        )
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            data = stream.read(limit + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise ValidationError("body", f"not gzip data: {error}") from None
    return check_size(data, limit)


@router.post(
    "/v1/traces",
    openapi_extra=_OPENAPI_BODY,
    responses={200: {"content": {"application/json": {}, "application/x-protobuf": {}}}},
)
async def export_traces(request: Request, user: Annotated[str, Depends(current_user)]) -> Response:
    """OTLP/HTTP ExportTraceServiceRequest (Content-Type application/x-protobuf or
    application/json; Content-Encoding gzip optional)."""
    try:
        spans, is_json = await run_in_threadpool(
            _spans, await request.body(), request.headers, request.app.state.max_body
        )
    except ValidationError as error:  # OTLP/HTTP answers a malformed export with 400
        return json_response(error_body(error.field, error.problem, error.allowed), 400)
    outcome = await run_in_threadpool(
        _ingest, request.app.state.server, request.app.state.metrics, user, spans
    )
    message = outcome.message()
    if is_json:
        payload = (
            {
                "partialSuccess": {
                    "rejectedSpans": str(outcome.rejected),
                    "errorMessage": message,
                }
            }
            if message
            else {}
        )
        return Response(json.dumps(payload), media_type="application/json")
    answer = trace_service_pb2.ExportTraceServiceResponse()
    if message:
        answer.partial_success.rejected_spans = outcome.rejected
        answer.partial_success.error_message = message
    return Response(answer.SerializeToString(), media_type="application/x-protobuf")


def _decoded(raw: bytes, headers: Mapping[str, str], limit: int) -> tuple[bytes, bool]:
    """The request body uncompressed (at most `limit` bytes), and whether it is OTLP/JSON
    (else protobuf)."""
    body = _body(raw, headers.get("content-encoding", ""), limit)
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    is_json = content_type == "application/json"
    if not is_json and content_type not in ("application/x-protobuf", "application/protobuf"):
        raise ValidationError(
            "Content-Type",
            f"unsupported: {content_type!r}",
            ["application/x-protobuf", "application/json"],
        )
    return body, is_json


def _spans(raw: bytes, headers: Mapping[str, str], limit: int) -> tuple[list[Span], bool]:
    """The request's spans and whether it was OTLP/JSON (ValidationError when malformed)."""
    body, is_json = _decoded(raw, headers, limit)
    return (parse_json(body) if is_json else parse_protobuf(body)), is_json


def _log_events(raw: bytes, headers: Mapping[str, str], limit: int) -> tuple[list[LogEvent], bool]:
    """The request's log records and whether it was OTLP/JSON."""
    body, is_json = _decoded(raw, headers, limit)
    return (parse_logs_json(body) if is_json else parse_logs_protobuf(body)), is_json


@router.post(
    "/v1/logs",
    openapi_extra=_OPENAPI_BODY,
    responses={200: {"content": {"application/json": {}, "application/x-protobuf": {}}}},
)
async def export_logs(request: Request, user: Annotated[str, Depends(current_user)]) -> Response:
    """OTLP/HTTP ExportLogsServiceRequest: GenAI content events (gen_ai.*.message,
    gen_ai.choice, gen_ai.client.inference.operation.details) are joined to the task of
    their span, and evaluation events (gen_ai.evaluation.result) score it, in either
    arrival order; other log records are ignored and counted."""
    try:
        events, is_json = await run_in_threadpool(
            _log_events, await request.body(), request.headers, request.app.state.max_body
        )
    except ValidationError as error:
        return json_response(error_body(error.field, error.problem, error.allowed), 400)
    ignored = await run_in_threadpool(
        _receive_logs, request.app.state.server, request.app.state.metrics, user, events
    )
    message = (
        f"ignored {ignored} log record(s) that are not GenAI content or evaluation events"
        if ignored
        else ""
    )
    if is_json:
        payload = {"partialSuccess": {"errorMessage": message}} if message else {}
        return Response(json.dumps(payload), media_type="application/json")
    answer = logs_service_pb2.ExportLogsServiceResponse()
    if message:
        answer.partial_success.error_message = message
    return Response(answer.SerializeToString(), media_type="application/x-protobuf")


def _rules(state: ServerState) -> tuple:
    with state.writer() as writer:
        return writer.redaction_rules()


def _receive_logs(
    state: ServerState, metrics: ServerMetrics, user: str, events: list[LogEvent]
) -> int:
    """Join or keep the content events; how many records were ignored."""
    content = [event for event in events if is_content_event(event)]
    if content:
        with state.connection() as conn:
            joined, waiting = receive(conn, user, content, _rules(state))
        metrics.count_log_events("joined", joined)
        metrics.count_log_events("waiting", waiting)
    ignored = len(events) - len(content)
    metrics.count_log_events("ignored", ignored)
    return ignored


@dataclass
class ExportOutcome:
    """What became of an export's spans."""

    skipped: dict[str, int] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.refused)

    def message(self) -> str:
        skipped = sum(self.skipped.values())
        parts = (
            f"skipped {skipped} non-LLM span(s)" if skipped else "",
            f"rejected {self.rejected} span(s): {'; '.join(self.refused[:3])}"
            if self.refused
            else "",
        )
        return "; ".join(part for part in parts if part)


def _secret(state: ServerState) -> str:
    secret = getattr(state, "otlp_secret", None)
    if secret is None:
        with state.connection() as conn:
            secret = state.otlp_secret = install_secret(conn)
    return secret


def _run_id(state: ServerState, span: Span, user: str, secret: str, owners: dict) -> tuple:
    """The span's run id, kind and key; an id another user holds is passed over for the
    next one (a claim by someone else never blocks the owner's export)."""
    for attempt in range(8):
        run_id, kind, key = run_id_of(span, user, secret, attempt)
        if run_id not in owners:
            owners.update(state.run_owners([run_id]))
        if owners.get(run_id) in (None, user):
            return run_id, kind, key
    raise ValidationError("run_id", f"every id derived for {kind} {key!r} is held by another user")


def _ingest(
    state: ServerState, metrics: ServerMetrics, user: str, spans: list[Span]
) -> ExportOutcome:
    """Write the LLM spans, one task per call (ingest/server/otlp_calls.py); count every
    span in /metrics and log the refused ones at WARNING."""
    outcome = ExportOutcome()
    secret = _secret(state)
    runs: dict = {}
    tasks: dict = {}
    calls: list[CallSpan] = []
    owners: dict = {}
    evaluations = [event for span in spans for event in evaluation_events(span)]
    for span in spans:
        reason = skip_reason(span)
        if reason is not None:
            outcome.skipped[reason] = outcome.skipped.get(reason, 0) + 1
            continue
        try:
            run_id, kind, key = _run_id(state, span, user, secret, owners)
            task = task_of(span, user, run_id, secret)
            run = run_of(span, user, run_id, kind, key)
        except ValidationError as error:
            outcome.refused.append(f"span {span.span_id}: {error}")
            metrics.count_spans("refused", error.field)
            log.warning("OTLP span %s of trace %s refused: %s", span.span_id, span.trace_id, error)
            continue
        if _better_run(run, runs.get(run_id)):
            runs[run_id] = run
        tasks[task["task_id"]] = task
        calls.append(call_span(task, span.trace_id, span.span_id, span.parent_span_id))
    for reason, count in outcome.skipped.items():
        metrics.count_spans("skipped", reason, count)
    if tasks:
        _fill_calls(calls, tasks, runs)
        left_out = _write_calls(state, user, runs, tasks, calls)
        same_call = len(left_out & {str(t) for t in tasks})
        metrics.count_spans("accepted", "same_call", same_call)
        metrics.count_spans("accepted", "task", len(tasks) - same_call)
        with state.connection() as conn:
            keys = [(call.trace_id, call.span_id) for call in calls]
            metrics.count_log_events("joined", join_waiting(conn, user, keys, _rules(state)))
    if evaluations:  # after the spans: an event on a span of this export finds its task
        with state.connection() as conn:
            joined, waiting = receive(conn, user, evaluations, _rules(state))
        metrics.count_log_events("joined", joined)
        metrics.count_log_events("waiting", waiting)
    return outcome


def evaluation_events(span: Span) -> list[LogEvent]:
    """The span's gen_ai.evaluation.result events, as log events of the span they evaluate:
    the span itself when it is an LLM call, else its parent (an evaluator's own span
    under the call's)."""
    target = span.span_id if skip_reason(span) is None else span.parent_span_id
    if not target:
        return []
    return [
        LogEvent(span.trace_id, target, event.name, event.time_ns, None, event.attributes)
        for event in span.events
        if event.name == EVALUATION_EVENT
    ]


def _write_calls(
    state: ServerState, user: str, runs: dict, tasks: dict, calls: list[CallSpan]
) -> set[str]:
    """Write the runs and tasks, one task per call (ingest/server/otlp_calls.py); the ids
    left out. What a replaced task knew (text from an earlier tracer, content events)
    then moves to the task that replaced it; its scores move in the write's transaction."""
    left_out: set[str] = set()
    carried: dict = {}
    scores: list = []

    def one_task_per_call(conn: psycopg.Connection, rows: list[dict]) -> set[str]:
        left_out.clear()
        carried.clear()
        scores.clear()
        by_id = {str(row["task_id"]): row for row in rows}
        runs_now = list(runs.values())
        left_out.update(keep_one_task_per_call(conn, user, calls, runs_now, by_id, carried, scores))
        return left_out

    write_rows(
        state,
        user,
        list(runs.values()),
        list(tasks.values()),
        task_where="spans",
        leave_out=one_task_per_call,
        then=lambda conn: move_scores(conn, scores),
    )
    if carried:
        with state.connection() as conn, conn.transaction():
            for task_id, known in carried.items():
                fill_task(conn, task_id, known)
    return left_out


def _fill_calls(calls: list[CallSpan], tasks: dict, runs: dict) -> None:
    """The best span of each call in this export takes what it lacks from the others, and
    its run a name from their user message when it has none."""
    for call in group_calls(calls):
        if len(call) < 2:
            continue
        best = fill_from_call([tasks[span.task_id] for span in call])
        run = runs[best["run_id"]]
        name = run_name((best.get("request_data") or {}).get("messages"))
        if name and not run["metadata"]["otlp"]["named_from_message"]:
            run["name"] = name
            run["metadata"]["otlp"]["named_from_message"] = True


def _better_run(candidate: dict, current: dict | None) -> bool:
    """The run row to write: one named from a user message, else the earliest span's."""
    if current is None:
        return True
    named = candidate["metadata"]["otlp"]["named_from_message"]
    if named != current["metadata"]["otlp"]["named_from_message"]:
        return named
    return candidate["created_at"] < current["created_at"]
