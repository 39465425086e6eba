"""What-if: the selected tasks' token mix priced on another model (genai-prices).

genai-prices prices a request linearly in its token counts, at rates chosen by the
request's input size (a tier applies to the whole request once its input exceeds the tier
start), plus any fixed per-request price. So the exact sum over requests is, per tier:
tasks x fixed + sum(input) x input rate + sum(output) x output rate + sum(cached) x cached
delta. The rates of each tier are read from genai-prices itself as differences of
`calc_price` results at an input size inside the tier (exact Decimal arithmetic), and the
SQL splits the token sums by the target's tier starts. `tests/test_rollups_*` checks the
result equals pricing every request on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from genai_prices import Usage, calc_price, data_snapshot
from genai_prices.types import TieredPrices

from queries.engine import fetch, filter_params
from queries.filters import Filters

COLUMNS = [
    "provider",
    "model",
    "tasks",
    "tokens_input",
    "tokens_output",
    "tokens_cached_input",
    "actual_cost",
    "what_if_cost",
    "difference",
]


@dataclass(frozen=True)
class TierRates:
    """USD per request, per input token, per output token, and the change per cached token."""

    fixed: Decimal
    input: Decimal
    output: Decimal
    cached: Decimal


def resolve_model(provider: str, model: str) -> tuple[str, str, list[int]]:
    """(provider id, model id, tier starts) of a priced model; ValueError naming the known
    providers, or the known models of the provider, when it is not found."""
    snapshot = data_snapshot.get_snapshot()
    known = {p.id: p for p in snapshot.providers}
    if provider not in known:
        raise ValueError(f"unknown provider {provider!r}; known providers are {sorted(known)}")
    try:
        found_provider, found_model = snapshot.find_provider_model(model, None, provider, None)
    except LookupError:
        models = sorted(m.id for m in known[provider].models)
        raise ValueError(
            f"unknown model {model!r} for provider {provider!r}; known models are {models}"
        ) from None
    prices = found_model.get_prices(datetime.now(UTC))
    starts = {
        tier.start
        for value in vars(prices).values()
        if isinstance(value, TieredPrices)
        for tier in value.tiers
    }
    return found_provider.id, found_model.id, sorted(starts)


def _price(provider: str, model: str, tokens_in: int, tokens_out: int, cached: int) -> Decimal:
    usage = Usage(
        input_tokens=tokens_in, output_tokens=tokens_out, cache_read_tokens=cached or None
    )
    return Decimal(calc_price(usage, model, provider_id=provider).total_price)


def tier_rates(provider: str, model: str, starts: list[int]) -> list[TierRates]:
    """Linear rates of each tier: tier 0 is input <= starts[0], tier i is
    starts[i-1] < input <= starts[i] (the last is unbounded). Rates are measured at the
    tier's two smallest input sizes (at least 1 token, so a cached read fits)."""
    bounds = [0, *(start + 1 for start in starts)]
    uppers = [*starts, None]
    rates = []
    for low, upper in zip(bounds, uppers, strict=True):
        at = max(low, 1)
        if upper is not None and at + 1 > upper:
            raise ValueError(f"{provider}/{model}: price tier ({low}, {upper}] is too narrow")
        p_at = _price(provider, model, at, 0, 0)
        per_input = _price(provider, model, at + 1, 0, 0) - p_at
        rates.append(
            TierRates(
                fixed=p_at - per_input * at,
                input=per_input,
                output=_price(provider, model, at, 1, 0) - p_at,
                cached=_price(provider, model, at, 0, 1) - p_at,
            )
        )
    return rates


def tier_sql(starts: list[int]) -> str:
    """SQL counting the tier starts below a task's tokens_input: its tier ("0" for a model
    without tiers; unknown usage is tier 0). The starts are integers read from
    genai-prices, never user text; a sum of comparisons is cheaper per row than filtering
    a bound list."""
    terms = (f"(coalesce(tokens_input, 0) > {int(start)})::INTEGER" for start in starts)
    return " + ".join(terms) or "0"


