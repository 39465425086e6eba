"""Task methods of `ingest.Tracker`: create, read, stream (debounced), finish.

Mixed into Tracker (ingest/tracking/tracker.py), whose connection plumbing they use. A *task
row* is every ai_tasks column except `sync_xid`. SQL: ingest/tracking/sql/tasks.sql.

Streaming: `update_task` keeps the latest streaming values of each task in memory
(`TaskBuffer`) and writes them at most once per `debounce_seconds` (the first update at
once). There is no background timer: buffered values are written by the next due update,
`flush()`, `close()`, or the call that finishes the task.

Finishing: `complete_task`, `fail_task` and `cancel_task` merge the stored, buffered and
given values, build the finished row as every write path does (ingest/tracking/task_row.py:
usage, validation, status, error, cost_source, price) and write it under the task's lock, so
a task finishes exactly once (a task already finished is returned unchanged).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ingest import sdk
from ingest.access import redaction
from ingest.errors import AccessDeniedError, NotFoundError, ValidationError
from ingest.spend import price_books
from ingest.store import sqlfiles
from ingest.store.limits import MAX_LONG_TEXT, MAX_MILLIS, check_text
from ingest.store.validation import check_live_task, parse_uuid, validate_task
from ingest.store.vocabulary import (
    FINISHED_TASK_STATUSES,
    TASK_JSON_COLUMNS,
    TASK_WRITABLE_COLUMNS,
    UNFINISHED_TASK_STATUSES,
)
from ingest.tracking import task_row

log = logging.getLogger("ingest.tracker")

STREAMING_STATUSES = UNFINISHED_TASK_STATUSES
TASK_WRITABLE = TASK_WRITABLE_COLUMNS
FINISHING_METHODS = ("complete_task", "fail_task", "cancel_task")
_FINISHED_MEMORY = 10_000  # task ids remembered as finished, to drop late updates cheaply


@dataclass(frozen=True)
class TaskUpdate:
    """Outcome of `update_task` / `flush` for one task.

    written: this call wrote the task to the database.
    ignored: the task had already finished; the update was dropped (and logged).
    status:  the task's status after the call (the buffered status for a buffered update;
             "missing" when flush found the task gone, "invalid" when flush dropped buffered
             values that break a rule between columns, see validation.check_live_task).
    """

    task_id: uuid.UUID
    written: bool
    ignored: bool
    status: str


@dataclass
class TaskBuffer:
    """Streaming fields of one task not yet written (debounce)."""

    fields: dict[str, Any] = field(default_factory=dict)
    first_text_at: float | None = None  # tracker clock when the first non-empty text came


class TaskMethods:
    """The task methods of Tracker (see ingest.tracking.tracker for the shared contract)."""

    user_id: str | None
    debounce_seconds: float
    clock: Callable[[], float]
    _queries: dict[str, sqlfiles.Query]
    _lock: threading.RLock
    _buffers: dict[uuid.UUID, TaskBuffer]
    _last_write: dict[uuid.UUID, float]
    _finished: OrderedDict[uuid.UUID, str]
    _transaction: Callable[..., AbstractContextManager[psycopg.Connection]]
    _one: Callable[..., dict | None]
    _refusal: Callable[[str, Any, str], Exception]
    _redactor: redaction.Redactor

    # Over 60 lines: mostly its keyword arguments (the task's columns) and their contract.
    def create_task(
        self,
        run_id: uuid.UUID | str,
        *,
        task_id: uuid.UUID | str | None = None,
        service: str | None = None,
        task_name: str | None = None,
        provider: str | None = None,
        endpoint: str | None = None,
        model: str | None = None,
        model_id: str | None = None,
        request_data: Any = None,
        response_metadata: Any = None,
        status: str = "pending",
        user_id: str | None = None,
        created_at: datetime | str | None = None,
        variant: str | None = None,
    ) -> dict[str, Any]:
        """Record a request before it goes out; return the task row.

        task_id: the id the application's stream layer uses (a new uuid4 when None).
        Creating a task whose task_id exists returns the existing task unchanged (a safe
        retry, also under concurrency); if that task belongs to another run it is a
        ValidationError on task_id. status: pending (default) or streaming.
        variant: the task's A/B label (docs/quality.md); None: its run's.
        NotFoundError("run") when the run does not exist (or this viewer cannot read it),
        AccessDeniedError when the viewer may read it but not change it; nothing is written
        then.
        """
        if status not in STREAMING_STATUSES:
            raise ValidationError(
                "status",
                f"a new task must be pending or streaming, got {status!r}",
                STREAMING_STATUSES,
            )
        given = {
            "run_id": run_id,
            "task_id": task_id if task_id is not None else uuid.uuid4(),
            "service": service,
            "task_name": task_name,
            "provider": provider,
            "endpoint": endpoint,
            "model": model,
            "model_id": model_id,
            "request_data": request_data,
            "response_metadata": response_metadata,
            "status": status,
            "user_id": user_id if user_id is not None else self.user_id,
            "created_at": created_at,
            "variant": variant,
        }
        fields = validate_task({k: v for k, v in given.items() if v is not None})
        masks = redaction.redact_fields(fields, ("request_data",), self._redactor.rules())
        params = {column: fields.get(column) for column in self._queries["insert_task"].params}
        params["request_data"] = _jsonb(fields.get("request_data"))
        params["response_metadata"] = _jsonb(fields.get("response_metadata"))
        try:
            with self._transaction() as conn:
                row = self._one(conn, "insert_task", **params)
                if row is None:
                    row = self._one(conn, "get_task", task_id=fields["task_id"])
                else:
                    redaction.record(conn, fields["task_id"], masks)
        except psycopg.errors.ForeignKeyViolation:
            raise NotFoundError("run", fields["run_id"]) from None
        except AccessDeniedError:
            # Row-level security refused the insert: say whether the run is invisible
            # (NotFoundError) or readable but not the viewer's to change.
            raise self._refusal("run", fields["run_id"], "add tasks to") from None
        if row is None:  # deleted between the conflict and the read: report, do not guess
            raise NotFoundError("task", fields["task_id"])
        if row["run_id"] != fields["run_id"]:
            raise ValidationError(
                "task_id", f"{fields['task_id']} already belongs to run {row['run_id']}"
            )
        return row

    def get_task(self, task_id: uuid.UUID | str) -> dict[str, Any]:
        """One task row (every column) by its task_id. NotFoundError when it does not exist.
        Buffered streaming text not yet written is not included: call flush() first."""
        tid = parse_uuid("task_id", task_id)
        with self._transaction() as conn:
            row = self._one(conn, "get_task", task_id=tid)
        if row is None:
            raise NotFoundError("task", tid)
        return row

    def stream_task(
        self, run_id: uuid.UUID | str, chunks: Iterable[Any], **options: Any
    ) -> sdk.TaskStream:
        """Shortcut for `ingest.stream_task(self, run_id, chunks, **options)`."""
        return sdk.stream_task(self, run_id, chunks, **options)

    # ------------------------------------------------------------ streaming updates

    def update_due(self, task_id: uuid.UUID | str) -> bool:
        """True when a streaming update of this task would be written now (no write in the
        last `debounce_seconds`)."""
        tid = parse_uuid("task_id", task_id)
        with self._lock:
            last = self._last_write.get(tid)
            return last is None or self.clock() - last >= self.debounce_seconds

    def update_task(
        self,
        task_id: uuid.UUID | str,
        response_text: str | None = None,
        *,
        status: str | None = None,
        **fields: Any,
    ) -> TaskUpdate:
        """Update a task while it streams, debounced: at most one write per task per
        `debounce_seconds`; in between, the latest values are kept in memory and written by
        the next due update, `flush()`, or `complete_task` / `fail_task` / `cancel_task`.

        response_text: the full text so far (not a delta); giving it sets status streaming
        unless `status` says otherwise. status: pending or streaming (finish a task with
        complete_task, fail_task or cancel_task). fields: other task columns
        (tool_updates, response_metadata, tokens_*, ...).
        When no time_to_first_token is given, the first non-empty text stamps it (ms since
        the task's created_at).
        An update of a task that already finished is ignored, logged and reported
        (`TaskUpdate.ignored`); it is never applied.
        """
        tid = parse_uuid("task_id", task_id)
        if status is not None and status not in STREAMING_STATUSES:
            raise ValidationError(
                "status",
                f"update_task sets pending or streaming, got {status!r}; use complete_task, "
                "fail_task or cancel_task to finish a task",
                STREAMING_STATUSES,
            )
        changes = {k: v for k, v in fields.items() if v is not None}
        if response_text is not None:
            changes["response_text"] = response_text
            changes["status"] = status or "streaming"
        elif status is not None:
            changes["status"] = status
        changes = _validate_task_changes(changes, "update_task")
        with self._lock:
            finished = self._finished.get(tid)
            if finished is not None:
                self._buffers.pop(tid, None)
                log.warning("late update of task %s ignored: it is already %s", tid, finished)
                return TaskUpdate(tid, written=False, ignored=True, status=finished)
            buffer = self._buffers.setdefault(tid, TaskBuffer())
            buffer.fields.update(changes)
            if buffer.first_text_at is None and changes.get("response_text"):
                buffer.first_text_at = self.clock()
            if not self.update_due(tid):
                status_now = buffer.fields.get("status", "streaming")
                return TaskUpdate(tid, written=False, ignored=False, status=status_now)
            return self._write_buffer(tid)

    def flush(self) -> list[TaskUpdate]:
        """Write every buffered streaming update now; return one TaskUpdate per task.

        A task that no longer exists (purged meanwhile) is skipped with a warning and
        reported as ignored with status "missing"; the other tasks are still written.
        Then waits (up to 30 s) until every background task (tracked clients,
        `tracker.background`) is written, see ingest.tracking.background.
        """
        results = []
        with self._lock:
            for tid in list(self._buffers):
                try:
                    results.append(self._write_buffer(tid))
                except NotFoundError:
                    log.warning("buffered update of task %s dropped: the task is gone", tid)
                    results.append(TaskUpdate(tid, written=False, ignored=True, status="missing"))
                except ValidationError as error:
                    log.warning("buffered update of task %s dropped: %s", tid, error)
                    results.append(TaskUpdate(tid, written=False, ignored=True, status="invalid"))
                except AccessDeniedError as exc:
                    self._buffers.pop(tid, None)
                    log.warning("buffered update of task %s dropped: %s", tid, exc)
                    results.append(TaskUpdate(tid, written=False, ignored=True, status="denied"))
        flush_background = getattr(self, "flush_background", None)
        if flush_background is not None:
            flush_background()
        return results

    def _write_buffer(self, tid: uuid.UUID) -> TaskUpdate:
        buffer = self._buffers.get(tid)
        if buffer is None:
            return TaskUpdate(tid, written=False, ignored=False, status="streaming")
        with self._transaction() as conn:
            row = self._one(conn, "lock_task", task_id=tid)
            if row is None:
                self._buffers.pop(tid, None)
                raise self._refusal("task", tid, "change")
            if row["status"] in FINISHED_TASK_STATUSES:
                self._buffers.pop(tid, None)
                self._remember_finished(tid, row["status"])
                log.warning("late update of task %s ignored: it is already %s", tid, row["status"])
                return TaskUpdate(tid, written=False, ignored=True, status=row["status"])
            merged = self._merge(row, buffer, {})
            try:
                check_live_task(merged)
            except ValidationError:
                self._buffers.pop(tid, None)  # refused: never retried by flush() or close()
                raise
            written = self._write(conn, tid, merged)
        self._buffers.pop(tid, None)
        self._last_write[tid] = self.clock()
        return TaskUpdate(tid, written=True, ignored=False, status=written["status"])

    # ------------------------------------------------------------ finishing

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
        usage: a provider usage object or dict (see ingest.sdk.provider_usage), an alternative
        to the tokens_* arguments (which win); its billed values are kept in
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
        changes, billed = task_row.usage_columns(changes, usage)
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
        changes, billed = task_row.usage_columns(changes, usage)
        entry = task_row.error_entry(error)
        return self._finish(task_id, "failed", changes, error=entry, billed=billed)

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
            check_text("reason", reason, MAX_LONG_TEXT)
        changes = {k: v for k, v in fields.items() if v is not None}
        if response_text is not None:
            changes["response_text"] = response_text
        changes, billed = task_row.usage_columns(changes, usage)
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
            buffer = self._buffers.get(tid) or TaskBuffer()
            merged = self._merge(row, buffer, changes)
            given = {**buffer.fields, **changes}
            task_row.finish(
                merged, status=status, error=error, reason=reason, billed=billed, given=given
            )
            if merged["total_time"] is None:
                # The elapsed time; never less than a TTFT the caller measured on its clock.
                elapsed = _ms(row["db_now"] - row["created_at"])
                merged["total_time"] = max(elapsed, merged["time_to_first_token"] or 0)
            check_live_task(merged)
            [merged] = price_books.price_new_tasks(conn, [merged])
            written = self._write(conn, tid, merged)
        self._forget(tid, status)
        return written

    # ------------------------------------------------------------ writing one row

    def _merge(self, row: dict, buffer: TaskBuffer, changes: dict[str, Any]) -> dict[str, Any]:
        """New values of the writable columns: stored, then buffered, then given."""
        merged = {column: row[column] for column in TASK_WRITABLE}
        merged["created_at"] = row["created_at"]
        new = {**buffer.fields, **changes}
        merged["_masks"] = redaction.redact_fields(
            new, redaction.TASK_FIELDS, self._redactor.rules()
        )
        merged.update(new)
        tokens_changed = "tokens_input" in new or "tokens_output" in new
        if "tokens_total" not in new and tokens_changed:
            merged["tokens_total"] = None  # recomputed by the database: input + output
        if (
            merged["time_to_first_token"] is None
            and buffer.first_text_at is not None
            and "db_now" in row
        ):
            waited = timedelta(seconds=max(0.0, self.clock() - buffer.first_text_at))
            ttft = _ms(row["db_now"] - row["created_at"] - waited)
            if merged["total_time"] is not None:  # measured on two clocks: keep them in order
                ttft = min(ttft, merged["total_time"])
            merged["time_to_first_token"] = ttft
        return merged

    def _write(self, conn: psycopg.Connection, tid: uuid.UUID, merged: dict) -> dict[str, Any]:
        params = {column: merged[column] for column in TASK_WRITABLE}
        for column in TASK_JSON_COLUMNS:
            params[column] = _jsonb(params[column])
        params["task_id"] = tid
        params["price_ref"] = merged.get("price_ref")  # set only when we priced it
        written = self._one(conn, "write_task", **params)
        redaction.record(conn, tid, merged.get("_masks") or {})
        return written

    def _remember_finished(self, tid: uuid.UUID, status: str) -> None:
        self._finished[tid] = status
        self._finished.move_to_end(tid)
        while len(self._finished) > _FINISHED_MEMORY:
            self._finished.popitem(last=False)

    def _forget(self, tid: uuid.UUID, status: str) -> None:
        self._buffers.pop(tid, None)
        self._last_write.pop(tid, None)
        self._remember_finished(tid, status)


def _ms(delta: timedelta) -> int:
    """Milliseconds measured by the Tracker, within the integer columns' range (a task whose
    given created_at lies weeks back is capped at limits.MAX_MILLIS, docs/limits.md)."""
    return min(MAX_MILLIS, max(0, round(delta.total_seconds() * 1000)))


def _jsonb(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def _validate_task_changes(changes: dict[str, Any], method: str) -> dict[str, Any]:
    for column in changes:
        if column not in TASK_WRITABLE:
            raise ValidationError(column, f"cannot be set by {method}", TASK_WRITABLE)
    return validate_task(changes, partial=True)
