"""Running an evaluator over tasks (docs/quality.md): offline over a window, `ai-runs eval
score`, and the steps the online worker shares (ingest.tracking.online_eval).
SQL: ingest/tracking/sql/evaluation.sql.

An evaluator is a rule (ingest.tracking.rules) or an LLM judge (ingest.tracking.judge):
it has an `evaluator` name, a `version`, the `score_name` it writes, a `source` (`rule`,
`model`), `reads_request` (whether it reads the task's request), a `scale` (ScoreScale:
data type and bounds, declared in ai_evaluators so a score outside it is refused whichever
way it comes), `skip_done` (offline, skip the tasks it has already scored), `batch` (tasks
per transaction) and `evaluate(task)`: (value, comment),
None to skip the task, or EvaluatorError. A judge also has `session(url)`, the tracked
client its calls go through.

Per task and evaluator version there is one score (upsert), or one error row in
ai_eval_errors (`answer`: an unreadable or out-of-range answer, kept and not retried;
`provider`: an outage after the bounded retries, tried again by the next pass and removed
when the task scores). Tasks of evaluations (service `evaluation`) are never evaluated.
Everything runs as the owner (a trusted operator).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row

from ingest.errors import ValidationError
from ingest.store import database, sqlfiles
from ingest.store.score_checks import ScoreScale, refused_write, validate_score

MAX_ERROR = 4000  # characters of an evaluator error kept


class EvaluatorError(Exception):
    """An evaluator could not score a task: kind `answer` (not retried) or `provider`
    (retried by a later pass); attempts: the calls made."""

    def __init__(self, kind: str, message: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.kind = kind
        self.attempts = attempts


class Evaluator(Protocol):
    """What a rule and a judge have in common (see the module docstring)."""

    evaluator: str
    version: str
    score_name: str
    source: str
    scale: ScoreScale
    skip_done: bool
    batch: int
    reads_request: bool

    def evaluate(self, task: dict[str, Any]) -> tuple[Any, str | None] | None: ...


@dataclass
class EvalOutcome:
    """What one pass did: tasks read, scores written (new or replaced), tasks skipped (the
    rule does not apply, already done, or left out of the sample), errors recorded."""

    tasks: int = 0
    written: int = 0
    replaced: int = 0
    skipped: int = 0
    errors: int = 0

    def add(self, other: EvalOutcome) -> None:
        for name in ("tasks", "written", "replaced", "skipped", "errors"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def score_tasks(
    evaluator: Evaluator,
    since: datetime,
    until: datetime | None = None,
    *,
    url: str | None = None,
    models: tuple[str, ...] = (),
    threads: int = 1,
) -> EvalOutcome:
    """Run `evaluator` over the finished tasks created in [since, until) (of `models` when
    given), `batch` tasks per transaction; see the module docstring. threads: tasks
    evaluated at once (a judge's calls; a rule runs in the caller's thread)."""
    outcome = EvalOutcome()
    url = url or database.database_url()
    with session_of(evaluator, url), psycopg.connect(url, row_factory=dict_row) as conn:
        declare(conn, evaluator)
        for batch in _offline_batches(conn, evaluator, since, until, models):
            done_ids = done_tasks(conn, evaluator, batch) if evaluator.skip_done else set()
            todo = [t for t in batch if t["task_id"] not in done_ids]
            results = evaluate_tasks(evaluator, todo, threads=threads)
            with conn.transaction():
                done = store_results(conn, evaluator, results)
            done.tasks, done.skipped = len(batch), done.skipped + len(batch) - len(todo)
            outcome.add(done)
    return outcome


def session_of(evaluator: Evaluator, url: str) -> contextlib.AbstractContextManager[Any]:
    """The evaluator's session (a judge's tracked client), or nothing for a rule."""
    session = getattr(evaluator, "session", None)
    return session(url) if session is not None else contextlib.nullcontext()


def declare(conn: psycopg.Connection, evaluator: Evaluator) -> None:
    """Record the evaluator version's score name, data type and bounds (ai_evaluators)."""
    scale = evaluator.scale
    settings = getattr(evaluator, "declared_settings", None) or getattr(evaluator, "settings", {})
    conn.execute(
        _queries()["declare_evaluator"].psycopg,
        {
            "evaluator": evaluator.evaluator, "evaluator_version": evaluator.version,
            "name": evaluator.score_name, "data_type": scale.data_type, "min_value": scale.low,
            "max_value": scale.high, "settings": json.dumps(settings, default=str),
        },
    )  # fmt: skip
    conn.commit()


def done_tasks(
    conn: psycopg.Connection, evaluator: Evaluator, tasks: list[dict[str, Any]]
) -> set[uuid.UUID]:
    """The task_ids of `tasks` the evaluator version is done with: scored, or an answer it
    could not read (not retried)."""
    if not tasks:
        return set()
    params = {"task_ids": [t["task_id"] for t in tasks], "evaluator": evaluator.evaluator,
              "evaluator_version": evaluator.version}  # fmt: skip
    rows = conn.execute(_queries()["done_tasks"].psycopg, params).fetchall()
    return {row["task_id"] for row in rows}


