"""Benchmark: dashboard rollups on the DuckDB mirror vs the same rollups in Postgres, and an
incremental mirror sync vs a full rebuild (issue 4).

    python bench/queries.py [--tasks 1000000] [--days 90] [--dir PATH] [--reuse]

1. Starts a fresh embedded Postgres in PATH (default $TMPDIR/ai-runs-bench-<tasks>) and
   fills it with the demo generator (in a child process, so its memory is not counted);
   --reuse keeps an existing PATH with enough tasks.
2. Builds the mirror (a full sync), then for each overview rollup: DuckDB median of 3 warm
   runs vs the Postgres twin (median of --pg-runs warm runs), and the ratio. Mirror-only
   rollups are timed too (no Postgres twin).
3. Writes 10,000 changed tasks (updates, inserts, deletes), times the incremental sync, then
   a full rebuild, and checks the mirror against Postgres.
4. Prints a table and the peak RSS of this process (DuckDB + pandas; Postgres and the
   generator are other processes).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_support import demo_database_arguments, demo_folder  # noqa: E402

import queries as q  # noqa: E402
from ingest.store import database, embedded  # noqa: E402
from queries import Filters, drilldown, usage  # noqa: E402

MARKER = "ai-runs-bench"


def timed(fn: Callable[[], object], runs: int, warmup: int = 1) -> tuple[float, object]:
    """Median wall time in ms of `runs` calls after `warmup` calls, and the last result."""
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def prepare(folder: Path, tasks: int, days: int, reuse: bool) -> str:
    if folder.exists() and not reuse:
        if not (folder / MARKER).exists():
            raise SystemExit(f"{folder} exists and is not a benchmark folder; choose --dir")
        if (folder / "pgdata" / "PG_VERSION").exists():
            embedded.stop(folder / "pgdata")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("benchmark data; safe to delete\n")
    url = embedded.ensure_database(embedded.start(folder / "pgdata"), "bench")
    database.migrate(url)
    with psycopg.connect(url) as conn:
        have = conn.execute("SELECT count(*) FROM ai_tasks").fetchone()[0]
    if have < tasks:
        print(f"generating {tasks:,} tasks over {days} days ...", flush=True)
        started = time.perf_counter()
        code = (
            "from ingest import demo; "
            f"print(demo.generate({url!r}, tasks={tasks}, seed=0, days={days}))"
        )
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
        print(f"generated in {time.perf_counter() - started:.0f}s", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return url


def call(fn: Callable, *args, **kwargs) -> Callable:
    """A rollup bound to its arguments, waiting for the connection."""
    return lambda con: fn(con, *args, **kwargs)


def overview_rollups(end: datetime, days: int) -> list[tuple[str, Callable]]:
    every = Filters(start=end - timedelta(days=days + 1), end=end)
    month = Filters.last_days(30, now=end)
    return [
        ("KPI row, 30 days vs previous 30", call(q.kpis, month)),
        (
            f"spend/tokens/tasks by day x model, {days} d",
            call(q.usage_over_time, every, "day", "model"),
        ),
        (f"usage by team, {days} d", call(q.usage_by, every, "team")),
        (f"usage by week x tag, {days} d", call(q.usage_over_time, every, "week", "tag")),
        (
            f"TTFT p50-p99 by day x model, {days} d",
            call(q.latency_percentiles, every, "ttft", "model", "day"),
        ),
        (
            "total time p50-p99 by provider, 30 d",
            call(q.latency_percentiles, month, "total_time", "provider"),
        ),
        (
            f"failure rates by week x provider, {days} d",
            call(q.failure_rates, every, "provider", "week"),
        ),
    ]


def mirror_only_rollups(end: datetime, days: int) -> list[tuple[str, Callable]]:
    month = Filters.last_days(30, now=end)
    week = Filters.last_days(7, now=end)
    day = (end - timedelta(days=1)).date()
    return [
        ("TTFT histogram 50 log buckets, 30 d", call(q.latency_histogram, month)),
        ("output tokens/s by model, 30 d", call(q.tokens_per_second, month)),
        ("top 100 slowest tasks, 7 d", call(q.slowest_tasks, week)),
        (
            "drill-down: one day x one model",
            call(q.tasks_behind, month, period=day, by="model", value="gpt-4o"),
        ),
        ("most expensive runs, 30 d", call(q.most_expensive_runs, month)),
        ("cost per run (every run's cost), 30 d", call(q.cost_per_run, month)),
        (
            "cost per run histogram (what Cost draws), 30 d",
            call(drilldown.cost_per_run_histogram, month),
        ),
        (
            "usage by week x tag without distinct counts (charts), 90 d",
            call(q.usage_over_time, Filters.last_days(90, now=end), "week", "tag", counts=False),
        ),
        ("breakdown team x model, 30 d", call(usage.usage_pairs, month, "team", "model")),
        (
            "drill-down count behind one day x one model",
            call(drilldown.count_behind, month, period=day, by="model", value="gpt-4o"),
        ),
        ("error groups, 30 d", call(q.error_groups, month)),
        ("month-end forecast", call(q.spend_forecast, month, today=end.date())),
        (
            "what-if on claude-haiku-4-5, 30 d",
            call(q.what_if_cost, month, "anthropic", "claude-haiku-4-5"),
        ),
        ("sidebar filter options", call(q.filter_options)),
    ]


def change_tasks(url: str, total: int, changes: int = 10_000) -> dict[str, int]:
    """Update 40%, insert 40%, delete 20% of `changes` tasks; return the counts."""
    updates, inserts, deletes = changes * 4 // 10, changes * 4 // 10, changes * 2 // 10
    percent = min(100.0, 100.0 * 3 * changes / max(total, 1))
    with psycopg.connect(url, autocommit=True) as conn:
        done = {}
        done["updated"] = conn.execute(
            f"""UPDATE ai_tasks SET cost = cost * 1.01, total_time = total_time + 1
                 WHERE id IN (SELECT id FROM ai_tasks TABLESAMPLE BERNOULLI ({percent})
                              LIMIT {updates})"""
        ).rowcount
        done["inserted"] = conn.execute(
            f"""INSERT INTO ai_tasks (run_id, user_id, task_id, service, task_name, provider,
                       endpoint, model, tokens_input, tokens_output, cost,
                       time_to_first_token, total_time, status, created_at)
                SELECT run_id, user_id, gen_random_uuid(), service, task_name, provider,
                       endpoint, model, tokens_input, tokens_output, cost,
                       time_to_first_token, total_time, 'completed', now()
                  FROM ai_tasks TABLESAMPLE BERNOULLI ({percent}) LIMIT {inserts}"""
        ).rowcount
        done["deleted"] = conn.execute(
            f"""DELETE FROM ai_tasks
                 WHERE id IN (SELECT id FROM ai_tasks TABLESAMPLE BERNOULLI ({percent})
                              LIMIT {deletes})"""
        ).rowcount
    return done


def check_mirror(con, url: str) -> None:
    with psycopg.connect(url) as conn:
        expected = conn.execute("SELECT count(*), sum(cost) FROM ai_tasks").fetchone()
    got = con.execute("SELECT count(*), sum(cost) FROM tasks").fetchall()[0]
    if tuple(got) != tuple(expected):
        raise SystemExit(f"mirror differs from Postgres: {got} != {expected}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    demo_database_arguments(parser, tasks=1_000_000)
    parser.add_argument("--pg-runs", type=int, default=3, help="timed Postgres runs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--no-rebuild", action="store_true", help="report the first full build as the rebuild"
    )
    parser.add_argument("--steps", action="store_true", help="log the time of each sync step")
    args = parser.parse_args(argv)
    if args.steps:
        logging.basicConfig(format="    %(message)s")
        logging.getLogger("queries.mirror").setLevel(logging.DEBUG)
    folder = demo_folder(args)

    url = prepare(folder, args.tasks, args.days, args.reuse)
    mirror = folder / "analytics.duckdb"
    load = os.getloadavg()
    build = q.sync_mirror(url, mirror, full=True)
    print(f"full mirror build: {build.seconds:.1f}s, rows {build.rows}", flush=True)
    con = q.open_mirror(mirror)
    end = con.execute("SELECT max(created_at) FROM tasks").fetchall()[0][0]
    end = end.astimezone(UTC) + timedelta(microseconds=1)

    rows = []
    with psycopg.connect(url, autocommit=True) as pg:
        for name, rollup in overview_rollups(end, args.days):
            duck_ms, _ = timed(lambda r=rollup: r(con), runs=3)
            pg_ms, _ = timed(lambda r=rollup: r(pg), runs=args.pg_runs)
            rows.append((name, duck_ms, pg_ms))
            print(f"  {name}: duckdb {duck_ms:.0f} ms, postgres {pg_ms:.0f} ms", flush=True)
    for name, rollup in mirror_only_rollups(end, args.days):
        duck_ms, _ = timed(lambda r=rollup: r(con), runs=3)
        rows.append((name, duck_ms, None))
        print(f"  {name}: duckdb {duck_ms:.0f} ms", flush=True)

    changes = change_tasks(url, build.rows["tasks"])
    incremental = q.sync_mirror(url, con=con)
    check_mirror(con, url)
    if args.no_rebuild:
        rebuild = build  # the first full build stands for the rebuild
    else:
        rebuild = q.sync_mirror(url, con=con, full=True)
        check_mirror(con, url)
    con.close()
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print()
    print(f"{build.rows['tasks']:,} tasks over {args.days} days; DuckDB threads=2, "
          f"memory_limit={q.mirror.DEFAULT_MEMORY_LIMIT}; load average at start "
          f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    print()
    print("| rollup | DuckDB mirror (ms) | Postgres (ms) | speed-up |")
    print("|---|---:|---:|---:|")
    for name, duck_ms, pg_ms in rows:
        pg_text = f"{pg_ms:,.0f}" if pg_ms is not None else "-"
        ratio = f"{pg_ms / duck_ms:.0f}x" if pg_ms is not None else "-"
        print(f"| {name} | {duck_ms:,.1f} | {pg_text} | {ratio} |")
    print()
    print("| mirror sync | seconds | rows read (tasks/runs/users) |")
    print("|---|---:|---|")
    up = incremental.upserted
    print(
        f"| incremental after {sum(changes.values()):,} changed tasks {changes} "
        f"| {incremental.seconds:.2f} | {up['tasks']}/{up['runs']}/{up['users']}, "
        f"deleted {incremental.deleted['tasks']} |"
    )
    print(f"| full rebuild | {rebuild.seconds:.2f} | {rebuild.rows['tasks']:,} tasks |")
    print(f"| rebuild / incremental | {rebuild.seconds / incremental.seconds:.0f}x | |")
    print()
    print(f"peak RSS of the benchmark process: {peak_rss_mb:,.0f} MB")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "tasks": build.rows["tasks"],
                    "rollups": rows,
                    "incremental_s": incremental.seconds,
                    "rebuild_s": rebuild.seconds,
                    "changes": changes,
                    "peak_rss_mb": peak_rss_mb,
                    "load": load,
                },
                indent=1,
            )
        )
    embedded.stop(folder / "pgdata")
    return 0


if __name__ == "__main__":
    sys.exit(main())
