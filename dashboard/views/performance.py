"""Performance (for engineers): latency percentiles over time and by group, histograms,
output speed, failures with their errors, stuck tasks, scores next to cost — and the
drill-down: select a point, a bar or a row to list the tasks behind it, slowest first;
select a task to open it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

import pandas as pd
import streamlit as st

from dashboard import data, figures, insights, state, ui
from dashboard.quality_panel import quality_tab
from dashboard.safe import md
from queries import drilldown, failures, latency
from queries.filters import DIMENSIONS, GRAINS

METRICS = {"ttft": "Time to first token", "total_time": "Total time"}
SOURCES = ("perf_trend", "perf_bars", "perf_groups", "perf_focus")
_LAST = "perf_last_selection"
BODY = "perf_body"  # the key of the fragment latency_section

st.title("Performance")
filters = state.active()
st.caption(
    state.period_text(filters)
    + " · latency, percentiles and output speed cover **completed tasks** only; times in ms"
)

if data.is_empty():
    ui.empty_state()
    st.stop()
# Latency exists for completed tasks only. With a status filter that leaves none, the page
# says so instead of an empty chart and a green "nothing got slower".
scope = drilldown.completed_scope(filters)
WEEK = timedelta(days=7)
last_week = replace(filters, start=filters.end - WEEK)  # "what changed" compares weeks
nothing = state.nothing_text(filters)  # what an empty chart says


def _mark(source: str) -> None:
    st.session_state[_LAST] = source


def _picked_in_trend() -> None:
    """A click on the trend, in the percentile's own fragment: the tasks behind it are in
    the body around it, so the body reruns."""
    _mark("perf_trend")
    st.rerun(scope=BODY)


def _focus(by: str, value: str | None) -> None:
    """A slowed-down group's button: drill into its last 7 days (the body reruns)."""
    st.session_state["perf_focus"] = {"by": by, "value": value}
    _mark("perf_focus")
    st.rerun(scope=BODY)


@dataclass(frozen=True)
class View:
    """What the controls chose: latency metric, dimension, grain, its legend (the percentile
    is picked beside the trend: percentile_trend)."""

    metric: str
    by: str
    grain: str
    legend: figures.colours.Legend


def controls() -> View:
    """The latency, dimension and grain pickers (kept in the URL)."""
    # They wrap onto a second line on a narrow screen instead of being cut off.
    row = st.container(horizontal=True, wrap=True, gap="small", key="perf_controls")
    metric = row.segmented_control(
        "Latency",
        list(METRICS),
        format_func=METRICS.get,
        default="ttft",
        key="perf_metric",
        bind="query-params",
    )
    by = row.selectbox(
        "By", list(DIMENSIONS), index=1, key="perf_by", bind="query-params", width=180
    )
    default_grain = ui.grain_for((filters.end - filters.start).days)
    grain = row.selectbox(
        "Grain",
        GRAINS,
        index=GRAINS.index(default_grain),
        key="perf_grain",
        bind="query-params",
        width=140,
    )
    return View(metric or "ttft", by, grain, ui.legend(by))


def what_changed(view: View, percentile: str) -> pd.DataFrame:
    """The last 7 days of the period against the 7 before: the groups that got slower
    (insights.slowdowns), said in a banner with a button per group to list its tasks."""
    metric, by = view.metric, view.by
    recent = data.cached(latency.latency_percentiles, last_week, metric=metric, by=by)
    previous = data.cached(
        latency.latency_percentiles,
        replace(filters, start=filters.end - 2 * WEEK, end=filters.end - WEEK),
        metric=metric,
        by=by,
    )
    slower = insights.slowdowns(recent, previous, percentile)
    if slower.empty:
        st.success(
            f"No {by} got markedly slower ({percentile} {METRICS[metric].lower()}) in the last "
            "7 days of the period than in the 7 days before.",
            icon=":material/check_circle:",
        )
        return slower
    lines = [
        f"**{md(view.legend.name(row.group))}**: {percentile} {ui.millis(row.previous_ms)} → "
        f"**{ui.millis(row.recent_ms)}** ({row.ratio:.1f}×, {ui.plural(row.tasks, 'task')})"
        for row in slower.head(3).itertuples()
    ]
    st.warning(
        f"**Slower in the last 7 days** ({METRICS[metric].lower()}, vs the 7 days before):  \n"
        + "  \n".join(lines),
        icon=":material/trending_up:",
    )
    top = slower.head(3)
    for column, row in zip(st.columns(len(top)), top.itertuples(), strict=True):
        value = None if row.group is None or row.group != row.group else str(row.group)
        column.button(
            f"Slowest tasks of {md(view.legend.name(value))}, last 7 days",
            key=f"perf_focus_{figures.label(value)}",
            on_click=_focus,
            args=(by, value),
            icon=":material/manage_search:",
        )
    return slower


