"""Cost figures of the dashboard (Overview, Cost, spend control): spend over time, A x B
breakdowns, usage bars, the forecast, cost per run, the what-if. DataFrame in, plotly
Figure out; units in the axis titles."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.colours import Legend, fold_tail
from dashboard.figures.parts import (
    PLAIN,
    empty,
    hover_x,
    legend_aside,
    new_figure,
    point_data,
    series_groups,
    time_axis,
)


def spend_over_time(
    df: pd.DataFrame,
    by_label: str = "model",
    grain: str = "day",
    legend: Legend = PLAIN,
    value: str = "cost",
    *,
    nothing: str | None = None,
) -> go.Figure:
    """Stacked bars of spend (or `value`, e.g. "tokens_total") per period, one stable colour
    per group (usage_over_time(by=...)); groups past the legend's colours fold into "other"."""
    what = "Spend" if value == "cost" else _VALUE_TITLES.get(value, value)
    title = f"{what} per {grain} by {by_label}"
    if df.empty:
        return empty(title, nothing)
    unit = "Cost (USD)" if value == "cost" else what
    fig = new_figure(title, f"{grain.capitalize()} (UTC)", unit, barmode="stack")
    df = fold_tail(df, legend, value)
    money_value = value == "cost"
    number = "$%{y:,.2f}" if money_value else "%{y:,.0f}"
    for group, rows in series_groups(df):
        fig.add_bar(
            x=rows["period"],
            y=rows[value].astype(float),
            name=legend.name(group) if "group" in df else what.lower(),
            marker_color=legend.colour(group) if "group" in df else None,
            customdata=point_data(rows, group),
            hovertemplate=f"{hover_x(grain)}<br>%{{fullData.name}}: {number}<extra></extra>",
        )
    if money_value:
        fig.update_yaxes(tickprefix="$", tickformat=",.2f")
    time_axis(fig, grain)
    return legend_aside(fig)


_VALUE_TITLES = {
    "tokens_total": "Total tokens",
    "tokens_input": "Input tokens",
    "tokens_output": "Output tokens",
    "tasks": "Tasks",
}


def pairs_bars(
    df: pd.DataFrame,
    a_label: str,
    b_label: str,
    legend: Legend = PLAIN,
    a_names: Legend = PLAIN,
    value: str = "cost",
    *,
    nothing: str | None = None,
) -> go.Figure:
    """Stacked horizontal bars for a breakdown by A × B (usage_pairs): one bar per A value
    (largest on top), one stable colour per B value; B values past the colours fold into
    "other". `df` columns: a, b, and `value`."""
    what = "Spend" if value == "cost" else _VALUE_TITLES.get(value, value)
    title = f"{what} by {a_label} × {b_label}"
    if df.empty:
        return empty(title, nothing)
    totals = df.groupby("a", dropna=False)[value].sum().sort_values(ascending=True)
    order = [a_names.name(a) for a in totals.index]
    frame = fold_tail(df.rename(columns={"b": "group"}), legend, value, keys=("a",))
    fig = new_figure(
        title, "Cost (USD)" if value == "cost" else what, a_label.capitalize(), barmode="stack"
    )
    for group, rows in series_groups(frame):
        fig.add_bar(
            y=[a_names.name(a) for a in rows["a"]],
            x=rows[value].astype(float),
            orientation="h",
            name=legend.name(group),
            marker_color=legend.colour(group),
            hovertemplate="%{y} · %{fullData.name}: %{x:,.2f}<extra></extra>",
        )
    fig.update_yaxes(categoryorder="array", categoryarray=order)
    if value == "cost":
        fig.update_xaxes(tickprefix="$")
    fig.update_layout(height=max(300, 80 + 26 * len(order)))
    return legend_aside(fig)


def usage_bars(
    df: pd.DataFrame,
    title: str,
    value: str = "cost",
    value_title: str = "Cost (USD)",
    top: int = 10,
    legend: Legend = PLAIN,
    *,
    nothing: str | None = None,
) -> go.Figure:
    """Horizontal bars of `value` per group (usage_by), largest on top, first `top` rows,
    each in its group's stable colour."""
    if df.empty:
        return empty(title, nothing)
    rows = df.head(top).iloc[::-1]
    fig = new_figure(title, value_title, "", showlegend=False)
    fig.add_bar(
        x=rows[value].astype(float),
        y=[legend.name(g) for g in rows["group"]],
        marker_color=[legend.colour(g) for g in rows["group"]],
        orientation="h",
        customdata=[["", "" if pd.isna(g) else str(g)] for g in rows["group"]],
        hovertemplate="%{y}: %{x:,.2f}<extra></extra>",
    )
    if value == "cost":
        fig.update_xaxes(tickprefix="$")
    fig.update_layout(height=max(260, 40 + 28 * len(rows)))
    return fig


