"""An OTLP trace export's spans written as runs and tasks (docs/server.md): LLM spans become
tasks (ingest/server/otlp_map.py), one task per call (ingest/server/otlp_calls.py), written
by the bulk path as the key's user; other spans are skipped and counted.

`write_spans` writes everything an export brings in one transaction: the runs and tasks,
the span records, what a replaced task knew, the content log events that waited for these
spans and the evaluation events on them, and whatever the caller adds (`then`: the spool
worker deletes the export's spool row there, ingest/server/otlp_spool.py). So an export is
either stored whole, or not at all and can be written again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from ingest.errors import ValidationError
from ingest.server.batch import write_rows
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
from ingest.server.otlp_logs import join_waiting, receive
from ingest.server.otlp_map import run_id_of, run_name, run_of, skip_reason, task_of
from ingest.server.otlp_parse import LogEvent, Span
from ingest.server.state import ServerState

log = logging.getLogger("ingest.server.otlp")


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


def skipped_spans(spans: list[Span]) -> ExportOutcome:
    """The outcome an export's acknowledgement can tell before its spans are mapped: the
    spans that are not LLM calls, by reason (cheap: attribute look-ups only)."""
    outcome = ExportOutcome()
    for span in spans:
        reason = skip_reason(span)
        if reason is not None:
            outcome.skipped[reason] = outcome.skipped.get(reason, 0) + 1
    return outcome


def has_content(spans: list[Span]) -> bool:
    """Whether writing these spans can store anything: an LLM span or an evaluation event."""
    return any(skip_reason(span) is None or evaluation_events(span) for span in spans)


def redaction_rules(state: ServerState) -> tuple:
    """The enabled redaction rules (ingest.access.redaction), as the bulk writers read them."""
    with state.writer() as writer:
        return writer.redaction_rules()


def write_spans(
    state: ServerState,
    metrics: ServerMetrics,
    user: str,
    spans: list[Span],
    *,
    then: Callable[[psycopg.Connection], None] | None = None,
) -> ExportOutcome:
    """Write the LLM spans of `user`, one task per call, and what joins them, in one
    transaction that ends with then(conn); count every span in /metrics and log the refused
    ones at WARNING. A span that cannot be used is refused (in the outcome), the others are
    written; ValidationError or AccessDeniedError only when the write as a whole is refused
    (a run id taken by another user meanwhile), and then nothing is written."""
    outcome = skipped_spans(spans)
    runs, tasks, calls = _map_spans(state, metrics, user, spans, outcome)
    evaluations = [event for span in spans for event in evaluation_events(span)]
    if not tasks and not evaluations and then is None:
        _count_skipped(metrics, outcome)
        return outcome
    joined = _write_calls(state, user, runs, tasks, calls, evaluations, then)
    _count_skipped(metrics, outcome)
    same_call = len(joined.left_out & {str(t) for t in tasks})
    metrics.count_spans("accepted", "same_call", same_call)
    metrics.count_spans("accepted", "task", len(tasks) - same_call)
    metrics.count_log_events("joined", joined.events)
    metrics.count_log_events("waiting", joined.waiting)
    return outcome


def _count_skipped(metrics: ServerMetrics, outcome: ExportOutcome) -> None:
    for reason, count in outcome.skipped.items():
        metrics.count_spans("skipped", reason, count)


def _map_spans(
    state: ServerState, metrics: ServerMetrics, user: str, spans: list[Span], outcome: ExportOutcome
) -> tuple[dict, dict, list[CallSpan]]:
    """The runs and tasks (by id) of the LLM spans, and their call records; a span that
    cannot be used is added to outcome.refused, counted and logged."""
    secret = _secret(state)
    runs: dict = {}
    tasks: dict = {}
    calls: list[CallSpan] = []
    llm_spans = [span for span in spans if skip_reason(span) is None]
    # Every first-choice run id of the export in one query (_run_id asks again only for
    # an id another user holds).
    first_ids = [run_id_of(span, user, secret) for span in llm_spans]
    owners = _owners(state, sorted({run_id for run_id, _, _ in first_ids}))
    for span, first_id in zip(llm_spans, first_ids, strict=True):
        try:
            run_id, kind, key = _run_id(state, span, user, secret, owners, first_id)
            task = task_of(span, user, run_id, secret)
            inputs = (task.get("request_data") or {}).get("messages")
            run = run_of(span, user, run_id, kind, key, inputs)
        except ValidationError as error:
            outcome.refused.append(f"span {span.span_id}: {error}")
            metrics.count_spans("refused", error.field)
            log.warning("OTLP span %s of trace %s refused: %s", span.span_id, span.trace_id, error)
            continue
        if _better_run(run, runs.get(run_id)):
            runs[run_id] = run
        tasks[task["task_id"]] = task
        calls.append(call_span(task, span.trace_id, span.span_id, span.parent_span_id))
    if tasks:
        _fill_calls(calls, tasks, runs)
    return runs, tasks, calls


def _secret(state: ServerState) -> str:
    secret = getattr(state, "otlp_secret", None)
    if secret is None:
        with state.connection() as conn:
            secret = state.otlp_secret = install_secret(conn)
    return secret


def _run_id(
    state: ServerState, span: Span, user: str, secret: str, owners: dict, first_id: tuple
) -> tuple:
    """The span's run id, kind and key (first_id: its first choice, run_id_of's); an id
    another user holds is passed over for the next one (a claim by someone else never
    blocks the owner's export)."""
    for attempt in range(8):
        run_id, kind, key = first_id if attempt == 0 else run_id_of(span, user, secret, attempt)
        if run_id not in owners:
            owners.update(_owners(state, [run_id]))
        if owners[run_id] in (None, user):
            return run_id, kind, key
    raise ValidationError("run_id", f"every id derived for {kind} {key!r} is held by another user")


def _owners(state: ServerState, run_ids: list) -> dict:
    """The owner of each of run_ids, None for a run not stored yet, in one query."""
    stored = state.run_owners(run_ids)
    return {run_id: stored.get(run_id) for run_id in run_ids}


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


@dataclass
class _Joined:
    """What one write transaction decided: task and run ids left out (one task per call),
    log events joined to the written tasks, evaluation events left waiting."""

    left_out: set[str] = field(default_factory=set)
    events: int = 0
    waiting: int = 0


def _write_calls(
    state: ServerState,
    user: str,
    runs: dict,
    tasks: dict,
    calls: list[CallSpan],
    evaluations: list[LogEvent],
    then: Callable[[psycopg.Connection], None] | None,
) -> _Joined:
    """Write the runs and tasks, one task per call (ingest/server/otlp_calls.py), in one
    transaction with everything that depends on them: a replaced task's scores and what it
    knew (text from an earlier tracer, content events) move to the task that replaced it,
    content events waiting for these spans are joined, evaluation events score their task,
    then then(conn). Every hook may run again on a retry, so each starts afresh."""
    joined = _Joined()
    carried: dict = {}
    scores: list = []
    rules = redaction_rules(state)

    def one_task_per_call(conn: psycopg.Connection, rows: list[dict]) -> set[str]:
        joined.left_out.clear()
        carried.clear()
        scores.clear()
        by_id = {str(row["task_id"]): row for row in rows}
        runs_now = list(runs.values())
        joined.left_out.update(
            keep_one_task_per_call(conn, user, calls, runs_now, by_id, carried, scores)
        )
        return joined.left_out

    def after_rows(conn: psycopg.Connection) -> None:
        move_scores(conn, scores)
        for task_id, known in carried.items():
            fill_task(conn, task_id, known)
        keys = [(call.trace_id, call.span_id) for call in calls]
        joined.events = join_waiting(conn, user, keys, rules)
        joined.waiting = 0
        if evaluations:  # after the spans: an event on a span of this export finds its task
            scored, joined.waiting = receive(conn, user, evaluations, rules)
            joined.events += scored
        if then is not None:
            then(conn)

    write_rows(
        state,
        user,
        list(runs.values()),
        list(tasks.values()),
        task_where="spans",
        leave_out=one_task_per_call if tasks else None,
        then=after_rows,
    )
    return joined


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