def evaluate_tasks(
    evaluator: Evaluator, tasks: list[dict[str, Any]], *, threads: int = 1
) -> list[tuple[dict[str, Any], Any]]:
    """(task, result) per task, in order: result is a checked score's columns, None
    (skipped), or an EvaluatorError."""
    if threads <= 1 or len(tasks) <= 1:
        return [(task, _evaluate_one(evaluator, task)) for task in tasks]
    with ThreadPoolExecutor(min(threads, len(tasks))) as pool:
        return list(zip(tasks, pool.map(lambda t: _evaluate_one(evaluator, t), tasks), strict=True))


def _evaluate_one(evaluator: Evaluator, task: dict[str, Any]) -> Any:
    try:
        verdict = evaluator.evaluate(task)
    except EvaluatorError as error:
        return error
    if verdict is None:
        return None
    value, comment = verdict
    fields = {
        "name": evaluator.score_name, "value": value, "task_id": task["task_id"],
        "run_id": task["run_id"], "source": evaluator.source, "comment": comment,
        "evaluator": evaluator.evaluator, "evaluator_version": evaluator.version,
    }  # fmt: skip
    try:
        return evaluator.scale.check(validate_score(fields))
    except ValidationError as error:
        return EvaluatorError("answer", f"{error.field}: {error.problem}")


def store_results(
    conn: psycopg.Connection, evaluator: Evaluator, results: list[tuple[dict[str, Any], Any]]
) -> EvalOutcome:
    """Write the scores and errors of `results` in the caller's transaction."""
    queries = _queries()
    scores = [result for _task, result in results if isinstance(result, dict)]
    errors = [
        _error_row(evaluator, task, result)
        for task, result in results if isinstance(result, EvaluatorError)
    ]  # fmt: skip
    outcome = EvalOutcome(skipped=sum(result is None for _task, result in results))
    outcome.errors = len(errors)
    with conn.cursor() as cur:
        if errors:
            cur.executemany(queries["record_eval_error"].psycopg, errors)
        if scores:
            inserted = _upsert_scores(cur, queries["upsert_scores"].psycopg, scores)
            outcome.written, outcome.replaced = len(scores), len(scores) - inserted
        if scores and evaluator.skip_done:  # a task scored at last: its outage error goes
            cleared = [{k: s[k] for k in ("task_id", "evaluator", "evaluator_version")}
                       for s in scores]  # fmt: skip
            cur.executemany(queries["clear_eval_error"].psycopg, cleared)
    return outcome


def _upsert_scores(cur: psycopg.Cursor, query: str, scores: list[dict[str, Any]]) -> int:
    """Upsert the scores in one statement; the number that were new."""
    try:
        cur.execute(query, {"scores": json.dumps(scores, default=str)})
    except psycopg.errors.CheckViolation as error:
        raise refused_write(error) from None
    return sum(1 for row in cur.fetchall() if row["inserted"])


def _error_row(evaluator: Evaluator, task: dict[str, Any], error: EvaluatorError) -> dict:
    return {
        "run_id": task["run_id"], "task_id": task["task_id"], "evaluator": evaluator.evaluator,
        "evaluator_version": evaluator.version, "kind": error.kind,
        "error": str(error)[:MAX_ERROR] or type(error).__name__, "attempts": error.attempts,
    }  # fmt: skip


def eval_errors(evaluator: str, version: str, *, url: str | None = None) -> list[dict[str, Any]]:
    """The recorded errors of an evaluator version (as the owner), oldest first."""
    with psycopg.connect(url or database.database_url(), row_factory=dict_row) as conn:
        params = {"evaluator": evaluator, "evaluator_version": version}
        return conn.execute(_queries()["eval_errors_of"].psycopg, params).fetchall()


def _offline_batches(
    conn: psycopg.Connection,
    evaluator: Evaluator,
    since: datetime,
    until: datetime | None,
    models: tuple[str, ...],
) -> Iterator[list[dict[str, Any]]]:
    """Finished tasks in created_at order, `batch` at a time (keyset pagination)."""
    query = _queries()["offline_tasks"].psycopg
    after: tuple[Any, uuid.UUID | None] = (since, None)
    while True:
        params = {
            "since": since, "until": until, "models": list(models), "after_at": after[0],
            "after_id": after[1], "limit": evaluator.batch, "evaluator": evaluator.evaluator,
            "evaluator_version": evaluator.version, "with_request": evaluator.reads_request,
        }  # fmt: skip
        rows = conn.execute(query, params).fetchall()
        conn.commit()
        if not rows:
            return
        yield rows
        after = (rows[-1]["created_at"], rows[-1]["id"])


def _queries() -> dict[str, sqlfiles.Query]:
    return sqlfiles.beside(__file__)
