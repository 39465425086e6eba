"""Task cost in USD under the library's prices (docs/design.md, Data flow).

Prices come from `ingest.pricing` (the maintained genai-prices snapshot). Write paths do not
call this directly: they price through the price books (`ingest.price_books`, which falls
back to `cost_of_task`); `ingest.recompute_costs` (ingest/repricing.py) prices later.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ingest.spend import pricing

# ai_tasks.cost is numeric(20, 10): prices are stored rounded as Postgres rounds them.
COST_QUANTUM = Decimal("1e-10")


BILLED_USAGE_KEY = "billed_usage"  # response_metadata key: the provider's usage values


def cost_of_task(task: Mapping[str, Any]) -> Decimal | None:
    """Price in USD of one task row (provider, model, tokens_*, created_at, and the
    provider's own usage values in response_metadata["billed_usage"] when present), or None
    when the model or provider has no known price or the usage is unknown (input and output
    tokens both NULL). Never raises for an unknown model."""
    meta = task.get("response_metadata")
    billed = meta.get(BILLED_USAGE_KEY) if isinstance(meta, Mapping) else None
    cost = pricing.task_cost(
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
