"""One way to show numbers, and human column labels with units (no Streamlit here).

- `money`, `millis` (durations), `tokens`, `count`, `percent`, `change`: text for cards,
  captions and hovers. Missing values (None, NaN) are "–".
- `COLUMN_LABELS`: a table column's header, with its unit ("Cost (USD)", "Total time (ms)").
- `csv_frame`: what a CSV download holds: headers with units, plain decimals (no float
  noise such as 139.56497089500002, no 0E-10) and ISO 8601 timestamps in UTC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

# Significant digits kept in a CSV cell: enough for a cost in USD to 1e-10 at $100k, few
# enough that binary float noise (…500002) disappears.
CSV_DIGITS = 12

COLUMN_LABELS: dict[str, str] = {
    "period": "Period start (UTC)",
    "created_at": "Created (UTC)",
    "updated_at": "Updated (UTC)",
    "last_seen": "Last seen (UTC)",
    "last_message_at": "Last message (UTC)",
    "cost": "Cost (USD)",
    "total_cost": "Cost (USD)",
    "actual_cost": "Actual cost (USD)",
    "what_if_cost": "What-if cost (USD)",
    "tokens_input": "Input tokens",
    "tokens_output": "Output tokens",
    "tokens_total": "Total tokens",
    "total_tokens": "Total tokens",
    "tasks": "Tasks",
    "task_count": "Tasks",
    "message_count": "Messages",
    "runs": "Runs",
    "active_users": "Active users",
    "failed": "Failed tasks",
    "cancelled": "Cancelled tasks",
    "failure_rate": "Failure rate (%)",
    "cancel_rate": "Cancel rate (%)",
    "time_to_first_token": "Time to first token (ms)",
    "total_time": "Total time (ms)",
    "p50": "p50 (ms)",
    "p90": "p90 (ms)",
    "p95": "p95 (ms)",
    "p99": "p99 (ms)",
    "bucket_low_ms": "From (ms)",
    "bucket_high_ms": "To (ms)",
    "age_minutes": "Age (minutes)",
    "user": "User",
    "user_name": "User",
    "user_id": "User id",
    "task_id": "Task id",
    "run_id": "Run id",
    "sample_task_id": "Latest task id",
    "source_type": "Source type",
    "task_name": "Task name",
    "name": "Name",
    "status": "Status",
    "model": "Model",
    "provider": "Provider",
    "team": "Team",
    "tag": "Tag",
    "endpoint": "Endpoint",
    "service": "Service",
    "error": "Error (digits as N)",
    "models": "Models",
    "tags": "Tags",
    "is_starred": "Starred",
    "metric": "Metric",
    "value": "Value",
    "previous": "Previous period",
    "change": "Change (fraction)",
    "unpriced": "Unpriced tasks",
    "cost_before": "Cost before (USD)",
    "cost_after": "Cost after (USD)",
    "changed": "Changed tasks",
    "group": "Group",
}
# Columns whose values are fractions 0..1 but whose CSV header says %: shown ×100.
PERCENT_COLUMNS = ("failure_rate", "cancel_rate")


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def money(value: Any, digits: int = 2) -> str:
    """USD: "$1,234.56"; "$0.0042" style below a cent when digits allow."""
    if _missing(value):
        return "–"
    return f"${float(value):,.{digits}f}"


def millis(value: Any) -> str:
    """A duration given in ms: "840 ms", "12.50 s", "3.2 min"."""
    if _missing(value):
        return "–"
    value = float(value)
    if value >= 120_000:
        return f"{value / 60_000:,.1f} min"
    return f"{value / 1000:,.2f} s" if value >= 10_000 else f"{value:,.0f} ms"


def plural(n: int, word: str, many: str | None = None) -> str:
    """A count with its noun in the right form: "1 task", "2 tasks", "1,204 runs"."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def count(value: Any) -> str:
    """A count, compact from 10,000 on: "9,876", "12.3k", "2.9M", "4.5B"."""
    if _missing(value):
        return "–"
    value = float(value)
    for limit, at_least, suffix in ((1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e3, 1e4, "k")):
        if abs(value) >= at_least:
            return f"{value / limit:,.1f}{suffix}"
    return f"{value:,.0f}"


