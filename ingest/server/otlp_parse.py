"""OTLP/HTTP trace and log export bodies (protobuf or JSON, as the OpenTelemetry SDKs send
them) turned into plain spans and log events.

A `Span` carries what the GenAI mapping needs: hex trace and span ids, name, start/end in
Unix nanoseconds, attributes as Python values (also nested arrays and key-value lists),
events, status code (0 unset, 1 ok, 2 error) and message, and the resource's attributes.
Malformed input raises ValidationError naming where it is (`resourceSpans[0]...`).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

from ingest.errors import ValidationError

_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
# Bounds of what an attribute or a time may be (docs/server.md): deeper nesting, times past
# int64 nanoseconds (year 2262) and infinite or NaN numbers are refused with a 400.
MAX_DEPTH = 32
MAX_TIME_NS = 2**63 - 1


@dataclass
class SpanEvent:
    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str = ""
    events: list[SpanEvent] = field(default_factory=list)
    status_code: int = 0
    status_message: str = ""


# ---------------------------------------------------------------- protobuf


def _pb_value(value: common_pb2.AnyValue, where: str, depth: int = 0) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind in ("array_value", "kvlist_value") and depth >= MAX_DEPTH:
        raise ValidationError(where, f"nested more than {MAX_DEPTH} levels deep")
    if kind == "array_value":
        return [_pb_value(v, where, depth + 1) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _pb_value(kv.value, where, depth + 1) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    if kind == "double_value":
        return _finite(value.double_value, where)
    return getattr(value, kind)


def _pb_attributes(items: Any, where: str) -> dict[str, Any]:
    return {kv.key: _pb_value(kv.value, f"{where}.{kv.key}") for kv in items}


def _finite(number: float, where: str) -> float:
    if not math.isfinite(number):
        raise ValidationError(where, f"must be a finite number, got {number!r}")
    return number


def _time(ns: int, where: str) -> int:
    if not 0 <= ns <= MAX_TIME_NS:
        raise ValidationError(where, f"must be Unix nanoseconds in 0..{MAX_TIME_NS}, got {ns}")
    return ns


def parse_protobuf(body: bytes) -> list[Span]:
    """Spans of an ExportTraceServiceRequest in protobuf encoding."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError) as error:
        raise ValidationError(
            "body", f"not an OTLP protobuf ExportTraceServiceRequest: {error}"
        ) from None
    spans = []
    for r, resource_spans in enumerate(request.resource_spans):
        where = f"resourceSpans[{r}].resource"
        resource = _pb_attributes(resource_spans.resource.attributes, where)
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            for n, span in enumerate(scope_spans.spans):
                w = f"resourceSpans[{r}].scopeSpans[{s}].spans[{n}]"
                spans.append(
                    Span(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        start_ns=_time(span.start_time_unix_nano, w + ".startTimeUnixNano"),
                        end_ns=_time(span.end_time_unix_nano, w + ".endTimeUnixNano"),
                        attributes=_pb_attributes(span.attributes, w + ".attributes"),
                        resource=resource,
                        scope=scope_spans.scope.name,
                        events=[
                            SpanEvent(
                                e.name,
                                _time(e.time_unix_nano, f"{w}.events[{i}].timeUnixNano"),
                                _pb_attributes(e.attributes, f"{w}.events[{i}].attributes"),
                            )
                            for i, e in enumerate(span.events)
                        ],
                        status_code=int(span.status.code),
                        status_message=span.status.message,
                    )
                )
    return spans


# ---------------------------------------------------------------- JSON (OTLP/JSON)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(where, f"must be an object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(where, f"must be an array, got {type(value).__name__}")
    return value


