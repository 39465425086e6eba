"""One call, one task (docs/server.md): several tracers reporting one LLM call keep one task.

LLM spans of one trace belong to the same call when one is the parent of the other (the
Anthropic SDK's own gen_ai span under an OpenInference or Traceloop span) or when they
carry the same `gen_ai.response.id`. Of a call's spans, the one with the most complete
usage makes the task (ties: the one that started first, the outer span). Spans of one
trace arrive in several exports, so every LLM span is recorded in `ai_otlp_spans`
(migration 0015) in the transaction that writes the tasks: a later, more complete span of
a stored call replaces its task; a less complete one is recorded and writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ingest.store import sqlfiles

# Token columns that make usage complete (tokens_total is derived from the others).
USAGE_COLUMNS = (
    "tokens_input", "tokens_output", "tokens_cached_input", "tokens_cache_write",
    "tokens_reasoning",
)  # fmt: skip


@dataclass(frozen=True)
class CallSpan:
    """What the receiver remembers of one LLM span."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    response_id: str | None
    task_id: uuid.UUID
    completeness: int
    started_at: datetime
    kept: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return self.trace_id, self.span_id


def completeness(task: dict[str, Any]) -> int:
    """How complete a task's usage is: usage columns first, then the provider's billed
    split, the text, the TTFT and the model."""
    meta = task.get("response_metadata") or {}
    usage = sum(task.get(column) is not None for column in USAGE_COLUMNS)
    return (
        usage * 16
        + 8 * bool(meta.get("billed_usage"))
        + 4 * bool(task.get("response_text"))
        + 2 * (task.get("time_to_first_token") is not None)
        + bool(task.get("model"))
    )


def call_span(task: dict[str, Any], trace_id: str, span_id: str, parent: str) -> CallSpan:
    """The record of the span that made `task`."""
    response = (task.get("response_data") or {}).get("id")
    return CallSpan(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent or None,
        response_id=str(response) if response is not None else None,
        task_id=task["task_id"],
        completeness=completeness(task),
        started_at=task["created_at"],
    )


def _rank(span: CallSpan) -> tuple[int, float, str]:
    return span.completeness, -span.started_at.timestamp(), span.span_id


def _calls(spans: Iterable[CallSpan]) -> list[list[CallSpan]]:
    """The spans grouped by call (parent/child links and shared response ids, per trace)."""
    nodes = {span.key: span for span in spans}
    parent_of = {key: key for key in nodes}

    def root(key: tuple[str, str]) -> tuple[str, str]:
        while parent_of[key] != key:
            parent_of[key] = parent_of[parent_of[key]]
            key = parent_of[key]
        return key

    def join(a: tuple[str, str], b: tuple[str, str]) -> None:
        parent_of[root(a)] = root(b)

    by_response: dict[tuple[str, str], tuple[str, str]] = {}
    for key, span in nodes.items():
        if span.parent_span_id and (span.trace_id, span.parent_span_id) in nodes:
            join(key, (span.trace_id, span.parent_span_id))
        if span.response_id:
            first = by_response.setdefault((span.trace_id, span.response_id), key)
            join(key, first)
    groups: dict[tuple[str, str], list[CallSpan]] = {}
    for key, span in nodes.items():
        groups.setdefault(root(key), []).append(span)
    return list(groups.values())


def keep_one_task_per_call(
    conn: psycopg.Connection, user: str, spans: list[CallSpan], runs: list[dict[str, Any]]
) -> set[str]:
    """In the write's transaction: record `spans`, delete the tasks they replace, name the
    stored `runs` that had no name from a message yet, and return the task ids (text) of
    the spans that must not be written."""
    queries = sqlfiles.beside(__file__)
    for run in runs:
        if run["metadata"]["otlp"]["named_from_message"]:
            conn.execute(
                queries["otlp_name_run"].psycopg,
                {"name": run["name"], "id": run["id"], "user_id": user},
            )
    traces = sorted({span.trace_id for span in spans})
    for trace in traces:
        conn.execute(queries["otlp_lock_trace"].psycopg, {"key": f"otlp:{user}:{trace}"})
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            queries["otlp_stored_spans"].psycopg, {"user_id": user, "trace_ids": traces}
        ).fetchall()
    stored = {(row["trace_id"], row["span_id"]): CallSpan(**row) for row in rows}
    left_out = {str(span.task_id) for span in spans if span.key in stored}  # sent again
    fresh = {span.key: span for span in spans if span.key not in stored}
    stale: list[uuid.UUID] = []
    kept: list[uuid.UUID] = []
    for call in _calls([*stored.values(), *fresh.values()]):
        best = max(call, key=_rank)
        kept.append(best.task_id)
        for span in call:
            if span is best:
                continue
            if span.key in fresh:
                left_out.add(str(span.task_id))
            elif span.kept:
                stale.append(span.task_id)
    if stale:
        conn.execute(queries["otlp_delete_replaced_tasks"].psycopg, {"task_ids": stale})
    _record(conn, queries, user, list(fresh.values()))
    conn.execute(
        queries["otlp_mark_kept"].psycopg, {"user_id": user, "trace_ids": traces, "kept": kept}
    )
    return left_out


def _record(conn: psycopg.Connection, queries: Any, user: str, spans: list[CallSpan]) -> None:
    if not spans:
        return
    conn.execute(
        queries["otlp_record_spans"].psycopg,
        {
            "user_id": user,
            "trace_ids": [s.trace_id for s in spans],
            "span_ids": [s.span_id for s in spans],
            "parent_span_ids": [s.parent_span_id for s in spans],
            "response_ids": [s.response_id for s in spans],
            "task_ids": [s.task_id for s in spans],
            "completeness": [s.completeness for s in spans],
            "started_at": [s.started_at for s in spans],
        },
    )


def install_secret(conn: psycopg.Connection) -> str:
    """The per-install secret that OTLP run and task ids are derived with (migration 0015)."""
    row = conn.execute(sqlfiles.beside(__file__)["otlp_secret"].psycopg).fetchone()
    return row["secret"] if isinstance(row, dict) else row[0]
