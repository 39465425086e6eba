"""What a running server shares between requests: connections, viewer trackers, writers.

- Short reads as the owner (API key look-ups, the bulk path's ownership check) use a small
  pool of autocommit connections.
- The REST routes read and change runs and tasks through `Tracker(url, viewer=<key's
  user>)` instances (ingest/server/viewer_trackers.py): row-level security decides what a
  key may see and change (docs/access.md). Every update of one task meets the same
  in-memory debounce buffer; a background thread writes buffered streaming updates every
  `debounce_seconds`, so a client that stops sending loses nothing (also at shutdown).
- Bulk writes (batch endpoint, OTLP) use a pool of ingest.transfer.bulk.BulkWriter as the owner:
  trusted service writers that stamp user_id = the key's user (docs/server.md).
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import psycopg
from psycopg.rows import dict_row

from ingest.server import keys
from ingest.server.viewer_trackers import CAPACITY, ViewerTrackers
from ingest.store import database
from ingest.tracking import Tracker
from ingest.transfer import bulk

POOL_SIZE = 8


class ServerState:
    """Shared resources of one server process (see the module docstring).

    max_trackers: how many viewer Trackers (each with its own connection) are kept.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        debounce_seconds: float = 0.5,
        max_trackers: int = CAPACITY,
    ) -> None:
        self.url = database.database_url(url)
        self.debounce_seconds = debounce_seconds
        self.trackers = ViewerTrackers(
            self.url, debounce_seconds=debounce_seconds, capacity=max_trackers
        )
        self._connections: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._writers: queue.LifoQueue[bulk.BulkWriter] = queue.LifoQueue()
        self._queries = keys.queries()
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="debounce", daemon=True)
        self._flusher.start()

    # ------------------------------------------------------------ resources

    def tracker(self, user: str, key: uuid.UUID | None = None) -> AbstractContextManager[Tracker]:
        """The Tracker acting as `user` (row-level security) for the task or run `key`,
        held for a `with` block; every update of one task meets the same one."""
        return self.trackers.lease(user, key)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled autocommit dict-row owner connection for short reads."""
        try:
            conn = self._connections.get_nowait()
        except queue.Empty:
            conn = psycopg.connect(self.url, autocommit=True, row_factory=dict_row)
        try:
            yield conn
        except psycopg.OperationalError:
            conn.close()
            raise
        if conn.closed or conn.broken or self._connections.qsize() >= POOL_SIZE:
            conn.close()
        else:
            self._connections.put(conn)

    @contextmanager
    def writer(self) -> Iterator[bulk.BulkWriter]:
        """A pooled BulkWriter (its own owner connection)."""
        try:
            writer = self._writers.get_nowait()
        except queue.Empty:
            writer = bulk.BulkWriter(self.url, retry_seconds=10.0)
        try:
            yield writer
        finally:
            if self._writers.qsize() >= POOL_SIZE:
                writer.close()
            else:
                self._writers.put(writer)

    # ------------------------------------------------------------ keys and the bulk path

    def user_of_key(self, key: str) -> str | None:
        """The user of a live API key (looked up on every request: revocation is
        immediate); None for an unknown or revoked key."""
        with self.connection() as conn:
            return keys.user_of_key(conn, key)

    def run_owners(self, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, str | None]:
        """user_id of each existing run among run_ids, read as the owner. Only the bulk
        path (batch endpoint, OTLP) uses it: it writes as the owner, stamping the key's
        user, and must refuse rows that name another user's run."""
        if not run_ids:
            return {}
        with self.connection() as conn:
            rows = conn.execute(
                self._queries["owners_of_runs"].psycopg, {"ids": run_ids}
            ).fetchall()
        return {row["id"]: row["user_id"] for row in rows}

    # ------------------------------------------------------------ lifecycle

    def _flush_loop(self) -> None:
        while not self._stop.wait(max(self.debounce_seconds, 0.05)):
            self.flush()

    def flush(self) -> None:
        """Write every buffered streaming update now."""
        self.trackers.flush()

    def close(self) -> None:
        """Stop the flusher, write what is buffered, close every connection."""
        self._stop.set()
        self._flusher.join(timeout=5)
        self.trackers.close()
        while not self._connections.empty():
            self._connections.get_nowait().close()
        while not self._writers.empty():
            self._writers.get_nowait().close()
