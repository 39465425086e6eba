"""Running the named rollup SQL on either engine and shaping the results.

`con` decides the engine: a DuckDB connection runs `sql/*.sql` on the mirror, a psycopg
connection runs the twins in `sql/postgres/*.sql` on the system of record. The public
contract (columns, units) is documented in `queries/__init__.py`.

SQL text is composed only from named fragments of the same folder and from the
allow-listed expressions below (`{{name}}`); every value is a bound parameter.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ingest import database, sqlfiles
from queries import sqltext
from queries.filters import GRAINS, Filters, dimension_column

_EPOCH = date(1970, 1, 1)

# Allow-listed SQL expressions, per engine, keyed by dimension column / grain / metric.
_GROUP_SQL = {
    "duckdb": {
        "tag": "unnest(CASE WHEN coalesce(len(tags), 0) = 0 THEN [NULL::VARCHAR] ELSE tags END)"
    },
    "postgres": {
        "tag": "unnest(CASE WHEN coalesce(cardinality(tags), 0) = 0 "
        "THEN ARRAY[NULL::text] ELSE tags END)"
    },
}
_PERIOD_SQL = {"day": "day", "week": "(day - (day + 3) % 7)", "month": "month_day"}
LATENCY_METRICS = {"ttft": "time_to_first_token", "total_time": "total_time"}
ORDER_METRICS = {
    "total_time": "total_time",
    "ttft": "time_to_first_token",
    "time_to_first_token": "time_to_first_token",
    "tokens_total": "tokens_total",
    "cost": "cost",
}
FINISHED = ("completed", "failed", "cancelled")


def engine_of(con: Any) -> str:
    """ "duckdb" for a DuckDB connection, "postgres" for anything else (psycopg)."""
    return "duckdb" if isinstance(con, duckdb.DuckDBPyConnection) else "postgres"


def render(engine: str, name: str, **expressions: str) -> sqlfiles.Query:
    """Query `name` of `engine` with {{fragments}} and allow-listed expressions filled in."""
    return sqltext.render(engine, name, **expressions)


def group_sql(engine: str, by: str | None) -> str:
    """SQL expression for dimension `by` (None: no grouping); ValueError if not allowed."""
    if by is None:
        return "NULL::TEXT"
    column = dimension_column(by)
    return _GROUP_SQL[engine].get(column, column)


def period_sql(grain: str | None) -> str:
    """Day-key expression of the start of a `grain` period (None: no periods)."""
    if grain is None:
        return "NULL::INTEGER"
    if grain not in GRAINS:
        raise ValueError(f"grain {grain!r} is not allowed; choose one of {list(GRAINS)}")
    return _PERIOD_SQL[grain]


def filter_params(filters: Filters) -> dict[str, Any]:
    """The bound values of the global filters."""
    return {
        "start": filters.start,
        "end": filters.end,
        "source_types": list(filters.source_types),
        "providers": list(filters.providers),
        "models": list(filters.models),
        "users": list(filters.users),
        "teams": list(filters.teams),
        "tags": list(filters.tags),
        "statuses": list(filters.statuses),
    }


def fetch(
    con: Any,
    name: str,
    params: dict[str, Any],
    *,
    exact: bool = False,
    **expressions: str,
) -> pd.DataFrame:
    """Run query `name` on `con`'s engine; a DataFrame with ids as str, DECIMAL as float64
    (or Decimal when `exact`), timestamps as UTC datetimes, dates as datetime64."""
    engine = engine_of(con)
    query = render(engine, name, **expressions)
    values = {key: params[key] for key in query.params}
    if engine == "duckdb":
        table = con.sql(query.duckdb, params=values).to_arrow_table()
        frame = _arrow_frame(table, exact)
    else:
        with con.cursor(row_factory=_tuple_row()) as cur:
            cur.execute(query.psycopg, values)
            columns = [column.name for column in cur.description]
            frame = pd.DataFrame(cur.fetchall(), columns=columns)
        frame = _python_frame(frame, exact)
    return frame


def _tuple_row():
    from psycopg.rows import tuple_row

    return tuple_row


def _arrow_frame(table: pa.Table, exact: bool) -> pd.DataFrame:
    columns = []
    for column in table.columns:
        if pa.types.is_decimal(column.type) and not exact:
            column = pc.cast(column, pa.float64())
        elif pa.types.is_date(column.type):
            column = pc.cast(column, pa.timestamp("us"))
        columns.append(column)
    return pa.table(columns, names=table.column_names).to_pandas()


def _python_frame(frame: pd.DataFrame, exact: bool) -> pd.DataFrame:
    import uuid
    from decimal import Decimal

    for name in frame.columns:
        sample = frame[name].dropna()
        if sample.empty:
            continue
        first = sample.iloc[0]
        if isinstance(first, Decimal) and not exact:
            frame[name] = frame[name].astype("float64")
        elif isinstance(first, uuid.UUID):
            frame[name] = frame[name].map(lambda v: None if v is None else str(v))
        elif isinstance(first, datetime):
            frame[name] = pd.to_datetime(frame[name], utc=True).astype("datetime64[us, UTC]")
        elif isinstance(first, date):
            frame[name] = pd.to_datetime(frame[name]).astype("datetime64[us]")
    return frame


def _finish(frame: pd.DataFrame, *, grain: str | None, by: str | None) -> pd.DataFrame:
    """Drop the period/group columns that were not asked for, sort deterministically."""
    keys = []
    if grain is None:
        frame = frame.drop(columns=["period"], errors="ignore")
    else:
        keys.append("period")
    if by is None:
        frame = frame.drop(columns=["group"], errors="ignore")
    else:
        keys.append("group")
    if keys and len(frame):
        frame = frame.sort_values(keys, na_position="last", kind="stable")
    return frame.reset_index(drop=True)


# --- sums and counts -------------------------------------------------------------------


# Exact distinct runs/users on the mirror use bitmaps over the dense run_key/user_key
# (3-4x faster than hashing) while the bitmaps of all groups fit in this many bytes;
# beyond it (many groups x many keys) they fall back to count(DISTINCT key). Both exact.
BITMAP_BUDGET_BYTES = 64 << 20
_DAY_US = 86_400_000_000


def _day_number(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 * 1_000_000 + delta.seconds * 1_000_000 + delta.microseconds) // (
        _DAY_US
    )


def _periods(first_day: int, last_day: int, grain: str | None) -> int:
    """An upper bound of the number of `grain` periods the days [first_day, last_day] touch."""
    days = last_day - first_day + 1
    return {None: 1, "day": days, "week": days // 7 + 2, "month": days // 28 + 2}[grain]


def distinct_counts(
    con: Any, filters: Filters, grain: str | None, by: str | None, counts: bool = True
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """How a rollup grouped by `grain` and `by` gets its exact distinct runs and users:
    (suffix of the query name: "" or "_bitmaps", SQL expressions, their bound values)."""
    if not counts:
        return "", {"runs": "NULL::BIGINT", "active_users": "NULL::BIGINT"}, {}
    engine = engine_of(con)
    if engine == "postgres":
        return "", {"runs": "count(DISTINCT run_id)", "active_users": "count(DISTINCT user_id)"}, {}
    first_day = _day_number(filters.start)
    last_day = _day_number(filters.end - timedelta(microseconds=1))
    values = {"first_day": first_day, "last_day": last_day}
    period = period_sql(grain)
    dimension = dimension_column(by) if by is not None else ""
    plan = render(engine, "distinct_plan", period=period)
    run_bits, user_bits, n_values = con.execute(
        plan.duckdb, {**values, "dimension": dimension}
    ).fetchall()[0]
    groups = _periods(first_day, last_day, grain) * ((n_values + 1) if by is not None else 1)
    budget = BITMAP_BUDGET_BYTES
    suffix = ""
    expressions = {"runs": "count(DISTINCT run_key)", "active_users": "count(DISTINCT user_key)"}
    if user_bits and groups * (user_bits // 8 + 16) <= budget:
        expressions["active_users"] = render(engine, "distinct_users_bitmap").sql
        values["user_bits"] = int(user_bits)
        budget -= groups * (user_bits // 8 + 16)
    if run_bits and groups * (run_bits // 8 + 16) <= budget:
        suffix = "_bitmaps"
        values["run_bits"] = int(run_bits)
    return suffix, expressions, values


def _usage(
    con: Any, filters: Filters, grain: str | None, by: str | None, exact: bool, counts: bool
) -> pd.DataFrame:
    suffix, expressions, values = distinct_counts(con, filters, grain, by, counts)
    frame = fetch(
        con,
        "usage" + suffix,
        filter_params(filters) | values,
        exact=exact,
        period=period_sql(grain),
        group=group_sql(engine_of(con), by),
        **expressions,
    )
    if not counts:
        frame = frame.drop(columns=["runs", "active_users"])
    return _finish(frame, grain=grain, by=by)


def usage_over_time(
    con: Any, filters: Filters, grain: str, by: str | None, *, exact: bool, counts: bool = True
) -> pd.DataFrame:
    return _usage(con, filters, grain, by, exact, counts)


def usage_by(
    con: Any, filters: Filters, by: str, *, exact: bool, counts: bool = True
) -> pd.DataFrame:
    if by is None:
        raise ValueError("usage_by needs a dimension `by`")
    frame = _usage(con, filters, None, by, exact, counts)
    order = frame.assign(_cost=frame["cost"].astype("float64"))
    order = order.sort_values(["_cost", "group"], ascending=[False, True], na_position="last")
    return order.drop(columns="_cost").reset_index(drop=True)


KPI_METRICS = ("spend", "tasks", "runs", "active_users", "tokens", "p95_ttft_ms", "failure_rate")


def _kpi_values(con: Any, filters: Filters, exact: bool) -> dict[str, Any]:
    suffix, expressions, values = distinct_counts(con, filters, None, None)
    row = fetch(
        con,
        "kpi_totals" + suffix,
        filter_params(filters) | values,
        exact=exact,
        period=period_sql(None),
        group="NULL::VARCHAR",
        **expressions,
    ).iloc[0]
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


def kpis(con: Any, filters: Filters, *, exact: bool) -> pd.DataFrame:
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


def failure_rates(con: Any, filters: Filters, by: str | None, grain: str | None) -> pd.DataFrame:
    frame = fetch(
        con,
        "failure_counts",
        filter_params(filters),
        period=period_sql(grain),
        group=group_sql(engine_of(con), by),
    )
    frame = _finish(frame, grain=grain, by=by)
    for column in ("tasks", "failed", "cancelled"):
        frame[column] = frame[column].astype("int64")
    frame["failure_rate"] = frame["failed"] / frame["tasks"]
    frame["cancel_rate"] = frame["cancelled"] / frame["tasks"]
    return frame


# --- latencies -------------------------------------------------------------------------


def _latency_metric(metric: str) -> str:
    try:
        return LATENCY_METRICS[metric]
    except KeyError:
        raise ValueError(
            f"metric {metric!r} is not allowed; choose one of {sorted(LATENCY_METRICS)}"
        ) from None


def latency_percentiles(
    con: Any, filters: Filters, metric: str, by: str | None, grain: str | None
) -> pd.DataFrame:
    frame = fetch(
        con,
        "latency_percentiles",
        filter_params(filters),
        period=period_sql(grain),
        group=group_sql(engine_of(con), by),
        metric=_latency_metric(metric),
    )
    frame = _finish(frame, grain=grain, by=by)
    frame["tasks"] = frame["tasks"].astype("int64")
    for column in ("p50", "p90", "p95", "p99"):
        frame[column] = frame[column].astype("float64")
    return frame


def latency_histogram(
    con: Any, filters: Filters, metric: str, bins: int, by: str | None
) -> pd.DataFrame:
    if not 1 <= int(bins) <= 1000:
        raise ValueError(f"bins must be between 1 and 1000, got {bins}")
    bins = int(bins)
    counts = fetch(
        con,
        "latency_histogram_counts",
        {**filter_params(filters), "bins": bins},
        group=group_sql(engine_of(con), by),
        metric=_latency_metric(metric),
    )
    columns = (["group"] if by else []) + ["bucket_low_ms", "bucket_high_ms", "tasks"]
    if counts.empty:
        return pd.DataFrame(columns=columns)
    lo, hi = float(counts["lo"].iloc[0]), float(counts["hi"].iloc[0])
    edges = [lo * (hi / lo) ** (i / bins) for i in range(bins + 1)] if hi > lo else None
    groups = counts["group"].drop_duplicates().tolist()
    rows = []
    for group in groups:
        missing = pd.isna(group)
        mine = counts[counts["group"].isna()] if missing else counts[counts["group"] == group]
        group = None if missing else group
        per_bucket = dict(zip(mine["bucket"].astype(int), mine["tasks"].astype(int), strict=True))
        for i in range(bins if edges else 1):
            low, high = (edges[i], edges[i + 1]) if edges else (lo, hi)
            rows.append(
                {"group": group, "bucket_low_ms": low, "bucket_high_ms": high}
                | {"tasks": per_bucket.get(i, 0)}
            )
    return pd.DataFrame(rows, columns=["group", "bucket_low_ms", "bucket_high_ms", "tasks"])[
        columns
    ]


def tokens_per_second(con: Any, filters: Filters, by: str | None) -> pd.DataFrame:
    frame = fetch(
        con, "tokens_per_second", filter_params(filters), group=group_sql(engine_of(con), by)
    )
    if by is None:
        frame = frame.drop(columns=["group"])
    frame["tasks"] = frame["tasks"].astype("int64")
    return frame


def error_groups(con: Any, filters: Filters, limit: int) -> pd.DataFrame:
    return fetch(con, "error_groups", {**filter_params(filters), "limit": int(limit)})


# --- tasks and runs --------------------------------------------------------------------


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


def tasks_behind(
    con: Any,
    filters: Filters,
    *,
    period: date | datetime | str | None = None,
    grain: str = "day",
    by: str | None = None,
    value: str | None = None,
    metric: str = "total_time",
    limit: int = 200,
) -> pd.DataFrame:
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
        column = group_sql(engine_of(con), by)
        if dimension_column(by) == "tag":
            match = (
                "CASE WHEN :value IS NULL THEN coalesce(len(tags), 0) = 0 "
                "ELSE list_contains(tags, :value) END"
            )
        else:
            match = f"{column} IS NOT DISTINCT FROM :value"
    return fetch(con, "tasks_behind", params, group_match=match, metric=ORDER_METRICS[metric])


def most_expensive_runs(con: Any, filters: Filters, limit: int) -> pd.DataFrame:
    frame = fetch(con, "most_expensive_runs", {**filter_params(filters), "limit": int(limit)})
    frame["tasks"] = frame["tasks"].astype("int64")
    return frame


def cost_per_run(con: Any, filters: Filters) -> pd.DataFrame:
    return fetch(con, "cost_per_run", filter_params(filters))


def daily_cost(con: Any, filters: Filters) -> pd.DataFrame:
    """Spend per UTC day with tasks: day (datetime64), cost (float USD)."""
    return fetch(con, "daily_cost", filter_params(filters))


def stuck_tasks(url: str | None, *, older_than_minutes: float, limit: int) -> pd.DataFrame:
    with database.connect(url) as conn:
        return fetch(
            conn,
            "stuck_tasks",
            {"older_than_minutes": float(older_than_minutes), "limit": int(limit)},
        )


def filter_options(con: Any) -> dict[str, list[str]]:
    tasks = con.execute(render("duckdb", "filter_options_tasks").duckdb).fetchall()[0]
    runs = con.execute(render("duckdb", "filter_options_runs").duckdb).fetchall()[0]
    lists = dict(zip(["providers", "models", "users", "statuses"], tasks, strict=True))
    lists |= dict(zip(["source_types", "tags", "teams"], runs, strict=True))
    keys = ("source_types", "providers", "models", "users", "teams", "tags", "statuses")
    return {key: list(lists[key] or []) for key in keys}
