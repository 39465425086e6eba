"""`ai-runs db ...`: the database behind the product."""

from __future__ import annotations

import argparse
from pathlib import Path

from ingest.store import config, database, embedded, schema_dump


def register(commands: argparse._SubParsersAction) -> None:
    """Add this area's subcommands to `ai-runs`."""
    db = commands.add_parser("db", help="database: url, start, stop, migrate, check, schema")
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    actions.add_parser("url", help="print the URL of the database in use").set_defaults(
        handler=_url
    )
    actions.add_parser(
        "start", help="start the embedded Postgres (no-op with DATABASE_URL)"
    ).set_defaults(handler=_start)
    actions.add_parser("stop", help="stop the embedded Postgres").set_defaults(handler=_stop)
    actions.add_parser("migrate", help="apply pending schema migrations").set_defaults(
        handler=_migrate
    )
    actions.add_parser(
        "check", help="verify every run's totals against its tasks (exit 1 on mismatch)"
    ).set_defaults(handler=_check)
    dump = actions.add_parser(
        "schema",
        help="print the migrated schema as SQL, read from the catalogs (the docs keep a copy)",
    )
    dump.add_argument("--out", metavar="PATH", help="write it to PATH instead of printing it")
    dump.set_defaults(handler=_schema)


def _url(args: argparse.Namespace) -> int:
    print(database.database_url())
    return 0


def _start(args: argparse.Namespace) -> int:
    url = database.database_url()
    where = "DATABASE_URL" if config.database_url_setting() else str(config.pgdata())
    print(f"database ready ({where}): {url}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    if config.database_url_setting():
        print("DATABASE_URL is set: that server is not ours to stop")
        return 0
    stopped = embedded.stop()
    print(f"embedded Postgres {'stopped' if stopped else 'was not running'} ({config.pgdata()})")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    url = database.database_url()
    print(f"schema at version {database.schema_version(url)} ({len(database.migrations())} known)")
    return 0


def _check(args: argparse.Namespace) -> int:
    bad = database.run_totals_mismatches()
    if bad:
        print(f"{len(bad)} run(s) disagree with their tasks, e.g. {bad[0]}")
        return 1
    print("every run's totals match its tasks")
    return 0


def _schema(args: argparse.Namespace) -> int:
    text = schema_dump.schema_sql()
    if args.out:
        Path(args.out).write_text(text)
        print(f"schema written to {args.out}")
    else:
        print(text, end="")
    return 0
