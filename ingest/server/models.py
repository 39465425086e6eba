"""Request and response bodies of the REST API (they make the OpenAPI document).

Bodies are checked twice: here for shape (unknown fields refused, enumerations listed), then
by ingest.store.validation through the Tracker for values (ranges, timestamps, JSON). Every
failure is the same 4xx body, `ErrorBody`, naming the field and the allowed values.
Numbers that must stay exact (cost) travel as strings.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    TypeAdapter,
    WithJsonSchema,
)

from ingest.store import limits, score_checks, validation
from ingest.store.validation import ATTACHMENT_KINDS, MESSAGE_ROLES
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
# Any JSON value: declared as the JsonValue schema (below) in the document, checked by
# ingest.store (limits.check_json_value) so the errors say where inside it is wrong.
# (The document says "$ref"; pydantic would resolve one itself, so a mark {"x-ref": name}
# stands in until ingest/server/app.py puts the reference to that component in its place.)
JSON_VALUE_REF = {"$ref": "#/components/schemas/JsonValue"}
JSON_VALUE_MARK = {"x-ref": "JsonValue"}
Json = Annotated[Any, WithJsonSchema(JSON_VALUE_MARK)]
AttachmentKind = Literal[ATTACHMENT_KINDS]  # type: ignore[valid-type]


def _whole_number(value: Any) -> Any:
    """A JSON number that is whole (docs/limits.md, "Types over HTTP"): 3 and 3.0 (JSON does
    not tell them apart) are 3; 3.5, true and "3" are refused, naming the field."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a whole number (a JSON number), got {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"must be a whole number, got {value!r}")
        return int(value)
    return value


def _count(maximum: int) -> Any:
    return Annotated[int, Field(ge=0, le=maximum), BeforeValidator(_whole_number)]


Tokens = _count(limits.MAX_TOKENS)
TokensTotal = _count(limits.MAX_TOKENS_TOTAL)
Millis = _count(limits.MAX_MILLIS)
Index = _count(limits.MAX_MILLIS)
# The text limits are stated here for the OpenAPI document and enforced by ingest.store (the
# same messages on every way in): at most so many characters, no NUL.
_NO_NUL = "^[^\\x00]*$"
ShortText = Annotated[
    str, Field(json_schema_extra={"maxLength": limits.MAX_SHORT_TEXT, "pattern": _NO_NUL})
]
LongText = Annotated[
    str, Field(json_schema_extra={"maxLength": limits.MAX_LONG_TEXT, "pattern": _NO_NUL})
]
Tag = Annotated[
    str,
    Field(
        json_schema_extra={
            "minLength": 1,
            "maxLength": limits.MAX_SHORT_TEXT,
            "pattern": "^[^\\x00]*[^\\s\\x00][^\\x00]*$",
        }
    ),
]
NonBlank = Annotated[
    str,
    Field(
        json_schema_extra={
            "minLength": 1,
            "maxLength": limits.MAX_SHORT_TEXT,
            "pattern": "^[^\\x00]*[^\\s\\x00][^\\x00]*$",
        }
    ),
]
Tags = Annotated[list[Tag], Field(json_schema_extra={"maxItems": limits.MAX_TAGS})]
# A variant label (docs/quality.md; ingest.store.field_checks.label_field enforces it).
Variant = Annotated[
    str,
    Field(
        description="A/B label: a prompt version, model or settings label",
        json_schema_extra={"pattern": "^[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,99}$", "maxLength": 100},
    ),
]


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"must be a number of USD or its exact decimal string, got {value!r}")
    return value


# A cost travels as an exact decimal string (or a JSON number); the bound is ingest.store's.
Cost = Annotated[
    str | float,
    BeforeValidator(_not_bool),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": "^[0-9]{1,10}(\\.[0-9]{1,10})?$"},
                {"type": "number", "minimum": 0, "exclusiveMaximum": float(limits.MAX_COST)},
            ]
        }
    ),
]
JsonObject = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"pattern": _NO_NUL},
            "additionalProperties": JSON_VALUE_MARK,
        }
    ),
]
JSON_VALUE_SCHEMA = {
    "description": "any JSON value; no NUL in its strings and keys; at most 64 levels deep",
    "anyOf": [
        {"type": "string", "pattern": _NO_NUL},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": JSON_VALUE_REF},
        {
            "type": "object",
            "propertyNames": {"pattern": _NO_NUL},
            "additionalProperties": JSON_VALUE_REF,
        },
    ],
}
DateBound = Annotated[
    str,
    Field(
        description="ISO 8601 date or date-time",
        json_schema_extra={"anyOf": [{"format": "date"}, {"format": "date-time"}]},
    ),
]
Moment = Annotated[str, Field(description="ISO 8601", json_schema_extra={"format": "date-time"})]


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
    413: {
        "model": ErrorBody,
        "description": "body larger than the limit (AI_RUNS_MAX_BODY, after gzip) or too "
        "many rows in one request",
    },
    422: {"model": ErrorBody, "description": "bad input: field and allowed values named"},
    503: {"model": ErrorBody, "description": "the database is unreachable; retry later"},
}


