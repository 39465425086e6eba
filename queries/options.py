"""The sidebar's filter choices: the values present in the mirror (sql/options.sql)."""

from __future__ import annotations

from queries import sqltext
from queries.engine import Connection


def filter_options(con: Connection) -> dict[str, list[str]]:
    """Sidebar choices present in the mirror, each sorted: source_types, providers, models,
    users, teams, tags, statuses."""
    tasks = con.execute(sqltext.render("duckdb", "filter_options_tasks").duckdb).fetchall()[0]
    runs = con.execute(sqltext.render("duckdb", "filter_options_runs").duckdb).fetchall()[0]
    lists = dict(zip(["providers", "models", "users", "statuses"], tasks, strict=True))
    lists |= dict(zip(["source_types", "tags", "teams"], runs, strict=True))
    keys = ("source_types", "providers", "models", "users", "teams", "tags", "statuses")
    return {key: list(lists[key] or []) for key in keys}