# A fragment inside the body: a change of percentile reruns the banner and the trend only,
# not the charts, tables and tabs below that do not depend on it (docs/design.md, "Pages").
@st.fragment
def percentile_trend(view: View) -> None:
    """The percentile picker, what got slower at that percentile, and its trend."""
    percentile = st.selectbox(
        "Percentile", figures.PERCENTILES, index=2, key="perf_pct", bind="query-params", width=140
    )
    trend(view, percentile, what_changed(view, percentile))


def trend(view: View, percentile: str, slower: pd.DataFrame) -> None:
    """The percentile over time: the chart an engineer clicks."""
    metric, by = view.metric, view.by
    over_time = data.cached(
        latency.latency_percentiles, filters, metric=metric, by=by, grain=view.grain
    )
    # Vega-Lite: a click on (or near) a point selects its [period, group] (figures.vega.PICK).
    ui.chart(
        figures.percentiles_over_time,
        over_time,
        metric,
        percentile,
        by,
        view.grain,
        highlight=tuple(slower["group"].head(3)),
        legend=view.legend,
        nothing=nothing,
        selectable=True,
        key="perf_trend",
        on_select=_picked_in_trend,
        selection_mode=figures.vega.PICK,
    )
    st.caption(
        "Completed tasks. Click a point to list the tasks behind it, slowest first "
        "(double-click to clear)."
    )


def by_group(view: View) -> tuple[pd.DataFrame, list[int]]:
    """The percentiles by group, and their table while its expander is open; returns the
    groups and the table's selected rows."""
    metric, by = view.metric, view.by
    groups = data.cached(latency.latency_percentiles, filters, metric=metric, by=by)
    # One above the other: beside the chart the table hid p95 and p99 (README,
    # "Dashboard layout").
    ui.chart(
        figures.percentiles_by_group, groups, metric, by, view.legend, nothing=nothing,
        selectable=True, key="perf_bars", on_select=lambda: _mark("perf_bars"),
        selection_mode=figures.vega.PICK,
    )  # fmt: skip
    # Lazily: the bars say the same and are clicked the same way, so the first paint draws
    # no table here (docs/design.md, "Pages"); opened, it holds every group.
    rows = ui.lazy_expander(
        f"{METRICS[metric]} percentiles by {by}: table and CSV",
        "perf_groups_open",
        lambda: groups_table(groups, metric, by),
        icon=":material/table:",
    )
    return groups, rows or []


def groups_table(groups: pd.DataFrame, metric: str, by: str | None) -> list[int]:
    """The percentiles by group as a table; returns its selected rows."""
    st.markdown(f"**{METRICS[metric]} percentiles by {by}** (completed tasks, ms)")
    return ui.table(
        ui.group_frame(groups, by),
        key="perf_groups",
        filename=f"{metric}_percentiles_by_{by}",
        selectable=True,
        caption="Select a row to list its tasks.",
    )


def _selection(
    view: View, groups: pd.DataFrame, table_rows: list[int]
) -> tuple[str, dict, object] | None:
    """The slice the user picked last: (description, tasks_behind arguments, filters)."""
    by, grain, legend = view.by, view.grain, view.legend
    picks: dict[str, tuple[str, dict, object] | None] = {}
    trend_pick = figures.selected_slice(st.session_state.get("perf_trend"))
    point = ui.url_selection("perf_pick", trend_pick)
    if point:
        period, group = point
        day = date.fromisoformat(period) if period else None
        picks["perf_trend"] = (
            f"{by} = {legend.name(group)}, {grain} of {period}",
            {"period": day, "grain": grain, "by": by, "value": group},
            filters,
        )
    bar = figures.selected_slice(st.session_state.get("perf_bars"))
    if bar:
        picks["perf_bars"] = (
            f"{by} = {legend.name(bar[1])}",
            {"by": by, "value": bar[1]},
            filters,
        )
    if table_rows and table_rows[0] < len(groups):
        group = groups.iloc[table_rows[0]]["group"]
        group = None if group is None or group != group else str(group)
        picks["perf_groups"] = (
            f"{by} = {legend.name(group)}",
            {"by": by, "value": group},
            filters,
        )
    focus = st.session_state.get("perf_focus")
    if focus and focus.get("by") == by:
        picks["perf_focus"] = (
            f"{by} = {legend.name(focus['value'])}, last 7 days",
            {"by": by, "value": focus["value"]},
            last_week,
        )
    last = st.session_state.get(_LAST)
    for source in (last, *SOURCES):
        if picks.get(source):
            return picks[source]
    return None


