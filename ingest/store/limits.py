"""The limits every value must respect before it is written (docs/limits.md).

Pure functions, no database access, used by `ingest.store.validation` (and through it by the
Tracker, the streaming helper, the importer and any server): each check returns the value
(normalized where said) or raises `ValidationError` naming the field and what is allowed.

Why these numbers (docs/limits.md has the table):
- tokens: a run's `total_tokens` and every rollup sum are bigint (int64, 9.22e18). With each
  token column <= MAX_TOKENS (1e10) and `tokens_total` <= 2 * MAX_TOKENS, a sum over 1e8
  tasks is <= 2e18: inside int64 in Postgres and in DuckDB's `sum(...)::BIGINT`.
- cost: `ai_tasks.cost` is numeric(20,10): < 1e10 USD once rounded to 10 decimal places
  (as Postgres rounds), so the check rounds first. Sums of cost in DuckDB are DECIMAL(38,10)
  (< 1e28). A run's `total_cost` is numeric(24,10) (< 1e14 USD): reached only by 10,000
  tasks of ten billion dollars each in one run (docs/limits.md).
- timestamps: Python (and so every reader) holds years 1..9999 only; a value must stay in
  that range once converted to UTC, or a read of it fails later.
- text length: a name, id, label, tag, provider or model holds at most MAX_SHORT_TEXT
  characters; a long text (description, response text) and the JSON text of each JSON
  value at most MAX_LONG_TEXT; a run at most MAX_TAGS tags. Without them one request could
  store a 300 MB run name that every later list or search of that user then reads.
- text and JSON: Postgres refuses NUL (text and jsonb) and text that is not valid UTF-8 (a
  lone surrogate); JSON nested deeper than MAX_JSON_DEPTH is refused before anything
  recursive (Python's json, psycopg, Postgres) can hit its own limit.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import accumulate
from typing import Any

from ingest.errors import ValidationError

MAX_TOKENS = 10**10  # per token column of one task
MAX_TOKENS_TOTAL = 2 * MAX_TOKENS  # tokens_total (input + output at most)
MAX_COST = Decimal(10) ** 10  # USD per task, exclusive: numeric(20, 10)
COST_PLACES = Decimal(1).scaleb(-10)  # numeric(20, 10): ten digits after the point
MAX_MILLIS = 2_147_483_647  # integer columns: time_to_first_token, total_time
MAX_JSON_DEPTH = 64  # nested arrays/objects in one JSON value
MIN_YEAR, MAX_YEAR = 1, 9999  # after conversion to UTC
MAX_SHORT_TEXT = 1_000  # characters: names, ids, labels, each tag, provider, model, search
MAX_LONG_TEXT = 16 * 1024 * 1024  # characters: description, response text, each JSON text
MAX_TAGS = 100  # tags of one run
MAX_COMMENT_TEXT = 4_000  # characters: a comment on a run or task (a note, not a document)
MAX_MENTIONS = 50  # people one comment may @mention
_MAX_PG_OFFSET = timedelta(hours=15, minutes=59)
_MAX_JSON_INT = 10**4000  # int_max_str_digits: json cannot write a longer integer


def check_text(field: str, value: str, limit: int | None = MAX_SHORT_TEXT) -> str:
    """`value` if Postgres can store it as text: no NUL, no lone surrogate, at most `limit`
    characters (None: no length limit; for strings inside a JSON value, whose whole text
    is limited instead)."""
    if limit is not None and len(value) > limit:
        raise ValidationError(field, f"must be at most {limit:,} characters, got {len(value):,}")
    if "\x00" in value:
        raise ValidationError(field, "must not contain the NUL character (\\x00)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValidationError(
            field,
            f"must be valid Unicode text: an unpaired surrogate {value[error.start]!r} at "
            f"position {error.start}",
        ) from None
    return value


def check_json_value(field: str, value: Any) -> str:
    """The JSON text of `value` if it is JSON Postgres can store: dict/list/tuple/str/int/
    float/bool/None (keys as json.dumps takes them), finite numbers, text without NUL or
    lone surrogates, at most MAX_JSON_DEPTH levels of arrays/objects. The error names
    `field` and, in its text, where inside the value (`at .a[2]`).

    Fast path: json.dumps (C) and a few scans of its text; only a value that may break a
    rule is walked in Python, to say exactly where."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = None
    if text is None or "\\u0000" in text or _json_depth(text) > MAX_JSON_DEPTH or not _utf8(text):
        try:
            _walk("", value, 0)
        except _Bad as bad:
            where = f"at {bad.path[:200]}: " if bad.path else ""
            raise ValidationError(field, where + bad.problem) from None
        except RecursionError:
            raise ValidationError(field, _TOO_DEEP) from None
    if text is None:  # the walk found nothing json.dumps refuses: report its own reason
        try:
            text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as error:
            raise ValidationError(field, f"must be JSON-serializable: {error}") from None
    if len(text) > MAX_LONG_TEXT:
        raise ValidationError(
            field, f"must be at most {MAX_LONG_TEXT:,} characters as JSON, got {len(text):,}"
        )
    return text


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_NESTING = {"[": 1, "{": 1, "]": -1, "}": -1}
_TOO_DEEP = f"JSON is nested too deeply (at most {MAX_JSON_DEPTH} levels)"


