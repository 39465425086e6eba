"""`ai-runs demo`: fill the database with realistic demo data (reproducible for a seed)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from ingest import demo
from ingest.store import database


def register(commands: argparse._SubParsersAction) -> None:
    """Add this area's subcommands to `ai-runs`."""
    p = commands.add_parser(
        "demo", help="fill the database with realistic demo data (reproducible for a seed)"
    )
    p.add_argument("--tasks", type=int, default=100_000, help="number of tasks (default 100000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--days", type=int, default=90, help="days of history (default 90)")
    p.add_argument(
        "--end", type=_moment, default=None, help="end of the period, ISO 8601 (default now)"
    )
    p.add_argument(
        "--no-quality",
        dest="quality",
        action="store_false",
        help="leave out the A/B variants and the scores (docs/quality.md, 'Demo data')",
    )
    p.set_defaults(handler=_demo)


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _demo(args: argparse.Namespace) -> int:
    summary = demo.generate(
        database.database_url(),
        tasks=args.tasks,
        seed=args.seed,
        days=args.days,
        end=args.end,
        progress=sys.stderr.isatty(),
        quality=args.quality,
    )
    statuses = ", ".join(f"{k} {v:,}" for k, v in summary.tasks_by_status.items())
    print(
        f"demo: {summary.users:,} users, {summary.runs:,} runs, {summary.tasks:,} tasks "
        f"({statuses}); ${summary.cost_total:,.2f}, {summary.tokens_total:,} tokens; "
        f"inserted {summary.inserted_runs:,} runs, {summary.inserted_tasks:,} tasks and "
        f"{summary.scores_added:,} scores "
        f"in {summary.seconds:.1f}s"
    )
    return 0
