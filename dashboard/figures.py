"""Plotly figures of the dashboard: pure functions, DataFrame (as `queries` returns it) in,
plotly Figure out. No Streamlit here, so each can be tested on its own.

Units go in the axis titles: $ for USD, ms for times, tokens, %. Every figure that supports
drill-down carries `customdata` = [period ISO date or "", group or ""] on each point, so a
selection event names the slice it stands for without guessing from trace order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dashboard.colours import NOT_SET as NOT_SET
from dashboard.colours import OTHER as OTHER
from dashboard.colours import Legend, fold_tail

LATENCY_LABELS = {"ttft": "Time to first token", "total_time": "Total time"}
PERCENTILES = ("p50", "p90", "p95", "p99")
_LAYOUT = {
    "template": "plotly_white",
    "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
    "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "left", "x": 0},
    "hovermode": "closest",
}


def _figure(title: str, x_title: str, y_title: str, **layout: Any) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        title={"text": title, "y": 0.98},
        xaxis_title=x_title,
        yaxis_title=y_title,
        **{**_LAYOUT, **layout},
    )
    return fig


PLAIN = Legend()
# Axis tick and hover formats that fit a time grain ("Oct 2026" for months).
TICK_FORMATS = {"day": "%d %b", "week": "%d %b %Y", "month": "%b %Y"}
HOVER_FORMATS = {"day": "%Y-%m-%d", "week": "week of %Y-%m-%d", "month": "%b %Y"}


def label(value: Any) -> str:
    """How a group value is shown: None/NaN is "(not set)"."""
    return PLAIN.name(value)


def _time_axis(fig: go.Figure, grain: str) -> None:
    """Ticks that fit the grain: one per month at month grain, no midnight times."""
    fig.update_xaxes(tickformat=TICK_FORMATS.get(grain, "%d %b"))
    if grain == "month":
        fig.update_xaxes(dtick="M1")


def _hover_x(grain: str) -> str:
    return "%{x|" + HOVER_FORMATS.get(grain, "%Y-%m-%d") + "}"


def _groups(df: pd.DataFrame) -> list[tuple[Any, pd.DataFrame]]:
    """(group value, rows) in first-seen order; one unnamed group when there is no column."""
    if "group" not in df.columns:
        return [(None, df)]
    keys = df["group"].astype(object).where(df["group"].notna(), None)
    order = list(dict.fromkeys(keys))
    return [(value, df[keys.map(lambda k, v=value: k == v)]) for value in order]


def _period_text(series: pd.Series) -> list[str]:
    return [pd.Timestamp(v).date().isoformat() if pd.notna(v) else "" for v in series]


def _customdata(rows: pd.DataFrame, group: Any) -> list[list[str]]:
    periods = _period_text(rows["period"]) if "period" in rows else [""] * len(rows)
    name = "" if group is None else str(group)
    return [[p, name] for p in periods]


def _legend_aside(fig: go.Figure, limit: int = 6) -> go.Figure:
    """Many series: a vertical legend on the right instead of a crowded row over the title."""
    if len(fig.data) > limit:
        fig.update_layout(
            legend={"orientation": "v", "yanchor": "top", "y": 1.0, "xanchor": "left", "x": 1.02}
        )
    return fig


def empty(title: str, message: str = "No tasks match the filters.") -> go.Figure:
    """A blank figure that says why it is blank."""
    fig = _figure(title, "", "")
    fig.add_annotation(text=message, showarrow=False, font={"size": 14, "color": "#666"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def spend_over_time(
    df: pd.DataFrame,
    by_label: str = "model",
    grain: str = "day",
    legend: Legend = PLAIN,
    value: str = "cost",
) -> go.Figure:
    """Stacked bars of spend (or `value`, e.g. "tokens_total") per period, one stable colour
    per group (usage_over_time(by=...)); groups past the legend's colours fold into "other"."""
    what = "Spend" if value == "cost" else _VALUE_TITLES.get(value, value)
    title = f"{what} per {grain} by {by_label}"
    if df.empty:
        return empty(title)
    unit = "Spend ($)" if value == "cost" else what
    fig = _figure(title, f"{grain.capitalize()} (UTC)", unit, barmode="stack")
    df = fold_tail(df, legend, value)
    money_value = value == "cost"
    number = "$%{y:,.2f}" if money_value else "%{y:,.0f}"
    for group, rows in _groups(df):
        fig.add_bar(
            x=rows["period"],
            y=rows[value].astype(float),
            name=legend.name(group) if "group" in df else what.lower(),
            marker_color=legend.colour(group) if "group" in df else None,
            customdata=_customdata(rows, group),
            hovertemplate=f"{_hover_x(grain)}<br>%{{fullData.name}}: {number}<extra></extra>",
        )
    if money_value:
        fig.update_yaxes(tickprefix="$", tickformat=",.2f")
    _time_axis(fig, grain)
    return _legend_aside(fig)


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
) -> go.Figure:
    """Stacked horizontal bars for a breakdown by A × B (usage_pairs): one bar per A value
    (largest on top), one stable colour per B value; B values past the colours fold into
    "other". `df` columns: a, b, and `value`."""
    what = "Spend" if value == "cost" else _VALUE_TITLES.get(value, value)
    title = f"{what} by {a_label} × {b_label}"
    if df.empty:
        return empty(title)
    totals = df.groupby("a", dropna=False)[value].sum().sort_values(ascending=True)
    order = [a_names.name(a) for a in totals.index]
    frame = fold_tail(df.rename(columns={"b": "group"}), legend, value, keys=("a",))
    fig = _figure(
        title, "Spend ($)" if value == "cost" else what, a_label.capitalize(), barmode="stack"
    )
    for group, rows in _groups(frame):
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
    return _legend_aside(fig)


