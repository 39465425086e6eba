"""Cost (for managers): spend over time by a chosen dimension, the forecast against the budget
of the view's scope, budgets by scope, the most expensive runs and tasks, cost per run, a
what-if model swap or mix, and the price books with their re-pricing audit."""

from __future__ import annotations

from datetime import date

import streamlit as st

from dashboard import auth, data, figures, spend_control, state, ui, whatif_panel
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
left, right = st.columns(2)
default_grain = ui.grain_for((filters.end - filters.start).days)
grain = left.segmented_control(
    "Grain", GRAINS, default=default_grain, key="cost_grain", bind="query-params"
)
grain = grain or default_grain
by = right.selectbox("Group by", list(DIMENSIONS), index=1, key="cost_by", bind="query-params")
spend = data.cached(usage.usage_over_time, filters, grain=grain, by=by)
st.plotly_chart(
    figures.spend_over_time(spend, by, grain),
    key="cost_spend",
    on_select="rerun",
    selection_mode="points",
)
unpriced = int(spend["unpriced"].sum()) if "unpriced" in spend else 0
if unpriced:
    st.caption(
        f"{unpriced:,} tasks unpriced (no known price, or no usage reported): "
        "not included in the spend."
    )
bar = figures.selected_slice(st.session_state.get("cost_spend"))
if bar and bar[0]:
    period, group = bar
    st.markdown(
        f"**Most expensive tasks behind {by} = {md(figures.label(group))}, {grain} of "
        f"{md(period)}**"
    )
    behind = data.cached(
        drilldown.tasks_behind,
        filters,
        period=date.fromisoformat(period),
        grain=grain,
        by=by,
        value=group,
        metric="cost",
        limit=100,
    )
    opened = ui.table(
        behind,
        key="cost_behind",
        filename="tasks_behind_spend",
        selectable=True,
        column_config=ui.TASK_COLUMNS,
        column_order=["cost", *ui.TASK_ORDER],
        caption="Most expensive first. Select a task to open its detail.",
    )
    if opened and opened[0] < len(behind):
        st.switch_page(
            "views/task.py", query_params={"task_id": str(behind.iloc[opened[0]]["task_id"])}
        )
else:
    st.caption("Click a bar to list the most expensive tasks behind it.")
with st.expander(f"Spend per {grain} by {by} — table"):
    ui.table(spend.rename(columns={"group": by}), key="cost_spend_table", filename="spend")

# --- Forecast and budget (spend control: dashboard/spend_control.py) ----------------------
options = data.filter_options()
spend_control.forecast_vs_budget(filters)
if auth.current().role in ("manager", "admin"):  # budgets are organisation settings
    spend_control.budget_manager(filters, options)

# --- Most expensive runs and tasks ----------------------------------------------------------
st.subheader("Most expensive")
runs_tab, tasks_tab, dist_tab = st.tabs(["Runs", "Tasks", "Cost per run"])
with runs_tab:
    runs = data.cached(drilldown.most_expensive_runs, filters, limit=100)
    picked = ui.table(
        runs,
        key="cost_runs",
        filename="most_expensive_runs",
        selectable=True,
        column_config={
            **ui.TASK_COLUMNS,
            "name": st.column_config.TextColumn("Run", width="large"),
            "tasks": st.column_config.NumberColumn("Tasks", format="%d"),
        },
        column_order=ui.RUN_ORDER,
        caption="Select a run to open it.",
    )
    if picked:
        run_id = str(runs.iloc[picked[0]]["run_id"])
        st.switch_page("views/runs.py", query_params={"run_id": run_id})
with tasks_tab:
    tasks = data.cached(drilldown.most_expensive_tasks, filters, limit=100)
    picked = ui.table(
        tasks,
        key="cost_tasks",
        filename="most_expensive_tasks",
        selectable=True,
        column_config=ui.TASK_COLUMNS,
        column_order=ui.TASK_ORDER,
        caption="Select a task to open its detail.",
    )
    if picked:
        task_id = str(tasks.iloc[picked[0]]["task_id"])
        st.switch_page("views/task.py", query_params={"task_id": task_id})
with dist_tab:
    per_run = data.cached(drilldown.cost_per_run, filters)
    st.plotly_chart(figures.cost_per_run(per_run), key="cost_per_run")

# --- What if (dashboard/whatif_panel.py) -----------------------------------------------------
whatif_panel.show(filters, options)

# --- Price books and re-pricing audit (dashboard/spend_control.py) ---------------------------
if auth.current().role == "admin":  # prices and re-pricing change everyone's costs
    spend_control.price_books_manager(options)
