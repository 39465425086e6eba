"""Analytics over the DuckDB mirror of the system of record (SPEC section 5).

Two engines, one contract:

- Every rollup below takes `con` and `filters` (queries.filters.Filters) and returns a pandas
  DataFrame with the documented columns. `con` is normally a DuckDB connection to the
  mirror (`open_mirror()`); the rollups that have a Postgres twin (kpis, usage_over_time,
  usage_by, latency_percentiles, failure_rates) also accept a psycopg connection and then
  run the same rollup in Postgres (tests compare the two; the benchmark uses it as the
  baseline).
- Units: cost in USD (float64, or exact `decimal.Decimal` with `exact=True` where offered),
  times in milliseconds, tokens as integers, `period` is the UTC date a day/week
  (ISO, Monday)/month starts on (datetime64, midnight), timestamps are UTC-aware datetime64,
  ids (task_id, run_id, id) are strings. A task with no cost (unpriced model) adds 0 USD.
- A filter value is always a bound parameter; a dimension (`by=`) must be one of
  `queries.filters.DIMENSIONS` (else ValueError naming the allowed ones); a grain must be
  one of `GRAINS` ("day", "week", "month").
- `group` is the value of the `by` dimension; None means "not set" (e.g. a task of a run
  without tags under by="tag", a user without a team under by="team"). With by="tag" a task
  counts once for each tag of its run, so groups can sum to more than the total.

Connections: DuckDB allows one read-write process per file. The process that shows the
dashboard opens the mirror once (`open_mirror()`), syncs through that same connection
(`sync_mirror(con=con)`) and gives each thread `con.cursor()`. `ai-runs sync` from another
process while the dashboard holds the file fails with a clear message instead of waiting.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pandas as pd

from queries.filters import DIMENSIONS, GRAINS, Filters, dimension_column
from queries.mirror import MIRROR_SCHEMA_VERSION, SyncResult, open_mirror, sync_mirror

__all__ = [
    "DIMENSIONS",
    "GRAINS",
    "MIRROR_SCHEMA_VERSION",
    "Filters",
    "SyncResult",
    "cost_per_run",
    "dimension_column",
    "error_groups",
    "failure_rates",
    "filter_options",
    "kpis",
    "latency_histogram",
    "latency_percentiles",
    "mirror_freshness",
    "most_expensive_runs",
    "most_expensive_tasks",
    "open_mirror",
    "slowest_tasks",
    "spend_forecast",
    "stuck_tasks",
    "sync_mirror",
    "tasks_behind",
    "tokens_per_second",
    "usage_by",
    "usage_over_time",
    "what_if_cost",
]

Connection = Any  # duckdb.DuckDBPyConnection, or psycopg.Connection for the Postgres twins


def kpis(con: Connection, filters: Filters, *, exact: bool = False) -> pd.DataFrame:
    """Headline numbers of the filtered period against `filters.previous_period()`.

    One row per metric, in this order: spend (USD), tasks, runs, active_users, tokens
    (tokens_total), p95_ttft_ms (completed tasks with a TTFT; NaN when none), failure_rate
    (failed / finished tasks, 0..1; NaN when no finished task).
    Columns: metric (str), value, previous (the same metric over the previous period),
    change = (value - previous) / previous as a fraction (0.25 = +25%), None when previous
    is 0 or missing. value/previous are floats, or Decimal for spend when `exact`.
    """
    from queries import rollups

    return rollups.kpis(con, filters, exact=exact)


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
    active_users (distinct users). Periods without tasks are absent. Sorted by period,
    then group. counts=False leaves out runs and active_users: exact distinct counts are
    most of the cost at 10M tasks (about 3x), so a spend/tokens chart should skip them.
    """
    from queries import rollups

    return rollups.usage_over_time(con, filters, grain, by, exact=exact, counts=counts)


