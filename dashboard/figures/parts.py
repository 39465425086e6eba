"""What the dashboard's figures share: labels, percentiles and tick formats (both
families), and for the Plotly figures (a run's timeline, Compare) the layout and the empty
figure. The Vega-Lite parts are in vega.py. No Streamlit here."""

from __future__ import annotations

import html
import textwrap
from typing import Any

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
# Axis tick formats that fit a time grain ("Oct 2026" for months).
TICK_FORMATS = {"day": "%d %b", "week": "%d %b %Y", "month": "%b %Y"}


def label(value: Any) -> str:
    """How a group value is shown: None/NaN is "(not set)"."""
    return PLAIN.name(value)


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
