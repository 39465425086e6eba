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
Score records (and a trace's `scores` array) become scores of those tasks and runs
(ingest/transfer/foreign/langfuse_scores.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ingest.spend.pricing import BILLED_USAGE_KEY
from ingest.tracking import naming
from ingest.transfer import import_export as transfer
from ingest.transfer.foreign.langfuse_scores import import_scores, is_score
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


def _usage(obs: dict[str, Any]) -> dict[str, Any]:
    """Token columns from usageDetails, else the deprecated usage / promptTokens fields;
    with `billed_usage` (genai-prices usage values) when the 1-hour cache-write split is
    known (see `_details_usage`). A generation that failed has 0 counts that were never
    measured: they are left out (NULL). An embedding has no output tokens."""
    details = first(obs, "usageDetails", "usage_details")
    if isinstance(details, dict) and details:
        out = _details_usage({k: whole(v) for k, v in details.items() if whole(v) is not None})
    else:
        usage = obs.get("usage") if isinstance(obs.get("usage"), dict) else {}
        merged = {**obs, **usage}
        pairs = (
            ("tokens_input", first(merged, "input", "promptTokens")),
            ("tokens_output", first(merged, "output", "completionTokens")),
            ("tokens_total", first(merged, "total", "totalTokens")),
        )
        out = {column: whole(value) for column, value in pairs if whole(value) is not None}
    if _failed(obs):
        out = {k: v for k, v in out.items() if v != 0}
    if str(obs.get("type")).upper() == "EMBEDDING" and not out.get("tokens_output"):
        out.pop("tokens_output", None)
        if "tokens_input" in out:
            out.setdefault("tokens_total", out["tokens_input"])
    return out


# LangChain-Anthropic's split of cache writes by lifetime, as Langfuse's LangChain handler
# names it (input_token_details.ephemeral_*, prefixed with "input_").
_WRITE_5M = "input_ephemeral_5m_input_tokens"
_WRITE_1H = "input_ephemeral_1h_input_tokens"


def _details_usage(counts: dict[str, int]) -> dict[str, Any]:
    """Token columns of usageDetails, whose keys add up (input, input_cached_tokens,
    input_cache_read, output, output_reasoning_tokens, total, ...).

    Cache writes: keys with cache_creation / cache_write, or LangChain-Anthropic's
    ephemeral 5-minute and 1-hour split, which then replaces its generic cache_creation key
    (the same tokens). The split is also kept as `billed_usage` so that the price uses the
    1-hour rate. When `total` says more input than the keys add up to (Langfuse's handler
    subtracts both the generic key and the split from `input`, clipped at 0), the input is
    total - output."""
    split = {k: counts[k] for k in (_WRITE_5M, _WRITE_1H) if k in counts}
    if split:
        counts = {k: v for k, v in counts.items() if "cache_creation" not in k}
    inputs = sum(v for k, v in counts.items() if "input" in k or k.startswith("cache_"))
    outputs = sum(v for k, v in counts.items() if "output" in k)
    cached = sum(v for k, v in counts.items() if "cache_read" in k or "cached" in k)
    written = sum(v for k, v in counts.items() if "cache_write" in k or "cache_creation" in k)
    written += sum(split.values())
    reasoning = sum(v for k, v in counts.items() if "reasoning" in k)
    total = counts.get("total")
    if total is not None and total - outputs > inputs:
        inputs = total - outputs
    out: dict[str, Any] = {"tokens_input": inputs, "tokens_output": outputs}
    out |= {"tokens_cached_input": cached} if cached else {}
    out |= {"tokens_cache_write": written} if written else {}
    out |= {"tokens_reasoning": reasoning} if reasoning else {}
    out |= {"tokens_total": total} if total is not None else {}
    if split.get(_WRITE_1H):
        billed = {"input_tokens": inputs, "output_tokens": outputs, "cache_read_tokens": cached,
                  "cache_write_tokens": written, "cache_write_5m_tokens": split.get(_WRITE_5M, 0),
                  "cache_write_1h_tokens": split[_WRITE_1H]}  # fmt: skip
        out[BILLED_USAGE_KEY] = {k: v for k, v in billed.items() if v}
    return out


def _failed(obs: dict[str, Any]) -> bool:
    return str(obs.get("level") or "").upper() == "ERROR"


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
    failed = _failed(obs)
    message = first(obs, "statusMessage", "status_message")
    usage = _usage(obs)
    billed = usage.pop(BILLED_USAGE_KEY, None)
    kept = {"langfuse": {k: v for k, v in obs.items() if k not in _MAPPED}}
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
        "response_metadata": {**kept, BILLED_USAGE_KEY: billed} if billed else kept,
        **usage,
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
    scores: list[tuple[dict[str, Any], Record]] = []
    bad: list[transfer.Rejection] = []
    for path in paths:
        for record in read_records(Path(path)):
            fields = record.fields
            if fields is None or fields.get("id") is None:
                bad.append(transfer.Rejection(record.path, record.line, "not a Langfuse record"))
            elif _is_observation(fields):
                observations.append((fields, record))
            elif is_score(fields):
                scores.append((fields, record))
            else:
                traces[fields["id"]] = (fields, record)
                for obs in fields.get("observations") or []:
                    if isinstance(obs, dict) and obs.get("id") is not None:
                        observations.append(({"traceId": fields["id"], **obs}, record))
                for score in fields.get("scores") or []:
                    if isinstance(score, dict):
                        scores.append(({"traceId": fields["id"], **score}, record))
    outcome = ForeignImport(transfer.ImportSummary())
    rows: list[tuple[dict[str, Any], Record]] = []
    runs_written: set[str] = set()
    run_keys: dict[Any, str] = {}  # trace id -> its run's key
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
        run_key = run_keys[trace_id] = _run_key(trace, trace_id)
        if run_key not in runs_written:
            runs_written.add(run_key)
            rows.append((run_row(trace, run_key), trace_record))
        run_id = derived_id("langfuse:run", run_key)
        rows.append((task_row(obs, run_id, first(trace, "userId", "user_id")), record))
    outcome.summary = write_rows(rows, url) if rows else outcome.summary
    if scores:

        def run_key_of(trace_id: Any) -> str | None:
            if trace_id in run_keys:
                return run_keys[trace_id]
            return _run_key(traces[trace_id][0], trace_id) if trace_id in traces else None

        outcome.scores = import_scores(scores, run_key_of, url, bad)
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