def usage_by(
    con: Connection, filters: Filters, by: str, *, exact: bool = False, counts: bool = True
) -> pd.DataFrame:
    """Usage per value of dimension `by` (team via ai_users; tag: once per tag of the run).

    Columns: group, cost (USD), tokens_input, tokens_output, tokens_total, tasks, runs,
    active_users (the last two left out with counts=False, see usage_over_time). Sorted
    by cost descending, then group.
    """
    from queries import rollups

    return rollups.usage_by(con, filters, by, exact=exact, counts=counts)


def latency_percentiles(
    con: Connection,
    filters: Filters,
    metric: str = "ttft",
    by: str | None = None,
    grain: str | None = None,
) -> pd.DataFrame:
    """Exact percentiles (linear interpolation, `quantile_cont`) of a latency in ms.

    metric: "ttft" (time_to_first_token) or "total_time"; over completed tasks whose value
    is not NULL. Columns: period (only when `grain`), group (only when `by`), tasks, p50,
    p90, p95, p99 (float ms). Sorted by period, then group.
    """
    from queries import rollups

    return rollups.latency_percentiles(con, filters, metric, by, grain)


def latency_histogram(
    con: Connection,
    filters: Filters,
    metric: str = "ttft",
    bins: int = 50,
    by: str | None = None,
) -> pd.DataFrame:
    """Histogram of a latency (ms) over completed tasks, with log-spaced buckets.

    The `bins` buckets span [max(1, min), max] of the metric over all selected tasks (the
    same edges for every group); values below the first edge (0 ms) fall in the first
    bucket. Columns: group (only when `by`), bucket_low_ms, bucket_high_ms (floats),
    tasks (every bucket listed, 0 when empty). Empty frame when there is no such task.
    """
    from queries import rollups

    return rollups.latency_histogram(con, filters, metric, bins, by)


def tokens_per_second(con: Connection, filters: Filters, by: str = "model") -> pd.DataFrame:
    """Output speed: tokens_output / ((total_time - time_to_first_token) / 1000) per task.

    Over completed tasks with tokens_output > 0 and total_time > time_to_first_token.
    Columns: group, tasks, p50, p90, mean (tokens per second, floats). Sorted by tasks desc.
    """
    from queries import rollups

    return rollups.tokens_per_second(con, filters, by)


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
    from queries import rollups

    return rollups.failure_rates(con, filters, by, grain)


def error_groups(con: Connection, filters: Filters, limit: int = 20) -> pd.DataFrame:
    """The most frequent errors of tasks that recorded one (response_errors).

    Messages are grouped with digits replaced by "N" (so "retry in 3s" and "retry in 5s"
    group together). Columns: error (the normalised message, at most 200 characters),
    tasks, models (distinct models, comma-separated, sorted), last_seen (UTC timestamp),
    sample_task_id (task_id of the most recent such task). Sorted by tasks desc.
    """
    from queries import rollups

    return rollups.error_groups(con, filters, limit)


