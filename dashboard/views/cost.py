"""Cost (for managers): spend over time by a chosen dimension, month-end forecast against a
remembered budget, the most expensive runs and tasks, cost per run, and a what-if model swap."""

from __future__ import annotations

from datetime import date

import streamlit as st

from dashboard import data, figures, state, ui
from dashboard.safe import md
from queries import drilldown, forecast, usage, whatif
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

# --- Forecast and budget ------------------------------------------------------------------
st.subheader("This month: forecast vs budget")
saved_budget = float(data.load_setting("monthly_budget", 0.0) or 0.0)
cols = st.columns(4, border=True)
budget = cols[0].number_input(
    "Monthly budget ($)",
    min_value=0.0,
    value=saved_budget,
    step=100.0,
    format="%.2f",
    key="cost_budget",
    help="Remembered in $AI_RUNS_HOME/dashboard.json for everyone using this dashboard.",
)
if budget != saved_budget:
    data.save_setting("monthly_budget", budget)
result = data.cached(forecast.spend_forecast, filters, budget=budget or None)
cols[1].metric("Month to date", ui.money(result["month_to_date"]))
band = f"{ui.money(result['forecast_low'], 0)} – {ui.money(result['forecast_high'], 0)}"
cols[2].metric(
    "Month-end forecast",
    ui.money(result["forecast"]),
    delta=f"band {band}",
    delta_color="off",
    delta_arrow="off",
    help="About a 90% band. " + str(result.get("method", "")),
)
if budget:
    over = float(result["forecast"]) - budget
    cols[3].metric(
        "Budget",
        ui.money(budget, 0),
        delta=f"{'over' if over > 0 else 'under'} by {ui.money(abs(over), 0)}",
        delta_color="inverse" if over > 0 else "normal",
        delta_arrow="up" if over > 0 else "down",
    )
else:
    cols[3].metric("Budget", "not set", help="Set a monthly budget on the left.")
st.plotly_chart(figures.forecast(result), key="cost_forecast")

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

# --- What if -------------------------------------------------------------------------------
st.subheader("What if we had used another model?")
options = data.filter_options()
left, right = st.columns(2)
providers = options.get("providers") or ["openai"]
target_provider = left.selectbox(
    "Target provider",
    providers,
    index=providers.index("openai") if "openai" in providers else 0,
    key="whatif_provider",
)
models = options.get("models") or []
target_model = right.selectbox(
    "Target model",
    models,
    index=models.index("gpt-4o-mini") if "gpt-4o-mini" in models else 0,
    accept_new_options=True,
    key="whatif_model",
    help="Any model genai-prices knows for that provider; type a name to add one.",
)
if target_model:
    try:
        what_if = data.cached(
            whatif.what_if_cost,
            filters,
            target_provider=target_provider,
            target_model=target_model,
        )
    except ValueError as exc:
        st.error(md(exc))
    else:
        actual = float(what_if["actual_cost"].sum()) if not what_if.empty else 0.0
        other = float(what_if["what_if_cost"].sum()) if not what_if.empty else 0.0
        diff = other - actual
        share = f" ({diff / actual:+.0%})" if actual else ""
        st.markdown(
            f"The same tokens on **{md(target_provider)}/{md(target_model)}** would have cost "
            f"**{ui.money(other)}** instead of **{ui.money(actual)}**: "
            f"{'an extra' if diff > 0 else 'a saving of'} **{ui.money(abs(diff))}**{share}."
        )
        st.plotly_chart(
            figures.what_if(what_if, f"{target_provider}/{target_model}"), key="cost_whatif"
        )
        ui.table(what_if, key="cost_whatif_table", filename="what_if")
