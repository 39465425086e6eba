"""Cost (for managers): spend over time by a chosen dimension, the forecast against the budget
of the view's scope, budgets by scope, the most expensive runs and tasks, cost per run, a
what-if model swap or mix, and the price books with their re-pricing audit."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from dashboard import auth, breakdown, data, figures, spend_control, state, ui, whatif_panel
from dashboard.safe import md
from queries import drilldown, usage
from queries.filters import DIMENSIONS, GRAINS

st.title("Cost")
filters = state.active()
st.caption(state.period_text(filters))

if data.is_empty():
    ui.empty_state()
    st.stop()


# --- Spend over time ----------------------------------------------------------------------
# A fragment: a change of grain or group, or a click on a bar, reruns this section only,
# not the page's other charts and tables nor the app's sidebar (docs/design.md, "Pages").
@st.fragment
def spend_over_time() -> None:
    """Grain and group pickers, the stacked spend chart, the period's cost, and the most
    expensive tasks behind a clicked bar."""
    left, right = st.columns(2)
    default_grain = ui.grain_for((filters.end - filters.start).days)
    grain = left.segmented_control(
        "Grain", GRAINS, default=default_grain, key="cost_grain", bind="query-params"
    )
    grain = grain or default_grain
    by = right.selectbox("Group by", list(DIMENSIONS), index=1, key="cost_by", bind="query-params")
    # counts=False: the chart and its table show spend, tokens and tasks, not distinct runs.
    spend = data.cached(usage.usage_over_time, filters, grain=grain, by=by, counts=False)
    legend = ui.legend(by)
    # Vega-Lite: a click on a bar selects its [period, group] (figures.vega.PICK).
    ui.chart(
        figures.spend_over_time, spend, by, grain, legend,
        nothing=state.nothing_text(filters), selectable=True,
        key="cost_spend", on_select="rerun", selection_mode=figures.vega.PICK,
    )  # fmt: skip
    period_total(spend)
    tasks_behind_bar(grain, by, legend)
    # Lazy: the table and its CSV are built only while the expander is open.
    ui.lazy_expander(
        f"Spend per {grain} by {by} — table", "cost_spend_table_open",
        lambda: ui.table(ui.group_frame(spend, by), key="cost_spend_table", filename="spend"),
    )  # fmt: skip


def period_total(spend: pd.DataFrame) -> None:
    """The chosen period's total, flagged when some tasks are unpriced."""
    unpriced = int(spend["unpriced"].sum()) if "unpriced" in spend else 0
    with ui.kpi_cards("cost_period"):
        st.metric(
            "Cost (USD) in this period",
            ui.money(spend["cost"].sum() if len(spend) else 0),
            border=True,
            help=state.period_text(filters),
        )
        st.metric(
            "Unpriced tasks",
            f"{unpriced:,}",
            border=True,
            help="Tasks with no known price or no usage reported: not in the cost total.",
        )
    if unpriced:
        st.warning(
            f"{spend_control.unpriced_text(unpriced)} (no known price, or no usage reported): "
            "not included in the cost.",
            icon=":material/money_off:",
        )


def tasks_behind_bar(grain: str, by: str, legend: figures.colours.Legend) -> None:
    """The most expensive tasks behind the bar clicked (kept in the URL); a task picked
    opens its detail."""
    clicked = figures.selected_slice(st.session_state.get("cost_spend"))
    bar = ui.url_selection("cost_pick", clicked)
    if bar and bar[0] and bar[1] == figures.OTHER:
        st.info("“other” stands for several groups: filter one of them to list its tasks.")
        return
    if not (bar and bar[0]):
        st.caption("Click a bar to list the most expensive tasks behind it.")
        return
    period, group = bar
    st.markdown(
        f"**Most expensive tasks behind {by} = {md(legend.name(group))}, {grain} of {md(period)}**"
    )
    where = {"period": date.fromisoformat(period), "grain": grain, "by": by, "value": group}
    behind = data.cached(drilldown.tasks_behind, filters, metric="cost", limit=100, **where)
    total = data.cached(drilldown.count_behind, filters, **where)
    opened = ui.table(
        behind,
        key="cost_behind",
        filename="tasks_behind_spend",
        selectable=True,
        column_config=ui.TASK_COLUMNS,
        column_order=["cost", *ui.TASK_ORDER],
        narrow=ui.TASK_NARROW,
        caption=f"{ui.top_of(len(behind), total, 'task')}, most expensive first. "
        "Select a task to open its detail. The link of this page keeps the selection.",
    )
    if opened and opened[0] < len(behind):
        st.switch_page(
            "views/task.py", query_params={"task_id": str(behind.iloc[opened[0]]["task_id"])}
        )


