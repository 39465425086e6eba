"""Langfuse exports: traces and observations (docs/imports.md has the field mapping).

Accepted shapes, in .json / .jsonl / .csv, traces and observations in the same or separate
files: the public API / UI export (camelCase: traceId, startTime, usageDetails, ...), and
the blob-storage export (snake_case: trace_id, start_time, usage_details, ...; the
enriched `observations_v2` rows carry user_id / session_id / trace_name themselves). A
trace with an `observations` array (GET /api/public/traces/{id}) is read as both.

A trace, or all traces of one sessionId, becomes a run; a GENERATION or EMBEDDING
observation becomes a task; other observation types (SPAN, EVENT, TOOL, AGENT, ...) are
skipped and counted. Everything not mapped to a column is kept: the trace under the run's
metadata.langfuse, the observation under the task's response_metadata.langfuse. Ids are
derived from the Langfuse ids, so importing the same export twice writes nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

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

LLM_TYPES = ("GENERATION", "EMBEDDING")
_MAPPED = ("input", "output")  # kept in request_data / response_data instead of metadata


def _is_observation(fields: dict[str, Any]) -> bool:
    return "type" in fields and first(fields, "traceId", "trace_id") is not None


def _usage(obs: dict[str, Any]) -> dict[str, int]:
    """Token columns from usageDetails (additive keys: input, input_cached_tokens,
    cache_read_input_tokens, output, output_reasoning_tokens, total, ...), else the
    deprecated usage / promptTokens fields."""
    details = first(obs, "usageDetails", "usage_details")
    out: dict[str, int] = {}
    if isinstance(details, dict) and details:
        counts = {k: whole(v) for k, v in details.items() if whole(v) is not None}
        inputs = sum(v for k, v in counts.items() if "input" in k or k.startswith("cache_"))
        outputs = sum(v for k, v in counts.items() if "output" in k)
        cached = sum(v for k, v in counts.items() if "cache_read" in k or "cached" in k)
        written = sum(v for k, v in counts.items() if "cache_creation" in k or "cache_write" in k)
        reasoning = sum(v for k, v in counts.items() if "reasoning" in k)
        out = {"tokens_input": inputs, "tokens_output": outputs}
        if cached:
            out["tokens_cached_input"] = cached
        if written:
            out["tokens_cache_write"] = written
        if reasoning:
            out["tokens_reasoning"] = reasoning
        if counts.get("total") is not None:
            out["tokens_total"] = counts["total"]
        return out
    usage = obs.get("usage") if isinstance(obs.get("usage"), dict) else {}
    merged = {**obs, **usage}
    pairs = (
        ("tokens_input", first(merged, "input", "promptTokens")),
        ("tokens_output", first(merged, "output", "completionTokens")),
        ("tokens_total", first(merged, "total", "totalTokens")),
    )
    return {column: whole(value) for column, value in pairs if whole(value) is not None}


def _cost(obs: dict[str, Any]) -> Any:
    details = first(obs, "costDetails", "cost_details")
    if isinstance(details, dict) and details.get("total") is not None:
        return decimal(details["total"])
    return decimal(first(obs, "calculatedTotalCost", "totalPrice", "total_cost"))


def task_row(obs: dict[str, Any], run_id: Any, user_id: Any) -> dict[str, Any]:
    """Our task row of one Langfuse generation."""
    start = moment(first(obs, "startTime", "start_time"))
    end = moment(first(obs, "endTime", "end_time"))
    first_token = moment(first(obs, "completionStartTime", "completion_start_time"))
    failed = str(obs.get("level") or "").upper() == "ERROR"
    message = first(obs, "statusMessage", "status_message")
    row = {
        "type": "task",
        "run_id": run_id,
        "task_id": derived_id("langfuse:observation", obs["id"]),
        "user_id": user_id,
        "task_name": obs.get("name"),
        "endpoint": str(obs.get("type")).lower(),
        "provider": first(obs.get("metadata") or {}, "ls_provider", "provider")
        if isinstance(obs.get("metadata"), dict)
        else None,
        "model": first(obs, "model", "provided_model_name", "providedModelName"),
        "model_id": first(obs, "modelId", "internal_model_id", "internalModelId"),
        "request_data": {
            "input": obs.get("input"),
            "model_parameters": first(obs, "modelParameters", "model_parameters"),
        },
        "response_text": text_of(obs.get("output")),
        "response_data": {"output": obs.get("output")} if obs.get("output") is not None else None,
        "response_errors": [{"level": "ERROR", "message": message}] if failed else None,
        "response_complete": not failed,
        "response_metadata": {"langfuse": {k: v for k, v in obs.items() if k not in _MAPPED}},
        **_usage(obs),
        "cost": _cost(obs),
        "cost_source": "provider" if _cost(obs) is not None else None,
        "time_to_first_token": ms_between(start, first_token),
        "total_time": ms_between(start, end),
        "status": "failed" if failed else "completed",
        "created_at": start,
        "completed_at": end if not failed else None,
    }
    return {k: v for k, v in row.items() if v is not None}


def run_row(trace: dict[str, Any], run_key: str) -> dict[str, Any]:
    """Our run row of one Langfuse trace (or session)."""
    trace_input = trace.get("input")
    messages = trace_input if isinstance(trace_input, list) else []
    name = (
        trace.get("name")
        or trace.get("trace_name")
        or naming.name_from_messages([m for m in messages if isinstance(m, dict)])
    )
    tags = trace.get("tags") if isinstance(trace.get("tags"), list) else None
    row = {
        "type": "run",
        "id": derived_id("langfuse:run", run_key),
        "user_id": first(trace, "userId", "user_id"),
        "source_type": "custom",
        "source_id": run_key.split(":", 1)[1],
        "name": name or f"Langfuse {run_key}",
        "tags": tags,
        "is_starred": trace.get("bookmarked")
        if isinstance(trace.get("bookmarked"), bool)
        else None,
        "metadata": {"langfuse": {k: v for k, v in trace.items() if k != "observations"}},
        "created_at": moment(first(trace, "timestamp", "start_time", "startTime")),
    }
    return {k: v for k, v in row.items() if v is not None}


def _run_key(trace: dict[str, Any], trace_id: Any) -> str:
    session = first(trace, "sessionId", "session_id")
    return f"session:{session}" if session is not None else f"trace:{trace_id}"


def import_files(paths: Sequence[str | Path], url: str | None = None) -> ForeignImport:
    """Import Langfuse trace and observation exports (see the module docstring)."""
    traces: dict[Any, tuple[dict[str, Any], Record]] = {}
    observations: list[tuple[dict[str, Any], Record]] = []
    bad: list[transfer.Rejection] = []
    for path in paths:
        for record in read_records(Path(path)):
            fields = record.fields
            if fields is None or fields.get("id") is None:
                bad.append(transfer.Rejection(record.path, record.line, "not a Langfuse record"))
            elif _is_observation(fields):
                observations.append((fields, record))
            else:
                traces[fields["id"]] = (fields, record)
                for obs in fields.get("observations") or []:
                    if isinstance(obs, dict) and obs.get("id") is not None:
                        observations.append(({"traceId": fields["id"], **obs}, record))
    outcome = ForeignImport(transfer.ImportSummary())
    rows: list[tuple[dict[str, Any], Record]] = []
    runs_written: set[str] = set()
    for obs, record in observations:
        kind = str(obs.get("type")).upper()
        if kind not in LLM_TYPES:
            outcome.skipped += 1
            outcome.skipped_kinds[kind] = outcome.skipped_kinds.get(kind, 0) + 1
            continue
        trace_id = first(obs, "traceId", "trace_id")
        trace, trace_record = traces.get(
            trace_id, ({"id": trace_id, **_trace_context(obs)}, record)
        )
        run_key = _run_key(trace, trace_id)
        if run_key not in runs_written:
            runs_written.add(run_key)
            rows.append((run_row(trace, run_key), trace_record))
        run_id = derived_id("langfuse:run", run_key)
        rows.append((task_row(obs, run_id, first(trace, "userId", "user_id")), record))
    outcome.summary = write_rows(rows, url) if rows else outcome.summary
    outcome.summary.rejected = sorted(
        outcome.summary.rejected + bad, key=lambda r: (r.path, r.line)
    )
    return outcome


def _trace_context(obs: dict[str, Any]) -> dict[str, Any]:
    """Trace fields an enriched (observations_v2) row carries itself."""
    pairs = {
        "user_id": first(obs, "user_id", "userId"),
        "session_id": first(obs, "session_id", "sessionId"),
        "name": first(obs, "trace_name", "traceName"),
        "tags": first(obs, "trace_tags", "tags"),
        "timestamp": first(obs, "start_time", "startTime"),
    }
    return {k: v for k, v in pairs.items() if v is not None}
