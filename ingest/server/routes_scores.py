"""/v1/scores: score a task or a run, and read the scores (docs/quality.md). Each mirrors
ingest.Tracker's `score` / `scores`, run by the Tracker acting as the key's user: row-level
security decides (404 when the key's user cannot read the task or run, 403 when the score is
not theirs to write). The author is the key's user. Writing the same (task or run, name,
evaluator, evaluator_version) again replaces the score: 200, where a new one is 201."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ingest.errors import ValidationError
from ingest.server import models
from ingest.server.auth import current_user
from ingest.server.encoding import json_response
from ingest.store.score_checks import validate_score

router = APIRouter(prefix="/v1/scores", tags=["scores"], responses=models.ERROR_RESPONSES)
User = Annotated[str, Depends(current_user)]


@router.post(
    "",
    response_model=models.Score,
    status_code=201,
    responses={200: {"model": models.Score, "description": "an existing score replaced"}},
)
def create_score(body: models.ScoreCreate, request: Request, user: User) -> Response:
    """Tracker.score as the key's user (the author)."""
    fields = validate_score({**body.model_dump(exclude_none=True), "author": user})
    with request.app.state.server.tracker(user, fields["task_id"] or fields["run_id"]) as tracker:
        row = tracker.write_scores([fields])[0]
    inserted = row.pop("inserted")
    return json_response(row, 201 if inserted else 200)


@router.get("", response_model=list[models.Score])
def list_scores(
    request: Request,
    user: User,
    task_id: uuid.UUID | None = None,
    run_id: uuid.UUID | None = None,
) -> Response:
    """Tracker.scores: of a task (task_id), or of a run and its tasks (run_id)."""
    if task_id is None and run_id is None:
        raise ValidationError("task_id", "give task_id or run_id")
    with request.app.state.server.tracker(user, task_id or run_id) as tracker:
        rows = tracker.scores(task_id=task_id, run_id=run_id, with_tasks=True)
    return json_response(rows)
