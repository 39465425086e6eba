"""Run methods of `ingest.Tracker`: create, message, read, manage, fork; users.

Mixed into Tracker (ingest/tracker.py), whose connection plumbing they use; listing runs is
ingest/run_listing.py. A *run summary* is every ai_runs column except `messages` and
`sync_xid`. SQL: ingest/sql/runs.sql.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ingest.access import redaction
from ingest.errors import NotFoundError, ValidationError
from ingest.store import sqlfiles
from ingest.store.limits import check_text
from ingest.store.validation import MESSAGE_ROLES, parse_uuid, validate_message, validate_run
from ingest.store.vocabulary import RUN_JSON_COLUMNS, USER_ROLES
from ingest.tracking import naming


class RunMethods:
    """The run half of Tracker (see ingest.tracker for the shared contract)."""

    user_id: str | None
    _queries: dict[str, sqlfiles.Query]
    _transaction: Callable[..., AbstractContextManager[psycopg.Connection]]
    _one: Callable[..., dict | None]
    _refusal: Callable[[str, Any, str], Exception]
    _redactor: redaction.Redactor

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
        redaction.redact_fields(fields, redaction.RUN_FIELDS, self._redactor.rules())
        params: dict[str, Any] = {
            column: fields.get(column)
            for column in self._queries["insert_run"].params
            if column != "name"
        }
        for column in RUN_JSON_COLUMNS:
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
        message["content"], _ = redaction.redact(message["content"], self._redactor.rules())
        candidate = naming.name_from_messages([message]) if role == "user" else ""
        with self._transaction() as conn:
            new_name = None
            if candidate:
                current = self._one(conn, "lock_run_name", run_id=run)
                if current is None:
                    raise self._refusal("run", run, "change")
                fallback = naming.fallback_name(current["source_type"], current["created_at"])
                if current["name"] == fallback:
                    new_name = candidate
            row = self._one(
                conn, "append_message", run_id=run, message=Jsonb(message), new_name=new_name
            )
            if row is None:
                raise self._refusal("run", run, "change")
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
        with self._transaction(consistent=True) as conn:
            row = self._one(conn, "get_run", run_id=run)
            if row is None:
                raise NotFoundError("run", run)
            if with_tasks:
                row["tasks"] = conn.execute(
                    self._queries["run_tasks"].psycopg, {"run_id": run}
                ).fetchall()
        return row

    def _set_run(self, run_id: uuid.UUID | str, **values: Any) -> dict[str, Any]:
        run = parse_uuid("run_id", run_id)
        params = {"name": None, "is_starred": None, "tags": None, "status": None, **values}
        with self._transaction() as conn:
            row = self._one(conn, "set_run_fields", run_id=run, **params)
            if row is None:
                raise self._refusal("run", run, "change")
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
                raise self._refusal("run", run, "purge")

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
        check_text("id", id)
        for name, value in (("display_name", display_name), ("email", email), ("team", team)):
            if value is not None and not isinstance(value, str):
                raise ValidationError(name, f"must be a string, got {type(value).__name__}")
            if isinstance(value, str):
                check_text(name, value)
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


def _jsonb(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)
