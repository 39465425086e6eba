"""The overview rollups on the lake, on two engines: DuckDB and ClickHouse (chdb).

Same contract as the mirror's functions of the same names in `queries` (columns, units,
sort order), over the time window of `filters` ([start, end) on created_at, UTC); the other
filters are not offered here. A test holds both engines to the mirror's numbers.

    engine = LakeDuckDB(store)      # or LakeClickHouse(store): chdb, ClickHouse in-process
    frame = usage_over_time(engine, filters, "day", "model")

SQL: queries/lake/rollups.sql (DuckDB) and rollups_clickhouse.sql (its twin).
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from queries import sqltext
from queries.filters import Filters
from queries.lake.read import attach_lake, current_manifest
from queries.lake.store import LakeStore

GROUPS = ("model", "team", "provider")
METRICS = {"ttft": "time_to_first_token", "total_time": "total_time"}
_PERIODS = {
    "duckdb": {
        None: "NULL::DATE",
        "day": "CAST(created_at AT TIME ZONE 'UTC' AS DATE)",
        "week": "CAST(date_trunc('week', created_at AT TIME ZONE 'UTC') AS DATE)",
    },
    "clickhouse": {
        None: "CAST(NULL AS Nullable(Date))",
        "day": "toDate(created_at, 'UTC')",
        "week": "toMonday(created_at, 'UTC')",
    },
}
_NO_GROUP = {"duckdb": "NULL::VARCHAR", "clickhouse": "CAST(NULL AS Nullable(String))"}


class LakeDuckDB:
    """DuckDB over the lake's current manifest (an in-memory database of its own)."""

    dialect = "duckdb"

    def __init__(self, store: LakeStore, threads: int = 2) -> None:
        self.con = duckdb.connect(config={"threads": threads})
        self.con.execute("SET TimeZone = 'UTC'")
        attach_lake(self.con, store, ("tasks",))

    def run(self, name: str, params: dict[str, Any], **expressions: str) -> pd.DataFrame:
        query = sqltext.render("lake", name, **expressions)
        values = {key: params[key] for key in query.params}
        return self.con.sql(query.duckdb, params=values).df()


class LakeClickHouse:
    """ClickHouse (chdb, in-process) over the lake's current manifest: it reads exactly
    the Parquet files the manifest lists. Local lakes only (docs/lake.md shows the s3()
    form for a bucket)."""

    dialect = "clickhouse"

    def __init__(self, store: LakeStore) -> None:
        from chdb import session

        if not store.local:
            raise ValueError("LakeClickHouse reads a local lake; see docs/lake.md for s3()")
        files = current_manifest(store).table_files("tasks")
        if not files:
            raise ValueError(f"lake at {store.url} has no tasks")
        # One pattern naming every file: root/{a.parquet,b.parquet,...} (ClickHouse globs).
        self.files = f"{store.root}/{{{','.join(files)}}}"
        self.session = session.Session()

    def run(self, name: str, params: dict[str, Any], **expressions: str) -> pd.DataFrame:
        query = sqltext.render("lake", "ch_" + name, **expressions)
        values = {**params, "files": self.files}
        for key in ("start", "end"):
            values[key] = params[key].strftime("%Y-%m-%d %H:%M:%S.%f")
        return self.session.query(query.sql, "DataFrame", params=values)


def _params(filters: Filters) -> dict[str, Any]:
    last = filters.end - pd.Timedelta(microseconds=1)
    return {
        "start": filters.start,
        "end": filters.end,
        "first_month": filters.start.strftime("%Y-%m"),
        "last_month": last.strftime("%Y-%m"),
    }


def _expressions(engine: Any, grain: str | None, by: str | None) -> dict[str, str]:
    if by is not None and by not in GROUPS:
        raise ValueError(f"by {by!r} is not offered on the lake; choose one of {list(GROUPS)}")
    if grain not in _PERIODS[engine.dialect]:
        raise ValueError(f"grain {grain!r} is not offered on the lake; choose day or week")
    return {
        "period": _PERIODS[engine.dialect][grain],
        "group": by if by is not None else _NO_GROUP[engine.dialect],
    }


