"""Scores written as the owner inside another write's transaction (docs/quality.md): the
scores of POST /v1/batch, in the transaction of its runs and tasks, and the scores of OTLP
GenAI evaluation events. SQL: ingest/server/sql/scores.sql.

Each score is authored by the key's user, who is named as the viewer in the transaction;
its target (task or run) must be one that user may read (what row-level security would
say, checked by the query since the owner is not subject to it), else NotFoundError. A
name used with another data type is a ValidationError naming `<where>.data_type`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ingest.access.viewer import name_viewer
from ingest.errors import NotFoundError, ValidationError
from ingest.store import sqlfiles
from ingest.store.score_checks import refused_write


def write_scores(
    conn: psycopg.Connection, user: str, scores: Sequence[dict[str, Any]], where: str = "scores"
) -> dict[str, int]:
    """Write validated scores (ingest.store.score_checks.validate_score, author `user`) in
    the transaction open on `conn`; {"inserted", "duplicates"} (duplicates: replaced)."""
    queries = sqlfiles.beside(__file__)
    counts = {"inserted": 0, "duplicates": 0}
    if not scores:
        return counts
    name_viewer(conn, user)
    with conn.cursor(row_factory=dict_row) as cur:
        for i, fields in enumerate(scores):
            row = dict(fields, run_id=_target_run(cur, queries, fields, f"{where}[{i}]"))
            try:
                with conn.transaction():
                    written = cur.execute(queries["write_score"].psycopg, row).fetchone()
            except psycopg.errors.CheckViolation as error:
                refused = refused_write(error)
                raise ValidationError(
                    f"{where}[{i}].{refused.field}", refused.problem, refused.allowed
                ) from None
            counts["inserted" if written["inserted"] else "duplicates"] += 1
    return counts


def _target_run(cur: psycopg.Cursor, queries: Any, fields: dict[str, Any], where: str) -> Any:
    """The run the score belongs to (its task's, for a task's score)."""
    params = {"task_id": fields["task_id"], "run_id": fields["run_id"]}
    found = cur.execute(queries["score_target"].psycopg, params).fetchone()
    if found is None:
        if fields["task_id"] is not None:
            raise NotFoundError("task", fields["task_id"])
        raise NotFoundError("run", fields["run_id"])
    if fields["run_id"] not in (None, found["run_id"]):
        raise ValidationError(
            f"{where}.run_id", f"task {fields['task_id']} belongs to run {found['run_id']}"
        )
    return found["run_id"]
