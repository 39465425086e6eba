"""Overview: headline KPIs against the previous period, spend over time by model, and the
top models, users and teams; firing alerts and their history."""

from __future__ import annotations

import streamlit as st

from dashboard import alerts_panel, data, figures, state, ui
from queries import usage

st.title("Overview")
filters = state.active()
previous = state.period_text(filters.previous_period())
st.caption(f"{state.period_text(filters)} · changes against the {previous} before")

if data.is_empty():
    ui.empty_state()
    st.stop()

nothing = state.nothing_text(filters)  # what an empty chart says
KPI_FORMAT = {
    "spend": ("Spend", ui.money, "normal"),
    "tasks": ("Tasks", ui.count, "normal"),
    "runs": ("Runs", ui.count, "normal"),
    "active_users": ("Active users", ui.count, "normal"),
    "tokens": ("Tokens", ui.count, "normal"),
    "p95_ttft_ms": ("p95 time to first token", ui.millis, "inverse"),
    "failure_rate": ("Failure rate", ui.percent, "inverse"),
}
kpis = data.cached(usage.kpis, filters)
# Cards wrap to a new line on a narrow screen instead of cutting their values.
with ui.kpi_cards("overview"):
    for row in kpis.itertuples():
        name, fmt, color = KPI_FORMAT.get(row.metric, (row.metric, ui.count, "normal"))
        st.metric(
            name,
            fmt(row.value),
            delta=ui.change(row.change),
            delta_color=color,
            help=f"Previous period: {fmt(row.previous)}"
            + (" · completed tasks only" if row.metric == "p95_ttft_ms" else ""),
            border=True,
        )

grain = ui.grain_for((filters.end - filters.start).days)
# counts=False: the chart shows spend only, so the distinct runs/users are not computed.
spend = data.cached(usage.usage_over_time, filters, grain=grain, by="model", counts=False)
# Vega-Lite, not Plotly: with no selection to keep, it draws these charts markedly faster
# (bench/charts.py; docs/design.md, "Pages"), and the page then loads no Plotly at all.
ui.chart(
    figures.spend_over_time, spend, "model", grain, ui.legend("model"), nothing=nothing,
    key="overview_spend",
)  # fmt: skip


# A fragment: opening another tab reruns these lists only (docs/design.md, "Pages").
@st.fragment
def top_lists() -> None:
    """Spend by model, user or team: the open tab's chart, and its table while open; a
    hidden tab computes nothing."""
    st.subheader("Top models, users and teams")
    tabs = ui.lazy_tabs(["Models", "Users", "Teams"], key="top")
    for tab, by in zip(tabs, ("model", "user", "team"), strict=True):
        if not tab.open:
            continue
        with tab:
            rows = data.cached(usage.usage_by, filters, by=by)
            ui.chart(
                figures.usage_bars, rows, f"Spend by {by} (top 10)", legend=ui.legend(by),
                nothing=nothing, key=f"overview_top_{by}",
            )  # fmt: skip
            # Below the chart (beside it the table hid most of its columns: README,
            # "Dashboard layout"), and lazily: the table of every group and its CSV are
            # drawn only while open, so the first paint needs no data grid (docs/design.md,
            # "Pages").
            ui.lazy_expander(
                f"Every {by}: table and CSV ({ui.plural(len(rows), by)})",
                f"overview_table_{by}_open",
                lambda rows=rows, by=by: ui.table(
                    ui.group_frame(rows, by),
                    key=f"overview_table_{by}",
                    filename=f"usage_by_{by}",
                    height=380,
                ),
                icon=":material/table:",
            )


top_lists()


@st.fragment
def kpi_table() -> None:
    """The KPIs as a table with its CSV, built only while the expander is open (opening it
    reruns this fragment only)."""
    ui.lazy_expander(
        "KPI table",
        "overview_kpis_open",
        lambda: ui.table(
            kpis.assign(metric=[KPI_FORMAT.get(m, (m,))[0] for m in kpis["metric"]]),
            key="overview_kpis",
            filename="kpis",
            caption="Spend in USD, p95 time to first token in ms, failure rate as a fraction.",
        ),
    )


kpi_table()

# --- Alerts (dashboard/alerts_panel.py) -----------------------------------------------------
# Everyone: a member reads the rules of their own runs; managers and admins change them.
alerts_panel.show(data.database_url())
