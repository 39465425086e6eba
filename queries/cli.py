"""Subcommands of the analytics area: `ai-runs sync [--full]`."""

from __future__ import annotations

import argparse

from queries import cli_alerts


def register(commands: argparse._SubParsersAction) -> None:
    """Add this area's subcommands to `ai-runs`."""
    sync = commands.add_parser(
        "sync",
        help="bring the DuckDB analytics mirror up to date with Postgres",
        description="Incremental by default: reads only rows written or deleted since the "
        "last sync. The mirror is $AI_RUNS_MIRROR (default $AI_RUNS_HOME/analytics.duckdb). "
        "A missing, outdated, corrupt or foreign mirror is rebuilt; every sync from the "
        "command line also checks the mirror (reads every block, compares counts and sums "
        "with Postgres) and rebuilds it when the check fails. Fails with a clear "
        "message while another process (the dashboard) holds the mirror: it syncs itself.",
    )
    sync.add_argument("--full", action="store_true", help="rebuild the mirror from scratch")
    sync.add_argument("--mirror", metavar="PATH", help="mirror file (default: $AI_RUNS_MIRROR)")
    sync.add_argument(
        "--no-verify", action="store_true", help="skip the self-check (faster on huge mirrors)"
    )
    sync.set_defaults(handler=_sync)


def _sync(args: argparse.Namespace) -> int:
    from queries.mirror import sync_mirror

    result = sync_mirror(path=args.mirror, full=args.full, verify=not args.no_verify)
    kind = f"full rebuild ({result.reason})" if result.full else "incremental"
    if result.verified:
        kind += ", checked against Postgres"
    changed = ", ".join(
        f"{table} +{result.upserted.get(table, 0)}/-{result.deleted.get(table, 0)}"
        for table in ("tasks", "runs", "users")
    )
    rows = ", ".join(f"{table} {count}" for table, count in result.rows.items())
    print(f"sync: {kind} in {result.seconds:.2f}s; upserted/deleted: {changed}; rows: {rows}")
    print(cli_alerts.after_sync(args.mirror))  # alert rules are evaluated after every sync
    return 0
