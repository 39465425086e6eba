"""Small building blocks every page uses: a table with its CSV download, the empty state,
number formats, and the drill-down selection helpers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from dashboard import data, export
from dashboard.figures.colours import Legend, colour_map
from dashboard.formatting import change as change
from dashboard.formatting import column_label, csv_frame
from dashboard.formatting import count as count
from dashboard.formatting import millis as millis
from dashboard.formatting import money as money
from dashboard.formatting import percent as percent
from dashboard.formatting import plural as plural
from dashboard.formatting import tokens as tokens

T = TypeVar("T")

DEMO_COMMAND = "ai-runs demo --tasks 100000"
TRACKER_SNIPPET = """import ingest
tracker = ingest.Tracker()  # DATABASE_URL, or the embedded Postgres in $AI_RUNS_HOME
run = tracker.create_run("chat", messages=[{"role": "user", "content": "Hello"}])
task = tracker.create_task(run["id"], provider="openai", model="gpt-4o")
tracker.complete_task(task["task_id"], "Hi!", tokens_input=12, tokens_output=3)"""


def csv_bytes(df: pd.DataFrame) -> bytes:
    """The CSV a table's download button serves: exactly the rows and columns shown, text
    cells neutralized against spreadsheet formulas (dashboard.export.neutralized), then
    units in the headers, plain decimals and ISO timestamps (formatting.csv_frame)."""
    return csv_frame(export.neutralized(df)).to_csv(index=False).encode("utf-8")


MS_COLUMNS = ("time_to_first_token", "total_time", "p50", "p90", "p95", "p99")
COUNT_COLUMNS = (
    "tokens_input",
    "tokens_output",
    "tokens_total",
    "total_tokens",
    "tasks",
    "task_count",
    "runs",
    "active_users",
    "failed",
    "cancelled",
    "message_count",
)
MONEY_COLUMNS = ("cost", "total_cost", "actual_cost", "what_if_cost")


def default_column(column: str) -> Any:
    """The column config a table uses unless told otherwise: the human label with its
    unit, whole milliseconds, counts with thousands separators, USD to 4 decimals, UTC
    timestamps without noise."""
    name = column_label(column)
    if column in MS_COLUMNS:
        return st.column_config.NumberColumn(name, format="%.0f")
    if column in COUNT_COLUMNS:
        return st.column_config.NumberColumn(name, format="localized")
    if column in MONEY_COLUMNS:
        return st.column_config.NumberColumn(name, format="$%.4f")
    if column in ("failure_rate", "cancel_rate"):
        return st.column_config.NumberColumn(name, format="percent")
    if column in ("created_at", "updated_at", "last_seen", "last_message_at"):
        return st.column_config.DatetimeColumn(name, format="YYYY-MM-DD HH:mm:ss")
    if column == "period":
        return st.column_config.DateColumn(name, format="YYYY-MM-DD")
    if column == "user_id":
        return st.column_config.TextColumn(name, help="The id the application records")
    return name


# Dimension (a "by" choice) -> the sidebar option list holding its values.
_OPTION_LISTS = {
    "model": "models",
    "provider": "providers",
    "team": "teams",
    "tag": "tags",
    "source_type": "source_types",
    "status": "statuses",
    "variant": "variants",
    "user": "users",
}


def user_names() -> dict[str, str]:
    """user id -> display name (ai_users.display_name, from the mirror)."""
    return dict(data.filter_options().get("user_names") or {})


def user_label(user_id: Any) -> str:
    """ "Display name" for a user id (the id itself when the user has no name)."""
    if user_id is None or (isinstance(user_id, float) and pd.isna(user_id)):
        return "–"
    return user_names().get(str(user_id)) or str(user_id)


def legend(by: str | None) -> Legend:
    """Names and stable colours for the groups of dimension `by` (see dashboard.colours)."""
    if by is None:
        return Legend()
    values = data.filter_options().get(_OPTION_LISTS.get(by, ""), [])
    names = user_names() if by == "user" else {}
    return Legend(names=names, colours=colour_map(values))


def group_frame(df: pd.DataFrame, by: str | None) -> pd.DataFrame:
    """A rollup table for display: `group` renamed to the dimension; for users, the id
    column `user_id` (the display name comes beside it in `table`)."""
    if "group" not in df.columns:
        return df
    return df.rename(columns={"group": "user_id" if by == "user" else (by or "group")})


def with_names(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with a `user` column (display name) before each `user_id` column."""
    if "user_id" not in df.columns or "user" in df.columns:
        return df
    names = user_names()
    at = list(df.columns).index("user_id")
    shown = df.copy()
    shown.insert(at, "user", [None if u is None else names.get(str(u), u) for u in df["user_id"]])
    return shown


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
    narrow: list[str] | None = None,
) -> list[int]:
    """Show `df` with a "Download CSV" button under it (the CSV is built when the button is
    clicked); return the selected row positions
    (always [] unless `selectable`). `column_order` only orders the view (columns it leaves
    out come after); the CSV holds every column of `df`. Headers are human labels with units
    (formatting.COLUMN_LABELS) unless `column_config` says otherwise; a `user_id` column
    gets the user's display name beside it. `narrow` names the few columns that fit a
    900 px screen: the table shows only those until its "All columns" toggle is on, so a
    wide table never hides what matters past its right edge (README, "Dashboard layout")."""
    df = with_names(df)
    only = bool(narrow) and not _all_columns(key, df, narrow or [])
    if only:
        column_order = [c for c in narrow or [] if c in df.columns]
    config: dict[str, Any] = {c: default_column(str(c)) for c in df.columns}
    config.update(column_config or {})
    column_config = config
    if column_order:
        column_order = list(dict.fromkeys(column_order))  # a column is shown once
        if "user_id" in column_order and "user" not in column_order:
            at = column_order.index("user_id")
            column_order.insert(at, "user")
    order = None
    if column_order:
        first = [c for c in column_order if c in df.columns]
        order = first if only else first + [c for c in df.columns if c not in first]
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
        f"Download CSV ({plural(len(df), 'row')})",
        # Built when clicked, not on every script run that shows the table.
        data=lambda: csv_bytes(df),
        file_name=f"{filename}.csv",
        mime="text/csv",
        key=f"{key}_csv",
        icon=":material/download:",
        on_click="ignore",  # a download changes nothing: no rerun to race the file's request
    )
    return selected_rows(event) if selectable else []


