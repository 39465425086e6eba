"""The bulk path: users, runs and tasks written with COPY, in batches, exactly once.

Rows arrive as lines of Postgres' COPY text format (`encode_row` makes them from a dict of
column values; the demo generator writes them directly), grouped in `Batch`es of one table.
`BulkWriter.write(*batches)` writes its batches in one transaction; for each batch:

1. tasks: lock the batch's runs in id order (the order the totals trigger uses); a task
   whose run does not exist is returned as `missing_parent`, not written. runs: a run
   whose parent_run_id exists neither in the batch nor in the database is returned the
   same way.
2. COPY straight into the table. The statement-level triggers add each run's totals once
   per batch, exactly. If a row already exists (same id, same task_id) the COPY fails on
   the unique index and the batch goes through a temporary staging table instead:
   `INSERT ... SELECT ... ON CONFLICT DO NOTHING`, so a re-import inserts nothing twice.
3. acting for a user (`write(..., acting_user=...)`: the HTTP server's batch and OTLP paths),
   before the transaction commits, every run the batches name (their runs, the runs of
   the tasks written) must belong to that user, as the transaction sees them after its own
   writes; otherwise it raises AccessDeniedError naming the run and nothing is written.
   Checked in the write's own transaction, so a run another user creates meanwhile cannot
   take a task of this one: the run insert waits for theirs and skips it, the check sees it.
4. with `keep_run_updated_at` (the default) the transaction sets
   `ai_runs.keep_updated_at = on`, so the totals trigger keeps each run's updated_at as
   written instead of stamping now(): a bulk write of history is not an edit of the run.
   Totals and change capture are maintained as always; any role may set it.

If the connection drops (server restart, failover), the transaction is retried on a new
connection until `retry_seconds` have passed. A transaction whose COMMIT was sent but not
acknowledged is looked up with `pg_xact_status` before it is retried, so every row is
written exactly once and the counts stay right.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import errors, sql

from ingest.access import redaction
from ingest.errors import AccessDeniedError
from ingest.store import database, sqlfiles, validation
from ingest.store.vocabulary import RUN_COLUMNS, RUN_DERIVED_COLUMNS, TASK_COLUMNS, USER_COLUMNS

log = logging.getLogger(__name__)

# Derived by the database; exported for reading, ignored on import.
RUN_DERIVED = RUN_DERIVED_COLUMNS

TABLES = ("ai_users", "ai_runs", "ai_tasks")
# The column that identifies a row for idempotence, and the one naming its parent row.
KEY_COLUMN = {"ai_users": "id", "ai_runs": "id", "ai_tasks": "task_id"}
PARENT_COLUMN = {"ai_users": None, "ai_runs": "parent_run_id", "ai_tasks": "run_id"}
ALL_COLUMNS = {"ai_users": USER_COLUMNS, "ai_runs": RUN_COLUMNS, "ai_tasks": TASK_COLUMNS}
JSON_COLUMNS = frozenset(validation.JSON_COLUMNS["ai_runs"] + validation.JSON_COLUMNS["ai_tasks"])

_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_NEEDS_ESCAPE = re.compile(r"[\\\n\r\t]")
_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def copy_text(value: str) -> str:
    """`value` escaped for a field of COPY's text format."""
    return value.translate(_ESCAPES) if _NEEDS_ESCAPE.search(value) else value


