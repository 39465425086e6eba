"""The file format of `ai-runs import` and `export` (docs/import-format.md), shared by both
directions: the kinds of rows, their columns, how a CSV cell holds text, JSON and NULL."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.transfer import bulk

FORMATS = ("jsonl", "csv")
KINDS = {"user": "ai_users", "run": "ai_runs", "task": "ai_tasks"}

# Export columns per kind (import accepts the same; derived run totals are ignored on import).
COLUMNS = {
    "user": bulk.USER_COLUMNS,
    "run": bulk.RUN_COLUMNS + bulk.RUN_DERIVED,
    "task": bulk.TASK_COLUMNS,
}
CSV_HEADER = ("type",) + tuple(dict.fromkeys(c for cols in COLUMNS.values() for c in cols))
TEXT_COLUMNS = {
    "user": frozenset({"id", "display_name", "email", "team", "role"}),
    "run": frozenset({"user_id", "source_type", "source_id", "name", "description", "status"}),
    "task": frozenset({"user_id", "service", "task_name", "provider", "endpoint", "model",
                       "model_id", "response_text", "status", "cost_source"}),
}  # fmt: skip
JSON_TEXT_COLUMNS = bulk.JSON_COLUMNS | {"tags"}
RAW_JSON_COLUMNS = JSON_TEXT_COLUMNS | {
    "tokens_input", "tokens_output", "tokens_cached_input", "tokens_reasoning", "tokens_total",
    "tokens_cache_write", "time_to_first_token", "total_time", "total_tokens", "message_count",
    "task_count", "forked_from_message", "is_starred", "response_complete",
}  # fmt: skip
CSV_NULL = "\\N"
# A text value that looks like CSV_NULL (backslashes, then N) gets one more backslash.
ESCAPED_NULL = re.compile(r"^\\+N$")


def format_of(path: str | Path) -> str:
    """'jsonl' or 'csv' from a file name; ValueError for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise ValueError(f"{path}: unknown format {suffix!r} (allowed: .jsonl, .ndjson, .csv)")
