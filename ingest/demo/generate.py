"""Realistic demo data at any scale, reproducible for a seed, written with the bulk path.

`generate(url, tasks=N, seed=S, days=D, end=E)` writes users, runs and N tasks spanning
[E - D days, E). Same seed, N, D and E: the same rows, byte for byte (a second call into
the same database inserts nothing). What is in it:

- users in six teams (members, one manager per team, two admins) with heavy-tailed activity;
- runs of all six source types with multi-turn messages (a user message per task, an
  assistant message per completed task), settings, variables, broker values, attachments
  (file, url, image, youtube), tags, stars, archived/deleted runs and a few forks;
- tasks on real provider/model names: costs from genai-prices for the ones it prices
  (`ingest.spend.pricing.task_cost` at the task's time, to the last digit), NULL for the others;
- heavy-tailed TTFT and total time (lognormal with a Pareto tail) by model, prompt size and
  hour; `catalog.DRIFTING_MODEL` gets markedly slower over the last 7 UTC calendar days
  (from the midnight that begins them: the 7 days before hold none of it);
- failures with error payloads, cancellations, a few tasks stuck in streaming/pending near
  the end; weekday/hour seasonality and growth over the period.

Generation is vectorized with numpy in chunks of `CHUNK_TASKS` tasks (each chunk has its own
random stream, so a chunk is the same whatever else runs) on a background thread, while
`WRITERS` connections COPY the chunks already made (runs and tasks of a chunk in one
transaction; chunks share no run).
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from ingest.demo import quality as demo_quality
from ingest.demo.plan import Plan
from ingest.demo.sample_tasks import STATUSES, make_chunk
from ingest.store import database
from ingest.store.vocabulary import RUN_COLUMNS, TASK_COLUMNS
from ingest.transfer import bulk

CHUNK_TASKS = 25_000
WRITERS = 2  # connections writing chunks at once (Postgres is the bottleneck)


@dataclass
class DemoSummary:
    """What `generate` produced. `inserted_*` < the totals when rows already existed."""

    users: int = 0
    runs: int = 0
    tasks: int = 0
    tasks_by_status: dict[str, int] = field(default_factory=dict)
    cost_total: Decimal = Decimal(0)  # USD, over priced tasks
    tokens_total: int = 0
    inserted_users: int = 0
    inserted_runs: int = 0
    inserted_tasks: int = 0
    scores_added: int = 0  # with quality=True: scores written by this call
    start: datetime | None = None
    end: datetime | None = None
    seconds: float = 0.0


# Over 60 lines: the producer/writer pipeline with its progress and summary in one place,
# so the order of the steps (and where a failure stops them) reads top to bottom.
def generate(
    url: str | None = None,
    *,
    tasks: int,
    seed: int = 0,
    days: int = 90,
    end: datetime | None = None,
    progress: bool = False,
    quality: bool = False,
) -> DemoSummary:
    """Write demo users, runs and `tasks` tasks into the database; return what was made.

    `end` (default now, UTC) is excluded; data spans [end - days, end). `progress` draws a
    bar on stderr. `quality`: also an A/B test (variants on the last days' runs) and scores
    with their evaluators (ingest.demo.quality), for the Compare page and score rollups.
    """
    if tasks < 0:
        raise ValueError(f"tasks must be >= 0, got {tasks}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    started = time.monotonic()
    end = (end or datetime.now(UTC)).astimezone(UTC)
    plan = Plan(seed, tasks, days, end, quality=quality)
    summary = DemoSummary(start=end - timedelta(days=days), end=end, users=len(plan.user_ids))
    counts = np.zeros(len(STATUSES), dtype=np.int64)
    cost_e10 = 0
    extra_cost = Decimal(0)
    bar = _ProgressBar(tasks) if progress else None
    url = database.database_url(url)
    with bulk.BulkWriter(url) as writer:
        (users,) = writer.write(
            bulk.Batch("ai_users", bulk.USER_COLUMNS, plan.user_lines(), plan.user_ids)
        )
    summary.inserted_users = users.inserted
    chunks = _chunks_in_background(plan)
    lock = threading.Lock()
    failures: list[BaseException] = []

    def write_chunks() -> None:
        # Chunks share no run, so writers never wait for each other's locks.
        nonlocal cost_e10, extra_cost
        try:
            with bulk.BulkWriter(url) as writer:
                while not failures:
                    with lock:
                        chunk = next(chunks, None)
                    if chunk is None:
                        return
                    r, t = writer.write(
                        bulk.Batch("ai_runs", RUN_COLUMNS, chunk.run_lines, chunk.run_ids,
                                   chunk.run_parents),
                        bulk.Batch("ai_tasks", TASK_COLUMNS, chunk.task_lines, chunk.task_ids,
                                   chunk.task_runs),
                    )  # fmt: skip
                    if r.missing_parent or t.missing_parent:
                        raise RuntimeError("demo rows refer to missing runs (a generator bug)")
                    with lock:
                        summary.runs += len(chunk.run_lines)
                        summary.tasks += len(chunk.task_lines)
                        summary.inserted_runs += r.inserted
                        summary.inserted_tasks += t.inserted
                        counts[:] += chunk.status_counts
                        cost_e10 += chunk.cost_e10
                        extra_cost += chunk.cost_extra
                        summary.tokens_total += chunk.tokens_total
                        if bar:
                            bar.update(summary.tasks)
        except BaseException as exc:  # re-raised by generate()
            failures.append(exc)

    writers = [threading.Thread(target=write_chunks, name=f"demo-writer-{i}")
               for i in range(WRITERS)]  # fmt: skip
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    chunks.close()
    if failures:
        raise failures[0]
    if bar:
        bar.close()
    if quality:
        days_bar = _ProgressBar(days, unit="days scored") if progress else None
        summary.scores_added = demo_quality.add_scores(
            url, seed, summary.start, end, on_day=days_bar.update if days_bar else None
        )
        if days_bar:
            days_bar.close()
    summary.tasks_by_status = {s: int(n) for s, n in zip(STATUSES, counts, strict=True) if n}
    summary.cost_total = Decimal(cost_e10).scaleb(-10) + extra_cost
    summary.seconds = time.monotonic() - started
    return summary


# ---------------------------------------------------------------------------- chunks


def _chunks_in_background(plan: Plan):
    """Yield the plan's chunks, generated one ahead on a background thread."""
    n_chunks = -(-plan.tasks // CHUNK_TASKS)
    chunks: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        try:
            for index in range(n_chunks):
                if stop.is_set():
                    return
                size = min(CHUNK_TASKS, plan.tasks - index * CHUNK_TASKS)
                chunks.put(make_chunk(plan, index, size))
        except BaseException as exc:  # handed to the consumer, re-raised there
            chunks.put(exc)

    thread = threading.Thread(target=produce, name="demo-generator", daemon=True)
    thread.start()
    try:
        for _ in range(n_chunks):
            item = chunks.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                chunks.get(timeout=0.05)


class _ProgressBar:
    def __init__(self, total: int, unit: str = "tasks"):
        self.total, self.started, self.shown = max(total, 1), time.monotonic(), 0.0
        self.unit = unit

    def update(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total = max(total, 1)
        now = time.monotonic()
        if now - self.shown < 0.2 and done < self.total:
            return
        self.shown = now
        width = 30
        filled = int(width * done / self.total)
        sys.stderr.write(
            f"\rdemo [{'#' * filled}{'.' * (width - filled)}] {done:,}/{self.total:,} {self.unit} "
            f"{100 * done / self.total:5.1f}% {now - self.started:6.1f}s"
        )
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()
