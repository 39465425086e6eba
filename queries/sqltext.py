"""The named SQL of queries/: `sql/*.sql` for DuckDB, `sql/postgres/*.sql` for Postgres.

Each rollup module has its own file (`sql/usage.sql` beside `usage.py`, the Postgres twin in
`sql/postgres/usage.sql`); names are unique per engine. `render` fills `{{engine.task_filter}}`
with the named fragment `task_filter` of `sql/engine.sql` (a fragment names its file) and
`{{group}}` with an expression the caller took from an allow-list; values stay `:name` bound
parameters (ingest/store/sqlfiles.py).
"""

from __future__ import annotations

from pathlib import Path

from ingest.store import sqlfiles

SQL_DIR = Path(__file__).parent / "sql"
FOLDERS = {"duckdb": SQL_DIR, "postgres": SQL_DIR / "postgres", "lake": SQL_DIR.parent / "lake"}


def named(engine: str) -> dict[str, sqlfiles.Query]:
    """Every named query of `engine` ("duckdb", "postgres", or "lake": queries/lake/)."""
    return sqlfiles.load(FOLDERS[engine])


def render(engine: str, name: str, **expressions: str) -> sqlfiles.Query:
    """Query `name` of `engine` with {{fragments}} and the given expressions filled in."""
    queries = named(engine)
    if name not in queries:
        raise KeyError(f"no {engine} query named {name!r}")
    return sqlfiles.render(queries, name, **expressions)
