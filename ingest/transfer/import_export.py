"""Import and export of users, runs and tasks as JSONL or CSV files (docs/import-format.md):
`ai-runs import` and `ai-runs export`.

- The format, shared by both directions: the kinds of rows and their columns, how a CSV
  cell holds text, JSON and NULL, and cells a spreadsheet will not run as formulas.
- Reading: blocks of lines of a JSONL or CSV file, each line's kind and fields.
- `export(out, fmt)`: every user, run and task in that format, so export -> import into an
  empty database round-trips every column.
- `import_files(paths)`: every line checked (`ingest.store.validation`; a task's row is
  built as on every write path, ingest.tracking.task_row), written with the bulk path
  (ingest.transfer.bulk): idempotent (a row whose id / task_id exists is skipped), exactly
  once even across a dropped connection. A bad line is reported with its file, line number
  and reason and the others are written: bytes that are not UTF-8, JSON nested too deeply,
  an id seen earlier in the same import with other content. A byte order mark is skipped.
  Rows may come in any order: a task whose run (or a fork whose parent) is not written yet
  waits until the end of the import.

SQL: ingest/transfer/sql/export.sql (the export queries).
"""

from __future__ import annotations

import csv
import gc
import json
import multiprocessing
import os
import re
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import psycopg

from ingest.access import redaction
from ingest.errors import ValidationError
from ingest.store import database, limits, sqlfiles, validation
from ingest.store.vocabulary import USER_ROLES
from ingest.tracking import task_row
from ingest.transfer import bulk

# ------------------------------------------------------------ the format

FORMATS = ("jsonl", "csv")
KINDS = {"user": "ai_users", "run": "ai_runs", "task": "ai_tasks"}

# Export columns per kind (import accepts the same; derived run totals are ignored on import).
COLUMNS = {
    "user": bulk.USER_COLUMNS,
    "run": bulk.RUN_COLUMNS + bulk.RUN_DERIVED,
    "task": bulk.TASK_COLUMNS,
}
CSV_HEADER = ("type",) + tuple(dict.fromkeys(c for cols in COLUMNS.values() for c in cols))
TEXT_COLUMNS = {
    "user": frozenset({"id", "display_name", "email", "team", "role"}),
    "run": frozenset({"user_id", "source_type", "source_id", "name", "description", "status"}),
    "task": frozenset({"user_id", "service", "task_name", "provider", "endpoint", "model",
                       "model_id", "response_text", "status", "cost_source"}),
}  # fmt: skip
JSON_TEXT_COLUMNS = bulk.JSON_COLUMNS | {"tags"}
RAW_JSON_COLUMNS = JSON_TEXT_COLUMNS | {
    "tokens_input", "tokens_output", "tokens_cached_input", "tokens_reasoning", "tokens_total",
    "tokens_cache_write", "time_to_first_token", "total_time", "total_tokens", "message_count",
    "task_count", "forked_from_message", "is_starred", "response_complete",
}  # fmt: skip
CSV_NULL = "\\N"
# A text value that looks like CSV_NULL (backslashes, then N) gets one more backslash.
ESCAPED_NULL = re.compile(r"^\\+N$")


