"""Score rollups: quality next to cost (docs/quality.md).

SQL: sql/quality.sql on the DuckDB mirror and its Postgres twin sql/postgres/quality.sql
(`con` decides the engine, queries/engine.py). Each mean comes with a 95% confidence
interval, computed here from what both engines return (count, mean, standard deviation),
so the two agree: Wilson's score interval for a boolean score (a share of true), the
Student t interval for a numeric one (docs/quality.md, "The statistics").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from queries.engine import Connection, fetch, filter_params, finish, group_sql, period_sql
from queries.filters import Filters

EVALUATOR = "evaluator"  # a group of scores, not of tasks: see score_rollup
Z_975 = 1.959963984540054  # the standard normal's 97.5% quantile
# Student t's 97.5% quantile for 1..30 degrees of freedom; beyond, the Cornish-Fisher
# expansion below is within 1e-6 of it.
_T_975 = (
    12.7062047, 4.3026527, 3.1824463, 2.7764451, 2.5705818, 2.4469119, 2.3646243,
    2.3060041, 2.2621572, 2.2281389, 2.2009852, 2.1788128, 2.1603687, 2.1447867,
    2.1314495, 2.1199053, 2.1098156, 2.1009220, 2.0930241, 2.0859634, 2.0796138,
    2.0738731, 2.0686576, 2.0638986, 2.0595386, 2.0555294, 2.0518305, 2.0484071,
    2.0452296, 2.0422725,
)  # fmt: skip


def score_rollup(
    con: Connection,
    filters: Filters,
    by: str | None = None,
    grain: str | None = None,
    names: Sequence[str] = (),
) -> pd.DataFrame:
    """Scores of the tasks the filters keep, per period, group and score name, next to cost.

    Columns: period (only when `grain`), group (only when `by`), name (the score's name),
    data_type (numeric or boolean), tasks (every task of the period and group, scored or
    not), cost (USD of those tasks), scores (numeric and boolean scores of them:
    categorical ones are not averaged), scored_tasks (tasks with at least one such score),
    mean (the scores' mean value: for a boolean score such as thumbs, the share of true,
    0..1), ci_low and ci_high (its 95% confidence interval; NaN for a numeric mean of one
    score). by: any dimension of the sidebar, or "evaluator" (the scores' evaluator, ''
    for a person's; tasks and cost are then those of the whole period). Only
    period/group/name combinations with at least one score appear. names: only these
    score names (empty: all). Sorted by period, group, name.
    """
    frame = fetch(
        con,
        "score_rollup",
        {**filter_params(filters), "names": [str(name) for name in names]},
        period=period_sql(grain),
        group=group_sql(con, None if by == EVALUATOR else by),
        score_group="evaluator" if by == EVALUATOR else "grp",
        first_score="first_in_evaluator" if by == EVALUATOR else "first_in_name",
    )
    frame = finish(frame, grain=grain, by=by)
    for column in ("tasks", "scores", "scored_tasks"):
        frame[column] = frame[column].astype("int64")
    for column in ("mean", "cost", "sd"):
        frame[column] = frame[column].astype("float64")
    return with_intervals(frame)


def with_intervals(frame: pd.DataFrame) -> pd.DataFrame:
    """A score rollup's frame (columns data_type, mean, sd, scores) with ci_low and ci_high
    in place of sd, sorted by period, group, name (the lake's rollup uses it too)."""
    bounds = [
        interval(row.data_type, row.mean, row.sd, row.scores)
        for row in frame.itertuples(index=False)
    ]
    frame["ci_low"] = pd.Series([low for low, _ in bounds], index=frame.index, dtype="float64")
    frame["ci_high"] = pd.Series([high for _, high in bounds], index=frame.index, dtype="float64")
    frame = frame.drop(columns=["sd"])
    return frame.sort_values(
        [c for c in ("period", "group", "name") if c in frame.columns],
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)


def interval(data_type: str, mean: float, sd: float, n: int) -> tuple[float, float]:
    """The 95% confidence interval of a mean of `n` scores: Wilson's for a boolean score
    (mean = the share of true), Student t's for a numeric one (sd: the sample standard
    deviation; (NaN, NaN) when n < 2)."""
    if data_type == "boolean":
        return wilson_interval(mean, n)
    return t_interval(mean, sd, n)


def wilson_interval(share: float, n: int, z: float = Z_975) -> tuple[float, float]:
    """Wilson's score interval for a proportion `share` of `n` trials (stays in [0, 1],
    sensible at 0% and 100% and for small n, unlike mean +- z * standard error)."""
    if n <= 0:
        return math.nan, math.nan
    z2 = z * z
    centre = (share + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(share * (1 - share) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def t_interval(mean: float, sd: float, n: int) -> tuple[float, float]:
    """mean +- t(0.975, n - 1) * sd / sqrt(n); (NaN, NaN) when n < 2 (no spread to go by)."""
    if n < 2 or sd is None or math.isnan(sd):
        return math.nan, math.nan
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


def t_quantile_975(df: int) -> float:
    """Student t's 97.5% quantile with `df` degrees of freedom (1.96 as df grows)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {df}")
    if df <= len(_T_975):
        return _T_975[df - 1]
    z = Z_975
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
        + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * df**4)
    )
