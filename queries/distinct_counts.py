"""How a rollup on the mirror gets exact distinct runs and users (sql/distinct_counts.sql).

Bitmaps over the dense run_key/user_key are 3-4x faster than hashing; they are used while
the bitmaps of all groups fit in BITMAP_BUDGET_BYTES, beyond that (many groups x many
keys) the rollup falls back to count(DISTINCT key). Both are exact (docs/design.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from queries import sqltext
from queries.engine import Connection, engine_of, period_sql
from queries.filters import Filters, dimension_column

BITMAP_BUDGET_BYTES = 64 << 20
DAY_US = 86_400_000_000


class DistinctCounts(NamedTuple):
    """How to count: `bitmaps` (use the `*_bitmaps` query), the SQL expressions of `runs`
    and `active_users`, and the bound values they need."""

    bitmaps: bool
    expressions: dict[str, str]
    values: dict[str, Any]


def epoch_micros(moment: datetime) -> int:
    """Microseconds since 1970-01-01 UTC, exactly (no float on the way)."""
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _day_number(moment: datetime) -> int:
    return epoch_micros(moment) // DAY_US


def _periods(first_day: int, last_day: int, grain: str | None) -> int:
    """An upper bound of the number of `grain` periods the days [first_day, last_day] touch."""
    days = last_day - first_day + 1
    return {None: 1, "day": days, "week": days // 7 + 2, "month": days // 28 + 2}[grain]


def distinct_counts(
    con: Connection, filters: Filters, grain: str | None, by: str | None, counts: bool = True
) -> DistinctCounts:
    """How a rollup grouped by `grain` and `by` gets its exact distinct runs and users
    (counts=False: it does not, both are NULL)."""
    if not counts:
        return DistinctCounts(False, {"runs": "NULL::BIGINT", "active_users": "NULL::BIGINT"}, {})
    engine = engine_of(con)
    if engine == "postgres":
        expressions = {"runs": "count(DISTINCT run_id)", "active_users": "count(DISTINCT user_id)"}
        return DistinctCounts(False, expressions, {})
    first_day = _day_number(filters.start)
    last_day = _day_number(filters.end - timedelta(microseconds=1))
    values = {"first_day": first_day, "last_day": last_day}
    dimension = dimension_column(by) if by is not None else ""
    plan = sqltext.render(engine, "distinct_plan", period=period_sql(grain))
    run_bits, user_bits, n_values = con.execute(
        plan.duckdb, {**values, "dimension": dimension}
    ).fetchall()[0]
    groups = _periods(first_day, last_day, grain) * ((n_values + 1) if by is not None else 1)
    budget = BITMAP_BUDGET_BYTES
    bitmaps = False
    expressions = {"runs": "count(DISTINCT run_key)", "active_users": "count(DISTINCT user_key)"}
    if user_bits and groups * (user_bits // 8 + 16) <= budget:
        expressions["active_users"] = sqltext.render(engine, "distinct_users_bitmap").sql
        values["user_bits"] = int(user_bits)
        budget -= groups * (user_bits // 8 + 16)
    if run_bits and groups * (run_bits // 8 + 16) <= budget:
        bitmaps = True
        values["run_bits"] = int(run_bits)
    return DistinctCounts(bitmaps, expressions, values)
