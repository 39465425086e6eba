"""The lake's manifest: the one object that says which files make up each table.

`_manifest.json` at the lake's root (docs/lake.md, "Manifest")::

    {"format": "ai-runs-lake", "version": 1, "generation": 7, "written_at": "...",
     "source": {"mirror_horizon": "...", "mirror_synced_at": "..."},
     "tables": {"tasks": {"partition_by": "month", "columns": [[name, type], ...],
                          "partitions": {"2026-09": {"files": ["tasks/month=2026-09/
                          v-3f2a.../part-0.parquet"], "rows": 1234, "fingerprint": "1234:98..."}}},
                "runs": {...}, "users": {"partition_by": null, "partitions": {"": {...}}},
                "archive_tasks": {...}, "archive_runs": {...}}}

Readers open only the files the manifest lists. A writer writes new files under fresh
names, then replaces the manifest atomically (keeping the one before it as
`_manifest.previous.json`), then deletes files neither of the two lists: a reader that
loaded either manifest can finish reading.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from queries.lake.store import LakeStore

MANIFEST = "_manifest.json"
PREVIOUS = "_manifest.previous.json"
FORMAT = "ai-runs-lake"
VERSION = 1


@dataclass
class Partition:
    """files: paths relative to the lake root; rows: row count; fingerprint: what the
    content was made from ("" when unknown, so the next export rewrites it)."""

    files: list[str]
    rows: int
    fingerprint: str


@dataclass
class Table:
    partition_by: str | None
    columns: list[list[str]] = field(default_factory=list)
    partitions: dict[str, Partition] = field(default_factory=dict)


@dataclass
class Manifest:
    generation: int = 0
    written_at: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)

    def files(self) -> set[str]:
        """Every file this manifest references."""
        return {f for t in self.tables.values() for p in t.partitions.values() for f in p.files}

    def table_files(self, name: str, months: set[str] | None = None) -> list[str]:
        """The files of table `name` (of the given partitions only, when `months`)."""
        table = self.tables.get(name)
        if table is None:
            return []
        return [
            f
            for key, part in sorted(table.partitions.items())
            if months is None or key in months
            for f in part.files
        ]

    def to_json(self) -> bytes:
        body = {"format": FORMAT, "version": VERSION, **asdict(self)}
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        body = json.loads(data)
        if body.get("format") != FORMAT or body.get("version") != VERSION:
            raise ValueError(
                f"not an {FORMAT} manifest of version {VERSION}: "
                f"format={body.get('format')!r}, version={body.get('version')!r}"
            )
        tables = {
            name: Table(
                partition_by=t["partition_by"],
                columns=t.get("columns", []),
                partitions={k: Partition(**p) for k, p in t["partitions"].items()},
            )
            for name, t in body["tables"].items()
        }
        return cls(body["generation"], body["written_at"], body.get("source", {}), tables)


def read_manifest(store: LakeStore, name: str = MANIFEST) -> Manifest | None:
    """The lake's current manifest (or the previous one), None when the lake is empty."""
    data = store.read_bytes(name)
    return None if data is None else Manifest.from_json(data)


def swap_manifest(store: LakeStore, new: Manifest, old: Manifest | None) -> None:
    """Make `new` the current manifest (its generation and time set here), keeping `old`
    as the previous one, then delete files neither references (new files of an
    interrupted writer included). Call under `store.writer_lock()`."""
    new.generation = (old.generation if old else 0) + 1
    new.written_at = datetime.now(UTC).isoformat()
    if old is not None:
        store.write_bytes_atomic(PREVIOUS, old.to_json())
    store.write_bytes_atomic(MANIFEST, new.to_json())
    collect_garbage(store, new, old)


def collect_garbage(store: LakeStore, current: Manifest, previous: Manifest | None) -> list[str]:
    """Delete the Parquet files that neither `current` nor `previous` references; their
    paths. Files of a writer that was interrupted before its swap go here too."""
    keep = current.files() | (previous.files() if previous else set())
    doomed = [f for f in store.files() if f.endswith(".parquet") and f not in keep]
    store.delete(doomed)
    return doomed
