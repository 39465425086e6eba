"""The `ai-runs` command's root. It sits at the top so it imports downward only; each area
registers its own subcommands:

- ingest.cli_db:     ai-runs db url|start|stop|migrate|check
- ingest.cli_data:   ai-runs demo | import | export
- ingest.server.cli: ai-runs serve | keys
- ingest.cli_spend:  ai-runs prices | reprice | budgets
- ingest.cli_access: ai-runs user | share | redaction | audit
- queries.cli:       ai-runs sync
- queries.cli_alerts: ai-runs alerts
- dashboard.cli:     ai-runs dashboard
- queries.lake.cli:  ai-runs lake sync | purge
"""

from __future__ import annotations

import argparse
import logging
import sys

import psycopg

from dashboard import cli as dashboard_cli
from ingest.demo import cli as cli_data
from ingest.server import cli as server_cli
from ingest.spend import cli as cli_spend
from ingest.store import cli as cli_db
from ingest.store import config
from ingest.tracking import cli as cli_access
from queries import cli as queries_cli
from queries import cli_alerts
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
    modules = (cli_db, cli_data, cli_access, server_cli, cli_spend)
    modules += (queries_cli, cli_alerts, lake_cli, dashboard_cli)
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


if __name__ == "__main__":
    sys.exit(main())
