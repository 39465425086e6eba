"""Latency rollups: percentiles, histogram, output speed (times in milliseconds).

SQL: sql/latency.sql on the DuckDB mirror; latency_percentiles also has its Postgres twin
in sql/postgres/latency.sql (`con` decides the engine, queries/engine.py).
"""

from __future__ import annotations

import pandas as pd

from queries.engine import Connection, fetch, filter_params, finish, group_sql, period_sql
from queries.filters import Filters

LATENCY_METRICS = {"ttft": "time_to_first_token", "total_time": "total_time"}


def _latency_metric(metric: str) -> str:
    try:
        return LATENCY_METRICS[metric]
    except KeyError:
        raise ValueError(
            f"metric {metric!r} is not allowed; choose one of {sorted(LATENCY_METRICS)}"
        ) from None


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
    frame = fetch(
        con,
        "latency_percentiles",
        filter_params(filters),
        period=period_sql(grain),
        group=group_sql(con, by),
        metric=_latency_metric(metric),
    )
    frame = finish(frame, grain=grain, by=by)
    frame["tasks"] = frame["tasks"].astype("int64")
    for column in ("p50", "p90", "p95", "p99"):
        frame[column] = frame[column].astype("float64")
    return frame


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
    if not 1 <= int(bins) <= 1000:
        raise ValueError(f"bins must be between 1 and 1000, got {bins}")
    bins = int(bins)
    counts = fetch(
        con,
        "latency_histogram_counts",
        {**filter_params(filters), "bins": bins},
        group=group_sql(con, by),
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


def tokens_per_second(con: Connection, filters: Filters, by: str = "model") -> pd.DataFrame:
    """Output speed: tokens_output / ((total_time - time_to_first_token) / 1000) per task.

    Over completed tasks with tokens_output > 0 and total_time > time_to_first_token.
    Columns: group, tasks, p50, p90, mean (tokens per second, floats). Sorted by tasks desc.
    """
    frame = fetch(con, "tokens_per_second", filter_params(filters), group=group_sql(con, by))
    if by is None:
        frame = frame.drop(columns=["group"])
    frame["tasks"] = frame["tasks"].astype("int64")
    return frame
