"""Converting a lake of the old layout into Delta tables, once (docs/lake.md, "Migration").

Before Delta, the lake was Parquet files in `<table>/month=YYYY-MM/v-<id>/` folders that
only our own `_manifest.json` listed. The first `ai-runs lake sync` on such a lake:

1. copies the archive tables (`archive_tasks`, `archive_runs`: rows Postgres no longer
   has, so they cannot be re-exported) from the files the manifest lists into the Delta
   tables `archive/tasks` and `archive/runs`, each in one commit that records the
   manifest's generation (a conversion interrupted after it is not repeated);
2. lets the export rewrite the live tables from the mirror (they have no Delta table yet,
   so every month is written);
3. `Migration.finish`: deletes the old layout's files, the manifest last, and says so.

Until then the old files stay readable through the old manifest; after it, the Delta
tables are the lake.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.dataset as ds

from queries.lake import tables
from queries.lake.store import LakeStore

log = logging.getLogger(__name__)

OLD_MANIFEST = "_manifest.json"
_OLD_ROOT_FILES = ("_manifest.previous.json", "_lake.lock", OLD_MANIFEST)  # manifest last
_OLD_DATA_FILE = re.compile(r"(^|/)v-[0-9a-f]+/part-\d+\.parquet$")


@dataclass
class Migration:
    """An old-layout lake being converted: its manifest's generation and the archive rows
    copied per table."""

    generation: int
    archived: dict[str, int] = field(default_factory=dict)

    def finish(self, store: LakeStore) -> str:
        """Delete the old layout's files (the manifest last); the message to show."""
        old = [f for f in store.files() if _OLD_DATA_FILE.search(f)]
        store.delete(old)
        store.delete([f for f in _OLD_ROOT_FILES if store.read_bytes(f) is not None])
        message = (
            f"converted the lake at {store.url} from the old manifest layout (generation "
            f"{self.generation}) to Delta Lake tables: the archive was copied "
            f"({self.archived.get('archive_tasks', 0)} tasks, "
            f"{self.archived.get('archive_runs', 0)} runs), the live tables were rewritten "
            f"from the mirror, and {len(old)} old Parquet files and the manifest were removed"
        )
        log.info("%s", message)  # the caller shows it (ExportResult.migrated)
        return message


def migrate_old_layout(store: LakeStore, *, retention_hours: int) -> Migration | None:
    """If the lake at `store` has the old layout, copy its archive into Delta tables and
    return the Migration to finish once the live tables are written; None otherwise.
    ValueError when `_manifest.json` is not the old lake's manifest."""
    data = store.read_bytes(OLD_MANIFEST)
    if data is None:
        return None
    body = json.loads(data)
    if body.get("format") != "ai-runs-lake" or body.get("version") != 1:
        raise ValueError(
            f"{store.url}/{OLD_MANIFEST} is not a manifest of the old ai-runs lake "
            f"(format={body.get('format')!r}, version={body.get('version')!r}); move it away"
        )
    migration = Migration(generation=int(body["generation"]))
    for table in ("archive_tasks", "archive_runs"):
        partitions = body["tables"].get(table, {}).get("partitions", {})
        files = [f for part in partitions.values() for f in part["files"]]
        migration.archived[table] = _copy_archive(store, table, files, migration, retention_hours)
    return migration


def _copy_archive(
    store: LakeStore, table: str, files: list[str], migration: Migration, retention_hours: int
) -> int:
    """Copy the old files of archive table `table` into its Delta table (whole, one
    commit); rows copied (also when an earlier, interrupted conversion copied them)."""
    current = tables.open_table(store, table)
    if current is not None:
        for entry in tables.commits(current):
            if entry["ai_runs"].get("migrated_from_generation") == migration.generation:
                return entry["ai_runs"].get("rows", 0)
    if not files:
        return 0
    dataset = ds.dataset(
        [store.path(f) for f in files],
        filesystem=store.fs,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("month", pa.string())]), flavor="hive"),
        partition_base_dir=store.path(tables.TABLE_PATHS[table]),
    )
    rows = dataset.count_rows()
    metadata = {
        "migrated_from_generation": migration.generation,
        "rows": rows,
        "months": None,
        "writer": "migration from the manifest layout",
    }
    tables.replace_months(
        store,
        table,
        current,
        dataset.scanner(batch_size=128 * 1024).to_reader(),
        None,
        metadata,
        retention_hours=retention_hours,
    )
    return rows