# ---------------------------------------------------------------- runs


_MORE_JSON = ConfigDict(
    extra="allow",
    json_schema_extra={
        "propertyNames": {"pattern": _NO_NUL},
        "additionalProperties": JSON_VALUE_MARK,
    },
)


class Message(_Open):
    """One conversation message; keys beyond these are kept."""

    model_config = _MORE_JSON

    role: MessageRole
    content: Json = Field(description="a string, a list of parts, an object or null")
    task_id: uuid.UUID | None = None
    metadata: JsonObject | None = None
    timestamp: Moment | None = None


class Attachment(_Open):
    model_config = _MORE_JSON
    kind: AttachmentKind


class RunCreate(_Body):
    source_type: SourceType
    run_id: uuid.UUID | None = Field(None, description="your id; a retry with it is a no-op")
    name: ShortText | None = None
    source_id: ShortText | None = None
    description: LongText | None = None
    messages: list[Message] | None = None
    settings: JsonObject | None = None
    variable_values: JsonObject | None = None
    broker_values: JsonObject | None = None
    attachments: list[Attachment] | None = None
    metadata: JsonObject | None = None
    tags: Tags | None = None
    is_starred: StrictBool | None = None
    created_at: Moment | None = Field(None, description="ISO 8601; default now")
    variant: Variant | None = Field(None, description="its tasks' variant unless they name one")