spend_over_time()


# --- Two dimensions at once ----------------------------------------------------------------
# Fragments around the lazy expanders: opening one reruns it alone, and a closed one draws
# nothing (docs/design.md, "Pages"). A link that names the breakdown's pickers opens it.
breakdown.lazy(filters, "cost_pairs", "Breakdown by two dimensions")

# --- Forecast and budget (spend control: dashboard/spend_control.py) ----------------------
options = data.filter_options()
spend_control.forecast_vs_budget(filters)
# Everyone: members read the budgets of their own runs; managers and admins set them.
spend_control.budget_manager(filters, options)

# --- Most expensive runs and tasks ----------------------------------------------------------
st.subheader("Most expensive")


def costliest_runs() -> None:
    runs = data.cached(drilldown.most_expensive_runs, filters, limit=100)
    picked = ui.table(
        runs,
        key="cost_runs",
        filename="most_expensive_runs",
        selectable=True,
        column_config={
            **ui.TASK_COLUMNS,
            "name": st.column_config.TextColumn("Run", width="medium"),
        },
        column_order=ui.RUN_ORDER,
        narrow=ui.RUN_NARROW,
        caption="Select a run to open it.",
    )
    if picked:
        run_id = str(runs.iloc[picked[0]]["run_id"])
        st.switch_page("views/runs.py", query_params={"run_id": run_id})


def costliest_tasks() -> None:
    tasks = data.cached(drilldown.most_expensive_tasks, filters, limit=100)
    picked = ui.table(
        tasks,
        key="cost_tasks",
        filename="most_expensive_tasks",
        selectable=True,
        column_config=ui.TASK_COLUMNS,
        column_order=ui.TASK_ORDER,
        narrow=ui.TASK_NARROW,
        caption="Select a task to open its detail.",
    )
    if picked:
        task_id = str(tasks.iloc[picked[0]]["task_id"])
        st.switch_page("views/task.py", query_params={"task_id": task_id})


def cost_per_run() -> None:
    per_run = data.cached(drilldown.cost_per_run_histogram, filters)
    ui.chart(figures.cost_per_run, per_run, key="cost_per_run")


def costliest_tabs() -> None:
    tabs = ui.lazy_tabs(["Runs", "Tasks", "Cost per run"], key="costliest")
    for tab, show in zip(tabs, (costliest_runs, costliest_tasks, cost_per_run), strict=True):
        if tab.open:  # a hidden tab computes nothing
            with tab:
                show()


# A fragment around a lazy expander, like the breakdown's: the lists wait until opened, so
# the first paint needs no data grid (docs/design.md, "Pages"); a link that names a tab
# opens it.
@st.fragment
def costliest() -> None:
    ui.lazy_expander(
        "Runs, tasks and cost per run",
        "costliest_open",
        costliest_tabs,
        icon=":material/receipt_long:",
        expanded="costliest" in st.query_params,
    )


costliest()


# --- What if (dashboard/whatif_panel.py) -----------------------------------------------------
@st.fragment
def what_if() -> None:
    ui.lazy_expander(
        whatif_panel.TITLE,
        "whatif_open",
        lambda: whatif_panel.show(filters, options),
        icon=":material/swap_horiz:",
    )


what_if()

# --- Price books and re-pricing audit (dashboard/spend_control.py) ---------------------------
if auth.current().role == "admin":  # prices and re-pricing change everyone's costs
    spend_control.price_books_manager(options)
