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

Every public write is one transaction. Bad input raises `ValidationError` (naming the field
and the allowed values) before anything is written; a missing run or task raises
`NotFoundError` and writes nothing. A Tracker is safe to share between threads (one
connection, one lock).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ingest import database, naming, sqlfiles
from ingest.costs import cost_of_task
from ingest.errors import NotFoundError, ValidationError
from ingest.usage import normalize_usage
from ingest.validation import (
    MESSAGE_ROLES,
    RUN_STATUSES,
    SOURCE_TYPES,
    TERMINAL_TASK_STATUSES,
    parse_uuid,
    validate_message,
    validate_run,
    validate_task,
)

if TYPE_CHECKING:
    from ingest.streaming import TaskStream

log = logging.getLogger(__name__)

USER_ROLES = ("member", "manager", "admin")
STREAMING_STATUSES = ("pending", "streaming")
# Columns update/complete/fail/cancel may change (identity and timestamps are not theirs).
TASK_WRITABLE = (
    "service", "task_name", "provider", "endpoint", "model", "model_id", "request_data",
    "response_text", "response_data", "response_info", "response_errors", "tool_updates",
    "response_complete", "response_metadata", "tokens_input", "tokens_output",
    "tokens_cached_input", "tokens_reasoning", "tokens_total", "cost",
    "time_to_first_token", "total_time", "status",
)  # fmt: skip
_JSON_TASK_COLUMNS = (
    "request_data", "response_data", "response_info", "response_errors", "tool_updates",
    "response_metadata",
)  # fmt: skip
_JSON_RUN_COLUMNS = (
    "messages", "settings", "variable_values", "broker_values", "attachments", "metadata",
)  # fmt: skip
_FINISHED_MEMORY = 10_000  # task ids remembered as finished, to drop late updates cheaply


@dataclass(frozen=True)
class RunPage:
    """One page of `list_runs`: run summaries, the cursor of the next page (None on the last
    page) and how many runs match the filters in all."""

    rows: list[dict[str, Any]]
    next_cursor: str | None
    total: int


@dataclass(frozen=True)
class TaskUpdate:
    """Outcome of `update_task` / `flush` for one task.

    written: this call wrote the task to the database.
    ignored: the task had already finished; the update was dropped (and logged).
    status:  the task's status after the call ("streaming" for a buffered update).
    """

    task_id: uuid.UUID
    written: bool
    ignored: bool
    status: str


@dataclass
class _Buffer:
    """Streaming fields of one task not yet written (debounce)."""

    fields: dict[str, Any] = field(default_factory=dict)
    first_text_at: float | None = None  # tracker clock when the first non-empty text came


def _ms(delta: timedelta) -> int:
    return max(0, round(delta.total_seconds() * 1000))