def usage_bars(
    df: pd.DataFrame,
    title: str,
    value: str = "cost",
    value_title: str = "Spend ($)",
    top: int = 10,
    legend: Legend = PLAIN,
) -> go.Figure:
    """Horizontal bars of `value` per group (usage_by), largest on top, first `top` rows,
    each in its group's stable colour."""
    if df.empty:
        return empty(title)
    rows = df.head(top).iloc[::-1]
    fig = _figure(title, value_title, "", showlegend=False)
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


def forecast(result: Mapping[str, Any]) -> go.Figure:
    """Cumulative month spend: actual days, forecast days with their band, the budget line
    (from queries.spend_forecast)."""
    month = pd.Timestamp(result["month_start"]).strftime("%B %Y")
    title = f"{month}: spend to date and forecast to month end"
    if result.get("period") == "week":  # a weekly budget (dashboard/spend_control.py)
        title = f"Week of {result['month_start']}: spend to date and forecast to week end"
    daily: pd.DataFrame = result["daily"]
    if daily.empty:
        return empty(title, "No spend this month yet.")
    fig = _figure(title, "Day (UTC)", "Cumulative spend ($)", hovermode="x unified")
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
    fig = _figure(title, "Cost per run (USD, log scale)", "Runs", showlegend=False)
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


def what_if(df: pd.DataFrame, target: str) -> go.Figure:
    """Actual spend vs the same tokens priced on `target`, per model used (what_if_cost)."""
    title = f"Actual spend vs the same tokens on {target}"
    if df.empty:
        return empty(title)
    names = [f"{p}/{m}" for p, m in zip(df["provider"], df["model"], strict=True)]
    fig = _figure(title, "Model used", "Spend ($)", barmode="group")
    fig.add_bar(x=names, y=df["actual_cost"].astype(float), name="actual")
    fig.add_bar(x=names, y=df["what_if_cost"].astype(float), name=f"on {target}")
    fig.update_yaxes(tickprefix="$")
    return fig


def percentiles_over_time(
    df: pd.DataFrame,
    metric: str = "ttft",
    percentile: str = "p95",
    by_label: str = "model",
    grain: str = "day",
    log_y: bool = True,
    highlight: tuple = (),
    legend: Legend = PLAIN,
) -> go.Figure:
    """One line per group: a latency percentile (ms) per period (latency_percentiles with
    grain and by). Points carry [period, group] for drill-down. A log axis by default, so
    a model that became 2x slower shows the same jump whether it answers in 300 ms or 30 s.
    Groups in `highlight` are drawn bold and the others faded."""
    title = f"{percentile} {LATENCY_LABELS.get(metric, metric).lower()} per {grain} by {by_label}"
    if df.empty:
        return empty(title)
    fig = _figure(
        title, f"{grain.capitalize()} (UTC)", f"{percentile} {LATENCY_LABELS[metric]} (ms)"
    )
    marked = {label(g) for g in highlight}
    for group, rows in _groups(df):
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
            customdata=_customdata(rows, group),
            hovertemplate=(
                f"{_hover_x(grain)} · %{{fullData.name}}<br>"
                f"{percentile} %{{y:,.0f}} ms<extra>click for tasks</extra>"
            ),
        )
    if log_y:
        fig.update_yaxes(
            type="log", dtick=1, title_text=f"{percentile} {LATENCY_LABELS[metric]} (ms, log)"
        )
    _time_axis(fig, grain)
    return _legend_aside(fig)


def percentiles_by_group(
    df: pd.DataFrame, metric: str = "ttft", by_label: str = "model", legend: Legend = PLAIN
) -> go.Figure:
    """Grouped bars p50/p90/p95/p99 (ms) per group (latency_percentiles with by)."""
    title = f"{LATENCY_LABELS.get(metric, metric)} percentiles by {by_label}"
    if df.empty:
        return empty(title)
    names = [legend.name(g) for g in df["group"]]
    fig = _figure(title, by_label.capitalize(), f"{LATENCY_LABELS[metric]} (ms)", barmode="group")
    for pct in PERCENTILES:
        fig.add_bar(
            x=names,
            y=df[pct].astype(float),
            name=pct,
            customdata=[["", "" if pd.isna(g) else str(g)] for g in df["group"]],
            hovertemplate=f"%{{x}} {pct}: %{{y:,.0f}} ms<extra></extra>",
        )
    return fig


