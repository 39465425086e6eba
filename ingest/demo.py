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
from types import SimpleNamespace

import numpy as np

from ingest import bulk, database, demo_rows, pricing
from ingest import demo_catalog as cat

CHUNK_TASKS = 25_000
WRITERS = 2  # connections writing chunks at once (Postgres is the bottleneck)
MAX_INPUT_TOKENS = 180_000  # below the 200k long-context price tiers
US = 1_000_000
HOUR_US = 3600 * US
DAY_US = 24 * HOUR_US
STATUSES = ("completed", "failed", "cancelled", "streaming", "pending")
COMPLETED, FAILED, CANCELLED, STREAMING, PENDING = range(5)

RUN_COLUMNS = (
    "id", "user_id", "source_type", "source_id", "name", "description", "tags", "messages",
    "settings", "variable_values", "broker_values", "attachments", "metadata", "status",
    "is_starred", "parent_run_id", "forked_from_message", "created_at", "updated_at",
    "last_message_at",
)  # fmt: skip
TASK_COLUMNS = (
    "id", "run_id", "user_id", "task_id", "service", "task_name", "provider", "endpoint",
    "model", "model_id", "request_data", "response_text", "response_data", "response_info",
    "response_errors", "tool_updates", "response_complete", "response_metadata",
    "tokens_input", "tokens_output", "tokens_cached_input", "tokens_reasoning", "tokens_total",
    "cost", "time_to_first_token", "total_time", "status", "created_at", "updated_at",
    "completed_at",
)  # fmt: skip


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


