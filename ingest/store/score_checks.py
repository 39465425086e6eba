"""What a valid score is (docs/quality.md, limits in docs/limits.md).

`validate_score(fields)` turns what a caller gave (`Tracker.score`, `POST /v1/scores`, a
score of `/v1/batch`) into the columns of one ai_scores row, or raises ValidationError
naming the field and what is allowed. Pure: no database access. The target (run or task)
is checked by the writer, which knows who is asking.

How a value is stored (the table's CHECK says the same, migration 0020):
- numeric: `value` the number (finite, |value| <= MAX_SCORE_VALUE), `label` optional;
- boolean: `value` 1 or 0 and `label` 'true' or 'false' (a mean of the values is the share
  of true: thumbs up);
- categorical: `label` the category, `value` NULL.
`data_type` may be left out: a bool is boolean, a number numeric, a string categorical.

One type per name, globally (migration 0024): a name first written as boolean stays
boolean. The database refuses another type (`refused_write` turns that refusal into a
ValidationError naming data_type and the type already used).
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from ingest.errors import ValidationError
from ingest.store.field_checks import text_field, uuid_field
from ingest.store.vocabulary import SCORE_DATA_TYPES, SCORE_SOURCES

MAX_SCORE_VALUE = 1e15  # |value|: far beyond any scale, exact in a double
MAX_LABEL = 200  # characters of a label (a category)
MAX_COMMENT = 4000  # characters of a comment
MAX_AUTHOR = 200  # characters of an author or evaluator name
MAX_EVALUATOR_VERSION = 100
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}")
NAME_RULE = "1..100 characters: letters, digits and _ . : / - (starting with a letter or digit)"
BOOLEAN_LABELS = {"true": True, "false": False}
NAME_TYPE_CONSTRAINT = "ai_scores_name_data_type"  # migration 0024


@dataclass(frozen=True)
class ScoreScale:
    """What an evaluator declares its scores to be: a data type (SCORE_DATA_TYPES) and, for
    a numeric score, the bounds its values lie in (None: unbounded on that side)."""

    data_type: str
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        if self.data_type not in SCORE_DATA_TYPES:
            problem = f"unknown value {self.data_type!r}"
            raise ValidationError("data_type", problem, SCORE_DATA_TYPES)
        for field, bound in (("min", self.low), ("max", self.high)):
            if bound is not None and (
                isinstance(bound, bool) or not isinstance(bound, int | float)
                or not math.isfinite(bound) or abs(bound) > MAX_SCORE_VALUE
            ):  # fmt: skip
                raise ValidationError(field, f"must be a finite number, got {bound!r}")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValidationError("max", f"must be >= min ({self.low}), got {self.high}")

    def check(self, fields: dict[str, Any]) -> dict[str, Any]:
        """`fields` (validate_score's columns) when the score fits this scale; else
        ValidationError naming `data_type` (the wrong kind of value) or `value` (out of
        the bounds)."""
        if fields["data_type"] != self.data_type:
            raise ValidationError(
                "data_type",
                f"evaluator {fields['evaluator'] or '?'!r} gives {self.data_type} scores, "
                f"got {fields['data_type']}",
                [self.data_type],
            )
        value = fields["value"]
        if value is not None and (
            (self.low is not None and value < self.low)
            or (self.high is not None and value > self.high)
        ):
            raise ValidationError(
                "value", f"must lie in [{_bound(self.low, '-inf')}, {_bound(self.high, 'inf')}]"
                f" for evaluator {fields['evaluator'] or '?'!r}, got {value:g}",
            )  # fmt: skip
        return fields


def _bound(value: float | None, missing: str) -> str:
    return missing if value is None else f"{value:g}"


def validate_score(fields: dict[str, Any]) -> dict[str, Any]:
    """The ai_scores columns of one score: run_id, task_id (either may be None here: the
    writer resolves them, at least one is needed), name, data_type, value, label, source,
    comment, author, evaluator, evaluator_version."""
    known = (
        "run_id", "task_id", "name", "value", "label", "data_type", "source", "comment",
        "author", "evaluator", "evaluator_version",
    )  # fmt: skip
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise ValidationError(unknown[0], "is not a field of a score", known)
    run_id = _optional_uuid("run_id", fields.get("run_id"))
    task_id = _optional_uuid("task_id", fields.get("task_id"))
    if run_id is None and task_id is None:
        raise ValidationError("task_id", "a score needs a task_id or a run_id (or both)")
    data_type, value, label = _value(fields.get("value"), fields.get("label"), fields)
    source = fields.get("source") or "api"
    if source not in SCORE_SOURCES:
        raise ValidationError("source", f"unknown value {source!r}", SCORE_SOURCES)
    author = _bounded("author", fields.get("author") or "", MAX_AUTHOR)
    if source == "human" and not author.strip():
        raise ValidationError("author", "a human score needs its author (an ai_users id)")
    return {
        "run_id": run_id,
        "task_id": task_id,
        "name": _name(fields.get("name")),
        "data_type": data_type,
        "value": value,
        "label": label,
        "source": source,
        "comment": _optional_text("comment", fields.get("comment"), MAX_COMMENT),
        "author": author,
        "evaluator": _bounded("evaluator", fields.get("evaluator") or "", MAX_AUTHOR),
        "evaluator_version": _bounded(
            "evaluator_version", fields.get("evaluator_version") or "", MAX_EVALUATOR_VERSION
        ),
    }


def refused_write(error: psycopg.errors.CheckViolation) -> ValidationError:
    """The ValidationError for a score the database's checks refused: `data_type` with the
    type already used for the name (migration 0024); the column a declared evaluator's scale
    names (`value` or `data_type`, migration 0022); else `score` with the check's word."""
    diag = error.diag
    if diag.column_name:
        return ValidationError(diag.column_name, diag.message_primary or str(error))
    if diag.constraint_name == NAME_TYPE_CONSTRAINT:
        used = diag.message_detail or "another type"
        return ValidationError(
            "data_type", f"{diag.message_primary}: a score name keeps one data type", [used]
        )
    return ValidationError("score", diag.message_primary or str(error))


def _optional_uuid(field: str, value: Any) -> uuid.UUID | None:
    return None if value is None else uuid_field(field, value)


def _name(value: Any) -> str:
    if value is None:
        raise ValidationError("name", f"is required: {NAME_RULE}")
    name = text_field("name", value)
    if not NAME_PATTERN.fullmatch(name):
        raise ValidationError("name", f"must be {NAME_RULE}, got {name[:120]!r}")
    return name


def _bounded(field: str, value: Any, limit: int) -> str:
    text = text_field(field, value)
    if len(text) > limit:
        raise ValidationError(field, f"must be at most {limit} characters, got {len(text)}")
    return text


def _optional_text(field: str, value: Any, limit: int) -> str | None:
    return None if value is None else _bounded(field, value, limit)


def _value(value: Any, label: Any, fields: dict[str, Any]) -> tuple[str, float | None, str | None]:
    """(data_type, value, label) as stored; see the module docstring."""
    data_type = fields.get("data_type") or _inferred_type(value, label)
    if data_type not in SCORE_DATA_TYPES:
        raise ValidationError("data_type", f"unknown value {data_type!r}", SCORE_DATA_TYPES)
    label = _optional_text("label", label, MAX_LABEL)
    if label is not None and not label.strip():
        raise ValidationError("label", "must not be empty")
    if data_type == "boolean":
        return "boolean", *_boolean(value, label)
    if data_type == "categorical":
        if value is not None:
            if not isinstance(value, str):
                raise ValidationError(
                    "value", "a categorical score has no number: give its category as label"
                )
            if label is not None and label != value:
                raise ValidationError("label", "differs from value: give the category once")
            label = _optional_text("value", value, MAX_LABEL)
        if not label:
            raise ValidationError("label", "a categorical score needs its category")
        return "categorical", None, label
    return "numeric", _number(value), label


def _inferred_type(value: Any, label: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str) or (value is None and label is not None):
        return "categorical"
    return "numeric"


def _boolean(value: Any, label: str | None) -> tuple[float, str]:
    if isinstance(value, bool):
        truth = value
    elif value is None and label in BOOLEAN_LABELS:
        truth = BOOLEAN_LABELS[label]
    elif not isinstance(value, str) and isinstance(value, int | float) and value in (0, 1):
        truth = bool(value)
    else:
        raise ValidationError(
            "value", f"a boolean score is true or false (or 1 or 0), got {value!r}", [True, False]
        )
    if label is not None and BOOLEAN_LABELS.get(label) is not truth:
        raise ValidationError(
            "label", f"must be {str(truth).lower()!r} or left out", ["true", "false"]
        )
    return float(truth), str(truth).lower()


def _number(value: Any) -> float:
    if value is None:
        raise ValidationError("value", "a numeric score needs its value (a finite number)")
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValidationError(
            "value", f"must be a number, true/false or a category, got {type(value).__name__}"
        )
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or abs(number) > MAX_SCORE_VALUE:
        raise ValidationError(
            "value", f"must be a finite number with |value| <= {MAX_SCORE_VALUE:.0e}, got {value}"
        )
    return number
