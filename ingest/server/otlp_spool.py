"""The OTLP receiver's durable hand-off (docs/server.md, "Acknowledged after a durable
hand-off").

POST /v1/traces checks an export (key, size, encoding, every field it parses) and keeps it
in `ai_otlp_spool` (migration 0026) in one INSERT before it answers: mapping, pricing and
writing its spans happen here, off the request path, in a process of the server's own
(`SpoolWorker` starts it, `SpoolWriter` is its loop).

The worker writes the oldest exports first, those of one user together, through
ingest/server/otlp_write.py, and deletes their spool rows in the transaction that writes
their rows. A kill -9 at any moment therefore leaves each export either written and gone
from the spool, or unwritten and still there: the next worker writes it, once. One worker
drains a database at a time (a session advisory lock, released when its connection ends),
so several server processes over one database do not write the same export twice; the
delete also checks that the rows were still there (`SpoolLost` rolls back otherwise).

An export whose write is refused as a whole (a run id taken by another user in between,
or a fault found only when writing) is set aside with the reason (`problem`), logged at
WARNING and counted in /metrics; it stays in the table for inspection. An unreachable
database is waited out: nothing is lost, the worker tries again.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import multiprocessing.process
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ingest.errors import AccessDeniedError, NotFoundError, ValidationError
from ingest.server.metrics import ServerMetrics
from ingest.server.otlp_parse import Span, parse_json, parse_protobuf
from ingest.server.otlp_write import write_spans
from ingest.server.state import ServerState
from ingest.store import sqlfiles

log = logging.getLogger("ingest.server.otlp")
QUERIES = sqlfiles.beside(__file__)

# Exports written per transaction at most, and about this many bytes of bodies: a backlog
# is written in large transactions (fewer commits), a trickle export by export.
BATCH_EXPORTS = 50
BATCH_BYTES = 4_000_000
IDLE_SECONDS = 1.0  # how often an idle worker looks for exports another process spooled
RETRY_SECONDS = 1.0  # wait after the database could not be reached


class SpoolLost(Exception):
    """Another worker wrote one of these exports first: this transaction rolls back."""


@dataclass(frozen=True)
class SpooledExport:
    id: int
    user_id: str
    is_json: bool
    body: bytes

    def spans(self) -> list[Span]:
        return parse_json(self.body) if self.is_json else parse_protobuf(self.body)


def spool_export(state: ServerState, user: str, body: bytes, is_json: bool) -> int:
    """Keep an accepted export (its decompressed body) for the worker; its spool id. The
    INSERT commits before this returns: the export survives a crash from here on."""
    with state.connection() as conn:
        row = conn.execute(
            QUERIES["spool_export"].psycopg, {"user_id": user, "is_json": is_json, "body": body}
        ).fetchone()
    return row["id"]


def waiting_exports(conn: psycopg.Connection) -> int:
    """How many exports wait in the spool (not counting those set aside)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(QUERIES["spool_waiting"].psycopg).fetchone()["waiting"]


class SpoolWorker:
    """The server's handle on its spool writer: a process of its own (so that mapping and
    pricing never hold the request path's GIL), started with the first export to write,
    or at start-up when exports wait. Its /metrics counts and log records come back
    through a queue and are counted and logged here, as if written in this process."""

    def __init__(self, url: str, metrics: ServerMetrics) -> None:
        self.url = url
        self.metrics = metrics
        self._context = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._relaying: threading.Thread | None = None
        self._starting = threading.Lock()

    def start_if_waiting(self, conn: psycopg.Connection) -> None:
        """Start the writer now if exports wait in the spool (a restart after a crash)."""
        if waiting_exports(conn):
            self.wake()

    def wake(self) -> None:
        """An export was spooled: the writer looks at once (started if need be)."""
        if self._process is None:
            with self._starting:
                if self._process is None:
                    self._start()
        self._wake.set()

    def _start(self) -> None:
        self._wake = self._context.Event()
        self._stop = self._context.Event()
        self._relay = self._context.Queue()
        self._relaying = threading.Thread(target=self._relay_loop, name="otlp-relay", daemon=True)
        self._relaying.start()
        self._process = self._context.Process(
            target=run_writer,
            args=(self.url, self._wake, self._stop, self._relay, os.getpid()),
            name="ai-runs otlp spool",
            daemon=True,
        )
        self._process.start()

    def close(self) -> None:
        """Stop the writer after the transaction under way (what is left stays spooled)."""
        if self._process is None:
            return
        self._stop.set()
        self._wake.set()
        self._process.join(timeout=60)
        if self._process.is_alive():
            self._process.kill()
        self._relay.put(None)
        if self._relaying is not None:
            self._relaying.join(timeout=5)
        self._relay.close()
        self._relay.join_thread()

    def _relay_loop(self) -> None:
        while (item := self._relay.get()) is not None:
            if isinstance(item, logging.LogRecord):
                logging.getLogger(item.name).handle(item)
            else:
                method, args = item
                getattr(self.metrics, method)(*args)


