"""The demo's tasks and runs of one chunk, sampled with numpy (see ingest.demo.generate):
sources, users, models, token counts, heavy-tailed latencies, failures and costs, turned
into COPY lines by ingest.demo.copy_rows."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import numpy as np

from ingest.demo import catalog as cat
from ingest.demo import copy_rows
from ingest.demo.plan import DAY_US, HOUR_US, US, Plan, from_us
from ingest.spend import pricing

MAX_INPUT_TOKENS = 180_000  # below the 200k long-context price tiers
STATUSES = cat.TASK_STATUS_CODES
COMPLETED, FAILED, CANCELLED, STREAMING, PENDING = range(5)


# Over 60 lines: one vectorised sampling pass over a chunk; each block draws one column
# from the ones before it, and splitting it would pass the arrays around.
def make_chunk(plan: Plan, index: int, n: int) -> copy_rows.Chunk:
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
    # The drift starts at the UTC midnight that begins the last 7 calendar days (today
    # included), so the 7 days before them, which the Performance page compares with, hold
    # none of it, whatever the time of day the demo was made.
    week_ago = (plan.end_us // DAY_US - 6) * DAY_US
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
                    int(cached[i]), at=from_us(int(created[i])),
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
    return copy_rows.chunk_lines(plan, rng, arrays)


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
    """Index into catalog.ERRORS per task (used only where the task failed)."""
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
