"""GenAI spans as runs and tasks (the mapping is documented in docs/server.md).

Understood: the OpenTelemetry GenAI semantic conventions (`gen_ai.*`, current names and
the deprecated ones still emitted by instrumentations) and OpenInference (`llm.*`,
`openinference.span.kind`). A span is an LLM call when OpenInference says LLM/EMBEDDING,
or when it carries a gen_ai/llm model or token count and is not a tool or agent span;
other spans are skipped (and counted by the caller).

Ids are derived, so a span sent twice is one task: task_id = HMAC(secret, user, trace id,
span id); run id = HMAC(secret, user, session id) when the span has `session.id` or
`gen_ai.conversation.id`, else HMAC(secret, user, trace id), with the install's secret
(migration 0015) so that nobody else can predict them (docs/server.md).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from ingest.sdk.provider_usage import normalize_usage, read_usage
from ingest.server.otlp_parse import Span
from ingest.store import validation
from ingest.store.validation import LABEL_PATTERN
from ingest.store.vocabulary import SOURCE_TYPES
from ingest.tracking import naming

NAMESPACE = uuid.UUID("6f1d3a52-2b1e-4f7e-9a43-0c5d8e7b9a10")
NON_LLM_OPERATIONS = frozenset({"execute_tool", "invoke_agent", "create_agent"})
LLM_SPAN_KINDS = frozenset({"LLM", "EMBEDDING"})
# gen_ai.provider.name / gen_ai.system values -> genai-prices provider ids.
PROVIDERS = {
    "gcp.gemini": "google", "gcp.vertex_ai": "google", "gcp.gen_ai": "google",
    "gemini": "google", "vertex_ai": "google", "aws.bedrock": "aws", "bedrock": "aws",
    "azure.ai.openai": "azure", "azure.ai.inference": "azure", "az.ai.openai": "azure",
    "az.ai.inference": "azure", "mistral_ai": "mistral", "mistralai": "mistral",
    "x_ai": "x-ai", "xai": "x-ai", "ibm.watsonx.ai": "ibm",
}  # fmt: skip
# (column, attribute names in order of preference)
TOKEN_ATTRIBUTES = (
    ("tokens_input", ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                      "llm.token_count.prompt")),
    ("tokens_output", ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                       "llm.token_count.completion")),
    ("tokens_cached_input", ("gen_ai.usage.cache_read.input_tokens",
                             "gen_ai.usage.cache_read_input_tokens",
                             "gen_ai.usage.input_tokens.cached",
                             "llm.token_count.prompt_details.cache_read")),
    ("tokens_reasoning", ("gen_ai.usage.reasoning.output_tokens",
                          "gen_ai.usage.output_tokens.reasoning", "gen_ai.usage.reasoning_tokens",
                          "llm.token_count.completion_details.reasoning")),
    ("tokens_total", ("gen_ai.usage.total_tokens", "llm.token_count.total")),
)  # fmt: skip
CACHE_WRITE_ATTRIBUTES = (
    "gen_ai.usage.cache_write.input_tokens", "gen_ai.usage.cache_write_input_tokens",
    "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.input_tokens.cache_write", "llm.token_count.prompt_details.cache_write",
)  # fmt: skip
# Anthropic's split of cache writes by lifetime (the 1-hour rate is higher).
CACHE_WRITE_1H_ATTRIBUTES = (
    "anthropic.usage.cache_creation.ephemeral_1h_input_tokens",
    "gen_ai.usage.cache_creation.ephemeral_1h_input_tokens",
)  # fmt: skip
# Seconds from the start of the request to its first streamed chunk.
TTFT_ATTRIBUTES = (
    "gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token",
    "gen_ai.response.time_to_first_token", "llm.time_to_first_token",
)  # fmt: skip
# An event of one of these names marks the first streamed chunk.
# (OpenInference: "First Token Stream Event"; Traceloop: each streamed chunk is a
# gen_ai.content.completion.chunk event, the first one counts.)
TTFT_EVENTS = frozenset({"gen_ai.first_chunk", "gen_ai.content.first_chunk", "first_token",
                         "gen_ai.first_token", "llm.first_token", "First Token Stream Event",
                         "gen_ai.content.completion.chunk"})  # fmt: skip
# Spans of these names are LLM API calls that are not generations (no task).
NOT_A_CALL = ("count_tokens",)
SESSION_ATTRIBUTES = ("session.id", "gen_ai.conversation.id")
MESSAGE_ATTRIBUTES = frozenset({
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
    "input.value", "output.value",
})  # fmt: skip


def _first(attrs: dict[str, Any], names: tuple[str, ...] | list[str]) -> Any:
    for name in names:
        value = attrs.get(name)
        if value is not None and value != "":
            return value
    return None


def is_llm_span(span: Span) -> bool:
    """True for a span of one LLM (or embedding) request."""
    attrs = span.attributes
    kind = attrs.get("openinference.span.kind")
    if isinstance(kind, str):
        return kind.upper() in LLM_SPAN_KINDS
    if attrs.get("gen_ai.operation.name") in NON_LLM_OPERATIONS:
        return False
    return any(
        key in ("gen_ai.request.model", "gen_ai.response.model", "llm.model_name")
        or key.startswith(("gen_ai.usage.", "llm.token_count."))
        for key in attrs
    )


def skip_reason(span: Span) -> str | None:
    """Why a span makes no task ("not_llm", "count_tokens"), None when it makes one."""
    if not is_llm_span(span):
        return "not_llm"
    if any(word in span.name for word in NOT_A_CALL):
        return "count_tokens"
    return None


def _json_attribute(value: Any) -> Any:
    """gen_ai.*.messages arrive as JSON text (or already structured)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _indexed(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Flattened lists such as llm.input_messages.0.message.role -> [{"role": ...}]."""
    items: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if index.isdigit() and rest:
            rest = rest.removeprefix("message.")
            items.setdefault(int(index), {})[rest] = value
    return [items[i] for i in sorted(items)]


def text_of(messages: Any) -> str:
    """The text of output messages (semconv parts, OpenInference or plain content)."""
    if isinstance(messages, str):
        return messages
    texts: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        for part in message.get("parts") or []:
            if isinstance(part, dict) and part.get("type") == "text":
                texts.append(str(part.get("content", "")))
        if isinstance(message.get("content"), str):
            texts.append(message["content"])
        # OpenInference content parts: contents.M.message_content.{type,text}
        for part in _indexed(message, "contents."):
            text = part.get("message_content.text")
            if isinstance(text, str) and part.get("message_content.type", "text") == "text":
                texts.append(text)
    return "".join(texts)


def _messages(attrs: dict[str, Any]) -> tuple[Any, Any]:
    """(input messages, output messages) from whichever convention the span uses."""
    inputs = _json_attribute(attrs.get("gen_ai.input.messages"))
    outputs = _json_attribute(attrs.get("gen_ai.output.messages"))
    if inputs is None:
        inputs = _indexed(attrs, "llm.input_messages.") or _indexed(attrs, "gen_ai.prompt.")
    if outputs is None:
        outputs = _indexed(attrs, "llm.output_messages.") or _indexed(attrs, "gen_ai.completion.")
    if not inputs and attrs.get("input.value") is not None:
        inputs = _json_attribute(attrs["input.value"])
    if not outputs and attrs.get("output.value") is not None:
        outputs = _json_attribute(attrs["output.value"])
    return inputs or None, outputs or None


def _ttft_ms(span: Span) -> int | None:
    seconds = _first(span.attributes, TTFT_ATTRIBUTES)
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
        return round(seconds * 1000)
    times = [e.time_ns for e in span.events if e.name in TTFT_EVENTS and e.time_ns >= span.start_ns]
    return round((min(times) - span.start_ns) / 1e6) if times else None


def _clamped_ttft(span: Span, total_time: int | None) -> tuple[int | None, list[str]]:
    """The TTFT (ms) and the problems with it: one above the span's duration is clamped to
    the duration (the rounding of a fast stream), as the LiteLLM logger does."""
    ttft = _ttft_ms(span)
    if ttft is None or total_time is None or ttft <= total_time:
        return ttft, []
    note = (
        f"time_to_first_token {ttft} ms was above the span's duration {total_time} ms: "
        "clamped to the duration"
    )
    return total_time, [note]


def _moment(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


def _provider(attrs: dict[str, Any]) -> str | None:
    value = _first(attrs, ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"))
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    return PROVIDERS.get(value, value) or None


def _response_id(attrs: dict[str, Any]) -> Any:
    """The provider's response id: gen_ai.response.id, else the `id` of OpenInference's
    output.value (the response as JSON), which is how its spans meet the SDK's own."""
    value = attrs.get("gen_ai.response.id")
    if value is None and attrs.get("output.mime_type") == "application/json":
        output = _json_attribute(attrs.get("output.value"))
        value = output.get("id") if isinstance(output, dict) else None
    return value if isinstance(value, str) and value else None


def _model(attrs: dict[str, Any]) -> Any:
    """The requested model; a failed OpenInference span has it only in its invocation
    parameters."""
    model = _first(attrs, ("gen_ai.request.model", "llm.model_name", "gen_ai.response.model"))
    if model is None:
        parameters = _json_attribute(attrs.get("llm.invocation_parameters"))
        if isinstance(parameters, dict):
            model = parameters.get("model")
    return model


def _errors(span: Span) -> list[dict[str, Any]] | None:
    errors = [
        {
            "type": e.attributes.get("exception.type"),
            "message": e.attributes.get("exception.message"),
        }
        for e in span.events
        if e.name == "exception"
    ]
    if span.status_code == 2 and not errors:
        errors.append({"type": span.attributes.get("error.type"), "message": span.status_message})
    return [{k: v for k, v in e.items() if v is not None} for e in errors] or None


def _tokens(attrs: dict[str, Any]) -> dict[str, int]:
    given = {}
    for column, names in TOKEN_ATTRIBUTES:
        value = _first(attrs, names)
        if value is not None:
            given[column] = value
    if not given:
        return {}
    cache_write = _first(attrs, CACHE_WRITE_ATTRIBUTES)
    if cache_write is not None:
        given["tokens_cache_write"] = cache_write
    # Input counts include cache reads and writes; an instrumentation passing Anthropic's raw
    # input (which excludes them) gives fewer input than cached tokens: add them.
    cached = (given.get("tokens_cached_input") or 0) + (given.get("tokens_cache_write") or 0)
    tokens_input = given.get("tokens_input")
    if isinstance(cached, int) and isinstance(tokens_input, int) and cached > tokens_input:
        given["tokens_input"] = tokens_input + cached
    return normalize_usage(given)


def _billed_split(attrs: dict[str, Any], tokens: dict[str, int]) -> tuple[dict, dict] | None:
    """(token columns, billed usage) when Anthropic's 1-hour cache-write split is given:
    the 1-hour part is billed at its own rate (ingest.sdk.provider_usage reads it)."""
    one_hour = _first(attrs, CACHE_WRITE_1H_ATTRIBUTES)
    written = tokens.get("tokens_cache_write")
    if not isinstance(one_hour, int) or isinstance(one_hour, bool) or not written:
        return None
    cached = tokens.get("tokens_cached_input") or 0
    raw = {
        "input_tokens": (tokens.get("tokens_input") or 0) - cached - written,
        "output_tokens": tokens.get("tokens_output") or 0,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": written,
        "cache_creation": {
            "ephemeral_5m_input_tokens": max(written - one_hour, 0),
            "ephemeral_1h_input_tokens": min(one_hour, written),
        },
    }
    report = read_usage(raw)
    return report.columns, report.billed


def derived_id(secret: str, text: str) -> uuid.UUID:
    """A uuid derived from `text` with the install's secret: stable for the same text,
    unpredictable to anyone who does not hold the secret (docs/server.md)."""
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return uuid.uuid5(NAMESPACE, digest)


# A run's id is derived again for each of its spans (sessions of many calls): remembered.
_run_uuid = functools.lru_cache(maxsize=4096)(derived_id)


def run_key_of(span: Span) -> tuple[str, str]:
    """("session" or "trace", the session or trace id) of the run a span belongs to."""
    session = _first(span.attributes, SESSION_ATTRIBUTES) or _first(
        span.resource, SESSION_ATTRIBUTES
    )
    if session is not None:
        return "session", str(session)
    return "trace", span.trace_id


def run_id_of(span: Span, user: str, secret: str, attempt: int = 0) -> tuple[uuid.UUID, str, str]:
    """(run id, "session" or "trace", the session or trace id) of a span; `attempt` > 0
    gives the next id to try when another user holds the first."""
    kind, key = run_key_of(span)
    suffix = f":{attempt}" if attempt else ""
    return _run_uuid(secret, f"run:{user}:{kind}:{key}{suffix}"), kind, key


def task_of(span: Span, user: str, run_id: uuid.UUID, secret: str) -> dict[str, Any]:
    """The ai_tasks row of an LLM span, validated (ValidationError when it cannot be); not
    yet priced (ingest.server.batch.write_rows prices it when writing)."""
    attrs = span.attributes
    inputs, outputs = _messages(attrs)
    failed = span.status_code == 2
    total_time = max(0, round((span.end_ns - span.start_ns) / 1e6)) if span.end_ns else None
    ttft, problems = _clamped_ttft(span, total_time)
    tokens = _tokens(attrs)
    split = _billed_split(attrs, tokens)
    billed = None
    if split is not None:
        tokens, billed = {**tokens, **split[0]}, split[1]
    request = _request_of(attrs, inputs)
    row: dict[str, Any] = {
        "run_id": run_id,
        "task_id": derived_id(secret, f"span:{user}:{span.trace_id}:{span.span_id}"),
        "user_id": user,
        "service": span.resource.get("service.name"),
        "task_name": span.name or None,
        "provider": _provider(attrs),
        "endpoint": attrs.get("gen_ai.operation.name") or attrs.get("openinference.span.kind"),
        "model": _model(attrs),
        "model_id": attrs.get("gen_ai.response.model"),
        "request_data": {k: v for k, v in request.items() if v},
        "response_text": text_of(outputs) if outputs else None,
        "response_data": {
            k: v
            for k, v in {
                "id": _response_id(attrs),
                "finish_reasons": attrs.get("gen_ai.response.finish_reasons"),
                "output_messages": outputs,
            }.items()
            if v is not None
        }
        or None,
        "response_errors": _errors(span),
        "response_complete": not failed,
        "response_metadata": _metadata_of(span, problems, billed),
        **tokens,
        "time_to_first_token": ttft,
        "total_time": total_time,
        "status": "failed" if failed else "completed",
        "created_at": _moment(span.start_ns),
        "completed_at": _moment(span.end_ns) if span.end_ns and not failed else None,
        "variant": variant_of(attrs),
    }
    return validation.validate_task({k: v for k, v in row.items() if v is not None})


def _request_of(attrs: dict[str, Any], inputs: Any) -> dict[str, Any]:
    """A span's request: its input messages, system instructions and request parameters
    (the gen_ai.request.* attributes, else OpenInference's llm.invocation_parameters)."""
    return {
        "messages": inputs,
        "system_instructions": _json_attribute(attrs.get("gen_ai.system_instructions")),
        "parameters": {
            k.removeprefix("gen_ai.request."): v
            for k, v in attrs.items()
            if k.startswith("gen_ai.request.") and k != "gen_ai.request.model"
        }
        or _json_attribute(attrs.get("llm.invocation_parameters")),
    }


def _metadata_of(span: Span, problems: list[str], billed: Any) -> dict[str, Any]:
    """response_metadata of a span's task: where it came from (ids, scope, the attributes
    not stored elsewhere, the problems found), and the billed usage split when there is one;
    unset parts left out."""
    extra = {
        k: v
        for k, v in span.attributes.items()
        if k not in MESSAGE_ATTRIBUTES
        and not k.startswith(
            ("llm.input_messages.", "llm.output_messages.", "gen_ai.prompt.", "gen_ai.completion.")
        )
    }
    otlp = {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id or None,
        "scope": span.scope or None,
        "attributes": extra,
        "problems": problems or None,
    }
    metadata = {"otlp": {n: v for n, v in otlp.items() if v is not None}, "billed_usage": billed}
    return {k: v for k, v in metadata.items() if v is not None}


def run_name(inputs: Any) -> str:
    """A run's name from a span's input messages (the first user message), or ""."""
    messages = [m for m in inputs if isinstance(m, dict)] if isinstance(inputs, list) else []
    return naming.name_from_messages(
        [{"role": m.get("role"), "content": text_of([m]) or m.get("content")} for m in messages]
    )


VARIANT_ATTRIBUTE = "ai_runs.variant"


def variant_of(attrs: dict[str, Any]) -> str | None:
    """The span's `ai_runs.variant` attribute (an A/B label, docs/quality.md) when it is a
    valid label, else None (the span is kept; its attributes keep what was sent)."""
    value = attrs.get(VARIANT_ATTRIBUTE)
    return value if isinstance(value, str) and LABEL_PATTERN.fullmatch(value) else None


def run_of(
    span: Span, user: str, run_id: uuid.UUID, kind: str, key: str, inputs: Any = None
) -> dict[str, Any]:
    """The ai_runs row a span's task belongs to (written once; later spans find it).
    inputs: the span's input messages when the caller has them (its task's
    request_data["messages"]); None reads them from the span."""
    attrs = span.attributes
    if inputs is None:
        inputs, _ = _messages(attrs)
    name = run_name(inputs)
    source_type = attrs.get("ai_runs.source_type")
    return validation.validate_run(
        {
            "id": run_id,
            "user_id": user,
            "source_type": source_type if source_type in SOURCE_TYPES else "custom",
            "source_id": key,
            "name": name or f"{kind} {key}",
            "metadata": {
                "otlp": {
                    f"{kind}_id": key,
                    "service.name": span.resource.get("service.name"),
                    "named_from_message": bool(name),
                }
            },
            "created_at": _moment(span.start_ns),
            "variant": variant_of(attrs),
        }
    )
