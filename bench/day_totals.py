"""Benchmark: the KPI row and usage rollups from the mirror's day totals against the same
rollups over tasks, in one run (issue 26, item 0; docs/scale.md, "Day totals").

    python bench/day_totals.py [--tasks 1000000] [--dir PATH] [--reuse] [--rounds 5]

1. Prepares the demo database like bench/queries.py (--reuse keeps one) and builds
   (--build: again) or brings up to date its mirror, PATH/analytics.duckdb; a build prints
   the time of its day totals step against the whole build. Then times that step alone
   and its tag totals alone (wall and CPU), rolled back; a sync's compaction of the day
   totals as they are and with 20% more rows appended (DAY_TOTALS_COMPACT_SHARE), rolled
   back; and the self-check's look at them.
2. For each rollup, --rounds rounds in alternating order: over tasks (day totals turned
   off, the rollup as it was) and from the day totals; by tag also from the day totals
   with their tags unnested, as before the tag totals ("unnested"). Prints the medians of
   wall and CPU time (this process, every DuckDB thread) and the ratios of the first two,
   and checks they all give the same frame.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_support import bench_queries, demo_database_arguments, demo_folder  # noqa: E402

import queries as q  # noqa: E402
from ingest.store import sqlfiles  # noqa: E402
from queries import Filters, day_totals  # noqa: E402
from queries.mirror import sync as mirror_sync  # noqa: E402

# The names (before the comma) of bench/queries.py's overview rollups the day totals answer.
COVERED = ("KPI row", "spend/tokens/tasks by day x model", "usage by team", "usage by week x tag")


def rollups(end: datetime, days: int) -> list[tuple[str, Callable]]:
    """The rollups the day totals answer, as bench/queries.py times them."""
    bench = bench_queries()
    covered = [
        entry for entry in bench.overview_rollups(end, days) if entry[0].split(",")[0] in COVERED
    ]
    every = Filters(start=end - timedelta(days=days + 1), end=end)
    without = bench.call(q.usage_over_time, every, "week", "tag", counts=False)
    return [*covered, (f"usage by week x tag without distinct counts, {days} d", without)]


class StepTimes(logging.Handler):
    """Collects the sync's DEBUG step timings ("sync step NAME: N ms ...") in ms."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.steps: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("sync step "):
            name, ms = message[len("sync step ") :].rsplit(": ", 1)
            self.steps[name] = self.steps.get(name, 0.0) + float(ms.split()[0])


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """Wall and CPU ms of one call, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000, result


def compare(
    con, fn: Callable, rounds: int, ways: tuple[str, ...]
) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) ms of each of `ways`: over tasks ("tasks"), from the day totals
    ("days"), from the day totals with their tags unnested, as before the tag totals
    ("unnest"); in turn, the order reversed every other round."""
    runs: dict[str, list[tuple[float, float]]] = {way: [] for way in ways}
    frames = {}
    for n in range(rounds + 1):
        for way in ways if n % 2 == 0 else ways[::-1]:
            day_totals.ENABLED = way != "tasks"
            day_totals.TAG_TOTALS = way != "unnest"
            wall, cpu, frames[way] = timed(lambda: fn(con))
            if n:  # the first round warms up
                runs[way].append((wall, cpu))
    day_totals.ENABLED = day_totals.TAG_TOTALS = True
    for way in ways:
        pd.testing.assert_frame_equal(frames[way], frames["tasks"], check_exact=True)
    return {
        way: (statistics.median(w for w, _ in times), statistics.median(c for _, c in times))
        for way, times in runs.items()
    }


def write_day_totals_again(con, name: str = "all_day_totals") -> None:
    """What the full build's day totals step does (`name`: all_day_tag_totals, its tag
    totals only), in a transaction rolled back."""
    con.execute("BEGIN")
    try:
        con.execute("DELETE FROM day_tag_totals")
        if name == "all_day_totals":
            con.execute("DELETE FROM day_totals; DELETE FROM day_ttft")
        con.execute(sqlfiles.render(mirror_sync.duck_sql(), name).sql)
    finally:
        con.execute("ROLLBACK")


# Rows as the syncs append them, without changing any sum: a zero row for a share of the
# keys, picked at random (as scattered changes pick them).
_SPLIT = """INSERT INTO day_totals
SELECT day, month_day, run_key, user_key, provider, model, team, tags,
       0, 0, 0, 0, 0, 0, 0, 0, 0, 0
  FROM day_totals USING SAMPLE {share}% (bernoulli)"""


