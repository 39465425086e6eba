"""/v1/traces and /v1/logs: the OTLP/HTTP receivers. Protobuf or JSON, gzip or not. A trace
export is checked whole (a 400 naming the field when malformed), kept in the spool and
acknowledged; its LLM spans become tasks off the request path (ingest/server/otlp_spool.py,
ingest/server/otlp_write.py), other spans are skipped and counted. The answer is an
ExportTraceServiceResponse in the request's encoding, whose partial_success says how many
spans were skipped (and, with `--otlp-direct`, rejected: written before the answer). /v1/logs
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
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from starlette.concurrency import run_in_threadpool

from ingest.errors import ValidationError
from ingest.server import models
from ingest.server.auth import current_user
from ingest.server.body_limit import check_size
from ingest.server.encoding import error_body, json_response
from ingest.server.metrics import ServerMetrics
from ingest.server.otlp_logs import is_content_event, receive
from ingest.server.otlp_parse import (
    LogEvent,
    Span,
    parse_json,
    parse_logs_json,
    parse_logs_protobuf,
    parse_protobuf,
)
from ingest.server.otlp_spool import spool_export
from ingest.server.otlp_write import (
    ExportOutcome,
    has_content,
    redaction_rules,
    skipped_spans,
    write_spans,
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
        body, is_json, spans = await run_in_threadpool(
            _checked_spans, await request.body(), request.headers, request.app.state.max_body
        )
    except ValidationError as error:  # OTLP/HTTP answers a malformed export with 400
        return json_response(error_body(error.field, error.problem, error.allowed), 400)
    outcome = await run_in_threadpool(_accept, request.app, user, body, is_json, spans)
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


def _checked_spans(
    raw: bytes, headers: Mapping[str, str], limit: int
) -> tuple[bytes, bool, list[Span]]:
    """The request's body decompressed, whether it is OTLP/JSON, and its spans: every
    field is checked here, before the export is acknowledged (ValidationError when
    malformed: a 400 naming the field, and nothing is kept)."""
    body, is_json = _decoded(raw, headers, limit)
    return body, is_json, parse_json(body) if is_json else parse_protobuf(body)


def _accept(
    app: FastAPI, user: str, body: bytes, is_json: bool, spans: list[Span]
) -> ExportOutcome:
    """Hand a checked export off to the spool (ingest/server/otlp_spool.py) and tell what
    is known before its spans are mapped (the skipped ones); or, with the hand-off off
    (`ai-runs serve --otlp-direct`), write it now and tell everything."""
    state, metrics = app.state.server, app.state.metrics
    if app.state.spool is None:
        return write_spans(state, metrics, user, spans)
    outcome = skipped_spans(spans)
    if has_content(spans):
        spool_export(state, user, body, is_json)
        app.state.spool.wake()
    else:  # nothing to store: counted now, nothing spooled
        for reason, count in outcome.skipped.items():
            metrics.count_spans("skipped", reason, count)
    return outcome


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


def _receive_logs(
    state: ServerState, metrics: ServerMetrics, user: str, events: list[LogEvent]
) -> int:
    """Join or keep the content events; how many records were ignored."""
    content = [event for event in events if is_content_event(event)]
    if content:
        with state.connection() as conn:
            joined, waiting = receive(conn, user, content, redaction_rules(state))
        metrics.count_log_events("joined", joined)
        metrics.count_log_events("waiting", waiting)
    ignored = len(events) - len(content)
    metrics.count_log_events("ignored", ignored)
    return ignored
