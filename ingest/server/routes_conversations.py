"""/v1/runs/{id}/resume: a run's conversation in OpenAI, Anthropic or Gemini shape with its
settings, variable values and broker values (Tracker.resume_run, docs/server.md), read as
the key's user: a run it cannot read answers 404, an unknown shape 422 listing the allowed
ones."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ingest.server import models
from ingest.server.auth import current_user
from ingest.server.encoding import json_response
from ingest.server.state import ServerState

router = APIRouter(prefix="/v1/runs", tags=["conversations"], responses=models.ERROR_RESPONSES)
User = Annotated[str, Depends(current_user)]


def _state(request: Request) -> ServerState:
    return request.app.state.server


@router.get("/{run_id}/resume")
def resume_run(run_id: uuid.UUID, request: Request, user: User, shape: str = "openai") -> Response:
    """Tracker.resume_run: {run_id, shape, messages, system, settings, variable_values,
    broker_values}; shape is openai (default), anthropic or gemini."""
    with _state(request).tracker(user, run_id) as tracker:
        return json_response(tracker.resume_run(run_id, shape))
