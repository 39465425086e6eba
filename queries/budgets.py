"""Budgets against spend: which budget a filtered view compares with, and where each
budget's period will end (docs/spend-control.md).

Like with like: a view is compared with the budget of exactly its scope. No filter (other
than dates) is scope `all`; exactly one of team, user, model, tag or source type with one
value is that scope; anything else (a provider, a status, two values, two dimensions) has
no budget of its own, and the comparison says so instead of borrowing the company-wide one.
The filters' dates never matter: a budget is about its own period (this month or week).

Only budgets the viewer may read are compared (row-level security hands the others out
of ingest.spend.budgets.list_budgets: those of scopes whose runs the viewer does not read
entirely). When the budget of the view's scope exists but is not readable, the comparison
names it and says why it is not shown, instead of setting the viewer's own spend against a
total that is not theirs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from queries import forecast, usage
from queries.filters import Filters

# Filters field -> budget scope kind.
SCOPE_FIELDS = {
    "teams": "team",
    "users": "user",
    "models": "model",
    "tags": "tag",
    "source_types": "source_type",
}
_FIELD_OF_SCOPE = {kind: name for name, kind in SCOPE_FIELDS.items()}
UNSCOPED_FIELDS = ("providers", "statuses")


@dataclass(frozen=True)
class Scope:
    """A budget scope: kind in ingest.spend.budgets.SCOPE_KINDS, value None for `all`."""

    kind: str
    value: str | None = None

    @property
    def label(self) -> str:
        return "everything" if self.kind == "all" else f"{self.kind} {self.value}"


def scope_of_filters(filters: Filters) -> tuple[Scope | None, str]:
    """The budget scope a filtered view matches, or None, with a sentence saying why."""
    used = {name: getattr(filters, name) for name in (*SCOPE_FIELDS, *UNSCOPED_FIELDS)}
    used = {name: values for name, values in used.items() if values}
    if not used:
        return Scope("all"), "no filter: compared with the budget for everything"
    if len(used) == 1:
        ((name, values),) = used.items()
        if name in SCOPE_FIELDS and len(values) == 1:
            scope = Scope(SCOPE_FIELDS[name], values[0])
            return scope, f"filtered to {scope.label}: compared with that {scope.kind}'s budget"
    described = ", ".join(f"{name}={list(values)}" for name, values in used.items())
    return None, (
        f"these filters ({described}) match no budget scope: budgets are for everything or "
        "one team, user, model, tag or source type"
    )


def scope_filters(scope: Scope, day: date) -> Filters:
    """Filters selecting the tasks of `scope` (dates: the day only; forecasts use their own)."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    extra = {} if scope.kind == "all" else {_FIELD_OF_SCOPE[scope.kind]: (scope.value,)}
    return Filters(start=start, end=start + timedelta(days=1), **extra)


def find_budget(
    rows: Sequence[Mapping[str, Any]], scope: Scope, period: str | None = None
) -> Mapping[str, Any] | None:
    """The budget row of `scope` (monthly before weekly unless `period` is given)."""
    found = [
        row
        for row in rows
        if row["scope_kind"] == scope.kind
        and row["scope_value"] == scope.value
        and (period is None or row["period"] == period)
    ]
    found.sort(key=lambda row: row["period"] != "month")
    return found[0] if found else None


def budget_forecast(
    con: Any,
    budget: Mapping[str, Any],
    *,
    today: date | None = None,
    visible_runs: tuple[str, ...] | None = None,
) -> dict:
    """queries.forecast.spend_forecast of the budget's scope over its current period, with
    the budget's amount (USD) as `budget`, plus used = month_to_date / amount and
    forecast_share = forecast / amount (fractions). visible_runs as in Filters: a restricted
    viewer's spend counts only the runs they may read (docs/access.md)."""
    today = today or datetime.now(UTC).date()
    scope = Scope(budget["scope_kind"], budget["scope_value"])
    amount = float(budget["amount"])
    scoped = replace(scope_filters(scope, today), visible_runs=visible_runs)
    result = forecast.spend_forecast(
        con, scoped, budget=amount, today=today, period=budget["period"]
    )
    result["used"] = result["month_to_date"] / amount
    result["forecast_share"] = result["forecast"] / amount
    result["unpriced"] = unpriced_in_period(con, scoped, result, today)
    result["scope"] = scope
    result["budget_row"] = budget
    return result


