"""Downloads: run exports offered by the Runs page (pure functions of a run dict, as
Tracker.get_run returns it) and the CSV every table offers (`table_csv`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from ingest.transfer.import_export import neutralize_formula

FINE_TUNING_ROLES = ("system", "user", "assistant")


def neutralized(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` where no text cell can run as a spreadsheet formula: a text cell
    starting with = + - @ tab or CR gets a leading ' (OWASP, see ingest/transfer/import_export.py).
    Numbers stay numbers (a negative number is not a formula)."""
    safe = df.copy()
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):
            safe[column] = safe[column].map(
                lambda v: neutralize_formula(v) if isinstance(v, str) else v
            )
    return safe


def table_csv(df: pd.DataFrame) -> bytes:
    """`df` as UTF-8 CSV (no index), text cells `neutralized`."""
    return neutralized(df).to_csv(index=False).encode("utf-8")


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
