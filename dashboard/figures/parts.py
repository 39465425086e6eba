"""What every dashboard figure shares (dashboard/figures/ and its two families): the
layout, time axes that fit the grain, series per group, the customdata of drill-down
points, legends and the empty figure. No Streamlit here."""

from __future__ import annotations

import html
import textwrap
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.colours import NOT_SET as NOT_SET
from dashboard.figures.colours import OTHER as OTHER
from dashboard.figures.colours import Legend

LATENCY_LABELS = {"ttft": "Time to first token", "total_time": "Total time"}
PERCENTILES = ("p50", "p90", "p95", "p99")
LAYOUT = {
    "template": "plotly_white",
    "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
    # Beside the plot, top-aligned: a row of legend entries above the plot wraps on a narrow
    # screen and covers the title (README, "Dashboard layout").
    "legend": {"orientation": "v", "yanchor": "top", "y": 1.0, "xanchor": "left", "x": 1.02},
    "hovermode": "closest",
}


def new_figure(title: str, x_title: str, y_title: str, **layout: Any) -> go.Figure:
    """An empty figure with the dashboard's layout, a title and axis titles (units in them)."""
    fig = go.Figure()
    fig.update_layout(
        title={"text": title, "y": 0.98},
        xaxis_title=x_title,
        yaxis_title=y_title,
        **{**LAYOUT, **layout},
    )
    return fig


PLAIN = Legend()
# Axis tick and hover formats that fit a time grain ("Oct 2026" for months).
TICK_FORMATS = {"day": "%d %b", "week": "%d %b %Y", "month": "%b %Y"}
HOVER_FORMATS = {"day": "%Y-%m-%d", "week": "week of %Y-%m-%d", "month": "%b %Y"}


def label(value: Any) -> str:
    """How a group value is shown: None/NaN is "(not set)"."""
    return PLAIN.name(value)


def time_axis(fig: go.Figure, grain: str) -> None:
    """Ticks that fit the grain: one per month at month grain, no midnight times."""
    fig.update_xaxes(tickformat=TICK_FORMATS.get(grain, "%d %b"))
    if grain == "month":
        fig.update_xaxes(dtick="M1")


def hover_x(grain: str) -> str:
    """The hover template of an x value at `grain`."""
    return "%{x|" + HOVER_FORMATS.get(grain, "%Y-%m-%d") + "}"


def series_groups(df: pd.DataFrame) -> list[tuple[Any, pd.DataFrame]]:
    """(group value, rows) in first-seen order; one unnamed group when there is no column."""
    if "group" not in df.columns:
        return [(None, df)]
    keys = df["group"].astype(object).where(df["group"].notna(), None)
    order = list(dict.fromkeys(keys))
    return [(value, df[keys.map(lambda k, v=value: k == v)]) for value in order]


def period_text(series: pd.Series) -> list[str]:
    """Periods as ISO dates ("" for none)."""
    return [pd.Timestamp(v).date().isoformat() if pd.notna(v) else "" for v in series]


def point_data(rows: pd.DataFrame, group: Any) -> list[list[str]]:
    """The customdata of each point: [period ISO date or "", group or ""]."""
    periods = period_text(rows["period"]) if "period" in rows else [""] * len(rows)
    name = "" if group is None else str(group)
    return [[p, name] for p in periods]


def legend_aside(fig: go.Figure, limit: int = 6) -> go.Figure:
    """Many series: a vertical legend on the right instead of a crowded row over the title."""
    if len(fig.data) > limit:
        fig.update_layout(
            legend={"orientation": "v", "yanchor": "top", "y": 1.0, "xanchor": "left", "x": 1.02}
        )
    return fig


NO_TASKS = "No tasks to show in this view."


def empty(title: str, message: str | None = None) -> go.Figure:
    """A blank figure that says why it is blank: `message`, which the page words from the
    filters that are set (dashboard.state.nothing_text), else NO_TASKS."""
    # Wrapped: an annotation never wraps itself, and a long line would leave a narrow chart.
    lines = textwrap.wrap(message or NO_TASKS, width=56)
    fig = new_figure(title, "", "")
    fig.add_annotation(
        text="<br>".join(html.escape(line) for line in lines),
        showarrow=False,
        font={"size": 14, "color": "#666"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


# What st.plotly_chart is given as `config` on every page: no Plotly logo link.
PLOTLY_CONFIG = {"displaylogo": False}