def tokens(value: Any) -> str:
    """A token count: compact like `count`, with the unit ("12.3k tokens")."""
    return "–" if _missing(value) else f"{count(value)} tokens"


def percent(value: Any, digits: int = 1) -> str:
    """A fraction 0..1 as a percentage: "12.5%"."""
    if _missing(value):
        return "–"
    return f"{float(value) * 100:.{digits}f}%"


def change(value: Any) -> str | None:
    """A KPI delta as text ("+12.5%"), or None when there is no previous value to compare."""
    if _missing(value):
        return None
    return f"{float(value) * 100:+.1f}%"


def column_label(column: str) -> str:
    """The header of a column: COLUMN_LABELS, else the name with spaces."""
    return COLUMN_LABELS.get(column, column.replace("_", " ").capitalize())


def plain_number(value: Any) -> str:
    """A number as plain decimal text: no exponent, no binary float noise, no trailing
    zeros ("139.564970895", "0", "1200"); "" when missing."""
    if _missing(value):
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f") if value else "0"
    else:
        number = float(value)
        if math.isinf(number):
            return "inf" if number > 0 else "-inf"
        digits = max(0, CSV_DIGITS - 1 - int(math.floor(math.log10(abs(number))))) if number else 0
        text = np.format_float_positional(round(number, digits), trim="-", unique=True)
    text = text.rstrip(".") if "." in text and text.endswith(".") else text
    return "0" if text in ("-0", "") else text


def iso_time(value: Any) -> str:
    """A timestamp as ISO 8601 in UTC ("2026-10-01T12:30:05.123456Z"); a date (or a
    midnight without zone, as periods are) as "2026-10-01"; "" when missing."""
    if _missing(value):
        return ""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        if stamp == stamp.normalize():
            return stamp.date().isoformat()
        stamp = stamp.tz_localize("UTC")
    text = stamp.tz_convert("UTC").isoformat()
    return text.replace("+00:00", "Z")


def _cell(value: Any) -> Any:
    if isinstance(value, float | Decimal | np.floating | int | np.integer):
        return plain_number(value)
    if isinstance(value, datetime | date | pd.Timestamp):
        return iso_time(value)
    if isinstance(value, list | tuple | np.ndarray):
        return "; ".join(str(v) for v in value)
    return value


def csv_frame(df: pd.DataFrame, labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """`df` as a CSV download shows it: every cell text (plain decimals, ISO timestamps,
    lists joined with "; "), fractions named "%" scaled to percent, headers with units
    (COLUMN_LABELS, overridden by `labels`). Column order and rows are kept."""
    out = pd.DataFrame(index=range(len(df)))
    names = []
    for i, column in enumerate(df.columns):
        series = df.iloc[:, i]
        if column in PERCENT_COLUMNS and pd.api.types.is_numeric_dtype(series):
            series = series.astype("float64") * 100
        if pd.api.types.is_datetime64_any_dtype(series):
            values = [iso_time(v) for v in series]
        else:
            values = [_cell(v) for v in series.astype(object)]
        out[str(i)] = values
        names.append((labels or {}).get(column) or column_label(str(column)))
    out.columns = names
    return out


def readable_detail(value: Any) -> str:
    """A JSON detail (an audit row's, a re-pricing rule) as text: "amount: 350 · before:
    (amount: 300)"; lists joined with ", "; empty values left out; "" for nothing."""
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            if item in (None, "", [], {}):
                continue
            text = readable_detail(item)
            parts.append(f"{key}: ({text})" if isinstance(item, dict) else f"{key}: {text}")
        return " · ".join(parts)
    if isinstance(value, list | tuple):
        return ", ".join(readable_detail(item) for item in value)
    return "" if _missing(value) else str(value)


def audit_frame(df: pd.DataFrame, detail_columns: tuple[str, ...] = ("detail",)) -> pd.DataFrame:
    """An audit table for display and CSV: ids (run_id) as text, JSON details as readable
    fields (`readable_detail`), never a Python dict or a column-indexed object."""
    out = df.copy()
    if "run_id" in out.columns:
        out["run_id"] = out["run_id"].map(lambda v: "" if _missing(v) else str(v))
    for name in detail_columns:
        if name in out.columns:
            out[name] = out[name].map(readable_detail)
    return out
