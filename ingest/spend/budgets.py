"""Budgets with a scope, stored in Postgres (docs/spend-control.md).

A budget is an amount in USD per period (a UTC calendar month, or an ISO week starting
Monday) for a scope: everything (`all`), or one team, user, model, tag or source type.
There is at most one budget per scope and period; setting it again changes its amount.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from ingest.errors import NotFoundError, ValidationError
from ingest.store import database, sqlfiles
from ingest.store.vocabulary import SOURCE_TYPES

SCOPE_KINDS = ("all", "team", "user", "model", "tag", "source_type")
PERIODS = ("month", "week")


def _queries() -> dict[str, sqlfiles.Query]:
    """This module's named SQL (sql/budgets.sql beside it)."""
    return sqlfiles.beside(__file__)


def check_scope(scope_kind: str, scope_value: str | None) -> str | None:
    """The stored scope value for a kind (None for `all`); ValidationError naming the field
    and the allowed values otherwise."""
    if scope_kind not in SCOPE_KINDS:
        raise ValidationError("scope_kind", f"{scope_kind!r} is not a scope", SCOPE_KINDS)
    if scope_kind == "all":
        if scope_value not in (None, ""):
            raise ValidationError("scope_value", "must be empty for scope 'all'")
        return None
    if not isinstance(scope_value, str) or not scope_value.strip():
        raise ValidationError("scope_value", f"names the {scope_kind} the budget is for")
    if scope_kind == "source_type" and scope_value not in SOURCE_TYPES:
        raise ValidationError("scope_value", f"{scope_value!r} is not a source type", SOURCE_TYPES)
    return scope_value.strip()


def set_budget(
    url: str | None = None,
    *,
    amount: Decimal | float | str,
    period: str = "month",
    scope_kind: str = "all",
    scope_value: str | None = None,
    created_by: str = "",
) -> dict[str, Any]:
    """Create or change the budget of a scope and period; return its row."""
    value = check_scope(scope_kind, scope_value)
    if period not in PERIODS:
        raise ValidationError("period", f"{period!r} is not a budget period", PERIODS)
    try:
        money = Decimal(str(amount))
    except InvalidOperation:
        raise ValidationError("amount", f"{amount!r} is not a number") from None
    if not money.is_finite() or money <= 0:
        raise ValidationError("amount", f"must be a number of USD above 0, got {amount!r}")
    params = {
        "scope_kind": scope_kind,
        "scope_value": value,
        "period": period,
        "amount": money,
        "created_by": created_by or "unknown",
    }
    with database.connect(url) as conn:
        return conn.execute(_queries()["upsert_budget"].psycopg, params).fetchone()


def list_budgets(url: str | None = None) -> list[dict[str, Any]]:
    """Every budget row (id, scope_kind, scope_value, period, amount, created_by, ...)."""
    with database.connect(url) as conn:
        return conn.execute(_queries()["list_budgets"].psycopg).fetchall()


def remove_budget(url: str | None = None, *, budget_id: int) -> dict[str, Any]:
    """Delete a budget and its alert rules; NotFoundError when there is none."""
    with database.connect(url) as conn:
        row = conn.execute(_queries()["remove_budget"].psycopg, {"id": int(budget_id)}).fetchone()
    if row is None:
        raise NotFoundError("budget", budget_id)
    return row
