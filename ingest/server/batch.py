"""Many runs and tasks in one request, written by the bulk path (ingest.transfer.bulk) in one
transaction. Used by POST /v1/batch and by the OTLP receiver.

Every row is checked first (ingest.store.validation); one bad row rejects the whole request
with its position (`tasks[3].status`) and nothing is written. Rows belong to the key's
user: user_id is set to it, and a task may only name a run of that user (in the request
or already stored). That is checked up front (a 422 naming the row) and again inside the
write's own transaction (ingest.transfer.bulk, `acting_user`): a run another user created in
between is refused with a 403 naming it and nothing of the request is written.
Scores (`scores`) are written in the same transaction, after the runs and tasks, as the
key's user (ingest/server/owner_scores.py): a score refused at write time (its name used
with another data type) rolls back the runs and tasks too.
Idempotent: a run whose id or a task whose task_id exists is skipped and counted as a
duplicate, also when two clients send the same rows at once.
A finished task without a cost is priced when the rows are written, with the price book in
force at its created_at (ingest.spend.price_books.price_new_tasks: cost, price_ref, cost_source
computed; one read of the overrides per request); a given cost is the provider's. `usage` in
any shape ingest.sdk.provider_usage understands may stand in for the tokens_* columns (a
task's row is built as on every write path: ingest/tracking/task_row.py). Redaction masks
are recorded in the write transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ingest.access import redaction
from ingest.errors import ValidationError
from ingest.server import owner_scores
from ingest.server.state import ServerState
from ingest.spend import price_books
from ingest.store import score_checks, validation
from ingest.store.vocabulary import TASK_DERIVED_COLUMNS
from ingest.tracking import task_row
from ingest.transfer import bulk

MAX_ROWS = 50_000


@dataclass
class BatchOutcome:
    """Rows inserted and skipped as already present, per kind."""

    runs: dict[str, int] = field(default_factory=lambda: {"inserted": 0, "duplicates": 0})
    tasks: dict[str, int] = field(default_factory=lambda: {"inserted": 0, "duplicates": 0})
    # duplicates: an existing score (same identity) replaced
    scores: dict[str, int] = field(default_factory=lambda: {"inserted": 0, "duplicates": 0})


def _prefixed(where: str, error: ValidationError) -> ValidationError:
    return ValidationError(f"{where}.{error.field}", error.problem, error.allowed)


def check_run(raw: Any, user: str, where: str) -> dict[str, Any]:
    """One ai_runs row, validated, owned by `user`; it must carry its id."""
    if not isinstance(raw, dict):
        raise ValidationError(where, f"must be an object, got {type(raw).__name__}")
    try:
        clean = validation.validate_run(validation.json_typed({**raw, "user_id": user}))
    except ValidationError as error:
        raise _prefixed(where, error) from None
    if clean.get("id") is None:
        raise ValidationError(f"{where}.id", "is required (tasks refer to it)")
    clean.setdefault("name", clean.get("source_id") or f"{clean['source_type']} run")
    return clean


def check_task(raw: Any, user: str, where: str) -> dict[str, Any]:
    """One ai_tasks row owned by `user`, built as on every write path
    (ingest/tracking/task_row.py: tokens from `usage`, validation, cost_source); priced when
    written (write_rows)."""
    if not isinstance(raw, dict):
        raise ValidationError(where, f"must be an object, got {type(raw).__name__}")
    fields = dict(raw)
    usage = fields.pop("usage", None)
    try:
        typed = validation.json_typed({**fields, "user_id": user})
        return validation.check_live_task(task_row.task_row(dict(typed), usage=usage))
    except ValidationError as error:
        raise _prefixed(where, error) from None


def check_score(raw: Any, user: str, where: str) -> dict[str, Any]:
    """One score by `user` (its author), as POST /v1/scores takes it (docs/quality.md)."""
    if not isinstance(raw, dict):
        raise ValidationError(where, f"must be an object, got {type(raw).__name__}")
    try:
        return score_checks.validate_score({**raw, "author": user})
    except ValidationError as error:
        raise _prefixed(where, error) from None


def write_batch(
    state: ServerState,
    user: str,
    runs: Sequence[Any],
    tasks: Sequence[Any],
    scores: Sequence[Any] = (),
) -> BatchOutcome:
    """Check every row, then write the runs, tasks and scores in one bulk transaction (see
    the module docstring; the scores as the key's user). Raises ValidationError (or
    NotFoundError for a score of a task or run neither in the request nor readable by the
    user) and nothing is written."""
    if len(runs) + len(tasks) + len(scores) > MAX_ROWS:
        raise ValidationError("body", f"at most {MAX_ROWS} rows per request")
    run_rows = [check_run(raw, user, f"runs[{i}]") for i, raw in enumerate(runs)]
    task_rows = [check_task(raw, user, f"tasks[{i}]") for i, raw in enumerate(tasks)]
    score_rows = [check_score(raw, user, f"scores[{i}]") for i, raw in enumerate(scores)]
    _check_score_targets(state, user, score_rows, run_rows, task_rows)
    scores_written: dict[str, int] = {}

    def then(conn: psycopg.Connection) -> None:
        scores_written.clear()
        scores_written.update(owner_scores.write_scores(conn, user, score_rows))

    outcome = write_rows(
        state, user, run_rows, task_rows, task_where="tasks", then=then if score_rows else None
    )
    if score_rows:
        outcome.scores = dict(scores_written)
    return outcome


def _check_score_targets(
    state: ServerState,
    user: str,
    scores: list[dict[str, Any]],
    runs: list[dict[str, Any]],
    tasks: list[dict[str, Any]],
) -> None:
    """Every score names a task or run of the request, or one the user may read."""
    batch_runs = {row["id"] for row in runs}
    batch_tasks = {row["task_id"] for row in tasks}
    with state.tracker(user) as tracker:
        tracker.check_scales(scores)  # a declared evaluator's range, before any write
        for score in scores:
            if score["task_id"] is not None and score["task_id"] not in batch_tasks:
                tracker.get_task(score["task_id"])  # NotFoundError naming it
            elif score["task_id"] is None and score["run_id"] not in batch_runs:
                tracker.get_run(score["run_id"], with_tasks=False)


def write_rows(
    state: ServerState,
    user: str,
    run_rows: list[dict[str, Any]],
    task_rows: list[dict[str, Any]],
    *,
    task_where: str = "tasks",
    leave_out: Callable[[psycopg.Connection, list[dict[str, Any]]], set[str]] | None = None,
    then: Callable[[psycopg.Connection], None] | None = None,
) -> BatchOutcome:
    """Write already validated rows of `user` in one transaction; finished tasks without a
    cost are priced first. Ownership is checked here, then again in the write transaction
    (AccessDeniedError, see the module docstring). leave_out: as
    ingest.transfer.bulk.BulkWriter.write's, also given the task rows as they will be
    written (priced, redacted): the OTLP receiver's one task per call. then(conn): more
    writes in the same transaction, after the rows (ingest.transfer.bulk)."""
    batch_runs = {row["id"] for row in run_rows}
    referenced = sorted(batch_runs | {row["run_id"] for row in task_rows})
    owners = state.run_owners(referenced)
    for i, row in enumerate(run_rows):
        if row["id"] in owners and owners[row["id"]] != user:
            raise ValidationError(f"runs[{i}].id", f"{row['id']} is taken by another user")
    for i, row in enumerate(task_rows):
        run_id = row["run_id"]
        if run_id not in batch_runs and owners.get(run_id, "\x00missing") != user:
            raise ValidationError(
                f"{task_where}[{i}].run_id", f"no run {run_id} of this key's user, here or stored"
            )
    outcome = BatchOutcome()
    # Rows the OTLP receiver mapped come validated: they get the same cost_source rule here.
    task_rows = [task_row.finish(dict(row)) for row in task_rows]
    with state.connection() as conn:
        task_rows = price_books.price_new_tasks(conn, task_rows)
    with state.writer() as writer:
        # Redaction (docs/access.md) before the rows are encoded for COPY; the masks per
        # task are recorded in the same transaction as the rows.
        masks = redaction.redact_rows(run_rows, task_rows, writer.redaction_rules())
        batches = _batches("ai_runs", run_rows) + _batches("ai_tasks", task_rows)
        if not batches and then is None:
            return outcome
        hook = None if leave_out is None else (lambda conn: leave_out(conn, task_rows))
        results = writer.write(
            *batches, redactions=masks, acting_user=user, leave_out=hook, then=then
        )
    for batch, result in zip(batches, results, strict=True):
        counts = outcome.runs if batch.table == "ai_runs" else outcome.tasks
        counts["inserted"] += result.inserted
        counts["duplicates"] += result.duplicates + len(result.missing_parent)
    return outcome


def _batches(table: str, rows: list[dict[str, Any]]) -> list[bulk.Batch]:
    """Rows grouped by the columns they carry (absent columns take the table defaults)."""
    known = bulk.ALL_COLUMNS[table] + (TASK_DERIVED_COLUMNS if table == "ai_tasks" else ())
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        columns = tuple(c for c in known if c in row)
        groups.setdefault(columns, []).append(row)
    key = bulk.KEY_COLUMN[table]
    parent = bulk.PARENT_COLUMN[table]
    batches = []
    for columns, group in groups.items():
        batches.append(
            bulk.Batch(
                table,
                columns,
                [bulk.encode_row(columns, row) for row in group],
                [str(row[key]) for row in group],
                [_text(row.get(parent)) for row in group] if parent else None,
            )
        )
    return batches


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)
