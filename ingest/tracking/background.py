"""Tasks recorded in memory and written by the background writer (docs/tracking.md).

`tracker.background` has the task half of the Tracker API that stream_task uses
(create_task, update_due, update_task, complete_task, fail_task, cancel_task, clock): a
task is kept in memory while it runs and handed, finished, to the tracker's
BackgroundWriter. Nothing touches the database in the application's call, so a database
outage never reaches the application. The price is visibility: such a task appears in the
database when it finishes (no streaming progress), within a batch interval.

    for chunk in ingest.stream_task(tracker.background, run_id, sdk_stream, ...): ...
    with tracker.run("chat", name="support") as run_id: ...   # a run for tracked calls
    tracker.flush()                                           # wait until written

Mixed into Tracker (BackgroundMethods): `background`, `run(...)`, `current_run_id()`,
`new_run(...)`; Tracker.flush() and close() flush the writer too.
"""

from __future__ import annotations

import contextvars
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

from ingest.errors import NotFoundError
from ingest.sdk import BackgroundWriter, storable_error
from ingest.store.validation import validate_run
from ingest.tracking import naming, task_row
from ingest.tracking.tasks import TaskUpdate

_current_run: contextvars.ContextVar[uuid.UUID | None] = contextvars.ContextVar(
    "ai_runs_current_run", default=None
)


