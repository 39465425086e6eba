"""Task cost in USD: priced on completion, re-priced later in bulk (docs/design.md, Data flow).

Prices come from `ingest.pricing` (the maintained genai-prices snapshot). A task whose
model has no known price keeps cost NULL; `recompute_costs` fills those in once a price is
known, or re-prices every finished task.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ingest import database, pricing
from ingest.errors import ValidationError

# ai_tasks.cost is numeric(20, 10): prices are stored rounded as Postgres rounds them.
COST_QUANTUM = Decimal("1e-10")

_QUERIES = database.queries


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


def recompute_costs(
    url: str | None = None, only_missing: bool = True, batch_size: int = 2000
) -> int:
    """Re-price finished tasks (completed, failed, cancelled) that name a model; return how
    many tasks' cost changed.

    `only_missing` (default) prices only tasks whose cost is NULL; False re-prices every
    finished task, overwriting costs given by callers (cost_source becomes 'computed').
    A task whose model has no known price keeps its cost. Tasks are read in batches of
    `batch_size` by id and each batch is written by one UPDATE in its own transaction, so
    run totals move once per run per batch and no lock is held for long. Prices are as of
    each task's created_at.
    """
    if batch_size < 1:
        raise ValidationError("batch_size", f"must be >= 1, got {batch_size}")
    queries = _QUERIES()
    select_sql = queries["tasks_to_price"].psycopg
    update_sql = queries["set_task_costs"].psycopg
    changed = 0
    after = uuid.UUID(int=0)
    with database.connect(url, autocommit=True) as conn:
        while True:
            rows = conn.execute(
                select_sql,
                {"after_id": after, "only_missing": only_missing, "batch_size": batch_size},
            ).fetchall()
            if not rows:
                break
            after = rows[-1]["id"]
            ids, costs = [], []
            for row in rows:
                cost = cost_of_task(row)
                if cost is not None and cost != row["cost"]:
                    ids.append(row["id"])
                    costs.append(cost)
            if ids:
                with conn.transaction():
                    cursor = conn.execute(
                        update_sql, {"ids": ids, "costs": costs, "only_missing": only_missing}
                    )
                    changed += cursor.rowcount
            if len(rows) < batch_size:
                break
    return changed