def format_of(path: str | Path) -> str:
    """'jsonl' or 'csv' from a file name; ValueError for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise ValueError(f"{path}: unknown format {suffix!r} (allowed: .jsonl, .ndjson, .csv)")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_QUOTED_FORMULA = re.compile("^'*[=+\\-@\t\r]")
_NEUTRALIZED = re.compile("^'+[=+\\-@\t\r]")


def neutralize_formula(cell: str) -> str:
    """`cell` safe to open in a spreadsheet: "'" + cell when it starts (after any quotes)
    with = + - @ tab or CR; otherwise unchanged."""
    return "'" + cell if _QUOTED_FORMULA.match(cell) else cell


def restore_formula(cell: str) -> str:
    """The inverse of neutralize_formula (for cells written by it)."""
    return cell[1:] if _NEUTRALIZED.match(cell) else cell


# ------------------------------------------------------------ reading lines

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


# The longest CSV field read: a long text or a JSON text at its limit (docs/limits.md), plus
# room for the formula and NULL escapes and for Postgres spelling JSON a little longer than
# Python. A longer field is refused naming its line and column; the validation of each
# column refuses one over that column's own limit.
CSV_FIELD_LIMIT = limits.MAX_LONG_TEXT + 64 * 1024


class _RecordLines:
    """The file's lines, keeping those of the CSV record being read: when a field is too
    long, they tell which column it was."""

    def __init__(self, file: TextIO) -> None:
        self.file, self.lines = iter(file), []

    def __iter__(self) -> _RecordLines:
        return self

    def __next__(self) -> str:
        line = next(self.file)
        self.lines.append(line)
        return line

    def column_stopped_in(self, header: list[str]) -> str:
        """The header name of the field the reader stopped in (its index when past it)."""
        separators = _CSV_SEPARATORS.findall("".join(self.lines))
        index = sum(1 for found in separators if found == ",")
        return header[index] if index < len(header) else f"field {index + 1}"


# A quoted field (skipped whole, also when unterminated) or a field separator.
_CSV_SEPARATORS = re.compile(r'"[^"]*(?:"|$)|,')


def csv_items(file: TextIO) -> tuple[list[str] | None, Iterator]:
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    lines = _RecordLines(file)
    reader = csv.reader(lines)
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
        while True:
            lines.lines = []
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:  # the reader cannot resynchronize: stop this file
                yield line_no, None, _csv_stop(error, lines.column_stopped_in(header))
                return
            start, line_no = line_no, reader.line_num + 1
            if not any(cells):
                continue
            if len(cells) != len(header):
                problem = f"expected {len(header)} fields like the header, got {len(cells)}"
                yield start, None, problem
            else:
                yield start, cells, undecodable("\x1f".join(cells))

    return header, items()


def _csv_stop(error: csv.Error, column: str) -> str:
    if "field larger than field limit" in str(error):
        problem = f"longer than {CSV_FIELD_LIMIT:,} characters (docs/limits.md)"
    else:
        problem = f"not valid CSV: {error}"
    return f"{column}: {problem}; the rest of the file was not read"


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
        elif not isinstance(value, str):
            raise ValidationError(name, f"must be a string, got {type(value).__name__}")
        else:
            clean[name] = limits.check_text(name, value)
    if not clean.get("id"):
        raise ValidationError("id", "is required (a non-empty string)")
    if "role" in clean and clean["role"] not in USER_ROLES:
        raise ValidationError("role", f"unknown value {clean['role']!r}", USER_ROLES)
    return clean


# ------------------------------------------------------------ export

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
    queries = sqlfiles.beside(__file__)
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
    """One CSV record; every cell neutralized against formulas (`neutralize_formula`)."""
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


# ------------------------------------------------------------ import

PARALLEL_BYTES = 4_000_000  # inputs larger than this are parsed by worker processes
_IN_FLIGHT = 4  # blocks handed to the workers ahead of the writer
_COPY_COLUMN = re.compile(r"COPY \w+, line \d+, column (\w+)")


@dataclass
class Rejection:
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class ImportSummary:
    """Counts per kind (user, run, task) and every rejected line."""

    inserted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    duplicates: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    rejected: list[Rejection] = field(default_factory=list)
    lines: int = 0
    retries: int = 0
    seconds: float = 0.0

    def text(self) -> str:
        """A short human summary (one line per kind seen, then rejections)."""
        parts = [
            f"{kind}s: {self.inserted[kind]:,} inserted, {self.duplicates[kind]:,} skipped "
            "as duplicates"
            for kind in KINDS
            if self.inserted[kind] or self.duplicates[kind]
        ]
        parts.append(f"rejected lines: {len(self.rejected):,}")
        extra = f", {self.retries} retried batch(es)" if self.retries else ""
        return "\n".join(parts) + f"\n({self.lines:,} lines in {self.seconds:.1f}s{extra})"


@dataclass
class _Row:
    kind: str
    columns: tuple[str, ...]
    line: str
    key: str
    parent: str | None
    path: str
    line_no: int
    masks: dict[str, int] | None = None  # redaction masks per field (tasks)


# Over 60 lines: the import's loop (read, check, batch, write, retry the orphans) with its
# resources (worker pool, writer) opened and closed around it in one place.
def import_files(
    paths: Sequence[str | Path],
    url: str | None = None,
    *,
    batch_rows: int = 5_000,
    retry_seconds: float = 120.0,
    on_progress: Callable[[int], None] | None = None,
    writer: bulk.BulkWriter | None = None,
    workers: int | None = None,
) -> ImportSummary:
    """Import JSONL/CSV files (format from the extension); return what happened.

    Lines are written in transactions of about `batch_rows` rows. `workers` processes parse,
    check and encode lines while this one writes (default: 2 for more than
    `PARALLEL_BYTES` of input on a multi-core machine that can fork, else 0 = all in this
    process).
    Raises only for a file that cannot be read or a database that stays unreachable past
    `retry_seconds`.
    """
    started = time.monotonic()
    summary = ImportSummary()
    if workers is None:
        size = sum(Path(p).stat().st_size for p in paths)
        workers = 2 if size > PARALLEL_BYTES and (os.cpu_count() or 1) > 1 else 0
    can_fork = "fork" in multiprocessing.get_all_start_methods()
    pool = _forked_pool(workers) if workers > 0 and can_fork else None
    own_writer = writer is None
    writer = writer or bulk.BulkWriter(database.database_url(url), retry_seconds=retry_seconds)
    rules = writer.redaction_rules()
    pending: list[_Row] = []
    waiting: list[_Row] = []  # rows whose run / parent run was not written yet
    seen = _SeenKeys()
    try:
        for path in paths:
            for row_or_rejection in _read(Path(path), pool, rules):
                summary.lines += 1
                if isinstance(row_or_rejection, _Row):
                    row_or_rejection = seen.same_as_before(row_or_rejection)
                if isinstance(row_or_rejection, Rejection):
                    summary.rejected.append(row_or_rejection)
                    continue
                pending.append(row_or_rejection)
                if len(pending) >= batch_rows:
                    waiting += _flush(writer, pending, summary)
                    pending = []
                    if on_progress:
                        on_progress(summary.lines)
        waiting += _flush(writer, pending, summary)
        # Rows that came before their run: once more now that every run is in.
        for row in _flush(writer, waiting, summary):
            parent = "run_id" if row.kind == "task" else "parent_run_id"
            summary.rejected.append(Rejection(
                row.path, row.line_no,
                f"{parent}: no run with id {row.parent} in the files or the database",
            ))  # fmt: skip
    finally:
        if own_writer:
            writer.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    summary.rejected.sort(key=lambda r: (r.path, r.line))
    summary.retries = writer.retries
    summary.seconds = time.monotonic() - started
    return summary


def _forked_pool(workers: int) -> ProcessPoolExecutor:
    """`workers` parser processes, forked now (so a script without a __main__ guard works)
    and before this import connects; they only parse text and never touch a connection
    they may have inherited.

    The heap is frozen for the garbage collector while they fork: a child then never
    collects an object it inherited (a database or Arrow handle whose finalizer would run
    against threads and locks that do not exist in the child, and crash it). The parent
    unfreezes at once; the children collect only what they allocate themselves.
    """
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    enabled = gc.isenabled()
    gc.disable()
    gc.freeze()
    try:
        pool.submit(int).result()  # a fork-context pool starts all its workers at once
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()
    return pool


class _SeenKeys:
    """The id of every row this import has read, with a hash of its content and where it
    was: about 140 bytes per row (a key of 17-byte uuid bytes, one int packing hash, file
    and line), so a million-row import remembers them in about 140 MB."""

    def __init__(self) -> None:
        self._rows: dict[bytes, int] = {}
        self._paths: list[str] = []

    def same_as_before(self, row: _Row) -> _Row | Rejection:
        """The row, or its rejection when an earlier line of this import had the same id
        (task_id for tasks) with different content. The same content again is a duplicate
        the writer counts as such."""
        try:
            key = row.kind[0].encode() + uuid.UUID(row.key).bytes
        except ValueError:  # users: text ids
            key = row.kind[0].encode() + row.key.encode("utf-8", "surrogatepass")
        if not self._paths or self._paths[-1] != row.path:
            self._paths.append(row.path)
        content = hash(row.line) & _HASH_MASK
        packed = content << 56 | (len(self._paths) - 1) << 32 | row.line_no
        first = self._rows.setdefault(key, packed)
        if first >> 56 == content:
            return row
        path, line_no = self._paths[(first >> 32) & 0xFFFFFF], first & 0xFFFFFFFF
        column = bulk.KEY_COLUMN[KINDS[row.kind]]
        return Rejection(
            row.path,
            row.line_no,
            f"{column}: {row.key} was already imported from {path}:{line_no} with different "
            "content (the first one is kept)",
        )


_HASH_MASK = (1 << 64) - 1


def _flush(writer: bulk.BulkWriter, rows: list[_Row], summary: ImportSummary) -> list[_Row]:
    """Write rows (users, then runs, then tasks) in one transaction; return the orphans.

    A row the database refuses although it passed validation (a constraint validation does
    not know) fails its whole transaction: the rows are split in halves and written again
    until that row is alone, then it is rejected with the database's message.
    """
    if not rows:
        return []
    try:
        return _write_rows(writer, rows, summary)
    except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as error:
        if len(rows) == 1:
            reason = str(error).splitlines()[0]
            where = _COPY_COLUMN.search(error.diag.context or "")
            column = error.diag.column_name or (where.group(1) if where else None)
            summary.rejected.append(
                Rejection(rows[0].path, rows[0].line_no, f"{column or 'row'}: {reason}")
            )
            return []
        middle = len(rows) // 2
        return _flush(writer, rows[:middle], summary) + _flush(writer, rows[middle:], summary)


def _write_rows(writer: bulk.BulkWriter, rows: list[_Row], summary: ImportSummary) -> list[_Row]:
    groups: dict[tuple[str, tuple[str, ...]], list[_Row]] = {}
    for row in rows:
        groups.setdefault((row.kind, row.columns), []).append(row)
    order = sorted(groups, key=lambda g: list(KINDS).index(g[0]))
    batches = [
        bulk.Batch(
            KINDS[kind],
            columns,
            [r.line for r in groups[kind, columns]],
            [r.key for r in groups[kind, columns]],
            [r.parent for r in groups[kind, columns]] if kind != "user" else None,
        )
        for kind, columns in order
    ]
    # The masks of the redactions applied to each task, recorded in the same transaction.
    masks = [(r.key, r.masks) for r in rows if r.masks]
    orphans: list[_Row] = []
    for group, result in zip(order, writer.write(*batches, redactions=masks), strict=True):
        summary.inserted[group[0]] += result.inserted
        summary.duplicates[group[0]] += result.duplicates
        orphans += [groups[group][i] for i in result.missing_parent]
    return orphans


def _read(
    path: Path, pool: ProcessPoolExecutor | None = None, rules: tuple = ()
) -> Iterator[_Row | Rejection]:
    """The file's lines as rows or rejections, in order (parsed by `pool` when given),
    redacted by `rules` (ingest.access.redaction)."""
    blocks = read_blocks(path)
    if pool is None:
        for block in blocks:
            yield from _parse_block(block, rules)
        return
    in_flight: deque[Future] = deque()
    for block in blocks:
        in_flight.append(pool.submit(_parse_block, block, rules))
        if len(in_flight) > _IN_FLIGHT:
            yield from in_flight.popleft().result()
    while in_flight:
        yield from in_flight.popleft().result()


def _parse_block(block: Block, rules: tuple = ()) -> list[_Row | Rejection]:
    """Check and encode a block of lines (runs in a worker process when there is a pool)."""
    fmt, path, header, items = block
    out: list[_Row | Rejection] = []
    for line_no, payload, problem in items:
        try:
            if problem is not None:
                raise BadLine(problem)
            kind, fields = jsonl_fields(payload) if fmt == "jsonl" else csv_fields(header, payload)
            out.append(_row(kind, fields, path, line_no, rules))
        except (ValidationError, BadLine) as error:
            out.append(Rejection(path, line_no, str(error)))
    return out


def _row(kind: str, fields: dict[str, Any], path: str, line_no: int, rules: tuple = ()) -> _Row:
    if kind == "user":
        clean = validate_user(fields)
    elif kind == "run":
        clean = validation.validate_run(fields)
        if clean.get("id") is None:
            raise ValidationError("id", "is required to import a run (its tasks refer to it)")
    else:
        clean = task_row.task_row(fields)  # as on every write path; not priced
    masked = {"run": redaction.RUN_FIELDS, "task": redaction.TASK_FIELDS}.get(kind, ())
    counts = redaction.redact_fields(clean, masked, rules)
    masks = {k: v for k, v in counts.items() if v} if kind == "task" else None
    columns = tuple(c for c in bulk.ALL_COLUMNS[KINDS[kind]] if c in clean)
    key = clean[bulk.KEY_COLUMN[KINDS[kind]]]
    parent_column = bulk.PARENT_COLUMN[KINDS[kind]]
    parent = clean.get(parent_column) if parent_column else None
    line = bulk.encode_row(columns, clean)
    try:
        line.encode()
    except UnicodeEncodeError as error:
        raise ValidationError(
            "row", f"not valid UTF-8 text (an unpaired surrogate at {error.start})"
        ) from None
    return _Row(
        kind, columns, line, str(key),
        str(parent) if parent is not None else None, path, line_no,
        masks or None,
    )  # fmt: skip


def print_rejections(
    summary: ImportSummary, limit: int = 100, stream: TextIO | None = None
) -> None:
    """Print up to `limit` rejected lines to `stream` (default standard error)."""
    stream = stream or sys.stderr
    for rejection in summary.rejected[:limit]:
        print(rejection, file=stream)
    if len(summary.rejected) > limit:
        print(f"... and {len(summary.rejected) - limit:,} more rejected lines", file=stream)
