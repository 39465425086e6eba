"""`ai-runs import | export`: users, runs and tasks in and out as JSONL or CSV files
(docs/import-format.md), and imports from other tools (docs/imports.md)."""

from __future__ import annotations

import argparse
import sys

from ingest.transfer import import_export as transfer


def register(commands: argparse._SubParsersAction) -> None:
    """Add this area's subcommands to `ai-runs`."""
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
