"""Run names generated when the caller gives none."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

NAME_MAX_CHARS = 60


def message_text(content: Any) -> str:
    """The plain text of a message's content: a string, or the text parts of a list of parts
    ({"type": "text", "text": ...}), joined by spaces. Anything else gives ""."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return " ".join(parts)
    return ""


def name_from_text(text: str, max_chars: int = NAME_MAX_CHARS) -> str:
    """The first non-empty line of `text`, whitespace collapsed, cut at a word boundary to at
    most `max_chars` characters (an ellipsis marks the cut). "" when there is no text."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    line = " ".join(line.split())
    if len(line) <= max_chars:
        return line
    cut = line[: max_chars - 1]
    space = cut.rfind(" ")
    if space >= max_chars // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"


def name_from_messages(messages: Iterable[Mapping[str, Any]]) -> str:
    """Name from the first user message with some text, or "" when there is none."""
    for message in messages:
        if message.get("role") == "user":
            name = name_from_text(message_text(message.get("content")))
            if name:
                return name
    return ""


def fallback_name(source_type: str, created_at: datetime) -> str:
    """Name of a run with no user message yet: "Chat run 2026-11-25 10:32" (UTC)."""
    moment = created_at.astimezone(UTC) if created_at.tzinfo else created_at
    return f"{source_type.capitalize()} run {moment:%Y-%m-%d %H:%M}"
