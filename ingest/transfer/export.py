"""Export of every user, run and task as JSONL or CSV (docs/import-format.md): the same
format `ai-runs import` reads, so export -> import into an empty database round-trips every
column. SQL: the export_* queries of ingest/sql/bulk.sql."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import psycopg

from ingest.store import database
from ingest.transfer.csv_cells import neutralize_formula
from ingest.transfer.file_format import (
    COLUMNS,
    CSV_HEADER,
    CSV_NULL,
    ESCAPED_NULL,
    FORMATS,
    KINDS,
    RAW_JSON_COLUMNS,
    TEXT_COLUMNS,
    format_of,
)

# The query of each kind, in export order (users, runs, tasks: a task after its run).
EXPORT_QUERIES = {"user": "export_users", "run": "export_runs", "task": "export_tasks"}


def export(out: TextIO, url: str | None = None, *, fmt: str = "jsonl") -> dict[str, int]:
    """Write every user, run and task to `out` in `fmt`; return the count per kind."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    counts = dict.fromkeys(KINDS, 0)
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer:
        writer.writerow(CSV_HEADER)
    queries = database.queries()
    with psycopg.connect(database.database_url(url)) as conn:
        # One snapshot for the three tables: no task without its run under concurrent writes.
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        conn.execute("SET TIME ZONE 'UTC'")
        for kind, query in EXPORT_QUERIES.items():
            with conn.cursor(name=query) as cur:
                cur.itersize = 5_000
                cur.execute(queries[query].psycopg)
                columns = COLUMNS[kind]
                for values in cur:
                    if writer:
                        writer.writerow(_csv_cells(kind, columns, values))
                    else:
                        out.write(_json_line(kind, columns, values))
                    counts[kind] += 1
    return counts


def export_file(path: str | Path, url: str | None = None, fmt: str | None = None) -> dict:
    """`export` into a file; the format defaults to the file's extension."""
    fmt = fmt or format_of(path)
    with open(path, "w", encoding="utf-8", newline="") as out:
        return export(out, url, fmt=fmt)


def _json_line(kind: str, columns: Sequence[str], values: Sequence[str | None]) -> str:
    parts = [f'"type":"{kind}"']
    for name, value in zip(columns, values, strict=True):
        if value is None:
            text = "null"
        elif name in RAW_JSON_COLUMNS:
            text = value
        else:
            text = json.dumps(value, ensure_ascii=False)
        parts.append(f'"{name}":{text}')
    return "{" + ",".join(parts) + "}\n"


def _csv_cells(kind: str, columns: Sequence[str], values: Sequence[str | None]) -> list[str]:
    """One CSV record; every cell neutralized against formulas (ingest/csv_cells.py)."""
    return [neutralize_formula(cell) for cell in _csv_plain_cells(kind, columns, values)]


def _csv_plain_cells(kind: str, columns: Sequence[str], values: Sequence[str | None]) -> list[str]:
    by_name = dict(zip(columns, values, strict=True))
    text_columns = TEXT_COLUMNS[kind]
    cells = [kind]
    for name in CSV_HEADER[1:]:
        value = by_name.get(name)
        if name not in by_name:
            cells.append("")
        elif name in text_columns:
            if value is None:
                cells.append(CSV_NULL)
            else:
                cells.append("\\" + value if ESCAPED_NULL.match(value) else value)
        else:
            cells.append("" if value is None else value)
    return cells
