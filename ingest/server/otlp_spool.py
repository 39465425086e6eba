"""The OTLP receiver's durable hand-off (docs/server.md, "Acknowledged after a durable
hand-off").

POST /v1/traces checks an export (key, size, encoding, every field it parses) and keeps it
in `ai_otlp_spool` (migration 0026) in one INSERT before it answers: mapping, pricing and
writing its spans happen here, off the request path, in writer processes of the server's
own (`SpoolWorker` starts them, `SpoolWriter` is the loop of each).

Each writer claims the oldest exports no other writer holds (a session advisory lock per
export, SKIP LOCKED fashion: spool.sql, spool_claim_exports), writes them, those of one
user together, through ingest/server/otlp_write.py, deletes their spool rows in the
transaction that writes their rows, and only then gives up its claims. A kill -9 of any
writer at any moment therefore leaves each export either written and gone from the spool,
or unwritten and still there, its claim gone with the killed session: another writer (or
the next server's) writes it, once. Several writers, of one server or of several, share
a database this way; the delete also checks that the rows were still there (`SpoolLost`
rolls back otherwise), so no export is ever written twice.

An export whose write is refused as a whole (a run id taken by another user in between,
or a fault found only when writing) is set aside with the reason (`problem`), logged at
WARNING and counted in /metrics; it stays in the table for inspection. An unreachable
database is waited out: nothing is lost, the writers try again.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
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
IDLE_SECONDS = 1.0  # how often an idle writer looks for exports another process spooled
RETRY_SECONDS = 1.0  # wait after the database could not be reached
REPLACE_WAIT_SECONDS = 10.0  # for the fork server to report a writer whose pipe ended
# A writer that ends sooner than this after its start is replaced this long after its start:
# one that cannot run (say it fails as it starts) is started again once a second, not in a
# loop of forks.
MIN_WRITER_SECONDS = 1.0


# Writer processes of a server (`serve --otlp-writers N`): one by default. A second
# stored 1.3x the spans/s on 2 shared cores, but both start with the first export
# (README, "Ingest server").
DEFAULT_WRITERS = 1

# Writers are forked from a fork server of the process (started once, with this module
# imported), not spawned: a spawned writer imported the whole ingest package again, 1.5 s
# of CPU for each writer, and the first export of a server waited for it (docs/server.md,
# "Writer processes").
_FORK_CONTEXT = multiprocessing.get_context("forkserver")
_FORK_CONTEXT.set_forkserver_preload([__name__])


class SpoolLost(Exception):
    """Another writer wrote one of these exports first: this transaction rolls back."""


@dataclass(frozen=True)
class SpooledExport:
    id: int
    user_id: str
    is_json: bool
    body: bytes

    def spans(self) -> list[Span]:
        return parse_json(self.body) if self.is_json else parse_protobuf(self.body)


def spool_export(state: ServerState, user: str, body: bytes, is_json: bool) -> int:
    """Keep an accepted export (its decompressed body) for the writers; its spool id. The
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


@dataclass
class _Writer:
    """A writer process as the server holds it: the sending end of its wake-ups (closed:
    stop) and the receiving end of its relay (metrics counts and log records)."""

    process: multiprocessing.process.BaseProcess
    wake: Connection
    relay: Connection
    started: float = field(default_factory=time.monotonic)


