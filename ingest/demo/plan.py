"""The plan of one demo: its window, users, calendar weights and model prices, fixed by the
seed before any chunk is sampled (ingest.demo.sample_tasks), plus the time helpers they share.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from ingest.demo import catalog as cat
from ingest.spend import pricing

US = 1_000_000
HOUR_US = 3600 * US
DAY_US = 24 * HOUR_US


def iso(us: np.ndarray) -> list[str]:
    """ISO 8601 UTC strings (microseconds) of epoch-microsecond values."""
    text = np.datetime_as_string(np.asarray(us).astype("datetime64[us]"), unit="us")
    return [t + "+00:00" for t in text.tolist()]


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return int(moment.timestamp()) * US + moment.microsecond


def from_us(us: int) -> datetime:
    """The UTC datetime of epoch-microseconds `us`."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


class Plan:
    """Everything shared by all chunks: users, calendar weights, model mix, unit prices."""

    def __init__(self, seed: int, tasks: int, days: int, end: datetime, quality: bool = False):
        self.seed, self.tasks, self.days = seed, tasks, days
        self.quality = quality  # runs of the last days carry an A/B variant (demo.quality)
        self.end_us = to_us(end)
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
        stamps = iso(self.user_created)
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
    moments = [from_us(t) for t in (start_us, (start_us + end_us) // 2, end_us - 1)]
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
