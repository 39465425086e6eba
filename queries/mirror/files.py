"""Opening the DuckDB mirror file (docs/design.md, The mirror).

Processes: DuckDB lets one process open a file read-write. The dashboard process opens the
mirror once and syncs through that connection (`sync_mirror(con=con)`); threads use
`con.cursor()`. A second process (`ai-runs sync`) gets a clear error while it is held.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import duckdb

from ingest.store import config

log = logging.getLogger("queries.mirror")

DEFAULT_THREADS = min(2, os.cpu_count() or 1)
DEFAULT_MEMORY_LIMIT = "768MB"


class MirrorLocked(RuntimeError):
    """The mirror file is open read-write in another process."""


def open_mirror(
    path: str | Path | None = None,
    *,
    read_only: bool = False,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open (creating if missing) the mirror file; default path `config.mirror_path()`.

    The connection is set to UTC, `threads` (default min(2, CPUs)) and `memory_limit`
    (default 768MB; DuckDB spills beyond it) so a long-lived dashboard stays bounded.
    A file that is not a readable DuckDB database is deleted and recreated (empty, so the
    next sync rebuilds it), with a warning. Raises MirrorLocked (a RuntimeError) when
    another process holds the file read-write.
    """
    path = Path(path) if path is not None else config.mirror_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = {
        "threads": threads or DEFAULT_THREADS,
        "memory_limit": memory_limit or DEFAULT_MEMORY_LIMIT,
    }
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=settings)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise MirrorLocked(
                f"the mirror {path} is open in another process ({exc}); sync from that "
                "process (the dashboard syncs its own mirror) or stop it first"
            ) from exc
        if read_only:
            raise
        log.warning("mirror %s is corrupt (%s): deleting it and rebuilding from scratch", path, exc)
        remove_mirror_files(path)
        con = duckdb.connect(str(path), config=settings)
    except duckdb.Error as exc:
        if read_only:
            raise
        log.warning("mirror %s is unreadable (%s): deleting it and rebuilding", path, exc)
        remove_mirror_files(path)
        con = duckdb.connect(str(path), config=settings)
    con.execute("SET TimeZone = 'UTC'").fetchall()
    if not read_only:
        make_private(path)
    return con


def make_private(path: Path) -> None:
    """Leave the mirror file and its WAL readable by their owner only (0600): the mirror
    holds every user's runs, errors and costs (docs/access.md)."""
    for candidate in (path, path.with_name(path.name + ".wal")):
        if candidate.exists() and candidate.stat().st_mode & 0o077:
            candidate.chmod(0o600)


def is_damage(error: BaseException | str) -> bool:
    """True when an error (or its text) says the mirror file is damaged (a failed block
    checksum or an unreadable file), as opposed to Postgres or lock trouble."""
    text = str(error)
    return "Corrupt database file" in text or "checksum" in text or "not a valid DuckDB" in text


def discard_mirror(path: str | Path) -> None:
    """Delete a mirror file and its WAL (close every connection to it first); the next sync
    rebuilds it from Postgres."""
    remove_mirror_files(Path(path))


def remove_mirror_files(path: Path) -> None:
    """Delete the mirror file at `path` and its WAL, if present."""
    for candidate in (path, path.with_name(path.name + ".wal")):
        candidate.unlink(missing_ok=True)
