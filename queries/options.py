"""The sidebar's filter choices: the values present in the mirror (sql/options.sql)."""

from __future__ import annotations

from typing import Any

from queries import access, sqltext
from queries.engine import Connection


def filter_options(con: Connection, visible_runs: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Sidebar choices present in the mirror, each a sorted list: source_types, providers,
    models, users (ids), teams, tags, statuses, variants; and user_names: {user id: display name}
    for the users that have one (ai_users.display_name). visible_runs as in Filters: only
    the values of those runs and of the people who own them (None: of every run)."""
    values = {"restricted": visible_runs is not None, "visible_runs": list(visible_runs or ())}
    expressions = access.restriction(con, values)
    tasks_query = sqltext.render("duckdb", "filter_options_tasks", **expressions).duckdb
    runs_query = sqltext.render("duckdb", "filter_options_runs", **expressions).duckdb
    names_query = sqltext.render("duckdb", "user_names", **expressions).duckdb
    tasks = con.execute(tasks_query).fetchall()[0]
    runs = con.execute(runs_query).fetchall()[0]
    lists = dict(zip(["providers", "models", "users", "statuses", "variants"], tasks, strict=True))
    lists |= dict(zip(["source_types", "tags", "teams"], runs, strict=True))
    keys = ("source_types", "providers", "models", "users", "teams", "tags", "statuses", "variants")
    choices: dict[str, Any] = {key: list(lists[key] or []) for key in keys}
    names = con.execute(names_query).fetchall()
    choices["user_names"] = {str(user_id): str(name) for user_id, name in names}
    return choices