def tasks_behind(view: View, picked: tuple[str, dict, object] | None) -> None:
    """The tasks behind the selection (completed ones, slowest first), or the period's
    slowest: its three slowest as links, the whole list while its expander is open; a task
    picked opens its detail."""
    metric = view.metric
    if picked:
        description, where, within = picked
        st.subheader(f"Tasks behind {md(description)}")
    else:
        description, where, within = "the whole period", {}, filters
        st.subheader("Slowest completed tasks in the period")
        st.caption("Select a point or a bar above to narrow this list.")
    # The same tasks as the percentile clicked: completed ones only.
    tasks = data.cached(
        drilldown.tasks_behind, within, metric=metric, limit=200, completed_only=True, **where
    )
    total = data.cached(drilldown.count_behind, within, completed_only=True, **where)
    slowest_links(metric, tasks)
    caption = (f"{ui.top_of(len(tasks), total, 'completed task')}, slowest "
               f"{METRICS[metric].lower()} first. Select a task to open its detail.")  # fmt: skip
    if not picked:
        # Lazily, with no selection: the period's list waits under its three slowest, so
        # the first paint draws no data grid (docs/design.md, "Pages"); a selection's
        # list, what the click asked for, is shown at once.
        ui.lazy_expander(caption.split(".")[0], "perf_tasks_open",
                         lambda: tasks_table(tasks, caption), icon=":material/table:")  # fmt: skip
        return
    tasks_table(tasks, caption)


def tasks_table(tasks: pd.DataFrame, caption: str) -> None:
    """The tasks as a table; a task selected opens its detail."""
    chosen = ui.table(
        tasks,
        key="perf_tasks",
        filename="tasks_behind_selection",
        selectable=True,
        column_config=ui.TASK_COLUMNS,
        column_order=ui.TASK_ORDER,
        # Completed tasks only: their status says nothing on a narrow screen, and without it
        # the list fits inside its expander at 900 px whatever the model names.
        narrow=[column for column in ui.TASK_NARROW if column != "status"],
        caption=caption,
    )
    if chosen and chosen[0] < len(tasks):
        task_id = str(tasks.iloc[chosen[0]]["task_id"])
        st.switch_page("views/task.py", query_params={"task_id": task_id})


def slowest_links(metric: str, tasks: pd.DataFrame) -> None:
    """Links to the three slowest tasks of the list."""
    if tasks.empty:
        return
    links = st.columns(3)
    for column, row in zip(links, tasks.head(3).itertuples(), strict=False):
        value = getattr(row, "time_to_first_token" if metric == "ttft" else "total_time")
        column.page_link(
            "views/task.py",
            label=f"Open task {str(row.task_id)[:8]} · {md(row.model)} · {ui.millis(value)}",
            query_params={"task_id": str(row.task_id)},
            icon=":material/open_in_new:",
        )


# --- Distributions, speed, failures, stuck ---------------------------------------------------


def histogram_tab(view: View) -> None:
    if scope is None:
        st.caption("No completed tasks under this status filter: no latency to show.")
    else:
        split = st.toggle(f"One curve per {view.by}", key="perf_hist_split")
        histogram = data.cached(
            latency.latency_histogram,
            filters,
            metric=view.metric,
            bins=50,
            by=view.by if split else None,
        )
        ui.chart(figures.latency_histogram, histogram, view.metric, nothing=nothing,
                 key="perf_hist")  # fmt: skip
        ui.table(histogram, key="perf_hist_table", filename=f"{view.metric}_histogram", height=250)


def speed_tab(view: View) -> None:
    if scope is None:
        st.caption("No completed tasks under this status filter: no output speed to show.")
    else:
        speed = data.cached(latency.tokens_per_second, filters, by=view.by)
        ui.chart(figures.tokens_per_second, speed, view.by, view.legend, nothing=nothing,
                 key="perf_speed")  # fmt: skip
        ui.table(ui.group_frame(speed, view.by), key="perf_speed_table", filename="tps")