TASK_COLUMNS = (
    "task_id, run_id, created_at, provider, model, endpoint, service, user_id, status, "
    "time_to_first_token, total_time, tokens_total, cost, id"
)


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
    Columns: task_id, run_id, created_at (UTC), provider, model, endpoint, service, user_id,
    status, time_to_first_token (ms), total_time (ms), tokens_total, cost (USD), id (the
    ai_tasks primary key).
    """
    from queries import rollups

    return rollups.tasks_behind(
        con,
        filters,
        period=period,
        grain=grain,
        by=by,
        value=value,
        metric=metric,
        limit=limit,
    )


def slowest_tasks(
    con: Connection, filters: Filters, metric: str = "total_time", limit: int = 100
) -> pd.DataFrame:
    """The `limit` slowest tasks by `metric` ("total_time" or "ttft"); columns as tasks_behind."""
    from queries import rollups

    return rollups.tasks_behind(con, filters, metric=metric, limit=limit)


def most_expensive_tasks(con: Connection, filters: Filters, limit: int = 100) -> pd.DataFrame:
    """The `limit` most expensive tasks (cost desc); columns as tasks_behind."""
    from queries import rollups

    return rollups.tasks_behind(con, filters, metric="cost", limit=limit)


def most_expensive_runs(con: Connection, filters: Filters, limit: int = 100) -> pd.DataFrame:
    """Runs by the cost of their filtered tasks, most expensive first.

    Columns: run_id, name, user_id, source_type, tasks, cost (USD), tokens_total (all three
    over the run's tasks that pass the filters), created_at (of the run, UTC).
    """
    from queries import rollups

    return rollups.most_expensive_runs(con, filters, limit)


def cost_per_run(con: Connection, filters: Filters) -> pd.DataFrame:
    """Cost of each run over its filtered tasks, for a distribution: columns run_id, cost."""
    from queries import rollups

    return rollups.cost_per_run(con, filters)


def stuck_tasks(
    url: str | None = None, *, older_than_minutes: float = 15, limit: int = 200
) -> pd.DataFrame:
    """Tasks still pending or streaming `older_than_minutes` after they were created.

    A fresh point read from Postgres (not the mirror), served by the partial index on
    unfinished tasks. Columns: task_id, run_id, id, user_id, provider, model, endpoint,
    service, status, created_at, updated_at (UTC), age_minutes (float). Oldest first.
    """
    from queries import rollups

    return rollups.stuck_tasks(url, older_than_minutes=older_than_minutes, limit=limit)


def spend_forecast(
    con: Connection,
    filters: Filters,
    *,
    month: date | None = None,
    budget: float | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Month-end spend forecast with a band, against an optional budget (all USD).

    The filters' dimensions apply, their time range does not: the month (default: the
    month of `today`, default today UTC) is what is forecast. Method (see
    queries.forecast): complete days before `today` are actuals; each remaining day is
    forecast as the mean daily spend of the trailing 28 complete days times a weekday
    factor (that weekday's mean over the trailing 8 weeks / the overall mean there); the
    band is +-1.645 standard deviations of the daily residuals, grown with the square root
    of the days forecast (about a 90% band).
    Returns: month_start, month_end (dates, end exclusive), month_to_date (actual spend up
    to now, today included), forecast, forecast_low, forecast_high (projected month total),
    budget (as given), over_budget (bool or None), method (one-line explanation), daily
    (DataFrame[day, cost, cumulative, kind "actual"|"forecast", low, high]; low/high are
    the cumulative band, equal to cumulative on actual days).
    """
    from queries import forecast

    return forecast.spend_forecast(con, filters, month=month, budget=budget, today=today)


def what_if_cost(
    con: Connection, filters: Filters, target_provider: str, target_model: str
) -> pd.DataFrame:
    """What the filtered tasks would have cost on another model (prices: genai-prices).

    Per (provider, model) actually used: the same token mix (tokens_input incl. cached
    reads, tokens_output, tokens_cached_input) priced on `target_provider`/`target_model`,
    exactly as pricing each request on its own (tiered prices included).
    Columns: provider, model, tasks, tokens_input, tokens_output, tokens_cached_input,
    actual_cost, what_if_cost, difference (= what_if_cost - actual_cost; USD floats).
    Sorted by actual_cost desc. An unknown target raises ValueError naming the known
    providers, or the known models of that provider.
    """
    from queries import whatif

    return whatif.what_if_cost(con, filters, target_provider, target_model)


def filter_options(con: Connection) -> dict[str, list[str]]:
    """Sidebar choices present in the mirror, each sorted: source_types, providers, models,
    users, teams, tags, statuses."""
    from queries import rollups

    return rollups.filter_options(con)


def mirror_freshness(con: Connection) -> dict[str, Any]:
    """Footer facts: last_sync_at (UTC datetime or None), last_full_sync_at, tasks, runs,
    users (row counts in the mirror), schema_version, horizon (xid8 as int)."""
    from queries import mirror

    return mirror.mirror_freshness(con)
