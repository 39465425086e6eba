"""Reading the mirror's rows from Postgres into Arrow, through ADBC, with the named queries
of queries/sql/postgres/mirror_extract.sql (never row by row through Python)."""

from __future__ import annotations

import re
from typing import Any

from ingest.store import sqlfiles
from queries import sqltext

BATCH_SIZE_HINT = "adbc.postgresql.batch_size_hint_bytes"
_DOLLAR_PARAM = re.compile(r"\$([A-Za-z_]\w*)")


def adbc_text(query: sqlfiles.Query) -> str:
    """The query with ADBC's positional placeholders ($1, $2, ...) in params order."""
    names = query.params
    return _DOLLAR_PARAM.sub(lambda m: f"${names.index(m.group(1)) + 1}", query.duckdb)


def extract(cur: Any, name: str, since: str) -> Any:
    """Rows of query `name` changed since the horizon `since`, as an Arrow table (small:
    bound parameter)."""
    cur.execute(adbc_text(sqltext.render("postgres", name)), (since,))
    return cur.fetch_arrow_table()


def extract_all(cur: Any, name: str) -> Any:
    """Every row of query `name`, as a stream of Arrow batches: without parameters ADBC uses
    COPY and hands over ~16 MB batches instead of materialising the whole result."""
    cur.adbc_statement.set_options(**{BATCH_SIZE_HINT: str(16 << 20)})
    cur.execute(sqltext.render("postgres", name).sql)
    return cur.fetch_record_batch()
