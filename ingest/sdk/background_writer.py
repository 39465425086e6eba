"""Write finished tasks (and new runs) off the application's path: a bounded queue, batched
writes, a disk spool while the database is down (docs/tracking.md).

    writer = BackgroundWriter(url)
    writer.submit_run({...ai_runs columns...}); writer.submit_task({...ai_tasks columns...})
    writer.flush()      # wait until everything submitted is in the database (or spooled)

Guarantees:
- `submit_*` never blocks on the database and never raises for a database problem: rows go
  to a bounded in-memory queue; when it is full they go straight to the spool.
- One thread writes batches of up to `batch_size` rows, each batch in one transaction
  (one INSERT per table, so run totals move once per run).
- A finished task without a cost is priced in that transaction, with the price book then
  in force (`ingest.spend.price_books.price_new_tasks`: one read of the overrides per batch), so
  a task spooled during an outage is priced when it is finally written.
- When a write fails because the database is unreachable, the batch is spooled to
  `$AI_RUNS_HOME/spool/*.jsonl` (written to a temporary name, then renamed: a file is
  complete or absent) and replayed, oldest first, once the database answers again (retries
  back off from `retry_seconds` to `max_retry_seconds`). Inserts skip ids that exist, so a
  replayed batch is written exactly once, also if this process dies between the commit and
  the removal of the file, and also if another process replays the same spool.
- When the spool holds `max_spool_bytes`, further rows are dropped and one log line per
  outage says so (with the count once the database is back).
- A row the database refuses (not a connection problem) is logged and dropped; a task
  whose run does not exist is logged and dropped.
- A spool file that cannot be read (not UTF-8, not one JSON ["run" | "task", {...}] per
  line) is moved aside to `<name>.bad` and reported at WARNING; the other files are still
  replayed. An unexpected error in the writer thread is logged, never fatal to it.
- `flush()` and interpreter exit (atexit) write what is queued; `close()` spools what is
  still queued, also when the writer thread is no longer running.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from ingest.access import redaction
from ingest.errors import ValidationError
from ingest.spend import price_books
from ingest.store import config, database, sqlfiles

log = logging.getLogger("ingest.background_writer")

_STOP = object()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False, allow_nan=False)


class BackgroundWriter:
    """A writer thread for one database URL (see the module docstring for the contract).

    max_queue: rows held in memory before they go to the spool. batch_size: rows per
    transaction. spool_dir: default $AI_RUNS_HOME/spool. max_spool_bytes: spool bound.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        spool_dir: str | Path | None = None,
        max_spool_bytes: int = 256 * 1024 * 1024,
        retry_seconds: float = 0.2,
        max_retry_seconds: float = 5.0,
    ) -> None:
        self.url = database.database_url(url)
        self.batch_size = batch_size
        self.spool_dir = Path(spool_dir) if spool_dir else config.home() / "spool"
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.max_spool_bytes = max_spool_bytes
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.dropped = 0  # rows dropped because the spool was full
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._queries = sqlfiles.beside(__file__)
        self._redactor = redaction.Redactor(self.url)
        self._conn: psycopg.Connection | None = None
        self._down_since: float | None = None
        self._next_retry = 0.0
        self._backoff = retry_seconds
        self._full_reported = False
        self._wake = threading.Event()
        self._spool_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="ai-runs-writer", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)
        atexit.register(lambda: (w := ref()) is not None and w.close(timeout=10))

    # ------------------------------------------------------------ application side

    def submit_run(self, row: dict[str, Any]) -> None:
        """Queue one new run (ai_runs columns: id, user_id, source_type, name, ...)."""
        self._submit(("run", row))

    def submit_task(self, row: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
        """Queue one finished task (ai_tasks columns; run_id and task_id required), or a
        callable returning it, called in the writer thread (a ValidationError it raises is
        logged, naming the field, and the task dropped)."""
        self._submit(("task", row))

    def _submit(self, item: tuple[str, dict[str, Any]]) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._spool_quietly(self._built([item]))

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every row submitted so far is written, or spooled and then written if
        the database answers within `timeout` seconds. True when nothing is left waiting."""
        deadline = None if timeout is None else time.monotonic() + timeout
        done = self._queue.all_tasks_done
        with done:
            while self._queue.unfinished_tasks:
                remaining = None if deadline is None else deadline - time.monotonic()
                if (remaining is not None and remaining <= 0) or not self._thread.is_alive():
                    return False
                done.wait(1.0 if remaining is None else min(remaining, 1.0))
        while self.spooled_files():
            if not self._thread.is_alive():
                return False
            self._next_retry = 0.0
            self._wake.set()
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def spooled_files(self) -> list[Path]:
        """Spool files waiting for the database, oldest first."""
        return sorted(self.spool_dir.glob("*.jsonl"))

    def close(self, timeout: float | None = 10.0) -> None:
        """Flush (up to `timeout` seconds), then stop the writer thread. Rows still
        queued after that are spooled, so a later writer replays them; also when the
        thread is no longer running (it died), so nothing queued is lost."""
        if self._thread.is_alive():
            self.flush(timeout)
            self._queue.put(_STOP)
            self._thread.join(timeout)
        leftovers = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            self._queue.task_done()
            if item is not _STOP:
                leftovers.append(item)
        if leftovers:
            self._spool_quietly(self._built(leftovers))
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ------------------------------------------------------------ writer thread

    def _loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                self._guarded(self._replay_if_due, "spool replay failed")
                continue
            batch = [first]
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in batch)
            rows = self._built([item for item in batch if item is not _STOP])
            try:
                self._guarded(self._replay_if_due, "spool replay failed")
                if rows:
                    self._write_or_spool(rows)
            except Exception:  # never let the thread die: a lost writer loses every task
                log.exception("background writer: unexpected error; batch spooled")
                self._spool_quietly(rows)
            finally:
                for _ in batch:
                    self._queue.task_done()
            if stop:
                return

    @staticmethod
    def _guarded(action: Callable[[], None], what: str) -> None:
        """Run `action`; an unexpected error is logged, never raised (the thread lives)."""
        try:
            action()
        except Exception:
            log.exception("background writer: %s", what)

    def _built(self, items: list[tuple[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        rows = []
        for kind, row in items:
            if callable(row):
                try:
                    row = row()
                except ValidationError as error:
                    log.error("background writer: task dropped: %s", error)
                    continue
                except Exception:
                    log.exception("background writer: task dropped")
                    continue
            rows.append((kind, row))
        return rows

    def _write_or_spool(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        if self._down_since is not None and time.monotonic() < self._next_retry:
            self._spool_quietly(rows)
            return
        try:
            self._write(rows)
            self._mark_up()
        except psycopg.OperationalError as error:
            self._mark_down(error)
            self._spool_quietly(rows)

    def _replay_if_due(self) -> None:
        waiting = self._down_since is not None and time.monotonic() < self._next_retry
        if waiting and not self._wake.is_set():
            return
        self._wake.clear()
        for path in self.spooled_files():
            try:
                rows = _read_spool_file(path)
            except FileNotFoundError:  # replayed by another writer meanwhile
                continue
            except (OSError, ValueError) as error:
                self._set_aside(path, error)
                continue
            try:
                self._write(rows)
            except psycopg.OperationalError as error:
                self._mark_down(error)
                return
            path.unlink(missing_ok=True)
            self._mark_up()

    def _set_aside(self, path: Path, error: Exception) -> None:
        """Move an unreadable spool file out of the replay (`<name>.bad`, kept for a
        person to look at) and say so; the files after it are still replayed."""
        bad = path.with_suffix(".bad")
        try:
            path.rename(bad)
        except FileNotFoundError:  # replayed or set aside by another writer meanwhile
            return
        log.warning(
            "background writer: spool file %s cannot be read (%s); moved aside to %s",
            path.name,
            error,
            bad,
        )

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=2)
        return self._conn

    def _write(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        runs = [row for kind, row in rows if kind == "run"]
        tasks = [row for kind, row in rows if kind == "task"]
        conn = self._connection()
        try:
            self._insert(conn, runs, tasks)
        except psycopg.OperationalError:
            raise
        except psycopg.Error as error:
            # A row the database refuses: write the others one by one, drop the bad ones.
            log.warning("background writer: batch refused (%s); writing rows one by one", error)
            for kind, row in rows:
                try:
                    self._insert(
                        conn, [row] if kind == "run" else [], [row] if kind == "task" else []
                    )
                except psycopg.OperationalError:
                    raise
                except psycopg.Error as row_error:
                    log.error(
                        "background writer: %s %s dropped: %s",
                        kind,
                        row.get("task_id", row.get("id")),
                        row_error,
                    )

    def _insert(self, conn: psycopg.Connection, runs: list[dict], tasks: list[dict]) -> None:
        # Redaction (docs/access.md) right before the rows are stored, with the masks per task
        # in the same transaction. A spooled batch waits on local disk as the application
        # handed it and is masked when it is replayed.
        runs = [dict(row) for row in runs]
        tasks = [dict(row) for row in tasks]
        masks = redaction.redact_rows(runs, tasks, self._redactor.rules(conn))
        with conn.transaction():
            if runs:
                conn.execute(self._queries["insert_runs_batch"].psycopg, {"rows": _dumps(runs)})
            if tasks:
                tasks = price_books.price_new_tasks(conn, tasks)
                orphans = conn.execute(
                    self._queries["insert_tasks_batch"].psycopg, {"rows": _dumps(tasks)}
                ).fetchall()
                for (task_id,) in orphans:
                    log.error("background writer: task %s dropped: its run does not exist", task_id)
            redaction.record_many(conn, masks)

    def _mark_down(self, error: Exception) -> None:
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            self._backoff = self.retry_seconds
            log.warning(
                "background writer: database unreachable, spooling to %s (%s)",
                self.spool_dir,
                str(error).strip().splitlines()[0] if str(error) else error,
            )
        else:
            self._backoff = min(self._backoff * 2, self.max_retry_seconds)
        self._next_retry = now + self._backoff
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _mark_up(self) -> None:
        if self._down_since is not None:
            log.warning(
                "background writer: database back after %.1f s", time.monotonic() - self._down_since
            )
        if self._full_reported:
            log.warning(
                "background writer: %d rows were dropped while the spool was full", self.dropped
            )
        self._down_since = None
        self._full_reported = False

    # ------------------------------------------------------------ spool

    def _spool_quietly(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        """Spool `rows`; a failure (disk full, a value that is not JSON) is logged with the
        number of rows lost, never raised: the application and the thread go on."""
        try:
            self._spool(rows)
        except Exception:
            log.exception("background writer: %d rows could not be spooled and are lost", len(rows))

    def _spool(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        with self._spool_lock:
            used = sum(p.stat().st_size for p in self.spool_dir.glob("*.jsonl") if p.exists())
            text = "".join(_dumps(list(row)) + "\n" for row in rows)
            if used + len(text.encode()) > self.max_spool_bytes:
                self.dropped += len(rows)
                if not self._full_reported:
                    self._full_reported = True
                    log.error(
                        "background writer: spool %s is full (%d bytes): new tasks are "
                        "dropped until the database is back",
                        self.spool_dir,
                        used,
                    )
                return
            name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            tmp = self.spool_dir / f"{name}.tmp"
            tmp.write_text(text, encoding="utf-8")
            tmp.rename(self.spool_dir / f"{name}.jsonl")


def _read_spool_file(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The rows of one spool file: one JSON ["run" | "task", {columns}] per line.
    ValueError (or OSError) when the file is not that."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line:
            continue
        item = json.loads(line)
        if not (
            isinstance(item, list)
            and len(item) == 2
            and item[0] in ("run", "task")
            and isinstance(item[1], dict)
        ):
            raise ValueError(f"line {number} is not a spooled run or task")
        rows.append((item[0], item[1]))
    return rows
