"""The page bench/charts.py opens: one kind of dashboard chart drawn by one chart library,
on the same synthetic data for every library (`?chart=...&lib=...&days=...&groups=...`).

Charts (the shapes the dashboard's pages draw, with the columns its rollups return):
- spend_stack: stacked bars, spend per day by group (Overview, Cost);
- latency_lines: a percentile per day, one line with markers per group (Performance);
- top_bars: ten horizontal bars, spend by group (Overview's top lists);
- pct_groups: grouped bars, p50/p90/p95/p99 per group (Performance);
- page: spend_stack, pct_groups and top_bars on one page (a chart page).

Libraries: vegalite (the dashboard's own figure functions, as the pages call
st.altair_chart, drill-down selections included), plotly (the same traces as the Plotly
figures the pages drew before they moved to Vega-Lite, through st.plotly_chart),
plotly_lean (the same without the mode bar), native (st.bar_chart / st.line_chart) and
echarts (st.echarts_chart), with hover tooltips where the library has them.
`?chart=none` draws nothing (the baseline).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from dashboard import figures
from dashboard.figures.colours import Legend, colour_map

st.set_page_config(page_title="Chart bench", layout="wide")
st.title("Chart bench")
params = st.query_params
chart = params.get("chart", "none")
lib = params.get("lib", "plotly")
days = int(params.get("days", "30"))
group_count = int(params.get("groups", "16"))


@st.cache_data
def frames(days: int, group_count: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(spend per day x group, a latency percentile per day x group, percentiles per group)
    from a fixed seed, in the columns queries.usage and queries.latency return."""
    rng = np.random.default_rng(0)
    groups = [f"model-{i:02d}" for i in range(group_count)]
    periods = pd.date_range("2026-10-01", periods=days, freq="D", tz="UTC")
    grid = pd.MultiIndex.from_product([periods, groups], names=["period", "group"]).to_frame(
        index=False
    )
    spend = grid.assign(cost=rng.gamma(2.0, 40.0, len(grid)).round(4))
    latency = grid.assign(
        **{
            p: rng.lognormal(6.5 + i * 0.3, 0.4, len(grid))
            for i, p in enumerate(figures.PERCENTILES)
        }
    )
    by_group = pd.DataFrame(
        {
            "group": groups,
            **{
                p: np.sort(rng.lognormal(6.5, 0.6, group_count)) * (1 + i)
                for i, p in enumerate(figures.PERCENTILES)
            },
        }
    )
    return spend, latency, by_group


spend, latency, by_group = frames(days, group_count)
legend = Legend(colours=colour_map(by_group["group"]))
top = spend.groupby("group", as_index=False)["cost"].sum().sort_values("cost", ascending=False)
# The Plotly figures' layout: legend beside the plot, white template, hover per point.
PLOTLY_LAYOUT = {
    "template": "plotly_white",
    "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
    "legend": {"orientation": "v", "yanchor": "top", "y": 1.0, "xanchor": "left", "x": 1.02},
}


def plotly(figure, key: str, lean: bool) -> None:
    config = {"displayModeBar": False} if lean else {"displaylogo": False}
    figure.update_layout(**PLOTLY_LAYOUT)
    st.plotly_chart(figure, key=key, config=config, on_select="rerun", selection_mode="points")


def draw_spend_stack() -> None:
    if lib.startswith("plotly"):
        figure = px.bar(
            spend,
            x="period",
            y="cost",
            color="group",
            title="Spend per day by model",
            color_discrete_map=legend.colours,
            custom_data=["period", "group"],
        )
        plotly(figure, "spend_stack", lib == "plotly_lean")
    elif lib == "vegalite":
        chart = figures.spend_over_time(spend, "model", "day", legend, selectable=True)
        st.altair_chart(chart, key="spend_stack", on_select="rerun", selection_mode="pick")
    elif lib == "native":
        st.bar_chart(spend, x="period", y="cost", color="group")
    elif lib == "echarts":
        wide = spend.pivot(index="period", columns="group", values="cost").reset_index()
        series = [
            {"type": "bar", "stack": "spend", "name": g, "encode": {"x": "period", "y": g}}
            for g in legend.colours
        ]
        st.echarts_chart(
            _echarts(wide, series, "time", "Spend per day by model"), key="spend_stack"
        )