class BackgroundTasks:
    """Tracker-like task methods that write through a BackgroundWriter (module docstring).
    Returned rows are the task's columns as written (a dict), not read back."""

    def __init__(self, writer: BackgroundWriter, user_id: str | None, clock: Callable[[], float]):
        self.writer = writer
        self.user_id = user_id
        self.clock = clock
        self._open: dict[uuid.UUID, tuple[dict[str, Any], float]] = {}
        self._lock = threading.Lock()

    def create_task(
        self, run_id: uuid.UUID | str, *, task_id: uuid.UUID | str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Start a task in memory (status pending). Fields are validated in the writer thread
        when the task is written (a refused task is logged, naming the field)."""
        given = {"run_id": run_id, "task_id": task_id or uuid.uuid4(), "user_id": self.user_id}
        row = {k: v for k, v in {**given, **fields}.items() if v is not None}
        row["task_id"] = uuid.UUID(str(row["task_id"]))
        row.setdefault("created_at", datetime.now(UTC))
        row["status"] = "pending"
        with self._lock:
            self._open[row["task_id"]] = (row, self.clock())
        return {"task_id": row["task_id"], "status": "pending", "run_id": row["run_id"]}

    def update_due(self, task_id: uuid.UUID | str) -> bool:
        """Always False: background tasks are written once, finished."""
        return False

    def update_task(
        self, task_id: uuid.UUID | str, response_text: str | None = None, **fields: Any
    ) -> TaskUpdate:
        """Keep the latest streaming values in memory (written when the task finishes)."""
        row, _ = self._open[uuid.UUID(str(task_id))]
        if response_text is not None:
            row["response_text"] = response_text
        row.update({k: v for k, v in fields.items() if v is not None and k != "status"})
        return TaskUpdate(row["task_id"], written=False, ignored=False, status="streaming")

    def complete_task(
        self,
        task_id: uuid.UUID | str,
        response_text: str | None = None,
        *,
        usage: Any = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Finish successfully and hand the task to the writer (see Tracker.complete_task)."""
        fields.setdefault("response_complete", True)
        return self._finish(task_id, "completed", response_text, usage, fields)

    def fail_task(
        self,
        task_id: uuid.UUID | str,
        error: Any = None,
        *,
        response_text: str | None = None,
        usage: Any = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Finish as failed (error appended to response_errors) and hand it to the writer."""
        return self._finish(task_id, "failed", response_text, usage, fields, error=error)

    def cancel_task(
        self,
        task_id: uuid.UUID | str,
        reason: str | None = None,
        *,
        response_text: str | None = None,
        usage: Any = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Finish as cancelled (reason in response_metadata) and hand it to the writer."""
        return self._finish(task_id, "cancelled", response_text, usage, fields, reason=reason)

    def _finish(
        self,
        task_id: Any,
        status: str,
        response_text: str | None,
        usage: Any,
        fields: dict[str, Any],
        *,
        error: Any = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        tid = uuid.UUID(str(task_id))
        with self._lock:
            row, started = self._open.pop(tid)
        if fields.get("total_time") is None:
            fields["total_time"] = max(0, round((self.clock() - started) * 1000))
        if status == "completed":
            fields["completed_at"] = datetime.now(UTC)
        # Reading usage and validating run in the writer thread, off the call; pricing runs
        # when the row is written (BackgroundWriter: the price book in force then).
        self.writer.submit_task(
            lambda: _finished_row(row, status, response_text, usage, fields, error, reason)
        )
        return {"task_id": tid, "run_id": row["run_id"], "status": status}


def _finished_row(
    row: dict[str, Any],
    status: str,
    response_text: Any,
    usage: Any,
    fields: dict[str, Any],
    error: Any,
    reason: str | None,
) -> dict[str, Any]:
    """The ai_tasks row of a finished background task, built as on every write path
    (ingest/tracking/task_row.py; ValidationError when refused). Without a given cost the
    row has no cost and the writer prices it in its write transaction. Values given as
    callables (the text, the response) are called here, in the writer thread."""
    fields = {k: (v() if callable(v) else v) for k, v in fields.items()}
    if callable(response_text):
        response_text = response_text()
    changes = {k: v for k, v in fields.items() if v is not None}
    if response_text is not None:
        changes["response_text"] = response_text
    entry = None if error is None else task_row.error_entry(storable_error(error))
    return task_row.task_row(
        {**row, **changes}, usage=usage, status=status, error=entry, reason=reason
    )


class BackgroundMethods:
    """Tracker mix-in: the background writer, tracked-call runs (see module docstring)."""

    url: str
    _transaction: Callable[..., AbstractContextManager[Any]]
    _one: Callable[..., dict | None]
    user_id: str | None
    clock: Callable[[], float]
    _background: BackgroundTasks | None = None

    @property
    def background(self) -> BackgroundTasks:
        """Task methods that write through this tracker's background writer (created on
        first use; spool under $AI_RUNS_HOME/spool)."""
        if self._background is None:
            self._background = BackgroundTasks(BackgroundWriter(self.url), self.user_id, self.clock)
        return self._background

    def flush_background(self, timeout: float | None = 30.0) -> bool:
        """Wait until every background task is written (True) or `timeout` passes."""
        return True if self._background is None else self._background.writer.flush(timeout)

    def close_background(self) -> None:
        if self._background is not None:
            self._background.writer.close()
            self._background = None

    def new_run(
        self,
        source_type: str = "chat",
        *,
        name: str | None = None,
        messages: list | None = None,
        run_id: uuid.UUID | str | None = None,
        metadata: Mapping[str, Any] | None = None,
        variant: str | None = None,
    ) -> uuid.UUID:
        """Queue a new run for the background writer and return its id (no database
        round trip). Named like create_run: from the first user message, else a fallback.
        variant: its tasks' A/B label unless they name one (docs/quality.md)."""
        now = datetime.now(UTC)
        if not name and messages:
            name = naming.name_from_messages(messages) or None
        fields = {
            "id": run_id or uuid.uuid4(),
            "source_type": source_type,
            "name": name or naming.fallback_name(source_type, now),
            "messages": messages or [],
            "metadata": dict(metadata or {}),
            "created_at": now,
            "user_id": self.user_id,
            "variant": variant,
        }
        row = validate_run({k: v for k, v in fields.items() if v is not None})
        self.background.writer.submit_run(row)
        return row["id"]

    @contextmanager
    def run(self, source_type: str = "chat", **options: Any) -> Iterator[uuid.UUID]:
        """`with tracker.run("chat", name=...) as run_id:` calls through tracked clients in
        this block (this thread / task) belong to one run: a new one (options as new_run,
        whose `run_id=` names the new run), or a run that exists already, given by its id
        (`with tracker.run(run_id):`, to continue a resumed run) or as `existing=<run id>`
        (nothing is created then). A run id given first must name a run this tracker's
        viewer may read (NotFoundError otherwise)."""
        existing = options.pop("existing", None)
        if existing is None and _is_run_id(source_type):
            existing = self._readable_run(source_type)
        run_id = existing or self.new_run(source_type, **options)
        token = _current_run.set(uuid.UUID(str(run_id)))
        try:
            yield uuid.UUID(str(run_id))
        finally:
            _current_run.reset(token)

    def _readable_run(self, run_id: Any) -> uuid.UUID:
        run = uuid.UUID(str(run_id))
        with self._transaction() as conn:
            if self._one(conn, "run_visible", run_id=run) is None:
                raise NotFoundError("run", run)
        return run

    def current_run_id(self) -> uuid.UUID | None:
        """The run of the innermost `with tracker.run(...)` block, or None."""
        return _current_run.get()


def _is_run_id(value: Any) -> bool:
    """True for a UUID or a string that reads as one (a run id, not a source type)."""
    if isinstance(value, uuid.UUID):
        return True
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
