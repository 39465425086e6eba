"""The online evaluator worker: an evaluator runs on a sample of new finished tasks, in the
background, never in ingest's way: `ai-runs eval worker` (docs/quality.md).
SQL: ingest/tracking/sql/evaluation.sql; the steps it shares with offline scoring:
ingest.tracking.evaluation.

- It picks work up from Postgres, not from the write path: finished tasks in (sync_xid, id)
  order after its stored position (ai_eval_cursors) and below the snapshot's xmin (every
  transaction below it has ended, so a task committed late is still read later). Ingest
  never waits for it and never knows it is there.
- A page of at most `batch` tasks is in memory at a time (its bounded queue); a judge's page
  is evaluated by `threads` calls at once. The page's scores and errors and the new position
  are written in one transaction: after a crash or a restart it goes on from the last page
  written, nothing lost, and a task already scored by this evaluator version is not
  evaluated again (nothing counted twice).
- The sample is decided by the task id (`in_sample`): the same tasks whichever worker runs.
- A task whose provider failed (an error of kind `provider`) is tried again by a later
  pass, `retry_after` seconds on, until `max_attempts` calls in all.
- A new worker (an evaluator version never run online) starts at the present: it evaluates
  the tasks finished from then on; the offline `ai-runs eval score` covers the past.
- That xmin belongs to the whole server: a transaction left open in any database holds it,
  and no task written after it began is evaluated until it ends. A pass names such
  transactions (`held_back_by`, and a logged warning) at most once every
  ingest.store.horizon.HELD_BACK_AFTER_SECONDS (docs/design.md, "When the horizon is held
  back").
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ingest.errors import ValidationError
from ingest.store import database, horizon, sqlfiles
from ingest.tracking import evaluation
from ingest.tracking.evaluation import EvalOutcome, Evaluator

log = logging.getLogger("ingest.online_eval")
START = "00000000-0000-0000-0000-000000000000"  # the lowest id: a position before any task


def in_sample(task_id: uuid.UUID | str, sample: float) -> bool:
    """Whether a task is in a sample of share `sample` (0..1): the first 32 bits of the md5
    of its task_id, as a share of 2^32, below `sample` (the SQL `in_sample` says the same)."""
    digest = hashlib.md5(str(task_id).encode(), usedforsecurity=False).hexdigest()
    return int(digest[:8], 16) / 2**32 < sample


class OnlineEvaluator:
    """Runs `evaluator` over the sampled new finished tasks (see the module docstring).

    `run_once()` evaluates every task there is now and returns what it did; `start()` runs
    passes in a daemon thread every `interval` seconds until `stop()`."""

    def __init__(
        self,
        evaluator: Evaluator,
        *,
        sample: float = 0.1,
        url: str | None = None,
        interval: float = 1.0,
        threads: int = 1,
        retry_after: float = 60.0,
        max_attempts: int = 9,
    ) -> None:
        if isinstance(sample, bool) or not isinstance(sample, int | float) or not 0 < sample <= 1:
            raise ValidationError("sample", f"must be a share in (0, 1], got {sample!r}")
        if not 0 < interval <= 3600:
            raise ValidationError("interval", f"must be 0..3600 seconds, got {interval!r}")
        if not 1 <= threads <= 64:
            raise ValidationError("threads", f"must be 1..64, got {threads!r}")
        self.evaluator = evaluator
        self.sample = float(sample)
        self.url = database.database_url(url)
        self.interval = interval
        self.threads = threads
        self.retry_after = retry_after
        self.max_attempts = max_attempts
        self.worker = f"{evaluator.evaluator}:{evaluator.version}"
        self.total = EvalOutcome()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._open = False
        # The open transactions found holding the horizon back at the last look, when.
        self.held_back_by: list[horizon.HorizonHolder] = []
        self._looked_at: float | None = None
        self._horizon = "0"  # the horizon of the previous look

    def run_once(self) -> EvalOutcome:
        """One pass: every sampled new task and every task due for a retry, page by page."""
        outcome = EvalOutcome()
        with self._session(), psycopg.connect(self.url, row_factory=dict_row) as conn:
            evaluation.declare(conn, self.evaluator)
            while not self._stop.is_set() and self._page(conn, outcome):
                pass
            while not self._stop.is_set() and self._retries(conn, outcome):
                pass
            self._look_for_holders(conn)
        self.total.add(outcome)
        return outcome

    def start(self) -> OnlineEvaluator:
        """Run passes in a daemon thread until stop()."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.worker, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the page in hand is written."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> OnlineEvaluator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @contextlib.contextmanager
    def _session(self) -> Iterator[None]:
        """The evaluator's session (a judge's tracked client), opened once for the passes
        of a running worker."""
        if self._open:
            yield
            return
        with evaluation.session_of(self.evaluator, self.url):
            self._open = True
            try:
                yield
            finally:
                self._open = False

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self._session():
                    while not self._stop.is_set():
                        self.run_once()
                        self._stop.wait(self.interval)
            except Exception:  # a database outage: the next pass starts from the position
                log.exception("online evaluator %s: pass failed; trying again", self.worker)
                self._stop.wait(self.interval)

    def _page(self, conn: psycopg.Connection, outcome: EvalOutcome) -> bool:
        """Evaluate the next page of new tasks; False when there were none left."""
        queries = sqlfiles.beside(evaluation.__file__)
        conn.execute(queries["first_eval_cursor"].psycopg, {"worker": self.worker})
        cursor = conn.execute(queries["eval_cursor"].psycopg, {"worker": self.worker}).fetchone()
        horizon = conn.execute(queries["eval_horizon"].psycopg).fetchone()["horizon"]
        rows = conn.execute(
            queries["online_tasks"].psycopg,
            {**self._params(), "after_xid": cursor["after_xid"], "after_id": cursor["after_id"],
             "horizon": horizon, "sample": self.sample},
        ).fetchall()  # fmt: skip
        conn.commit()
        full = len(rows) == self.evaluator.batch
        position = (rows[-1]["sync_xid"], rows[-1]["id"]) if full else (horizon, START)
        self._evaluate(conn, rows, outcome, position)
        return full

    def _look_for_holders(self, conn: psycopg.Connection) -> None:
        """Name the transactions holding the horizon back (held_back_by, a logged warning), at
        most once every HELD_BACK_AFTER_SECONDS. Looking never fails a pass."""
        now = time.monotonic()
        if self._looked_at is not None and now - self._looked_at < horizon.HELD_BACK_AFTER_SECONDS:
            return
        self._looked_at = now
        try:
            self.held_back_by = horizon.find_holders(conn, previous=self._horizon)
            queries = sqlfiles.beside(evaluation.__file__)
            self._horizon = conn.execute(queries["eval_horizon"].psycopg).fetchone()["horizon"]
            conn.commit()
        except psycopg.Error as exc:
            conn.rollback()
            log.warning("online evaluator %s: could not look for open transactions: %s",
                        self.worker, exc)  # fmt: skip
            return
        if self.held_back_by:
            message = horizon.held_back_message(self.held_back_by)
            log.warning("online evaluator %s: %s", self.worker, message)

    def _retries(self, conn: psycopg.Connection, outcome: EvalOutcome) -> bool:
        """Try again the tasks due for a retry (one page); False when there were none."""
        queries = sqlfiles.beside(evaluation.__file__)
        params = {**self._params(), "max_attempts": self.max_attempts,
                  "retry_after": self.retry_after}  # fmt: skip
        rows = conn.execute(queries["retry_tasks"].psycopg, params).fetchall()
        conn.commit()
        if rows:
            self._evaluate(conn, rows, outcome, None)
        return len(rows) == self.evaluator.batch

    def _evaluate(
        self,
        conn: psycopg.Connection,
        rows: list[dict[str, Any]],
        outcome: EvalOutcome,
        position: tuple[str, Any] | None,
    ) -> None:
        done_ids = evaluation.done_tasks(conn, self.evaluator, rows)
        conn.commit()
        todo = [row for row in rows if row["task_id"] not in done_ids]
        results = evaluation.evaluate_tasks(self.evaluator, todo, threads=self.threads)
        with conn.transaction():
            done = evaluation.store_results(conn, self.evaluator, results)
            if position is not None:
                conn.execute(
                    sqlfiles.beside(evaluation.__file__)["move_eval_cursor"].psycopg,
                    {"worker": self.worker, "after_xid": position[0], "after_id": position[1]},
                )
        done.tasks, done.skipped = len(rows), done.skipped + len(rows) - len(todo)
        outcome.add(done)

    def _params(self) -> dict[str, Any]:
        return {
            "evaluator": self.evaluator.evaluator,
            "evaluator_version": self.evaluator.version,
            "limit": self.evaluator.batch,
            "with_request": self.evaluator.reads_request,
        }
