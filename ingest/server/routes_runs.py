"""/v1/runs: create, list (filters + keyset pages), get, message, rename/star/tag, archive,
delete, restore, fork. Each mirrors the ingest.Tracker method of the same name, run by a
Tracker acting as the key's user: row-level security decides what the key may read and
change (docs/access.md). A run it cannot read answers 404, one it may read but not change
403, and nothing is written either way."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from ingest.errors import NotFoundError, ValidationError
from ingest.server import models
from ingest.server.auth import current_user
from ingest.server.encoding import json_response
from ingest.server.state import ServerState
from ingest.store.validation import validate_run
from ingest.tracking import Tracker

router = APIRouter(prefix="/v1/runs", tags=["runs"], responses=models.ERROR_RESPONSES)
User = Annotated[str, Depends(current_user)]


def _state(request: Request) -> ServerState:
    return request.app.state.server


def _stored_run(tracker: Tracker, run_id: uuid.UUID) -> dict[str, Any] | None:
    """The run summary of run_id as the tracker's viewer sees it; None when invisible."""
    try:
        row = tracker.get_run(run_id, with_tasks=False)
    except NotFoundError:
        return None
    row.pop("messages", None)
    return row


def _taken(run_id: uuid.UUID | None) -> ValidationError:
    return ValidationError("run_id", f"{run_id} is taken by another user")


@router.post(
    "",
    response_model=models.Run,
    status_code=201,
    responses={200: {"model": models.Run, "description": "a retry: the stored run"}},
)
def create_run(body: models.RunCreate, request: Request, user: User) -> Response:
    """Tracker.create_run, owned by this key's user. With run_id, a retry returns the
    stored run (200); a run_id another user's run has is refused (422)."""
    fields = body.model_dump(exclude_none=True)
    if body.messages is not None:  # a message's content may be null: keep what was given
        fields["messages"] = [message.model_dump(exclude_unset=True) for message in body.messages]
    run_id = fields.get("run_id")
    # A retry answers with the stored run, but only for a body that is valid in itself.
    validate_run({k: v for k, v in fields.items() if k != "run_id"})
    # A new run without an id leases any of the user's Trackers (a fresh key picks the
    # shard), so that concurrent creates do not queue on one connection.
    with _state(request).tracker(user, run_id or uuid.uuid4()) as tracker:
        if run_id is not None:
            stored = _stored_run(tracker, run_id)
            if stored is not None:
                if stored["user_id"] != user:
                    raise _taken(run_id)
                return json_response(stored, 200)
        source_type = fields.pop("source_type")
        row = tracker.create_run(source_type, user_id=user, **fields)
    if row is None or row["user_id"] != user:  # the id belongs to a run this user cannot see
        raise _taken(run_id)
    return json_response(row, 201)


@router.get("", response_model=models.RunPageBody)
def list_runs(
    request: Request,
    user: User,
    source_type: Annotated[list[models.SourceType] | None, Query()] = None,
    source_id: models.ShortText | None = None,
    status: Annotated[list[models.RunStatus | Literal["all"]] | None, Query()] = None,
    starred: bool | None = None,
    tags: Annotated[list[models.Tag] | None, Query()] = None,
    tags_match: Literal["any", "all"] = "any",
    search: models.ShortText | None = None,
    user_id: Annotated[
        models.ShortText | None,
        Query(description="only runs of this owner (among those you may read)"),
    ] = None,
    created_from: models.DateBound | None = None,
    created_to: models.DateBound | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    cursor: str | None = None,
) -> Response:
    """Tracker.list_runs over every run this key's user may read (own runs, runs shared
    with them, their team's for a manager, all for an admin), newest first; `user_id`
    keeps one owner's runs. status defaults to active (`all` for every status); pass
    `next_cursor` back as `cursor` for the next page."""
    statuses: list[str] | None = ["active"] if not status else list(status)
    if statuses and "all" in statuses:
        statuses = None
    with _state(request).tracker(user) as tracker:
        page = tracker.list_runs(
            source_type=source_type,
            source_id=source_id,
            status=statuses,
            starred=starred,
            tags=tags,
            tags_match=tags_match,
            user_id=user_id,
            search=search,
            created_from=created_from,
            created_to=created_to,
            limit=limit,
            cursor=cursor,
        )
    return json_response({"rows": page.rows, "next_cursor": page.next_cursor, "total": page.total})


@router.get("/{run_id}", response_model=models.Run)
def get_run(run_id: uuid.UUID, request: Request, user: User, with_tasks: bool = True) -> Response:
    """Tracker.get_run: every column, messages, and (unless with_tasks=false) its tasks."""
    with _state(request).tracker(user, run_id) as tracker:
        return json_response(tracker.get_run(run_id, with_tasks=with_tasks))


@router.post("/{run_id}/messages", response_model=models.MessageAdded, status_code=201)
def add_message(
    run_id: uuid.UUID, body: models.MessageCreate, request: Request, user: User
) -> Response:
    """Tracker.add_message: append one message atomically."""
    fields = body.model_dump(exclude_none=True)
    role = fields.pop("role")
    content = fields.pop("content", None)
    with _state(request).tracker(user, run_id) as tracker:
        result = tracker.add_message(run_id, role, content, **fields)
    return json_response(result, 201)


@router.patch("/{run_id}", response_model=models.Run)
def update_run(run_id: uuid.UUID, body: models.RunPatch, request: Request, user: User) -> Response:
    """Tracker.rename_run (name), star_run (is_starred), set_tags (tags), in that order."""
    if body.name is None and body.is_starred is None and body.tags is None:
        raise ValidationError("body", "give at least one field", ["name", "is_starred", "tags"])
    # Validate every field before writing any, so a bad one writes nothing.
    if body.name is not None and not body.name.strip():
        raise ValidationError("name", f"must be a non-empty string, got {body.name!r}")
    if body.tags is not None:
        validate_run({"tags": body.tags}, partial=True)
    row = None
    with _state(request).tracker(user, run_id) as tracker:
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
        with _state(request).tracker(user, run_id) as tracker:
            return json_response(getattr(tracker, f"{name}_run")(run_id))

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
    """Tracker.fork_run: a new run with messages 0..at_message of a run this key's user may
    read, owned by this key's user."""
    with _state(request).tracker(user, run_id) as tracker:
        row = tracker.fork_run(run_id, body.at_message, name=body.name, user_id=user)
    return json_response(row, 201)