def unpriced_tasks(con: Any, filters: Filters) -> int:
    """How many tasks of the view have no cost (no known price, or no usage reported):
    they are not in any cost total, and are said beside it instead of counting as $0."""
    frame = usage.usage_over_time(con, filters, grain="month", counts=False)
    return int(frame["unpriced"].sum()) if len(frame) else 0


def unpriced_in_period(con: Any, filters: Filters, result: Mapping[str, Any], today: date) -> int:
    """Unpriced tasks of `filters`' scope in a forecast's period, up to today included (the
    days its period-to-date total covers)."""
    start = datetime.combine(result["period_start"], datetime.min.time(), tzinfo=UTC)
    last = min(result["period_end"], today + timedelta(days=1))
    end = datetime.combine(last, datetime.min.time(), tzinfo=UTC)
    if end <= start:
        return 0
    return unpriced_tasks(con, replace(filters, start=start, end=end))


def forecast_for_view(
    con: Any,
    filters: Filters,
    budgets: Sequence[Mapping[str, Any]],
    *,
    today: date | None = None,
    every_scope: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The budget comparison of a filtered view, given the budget rows the viewer may read
    (ingest.spend.budgets.list_budgets with the viewer) and, to explain a budget that is not
    shown, every budget's scope and period (ingest.spend.budgets.budget_scopes): scope (Scope
    or None), reason (sentence), budget (its row or None), hidden (the scope row of the
    view's budget when it exists but is not readable, else None) and forecast
    (budget_forecast, or the view's own monthly forecast without a budget)."""
    scope, reason = scope_of_filters(filters)
    budget = find_budget(list(budgets), scope) if scope else None
    hidden = None
    if budget is not None:
        result = budget_forecast(con, budget, today=today, visible_runs=filters.visible_runs)
    else:
        result = forecast.spend_forecast(con, filters, today=today)
        day = today or datetime.now(UTC).date()
        result["unpriced"] = unpriced_in_period(con, filters, result, day)
        hidden = find_budget(list(every_scope), scope) if scope else None
        if hidden is not None:
            reason = unreadable_reason(hidden)
        elif scope is not None:
            reason = f"no budget is set for {scope.label} yet"
    return {
        "scope": scope,
        "reason": reason,
        "budget": budget,
        "hidden": hidden,
        "forecast": result,
    }


def unreadable_reason(budget: Mapping[str, Any]) -> str:
    """Why a budget that applies to the view is not shown to the viewer."""
    scope = Scope(budget["scope_kind"], budget["scope_value"])
    return (
        f"the {budget['period']}ly budget for {scope.label} applies to this view but is not "
        f"shown: it covers runs you cannot read, so it would be compared with only the "
        "part of its spend you see (filter to a scope you manage, or ask an admin)"
    )


def budgets_overview(
    con: Any, filters: Filters, budgets: Sequence[Mapping[str, Any]], *, today: date | None = None
) -> pd.DataFrame:
    """One row per budget: id, scope_kind, scope_value, period, amount, spent (so far in
    the period), forecast (period end), used and forecast_share (fractions of amount), and
    unpriced (tasks of its scope in the period so far with no cost, not in spent) and
    this_view (True for the budget a view with `filters` is compared with)."""
    scope, _ = scope_of_filters(filters)
    compared = find_budget(list(budgets), scope) if scope else None
    rows = []
    for budget in budgets:
        result = budget_forecast(con, budget, today=today, visible_runs=filters.visible_runs)
        rows.append(
            {
                "id": budget["id"],
                "scope_kind": budget["scope_kind"],
                "scope_value": budget["scope_value"],
                "period": budget["period"],
                "amount": float(budget["amount"]),
                "spent": result["month_to_date"],
                "forecast": result["forecast"],
                "used": result["used"],
                "forecast_share": result["forecast_share"],
                "unpriced": result["unpriced"],
                "this_view": compared is not None and budget["id"] == compared["id"],
            }
        )
    columns = ["id", "scope_kind", "scope_value", "period", "amount", "spent", "forecast"]
    extra = ["used", "forecast_share", "unpriced", "this_view"]
    return pd.DataFrame(rows, columns=[*columns, *extra])