def _jsonb(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def _error_entry(error: BaseException | str | Mapping[str, Any] | None) -> dict[str, Any]:
    if isinstance(error, BaseException):
        return {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, Mapping):
        return dict(error)
    return {"message": "unknown error" if error is None else str(error)}


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


class Tracker:
    """Write and read runs and tasks in one Postgres database.

    url: a Postgres URL; None means `ingest.database_url()` (DATABASE_URL, else the embedded
        server). The database is migrated on first use.
    user_id: owner recorded on runs and tasks created by this tracker (unless one is given).
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
    ) -> None:
        if user_id is not None and (not isinstance(user_id, str) or not user_id.strip()):
            raise ValidationError("user_id", f"must be a non-empty string, got {user_id!r}")
        if debounce_seconds < 0:
            raise ValidationError("debounce_seconds", f"must be >= 0, got {debounce_seconds}")
        self.url = database.database_url(url)
        self.user_id = user_id
        self.debounce_seconds = float(debounce_seconds)
        self.clock = clock
        self._queries = database.queries()
        self._lock = threading.RLock()
        self._conn: psycopg.Connection | None = None
        self._buffers: dict[uuid.UUID, _Buffer] = {}
        self._last_write: dict[uuid.UUID, float] = {}
        self._finished: OrderedDict[uuid.UUID, str] = OrderedDict()

    # ------------------------------------------------------------ plumbing

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Write every buffered streaming update, then close the connection."""
        with self._lock:
            try:
                self.flush()
            finally:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.url, autocommit=True, row_factory=dict_row)
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                yield conn

    def _one(self, conn: psycopg.Connection, query: str, /, **params: Any) -> dict | None:
        return conn.execute(self._queries[query].psycopg, params).fetchone()

    # ------------------------------------------------------------ runs

    def create_run(
        self,
        source_type: str,
        *,
        name: str | None = None,
        source_id: str | None = None,
        description: str | None = None,
        messages: list[Mapping[str, Any]] | None = None,
        settings: Mapping[str, Any] | None = None,
        variable_values: Mapping[str, Any] | None = None,
        broker_values: Mapping[str, Any] | None = None,
        attachments: list[Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        is_starred: bool | None = None,
        user_id: str | None = None,
        run_id: uuid.UUID | str | None = None,
        created_at: datetime | str | None = None,
    ) -> dict[str, Any]:
        """Create a run; return its summary.

        source_type: one of prompt, chat, applet, cockpit, workflow, custom.
        name: None or blank means generated: the first line of the first user message (cut
            at a word boundary, <= 60 chars), else "<Source type> run YYYY-MM-DD HH:MM" (UTC);
            such a fallback name is replaced by the first user message `add_message` adds.
        run_id: optional id; creating a run whose id exists returns the existing run
            unchanged (a safe retry).
        messages: list of {role, content, task_id?, timestamp?, metadata?};
        attachments: list of {kind: file|url|image|youtube, ...}.
        """
        if name is not None and not isinstance(name, str):
            raise ValidationError("name", f"must be a string, got {type(name).__name__}")
        given = {
            "id": run_id,
            "source_type": source_type,
            "source_id": source_id,
            "name": name.strip() if name and name.strip() else None,
            "description": description,
            "messages": messages,
            "settings": settings,
            "variable_values": variable_values,
            "broker_values": broker_values,
            "attachments": attachments,
            "metadata": metadata,
            "tags": tags,
            "is_starred": is_starred,
            "user_id": user_id if user_id is not None else self.user_id,
            "created_at": created_at,
        }
        fields = validate_run({k: v for k, v in given.items() if v is not None})
        params: dict[str, Any] = {
            column: fields.get(column)
            for column in self._queries["insert_run"].params
            if column != "name"
        }
        for column in _JSON_RUN_COLUMNS:
            params[column] = _jsonb(fields.get(column))
        with self._transaction() as conn:
            moment = fields.get("created_at") or self._one(conn, "db_now")["now"]
            params["created_at"] = moment
            params["name"] = (
                fields.get("name")
                or naming.name_from_messages(fields.get("messages") or [])
                or naming.fallback_name(fields["source_type"], moment)
            )
            row = self._one(conn, "insert_run", **params)
            if row is None:
                row = self._one(conn, "get_run_summary", run_id=fields.get("id"))
        return row

    def add_message(
        self,
        run_id: uuid.UUID | str,
        role: str,
        content: Any,
        *,
        task_id: uuid.UUID | str | None = None,
        metadata: Mapping[str, Any] | None = None,
        timestamp: datetime | str | None = None,
    ) -> dict[str, Any]:
        """Append one message to a run, atomically (concurrent appends are all kept).

        role: system, developer, user, assistant, tool or function. content: a string, a list
        of parts, an object or None. timestamp defaults to now (UTC).
        Returns {"run_id", "index" (0-based position), "message" (as stored),
        "message_count", "name"}. A first user message renames a run still carrying its
        fallback name.
        """
        run = parse_uuid("run_id", run_id)
        if role not in MESSAGE_ROLES:
            raise ValidationError("role", f"unknown role {role!r}", MESSAGE_ROLES)
        message: dict[str, Any] = {"role": role, "content": content}
        if task_id is not None:
            message["task_id"] = task_id
        if metadata is not None:
            message["metadata"] = metadata
        message["timestamp"] = timestamp if timestamp is not None else datetime.now(UTC)
        message = validate_message(message, field="message")
        candidate = naming.name_from_messages([message]) if role == "user" else ""
        with self._transaction() as conn:
            new_name = None
            if candidate:
                current = self._one(conn, "lock_run_name", run_id=run)
                if current is None:
                    raise NotFoundError("run", run)
                fallback = naming.fallback_name(current["source_type"], current["created_at"])
                if current["name"] == fallback:
                    new_name = candidate
            row = self._one(
                conn, "append_message", run_id=run, message=Jsonb(message), new_name=new_name
            )
            if row is None:
                raise NotFoundError("run", run)
        return {
            "run_id": run,
            "index": row["message_count"] - 1,
            "message": message,
            "message_count": row["message_count"],
            "name": row["name"],
        }

    def get_run(self, run_id: uuid.UUID | str, *, with_tasks: bool = True) -> dict[str, Any]:
        """One run: every column (messages included) and, unless with_tasks=False, "tasks":
        its task rows, oldest first. NotFoundError when it does not exist."""
        run = parse_uuid("run_id", run_id)
        with self._transaction() as conn:
            row = self._one(conn, "get_run", run_id=run)
            if row is None:
                raise NotFoundError("run", run)
            if with_tasks:
                row["tasks"] = conn.execute(
                    self._queries["run_tasks"].psycopg, {"run_id": run}
                ).fetchall()
        return row

    def list_runs(
        self,
        *,
        source_type: str | Sequence[str] | None = None,
        source_id: str | None = None,
        status: str | Sequence[str] | None = "active",
        starred: bool | None = None,
        tags: Sequence[str] | None = None,
        tags_match: Literal["any", "all"] = "any",
        user_id: str | None = None,
        search: str | None = None,
        created_from: datetime | date | str | None = None,
        created_to: datetime | date | str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> RunPage:
        """Run summaries matching every filter given, newest first (created_at, then id,
        descending), `limit` per page.

        status: "active" by default; a list for several; None for every status (deleted too).
        tags with tags_match "any" (at least one) or "all". search: case-insensitive substring
        of the name, description or a message's content. created_from (inclusive) and
        created_to (exclusive; a bare date means through the end of that day, UTC).
        cursor: the `next_cursor` of the previous page (keyset: no row is missed or repeated
        while runs are added). `total` counts every matching run, not just this page.
        """
        params: dict[str, Any] = {}
        filters: list[str] = []

        def add(fragment: str, **values: Any) -> None:
            filters.append(self._queries[f"run_filter_{fragment}"].sql)
            params.update(values)

        source_types = _as_list(source_type)
        if source_types is not None:
            for value in source_types:
                if value not in SOURCE_TYPES:
                    raise ValidationError("source_type", f"unknown value {value!r}", SOURCE_TYPES)
            add("source_types", source_types=source_types)
        if source_id is not None:
            add(
                "source_id",
                source_id=validate_run({"source_id": source_id}, partial=True)["source_id"],
            )
        statuses = _as_list(status)
        if statuses is not None:
            for value in statuses:
                if value not in RUN_STATUSES:
                    raise ValidationError("status", f"unknown value {value!r}", RUN_STATUSES)
            add("statuses", statuses=statuses)
        if starred is not None:
            if not isinstance(starred, bool):
                raise ValidationError("starred", f"must be true or false, got {starred!r}")
            add("starred", starred=starred)
        if tags is not None:
            if tags_match not in ("any", "all"):
                raise ValidationError("tags_match", f"unknown value {tags_match!r}", ("any", "all"))
            tag_list = validate_run({"tags": tags}, partial=True)["tags"]
            add(f"tags_{tags_match}", tags=tag_list)
        if user_id is not None:
            add("user_id", user_id=validate_run({"user_id": user_id}, partial=True)["user_id"])
        if search is not None and (not isinstance(search, str) or "\x00" in search):
            raise ValidationError("search", f"must be a string without NUL, got {search!r}")
        if search is not None and search.strip():
            text = search.strip()
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            add("search", search_pattern=f"%{escaped}%")
        if created_from is not None:
            add("created_from", created_from=_bound("created_from", created_from, False))
        if created_to is not None:
            add("created_to", created_to=_bound("created_to", created_to, True))
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValidationError("limit", f"must be a whole number 1..1000, got {limit!r}")

        count_sql = _with_filters(self._queries["count_runs"], filters)
        if cursor is not None:
            created, last_id = _decode_cursor(cursor)
            add("cursor", cursor_created_at=created, cursor_id=last_id)
        page_sql = _with_filters(self._queries["list_runs"], filters)
        with self._transaction() as conn:
            rows = conn.execute(page_sql, {**params, "limit": limit + 1}).fetchall()
            total = conn.execute(count_sql, params).fetchone()["total"]
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = _encode_cursor(rows[-1]["created_at"], rows[-1]["id"])
        return RunPage(rows=rows, next_cursor=next_cursor, total=total)

    def _set_run(self, run_id: uuid.UUID | str, **values: Any) -> dict[str, Any]:
        run = parse_uuid("run_id", run_id)
        params = {"name": None, "is_starred": None, "tags": None, "status": None, **values}
        with self._transaction() as conn:
            row = self._one(conn, "set_run_fields", run_id=run, **params)
            if row is None:
                raise NotFoundError("run", run)
        return row

    def rename_run(self, run_id: uuid.UUID | str, name: str) -> dict[str, Any]:
        """Set a run's name (trimmed, not empty); return the run summary."""
        if not isinstance(name, str) or not name.strip():
            raise ValidationError("name", f"must be a non-empty string, got {name!r}")
        return self._set_run(run_id, **validate_run({"name": name.strip()}, partial=True))

    def star_run(self, run_id: uuid.UUID | str, starred: bool = True) -> dict[str, Any]:
        """Star (or with starred=False unstar) a run; return the run summary."""
        return self._set_run(run_id, **validate_run({"is_starred": starred}, partial=True))

    def set_tags(self, run_id: uuid.UUID | str, tags: Sequence[str]) -> dict[str, Any]:
        """Replace a run's tags (trimmed, duplicates dropped); return the run summary."""
        return self._set_run(run_id, **validate_run({"tags": tags}, partial=True))

    def archive_run(self, run_id: uuid.UUID | str) -> dict[str, Any]:
        """Set status archived; return the run summary."""
        return self._set_run(run_id, status="archived")

    def delete_run(self, run_id: uuid.UUID | str) -> dict[str, Any]:
        """Soft delete: status deleted (hidden from list_runs by default, kept with its
        tasks and counted in analytics); `restore_run` undoes it, `purge_run` erases it."""
        return self._set_run(run_id, status="deleted")

    def restore_run(self, run_id: uuid.UUID | str) -> dict[str, Any]:
        """Set status back to active (from archived or deleted); return the run summary."""
        return self._set_run(run_id, status="active")

    def purge_run(self, run_id: uuid.UUID | str) -> None:
        """Hard delete: erase the run and all its tasks. NotFoundError if it does not exist."""
        run = parse_uuid("run_id", run_id)
        with self._transaction() as conn:
            if self._one(conn, "purge_run", run_id=run) is None:
                raise NotFoundError("run", run)

    def fork_run(
        self,
        run_id: uuid.UUID | str,
        at_message: int,
        *,
        name: str | None = None,
        user_id: str | None = None,
    ) -> dict[str, Any]:
        """Branch a conversation: a new run with the messages 0..at_message (inclusive) of
        `run_id`, its source, settings, variable and broker values, attachments, tags and
        metadata; parent_run_id = run_id, forked_from_message = at_message. No tasks are
        copied (totals start at zero); not starred, active. name defaults to
        "<name> (fork)", user_id to this tracker's user, else the original's.
        Returns the new run summary.
        """
        run = parse_uuid("run_id", run_id)
        if isinstance(at_message, bool) or not isinstance(at_message, int) or at_message < 0:
            raise ValidationError("at_message", f"must be a message index >= 0, got {at_message!r}")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValidationError("name", f"must be a non-empty string, got {name!r}")
        owner = user_id if user_id is not None else self.user_id
        checked = validate_run(
            {k: v for k, v in {"name": name and name.strip(), "user_id": owner}.items() if v},
            partial=True,
        )
        with self._transaction() as conn:
            source = self._one(conn, "get_run_summary", run_id=run)
            if source is None:
                raise NotFoundError("run", run)
            count = source["message_count"]
            if at_message >= count:
                allowed = [f"0..{count - 1}"] if count else []
                raise ValidationError(
                    "at_message",
                    f"run {run} has {count} messages, got index {at_message}",
                    allowed,
                )
            row = self._one(
                conn,
                "fork_run",
                run_id=run,
                at_message=at_message,
                name=checked.get("name"),
                user_id=checked.get("user_id"),
            )
        return row

    def upsert_user(
        self,
        id: str,
        display_name: str | None = None,
        email: str | None = None,
        team: str | None = None,
        role: str | None = None,
    ) -> dict[str, Any]:
        """Create or update a person (ai_users). A None argument keeps the stored value
        (display_name "" and role member for a new person). role: member, manager or admin.
        Returns the ai_users row (id, display_name, email, team, role, created_at,
        updated_at)."""
        if not isinstance(id, str) or not id.strip():
            raise ValidationError("id", f"must be a non-empty string, got {id!r}")
        for name, value in (("display_name", display_name), ("email", email), ("team", team)):
            if value is not None and not isinstance(value, str):
                raise ValidationError(name, f"must be a string, got {type(value).__name__}")
            if isinstance(value, str) and "\x00" in value:
                raise ValidationError(name, "must not contain the NUL character (\\x00)")
        if role is not None and role not in USER_ROLES:
            raise ValidationError("role", f"unknown value {role!r}", USER_ROLES)
        with self._transaction() as conn:
            return self._one(
                conn,
                "upsert_user",
                id=id.strip(),
                display_name=display_name,
                email=email,
                team=team,
                role=role,
            )

    # ------------------------------------------------------------ tasks

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
        NotFoundError("run") when the run does not exist; nothing is written then.
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
        params = {column: fields.get(column) for column in self._queries["insert_task"].params}
        params["request_data"] = _jsonb(fields.get("request_data"))
        params["response_metadata"] = _jsonb(fields.get("response_metadata"))
        try:
            with self._transaction() as conn:
                row = self._one(conn, "insert_task", **params)
                if row is None:
                    row = self._one(conn, "get_task", task_id=fields["task_id"])
        except psycopg.errors.ForeignKeyViolation:
            raise NotFoundError("run", fields["run_id"]) from None
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
        changes = dict(fields)
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
        """Write every buffered streaming update now; return one TaskUpdate per task."""
        with self._lock:
            return [self._write_buffer(tid) for tid in list(self._buffers)]

    def _write_buffer(self, tid: uuid.UUID) -> TaskUpdate:
        buffer = self._buffers.get(tid)
        if buffer is None:
            return TaskUpdate(tid, written=False, ignored=False, status="streaming")
        with self._transaction() as conn:
            row = self._one(conn, "lock_task", task_id=tid)
            if row is None:
                self._buffers.pop(tid, None)
                raise NotFoundError("task", tid)
            if row["status"] in TERMINAL_TASK_STATUSES:
                self._buffers.pop(tid, None)
                self._remember_finished(tid, row["status"])
                log.warning("late update of task %s ignored: it is already %s", tid, row["status"])
                return TaskUpdate(tid, written=False, ignored=True, status=row["status"])
            merged = self._merge(row, buffer, {})
            written = self._write(conn, tid, merged)
        self._buffers.pop(tid, None)
        self._last_write[tid] = self.clock()
        return TaskUpdate(tid, written=True, ignored=False, status=written["status"])

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
        cost: Decimal | float | str | None = None,
        time_to_first_token: int | None = None,
        total_time: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Finish a task successfully; return the task row.

        Writes the buffered streaming values, then these (None keeps what is stored).
        usage: a provider usage object or dict (see ingest.usage), an alternative to the
        tokens_* arguments (which win). tokens_input includes cached input, tokens_output
        includes reasoning; tokens_total defaults to input + output.
        cost (USD): when none is given or stored, priced from provider, model and tokens as
        of created_at; an unknown model leaves it NULL (see recompute_costs).
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
            "cost": cost,
            "time_to_first_token": time_to_first_token,
            "total_time": total_time,
            "response_text": response_text,
        }
        changes = {**fields, **{k: v for k, v in given.items() if v is not None}}
        if usage is not None:
            changes = {**normalize_usage(usage), **changes}
        changes.setdefault("response_complete", True)
        return self._finish(task_id, "completed", changes)

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
        changes = dict(fields)
        if response_text is not None:
            changes["response_text"] = response_text
        if usage is not None:
            changes = {**normalize_usage(usage), **changes}
        return self._finish(task_id, "failed", changes, error=_error_entry(error))

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
        changes = dict(fields)
        if response_text is not None:
            changes["response_text"] = response_text
        if usage is not None:
            changes = {**normalize_usage(usage), **changes}
        return self._finish(task_id, "cancelled", changes, reason=reason)

    def stream_task(
        self, run_id: uuid.UUID | str, chunks: Iterable[Any], **options: Any
    ) -> TaskStream:
        """Shortcut for `ingest.stream_task(self, run_id, chunks, **options)`."""
        from ingest.streaming import stream_task

        return stream_task(self, run_id, chunks, **options)

    # ------------------------------------------------------------ task internals

    def _finish(
        self,
        task_id: uuid.UUID | str,
        status: str,
        changes: dict[str, Any],
        *,
        error: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        tid = parse_uuid("task_id", task_id)
        method = {"completed": "complete_task", "failed": "fail_task"}.get(status, "cancel_task")
        changes = _validate_task_changes(changes, method)
        if error is not None:
            error = validate_task({"response_errors": [error]}, partial=True)["response_errors"][0]
        with self._transaction() as conn:
            row = self._one(conn, "lock_task", task_id=tid)
            if row is None:
                raise NotFoundError("task", tid)
            if row["status"] in TERMINAL_TASK_STATUSES:
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
            if reason is not None:
                meta = merged.get("response_metadata")
                meta = dict(meta) if isinstance(meta, Mapping) else {}
                merged["response_metadata"] = {**meta, "cancel_reason": reason}
            if merged["total_time"] is None:
                merged["total_time"] = _ms(row["db_now"] - row["created_at"])
            if "cost" not in buffer.fields and "cost" not in changes and row["cost"] is None:
                merged["cost"] = cost_of_task(merged)
            written = self._write(conn, tid, merged)
        self._forget(tid, status)
        return written

    def _merge(self, row: dict, buffer: _Buffer, changes: dict[str, Any]) -> dict[str, Any]:
        """New values of the writable columns: stored, then buffered, then given."""
        merged = {column: row[column] for column in TASK_WRITABLE}
        merged["created_at"] = row["created_at"]
        new = {**buffer.fields, **changes}
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
            merged["time_to_first_token"] = _ms(row["db_now"] - row["created_at"] - waited)
        return merged

    def _write(self, conn: psycopg.Connection, tid: uuid.UUID, merged: dict) -> dict[str, Any]:
        params = {column: merged[column] for column in TASK_WRITABLE}
        for column in _JSON_TASK_COLUMNS:
            params[column] = _jsonb(params[column])
        params["task_id"] = tid
        return self._one(conn, "write_task", **params)

    def _remember_finished(self, tid: uuid.UUID, status: str) -> None:
        self._finished[tid] = status
        self._finished.move_to_end(tid)
        while len(self._finished) > _FINISHED_MEMORY:
            self._finished.popitem(last=False)

    def _forget(self, tid: uuid.UUID, status: str) -> None:
        self._buffers.pop(tid, None)
        self._last_write.pop(tid, None)
        self._remember_finished(tid, status)


# ---------------------------------------------------------------- helpers


def _validate_task_changes(changes: dict[str, Any], method: str) -> dict[str, Any]:
    for column in changes:
        if column not in TASK_WRITABLE:
            raise ValidationError(column, f"cannot be set by {method}", TASK_WRITABLE)
    return validate_task(changes, partial=True)


def _with_filters(query: sqlfiles.Query, filters: list[str]) -> str:
    where = " AND ".join(f"({fragment})" for fragment in filters) or "TRUE"
    composed = sqlfiles.Query(query.name, query.doc, query.sql.replace("TRUE /*filters*/", where))
    return composed.psycopg


def _bound(field_name: str, value: datetime | date | str, end: bool) -> datetime:
    """A list_runs date bound: a datetime as given (naive = UTC), a bare date as the start of
    that day (UTC), or for an end bound the start of the next day."""
    if isinstance(value, str) and len(value.strip()) == 10:
        with suppress(ValueError):
            value = date.fromisoformat(value.strip())
    if isinstance(value, date) and not isinstance(value, datetime):
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
        return moment + timedelta(days=1) if end else moment
    try:
        return validate_run({"created_at": value}, partial=True)["created_at"]
    except ValidationError as error:
        raise ValidationError(field_name, error.problem) from None


def _encode_cursor(created_at: datetime, run_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(run_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, run_id = json.loads(raw)
        moment = datetime.fromisoformat(created)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment, uuid.UUID(run_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise ValidationError(
            "cursor", f"is not a next_cursor returned by list_runs: {cursor!r}"
        ) from None
