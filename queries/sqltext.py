"""The named SQL of queries/: `sql/*.sql` for DuckDB, `sql/postgres/*.sql` for Postgres.

`render` fills `{{name}}` with a named fragment of the same folder or with an expression
the caller took from an allow-list; values are never rendered, they stay `:name` bound
parameters (see ingest.sqlfiles for the driver spellings).
"""

from __future__ import annotations

import re
from pathlib import Path

from ingest import sqlfiles

SQL_DIR = Path(__file__).parent / "sql"
FOLDERS = {"duckdb": SQL_DIR, "postgres": SQL_DIR / "postgres"}
_FRAGMENT = re.compile(r"\{\{(\w+)\}\}")


def named(engine: str) -> dict[str, sqlfiles.Query]:
    """Every named query of `engine` ("duckdb" or "postgres")."""
    return sqlfiles.load(FOLDERS[engine])


def render(engine: str, name: str, **expressions: str) -> sqlfiles.Query:
    """Query `name` of `engine` with {{fragments}} and the given expressions filled in."""
    queries = named(engine)
    if name not in queries:
        raise KeyError(f"no {engine} query named {name!r}")

    def fill(text: str, depth: int = 0) -> str:
        if depth > 5:
            raise ValueError(f"fragments nested too deep in {name}")

        def one(match: re.Match[str]) -> str:
            key = match.group(1)
            if key in expressions:
                return expressions[key]
            if key in queries:
                return fill(queries[key].sql.rstrip(";"), depth + 1)
            raise KeyError(f"{name}: nothing to fill {{{{{key}}}}} with")

        return _FRAGMENT.sub(one, text)

    query = queries[name]
    return sqlfiles.Query(query.name, query.doc, fill(query.sql))
