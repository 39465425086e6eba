"""/v1/traces: the OTLP/HTTP trace receiver. Protobuf or JSON, gzip or not; LLM spans
become tasks (ingest/server/otlp_map.py), written by the bulk path; other spans are skipped
and counted. The answer is an ExportTraceServiceResponse in the request's encoding, whose
partial_success says how many spans were rejected and how many were skipped."""

from __future__ import annotations

import gzip
import io
import json
import logging
import zlib
from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from starlette.concurrency import run_in_threadpool

from ingest.errors import ValidationError
from ingest.server import models
from ingest.server.auth import current_user
from ingest.server.batch import write_rows
from ingest.server.body_limit import check_size
from ingest.server.encoding import error_body, json_response
from ingest.server.otlp_map import is_llm_span, run_id_of, run_of, task_of
from ingest.server.otlp_parse import Span, parse_json, parse_protobuf
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
    skipped, rejected, reasons = await run_in_threadpool(
        _ingest, request.app.state.server, user, spans
    )
    message = "; ".join(
        part
        for part in (
            f"skipped {skipped} non-LLM span(s)" if skipped else "",
            f"rejected {rejected} span(s): {'; '.join(reasons[:3])}" if rejected else "",
        )
        if part
    )
    if skipped or rejected:
        log.info("OTLP export: %d span(s), %s", len(spans), message)
    if is_json:
        payload = (
            {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}}
            if message
            else {}
        )
        return Response(json.dumps(payload), media_type="application/json")
    answer = trace_service_pb2.ExportTraceServiceResponse()
    if message:
        answer.partial_success.rejected_spans = rejected
        answer.partial_success.error_message = message
    return Response(answer.SerializeToString(), media_type="application/x-protobuf")


def _spans(raw: bytes, headers: Mapping[str, str], limit: int) -> tuple[list[Span], bool]:
    """The request's spans and whether it was OTLP/JSON (ValidationError when malformed)."""
    body = _body(raw, headers.get("content-encoding", ""), limit)
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    is_json = content_type == "application/json"
    if not is_json and content_type not in ("application/x-protobuf", "application/protobuf"):
        raise ValidationError(
            "Content-Type",
            f"unsupported: {content_type!r}",
            ["application/x-protobuf", "application/json"],
        )
    return (parse_json(body) if is_json else parse_protobuf(body)), is_json


def _ingest(state: ServerState, user: str, spans: list[Span]) -> tuple[int, int, list[str]]:
    """Write the LLM spans; return (skipped non-LLM, rejected, reasons of rejection)."""
    runs: dict = {}
    tasks: dict = {}
    skipped = rejected = 0
    reasons: list[str] = []
    for span in spans:
        if not is_llm_span(span):
            skipped += 1
            continue
        try:
            run_id, kind, key = run_id_of(span, user)
            task = task_of(span, user, run_id)
            run = runs.get(run_id)
            if run is None or run["created_at"] > task["created_at"]:
                runs[run_id] = run_of(span, user, run_id, kind, key)
        except ValidationError as error:
            rejected += 1
            reasons.append(f"span {span.span_id}: {error}")
            continue
        tasks[task["task_id"]] = task
    if tasks:
        write_rows(state, user, list(runs.values()), list(tasks.values()), task_where="spans")
    return skipped, rejected, reasons