def array_literal(items: Sequence[str]) -> str:
    """A Postgres text[] literal, every element quoted."""
    quoted = ('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items)
    return "{" + ",".join(quoted) + "}"


def encode_value(column: str, value: Any) -> str:
    """One value as a COPY text field (`\\N` for None); jsonb columns take Python JSON."""
    if value is None:
        return "\\N"
    if column in JSON_COLUMNS:
        return copy_text(_JSON.encode(value))
    if column == "tags":
        return copy_text(array_literal(value))
    if isinstance(value, str):
        return copy_text(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def encode_row(columns: Sequence[str], row: Mapping[str, Any]) -> str:
    """A COPY text line (no newline) of `row`'s values for `columns`."""
    return "\t".join([encode_value(column, row.get(column)) for column in columns])


@dataclass
class Batch:
    """Rows for one table: COPY text lines for `columns`; `keys[i]` is row i's id (task_id
    for tasks) and `parents[i]` its run_id (tasks) or parent_run_id (runs), as text."""

    table: str
    columns: Sequence[str]
    lines: Sequence[str]
    keys: Sequence[str]
    parents: Sequence[str | None] | None = None

    def __post_init__(self) -> None:
        if self.table not in TABLES:
            raise ValueError(f"table must be one of {', '.join(TABLES)}, got {self.table!r}")


@dataclass
class BatchResult:
    """What writing one Batch did. `missing_parent` holds indexes into the batch's rows."""

    inserted: int = 0
    duplicates: int = 0
    missing_parent: list[int] = field(default_factory=list)


class BulkWriter:
    """Writes batches of COPY lines into ai_users, ai_runs and ai_tasks, exactly once.

    `keep_run_updated_at` keeps the runs' updated_at as written while their tasks are added
    (see the module docstring). `strategy` "direct" COPYs into the table and falls back to staging
    on a duplicate; "staging" always stages (kept for the benchmark). `on_retry(exc)` is
    called before each retry after a dropped connection; `retries` counts them.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        keep_run_updated_at: bool = True,
        strategy: str = "direct",
        retry_seconds: float = 120.0,
        on_retry: Callable[[Exception], None] | None = None,
    ):
        if strategy not in ("direct", "staging"):
            raise ValueError(f"strategy must be 'direct' or 'staging', got {strategy!r}")
        self.url = database.database_url(url)
        self.keep_run_updated_at = keep_run_updated_at
        self.strategy = strategy
        self.retry_seconds = retry_seconds
        self.on_retry = on_retry
        self.retries = 0
        self._conn: psycopg.Connection | None = None
        self._queries = sqlfiles.beside(__file__)
        self._redactor = redaction.Redactor(self.url)

    def __enter__(self) -> BulkWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the writer reconnects if used again)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def write(
        self,
        *batches: Batch,
        redactions: Sequence[tuple[str, dict[str, int]]] = (),
        acting_user: str | None = None,
        leave_out: Callable[[psycopg.Connection], set[str]] | None = None,
        then: Callable[[psycopg.Connection], None] | None = None,
    ) -> list[BatchResult]:
        """Write the batches, in order, in one transaction; one result per batch.

        Put runs before their tasks (and users first). After a dropped connection the whole
        transaction is retried on a new one until `retry_seconds` have passed.
        redactions: (task_id, {field: masks applied}) pairs of the tasks in the batches
        (ingest.access.redaction), recorded in the same transaction for every task that is
        there afterwards (written now or before), replacing what an earlier write of the
        same task recorded; a task not written for want of its run records nothing.
        acting_user: the user these rows are written for; a run of the batches that belongs
        to anyone else raises AccessDeniedError and nothing is written (module docstring).
        leave_out(conn): called first in the transaction (again on a retry); the keys it
        returns are neither written nor counted (the OTLP receiver keeps one task per call).
        then(conn): called last in the transaction, after the batches (again on a retry):
        more writes that stand or fall with them (the scores of POST /v1/batch).
        """
        if not any(b.lines for b in batches) and then is None:
            return [BatchResult() for _ in batches]
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.05
        pending: tuple[str, list[BatchResult]] | None = None  # an unacknowledged commit
        while True:
            attempt: list[tuple[str, list[BatchResult]]] = []
            try:
                if pending is not None:
                    status = self._xact_status(pending[0])
                    if status == "committed":
                        return pending[1]
                    if status == "in progress":
                        raise psycopg.OperationalError("the previous attempt is still running")
                    pending = None
                return self._write_once(batches, redactions, attempt, acting_user, leave_out, then)
            except psycopg.OperationalError as exc:
                if pending is None and attempt:
                    pending = attempt[0]
                self.close()
                if time.monotonic() + delay > deadline:
                    raise
                self.retries += 1
                log.warning("bulk write failed (%s); retrying", exc)
                if self.on_retry is not None:
                    self.on_retry(exc)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def redaction_rules(self) -> tuple[redaction.Rule, ...]:
        """The enabled redaction rules of this writer's database (ingest.access.redaction); the
        caller masks rows with them before encoding (COPY lines are already text). Read at
        most every redaction.RELOAD_SECONDS."""
        return self._redactor.rules()

    # ------------------------------------------------------------------ internals

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.url, autocommit=False)
            self._conn.execute("SET TIME ZONE 'UTC'")
            self._conn.commit()
        return self._conn

    def _xact_status(self, xid: str) -> str | None:
        conn = self._connection()
        with conn.transaction():
            row = conn.execute(self._queries["xact_status"].psycopg, {"xid": xid}).fetchone()
        return row[0]

    def _write_once(
        self,
        batches: Sequence[Batch],
        redactions: Sequence[tuple[str, dict[str, int]]],
        attempt: list[tuple[str, list[BatchResult]]],
        acting_user: str | None = None,
        leave_out: Callable[[psycopg.Connection], set[str]] | None = None,
        then: Callable[[psycopg.Connection], None] | None = None,
    ) -> list[BatchResult]:
        conn = self._connection()
        results = []
        # Runs this transaction inserted itself: they exist and no other transaction can see
        # (or lock, or delete) them, so their tasks need no existence check and no lock.
        fresh_runs: set[str] = set()
        with conn.transaction():
            if self.keep_run_updated_at:
                conn.execute(self._queries["keep_run_updated_at"].psycopg)
            left_out = leave_out(conn) if leave_out is not None else set()
            if left_out:
                batches = [_without(batch, left_out) for batch in batches]
                redactions = [(t, m) for t, m in redactions if str(t) not in left_out]
            for batch in batches:
                result = BatchResult()
                results.append(result)
                lines = batch.lines
                if not lines:
                    continue
                parents = batch.parents or []
                if batch.table == "ai_tasks":
                    found = fresh_runs | self._lock_runs(conn, set(parents) - fresh_runs)
                    result.missing_parent = [i for i, p in enumerate(parents) if p not in found]
                elif batch.table == "ai_runs" and batch.parents is not None:
                    result.missing_parent = self._missing_parent_runs(conn, batch.keys, parents)
                if result.missing_parent:
                    skip = set(result.missing_parent)
                    lines = [line for i, line in enumerate(lines) if i not in skip]
                if lines:
                    result.inserted = self._copy(conn, batch.table, batch.columns, lines)
                result.duplicates = len(lines) - result.inserted
                if batch.table == "ai_runs" and result.inserted == len(batch.keys):
                    fresh_runs.update(batch.keys)  # every run of the batch was inserted
            if acting_user is not None:
                self._refuse_runs_of_others(conn, batches, results, acting_user)
            self._record_redactions(conn, batches, results, redactions)
            if then is not None:
                then(conn)
            xid = conn.execute(self._queries["current_xact"].psycopg).fetchone()[0]
            attempt.append((xid, results))
        return results

    def _record_redactions(
        self,
        conn: psycopg.Connection,
        batches: Sequence[Batch],
        results: Sequence[BatchResult],
        redactions: Sequence[tuple[str, dict[str, int]]],
    ) -> None:
        """Record the masks of the tasks these batches did not leave out for want of a run."""
        orphans = {
            batch.keys[i]
            for batch, result in zip(batches, results, strict=True)
            if batch.table == "ai_tasks"
            for i in result.missing_parent
        }
        redaction.record_many(conn, [(t, m) for t, m in redactions if str(t) not in orphans])

    def _refuse_runs_of_others(
        self,
        conn: psycopg.Connection,
        batches: Sequence[Batch],
        results: Sequence[BatchResult],
        user: str,
    ) -> None:
        """Raise AccessDeniedError (rolling the transaction back) if a run of the batches or
        of a task written belongs to someone other than `user`. The runs of written tasks
        are locked by now, and the runs of the batches were inserted or skipped after any
        concurrent insert of the same id had finished, so what this reads stays true."""
        named: set[str] = set()
        for batch, result in zip(batches, results, strict=True):
            if batch.table == "ai_runs":
                named.update(batch.keys)
            elif batch.table == "ai_tasks" and batch.parents:
                skipped = set(result.missing_parent)
                named.update(p for i, p in enumerate(batch.parents) if p and i not in skipped)
        if not named:
            return
        query = self._queries["runs_of_other_users"].psycopg
        foreign = conn.execute(query, {"ids": sorted(named), "user": user}).fetchall()
        if foreign:
            raise AccessDeniedError(
                user,
                f"write into run {foreign[0][0]}",
                "that run belongs to another user; nothing of this request was written",
                kind="run",
            )

    def _lock_runs(self, conn: psycopg.Connection, run_ids: Iterable[str | None]) -> set[str]:
        ids = sorted({r for r in run_ids if r})
        rows = conn.execute(self._queries["lock_runs_of_tasks"].psycopg, {"ids": ids}).fetchall()
        return {row[0] for row in rows}

    def _missing_parent_runs(
        self, conn: psycopg.Connection, keys: Sequence[str], parents: Sequence[str | None]
    ) -> list[int]:
        wanted = {p for p in parents if p}
        if not wanted:
            return []
        query = self._queries["existing_runs"].psycopg
        found = {row[0] for row in conn.execute(query, {"ids": sorted(wanted)}).fetchall()}
        # A parent in the batch counts only if that run is itself written: repeat until stable.
        available = set(keys) | found
        missing: list[int] = []
        while True:
            missing = [i for i, p in enumerate(parents) if p and p not in available]
            dropped = {keys[i] for i in missing} - found
            if not (dropped & available):
                return missing
            available -= dropped

    def _copy(
        self, conn: psycopg.Connection, table: str, columns: Sequence[str], lines: Sequence[str]
    ) -> int:
        target = sql.SQL("{} ({})").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        if self.strategy == "direct":
            try:
                with conn.transaction(), conn.cursor() as cur:
                    _send(cur, sql.SQL("COPY {} FROM STDIN").format(target), lines)
                return len(lines)
            except errors.UniqueViolation:
                log.info("duplicates in a %s batch: staging it", table)
        return self._copy_staged(conn, table, columns, target, lines)

    def _copy_staged(
        self,
        conn: psycopg.Connection,
        table: str,
        columns: Sequence[str],
        target: sql.Composed,
        lines: Sequence[str],
    ) -> int:
        column_list = sql.SQL(", ").join(map(sql.Identifier, columns))
        stage = sql.Identifier(f"bulk_stage_{table}")
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
                ).format(stage, column_list, sql.Identifier(table))
            )
            _send(cur, sql.SQL("COPY {} ({}) FROM STDIN").format(stage, column_list), lines)
            cur.execute(
                sql.SQL("INSERT INTO {} SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
                    target, column_list, stage
                )
            )
            inserted = cur.rowcount
            cur.execute(sql.SQL("DROP TABLE {}").format(stage))
        return inserted


def _without(batch: Batch, keys: set[str]) -> Batch:
    """`batch` less the rows whose key is in `keys`."""
    keep = [i for i, key in enumerate(batch.keys) if key not in keys]
    return Batch(
        batch.table,
        batch.columns,
        [batch.lines[i] for i in keep],
        [batch.keys[i] for i in keep],
        None if batch.parents is None else [batch.parents[i] for i in keep],
    )


def _send(cur: psycopg.Cursor, statement: sql.Composed, lines: Sequence[str]) -> None:
    data = ("\n".join(lines) + "\n").encode()
    with cur.copy(statement) as copy:
        step = 1 << 20
        for start in range(0, len(data), step):
            copy.write(data[start : start + step])
