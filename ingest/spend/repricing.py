"""Re-pricing of past tasks under today's price books, audited (docs/spend-control.md).

`reprice` recomputes the cost of every finished task with a model that the rule covers
(created in [since, until), optionally one model), using the price in force when each task
ran: the best override (ingest.spend.price_books) or else the library. A re-priced task gets
cost_source 'computed' and its price_ref; a task no one can price (unknown model, or usage
unknown) keeps its cost. A cost the provider reported (cost_source 'provider': what was
billed) is replaced only by an override that covers it, never by the library's list price,
unless `include_reported` asks for that too. Tasks are read in batches by id; each batch is
written by one UPDATE in its own transaction, so run totals move once per run per batch
(triggers keep them exact) and the mirror re-reads only the rows that changed (their sync
stamp moves).

A real run writes one ai_reprice_audit row: who, when, the rule, the price books used,
tasks examined and changed, old and new totals; it is closed as `failed` (with what was
done so far) when the run stops on an error. A dry run writes nothing.

`recompute_costs` (public as `ingest.recompute_costs`) is the same pricing without a rule
or an audit record: by default only tasks still without a cost.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from ingest.errors import ValidationError
from ingest.spend import acting, price_books
from ingest.store import database, sqlfiles

Progress = Callable[[int, int], None]  # (tasks done, tasks in total)


def _queries() -> dict[str, sqlfiles.Query]:
    """This module's named SQL (sql/repricing.sql beside it)."""
    return sqlfiles.beside(__file__)


@dataclass
class ModelTotals:
    """Before/after of one provider/model in a re-pricing (USD; None costs count as 0)."""

    tasks: int = 0
    changed: int = 0
    old_total: Decimal = Decimal(0)
    new_total: Decimal = Decimal(0)


@dataclass
class RepriceResult:
    """What a re-pricing did (or, for a dry run, would do)."""

    dry_run: bool
    rule: dict[str, Any]
    include_reported: bool = True
    kept_reported: int = 0  # provider-reported costs kept (no override covers them)
    audit_id: int | None = None
    tasks_examined: int = 0
    tasks_changed: int = 0
    old_total: Decimal = Decimal(0)
    new_total: Decimal = Decimal(0)
    by_model: dict[tuple[str | None, str | None], ModelTotals] = field(default_factory=dict)

    def add(self, provider: Any, model: Any, old: Decimal | None, new: Decimal | None) -> None:
        entry = self.by_model.setdefault((provider, model), ModelTotals())
        entry.tasks += 1
        self.tasks_examined += 1
        old_value, new_value = old or Decimal(0), new or Decimal(0)
        entry.old_total += old_value
        entry.new_total += new_value
        self.old_total += old_value
        self.new_total += new_value
        if new != old:
            entry.changed += 1
            self.tasks_changed += 1


def reprice(
    url: str | None = None,
    *,
    since: datetime | date | str | None = None,
    until: datetime | date | str | None = None,
    model: str | None = None,
    dry_run: bool = False,
    ran_by: str = "",
    batch_size: int = 5000,
    progress: Progress | None = None,
    include_reported: bool = False,
    viewer: str | None = None,
) -> RepriceResult:
    """Re-price the finished tasks created in [since, until) (either open), of `model` if
    given; return the totals per model and overall. A provider-reported cost changes only
    under an override, or with `include_reported`. See the module docstring. With a
    `viewer` (the dashboard), only an admin may (AccessDeniedError, nothing written), and the
    audit records them as who ran it."""
    if batch_size < 1:
        raise ValidationError("batch_size", f"must be >= 1, got {batch_size}")
    start, end, rule = _rule_of(since, until, model, include_reported)
    result = RepriceResult(dry_run=dry_run, rule=rule, include_reported=bool(include_reported))
    queries = _queries()
    params = {"since": start, "until": end, "model": model, "only_missing": False}
    with database.connect(url, autocommit=True) as conn:
        if viewer is not None:
            acting.act_as_admin(conn, url, viewer, "re-price tasks")
        else:
            acting.name_owner_actor(conn)
        overrides = price_books.live_overrides(conn)
        total = conn.execute(queries["tasks_to_reprice_count"].psycopg, params).fetchone()["tasks"]
        if not dry_run:
            books = {
                "library": price_books.library_ref(),
                "overrides": [o.ref for o in overrides],
            }
            result.audit_id = conn.execute(
                queries["start_reprice_audit"].psycopg,
                {
                    "ran_by": ran_by or acting.actor(viewer),
                    "rule": Jsonb(rule),
                    "price_books": Jsonb(books),
                },
            ).fetchone()["id"]
        try:
            _run_batches(conn, queries, params, overrides, result, total, batch_size, progress)
        except BaseException as exc:
            if result.audit_id is not None:
                _finish_audit(conn, queries, result, "failed", f"{type(exc).__name__}: {exc}")
            raise
        if result.audit_id is not None:
            _finish_audit(conn, queries, result, "completed", None)
    return result


