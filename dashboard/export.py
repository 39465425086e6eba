"""Run exports offered by the Runs page: pure functions of a run dict (Tracker.get_run)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

FINE_TUNING_ROLES = ("system", "user", "assistant")


def run_json(run: Mapping[str, Any]) -> str:
    """The whole run (messages, settings, variables, attachments, tasks...) as JSON text;
    UUIDs, timestamps and Decimals become strings."""
    return json.dumps(run, default=str, indent=2, ensure_ascii=False)


def _text(content: Any) -> str | None:
    """Message content as plain text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, Mapping) and p.get("text")]
        return "\n".join(parts) if parts else None
    if content is None:
        return None
    return json.dumps(content, default=str, ensure_ascii=False)


def fine_tuning_example(run: Mapping[str, Any]) -> dict[str, Any] | None:
    """One chat-format fine-tuning example ({"messages": [{"role", "content"}...]}) from a
    run's system/user/assistant messages; None when it has no assistant reply to learn."""
    messages = []
    for message in run.get("messages") or []:
        role = message.get("role")
        text = _text(message.get("content"))
        if role in FINE_TUNING_ROLES and text:
            messages.append({"role": role, "content": text})
    if not any(m["role"] == "assistant" for m in messages):
        return None
    return {"messages": messages}


def fine_tuning_jsonl(runs: Iterable[Mapping[str, Any]]) -> str:
    """JSON Lines for chat fine-tuning: one example per run that has an assistant reply."""
    lines = []
    for run in runs:
        example = fine_tuning_example(run)
        if example is not None:
            lines.append(json.dumps(example, ensure_ascii=False))
    return "\n".join(lines) + ("\n" if lines else "")
