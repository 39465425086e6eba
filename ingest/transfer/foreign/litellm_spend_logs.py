"""LiteLLM spend logs: rows of the proxy's `LiteLLM_SpendLogs` table (its schema.prisma),
exported as CSV or JSON/JSONL (docs/imports.md has the field mapping).

Each row is one request and becomes one task: request_id (the table's primary key) gives
the task_id, so importing again writes nothing new. Rows sharing a session_id form one run;
a row without one is its own run. Tokens come from metadata.usage_object when LiteLLM kept
it (cached and reasoning tokens included), else prompt_tokens / completion_tokens; `spend`
is the cost (USD) as LiteLLM computed it. Columns without a place of their own (api_key
hash, team_id, model_group, api_base, cache_hit, ...) are kept under the task's
response_metadata.litellm, and the request tags become the run's tags.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ingest.errors import ValidationError
from ingest.sdk.provider_usage import normalize_usage
from ingest.tracking import naming
from ingest.transfer import import_export as transfer
from ingest.transfer.foreign.records import (
    ForeignImport,
    Record,
    decimal,
    derived_id,
    first,
    moment,
    ms_between,
    read_records,
    text_of,
    whole,
    write_rows,
)

_MAPPED = ("messages", "response", "proxy_server_request")


def _tokens(log: dict[str, Any]) -> dict[str, int]:
    metadata = log.get("metadata") if isinstance(log.get("metadata"), dict) else {}
    usage = metadata.get("usage_object")
    if isinstance(usage, dict):
        try:
            return normalize_usage(usage)
        except ValidationError:
            pass  # fall back to the table's own columns
    pairs = (
        ("tokens_input", log.get("prompt_tokens")),
        ("tokens_output", log.get("completion_tokens")),
        ("tokens_total", log.get("total_tokens")),
    )
    return {column: whole(value) for column, value in pairs if whole(value) is not None}


def _errors(log: dict[str, Any]) -> list[dict[str, Any]]:
    metadata = log.get("metadata") if isinstance(log.get("metadata"), dict) else {}
    info = metadata.get("error_information")
    if isinstance(info, dict) and info:
        return [info]
    return [{"message": "LiteLLM status failure"}]


def _tags(log: dict[str, Any]) -> list[str] | None:
    tags = log.get("request_tags")
    if isinstance(tags, list):
        return [t.strip() for t in tags if isinstance(t, str) and t.strip()] or None
    return None


def task_row(log: dict[str, Any], run_id: Any) -> dict[str, Any]:
    """Our task row of one spend-log row."""
    start = moment(log.get("startTime"))
    end = moment(log.get("endTime"))
    failed = str(log.get("status") or "").lower() == "failure"
    response = log.get("response")
    row = {
        "type": "task",
        "run_id": run_id,
        "task_id": derived_id("litellm:request", log["request_id"]),
        "user_id": first(log, "user", "end_user"),
        "provider": log.get("custom_llm_provider"),
        "endpoint": log.get("call_type"),
        "model": first(log, "model", "model_group"),
        "model_id": log.get("model_id"),
        "request_data": {
            "messages": log.get("messages"),
            "proxy_server_request": log.get("proxy_server_request"),
        },
        "response_text": text_of(response) if response else None,
        "response_data": response or None,
        "response_errors": _errors(log) if failed else None,
        "response_complete": not failed,
        "response_metadata": {"litellm": {k: v for k, v in log.items() if k not in _MAPPED}},
        **_tokens(log),
        "cost": decimal(log.get("spend")),
        "cost_source": "provider" if decimal(log.get("spend")) is not None else None,
        "time_to_first_token": ms_between(start, moment(log.get("completionStartTime"))),
        "total_time": whole(log.get("request_duration_ms")) or ms_between(start, end),
        "status": "failed" if failed else "completed",
        "created_at": start,
        "completed_at": end if not failed else None,
    }
    return {k: v for k, v in row.items() if v is not None}


def run_row(log: dict[str, Any], run_key: str) -> dict[str, Any]:
    """Our run row for a session (or a lone request)."""
    messages = log.get("messages") if isinstance(log.get("messages"), list) else []
    name = naming.name_from_messages([m for m in messages if isinstance(m, dict)])
    row = {
        "type": "run",
        "id": derived_id("litellm:run", run_key),
        "user_id": first(log, "user", "end_user"),
        "source_type": "custom",
        "source_id": run_key.split(":", 1)[1],
        "name": name or f"LiteLLM {log.get('call_type') or 'request'} {log.get('model') or ''}",
        "tags": _tags(log),
        "metadata": {"litellm": {"run": run_key, "team_id": log.get("team_id")}},
        "created_at": moment(log.get("startTime")),
    }
    return {k: v for k, v in row.items() if v is not None}


def import_files(paths: Sequence[str | Path], url: str | None = None) -> ForeignImport:
    """Import LiteLLM_SpendLogs rows (see the module docstring)."""
    rows: list[tuple[dict[str, Any], Record]] = []
    bad: list[transfer.Rejection] = []
    runs: set[str] = set()
    for path in paths:
        for record in read_records(Path(path)):
            log = record.fields
            if log is None or not log.get("request_id"):
                bad.append(transfer.Rejection(record.path, record.line, "request_id: required"))
                continue
            session = log.get("session_id")
            run_key = f"session:{session}" if session else f"request:{log['request_id']}"
            if run_key not in runs:
                runs.add(run_key)
                rows.append((run_row(log, run_key), record))
            rows.append((task_row(log, derived_id("litellm:run", run_key)), record))
    outcome = ForeignImport(write_rows(rows, url) if rows else transfer.ImportSummary())
    outcome.summary.rejected = sorted(
        outcome.summary.rejected + bad, key=lambda r: (r.path, r.line)
    )
    return outcome