def _int(value: Any, where: str) -> int:
    """OTLP/JSON int64 values come as strings (or numbers)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationError(where, f"must be an integer or its string, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValidationError(where, f"must be an integer or its string, got {value!r}") from None


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(where, f"must be a string, got {type(value).__name__}")
    return value


def _hex_id(value: Any, where: str, size: int, required: bool = True) -> str:
    """A trace/span id: hex in OTLP/JSON (base64 tolerated, as protobuf JSON mapping sends)."""
    text = _text(value, where)
    if not text and not required:
        return ""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
    if len(raw) != size:
        raise ValidationError(where, f"must be {size * 2} hex digits, got {text!r}")
    return raw.hex()


def _json_value(value: Any, where: str, depth: int = 0) -> Any:
    value = _object(value, where)
    if depth >= MAX_DEPTH and ("arrayValue" in value or "kvlistValue" in value):
        raise ValidationError(where, f"nested more than {MAX_DEPTH} levels deep")
    if "stringValue" in value:
        return _text(value["stringValue"], where + ".stringValue")
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return _int(value["intValue"], where + ".intValue")
    if "doubleValue" in value:
        number = value["doubleValue"]
        if isinstance(number, bool) or not isinstance(number, int | float | str):
            raise ValidationError(where + ".doubleValue", f"must be a number, got {number!r}")
        try:
            return _finite(float(number), where + ".doubleValue")
        except ValueError:
            raise ValidationError(where + ".doubleValue", f"not a number: {number!r}") from None
    if "arrayValue" in value:
        items = _list(_object(value["arrayValue"], where).get("values"), where + ".values")
        return [_json_value(v, f"{where}.values[{i}]", depth + 1) for i, v in enumerate(items)]
    if "kvlistValue" in value:
        pairs = _object(value["kvlistValue"], where).get("values")
        return _json_attributes(pairs, where + ".values", depth + 1)
    if "bytesValue" in value:
        return _text(value["bytesValue"], where + ".bytesValue")
    return None


def _json_attributes(items: Any, where: str, depth: int = 0) -> dict[str, Any]:
    out = {}
    for i, item in enumerate(_list(items, where)):
        item = _object(item, f"{where}[{i}]")
        key = _text(item.get("key"), f"{where}[{i}].key")
        out[key] = _json_value(item.get("value", {}), f"{where}[{i}].value", depth)
    return out


def _status(value: Any, where: str) -> tuple[int, str]:
    status = _object(value or {}, where)
    code = status.get("code", 0)
    if isinstance(code, str) and code in _STATUS_NAMES:
        code = _STATUS_NAMES[code]
    code = _int(code, where + ".code")
    if code not in (0, 1, 2):
        raise ValidationError(where + ".code", f"unknown status code {code}", [0, 1, 2])
    return code, _text(status.get("message"), where + ".message")


def _load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except RecursionError:
        raise ValidationError("body", f"nested more than {MAX_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ValidationError("body", f"not JSON: {error}") from None


def parse_json(body: bytes) -> list[Span]:
    """Spans of an ExportTraceServiceRequest in OTLP/JSON encoding (camelCase keys, hex
    ids, int64 as strings), as the OpenTelemetry JS exporters send it."""
    document = _object(_load_json(body), "body")
    spans = []
    for r, resource_spans in enumerate(_list(document.get("resourceSpans"), "resourceSpans")):
        rw = f"resourceSpans[{r}]"
        resource_spans = _object(resource_spans, rw)
        resource_obj = _object(resource_spans.get("resource") or {}, rw + ".resource")
        resource = _json_attributes(resource_obj.get("attributes"), rw + ".resource.attributes")
        for s, scope_spans in enumerate(
            _list(resource_spans.get("scopeSpans"), rw + ".scopeSpans")
        ):
            sw = f"{rw}.scopeSpans[{s}]"
            scope_spans = _object(scope_spans, sw)
            scope = _object(scope_spans.get("scope") or {}, sw + ".scope")
            for n, span in enumerate(_list(scope_spans.get("spans"), sw + ".spans")):
                w = f"{sw}.spans[{n}]"
                span = _object(span, w)
                code, message = _status(span.get("status"), w + ".status")
                events = []
                for e, event in enumerate(_list(span.get("events"), w + ".events")):
                    ew = f"{w}.events[{e}]"
                    event = _object(event, ew)
                    events.append(
                        SpanEvent(
                            _text(event.get("name"), ew + ".name"),
                            _time(
                                _int(event.get("timeUnixNano"), ew + ".timeUnixNano"),
                                ew + ".timeUnixNano",
                            ),
                            _json_attributes(event.get("attributes"), ew + ".attributes"),
                        )
                    )
                spans.append(
                    Span(
                        trace_id=_hex_id(span.get("traceId"), w + ".traceId", 16),
                        span_id=_hex_id(span.get("spanId"), w + ".spanId", 8),
                        parent_span_id=_hex_id(
                            span.get("parentSpanId"), w + ".parentSpanId", 8, required=False
                        ),
                        name=_text(span.get("name"), w + ".name"),
                        start_ns=_time(
                            _int(span.get("startTimeUnixNano"), w + ".startTimeUnixNano"),
                            w + ".startTimeUnixNano",
                        ),
                        end_ns=_time(
                            _int(span.get("endTimeUnixNano"), w + ".endTimeUnixNano"),
                            w + ".endTimeUnixNano",
                        ),
                        attributes=_json_attributes(span.get("attributes"), w + ".attributes"),
                        resource=resource,
                        scope=_text(scope.get("name"), sw + ".scope.name"),
                        events=events,
                        status_code=code,
                        status_message=message,
                    )
                )
    return spans


# ---------------------------------------------------------------- logs (GenAI content events)


@dataclass
class LogEvent:
    """One OTLP log record: the span it belongs to (hex ids, "" when none), its event name
    (`event_name`, else the `event.name` attribute), body and attributes."""

    trace_id: str
    span_id: str
    name: str
    time_ns: int
    body: Any
    attributes: dict[str, Any]


def parse_logs_protobuf(body: bytes) -> list[LogEvent]:
    """Log records of an ExportLogsServiceRequest in protobuf encoding."""
    request = logs_service_pb2.ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError) as error:
        raise ValidationError(
            "body", f"not an OTLP protobuf ExportLogsServiceRequest: {error}"
        ) from None
    events = []
    for r, resource_logs in enumerate(request.resource_logs):
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            for n, record in enumerate(scope_logs.log_records):
                w = f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{n}]"
                attributes = _pb_attributes(record.attributes, w + ".attributes")
                events.append(
                    LogEvent(
                        trace_id=record.trace_id.hex(),
                        span_id=record.span_id.hex(),
                        name=record.event_name or str(attributes.get("event.name") or ""),
                        time_ns=_time(record.time_unix_nano, w + ".timeUnixNano"),
                        body=_pb_value(record.body, w + ".body"),
                        attributes=attributes,
                    )
                )
    return events


def parse_logs_json(body: bytes) -> list[LogEvent]:
    """Log records of an ExportLogsServiceRequest in OTLP/JSON encoding."""
    document = _object(_load_json(body), "body")
    events = []
    for r, resource_logs in enumerate(_list(document.get("resourceLogs"), "resourceLogs")):
        rw = f"resourceLogs[{r}]"
        resource_logs = _object(resource_logs, rw)
        for s, scope_logs in enumerate(_list(resource_logs.get("scopeLogs"), rw + ".scopeLogs")):
            sw = f"{rw}.scopeLogs[{s}]"
            records = _list(_object(scope_logs, sw).get("logRecords"), sw + ".logRecords")
            for n, record in enumerate(records):
                w = f"{sw}.logRecords[{n}]"
                record = _object(record, w)
                attributes = _json_attributes(record.get("attributes"), w + ".attributes")
                name = _text(record.get("eventName"), w + ".eventName")
                events.append(
                    LogEvent(
                        trace_id=_hex_id(record.get("traceId"), w + ".traceId", 16, False),
                        span_id=_hex_id(record.get("spanId"), w + ".spanId", 8, False),
                        name=name or str(attributes.get("event.name") or ""),
                        time_ns=_time(
                            _int(record.get("timeUnixNano"), w + ".timeUnixNano"),
                            w + ".timeUnixNano",
                        ),
                        body=_json_value(record["body"], w + ".body")
                        if record.get("body") is not None
                        else None,
                        attributes=attributes,
                    )
                )
    return events
