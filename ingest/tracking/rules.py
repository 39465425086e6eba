"""Rule evaluators, run offline over stored tasks: `ai-runs eval score` (docs/quality.md).
SQL: ingest/tracking/sql/rules.sql.

Each rule gives a finished task a boolean score (source `rule`) with a comment saying why:
- regex: the response text matches `pattern` (Python `re.search`);
- json: the response text is valid JSON;
- length: the response text has min_chars..max_chars characters;
- contains: the response text contains `text` (with absent=True: does not contain it);
- latency: total_time <= max_ms (tasks without a total time are skipped);
- cost: cost <= max_usd (unpriced tasks are skipped).
The evaluator is the rule's kind; its version is `1-` and a hash of its settings, so the
same rule run again replaces its scores (one per task and evaluator version) and a changed
rule is a new version beside the old one. Scores are written as the owner (a trusted
operator), 1,000 tasks per transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ingest.errors import ValidationError
from ingest.store import sqlfiles
from ingest.store.score_checks import validate_score
from ingest.tracking.tracker import Tracker

RULES = ("regex", "json", "length", "contains", "latency", "cost")
BATCH = 1000
_SETTINGS = {
    "regex": ("pattern",),
    "json": (),
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

    @property
    def version(self) -> str:
        text = json.dumps(self.settings, sort_keys=True, default=str)
        return "1-" + hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def score_name(self) -> str:
        return self.name or self.kind


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


@dataclass
class EvalOutcome:
    """What one run of a rule did: tasks read, scores written (new or replaced), skipped."""

    tasks: int = 0
    written: int = 0
    replaced: int = 0
    skipped: int = 0


def score_tasks(
    rule: Rule,
    since: datetime,
    until: datetime | None = None,
    *,
    url: str | None = None,
    models: tuple[str, ...] = (),
) -> EvalOutcome:
    """Run `rule` over the finished tasks created in [since, until) (of `models` when
    given), writing one `rule` score per task; see the module docstring."""
    outcome = EvalOutcome()
    with Tracker(url) as tracker, psycopg.connect(tracker.url, row_factory=dict_row) as conn:
        for batch in _batches(conn, since, until, models):
            scores = []
            for task in batch:
                outcome.tasks += 1
                verdict = judge(rule, task)
                if verdict is None:
                    outcome.skipped += 1
                    continue
                scores.append(score_of(rule, task, *verdict))
            written = tracker.write_scores(scores) if scores else []
            outcome.written += len(written)
            outcome.replaced += sum(1 for row in written if not row["inserted"])
    return outcome


def score_of(rule: Rule, task: dict[str, Any], passed: bool, why: str) -> dict[str, Any]:
    """The validated `rule` score of a task row (task_id, run_id) with its verdict."""
    return validate_score(
        {
            "name": rule.score_name,
            "value": passed,
            "task_id": task["task_id"],
            "run_id": task["run_id"],
            "source": "rule",
            "comment": why,
            "evaluator": rule.kind,
            "evaluator_version": rule.version,
        }
    )


def _batches(
    conn: psycopg.Connection, since: datetime, until: datetime | None, models: tuple[str, ...]
) -> Iterator[list[dict[str, Any]]]:
    """Finished tasks in created_at order, BATCH at a time (keyset pagination)."""
    query = sqlfiles.beside(__file__)["rule_tasks"].psycopg
    after: tuple[Any, Any] = (since, None)
    while True:
        params = {
            "since": since, "until": until, "models": list(models), "after_at": after[0],
            "after_id": after[1], "limit": BATCH,
        }  # fmt: skip
        rows = conn.execute(query, params).fetchall()
        conn.commit()
        if not rows:
            return
        yield rows
        after = (rows[-1]["created_at"], rows[-1]["id"])