def chart(
    figure: Callable[..., Any],
    *args: Any,
    key: str,
    on_select: Any = "ignore",
    selection_mode: str | None = None,
    where: Any = None,
    **kwargs: Any,
) -> Any:
    """Draw the Altair chart `figure(*args, **kwargs)` (a dashboard.figures function) as
    st.altair_chart would, from the spec data.chart_spec keeps: a warm page load does not
    build and validate the same chart again. `key`, `on_select` and `selection_mode` as
    for st.altair_chart; `where`: a container (a column) to draw in. Returns the chart's
    selection state, as st.altair_chart does."""
    spec = data.chart_spec(figure, *args, **kwargs)
    extra = {"selection_mode": selection_mode} if selection_mode else {}
    if spec is None:  # no spec converter in this Streamlit: build the chart on every run
        chart = figure(*args, **kwargs)
        return (where or st).altair_chart(chart, key=key, on_select=on_select, **extra)
    return (where or st).vega_lite_chart(spec, key=key, on_select=on_select, **extra)


def _all_columns(key: str, df: pd.DataFrame, narrow: list[str]) -> bool:
    """The "All columns" toggle of table `key` (shown when `df` has more columns than
    `narrow` keeps): True when on."""
    hidden = [c for c in df.columns if c not in narrow]
    if not hidden:
        return True
    return st.toggle(
        "All columns",
        key=f"{key}_all_columns",
        help=f"Also show {plural(len(hidden), 'more column')}; the CSV always holds them all.",
    )


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
# The columns of a task or run list that fit a 900 px screen (ui.table's `narrow`).
TASK_NARROW = ["created_at", "model", "status", "total_time", "cost"]
RUN_NARROW = ["name", "cost", "tasks", "user"]
TASK_COLUMNS = {"id": None}  # labels and formats: default_column


