"""`ai-runs demo | import | export`: demo data and raw data in and out."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from ingest import demo
from ingest.store import database
from ingest.transfer import importer as transfer


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
    p.set_defaults(handler=_demo)

    p = commands.add_parser(
        "import", help="import runs and tasks from JSONL or CSV files (idempotent)"
    )
    p.add_argument("files", nargs="+", metavar="FILE", help=".jsonl/.ndjson or .csv files")
    p.add_argument("--batch-rows", type=int, default=5_000, help="rows per transaction")
    p.add_argument("--from", dest="source", choices=("ai-runs", "langfuse", "litellm"),
                   default="ai-runs", help="what wrote the files: our own format (default), "
                   "a Langfuse export, or LiteLLM spend logs (docs/imports.md)")  # fmt: skip
    p.set_defaults(handler=_import)

    p = commands.add_parser("export", help="export users, runs and tasks as JSONL or CSV")
    p.add_argument("--format", choices=transfer.FORMATS, default=None,
                   help="jsonl or csv (default: from --out's extension, else jsonl)")  # fmt: skip
    p.add_argument("--out", default=None, help="output file (default: standard output)")
    p.set_defaults(handler=_export)


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
    )
    statuses = ", ".join(f"{k} {v:,}" for k, v in summary.tasks_by_status.items())
    print(
        f"demo: {summary.users:,} users, {summary.runs:,} runs, {summary.tasks:,} tasks "
        f"({statuses}); ${summary.cost_total:,.2f}, {summary.tokens_total:,} tokens; "
        f"inserted {summary.inserted_runs:,} runs and {summary.inserted_tasks:,} tasks "
        f"in {summary.seconds:.1f}s"
    )
    return 0


def _import(args: argparse.Namespace) -> int:
    if args.source != "ai-runs":
        from ingest.transfer.foreign import import_from

        outcome = import_from(args.source, args.files)
        transfer.print_rejections(outcome.summary)
        print(outcome.text())
        return 2 if outcome.summary.rejected else 0

    def progress(lines: int) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\rimport: {lines:,} lines")
            sys.stderr.flush()

    summary = transfer.import_files(args.files, batch_rows=args.batch_rows, on_progress=progress)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    transfer.print_rejections(summary)
    print(summary.text())
    return 2 if summary.rejected else 0


def _export(args: argparse.Namespace) -> int:
    fmt = args.format or (transfer.format_of(args.out) if args.out else "jsonl")
    if args.out:
        counts = transfer.export_file(args.out, fmt=fmt)
    else:
        counts = transfer.export(sys.stdout, fmt=fmt)
    where = args.out or "standard output"
    print(
        f"exported {counts['user']:,} users, {counts['run']:,} runs, {counts['task']:,} tasks "
        f"to {where} ({fmt})",
        file=sys.stderr,
    )
    return 0
