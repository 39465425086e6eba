"""Subcommands of the lake and retention: `ai-runs lake sync`, `ai-runs purge`."""

from __future__ import annotations

import argparse

from ingest.store import config

ARCHIVE_BATCH_RUNS = 10_000


def register(commands: argparse._SubParsersAction) -> None:
    """Add `lake` and `purge` to `ai-runs`."""
    lake = commands.add_parser("lake", help="the Delta Lake copy (docs/lake.md)")
    actions = lake.add_subparsers(dest="lake_command", required=True, metavar="ACTION")
    sync = actions.add_parser(
        "sync",
        help="sync the mirror, then export changed months to the lake's Delta tables",
        description="Brings the DuckDB mirror up to date, then rewrites only the months "
        "whose content changed, one Delta transaction per table (nothing is committed for a "
        "table with no change), then vacuums files replaced longer ago than "
        "AI_RUNS_LAKE_RETENTION. A lake of the old manifest layout is converted once. When "
        "another process (the dashboard) holds the mirror, the export goes through a mirror "
        "of its own beside it (lake-mirror.duckdb; first run is a full load).",
    )
    sync.add_argument("--to", metavar="PATH_OR_S3_URL", help="lake (default: $AI_RUNS_LAKE)")
    sync.add_argument("--mirror", metavar="PATH", help="mirror file (default: $AI_RUNS_MIRROR)")
    sync.set_defaults(handler=_lake_sync)
    history = actions.add_parser(
        "history",
        help="list the versions of a lake table (read any of them with `as of version N`)",
        description="Newest first: version, UTC time, operation, rows and files added, "
        "files removed, the months it changed, who wrote it and the mirror state it came "
        "from (Delta commit metadata).",
    )
    history.add_argument(
        "--table",
        default="tasks",
        help="tasks (default), runs, users, archive_tasks or archive_runs",
    )
    history.add_argument("--limit", type=int, default=20, help="versions to list (default 20)")
    history.add_argument("--to", metavar="PATH_OR_S3_URL", help="lake (default: $AI_RUNS_LAKE)")
    history.set_defaults(handler=_lake_history)

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
    if result.migrated:
        print(result.migrated)
    note = "" if mirror == (args.mirror or str(config.mirror_path())) else f" (via {mirror})"
    parts = "; ".join(
        f"{table} version {result.versions[table]}: {result.written[table]} months written, "
        f"{result.dropped[table]} dropped, {result.kept[table]} kept, {result.rows[table]} rows"
        for table in result.written
    )
    vacuumed = f"{result.vacuumed} old files vacuumed"
    print(f"lake sync{note} in {result.seconds:.2f}s: {parts}; {vacuumed}")
    return 0


def _lake_history(args: argparse.Namespace) -> int:
    from queries.lake import tables
    from queries.lake.store import open_store

    if args.table not in tables.TABLE_PATHS:
        allowed = ", ".join(tables.TABLE_PATHS)
        raise ValueError(f"table: {args.table!r} is not a lake table; choose one of {allowed}")
    if args.limit < 1:
        raise ValueError(f"limit: must be at least 1, got {args.limit}")
    store = open_store(args.to)
    table = tables.open_table(store, args.table)
    if table is None:
        print(f"no lake table {args.table} at {store.url} yet: run `ai-runs lake sync`")
        return 0
    print(f"{args.table} at {tables.uri(store, args.table)}, newest first:")
    for entry in tables.commits(table, args.limit):
        print(_history_line(entry))
    return 0


def _history_line(entry: dict) -> str:
    """One version: number, UTC time, operation, rows, months, writer, source."""
    from datetime import UTC, datetime

    ours = entry["ai_runs"]
    metrics = entry.get("operationMetrics") or {}
    moment = datetime.fromtimestamp(entry["timestamp"] / 1000, UTC)
    rows = (
        f"{metrics.get('num_added_rows', 0)} rows in {metrics.get('num_added_files', 0)} "
        f"files added, {metrics.get('num_removed_files', 0)} files removed"
    )
    months = ours.get("months")
    changed = "all months" if "months" in ours and months is None else ", ".join(months or [])
    source = ours.get("source") or {}
    horizon = f"mirror horizon {source['horizon']}" if "horizon" in source else ""
    parts = [entry.get("operation", "?"), rows, changed, ours.get("writer", ""), horizon]
    return f"  version {entry['version']}  {moment:%Y-%m-%d %H:%M:%S}  " + "  ".join(
        p for p in parts if p
    )


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