def make_chunk(plan: Plan, index: int, n: int) -> demo_rows.Chunk:
    """Chunk `index` of the plan: `n` tasks and their runs, as COPY lines."""
    rng = np.random.default_rng([plan.seed, 2, index])
    srcs = cat.SOURCES
    # ---- runs: source type, number of tasks, user, model, start time
    src_p = np.array([s.weight for s in srcs])
    stype = rng.choice(len(srcs), size=n, p=src_p / src_p.sum())
    ntask = np.minimum(rng.geometric(1 / np.array([s.tasks_mean for s in srcs])[stype]), 40)
    ends = np.cumsum(ntask)
    n_runs = int(np.searchsorted(ends, n) + 1)
    stype, ntask = stype[:n_runs], ntask[:n_runs].copy()
    ntask[-1] -= ends[n_runs - 1] - n
    user = rng.choice(len(plan.user_ids), size=n_runs, p=plan.user_p)
    team = plan.user_team[user]
    run_model = (rng.random(n_runs)[:, None] > plan.team_model_cdf[team]).sum(1)
    run_model = np.minimum(run_model, len(plan.models) - 1)
    run_start = _sample_times(rng, plan, n_runs)

    # ---- tasks: position in the run, model, status
    run_of = np.repeat(np.arange(n_runs), ntask)
    first = np.concatenate([[0], np.cumsum(ntask)[:-1]])
    last = first + ntask - 1
    turn = np.arange(n) - first[run_of]
    src = stype[run_of]
    model = run_model[run_of].copy()
    mixes = np.isin(src, [3, 4]) & (rng.random(n) < 0.35)  # cockpit, workflow mix models
    model[mixes] = np.minimum(
        np.searchsorted(plan.model_cdf, rng.random(mixes.sum())), len(plan.models) - 1
    )
    m_fail = np.array([m.failure_rate for m in plan.models])
    week_ago = plan.end_us - 7 * DAY_US
    drifting = np.array([m.name == cat.DRIFTING_MODEL for m in plan.models])[model]
    ramp = np.clip((run_start[run_of] - week_ago) / DAY_US, 0, 1) * drifting
    fail_p = m_fail[model] * (1 + 0.8 * ramp)
    cancel_p = np.array([s.cancel_rate for s in srcs])[src]
    u = rng.random(n)
    status = np.where(u < fail_p, FAILED, np.where(u < fail_p + cancel_p, CANCELLED, COMPLETED))
    error = _error_kinds(rng, plan, model)
    pre_stream = (status == FAILED) & np.array([e[4] for e in cat.ERRORS])[error]
    stuck_runs = np.array([], dtype=np.int64)
    if index == 0:  # a few tasks left hanging by a lost client, near the end
        n_stuck = min(n_runs, max(3, plan.tasks // 50_000))
        stuck_runs = rng.choice(n_runs, size=n_stuck, replace=False)
        status[last[stuck_runs]] = STREAMING
        status[last[stuck_runs[: n_stuck // 3]]] = PENDING

    # ---- tokens
    conversational = np.isin(src, [0, 3])  # chat, cockpit carry their context along
    in_median = np.array([s.input_median for s in srcs])[src]
    out_median = np.array([m.output_median for m in plan.models])[model]
    full_out = np.clip(rng.lognormal(np.log(out_median), 0.85), 1, 16_000).astype(np.int64)
    partial = rng.uniform(0.02, 0.7, n)
    out = np.where(status == COMPLETED, full_out, (full_out * partial).astype(np.int64))
    out[pre_stream | (status >= STREAMING)] = 0
    user_msg = rng.lognormal(np.log(120), 0.8, n).astype(np.int64) + 5
    step = user_msg + out
    csum = np.cumsum(step)
    context = (csum - step) - (csum - step)[first][run_of]
    base_in = rng.lognormal(np.log(in_median), 0.7).astype(np.int64) + 20
    inp = np.where(conversational, base_in[first][run_of] + context + user_msg, base_in)
    inp = np.minimum(inp, MAX_INPUT_TOKENS)
    caching = np.array([m.caching for m in plan.models])[model]
    cached = np.where(
        conversational & (turn > 0),
        context * rng.uniform(0.6, 0.95, n),
        np.where(rng.random(n) < 0.3, inp * rng.uniform(0.2, 0.8, n), 0),
    ).astype(np.int64)
    cached = np.where(caching, np.minimum(cached, inp), 0)
    inp[pre_stream | (status == PENDING)] = 0
    cached[pre_stream | (status == PENDING)] = 0
    reasoning_model = np.array([m.reasoning for m in plan.models])[model]
    reasoning = np.where(reasoning_model, out * rng.uniform(0.3, 0.75, n), 0).astype(np.int64)

    # ---- timing (milliseconds)
    hour = (run_start[run_of] // HOUR_US) % 24
    load = 1 + 0.25 * ((hour >= 13) & (hour <= 17))
    ttft_median = np.array([m.ttft_ms for m in plan.models])[model]
    speed = np.array([m.tokens_per_s for m in plan.models])[model] * rng.lognormal(0, 0.25, n)
    speed /= 1 + (cat.DRIFT_SPEED_FACTOR - 1) * ramp
    ttft = ttft_median * rng.lognormal(0, 0.45, n) * load * (1 + (cat.DRIFT_TTFT_FACTOR - 1) * ramp)
    ttft += 0.012 * inp + reasoning / speed * 1000
    tail = rng.random(n) < 0.03
    ttft[tail] *= 1 + rng.pareto(1.4, tail.sum())
    ttft = np.minimum(ttft, 180_000)
    total = ttft + out / speed * 1000 + rng.lognormal(np.log(35), 0.5, n)
    timeout = np.array([e[0] == "timeout" for e in cat.ERRORS])[error] & (status == FAILED)
    total[timeout] = 30_000 + rng.uniform(0, 30_000, timeout.sum())
    total[pre_stream] = rng.lognormal(np.log(700), 0.6, pre_stream.sum())
    ttft_ms = np.round(ttft).astype(np.int64)
    total_ms = np.maximum(np.round(total).astype(np.int64), ttft_ms)
    ttft_ms[pre_stream | (status == PENDING)] = -1
    total_ms[status >= STREAMING] = -1

    # ---- timestamps (microseconds since the epoch): tasks follow each other in a run
    think = np.array([s.think_s for s in srcs])[src]
    gap = np.minimum(rng.lognormal(np.log(think), 1.0), 1800) * US
    gap[turn == 0] = rng.uniform(0.2, 3.0, (turn == 0).sum()) * US
    duration = np.maximum(total_ms, 0) * 1000
    step_us = gap.astype(np.int64) + np.concatenate([[0], duration[:-1]]) * (turn > 0)
    csum = np.cumsum(step_us)
    offset = csum - (csum - step_us)[first][run_of]
    finish_last = run_start + offset[last] + duration[last]
    shift = np.maximum(finish_last - (plan.end_us - US), 0)
    shift[shift > 0] += rng.integers(0, 60 * US, (shift > 0).sum())
    if len(stuck_runs):
        target = plan.end_us - rng.integers(15 * 60 * US, 8 * HOUR_US, len(stuck_runs))
        shift[stuck_runs] = run_start[stuck_runs] + offset[last[stuck_runs]] - target
    run_start = _nonzero_us(run_start - shift)
    created = _nonzero_us(run_start[run_of] + offset)
    finished = _nonzero_us(created + duration)
    streamed = created + np.maximum(ttft_ms, 0) * 1000 + rng.integers(US, 20 * US, n)
    updated = np.where(status == PENDING, created, finished)
    updated = _nonzero_us(np.where(status == STREAMING, streamed, updated))

    # ---- cost in 1e-10 USD
    cost_e10 = np.full(n, -1, dtype=np.int64)
    extra: dict[int, Decimal] = {}
    for k, prices in enumerate(plan.prices):
        rows = (model == k) & (status <= CANCELLED)
        if prices is None or not rows.any():
            continue
        if prices == "per-task":
            for i in np.flatnonzero(rows):
                extra[int(i)] = pricing.task_cost(
                    plan.models[k].provider, plan.models[k].name, int(inp[i]), int(out[i]),
                    int(cached[i]), at=_from_us(int(created[i])),
                )  # fmt: skip
            continue
        p_in, p_cached, p_out = prices
        cost_e10[rows] = (
            (inp[rows] - cached[rows]) * p_in + cached[rows] * p_cached + out[rows] * p_out
        )

    arrays = SimpleNamespace(
        stype=stype, ntask=ntask, user=user, run_model=run_model, run_start=run_start,
        run_of=run_of, first=first, last=last, src=src, model=model, status=status,
        error=error, pre_stream=pre_stream, inp=inp, out=out, cached=cached,
        reasoning=reasoning, ttft_ms=ttft_ms, total_ms=total_ms, created=created,
        finished=finished, updated=updated, cost_e10=cost_e10, extra=extra,
    )  # fmt: skip
    return demo_rows.chunk_lines(plan, rng, arrays)


def _sample_times(rng: np.random.Generator, plan: Plan, n: int) -> np.ndarray:
    """`n` start times (us) with the plan's day and hour weights, inside the window."""
    out = np.empty(0, dtype=np.int64)
    while len(out) < n:
        k = int((n - len(out)) * 1.2) + 16
        day = rng.choice(len(plan.day_p), size=k, p=plan.day_p)
        hour = np.where(
            plan.day_weekend[day],
            rng.choice(24, size=k, p=plan.hour_p_weekend),
            rng.choice(24, size=k, p=plan.hour_p),
        )
        t = plan.day0_us + day * DAY_US + hour * HOUR_US + rng.integers(0, HOUR_US, k)
        out = np.concatenate([out, t[(t >= plan.start_us) & (t < plan.end_us - HOUR_US)]])
    return out[:n]


def _error_kinds(rng: np.random.Generator, plan: Plan, model: np.ndarray) -> np.ndarray:
    """Index into demo_catalog.ERRORS per task (used only where the task failed)."""
    names = [e[0] for e in cat.ERRORS]
    weights = {"rate_limit_error": 0.3, "overloaded_error": 0.0, "timeout": 0.15,
               "context_length_exceeded": 0.08, "server_error": 0.17, "content_filter": 0.05,
               "stream_interrupted": 0.25}  # fmt: skip
    base = np.array([weights[k] for k in names])
    anthropic = base.copy()
    anthropic[names.index("overloaded_error")] = 0.3
    is_anthropic = np.array([m.provider == "anthropic" for m in plan.models])[model]
    u = rng.random(len(model))
    plain = np.searchsorted(np.cumsum(base / base.sum()), u)
    busy = np.searchsorted(np.cumsum(anthropic / anthropic.sum()), u)
    return np.minimum(np.where(is_anthropic, busy, plain), len(names) - 1)


def _nonzero_us(t: np.ndarray) -> np.ndarray:
    # A whole second would print without its fraction and change the text on a round trip.
    return t + (t % US == 0)


def _to_us(moment: datetime) -> int:
    return int(moment.timestamp()) * US + moment.microsecond


def _from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


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
