"""Subcommands of the analytics area: `ai-runs sync [--full]` and `ai-runs alerts
add|list|remove|check|history` (alert rules and their evaluation, docs/spend-control.md)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from ingest.spend import alert_rules, budgets, price_books
from ingest.store import horizon
from queries.alerts import format_value


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
        "message while another process (the dashboard) holds the mirror: it syncs itself. "
        "Names any transaction left open on the server for over a minute (any database): "
        "it holds the change-capture horizon back, so every sync re-reads more.",
    )
    sync.add_argument("--full", action="store_true", help="rebuild the mirror from scratch")
    sync.add_argument("--mirror", metavar="PATH", help="mirror file (default: $AI_RUNS_MIRROR)")
    sync.add_argument(
        "--no-verify", action="store_true", help="skip the self-check (faster on huge mirrors)"
    )
    sync.set_defaults(handler=_sync)
    _register_alerts(commands)


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
    for line in horizon_lines(result.held_back_by):
        print(line)
    print(_after_sync(args.mirror))  # alert rules are evaluated after every sync
    return 0


def horizon_lines(holders: list[horizon.HorizonHolder]) -> list[str]:
    """The lines `ai-runs sync` prints when open transactions held the change-capture
    horizon back (ingest.store.horizon): the summary, then one line per holder."""
    if not holders:
        return []
    return [f"horizon: {horizon.held_back_summary(holders)}."] + [
        f"  held by {holder.describe()}" for holder in holders
    ]


def _register_alerts(commands: argparse._SubParsersAction) -> None:
    """`ai-runs alerts ...`."""
    alerts = commands.add_parser("alerts", help="alert rules delivered to webhooks")
    actions = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="add a rule",
        description="budget_spend/budget_forecast: threshold is a fraction of the budget "
        "(0.8 = 80%%); ttft_p95/total_time_p95: milliseconds; failure_rate: 0..1.",
    )
    add.add_argument("--name", required=True)
    add.add_argument("--kind", required=True, choices=alert_rules.KINDS)
    add.add_argument("--threshold", required=True)
    add.add_argument("--budget", type=int, dest="budget_id", help="budget id (budget kinds)")
    add.add_argument("--scope", default="all", choices=budgets.SCOPE_KINDS)
    add.add_argument("--value", help="the team, user, model, tag or source type")
    add.add_argument("--window", type=int, default=60, help="minutes (latency/failure kinds)")
    add.add_argument("--min-tasks", type=int, default=1, help="tasks needed in the window")
    add.add_argument("--webhook", help="URL receiving JSON (Slack-compatible)")
    add.set_defaults(handler=_add)
    actions.add_parser("list", help="rules and whether they fire").set_defaults(handler=_list)
    remove = actions.add_parser("remove", help="delete a rule and its history")
    remove.add_argument("id", type=int)
    remove.set_defaults(handler=_remove)
    check = actions.add_parser(
        "check",
        help="sync the mirror, evaluate every rule, deliver (for cron)",
        description="Exit status 0 whether or not rules fire; 1 when a delivery failed.",
    )
    check.add_argument("--mirror", metavar="PATH", help="mirror file (default: $AI_RUNS_MIRROR)")
    check.set_defaults(handler=_check)
    history = actions.add_parser("history", help="past firings and resolutions")
    history.add_argument("--limit", type=int, default=50)
    history.set_defaults(handler=_history)


def _add(args: argparse.Namespace) -> int:
    row = alert_rules.add_rule(
        name=args.name,
        kind=args.kind,
        threshold=args.threshold,
        budget_id=args.budget_id,
        scope_kind=args.scope,
        scope_value=args.value,
        window_minutes=args.window,
        min_tasks=args.min_tasks,
        webhook_url=args.webhook,
        created_by=price_books.who(),
    )
    print(f"alert rule {row['id']} {row['name']!r} added")
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = alert_rules.list_rules()
    if not rows:
        print("no alert rules; add one with `ai-runs alerts add ...`")
    for row in rows:
        state = "FIRING" if row["firing"] else "ok"
        value = "-" if row["value"] is None else format_value(row["kind"], row["value"])
        target = row["webhook_url"] or "(no webhook)"
        print(
            f"{row['id']:>4}  {state:6} {row['name']} [{row['kind']} >= "
            f"{format_value(row['kind'], row['threshold'])}, last value {value}] -> {target}"
        )
    return 0


def _remove(args: argparse.Namespace) -> int:
    row = alert_rules.remove_rule(rule_id=args.id)
    print(f"removed alert rule {row['id']} {row['name']!r}")
    return 0


def _check(args: argparse.Namespace) -> int:
    """Sync the mirror and evaluate; when another process (the dashboard) holds the mirror,
    evaluate on a private mirror built from Postgres in a temporary directory instead."""
    from queries.alerts import check_alerts
    from queries.mirror import MirrorLocked, open_mirror, sync_mirror

    try:
        con = open_mirror(args.mirror)
    except MirrorLocked:
        print(
            "the mirror is held by another process (the dashboard): evaluating on a private "
            "copy loaded from Postgres",
            file=sys.stderr,
        )
        with tempfile.TemporaryDirectory(prefix="ai-runs-alerts-") as scratch:
            con = open_mirror(Path(scratch) / "alerts.duckdb")
            try:
                sync_mirror(con=con, verify=False)
                result = check_alerts(con)
            finally:
                con.close()
    else:
        try:
            sync_mirror(con=con)
            result = check_alerts(con)
        finally:
            con.close()
    print(_summary(result))
    return 1 if result.failed else 0


def _summary(result) -> str:
    fired = ", ".join(result.fired) or "none"
    resolved = ", ".join(result.resolved) or "none"
    return (
        f"alerts: {result.evaluated} rule(s) evaluated; firing now: {fired}; resolved: "
        f"{resolved}; deliveries: {result.delivered} sent, {result.failed} failed"
    )


def _history(args: argparse.Namespace) -> int:
    for row in alert_rules.alert_history(limit=args.limit):
        print(
            f"{row['created_at']:%Y-%m-%d %H:%M:%S}  {row['event']:8} {row['rule_name']}: "
            f"{row['delivery']} ({row['attempts']} attempt(s))"
        )
    return 0


def _after_sync(path: str | None = None) -> str:
    """The check `ai-runs sync` runs after a sync (the mirror at `path` is closed): evaluate
    and deliver; a one-line summary. An alert problem is reported in the line, never raised
    (the sync itself succeeded)."""
    from queries.alerts import check_alerts
    from queries.mirror import open_mirror

    try:
        con = open_mirror(path)
        try:
            return _summary(check_alerts(con))
        finally:
            con.close()
    except Exception as exc:  # noqa: BLE001 - a broken rule must not fail the sync
        return f"alerts: not evaluated ({type(exc).__name__}: {exc})"
