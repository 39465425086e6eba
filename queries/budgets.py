"""Budgets against spend: which budget a filtered view compares with, and where each
budget's period will end (docs/spend-control.md).

Like with like: a view is compared with the budget of exactly its scope. No filter (other
than dates) is scope `all`; exactly one of team, user, model, tag or source type with one
value is that scope; anything else (a provider, a status, two values, two dimensions) has
no budget of its own, and the comparison says so instead of borrowing the company-wide one.
The filters' dates choose which of the budget's periods are compared (`budget_periods`):
those that start inside the chosen days, or, when none does, the one holding their last
day. "Last 30 days" is this month (its forecast band against the budget); "Last month" is
that closed month (its actual spend against its budget); a quarter is its three months
(actuals of the closed ones plus the forecast of the current one, against three budgets).

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


def budget_periods(filters: Filters | None, period: str, today: date) -> list[date]:
    """First days of the budget periods (`month` or `week`) a view's days are compared over:
    those starting inside [filters.start, filters.end), else the one holding the last day;
    only periods that have begun by `today`. Without filters: today's period."""
    if filters is None:
        return [forecast.period_bounds(today, period)[0]]
    first_day = filters.start.date()
    last_day = min((filters.end - timedelta(microseconds=1)).date(), today)
    start = forecast.period_bounds(first_day, period)[0]
    starts = []
    while start <= last_day:
        if start >= first_day:
            starts.append(start)
        start = forecast.period_bounds(start, period)[1]
    return starts or [forecast.period_bounds(last_day, period)[0]]


def spend_over_periods(
    con: Any,
    filters: Filters,
    starts: Sequence[date],
    period: str,
    *,
    today: date,
    amount: float | None = None,
) -> dict[str, Any]:
    """queries.forecast.spend_forecast over consecutive budget periods (first days
    `starts`), joined: month_start/period_start of the first, month_end/period_end of the
    last, month_to_date (actual spend so far), forecast and its band summed (a closed
    period's forecast is its actual), daily cumulative across them; budget = amount x the
    number of periods; periods (their number) and closed (True when every period has
    ended: the figures are actuals)."""
    budget = None if amount is None else amount * len(starts)
    parts = [
        forecast.spend_forecast(con, filters, month=start, today=today, period=period)
        for start in starts
    ]
    result = dict(parts[0])
    dailies, offset = [], 0.0
    for part in parts:
        daily = part["daily"].copy()
        for column in ("cumulative", "low", "high"):
            daily[column] = daily[column] + offset
        dailies.append(daily)
        offset += part["forecast"]
    last = parts[-1]
    result.update(
        month_end=last["month_end"],
        period_end=last["period_end"],
        month_to_date=sum(p["month_to_date"] for p in parts),
        forecast=sum(p["forecast"] for p in parts),
        forecast_low=sum(p["forecast_low"] for p in parts),
        forecast_high=sum(p["forecast_high"] for p in parts),
        daily=pd.concat(dailies, ignore_index=True),
        budget=budget,
        periods=len(starts),
        closed=last["period_end"] <= today,
    )
    result["over_budget"] = None if budget is None else result["forecast"] > budget
    return result


def budget_forecast(
    con: Any,
    budget: Mapping[str, Any],
    *,
    today: date | None = None,
    visible_runs: tuple[str, ...] | None = None,
    view: Filters | None = None,
) -> dict:
    """Spend of the budget's scope over the budget periods of the chosen days (`view`'s
    dates, see budget_periods; without `view`, the current period), with the amount of
    those periods (USD) as `budget` (spend_over_periods), plus used = month_to_date /
    budget and forecast_share = forecast / budget (fractions). visible_runs as in Filters:
    a restricted viewer's spend counts only the runs they may read (docs/access.md)."""
    today = today or datetime.now(UTC).date()
    scope = Scope(budget["scope_kind"], budget["scope_value"])
    scoped = replace(scope_filters(scope, today), visible_runs=visible_runs)
    starts = budget_periods(view, budget["period"], today)
    amount = float(budget["amount"])
    result = spend_over_periods(con, scoped, starts, budget["period"], today=today, amount=amount)
    result["used"] = result["month_to_date"] / result["budget"]
    result["forecast_share"] = result["forecast"] / result["budget"]
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
    day = today or datetime.now(UTC).date()
    if budget is not None:
        result = budget_forecast(
            con, budget, today=day, visible_runs=filters.visible_runs, view=filters
        )
    else:
        starts = budget_periods(filters, "month", day)
        result = spend_over_periods(con, filters, starts, "month", today=day)
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
        result = budget_forecast(
            con, budget, today=today, visible_runs=filters.visible_runs, view=filters
        )
        rows.append(
            {
                "id": budget["id"],
                "scope_kind": budget["scope_kind"],
                "scope_value": budget["scope_value"],
                "period": budget["period"],
                "amount": result["budget"],
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