def latency_histogram(df: pd.DataFrame, metric: str = "ttft") -> go.Figure:
    """Task counts per log-spaced latency bucket (latency_histogram), one trace per group."""
    title = f"{LATENCY_LABELS.get(metric, metric)} distribution"
    if df.empty:
        return empty(title)
    fig = _figure(title, f"{LATENCY_LABELS[metric]} (ms, log scale)", "Tasks")
    for group, rows in _groups(df):
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
    _legend_aside(fig)
    fig.update_xaxes(type="log")
    return fig


def tokens_per_second(
    df: pd.DataFrame, by_label: str = "model", legend: Legend = PLAIN
) -> go.Figure:
    """Output speed per group: p50 bars with p90 markers (tokens_per_second)."""
    title = f"Output speed by {by_label}"
    if df.empty:
        return empty(title)
    names = [legend.name(g) for g in df["group"]]
    fig = _figure(title, by_label.capitalize(), "Output speed (tokens/s)")
    fig.add_bar(x=names, y=df["p50"].astype(float), name="p50")
    fig.add_scatter(x=names, y=df["p90"].astype(float), mode="markers", name="p90")
    return fig


def failure_rates_over_time(df: pd.DataFrame, grain: str = "day") -> go.Figure:
    """Failure and cancel rates (%) per period (failure_rates with grain)."""
    title = f"Failure and cancel rate per {grain}"
    if df.empty:
        return empty(title)
    fig = _figure(title, f"{grain.capitalize()} (UTC)", "Share of finished tasks (%)")
    for column, name in (("failure_rate", "failed"), ("cancel_rate", "cancelled")):
        fig.add_scatter(
            x=df["period"],
            y=df[column].astype(float) * 100,
            mode="lines+markers",
            name=name,
            customdata=_customdata(df, None),
            hovertemplate=f"{_hover_x(grain)} {name}: %{{y:.2f}}%<extra></extra>",
        )
    fig.update_yaxes(ticksuffix="%", rangemode="tozero")
    _time_axis(fig, grain)
    return fig


def failure_rates_by(
    df: pd.DataFrame, by_label: str = "model", legend: Legend = PLAIN
) -> go.Figure:
    """Failure and cancel rate (%) per group (failure_rates with by)."""
    title = f"Failure and cancel rate by {by_label}"
    if df.empty:
        return empty(title)
    names = [legend.name(g) for g in df["group"]]
    custom = [["", "" if pd.isna(g) else str(g)] for g in df["group"]]
    fig = _figure(title, by_label.capitalize(), "Share of finished tasks (%)", barmode="group")
    fig.add_bar(x=names, y=df["failure_rate"].astype(float) * 100, name="failed", customdata=custom)
    fig.add_bar(
        x=names, y=df["cancel_rate"].astype(float) * 100, name="cancelled", customdata=custom
    )
    fig.update_yaxes(ticksuffix="%")
    return fig


def run_timeline(tasks: pd.DataFrame) -> go.Figure:
    """The tasks of one run on a time axis: a bar from start to first token, then to the end.

    `tasks`: created_at, time_to_first_token, total_time (ms), model, status, task_id.
    """
    title = "Tasks of this run over time"
    if tasks.empty:
        return empty(title, "This run has no tasks.")
    rows = tasks.sort_values("created_at").reset_index(drop=True)
    names = [f"#{i + 1} {m or ''}" for i, m in enumerate(rows["model"])]
    start = pd.to_datetime(rows["created_at"], utc=True)
    ttft = rows["time_to_first_token"].astype(float).fillna(0)
    total = rows["total_time"].astype(float).fillna(ttft)
    fig = _figure(title, "Time (UTC)", "Task", barmode="stack", showlegend=True)
    fig.add_bar(
        y=names,
        x=ttft,
        base=start,
        orientation="h",
        name="waiting for first token (ms)",
        marker_color="#f4a261",
        hovertemplate="TTFT %{x:,.0f} ms<extra></extra>",
    )
    fig.add_bar(
        y=names,
        x=(total - ttft).clip(lower=0),
        base=start + pd.to_timedelta(ttft, unit="ms"),
        orientation="h",
        name="streaming (ms)",
        marker_color="#2a9d8f",
        hovertemplate="streaming %{x:,.0f} ms<extra></extra>",
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="date")
    fig.update_layout(height=max(240, 60 + 26 * len(rows)))
    return fig


def selected_slice(event: Any) -> tuple[str | None, str | None] | None:
    """(period ISO date or None, group or None) of the first selected point of a chart
    drawn here, or None when nothing is selected. `event` is st.plotly_chart's return or
    its session-state value."""
    if not event:
        return None
    selection = event.get("selection") if isinstance(event, Mapping) else event.selection
    points = (selection or {}).get("points") or []
    for point in points:
        custom = point.get("customdata")
        if custom and len(custom) >= 2:
            return (custom[0] or None, custom[1] or None)
        if "x" in point:
            return (str(point["x"])[:10], point.get("legendgroup") or None)
    return None
