"""The overview rollups on the lake, with four readers of its Delta tables, none of them
needing code of ours to find the rows: DuckDB, ClickHouse (chdb), Polars and deltalake.

Same contract as the mirror's functions of the same names in `queries` (columns, units,
sort order), over the time window of `filters` ([start, end) on created_at, UTC); the other
filters are not offered here. A test holds every reader to the mirror's numbers.

    engine = LakeDuckDB(store)      # or LakeClickHouse, LakePolars, LakeArrow; as_of=N
    frame = usage_over_time(engine, filters, "day", "model")

Each engine reads the `tasks` table as of one version (`as_of`, default the latest when
the engine is made; `engine.version` says which):

- LakeDuckDB: DuckDB over the Arrow dataset deltalake builds from the Delta log (DuckDB's
  `delta` extension is downloaded at run time, which this machine cannot do).
- LakeClickHouse: chdb's `deltaLakeLocal(path)` (a local lake; chdb reads only below its
  working directory) or `deltaLake(url)` (S3), ClickHouse's own Delta reader.
- LakePolars: `polars.scan_delta`, lazily filtered to the window, then Polars SQL.
  (chdb and polars are imported only by their engines: `pip install chdb polars`.)
- LakeArrow: `deltalake.DeltaTable.to_pyarrow_table` with the window as partition and row
  filters (deltalake's own reader), then the same Polars SQL over that Arrow table.

SQL: queries/lake/rollups.sql (DuckDB), rollups_clickhouse.sql, rollups_polars.sql.

`score_rollup` (queries.quality.score_rollup on the lake's `tasks` and `scores`) runs on
LakeDuckDB, which reads the `scores` table as of its latest version when first asked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow.compute as pc

from queries import quality, sqltext
from queries.filters import Filters
from queries.lake import tables
from queries.lake.read import LakeEmpty, attach_lake
from queries.lake.store import LakeStore

GROUPS = ("model", "team", "provider")
# The columns the rollups read (LakeArrow reads only these).
COLUMNS = (
    "month",
    "created_at",
    "run_id",
    "user_id",
    "model",
    "team",
    "provider",
    "status",
    "cost",
    "tokens_input",
    "tokens_output",
    "tokens_total",
    "tokens_cached_input",
    "tokens_cache_write",
    "time_to_first_token",
    "total_time",
)
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
    "polars": {  # created_at is a UTC timestamp there
        None: "CAST(NULL AS DATE)",
        "day": "CAST(created_at AS DATE)",
        "week": "CAST(date_trunc('week', created_at) AS DATE)",
    },
}
_NO_GROUP = {
    "duckdb": "NULL::VARCHAR",
    "clickhouse": "CAST(NULL AS Nullable(String))",
    "polars": "CAST(NULL AS VARCHAR)",
}


def _tasks(store: LakeStore, as_of: int | None):
    table = tables.open_table(store, "tasks", as_of)
    if table is None:
        raise LakeEmpty(f"no lake table tasks at {store.url} yet: run `ai-runs lake sync`")
    return table


class LakeDuckDB:
    """DuckDB (an in-memory database of its own) over the lake's tasks as of `as_of`."""

    dialect = "duckdb"

    def __init__(self, store: LakeStore, as_of: int | None = None, threads: int = 2) -> None:
        self.con = duckdb.connect(config={"threads": threads})
        self.con.execute("SET TimeZone = 'UTC'")
        as_of_versions = None if as_of is None else {"tasks": as_of}
        self.version = attach_lake(self.con, store, ("tasks",), as_of_versions)["tasks"]
        self.store = store
        self.scores_version: int | None = None

    def run(self, name: str, params: dict[str, Any], **expressions: str) -> pd.DataFrame:
        query = sqltext.render("lake", name, **expressions)
        values = {key: params[key] for key in query.params}
        return self.con.sql(query.duckdb, params=values).df()

    def attach_scores(self) -> int:
        """Read the lake's scores table too (its latest version, once); the version."""
        if self.scores_version is None:
            self.scores_version = attach_lake(self.con, self.store, ("scores",))["scores"]
        return self.scores_version


