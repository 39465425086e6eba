"""Picking a conversation up again: a run's messages in the shape a provider's SDK takes
(docs/tracking.md, "Resume a run").

`in_shape(messages, shape)` is pure: stored messages (OpenAI, Anthropic or Gemini shape, as
the run holds them) -> the messages of `shape`:

- "openai": chat-completions messages ({role, content, tool_calls?, tool_call_id?});
- "anthropic": user/assistant messages with text, image, tool_use and tool_result blocks,
  the system messages apart (`system`, as Anthropic's API takes them);
- "gemini": `contents` ({role: user|model, parts}) with text, fileData, functionCall and
  functionResponse parts, the system messages apart (`system`, system_instruction's text).

`resume(run, shape)` is what `Tracker.resume_run` returns: those messages, the system text,
the run's settings, variable values and broker values. ResumeMethods mixes resume_run into
Tracker, with `live_tasks` and `live_run_ids` (a run is *live* while one of its tasks is
pending or streaming; its page polls them). SQL: ingest/tracking/sql/conversations.sql.
Anything a part holds that the target shape has no place for is kept as its JSON text, so
nothing said in the conversation is dropped.
"""

from __future__ import annotations

import json
import mimetypes
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ingest.errors import NotFoundError, ValidationError
from ingest.store.validation import parse_uuid

SHAPES = ("openai", "anthropic", "gemini")
_ROLES = {"developer": "system", "function": "tool", "model": "assistant", "human": "user"}


@dataclass
class _Message:
    """One message, provider-neutral: role system|user|assistant|tool, ordered parts
    (("text", str) or ("image", url)), tool calls (id, name, arguments) and, for a tool
    message, the call it answers."""

    role: str
    parts: list[tuple[str, str]] = field(default_factory=list)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    call_id: str | None = None


def check_shape(shape: Any) -> str:
    """`shape` when it is one of SHAPES, else ValidationError listing them."""
    if shape not in SHAPES:
        raise ValidationError("shape", f"unknown shape {shape!r}", SHAPES)
    return shape


def in_shape(messages: Sequence[Any], shape: str) -> tuple[list[dict[str, Any]], str | None]:
    """(messages in `shape`, the system text or None). For "openai" the system messages stay
    in the list and the system text is None."""
    neutral = _neutral(messages)
    if check_shape(shape) == "openai":
        return [_openai(m) for m in neutral], None
    system = "\n\n".join(text for m in neutral if m.role == "system" for _, text in m.parts)
    rest = [m for m in neutral if m.role != "system"]
    if shape == "anthropic":
        return [_anthropic(m) for m in rest], system or None
    names = {call_id: name for m in rest for call_id, name, _ in m.calls}
    return [_gemini(m, names) for m in rest], system or None


def resume(run: Mapping[str, Any], shape: str) -> dict[str, Any]:
    """What an application needs to continue run `run` (a row with messages): run_id,
    shape, messages, system, settings, variable_values, broker_values."""
    messages, system = in_shape(run.get("messages") or [], shape)
    return {
        "run_id": str(run["id"]),
        "shape": shape,
        "messages": messages,
        "system": system,
        "settings": dict(run.get("settings") or {}),
        "variable_values": dict(run.get("variable_values") or {}),
        "broker_values": dict(run.get("broker_values") or {}),
    }


class ResumeMethods:
    """Tracker mix-in: resume_run (see module docstring)."""

    _queries: dict[str, Any]
    _transaction: Callable[..., AbstractContextManager[psycopg.Connection]]
    _one: Callable[..., dict | None]

    def resume_run(self, run_id: uuid.UUID | str, shape: str = "openai") -> dict[str, Any]:
        """Run `run_id`'s conversation in `shape` (openai, anthropic or gemini) with its
        settings, variable values and broker values: {run_id, shape, messages, system,
        settings, variable_values, broker_values}. Continue it with a tracked client inside
        `with tracker.run(run_id):`. ValidationError for an unknown shape; NotFoundError
        for a run that does not exist or that this viewer may not read."""
        check_shape(shape)
        run = parse_uuid("run_id", run_id)
        with self._transaction(consistent=True) as conn:
            row = self._one(conn, "get_run", run_id=run)
        if row is None:
            raise NotFoundError("run", run)
        return resume(row, shape)

    def live_tasks(self, run_id: uuid.UUID | str) -> list[dict[str, Any]]:
        """The unfinished (pending or streaming) tasks of a run, oldest first, with the text
        and token counts written so far: task_id, status, provider, model, response_text,
        tokens_input, tokens_output, tokens_total, time_to_first_token, created_at,
        updated_at. Empty when none (or the run is not one this viewer may read)."""
        run = parse_uuid("run_id", run_id)
        with self._transaction() as conn:
            return conn.execute(self._queries["live_tasks"].psycopg, {"run_id": run}).fetchall()

    def live_run_ids(self, run_ids: Sequence[uuid.UUID | str]) -> set[uuid.UUID]:
        """Which of `run_ids` have a pending or streaming task (that this viewer may read)."""
        runs = [parse_uuid("run_ids", run_id) for run_id in run_ids]
        if not runs:
            return set()
        with self._transaction() as conn:
            rows = conn.execute(self._queries["live_run_ids"].psycopg, {"run_ids": runs})
            return {row["run_id"] for row in rows.fetchall()}


# ------------------------------------------------------------------ reading stored messages


