"""Langfuse scores (docs/imports.md, "Langfuse: scores"): the score records of a Langfuse
export become our scores (docs/quality.md), after the traces and observations of the same
import are written.

A score record is recognised by its `dataType` (`data_type`), or a `value` with a Langfuse
`source`; a trace's `scores` array (GET /api/public/traces/{id}) is read as well. Its
target: the task of its `observationId` (a generation or embedding imported now or
before), else the run of its `traceId` (or of its `sessionId`). A score whose target is
not stored, or of a data type we do not keep (Langfuse's TEXT, CORRECTION), is skipped
and counted; one that cannot be stored is a rejected line.

Mapping: NUMERIC -> numeric `value`; BOOLEAN -> boolean (value 1/0); CATEGORICAL ->
categorical, the category from `stringValue`. `source` API -> api, ANNOTATION -> human
(author `langfuse:<authorUserId>`), EVAL -> model (evaluator `langfuse:eval`); `comment`
kept. Characters our names do not allow become `_`. Scores are written by the owner,
1,000 per transaction; importing the same export again replaces them with the same values
(one score per task or run, name, evaluator and author), so nothing is counted twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ingest.errors import ValidationError
from ingest.store import database, sqlfiles
from ingest.store.score_checks import MAX_COMMENT, NAME_PATTERN, validate_score
from ingest.tracking import Tracker
from ingest.transfer import import_export as transfer
from ingest.transfer.foreign.records import Record, derived_id, first

SOURCES = {"API": "api", "ANNOTATION": "human", "EVAL": "model"}
DATA_TYPES = {"NUMERIC": "numeric", "BOOLEAN": "boolean", "CATEGORICAL": "categorical"}
CHUNK = 1000
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_.:/-]")


@dataclass
class ScoreImport:
    """Scores inserted, replaced (already there: a re-import), skipped (per reason)."""

    inserted: int = 0
    replaced: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def text(self) -> str:
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(self.skipped.items()))
        line = f"scores: {self.inserted:,} inserted, {self.replaced:,} replaced"
        return line + (f", {sum(self.skipped.values()):,} skipped ({reasons})" if reasons else "")


def is_score(fields: dict[str, Any]) -> bool:
    """A Langfuse score record (not a trace or an observation)."""
    if "type" in fields:
        return False
    if first(fields, "dataType", "data_type") is not None:
        return True
    return "value" in fields and str(fields.get("source") or "").upper() in SOURCES


def import_scores(
    scores: list[tuple[dict[str, Any], Record]],
    run_key_of: Callable[[Any], str | None],
    url: str | None,
    rejected: list[transfer.Rejection],
) -> ScoreImport:
    """Write the scores (see the module docstring). run_key_of(trace_id): the run key
    (`trace:<id>`, `session:<id>`) of a trace of this import, None when not in it.
    Unstorable scores are appended to `rejected`."""
    outcome = ScoreImport()
    pending: list[tuple[dict[str, Any], Record, Any, Any]] = []
    for score, record in scores:
        kind = str(first(score, "dataType", "data_type") or "").upper()
        if kind and kind not in DATA_TYPES:
            outcome.skip(f"data type {kind}")
            continue
        task_id, run_id = _target(score, run_key_of)
        if task_id is None and run_id is None:
            outcome.skip("no trace")
            continue
        pending.append((score, record, task_id, run_id))
    stored = _stored_targets(url, pending)
    ready: list[tuple[dict[str, Any], Record]] = []
    for score, record, task_id, run_id in pending:
        run = stored.get(str(task_id if task_id is not None else run_id))
        if run is None:
            outcome.skip(
                "observation not imported" if task_id is not None else "trace not imported"
            )
            continue
        try:
            ready.append((score_row(score, task_id, run), record))
        except ValidationError as error:
            rejected.append(transfer.Rejection(record.path, record.line, f"score {error}"))
    with Tracker(url) as tracker:
        for start in range(0, len(ready), CHUNK):
            _write(tracker, ready[start : start + CHUNK], outcome, rejected)
    return outcome


def _target(score: dict[str, Any], run_key_of: Callable[[Any], str | None]) -> tuple[Any, Any]:
    """(task id, run id) the score names, either may be None."""
    observation = first(score, "observationId", "observation_id")
    if observation is not None:
        return derived_id("langfuse:observation", observation), None
    trace = first(score, "traceId", "trace_id")
    session = first(score, "sessionId", "session_id")
    key = run_key_of(trace) if trace is not None else None
    if key is None and trace is not None:
        key = f"trace:{trace}"
    if key is None and session is not None:
        key = f"session:{session}"
    return None, None if key is None else derived_id("langfuse:run", key)


def _stored_targets(url: str | None, pending: list[tuple]) -> dict[str, Any]:
    """id (text) -> run id of the stored tasks and runs the scores name."""
    task_ids = sorted({str(t) for _, _, t, _ in pending if t is not None})
    run_ids = sorted({str(r) for _, _, t, r in pending if t is None})
    if not task_ids and not run_ids:
        return {}
    query = sqlfiles.beside(__file__)["score_targets"].psycopg
    with database.connect(url) as conn:
        rows = conn.execute(query, {"task_ids": task_ids, "run_ids": run_ids}).fetchall()
    return {row["id"]: row["run_id"] for row in rows}


def score_row(score: dict[str, Any], task_id: Any, run_id: Any) -> dict[str, Any]:
    """Our validated score of one Langfuse score (ValidationError when it cannot be)."""
    kind = str(first(score, "dataType", "data_type") or "").upper()
    value, text = score.get("value"), first(score, "stringValue", "string_value")
    data_type = DATA_TYPES.get(kind) or ("categorical" if value is None and text else "numeric")
    source = SOURCES.get(str(score.get("source") or "API").upper(), "api")
    author = first(score, "authorUserId", "author_user_id")
    comment = score.get("comment")
    return validate_score(
        {
            "name": _name(score.get("name")),
            "data_type": data_type,
            "value": text if data_type == "categorical" else value,
            "task_id": task_id,
            "run_id": run_id,
            "source": source,
            "comment": None if comment is None else str(comment)[:MAX_COMMENT],
            "author": f"langfuse:{author or 'annotator'}" if source == "human" else "langfuse",
            "evaluator": "langfuse:eval" if source == "model" else "",
        }
    )


def _name(name: Any) -> str:
    """A Langfuse score name as our names allow (other characters become `_`)."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("name", "a Langfuse score needs its name")
    cleaned = _NOT_IN_NAME.sub("_", name.strip())[:100]
    if not NAME_PATTERN.fullmatch(cleaned):
        cleaned = ("s" + cleaned)[:100]
    return cleaned


def _write(
    tracker: Tracker,
    chunk: list[tuple[dict[str, Any], Record]],
    outcome: ScoreImport,
    rejected: list[transfer.Rejection],
) -> None:
    """One transaction for the chunk; when one score of it is refused (a name used with
    another data type), each on its own, the refused ones rejected at their line."""
    try:
        written = tracker.write_scores([row for row, _ in chunk])
    except ValidationError:
        written = []
        for row, record in chunk:
            try:
                written.extend(tracker.write_scores([row]))
            except ValidationError as error:
                rejected.append(transfer.Rejection(record.path, record.line, f"score {error}"))
    for row in written:
        if row["inserted"]:
            outcome.inserted += 1
        else:
            outcome.replaced += 1
