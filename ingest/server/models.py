"""Request and response bodies of the REST API (they make the OpenAPI document).

Bodies are checked twice: here for shape (unknown fields refused, enumerations listed), then
by ingest.store.validation through the Tracker for values (ranges, timestamps, JSON). Every
failure is the same 4xx body, `ErrorBody`, naming the field and the allowed values.
Numbers that must stay exact (cost) travel as strings.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ingest.store.validation import MESSAGE_ROLES
from ingest.store.vocabulary import (
    COST_SOURCES,
    RUN_STATUSES,
    SCORE_DATA_TYPES,
    SCORE_SOURCES,
    SOURCE_TYPES,
    TASK_STATUSES,
    UNFINISHED_TASK_STATUSES,
)

SourceType = Literal[SOURCE_TYPES]  # type: ignore[valid-type]
RunStatus = Literal[RUN_STATUSES]  # type: ignore[valid-type]
TaskStatus = Literal[TASK_STATUSES]  # type: ignore[valid-type]
MessageRole = Literal[MESSAGE_ROLES]  # type: ignore[valid-type]
CostSource = Literal[COST_SOURCES]  # type: ignore[valid-type]
StreamingStatus = Literal[UNFINISHED_TASK_STATUSES]  # type: ignore[valid-type]
Json = Any


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# ---------------------------------------------------------------- errors


class ErrorDetail(BaseModel):
    field: str = Field(description="the offending field, e.g. body.tokens_input or tasks[3].status")
    problem: str
    allowed: list[str] | None = None


class ErrorBody(BaseModel):
    """Every 4xx answer. Nothing was written."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "malformed body"},
    401: {"model": ErrorBody, "description": "missing, unknown or revoked API key"},
    403: {
        "model": ErrorBody,
        "description": "this key's user may read the run or task but not change it "
        "(row-level security); the problem says who may",
    },
    404: {
        "model": ErrorBody,
        "description": "no such run or task, or none this key's user may read",
    },
    413: {"model": ErrorBody, "description": "too many rows in one request"},
    422: {"model": ErrorBody, "description": "bad input: field and allowed values named"},
    503: {"model": ErrorBody, "description": "the database is unreachable; retry later"},
}


# ---------------------------------------------------------------- runs


class RunCreate(_Body):
    source_type: SourceType
    run_id: uuid.UUID | None = Field(None, description="your id; a retry with it is a no-op")
    name: str | None = None
    source_id: str | None = None
    description: str | None = None
    messages: list[dict[str, Json]] | None = None
    settings: dict[str, Json] | None = None
    variable_values: dict[str, Json] | None = None
    broker_values: dict[str, Json] | None = None
    attachments: list[dict[str, Json]] | None = None
    metadata: dict[str, Json] | None = None
    tags: list[str] | None = None
    is_starred: bool | None = None
    created_at: str | None = Field(None, description="ISO 8601; default now")


class RunPatch(_Body):
    """rename (name), star (is_starred), tag (tags: replaces the list)."""

    name: str | None = None
    is_starred: bool | None = None
    tags: list[str] | None = None


class MessageCreate(_Body):
    role: MessageRole
    content: Json = None
    task_id: uuid.UUID | None = None
    metadata: dict[str, Json] | None = None
    timestamp: str | None = None


class ForkBody(_Body):
    at_message: int = Field(description="index of the last message kept (0-based)")
    name: str | None = None


class Run(_Open):
    """A run summary (every ai_runs column but messages); GET adds messages and tasks."""

    id: uuid.UUID
    user_id: str | None
    source_type: str
    name: str
    status: str
    total_cost: str
    total_tokens: int
    task_count: int
    message_count: int


class RunPageBody(BaseModel):
    rows: list[Run]
    next_cursor: str | None
    total: int


class MessageAdded(_Open):
    run_id: uuid.UUID
    index: int
    message_count: int


# ---------------------------------------------------------------- tasks


