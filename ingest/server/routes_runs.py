"""/v1/runs: create, list (filters + keyset pages), get, message, rename/star/tag, archive,
delete, restore, fork. Each mirrors the ingest.Tracker method of the same name; a key's user
sees and changes only their own runs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from ingest.errors import ValidationError
from ingest.server import models
from ingest.server.auth import current_user
from ingest.server.encoding import json_response
from ingest.server.state import ServerState
from ingest.validation import validate_run

router = APIRouter(prefix="/v1/runs", tags=["runs"], responses=models.ERROR_RESPONSES)
User = Annotated[str, Depends(current_user)]


def _state(request: Request) -> ServerState:
    return request.app.state.server


@router.post(
    "",
    response_model=models.Run,
    status_code=201,
    responses={200: {"model": models.Run, "description": "a retry: the stored run"}},
)
def create_run(body: models.RunCreate, request: Request, user: User) -> Response:
    """Tracker.create_run. With run_id, a retry returns the existing run (200)."""
    state = _state(request)
    fields = body.model_dump(exclude_none=True)
    run_id = fields.get("run_id")
    if run_id is not None:
        owners = state.run_owners([run_id])
        if run_id in owners:
            if owners[run_id] != user:
                raise ValidationError("run_id", f"{run_id} is taken by another user")
            row = state.tracker_for(run_id).get_run(run_id, with_tasks=False)
            row.pop("messages", None)
            return json_response(row, 200)
    source_type = fields.pop("source_type")
    tracker = state.tracker_for(run_id or uuid.uuid4())
    return json_response(tracker.create_run(source_type, user_id=user, **fields), 201)


@router.get("", response_model=models.RunPageBody)
def list_runs(
    request: Request,
    user: User,
    source_type: Annotated[list[models.SourceType] | None, Query()] = None,
    source_id: str | None = None,
    status: Annotated[list[models.RunStatus | Literal["all"]] | None, Query()] = None,
    starred: bool | None = None,
    tags: Annotated[list[str] | None, Query()] = None,
    tags_match: Literal["any", "all"] = "any",
    search: str | None = None,
    created_from: str | None = None,
    created_to: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    cursor: str | None = None,
) -> Response:
    """Tracker.list_runs for this key's user: newest first; status defaults to active
    (`all` for every status); pass `next_cursor` back as `cursor` for the next page."""
    statuses: list[str] | None = ["active"] if not status else list(status)
    if statuses and "all" in statuses:
        statuses = None
    page = (
        _state(request)
        .trackers[0]
        .list_runs(
            source_type=source_type,
            source_id=source_id,
            status=statuses,
            starred=starred,
            tags=tags,
            tags_match=tags_match,
            user_id=user,
            search=search,
            created_from=created_from,
            created_to=created_to,
            limit=limit,
            cursor=cursor,
        )
    )
    return json_response({"rows": page.rows, "next_cursor": page.next_cursor, "total": page.total})


@router.get("/{run_id}", response_model=models.Run)
def get_run(run_id: uuid.UUID, request: Request, user: User, with_tasks: bool = True) -> Response:
    """Tracker.get_run: every column, messages, and (unless with_tasks=false) its tasks."""
    state = _state(request)
    state.require_run(user, run_id)
    return json_response(state.tracker_for(run_id).get_run(run_id, with_tasks=with_tasks))


@router.post("/{run_id}/messages", response_model=models.MessageAdded, status_code=201)
def add_message(
    run_id: uuid.UUID, body: models.MessageCreate, request: Request, user: User
) -> Response:
    """Tracker.add_message: append one message atomically."""
    state = _state(request)
    state.require_run(user, run_id)
    fields = body.model_dump(exclude_none=True)
    role = fields.pop("role")
    content = fields.pop("content", None)
    result = state.tracker_for(run_id).add_message(run_id, role, content, **fields)
    return json_response(result, 201)


@router.patch("/{run_id}", response_model=models.Run)
def update_run(run_id: uuid.UUID, body: models.RunPatch, request: Request, user: User) -> Response:
    """Tracker.rename_run (name), star_run (is_starred), set_tags (tags), in that order."""
    state = _state(request)
    state.require_run(user, run_id)
    tracker = state.tracker_for(run_id)
    if body.name is None and body.is_starred is None and body.tags is None:
        raise ValidationError("body", "give at least one field", ["name", "is_starred", "tags"])
    # Validate every field before writing any, so a bad one writes nothing.
    if body.name is not None and not body.name.strip():
        raise ValidationError("name", f"must be a non-empty string, got {body.name!r}")
    if body.tags is not None:
        validate_run({"tags": body.tags}, partial=True)
    row = None
    if body.name is not None:
        row = tracker.rename_run(run_id, body.name)
    if body.is_starred is not None:
        row = tracker.star_run(run_id, body.is_starred)
    if body.tags is not None:
        row = tracker.set_tags(run_id, body.tags)
    return json_response(row)


def _status_action(name: str, doc: str) -> Callable[..., Response]:
    """A route that sets a run's status through Tracker.<name>_run."""

    def action(run_id: uuid.UUID, request: Request, user: User) -> Response:
        state = _state(request)
        state.require_run(user, run_id)
        return json_response(getattr(state.tracker_for(run_id), f"{name}_run")(run_id))

    action.__name__ = f"{name}_run"
    action.__doc__ = doc
    return action


router.post("/{run_id}/archive", response_model=models.Run)(
    _status_action("archive", "Tracker.archive_run: status archived.")
)
router.post("/{run_id}/restore", response_model=models.Run)(
    _status_action("restore", "Tracker.restore_run: status active again.")
)
router.delete("/{run_id}", response_model=models.Run)(
    _status_action("delete", "Tracker.delete_run: soft delete (status deleted; restorable).")
)


@router.post("/{run_id}/fork", response_model=models.Run, status_code=201)
def fork_run(run_id: uuid.UUID, body: models.ForkBody, request: Request, user: User) -> Response:
    """Tracker.fork_run: a new run with messages 0..at_message, owned by this key's user."""
    state = _state(request)
    state.require_run(user, run_id)
    row = state.tracker_for(run_id).fork_run(run_id, body.at_message, name=body.name, user_id=user)
    return json_response(row, 201)