class SpoolWorker:
    """The server's handle on its spool writers: `writers` processes of their own (so that
    mapping and pricing never hold the request path's GIL, and use every core), started
    with the first export to write, or at start-up when exports wait. Their /metrics counts
    and log records come back through a pipe each and are counted and logged here, as if
    written in this process. Nothing is shared between the processes but one pipe each way
    per writer, so a writer killed at any moment holds no lock that the server or the other
    writers wait for; the server replaces it as soon as its relay pipe ends."""

    def __init__(self, url: str, metrics: ServerMetrics, writers: int = DEFAULT_WRITERS) -> None:
        if writers < 1:
            raise ValueError(f"at least one OTLP spool writer, got {writers}")
        self.url = url
        self.metrics = metrics
        self.writers = writers
        self._context = _FORK_CONTEXT
        self._running: list[_Writer] = []
        self._relaying: threading.Thread | None = None
        self._starting: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closing = False

    def start_if_waiting(self, conn: psycopg.Connection) -> None:
        """Start the writers now if exports wait in the spool (a restart after a crash)."""
        if waiting_exports(conn):
            self.wake()

    def wake(self) -> None:
        """An export was spooled: the writers look at once (a writer that died, killed say,
        replaced: its claims died with it). Never waits for the first start: that starts
        the fork server (it imports the ingest package, about a second of CPU), and the
        export is acknowledged meanwhile; the writers find it when they look."""
        with self._lock:
            if self._closing or self._starting is not None:
                return
            if not self._running:
                self._starting = threading.Thread(
                    target=self._start_writers, name="otlp-start", daemon=True
                )
                self._starting.start()
                return
            for n, writer in enumerate(self._running):
                if not writer.process.is_alive() or not _nudge(writer.wake):
                    self._running[n] = self._replace(n, writer)

    def _start_writers(self) -> None:
        """Start the writers and their relay (in a thread of its own: see `wake`). Each
        looks at the spool as it starts, so exports spooled meanwhile are not missed."""
        try:
            writers = [self._start_writer(n) for n in range(self.writers)]
        except Exception:  # the next export tries again; what waits stays spooled
            log.exception("OTLP spool: could not start the writers; the next export retries")
            writers = []
        with self._lock:
            self._running = writers
            self._starting = None
            if writers:
                self._relaying = threading.Thread(
                    target=self._relay_loop, name="otlp-relay", daemon=True
                )
                self._relaying.start()

    def pids(self) -> list[int]:
        """The process ids of the running writers (none before the first export)."""
        with self._lock:
            return [w.process.pid for w in self._running if w.process.pid is not None]

    def _start_writer(self, n: int) -> _Writer:
        wake_recv, wake_send = self._context.Pipe(duplex=False)
        relay_recv, relay_send = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=run_writer,
            args=(self.url, wake_recv, relay_send, dict(os.environ)),
            name=f"ai-runs otlp spool {n + 1}",
            daemon=True,
        )
        process.start()
        wake_recv.close()  # the writer's ends: EOF on the relay when it ends
        relay_send.close()
        os.set_blocking(wake_send.fileno(), False)  # a full pipe already holds a wake-up
        _nudge(wake_send)
        return _Writer(process, wake_send, relay_recv)

    def _replace(self, n: int, writer: _Writer) -> _Writer:
        log.warning(
            "OTLP spool writer %s ended (exit code %s); starting another",
            writer.process.pid,
            writer.process.exitcode,
        )
        writer.process.kill()  # no-op if gone; ends one that stopped reading its pipe
        writer.wake.close()
        return self._start_writer(n)

    def close(self) -> None:
        """Stop the writers after the transactions under way (what is left stays spooled)."""
        with self._lock:
            self._closing = True
            starting = self._starting
        if starting is not None:  # the writers it starts are stopped below
            starting.join(timeout=60)
        with self._lock:
            running, self._running = self._running, []
        for writer in running:
            writer.wake.close()  # EOF: the writer stops after its step
        for writer in running:
            writer.process.join(timeout=60)
            if writer.process.is_alive():
                writer.process.kill()
                writer.process.join(timeout=5)
        if self._relaying is not None:
            self._relaying.join(timeout=10)

    def _relay_loop(self) -> None:
        """Count and log what the writers send, until every writer's pipe has ended and
        the server is closing (a replaced writer's pipe ends; its successor's is read)."""
        open_ends: list[Connection] = []
        seen: set[int] = set()  # every end ever read: an ended one is not read again
        while True:
            with self._lock:
                fresh = [w.relay for w in self._running if id(w.relay) not in seen]
                closing = self._closing
            seen.update(id(end) for end in fresh)
            open_ends += fresh
            if closing and not open_ends:
                return
            for end in multiprocessing.connection.wait(open_ends, timeout=0.2):
                assert isinstance(end, Connection)
                try:
                    item = end.recv()
                except (EOFError, OSError):
                    open_ends.remove(end)
                    end.close()
                    try:
                        self._writer_ended(end)
                    except Exception:  # the relay must go on (as below)
                        log.exception("OTLP spool: could not replace an ended writer")
                    continue
                try:
                    _relayed(self.metrics, item)
                except Exception:  # the relay must go on: the writers block when it stops
                    log.exception("OTLP spool: could not relay %r", item)

    def _writer_ended(self, relay: Connection) -> None:
        """A writer's relay pipe ended, so the writer is gone (killed, say; or stopped by
        `close`): replace it now rather than at the next export, in a thread of its own so
        that relaying goes on. A nudge to a writer that was just killed can still succeed,
        and the fork server reports its exit a moment later, so the next export's check
        alone missed it (docs/server.md, "Writer processes"); its claims ended with it and
        what it held waits in the spool."""
        with self._lock:
            running = [] if self._closing else self._running
            ended = next((w for w in running if w.relay is relay), None)
        if ended is not None:
            threading.Thread(
                target=self._replace_ended, args=(ended,), name="otlp-replace", daemon=True
            ).start()

    def _replace_ended(self, ended: _Writer) -> None:
        """Start a writer in the place of `ended` once the fork server has reported its
        exit (and not sooner than MIN_WRITER_SECONDS after its start)."""
        ended.process.join(timeout=REPLACE_WAIT_SECONDS)
        time.sleep(max(0.0, ended.started + MIN_WRITER_SECONDS - time.monotonic()))
        with self._lock:
            if self._closing or ended not in self._running:
                return
            n = self._running.index(ended)
            try:
                self._running[n] = self._replace(n, ended)
            except Exception:  # the next export's wake-up tries again
                log.exception("OTLP spool: could not replace writer %s", ended.process.pid)


