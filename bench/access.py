"""Benchmark: rollups on the mirror for a restricted viewer vs an admin (issue 11).

    python bench/access.py [--tasks 1000000] [--days 90] [--dir PATH] [--reuse]

1. Prepares the demo database and mirror like bench/queries.py (same folder layout).
2. Makes a member who reads 1/50 of the runs: their own plus every 50th run shared with
   them (rows in ai_run_shares), and takes a manager of the demo as it is.
3. For each rollup: the admin's median (no restriction) and the member's and manager's
   medians (restricted to the run ids Postgres's row-level security gives them, joined on
   the mirror's run keys), 3 warm runs each, and the ratios. Also times how long asking
   Postgres for the visible run ids takes (once per dashboard script run).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_support import bench_queries, demo_database_arguments, demo_folder  # noqa: E402

import queries as q  # noqa: E402
from ingest.access import viewer  # noqa: E402
from queries import Filters  # noqa: E402
from queries.usage import daily_cost  # noqa: E402

_BQ = bench_queries()
prepare, timed = _BQ.prepare, _BQ.timed

MEMBER = "bench-member"


def rollups(end: datetime, days: int, visible: tuple[str, ...] | None) -> list[tuple[str, object]]:
    every = Filters(start=end - timedelta(days=days + 1), end=end, visible_runs=visible)
    month = Filters(start=end - timedelta(days=30), end=end, visible_runs=visible)
    week = Filters(start=end - timedelta(days=7), end=end, visible_runs=visible)
    return [
        ("KPI row, 30 d vs previous 30", lambda con: q.kpis(con, month)),
        (f"usage by day x model, {days} d",
         lambda con: q.usage_over_time(con, every, "day", "model")),
        (f"usage by team, {days} d", lambda con: q.usage_by(con, every, "team")),
        (f"usage by week x tag, {days} d",
         lambda con: q.usage_over_time(con, every, "week", "tag")),
        (f"TTFT p50-p99 by day x model, {days} d",
         lambda con: q.latency_percentiles(con, every, "ttft", "model", "day")),
        (f"failure rates by week x provider, {days} d",
         lambda con: q.failure_rates(con, every, "provider", "week")),
        ("TTFT histogram, 30 d", lambda con: q.latency_histogram(con, month)),
        ("top 100 slowest tasks, 7 d", lambda con: q.slowest_tasks(con, week)),
        ("most expensive runs, 30 d", lambda con: q.most_expensive_runs(con, month)),
        ("daily cost, 30 d", lambda con: daily_cost(con, month)),
        ("what-if on claude-haiku-4-5, 30 d",
         lambda con: q.what_if_cost(con, month, "anthropic", "claude-haiku-4-5")),
        ("sidebar filter options", lambda con: q.filter_options(con, visible)),
    ]  # fmt: skip


def make_member(url: str) -> None:
    """A member who reads 1/50 of the runs: every 50th run (by id) shared with them."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ai_users (id, display_name, team, role) "
            "VALUES (%s, 'Bench member', 'bench', 'member') ON CONFLICT (id) DO NOTHING",
            (MEMBER,),
        )
        conn.execute("DELETE FROM ai_run_shares WHERE user_id = %s", (MEMBER,))
        conn.execute(
            "INSERT INTO ai_run_shares (run_id, user_id, permission) "
            "SELECT id, %s, 'view' FROM (SELECT id, row_number() OVER (ORDER BY id) AS n "
            "FROM ai_runs) r WHERE n %% 50 = 0",
            (MEMBER,),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    demo_database_arguments(parser, tasks=1_000_000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    folder = demo_folder(args)
    url = prepare(folder, args.tasks, args.days, args.reuse)
    make_member(url)
    with psycopg.connect(url) as conn:
        runs = conn.execute("SELECT count(*) FROM ai_runs").fetchone()[0]
        manager = conn.execute("SELECT min(id) FROM ai_users WHERE role = 'manager'").fetchone()[0]
        end = conn.execute("SELECT max(created_at) FROM ai_tasks").fetchone()[0]
    end = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    mirror_path = folder / "analytics.duckdb"
    q.sync_mirror(url, mirror_path)
    con = q.open_mirror(mirror_path)
    scopes: dict[str, tuple[str, ...] | None] = {}
    lookups = {}
    for label, who in (("member", MEMBER), ("manager", manager)):
        lookups[label], scopes[label] = timed(lambda w=who: viewer.visible_runs(url, w), 3)
    scopes["admin"] = None
    member, managed = len(scopes["member"]), len(scopes["manager"])
    print(f"{args.tasks:,} tasks, {runs:,} runs; member reads {member:,} runs "
          f"(1/{runs / member:.0f}), manager {managed:,}")  # fmt: skip
    print(f"visible run ids from Postgres (RLS): member {lookups['member']:.0f} ms, "
          f"manager {lookups['manager']:.0f} ms")  # fmt: skip
    results = []
    print(f"{'rollup':45} {'admin ms':>9} {'member ms':>10} {'x':>5} {'manager ms':>11} {'x':>5}")
    names = [name for name, _ in rollups(end, args.days, None)]
    for i, name in enumerate(names):
        row = {"rollup": name}
        for label in ("admin", "member", "manager"):
            fn = rollups(end, args.days, scopes[label])[i][1]
            row[label], _ = timed(lambda fn=fn: fn(con.cursor()), 3)
        results.append(row)
        print(f"{name:45} {row['admin']:9.1f} {row['member']:10.1f} "
              f"{row['member'] / row['admin']:5.2f} {row['manager']:11.1f} "
              f"{row['manager'] / row['admin']:5.2f}")  # fmt: skip
    total = {label: sum(r[label] for r in results) for label in ("admin", "member", "manager")}
    print(f"{'all rollups':45} {total['admin']:9.1f} {total['member']:10.1f} "
          f"{total['member'] / total['admin']:5.2f} {total['manager']:11.1f} "
          f"{total['manager'] / total['admin']:5.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"tasks": args.tasks, "runs": runs, "lookups": lookups,
                                         "results": results}, indent=2))  # fmt: skip
    con.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
