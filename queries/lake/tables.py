"""The lake's Delta Lake tables: where each lives, how a change is committed, what each
commit records, and how old files go (docs/lake.md).

Every change is one Delta transaction on one table, written by `deltalake` (delta-rs):

- `replace_months` swaps the rows of some months for new ones (replaceWhere: an overwrite
  with the predicate `month IN (...)`), or the whole table when `months` is None. A reader
  sees the table before or after, never between; a month that gets no rows disappears.
- `append` adds rows (the archive).

Each commit of ours carries custom metadata (keys `ai_runs.*`) in Delta's commitInfo, so
any Delta client's history shows it: the mirror state the rows come from (the source
horizon), the months it changed, and the fingerprint of every month of the table after it
(what the next export compares with the mirror, queries.lake.export). `table_state` reads
them back, also right when two writers committed side by side (Delta rebases a commit
over another one that touched other files; the months of such a commit count as unknown).

One writer at a time, as Delta's protocol allows: a commit is the creation of the next
`_delta_log/N.json`, which only one writer can create (an atomic rename on a local disk, a
conditional PUT on S3). A writer whose read snapshot was overtaken by a commit that touched
the same files fails with LakeConflict, and nothing of it is visible.

`vacuum` is Delta's own: files that a newer version replaced are deleted once they are
older than the retention (AI_RUNS_LAKE_RETENTION), so a reader of an older version has that
long to finish.

Delta takes predicates as SQL text and has no bound parameters: the only values put into
one are months, and `month_predicate` accepts nothing but YYYY-MM.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from queries.lake.store import LakeStore

# Lake table -> folder under the lake's root.
TABLE_PATHS = {
    "tasks": "tasks",
    "runs": "runs",
    "users": "users",
    "scores": "scores",
    "archive_tasks": "archive/tasks",
    "archive_runs": "archive/runs",
}
LIVE_TABLES = ("tasks", "runs", "users", "scores")
PARTITION = "month"
ROW_GROUP_ROWS = 128 * 1024
META = "ai_runs."
# Operations that change files but not rows, or nothing at all.
_NEUTRAL = {"VACUUM START", "VACUUM END", "OPTIMIZE", "SET TBLPROPERTIES", "CHECKPOINT"}
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class LakeConflict(RuntimeError):
    """Another writer committed to the same part of a lake table first; nothing of this
    write is visible. Run it again."""


@dataclass
class TableState:
    """What the lake says about one table. version: the latest (None: no table yet);
    fingerprints: month -> fingerprint of its rows ('' when unknown: the next export
    rewrites it; {} with complete=False: nothing is known, rewrite the whole table)."""

    version: int | None
    fingerprints: dict[str, str] = field(default_factory=dict)
    complete: bool = False
    source: dict[str, Any] = field(default_factory=dict)


def uri(store: LakeStore, table: str) -> str:
    """Where Delta table `table` lives (a local path or s3://...)."""
    return store.uri(TABLE_PATHS[table])


def open_table(store: LakeStore, table: str, version: int | None = None) -> DeltaTable | None:
    """Lake table `table` (as of `version` when given), None when it does not exist yet."""
    try:
        return DeltaTable(uri(store, table), version=version, storage_options=store.storage_options)
    except TableNotFoundError:
        return None


def month_predicate(months: Iterable[str]) -> str:
    """`month IN ('2026-04', ...)` for a Delta write. ValueError for anything that is not
    a YYYY-MM month (the values are the only text that goes into the predicate)."""
    chosen = sorted(set(months))
    bad = [m for m in chosen if not _MONTH.match(m)]
    if bad or not chosen:
        raise ValueError(f"months must be YYYY-MM, got {bad or 'none'}")
    return f"{PARTITION} IN ({', '.join(repr(m) for m in chosen)})"


def commit_metadata(**values: Any) -> dict[str, str]:
    """Our commitInfo entries: `ai_runs.<key>` = JSON of the value."""
    return {META + key: json.dumps(value, sort_keys=True) for key, value in values.items()}


def replace_months(
    store: LakeStore,
    table: str,
    current: DeltaTable | None,
    data: pa.RecordBatchReader,
    months: Iterable[str] | None,
    metadata: dict[str, Any],
    *,
    retention_hours: int,
) -> int:
    """One transaction on `table`: the rows of `months` (every row, when None) become
    `data`, which must hold only rows of those months. `current` is the snapshot the caller
    read (its version is the transaction's read version; None: the table is new). Returns
    the new version; LakeConflict when another writer got in the way."""
    partitioned = table != "users"
    options: dict[str, Any] = {"mode": "overwrite"}
    if months is not None:
        options["predicate"] = month_predicate(months)
    else:
        options["schema_mode"] = "overwrite"
    return _write(store, table, current, data, metadata, options, partitioned, retention_hours)


def append(
    store: LakeStore,
    table: str,
    current: DeltaTable | None,
    data: pa.RecordBatchReader,
    metadata: dict[str, Any],
    *,
    retention_hours: int,
) -> int:
    """One transaction adding `data` to partitioned `table`; the new version."""
    options = {"mode": "append"}
    return _write(store, table, current, data, metadata, options, True, retention_hours)


def _write(
    store: LakeStore,
    table: str,
    current: DeltaTable | None,
    data: pa.RecordBatchReader,
    metadata: dict[str, Any],
    options: dict[str, Any],
    partitioned: bool,
    retention_hours: int,
) -> int:
    read_version = current.version() if current is not None else None
    info = commit_metadata(read_version=read_version, **metadata)
    target = current if current is not None else uri(store, table)
    try:
        write_deltalake(
            target,
            data,
            partition_by=[PARTITION] if partitioned else None,
            storage_options=store.storage_options if current is None else None,
            writer_properties=WriterProperties(
                compression="ZSTD", max_row_group_size=ROW_GROUP_ROWS
            ),
            commit_properties=CommitProperties(custom_metadata=info),
            configuration=_table_properties(retention_hours) if current is None else None,
            **options,
        )
    except CommitFailedError as exc:
        raise LakeConflict(
            f"lake table {table}: another writer committed first ({exc}); nothing of this "
            "write is visible. Run it again."
        ) from exc
    written = open_table(store, table)
    assert written is not None
    return written.version()


def _table_properties(retention_hours: int) -> dict[str, str]:
    """Set when a table is created, so other Delta engines vacuum it with our retention."""
    return {"delta.deletedFileRetentionDuration": f"interval {retention_hours} hours"}


def commits(table: DeltaTable, limit: int | None = None) -> list[dict[str, Any]]:
    """The table's commits, newest first: Delta's commitInfo with our `ai_runs.*` values
    decoded (JSON) and without the prefix under `"ai_runs"`."""
    entries = []
    for entry in table.history(limit):
        ours = {k[len(META) :]: json.loads(v) for k, v in entry.items() if k.startswith(META)}
        plain = {k: v for k, v in entry.items() if not k.startswith(META)}
        entries.append(plain | {"ai_runs": ours})
    return entries


def table_state(table: DeltaTable | None) -> TableState:
    """The fingerprints of the months of `table` as its commits record them.

    The newest commit of ours holds the whole map; months changed by commits it did not see
    (committed between its read version and itself) are marked unknown; a data change by
    another program makes everything unknown."""
    if table is None:
        return TableState(version=None)
    state = _state_from(table.version(), commits(table, 50))
    if state is None:  # the base, or its read version, is further back than 50 commits
        state = _state_from(table.version(), commits(table))
    return state or TableState(version=table.version())


def _state_from(version: int, history: list[dict[str, Any]]) -> TableState | None:
    """The state from `history` (newest first), None when it does not reach far enough."""
    base, dirty, everything = None, set(), False
    for entry in history:
        ours = entry["ai_runs"]
        if base is None:
            if "fingerprints" in ours:
                base = entry
            elif entry.get("operation") not in _NEUTRAL:
                everything = True
            continue
        read_version = base["ai_runs"].get("read_version")
        if read_version is None or entry["version"] <= read_version:
            break
        if "months" in ours and ours["months"] is not None:  # ours, unseen by the base
            dirty |= set(ours["months"])
        elif entry.get("operation") not in _NEUTRAL:
            everything = True
    else:
        reached_start = not history or history[-1]["version"] == 0
        if not reached_start:
            return None
    source = base["ai_runs"].get("source", {}) if base else {}
    if base is None or everything:
        return TableState(version=version, source=source)
    prints = dict(base["ai_runs"]["fingerprints"])
    prints.update({month: "" for month in dirty})
    return TableState(version, prints, True, source)


def vacuum(store: LakeStore, table: str, retention_hours: int) -> list[str]:
    """Delta's vacuum of `table`: delete the files no version younger than the retention
    needs (full: leftovers of interrupted writes too). Commits only when there is
    something to delete; the files deleted."""
    current = open_table(store, table)
    if current is None:
        return []
    options = {"retention_hours": retention_hours, "enforce_retention_duration": False}
    if not current.vacuum(dry_run=True, full=True, **options):
        return []
    return current.vacuum(dry_run=False, full=True, **options)
