"""Named SQL queries kept in `.sql` files (aiosql style), the loader of every `sql/` folder.

A file sits in a `sql/` folder beside the module that runs it and begins with the header
convention: what it holds and which module runs it, then this loader's line::

    -- usage.sql: spend, tokens and counts over time and by dimension (queries/usage.py).
    -- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

    -- name: cost_by_model
    -- Spend per model in USD; columns model, cost.
    SELECT ... WHERE {{engine.task_filter}} AND created_at >= :start

Parameters are written `:name` and rewritten for the driver: `%(name)s` for psycopg,
`$name` for DuckDB. Values are always bound, never formatted into the text. A `{{...}}` is
filled by `render`: `{{file.block}}` names where it comes from, the block `block` of
`file.sql` in the same folder (or, for `{{vocabulary.*}}`, a column list of
ingest/store/vocabulary.py); a name without a dot (`{{group}}`) is SQL text the Python
caller took from an allow-list, never user text. A caller may also replace a named
fragment (queries/access.py fills `{{engine.visible_run_filter}}` with TRUE).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ingest.store import vocabulary

_FRAGMENT = re.compile(r"\{\{(\w+(?:\.\w+)?)\}\}")
HEADER = "-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py."
_NAME = re.compile(r"^--\s*name:\s*([A-Za-z_][\w-]*)\s*$")
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@dataclass(frozen=True)
class Query:
    """One named query: its name, the comment under `-- name:`, its SQL, and the stem of
    the file it comes from (what `{{file.name}}` names)."""

    name: str
    doc: str
    sql: str
    file: str = ""

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


def parse(text: str, file: str = "") -> dict[str, Query]:
    """Split a `.sql` file's text into its named queries (`file`: the file's stem)."""
    queries: dict[str, Query] = {}
    name: str | None = None
    doc: list[str] = []
    body: list[str] = []

    def flush() -> None:
        if name is not None:
            queries[name] = Query(name, " ".join(doc).strip(), "\n".join(body).strip(), file)

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
        for name, query in parse(path.read_text(), path.stem).items():
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice (second time in {path})")
            queries[name] = query
    return queries


def render(queries: dict[str, Query], name: str, **expressions: str) -> Query:
    """Query `name` of `queries` with each `{{key}}` filled: by `expressions[key]` when given
    (a key may be dotted: `**{"engine.visible_run_filter": "TRUE"}`), else, for
    `{{file.block}}`, by the block `block` of `file.sql` among `queries` (filled the same
    way). KeyError naming the query and the key otherwise."""
    if name not in queries:
        raise KeyError(f"no query named {name!r}")

    def fill(text: str, depth: int = 0) -> str:
        if depth > 5:
            raise ValueError(f"fragments nested too deep in {name}")

        def one(match: re.Match[str]) -> str:
            key = match.group(1)
            if key in expressions:
                return expressions[key]
            file, _, block = key.rpartition(".")
            fragment = queries.get(block)
            # A bare {{block}} of the same folder is still filled for queries/lake/, whose
            # SQL is being rewritten (docs/lake.md); everywhere else a test wants the file.
            if fragment is not None and fragment.file == (file or fragment.file):
                return fill(fragment.sql.rstrip(";"), depth + 1)
            where = f"no block {block!r} in {file}.sql" if file else "a caller's expression"
            raise KeyError(f"{name}: nothing to fill {{{{{key}}}}} with ({where})")

        return _FRAGMENT.sub(one, text)

    query = queries[name]
    return Query(query.name, query.doc, fill(query.sql), query.file)


def beside(module_file: str) -> dict[str, Query]:
    """The queries of the `sql/` folder beside a module (`sqlfiles.beside(__file__)`), ready
    to run (see `named`)."""
    return named(Path(module_file).parent / "sql")


@cache
def named(folder: Path) -> dict[str, Query]:
    """Every query of `folder` ready to run: its fragments and the vocabulary's column lists
    (`{{vocabulary.task_columns}}`, ingest/store/vocabulary.py) filled in. For the folders
    whose queries take no caller expressions (the ingest packages' `sql/`)."""
    loaded = load(folder)
    lists = {f"vocabulary.{key}": text for key, text in vocabulary.SQL_COLUMN_LISTS.items()}
    return {name: render(loaded, name, **lists) for name in loaded}
