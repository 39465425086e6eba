"""The DuckDB analytics mirror of Postgres (docs/design.md, The mirror).

- files.py: opening the mirror file, and which process may (one read-write process at a
  time), discarding it;
- sync.py: one sync (full load or incremental apply, then the self-check), each step
  beside its SQL in queries/sql/.
"""

from queries.mirror.files import (
    DEFAULT_MEMORY_LIMIT,
    MirrorLocked,
    discard_mirror,
    is_damage,
    open_mirror,
)
from queries.mirror.sync import (
    MIRROR_SCHEMA_VERSION,
    VERIFY_EVERY_SECONDS,
    SyncResult,
    mirror_freshness,
    sync_mirror,
)

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "MIRROR_SCHEMA_VERSION",
    "VERIFY_EVERY_SECONDS",
    "MirrorLocked",
    "SyncResult",
    "discard_mirror",
    "is_damage",
    "mirror_freshness",
    "open_mirror",
    "sync_mirror",
]
