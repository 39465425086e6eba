"""The REST API's Trackers: one `Tracker(url, viewer=<key's user>)` per (user, shard of the
task or run id), so row-level security decides every read and change (docs/access.md).

- Every request about one task leases the Tracker of (its user, task_id shard), so every
  streaming update of that task meets the same in-memory debounce buffer.
- At most `capacity` Trackers are kept, least recently used first out. A Tracker is
  evicted only while no request holds it; it is closed (which writes what it buffered)
  before anyone may lease its slot again, so buffered text is never written after newer
  text of the same task.
- `flush()` writes what every Tracker buffered (the server's flush loop calls it);
  `close()` flushes and closes them all.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from ingest.errors import IngestError
from ingest.tracking import Tracker

log = logging.getLogger("ingest.server")

SHARDS = 4
CAPACITY = 32

Slot = tuple[str, int]


@dataclass
class _Entry:
    tracker: Tracker
    leases: int = 0


class ViewerTrackers:
    """A bounded LRU of viewer Trackers, keyed by (viewer, shard); thread-safe."""

    def __init__(
        self,
        url: str,
        *,
        debounce_seconds: float = 0.5,
        capacity: int = CAPACITY,
        shards: int = SHARDS,
    ) -> None:
        if capacity < 1 or shards < 1:
            raise ValueError("capacity and shards must be >= 1")
        self.url = url
        self.debounce_seconds = debounce_seconds
        self.capacity = capacity
        self.shards = shards
        self._entries: OrderedDict[Slot, _Entry] = OrderedDict()
        self._closing: set[Slot] = set()
        self._cond = threading.Condition()

    def __len__(self) -> int:
        with self._cond:
            return len(self._entries)

    @contextmanager
    def lease(self, viewer: str, key: uuid.UUID | None = None) -> Iterator[Tracker]:
        """The Tracker of `viewer` for the task or run `key` (None: any of the viewer's),
        held for the duration of the `with` block (it is not evicted meanwhile)."""
        slot = (viewer, 0 if key is None else key.int % self.shards)
        with self._cond:
            while slot in self._closing:
                self._cond.wait()
            entry = self._entries.get(slot)
            if entry is None:
                tracker = Tracker(self.url, viewer=viewer, debounce_seconds=self.debounce_seconds)
                entry = self._entries[slot] = _Entry(tracker)
            self._entries.move_to_end(slot)
            entry.leases += 1
            evicted = self._take_idle_surplus()
        try:
            self._close(evicted)
            yield entry.tracker
        finally:
            with self._cond:
                entry.leases -= 1
                evicted = self._take_idle_surplus()
            self._close(evicted)

    def flush(self) -> None:
        """Write every buffered streaming update of every Tracker now (failures are logged;
        the next flush retries what is still buffered)."""
        with self._cond:
            entries = list(self._entries.values())
            for entry in entries:
                entry.leases += 1
        try:
            for entry in entries:
                try:
                    entry.tracker.flush()
                except (psycopg.Error, IngestError) as exc:
                    log.warning("flushing streaming updates failed: %s", exc)
        finally:
            with self._cond:
                for entry in entries:
                    entry.leases -= 1

    def close(self) -> None:
        """Flush and close every Tracker (at shutdown, when no request is running)."""
        with self._cond:
            evicted = list(self._entries.items())
            self._entries.clear()
            self._closing.update(slot for slot, _ in evicted)
        self._close(evicted)

    def _take_idle_surplus(self) -> list[tuple[Slot, _Entry]]:
        """Remove least recently used idle entries beyond capacity (caller holds the lock);
        their slots stay closed to new leases until `_close` has run."""
        surplus = len(self._entries) - self.capacity
        evicted = []
        for slot, entry in list(self._entries.items()):
            if surplus <= 0:
                break
            if entry.leases == 0:
                del self._entries[slot]
                self._closing.add(slot)
                evicted.append((slot, entry))
                surplus -= 1
        return evicted

    def _close(self, evicted: list[tuple[Slot, _Entry]]) -> None:
        for slot, entry in evicted:
            try:
                entry.tracker.close()
            except (psycopg.Error, IngestError) as exc:
                log.warning("closing the tracker of %s lost buffered updates: %s", slot[0], exc)
            finally:
                with self._cond:
                    self._closing.discard(slot)
                    self._cond.notify_all()
