"""Named SQL queries kept in `.sql` files (aiosql style).

A file holds one or more blocks::

    -- name: cost_by_model
    -- Spend per model in USD; columns model, cost.
    SELECT ... WHERE created_at >= :start

Parameters are written `:name` and rewritten for the driver: `%(name)s` for psycopg,
`$name` for DuckDB. Values are always bound, never formatted into the text. `{{name}}` is
filled by `render` with a named fragment of the same folder or with SQL text the caller
took from an allow-list (e.g. ingest.vocabulary.SQL_COLUMN_LISTS), never with user text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_FRAGMENT = re.compile(r"\{\{(\w+)\}\}")
_NAME = re.compile(r"^--\s*name:\s*([A-Za-z_][\w-]*)\s*$")
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@dataclass(frozen=True)
class Query:
    name: str
    doc: str
    sql: str

    @property
    def psycopg(self) -> str:
        """The SQL with `%(name)s` placeholders (literal % doubled)."""
        return _PARAM.sub(r"%(\1)s", self.sql.replace("%", "%%"))

    @property
    def duckdb(self) -> str:
        """The SQL with `$name` placeholders."""
        return _PARAM.sub(r"$\1", self.sql)

    @property
    def params(self) -> tuple[str, ...]:
        """Parameter names in order of first use."""
        return tuple(dict.fromkeys(_PARAM.findall(self.sql)))


def parse(text: str) -> dict[str, Query]:
    """Split a `.sql` file's text into its named queries."""
    queries: dict[str, Query] = {}
    name: str | None = None
    doc: list[str] = []
    body: list[str] = []

    def flush() -> None:
        if name is not None:
            queries[name] = Query(name, " ".join(doc).strip(), "\n".join(body).strip())

    for line in text.splitlines():
        match = _NAME.match(line)
        if match:
            flush()
            name, doc, body = match.group(1).replace("-", "_"), [], []
        elif name is not None and not body and line.startswith("--"):
            doc.append(line.lstrip("-").strip())
        elif name is not None:
            body.append(line)
    flush()
    return queries


@cache
def load(folder: Path) -> dict[str, Query]:
    """All named queries of every `.sql` file in `folder`; a duplicate name is an error."""
    queries: dict[str, Query] = {}
    for path in sorted(folder.glob("*.sql")):
        for name, query in parse(path.read_text()).items():
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice (second time in {path})")
            queries[name] = query
    return queries


def render(queries: dict[str, Query], name: str, **expressions: str) -> Query:
    """Query `name` of `queries` with each `{{key}}` filled: by `expressions[key]`, else by
    the named fragment `key` of `queries` (filled the same way)."""
    if name not in queries:
        raise KeyError(f"no query named {name!r}")

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
    return Query(query.name, query.doc, fill(query.sql))
