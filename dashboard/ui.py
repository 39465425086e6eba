"""Small building blocks every page uses: a table with its CSV download, the empty state,
number formats, and the drill-down selection helpers."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import export

DEMO_COMMAND = "ai-runs demo --tasks 100000"
TRACKER_SNIPPET = """import ingest
tracker = ingest.Tracker()  # DATABASE_URL, or the embedded Postgres in $AI_RUNS_HOME
run = tracker.create_run("chat", messages=[{"role": "user", "content": "Hello"}])
task = tracker.create_task(run["id"], provider="openai", model="gpt-4o")
tracker.complete_task(task["task_id"], "Hi!", tokens_input=12, tokens_output=3)"""


def csv_bytes(df: pd.DataFrame) -> bytes:
    """The CSV a table's download button serves: exactly the rows and columns shown, text
    cells neutralized against spreadsheet formulas (dashboard.export.table_csv)."""
    return export.table_csv(df)


def table(
    df: pd.DataFrame,
    key: str,
    filename: str,
    *,
    selectable: bool = False,
    column_config: Mapping[str, Any] | None = None,
    column_order: list[str] | None = None,
    height: int | str = "auto",
    caption: str | None = None,
) -> list[int]:
    """Show `df` with a "Download CSV" button under it; return the selected row positions
    (always [] unless `selectable`). `column_order` only orders the view (columns it leaves
    out come after); the CSV holds every column shown."""
    order = None
    if column_order:
        first = [c for c in column_order if c in df.columns]
        order = first + [c for c in df.columns if c not in first]
    kwargs: dict[str, Any] = {
        "hide_index": True,
        "width": "stretch",
        "column_config": dict(column_config or {}),
        "column_order": order,
        "height": height,
    }
    if selectable:
        event = st.dataframe(df, key=key, on_select="rerun", selection_mode="single-row", **kwargs)
    else:
        st.dataframe(df, key=key, **kwargs)
        event = None
    if caption:
        st.caption(caption)
    st.download_button(
        f"Download CSV ({len(df):,} rows)",
        data=csv_bytes(df),
        file_name=f"{filename}.csv",
        mime="text/csv",
        key=f"{key}_csv",
        icon=":material/download:",
    )
    return selected_rows(event) if selectable else []


def selected_rows(event: Any) -> list[int]:
    """Row positions selected in a dataframe (its return value or its session-state value)."""
    if not event:
        return []
    selection = event.get("selection") if isinstance(event, Mapping) else event.selection
    return list((selection or {}).get("rows") or [])


def empty_state() -> None:
    """What to do on an empty database: load demo data, or connect an application."""
    st.info(
        "**No runs or tasks in the database yet.** Load demo data, or connect an application.",
        icon=":material/inbox:",
    )
    left, right = st.columns(2)
    with left:
        st.markdown("**Load demo data** (90 days of realistic runs and tasks):")
        st.code(DEMO_COMMAND, language="bash")
        st.caption("or start the dashboard with it: `ai-runs dashboard --demo`")
    with right:
        st.markdown("**Connect an application** — track a run and its tasks from Python:")
        st.code(TRACKER_SNIPPET, language="python")
    st.caption("The dashboard syncs new data on every page load, or turn on auto-refresh.")


def money(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"${float(value):,.{digits}f}"


def millis(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    return f"{value / 1000:,.2f} s" if value >= 10_000 else f"{value:,.0f} ms"


def count(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit * 10:
            return f"{value / limit:,.1f}{suffix}"
    return f"{value:,.0f}"


def percent(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value) * 100:.{digits}f}%"


def change(value: Any) -> str | None:
    """A KPI delta as text ("+12.5%"), or None when there is no previous value to compare."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return f"{float(value) * 100:+.1f}%"


def grain_for(days: float) -> str:
    """A readable time grain for a period of `days` days."""
    if days <= 62:
        return "day"
    if days <= 366:
        return "week"
    return "month"


# How task lists (tasks_behind and friends) are shown: what an engineer scans first.
TASK_ORDER = [
    "created_at",
    "model",
    "provider",
    "status",
    "time_to_first_token",
    "total_time",
    "tokens_total",
    "cost",
    "endpoint",
    "service",
    "user_id",
    "task_id",
    "run_id",
]
RUN_ORDER = ["name", "cost", "tasks", "tokens_total", "user_id", "source_type", "created_at"]
TASK_COLUMNS = {
    "created_at": st.column_config.DatetimeColumn("Created (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "time_to_first_token": st.column_config.NumberColumn("TTFT (ms)", format="%d"),
    "total_time": st.column_config.NumberColumn("Total time (ms)", format="%d"),
    "tokens_total": st.column_config.NumberColumn("Tokens", format="%d"),
    "cost": st.column_config.NumberColumn("Cost ($)", format="$%.4f"),
    "task_id": st.column_config.TextColumn("Task id"),
    "run_id": st.column_config.TextColumn("Run id"),
    "id": None,
}