def _rule_of(
    since: datetime | date | str | None,
    until: datetime | date | str | None,
    model: str | None,
    include_reported: bool,
) -> tuple[datetime | None, datetime | None, dict[str, Any]]:
    """The window [since, until) as times and the rule the audit records
    (ValidationError naming the field when the window or the model is not one)."""
    start = price_books.parse_time("since", since)
    end = price_books.parse_time("until", until)
    if start and end and end <= start:
        raise ValidationError("until", f"must be after since ({start.isoformat()})")
    if model is not None and not str(model).strip():
        raise ValidationError("model", "must be a model name, or left out for every model")
    rule = {
        "since": start.isoformat() if start else None,
        "until": end.isoformat() if end else None,
        "model": model,
        "include_reported": bool(include_reported),
    }
    return start, end, rule


def recompute_costs(
    url: str | None = None, only_missing: bool = True, batch_size: int = 2000
) -> int:
    """Price finished tasks (completed, failed, cancelled) that name a model with the price
    book in force at each one's created_at (override, else library; price_ref and
    cost_source 'computed' recorded); return how many tasks' cost changed.

    `only_missing` (default) prices only tasks whose cost is NULL (a cost written meanwhile
    stays); False re-prices every finished task, overwriting costs given by callers. A task
    nothing can price keeps its cost. Tasks are read in batches of `batch_size` by id, each
    batch written by one UPDATE in its own transaction (run totals move once per run per
    batch); the live overrides are read once.
    """
    if batch_size < 1:
        raise ValidationError("batch_size", f"must be >= 1, got {batch_size}")
    result = RepriceResult(dry_run=False, rule={})
    params = {"since": None, "until": None, "model": None, "only_missing": only_missing}
    with database.connect(url, autocommit=True) as conn:
        overrides = price_books.live_overrides(conn)
        _run_batches(conn, _queries(), params, overrides, result, 0, batch_size, None)
    return result.tasks_changed


def _run_batches(conn, queries, params, overrides, result, total, batch_size, progress) -> None:
    select_sql = queries["tasks_to_reprice"].psycopg
    update_sql = queries["set_task_prices"].psycopg
    after = uuid.UUID(int=0)
    if progress:
        progress(0, total)
    while True:
        rows = conn.execute(
            select_sql, {**params, "after_id": after, "batch_size": batch_size}
        ).fetchall()
        if not rows:
            break
        after = rows[-1]["id"]
        ids, new_costs, refs = [], [], []
        for row in rows:
            cost, ref = price_books.price_task(row, overrides)
            if cost is None:  # nobody can price it: keep what is stored
                result.add(row["provider"], row["model"], row["cost"], row["cost"])
                continue
            if _keeps_reported(row, ref, result):  # the provider's bill beats a list price
                result.kept_reported += 1
                result.add(row["provider"], row["model"], row["cost"], row["cost"])
                continue
            result.add(row["provider"], row["model"], row["cost"], cost)
            stale = row["cost_source"] != "computed" or ref != row["price_ref"]
            if cost != row["cost"] or stale:
                ids.append(row["id"])
                new_costs.append(cost)
                refs.append(ref)
        if ids and not result.dry_run:
            with conn.transaction():
                conn.execute(
                    update_sql,
                    {**params, "ids": ids, "costs": new_costs, "refs": refs},
                )
        if progress:
            progress(result.tasks_examined, total)
        if len(rows) < batch_size:
            break


def _keeps_reported(row: dict, ref: str | None, result: RepriceResult) -> bool:
    """Does a provider-reported cost stay? Yes unless an override prices the task or the
    re-pricing includes reported costs."""
    if result.include_reported or row["cost_source"] != "provider" or row["cost"] is None:
        return False
    return not (ref or "").startswith(price_books.OVERRIDE_REF)


def _finish_audit(conn, queries, result: RepriceResult, status: str, error: str | None) -> None:
    conn.execute(
        queries["finish_reprice_audit"].psycopg,
        {
            "id": result.audit_id,
            "status": status,
            "tasks_examined": result.tasks_examined,
            "tasks_changed": result.tasks_changed,
            "old_total": result.old_total,
            "new_total": result.new_total,
            "error": error,
        },
    )


def reprice_audit(
    url: str | None = None, *, limit: int = 100, viewer: str | None = None
) -> list[dict[str, Any]]:
    """The latest re-pricing records, newest first (columns of ai_reprice_audit plus
    difference = new_total - old_total). With a `viewer`: admins only (row-level security
    shows the others nothing)."""
    with acting.connection(url, viewer) as conn:
        return conn.execute(
            _queries()["list_reprice_audit"].psycopg, {"limit": int(limit)}
        ).fetchall()