class TaskFields(_Body):
    """Task columns a live write may set (None keeps what is stored)."""

    service: str | None = None
    task_name: str | None = None
    provider: str | None = None
    endpoint: str | None = None
    model: str | None = None
    model_id: str | None = None
    request_data: Json = None
    response_text: str | None = None
    response_data: Json = None
    response_info: Json = None
    response_errors: Json = None
    tool_updates: Json = None
    response_complete: bool | None = None
    response_metadata: Json = None
    tokens_input: int | None = None
    tokens_output: int | None = None
    tokens_cached_input: int | None = None
    tokens_reasoning: int | None = None
    tokens_total: int | None = None
    tokens_cache_write: int | None = None
    cost: str | float | None = Field(None, description="USD; computed when absent")
    cost_source: CostSource | None = Field(None, description="default: provider when cost given")
    time_to_first_token: int | None = Field(None, description="ms")
    total_time: int | None = Field(None, description="ms; default since created_at")


class TaskCreate(_Body):
    run_id: uuid.UUID
    task_id: uuid.UUID | None = Field(None, description="e.g. your socket.io task id")
    service: str | None = None
    task_name: str | None = None
    provider: str | None = None
    endpoint: str | None = None
    model: str | None = None
    model_id: str | None = None
    request_data: Json = None
    response_metadata: Json = None
    status: StreamingStatus = "pending"
    created_at: str | None = None


class TaskUpdateBody(TaskFields):
    status: StreamingStatus | None = None


class TaskComplete(TaskFields):
    usage: dict[str, Json] | None = Field(
        None, description="provider usage in any shape ingest.sdk.provider_usage understands"
    )


class TaskFail(TaskFields):
    error: Json = Field(None, description="a message or an object ({type, message, ...})")
    usage: dict[str, Json] | None = None


class TaskCancel(TaskFields):
    reason: str | None = None
    usage: dict[str, Json] | None = None


class Task(_Open):
    """A task row (every ai_tasks column)."""

    task_id: uuid.UUID
    run_id: uuid.UUID
    status: str
    cost: str | None


class TaskUpdateResult(BaseModel):
    task_id: uuid.UUID
    written: bool = Field(description="this request wrote the task (else it is buffered)")
    ignored: bool = Field(description="the task had already finished: the update was dropped")
    status: str


# ---------------------------------------------------------------- batch


class BatchBody(_Body):
    runs: list[dict[str, Json]] = Field(default_factory=list, description="ai_runs rows")
    tasks: list[dict[str, Json]] = Field(
        default_factory=list, description="ai_tasks rows (+ optional `usage`)"
    )
    scores: list[dict[str, Json]] = Field(
        default_factory=list, description="scores of the tasks or runs (as POST /v1/scores)"
    )


class BatchCounts(BaseModel):
    inserted: int
    duplicates: int


class BatchResultBody(BaseModel):
    runs: BatchCounts
    tasks: BatchCounts
    scores: BatchCounts


ScoreSource = Literal[SCORE_SOURCES]  # type: ignore[valid-type]
ScoreDataType = Literal[SCORE_DATA_TYPES]  # type: ignore[valid-type]


class ScoreCreate(_Body):
    """One score of a task (task_id) or a run (run_id only); docs/quality.md."""

    name: str = Field(description="e.g. helpfulness, thumbs, valid_json")
    value: bool | float | str | None = Field(
        None, description="true/false (boolean), a number (numeric) or a category"
    )
    label: str | None = None
    data_type: ScoreDataType | None = None
    task_id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None
    source: ScoreSource = "api"
    comment: str | None = None
    evaluator: str | None = None
    evaluator_version: str | None = None


class Score(_Open):
    """A score row (every ai_scores column)."""

    id: int
    run_id: uuid.UUID
    task_id: uuid.UUID | None
    name: str
    data_type: str
    value: float | None
    label: str | None
    source: str
    author: str
