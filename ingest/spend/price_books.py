"""Price books: overrides of the library's prices with validity windows (docs/spend-control.md).

genai-prices stays the default. An override names a provider, a model pattern (`*` and `?`
wildcards, matched case-sensitively against the task's model), a window [valid_from,
valid_to) (valid_to None = open-ended) and prices: USD per million tokens for input, cached
input, cache writes, output and reasoning, and/or a flat USD per request.

A task is priced by the override in force at its created_at: among the live overrides of
its provider whose window contains created_at and whose pattern matches its model, the
most specific wins (an exact name before any pattern, then the longest pattern, then the
lowest id). Two live overrides of the same provider and pattern may not overlap in time
(refused by the database, reported as a ValidationError on valid_from/valid_to).

Cost under an override, with the product's token conventions (tokens_input includes
cached reads and cache writes, tokens_output includes reasoning):

    per_request
    + (input - cached - cache_write) x input + cached x (cached or input)
    + cache_write x (cache_write or input)
    + (output - reasoning) x output + reasoning x (reasoning or output)      [per 1e6 tokens]

A rate left unset counts as 0 when the override only has a per-request price. A task
whose usage is unknown (tokens NULL) stays unpriced.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ingest.errors import NotFoundError, ValidationError
from ingest.spend import acting, pricing
from ingest.store import sqlfiles
from ingest.store.vocabulary import FINISHED_TASK_STATUSES

RATE_FIELDS = (
    "input_per_mtok",
    "cached_per_mtok",
    "cache_write_per_mtok",
    "output_per_mtok",
    "reasoning_per_mtok",
    "per_request",
)
MILLION = Decimal(1_000_000)
OVERRIDE_REF = "override:"


@functools.cache
def library_ref() -> str:
    """The price reference of a cost computed by the library: 'genai-prices <version>'."""
    return f"genai-prices {importlib.metadata.version('genai-prices')}"


def _sql(name: str) -> str:
    return sqlfiles.beside(__file__)[name].psycopg


@dataclass(frozen=True)
class PriceOverride:
    """One live override (a row of ai_price_overrides)."""

    id: int
    provider: str
    model_pattern: str
    valid_from: datetime
    valid_to: datetime | None
    rates: dict[str, Decimal | None]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PriceOverride:
        return cls(
            id=row["id"],
            provider=row["provider"],
            model_pattern=row["model_pattern"],
            valid_from=row["valid_from"],
            valid_to=row["valid_to"],
            rates={name: row[name] for name in RATE_FIELDS},
        )

    @property
    def ref(self) -> str:
        return f"{OVERRIDE_REF}{self.id}"

    def covers(self, provider: str | None, model: str | None, at: datetime) -> bool:
        """True when this override applies to a task of provider/model created at `at`."""
        return (
            provider == self.provider
            and model is not None
            and fnmatch.fnmatchcase(model, self.model_pattern)
            and self.valid_from <= at
            and (self.valid_to is None or at < self.valid_to)
        )

    def specificity(self) -> tuple[int, int, int]:
        exact = not any(c in self.model_pattern for c in "*?[")
        return (int(exact), len(self.model_pattern), -self.id)

    def cost(self, task: Mapping[str, Any]) -> Decimal:
        """USD of one task under this override, rounded as ai_tasks.cost stores it."""
        r = self.rates
        tokens_in = int(task.get("tokens_input") or 0)
        cached = min(int(task.get("tokens_cached_input") or 0), tokens_in)
        written = min(int(task.get("tokens_cache_write") or 0), tokens_in - cached)
        tokens_out = int(task.get("tokens_output") or 0)
        reasoning = min(int(task.get("tokens_reasoning") or 0), tokens_out)
        base_in = r["input_per_mtok"] or Decimal(0)
        base_out = r["output_per_mtok"] or Decimal(0)
        per_token = (
            (tokens_in - cached - written) * base_in
            + cached * (r["cached_per_mtok"] if r["cached_per_mtok"] is not None else base_in)
            + written
            * (r["cache_write_per_mtok"] if r["cache_write_per_mtok"] is not None else base_in)
            + (tokens_out - reasoning) * base_out
            + reasoning
            * (r["reasoning_per_mtok"] if r["reasoning_per_mtok"] is not None else base_out)
        )
        total = (r["per_request"] or Decimal(0)) + per_token / MILLION
        return total.quantize(pricing.COST_QUANTUM, rounding=ROUND_HALF_UP)


def best_override(
    overrides: list[PriceOverride], provider: str | None, model: str | None, at: datetime
) -> PriceOverride | None:
    """The most specific override among `overrides` that covers the task, or None."""
    found = [o for o in overrides if o.covers(provider, model, at)]
    return max(found, key=PriceOverride.specificity) if found else None


def price_task(
    task: Mapping[str, Any], overrides: list[PriceOverride]
) -> tuple[Decimal | None, str | None]:
    """(cost USD, price_ref) of a task row: the best override in force at its created_at,
    else the library (`ingest.spend.pricing.cost_of_task`); (None, None) when neither knows it or
    the usage is unknown (input and output tokens both NULL)."""
    if task.get("tokens_input") is None and task.get("tokens_output") is None:
        return None, None
    at = task.get("created_at") or datetime.now(UTC)
    override = best_override(overrides, task.get("provider"), task.get("model"), at)
    if override is not None:
        return override.cost(task), override.ref
    cost = pricing.cost_of_task(task)
    return (cost, library_ref()) if cost is not None else (None, None)


def live_overrides(conn: psycopg.Connection) -> list[PriceOverride]:
    """Every live override (for pricing many tasks at once)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_sql("list_price_overrides"), {"include_removed": False}).fetchall()
    return [PriceOverride.from_row(r) for r in rows]


