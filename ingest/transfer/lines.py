"""Reading import files into records (docs/import-format.md): blocks of lines of a JSONL or
CSV file, each line's kind and fields, a CSV cell's typed value, and the check of a user
row. ingest/transfer.py turns the records into checked rows and writes them."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from ingest.errors import ValidationError
from ingest.store import limits, validation
from ingest.store.vocabulary import USER_ROLES
from ingest.transfer import bulk
from ingest.transfer.csv_cells import restore_formula
from ingest.transfer.file_format import (
    COLUMNS,
    CSV_HEADER,
    CSV_NULL,
    ESCAPED_NULL,
    JSON_TEXT_COLUMNS,
    KINDS,
    TEXT_COLUMNS,
    format_of,
)

_KIND_ALIASES = {alias: kind for kind, table in KINDS.items()
                 for alias in (kind, kind + "s", table)}  # fmt: skip


# A block: (format, path, CSV header or None, [(line number, text or cells, problem)]).
Block = tuple[str, str, list[str] | None, list[tuple[int, Any, str | None]]]


def read_blocks(path: Path, size: int = 2_000) -> Iterator[Block]:
    """The lines of an import file in blocks of `size` (see Block)."""
    fmt = format_of(path)
    # utf-8-sig: a byte order mark at the start is not part of line 1. surrogateescape: a
    # byte that is not UTF-8 becomes a marker that rejects its line only (undecodable).
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as file:
        header: list[str] | None = None
        if fmt == "jsonl":
            items: Iterator = (
                (n, text, undecodable(text)) for n, text in enumerate(file, 1) if text.strip()
            )
        else:
            header, items = csv_items(file)
        block: list = []
        for item in items:
            block.append(item)
            if len(block) >= size:
                yield fmt, str(path), header, block
                block = []
        if block:
            yield fmt, str(path), header, block


class BadLine(Exception):
    """A line that is not a record at all (bad JSON, wrong number of CSV fields)."""


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def undecodable(text: str) -> str | None:
    """Why a line read with errors="surrogateescape" is not UTF-8 text, or None when it is."""
    bad = _ESCAPED_BYTE.search(text)
    if bad is None:
        return None
    byte = ord(bad.group()) - 0xDC00
    return (
        f"not valid UTF-8: byte 0x{byte:02x} at character {bad.start() + 1} (save the file "
        "as UTF-8)"
    )


def json_text(text: str) -> Any:
    """json.loads, with nesting too deep for Python's parser reported as a ValueError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(
            f"JSON is nested too deeply (at most {limits.MAX_JSON_DEPTH} levels)"
        ) from None


def kind_of(value: Any, fields: Iterable[str]) -> str:
    if value not in (None, ""):
        if value not in _KIND_ALIASES:
            raise ValidationError("type", f"unknown type {value!r}", list(KINDS))
        return _KIND_ALIASES[value]
    names = set(fields)
    if "task_id" in names:
        return "task"
    if "source_type" in names:
        return "run"
    if names & {"display_name", "email", "team", "role"}:
        return "user"
    raise ValidationError("type", "missing, and the fields do not tell", list(KINDS))


def jsonl_fields(text: str) -> tuple[str, dict]:
    try:
        record = json_text(text)
    except ValueError as error:
        raise BadLine(f"not valid JSON: {error}") from None
    if not isinstance(record, dict):
        raise BadLine(f"must be a JSON object, got {type(record).__name__}")
    return kind_of(record.pop("type", None), record), record


def csv_items(file: TextIO) -> tuple[list[str] | None, Iterator]:
    reader = csv.reader(file)
    header = next(reader, None)
    if header is None:
        return None, iter(())
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        return header, iter([(1, None, "header: a column name appears twice")])
    problem = undecodable("\x1f".join(header))
    if problem:
        return header, iter([(1, None, f"header: {problem}")])

    def items() -> Iterator[tuple[int, Any, str | None]]:
        line_no = reader.line_num + 1
        for cells in reader:
            start, line_no = line_no, reader.line_num + 1
            if not any(cells):
                continue
            if len(cells) != len(header):
                problem = f"expected {len(header)} fields like the header, got {len(cells)}"
                yield start, None, problem
            else:
                yield start, cells, undecodable("\x1f".join(cells))

    return header, items()


def csv_fields(header: list[str] | None, cells: list[str]) -> tuple[str, dict]:
    record = dict(zip(header or [], cells, strict=True))
    kind = kind_of(record.pop("type", None), header or [])
    return kind, csv_values(kind, record)


def csv_values(kind: str, record: dict[str, str]) -> dict[str, Any]:
    """Typed values of a CSV record's cells that belong to `kind` (see the format doc)."""
    own = set(COLUMNS[kind])
    values: dict[str, Any] = {}
    for name, cell in record.items():
        cell = restore_formula(cell)
        if name not in own:
            if cell and name not in CSV_HEADER:
                raise ValidationError(name, "unknown column", COLUMNS[kind])
            continue
        if name in TEXT_COLUMNS[kind]:
            if cell == CSV_NULL:
                values[name] = None
            else:
                values[name] = cell[1:] if ESCAPED_NULL.match(cell) else cell
        elif cell == "" or cell == CSV_NULL:
            continue  # absent: the column's default (NULL where nullable)
        elif name in JSON_TEXT_COLUMNS:
            try:
                values[name] = json_text(cell)
            except ValueError as error:
                raise ValidationError(name, f"must be JSON text: {error}") from None
        else:
            values[name] = cell
    return values


def validate_user(fields: dict) -> dict:
    """Check one ai_users row: id (required text), display_name, email, team, role, times."""
    clean: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in bulk.USER_COLUMNS:
            raise ValidationError(str(name), "unknown column", bulk.USER_COLUMNS)
        if name in ("created_at", "updated_at"):
            if value is None:
                raise ValidationError(name, "must not be null")
            clean[name] = validation.validate_run({name: value}, partial=True)[name]
        elif value is None:
            if name in ("id", "display_name", "role"):
                raise ValidationError(name, "must not be null")
            clean[name] = None
        elif not isinstance(value, str) or "\x00" in value:
            raise ValidationError(name, f"must be a string without NUL, got {value!r}")
        else:
            clean[name] = value
    if not clean.get("id"):
        raise ValidationError("id", "is required (a non-empty string)")
    if "role" in clean and clean["role"] not in USER_ROLES:
        raise ValidationError("role", f"unknown value {clean['role']!r}", USER_ROLES)
    return clean
