"""Benchmark: score rollups and the Compare page on the DuckDB mirror vs the same SQL in
Postgres, at scale (issue 23, docs/quality.md).

    python bench/quality.py [--tasks 10000000] [--days 90] [--dir PATH] [--reuse]
                            [--pg-runs 1] [--json FILE]

1. Prepares the demo database like bench/queries.py (same folder, so --reuse shares its
   10M tasks). When it holds no scores yet, adds the demo's quality data
   (ingest/demo/quality.py): the A/B variants of the last 30 days' runs (written in place
   by sql/quality.sql with the same md5 rule the generator uses, triggers off: data
   preparation, not an application write) and about 2 scores for every 10 tasks.
2. Builds the mirror from scratch when it added the variants (they were written without
   change capture), else brings it up to date.
3. For each score rollup the dashboard asks for, and for the Compare page's two queries:
   DuckDB's median of 3 warm runs against the Postgres twin (median of --pg-runs runs after
   a warm-up), the ratio, and a check that both engines give the same numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_support import bench_queries, demo_database_arguments, demo_folder  # noqa: E402

import queries as q  # noqa: E402
from ingest.demo import quality as demo_quality  # noqa: E402
from ingest.store import embedded, sqlfiles  # noqa: E402
from queries import Filters, compare, quality  # noqa: E402

_BQ = bench_queries()
prepare, timed = _BQ.prepare, _BQ.timed
# Not sqlfiles.beside: bench/sql also holds queries only their own benchmark can fill.
_SQL = sqlfiles.load(ROOT / "bench" / "sql")


def add_quality(url: str, seed: int = 0) -> dict[str, float]:
    """The demo's variants and scores on a database generated without them (see the
    module's doc); seconds of each step, and the scores added."""
    with psycopg.connect(url) as conn:
        start, end = conn.execute(sqlfiles.render(_SQL, "demo_window").psycopg).fetchone()
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(
            sqlfiles.render(_SQL, "assign_variants").psycopg,
            {
                "since": end - timedelta(days=demo_quality.AB_DAYS),
                "variants": list(demo_quality.VARIANTS),
            },
        )
    variants_s = time.perf_counter() - started
    started = time.perf_counter()
    added = demo_quality.add_scores(url, seed, start, end)
    scores_s = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE ai_runs")
        conn.execute("VACUUM ANALYZE ai_scores")
    return {"variants_s": variants_s, "scores_s": scores_s, "scores": added}


def cases(end: datetime, days: int) -> list[tuple[str, object]]:
    """(name, rollup taking a connection of either engine): what the dashboard asks for."""
    every = Filters(start=end - timedelta(days=days + 1), end=end)
    month = Filters.last_days(30, now=end)
    ab = list(demo_quality.VARIANTS)
    return [
        (f"scores by model, {days} d", lambda con: quality.score_rollup(con, every, "model")),
        (f"scores by day, {days} d", lambda con: quality.score_rollup(con, every, None, "day")),
        (f"scores by team x week, {days} d",
         lambda con: quality.score_rollup(con, every, "team", "week")),
        ("scores by variant, 30 d", lambda con: quality.score_rollup(con, month, "variant")),
        (f"scores by evaluator, {days} d",
         lambda con: quality.score_rollup(con, every, quality.EVALUATOR)),
        ("Compare page: cost, latency, failures of 2 variants, 30 d",
         lambda con: compare.compare_variants(con, month, ab)),
        ("Compare page: score means and intervals of 2 variants, 30 d",
         lambda con: compare.compare_scores(con, month, ab)),
    ]  # fmt: skip


def same(duck: pd.DataFrame, pg: pd.DataFrame) -> bool:
    """Whether both engines gave the same table (floats to 9 significant digits)."""
    a, b = duck.reset_index(drop=True), pg.reset_index(drop=True)
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    try:
        pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-9, check_exact=False)
    except AssertionError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    demo_database_arguments(parser, tasks=1_000_000)
    parser.add_argument("--pg-runs", type=int, default=1, help="timed Postgres runs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    folder = demo_folder(args)
    url = prepare(folder, args.tasks, args.days, args.reuse)
    with psycopg.connect(url) as conn:
        have = conn.execute("SELECT count(*) FROM ai_scores").fetchone()[0]
    prep = add_quality(url) if have == 0 else {"scores": have}
    print(f"quality data: {prep}", flush=True)
    # In place variants bypass change capture: a mirror built before them must be rebuilt.
    build = q.sync_mirror(url, folder / "analytics.duckdb", full=have == 0)
    kind = "full mirror build" if build.full else "incremental mirror sync"
    print(f"{kind}: {build.seconds:.1f}s, rows {build.rows}", flush=True)
    con = q.open_mirror(folder / "analytics.duckdb")
    end = con.execute("SELECT max(created_at) FROM tasks").fetchall()[0][0]
    end = end.astimezone(UTC) + timedelta(microseconds=1)
    scores = con.execute("SELECT count(*) FROM scores").fetchall()[0][0]
    load = os.getloadavg()
    rows = []
    with psycopg.connect(url, autocommit=True) as pg:
        for name, rollup in cases(end, args.days):
            duck_ms, duck = timed(lambda r=rollup: r(con), runs=3)
            pg_ms, twin = timed(lambda r=rollup: r(pg), runs=args.pg_runs)
            rows.append((name, duck_ms, pg_ms, same(duck, twin), len(duck)))
            print(f"  {name}: duckdb {duck_ms:.0f} ms, postgres {pg_ms:.0f} ms", flush=True)
    con.close()
    print()
    print(f"{build.rows['tasks']:,} tasks, {scores:,} scores over "
          f"{args.days} days; load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} on "
          f"{os.cpu_count()} cores")  # fmt: skip
    print()
    print("| rollup | rows | DuckDB mirror (ms) | Postgres (ms) | speed-up | equal |")
    print("|---|---:|---:|---:|---:|---|")
    for name, duck_ms, pg_ms, equal, n in rows:
        print(f"| {name} | {n} | {duck_ms:,.0f} | {pg_ms:,.0f} | {pg_ms / duck_ms:.0f}x "
              f"| {'yes' if equal else 'NO'} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"prep": prep, "rows": rows, "load": load}, indent=1))
    embedded.stop(folder / "pgdata")
    return 0 if all(row[3] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
