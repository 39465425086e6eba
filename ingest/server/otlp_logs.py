"""GenAI content log events (`POST /v1/logs`) joined to the task of their span.

Instrumentations that send prompts and replies as log events (the official OpenAI one by
default, Traceloop with `use_attributes=False`) put each message in a log record carrying
the trace and span id of its LLM call: `gen_ai.system.message`, `gen_ai.user.message`,
`gen_ai.assistant.message`, `gen_ai.tool.message` (input messages), `gen_ai.choice` (the
reply) and `gen_ai.client.inference.operation.details` (both, as gen_ai.input.messages
and gen_ai.output.messages attributes). They fill what the call's kept task lacks: its
input messages, its text, and its run's name. Records may come before their span: they
wait in `ai_otlp_log_events` (migration 0015) and are joined when the span is written.
Both paths hold the (user, trace) lock the span writer takes, so either order joins.
Content passes the redaction rules as on every write path (docs/access.md).
GenAI evaluation events (`gen_ai.evaluation.result`) take the same way, in either order,
and become scores of the task (ingest/server/otlp_evaluations.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ingest.access import redaction
from ingest.errors import NotFoundError, ValidationError
from ingest.server import owner_scores
from ingest.server.otlp_calls import kept_task_of, lock_traces
from ingest.server.otlp_evaluations import EVALUATION_EVENT, score_of
from ingest.server.otlp_map import run_name, text_of
from ingest.server.otlp_parse import LogEvent
from ingest.store import sqlfiles

INPUT_EVENTS = {
    "gen_ai.system.message": "system", "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool",
}  # fmt: skip
CHOICE_EVENT = "gen_ai.choice"
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
CONTENT_EVENTS = frozenset({*INPUT_EVENTS, CHOICE_EVENT, DETAILS_EVENT})
JOINED_EVENTS = CONTENT_EVENTS | {EVALUATION_EVENT}
log = logging.getLogger("ingest.server.otlp")


def is_content_event(event: LogEvent) -> bool:
    """A GenAI content or evaluation event that names its span (others are not ours to
    keep)."""
    return event.name in JOINED_EVENTS and bool(event.trace_id and event.span_id)


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _content_text(content: Any) -> str:
    """Text of a message content: a string, a text part ({type, text or content}), or a
    list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        content = [content]
    if isinstance(content, list):
        return "".join(
            str(part.get("text") or part.get("content") or "")
            for part in content
            if isinstance(part, dict) and part.get("type", "text") == "text"
        )
    return ""


def content_of(events: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]] | None, str | None]:
    """(input messages, reply text) of one span's events (dicts: name, body, attributes)."""
    messages: list[dict[str, Any]] = []
    replies: dict[int, str] = {}
    for event in events:
        body = event.get("body") if isinstance(event.get("body"), dict) else {}
        name = event.get("name")
        if name in INPUT_EVENTS:
            messages.append(
                {"role": body.get("role") or INPUT_EVENTS[name], "content": body.get("content")}
            )
        elif name == CHOICE_EVENT:
            message = body.get("message") if isinstance(body.get("message"), dict) else {}
            index = body.get("index") if isinstance(body.get("index"), int) else len(replies)
            replies[index] = _content_text(message.get("content"))
        elif name == DETAILS_EVENT:
            attributes = event.get("attributes") or {}
            inputs = _json(attributes.get("gen_ai.input.messages"))
            if isinstance(inputs, list):
                messages.extend(m for m in inputs if isinstance(m, dict))
            outputs = _json(attributes.get("gen_ai.output.messages"))
            if outputs:
                replies[len(replies)] = text_of(outputs)
    text = "".join(replies[i] for i in sorted(replies)) or None
    return messages or None, text


def receive(
    conn: psycopg.Connection, user: str, events: list[LogEvent], rules: tuple
) -> tuple[int, int]:
    """Join each span's content events to its call's kept task, or keep them until the
    span comes; (events joined, events waiting)."""
    by_span: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for event in events:
        by_span.setdefault((event.trace_id, event.span_id), []).append(
            {"name": event.name, "body": event.body, "attributes": event.attributes}
        )
    queries = sqlfiles.beside(__file__)
    joined = waiting = 0
    with conn.transaction():
        lock_traces(conn, user, {trace for trace, _ in by_span})
        for (trace, span), items in by_span.items():
            task_id = kept_task_of(conn, user, trace, span)
            if task_id is None:
                for item in items:
                    conn.execute(
                        queries["otlp_keep_log_event"].psycopg,
                        {"user_id": user, "trace_id": trace, "span_id": span,
                         "event_name": item["name"], "body": Jsonb(item)},
                    )  # fmt: skip
                waiting += len(items)
                continue
            _apply(conn, queries, user, task_id, items, rules)
            joined += len(items)
    return joined, waiting


def join_waiting(
    conn: psycopg.Connection, user: str, spans: Iterable[tuple[str, str]], rules: tuple
) -> int:
    """After spans are written: join the events that came before them; how many."""
    keys = sorted(set(spans))
    if not keys:
        return 0
    queries = sqlfiles.beside(__file__)
    joined = 0
    with conn.transaction():
        lock_traces(conn, user, {trace for trace, _ in keys})
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                queries["otlp_waiting_log_events"].psycopg,
                {"user_id": user, "trace_ids": [t for t, _ in keys],
                 "span_ids": [s for _, s in keys]},
            ).fetchall()  # fmt: skip
        by_span: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in rows:
            by_span.setdefault((row["trace_id"], row["span_id"]), []).append(row["body"])
        for (trace, span), items in by_span.items():
            task_id = kept_task_of(conn, user, trace, span)
            if task_id is None:
                continue
            _apply(conn, queries, user, task_id, items, rules)
            conn.execute(
                queries["otlp_forget_log_events"].psycopg,
                {"user_id": user, "trace_id": trace, "span_id": span},
            )
            joined += len(items)
    return joined


def _apply(
    conn: psycopg.Connection,
    queries: Any,
    user: str,
    task_id: Any,
    items: list[dict],
    rules: tuple,
) -> None:
    """Fill the task from its content events and score it from its evaluation events."""
    content = [item for item in items if item.get("name") != EVALUATION_EVENT]
    for item in items:
        if item.get("name") == EVALUATION_EVENT:
            _score(conn, user, task_id, item.get("attributes") or {})
    if content:
        _fill(conn, queries, task_id, content, rules)


def _score(conn: psycopg.Connection, user: str, task_id: Any, attributes: dict) -> None:
    """One evaluation event's score; one that cannot be stored is logged and passed over
    (the export's other events still count)."""
    try:
        fields = score_of(attributes, user, task_id)
        if fields is not None:
            owner_scores.write_scores(conn, user, [fields], where="evaluation")
    except (ValidationError, NotFoundError) as error:
        log.warning("OTLP evaluation event of task %s not scored: %s", task_id, error)


def _fill(
    conn: psycopg.Connection, queries: Any, task_id: Any, items: list[dict], rules: tuple
) -> None:
    messages, text = content_of(items)
    row = {"request_data": {"messages": messages}, "response_text": text}
    redaction.redact_fields(row, ("request_data", "response_text"), rules)
    messages, text = row["request_data"]["messages"], row["response_text"]
    if messages and run_name(messages):
        conn.execute(
            queries["otlp_name_run_of_task"].psycopg,
            {"task_id": task_id, "name": run_name(messages)},
        )
    conn.execute(
        queries["otlp_fill_task"].psycopg,
        {
            "task_id": task_id,
            "response_text": text,
            "messages": None if messages is None else Jsonb(messages),
            "ttft": None,
        },
    )
