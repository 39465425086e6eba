"""Spend and volume rollups: KPIs, usage over time and by dimension, daily cost.

SQL: sql/usage.sql on the DuckDB mirror, sql/postgres/usage.sql on Postgres (the same
names); `con` decides the engine (queries/engine.py). Units: cost in USD (float64, or
exact `decimal.Decimal` with `exact=True`), tokens as integers, `period` the UTC date a
day/week (ISO, Monday)/month starts on (datetime64, midnight). A task with no cost
(unknown price, or usage unknown) adds 0 USD and is counted in `unpriced`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from queries import day_totals
from queries.distinct_counts import DistinctCounts, distinct_counts
from queries.engine import Connection, fetch, filter_params, finish, group_sql, period_sql
from queries.filters import Filters

KPI_METRICS = ("spend", "tasks", "runs", "active_users", "tokens", "p95_ttft_ms", "failure_rate")


def _over_tasks(
    con: Connection,
    name: str,
    filters: Filters,
    how: DistinctCounts,
    exact: bool,
    grain: str | None,
    group: str,
) -> pd.DataFrame:
    """Rollup `name` of sql/usage.sql over the tasks, grouped by `grain` and `group`."""
    return fetch(
        con,
        name,
        filter_params(filters) | how.values,
        exact=exact,
        period=period_sql(grain),
        group=group,
        **how.expressions,
    )


def _usage(
    con: Connection, filters: Filters, grain: str | None, by: str | None, exact: bool, counts: bool
) -> pd.DataFrame:
    how = distinct_counts(con, filters, grain, by, counts)
    if day_totals.covers(con, filters, by):
        frame = day_totals.usage(con, filters, grain, by, how, exact=exact)
    else:
        name = "usage_bitmaps" if how.bitmaps else "usage"
        frame = _over_tasks(con, name, filters, how, exact, grain, group_sql(con, by))
    if not counts:
        frame = frame.drop(columns=["runs", "active_users"])
    return finish(frame, grain=grain, by=by)


def usage_over_time(
    con: Connection,
    filters: Filters,
    grain: str = "day",
    by: str | None = None,
    *,
    exact: bool = False,
    counts: bool = True,
) -> pd.DataFrame:
    """Usage per period (and per group when `by` is given).

    Columns: period (datetime64, UTC start of the day/week/month), group (only when `by`),
    cost (USD), tokens_input, tokens_output, tokens_total, tasks, runs (distinct runs),
    active_users (distinct users), tokens_cached_input and tokens_cache_write (parts of
    tokens_input), unpriced (tasks with no cost: unknown price or unknown usage).
    Periods without tasks are absent. Sorted by period,
    then group. counts=False leaves out runs and active_users: exact distinct counts are
    most of the cost at 10M tasks (about 3x), so a spend/tokens chart should skip them.
    """
    return _usage(con, filters, grain, by, exact, counts)


def usage_by(
    con: Connection, filters: Filters, by: str, *, exact: bool = False, counts: bool = True
) -> pd.DataFrame:
    """Usage per value of dimension `by` (team via ai_users; tag: once per tag of the run).

    Columns: group, cost (USD), tokens_input, tokens_output, tokens_total, tasks, runs,
    active_users (these two left out with counts=False, see usage_over_time),
    tokens_cached_input, tokens_cache_write, unpriced. Sorted
    by cost descending, then group.
    """
    if by is None:
        raise ValueError("usage_by needs a dimension `by`")
    frame = _usage(con, filters, None, by, exact, counts)
    order = frame.assign(_cost=frame["cost"].astype("float64"))
    order = order.sort_values(["_cost", "group"], ascending=[False, True], na_position="last")
    return order.drop(columns="_cost").reset_index(drop=True)


def _kpi_values(con: Connection, filters: Filters, exact: bool) -> dict[str, Any]:
    how = distinct_counts(con, filters, None, None)
    if day_totals.covers(con, filters, None):
        row = day_totals.kpi_row(con, filters, how, exact=exact)
    else:
        name = "kpi_totals_bitmaps" if how.bitmaps else "kpi_totals"
        row = _over_tasks(con, name, filters, how, exact, None, "NULL::VARCHAR").iloc[0]
    finished = int(row["finished"])
    p95 = row["p95_ttft_ms"]
    return {
        "spend": row["spend"],
        "tasks": int(row["tasks"]),
        "runs": int(row["runs"]),
        "active_users": int(row["active_users"]),
        "tokens": int(row["tokens"]),
        "p95_ttft_ms": float("nan") if pd.isna(p95) else float(p95),
        "failure_rate": int(row["failed"]) / finished if finished else float("nan"),
    }


def kpis(con: Connection, filters: Filters, *, exact: bool = False) -> pd.DataFrame:
    """Headline numbers of the filtered period against `filters.previous_period()`.

    One row per metric, in this order: spend (USD), tasks, runs, active_users, tokens
    (tokens_total), p95_ttft_ms (completed tasks with a TTFT; NaN when none), failure_rate
    (failed / finished tasks, 0..1; NaN when no finished task).
    Columns: metric (str), value, previous (the same metric over the previous period),
    change = (value - previous) / previous as a fraction (0.25 = +25%), None when previous
    is 0 or missing. value/previous are floats, or Decimal for spend when `exact`.
    """
    now = _kpi_values(con, filters, exact)
    before = _kpi_values(con, filters.previous_period(), exact)
    rows = []
    for metric in KPI_METRICS:
        value, previous = now[metric], before[metric]
        if pd.isna(previous) or previous == 0 or pd.isna(value):
            change = None
        else:
            change = float(value - previous) / float(previous)
        if not exact or metric != "spend":
            value, previous = float(value), float(previous)
        rows.append({"metric": metric, "value": value, "previous": previous, "change": change})
    frame = pd.DataFrame(rows, columns=["metric", "value", "previous", "change"])
    # None (not NaN) where there is no previous value to compare with, as documented.
    frame["change"] = pd.Series([row["change"] for row in rows], dtype=object)
    return frame


def daily_cost(con: Connection, filters: Filters) -> pd.DataFrame:
    """Spend per UTC day with tasks: day (datetime64), cost (float USD). Mirror only."""
    return fetch(con, "daily_cost", filter_params(filters))


def usage_pairs(con: Connection, filters: Filters, a: str, b: str) -> pd.DataFrame:
    """Usage per pair of values of two different dimensions (e.g. team × model). Mirror only.

    Columns: a, b (the two values; None = not set), cost (USD), tokens_input,
    tokens_output, tokens_total, tasks, unpriced (tasks with no cost, not summed as 0 in
    cost but counted here). Sorted by cost descending. No distinct runs or
    users: a breakdown chart does not show them.
    """
    if a == b:
        raise ValueError(f"usage_pairs needs two different dimensions, got {a!r} twice")
    frame = fetch(
        con,
        "usage_pairs",
        filter_params(filters),
        group=group_sql(con, a),
        group_b=group_sql(con, b),
    )
    frame["tasks"] = frame["tasks"].astype("int64")
    frame["unpriced"] = frame["unpriced"].astype("int64")
    return frame
