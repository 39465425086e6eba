"""Drill-down lists: the tasks behind a chart point, the slowest and most expensive tasks
and runs, each run's cost, and tasks stuck in flight.

SQL: sql/drilldown.sql on the DuckDB mirror; stuck_tasks is a fresh point read from
Postgres (sql/postgres/drilldown.sql). Ids are strings, timestamps UTC, cost in USD,
times in milliseconds.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pandas as pd

from ingest import database
from ingest.viewer import connect_as
from queries.engine import Connection, fetch, filter_params, group_sql, period_sql
from queries.filters import Filters, dimension_column

ORDER_METRICS = {
    "total_time": "total_time",
    "ttft": "time_to_first_token",
    "time_to_first_token": "time_to_first_token",
    "tokens_total": "tokens_total",
    "cost": "cost",
}
TASK_LIST_COLUMNS = [
    "task_id",
    "run_id",
    "created_at",
    "provider",
    "model",
    "endpoint",
    "service",
    "user_id",
    "status",
    "time_to_first_token",
    "total_time",
    "tokens_total",
    "cost",
    "id",
]


def period_bounds(period: date | datetime | str, grain: str) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the `grain` period containing `period` (a date, a datetime,
    naive meaning UTC, a pandas Timestamp or an ISO string)."""
    period_sql(grain)
    stamp = pd.Timestamp(period)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    day = stamp.date()
    if grain == "day":
        first, last = day, day + timedelta(days=1)
    elif grain == "week":
        first = day - timedelta(days=day.weekday())
        last = first + timedelta(days=7)
    else:
        first = day.replace(day=1)
        last = (first + timedelta(days=32)).replace(day=1)
    return _midnight(first), _midnight(last)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def tasks_behind(
    con: Connection,
    filters: Filters,
    *,
    period: date | datetime | str | None = None,
    grain: str = "day",
    by: str | None = None,
    value: str | None = None,
    metric: str = "total_time",
    limit: int = 200,
) -> pd.DataFrame:
    """The tasks behind one chart point or bar (drill-down).

    `period`: the start of the day/week/month of `grain` the point stands for (any date or
    time inside it works too); None = the whole filtered range. `by`/`value`: the group of
    the point (value None = the "not set" group); by=None = every group. Sorted by `metric`
    descending (NULLs last): "total_time", "ttft", "tokens_total" or "cost".
    Columns (TASK_LIST_COLUMNS): task_id, run_id, created_at (UTC), provider, model,
    endpoint, service, user_id, status, time_to_first_token (ms), total_time (ms),
    tokens_total, cost (USD), id (the ai_tasks primary key).
    """
    if metric not in ORDER_METRICS:
        raise ValueError(f"metric {metric!r} is not allowed; choose one of {sorted(ORDER_METRICS)}")
    if period is not None:
        start, end = period_bounds(period, grain)
        start, end = max(start, filters.start), min(end, filters.end)
        if end <= start:
            return pd.DataFrame(columns=TASK_LIST_COLUMNS)
        filters = replace(filters, start=start, end=end)
    params = {**filter_params(filters), "limit": int(limit), "value": value}
    match = "TRUE"
    if by is not None:
        column = group_sql(con, by)
        if dimension_column(by) == "tag":
            match = (
                "CASE WHEN :value IS NULL THEN coalesce(len(tags), 0) = 0 "
                "ELSE list_contains(tags, :value) END"
            )
        else:
            match = f"{column} IS NOT DISTINCT FROM :value"
    return fetch(con, "tasks_behind", params, group_match=match, metric=ORDER_METRICS[metric])


def slowest_tasks(
    con: Connection, filters: Filters, metric: str = "total_time", limit: int = 100
) -> pd.DataFrame:
    """The `limit` slowest tasks by `metric` ("total_time" or "ttft"); columns as tasks_behind."""
    return tasks_behind(con, filters, metric=metric, limit=limit)


def most_expensive_tasks(con: Connection, filters: Filters, limit: int = 100) -> pd.DataFrame:
    """The `limit` most expensive tasks (cost desc); columns as tasks_behind."""
    return tasks_behind(con, filters, metric="cost", limit=limit)


def most_expensive_runs(con: Connection, filters: Filters, limit: int = 100) -> pd.DataFrame:
    """Runs by the cost of their filtered tasks, most expensive first.

    Columns: run_id, name, user_id, source_type, tasks, cost (USD), tokens_total (all three
    over the run's tasks that pass the filters), created_at (of the run, UTC).
    """
    frame = fetch(con, "most_expensive_runs", {**filter_params(filters), "limit": int(limit)})
    frame["tasks"] = frame["tasks"].astype("int64")
    return frame


def cost_per_run(con: Connection, filters: Filters) -> pd.DataFrame:
    """Cost of each run over its filtered tasks, for a distribution: columns run_id, cost."""
    return fetch(con, "cost_per_run", filter_params(filters))


def stuck_tasks(
    url: str | None = None,
    *,
    older_than_minutes: float = 15,
    limit: int = 200,
    viewer: str | None = None,
) -> pd.DataFrame:
    """Tasks still pending or streaming `older_than_minutes` after they were created.

    A fresh point read from Postgres (not the mirror), served by the partial index on
    unfinished tasks. Columns: task_id, run_id, id, user_id, provider, model, endpoint,
    service, status, created_at, updated_at (UTC), age_minutes (float). Oldest first.
    viewer: an ai_users id to read as (row-level security: only that viewer's tasks);
    None reads as the owner (every task).
    """
    params = {"older_than_minutes": float(older_than_minutes), "limit": int(limit)}
    if viewer is not None:
        with connect_as(url, viewer) as conn:
            return fetch(conn, "stuck_tasks", params)
    with database.connect(url) as conn:
        return fetch(conn, "stuck_tasks", params)
