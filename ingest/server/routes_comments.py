"""/v1/runs/{id}/comments and /v1/comments/{id}: shared notes on a run and its tasks
(docs/server.md). Each mirrors ingest.Tracker's `comment` / `comments` / `edit_comment` /
`delete_comment`, run as the key's user (the author): row-level security decides (404 when
the key's user cannot read the run, task or comment; 403 when the comment is someone
else's to change). Text only, 1..4,000 characters; an @mention of someone who cannot read
the run is a 422 naming `mentions`, and nothing is written."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ingest.errors import NotFoundError
from ingest.server import models
from ingest.server.auth import current_user
from ingest.server.encoding import json_response
from ingest.server.state import ServerState
from ingest.store import limits

router = APIRouter(prefix="/v1", tags=["comments"], responses=models.ERROR_RESPONSES)
User = Annotated[str, Depends(current_user)]

# A comment's text: not blank, no NUL, at most limits.MAX_COMMENT_TEXT characters.
CommentText = Annotated[
    str,
    Field(
        description="text only (never rendered as markdown); @name mentions a person who "
        "may read the run (an ai_users id or email)",
        json_schema_extra={
            "minLength": 1,
            "maxLength": limits.MAX_COMMENT_TEXT,
            "pattern": "^[^\\x00]*[^\\s\\x00][^\\x00]*$",
        },
    ),
]
CommentId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class CommentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: CommentText
    task_id: uuid.UUID | None = Field(None, description="a task of the run (default: the run)")


class CommentEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: CommentText


class Comment(BaseModel):
    """A comment row (every ai_comments column)."""

    id: int
    run_id: uuid.UUID
    task_id: uuid.UUID | None
    author: str
    text: str
    mentions: list[str] = Field(description="the ai_users ids the text @mentions")
    created_at: datetime
    edited_at: datetime | None


def _state(request: Request) -> ServerState:
    return request.app.state.server


@router.post("/runs/{run_id}/comments", status_code=201, response_model=Comment)
def create_comment(
    run_id: uuid.UUID, body: CommentCreate, request: Request, user: User
) -> Response:
    """Tracker.comment as the key's user: on the run, or on its task `task_id`."""
    with _state(request).tracker(user, body.task_id or run_id) as tracker:
        row = tracker.comment(body.text, run_id=run_id, task_id=body.task_id)
    return json_response(row, 201)


@router.get("/runs/{run_id}/comments", response_model=list[Comment])
def list_comments(
    run_id: uuid.UUID, request: Request, user: User, task_id: uuid.UUID | None = None
) -> Response:
    """Tracker.comments, oldest first: the run's and its tasks' (default), or one task's."""
    with _state(request).tracker(user, task_id or run_id) as tracker:
        if task_id is None:
            return json_response(tracker.comments(run_id=run_id, with_tasks=True))
        comments = tracker.comments(task_id=task_id)
        return json_response([c for c in comments if c["run_id"] == run_id])


@router.patch("/comments/{comment_id}", response_model=Comment)
def edit_comment(
    comment_id: CommentId, body: CommentEdit, request: Request, user: User
) -> Response:
    """Tracker.edit_comment: one's own comment gets new text (edited_at set)."""
    with _state(request).tracker(user) as tracker:
        return json_response(tracker.edit_comment(comment_id, body.text))


@router.delete("/comments/{comment_id}", status_code=204, response_class=Response)
def delete_comment(comment_id: CommentId, request: Request, user: User) -> Response:
    """Tracker.delete_comment: by its author or an admin; written to the audit log."""
    with _state(request).tracker(user) as tracker:
        if not tracker.delete_comment(comment_id):
            raise NotFoundError("comment", comment_id)
    return Response(status_code=204)