def _shape(frame: pd.DataFrame, grain: str | None, by: str | None) -> pd.DataFrame:
    """Keep period/group only when asked for, types as the mirror's, sorted the same way."""
    keys = []
    if grain is None:
        frame = frame.drop(columns=["period"])
    else:
        frame["period"] = pd.to_datetime(frame["period"]).astype("datetime64[us]")
        keys.append("period")
    if by is None:
        frame = frame.drop(columns=["group"])
    else:
        frame["group"] = frame["group"].astype(object).where(frame["group"].notna(), None)
        keys.append("group")
    if keys and len(frame):
        frame = frame.sort_values(keys, na_position="last", kind="stable")
    return frame.reset_index(drop=True)


def usage_over_time(engine: Any, filters: Filters, grain: str, by: str | None) -> pd.DataFrame:
    """queries.usage_over_time on the lake (grain day or week; by model, team, provider)."""
    frame = engine.run("lake_usage", _params(filters), **_expressions(engine, grain, by))
    return _ints(
        _shape(frame, grain, by),
        "tokens_input",
        "tokens_output",
        "tokens_total",
        "tasks",
        "runs",
        "active_users",
    )


def usage_by(engine: Any, filters: Filters, by: str) -> pd.DataFrame:
    """queries.usage_by on the lake: sorted by cost descending, then group."""
    frame = usage_over_time(engine, filters, None, by)
    order = frame.sort_values(["cost", "group"], ascending=[False, True], na_position="last")
    return order.reset_index(drop=True)


def kpis(engine: Any, filters: Filters) -> pd.DataFrame:
    """queries.kpis on the lake: metric, value, previous, change (floats; None change)."""
    now, before = _kpi_values(engine, filters), _kpi_values(engine, filters.previous_period())
    rows = []
    for metric in now:
        value, previous = now[metric], before[metric]
        bad = pd.isna(previous) or previous == 0 or pd.isna(value)
        change = None if bad else (value - previous) / previous
        rows.append({"metric": metric, "value": value, "previous": previous, "change": change})
    frame = pd.DataFrame(rows, columns=["metric", "value", "previous", "change"])
    frame["change"] = pd.Series([row["change"] for row in rows], dtype=object)
    return frame


def _kpi_values(engine: Any, filters: Filters) -> dict[str, float]:
    row = engine.run("lake_kpi_totals", _params(filters)).iloc[0]
    finished = int(row["finished"])
    p95 = row["p95_ttft_ms"]
    return {
        "spend": float(row["spend"]) if not pd.isna(row["spend"]) else 0.0,
        "tasks": float(row["tasks"]),
        "runs": float(row["runs"]),
        "active_users": float(row["active_users"]),
        "tokens": float(row["tokens"]),
        "p95_ttft_ms": float("nan") if pd.isna(p95) or not finished else float(p95),
        "failure_rate": int(row["failed"]) / finished if finished else float("nan"),
    }


def latency_percentiles(
    engine: Any, filters: Filters, metric: str, by: str | None, grain: str | None
) -> pd.DataFrame:
    """queries.latency_percentiles on the lake: tasks, p50, p90, p95, p99 (ms)."""
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r} is not allowed; choose one of {sorted(METRICS)}")
    expressions = _expressions(engine, grain, by) | {"metric": METRICS[metric]}
    frame = _shape(
        engine.run("lake_latency_percentiles", _params(filters), **expressions), grain, by
    )
    for column in ("p50", "p90", "p95", "p99"):
        frame[column] = frame[column].astype("float64")
    return _ints(frame, "tasks")


def failure_rates(engine: Any, filters: Filters, by: str | None, grain: str | None) -> pd.DataFrame:
    """queries.failure_rates on the lake: tasks, failed, cancelled, failure_rate,
    cancel_rate (fractions of finished tasks)."""
    frame = engine.run("lake_failure_counts", _params(filters), **_expressions(engine, grain, by))
    frame = _ints(_shape(frame, grain, by), "tasks", "failed", "cancelled")
    frame["failure_rate"] = frame["failed"] / frame["tasks"]
    frame["cancel_rate"] = frame["cancelled"] / frame["tasks"]
    return frame


def _ints(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for column in columns:
        frame[column] = frame[column].astype("int64")
    return frame
