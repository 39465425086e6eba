"""`Tracker.list_runs`: run summaries by filters, newest first, with keyset pagination.

Mixed into Tracker (ingest/tracker.py) beside RunMethods. Each filter is a named fragment
`run_filter_*` of ingest/sql/runs.sql, joined into `list_runs` / `count_runs`.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import psycopg

from ingest.errors import ValidationError
from ingest.store import sqlfiles
from ingest.store.limits import check_text
from ingest.store.validation import validate_run
from ingest.store.vocabulary import RUN_STATUSES, SOURCE_TYPES


@dataclass(frozen=True)
class RunPage:
    """One page of `list_runs`: run summaries, the cursor of the next page (None on the last
    page) and how many runs match the filters in all."""

    rows: list[dict[str, Any]]
    next_cursor: str | None
    total: int
    # False when `total` is the count_limit of list_runs and more runs match ("more than").
    total_exact: bool = True


class RunListing:
    """The listing part of Tracker (see ingest.tracker for the shared contract)."""

    _queries: dict[str, sqlfiles.Query]
    _transaction: Callable[..., AbstractContextManager[psycopg.Connection]]

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
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValidationError("limit", f"must be a whole number 1..1000, got {limit!r}")

        if count_limit is not None and (
            isinstance(count_limit, bool) or not isinstance(count_limit, int) or count_limit < 1
        ):
            problem = f"must be a whole number >= 1, got {count_limit!r}"
            raise ValidationError("count_limit", problem)
        count_name = "count_runs" if count_limit is None else "count_runs_bounded"
        count_sql = _with_filters(self._queries[count_name], filters)
        count_params = dict(params)
        if count_limit is not None:
            count_params["count_limit"] = count_limit + 1
        if cursor is not None:
            created, last_id = _decode_cursor(cursor)
            add("run_filter_cursor", cursor_created_at=created, cursor_id=last_id)
        page_sql = _with_filters(self._queries["list_runs"], filters)
        with self._transaction(consistent=True) as conn:
            rows = conn.execute(page_sql, {**params, "limit": limit + 1}).fetchall()
            total = conn.execute(count_sql, count_params).fetchone()["total"]
        exact = count_limit is None or total <= count_limit
        total = total if exact else count_limit
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = _encode_cursor(rows[-1]["created_at"], rows[-1]["id"])
        return RunPage(rows=rows, next_cursor=next_cursor, total=total, total_exact=exact)


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    """A filter value as a list; None (no filter) for None or an empty list."""
    if value is None:
        return None
    values = [value] if isinstance(value, str) else list(value)
    return values or None


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
