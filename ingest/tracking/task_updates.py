"""Streaming updates of a task, debounced, for `ingest.Tracker`: `update_task` keeps the
latest streaming values of each task in memory and writes them at most once per
`debounce_seconds` (the first update at once). There is no background timer: buffered
values are written by the next due update, `flush()`, `close()`, or the call that finishes
the task (ingest/tracker_task_finish.py). SQL: ingest/sql/tracker.sql."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ingest.errors import AccessDeniedError, NotFoundError, ValidationError
from ingest.store.validation import check_task_consistency, parse_uuid
from ingest.store.vocabulary import FINISHED_TASK_STATUSES
from ingest.tracking.task_rows import (
    STREAMING_STATUSES,
    TaskRowWriter,
    _Buffer,
    _validate_task_changes,
    log,
)


@dataclass(frozen=True)
class TaskUpdate:
    """Outcome of `update_task` / `flush` for one task.

    written: this call wrote the task to the database.
    ignored: the task had already finished; the update was dropped (and logged).
    status:  the task's status after the call (the buffered status for a buffered update;
             "missing" when flush found the task gone, "invalid" when flush dropped buffered
             values that break a rule between columns, see validation.check_task_consistency).
    """

    task_id: uuid.UUID
    written: bool
    ignored: bool
    status: str


class TaskUpdateMethods(TaskRowWriter):
    """update_due, update_task and flush of Tracker (see ingest.tracker for the contract)."""

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
            buffer = self._buffers.setdefault(tid, _Buffer())
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
        `tracker.background`) is written, see ingest.background_tasks.
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
                check_task_consistency(merged)
            except ValidationError:
                self._buffers.pop(tid, None)  # refused: never retried by flush() or close()
                raise
            written = self._write(conn, tid, merged)
        self._buffers.pop(tid, None)
        self._last_write[tid] = self.clock()
        return TaskUpdate(tid, written=True, ignored=False, status=written["status"])
