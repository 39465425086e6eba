"""/v1/tasks: create (keyed by the caller's task_id), get, stream updates (debounced on the
server), complete, fail, cancel. Each mirrors the ingest.Tracker method of the same name,
run by the Tracker acting as the key's user that holds the task's debounce buffer: row-level
security decides (docs/access.md; a task follows its run: 404 when the key's user cannot
read it, 403 when they may read but not change it). Retries are no-ops, a late update after
a terminal status is ignored and reported, cost is computed as in Python when none is
given."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ingest.errors import NotFoundError, ValidationError
from ingest.sdk.provider_usage import normalize_usage
from ingest.server import models
from ingest.server.auth import current_user
from ingest.server.encoding import json_response
from ingest.server.state import ServerState

router = APIRouter(prefix="/v1/tasks", tags=["tasks"], responses=models.ERROR_RESPONSES)
User = Annotated[str, Depends(current_user)]


def _state(request: Request) -> ServerState:
    return request.app.state.server


def _taken(task_id: uuid.UUID) -> ValidationError:
    return ValidationError("task_id", f"{task_id} is taken by another user")


@router.post(
    "",
    response_model=models.Task,
    status_code=201,
    responses={200: {"model": models.Task, "description": "a retry: the stored task"}},
)
def create_task(body: models.TaskCreate, request: Request, user: User) -> Response:
    """Tracker.create_task in a run this key's user may change. A retry with the same
    task_id returns the stored task (200)."""
    fields = body.model_dump(exclude_none=True)
    task_id = fields.pop("task_id", None) or uuid.uuid4()
    run_id = fields.pop("run_id")
    with _state(request).tracker(user, task_id) as tracker:
        try:
            stored = tracker.get_task(task_id)
        except NotFoundError:
            stored = None
        if stored is None:
            try:
                row = tracker.create_task(run_id, task_id=task_id, user_id=user, **fields)
            except NotFoundError as missing:
                if missing.kind == "task":  # the id is a task this user cannot read
                    raise _taken(task_id) from None
                raise
            return json_response(row, 201)
    if stored["user_id"] not in (user, None):
        raise _taken(task_id)
    if stored["run_id"] != run_id:
        raise ValidationError("task_id", f"{task_id} already belongs to run {stored['run_id']}")
    return json_response(stored, 200)


@router.get("/{task_id}", response_model=models.Task)
def get_task(task_id: uuid.UUID, request: Request, user: User) -> Response:
    """Tracker.get_task (buffered streaming text not yet written is not included)."""
    with _state(request).tracker(user, task_id) as tracker:
        row = tracker.get_task(task_id)
    return json_response(row)


@router.post("/{task_id}/updates", response_model=models.TaskUpdateResult)
def update_task(
    task_id: uuid.UUID, body: models.TaskUpdateBody, request: Request, user: User
) -> Response:
    """Tracker.update_task: response_text is the full text so far. At most one write per
    task per debounce interval; the rest is buffered and written by the server shortly.
    After the task finished the update is ignored: `ignored: true` and its final status."""
    fields = body.model_dump(exclude_none=True)
    text = fields.pop("response_text", None)
    status = fields.pop("status", None)
    with _state(request).tracker(user, task_id) as tracker:
        result = tracker.update_task(task_id, text, status=status, **fields)
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
    fields = body.model_dump(exclude_none=True)
    _usage(fields)
    text = fields.pop("response_text", None)
    with _state(request).tracker(user, task_id) as tracker:
        row = tracker.complete_task(task_id, text, **fields)
    return json_response(row)


@router.post("/{task_id}/fail", response_model=models.Task)
def fail_task(task_id: uuid.UUID, body: models.TaskFail, request: Request, user: User) -> Response:
    """Tracker.fail_task: error appended to response_errors."""
    fields = body.model_dump(exclude_none=True)
    _usage(fields)
    error = fields.pop("error", None)
    with _state(request).tracker(user, task_id) as tracker:
        row = tracker.fail_task(task_id, error, **fields)
    return json_response(row)


@router.post("/{task_id}/cancel", response_model=models.Task)
def cancel_task(
    task_id: uuid.UUID, body: models.TaskCancel, request: Request, user: User
) -> Response:
    """Tracker.cancel_task: reason kept as response_metadata.cancel_reason."""
    fields = body.model_dump(exclude_none=True)
    _usage(fields)
    reason = fields.pop("reason", None)
    with _state(request).tracker(user, task_id) as tracker:
        row = tracker.cancel_task(task_id, reason, **fields)
    return json_response(row)
