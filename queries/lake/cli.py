"""Subcommands of the lake and retention: `ai-runs lake sync`, `ai-runs purge`."""

from __future__ import annotations

import argparse

from ingest.store import config

ARCHIVE_BATCH_RUNS = 10_000


def register(commands: argparse._SubParsersAction) -> None:
    """Add `lake` and `purge` to `ai-runs`."""
    lake = commands.add_parser("lake", help="the open Parquet lake (docs/lake.md)")
    actions = lake.add_subparsers(dest="lake_command", required=True, metavar="ACTION")
    sync = actions.add_parser(
        "sync",
        help="sync the mirror, then export changed months to the lake",
        description="Brings the DuckDB mirror up to date, then rewrites only the lake "
        "partitions (months) whose content changed, and swaps the manifest atomically. "
        "When another process (the dashboard) holds the mirror, the export goes through a "
        "mirror of its own beside it (lake-mirror.duckdb; first run is a full load).",
    )
    sync.add_argument("--to", metavar="PATH_OR_S3_URL", help="lake (default: $AI_RUNS_LAKE)")
    sync.add_argument("--mirror", metavar="PATH", help="mirror file (default: $AI_RUNS_MIRROR)")
    sync.set_defaults(handler=_lake_sync)

    purge = commands.add_parser(
        "purge",
        help="hard-delete runs (and their tasks) with no activity for a while",
        description="Deletes old runs with all their tasks from Postgres in batches, one "
        "transaction each (never half a run). With --archive each batch is first found in "
        "the lake with the same numbers and moved into its archive; otherwise nothing is "
        "deleted. Then prunes ai_sync_deletions below every registered mirror's horizon.",
    )
    purge.add_argument(
        "--older-than", required=True, metavar="AGE", help="e.g. 90d, 12w, 36h (last activity)"
    )
    purge.add_argument("--archive", action="store_true", help="archive to the lake first")
    purge.add_argument("--to", metavar="PATH_OR_S3_URL", help="lake (default: $AI_RUNS_LAKE)")
    purge.add_argument(
        "--batch",
        type=int,
        metavar="RUNS",
        help="runs per batch (default 1000; 10000 with --archive, as each archived batch "
        "rewrites the live lake months it touches)",
    )
    purge.add_argument(
        "--forget-mirrors-idle",
        metavar="AGE",
        help="unregister mirrors not synced for AGE (they rebuild if they come back)",
    )
    purge.set_defaults(handler=_purge)


def _lake_sync(args: argparse.Namespace) -> int:
    from queries.lake.sync import sync_lake

    result, mirror = sync_lake(args.to, mirror=args.mirror)
    note = "" if mirror == (args.mirror or str(config.mirror_path())) else f" (via {mirror})"
    parts = ", ".join(
        f"{t} {result.written[t]} written/{result.kept[t]} kept/{result.dropped[t]} dropped"
        for t in result.written
    )
    rows = ", ".join(f"{t} {n}" for t, n in result.rows.items())
    print(
        f"lake sync{note}: generation {result.generation} in {result.seconds:.2f}s; "
        f"partitions: {parts}; rows: {rows}"
    )
    return 0


def _purge(args: argparse.Namespace) -> int:
    from ingest.store import retention

    age = retention.parse_age(args.older_than)
    if args.forget_mirrors_idle:
        idle = retention.parse_age(args.forget_mirrors_idle)
        for name in retention.forget_idle_mirrors(idle_for=idle):
            print(f"forgot mirror {name} (idle for more than {args.forget_mirrors_idle})")
    confirm = None
    if args.archive:
        from queries.lake.archive import Archiver
        from queries.lake.store import open_store

        confirm = Archiver(open_store(args.to))
    batch = args.batch or (ARCHIVE_BATCH_RUNS if args.archive else retention.DEFAULT_BATCH_RUNS)
    result = retention.purge_old_runs(older_than=age, confirm=confirm, batch_runs=batch)
    archived = " (archived to the lake first)" if args.archive else ""
    print(
        f"purged {result.runs} runs and {result.tasks} tasks with no activity since "
        f"{result.cutoff:%Y-%m-%d %H:%M} UTC in {result.batches} batches{archived}; "
        f"pruned {result.deletions_pruned} logged deletions"
    )
    if result.held_back_by:
        oldest = result.held_back_by[0]
        print(
            f"oldest mirror: {oldest['name']} (synced {oldest['synced_at']:%Y-%m-%d %H:%M}); "
            "deletions it has not applied are kept"
        )
    else:
        print("no mirror is registered yet: logged deletions are kept until one syncs")
    return 0
