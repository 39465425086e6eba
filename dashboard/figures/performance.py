"""Performance figures of the dashboard: latency percentiles over time and by group, the
latency histogram, tokens per second, failure rates. DataFrame in, plotly Figure out;
units (ms, tokens/s, %) in the axis titles."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.colours import Legend, top_groups
from dashboard.figures.parts import (
    LATENCY_LABELS,
    PERCENTILES,
    PLAIN,
    empty,
    hover_x,
    label,
    legend_aside,
    new_figure,
    point_data,
    series_groups,
    time_axis,
)


def percentiles_over_time(
    df: pd.DataFrame,
    metric: str = "ttft",
    percentile: str = "p95",
    by_label: str = "model",
    grain: str = "day",
    log_y: bool = True,
    highlight: tuple = (),
    legend: Legend = PLAIN,
    *,
    nothing: str | None = None,
) -> go.Figure:
    """One line per group: a latency percentile (ms) per period (latency_percentiles with
    grain and by). Points carry [period, group] for drill-down. A log axis by default, so
    a model that became 2x slower shows the same jump whether it answers in 300 ms or 30 s.
    Groups in `highlight` are drawn bold and the others faded. Only the groups with the
    most tasks that have a colour are drawn (colours.top_groups), and the highlighted ones."""
    title = f"{percentile} {LATENCY_LABELS.get(metric, metric).lower()} per {grain} by {by_label}"
    if df.empty:
        return empty(title, nothing)
    df = top_groups(df, legend, "tasks", keep=highlight) if "tasks" in df else df
    fig = new_figure(
        title, f"{grain.capitalize()} (UTC)", f"{percentile} {LATENCY_LABELS[metric]} (ms)"
    )
    marked = {label(g) for g in highlight}
    for group, rows in series_groups(df):
        bold = label(group) in marked
        colour = legend.colour(group) if "group" in df else None
        fig.add_scatter(
            x=rows["period"],
            y=rows[percentile].astype(float),
            mode="lines+markers",
            line={"width": 4, "color": colour} if bold else {"width": 1.5, "color": colour},
            opacity=1.0 if bold or not marked else 0.35,
            name=(f"{legend.name(group)} ▲ slower" if bold else legend.name(group))
            if "group" in df
            else percentile,
            customdata=point_data(rows, group),
            hovertemplate=(
                f"{hover_x(grain)} · %{{fullData.name}}<br>"
                f"{percentile} %{{y:,.0f}} ms<extra>click for tasks</extra>"
            ),
        )
    if log_y:
        fig.update_yaxes(
            type="log", dtick=1, title_text=f"{percentile} {LATENCY_LABELS[metric]} (ms, log)"
        )
    time_axis(fig, grain)
    return legend_aside(fig)


def percentiles_by_group(
    df: pd.DataFrame,
    metric: str = "ttft",
    by_label: str = "model",
    legend: Legend = PLAIN,
    *,
    nothing: str | None = None,
) -> go.Figure:
    """Grouped bars p50/p90/p95/p99 (ms) per group (latency_percentiles with by), for the
    groups with the most tasks that have a colour (colours.top_groups)."""
    title = f"{LATENCY_LABELS.get(metric, metric)} percentiles by {by_label}"
    if df.empty:
        return empty(title, nothing)
    df = top_groups(df, legend, "tasks") if "tasks" in df else df
    names = [legend.name(g) for g in df["group"]]
    fig = new_figure(
        title, by_label.capitalize(), f"{LATENCY_LABELS[metric]} (ms)", barmode="group"
    )
    for pct in PERCENTILES:
        fig.add_bar(
            x=names,
            y=df[pct].astype(float),
            name=pct,
            customdata=[["", "" if pd.isna(g) else str(g)] for g in df["group"]],
            hovertemplate=f"%{{x}} {pct}: %{{y:,.0f}} ms<extra></extra>",
        )
    return fig


def latency_histogram(
    df: pd.DataFrame, metric: str = "ttft", *, nothing: str | None = None
) -> go.Figure:
    """Task counts per log-spaced latency bucket (latency_histogram), one trace per group."""
    title = f"{LATENCY_LABELS.get(metric, metric)} distribution"
    if df.empty:
        return empty(title, nothing)
    fig = new_figure(title, f"{LATENCY_LABELS[metric]} (ms, log scale)", "Tasks")
    for group, rows in series_groups(df):
        fig.add_scatter(
            x=rows["bucket_low_ms"].astype(float).clip(lower=1),
            y=rows["tasks"],
            mode="lines",
            line_shape="hv",
            fill="tozeroy",
            name=label(group) if "group" in df else "tasks",
            customdata=rows["bucket_high_ms"].astype(float),
            hovertemplate="%{x:,.0f}–%{customdata:,.0f} ms: %{y} tasks<extra></extra>",
        )
    legend_aside(fig)
    fig.update_xaxes(type="log")
    return fig


def tokens_per_second(
    df: pd.DataFrame, by_label: str = "model", legend: Legend = PLAIN, *, nothing: str | None = None
) -> go.Figure:
    """Output speed per group: p50 bars with p90 markers (tokens_per_second)."""
    title = f"Output speed by {by_label}"
    if df.empty:
        return empty(title, nothing)
    names = [legend.name(g) for g in df["group"]]
    fig = new_figure(title, by_label.capitalize(), "Output speed (tokens/s)")
    fig.add_bar(x=names, y=df["p50"].astype(float), name="p50")
    fig.add_scatter(x=names, y=df["p90"].astype(float), mode="markers", name="p90")
    return fig


def failure_rates_over_time(
    df: pd.DataFrame, grain: str = "day", *, nothing: str | None = None
) -> go.Figure:
    """Failure and cancel rates (%) per period (failure_rates with grain)."""
    title = f"Failure and cancel rate per {grain}"
    if df.empty:
        return empty(title, nothing)
    fig = new_figure(title, f"{grain.capitalize()} (UTC)", "Share of finished tasks (%)")
    for column, name in (("failure_rate", "failed"), ("cancel_rate", "cancelled")):
        fig.add_scatter(
            x=df["period"],
            y=df[column].astype(float) * 100,
            mode="lines+markers",
            name=name,
            customdata=point_data(df, None),
            hovertemplate=f"{hover_x(grain)} {name}: %{{y:.2f}}%<extra></extra>",
        )
    fig.update_yaxes(ticksuffix="%", rangemode="tozero")
    time_axis(fig, grain)
    return fig


def failure_rates_by(
    df: pd.DataFrame, by_label: str = "model", legend: Legend = PLAIN, *, nothing: str | None = None
) -> go.Figure:
    """Failure and cancel rate (%) per group (failure_rates with by)."""
    title = f"Failure and cancel rate by {by_label}"
    if df.empty:
        return empty(title, nothing)
    names = [legend.name(g) for g in df["group"]]
    custom = [["", "" if pd.isna(g) else str(g)] for g in df["group"]]
    fig = new_figure(title, by_label.capitalize(), "Share of finished tasks (%)", barmode="group")
    fig.add_bar(x=names, y=df["failure_rate"].astype(float) * 100, name="failed", customdata=custom)
    fig.add_bar(
        x=names, y=df["cancel_rate"].astype(float) * 100, name="cancelled", customdata=custom
    )
    fig.update_yaxes(ticksuffix="%")
    return fig