def forecast_title(result: Mapping[str, Any]) -> str:
    """What a forecast covers: one month or week (to date and forecast, or closed: actual
    spend), or several budget periods (queries.budgets.spend_over_periods)."""
    start = pd.Timestamp(result["month_start"])
    last = pd.Timestamp(result["month_end"]) - pd.Timedelta(days=1)
    closed = result.get("closed", False)
    if result.get("periods", 1) > 1:
        what = "spend" if closed else "spend to date and forecast"
        return f"{start:%Y-%m-%d} – {last:%Y-%m-%d}: {what}"
    if result.get("period") == "week":  # a weekly budget (dashboard/spend_control.py)
        if closed:
            return f"Week of {start:%Y-%m-%d}: spend"
        return f"Week of {start:%Y-%m-%d}: spend to date and forecast to week end"
    if closed:
        return f"{start:%B %Y}: spend"
    return f"{start:%B %Y}: spend to date and forecast to month end"


# Over 60 lines: one figure's traces (history, forecast, interval, budget line) in order.
def forecast(result: Mapping[str, Any]) -> go.Figure:
    """Cumulative month spend: actual days, forecast days with their band, the budget line
    (from queries.spend_forecast)."""
    title = forecast_title(result)
    daily: pd.DataFrame = result["daily"]
    if daily.empty:
        return empty(title, "No spend in this period yet.")
    fig = new_figure(title, "Day (UTC)", "Cumulative cost (USD)", hovermode="x unified")
    actual = daily[daily["kind"] == "actual"]
    ahead = daily[daily["kind"] == "forecast"]
    if not ahead.empty:
        # Start the band and the dashed line at the last actual day so they join the actuals.
        bridge = pd.concat([actual.tail(1), ahead]) if not actual.empty else ahead
        fig.add_scatter(
            x=bridge["day"],
            y=bridge["high"].astype(float),
            mode="lines",
            line={"width": 0},
            showlegend=False,
            hoverinfo="skip",
        )
        fig.add_scatter(
            x=bridge["day"],
            y=bridge["low"].astype(float),
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor="rgba(99,110,250,0.18)",
            name="forecast band (≈90%)",
            hovertemplate="band low $%{y:,.2f}<extra></extra>",
        )
        fig.add_scatter(
            x=bridge["day"],
            y=bridge["cumulative"].astype(float),
            mode="lines",
            line={"dash": "dash", "color": "#636efa"},
            name="forecast",
            hovertemplate="forecast $%{y:,.2f}<extra></extra>",
        )
    if not actual.empty:
        fig.add_scatter(
            x=actual["day"],
            y=actual["cumulative"].astype(float),
            mode="lines+markers",
            line={"color": "#1f3b99", "width": 3},
            name="actual",
            hovertemplate="actual $%{y:,.2f}<extra></extra>",
        )
    budget = result.get("budget")
    if budget:
        fig.add_hline(
            y=float(budget),
            line={"color": "#d62728", "dash": "dot"},
            annotation_text=f"budget ${float(budget):,.0f}",
            annotation_position="top left",
        )
    fig.update_yaxes(tickprefix="$", rangemode="tozero")
    return fig


def cost_per_run(df: pd.DataFrame) -> go.Figure:
    """Distribution of run cost (cost_per_run_histogram: log-spaced buckets), log x axis
    since a few runs dominate."""
    title = "Cost per run (distribution)"
    if df.empty:
        return empty(title, "No run with a cost in this period.")
    fig = new_figure(title, "Cost per run (USD, log scale)", "Runs", showlegend=False)
    low = df["bucket_low"].astype(float)
    high = df["bucket_high"].astype(float)
    fig.add_bar(
        x=(low * high) ** 0.5,
        y=df["runs"],
        width=(high - low),
        customdata=list(zip(low, high, strict=True)),
        hovertemplate="$%{customdata[0]:.4f}–$%{customdata[1]:.4f}: %{y:,} runs<extra></extra>",
    )
    fig.update_xaxes(type="log", tickprefix="$")
    return fig


def what_if(df: pd.DataFrame, target: str, *, nothing: str | None = None) -> go.Figure:
    """Actual spend vs the same tokens priced on `target`, per model used (what_if_cost)."""
    title = f"Actual spend vs the same tokens on {target}"
    if df.empty:
        return empty(title, nothing)
    names = [f"{p}/{m}" for p, m in zip(df["provider"], df["model"], strict=True)]
    fig = new_figure(title, "Model used", "Cost (USD)", barmode="group")
    fig.add_bar(x=names, y=df["actual_cost"].astype(float), name="actual")
    fig.add_bar(x=names, y=df["what_if_cost"].astype(float), name=f"on {target}")
    fig.update_yaxes(tickprefix="$")
    return fig
