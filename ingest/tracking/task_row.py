"""A finished task's row, built by this one piece of code on every write path.

The Tracker (`complete_task`, `fail_task`, `cancel_task`), its background writer (tracked
SDK clients, the LiteLLM logger), the ingest server's batch and OTLP path, and the importer
turn what they were given into an ai_tasks row the same way, in this order:

1. usage: a provider usage object or dict (ingest.sdk.provider_usage) gives the tokens_*
   columns that were not given, and the provider's billed values (`usage_columns`);
2. validation: every column is checked (ingest.store.validation): a ValidationError names
   the field, and nothing is written;
3. finishing: the final status, an error appended to response_errors, the cancel reason
   and the billed usage kept in response_metadata (`finish`);
4. cost_source: a cost given without a cost_source is the provider's;
5. price: a finished task without a cost is priced in the write transaction with the price
   book in force at its created_at, by ingest.spend.price_books.price_new_tasks (every
   writer calls it; docs/spend-control.md). The importer stores history as it was
   exported and does not price (docs/import-format.md).

The columns are the vocabulary's (ingest.store.vocabulary: TASK_COLUMNS, and price_ref,
which only pricing writes); docs/usage-and-cost.md has the token conventions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ingest.sdk import provider_usage
from ingest.spend.pricing import BILLED_USAGE_KEY
from ingest.store.validation import validate_task


def usage_columns(
    fields: Mapping[str, Any], usage: Any
) -> tuple[dict[str, Any], dict[str, int] | None]:
    """`fields` with the token columns read from `usage` under them (a given column wins),
    and the provider's billed usage values (None when there is no usage or no such value).
    ValidationError when `usage` cannot be read."""
    if usage is None:
        return dict(fields), None
    report = provider_usage.read_usage(usage)
    return {**report.columns, **fields}, report.billed or None


def error_entry(error: BaseException | str | Mapping[str, Any] | None) -> dict[str, Any]:
    """An error as one entry of response_errors, validated: an exception gives its type and
    message, a mapping is kept, anything else is its text ("unknown error" for None)."""
    if isinstance(error, BaseException):
        entry = {"type": type(error).__name__, "message": str(error)}
    elif isinstance(error, Mapping):
        entry = dict(error)
    else:
        entry = {"message": "unknown error" if error is None else str(error)}
    return validate_task({"response_errors": [entry]}, partial=True)["response_errors"][0]


def finish(
    row: dict[str, Any],
    *,
    status: str | None = None,
    error: Mapping[str, Any] | None = None,
    reason: str | None = None,
    billed: Mapping[str, int] | None = None,
    given: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Steps 3 and 4 on a validated row, which is changed in place and returned.

    status: the final status (None keeps the row's). error: an `error_entry`, appended to
    response_errors. reason: kept as response_metadata["cancel_reason"]. billed: the
    provider's usage values, kept as response_metadata["billed_usage"] to price every rate.
    Metadata that is not a JSON object is kept as given and gets neither. given: the
    columns the caller gave in this call (default: the row itself); a cost among them
    without a cost_source is the provider's."""
    if status is not None:
        row["status"] = status
    if error is not None:
        errors = row.get("response_errors")
        errors = [] if errors is None else errors if isinstance(errors, list) else [errors]
        row["response_errors"] = [*errors, dict(error)]
    extra = {"cancel_reason": reason, BILLED_USAGE_KEY: dict(billed) if billed else None}
    extra = {key: value for key, value in extra.items() if value is not None}
    meta = row.get("response_metadata")
    if extra and (meta is None or isinstance(meta, Mapping)):
        row["response_metadata"] = {**(meta or {}), **extra}
    given = row if given is None else given
    if given.get("cost") is not None and "cost_source" not in given:
        row["cost_source"] = "provider"
    return row


def task_row(
    fields: Mapping[str, Any],
    *,
    usage: Any = None,
    status: str | None = None,
    error: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """A new task's row from `fields` (ai_tasks columns; run_id and task_id required):
    steps 1 to 4. ValidationError naming the field when it is refused."""
    fields, billed = usage_columns(fields, usage)
    row = validate_task(fields)
    return finish(row, status=status, error=error, reason=reason, billed=billed)
