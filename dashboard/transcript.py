"""A conversation shown as chat messages (the run and task pages; docs/tracking.md).

`turns(messages)` is pure: it reads stored messages in OpenAI (chat and Responses), Anthropic
or Gemini shape and gives one `Turn` per message: its role (system, user, assistant or
tool), its text, its tool calls with their arguments, the tool results it carries and its
attachments (only http(s) URLs become links). `task_messages(task)` is the conversation of
one task: its request's messages and its reply. `show_transcript` draws turns with
st.chat_message; every text from the data goes through st.text, st.code or the escaping of
dashboard.safe, never through markdown as written. Long texts fold into an expander; a
toggle shows the raw JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from dashboard.safe import http_url, md, md_link

FOLD_CHARS = 1_500  # a text longer than this (or FOLD_LINES lines) shows its start, folded
FOLD_LINES = 25
ROLE_NAMES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "model": "assistant",  # Gemini
    "ai": "assistant",
    "tool": "tool",
    "function": "tool",
}
AVATARS = {"system": ":material/settings:", "tool": ":material/build:"}
LIVE_STATUSES = ("pending", "streaming")
_YOUTUBE = re.compile(
    r"(?:youtube\.com/(?:watch\?(?:.*&)?v=|shorts/|embed/)|youtu\.be/)([\w-]{6,})"
)


@dataclass(frozen=True)
class ToolCall:
    """A call the assistant asked for: the tool's name, its arguments as JSON text."""

    name: str
    arguments: str
    id: str | None = None


@dataclass(frozen=True)
class Attachment:
    """A file, image, audio, URL or YouTube video in a message; url only when http(s)."""

    kind: str
    title: str
    url: str | None = None


@dataclass(frozen=True)
class Turn:
    """One message as the transcript shows it."""

    index: int
    role: str
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    name: str | None = None
    timestamp: str = ""
    task_id: str | None = None
    live: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)


def turns(messages: Sequence[Any]) -> list[Turn]:
    """The turns of stored messages (OpenAI, Anthropic or Gemini shape), in order."""
    return [_turn(i, m) for i, m in enumerate(messages or []) if isinstance(m, Mapping)]


def _turn(index: int, message: Mapping[str, Any]) -> Turn:
    parts = _Parts()
    content = message.get("content")
    if content is None and "parts" in message:  # Gemini: {"role": "model", "parts": [...]}
        content = message["parts"]
    parts.read(content)
    for call in message.get("tool_calls") or []:  # OpenAI chat
        function = call.get("function") or {} if isinstance(call, Mapping) else {}
        parts.calls.append(
            ToolCall(
                str(function.get("name") or "?"), _json_text(function.get("arguments")), _id(call)
            )
        )
    if isinstance(message.get("function_call"), Mapping):  # OpenAI's older function calling
        call = message["function_call"]
        parts.calls.append(
            ToolCall(str(call.get("name") or "?"), _json_text(call.get("arguments")))
        )
    role = ROLE_NAMES.get(str(message.get("role") or "user"), "user")
    if role == "user" and parts.results and not parts.texts:  # Anthropic's tool_result turn
        role = "tool"
    metadata = message.get("metadata") if isinstance(message.get("metadata"), Mapping) else {}
    return Turn(
        index=index,
        role=role,
        text="\n\n".join(parts.texts),
        tool_calls=tuple(parts.calls),
        tool_results=tuple(parts.results),
        attachments=tuple(parts.attachments),
        name=_text_or_none(message.get("name") or message.get("tool_call_id")),
        timestamp=str(message.get("timestamp") or "")[:19].replace("T", " "),
        task_id=_text_or_none(message.get("task_id")),
        live=bool(metadata.get("live")),
        raw=message,
    )


class _Parts:
    """What the parts of one message's content hold, collected in order."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.calls: list[ToolCall] = []
        self.results: list[str] = []
        self.attachments: list[Attachment] = []

    def read(self, content: Any) -> None:
        if content is None:
            return
        if isinstance(content, str):
            self.texts.append(content)
        elif isinstance(content, Mapping) and isinstance(content.get("parts"), list):
            self.read(content["parts"])
        elif isinstance(content, list):
            for part in content:
                self.part(part)
        else:
            self.part(content)

    # Over 40 lines: one branch per part type of the three providers, read in one place.
    def part(self, part: Any) -> None:
        if isinstance(part, str):
            self.texts.append(part)
            return
        if not isinstance(part, Mapping):
            self.texts.append(json.dumps(part, default=str))
            return
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text") or (kind is None and "text" in part):
            self.texts.append(str(part.get("text") or ""))
        elif kind in ("thinking", "reasoning"):
            self.texts.append("(thinking) " + str(part.get("thinking") or part.get("text") or ""))
        elif kind in ("tool_use", "function_call") or "functionCall" in part:
            call = part.get("functionCall") or part
            arguments = call.get("input", call.get("args", call.get("arguments")))
            self.calls.append(
                ToolCall(str(call.get("name") or "?"), _json_text(arguments), _id(call))
            )
        elif kind in ("tool_result", "function_call_output") or "functionResponse" in part:
            result = part.get("functionResponse") or part
            value = result.get("content", result.get("output", result.get("response")))
            self.results.append(_result_text(value))
        elif kind in ("image_url", "input_image", "image"):
            image = part.get("image_url") or part.get("source") or {}
            url = image.get("url") if isinstance(image, Mapping) else image
            self.attachments.append(_attachment("image", url, part))
        elif "inlineData" in part or "fileData" in part:
            data = part.get("fileData") or part.get("inlineData") or {}
            mime = str(data.get("mimeType") or "file")
            kind_of = "image" if mime.startswith("image/") else "file"
            self.attachments.append(_attachment(kind_of, data.get("fileUri"), part, title=mime))
        elif kind in ("file", "input_file", "document", "input_audio", "audio"):
            source = part.get("file") or part.get("source") or part.get("input_audio") or {}
            url = (
                source.get("url") or source.get("file_url") if isinstance(source, Mapping) else None
            )
            title = source.get("filename") if isinstance(source, Mapping) else None
            self.attachments.append(_attachment(str(kind).replace("input_", ""), url, part, title))
        elif kind in ("url", "youtube"):
            self.attachments.append(_attachment(kind, part.get("url"), part))
        else:
            self.texts.append(json.dumps(part, default=str))


def _attachment(kind: str, url: Any, part: Mapping[str, Any], title: Any = None) -> Attachment:
    checked = http_url(url)
    if checked and _YOUTUBE.search(checked):
        kind = "youtube"
    shown = title or (checked or str(part.get("type") or kind))
    return Attachment(kind=kind, title=str(shown), url=checked)


def _id(call: Any) -> str | None:
    return _text_or_none(call.get("id")) if isinstance(call, Mapping) else None


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _json_text(value: Any) -> str:
    """Tool-call arguments as indented JSON text (a JSON string parsed first)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _result_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        inner = _Parts()
        inner.read(value)
        return "\n\n".join(inner.texts)
    return _json_text(value)


