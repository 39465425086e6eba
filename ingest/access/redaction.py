"""Redaction: mask e-mail addresses, API keys and tokens, and admin-added patterns before
anything is stored (docs/access.md).

The rule set lives in Postgres (`ai_redaction_rules`, migration 0010): two built-in rules
(`email`, `secret`) and any pattern an admin adds; a rule applies only while enabled, and
with no enabled rule nothing is touched. Every way in calls the one function here:

- `redact(value, rules)` masks every string inside `value` (dicts, lists, nested; keys are
  kept) and returns the new value with the number of masks applied;
- `redact_fields(row, fields, rules)` does that for the listed fields of one row and
  returns the counts per field (what `ai_task_redactions` keeps per task).

`Redactor` is the cached rule set of one database (reloaded at most every RELOAD_SECONDS).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ingest.errors import ValidationError
from ingest.store import sqlfiles

RELOAD_SECONDS = 10.0
# What is masked: payloads, response text and errors of a task; the messages of a run.
TASK_FIELDS = (
    "request_data", "response_text", "response_data", "response_info", "response_errors",
    "tool_updates",
)  # fmt: skip
RUN_FIELDS = ("messages",)
_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Rule:
    """One enabled rule: a compiled pattern and its replacement text."""

    name: str
    pattern: re.Pattern[str]
    replacement: str


def compile_rule(name: str, pattern: str, replacement: str = "[REDACTED]") -> Rule:
    """A Rule; ValidationError naming the field when the name or pattern is not usable."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError("name", f"must match {_NAME.pattern}, got {name!r}")
    if not isinstance(pattern, str) or not pattern:
        raise ValidationError("pattern", "must be a non-empty regular expression")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValidationError("pattern", f"is not a valid regular expression: {exc}") from None
    if compiled.match(""):
        raise ValidationError("pattern", "must not match the empty string")
    return Rule(name, compiled, replacement)


def redact(value: Any, rules: Iterable[Rule]) -> tuple[Any, int]:
    """`value` with every match of every rule masked in each string inside it, and how many
    masks were applied. Non-string leaves and mapping keys are kept as they are."""
    rules = tuple(rules)
    if not rules:
        return value, 0
    return _walk(value, rules)


def _walk(value: Any, rules: tuple[Rule, ...]) -> tuple[Any, int]:
    if isinstance(value, str):
        total = 0
        for rule in rules:
            value, n = rule.pattern.subn(rule.replacement, value)
            total += n
        return value, total
    if isinstance(value, Mapping):
        out, total = {}, 0
        for key, item in value.items():
            out[key], n = _walk(item, rules)
            total += n
        return out, total
    if isinstance(value, list | tuple):
        items, total = [], 0
        for item in value:
            new, n = _walk(item, rules)
            items.append(new)
            total += n
        return items, total
    return value, 0


def redact_fields(
    row: dict[str, Any], fields: Iterable[str], rules: Iterable[Rule]
) -> dict[str, int]:
    """Mask the listed fields of `row` in place; return {field: masks} for the fields
    present in `row` (0 included, so a rewritten field's count is replaced)."""
    rules = tuple(rules)
    counts: dict[str, int] = {}
    if not rules:
        return counts
    for name in fields:
        if name in row and row[name] is not None:
            row[name], counts[name] = _walk(row[name], rules)
    return counts


def redact_rows(
    runs: Iterable[dict[str, Any]], tasks: Iterable[dict[str, Any]], rules: Iterable[Rule]
) -> list[tuple[str, dict[str, int]]]:
    """Mask run rows (RUN_FIELDS) and task rows (TASK_FIELDS) in place, for the batch write
    paths; return (task_id, {field: masks}) of every task that got a mask (what
    `ai_task_redactions` keeps)."""
    rules = tuple(rules)
    masks: list[tuple[str, dict[str, int]]] = []
    if not rules:
        return masks
    for row in runs:
        redact_fields(row, RUN_FIELDS, rules)
    for row in tasks:
        counts = {k: v for k, v in redact_fields(row, TASK_FIELDS, rules).items() if v}
        if counts:
            masks.append((str(row["task_id"]), counts))
    return masks


def load_rules(conn: psycopg.Connection) -> tuple[Rule, ...]:
    """The enabled rules of the database behind `conn`."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sqlfiles.beside(__file__)["redaction_rules"].psycopg)
        return tuple(compile_rule(r["name"], r["pattern"], r["replacement"]) for r in cur)


def record(conn: psycopg.Connection, task_id: Any, masks: Mapping[str, int]) -> None:
    """Keep the masks applied to the fields of task `task_id` just written
    (ai_task_redactions), in the transaction open on `conn`; nothing when there are none."""
    if masks:
        conn.execute(
            sqlfiles.beside(__file__)["record_redactions"].psycopg,
            {"task_id": task_id, "fields": Jsonb(dict(masks))},
        )


def record_many(conn: psycopg.Connection, masks: Sequence[tuple[Any, Mapping[str, int]]]) -> None:
    """`record` for many tasks at once: (task_id, {field: masks}) pairs, replacing what an
    earlier write of the same task recorded."""
    kept = [(str(task_id), dict(m)) for task_id, m in masks if m]
    if kept:
        conn.execute(
            sqlfiles.beside(__file__)["record_redactions_many"].psycopg,
            {"task_ids": [t for t, _ in kept], "fields": [Jsonb(m) for _, m in kept]},
        )


class Redactor:
    """The enabled rules of database `url`, read at most every RELOAD_SECONDS (a rule an
    admin enables reaches running writers within that time). Thread-safe."""

    def __init__(self, url: str, reload_seconds: float = RELOAD_SECONDS) -> None:
        self.url = url
        self.reload_seconds = reload_seconds
        self._rules: tuple[Rule, ...] = ()
        self._loaded_at: float | None = None
        self._lock = threading.Lock()

    def rules(self, conn: psycopg.Connection | None = None) -> tuple[Rule, ...]:
        """The enabled rules, read through `conn` when given (else a short connection)."""
        with self._lock:
            now = time.monotonic()
            if self._loaded_at is None or now - self._loaded_at >= self.reload_seconds:
                if conn is not None:
                    self._rules = load_rules(conn)
                else:
                    with psycopg.connect(self.url, autocommit=True) as own:
                        self._rules = load_rules(own)
                self._loaded_at = now
            return self._rules

    def refresh(self) -> None:
        """Read the rules again at the next use."""
        with self._lock:
            self._loaded_at = None