def _nudge(wake: Connection) -> bool:
    """Send a writer a wake-up (never blocks: a full pipe already holds one); False when
    its pipe is broken (the writer is gone)."""
    try:
        wake.send_bytes(b"")
    except BlockingIOError:
        pass
    except OSError:
        return False
    return True


def _relayed(metrics: ServerMetrics, item: Any) -> None:
    """Handle what a writer sent: a log record, or a metrics call (method, args)."""
    if isinstance(item, logging.LogRecord):
        logging.getLogger(item.name).handle(item)
    else:
        method, args = item
        getattr(metrics, method)(*args)


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


class PipeRelay:
    """The writer's end of its relay pipe, as a queue for logging.handlers.QueueHandler and
    RelayedMetrics (one sender per pipe: the lock is only for this process's threads)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def put(self, item: Any) -> None:
        with self._lock:
            self._conn.send(item)

    put_nowait = put


class WakePipe:
    """The writer's end of its wake-up pipe: `wait` returns when the server sends a
    wake-up or closes the pipe (stop: `is_set`), or after `timeout` seconds."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._closed = False

    def clear(self) -> None:
        self._drain(0)

    def wait(self, timeout: float) -> bool:
        self._drain(timeout)
        return self._closed

    def is_set(self) -> bool:
        self._drain(0)
        return self._closed

    def _drain(self, timeout: float) -> None:
        try:
            while not self._closed and self._conn.poll(timeout):
                self._conn.recv_bytes()
                timeout = 0
        except (EOFError, OSError):
            self._closed = True


def run_writer(url: str, wake: Connection, relay: Connection, environ: dict[str, str]) -> None:
    """A writer process: write spooled exports until the server closes its wake-up pipe or
    is gone (killed: what is left stays spooled for the next server). `environ` is the
    server's environment when it started the writer, as a spawned process would have it
    (the fork server's own is that of its start)."""
    os.environ.clear()
    os.environ.update(environ)
    signals = WakePipe(wake)
    sender = PipeRelay(relay)
    root = logging.getLogger()
    root.handlers = [logging.handlers.QueueHandler(sender)]  # type: ignore[arg-type]
    root.setLevel(logging.INFO)
    state = ServerState(url)
    try:
        SpoolWriter(state, RelayedMetrics(sender), signals, signals, os.getppid()).run()
    finally:
        state.close()