class LakeClickHouse:
    """ClickHouse in-process (chdb) over the lake's tasks as of `as_of`, read by
    ClickHouse's own Delta reader. A local lake must lie below the working directory
    (chdb refuses other paths); an S3 lake is read over its endpoint with the AWS_*
    credentials."""

    dialect = "clickhouse"

    def __init__(self, store: LakeStore, as_of: int | None = None) -> None:
        from chdb import session

        self.version = _tasks(store, as_of).version()
        location = tables.uri(store, "tasks")
        if store.local:
            if Path.cwd() not in (Path(location), *Path(location).parents):
                raise ValueError(
                    f"chdb reads a local Delta table only below its working directory; "
                    f"{location} is not below {Path.cwd()}: run from the lake's folder"
                )
            self.source = "deltaLakeLocal({location:String})"
            self.location = {"location": location}
        else:
            endpoint = (store.endpoint or "https://s3.amazonaws.com").rstrip("/")
            self.source = "deltaLake({location:String}, {key:String}, {secret:String})"
            self.location = {
                "location": f"{endpoint}/{store.root}/{tables.TABLE_PATHS['tasks']}",
                "key": os.environ.get("AWS_ACCESS_KEY_ID", ""),
                "secret": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
            }
        self.session = session.Session()

    def run(self, name: str, params: dict[str, Any], **expressions: str) -> pd.DataFrame:
        query = sqltext.render("lake", "ch_" + name, source=self.source, **expressions)
        values = {**params, **self.location, "version": self.version}
        for key in ("start", "end"):
            values[key] = params[key].strftime("%Y-%m-%d %H:%M:%S.%f")
        return self.session.query(query.sql, "DataFrame", params=values)


class LakePolars:
    """Polars over the lake's tasks as of `as_of` (`scan_delta`), filtered lazily to the
    window before the rollup's SQL runs."""

    dialect = "polars"

    def __init__(self, store: LakeStore, as_of: int | None = None) -> None:
        import polars as pl

        self.version = _tasks(store, as_of).version()
        self.frame = pl.scan_delta(
            tables.uri(store, "tasks"),
            version=self.version,
            storage_options=store.storage_options or None,
        )

    def window(self, params: dict[str, Any]) -> Any:
        """The tasks of the window (partitions first, then created_at): a LazyFrame."""
        import polars as pl

        first, last = pl.lit(params["first_month"]), pl.lit(params["last_month"])
        month = pl.col("month").is_between(first, last)
        moment = (pl.col("created_at") >= params["start"]) & (pl.col("created_at") < params["end"])
        return self.frame.filter(month & moment)

    def run(self, name: str, params: dict[str, Any], **expressions: str) -> pd.DataFrame:
        import polars as pl

        query = sqltext.render("lake", "pl_" + name, **expressions)
        context = pl.SQLContext(tasks=self.window(params))
        return context.execute(query.sql).collect().to_pandas()


class LakeArrow(LakePolars):
    """deltalake itself: the window's rows of the lake's tasks as of `as_of` read to Arrow
    by `DeltaTable.to_pyarrow_table` (partition and row filters), then the Polars SQL."""

    def __init__(self, store: LakeStore, as_of: int | None = None) -> None:
        self.table = _tasks(store, as_of)
        self.version = self.table.version()

    def window(self, params: dict[str, Any]) -> Any:
        import polars as pl

        month = (pc.field("month") >= params["first_month"]) & (
            pc.field("month") <= params["last_month"]
        )
        moment = (pc.field("created_at") >= params["start"]) & (
            pc.field("created_at") < params["end"]
        )
        arrow = self.table.to_pyarrow_table(columns=list(COLUMNS), filters=month & moment)
        return pl.from_arrow(arrow).lazy()


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


def score_rollup(engine: Any, filters: Filters, by: str | None, grain: str | None) -> pd.DataFrame:
    """queries.quality.score_rollup on the lake (LakeDuckDB; grain day or week; by model,
    team, provider or evaluator): the same columns, 95% intervals included."""
    if engine.dialect != "duckdb":
        raise ValueError("the score rollup on the lake runs on LakeDuckDB")
    engine.attach_scores()
    by_evaluator = by == quality.EVALUATOR
    expressions = _expressions(engine, grain, None if by_evaluator else by)
    expressions["score_group"] = "s.evaluator" if by_evaluator else "t.grp"
    frame = _shape(engine.run("lake_score_rollup", _params(filters), **expressions), grain, by)
    frame = _ints(frame, "tasks", "scores", "scored_tasks")
    for column in ("cost", "mean", "sd"):
        frame[column] = frame[column].astype("float64")
    return quality.with_intervals(frame)
