"""The mirror's self-check (docs/limits.md): read every block of the mirror back (so DuckDB
verifies each block's checksum) and compare row counts and token and cost sums with
Postgres in the sync's own snapshot. SQL: queries/sql/mirror_check.sql and its Postgres
twin queries/sql/postgres/mirror_check.sql."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import duckdb

from queries.mirror.steps import duck_sql, pg_sql

VERIFY_EVERY_SECONDS = 600.0  # the cheap cadence of the self-check (a full scan of both)
_VERIFIED_COLUMNS = ("tasks", "tokens", "cost", "runs", "run_tokens", "users")


def verify_due(meta: dict[str, str]) -> bool:
    """True when the mirror facts `meta` show no check, or one VERIFY_EVERY_SECONDS old."""
    last = meta.get("last_verified_at")
    if last is None:
        return True
    age = datetime.now(UTC) - datetime.fromisoformat(last)
    return age.total_seconds() >= VERIFY_EVERY_SECONDS


def verify(con: duckdb.DuckDBPyConnection, cur: Any) -> str | None:
    """None when the mirror reads back whole and matches Postgres' snapshot (`cur`, an ADBC
    cursor); else what is wrong. A damaged block raises duckdb.Error from the full read."""
    con.execute(duck_sql()["verify_read_all"].sql).fetchall()
    mirror = con.execute(duck_sql()["verify_totals"].sql).fetchall()[0]
    cur.execute(pg_sql()["verify_totals"].sql)
    source = cur.fetchone()
    for name, ours, theirs in zip(_VERIFIED_COLUMNS, mirror, source, strict=True):
        if Decimal(str(ours)) != Decimal(str(theirs)):
            return f"{name} is {ours} in the mirror but {theirs} in Postgres"
    return None
