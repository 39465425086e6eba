"""Rule evaluators (docs/quality.md), run offline (`ai-runs eval score`) or online
(`ai-runs eval worker`) by ingest.tracking.evaluation and ingest.tracking.online_eval.

Each rule gives a finished task a boolean score (source `rule`) with a comment saying why:
- regex: the response text matches `pattern` (Python `re.search`);
- json: the response text is valid JSON;
- json-schema: the response text is JSON valid under `schema` (a JSON Schema, checked with
  the `jsonschema` package: its own draft, else 2020-12);
- length: the response text has min_chars..max_chars characters;
- contains: the response text contains `text` (with absent=True: does not contain it);
- latency: total_time <= max_ms (tasks without a total time are skipped);
- cost: cost <= max_usd (unpriced tasks are skipped).
The evaluator is the rule's kind; its version is `1-` and a hash of its settings (and of
its score name when one is given), so the same rule run again replaces its scores (one per
task and evaluator version) and a changed rule is a new version beside the old one. Every
rule's scores are boolean (`SCALE`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any

import jsonschema

from ingest.errors import ValidationError
from ingest.store.score_checks import ScoreScale

RULES = ("regex", "json", "json-schema", "length", "contains", "latency", "cost")
SCALE = ScoreScale("boolean")
_SETTINGS = {
    "regex": ("pattern",),
    "json": (),
    "json-schema": ("schema",),
    "length": ("min_chars", "max_chars"),
    "contains": ("text", "absent"),
    "latency": ("max_ms",),
    "cost": ("max_usd",),
}


@dataclass(frozen=True)
class Rule:
    """One rule evaluator: its kind (RULES), its settings, the score name it writes."""

    kind: str
    settings: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    source = "rule"
    scale = SCALE
    skip_done = False  # offline, a rule runs again over its tasks (cheap; replaces)
    batch = 1000  # tasks per transaction
    reads_request = False

    @cached_property
    def version(self) -> str:
        named = {**self.settings, "name": self.name} if self.name else self.settings
        text = json.dumps(named, sort_keys=True, default=str)
        return "1-" + hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def score_name(self) -> str:
        return self.name or self.kind

    @property
    def evaluator(self) -> str:
        return self.kind

    def evaluate(self, task: dict[str, Any]) -> tuple[bool, str] | None:
        """(passed, why) for one task row; None: skipped (see `judge`)."""
        return judge(self, task)


def settings_of(kind: str) -> tuple[str, ...]:
    """The settings rule `kind` takes (empty for an unknown kind)."""
    return _SETTINGS.get(kind, ())


def make_rule(kind: str, name: str = "", **settings: Any) -> Rule:
    """A checked Rule; ValidationError naming the setting that is missing or wrong."""
    if kind not in RULES:
        raise ValidationError("evaluator", f"unknown rule {kind!r}", RULES)
    given = {key: value for key, value in settings.items() if value is not None}
    unknown = sorted(set(given) - set(_SETTINGS[kind]))
    if unknown:
        raise ValidationError(unknown[0], f"is not a setting of the {kind} rule", _SETTINGS[kind])
    _CHECKS[kind](given)
    return Rule(kind, given, name)


def _check_regex(settings: dict[str, Any]) -> None:
    if not settings.get("pattern"):
        raise ValidationError("pattern", "the regex rule needs --pattern")
    try:
        re.compile(settings["pattern"])
    except re.error as error:
        raise ValidationError("pattern", f"is not a regular expression: {error}") from None


def _check_schema(settings: dict[str, Any]) -> None:
    schema = settings.get("schema")
    if not isinstance(schema, dict | bool):
        raise ValidationError("schema", "the json-schema rule needs --schema, a JSON Schema file")
    try:
        jsonschema.validators.validator_for(schema, jsonschema.Draft202012Validator).check_schema(
            schema
        )
    except jsonschema.SchemaError as error:
        raise ValidationError("schema", f"is not a valid JSON Schema: {error.message}") from None


def _check_length(settings: dict[str, Any]) -> None:
    low, high = settings.get("min_chars"), settings.get("max_chars")
    if low is None and high is None:
        raise ValidationError("min_chars", "the length rule needs --min-chars or --max-chars")
    if any(v is not None and (not isinstance(v, int) or v < 0) for v in (low, high)):
        raise ValidationError("min_chars", "bounds are whole numbers >= 0")
    if low is not None and high is not None and low > high:
        raise ValidationError("max_chars", f"must be >= min_chars ({low}), got {high}")


def _check_contains(settings: dict[str, Any]) -> None:
    if not settings.get("text"):
        raise ValidationError("text", "the contains rule needs --text")
    settings["absent"] = bool(settings.get("absent"))


def _check_latency(settings: dict[str, Any]) -> None:
    if not isinstance(settings.get("max_ms"), int) or settings["max_ms"] < 0:
        raise ValidationError("max_ms", "the latency rule needs --max-ms, a whole number >= 0")


def _check_cost(settings: dict[str, Any]) -> None:
    try:
        limit = Decimal(str(settings.get("max_usd")))
    except InvalidOperation:
        limit = Decimal(-1)
    if not limit.is_finite() or limit < 0:
        raise ValidationError("max_usd", "the cost rule needs --max-usd, a number >= 0")
    settings["max_usd"] = str(limit)


_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "regex": _check_regex,
    "json": lambda settings: None,
    "json-schema": _check_schema,
    "length": _check_length,
    "contains": _check_contains,
    "latency": _check_latency,
    "cost": _check_cost,
}


def judge(rule: Rule, task: dict[str, Any]) -> tuple[bool, str] | None:
    """(passed, why) for one task row (response_text, total_time, cost); None: skipped."""
    text = task.get("response_text") or ""
    settings = rule.settings
    if rule.kind == "regex":
        found = re.search(settings["pattern"], text) is not None
        return found, "matches" if found else "no match"
    if rule.kind == "json":
        try:
            json.loads(text)
        except ValueError as error:
            return False, f"not JSON: {error}"[:200]
        return True, "valid JSON"
    if rule.kind == "json-schema":
        return _schema_verdict(settings["schema"], text)
    if rule.kind == "length":
        low, high = settings.get("min_chars", 0), settings.get("max_chars")
        ok = len(text) >= low and (high is None or len(text) <= high)
        return ok, f"{len(text)} characters"
    if rule.kind == "contains":
        present = settings["text"] in text
        return present != settings["absent"], "present" if present else "absent"
    if rule.kind == "latency":
        if task.get("total_time") is None:
            return None
        return task["total_time"] <= settings["max_ms"], f"{task['total_time']} ms"
    if task.get("cost") is None:
        return None
    return Decimal(task["cost"]) <= Decimal(settings["max_usd"]), f"{task['cost']} USD"


def _schema_verdict(schema: dict[str, Any] | bool, text: str) -> tuple[bool, str]:
    try:
        document = json.loads(text)
    except ValueError as error:
        return False, f"not JSON: {error}"[:200]
    validator = jsonschema.validators.validator_for(schema, jsonschema.Draft202012Validator)
    error = jsonschema.exceptions.best_match(validator(schema).iter_errors(document))
    if error is None:
        return True, "valid under the schema"
    where = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return False, f"{where}: {error.message}"[:200]
