"""Token usage reported by providers, mapped to the columns of ai_tasks.

Conventions (docs/usage-and-cost.md): tokens_input counts every input token *including*
cache reads and cache writes (tokens_cached_input and tokens_cache_write are parts of it);
tokens_output counts every output token *including* reasoning (Anthropic's thinking too;
tokens_reasoning is that part, when the provider reports it).

The provider's own usage payload is read by genai-prices' `extract_usage` (its maintained
extractors), never by hand, for these shapes (dicts, or SDK objects via `model_dump()`):
- OpenAI chat completions (`prompt_tokens`, ...), flavor "chat";
- OpenAI responses (`input_tokens` + `input_tokens_details`), flavor "responses";
- Anthropic (`input_tokens` excluding cache reads and writes, `cache_read_input_tokens`,
  `cache_creation_input_tokens` with its 5-minute / 1-hour split);
- Google Gemini (`prompt_token_count` / `promptTokenCount`, thoughts included in output).
Our own column names (tokens_input, ...) are taken as they are.

A key present with the value None counts as absent (Anthropic's `message_delta` usage
carries its cache keys as None). `read_usage` also returns genai-prices' usage values
(`billed`: e.g. cache_write_1h_tokens) so that the price uses every rate the provider
bills; they are stored in response_metadata["billed_usage"].
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from genai_prices import extract_usage

from ingest.errors import ValidationError

TOKEN_COLUMNS = (
    "tokens_input",
    "tokens_output",
    "tokens_cached_input",
    "tokens_cache_write",
    "tokens_reasoning",
    "tokens_total",
)
# genai-prices usage key -> our column
_FROM_BILLED = {
    "input_tokens": "tokens_input",
    "output_tokens": "tokens_output",
    "cache_read_tokens": "tokens_cached_input",
    "cache_write_tokens": "tokens_cache_write",
    "output_reasoning_tokens": "tokens_reasoning",
}
_SHAPES = [
    "tokens_input/tokens_output",
    "prompt_tokens/completion_tokens",
    "input_tokens/output_tokens",
    "prompt_token_count/candidates_token_count",
]


@dataclass(frozen=True)
class UsageReport:
    """Usage of one response: `columns` (ai_tasks token columns, only those reported) and
    `billed` (genai-prices usage values, {} when the payload was in our own columns)."""

    columns: dict[str, int]
    billed: dict[str, int] = field(default_factory=dict)


def as_mapping(value: Any) -> Mapping[str, Any] | None:
    """A dict view of a mapping or an SDK (pydantic) object; None for anything else."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump()
    if hasattr(value, "__dict__"):
        return {k: v for k, v in vars(value).items() if not k.startswith("_")}
    return None


def _plain(value: Any) -> Any:
    """`value` with every nested mapping or SDK object turned into a plain dict."""
    mapping = as_mapping(value) if not isinstance(value, str | int | float | list) else None
    if mapping is not None:
        return {str(k): _plain(v) for k, v in mapping.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _camel(key: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)


def _camel_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {_camel(str(k)): _camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel_keys(v) for v in value]
    return value


def _has(source: Mapping[str, Any], *keys: str) -> bool:
    return any(source.get(key) is not None for key in keys)


def _unwrap(source: Mapping[str, Any]) -> Mapping[str, Any]:
    """The usage part of a whole response (`usage`, `usage_metadata`) or the usage itself."""
    for key in ("usage", "usage_metadata", "usageMetadata"):
        inner = as_mapping(source.get(key))
        if inner is not None and not _has(source, "input_tokens", "prompt_tokens", "tokens_input"):
            return inner
    return source


def _flavor(source: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(provider_id, api_flavor, root key) of genai-prices' extractor for this usage."""
    if _has(source, "prompt_tokens", "completion_tokens"):
        return "openai", "chat", "usage"
    if _has(source, "cache_read_input_tokens", "cache_creation_input_tokens") or (
        "cache_creation" in source
    ):
        return "anthropic", "default", "usage"
    if _has(source, "input_tokens_details", "output_tokens_details", "total_tokens"):
        return "openai", "responses", "usage"
    if _has(source, "input_tokens", "output_tokens"):
        # Anthropic usage without cache keys reads the same through either extractor
        # except for totals, which Anthropic does not report.
        return "anthropic", "default", "usage"
    if _has(source, "prompt_token_count", "promptTokenCount", "candidates_token_count"):
        return "google", "default", "usageMetadata"
    if _has(source, "candidatesTokenCount", "thoughtsTokenCount", "totalTokenCount"):
        return "google", "default", "usageMetadata"
    return None


def read_usage(usage: Any) -> UsageReport:
    """Token columns (and billed usage values) of a provider usage payload or our columns.

    Raises ValidationError(field="usage") when `usage` is not a mapping/object or reports no
    token count at all.
    """
    source = as_mapping(usage)
    if source is None:
        raise ValidationError("usage", f"must be a dict or usage object, got {usage!r}", _SHAPES)
    source = _unwrap(_plain(source))
    if any(key in source for key in TOKEN_COLUMNS):
        columns = {k: source[k] for k in TOKEN_COLUMNS if source.get(k) is not None}
        if columns:
            return UsageReport(columns)
    flavor = _flavor(source)
    if flavor is None:
        raise ValidationError("usage", f"reports no token counts: {sorted(source)!r}", _SHAPES)
    provider_id, api_flavor, root = flavor
    payload = _camel_keys(source) if provider_id == "google" else dict(source)
    # The extractors require both counts; one missing (an Anthropic `message_delta`) is
    # read as 0 for extraction and left unreported in the columns.
    absent: set[str] = set()
    if provider_id != "google" and api_flavor != "chat":
        absent = {k for k in ("input_tokens", "output_tokens") if payload.get(k) is None}
        payload.update(dict.fromkeys(absent, 0))
    try:
        extracted = extract_usage({root: payload}, provider_id=provider_id, api_flavor=api_flavor)
    except (ValueError, TypeError, LookupError) as error:
        raise ValidationError("usage", f"cannot be read as {provider_id} usage: {error}") from None
    billed = {k: int(v) for k, v in vars(extracted.usage).items() if isinstance(v, int | float)}
    columns = {column: billed[key] for key, column in _FROM_BILLED.items() if key in billed}
    for key in absent:
        columns.pop(_FROM_BILLED[key], None)
    total = source.get("total_tokens", source.get("total_token_count"))
    if total is None:
        total = source.get("totalTokenCount")
    if isinstance(total, int) and provider_id != "anthropic":
        columns["tokens_total"] = total
    if not columns:
        raise ValidationError("usage", f"reports no token counts: {sorted(source)!r}", _SHAPES)
    return UsageReport(columns, billed)


def normalize_usage(usage: Any) -> dict[str, int]:
    """Token counts of a provider usage object as ai_tasks columns (only those reported).

    Raises ValidationError(field="usage") when `usage` is not a mapping/object or reports no
    token count at all.
    """
    return read_usage(usage).columns


def merge_usage(*usages: Any) -> dict[str, Any]:
    """One usage dict from the usage parts a stream reports (Anthropic's `message_start`
    usage, then its `message_delta` usage): a later value that is set wins, a key whose
    value is None (or absent) keeps the earlier value."""
    merged: dict[str, Any] = {}
    for usage in usages:
        mapping = as_mapping(usage)
        if mapping is None:
            continue
        for key, value in mapping.items():
            if value is not None:
                merged[key] = value
    return merged
