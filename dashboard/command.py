"""The `ai-runs` command's root. It sits at the top so it imports downward only; each package
registers its own subcommands with `register(commands)` in its `cli.py` (docs/design.md,
Package map, says why the commands live beside their packages):

- ingest.store.cli:     ai-runs db url|start|stop|migrate|check|schema
- ingest.demo.cli:      ai-runs demo
- ingest.transfer.cli:  ai-runs import | export
- ingest.tracking.cli:  ai-runs user | share | redaction | audit | template
- ingest.server.cli:    ai-runs serve | keys
- ingest.spend.cli:     ai-runs prices | reprice | budgets
- queries.cli:          ai-runs sync | alerts
- queries.lake.cli:     ai-runs lake sync | purge
- dashboard.cli:        ai-runs dashboard
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import psycopg

from dashboard import cli as dashboard_cli
from ingest.demo import cli as demo_cli
from ingest.server import cli as server_cli
from ingest.spend import cli as spend_cli
from ingest.store import cli as store_cli
from ingest.store import config
from ingest.tracking import cli as tracking_cli
from ingest.transfer import cli as transfer_cli
from queries import cli as queries_cli
from queries.lake import cli as lake_cli


def build_parser() -> argparse.ArgumentParser:
    """The `ai-runs` argument parser with every area's subcommands."""
    parser = argparse.ArgumentParser(
        prog="ai-runs",
        description="Track and analyse every LLM interaction. "
        "Uses DATABASE_URL when set, else an embedded Postgres in $AI_RUNS_HOME.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = (store_cli, demo_cli, transfer_cli, tracking_cli, server_cli, spend_cli)
    modules += (queries_cli, lake_cli, dashboard_cli)
    for module in modules:
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # What ai-runs creates (the mirror and its WAL, lake files, exports) holds every user's
    # data: readable by its owner only (docs/access.md, "Files"); restored for a caller
    # that runs main() in its own process.
    umask = os.umask(0o077)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except psycopg.OperationalError as exc:
        where = "DATABASE_URL" if config.database_url_setting() else "the embedded Postgres"
        print(
            f"ai-runs: error: cannot reach {where}: {str(exc).strip()}\n"
            "Check DATABASE_URL (unset it to use the embedded Postgres in $AI_RUNS_HOME).",
            file=sys.stderr,
        )
        return 1
    except (ValueError, LookupError, RuntimeError, OSError, psycopg.Error) as exc:
        print(f"ai-runs: error: {exc}", file=sys.stderr)
        return 1
    finally:
        os.umask(umask)


if __name__ == "__main__":
    sys.exit(main())
