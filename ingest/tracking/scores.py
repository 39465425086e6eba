"""Score methods of `ingest.Tracker`: how good a task or a run was (docs/quality.md).
SQL: ingest/tracking/sql/scores.sql; what a valid score is: ingest.store.score_checks.

Row-level security decides (migration 0020): a viewer scores what they may read, as
themselves; a score by someone else (a rule, a model, an API client) needs the right to
change the run; a person's score is theirs to change. A task or run the viewer cannot read
is NotFoundError; a score the policies refuse is AccessDeniedError; nothing is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from ingest.errors import AccessDeniedError, NotFoundError, ValidationError
from ingest.store import sqlfiles
from ingest.store.score_checks import ScoreScale, refused_write, validate_score
from ingest.store.validation import parse_uuid


class ScoreMethods:
    """The score half of Tracker (see ingest.tracking.tracker for the shared contract)."""

    viewer: str | None
    user_id: str | None
    _queries: dict[str, sqlfiles.Query]
    _transaction: Callable[..., AbstractContextManager[psycopg.Connection]]
    _one: Callable[..., dict | None]

    def score(
        self,
        name: str,
        value: bool | float | str | None = None,
        *,
        task_id: uuid.UUID | str | None = None,
        run_id: uuid.UUID | str | None = None,
        label: str | None = None,
        data_type: str | None = None,
        source: str = "api",
        comment: str | None = None,
        author: str | None = None,
        evaluator: str = "",
        evaluator_version: str = "",
    ) -> dict[str, Any]:
        """Score a task (task_id: its application task_id) or a whole run (run_id only).

        value: True/False (boolean, stored as 1/0), a number (numeric), or a string (a
        category; or give `label`). source: human, rule, model or api. author defaults to
        the viewer (else the tracker's user_id). Scoring the same (task or run, name,
        evaluator, evaluator_version, author) again replaces the score. Returns the score
        row (docs/quality.md) with `inserted` False when it replaced one."""
        fields = validate_score(
            {
                "name": name, "value": value, "task_id": task_id, "run_id": run_id,
                "label": label, "data_type": data_type, "source": source, "comment": comment,
                "author": author if author is not None else (self.viewer or self.user_id),
                "evaluator": evaluator, "evaluator_version": evaluator_version,
            }
        )  # fmt: skip
        return self.write_scores([fields])[0]

    def write_scores(self, scores: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write already validated scores (ingest.store.score_checks.validate_score) in one
        transaction: all or none. The target of each is resolved (a task's run) and must be
        readable by the viewer, else NotFoundError naming it."""
        try:
            with self._transaction() as conn:
                return [self._write_score(conn, fields) for fields in scores]
        except psycopg.errors.CheckViolation as error:
            raise refused_write(error) from None

    def _write_score(self, conn: psycopg.Connection, fields: dict[str, Any]) -> dict[str, Any]:
        fields = dict(fields)
        if fields["task_id"] is not None:
            task = self._one(conn, "task_run", task_id=fields["task_id"])
            if task is None:
                raise NotFoundError("task", fields["task_id"])
            if fields["run_id"] not in (None, task["run_id"]):
                raise ValidationError(
                    "run_id", f"task {fields['task_id']} belongs to run {task['run_id']}"
                )
            fields["run_id"] = task["run_id"]
        elif self._one(conn, "run_visible", run_id=fields["run_id"]) is None:
            raise NotFoundError("run", fields["run_id"])
        try:
            with conn.transaction():
                row = self._one(conn, "upsert_score", **fields)
        except psycopg.errors.InsufficientPrivilege:
            raise AccessDeniedError(
                self.viewer,
                f"write score {fields['name']!r} by {fields['author'] or 'nobody'!r}",
                "a person writes their own scores; a score by another author needs the right "
                "to change the run, and a person's score is theirs to change",
                kind="task" if fields["task_id"] is not None else "run",
            ) from None
        assert row is not None
        return row

    def check_scales(self, scores: list[dict[str, Any]]) -> None:
        """ValidationError naming `scores[i].value` or `scores[i].data_type` for the first
        score that does not fit the scale its evaluator version declared (ai_evaluators,
        migration 0022): the write would refuse it too; this says so before any write."""
        pairs = {(s["evaluator"], s["evaluator_version"]) for s in scores if s["evaluator"]}
        if not pairs:
            return
        with self._transaction() as conn:
            query = self._queries["declared_scales"].psycopg
            rows = conn.execute(query, {"evaluators": [p[0] for p in pairs],
                                        "versions": [p[1] for p in pairs]}).fetchall()  # fmt: skip
        scales = {
            (r["evaluator"], r["evaluator_version"]):
            ScoreScale(r["data_type"], r["min_value"], r["max_value"]) for r in rows
        }  # fmt: skip
        for i, fields in enumerate(scores):
            scale = scales.get((fields["evaluator"], fields["evaluator_version"]))
            try:
                if scale is not None:
                    scale.check(fields)
            except ValidationError as error:
                field = f"scores[{i}].{error.field}"
                raise ValidationError(field, error.problem, error.allowed) from None

    def scores(
        self,
        *,
        task_id: uuid.UUID | str | None = None,
        run_id: uuid.UUID | str | None = None,
        with_tasks: bool = False,
    ) -> list[dict[str, Any]]:
        """The scores of a task (task_id) or of a run (run_id; its tasks' too when
        with_tasks), as far as the viewer may read them, oldest first."""
        if task_id is None and run_id is None:
            raise ValidationError("task_id", "give a task_id or a run_id")
        task = None if task_id is None else parse_uuid("task_id", task_id)
        run = None if run_id is None else parse_uuid("run_id", run_id)
        with self._transaction() as conn:
            query = self._queries["scores_of"].psycopg
            params = {"task_id": task, "run_id": run, "with_tasks": bool(with_tasks)}
            return conn.execute(query, params).fetchall()

    def delete_score(self, score_id: int) -> bool:
        """Remove a score: True when removed, False when there is none the viewer may read;
        AccessDeniedError when they may read it but not remove it (not theirs)."""
        if isinstance(score_id, bool) or not isinstance(score_id, int):
            raise ValidationError("score_id", f"must be an integer, got {score_id!r}")
        with self._transaction() as conn:
            if self._one(conn, "delete_score", id=score_id) is not None:
                return True
            if self._one(conn, "score_visible", id=score_id) is None:
                return False
        raise AccessDeniedError(
            self.viewer, f"remove score {score_id}", "a person's score is theirs to remove"
        )
