"""Usage and the KPI row from the mirror's day totals (sql/day_totals.sql).

The mirror keeps, per day, run, user, provider and model, the sums of its tasks, and per
day the counts of each time to first token (queries/mirror/sql/day_totals.sql; exact after
every sync, docs/scale.md, "Day totals"). A window with no filter but its time, seen by a
viewer who sees every run, grouped by nothing or by provider, model, team or tag, reads
its whole days there (by tag: the tag totals, the same sums with the run's tags unnested)
and only the tasks of the part days at its ends: the same numbers as the rollups over
tasks (sql/usage.sql), distinct runs and users and the p95 exact.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pandas as pd

from queries import sqltext
from queries.distinct_counts import DAY_US, DistinctCounts, epoch_micros
from queries.engine import Connection, engine_of, fetch, filter_params, group_sql, period_sql
from queries.filters import Filters

# Tests turn it off to compare with the rollups over tasks.
ENABLED = True
# bench/day_totals.py turns it off to compare with unnesting the tags of day_totals' rows.
TAG_TOTALS = True
DIMENSIONS = (None, "provider", "model", "team", "tag")


def covers(con: Connection, filters: Filters, by: str | None) -> bool:
    """Whether the day totals answer a rollup of `filters` grouped by `by` on `con`."""
    if not ENABLED or engine_of(con) != "duckdb" or by not in DIMENSIONS:
        return False
    # Nothing but the window: every other field (list filters, the viewer's runs, any
    # filter added later) at its default.
    only_time = filters == Filters(start=filters.start, end=filters.end)
    return only_time and _kept(con)


def _kept(con: Connection) -> bool:
    """Whether the mirror has its day totals (one built before mirror schema version 8, not
    yet rebuilt by a sync, has not all of them)."""
    return bool(con.execute(sqltext.render("duckdb", "day_totals_kept").sql).fetchall()[0][0])


def whole_days(filters: Filters) -> dict[str, int]:
    """The day numbers [whole_from, whole_to) of the window's whole UTC days (empty when
    none: then every task of the window is read from tasks), and of its first and last
    days (first_day, last_day, as distinct_counts gives them)."""
    start, end = epoch_micros(filters.start), epoch_micros(filters.end)
    whole_from = -(-start // DAY_US)
    whole_to = max(end // DAY_US, whole_from)
    days = {"first_day": start // DAY_US, "last_day": (end - 1) // DAY_US}
    return days | {"whole_from": whole_from, "whole_to": whole_to}


def usage(
    con: Connection, filters: Filters, grain: str | None, by: str | None, how: DistinctCounts,
    *, exact: bool,
) -> pd.DataFrame:  # fmt: skip
    """usage.sql's `usage` from the day totals (check `covers` first)."""
    return fetch(
        con,
        "usage_days_bitmaps" if how.bitmaps else "usage_days",
        filter_params(filters) | whole_days(filters) | how.values,
        exact=exact,
        period=period_sql(grain),
        **_rows(con, by),
        **how.expressions,
    )


def _rows(con: Connection, by: str | None) -> dict[str, str]:
    """The `rows` and `group` of ranged_rows for a rollup grouped by `by`: by tag the tag
    totals, grouped by their column; else the day totals, grouped as over tasks."""
    if by == "tag" and TAG_TOTALS:
        rows = sqltext.render("duckdb", "tag_rows", tag=group_sql(con, by)).sql
        return {"rows": rows, "group": "tag"}
    return {"rows": sqltext.render("duckdb", "day_rows").sql, "group": group_sql(con, by)}


def kpi_row(con: Connection, filters: Filters, how: DistinctCounts, *, exact: bool) -> pd.Series:
    """usage.sql's `kpi_totals` row from the day totals (check `covers` first)."""
    row = fetch(
        con,
        "kpi_days_bitmaps" if how.bitmaps else "kpi_days",
        filter_params(filters) | whole_days(filters) | how.values,
        exact=exact,
        period=period_sql(None),
        **_rows(con, None),
        **how.expressions,
    ).iloc[0]
    p95 = _between(row.pop("ttft_lo"), row.pop("ttft_hi"), row.pop("ttft_rank"))
    return pd.concat([row, pd.Series({"p95_ttft_ms": p95})])


def _between(lo: float, hi: float, rank: float) -> float | None:
    """The value at `rank` between `lo` (at its floor) and `hi` (at its ceiling), as DuckDB's
    quantile_cont gives it: lo * (1 - d) + hi * d with one rounding of the sum (its build
    makes that a fused multiply-add; 0 of 1,500 random sets differed), None without values."""
    if pd.isna(rank) or rank < 0:
        return None
    lo, hi = float(lo), float(hi)
    if math.floor(rank) == math.ceil(rank):
        return lo
    d = rank - math.floor(rank)
    return float(Fraction(lo) * Fraction(1 - d) + Fraction(hi * d))