class RunPatch(_Body):
    """rename (name), star (is_starred), tag (tags: replaces the list); at least one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    name: NonBlank = None  # type: ignore[assignment]  (absent: unchanged; null is refused)
    is_starred: StrictBool = None  # type: ignore[assignment]
    tags: Tags = None  # type: ignore[assignment]


class MessageCreate(_Body):
    role: MessageRole
    content: Json = None
    task_id: uuid.UUID | None = None
    metadata: JsonObject | None = None
    timestamp: Moment | None = None


class ForkBody(_Body):
    at_message: Index = Field(description="index of the last message kept (0-based)")
    name: NonBlank | None = None


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

    service: ShortText | None = None
    task_name: ShortText | None = None
    provider: ShortText | None = None
    endpoint: ShortText | None = None
    model: ShortText | None = None
    model_id: ShortText | None = None
    request_data: Json = None
    response_text: LongText | None = None
    response_data: Json = None
    response_info: Json = None
    response_errors: Json = None
    tool_updates: Json = None
    response_complete: StrictBool | None = None
    response_metadata: Json = None
    tokens_input: Tokens | None = None
    tokens_output: Tokens | None = None
    tokens_cached_input: Tokens | None = None
    tokens_reasoning: Tokens | None = None
    tokens_total: TokensTotal | None = Field(None, description=">= tokens_input + tokens_output")
    tokens_cache_write: Tokens | None = None
    cost: Cost | None = Field(None, description="USD; computed when absent")
    cost_source: CostSource | None = Field(None, description="default: provider when cost given")
    time_to_first_token: Millis | None = Field(None, description="ms; <= total_time")
    total_time: Millis | None = Field(None, description="ms; default since created_at")


class TaskCreate(_Body):
    run_id: uuid.UUID
    task_id: uuid.UUID | None = Field(None, description="e.g. your socket.io task id")
    service: ShortText | None = None
    task_name: ShortText | None = None
    provider: ShortText | None = None
    endpoint: ShortText | None = None
    model: ShortText | None = None
    model_id: ShortText | None = None
    request_data: Json = None
    response_metadata: Json = None
    status: StreamingStatus = "pending"
    created_at: Moment | None = None
    variant: Variant | None = Field(None, description="default: the run's variant")


class TaskUpdateBody(TaskFields):
    status: StreamingStatus | None = None


class TaskComplete(TaskFields):
    usage: JsonObject | None = Field(
        None, description="provider usage in any shape ingest.sdk.provider_usage understands"
    )


class TaskFail(TaskFields):
    error: Json = Field(None, description="a message or an object ({type, message, ...})")
    usage: JsonObject | None = None


class TaskCancel(TaskFields):
    reason: LongText | None = None
    usage: JsonObject | None = None


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


def _schema(annotation: Any) -> dict[str, Any]:
    """The JSON schema of one annotation, as in the document (references marked)."""
    if annotation in (Message, Attachment):
        return {"type": "array", "items": {"x-ref": annotation.__name__}}
    return TypeAdapter(annotation).json_schema()


def _column_schemas() -> dict[str, dict[str, Any]]:
    """The schema of each ai_runs / ai_tasks column a batch row may carry (values as
    ingest.store.validation takes them over JSON; docs/import-format.md)."""
    kinds: dict[Any, tuple[str, ...]] = {
        uuid.UUID: ("id", "run_id", "task_id", "parent_run_id"),
        ShortText: ("user_id", "source_id", "name", "service", "task_name", "provider",
                    "endpoint", "model", "model_id"),
        LongText: ("description", "response_text"),
        JsonObject: ("settings", "variable_values", "broker_values", "metadata"),
        Json: ("request_data", "response_data", "response_info", "response_errors",
               "tool_updates", "response_metadata"),
        Message: ("messages",),
        Attachment: ("attachments",),
        Tags: ("tags",),
        StrictBool: ("is_starred", "response_complete"),
        Tokens: ("tokens_input", "tokens_output", "tokens_cached_input", "tokens_reasoning",
                 "tokens_cache_write"),
        TokensTotal: ("tokens_total",),
        Millis: ("time_to_first_token", "total_time", "forked_from_message"),
        Cost: ("cost",),
        Moment: ("created_at", "updated_at", "last_message_at", "completed_at"),
        CostSource: ("cost_source",),
        Variant: ("variant",),
    }  # fmt: skip
    return {name: _schema(kind) for kind, names in kinds.items() for name in names}


def _row_schema(
    columns: dict[str, Any], statuses: tuple[str, ...], required: list[str], **extra: Any
) -> dict[str, Any]:
    every = _column_schemas()
    properties = {
        name: {"anyOf": [every[name], {"type": "null"}]} if nullable else every[name]
        for name, (_, nullable) in columns.items()
        if name in every
    }
    properties["status"] = {"enum": list(statuses)}
    properties["user_id"] = {"description": "ignored: every row belongs to the key's user"}
    return {
        "type": "object",
        "properties": {**properties, **extra},
        "required": required,
        "additionalProperties": False,
    }


RUN_ROW = _row_schema(
    validation.RUN_COLUMNS, RUN_STATUSES, ["id", "source_type"],
    source_type={"enum": list(SOURCE_TYPES)},
)  # fmt: skip
TASK_ROW = _row_schema(
    validation.TASK_COLUMNS, TASK_STATUSES, ["run_id", "task_id"],
    usage={
        "anyOf": [{"type": "object"}, {"type": "null"}],
        "description": "provider usage (as /v1/tasks/{task_id}/complete)",
    },
)  # fmt: skip


class BatchBody(_Body):
    runs: list[Annotated[dict[str, Any], WithJsonSchema(RUN_ROW)]] = Field(
        default_factory=list, description="ai_runs rows (docs/import-format.md)"
    )
    tasks: list[Annotated[dict[str, Any], WithJsonSchema(TASK_ROW)]] = Field(
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


def _score_text(maximum: int, pattern: str = _NO_NUL) -> Any:
    """A score's text field as ingest/store/score_checks.py bounds it."""
    return Annotated[str, Field(json_schema_extra={"maxLength": maximum, "pattern": pattern})]


class ScoreCreate(_Body):
    """One score of a task (task_id) or a run (run_id only); docs/quality.md."""

    name: Annotated[
        str,
        Field(
            description="e.g. helpfulness, thumbs, valid_json",
            json_schema_extra={"pattern": "^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}$"},
        ),
    ]
    value: bool | float | str | None = Field(
        None, description="true/false (boolean), a number (numeric) or a category"
    )
    label: _score_text(score_checks.MAX_LABEL) | None = None
    data_type: ScoreDataType | None = None
    task_id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None
    source: ScoreSource = "api"
    comment: _score_text(score_checks.MAX_COMMENT) | None = None
    evaluator: _score_text(score_checks.MAX_AUTHOR) | None = None
    evaluator_version: _score_text(score_checks.MAX_EVALUATOR_VERSION) | None = None


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
