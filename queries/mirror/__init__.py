"""The DuckDB analytics mirror of Postgres: open, sync (full load, incremental apply),
check (docs/design.md)."""

from queries.mirror.files import MirrorLocked, discard_mirror, is_damage, open_mirror
from queries.mirror.sync import (
    MIRROR_SCHEMA_VERSION,
    SyncResult,
    mirror_file,
    mirror_freshness,
    sync_mirror,
)

__all__ = [
    "MIRROR_SCHEMA_VERSION",
    "MirrorLocked",
    "SyncResult",
    "discard_mirror",
    "is_damage",
    "mirror_file",
    "mirror_freshness",
    "open_mirror",
    "sync_mirror",
]
