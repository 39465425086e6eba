"""Period-end spend forecast (a UTC month, or an ISO week) against a budget.

Method, chosen to be simple to explain and robust on a few weeks of data:

1. Complete UTC days before `today` are actuals; today is still running.
2. Level: the mean daily spend over the trailing 28 complete days (fewer when the data is
   younger; days without tasks count as 0 once data exists).
3. Weekly shape: a factor per weekday = that weekday's mean over the trailing 56 complete
   days / the mean of all those days (1 when there is no spend), so weekends stay quiet.
4. Each remaining day of the period (today included, and at least today's actual so far)
   is forecast as level x weekday factor.
5. Band: sigma = the standard deviation of (actual - level x factor) over the trailing 28
   days; after k forecast days the cumulative band is +-1.645 x sigma x sqrt(k) (a 90% band
   if daily errors were independent and normal), never below what is already spent.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from queries import usage
from queries.filters import Filters

LEVEL_DAYS = 28
SHAPE_DAYS = 56
Z_90 = 1.645
METHOD = (
    "trailing 28-day mean daily spend x weekday factor (trailing 8 weeks); "
    "band +-1.645 sigma of daily residuals x sqrt(days ahead)"
)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# Over 60 lines: one forecast's steps in order (the history, the level and weekday shape,
# each day projected with its band, the totals), each reading what the step before left.
def spend_forecast(
    con: Any,
    filters: Filters,
    *,
    month: date | None = None,
    budget: float | None = None,
    today: date | None = None,
    period: str = "month",
) -> dict[str, Any]:
    """Month-end (or week-end) spend forecast with a band, against an optional budget (USD).

    The filters' dimensions apply, their time range does not: the month (default: the
    month of `today`, default today UTC) is what is forecast, by the method above.
    `period` "week" forecasts the ISO week (Monday to Sunday, UTC) containing `month` (or
    today) instead; month_start/month_end (also period_start/period_end) are then the
    week's.
    Returns: month_start, month_end (dates, end exclusive), month_to_date (actual spend up
    to now, today included), forecast, forecast_low, forecast_high (projected month total),
    budget (as given), over_budget (bool or None), method (one-line explanation), daily
    (DataFrame[day, cost, cumulative, kind "actual"|"forecast", low, high]; low/high are
    the cumulative band, equal to cumulative on actual days).
    """
    today = today or datetime.now(UTC).date()
    month_start, month_end = period_bounds(month or today, period)
    history_start = min(month_start, today) - timedelta(days=SHAPE_DAYS)
    window_end = max(month_end, today + timedelta(days=1))
    window = replace(filters, start=_midnight(history_start), end=_midnight(window_end))
    costs = usage.daily_cost(con, window)
    actual = {ts.date(): float(cost) for ts, cost in zip(costs["day"], costs["cost"], strict=True)}

    first_data = min(actual) if actual else today
    level_days = _days(max(first_data, today - timedelta(days=LEVEL_DAYS)), today)
    shape_days = _days(max(first_data, today - timedelta(days=SHAPE_DAYS)), today)
    level = _mean([actual.get(d, 0.0) for d in level_days])
    overall = _mean([actual.get(d, 0.0) for d in shape_days])
    factor = {}
    for weekday in range(7):
        same = [actual.get(d, 0.0) for d in shape_days if d.weekday() == weekday]
        factor[weekday] = _mean(same) / overall if same and overall > 0 else 1.0
    residuals = [actual.get(d, 0.0) - level * factor[d.weekday()] for d in level_days]
    sigma = _stdev(residuals)

    rows = []
    cumulative = 0.0
    ahead = 0
    for day in _days(month_start, month_end):
        if day < today:
            cost, kind = actual.get(day, 0.0), "actual"
            cumulative += cost
            low = high = cumulative
        else:
            expected = level * factor[day.weekday()]
            cost = max(expected, actual.get(day, 0.0)) if day == today else expected
            kind = "forecast"
            ahead += 1
            cumulative += cost
            spread = Z_90 * sigma * math.sqrt(ahead)
            low, high = cumulative - spread, cumulative + spread
        rows.append({"day": day, "cost": cost, "cumulative": cumulative, "kind": kind})
        rows[-1] |= {"low": low, "high": high}
    daily = pd.DataFrame(rows, columns=["day", "cost", "cumulative", "kind", "low", "high"])
    daily["day"] = pd.to_datetime(daily["day"]).astype("datetime64[us]")

    # Up to today, and never past the period's end (a closed period: its whole actual spend).
    month_to_date = sum(
        cost for day, cost in actual.items() if month_start <= day <= today and day < month_end
    )
    month_to_date = month_to_date if month_start <= today else 0.0
    ahead_rows = daily["kind"] == "forecast"
    daily.loc[ahead_rows, "low"] = daily.loc[ahead_rows, "low"].clip(lower=month_to_date)
    forecast = float(daily["cumulative"].iloc[-1]) if len(daily) else 0.0
    low = float(daily["low"].iloc[-1]) if len(daily) else 0.0
    high = float(daily["high"].iloc[-1]) if len(daily) else 0.0
    return {
        "month_start": month_start,
        "month_end": month_end,
        "period": period,
        "period_start": month_start,
        "period_end": month_end,
        "month_to_date": month_to_date,
        "forecast": forecast,
        "forecast_low": low,
        "forecast_high": high,
        "budget": budget,
        "over_budget": None if budget is None else forecast > budget,
        "method": METHOD,
        "daily": daily,
    }


def period_bounds(day: date, period: str = "month") -> tuple[date, date]:
    """[first day, day after the last) of the UTC month or ISO week containing `day`."""
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if period != "month":
        raise ValueError(f"period {period!r} is not allowed; choose one of ['month', 'week']")
    start = day.replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1)


def _days(first: date, end: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((end - first).days)]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _stdev(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
