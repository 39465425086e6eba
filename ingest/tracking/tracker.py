"""The live ingest API: track runs (conversations) and tasks (requests) as they happen.

    tracker = ingest.Tracker()                      # DATABASE_URL, or the embedded server
    run = tracker.create_run("chat", messages=[{"role": "user", "content": "Hi"}])
    task = tracker.create_task(run["id"], provider="openai", model="gpt-4o")
    tracker.update_task(task["task_id"], "Hel")     # debounced while streaming
    tracker.complete_task(task["task_id"], "Hello!", tokens_input=12, tokens_output=3)

What comes back:
- a *run summary* (plain dict): every ai_runs column except `messages` and `sync_xid`;
  `get_run` adds `messages` and `tasks`;
- a *task row* (plain dict): every ai_tasks column except `sync_xid`;
- `list_runs` gives a `RunPage`, `update_task` / `flush` give `TaskUpdate` (frozen
  dataclasses).
Units: times in milliseconds, cost in USD (Decimal), timestamps timezone-aware.

Every public write is one transaction. Bad input (an unknown keyword argument too) raises
`ValidationError` (naming the field and the allowed values) before anything is written; a
missing run or task raises `NotFoundError` and writes nothing. A Tracker is safe to share
between threads (one connection, one lock).

The methods are mixed in from one module each, beside this one in ingest/tracking/: runs.py
(runs, listing, users), tasks.py (tasks: create, stream, finish), background.py (tracked
calls written by the background writer: `background`, `run`, `new_run`), access_methods.py
(sharing, audit, redaction rules), conversations.py (`resume_run`), templates.py
(templates from runs), scores.py (scores of tasks and runs: docs/quality.md) and
datasets.py and experiment_store.py (datasets of inputs and expected answers, and the
experiments replaying them: docs/quality.md) and comments.py (shared notes on runs and
tasks). This
module holds the connection plumbing they share.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ingest.access import redaction
from ingest.access.viewer import name_viewer
from ingest.errors import AccessDeniedError, NotFoundError, ValidationError
from ingest.store import database, sqlfiles
from ingest.store.limits import check_text
from ingest.tracking.access_methods import AccessMethods
from ingest.tracking.background import BackgroundMethods
from ingest.tracking.comments import CommentMethods
from ingest.tracking.conversations import ResumeMethods
from ingest.tracking.datasets import DatasetMethods
from ingest.tracking.experiment_store import ExperimentMethods
from ingest.tracking.keywords import check_keywords
from ingest.tracking.runs import RunMethods
from ingest.tracking.scores import ScoreMethods
from ingest.tracking.tasks import TaskBuffer, TaskMethods
from ingest.tracking.templates import TemplateMethods

__all__ = ["Tracker"]


@check_keywords
class Tracker(
    RunMethods,
    TaskMethods,
    BackgroundMethods,
    AccessMethods,
    ResumeMethods,
    TemplateMethods,
    ScoreMethods,
    DatasetMethods,
    ExperimentMethods,
    CommentMethods,
):
    """Write and read runs and tasks in one Postgres database.

    url: a Postgres URL; None means `ingest.database_url()` (DATABASE_URL, else the embedded
        server). The database is migrated on first use.
    user_id: owner recorded on runs and tasks created by this tracker (unless one is given;
        defaults to `viewer`).
    viewer: None (default) connects as the owner: a trusted service writer that sees and
        may change everything. An ai_users id connects as the application role under
        row-level security with that viewer named on every transaction (docs/access.md):
        what it cannot see is NotFoundError, what it may see but not change is
        AccessDeniedError, and nothing is written either way.
    debounce_seconds: at most one streaming write per task per this many seconds.
    clock: monotonic seconds (injectable for tests); used for debounce and stream timings.
    """

    def __init__(
        self,
        url: str | None = None,
        user_id: str | None = None,
        *,
        debounce_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        viewer: str | None = None,
    ) -> None:
        if user_id is not None and (not isinstance(user_id, str) or not user_id.strip()):
            raise ValidationError("user_id", f"must be a non-empty string, got {user_id!r}")
        if user_id is not None:
            check_text("user_id", user_id)
        if (
            isinstance(debounce_seconds, bool)
            or not isinstance(debounce_seconds, int | float)
            or not 0 <= debounce_seconds < math.inf
        ):
            problem = f"must be a finite number of seconds >= 0, got {debounce_seconds!r}"
            raise ValidationError("debounce_seconds", problem)
        if viewer is not None and (not isinstance(viewer, str) or not viewer.strip()):
            raise ValidationError("viewer", f"must be a non-empty string, got {viewer!r}")
        self.url = database.database_url(url)
        self.viewer = viewer
        self._connect_url = database.app_url(self.url) if viewer is not None else self.url
        self.user_id = user_id if user_id is not None else viewer
        self._redactor = redaction.Redactor(self._connect_url)
        self.debounce_seconds = float(debounce_seconds)
        self.clock = clock
        self._queries = sqlfiles.beside(__file__)
        self._lock = threading.RLock()
        self._conn: psycopg.Connection | None = None
        self._buffers: dict[uuid.UUID, TaskBuffer] = {}
        self._last_write: dict[uuid.UUID, float] = {}
        self._finished: OrderedDict[uuid.UUID, str] = OrderedDict()

    # ------------------------------------------------------------ plumbing

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Write every buffered streaming update and every background task, then close
        the connection and stop the background writer."""
        with self._lock:
            try:
                self.flush()
                self.close_background()
            finally:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self._connect_url, autocommit=True, row_factory=dict_row)
        return self._conn

    @contextmanager
    def _transaction(self, consistent: bool = False) -> Iterator[psycopg.Connection]:
        """One transaction (the viewer named in it); `consistent`: a read-only snapshot
        that every statement of it shares (a page and its total agree)."""
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    if consistent:
                        conn.execute(self._queries["consistent_read"].psycopg)
                    if self.viewer is not None:
                        name_viewer(conn, self.viewer)
                    yield conn
            except psycopg.errors.InsufficientPrivilege as exc:
                raise AccessDeniedError(
                    self.viewer, "write this row", exc.diag.message_primary or str(exc)
                ) from None

    def _refusal(self, kind: str, identifier: Any, action: str) -> Exception:
        """Why a write matched no row: NotFoundError when the row does not exist for this
        viewer, AccessDeniedError when the viewer may read it but not `action` it."""
        if self.viewer is None:
            return NotFoundError(kind, identifier)
        query = "run_visible" if kind == "run" else "task_visible"
        with self._transaction() as conn:
            key = "run_id" if kind == "run" else "task_id"
            visible = self._one(conn, query, **{key: identifier})
        if visible is None:
            return NotFoundError(kind, identifier)
        who = (
            "its owner or an admin"
            if action in ("purge", "share", "unshare")
            else "its owner, someone it is shared with for edit, or an admin"
        )
        return AccessDeniedError(
            self.viewer,
            f"{action} {kind} {identifier}",
            f"you may read it but not {action} it; only {who} may",
            kind=kind,
        )

    def _one(self, conn: psycopg.Connection, query: str, /, **params: Any) -> dict | None:
        return conn.execute(self._queries[query].psycopg, params).fetchone()
