"""Model prices from the maintained `genai-prices` library (offline snapshot, no network),
and the price in USD of one task row under them (`cost_of_task`).

Write paths do not call `cost_of_task` directly: they price through the price books
(ingest.spend.price_books, which fall back to it); `ingest.recompute_costs`
(ingest/spend/repricing.py) prices later.

Token conventions used across the product (and stored in ai_tasks; docs/usage-and-cost.md):
- tokens_input: every input token, *including* cache reads and cache writes.
- tokens_cached_input: the part of tokens_input read from a prompt cache.
- tokens_cache_write: the part of tokens_input written to a prompt cache (priced at the
  provider's cache-write rate; Anthropic's 1-hour writes at their own rate when the split
  is known from the provider's usage, see ingest.sdk.provider_usage `billed`).
- tokens_output: every output token, *including* reasoning tokens.
- tokens_reasoning: the part of tokens_output spent on reasoning.
"""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from genai_prices import Usage, calc_price, data_snapshot

# ai_tasks.cost is numeric(20, 10): prices are stored rounded as Postgres rounds them.
COST_QUANTUM = Decimal("1e-10")
BILLED_USAGE_KEY = "billed_usage"  # response_metadata key: the provider's usage values


def billed_usage(
    tokens_input: int | None,
    tokens_output: int | None,
    tokens_cached_input: int | None = None,
    tokens_cache_write: int | None = None,
    billed: Mapping[str, int] | None = None,
) -> Usage | None:
    """The genai-prices Usage to price: the provider's own usage values (`billed`) when
    they agree with the stored columns, else one built from the columns. None when neither
    input nor output tokens are known (usage unknown: unpriced, never priced as 0)."""
    if tokens_input is None and tokens_output is None:
        return None
    if (
        billed
        and billed.get("input_tokens") == tokens_input
        and (billed.get("output_tokens") == tokens_output)
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a key unknown to this version is ignored
            return Usage(**{k: int(v) for k, v in billed.items()})
    total_in = int(tokens_input or 0)
    cached = min(int(tokens_cached_input or 0), total_in)
    written = min(int(tokens_cache_write or 0), total_in - cached)
    return Usage(
        input_tokens=total_in,
        output_tokens=int(tokens_output or 0),
        cache_read_tokens=cached or None,
        cache_write_tokens=written or None,
    )


def task_cost(
    provider: str | None,
    model: str | None,
    tokens_input: int | None = 0,
    tokens_output: int | None = 0,
    tokens_cached_input: int | None = 0,
    at: datetime | None = None,
    *,
    tokens_cache_write: int | None = 0,
    billed: Mapping[str, int] | None = None,
) -> Decimal | None:
    """Price in USD of one request, or None when the model or provider is unknown or the
    usage is unknown (tokens_input and tokens_output both None).

    `at` prices the request as of that time (prices change); None means now.
    Never raises for an unknown model: a missing price is recorded as NULL and can be
    recomputed later, it must not break the write that tracks the request.
    """
    if not model:
        return None
    usage = billed_usage(
        tokens_input, tokens_output, tokens_cached_input, tokens_cache_write, billed
    )
    if usage is None:
        return None
    try:
        result = calc_price(usage, model, provider_id=provider or None, genai_request_timestamp=at)
    except (LookupError, ValueError):
        return None
    return Decimal(result.total_price)


def is_priced(provider: str | None, model: str | None) -> bool:
    """True when genai-prices knows a price for this provider and model."""
    return task_cost(provider, model, 1, 1) is not None


def cost_of_task(task: Mapping[str, Any]) -> Decimal | None:
    """Price in USD of one task row (provider, model, tokens_*, created_at, and the
    provider's own usage values in response_metadata["billed_usage"] when present), or None
    when the model or provider has no known price or the usage is unknown (input and output
    tokens both NULL). Never raises for an unknown model."""
    meta = task.get("response_metadata")
    billed = meta.get(BILLED_USAGE_KEY) if isinstance(meta, Mapping) else None
    cost = task_cost(
        task.get("provider"),
        task.get("model"),
        task.get("tokens_input"),
        task.get("tokens_output"),
        task.get("tokens_cached_input"),
        task.get("created_at"),
        tokens_cache_write=task.get("tokens_cache_write"),
        billed=billed if isinstance(billed, Mapping) else None,
    )
    return None if cost is None else cost.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


def known_providers() -> list[str]:
    """The provider ids genai-prices has prices for, sorted."""
    return sorted(p.id for p in data_snapshot.get_snapshot().providers)


def models_matching(provider: str, pattern: str) -> list[str] | None:
    """The model ids genai-prices knows for `provider` that `pattern` covers (`*`/`?`
    wildcards on the ids; an exact name also by the library's own matching, so a dated
    name like gpt-4o-2024-08-06 finds its model); None when the provider is unknown."""
    found = next((p for p in data_snapshot.get_snapshot().providers if p.id == provider), None)
    if found is None:
        return None
    exact = not any(c in pattern for c in "*?[")
    return sorted(
        m.id
        for m in found.models
        if fnmatch.fnmatchcase(m.id, pattern) or (exact and m.is_match(pattern))
    )
