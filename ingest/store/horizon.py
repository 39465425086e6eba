"""What holds back the change-capture horizon (docs/design.md, "The mirror (change
capture)", "When the horizon is held back").

A mirror sync remembers `pg_snapshot_xmin(pg_current_snapshot())` and the next one reads
every row stamped at or above it. That xmin is the oldest transaction id still running
anywhere on the server, in any database: one transaction left open (an idle session in
a transaction, a long write, a forgotten prepared transaction) keeps every horizon where
it was, so each sync re-reads everything written since it began, and the online
evaluator (ingest/tracking) sees no task written after it.

Only transactions with an id hold it: a read-only snapshot (a long SELECT, a REPEATABLE
READ report, a replication slot's xmin, a standby's feedback) holds back vacuum, not
this horizon, so none of them is named.

The threshold: a transaction holds the horizon back when it began HELD_BACK_AFTER_SECONDS
ago or earlier. The dashboard syncs every 30 s at most, and a writer of this product (one
API call, one bulk batch, one purge batch) finishes well within that; a transaction a
minute old has made at least two syncs re-read what it held. Sessions of other users
whose start this role may not see (no pg_read_all_stats) are named when they were already
running at the previous sync's horizon, as "another session of user X".

This module only looks; it never ends a session. The SQL is sql/horizon.sql.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from ingest.store import sqlfiles

HELD_BACK_AFTER_SECONDS = 60.0
QUERY = "horizon_holders"  # the named query of sql/horizon.sql


@dataclass(frozen=True)
class HorizonHolder:
    """One transaction holding the horizon back.

    kind: "session" (pid set) or "prepared" (gid set). database, username: where and
    whose. state, started (transaction start, or when prepared, UTC), age_seconds and
    query (its first 120 characters): None when `hidden` (another user's session this
    role may not inspect). application: the client's application_name, if any.
    """

    kind: str
    pid: int | None
    database: str | None
    username: str | None
    application: str | None
    state: str | None
    started: datetime | None
    age_seconds: float | None
    query: str | None
    gid: str | None
    hidden: bool

    def describe(self) -> str:
        """One line a person can act on: what it is, and how to end it."""
        where = f"database {self.database or '?'}"
        if self.kind == "prepared":
            return (
                f"prepared transaction '{self.gid}' in {where} (owner {self.username}), "
                f"prepared {_ago(self.age_seconds)} ago: end it with COMMIT PREPARED "
                f"'{self.gid}' or ROLLBACK PREPARED '{self.gid}' in that database"
            )
        end = f"commit or roll back that session, or run SELECT pg_terminate_backend({self.pid})"
        if self.hidden:
            return (
                f"pid {self.pid} in {where}: another session of user {self.username} (its "
                f"state, start and query are hidden from this role; it was already running "
                f"at the previous sync): {end} as that user or a superuser"
            )
        app = f", {self.application}" if self.application else ""
        query = (self.query or "").strip()
        return (
            f"pid {self.pid} in {where} (user {self.username}{app}), {self.state}, "
            f"transaction open for {_ago(self.age_seconds)}"
            + (f", last query: {query!r}" if query else "")
            + f": {end}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (started as ISO 8601)."""
        values = asdict(self)
        values["started"] = self.started.isoformat() if self.started else None
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> HorizonHolder:
        """The inverse of to_dict."""
        started = values.get("started")
        return cls(**{**values, "started": datetime.fromisoformat(started) if started else None})


def holders_query() -> sqlfiles.Query:
    """The named query (parameters older_than: seconds, previous: the previous horizon as
    text, '0' for none); its rows feed holders_from_rows."""
    return sqlfiles.beside(__file__)[QUERY]


def holders_from_rows(rows: list[tuple[Any, ...]]) -> list[HorizonHolder]:
    """HorizonHolders from the query's rows (tuples in its column order), oldest first."""
    return [
        HorizonHolder(
            kind=row[0],
            pid=None if row[1] is None else int(row[1]),
            database=row[2],
            username=row[3],
            application=row[4] or None,
            state=row[5],
            started=row[6],
            age_seconds=None if row[7] is None else float(row[7]),
            query=row[8],
            gid=row[9],
            hidden=bool(row[10]),
        )
        for row in rows
    ]


def find_holders(
    conn: Any, *, previous: str = "0", older_than: float | None = None
) -> list[HorizonHolder]:
    """The transactions holding the horizon back, read on a psycopg connection (tuple
    rows or dict rows), oldest first; empty when none. older_than: seconds (default
    HELD_BACK_AFTER_SECONDS); previous: the previous horizon, for hidden sessions."""
    if older_than is None:
        older_than = HELD_BACK_AFTER_SECONDS
    params = {"older_than": float(older_than), "previous": str(previous)}
    rows = conn.execute(holders_query().psycopg, params).fetchall()
    return holders_from_rows([tuple(r.values()) if isinstance(r, dict) else r for r in rows])


def held_back_summary(holders: list[HorizonHolder]) -> str:
    """The headline of the warning for `holders` (one or more): what it costs."""
    count = "a transaction" if len(holders) == 1 else f"{len(holders)} transactions"
    return (
        f"The change-capture horizon is held back by {count} left open on the database "
        "server: every mirror sync re-reads all rows written since the oldest began, and "
        "online evaluators wait for it"
    )


def held_back_message(holders: list[HorizonHolder]) -> str | None:
    """The whole warning for `holders` (None when empty): the summary, then each holder
    and how to end it."""
    if not holders:
        return None
    details = "; ".join(holder.describe() for holder in holders)
    return f"{held_back_summary(holders)}. {details}."


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "an unknown time"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
