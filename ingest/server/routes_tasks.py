"""/v1/tasks: create (keyed by the caller's task_id), get, stream updates (debounced on the
server), complete, fail, cancel. Each mirrors the ingest.Tracker method of the same name:
retries are no-ops, a late update after a terminal status is ignored and reported, cost is
computed as in Python when none is given."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ingest.errors import ValidationError
from ingest.server import models
from ingest.server.auth import current_user
from ingest.server.encoding import json_response
from ingest.server.state import ServerState
from ingest.usage import normalize_usage

router = APIRouter(prefix="/v1/tasks", tags=["tasks"], responses=models.ERROR_RESPONSES)
User = Annotated[str, Depends(current_user)]


def _state(request: Request) -> ServerState:
    return request.app.state.server


@router.post(
    "",
    response_model=models.Task,
    status_code=201,
    responses={200: {"model": models.Task, "description": "a retry: the stored task"}},
)
def create_task(body: models.TaskCreate, request: Request, user: User) -> Response:
    """Tracker.create_task. A retry with the same task_id returns the stored task (200)."""
    state = _state(request)
    state.require_run(user, body.run_id)
    fields = body.model_dump(exclude_none=True)
    task_id = fields.pop("task_id", None) or uuid.uuid4()
    run_id = fields.pop("run_id")
    tracker = state.tracker_for(task_id)
    owner = state.task_owner(task_id)
    if owner is not None:
        if owner != user:
            raise ValidationError("task_id", f"{task_id} is taken by another user")
        row = tracker.get_task(task_id)
        if row["run_id"] != run_id:
            raise ValidationError("task_id", f"{task_id} already belongs to run {row['run_id']}")
        return json_response(row, 200)
    row = tracker.create_task(run_id, task_id=task_id, user_id=user, **fields)
    state.remember_task(row["task_id"], row["user_id"])
    return json_response(row, 201)


@router.get("/{task_id}", response_model=models.Task)
def get_task(task_id: uuid.UUID, request: Request, user: User) -> Response:
    """Tracker.get_task (buffered streaming text not yet written is not included)."""
    state = _state(request)
    state.require_task(user, task_id)
    return json_response(state.tracker_for(task_id).get_task(task_id))


@router.post("/{task_id}/updates", response_model=models.TaskUpdateResult)
def update_task(
    task_id: uuid.UUID, body: models.TaskUpdateBody, request: Request, user: User
) -> Response:
    """Tracker.update_task: response_text is the full text so far. At most one write per
    task per debounce interval; the rest is buffered and written by the server shortly.
    After the task finished the update is ignored: `ignored: true` and its final status."""
    state = _state(request)
    state.require_task(user, task_id)
    fields = body.model_dump(exclude_none=True)
    text = fields.pop("response_text", None)
    status = fields.pop("status", None)
    result = state.tracker_for(task_id).update_task(task_id, text, status=status, **fields)
    return json_response(
        {
            "task_id": result.task_id,
            "written": result.written,
            "ignored": result.ignored,
            "status": result.status,
        }
    )


def _usage(fields: dict[str, Any]) -> None:
    """Check `usage` now (ValidationError on field usage) so a bad one writes nothing."""
    if fields.get("usage") is not None:
        normalize_usage(fields["usage"])


@router.post("/{task_id}/complete", response_model=models.Task)
def complete_task(
    task_id: uuid.UUID, body: models.TaskComplete, request: Request, user: User
) -> Response:
    """Tracker.complete_task; completing twice changes nothing."""
    state = _state(request)
    state.require_task(user, task_id)
    fields = body.model_dump(exclude_none=True)
    _usage(fields)
    text = fields.pop("response_text", None)
    return json_response(state.tracker_for(task_id).complete_task(task_id, text, **fields))


@router.post("/{task_id}/fail", response_model=models.Task)
def fail_task(task_id: uuid.UUID, body: models.TaskFail, request: Request, user: User) -> Response:
    """Tracker.fail_task: error appended to response_errors."""
    state = _state(request)
    state.require_task(user, task_id)
    fields = body.model_dump(exclude_none=True)
    _usage(fields)
    error = fields.pop("error", None)
    return json_response(state.tracker_for(task_id).fail_task(task_id, error, **fields))


@router.post("/{task_id}/cancel", response_model=models.Task)
def cancel_task(
    task_id: uuid.UUID, body: models.TaskCancel, request: Request, user: User
) -> Response:
    """Tracker.cancel_task: reason kept as response_metadata.cancel_reason."""
    state = _state(request)
    state.require_task(user, task_id)
    fields = body.model_dump(exclude_none=True)
    _usage(fields)
    reason = fields.pop("reason", None)
    return json_response(state.tracker_for(task_id).cancel_task(task_id, reason, **fields))