def compact(con, split: float) -> tuple[int, int, float, float]:
    """What a sync's compaction does (compact_day_totals), in a transaction rolled back,
    after `split` x the rows of day_totals were appended as zero rows of random keys: the
    rows of day_totals and day_ttft before and after it, its wall and CPU ms."""
    count = "SELECT (SELECT count(*) FROM day_totals) + (SELECT count(*) FROM day_ttft)"
    con.execute("BEGIN")
    try:
        con.execute(_SPLIT.format(share=split * 100))
        before = con.execute(count).fetchall()[0][0]
        query = sqlfiles.render(mirror_sync.duck_sql(), "compact_day_totals").sql
        wall, cpu, _ = timed(lambda: con.execute(query))
        return before, con.execute(count).fetchall()[0][0], wall, cpu
    finally:
        con.execute("ROLLBACK")


def verify(con) -> tuple[float, float]:
    """Wall and CPU ms of the self-check's look at the day totals (verify_day_totals)."""
    query = mirror_sync.duck_sql()["verify_day_totals"].sql
    wall, cpu, days = timed(lambda: con.execute(query).fetchall()[0][0])
    assert days == 0, days
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    demo_database_arguments(parser, tasks=1_000_000)
    parser.add_argument("--rounds", type=int, default=5, help="timed pairs per rollup")
    parser.add_argument("--build", action="store_true", help="build the mirror again first")
    args = parser.parse_args(argv)
    bench = bench_queries()
    folder = demo_folder(args)
    url = bench.prepare(folder, args.tasks, args.days, args.reuse)
    mirror_sync.log.setLevel(logging.DEBUG)
    steps = StepTimes()
    mirror_sync.log.addHandler(steps)
    cpu = time.process_time()
    synced = q.sync_mirror(url, folder / "analytics.duckdb", full=args.build, verify=False)
    cpu = time.process_time() - cpu
    mirror_sync.log.removeHandler(steps)
    what = "built" if synced.full else "brought up to date"
    print(f"mirror {what} in {synced.seconds:.1f}s ({cpu:.1f}s CPU in this process); its day "
          f"totals step {steps.steps.get('day totals', 0.0) / 1000:.2f}s, its compaction "
          f"{steps.steps.get('compact day totals', 0.0) / 1000:.2f}s; "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    with q.open_mirror(folder / "analytics.duckdb") as con:
        for name in ("all_day_totals", "all_day_tag_totals"):
            wall, cpu, _ = timed(lambda name=name: write_day_totals_again(con, name))
            print(f"{name} written again: {wall / 1000:.2f}s ({cpu / 1000:.2f}s CPU); "
                  f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
        for split in (0.0, mirror_sync.DAY_TOTALS_COMPACT_SHARE):
            before, after, wall, cpu = compact(con, split)
            print(f"the day totals compacted, {split:.0%} appended ({before:,} rows to "
                  f"{after:,}): {wall / 1000:.2f}s ({cpu / 1000:.2f}s CPU); "
                  f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
        wall, cpu = verify(con)
        print(f"the self-check's look at the day totals: {wall / 1000:.2f}s ({cpu / 1000:.2f}s "
              f"CPU); load {os.getloadavg()[0]:.1f}")  # fmt: skip
    with psycopg.connect(url) as conn:
        end = conn.execute("SELECT max(created_at) FROM ai_tasks").fetchone()[0]
    end = end.astimezone(UTC) + timedelta(seconds=1)
    with q.open_mirror(folder / "analytics.duckdb", read_only=True) as con:
        rows = con.execute("SELECT (SELECT count(*) FROM tasks), (SELECT count(*) FROM day_totals),"
                           " (SELECT count(*) FROM day_tag_totals)")  # fmt: skip
        tasks, totals, tagged = rows.fetchall()[0]
        print(f"{tasks:,} tasks, {totals:,} day total rows, {tagged:,} tag total rows; "
              f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
        print(f"{'rollup':55} {'tasks ms':>14} {'days ms':>14} {'wall':>6} {'CPU':>6} "
              f"{'unnested ms':>14}")  # fmt: skip
        for name, fn in rollups(end, args.days):
            ways = ("tasks", "unnest", "days") if "tag" in name else ("tasks", "days")
            got = compare(con, fn, args.rounds, ways)
            (tw, tc), (dw, dc) = got["tasks"], got["days"]
            unnested = "{:6.0f} ({:5.0f})".format(*got["unnest"]) if "unnest" in got else ""
            print(f"{name:55} {tw:6.0f} ({tc:5.0f}) {dw:6.0f} ({dc:5.0f}) "
                  f"{dw / tw:5.2f}x {dc / tc:5.2f}x {unnested:>14}  "
                  f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