class RelayedMetrics:
    """The writer process's /metrics counts, sent to the server process (SpoolWorker)."""

    def __init__(self, relay: Any) -> None:
        self._relay = relay

    def count_spans(self, outcome: str, reason: str, n: int = 1) -> None:
        if n:
            self._relay.put(("count_spans", (outcome, reason, n)))

    def count_log_events(self, outcome: str, n: int = 1) -> None:
        if n:
            self._relay.put(("count_log_events", (outcome, n)))


def run_writer(url: str, wake: Any, stop: Any, relay: Any, server_pid: int) -> None:
    """The writer process: write spooled exports until `stop` is set or the server process
    is gone (killed: what is left stays spooled for the next server)."""
    root = logging.getLogger()
    root.handlers = [logging.handlers.QueueHandler(relay)]
    root.setLevel(logging.INFO)
    state = ServerState(url)
    try:
        SpoolWriter(state, RelayedMetrics(relay), wake, stop, server_pid).run()
    finally:
        state.close()


class SpoolWriter:
    """The loop that writes spooled exports (see the module docstring), in the writer
    process. `wake` makes it look at once; it also looks every IDLE_SECONDS."""

    def __init__(
        self, state: ServerState, metrics: Any, wake: Any, stop: Any, server_pid: int
    ) -> None:
        self.state = state
        self.metrics = metrics
        self._wake = wake
        self._stop = stop
        self._server_pid = server_pid
        self._lock_conn: psycopg.Connection | None = None

    def run(self) -> None:
        try:
            while not self._stop.is_set() and os.getppid() == self._server_pid:
                self._step()
        finally:
            self._release()

    def _step(self) -> None:
        self._wake.clear()  # before looking: an export spooled from now on wakes the wait
        try:
            busy = self._is_worker() and self.drain_once()
        except psycopg.OperationalError as error:
            log.warning("OTLP spool: database unreachable (%s); trying again", error)
            self._release()
            self._stop.wait(RETRY_SECONDS)
            return
        except Exception:  # a bug must not stop the writer: log it, look again later
            log.exception("OTLP spool writer failed; trying again")
            self._stop.wait(RETRY_SECONDS)
            return
        if not busy:
            self._wake.wait(IDLE_SECONDS)

    def _is_worker(self) -> bool:
        """Whether this process holds the spool's worker lock (taken when free)."""
        if self._lock_conn is not None and not self._lock_conn.closed:
            return True
        conn = psycopg.connect(self.state.url, autocommit=True)
        if conn.execute(QUERIES["spool_take_worker_lock"].psycopg).fetchone()[0]:
            self._lock_conn = conn
            return True
        conn.close()
        return False

    def _release(self) -> None:
        if self._lock_conn is not None:
            self._lock_conn.close()  # ends the session: the lock goes with it
            self._lock_conn = None

    def drain_once(self) -> bool:
        """Write the oldest spooled exports (one transaction per user among them); whether
        there were any."""
        with self.state.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                QUERIES["spool_next_exports"].psycopg,
                {"limit": BATCH_EXPORTS, "max_bytes": BATCH_BYTES},
            ).fetchall()
        exports = [SpooledExport(**row) for row in rows]
        by_user: dict[str, list[SpooledExport]] = {}
        for export in exports:
            by_user.setdefault(export.user_id, []).append(export)
        for user, group in by_user.items():
            self._write(user, group)
        return bool(exports)

    def _write(self, user: str, exports: list[SpooledExport]) -> None:
        """Write these exports of `user` in one transaction; when that is refused, each
        alone, setting aside the one that cannot be written."""
        try:
            self._write_together(user, exports)
        except (ValidationError, AccessDeniedError, NotFoundError) as error:
            if len(exports) > 1:
                for export in exports:
                    self._write(user, [export])
                return
            self._set_aside(exports[0], f"{type(error).__name__}: {error}")
        except SpoolLost:
            log.info("OTLP spool: exports %s were written by another worker", exports)

    def _write_together(self, user: str, exports: list[SpooledExport]) -> None:
        spans: dict[tuple[str, str], Span] = {}
        for export in exports:  # the same span sent twice (a retry) is written once
            spans.update({(span.trace_id, span.span_id): span for span in export.spans()})
        done = _delete([export.id for export in exports])
        write_spans(self.state, self.metrics, user, list(spans.values()), then=done)

    def _set_aside(self, export: SpooledExport, problem: str) -> None:
        log.warning("OTLP export %s of user %s set aside: %s", export.id, export.user_id, problem)
        try:
            self.metrics.count_spans("refused", "export", len(export.spans()))
        except ValidationError:  # checked before it was spooled; counted as one if not
            self.metrics.count_spans("refused", "export")
        with self.state.connection() as conn:
            conn.execute(QUERIES["spool_set_aside"].psycopg, {"id": export.id, "problem": problem})


def _delete(ids: list[int]) -> Callable[[psycopg.Connection], None]:
    """The last step of the write's transaction: the exports leave the spool, or the
    transaction rolls back if another worker wrote one of them first."""

    def delete(conn: psycopg.Connection) -> None:
        deleted = conn.execute(QUERIES["spool_done"].psycopg, {"ids": ids}).fetchall()
        if len(deleted) != len(ids):
            raise SpoolLost(f"spool rows {sorted(set(ids) - {r[0] for r in deleted})} are gone")

    return delete
