"""Read the items of provider SDK streams: text, tool calls, usage, model, errors.

`StreamState.read(item)` understands, without importing any SDK (by the items' shapes):
- plain text chunks (str) and usage objects/dicts (ingest.sdk.provider_usage shapes; several
  usage parts merge: a later value that is set wins, an unset one keeps the earlier value);
- OpenAI Chat Completions chunks (`choices[].delta.content`, `delta.tool_calls`, the final
  chunk's `usage` with `stream_options={"include_usage": True}`);
- OpenAI Responses events (`response.output_text.delta`, function-call items,
  `response.completed` / `response.incomplete` / `response.failed` with the response's
  usage, `error`);
- Anthropic raw stream events (`message_start` usage, `content_block_start` tool_use,
  `content_block_delta` text/input_json/thinking, `message_delta` usage, `error`) and the
  `messages.stream()` helper's events (its derived `text` / `input_json` events are
  skipped: the raw events they repeat are read instead);
- google-genai `generate_content_stream` responses (candidate parts' text, thought parts
  excluded, function calls; `usage_metadata` is cumulative: the last one wins).

Usage is kept as the provider's raw payload and read at the end by ingest.sdk.provider_usage (so
genai-prices' extractors see it as the provider sent it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ingest.sdk.provider_usage import as_mapping, merge_usage, read_usage

_ANTHROPIC_HELPER_EVENTS = frozenset({"text", "input_json", "thinking", "signature", "citation"})


def _attr(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)


@dataclass
class StreamState:
    """What has been read from one stream so far.

    sdk: True once an item of a provider SDK was seen (then tracking problems never reach
    the application). usage: the provider's usage payload (None when not reported).
    """

    parts: list[str] = field(default_factory=list)
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    usage: Any = None
    model: str | None = None
    response_id: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    sdk: bool = False
    finish_reason: str | None = None
    _anthropic_usage: list[Any] = field(default_factory=list)
    _tool_order: list[str] = field(default_factory=list)
    _anthropic_blocks: dict[int, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def tool_updates(self) -> list[dict[str, Any]] | None:
        """Tool calls in order: {"id", "name", "arguments"} (arguments as sent, a JSON text)."""
        return [self.tools[key] for key in self._tool_order] or None

    def read(self, item: Any) -> str | None:
        """Take one stream item into the state; return its new text (None when none)."""
        if isinstance(item, str):
            return item
        if isinstance(item, dict):  # a usage dict (SDK items are objects)
            self._add_usage(item)
            return None
        if _attr(item, "choices") is not None and _attr(item, "object") != "response":
            self.sdk = True
            return self._openai_chat(item)
        if _attr(item, "candidates") is not None or _attr(item, "usage_metadata") is not None:
            self.sdk = True
            return self._gemini(item)
        kind = _attr(item, "type")
        if isinstance(kind, str):
            if kind.startswith("response.") or (kind == "error" and _attr(item, "code", 0) != 0):
                self.sdk = True
                return self._openai_responses(kind, item)
            self.sdk = True
            return self._anthropic(kind, item)
        self._add_usage(item)  # a usage object
        return None

    def _add_usage(self, usage: Any) -> None:
        """A usage part given as a chunk: merged into the usage so far (merge_usage), so
        Anthropic's message_start usage, then its message_delta usage, make one usage."""
        read_usage(usage)  # ValidationError(usage) when it is not one
        self.usage = usage if self.usage is None else merge_usage(self.usage, usage)

    # ------------------------------------------------------------ OpenAI chat

    def _openai_chat(self, chunk: Any) -> str | None:
        self.model = _attr(chunk, "model") or self.model
        self.response_id = _attr(chunk, "id") or self.response_id
        if _attr(chunk, "usage") is not None:
            self.usage = _attr(chunk, "usage")
        text = []
        for choice in _attr(chunk, "choices") or []:
            delta = _attr(choice, "delta")
            self.finish_reason = _attr(choice, "finish_reason") or self.finish_reason
            if delta is None:
                continue
            if _attr(delta, "content"):
                text.append(_attr(delta, "content"))
            for call in _attr(delta, "tool_calls") or []:
                key = f"chat:{_attr(call, 'index')}"
                function = _attr(call, "function")
                tool = self._tool(key, _attr(call, "id"))
                if function is not None:
                    tool["name"] = _attr(function, "name") or tool["name"]
                    tool["arguments"] += _attr(function, "arguments") or ""
        return "".join(text) or None

    def _tool(self, key: str, tool_id: str | None) -> dict[str, Any]:
        if key not in self.tools:
            self.tools[key] = {"id": tool_id, "name": None, "arguments": ""}
            self._tool_order.append(key)
        elif tool_id:
            self.tools[key]["id"] = tool_id
        return self.tools[key]

    # ------------------------------------------------------------ OpenAI responses

    def _openai_responses(self, kind: str, event: Any) -> str | None:
        if kind == "response.output_text.delta":
            return _attr(event, "delta") or None
        if kind in ("response.output_item.added", "response.output_item.done"):
            item = _attr(event, "item")
            if _attr(item, "type") == "function_call":
                tool = self._tool(f"responses:{_attr(item, 'id')}", _attr(item, "call_id"))
                tool["name"] = _attr(item, "name")
                if kind.endswith("done"):
                    tool["arguments"] = _attr(item, "arguments") or ""
        elif kind in (
            "response.created",
            "response.completed",
            "response.incomplete",
            "response.failed",
        ):
            response = _attr(event, "response")
            self.model = _attr(response, "model") or self.model
            self.response_id = _attr(response, "id") or self.response_id
            if _attr(response, "usage") is not None:
                self.usage = _attr(response, "usage")
            error = _attr(response, "error")
            if kind == "response.failed" and error is not None:
                self.errors.append(_error(error))
        elif kind == "error":
            self.errors.append(_error(event))
        return None

    # ------------------------------------------------------------ Anthropic

    def _anthropic(self, kind: str, event: Any) -> str | None:
        if kind in _ANTHROPIC_HELPER_EVENTS:
            return None
        if kind == "message_start":
            message = _attr(event, "message")
            self.model = _attr(message, "model") or self.model
            self.response_id = _attr(message, "id") or self.response_id
            self._add_anthropic_usage(_attr(message, "usage"))
        elif kind == "message_delta":
            self._add_anthropic_usage(_attr(event, "usage"))
            self.finish_reason = _attr(_attr(event, "delta"), "stop_reason") or self.finish_reason
        elif kind == "content_block_start":
            block = _attr(event, "content_block")
            index = _attr(event, "index")
            self._anthropic_blocks[index] = _attr(block, "type")
            if _attr(block, "type") in ("tool_use", "server_tool_use"):
                tool = self._tool(f"anthropic:{index}", _attr(block, "id"))
                tool["name"] = _attr(block, "name")
        elif kind == "content_block_delta":
            delta = _attr(event, "delta")
            delta_type = _attr(delta, "type")
            if delta_type == "text_delta":
                return _attr(delta, "text") or None
            if delta_type == "input_json_delta":
                tool = self._tool(f"anthropic:{_attr(event, 'index')}", None)
                tool["arguments"] += _attr(delta, "partial_json") or ""
        elif kind == "error":
            self.errors.append(_error(_attr(event, "error") or event))
        return None

    def _add_anthropic_usage(self, usage: Any) -> None:
        if usage is not None:
            self._anthropic_usage.append(usage)
            self.usage = merge_usage(*self._anthropic_usage)

    # ------------------------------------------------------------ google-genai

    def _gemini(self, response: Any) -> str | None:
        self.model = _attr(response, "model_version") or self.model
        self.response_id = _attr(response, "response_id") or self.response_id
        if _attr(response, "usage_metadata") is not None:
            self.usage = _attr(response, "usage_metadata")
        text = []
        for candidate in (_attr(response, "candidates") or [])[:1]:
            reason = _attr(candidate, "finish_reason")
            self.finish_reason = str(getattr(reason, "value", reason)) if reason else None
            content = _attr(candidate, "content")
            for part in _attr(content, "parts") or []:
                if _attr(part, "text") and not _attr(part, "thought"):
                    text.append(_attr(part, "text"))
                call = _attr(part, "function_call")
                if call is not None:
                    key = f"gemini:{len(self._tool_order)}"
                    tool = self._tool(key, _attr(call, "id"))
                    tool["name"] = _attr(call, "name")
                    tool["arguments"] = json.dumps(_attr(call, "args") or {}, default=str)
        return "".join(text) or None


def _error(error: Any) -> dict[str, Any]:
    mapping = as_mapping(error) or {"message": str(error)}
    return {k: v for k, v in mapping.items() if isinstance(v, str | int | float | bool)}