# Layout that holds from 800 to 2,000 px wide: KPI cards wrap to the next line instead of
# truncating their values ("$…"), values may break, the sidebar stays narrow.
PAGE_CSS = """<style>
[class*="st-key-kpis"] > div { flex: 1 1 11rem !important; min-width: 11rem !important; }
[data-testid="stMetricValue"] { font-size: clamp(1.35rem, 1rem + 1vw, 2.1rem); }
[data-testid="stMetricValue"] > div { white-space: normal !important; overflow-wrap: anywhere;
  text-overflow: clip !important; overflow: visible !important; }
[data-testid="stMetricLabel"] p { white-space: normal !important; }
[data-testid="stMetricDelta"] > div { white-space: normal !important; }
section[data-testid="stSidebar"] { min-width: 15rem !important; max-width: 20rem !important; }
@media (max-width: 1200px) {
  [data-testid="stMainBlockContainer"] { padding-left: 1.5rem; padding-right: 1.5rem; }
}
</style>"""


def page_style() -> None:
    """Put the dashboard's layout rules (PAGE_CSS) on the page; the app calls it once."""
    st.html(PAGE_CSS)


def kpi_cards(key: str) -> Any:
    """A row of KPI cards that wraps on narrow screens: draw `st.metric(..., border=True)`
    inside the returned container."""
    return st.container(horizontal=True, wrap=True, gap="small", key=f"kpis_{key}")


def url_selection(
    param: str, picked: tuple[str | None, str | None] | None
) -> tuple[str | None, str | None] | None:
    """Keep a chart's drill-down selection in the URL (`?param=period|group`), so a list of
    tasks behind a point can be shared. `picked` is the chart's selection in this run
    (figures.selected_slice); a link opened without one uses the URL's."""
    had = f"_{param}_had_points"
    if picked:
        st.query_params[param] = f"{picked[0] or ''}|{picked[1] or ''}"
        st.session_state[had] = True
        return picked
    if st.session_state.get(had):  # the user cleared the selection on the chart
        st.session_state[had] = False
        st.query_params.pop(param, None)
        return None
    text = st.query_params.get(param)
    if not text or "|" not in text:
        return None
    period, group = text.split("|", 1)
    return (period or None, group or None)


def top_of(shown: int, total: int, word: str = "", many: str | None = None) -> str:
    """ "Top 200 of 547" when a list is cut, else "All 547"; with `word`, its right form
    after the total: "All 1 task", "Top 200 of 547 tasks"."""
    counted = plural(total, word, many) if word else f"{total:,}"
    return f"Top {shown:,} of {counted}" if total > shown else f"All {counted}"


def lazy_tabs(labels: list[str], key: str) -> list[Any]:
    """Tabs of which only the open one runs its code (`if tab.open:`): a hidden tab
    computes nothing. The open tab is kept in the URL under `key`, so a link opens it."""
    return list(st.tabs(labels, key=key, bind="query-params"))


def lazy_expander(
    label: str,
    key: str,
    draw: Callable[[], T],
    icon: str | None = None,
    expanded: bool = False,
) -> T | None:
    """An expander whose content is read and drawn only while it is open (`expanded`: open
    at first); opening or closing it reruns the fragment that holds it (docs/design.md,
    "Pages"). Returns what `draw` returned, None while closed."""
    shown = st.expander(label, expanded, icon=icon, key=key, on_change="rerun")
    if not shown.open:
        return None
    with shown:
        return draw()