def what_if_cost(
    con: Any, filters: Filters, target_provider: str, target_model: str
) -> pd.DataFrame:
    """What the filtered tasks would have cost on another model (prices: genai-prices).

    Per (provider, model) actually used: the same token mix (tokens_input incl. cached
    reads, tokens_output, tokens_cached_input) priced on `target_provider`/`target_model`,
    exactly as pricing each request on its own (tiered prices included).
    Columns: provider, model, tasks, tokens_input, tokens_output, tokens_cached_input,
    actual_cost, what_if_cost, difference (= what_if_cost - actual_cost; USD floats).
    Sorted by actual_cost desc. An unknown target raises ValueError naming the known
    providers, or the known models of that provider.
    """
    provider, model, starts = resolve_model(target_provider, target_model)
    rates = tier_rates(provider, model, starts)
    mix = fetch(con, "token_mix", filter_params(filters), exact=True, tier=tier_sql(starts))
    if mix.empty:
        return pd.DataFrame(columns=COLUMNS)
    costs = []
    for row in mix.itertuples(index=False):
        rate = rates[int(row.tier)]
        costs.append(
            rate.fixed * int(row.tasks)
            + rate.input * int(row.tokens_input)
            + rate.output * int(row.tokens_output)
            + rate.cached * int(row.tokens_cached_input)
        )
    mix["what_if_cost"] = costs
    sums = ["tasks", "tokens_input", "tokens_output", "tokens_cached_input"]
    grouped = mix.groupby(["provider", "model"], dropna=False, sort=False).agg(
        {**dict.fromkeys(sums, "sum"), "actual_cost": "sum", "what_if_cost": "sum"}
    )
    frame = grouped.reset_index()
    for column in sums:
        frame[column] = frame[column].astype("int64")
    frame["difference"] = [
        w - a for w, a in zip(frame["what_if_cost"], frame["actual_cost"], strict=True)
    ]
    for column in ("actual_cost", "what_if_cost", "difference"):
        frame[column] = frame[column].map(float).astype("float64")
    frame = frame.sort_values("actual_cost", ascending=False, kind="stable")
    return frame[COLUMNS].reset_index(drop=True)


# --------------------------------------------------------------------- plans and mixes


@dataclass(frozen=True)
class WhatIfPlan:
    """A what-if answer for a page: ok False means the pair cannot be compared and
    `explanation` says why (nothing is raised); otherwise `frame` is what_if_cost's, scaled
    to the routed share, and actual/what_if are the slice's totals in USD."""

    ok: bool
    explanation: str
    frame: pd.DataFrame
    actual: float = 0.0
    what_if: float = 0.0


def provider_models(provider: str) -> list[str]:
    """The model ids genai-prices prices for `provider` ([] for an unknown provider)."""
    snapshot = data_snapshot.get_snapshot()
    for known in snapshot.providers:
        if known.id == provider:
            return sorted(m.id for m in known.models)
    return []


def priced_providers() -> list[str]:
    """Every provider id genai-prices knows."""
    return sorted(p.id for p in data_snapshot.get_snapshot().providers)


def what_if_mix(
    con: Any,
    filters: Filters,
    target_provider: str,
    target_model: str,
    *,
    source_model: str | None = None,
    share: float = 1.0,
) -> WhatIfPlan:
    """The slice's cost if `share` (0..1) of the tasks of `source_model` (None: of every
    model) had gone to target_provider/target_model, e.g. route 30% of gpt-4o to
    gpt-4o-mini. A routed share is priced as that share of the tasks' token sums (the
    expected cost when the routed tasks are a random share). An impossible pair (unknown
    provider or model, a model of another provider, an empty slice, the same model) comes
    back explained with ok=False."""
    if not 0 <= share <= 1:
        return WhatIfPlan(False, f"share must be between 0 and 1, got {share}", _empty())
    if target_provider not in priced_providers():
        return WhatIfPlan(False, f"No prices are known for provider {target_provider!r}.", _empty())
    models = provider_models(target_provider)
    try:
        what_if = what_if_cost(con, filters, target_provider, target_model)
    except ValueError:
        sample = ", ".join(models[:8])
        return WhatIfPlan(
            False,
            f"{target_model!r} is not a model of {target_provider} that has a known price "
            f"(its {len(models)} priced models include {sample}).",
            _empty(),
        )
    total = float(what_if["actual_cost"].sum())  # the whole slice, before choosing a model
    if source_model is not None:
        what_if = what_if[what_if["model"] == source_model].reset_index(drop=True)
    if what_if.empty:
        where = f"{source_model} tasks" if source_model else "tasks"
        return WhatIfPlan(False, f"There are no {where} in this slice to route.", _empty())
    if source_model == target_model and set(what_if["provider"]) == {target_provider}:
        return WhatIfPlan(False, f"{source_model} is already the target: nothing changes.", what_if)
    routed = what_if.copy()
    routed["what_if_cost"] = routed["actual_cost"] * (1 - share) + routed["what_if_cost"] * share
    routed["difference"] = routed["what_if_cost"] - routed["actual_cost"]
    other = total - float(routed["actual_cost"].sum()) + float(routed["what_if_cost"].sum())
    who = f"{share:.0%} of {source_model or 'every model'}"
    return WhatIfPlan(
        True, f"Routing {who} to {target_provider}/{target_model}.", routed, total, other
    )


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=COLUMNS)
