"""The sidebar's filter choices: the values present in the mirror (sql/options.sql)."""

from __future__ import annotations

from typing import Any

from queries import sqltext
from queries.engine import Connection


def filter_options(con: Connection) -> dict[str, Any]:
    """Sidebar choices present in the mirror, each a sorted list: source_types, providers,
    models, users (ids), teams, tags, statuses; and user_names: {user id: display name}
    for the users that have one (ai_users.display_name)."""
    tasks = con.execute(sqltext.render("duckdb", "filter_options_tasks").duckdb).fetchall()[0]
    runs = con.execute(sqltext.render("duckdb", "filter_options_runs").duckdb).fetchall()[0]
    lists = dict(zip(["providers", "models", "users", "statuses"], tasks, strict=True))
    lists |= dict(zip(["source_types", "tags", "teams"], runs, strict=True))
    keys = ("source_types", "providers", "models", "users", "teams", "tags", "statuses")
    choices: dict[str, Any] = {key: list(lists[key] or []) for key in keys}
    names = con.execute(sqltext.render("duckdb", "user_names").duckdb).fetchall()
    choices["user_names"] = {str(user_id): str(name) for user_id, name in names}
    return choices
