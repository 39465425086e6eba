"""Running a named rollup query on either engine and shaping its result (docs/design.md).

`con` decides the engine: a DuckDB connection runs `sql/*.sql` on the mirror, a psycopg
connection runs the twins in `sql/postgres/*.sql` on the system of record. The global
filters are the `task_filter` fragment of `sql/engine.sql` (and its twin); the
expressions a rollup fills in (`period`, `group`, `metric`) come from the allow-lists
below, never from user text. Every value is a bound parameter.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from psycopg.rows import tuple_row

from queries import access, sqltext
from queries.filters import GRAINS, Filters, dimension_column

Connection = Any  # duckdb.DuckDBPyConnection, or psycopg.Connection for the Postgres twins

# Allow-listed SQL expressions, per engine, keyed by dimension column / grain.
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


def engine_of(con: Connection) -> str:
    """ "duckdb" for a DuckDB connection, "postgres" for anything else (psycopg)."""
    return "duckdb" if isinstance(con, duckdb.DuckDBPyConnection) else "postgres"


def group_sql(con: Connection, by: str | None) -> str:
    """SQL expression, on `con`'s engine, for dimension `by` (None: no grouping); ValueError
    if not allowed."""
    if by is None:
        return "NULL::TEXT"
    column = dimension_column(by)
    return _GROUP_SQL[engine_of(con)].get(column, column)


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
        "variants": list(filters.variants),
        "restricted": filters.visible_runs is not None,
        "visible_runs": list(filters.visible_runs or ()),
    }


def fetch(
    con: Connection,
    name: str,
    params: dict[str, Any],
    *,
    exact: bool = False,
    **expressions: str,
) -> pd.DataFrame:
    """Run query `name` on `con`'s engine; a DataFrame with ids as str, DECIMAL as float64
    (or Decimal when `exact`), timestamps as UTC datetimes, dates as datetime64."""
    engine = engine_of(con)
    if engine == "duckdb":
        expressions = {**access.restriction(con, params), **expressions}
    query = sqltext.render(engine, name, **expressions)
    values = {key: params[key] for key in query.params}
    if engine == "duckdb":
        table = con.sql(query.duckdb, params=values).to_arrow_table()
        return _arrow_frame(table, exact)
    with con.cursor(row_factory=tuple_row) as cur:
        cur.execute(query.psycopg, values)
        columns = [column.name for column in cur.description]
        frame = pd.DataFrame(cur.fetchall(), columns=columns)
    return _python_frame(frame, exact)


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


def finish(frame: pd.DataFrame, *, grain: str | None, by: str | None) -> pd.DataFrame:
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
