"""Score rollups: quality next to cost (docs/quality.md).

SQL: sql/quality.sql on the DuckDB mirror and its Postgres twin sql/postgres/quality.sql
(`con` decides the engine, queries/engine.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from queries.engine import Connection, fetch, filter_params, finish, group_sql, period_sql
from queries.filters import Filters


def score_rollup(
    con: Connection,
    filters: Filters,
    by: str | None = None,
    grain: str | None = None,
    names: Sequence[str] = (),
) -> pd.DataFrame:
    """Scores of the tasks the filters keep, per period, group and score name, next to cost.

    Columns: period (only when `grain`), group (only when `by`), name (the score's name),
    tasks (every task of the period and group, scored or not), cost (USD of those tasks),
    scores (numeric and boolean scores of them: categorical ones are not averaged),
    scored_tasks (tasks with at least one such score), mean (the scores' mean value: for
    a boolean score such as thumbs, the share of true, 0..1). Only period/group/name
    combinations with at least one score appear. names: only these score names (empty:
    all). Sorted by period, group, name.
    """
    frame = fetch(
        con,
        "score_rollup",
        {**filter_params(filters), "names": [str(name) for name in names]},
        period=period_sql(grain),
        group=group_sql(con, by),
    )
    frame = finish(frame, grain=grain, by=by)
    for column in ("tasks", "scores", "scored_tasks"):
        frame[column] = frame[column].astype("int64")
    frame["mean"] = frame["mean"].astype("float64")
    frame["cost"] = frame["cost"].astype("float64")
    return frame.sort_values(
        [c for c in ("period", "group", "name") if c in frame.columns],
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)
