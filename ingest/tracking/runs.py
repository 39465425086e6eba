"""Run methods of `ingest.Tracker`: create, message, read, list, manage, fork; users.

Mixed into Tracker (ingest/tracking/tracker.py), whose connection plumbing they use. A *run
summary* is every ai_runs column except `messages` and `sync_xid`. `list_runs` joins the
named filter fragments `run_filter_*` of its SQL into `list_runs` / `count_runs`, newest
first, with keyset pagination; a member's searched or tagged list into
`list_readable_runs`, which finds the member's runs by index first (docs/access.md, "The
runs list under row-level security"). SQL: ingest/tracking/sql/runs.sql.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb

from ingest.access import redaction
from ingest.access.viewer import facts_of
from ingest.errors import NotFoundError, ValidationError
from ingest.store import sqlfiles
from ingest.store.limits import check_text
from ingest.store.validation import MESSAGE_ROLES, parse_uuid, validate_message, validate_run
from ingest.store.vocabulary import RUN_JSON_COLUMNS, RUN_STATUSES, SOURCE_TYPES, USER_ROLES
from ingest.tracking import naming


@dataclass(frozen=True)
class RunPage:
    """One page of `list_runs`: run summaries, the cursor of the next page (None on the last
    page) and how many runs match the filters in all."""

    rows: list[dict[str, Any]]
    next_cursor: str | None
    total: int
    # False when `total` is the count_limit of list_runs and more runs match ("more than").
    total_exact: bool = True


class RunMethods:
    """The run methods of Tracker (see ingest.tracking.tracker for the shared contract)."""

    user_id: str | None
    _queries: dict[str, sqlfiles.Query]
    _transaction: Callable[..., AbstractContextManager[psycopg.Connection]]
    _one: Callable[..., dict | None]
    _refusal: Callable[[str, Any, str], Exception]
    _redactor: redaction.Redactor

    # Over 60 lines: mostly its keyword arguments (the run's columns) and their contract.
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
        variant: str | None = None,
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
        variant: an A/B label (prompt version, model, settings; docs/quality.md) its tasks
            carry unless they name their own; 1..100 letters, digits, _ . : / @ + -.
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
            "variant": variant,
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

    # Over 60 lines: its keyword filters with their contract, then each filter checked
    # and joined in the order of its SQL fragment (sql/runs.sql, run_filter_*).
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
        count_limit: int | None = None,
    ) -> RunPage:
        """Run summaries matching every filter given, newest first (created_at, then id,
        descending), `limit` per page.

        status: "active" by default; a list for several; None for every status (deleted too).
        A filter given as None or an empty list does not filter.
        tags with tags_match "any" (at least one) or "all". search: case-insensitive substring
        of the name, description or a message's content. created_from (inclusive) and
        created_to (exclusive; a bare date means through the end of that day, UTC).
        cursor: the `next_cursor` of the previous page (keyset: no row is missed or repeated
        while runs are added). `total` counts every matching run, not just this page; with
        `count_limit` it counts at most that many and `total_exact` is False when more match
        (a total that stays cheap on millions of runs).
        """
        params: dict[str, Any] = {}
        filters: list[str] = []

        def add(name: str, **values: Any) -> None:
            filters.append(self._queries[name].sql)
            params.update(values)

        source_types = _as_list(source_type)
        if source_types is not None:
            for value in source_types:
                if value not in SOURCE_TYPES:
                    raise ValidationError("source_type", f"unknown value {value!r}", SOURCE_TYPES)
            add("run_filter_source_types", source_types=source_types)
        if source_id is not None:
            add(
                "run_filter_source_id",
                source_id=validate_run({"source_id": source_id}, partial=True)["source_id"],
            )
        statuses = _as_list(status)
        if statuses is not None:
            for value in statuses:
                if value not in RUN_STATUSES:
                    raise ValidationError("status", f"unknown value {value!r}", RUN_STATUSES)
            add("run_filter_statuses", statuses=statuses)
        if starred is not None:
            if not isinstance(starred, bool):
                raise ValidationError("starred", f"must be true or false, got {starred!r}")
            add("run_filter_starred", starred=starred)
        if tags:
            if tags_match not in ("any", "all"):
                raise ValidationError("tags_match", f"unknown value {tags_match!r}", ("any", "all"))
            tag_list = validate_run({"tags": tags}, partial=True)["tags"]
            add(
                "run_filter_tags_all" if tags_match == "all" else "run_filter_tags_any",
                tags=tag_list,
            )
        if user_id is not None:
            add(
                "run_filter_user_id",
                user_id=validate_run({"user_id": user_id}, partial=True)["user_id"],
            )
        if search is not None and not isinstance(search, str):
            raise ValidationError("search", f"must be a string, got {type(search).__name__}")
        if search is not None:
            check_text("search", search)
        if search is not None and search.strip():
            text = search.strip()
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            add("run_filter_search", search_pattern=f"%{escaped}%")
        if created_from is not None:
            add("run_filter_created_from", created_from=_bound("created_from", created_from, False))
        if created_to is not None:
            add("run_filter_created_to", created_to=_bound("created_to", created_to, True))
        readable = {
            "readable_from": params.get("created_from"),
            "readable_to": params.get("created_to"),
            "readable_search": params.get("search_pattern"),
            "readable_tags": params.get("tags"),
            "readable_tags_all": tags_match == "all",
        }
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValidationError("limit", f"must be a whole number 1..1000, got {limit!r}")

        if count_limit is not None and (
            isinstance(count_limit, bool) or not isinstance(count_limit, int) or count_limit < 1
        ):
            problem = f"must be a whole number >= 1, got {count_limit!r}"
            raise ValidationError("count_limit", problem)
        count_filters = list(filters)
        count_params = {**params, "count_limit": None if count_limit is None else count_limit + 1}
        if cursor is not None:
            created, last_id = _decode_cursor(cursor)
            add("run_filter_cursor", cursor_created_at=created, cursor_id=last_id)
        page_filters = filters[len(count_filters) :]
        narrowed = "search_pattern" in params or "tags" in params
        with self._transaction(consistent=True) as conn:
            if narrowed and self._reads_readable_runs_first(conn):
                bounds = {**readable, "count_limit": count_params["count_limit"]}
                values = {**params, **bounds, "limit": limit + 1}
                rows, total = self._readable_run_page(conn, count_filters, page_filters, values)
            else:
                count_name = "count_runs" if count_limit is None else "count_runs_bounded"
                count_sql = _with_filters(self._queries[count_name], count_filters)
                page_sql = _with_filters(self._queries["list_runs"], filters)
                rows = conn.execute(page_sql, {**params, "limit": limit + 1}).fetchall()
                total = conn.execute(count_sql, count_params).fetchone()["total"]
        exact = count_limit is None or total <= count_limit
        total = total if exact else count_limit
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = _encode_cursor(rows[-1]["created_at"], rows[-1]["id"])
        return RunPage(rows=rows, next_cursor=next_cursor, total=total, total_exact=exact)

    def _readable_run_page(
        self,
        conn: psycopg.Connection,
        filters: list[str],
        page_filters: list[str],
        values: dict[str, Any],
    ) -> tuple[list[dict[str, Any]], int]:
        """list_runs' page rows and (bounded) total by list_readable_runs: the viewer's
        readable runs of the search and tags first, every filter then (`page_filters`: the
        cursor's, for the page only)."""
        # ai_viewer_readable_runs returns only runs whose joined text matches the search, in
        # this transaction's snapshot: of the search, only its field-by-field test is left,
        # made on as few runs as the page and the bounded total need.
        search = self._queries["run_filter_search"].sql
        fields = [self._queries["run_filter_search_fields"].sql] if search in filters else []
        filters = [fragment for fragment in filters if fragment != search]
        sql = _with_filters(self._queries["list_readable_runs"], filters, page_filters, fields)
        rows = conn.execute(sql, values).fetchall()
        total = rows[0]["total"]  # on every row; one row of NULL run columns when none match
        for row in rows:
            del row["total"]
        return [row for row in rows if row["id"] is not None], total

    def _reads_readable_runs_first(self, conn: psycopg.Connection) -> bool:
        """Whether a searched or tagged list_runs finds the viewer's readable runs by index
        before reading any (docs/access.md, "The runs list under row-level security"): for
        a member (or a person not in ai_users), since row-level security cannot use the
        search's and the tags' indexes and a member reads few of the runs. An admin's list
        uses those indexes directly; a manager's reads the newest runs first under the
        policy and stops at the page, which is faster when a team's many runs match."""
        if self.viewer is None:
            return False
        facts = facts_of(conn)
        return not facts["sees_all"] and facts["role"] != "manager"


def _jsonb(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    """A filter value as a list; None (no filter) for None or an empty list."""
    if value is None:
        return None
    values = [value] if isinstance(value, str) else list(value)
    return values or None


def _with_filters(
    query: sqlfiles.Query,
    filters: list[str],
    page_filters: list[str] | None = None,
    search_filters: list[str] | None = None,
) -> str:
    """`query` with its TRUE /*filters*/ (and TRUE /*page_filters*/, TRUE
    /*search_filters*/) replaced by the fragments joined with AND, as psycopg SQL."""

    def joined(fragments: list[str]) -> str:
        return " AND ".join(f"({fragment})" for fragment in fragments) or "TRUE"

    sql = query.sql.replace("TRUE /*filters*/", joined(filters))
    if page_filters is not None:
        sql = sql.replace("TRUE /*page_filters*/", joined(page_filters))
    if search_filters is not None:
        sql = sql.replace("TRUE /*search_filters*/", joined(search_filters))
    return sqlfiles.Query(query.name, query.doc, sql).psycopg


def _bound(field_name: str, value: datetime | date | str, end: bool) -> datetime:
    """A list_runs date bound: a datetime as given (naive = UTC), a bare date as the start of
    that day (UTC), or for an end bound the start of the next day."""
    if isinstance(value, str) and len(value.strip()) == 10:
        with suppress(ValueError):
            value = date.fromisoformat(value.strip())
    if isinstance(value, date) and not isinstance(value, datetime):
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
        if not end:
            return moment
        try:
            return moment + timedelta(days=1)
        except OverflowError:  # the day after 9999-12-31 is not a Python date
            raise ValidationError(
                field_name, f"must be a date before 9999-12-31 (the last one), got {value}"
            ) from None
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
