"""Benchmark: usage by tag as the mirror computes it today (queries/sql/usage.sql: every
task's tags unnested, then grouped) against summing per tag list first and unnesting only
the lists (sql/tag_rollups.sql), in the same run (issue 26, docs/scale.md).

    python bench/tag_rollups.py --mirror COPY.duckdb [--days 90] [--runs 5]

COPY is a copy of a mirror file (for example bench/queries.py's analytics.duckdb), opened
read-only. For each case: the median of --runs warm calls of each way, taken in turns so
both see the same load, their ratio, and whether both give the same numbers (Decimal
costs compared exactly). Both ways run the same distinct-count plan
(queries.distinct_counts) and return a DataFrame.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import queries as q  # noqa: E402
from ingest.store import sqlfiles  # noqa: E402
from queries import Filters, distinct_counts, sqltext  # noqa: E402
from queries.engine import filter_params, period_sql  # noqa: E402

_SQL = sqlfiles.load(Path(__file__).parent / "sql")
# The unrestricted viewer's fill of the access fragments (queries/access.py).
_EVERY_RUN = {
    "engine.visible_run_filter": "TRUE",
    "engine.visible_run_row_filter": "TRUE",
    "engine.visible_user_filter": "TRUE",
}


def by_tag_list(con, filters: Filters, grain: str, counts: bool) -> pd.DataFrame:
    """usage_over_time(grain, "tag") summed per tag list first (sql/tag_rollups.sql)."""
    how = distinct_counts.distinct_counts(con, filters, grain, "tag", counts)
    params = filter_params(filters)
    if counts:
        if "user_bits" not in how.values:
            raise SystemExit("the users' bitmaps are over budget here; nothing to compare")
        runs, users = "count(DISTINCT run_key)", "bitstring_agg(user_key, 1, :user_bits)"
        params["user_bits"] = how.values["user_bits"]
    else:
        runs, users = "NULL::BIGINT", "NULL::BIT"
    task_filter = sqltext.render("duckdb", "task_filter", **_EVERY_RUN).sql
    query = sqlfiles.render(
        _SQL, "usage_by_tag_list", period=period_sql(grain), task_filter=task_filter,
        runs=runs, users=users,
    )  # fmt: skip
    values = {k: params[k] for k in query.params}
    frame = con.sql(query.duckdb, params=values).to_arrow_table().to_pandas()  # Decimal cost
    frame["period"] = frame["period"].astype("datetime64[us]")
    if not counts:
        frame = frame.drop(columns=["runs", "active_users"])
    return frame


def same_numbers(today: pd.DataFrame, candidate: pd.DataFrame) -> bool:
    """Both frames hold the same rows, columns and values (NULL = NaN = None)."""
    if list(today.columns) != list(candidate.columns) or len(today) != len(candidate):
        return False
    for column in today.columns:
        left = [None if pd.isna(v) else v for v in today[column].tolist()]
        right = [None if pd.isna(v) else v for v in candidate[column].tolist()]
        if left != right:
            return False
    return True


def in_turns(ways: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Median wall time in ms of each way, called in turns `runs` times after one warm-up."""
    for way in ways.values():
        way()
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(runs):
        for name, way in ways.items():
            started = time.perf_counter()
            way()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mirror", type=Path, required=True, help="a copy of a mirror file")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    con = q.open_mirror(args.mirror, read_only=True)
    tasks = con.execute("SELECT count(*) FROM tasks").fetchall()[0][0]
    end = con.execute("SELECT max(created_at) FROM tasks").fetchall()[0][0]
    end = end.astimezone(UTC) + timedelta(microseconds=1)
    every = Filters(start=end - timedelta(days=args.days + 1), end=end)
    load = os.getloadavg()
    print(f"{tasks:,} tasks; load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} "
          f"on {os.cpu_count()} cores; median of {args.runs} warm runs in turns")  # fmt: skip
    print()
    print("| usage by tag, exact | today (ms) | per tag list first (ms) | ratio | same |")
    print("|---|---:|---:|---:|---|")
    for grain in ("week", "day"):
        for counts in (True, False):
            today = lambda g=grain, c=counts: q.usage_over_time(  # noqa: E731
                con, every, g, "tag", exact=True, counts=c
            )
            candidate = lambda g=grain, c=counts: by_tag_list(con, every, g, c)  # noqa: E731
            same = same_numbers(today(), candidate())
            ms = in_turns({"today": today, "lists": candidate}, args.runs)
            label = f"{grain} x tag, {args.days} d" + ("" if counts else ", without counts")
            print(f"| {label} | {ms['today']:,.0f} | {ms['lists']:,.0f} | "
                  f"{ms['lists'] / ms['today']:.2f} | {same} |", flush=True)  # fmt: skip
    con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
