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

from ingest.access.viewer import connect_as
from ingest.store import database
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


def _behind(
    con: Connection,
    filters: Filters,
    period: date | datetime | str | None,
    grain: str,
    by: str | None,
    value: str | None,
    completed_only: bool,
) -> tuple[dict, str] | None:
    """Bound values and the group match of one chart point; None when it holds no task."""
    if completed_only:
        filters = completed_scope(filters)
        if filters is None:
            return None
    if period is not None:
        start, end = period_bounds(period, grain)
        start, end = max(start, filters.start), min(end, filters.end)
        if end <= start:
            return None
        filters = replace(filters, start=start, end=end)
    params = {**filter_params(filters), "value": value}
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
    return params, match


def completed_scope(filters: Filters) -> Filters | None:
    """The filters restricted to completed tasks, as every latency number is; None when the
    status filter leaves no completed task (e.g. status = failed)."""
    if filters.statuses and "completed" not in filters.statuses:
        return None
    return replace(filters, statuses=("completed",))


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
    completed_only: bool = False,
) -> pd.DataFrame:
    """The tasks behind one chart point or bar (drill-down).

    `period`: the start of the day/week/month of `grain` the point stands for (any date or
    time inside it works too); None = the whole filtered range. `by`/`value`: the group of
    the point (value None = the "not set" group); by=None = every group. Sorted by `metric`
    descending (NULLs last): "total_time", "ttft", "tokens_total" or "cost".
    completed_only: only completed tasks, the tasks a latency percentile covers.
    Columns (TASK_LIST_COLUMNS): task_id, run_id, created_at (UTC), provider, model,
    endpoint, service, user_id, status, time_to_first_token (ms), total_time (ms),
    tokens_total, cost (USD), id (the ai_tasks primary key).
    """
    if metric not in ORDER_METRICS:
        raise ValueError(f"metric {metric!r} is not allowed; choose one of {sorted(ORDER_METRICS)}")
    where = _behind(con, filters, period, grain, by, value, completed_only)
    if where is None:
        return pd.DataFrame(columns=TASK_LIST_COLUMNS)
    params, match = where
    params["limit"] = int(limit)
    return fetch(con, "tasks_behind", params, group_match=match, metric=ORDER_METRICS[metric])


def count_behind(
    con: Connection,
    filters: Filters,
    *,
    period: date | datetime | str | None = None,
    grain: str = "day",
    by: str | None = None,
    value: str | None = None,
    completed_only: bool = False,
) -> int:
    """How many tasks stand behind the point tasks_behind lists (same arguments, no
    limit), so a list can say "top 200 of 547"."""
    where = _behind(con, filters, period, grain, by, value, completed_only)
    if where is None:
        return 0
    params, match = where
    return int(fetch(con, "count_behind", params, group_match=match).iloc[0]["tasks"])


def error_tasks(
    con: Connection, filters: Filters, error: str, *, limit: int = 1000
) -> pd.DataFrame:
    """Every task of one error group of failures.error_groups (`error` as that function
    shows it, digits as N), newest first, at most `limit`; columns as tasks_behind."""
    params = {**filter_params(filters), "error": error, "limit": int(limit)}
    return fetch(con, "error_tasks", params)


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


def cost_per_run_histogram(con: Connection, filters: Filters, bins: int = 60) -> pd.DataFrame:
    """The distribution of run cost without listing every run: runs per log-spaced cost
    bucket, over each run's filtered tasks (runs that cost nothing are left out).
    Columns: bucket_low, bucket_high (USD), runs. Buckets without runs are absent."""
    if not 1 <= int(bins) <= 1000:
        raise ValueError(f"bins must be 1..1000, got {bins!r}")
    frame = fetch(con, "cost_per_run_histogram", {**filter_params(filters), "bins": int(bins)})
    frame["runs"] = frame["runs"].astype("int64")
    return frame


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