def failures_tab(view: View) -> None:
    over_time = data.cached(failures.failure_rates, filters, grain=view.grain)
    by_group = data.cached(failures.failure_rates, filters, by=view.by)
    left, right = st.columns(2)
    ui.chart(figures.failure_rates_over_time, over_time, view.grain, nothing=nothing,
             key="perf_fail_time", where=left)  # fmt: skip
    ui.chart(figures.failure_rates_by, by_group, view.by, view.legend, nothing=nothing,
             key="perf_fail_by", where=right)  # fmt: skip
    st.markdown("**Most frequent errors** — select one to list all its tasks")
    errors = data.cached(failures.error_groups, filters, limit=20)
    picked_error = ui.table(errors, key="perf_errors", filename="error_groups", selectable=True)
    if picked_error and picked_error[0] < len(errors):
        group = errors.iloc[picked_error[0]]
        members = data.cached(drilldown.error_tasks, filters, str(group["error"]), limit=1000)
        st.markdown(f"**Tasks with the error** {md(str(group['error'])[:120])}")
        opened = ui.table(
            members,
            key="perf_error_tasks",
            filename="error_group_tasks",
            selectable=True,
            column_config=ui.TASK_COLUMNS,
            column_order=ui.TASK_ORDER,
            narrow=ui.TASK_NARROW,
            caption=f"{ui.top_of(len(members), int(group['tasks']), 'task')} of this error group, "
            "newest first. Select one to open it.",
            height=300,
        )
        if opened and opened[0] < len(members):
            task = str(members.iloc[opened[0]]["task_id"])
            st.switch_page("views/task.py", query_params={"task_id": task})


def stuck_tab(view: View) -> None:
    minutes = st.number_input(
        "Pending or streaming for more than (minutes)", 1, 10_000, 15, key="perf_stuck_min"
    )
    stuck = data.stuck_tasks(float(minutes))
    if stuck.empty:
        st.success(f"No task has been pending or streaming for more than {minutes} minutes.")
    picked_stuck = ui.table(
        stuck,
        key="perf_stuck",
        filename="stuck_tasks",
        selectable=True,
        column_config=ui.TASK_COLUMNS,
        column_order=ui.TASK_ORDER,
        narrow=ui.TASK_NARROW,
    )
    if picked_stuck and picked_stuck[0] < len(stuck):
        stuck_id = str(stuck.iloc[picked_stuck[0]]["task_id"])
        st.switch_page("views/task.py", query_params={"task_id": stuck_id})


def scores_tab(view: View) -> None:
    quality_tab(filters, view.by, view.grain)


DETAILS = ["Histogram", "Tokens per second", "Failures and errors", "Stuck tasks", "Scores"]


# A fragment: opening the panel or another tab, or a widget inside one, reruns these tabs
# only. Closed, the panel draws nothing (docs/design.md, "Pages"); a link that names a tab
# opens it, and so does a status filter that leaves no latency to show.
@st.fragment
def details(view: View) -> None:
    """Histogram, output speed, failures and errors, stuck tasks, scores: the open tab."""
    ui.lazy_expander(
        "Histogram, tokens per second, failures and errors, stuck tasks, scores",
        "perf_details_open",
        lambda: detail_tabs(view),
        icon=":material/query_stats:",
        expanded=scope is None or "perf_tab" in st.query_params,
    )


def detail_tabs(view: View) -> None:
    tabs = ui.lazy_tabs(DETAILS, key="perf_tab")
    shows = (histogram_tab, speed_tab, failures_tab, stuck_tab, scores_tab)
    for tab, show in zip(tabs, shows, strict=True):
        if tab.open:
            with tab:
                show(view)


# A fragment: a control, a click on a chart or a row reruns the page's body only, not the
# app's sidebar and checks (docs/design.md, "Pages"); the percentile's trend and the tabs
# below rerun on their own.
@st.fragment(key=BODY)
def latency_section() -> None:
    """The controls, what got slower, the percentile charts, the tasks behind a selection
    and the detail tabs."""
    view = controls()
    if scope is None:
        st.warning(
            f"The status filter ({', '.join(filters.statuses)}) leaves out completed tasks, "
            "and only completed tasks have a latency: no latency chart, percentile or "
            "slowdown can be shown. Failures and stuck tasks are below.",
            icon=":material/filter_alt_off:",
        )
        tasks_behind(view, None)
    else:
        percentile_trend(view)
        groups, table_rows = by_group(view)
        tasks_behind(view, _selection(view, groups, table_rows))
    details(view)


latency_section()
