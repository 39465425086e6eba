"""Import and export of raw users, runs and tasks as JSONL or CSV (docs/import-format.md).

- `import_files(paths)`: every line checked (`ingest.validation`), written with the bulk
  path (`ingest.bulk`): idempotent (a row whose id / task_id exists is skipped), exactly
  once even across a dropped connection. A bad line is reported with its file, line number
  and reason and the others are written: bytes that are not UTF-8, JSON nested too deeply,
  an id seen earlier in the same import with other content. A byte order mark is skipped.
  Rows may come in any order: a task whose run (or a fork whose parent) is not written yet
  waits until the end of the import.
- `export(out, fmt)`: the same format back, so export → import into an empty database
  round-trips every column.

This module is the import; the file format both share is ingest/transfer_format.py, the
reading of lines ingest/transfer_lines.py, the export ingest/transfer_export.py.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import psycopg

from ingest.access import redaction
from ingest.errors import ValidationError
from ingest.store import database, validation
from ingest.transfer import bulk
from ingest.transfer.export import EXPORT_QUERIES, export, export_file
from ingest.transfer.file_format import (
    COLUMNS,
    CSV_HEADER,
    CSV_NULL,
    FORMATS,
    JSON_TEXT_COLUMNS,
    KINDS,
    RAW_JSON_COLUMNS,
    TEXT_COLUMNS,
    format_of,
)
from ingest.transfer.lines import (
    BadLine,
    Block,
    csv_fields,
    jsonl_fields,
    read_blocks,
    validate_user,
)

# Names callers import from here (the import is this module; the format, the reading of
# lines and the export have their own modules).
__all__ = [
    "COLUMNS",
    "CSV_HEADER",
    "CSV_NULL",
    "EXPORT_QUERIES",
    "FORMATS",
    "JSON_TEXT_COLUMNS",
    "KINDS",
    "PARALLEL_BYTES",
    "RAW_JSON_COLUMNS",
    "TEXT_COLUMNS",
    "ImportSummary",
    "Rejection",
    "export",
    "export_file",
    "format_of",
    "import_files",
    "print_rejections",
    "validate_user",
]

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
    # Forked (so a script without a __main__ guard works) before this import connects; the
    # workers only parse text and never touch a connection they may have inherited.
    can_fork = "fork" in multiprocessing.get_all_start_methods()
    pool = (
        ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
        if workers > 0 and can_fork
        else None
    )
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
    orphans: list[_Row] = []
    for group, result in zip(order, writer.write(*batches), strict=True):
        summary.inserted[group[0]] += result.inserted
        summary.duplicates[group[0]] += result.duplicates
        orphans += [groups[group][i] for i in result.missing_parent]
    orphaned = {id(r) for r in orphans}
    masks = [(r.key, r.masks) for r in rows if r.masks and id(r) not in orphaned]
    if masks:
        writer.record_redactions(masks)
    return orphans


def _read(
    path: Path, pool: ProcessPoolExecutor | None = None, rules: tuple = ()
) -> Iterator[_Row | Rejection]:
    """The file's lines as rows or rejections, in order (parsed by `pool` when given),
    redacted by `rules` (ingest.redaction)."""
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
        clean = validation.validate_task(fields)
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
