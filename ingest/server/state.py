"""What a running server shares between requests: connections, trackers, ownership checks.

- Short reads (key look-ups, ownership) use a small pool of autocommit connections.
- Live task writes go to one of `TRACKERS` ingest.Tracker instances chosen by the task_id,
  so every update of one task meets the same in-memory debounce buffer. A background
  thread flushes buffered streaming updates every `debounce_seconds`, so a client that
  stops sending loses nothing (also flushed on shutdown).
- Bulk writes (batch endpoint, OTLP) use a pool of ingest.bulk.BulkWriter.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import dict_row

from ingest import bulk, database
from ingest.errors import NotFoundError
from ingest.server import keys
from ingest.tracker import Tracker

log = logging.getLogger("ingest.server")

TRACKERS = 4
POOL_SIZE = 8
_OWNER_MEMORY = 50_000


class ServerState:
    """Shared resources of one server process (see the module docstring)."""

    def __init__(self, url: str | None = None, *, debounce_seconds: float = 0.5) -> None:
        self.url = database.database_url(url)
        self.debounce_seconds = debounce_seconds
        self.trackers = [
            Tracker(self.url, debounce_seconds=debounce_seconds) for _ in range(TRACKERS)
        ]
        self._connections: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._writers: queue.LifoQueue[bulk.BulkWriter] = queue.LifoQueue()
        self._queries = keys.queries()
        self._task_owner: OrderedDict[uuid.UUID, str | None] = OrderedDict()
        self._owner_lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="debounce", daemon=True)
        self._flusher.start()

    # ------------------------------------------------------------ resources

    def tracker_for(self, key: uuid.UUID) -> Tracker:
        """The tracker that owns the debounce state of this task (or run)."""
        return self.trackers[key.int % len(self.trackers)]

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled autocommit dict-row connection for short reads."""
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
        """A pooled BulkWriter (its own connection)."""
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

    # ------------------------------------------------------------ auth and ownership

    def user_of_key(self, key: str) -> str | None:
        """The user of a live API key (looked up on every request: revocation is
        immediate); None for an unknown or revoked key."""
        with self.connection() as conn:
            return keys.user_of_key(conn, key)

    def run_owners(self, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, str | None]:
        """user_id of each existing run among run_ids."""
        if not run_ids:
            return {}
        with self.connection() as conn:
            rows = conn.execute(
                self._queries["owners_of_runs"].psycopg, {"ids": run_ids}
            ).fetchall()
        return {row["id"]: row["user_id"] for row in rows}

    def require_run(self, user: str, run_id: uuid.UUID) -> None:
        """NotFoundError("run") unless the run exists and belongs to `user` (another
        user's run is reported as missing: its existence is not disclosed)."""
        if self.run_owners([run_id]).get(run_id, "\x00missing") != user:
            raise NotFoundError("run", run_id)

    def task_owner(self, task_id: uuid.UUID) -> str | None:
        """user_id of an existing task (its run's when the task has none); None when the
        task does not exist. A task's owner never changes through the API, so known owners
        are remembered."""
        with self._owner_lock:
            owner = self._task_owner.get(task_id)
        if owner is not None:
            return owner
        with self.connection() as conn:
            row = conn.execute(
                self._queries["owner_of_task"].psycopg, {"task_id": task_id}
            ).fetchone()
        if row is None:
            return None
        owner = row["task_user_id"] if row["task_user_id"] is not None else row["run_user_id"]
        if owner is not None:
            self.remember_task(task_id, owner)
        return owner

    def require_task(self, user: str, task_id: uuid.UUID) -> None:
        """NotFoundError("task") unless the task exists and belongs to `user`."""
        if self.task_owner(task_id) != user:
            raise NotFoundError("task", task_id)

    def remember_task(self, task_id: uuid.UUID, owner: str | None) -> None:
        with self._owner_lock:
            self._task_owner[task_id] = owner
            self._task_owner.move_to_end(task_id)
            while len(self._task_owner) > _OWNER_MEMORY:
                self._task_owner.popitem(last=False)

    # ------------------------------------------------------------ lifecycle

    def _flush_loop(self) -> None:
        while not self._stop.wait(max(self.debounce_seconds, 0.05)):
            self.flush()

    def flush(self) -> None:
        """Write every buffered streaming update now."""
        for tracker in self.trackers:
            try:
                tracker.flush()
            except (psycopg.Error, NotFoundError) as exc:  # next round retries
                log.warning("flushing streaming updates failed: %s", exc)

    def close(self) -> None:
        """Stop the flusher, write what is buffered, close every connection."""
        self._stop.set()
        self._flusher.join(timeout=5)
        for tracker in self.trackers:
            tracker.close()
        while not self._connections.empty():
            self._connections.get_nowait().close()
        while not self._writers.empty():
            self._writers.get_nowait().close()
