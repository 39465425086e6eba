"""The finish paths of a task, for `ingest.Tracker`: complete_task, fail_task and
cancel_task write the buffered streaming values and the given ones, price the task and set
its final status exactly once (a task already finished is returned unchanged).
SQL: ingest/sql/tracker.sql."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import psycopg

from ingest.errors import ValidationError
from ingest.sdk.provider_usage import read_usage
from ingest.spend import price_books
from ingest.spend.costs import BILLED_USAGE_KEY
from ingest.store.limits import check_text
from ingest.store.validation import check_task_consistency, parse_uuid, validate_task
from ingest.store.vocabulary import FINISHED_TASK_STATUSES
from ingest.tracking.task_rows import TaskRowWriter, _Buffer, _ms, _validate_task_changes, log

FINISHING_METHODS = ("complete_task", "fail_task", "cancel_task")


class TaskFinishMethods(TaskRowWriter):
    """complete_task, fail_task and cancel_task of Tracker (see ingest.tracker)."""

    def complete_task(
        self,
        task_id: uuid.UUID | str,
        response_text: str | None = None,
        *,
        usage: Any = None,
        tokens_input: int | None = None,
        tokens_output: int | None = None,
        tokens_cached_input: int | None = None,
        tokens_reasoning: int | None = None,
        tokens_total: int | None = None,
        tokens_cache_write: int | None = None,
        cost: Decimal | float | str | None = None,
        cost_source: str | None = None,
        time_to_first_token: int | None = None,
        total_time: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Finish a task successfully; return the task row.

        Writes the buffered streaming values, then these; an argument that is None (here
        and in `fields`) keeps what is stored.
        usage: a provider usage object or dict (see ingest.usage), an alternative to the
        tokens_* arguments (which win); its billed values are kept in
        response_metadata["billed_usage"] to price every rate (1-hour cache writes).
        tokens_input includes cache reads (tokens_cached_input) and cache writes
        (tokens_cache_write), tokens_output includes reasoning; tokens_total defaults to
        input + output. Tokens never given stay NULL (unknown), never 0.
        cost (USD): a given cost is stored with cost_source "provider" (unless cost_source
        says "computed"); when none is given or stored, priced from provider, model and
        tokens as of created_at with cost_source "computed"; an unknown model or unknown
        usage leaves cost and cost_source NULL (see recompute_costs).
        time_to_first_token / total_time (ms): total_time defaults to the time since
        created_at. fields: other task columns (response_data, tool_updates, ...).
        A task that already finished is returned unchanged (completing twice changes
        nothing).
        """
        given = {
            "tokens_input": tokens_input,
            "tokens_output": tokens_output,
            "tokens_cached_input": tokens_cached_input,
            "tokens_reasoning": tokens_reasoning,
            "tokens_total": tokens_total,
            "tokens_cache_write": tokens_cache_write,
            "cost": cost,
            "cost_source": cost_source,
            "time_to_first_token": time_to_first_token,
            "total_time": total_time,
            "response_text": response_text,
        }
        changes = {k: v for k, v in {**fields, **given}.items() if v is not None}
        changes, billed = _with_usage(changes, usage)
        changes.setdefault("response_complete", True)
        return self._finish(task_id, "completed", changes, billed=billed)

    def fail_task(
        self,
        task_id: uuid.UUID | str,
        error: BaseException | str | Mapping[str, Any] | None = None,
        *,
        response_text: str | None = None,
        usage: Any = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Finish a task as failed; return the task row.

        error: an exception ({"type", "message"} is recorded), a message, or a JSON object;
        appended to response_errors (a list). Buffered streaming text is written; usage and
        fields as in complete_task. A task that already finished is returned unchanged.
        """
        changes = {k: v for k, v in fields.items() if v is not None}
        if response_text is not None:
            changes["response_text"] = response_text
        changes, billed = _with_usage(changes, usage)
        return self._finish(task_id, "failed", changes, error=_error_entry(error), billed=billed)

    def cancel_task(
        self,
        task_id: uuid.UUID | str,
        reason: str | None = None,
        *,
        response_text: str | None = None,
        usage: Any = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Finish a task as cancelled; return the task row. reason is recorded as
        response_metadata["cancel_reason"]. Buffered streaming text is written; usage and
        fields as in complete_task. A task that already finished is returned unchanged."""
        if reason is not None and not isinstance(reason, str):
            raise ValidationError("reason", f"must be a string, got {type(reason).__name__}")
        if reason is not None:
            check_text("reason", reason)
        changes = {k: v for k, v in fields.items() if v is not None}
        if response_text is not None:
            changes["response_text"] = response_text
        changes, billed = _with_usage(changes, usage)
        return self._finish(task_id, "cancelled", changes, reason=reason, billed=billed)

    def _finish(
        self,
        task_id: uuid.UUID | str,
        status: str,
        changes: dict[str, Any],
        *,
        error: dict[str, Any] | None = None,
        reason: str | None = None,
        billed: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        tid = parse_uuid("task_id", task_id)
        method = {"completed": "complete_task", "failed": "fail_task"}.get(status, "cancel_task")
        if "status" in changes:
            raise ValidationError(
                "status",
                f"{method} sets status {status}; got status={changes['status']!r}: finish a "
                "task with complete_task, fail_task or cancel_task",
                FINISHING_METHODS,
            )
        changes = _validate_task_changes(changes, method)
        if error is not None:
            error = validate_task({"response_errors": [error]}, partial=True)["response_errors"][0]
        with self._transaction() as conn:
            row = self._one(conn, "lock_task", task_id=tid)
            if row is None:
                raise self._refusal("task", tid, "change")
            if row["status"] in FINISHED_TASK_STATUSES:
                if row["status"] != status or self._buffers.get(tid):
                    log.warning(
                        "%s of task %s ignored: it is already %s", status, tid, row["status"]
                    )
                self._forget(tid, row["status"])
                row.pop("db_now")
                return row
            buffer = self._buffers.get(tid) or _Buffer()
            merged = self._merge(row, buffer, changes)
            merged["status"] = status
            if error is not None:
                errors = merged.get("response_errors")
                if errors is None:
                    errors = []
                elif not isinstance(errors, list):
                    errors = [errors]
                merged["response_errors"] = [*errors, error]
            extra = {"cancel_reason": reason, BILLED_USAGE_KEY: billed}
            extra = {k: v for k, v in extra.items() if v is not None}
            if extra:
                meta = merged.get("response_metadata")
                meta = dict(meta) if isinstance(meta, Mapping) else {}
                merged["response_metadata"] = {**meta, **extra}
            if merged["total_time"] is None:
                # The elapsed time; never less than a TTFT the caller measured on its clock.
                elapsed = _ms(row["db_now"] - row["created_at"])
                merged["total_time"] = max(elapsed, merged["time_to_first_token"] or 0)
            check_task_consistency(merged)
            _set_cost(conn, merged, row, {**buffer.fields, **changes})
            written = self._write(conn, tid, merged)
        self._forget(tid, status)
        return written


def _with_usage(changes: dict[str, Any], usage: Any) -> tuple[dict[str, Any], dict | None]:
    """changes with the token columns of `usage` under them (given columns win), and the
    provider's billed usage values (None when there are none)."""
    if usage is None:
        return changes, None
    report = read_usage(usage)
    return {**report.columns, **changes}, report.billed or None


def _set_cost(
    conn: psycopg.Connection, merged: dict[str, Any], row: dict, given: dict[str, Any]
) -> None:
    """cost, cost_source and price_ref of a finishing task: a given cost is the provider's
    (unless cost_source says otherwise); else a stored cost stays; else we price it with the
    price book in force (docs/spend-control.md: the override, else the library), NULL when
    the model or the usage is unknown."""
    if "cost" in given:
        merged["cost_source"] = given.get("cost_source", "provider")
    elif row["cost"] is None:
        merged["cost"], merged["price_ref"] = price_books.price_task_now(conn, merged)
        merged["cost_source"] = None if merged["cost"] is None else "computed"


def _error_entry(error: BaseException | str | Mapping[str, Any] | None) -> dict[str, Any]:
    if isinstance(error, BaseException):
        return {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, Mapping):
        return dict(error)
    return {"message": "unknown error" if error is None else str(error)}