def _json_depth(text: str) -> int:
    """How deeply the arrays/objects of a JSON text nest (strings skipped); a cheap upper
    bound when the text has few opening brackets at all."""
    opening = text.count("[") + text.count("{")
    if opening <= MAX_JSON_DEPTH:
        return opening
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    if len(brackets) <= 2 * MAX_JSON_DEPTH:
        return len(brackets) // 2
    return max(accumulate(map(_NESTING.__getitem__, brackets)), default=0)


class _Bad(Exception):
    def __init__(self, path: str, problem: str):
        self.path, self.problem = path, problem


def _walk(path: str, value: Any, depth: int) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        try:
            check_text("", value, None)
        except ValidationError as error:
            raise _Bad(path, error.problem) from None
    elif isinstance(value, int):
        if abs(value) >= _MAX_JSON_INT:  # Python refuses to print more digits
            raise _Bad(path, "number has too many digits (at most 4000)")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad(path, f"must be a finite number (JSON has no {value!r})")
    elif isinstance(value, dict | list | tuple):
        if depth >= MAX_JSON_DEPTH:
            raise _Bad(path, _TOO_DEEP)
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str | int | float | bool) and key is not None:
                    raise _Bad(path, f"object keys must be strings, got {key!r}")
                _walk(f"{path} key", key, depth + 1)
                _walk(f"{path}.{key}" if len(path) < 200 else path, item, depth + 1)
        else:
            for i, item in enumerate(value):
                _walk(f"{path}[{i}]" if len(path) < 200 else path, item, depth + 1)
    else:
        raise _Bad(
            path,
            "must be JSON-serializable (dict, list, str, int, float, bool, None), got "
            f"{type(value).__name__}",
        )


def check_tokens(field: str, number: int) -> int:
    """A token count within 0..MAX_TOKENS (tokens_total: 0..MAX_TOKENS_TOTAL)."""
    limit = MAX_TOKENS_TOTAL if field == "tokens_total" else MAX_TOKENS
    if number > limit:
        raise ValidationError(
            field, f"must be <= {limit:,} tokens (so sums stay in 64-bit), got {number:,}"
        )
    return number


def check_cost(field: str, amount: Decimal) -> Decimal:
    """A cost >= 0 and < MAX_COST USD, rounded to 10 decimal places (numeric(20,10))."""
    rounded = amount.quantize(COST_PLACES, rounding=ROUND_HALF_UP) if amount < MAX_COST else amount
    if rounded >= MAX_COST:
        raise ValidationError(field, f"must be < {MAX_COST:,} (USD per task), got {amount}")
    return rounded if rounded != amount else amount


def check_timestamp(field: str, moment: datetime) -> datetime:
    """An aware datetime whose UTC value lies in years MIN_YEAR..MAX_YEAR; one whose UTC
    offset Postgres cannot read (over 15:59, Python allows up to 23:59) comes back in UTC."""
    try:
        in_utc = moment.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not MIN_YEAR <= in_utc.year <= MAX_YEAR:
        raise ValidationError(
            field,
            f"must lie in years {MIN_YEAR}..{MAX_YEAR} once converted to UTC, got "
            f"{moment.isoformat()}",
        )
    offset = moment.utcoffset()
    if offset is not None and abs(offset) > _MAX_PG_OFFSET:
        return in_utc  # the same instant; Postgres reads no offset beyond 15:59
    return moment
