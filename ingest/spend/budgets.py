"""Budgets with a scope, stored in Postgres (docs/spend-control.md).

A budget is an amount in USD per period (a UTC calendar month, or an ISO week starting
Monday) for a scope: everything (`all`), or one team, user, model, tag or source type.
There is at most one budget per scope and period; setting it again changes its amount.

Every function takes `viewer` (an ai_users id): given, it acts as that person under
row-level security (ingest.spend.acting): an admin sets any budget, a manager those of
their team and its people, a member none; each reads the budgets of scopes whose runs they
read entirely. Without a viewer it acts as the owner (the command line).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from ingest.errors import NotFoundError, ValidationError
from ingest.spend import acting
from ingest.store import sqlfiles
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
    viewer: str | None = None,
) -> dict[str, Any]:
    """Create or change the budget of a scope and period; return its row. AccessDeniedError
    when `viewer` may not set a budget of that scope."""
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
        "created_by": created_by or acting.actor(viewer),
    }
    with acting.connection(url, viewer) as conn:
        return conn.execute(_queries()["upsert_budget"].psycopg, params).fetchone()


def list_budgets(url: str | None = None, *, viewer: str | None = None) -> list[dict[str, Any]]:
    """Every budget row the viewer may read (all without a viewer): id, scope_kind,
    scope_value, period, amount, created_by, ..."""
    with acting.connection(url, viewer) as conn:
        return conn.execute(_queries()["list_budgets"].psycopg).fetchall()


def settable_scopes(
    url: str | None = None, *, viewer: str | None = None
) -> dict[str, list[str]] | None:
    """The scopes `viewer` may set budgets and alert rules of, as the database decides
    (migration 0018): None for any scope (an admin, or the owner without a viewer); for a
    manager {"team": [their team], "user": [its people]}; for anyone else {}."""
    if viewer is None:
        return None
    with acting.connection(url, viewer) as conn:
        row = conn.execute(_queries()["settable_scopes"].psycopg).fetchone()
    if row["role"] == "admin":
        return None
    if row["role"] != "manager" or not row["team"]:
        return {}
    return {"team": [row["team"]], "user": list(row["members"])}


def budget_scopes(url: str | None = None, *, viewer: str | None = None) -> list[dict[str, Any]]:
    """Every budget's id, scope_kind, scope_value and period, without its amount, whether
    the viewer may read it or not (to say which budget applies and why it is not shown)."""
    with acting.connection(url, viewer) as conn:
        return acting.budget_scopes(conn)


def remove_budget(
    url: str | None = None, *, budget_id: int, viewer: str | None = None
) -> dict[str, Any]:
    """Delete a budget and its alert rules; NotFoundError when there is none,
    AccessDeniedError when `viewer` may not remove it (nothing is removed)."""
    with acting.connection(url, viewer) as conn:
        row = conn.execute(_queries()["remove_budget"].psycopg, {"id": int(budget_id)}).fetchone()
        if row is None and acting.budget_exists(conn, int(budget_id)):
            raise acting.refusal(viewer, f"remove budget {budget_id}")
    if row is None:
        raise NotFoundError("budget", budget_id)
    return row
