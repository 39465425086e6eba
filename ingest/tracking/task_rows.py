"""Writing one task row, for the task methods of `ingest.Tracker` (ingest/tracker_tasks.py):
the values stored, buffered (streaming updates not yet written) and given, merged; the write
itself with the record of redactions; and what the Tracker remembers of finished tasks.
SQL: ingest/sql/tracker.sql."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ingest.access import redaction
from ingest.errors import ValidationError
from ingest.store import sqlfiles
from ingest.store.validation import validate_task
from ingest.store.vocabulary import (
    TASK_JSON_COLUMNS,
    TASK_WRITABLE_COLUMNS,
    UNFINISHED_TASK_STATUSES,
)

log = logging.getLogger("ingest.tracker")

STREAMING_STATUSES = UNFINISHED_TASK_STATUSES
TASK_WRITABLE = TASK_WRITABLE_COLUMNS
_FINISHED_MEMORY = 10_000  # task ids remembered as finished, to drop late updates cheaply


@dataclass
class _Buffer:
    """Streaming fields of one task not yet written (debounce)."""

    fields: dict[str, Any] = field(default_factory=dict)
    first_text_at: float | None = None  # tracker clock when the first non-empty text came


class TaskRowWriter:
    """The task row plumbing shared by the streaming updates (ingest/tracker_task_updates.py)
    and the finish paths (ingest/tracker_task_finish.py); mixed into Tracker."""

    user_id: str | None
    debounce_seconds: float
    clock: Callable[[], float]
    _queries: dict[str, sqlfiles.Query]
    _lock: threading.RLock
    _buffers: dict[uuid.UUID, _Buffer]
    _last_write: dict[uuid.UUID, float]
    _finished: OrderedDict[uuid.UUID, str]
    _transaction: Callable[..., AbstractContextManager[psycopg.Connection]]
    _one: Callable[..., dict | None]
    _refusal: Callable[[str, Any, str], Exception]
    _redactor: redaction.Redactor

    def _merge(self, row: dict, buffer: _Buffer, changes: dict[str, Any]) -> dict[str, Any]:
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
        self._record_redactions(conn, tid, merged.get("_masks") or {})
        return written

    def _record_redactions(self, conn: psycopg.Connection, tid: uuid.UUID, masks: dict) -> None:
        """Keep the masks applied to the fields just written (ai_task_redactions)."""
        if masks:
            conn.execute(
                self._queries["record_redactions"].psycopg,
                {"task_id": tid, "fields": Jsonb(masks)},
            )

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
    return max(0, round(delta.total_seconds() * 1000))


def _jsonb(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def _validate_task_changes(changes: dict[str, Any], method: str) -> dict[str, Any]:
    for column in changes:
        if column not in TASK_WRITABLE:
            raise ValidationError(column, f"cannot be set by {method}", TASK_WRITABLE)
    return validate_task(changes, partial=True)
