"""Small row builders for tests: raw SQL inserts with sensible defaults."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb


def make_run(conn: psycopg.Connection, **fields: Any) -> uuid.UUID:
    """Insert a run; return its id. Dict/list fields are stored as jsonb."""
    row = {"source_type": "chat", "name": "test run", **fields}
    row = {k: Jsonb(v) if isinstance(v, dict | list) and k != "tags" else v for k, v in row.items()}
    cols = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    return conn.execute(
        f"INSERT INTO ai_runs ({cols}) VALUES ({marks}) RETURNING id", list(row.values())
    ).fetchone()["id"]


def make_task(conn: psycopg.Connection, run_id: uuid.UUID, **fields: Any) -> uuid.UUID:
    """Insert a task of `run_id`; return its task_id."""
    row = {
        "run_id": run_id,
        "task_id": uuid.uuid4(),
        "provider": "openai",
        "model": "gpt-4o",
        "tokens_input": 100,
        "tokens_output": 50,
        "cost": Decimal("0.00075"),
        **fields,
    }
    row = {k: Jsonb(v) if isinstance(v, dict | list) else v for k, v in row.items()}
    cols = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    return conn.execute(
        f"INSERT INTO ai_tasks ({cols}) VALUES ({marks}) RETURNING task_id", list(row.values())
    ).fetchone()["task_id"]


def run_row(conn: psycopg.Connection, run_id: uuid.UUID) -> dict[str, Any]:
    return conn.execute("SELECT * FROM ai_runs WHERE id = %s", (run_id,)).fetchone()


def task_row(conn: psycopg.Connection, task_id: uuid.UUID) -> dict[str, Any]:
    return conn.execute("SELECT * FROM ai_tasks WHERE task_id = %s", (task_id,)).fetchone()


def table_rows(url: str, table: str) -> list[dict[str, Any]]:
    """Every row of `table` ordered by id, without the change-capture stamp."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        found = conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
    for row in found:
        row.pop("sync_xid")
    return found
