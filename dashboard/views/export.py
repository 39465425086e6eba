"""Usage export (for analysts and finance): pick the grain, a dimension and the metrics for
the filtered period, see the table, download it as CSV."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from dashboard import breakdown, data, state, ui
from queries import usage
from queries.filters import DIMENSIONS, GRAINS

METRICS = {
    "cost": "Cost (USD)",
    "tasks": "Tasks",
    "runs": "Runs",
    "active_users": "Active users",
    "tokens_input": "Input tokens",
    "tokens_output": "Output tokens",
    "tokens_total": "Total tokens",
}
WHOLE_PERIOD = "whole period"

st.title("Usage export")
filters = state.active()
st.caption(
    f"{state.period_text(filters)} · the sidebar filters apply · spend in USD, "
    "periods start on their UTC day (weeks on Monday)"
)
if data.is_empty():
    ui.empty_state()
    st.stop()

c1, c2, c3 = st.columns([1, 1, 3])
grain = c1.selectbox("Period", (*GRAINS, WHOLE_PERIOD), key="export_grain", bind="query-params")
by = c2.selectbox(
    "Dimension", ("(none)", *DIMENSIONS), index=2, key="export_by", bind="query-params"
)
metrics = c3.multiselect(
    "Metrics",
    list(METRICS),
    default=["cost", "tasks", "tokens_total"],
    format_func=METRICS.get,
    key="export_metrics",
    bind="query-params",
)
dimension = None if by == "(none)" else by
# Distinct runs and users are the costly part at scale: computed only when shown.
counts = bool({"runs", "active_users"} & set(metrics))
if grain == WHOLE_PERIOD:
    if dimension is None:
        rows = data.cached(usage.usage_over_time, filters, grain="month", counts=counts)
        st.caption("No dimension and no period: showing per month.")
    else:
        rows = data.cached(usage.usage_by, filters, by=dimension, counts=counts)
else:
    rows = data.cached(usage.usage_over_time, filters, grain=grain, by=dimension, counts=counts)
keys = [c for c in ("period", "group") if c in rows.columns]
table = ui.group_frame(rows[keys + [m for m in metrics if m in rows.columns]], dimension)
ui.table(
    table,
    key="export_table",
    filename=f"usage_{grain.replace(' ', '_')}_{dimension or 'total'}_"
    f"{filters.start.date()}_{(filters.end - timedelta(days=1)).date()}",
    height=600,
    caption="The CSV has the units in its headers, plain decimals and ISO dates.",
)

# Lazily, as on Cost: the first paint is the export's own table (docs/design.md, "Pages").
breakdown.lazy(filters, "export_pairs", "By A × B: chart and table")
