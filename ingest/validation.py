"""Input checks for runs and tasks: pure functions, no database access.

Shared by the live API (`ingest.Tracker`) and the bulk importer. Both take a dict of column
values named as the columns of `ai_runs` / `ai_tasks` (docs/schema.sql) and return a new,
normalized dict ready to write:

- uuids as `uuid.UUID` (from a UUID or its string form);
- timestamps as timezone-aware `datetime` (from a datetime or an ISO 8601 string; a naive
  value is taken as UTC);
- `cost` as `Decimal` (USD), tokens and times as `int` (times in milliseconds), from numbers
  or their exact string forms (`"12"` yes, `"1.5"` or `1.5` no);
- booleans from `bool` or a Postgres boolean literal string (`"true"`, `"f"`, `"1"`, ...);
- jsonb columns as plain Python values, checked to be JSON (no NaN, no NUL character);
  strings are *not* parsed as JSON (a CSV reader parses those columns itself: JSON_COLUMNS).
- `messages` copied with `task_id` and `timestamp` turned into strings, `tags` deduplicated.

Columns the database derives (run totals, `message_count`, `sync_xid`) are dropped from
the result: the triggers compute them from the tasks.

Any problem raises `ingest.errors.ValidationError` naming the field (`messages[2].role` for a
nested one) and, where there is a fixed set, the allowed values. `partial=True` checks only
the columns given (an update); otherwise the required columns must be present.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ingest import limits, vocabulary
from ingest.errors import ValidationError
from ingest.limits import check_json_value, check_text
from ingest.vocabulary import (
    COST_SOURCES,
    RUN_JSON_COLUMNS,
    RUN_STATUSES,
    SOURCE_TYPES,
    TASK_JSON_COLUMNS,
    TASK_STATUSES,
)

MESSAGE_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
ATTACHMENT_KINDS = ("file", "url", "image", "youtube")

INT4_MAX = 2_147_483_647
# Bounds and why: ingest/limits.py and docs/limits.md.
TOKENS_MAX = limits.MAX_TOKENS
COST_MAX = limits.MAX_COST

_BOOL_STRINGS = {
    "true": True,
    "t": True,
    "yes": True,
    "y": True,
    "on": True,
    "1": True,
    "false": False,
    "f": False,
    "no": False,
    "n": False,
    "off": False,
    "0": False,
}


# ---------------------------------------------------------------- scalar checks


def _no_nul(field: str, text: str) -> str:
    return check_text(field, text)


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    return _no_nul(field, value)


def _uuid(field: str, value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value.strip())
        except ValueError:
            pass
    raise ValidationError(
        field, f"must be a UUID like 3f2b8c9e-1d4a-4c6b-9e7f-0a1b2c3d4e5f, got {value!r}"
    )


def _is_whole(value: float | Decimal) -> bool:
    if isinstance(value, float):
        return math.isfinite(value) and value.is_integer()
    return value.is_finite() and value == value.to_integral_value()


def parse_uuid(field: str, value: Any) -> uuid.UUID:
    """`value` (a UUID or its string form) as uuid.UUID; ValidationError naming `field`."""
    return _uuid(field, value)


def _int(field: str, value: Any, maximum: int) -> int:
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float | Decimal) and _is_whole(value):
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            number = None
    if number is None:
        raise ValidationError(field, f"must be a whole number >= 0, got {value!r}")
    if number < 0:
        raise ValidationError(field, f"must be >= 0, got {number}")
    if number > maximum:
        raise ValidationError(field, f"must be <= {maximum}, got {number}")
    return number


def _tokens(field: str, value: Any) -> int:
    return limits.check_tokens(field, _int(field, value, limits.MAX_TOKENS_TOTAL))


def _small_int(field: str, value: Any) -> int:
    return _int(field, value, INT4_MAX)


def _cost(field: str, value: Any) -> Decimal:
    amount: Decimal | None = None
    if isinstance(value, bool):
        amount = None
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            amount = None
    if amount is None or not amount.is_finite():
        raise ValidationError(field, f"must be a finite number of USD >= 0, got {value!r}")
    if amount < 0:
        raise ValidationError(field, f"must be >= 0 (USD), got {amount}")
    return limits.check_cost(field, amount)


def _bool(field: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOL_STRINGS:
        return _BOOL_STRINGS[value.strip().lower()]
    raise ValidationError(field, f"must be true or false, got {value!r}", [True, False])


def _timestamp(field: str, value: Any) -> datetime:
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
    if moment is None:
        raise ValidationError(
            field,
            f"must be a datetime or an ISO 8601 string like 2026-11-25T10:32:00Z, got {value!r}",
        )
    if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
        moment = moment.replace(tzinfo=UTC)
    return limits.check_timestamp(field, moment)


def _choice(allowed: tuple[str, ...]) -> Callable[[str, Any], str]:
    def check(field: str, value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise ValidationError(field, f"unknown value {value!r}", allowed)
        return value

    return check


# ---------------------------------------------------------------- JSON checks


def check_json(field: str, value: Any) -> str:
    """Serialize `value` as JSON Postgres accepts; return the text. Raises ValidationError
    (limits: ingest.limits.check_json_value)."""
    return check_json_value(field, value)


def _json(field: str, value: Any) -> Any:
    check_json(field, value)
    return value


def _json_object(field: str, value: Any) -> dict:
    if not isinstance(value, Mapping):
        raise ValidationError(field, f"must be a JSON object (dict), got {type(value).__name__}")
    value = dict(value)
    check_json(field, value)
    return value


def _messages(field: str, value: Any) -> list[dict]:
    if not isinstance(value, list | tuple):
        raise ValidationError(
            field, f"must be a list of {{role, content, ...}} objects, got {type(value).__name__}"
        )
    return [validate_message(item, field=f"{field}[{i}]") for i, item in enumerate(value)]


def validate_message(message: Any, *, field: str = "message") -> dict:
    """One conversation message {role, content, task_id?, timestamp?, metadata?, ...}.

    Returns a copy with `task_id` as a UUID string and `timestamp` as an ISO 8601 string.
    Extra keys are kept. `content` may be a string, a list of parts, an object or null.
    """
    if not isinstance(message, Mapping):
        raise ValidationError(
            field, f"must be an object with role and content, got {type(message).__name__}"
        )
    result = dict(message)
    for key in result:
        if not isinstance(key, str):
            raise ValidationError(field, f"keys must be strings, got {key!r}")
    if "role" not in result:
        raise ValidationError(f"{field}.role", "is required", MESSAGE_ROLES)
    if result["role"] not in MESSAGE_ROLES:
        raise ValidationError(f"{field}.role", f"unknown role {result['role']!r}", MESSAGE_ROLES)
    if "content" not in result:
        raise ValidationError(f"{field}.content", "is required (a string, a list of parts or null)")
    if result.get("task_id") is not None:
        result["task_id"] = str(_uuid(f"{field}.task_id", result["task_id"]))
    if result.get("timestamp") is not None:
        result["timestamp"] = _timestamp(f"{field}.timestamp", result["timestamp"]).isoformat()
    if result.get("metadata") is not None and not isinstance(result["metadata"], Mapping):
        raise ValidationError(f"{field}.metadata", "must be a JSON object (dict)")
    check_json(field, result)
    return result


def _attachments(field: str, value: Any) -> list[dict]:
    if not isinstance(value, list | tuple):
        raise ValidationError(
            field, f"must be a list of objects with a kind, got {type(value).__name__}"
        )
    result = []
    for i, item in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(item, Mapping):
            raise ValidationError(where, "must be an object with a kind", ATTACHMENT_KINDS)
        if item.get("kind") not in ATTACHMENT_KINDS:
            raise ValidationError(
                f"{where}.kind", f"unknown kind {item.get('kind')!r}", ATTACHMENT_KINDS
            )
        result.append(dict(item))
    check_json(field, result)
    return result


def _tags(field: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise ValidationError(field, f"must be a list of strings, got {type(value).__name__}")
    tags: dict[str, None] = {}
    for i, tag in enumerate(value):
        if not isinstance(tag, str):
            raise ValidationError(f"{field}[{i}]", f"must be a string, got {type(tag).__name__}")
        tag = _no_nul(f"{field}[{i}]", tag.strip())
        if not tag:
            raise ValidationError(f"{field}[{i}]", "must not be empty")
        tags[tag] = None
    return list(tags)


# ---------------------------------------------------------------- column tables

_Check = Callable[[str, Any], Any]

# column -> (check, nullable)
RUN_COLUMNS: dict[str, tuple[_Check, bool]] = {
    "id": (_uuid, False),
    "user_id": (_text, True),
    "source_type": (_choice(SOURCE_TYPES), False),
    "source_id": (_text, True),
    "name": (_text, False),
    "description": (_text, True),
    "tags": (_tags, False),
    "messages": (_messages, False),
    "settings": (_json_object, False),
    "variable_values": (_json_object, False),
    "broker_values": (_json_object, False),
    "attachments": (_attachments, False),
    "metadata": (_json_object, False),
    "status": (_choice(RUN_STATUSES), False),
    "is_starred": (_bool, False),
    "parent_run_id": (_uuid, True),
    "forked_from_message": (_small_int, True),
    "created_at": (_timestamp, False),
    "updated_at": (_timestamp, False),
    "last_message_at": (_timestamp, True),
}
RUN_DERIVED_COLUMNS = frozenset(
    {"total_tokens", "total_cost", "message_count", "task_count", "sync_xid"}
)
RUN_REQUIRED = ("source_type",)

TASK_COLUMNS: dict[str, tuple[_Check, bool]] = {
    "id": (_uuid, False),
    "run_id": (_uuid, False),
    "user_id": (_text, True),
    "task_id": (_uuid, False),
    "service": (_text, True),
    "task_name": (_text, True),
    "provider": (_text, True),
    "endpoint": (_text, True),
    "model": (_text, True),
    "model_id": (_text, True),
    "request_data": (_json, False),
    "response_text": (_text, False),
    "response_data": (_json, True),
    "response_info": (_json, True),
    "response_errors": (_json, True),
    "tool_updates": (_json, True),
    "response_complete": (_bool, False),
    "response_metadata": (_json, True),
    "tokens_input": (_tokens, True),
    "tokens_output": (_tokens, True),
    "tokens_cached_input": (_tokens, True),
    "tokens_reasoning": (_tokens, True),
    # NULL means tokens_input + tokens_output (a trigger fills it in).
    "tokens_total": (_tokens, True),
    "cost": (_cost, True),
    "time_to_first_token": (_small_int, True),
    "total_time": (_small_int, True),
    "status": (_choice(TASK_STATUSES), False),
    "created_at": (_timestamp, False),
    "updated_at": (_timestamp, False),
    "completed_at": (_timestamp, True),
    # Migration 0006 (docs/usage-and-cost.md).
    "tokens_cache_write": (_tokens, True),
    "cost_source": (_choice(COST_SOURCES), True),
}
TASK_DERIVED_COLUMNS = frozenset({"sync_xid", *vocabulary.TASK_DERIVED_COLUMNS})
TASK_REQUIRED = ("run_id", "task_id")

# jsonb columns (a CSV reader parses these from JSON text before validating).
JSON_COLUMNS = {"ai_runs": RUN_JSON_COLUMNS, "ai_tasks": TASK_JSON_COLUMNS}


def _validate(
    fields: Mapping[str, Any],
    columns: dict[str, tuple[_Check, bool]],
    derived: frozenset[str],
    required: tuple[str, ...],
    partial: bool,
) -> dict[str, Any]:
    if not isinstance(fields, Mapping):
        raise ValidationError("fields", f"must be a dict of columns, got {type(fields).__name__}")
    result: dict[str, Any] = {}
    for name, value in fields.items():
        if name in derived:
            continue
        if name not in columns:
            raise ValidationError(str(name), "unknown column", sorted(columns))
        check, nullable = columns[name]
        if value is None:
            if not nullable:
                raise ValidationError(name, "must not be null")
            result[name] = None
        else:
            result[name] = check(name, value)
    if not partial:
        for name in required:
            if result.get(name) is None:
                allowed = SOURCE_TYPES if name == "source_type" else None
                raise ValidationError(name, "is required", allowed)
    return result


def validate_run(fields: dict, *, partial: bool = False) -> dict:
    """Check and normalize the columns of one `ai_runs` row (see the module docstring).

    Required unless `partial`: source_type. Raises ValidationError.
    """
    return _validate(fields, RUN_COLUMNS, RUN_DERIVED_COLUMNS, RUN_REQUIRED, partial)


def validate_task(fields: dict, *, partial: bool = False) -> dict:
    """Check and normalize the columns of one `ai_tasks` row (see the module docstring).

    Required unless `partial`: run_id and task_id. Raises ValidationError.
    """
    return check_task_consistency(
        _validate(fields, TASK_COLUMNS, TASK_DERIVED_COLUMNS, TASK_REQUIRED, partial)
    )


# (column, column it must not exceed, why): rules between the columns of one task.
TASK_ORDER_RULES = (
    ("time_to_first_token", "total_time", "the first token cannot come after the end"),
    ("tokens_cached_input", "tokens_input", "tokens_input counts cached input too"),
)


def check_task_consistency(task: Mapping[str, Any]) -> Any:
    """Rules between the columns of one task, where both are known (not None):
    time_to_first_token <= total_time and tokens_cached_input <= tokens_input.
    Returns `task` unchanged; ValidationError naming the first column otherwise."""
    for column, bound, why in TASK_ORDER_RULES:
        value, limit = task.get(column), task.get(bound)
        if value is not None and limit is not None and value > limit:
            raise ValidationError(column, f"must be <= {bound} ({limit}): {why}, got {value}")
    return task
