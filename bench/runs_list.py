"""Benchmark: the Runs page's list (Tracker.list_runs) on a large database (issue 16).

    python bench/runs_list.py [--tasks 10000000] [--days 90] [--dir PATH] [--reuse] [--json F]
                              [--make-member]

Prepares the demo database like bench/queries.py (same folder layout, so --reuse shares a
10M-task database with the other benchmarks). For each list the Runs page can ask for (one
page of 25 active runs over the last 30 days: plain, one tag, a text search that matches
many runs, one that matches none) it times the page with the bounded total the page asks
for (count_limit 1,000: "more than 1,000"; median of 3 after a warm-up) against the same
page with an exact total, the baseline (one run after a warm-up), as the owner (no
row-level security) and as a member who reads 1/50 of the runs through shares
(bench/access.py's member: when present, or made with --make-member).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from access import MEMBER, make_member  # noqa: E402
from bench_support import bench_queries, demo_database_arguments, demo_folder  # noqa: E402

from ingest import Tracker  # noqa: E402

PAGE = 25
COUNT_LIMIT = 1_000  # what dashboard/views/runs.py asks for


def lists(tag: str, end: datetime) -> list[tuple[str, dict]]:
    since = end - timedelta(days=30)
    base = {"created_from": since, "created_to": end, "limit": PAGE}
    return [
        ("active runs, 30 d", base),
        (f"tag {tag!r}, 30 d", {**base, "tags": [tag]}),
        ("search 'GDPR', 30 d", {**base, "search": "GDPR"}),
        ("search matching nothing, 30 d", {**base, "search": "zzqx-no-such-text"}),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    demo_database_arguments(parser, tasks=10_000_000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--make-member", action="store_true", help="make bench/access.py's member first"
    )
    args = parser.parse_args(argv)
    bench = bench_queries()
    folder = demo_folder(args)
    url = bench.prepare(folder, args.tasks, args.days, args.reuse)
    if args.make_member:
        make_member(url)
    with psycopg.connect(url) as conn:
        end, runs = conn.execute("SELECT max(created_at), count(*) FROM ai_runs").fetchone()
        tag = conn.execute(
            "SELECT t FROM ai_runs, unnest(tags) t GROUP BY t ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()[0]
        member = conn.execute("SELECT id FROM ai_users WHERE id = %s", (MEMBER,)).fetchone()
    end = end.astimezone(UTC) + timedelta(microseconds=1)
    viewers = [("owner", None)] + ([("member, 1/50 of runs", member[0])] if member else [])
    load = os.getloadavg()
    rows = []
    for who, viewer in viewers:
        with Tracker(url, viewer=viewer) as tracker:
            for name, query in lists(tag, end):
                bounded_ms, page = bench.timed(
                    lambda q=query: tracker.list_runs(**q, count_limit=COUNT_LIMIT), runs=3
                )
                exact_ms, exact = bench.timed(lambda q=query: tracker.list_runs(**q), runs=1)
                total = f"{page.total:,}" + ("" if page.total_exact else "+")
                rows.append((who, name, bounded_ms, exact_ms, total, exact.total))
                print(f"  {who} / {name}: bounded {bounded_ms:.0f} ms ({total}), "
                      f"exact {exact_ms:.0f} ms ({exact.total:,})", flush=True)  # fmt: skip
    print()
    print(f"{runs:,} runs; load average at start {load[0]:.1f} on {os.cpu_count()} cores")
    print("| viewer | list (page of 25) | bounded total | exact total (baseline) | ratio |")
    print("|---|---|---:|---:|---:|")
    for who, name, bounded_ms, exact_ms, total, exact_total in rows:
        print(f"| {who} | {name} | {bounded_ms:,.0f} ms ({total}) | "
              f"{exact_ms:,.0f} ms ({exact_total:,}) | {exact_ms / bounded_ms:.1f}x |")  # fmt: skip
    if args.json:
        keys = ("viewer", "list", "bounded_ms", "exact_ms", "total", "exact_total")
        args.json.write_text(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