def price_new_tasks(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The task rows about to be written, priced with the price book in force at each one's
    created_at (the one way every write path prices: docs/spend-control.md). A finished
    task (completed, failed, cancelled) without a cost comes back as a copy with cost,
    price_ref and cost_source 'computed' (all three NULL when nothing prices it); every
    other row is returned as it is (a given cost stays, cost_source as the caller set it).
    The live overrides are read through `conn` once, and only when some row needs a price;
    created_at may be ISO text (rows read back from a spool); absent means now."""
    todo = [
        i
        for i, row in enumerate(rows)
        if row.get("cost") is None and row.get("status") in FINISHED_TASK_STATUSES
    ]
    if not todo:
        return rows
    overrides = live_overrides(conn)
    priced = list(rows)
    for i in todo:
        row = rows[i]
        at = parse_time("created_at", row.get("created_at"))
        cost, ref = price_task({**row, "created_at": at}, overrides)
        source = None if cost is None else "computed"
        priced[i] = {**row, "cost": cost, "price_ref": ref, "cost_source": source}
    return priced


# --------------------------------------------------------------------------- management


def parse_time(field: str, value: datetime | date | str | None) -> datetime | None:
    """A UTC-aware datetime from a datetime, a date (midnight UTC) or ISO text; None stays
    None. ValidationError naming `field` otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(
                field, f"{value!r} is not a date or time", ["ISO 8601, e.g. 2026-10-01"]
            ) from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise ValidationError(field, f"must be a date or datetime, got {type(value).__name__}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _rate(field: str, value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        rate = Decimal(str(value))
    except InvalidOperation:
        raise ValidationError(field, f"{value!r} is not a number") from None
    if not rate.is_finite() or rate < 0:
        raise ValidationError(field, f"must be a number >= 0, got {value!r}")
    return rate


def add_override(
    url: str | None = None,
    *,
    provider: str,
    model_pattern: str,
    valid_from: datetime | date | str,
    valid_to: datetime | date | str | None = None,
    note: str = "",
    created_by: str = "",
    viewer: str | None = None,
    known_only: bool = False,
    **rates: Any,
) -> dict[str, Any]:
    """Add a price override; return its row. `rates`: any of RATE_FIELDS (USD per million
    tokens; per_request in USD). Either per_request, or both input_per_mtok and
    output_per_mtok, must be given. Bad input or a window overlapping a live override of
    the same provider and pattern raises ValidationError naming the field; nothing is written.
    With a `viewer` only an admin may (AccessDeniedError otherwise). With `known_only` the
    provider must be one genai-prices knows and the pattern must cover at least one of its
    models (a typo such as an "anthropic gpt-4o-mini" override is refused); leave it False
    for a model the library does not know yet (a fine-tune, a new release).
    """
    unknown = sorted(set(rates) - set(RATE_FIELDS))
    if unknown:
        raise ValidationError(unknown[0], "is not a price field", RATE_FIELDS)
    for name, value in (("provider", provider), ("model_pattern", model_pattern)):
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(name, "must be a non-empty string")
    if known_only:
        check_known_model(provider.strip(), model_pattern.strip())
    start = parse_time("valid_from", valid_from)
    if start is None:
        raise ValidationError("valid_from", "is required")
    end = parse_time("valid_to", valid_to)
    if end is not None and end <= start:
        raise ValidationError("valid_to", f"must be after valid_from ({start.isoformat()})")
    values = {name: _rate(name, rates.get(name)) for name in RATE_FIELDS}
    has_tokens = values["input_per_mtok"] is not None and values["output_per_mtok"] is not None
    if values["per_request"] is None and not has_tokens:
        raise ValidationError(
            "input_per_mtok/output_per_mtok",
            "give both (USD per million tokens), or a per_request price",
        )
    params = {
        "provider": provider.strip(),
        "model_pattern": model_pattern.strip(),
        "valid_from": start,
        "valid_to": end,
        "note": note or "",
        "created_by": created_by or acting.actor(viewer),
        **values,
    }
    with acting.connection(url, viewer) as conn:
        try:
            return conn.execute(_sql("insert_price_override"), params).fetchone()
        except psycopg.errors.ExclusionViolation as exc:
            raise ValidationError("valid_from/valid_to", exc.diag.message_primary) from None


def check_known_model(provider: str, pattern: str) -> list[str]:
    """The genai-prices models of `provider` that `pattern` covers; ValidationError naming
    the field when the provider is unknown or the pattern covers none of its models."""
    models = pricing.models_matching(provider, pattern)
    if models is None:
        known = pricing.known_providers()
        raise ValidationError("provider", f"{provider!r} is unknown to genai-prices", known)
    if not models:
        raise ValidationError(
            "model_pattern", f"{pattern!r} matches no {provider} model genai-prices knows"
        )
    return models


def list_overrides(
    url: str | None = None, *, include_removed: bool = False, viewer: str | None = None
) -> list[dict]:
    """Override rows: live ones first (by provider, pattern, newest window), then removed."""
    with acting.connection(url, viewer) as conn:
        return conn.execute(
            _sql("list_price_overrides"), {"include_removed": include_removed}
        ).fetchall()


def remove_override(
    url: str | None = None,
    *,
    override_id: int,
    removed_by: str = "",
    viewer: str | None = None,
) -> dict:
    """Retire a live override (kept, marked removed); NotFoundError when there is none.
    Costs it produced stay until the next re-pricing. With a `viewer` only an admin may
    (AccessDeniedError otherwise)."""
    with acting.connection(url, viewer) as conn:
        row = conn.execute(
            _sql("remove_price_override"),
            {"id": int(override_id), "removed_by": removed_by or acting.actor(viewer)},
        ).fetchone()
        if (
            row is None
            and viewer is not None
            and conn.execute(_sql("live_override"), {"id": int(override_id)}).fetchone()
        ):
            action = f"retire price override {override_id}"
            raise acting.refusal(viewer, action, "only an admin may")
    if row is None:
        raise NotFoundError("live price override", override_id)
    return row


def who() -> str:
    """The operating-system user running this process (for audit records)."""
    return acting.who()