def task_messages(task: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The conversation of one task: the messages of its request (OpenAI `messages` or
    Responses `input`, Anthropic `system` + `messages`, Gemini `contents`), then its reply
    (response_text and tool_updates), marked live while the task is still streaming."""
    request = task.get("request_data") if isinstance(task.get("request_data"), Mapping) else {}
    messages: list[dict[str, Any]] = []
    system = request.get("system") or request.get("instructions")
    if system:
        messages.append({"role": "system", "content": system})
    sent = request.get("messages") or request.get("contents") or request.get("input") or []
    if isinstance(sent, str):
        sent = [{"role": "user", "content": sent}]
    messages.extend(m for m in sent if isinstance(m, Mapping))
    reply: dict[str, Any] = {"role": "assistant", "content": task.get("response_text") or ""}
    if task.get("tool_updates"):
        reply["tool_calls"] = _tool_updates(task["tool_updates"])
    reply["metadata"] = {"live": task.get("status") in LIVE_STATUSES}
    if reply["content"] or reply.get("tool_calls") or reply["metadata"]["live"]:
        messages.append(reply)
    return messages


def _tool_updates(updates: Any) -> list[dict[str, Any]]:
    items = updates if isinstance(updates, list) else [updates]
    calls = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        function = item.get("function") if isinstance(item.get("function"), Mapping) else item
        arguments = function.get("arguments", function.get("input", function.get("args")))
        calls.append(
            {
                "id": item.get("id"),
                "function": {"name": function.get("name"), "arguments": arguments},
            }
        )
    return calls


# ------------------------------------------------------------------------------ drawing


def show_transcript(messages: Sequence[Any], *, key: str, links_to_tasks: bool = True) -> None:
    """Draw `messages` as chat turns, with a toggle (`key`) that shows the raw JSON."""
    if not messages:
        st.caption("(no messages)")
        return
    if st.toggle("Raw JSON", key=f"{key}_raw", help="The messages exactly as stored."):
        st.json(list(messages), expanded=2)
        return
    for turn in turns(messages):
        with st.chat_message(turn.role, avatar=AVATARS.get(turn.role)):
            _show_turn(turn, links_to_tasks)


def _show_turn(turn: Turn, links_to_tasks: bool) -> None:
    who = turn.role + (f" · {turn.name}" if turn.name else "")
    st.caption(
        f"#{turn.index + 1} · {md(who)}" + (f" · {md(turn.timestamp)}" if turn.timestamp else "")
    )
    if turn.text:
        _folded_text(turn.text)
    if turn.live:
        st.caption("generating…")
    for call in turn.tool_calls:
        st.markdown(
            f"🔧 Tool call **{md(call.name)}**" + (f" · id {md(call.id)}" if call.id else "")
        )
        st.code(call.arguments, language="json", wrap_lines=True)
    for result in turn.tool_results:
        st.caption("Tool result")
        _folded_text(result)
    for item in turn.attachments:
        _show_attachment(item)
    if links_to_tasks and turn.task_id:
        st.page_link(
            "views/task.py",
            label="its task",
            query_params={"task_id": turn.task_id},
            icon=":material/receipt_long:",
        )


def _folded_text(text: str) -> None:
    lines = text.splitlines()
    if len(text) <= FOLD_CHARS and len(lines) <= FOLD_LINES:
        st.text(text)
        return
    start = "\n".join(lines[:FOLD_LINES])[:FOLD_CHARS]
    st.text(start + " …")
    with st.expander(f"Show all {len(text):,} characters"):
        st.text(text)


def _show_attachment(item: Attachment) -> None:
    icons = {"image": "🖼️", "youtube": "▶️", "url": "🔗", "audio": "🔊"}
    st.markdown(f"{icons.get(item.kind, '📄')} {md(item.kind)}: {md_link(item.title, item.url)}")
    if item.url and item.kind == "image":
        st.image(item.url, width=240)
    elif item.url and item.kind == "youtube":
        video = _YOUTUBE.search(item.url)
        if video:
            st.image(f"https://img.youtube.com/vi/{video.group(1)}/hqdefault.jpg", width=240)
