"""Failure and error rollups: failure/cancel rates and the most frequent errors.

SQL: sql/failures.sql on the DuckDB mirror; failure_rates also has its Postgres twin in
sql/postgres/failures.sql (`con` decides the engine, queries/engine.py).
"""

from __future__ import annotations

import pandas as pd

from queries.engine import Connection, fetch, filter_params, finish, group_sql, period_sql
from queries.filters import Filters


def failure_rates(
    con: Connection,
    filters: Filters,
    by: str | None = None,
    grain: str | None = None,
) -> pd.DataFrame:
    """Failure and cancel rates over finished tasks (completed, failed or cancelled).

    Columns: period (only when `grain`), group (only when `by`), tasks (finished tasks),
    failed, cancelled, failure_rate = failed / tasks, cancel_rate = cancelled / tasks
    (fractions 0..1). Groups with no finished task are absent. Sorted by period, group.
    A `statuses` filter applies first (filtering to "completed" gives rates of 0).
    """
    frame = fetch(
        con,
        "failure_counts",
        filter_params(filters),
        period=period_sql(grain),
        group=group_sql(con, by),
    )
    frame = finish(frame, grain=grain, by=by)
    for column in ("tasks", "failed", "cancelled"):
        frame[column] = frame[column].astype("int64")
    frame["failure_rate"] = frame["failed"] / frame["tasks"]
    frame["cancel_rate"] = frame["cancelled"] / frame["tasks"]
    return frame


def error_groups(con: Connection, filters: Filters, limit: int = 20) -> pd.DataFrame:
    """The most frequent errors of tasks that recorded one (response_errors).

    Messages are grouped with digits replaced by "N" (so "retry in 3s" and "retry in 5s"
    group together). Columns: error (the normalised message, at most 200 characters),
    tasks, models (distinct models, comma-separated, sorted), last_seen (UTC timestamp),
    sample_task_id (task_id of the most recent such task). Sorted by tasks desc.
    """
    return fetch(con, "error_groups", {**filter_params(filters), "limit": int(limit)})
