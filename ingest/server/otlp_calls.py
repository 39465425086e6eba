"""One call, one task (docs/server.md): several tracers reporting one LLM call keep one task.

LLM spans of one trace belong to the same call when one is the parent of the other (the
Anthropic SDK's own gen_ai span under an OpenInference or Traceloop span) or when they
carry the same `gen_ai.response.id`. Of a call's spans, the one with the most complete
usage makes the task (ties: the provider SDK's own span, then the one with the provider's
billed split, text, TTFT, model, then the one that started first); it takes the text,
input messages and TTFT it lacks from the others. Spans of one
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
from psycopg.types.json import Jsonb

from ingest.server.otlp_map import run_name
from ingest.store import sqlfiles

# Token columns that make usage complete (tokens_total is derived from the others).
USAGE_COLUMNS = (
    "tokens_input", "tokens_output", "tokens_cached_input", "tokens_cache_write",
    "tokens_reasoning",
)  # fmt: skip


# Instrumentation scopes of the providers' own SDKs (their spans carry the usage the
# provider sent, as it sent it).
PROVIDER_SDK_SCOPES = ("com.anthropic.sdk",)


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
    """How complete a task's usage is: the non-zero usage columns first, then whether the span is
    the provider SDK's own (it reads the usage the provider sent), the provider's billed
    split, the text, the TTFT and the model."""
    meta = task.get("response_metadata") or {}
    # Parts reported as 0 say nothing more than parts left out (a tracer's explicit zero
    # cache reads must not outweigh the provider SDK's exact counts).
    usage = sum(bool(task.get(column)) for column in USAGE_COLUMNS)
    scope = str((meta.get("otlp") or {}).get("scope") or "")
    return (
        usage * 32
        + 16 * scope.startswith(PROVIDER_SDK_SCOPES)
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
    """The spans grouped by call: parent/child links in a trace, and shared response ids
    (across traces: some tracers start a trace of their own)."""
    nodes = {span.key: span for span in spans}
    parent_of = {key: key for key in nodes}

    def root(key: tuple[str, str]) -> tuple[str, str]:
        while parent_of[key] != key:
            parent_of[key] = parent_of[parent_of[key]]
            key = parent_of[key]
        return key

    def join(a: tuple[str, str], b: tuple[str, str]) -> None:
        parent_of[root(a)] = root(b)

    by_response: dict[str, tuple[str, str]] = {}
    for key, span in nodes.items():
        if span.parent_span_id and (span.trace_id, span.parent_span_id) in nodes:
            join(key, (span.trace_id, span.parent_span_id))
        if span.response_id:
            join(key, by_response.setdefault(span.response_id, key))
    groups: dict[tuple[str, str], list[CallSpan]] = {}
    for key, span in nodes.items():
        groups.setdefault(root(key), []).append(span)
    return list(groups.values())


def group_calls(spans: Iterable[CallSpan]) -> list[list[CallSpan]]:
    """The calls among `spans`, the best span of each first."""
    return [sorted(call, key=_rank, reverse=True) for call in _calls(spans)]


def keep_one_task_per_call(
    conn: psycopg.Connection,
    user: str,
    spans: list[CallSpan],
    runs: list[dict[str, Any]],
    tasks: dict[str, dict[str, Any]],
    carried: dict[uuid.UUID, list[dict[str, Any]]] | None = None,
    scores: list[dict[str, Any]] | None = None,
) -> set[str]:
    """In the write's transaction: record `spans`, delete the tasks they replace, fill a
    kept stored task with what the new spans of its call bring, name the stored `runs`
    that had no name from a message yet, and return the ids (text) of the tasks, and of
    the runs left without a task, that must not be written. `tasks`: the rows about to be
    written by task id (text). carried: filled with what each replaced task knew, by the
    task that replaces it (for `fill_task` once the write is committed). scores: filled
    with the scores of the replaced tasks, each naming the replacing task (for
    `move_scores` after the rows, in the same transaction)."""
    queries = sqlfiles.beside(__file__)
    _lock(conn, queries, user, spans)
    for run in runs:
        if run["metadata"]["otlp"]["named_from_message"]:
            conn.execute(
                queries["otlp_name_run"].psycopg,
                {"name": run["name"], "id": run["id"], "user_id": user},
            )
    stored = _stored(
        conn, queries, user, [s.trace_id for s in spans], [s.response_id for s in spans]
    )
    left_out = {str(span.task_id) for span in spans if span.key in stored}  # sent again
    fresh = {span.key: span for span in spans if span.key not in stored}
    stale: dict[uuid.UUID, uuid.UUID] = {}  # replaced task -> the task replacing it
    kept: list[uuid.UUID] = []
    for call in group_calls([*stored.values(), *fresh.values()]):
        best, others = call[0], call[1:]
        kept.append(best.task_id)
        left_out.update(str(span.task_id) for span in others if span.key in fresh)
        stale.update({s.task_id: best.task_id for s in others if s.key in stored and s.kept})
        if best.key in stored:
            rows = [tasks[str(s.task_id)] for s in others if s.key in fresh]
            fill_task(conn, best.task_id, rows)
    if stale:
        with conn.cursor(row_factory=dict_row) as cur:
            known = cur.execute(
                queries["otlp_content_of_tasks"].psycopg, {"task_ids": list(stale)}
            ).fetchall()
        for row in known:
            if carried is not None:
                carried.setdefault(stale[row["task_id"]], []).append(row)
        if scores is not None:
            scores.extend(_scores_of(conn, queries, stale))
        conn.execute(queries["otlp_delete_replaced_tasks"].psycopg, {"task_ids": list(stale)})
    _record(conn, queries, user, list(fresh.values()))
    traces = sorted({key[0] for key in (*stored, *fresh)})
    conn.execute(
        queries["otlp_mark_kept"].psycopg, {"user_id": user, "trace_ids": traces, "kept": kept}
    )
    written_runs = {str(row["run_id"]) for key, row in tasks.items() if key not in left_out}
    left_out.update(str(run["id"]) for run in runs if str(run["id"]) not in written_runs)
    return left_out


def _scores_of(
    conn: psycopg.Connection, queries: Any, stale: dict[uuid.UUID, uuid.UUID]
) -> list[dict[str, Any]]:
    """The scores of the replaced tasks, each naming the task that replaces it."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            queries["otlp_scores_of_tasks"].psycopg, {"task_ids": list(stale)}
        ).fetchall()
    return [{**row, "task_id": stale[row["task_id"]]} for row in rows]