def _neutral(messages: Sequence[Any]) -> list[_Message]:
    result: list[_Message] = []
    for message in messages or []:
        if isinstance(message, Mapping):
            result.extend(_read(message))
    return result


def _read(message: Mapping[str, Any]) -> list[_Message]:
    """One stored message as neutral messages (an Anthropic user message carrying several
    tool results is one tool message per result)."""
    role = str(message.get("role") or "user")
    head = _Message(_ROLES.get(role, role), call_id=_text(message.get("tool_call_id")))
    results: list[_Message] = []
    content = message.get("content")
    if content is None and isinstance(message.get("parts"), list):
        content = message["parts"]
    if isinstance(content, Mapping) and isinstance(content.get("parts"), list):
        content = content["parts"]
    for part in content if isinstance(content, list) else [content]:
        _read_part(part, head, results)
    for call in message.get("tool_calls") or []:
        function = (call.get("function") or {}) if isinstance(call, Mapping) else {}
        head.calls.append((_call_id(call, head), str(function.get("name")), _args(function)))
    if head.role == "tool" and head.call_id is None and message.get("name"):
        head.call_id = str(message["name"])
    return ([head] if head.parts or head.calls or not results else []) + results


def _read_part(part: Any, head: _Message, results: list[_Message]) -> None:
    if part is None:
        return
    if isinstance(part, str):
        head.parts.append(("text", part))
        return
    if not isinstance(part, Mapping):
        head.parts.append(("text", json.dumps(part, default=str)))
        return
    kind = part.get("type")
    if kind in ("text", "input_text", "output_text") or (kind is None and "text" in part):
        head.parts.append(("text", str(part.get("text") or "")))
    elif kind == "tool_use" or "functionCall" in part:
        call = part.get("functionCall") or part
        head.calls.append((_call_id(call, head), str(call.get("name")), _args(call)))
    elif kind == "tool_result" or "functionResponse" in part:
        answer = part.get("functionResponse") or part
        call_id = _text(part.get("tool_use_id")) or _text(answer.get("name"))
        value = answer.get("content", answer.get("response"))
        results.append(_Message("tool", [("text", _result_text(value))], call_id=call_id))
    elif kind in ("image_url", "input_image", "image") and _image_url(part):
        head.parts.append(("image", _image_url(part) or ""))
    elif "fileData" in part and isinstance(part["fileData"], Mapping):
        head.parts.append(("image", str(part["fileData"].get("fileUri"))))
    else:
        head.parts.append(("text", json.dumps(part, default=str, ensure_ascii=False)))


def _image_url(part: Mapping[str, Any]) -> str | None:
    source = part.get("image_url") or part.get("source") or {}
    url = source.get("url") if isinstance(source, Mapping) else source
    return url if isinstance(url, str) and url else None


def _args(call: Mapping[str, Any]) -> Any:
    value = call.get("arguments", call.get("input", call.get("args")))
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return {} if value is None else value


def _call_id(call: Any, head: _Message) -> str:
    given = call.get("id") if isinstance(call, Mapping) else None
    return str(given) if given else f"call_{len(head.calls)}"


def _result_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = [p.get("text") for p in value if isinstance(p, Mapping) and "text" in p]
        if len(texts) == len(value):
            return "\n\n".join(str(t) for t in texts)
    return json.dumps(value, default=str, ensure_ascii=False)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# ------------------------------------------------------------------ writing each shape


def _openai(m: _Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role}
    if all(kind == "text" for kind, _ in m.parts):
        out["content"] = "\n\n".join(text for _, text in m.parts) if m.parts else None
    else:
        out["content"] = [
            {"type": "text", "text": value}
            if kind == "text"
            else {"type": "image_url", "image_url": {"url": value}}
            for kind, value in m.parts
        ]
    if m.calls:
        out["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": _dump(a)}}
            for i, n, a in m.calls
        ]
    if m.role == "tool":
        out["tool_call_id"] = m.call_id
    return out


def _anthropic(m: _Message) -> dict[str, Any]:
    if m.role == "tool":
        text = "\n\n".join(value for _, value in m.parts)
        block = {"type": "tool_result", "tool_use_id": m.call_id, "content": text}
        return {"role": "user", "content": [block]}
    blocks: list[dict[str, Any]] = [
        {"type": "text", "text": value}
        if kind == "text"
        else {"type": "image", "source": {"type": "url", "url": value}}
        for kind, value in m.parts
    ]
    blocks += [{"type": "tool_use", "id": i, "name": n, "input": a} for i, n, a in m.calls]
    if len(blocks) == 1 and blocks[0]["type"] == "text":
        return {"role": m.role, "content": blocks[0]["text"]}
    return {"role": m.role, "content": blocks}


def _gemini(m: _Message, names: Mapping[str, str]) -> dict[str, Any]:
    if m.role == "tool":
        text = "\n\n".join(value for _, value in m.parts)
        name = names.get(m.call_id or "", m.call_id or "tool")
        answer = {"functionResponse": {"name": name, "response": {"content": text}}}
        return {"role": "user", "parts": [answer]}
    parts: list[dict[str, Any]] = [
        {"text": value}
        if kind == "text"
        else {"fileData": {"mimeType": _mime(value), "fileUri": value}}
        for kind, value in m.parts
    ]
    parts += [{"functionCall": {"name": n, "args": a}} for _, n, a in m.calls]
    return {"role": "model" if m.role == "assistant" else "user", "parts": parts}


def _mime(url: str) -> str:
    return mimetypes.guess_type(url.split("?")[0])[0] or "image/jpeg"


def _dump(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
