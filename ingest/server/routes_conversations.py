"""/v1/runs/{id}/resume: a run's conversation in OpenAI, Anthropic or Gemini shape with its
settings, variable values and broker values (Tracker.resume_run); /v1/templates: prompt
templates from runs, runs from templates and a rollup per version (docs/server.md). Each
runs as the key's user: a run or template it cannot read answers 404, an unknown shape or a
placeholder without a value 422 naming what is allowed or missing."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ingest.server import models
from ingest.server.auth import current_user
from ingest.server.encoding import json_response
from ingest.server.state import ServerState

router = APIRouter(prefix="/v1", tags=["conversations"], responses=models.ERROR_RESPONSES)
User = Annotated[str, Depends(current_user)]


def _state(request: Request) -> ServerState:
    return request.app.state.server


@router.get("/runs/{run_id}/resume")
def resume_run(
    run_id: uuid.UUID, request: Request, user: User, shape: Shape = "openai"
) -> Response:
    """Tracker.resume_run: {run_id, shape, messages, system, settings, variable_values,
    broker_values}; shape is openai (default), anthropic or gemini."""
    with _state(request).tracker(user, run_id) as tracker:
        return json_response(tracker.resume_run(run_id, shape))


# A template's version number, as the database keeps it (1, 2, ...; an integer column).
Version = Annotated[int, Field(ge=1, le=2_147_483_647)]
# A template's name: not blank, at most 200 characters (ingest/tracking/templates.py).
TemplateName = Annotated[
    str,
    Field(
        json_schema_extra={
            "minLength": 1,
            "maxLength": 200,
            "pattern": "^[^\\x00]*[^\\s\\x00][^\\x00]*$",
        }
    ),
]
# The shapes resume_run answers in (ingest/tracking/conversations.py).
Shape = Literal["openai", "anthropic", "gemini"]


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_id: uuid.UUID = Field(description="the run to make the next version of the template")
    name: TemplateName = Field(description="the template's name (one per owner)")


class RunFromTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variable_values: dict[str, Any] = Field(description="a value for every placeholder")
    version: Version | None = Field(None, description="default: the latest")
    name: models.ShortText | None = None


@router.post("/templates", status_code=201)
def create_template(body: TemplateCreate, request: Request, user: User) -> Response:
    """Tracker.template_from_run, owned by this key's user: the run's messages with its
    variable values as {{placeholders}}, and its settings, as the template's next version."""
    with _state(request).tracker(user, body.run_id) as tracker:
        return json_response(tracker.template_from_run(body.run_id, body.name), 201)


@router.get("/templates/{template_id}")
def get_template(
    template_id: uuid.UUID, request: Request, user: User, version: Version | None = None
) -> Response:
    """Tracker.get_template: one version (the latest by default), as exported."""
    with _state(request).tracker(user) as tracker:
        return json_response(tracker.get_template(template_id, version))


@router.post("/templates/{template_id}/runs", status_code=201)
def run_from_template(
    template_id: uuid.UUID, body: RunFromTemplate, request: Request, user: User
) -> Response:
    """Tracker.create_run_from_template: a run of this key's user; 422 naming the
    placeholders without a value."""
    extra = {"name": body.name} if body.name else {}
    with _state(request).tracker(user) as tracker:
        run = tracker.create_run_from_template(
            template_id, body.variable_values, version=body.version, user_id=user, **extra
        )
    return json_response(run, 201)


@router.get("/templates/{template_id}/rollup")
def template_rollup(template_id: uuid.UUID, request: Request, user: User) -> Response:
    """Tracker.template_rollup: runs, tasks, cost and latency per version."""
    with _state(request).tracker(user) as tracker:
        return json_response(tracker.template_rollup(template_id))
