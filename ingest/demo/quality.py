"""The demo's quality data (docs/quality.md, "Demo data"): an A/B test and scores.

- The A/B test: every run that starts in the last `AB_DAYS` days of the demo carries the
  variant `prompt-v1` or `prompt-v2`, half each, chosen by the md5 of its id
  (`run_variant`, used while the runs are sampled), so the Compare page has two variants
  to set side by side.
- Scores (`add_scores`, sql/quality.sql), written after the tasks: an LLM judge's
  `helpfulness` (1..5) on `JUDGED` of the completed tasks, a JSON rule's `valid_json` on
  `RULED`, and the run owner's `thumbs` on `RATED`: about 2 scores for every 10 tasks. Which
  task gets which score, and its value, follow the md5 of the task id and the seed, so the
  same seed gives the same scores, and a second call adds none. Better model tiers and
  `prompt-v2` score better on average, so the comparison and the what-if have something to
  find.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, time, timedelta

import psycopg

from ingest.demo import catalog as cat
from ingest.store import database, sqlfiles

AB_DAYS = 30
VARIANTS = ("prompt-v1", "prompt-v2")
JUDGED = 0.17  # share of completed tasks the judge scores
RULED = 0.05  # ... the JSON rule scores
RATED = 0.012  # ... their run's owner rates with thumbs

_SQL = sqlfiles.beside(__file__)


def unit_hash(text: str) -> float:
    """A number in [0, 1) from the first 32 bits of the md5 of `text`; Postgres computes
    the same with ('x' || substr(md5(text), 1, 8))::bit(32)::bigint / 4294967296.0."""
    return int(hashlib.md5(text.encode()).hexdigest()[:8], 16) / 2**32


def run_variant(run_id: str, started_us: int, end_us: int) -> str | None:
    """The A/B variant of a run that starts at `started_us` (epoch microseconds) in a demo
    ending at `end_us`: None before the test's last AB_DAYS days."""
    if started_us < end_us - AB_DAYS * 86_400_000_000:
        return None
    return VARIANTS[unit_hash(run_id) >= 0.5]


def add_scores(
    url: str | None,
    seed: int,
    start: datetime,
    end: datetime,
    on_day: Callable[[int, int], None] | None = None,
) -> int:
    """Declare the demo's evaluators and score the completed tasks created in [start, end)
    (see the module's doc); the number of scores added (0 when they already were). Scored a
    UTC day at a time in one transaction (each task's scores depend on its id alone), with
    `on_day(done, days)` called after each day: minutes of work at 10M tasks show progress."""
    tiers = {tier: [m.name for m in cat.MODELS if m.tier == tier] for tier in ("premium", "cheap")}
    params = {
        "salt": f"/{seed}",
        "start": start,
        "end": end,
        "judged": JUDGED,
        "ruled": RULED,
        "rated": RATED,
        "premium": tiers["premium"],
        "cheap": tiers["cheap"],
    }
    windows = day_windows(start, end)
    added = 0
    with psycopg.connect(database.database_url(url)) as conn:
        conn.execute(_SQL["declare_evaluators"].psycopg)
        for done, (low, high) in enumerate(windows, 1):
            window = {**params, "start": low, "end": high}
            added += conn.execute(_SQL["add_scores"].psycopg, window).fetchone()[0]
            if on_day is not None:
                on_day(done, len(windows))
    return added


def day_windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at each UTC midnight: consecutive windows that cover it exactly."""
    windows, low = [], start
    while low < end:
        midnight = datetime.combine(low.date(), time(), tzinfo=low.tzinfo) + timedelta(days=1)
        high = min(midnight, end)
        windows.append((low, high))
        low = high
    return windows
