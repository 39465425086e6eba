"""Model prices from the maintained `genai-prices` library (offline snapshot, no network).

Token conventions used across the product (and stored in ai_tasks):
- tokens_input: every input token, *including* cached reads (OpenAI's prompt_tokens).
- tokens_cached_input: the part of tokens_input read from a prompt cache.
- tokens_output: every output token, *including* reasoning tokens.
- tokens_reasoning: the part of tokens_output spent on reasoning.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from genai_prices import Usage, calc_price


def task_cost(
    provider: str | None,
    model: str | None,
    tokens_input: int = 0,
    tokens_output: int = 0,
    tokens_cached_input: int = 0,
    at: datetime | None = None,
) -> Decimal | None:
    """Price in USD of one request, or None when the model or provider is unknown.

    `at` prices the request as of that time (prices change); None means now.
    Never raises for an unknown model: a missing price is recorded as NULL and can be
    recomputed later, it must not break the write that tracks the request.
    """
    if not model:
        return None
    usage = Usage(
        input_tokens=int(tokens_input or 0),
        output_tokens=int(tokens_output or 0),
        cache_read_tokens=min(int(tokens_cached_input or 0), int(tokens_input or 0)) or None,
    )
    try:
        result = calc_price(usage, model, provider_id=provider or None, genai_request_timestamp=at)
    except (LookupError, ValueError):
        return None
    return Decimal(result.total_price)


def is_priced(provider: str | None, model: str | None) -> bool:
    """True when genai-prices knows a price for this provider and model."""
    return task_cost(provider, model, 1, 1) is not None