def draw_latency_lines() -> None:
    if lib.startswith("plotly"):
        figure = px.line(
            latency,
            x="period",
            y="p95",
            color="group",
            markers=True,
            log_y=True,
            title="p95 time to first token per day by model",
            color_discrete_map=legend.colours,
            custom_data=["period", "group"],
        )
        plotly(figure, "latency_lines", lib == "plotly_lean")
    elif lib == "vegalite":
        chart = figures.percentiles_over_time(
            latency, "ttft", "p95", "model", "day", legend=legend, selectable=True
        )
        st.altair_chart(chart, key="latency_lines", on_select="rerun", selection_mode="pick")
    elif lib == "native":
        st.line_chart(latency, x="period", y="p95", color="group")
    elif lib == "echarts":
        wide = latency.pivot(index="period", columns="group", values="p95").reset_index()
        series = [
            {"type": "line", "name": g, "encode": {"x": "period", "y": g}} for g in legend.colours
        ]
        spec = _echarts(wide, series, "time", "p95 time to first token per day by model")
        spec["yAxis"] = {"type": "log"}
        st.echarts_chart(spec)


def draw_top_bars() -> None:
    if lib.startswith("plotly"):
        figure = px.bar(
            top.head(10).iloc[::-1],
            x="cost",
            y="group",
            color="group",
            orientation="h",
            title="Spend by model (top 10)",
            color_discrete_map=legend.colours,
        )
        plotly(figure.update_layout(showlegend=False), "top_bars", lib == "plotly_lean")
    elif lib == "vegalite":
        chart = figures.usage_bars(top, "Spend by model (top 10)", legend=legend)
        st.altair_chart(chart, key="top_bars")
    elif lib == "native":
        st.bar_chart(top.head(10), x="group", y="cost", horizontal=True)
    elif lib == "echarts":
        rows = top.head(10).iloc[::-1]
        spec = {
            "title": {"text": "Spend by model (top 10)"},
            "animation": False,
            "tooltip": {},
            "dataset": {"source": rows},
            "xAxis": {"type": "value"},
            "yAxis": {"type": "category"},
            "series": [{"type": "bar", "encode": {"x": "cost", "y": "group"}}],
        }
        st.echarts_chart(spec, key="top_bars")


def draw_pct_groups() -> None:
    long = by_group.melt(id_vars="group", var_name="percentile", value_name="ms")
    if lib.startswith("plotly"):
        figure = px.bar(
            long,
            x="group",
            y="ms",
            color="percentile",
            barmode="group",
            title="Time to first token percentiles by model",
            custom_data=["group"],
        )
        plotly(figure, "pct_groups", lib == "plotly_lean")
    elif lib == "vegalite":
        chart = figures.percentiles_by_group(by_group, "ttft", "model", legend, selectable=True)
        st.altair_chart(chart, key="pct_groups", on_select="rerun", selection_mode="pick")
    elif lib == "native":
        st.bar_chart(long, x="group", y="ms", color="percentile", stack=False)
    elif lib == "echarts":
        series = [
            {"type": "bar", "name": p, "encode": {"x": "group", "y": p}}
            for p in figures.PERCENTILES
        ]
        spec = _echarts(by_group, series, "category", "Time to first token percentiles by model")
        st.echarts_chart(spec, key="pct_groups")


def _echarts(source: pd.DataFrame, series: list[dict], x_type: str, title: str) -> dict:
    return {
        "title": {"text": title},
        "animation": False,  # the others draw at once; an animation would only add time
        "tooltip": {"trigger": "axis"},
        "legend": {"type": "scroll", "orient": "vertical", "right": 0, "top": 30},
        "grid": {"right": 160},
        "dataset": {"source": source},
        "xAxis": {"type": x_type},
        "yAxis": {"type": "value"},
        "series": series,
    }


DRAW = {
    "spend_stack": [draw_spend_stack],
    "latency_lines": [draw_latency_lines],
    "top_bars": [draw_top_bars],
    "pct_groups": [draw_pct_groups],
    "page": [draw_spend_stack, draw_pct_groups, draw_top_bars],
    "none": [],
}
for draw in DRAW[chart]:
    draw()
