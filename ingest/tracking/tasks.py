"""Task methods of `ingest.Tracker`: create, stream (debounced), finish, read.

Mixed into Tracker (ingest/tracker.py), whose connection plumbing they use. A *task row* is
every ai_tasks column except `sync_xid`. SQL: ingest/sql/tracker.sql. This module creates
and reads tasks; streaming updates are ingest/tracker_task_updates.py, the finish paths
ingest/tracker_task_finish.py, the row plumbing both share ingest/tracker_task_rows.py.

Debounce: `update_task` keeps the latest streaming values of each task in memory and
writes them at most once per `debounce_seconds` (the first update at once). There is no
background timer: buffered values are written by the next due update, `flush()`, `close()`,
or the call that finishes the task.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg

from ingest.access import redaction
from ingest.errors import AccessDeniedError, NotFoundError, ValidationError
from ingest.store.validation import parse_uuid, validate_task
from ingest.tracking.task_finish import FINISHING_METHODS, TaskFinishMethods, _error_entry
from ingest.tracking.task_rows import STREAMING_STATUSES, TASK_WRITABLE, _Buffer, _jsonb
from ingest.tracking.task_updates import TaskUpdate, TaskUpdateMethods

if TYPE_CHECKING:
    from ingest.sdk.streaming import TaskStream

# Names other modules import from here (ingest/tracker.py, ingest/background_tasks.py).
__all__ = [
    "FINISHING_METHODS",
    "STREAMING_STATUSES",
    "TASK_WRITABLE",
    "TaskMethods",
    "TaskUpdate",
    "_Buffer",
    "_error_entry",
]


class TaskMethods(TaskUpdateMethods, TaskFinishMethods):
    """The task half of Tracker (see ingest.tracker for the shared contract): create and
    read here, streaming updates and finishing in the two mixins."""

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
    ) -> dict[str, Any]:
        """Record a request before it goes out; return the task row.

        task_id: the id the application's stream layer uses (a new uuid4 when None).
        Creating a task whose task_id exists returns the existing task unchanged (a safe
        retry, also under concurrency); if that task belongs to another run it is a
        ValidationError on task_id. status: pending (default) or streaming.
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
                    self._record_redactions(conn, fields["task_id"], masks)
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
    ) -> TaskStream:
        """Shortcut for `ingest.stream_task(self, run_id, chunks, **options)`."""
        from ingest.sdk.streaming import stream_task

        return stream_task(self, run_id, chunks, **options)
