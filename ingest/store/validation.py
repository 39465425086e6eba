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

This module holds the column tables and the row checks; the check of each single value
(and of one conversation message) is in ingest/store/field_checks.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ingest.errors import ValidationError
from ingest.store import vocabulary
from ingest.store.field_checks import (
    ATTACHMENT_KINDS,
    LABEL_PATTERN,
    LABEL_RULE,
    MESSAGE_ROLES,
    attachments_field,
    bool_field,
    check_json,
    choice_field,
    cost_field,
    json_field,
    json_object_field,
    label_field,
    long_text_field,
    messages_field,
    parse_uuid,
    small_int_field,
    tags_field,
    text_field,
    timestamp_field,
    tokens_field,
    uuid_field,
    validate_message,
)
from ingest.store.vocabulary import (
    COST_SOURCES,
    RUN_JSON_COLUMNS,
    RUN_STATUSES,
    SOURCE_TYPES,
    TASK_JSON_COLUMNS,
    TASK_STATUSES,
)

# Names callers import from here; the value checks themselves are in ingest/store/field_checks.py.
__all__ = [
    "ATTACHMENT_KINDS",
    "JSON_COLUMNS",
    "LABEL_PATTERN",
    "LABEL_RULE",
    "MESSAGE_ROLES",
    "RUN_COLUMNS",
    "RUN_STATUSES",
    "SOURCE_TYPES",
    "TASK_COLUMNS",
    "TASK_STATUSES",
    "check_json",
    "check_live_task",
    "check_task_consistency",
    "json_typed",
    "label_field",
    "long_text_field",
    "parse_uuid",
    "timestamp_field",
    "validate_message",
    "validate_run",
    "validate_task",
]

# ---------------------------------------------------------------- column tables

_Check = Callable[[str, Any], Any]

# column -> (check, nullable)
RUN_COLUMNS: dict[str, tuple[_Check, bool]] = {
    "id": (uuid_field, False),
    "user_id": (text_field, True),
    "source_type": (choice_field(SOURCE_TYPES), False),
    "source_id": (text_field, True),
    "name": (text_field, False),
    "description": (long_text_field, True),
    "tags": (tags_field, False),
    "messages": (messages_field, False),
    "settings": (json_object_field, False),
    "variable_values": (json_object_field, False),
    "broker_values": (json_object_field, False),
    "attachments": (attachments_field, False),
    "metadata": (json_object_field, False),
    "status": (choice_field(RUN_STATUSES), False),
    "is_starred": (bool_field, False),
    "parent_run_id": (uuid_field, True),
    "forked_from_message": (small_int_field, True),
    "created_at": (timestamp_field, False),
    "updated_at": (timestamp_field, False),
    "last_message_at": (timestamp_field, True),
    # Migration 0023 (docs/quality.md): the A/B label of the run's tasks.
    "variant": (label_field, True),
}
RUN_DERIVED_COLUMNS = frozenset(
    {"total_tokens", "total_cost", "message_count", "task_count", "sync_xid"}
)
RUN_REQUIRED = ("source_type",)

TASK_COLUMNS: dict[str, tuple[_Check, bool]] = {
    "id": (uuid_field, False),
    "run_id": (uuid_field, False),
    "user_id": (text_field, True),
    "task_id": (uuid_field, False),
    "service": (text_field, True),
    "task_name": (text_field, True),
    "provider": (text_field, True),
    "endpoint": (text_field, True),
    "model": (text_field, True),
    "model_id": (text_field, True),
    "request_data": (json_field, False),
    "response_text": (long_text_field, False),
    "response_data": (json_field, True),
    "response_info": (json_field, True),
    "response_errors": (json_field, True),
    "tool_updates": (json_field, True),
    "response_complete": (bool_field, False),
    "response_metadata": (json_field, True),
    "tokens_input": (tokens_field, True),
    "tokens_output": (tokens_field, True),
    "tokens_cached_input": (tokens_field, True),
    "tokens_reasoning": (tokens_field, True),
    # NULL means tokens_input + tokens_output (a trigger fills it in).
    "tokens_total": (tokens_field, True),
    "cost": (cost_field, True),
    "time_to_first_token": (small_int_field, True),
    "total_time": (small_int_field, True),
    "status": (choice_field(TASK_STATUSES), False),
    "created_at": (timestamp_field, False),
    "updated_at": (timestamp_field, False),
    "completed_at": (timestamp_field, True),
    # Migration 0006 (docs/usage-and-cost.md).
    "tokens_cache_write": (tokens_field, True),
    "cost_source": (choice_field(COST_SOURCES), True),
    # Migration 0023: the task's own variant (NULL: its run's).
    "variant": (label_field, True),
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


_WHOLE_NUMBER_CHECKS = (tokens_field, small_int_field)


def json_typed(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    """`fields` unchanged when each whole-number column holds a number and each boolean
    column a boolean, as JSON carries them (docs/limits.md, "Types over HTTP"): the string
    forms ("12", "t") that validate_run/validate_task accept for CSV are refused, naming the
    column. Whether a number is whole and in range is validate_run/validate_task's check."""
    for name, value in fields.items():
        check = (RUN_COLUMNS.get(name) or TASK_COLUMNS.get(name) or (None,))[0]
        if isinstance(value, str) and check in _WHOLE_NUMBER_CHECKS:
            raise ValidationError(name, f"must be a JSON number, not a string: got {value!r}")
        if isinstance(value, str) and check is bool_field:
            raise ValidationError(name, f"must be true or false, got {value!r}", [True, False])
    return fields


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


def check_live_task(task: Mapping[str, Any]) -> Any:
    """check_task_consistency, and for a task written live (the Tracker, the server's REST
    and batch routes) tokens_total >= tokens_input + tokens_output when all are known.
    `ai-runs import` does not ask the last: it restores rows as they were logged, and
    foreign logs hold such totals (LiteLLM logs total 0 for a failed call with prompt
    tokens). Returns `task`; ValidationError naming the column otherwise."""
    check_task_consistency(task)
    total, parts = task.get("tokens_total"), (task.get("tokens_input"), task.get("tokens_output"))
    if total is not None and None not in parts and total < sum(parts):
        raise ValidationError(
            "tokens_total",
            f"must be >= tokens_input + tokens_output ({sum(parts)}): the total counts both, "
            f"got {total}",
        )
    return task
