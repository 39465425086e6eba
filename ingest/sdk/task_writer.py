"""What tracking writes through: one task API, two writers (docs/tracking.md).

`TaskWriter` is the task API shared by `ingest.Tracker` (writes in the caller's thread, one
transaction per call, streaming updates debounced) and `tracker.background` (keeps the task
in memory and hands it, finished, to the background writer). `ingest.stream_task` and the
tracked SDK clients write through either one; both build a finished task's row the same way
(ingest/tracking/task_row.py).

`CallTracker` is what `ingest.track` and the LiteLLM logger need of a Tracker: its
background writer, the run of the innermost `with tracker.run(...)`, and new runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class TaskWriter(Protocol):
    """Create a task, update it while it streams, finish it once (see ingest.Tracker for
    each method's contract). `clock` is monotonic seconds, the clock times are taken on."""

    clock: Callable[[], float]

    def create_task(
        self, run_id: uuid.UUID | str, *, task_id: uuid.UUID | str | None = None, **fields: Any
    ) -> dict[str, Any]: ...

    def update_due(self, task_id: uuid.UUID | str) -> bool: ...

    def update_task(
        self, task_id: uuid.UUID | str, response_text: str | None = None, **fields: Any
    ) -> Any: ...

    def complete_task(
        self,
        task_id: uuid.UUID | str,
        response_text: str | None = None,
        *,
        usage: Any = None,
        **fields: Any,
    ) -> dict[str, Any]: ...

    def fail_task(
        self,
        task_id: uuid.UUID | str,
        error: BaseException | str | Mapping[str, Any] | None = None,
        *,
        response_text: str | None = None,
        usage: Any = None,
        **fields: Any,
    ) -> dict[str, Any]: ...

    def cancel_task(
        self,
        task_id: uuid.UUID | str,
        reason: str | None = None,
        *,
        response_text: str | None = None,
        usage: Any = None,
        **fields: Any,
    ) -> dict[str, Any]: ...


@runtime_checkable
class CallTracker(Protocol):
    """A Tracker as tracked SDK clients and the LiteLLM logger use it."""

    @property
    def background(self) -> TaskWriter: ...

    def current_run_id(self) -> uuid.UUID | None: ...

    def new_run(
        self,
        source_type: str = "chat",
        *,
        name: str | None = None,
        messages: list | None = None,
        run_id: uuid.UUID | str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> uuid.UUID: ...
