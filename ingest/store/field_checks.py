"""Checks of single values, for ingest/store/validation.py's column tables: pure functions, no
database access. Each takes the field's name (for the error) and a value, and returns the
value normalized (docs/limits.md for the bounds) or raises ValidationError naming the field
and, where there is a fixed set, the allowed values.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ingest.errors import ValidationError
from ingest.store import limits
from ingest.store.limits import check_json_value, check_text

MESSAGE_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
ATTACHMENT_KINDS = ("file", "url", "image", "youtube")

INT4_MAX = 2_147_483_647
# Bounds and why: ingest/store/limits.py and docs/limits.md.
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


def text_field(field: str, value: Any) -> str:
    """A short string (a name, id or label: at most limits.MAX_SHORT_TEXT characters)
    without NUL or lone surrogates (ingest.store.limits.check_text)."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    return _no_nul(field, value)


# A variant (docs/quality.md): a prompt version, model or settings label; also the name
# of a dataset or an experiment. The migration's CHECK (0023) says the same.
LABEL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,99}")
LABEL_RULE = (
    "1..100 characters: letters, digits and _ . : / @ + - (starting with a letter or digit)"
)


def label_field(field: str, value: Any) -> str:
    """A variant label or a dataset/experiment name: LABEL_RULE."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    if not LABEL_PATTERN.fullmatch(value):
        raise ValidationError(field, f"must be {LABEL_RULE}, got {value[:120]!r}")
    return value


def long_text_field(field: str, value: Any) -> str:
    """A long string (a description, a response text: at most limits.MAX_LONG_TEXT
    characters) without NUL or lone surrogates."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    return check_text(field, value, limits.MAX_LONG_TEXT)


def uuid_field(field: str, value: Any) -> uuid.UUID:
    """A uuid.UUID from a UUID or its string form."""
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
    return uuid_field(field, value)


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


def tokens_field(field: str, value: Any) -> int:
    """A token count: a whole number >= 0 within ingest.store.limits' bounds."""
    return limits.check_tokens(field, _int(field, value, limits.MAX_TOKENS_TOTAL))


def small_int_field(field: str, value: Any) -> int:
    """A whole number >= 0 that fits an int4 (times in milliseconds, indexes)."""
    return _int(field, value, INT4_MAX)


def cost_field(field: str, value: Any) -> Decimal:
    """A cost in USD as Decimal: finite, >= 0, within ingest.store.limits' bound."""
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


def bool_field(field: str, value: Any) -> bool:
    """A bool from a bool or a Postgres boolean literal string ("t", "no", "1", ...)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOL_STRINGS:
        return _BOOL_STRINGS[value.strip().lower()]
    raise ValidationError(field, f"must be true or false, got {value!r}", [True, False])


def timestamp_field(field: str, value: Any) -> datetime:
    """A timezone-aware datetime from a datetime or an ISO 8601 string (naive = UTC)."""
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


def choice_field(allowed: tuple[str, ...]) -> Callable[[str, Any], str]:
    """A check that accepts exactly the strings of `allowed`."""

    def check(field: str, value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise ValidationError(field, f"unknown value {value!r}", allowed)
        return value

    return check


# ---------------------------------------------------------------- JSON checks


def check_json(field: str, value: Any) -> str:
    """Serialize `value` as JSON Postgres accepts; return the text. Raises ValidationError
    (limits: ingest.store.limits.check_json_value)."""
    return check_json_value(field, value)


def json_field(field: str, value: Any) -> Any:
    """Any value that serializes as JSON Postgres accepts (returned as is)."""
    check_json(field, value)
    return value


def json_object_field(field: str, value: Any) -> dict:
    """A JSON object (a Mapping), returned as a dict."""
    if not isinstance(value, Mapping):
        raise ValidationError(field, f"must be a JSON object (dict), got {type(value).__name__}")
    value = dict(value)
    check_json(field, value)
    return value


def messages_field(field: str, value: Any) -> list[dict]:
    """A list of conversation messages, each checked by validate_message."""
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
        result["task_id"] = str(uuid_field(f"{field}.task_id", result["task_id"]))
    if result.get("timestamp") is not None:
        result["timestamp"] = timestamp_field(f"{field}.timestamp", result["timestamp"]).isoformat()
    if result.get("metadata") is not None and not isinstance(result["metadata"], Mapping):
        raise ValidationError(f"{field}.metadata", "must be a JSON object (dict)")
    check_json(field, result)
    return result


def attachments_field(field: str, value: Any) -> list[dict]:
    """A list of objects whose `kind` is one of ATTACHMENT_KINDS."""
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


def tags_field(field: str, value: Any) -> list[str]:
    """A list of non-empty strings, stripped and deduplicated (first order kept)."""
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise ValidationError(field, f"must be a list of strings, got {type(value).__name__}")
    if len(value) > limits.MAX_TAGS:
        raise ValidationError(field, f"must hold at most {limits.MAX_TAGS} tags, got {len(value)}")
    tags: dict[str, None] = {}
    for i, tag in enumerate(value):
        if not isinstance(tag, str):
            raise ValidationError(f"{field}[{i}]", f"must be a string, got {type(tag).__name__}")
        tag = _no_nul(f"{field}[{i}]", tag.strip())
        if not tag:
            raise ValidationError(f"{field}[{i}]", "must not be empty")
        tags[tag] = None
    return list(tags)
