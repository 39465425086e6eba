"""The full load of the mirror: drop everything, create the tables, stream every source
row in, then give keys and collect rare tasks and dimension values over what was stored.
SQL: queries/sql/mirror_load.sql (and the tables and row shapes of sql/mirror.sql)."""

from __future__ import annotations

from typing import Any

import duckdb

from queries import sqltext
from queries.mirror.extract import extract_all
from queries.mirror.steps import TABLES, SyncResult, duck_sql, step

# Per table, in load order: the Postgres query that streams every row, the DuckDB insert.
# Users and runs first, so keys exist before the tasks' keys are set.
_FULL_LOAD = {
    "users": {"extract": "extract_all_users", "insert": "insert_users"},
    "runs": {"extract": "extract_all_runs", "insert": "insert_runs"},
    "tasks": {"extract": "extract_all_tasks", "insert": "insert_all_tasks"},
}
_CREATE = ("create_users", "create_runs", "create_tasks", "create_keys", "create_meta")


def full_load(con: duckdb.DuckDBPyConnection, cur: Any) -> SyncResult:
    """Rebuild the mirror from the Postgres snapshot of `cur` (an ADBC cursor) inside a
    DuckDB transaction the caller commits. Returns upserted = rows loaded per table."""
    sql = duck_sql()
    con.execute("BEGIN").fetchall()
    con.execute(sql["drop_all"].sql).fetchall()
    for name in _CREATE:
        con.execute(sql[name].sql).fetchall()
    upserted = {}
    # Streamed batch by batch: no table ever sits in memory whole.
    for table, queries in _FULL_LOAD.items():
        if table == "tasks":  # keys first, so each task gets its run_key/user_key on insert
            with step("keys"):
                con.execute(sql["all_user_keys"].sql).fetchall()
                con.execute(sql["all_run_keys"].sql).fetchall()
        con.register(f"staged_{table}", extract_all(cur, queries["extract"]))
        with step(f"load {table}"):
            insert = sqltext.render("duckdb", queries["insert"]).sql
            upserted[table] = con.execute(insert).fetchall()[0][0]
        con.unregister(f"staged_{table}")
    with step("task keys and dimension values"):
        con.execute(sql["keys_of_stored_tasks"].sql).fetchall()
        con.execute(sql["refresh_run_key_days"].duckdb, {"since_key": 0}).fetchall()
        con.execute(sql["all_rare_tasks"].sql).fetchall()
        con.execute(sql["all_dim_values"].sql).fetchall()
    return SyncResult(full=True, upserted=upserted, deleted=dict.fromkeys(TABLES, 0))
