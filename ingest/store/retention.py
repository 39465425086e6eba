"""Retention: hard-delete old runs in batches, and prune the deletion log once every
registered mirror has applied it (docs/lake.md, "Retention").

A run is old when its last activity is: the latest of its created_at, updated_at and
last_message_at and of every timestamp of its tasks (created, updated, completed) is
before the cutoff. Each batch is one transaction: its runs are locked (so no task can be
added to them meanwhile), optionally confirmed by a caller-supplied check (the lake
archive), then the tasks and the runs are deleted together. A run is therefore either
wholly purged or untouched, and the statement triggers keep every other run's totals
exact. The deletion triggers log each removed row, so the mirrors apply the purge on
their next sync.

This module is the Postgres side only; archiving to the lake lives in queries.lake (ingest
never imports queries), which passes `confirm`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from ingest.store import database

DEFAULT_BATCH_RUNS = 1000


@dataclass(frozen=True)
class PurgeBatch:
    """What one batch is about to delete, as Postgres has it (exact numbers as text).

    runs: dicts with id, task_count, total_tokens, total_cost (text), created_at.
    tasks: dicts with id, run_id, status, tokens_total, cost (text or None), created_at.
    """

    runs: list[dict[str, Any]]
    tasks: list[dict[str, Any]]


@dataclass
class PurgeResult:
    """runs/tasks: rows hard-deleted; batches: transactions committed; cutoff: the UTC
    moment a run's last activity had to be before; deletions_pruned: rows removed from
    ai_sync_deletions afterwards; held_back_by: registered mirrors, oldest horizon first,
    when pruning could not go further (name, horizon, synced_at)."""

    cutoff: datetime
    runs: int = 0
    tasks: int = 0
    batches: int = 0
    deletions_pruned: int = 0
    held_back_by: list[dict[str, Any]] = field(default_factory=list)


def parse_age(text: str) -> timedelta:
    """'90d', '12h', '2w' or a bare number of days -> timedelta; ValueError naming the
    field and the allowed forms otherwise (zero and negative ages are refused)."""
    units = {"d": 1.0, "w": 7.0, "h": 1 / 24}
    raw = text.strip().lower()
    unit = raw[-1] if raw and raw[-1] in units else "d"
    number = raw[:-1] if raw and raw[-1] in units else raw
    try:
        days = float(number) * units[unit]
    except ValueError:
        raise ValueError(
            f"older_than: {text!r} is not an age; use a number with d (days), w (weeks) "
            "or h (hours), e.g. 90d"
        ) from None
    if days <= 0:
        raise ValueError(f"older_than: {text!r} must be more than zero, e.g. 90d")
    return timedelta(days=days)


def purge_old_runs(
    url: str | None = None,
    *,
    older_than: timedelta,
    confirm: Callable[[PurgeBatch], None] | None = None,
    batch_runs: int = DEFAULT_BATCH_RUNS,
    now: datetime | None = None,
    prune: bool = True,
) -> PurgeResult:
    """Hard-delete runs whose last activity is older than `older_than`, with their tasks.

    Batches of at most `batch_runs` runs, one transaction each. `confirm(batch)` runs
    inside the transaction before anything is deleted; if it raises, that batch is rolled
    back, the error propagates, and earlier batches stay committed (each is complete).
    With prune=True, ai_sync_deletions is then pruned below every registered mirror's
    horizon (prune_sync_deletions). Returns what was done.
    """
    if batch_runs < 1:
        raise ValueError(f"batch_runs must be at least 1, got {batch_runs}")
    cutoff = (now or datetime.now(UTC)) - older_than
    result = PurgeResult(cutoff=cutoff)
    sql = database.queries()
    with database.connect(url) as conn:
        while True:
            with conn.transaction():
                params = {"cutoff": cutoff, "batch": batch_runs}
                locked = [r["id"] for r in conn.execute(sql["lock_old_runs"].psycopg, params)]
                if not locked:
                    break
                ids = [
                    r["id"]
                    for r in conn.execute(
                        sql["still_old_runs"].psycopg, {"ids": locked, "cutoff": cutoff}
                    )
                ]
                if not ids:
                    continue
                if confirm is not None:
                    confirm(_batch(conn, sql, ids))
                tasks = conn.execute(sql["delete_tasks_of_runs"].psycopg, {"ids": ids}).rowcount
                runs = conn.execute(sql["delete_runs"].psycopg, {"ids": ids}).rowcount
            result.runs += runs
            result.tasks += tasks
            result.batches += 1
    if prune:
        result.deletions_pruned, result.held_back_by = prune_sync_deletions(url)
    return result


def _batch(conn: psycopg.Connection, sql: dict, ids: list[Any]) -> PurgeBatch:
    runs = conn.execute(sql["batch_runs"].psycopg, {"ids": ids}).fetchall()
    tasks = conn.execute(sql["batch_tasks"].psycopg, {"ids": ids}).fetchall()
    return PurgeBatch(runs=runs, tasks=tasks)


def mirror_name(path: str) -> str:
    """The registry name of the mirror file `path` on this host."""
    return f"{socket.gethostname()}:{path}"


def record_mirror_horizon(url: str, name: str, horizon: int | str) -> None:
    """Register (or advance) reader `name`: it has applied every change below `horizon`."""
    with database.connect(url, autocommit=True) as conn:
        query = database.queries()["record_mirror_horizon"].psycopg
        conn.execute(query, {"name": name, "horizon": str(horizon)})


def pruned_below(url: str | None = None) -> int:
    """The horizon below which logged deletions may have been pruned (0: never pruned)."""
    with database.connect(url) as conn:
        return int(conn.execute(database.queries()["pruned_below"].psycopg).fetchone()["below"])


def list_mirrors(url: str | None = None) -> list[dict[str, Any]]:
    """Registered readers: name, horizon (int), synced_at; sorted by name."""
    with database.connect(url) as conn:
        rows = conn.execute(database.queries()["list_mirrors"].psycopg).fetchall()
    return [{**row, "horizon": int(row["horizon"])} for row in rows]


def forget_idle_mirrors(url: str | None = None, *, idle_for: timedelta) -> list[str]:
    """Unregister readers that have not synced for `idle_for`; their names. Such a reader,
    if it comes back, finds the deletions it needs pruned and rebuilds from scratch."""
    before = datetime.now(UTC) - idle_for
    with database.connect(url, autocommit=True) as conn:
        query = database.queries()["forget_idle_mirrors"].psycopg
        return sorted(r["name"] for r in conn.execute(query, {"before": before}))


def prune_sync_deletions(url: str | None = None) -> tuple[int, list[dict[str, Any]]]:
    """Delete logged deletions below the smallest horizon of the registered mirrors.

    Returns (rows removed, the registered mirrors, oldest horizon first: the first one is
    what holds pruning back). With no registered mirror nothing is pruned.
    """
    with database.connect(url, autocommit=True) as conn:
        removed = conn.execute(database.queries()["prune_sync_deletions"].psycopg).fetchone()
    mirrors = sorted(list_mirrors(url), key=lambda m: m["horizon"])
    return int(removed["removed"]), mirrors