class SpoolWriter:
    """The loop that writes spooled exports (see the module docstring), in a writer
    process. `wake` makes it look at once; it also looks every IDLE_SECONDS."""

    def __init__(
        self, state: ServerState, metrics: Any, wake: Any, stop: Any, parent_pid: int
    ) -> None:
        self.state = state
        self.metrics = metrics
        self._wake = wake
        self._stop = stop
        self._parent_pid = parent_pid  # the fork server that forked this writer
        self._claims: psycopg.Connection | None = None

    def run(self) -> None:
        try:
            while not self._stop.is_set() and os.getppid() == self._parent_pid:
                self._step()
        finally:
            self._release()

    def _step(self) -> None:
        self._wake.clear()  # before looking: an export spooled from now on wakes the wait
        try:
            busy = self._may_write() and self.drain_once()
        except psycopg.OperationalError as error:
            log.warning("OTLP spool: database unreachable (%s); trying again", error)
            self._release()
            self._stop.wait(RETRY_SECONDS)
            return
        except Exception:  # a bug must not stop the writer: log it, look again later
            log.exception("OTLP spool writer failed; trying again")
            self._release()  # its claims go with the session: another writer may try
            self._stop.wait(RETRY_SECONDS)
            return
        if not busy:
            self._wake.wait(IDLE_SECONDS)

    def _may_write(self) -> bool:
        """Whether this writer holds its session on the spool (the shared writers' lock,
        taken when nobody holds it exclusively); its claims live in that session."""
        if self._claims is not None and not self._claims.closed:
            return True
        conn = psycopg.connect(self.state.url, autocommit=True)
        if conn.execute(QUERIES["spool_take_worker_lock"].psycopg).fetchone()[0]:
            self._claims = conn
            return True
        conn.close()
        return False

    def _release(self) -> None:
        if self._claims is not None:
            self._claims.close()  # ends the session: its locks and claims go with it
            self._claims = None

    def drain_once(self) -> bool:
        """Claim the oldest exports no other writer holds, write them (one transaction per
        user among them) and give the claims up; whether there were any."""
        exports = self._claim()
        try:
            by_user: dict[str, list[SpooledExport]] = {}
            for export in exports:
                by_user.setdefault(export.user_id, []).append(export)
            for user, group in by_user.items():
                self._write(user, group)
        finally:
            if exports and self._claims is not None and not self._claims.closed:
                self._give_up([export.id for export in exports])
        return bool(exports)

    def _claim(self) -> list[SpooledExport]:
        """The exports this writer now holds, oldest first (read after claiming them: an
        export written meanwhile by another writer is left out, and its claim given up)."""
        if not self._may_write():
            return []
        assert self._claims is not None
        with self._claims.cursor(row_factory=dict_row) as cur:
            ids = [
                row["id"]
                for row in cur.execute(
                    QUERIES["spool_claim_exports"].psycopg,
                    {"limit": BATCH_EXPORTS, "max_bytes": BATCH_BYTES},
                ).fetchall()
            ]
            if not ids:
                return []
            rows = cur.execute(QUERIES["spool_claimed_exports"].psycopg, {"ids": ids}).fetchall()
        exports = [SpooledExport(**row) for row in rows]
        gone = sorted(set(ids) - {export.id for export in exports})
        if gone:
            self._give_up(gone)
        return exports

    def _give_up(self, ids: list[int]) -> None:
        assert self._claims is not None
        self._claims.execute(QUERIES["spool_release_exports"].psycopg, {"ids": ids})

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
            log.info("OTLP spool: exports %s were written by another writer", exports)

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
    transaction rolls back if another writer wrote one of them first."""

    def delete(conn: psycopg.Connection) -> None:
        deleted = conn.execute(QUERIES["spool_done"].psycopg, {"ids": ids}).fetchall()
        if len(deleted) != len(ids):
            raise SpoolLost(f"spool rows {sorted(set(ids) - {r[0] for r in deleted})} are gone")

    return delete