def move_scores(conn: psycopg.Connection, scores: list[dict[str, Any]]) -> None:
    """Write the replaced tasks' scores onto the tasks that replaced them (after those are
    written, in the same transaction): a score of a call is not lost when a more complete
    span of it comes later."""
    queries = sqlfiles.beside(__file__)
    for row in scores:
        conn.execute(queries["otlp_move_score"].psycopg, row)


def _lock(conn: psycopg.Connection, queries: Any, user: str, spans: list[CallSpan]) -> None:
    # Always in sorted order (response ids before traces): no two writers wait in a cycle.
    keys = {f"trace:{span.trace_id}" for span in spans}
    keys |= {f"response:{span.response_id}" for span in spans if span.response_id}
    locked = [f"otlp:{user}:{key}" for key in sorted(keys)]
    conn.execute(queries["otlp_lock_keys"].psycopg, {"keys": locked})


def lock_traces(conn: psycopg.Connection, user: str, traces: Iterable[str]) -> None:
    """Hold the locks of these traces of `user` for the transaction (as the span writer
    does): content log events and spans of one trace are joined one at a time."""
    queries = sqlfiles.beside(__file__)
    locked = [f"otlp:{user}:trace:{trace}" for trace in sorted(set(traces))]
    conn.execute(queries["otlp_lock_keys"].psycopg, {"keys": locked})


def kept_task_of(conn: psycopg.Connection, user: str, trace: str, span: str) -> uuid.UUID | None:
    """The kept task of the call a stored span belongs to (None: span not stored yet)."""
    queries = sqlfiles.beside(__file__)
    stored = _stored(conn, queries, user, [trace], [])
    me = stored.get((trace, span))
    if me is None:
        return None
    if me.response_id:
        stored = _stored(conn, queries, user, [trace], [me.response_id])
    for call in _calls(stored.values()):
        if me in call:
            return next((s.task_id for s in call if s.kept), None)
    return None


def _stored(
    conn: psycopg.Connection,
    queries: Any,
    user: str,
    trace_ids: Iterable[str],
    response_ids: Iterable[str | None],
) -> dict[tuple[str, str], CallSpan]:
    params = {
        "user_id": user,
        "trace_ids": sorted(set(trace_ids)),
        "response_ids": sorted({r for r in response_ids if r}),
    }
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(queries["otlp_stored_spans"].psycopg, params).fetchall()
    return {(row["trace_id"], row["span_id"]): CallSpan(**row) for row in rows}


def fill_task(conn: psycopg.Connection, task_id: uuid.UUID, rows: list[dict[str, Any]]) -> None:
    """A stored kept task takes the text, messages and TTFT it lacks from `rows` (task rows
    of other spans of its call), and its run a name from their user message."""
    if not rows:
        return
    queries = sqlfiles.beside(__file__)
    text = next((r["response_text"] for r in rows if r.get("response_text")), None)
    messages = next(
        (
            r["request_data"]["messages"]
            for r in rows
            if (r.get("request_data") or {}).get("messages")
        ),
        None,
    )
    ttft = next(
        (r["time_to_first_token"] for r in rows if r.get("time_to_first_token") is not None), None
    )
    if messages is not None and run_name(messages):
        conn.execute(
            queries["otlp_name_run_of_task"].psycopg,
            {"task_id": task_id, "name": run_name(messages)},
        )
    if text is None and messages is None and ttft is None:
        return
    conn.execute(
        queries["otlp_fill_task"].psycopg,
        {
            "task_id": task_id,
            "response_text": text,
            "messages": None if messages is None else Jsonb(messages),
            "ttft": ttft,
        },
    )


def fill_from_call(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The first row (the call's best) with the text, messages and TTFT it lacks taken from
    the others (a TTFT only when it fits in the row's duration)."""
    best = rows[0]
    for other in rows[1:]:
        if not best.get("response_text") and other.get("response_text"):
            best["response_text"] = other["response_text"]
        messages = (other.get("request_data") or {}).get("messages")
        if messages and not (best.get("request_data") or {}).get("messages"):
            best["request_data"] = {**(best.get("request_data") or {}), "messages": messages}
        ttft, total = other.get("time_to_first_token"), best.get("total_time")
        fits = ttft is not None and (total is None or ttft <= total)
        if best.get("time_to_first_token") is None and fits:
            best["time_to_first_token"] = ttft
    return best


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
