"""/v1/batch: many runs and tasks in one request at bulk speed (ingest/server/batch.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ingest.server import models
from ingest.server.auth import current_user
from ingest.server.batch import write_batch
from ingest.server.encoding import json_response

router = APIRouter(tags=["batch"], responses=models.ERROR_RESPONSES)


@router.post("/v1/batch", response_model=models.BatchResultBody)
def batch(
    body: models.BatchBody, request: Request, user: Annotated[str, Depends(current_user)]
) -> Response:
    """Write ai_runs and ai_tasks rows (column names as in docs/import-format.md) in one
    transaction, then `scores` (as POST /v1/scores takes them, by this key's user, in one
    transaction). Every row is checked first: one bad row is a 422 naming it
    (`tasks[3].status`) and nothing is written. Runs need their `id`; tasks their `run_id`
    and `task_id`; a row already stored is skipped (counted in `duplicates`; for scores:
    an existing score replaced)."""
    outcome = write_batch(request.app.state.server, user, body.runs, body.tasks, body.scores)
    counts = {"runs": outcome.runs, "tasks": outcome.tasks, "scores": outcome.scores}
    return json_response(counts)
