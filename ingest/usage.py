"""Token usage reported by providers, mapped to the columns of ai_tasks.

Conventions (as in ingest.pricing): tokens_input counts every input token *including*
cached reads; tokens_output counts every output token *including* reasoning.

Understood shapes (dicts, or SDK objects with the same attributes / `model_dump()`):
- our own column names: tokens_input, tokens_output, tokens_cached_input, ...
- OpenAI chat completions: prompt_tokens, completion_tokens, total_tokens,
  prompt_tokens_details.cached_tokens, completion_tokens_details.reasoning_tokens
- OpenAI responses: input_tokens, output_tokens, input_tokens_details.cached_tokens,
  output_tokens_details.reasoning_tokens
- Anthropic: input_tokens *excluding* cache reads and writes, cache_read_input_tokens,
  cache_creation_input_tokens, output_tokens
- Google Gemini: prompt_token_count, candidates_token_count (excluding thoughts),
  thoughts_token_count, cached_content_token_count, total_token_count (camelCase too)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ingest.errors import ValidationError

TOKEN_COLUMNS = (
    "tokens_input",
    "tokens_output",
    "tokens_cached_input",
    "tokens_reasoning",
    "tokens_total",
)


def _as_mapping(value: Any) -> Mapping[str, Any] | None:
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


def _get(source: Mapping[str, Any], *path: str) -> Any:
    value: Any = source
    for key in path:
        mapping = _as_mapping(value)
        if mapping is None:
            return None
        value = mapping.get(key)
    return value


def _first(source: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = source.get(key)
        if value is not None:
            return value
    return None


def normalize_usage(usage: Any) -> dict[str, int]:
    """Token counts of a provider usage object as ai_tasks columns (only those reported).

    Raises ValidationError(field="usage") when `usage` is not a mapping/object or reports no
    token count at all.
    """
    source = _as_mapping(usage)
    if source is None:
        raise ValidationError("usage", f"must be a dict or usage object, got {usage!r}")
    if (
        "usage" in source
        and _as_mapping(source["usage"]) is not None
        and not any(key in source for key in ("input_tokens", "prompt_tokens", "tokens_input"))
    ):
        return normalize_usage(source["usage"])
    if "usage_metadata" in source and _as_mapping(source["usage_metadata"]) is not None:
        return normalize_usage(source["usage_metadata"])

    out: dict[str, Any] = {}
    if any(key in source for key in TOKEN_COLUMNS):
        out = {key: source[key] for key in TOKEN_COLUMNS if source.get(key) is not None}
    elif "prompt_tokens" in source or "completion_tokens" in source:
        out["tokens_input"] = source.get("prompt_tokens")
        out["tokens_output"] = source.get("completion_tokens")
        out["tokens_total"] = source.get("total_tokens")
        out["tokens_cached_input"] = _get(source, "prompt_tokens_details", "cached_tokens")
        out["tokens_reasoning"] = _get(source, "completion_tokens_details", "reasoning_tokens")
    elif "cache_read_input_tokens" in source or "cache_creation_input_tokens" in source:
        cached = source.get("cache_read_input_tokens") or 0
        written = source.get("cache_creation_input_tokens") or 0
        out["tokens_input"] = (source.get("input_tokens") or 0) + cached + written
        out["tokens_output"] = source.get("output_tokens")
        out["tokens_cached_input"] = cached
    elif "input_tokens" in source or "output_tokens" in source:
        out["tokens_input"] = source.get("input_tokens")
        out["tokens_output"] = source.get("output_tokens")
        out["tokens_total"] = source.get("total_tokens")
        out["tokens_cached_input"] = _get(source, "input_tokens_details", "cached_tokens")
        out["tokens_reasoning"] = _get(source, "output_tokens_details", "reasoning_tokens")
    else:
        prompt = _first(source, "prompt_token_count", "promptTokenCount")
        candidates = _first(source, "candidates_token_count", "candidatesTokenCount")
        thoughts = _first(source, "thoughts_token_count", "thoughtsTokenCount")
        if prompt is not None or candidates is not None:
            out["tokens_input"] = prompt
            out["tokens_output"] = (candidates or 0) + (thoughts or 0)
            out["tokens_reasoning"] = thoughts
            out["tokens_cached_input"] = _first(
                source, "cached_content_token_count", "cachedContentTokenCount"
            )
            out["tokens_total"] = _first(source, "total_token_count", "totalTokenCount")
    out = {key: value for key, value in out.items() if value is not None}
    if not out:
        raise ValidationError(
            "usage",
            f"reports no token counts: {sorted(source)!r}",
            [
                "tokens_input/tokens_output",
                "prompt_tokens/completion_tokens",
                "input_tokens/output_tokens",
                "prompt_token_count/candidates_token_count",
            ],
        )
    return out
