"""ingest.store.vocabulary and the migrated database say the same: the CHECK constraints'
allowed values and the tables' columns."""

from __future__ import annotations

import re

from ingest.demo import catalog
from ingest.store import validation, vocabulary
from ingest.transfer import bulk
from queries import filters


def allowed_values(conn, table: str, column: str) -> tuple[str, ...]:
    """The values a `column IN (...)` CHECK constraint of `table` allows, in its order."""
    rows = conn.execute(
        "SELECT pg_get_constraintdef(k.oid) AS definition FROM pg_constraint k "
        "WHERE k.conrelid = %s::regclass AND k.contype = 'c' AND k.conkey = ARRAY["
        "(SELECT attnum FROM pg_attribute WHERE attrelid = %s::regclass AND attname = %s)]"
        "::int2[]",
        (table, table, column),
    ).fetchall()
    assert len(rows) == 1, f"one CHECK on {table}.{column}"
    return tuple(re.findall(r"'([^']*)'::text", rows[0]["definition"]))


def columns(conn, table: str) -> tuple[str, ...]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        (table,),
    ).fetchall()
    return tuple(row["attname"] for row in rows)


def test_check_constraints_allow_exactly_the_vocabulary(conn):
    assert allowed_values(conn, "ai_runs", "source_type") == vocabulary.SOURCE_TYPES
    assert allowed_values(conn, "ai_runs", "status") == vocabulary.RUN_STATUSES
    assert allowed_values(conn, "ai_tasks", "status") == vocabulary.TASK_STATUSES
    assert allowed_values(conn, "ai_users", "role") == vocabulary.USER_ROLES
    assert allowed_values(conn, "ai_tasks", "cost_source") == vocabulary.COST_SOURCES
    assert set(vocabulary.FINISHED_TASK_STATUSES) | set(vocabulary.UNFINISHED_TASK_STATUSES) == (
        set(vocabulary.TASK_STATUSES)
    )


def test_column_lists_are_the_tables_columns(conn):
    not_written = {"sync_xid", *vocabulary.RUN_DERIVED_COLUMNS, *vocabulary.TASK_DERIVED_COLUMNS}
    for table, listed in (
        ("ai_users", vocabulary.USER_COLUMNS),
        ("ai_runs", vocabulary.RUN_COLUMNS),
        ("ai_tasks", vocabulary.TASK_COLUMNS),
    ):
        assert tuple(c for c in columns(conn, table) if c not in not_written) == listed, table


def test_every_module_uses_the_one_vocabulary():
    assert tuple(validation.RUN_COLUMNS) == vocabulary.RUN_COLUMNS
    assert tuple(validation.TASK_COLUMNS) == vocabulary.TASK_COLUMNS
    assert bulk.ALL_COLUMNS["ai_tasks"] is vocabulary.TASK_COLUMNS
    assert filters.SOURCE_TYPES is vocabulary.SOURCE_TYPES
    assert sorted(catalog.TASK_STATUS_CODES) == sorted(vocabulary.TASK_STATUSES)


def test_task_column_defaults_are_the_tables(conn):
    """Writers that read rows from JSON (the background writer) fill an absent column with
    vocabulary.TASK_COLUMN_DEFAULTS: they are the table's defaults of its NOT NULL columns."""
    rows = conn.execute(
        "SELECT column_name, column_default FROM information_schema.columns "
        "WHERE table_name = 'ai_tasks' AND is_nullable = 'NO' AND column_default IS NOT NULL"
    ).fetchall()
    defaults = {r["column_name"]: r["column_default"] for r in rows}
    defaults.pop("sync_xid")  # stamped by the database, never written
    assert defaults == vocabulary.TASK_COLUMN_DEFAULTS
