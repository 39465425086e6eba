"""Realistic demo data at any scale, reproducible for a seed, written with the bulk path.

`generate(url, tasks=N, seed=S, days=D, end=E)` writes users, runs and N tasks spanning
[E - D days, E). Same seed, N, D and E: the same rows, byte for byte (a second call into
the same database inserts nothing). What is in it:

- users in six teams (members, one manager per team, two admins) with heavy-tailed activity;
- runs of all six source types with multi-turn messages (a user message per task, an
  assistant message per completed task), settings, variables, broker values, attachments
  (file, url, image, youtube), tags, stars, archived/deleted runs and a few forks;
- tasks on real provider/model names: costs from genai-prices for the ones it prices
  (`ingest.pricing.task_cost` at the task's time, to the last digit), NULL for the others;
- heavy-tailed TTFT and total time (lognormal with a Pareto tail) by model, prompt size and
  hour; `demo_catalog.DRIFTING_MODEL` gets markedly slower over the last 7 days;
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
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from ingest import bulk, database, pricing
from ingest.demo import catalog as cat
from ingest.demo import copy_rows as demo_rows
from ingest.demo.sample_tasks import DAY_US, STATUSES, US, _from_us, make_chunk
from ingest.vocabulary import RUN_COLUMNS, TASK_COLUMNS

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
    start: datetime | None = None
    end: datetime | None = None
    seconds: float = 0.0


def generate(
    url: str | None = None,
    *,
    tasks: int,
    seed: int = 0,
    days: int = 90,
    end: datetime | None = None,
    progress: bool = False,
) -> DemoSummary:
    """Write demo users, runs and `tasks` tasks into the database; return what was made.

    `end` (default now, UTC) is excluded; data spans [end - days, end). `progress` draws a
    bar on stderr.
    """
    if tasks < 0:
        raise ValueError(f"tasks must be >= 0, got {tasks}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    started = time.monotonic()
    end = (end or datetime.now(UTC)).astimezone(UTC)
    plan = Plan(seed, tasks, days, end)
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
    summary.tasks_by_status = {s: int(n) for s, n in zip(STATUSES, counts, strict=True) if n}
    summary.cost_total = Decimal(cost_e10).scaleb(-10) + extra_cost
    summary.seconds = time.monotonic() - started
    return summary


# ---------------------------------------------------------------------------- the plan


class Plan:
    """Everything shared by all chunks: users, calendar weights, model mix, unit prices."""

    def __init__(self, seed: int, tasks: int, days: int, end: datetime):
        self.seed, self.tasks, self.days = seed, tasks, days
        self.end_us = _to_us(end)
        self.start_us = self.end_us - days * DAY_US
        rng = np.random.default_rng([seed, 1])
        self._users(rng, int(np.clip(tasks // 2500, 12, 400)))
        self._calendar(rng)
        self.models = cat.MODELS
        bias = np.array(
            [[cat.TEAM_TIER_BIAS[t][m.tier] * m.weight for m in self.models] for t in cat.TEAMS]
        )
        self.team_model_cdf = np.cumsum(bias / bias.sum(1, keepdims=True), 1)
        base = np.array([m.weight for m in self.models])
        self.model_cdf = np.cumsum(base / base.sum())
        self.model_ids = [
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"ai-runs-demo/{m.provider}/{m.name}"))
            for m in self.models
        ]
        self.prices = [
            unit_prices(m.provider, m.name, self.start_us, self.end_us) for m in self.models
        ]

    def _users(self, rng: np.random.Generator, n: int) -> None:
        self.user_ids = [f"user-{i:04d}" for i in range(n)]
        self.user_team = np.arange(n) % len(cat.TEAMS)
        activity = rng.lognormal(0.0, 1.1, n)
        self.user_p = activity / activity.sum()
        first = rng.integers(0, len(cat.FIRST_NAMES), n)
        last = rng.integers(0, len(cat.LAST_NAMES), n)
        self.user_names = [
            f"{cat.FIRST_NAMES[a]} {cat.LAST_NAMES[b]}" for a, b in zip(first, last, strict=True)
        ]
        self.user_roles = ["admin" if i < 2 else "manager" if i < len(cat.TEAMS) + 2 else "member"
                           for i in range(n)]  # fmt: skip
        self.user_created = (
            self.start_us - rng.integers(5, 400, n) * DAY_US - rng.integers(1, DAY_US, n)
        )

    def user_lines(self) -> list[str]:
        stamps = demo_rows.iso(self.user_created)
        lines = []
        for i, uid in enumerate(self.user_ids):
            name = self.user_names[i]
            email = f"{name.lower().replace(' ', '.')}.{i}@example.com"
            team = cat.TEAMS[self.user_team[i]]
            lines.append(f"{uid}\t{name}\t{email}\t{team}\t{self.user_roles[i]}\t"
                         f"{stamps[i]}\t{stamps[i]}")  # fmt: skip
        return lines

    def _calendar(self, rng: np.random.Generator) -> None:
        # Calendar days (UTC midnights) covering the window; weekday and growth weights.
        self.day0_us = self.start_us - self.start_us % DAY_US
        n_days = (self.end_us - self.day0_us) // DAY_US + 1
        weekday = (np.arange(n_days) + (self.day0_us // DAY_US + 3)) % 7  # 1970-01-01: Thu
        self.day_weekend = weekday >= 5
        weights = np.array([1.0, 1.06, 1.08, 1.02, 0.88, 0.32, 0.26])[weekday]
        weights *= 1 + 0.7 * np.arange(n_days) / n_days
        weights *= rng.lognormal(0, 0.08, n_days)
        self.day_p = weights / weights.sum()
        office = np.array([0.2, 0.15, 0.12, 0.12, 0.2, 0.4, 0.9, 1.6, 2.6, 3.4, 3.6, 3.3,
                           2.8, 3.3, 3.6, 3.4, 3.0, 2.4, 1.7, 1.2, 0.9, 0.7, 0.5, 0.3])  # fmt: skip
        self.hour_p = office / office.sum()
        weekend = 0.4 + office / 3
        self.hour_p_weekend = weekend / weekend.sum()


def unit_prices(provider: str, model: str, start_us: int, end_us: int) -> tuple | None:
    """(input, cached input, output) prices in 1e-10 USD per token, or None when unpriced.

    Derived from `pricing.task_cost` and used only if the model's price is the same at the
    start, middle and end of the window, linear, and exact in 10 decimals; otherwise the
    generator calls task_cost per task (`"per-task"`).
    """
    moments = [_from_us(t) for t in (start_us, (start_us + end_us) // 2, end_us - 1)]
    found = set()
    for at in moments:
        probe = [pricing.task_cost(provider, model, *args, at=at)
                 for args in ((100_000, 0, 0), (100_000, 0, 100_000), (0, 100_000, 0))]  # fmt: skip
        if None in probe:
            return None
        found.add(tuple(p * 100_000 for p in probe))
    if len(found) != 1:
        return "per-task"
    prices = found.pop()
    if any(p != p.to_integral_value() for p in prices):
        return "per-task"
    p_in, p_cached, p_out = (int(p) for p in prices)
    check = pricing.task_cost(provider, model, 12_345, 678, 2_345, at=moments[1])
    if check != Decimal((12_345 - 2_345) * p_in + 2_345 * p_cached + 678 * p_out).scaleb(-10):
        return "per-task"
    return p_in, p_cached, p_out


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


def _to_us(moment: datetime) -> int:
    return int(moment.timestamp()) * US + moment.microsecond


class _ProgressBar:
    def __init__(self, total: int):
        self.total, self.started, self.shown = max(total, 1), time.monotonic(), 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.shown < 0.2 and done < self.total:
            return
        self.shown = now
        width = 30
        filled = int(width * done / self.total)
        sys.stderr.write(
            f"\rdemo [{'#' * filled}{'.' * (width - filled)}] {done:,}/{self.total:,} tasks "
            f"{100 * done / self.total:5.1f}% {now - self.started:6.1f}s"
        )
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()
