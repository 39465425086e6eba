"""The incremental apply: rows written or deleted in Postgres since the last sync replace
the mirror's copies (delete-by-id, then insert, so a row read twice is counted once), and
the copies of user and run attributes on tasks follow their users and runs.
SQL: queries/sql/mirror_apply.sql (and the row shapes of sql/mirror.sql)."""

from __future__ import annotations

import contextlib
from typing import Any

import duckdb

from ingest.store import sqlfiles
from queries import sqltext
from queries.mirror.extract import extract
from queries.mirror.steps import TABLES, SyncResult, duck_sql, step

# The Postgres queries of the changed rows, staged in DuckDB as staged_<key>.
_EXTRACT = {
    "users": "extract_users",
    "runs": "extract_runs",
    "tasks": "extract_tasks",
    "deletions": "extract_deletions",
}
# Per mirror table: the deletion log's table name and the DuckDB queries that apply it
# (remove the copies of deleted and rewritten rows in one scan, then insert the new ones).
_APPLY = {
    "tasks": {"logged_as": "ai_tasks", "remove": "remove_changed_tasks", "insert": "insert_tasks"},
    "runs": {"logged_as": "ai_runs", "remove": "remove_changed_runs", "insert": "insert_runs"},
    "users": {"logged_as": "ai_users", "remove": "remove_changed_users", "insert": "insert_users"},
}


def apply_changes(con: duckdb.DuckDBPyConnection, cur: Any, since: str) -> SyncResult:
    """Apply what changed in the Postgres snapshot of `cur` (an ADBC cursor) since the
    horizon `since`, inside a DuckDB transaction the caller commits. Returns upserted = rows
    read per table and deleted = rows removed because Postgres deleted them."""
    sql = duck_sql()
    with step("extract"):
        staged = {name: extract(cur, query, since) for name, query in _EXTRACT.items()}
    logged = staged["deletions"].column("table_name").to_pylist()
    con.execute("BEGIN").fetchall()
    for name, table in staged.items():
        con.register(f"staged_{name}", table)
    try:
        # Copies of user/run attributes on tasks: find what changed before replacing.
        teams = run_attrs = None
        if staged["users"].num_rows or "ai_users" in logged:
            teams = con.sql(sql["changed_teams"].sql).to_arrow_table()
        if staged["runs"].num_rows:
            with step("changed run attributes"):
                run_attrs = con.sql(sql["changed_run_attributes"].sql).to_arrow_table()
        if staged["tasks"].num_rows or staged["runs"].num_rows:
            with step("keys"):
                _new_keys(con, sql)
        if staged["tasks"].num_rows or staged["runs"].num_rows or staged["users"].num_rows:
            con.execute(sql["new_dim_values"].sql).fetchall()
        deleted = dict.fromkeys(TABLES, 0)
        for table, queries in _APPLY.items():
            if queries["logged_as"] in logged or staged[table].num_rows:
                with step(f"remove {table}"):
                    deleted[table] = con.execute(sql[queries["remove"]].sql).fetchall()[0][0]
            if staged[table].num_rows:
                with step(f"insert {table}"):
                    con.execute(sqltext.render("duckdb", queries["insert"]).sql).fetchall()
        con.execute(sql["forget_changed_rows"].sql).fetchall()
        if teams is not None and teams.num_rows:
            con.register("changed_teams", teams)
            con.execute(sql["propagate_teams"].sql).fetchall()
            con.unregister("changed_teams")
        if run_attrs is not None and run_attrs.num_rows:
            con.register("changed_runs", run_attrs)
            con.execute(sql["propagate_run_attributes"].sql).fetchall()
            con.unregister("changed_runs")
    finally:
        for name in staged:
            # In a transaction a failed statement aborted, this fails too: keep the first error.
            with contextlib.suppress(duckdb.Error):
                con.unregister(f"staged_{name}")
    upserted = {table: staged[table].num_rows for table in TABLES}
    return SyncResult(full=False, upserted=upserted, deleted=deleted)


def _new_keys(con: duckdb.DuckDBPyConnection, sql: dict[str, sqlfiles.Query]) -> None:
    """Keys for the runs and users the staged rows name for the first time."""
    before = con.execute("SELECT coalesce(max(key), 0) FROM run_keys").fetchall()[0][0]
    added = con.execute(sql["new_run_keys"].sql).fetchall()[0][0]
    con.execute(sql["new_user_keys"].sql).fetchall()
    if added:
        con.execute(sql["refresh_run_key_days"].duckdb, {"since_key": before}).fetchall()
