"""Performance figures of the dashboard: latency percentiles over time and by group, the
latency histogram, tokens per second, failure rates. DataFrame in, Altair (Vega-Lite)
chart out (dashboard/figures/vega.py); units (ms, tokens/s, %) in the axis titles."""

from __future__ import annotations

import altair as alt
import pandas as pd

from dashboard.figures.colours import Legend, top_groups
from dashboard.figures.parts import LATENCY_LABELS, PERCENTILES, PLAIN, label
from dashboard.figures.vega import (
    HEIGHT,
    POINT_LEGEND_ROW,
    colours,
    empty,
    fitting_legend,
    group_text,
    groups_x,
    periods,
    pick,
    time_x,
    with_pick,
)

# Two series drawn side by side or as lines (percentiles, failed / cancelled), as Plotly's
# first colours were.
SERIES_COLOURS = ["#636efa", "#ef553b", "#00cc96", "#ab63fa"]
PERCENT = ".2~%"


def _series_colour(names: list[str], title: str | None = None) -> alt.Color:
    return alt.Color(
        "series:N",
        title=title,
        sort=names,
        scale=alt.Scale(domain=names, range=SERIES_COLOURS[: len(names)]),
        legend=alt.Legend(orient="right"),
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
    selectable: bool = False,
) -> alt.LayerChart | alt.Chart:
    """One line per group: a latency percentile (ms) per period (latency_percentiles with
    grain and by). Points carry [period, group] for drill-down (`selectable`: a click near
    a point selects it, vega.PICK). A log axis by default, so a model that became 2x slower
    shows the same jump whether it answers in 300 ms or 30 s. Groups in `highlight` are
    drawn bold and the others faded. Only the groups with the most tasks that have a colour
    are drawn (colours.top_groups), and the highlighted ones."""
    title = f"{percentile} {LATENCY_LABELS.get(metric, metric).lower()} per {grain} by {by_label}"
    if df.empty:
        return empty(title, nothing, selectable=selectable)
    df = (top_groups(df, legend, "tasks", keep=highlight) if "tasks" in df else df).reset_index(
        drop=True
    )
    grouped = "group" in df
    groups = df["group"] if grouped else pd.Series([None] * len(df))
    marked = {label(g) for g in highlight}
    bold = [label(g) in marked for g in groups]
    names = [
        (f"{legend.name(g)} ▲ slower" if b else legend.name(g)) if grouped else percentile
        for g, b in zip(groups, bold, strict=True)
    ]
    frame = periods(df["period"], grain).assign(
        name=names,
        value=df[percentile].astype(float).to_numpy(),
        width=[4.0 if b else 1.5 for b in bold],
        opacity=[1.0 if b or not marked else 0.35 for b in bold],
        pick_group=group_text(groups),
    )
    y_title = f"{percentile} {LATENCY_LABELS[metric]} (ms{', log' if log_y else ''})"
    base = alt.Chart(frame).encode(
        x=time_x(grain),
        y=alt.Y(
            "value:Q",
            title=y_title,
            scale=alt.Scale(type="log") if log_y else alt.Scale(zero=True),
            axis=alt.Axis(format=",.0f"),
        ),
        color=colours(names, [legend.colour(g) for g in groups], by_label),
        opacity=alt.Opacity("opacity:Q", scale=None, legend=None),
        tooltip=[
            alt.Tooltip("when:N", title=grain),
            alt.Tooltip("name:N", title=by_label),
            alt.Tooltip("value:Q", title=f"{percentile} (ms)", format=",.0f"),
        ],
    )
    lines = base.mark_line().encode(strokeWidth=alt.StrokeWidth("width:Q", scale=None))
    points = base.mark_point(filled=True, size=45)
    if selectable:
        points = points.add_params(pick(nearest=True))
    height = fitting_legend(HEIGHT, names, row=POINT_LEGEND_ROW)
    return alt.layer(lines, points, title=title).properties(height=height)


def percentiles_by_group(
    df: pd.DataFrame,
    metric: str = "ttft",
    by_label: str = "model",
    legend: Legend = PLAIN,
    *,
    nothing: str | None = None,
    selectable: bool = False,
) -> alt.Chart:
    """Grouped bars p50/p90/p95/p99 (ms) per group (latency_percentiles with by), for the
    groups with the most tasks that have a colour (colours.top_groups). `selectable`: a
    click on a bar selects its group (vega.PICK)."""
    title = f"{LATENCY_LABELS.get(metric, metric)} percentiles by {by_label}"
    if df.empty:
        return empty(title, nothing, selectable=selectable)
    df = (top_groups(df, legend, "tasks") if "tasks" in df else df).reset_index(drop=True)
    names = [legend.name(g) for g in df["group"]]
    picks = group_text(df["group"])
    frame = pd.concat(
        [
            pd.DataFrame(
                {
                    "name": names,
                    "series": pct,
                    "pick_period": "",
                    "pick_group": picks,
                    "ms": df[pct].astype(float).to_numpy(),
                }
            )
            for pct in PERCENTILES
        ],
        ignore_index=True,
    )
    y_title = f"{LATENCY_LABELS[metric]} (ms)"
    chart = (
        alt.Chart(frame, title=title, height=HEIGHT)
        .mark_bar()
        .encode(
            x=groups_x(names, by_label.capitalize()),
            xOffset=alt.XOffset("series:N", sort=list(PERCENTILES)),
            y=alt.Y("ms:Q", title=y_title, axis=alt.Axis(format=",.0f")),
            color=_series_colour(list(PERCENTILES), "percentile"),
            tooltip=[
                alt.Tooltip("name:N", title=by_label),
                alt.Tooltip("series:N", title="percentile"),
                alt.Tooltip("ms:Q", title="ms", format=",.0f"),
            ],
        )
    )
    if selectable:
        chart = with_pick(chart)
    return chart


def latency_histogram(
    df: pd.DataFrame, metric: str = "ttft", *, nothing: str | None = None
) -> alt.Chart:
    """Task counts per log-spaced latency bucket (latency_histogram), one colour per group
    when it has a `group` column (drawn over each other, see-through)."""
    title = f"{LATENCY_LABELS.get(metric, metric)} distribution"
    if df.empty:
        return empty(title, nothing)
    grouped = "group" in df
    low = df["bucket_low_ms"].astype(float).clip(lower=1).to_numpy()
    high = df["bucket_high_ms"].astype(float).to_numpy()
    frame = pd.DataFrame(
        {
            "low": low,
            "high": high,
            "tasks": df["tasks"].astype(int).to_numpy(),
            "name": [label(g) for g in df["group"]] if grouped else "tasks",
            "range": [f"{a:,.0f}–{b:,.0f} ms" for a, b in zip(low, high, strict=True)],
        }
    )
    return (
        alt.Chart(frame, title=title, height=HEIGHT)
        .mark_bar(opacity=0.55 if grouped else 0.85)
        .encode(
            x=alt.X(
                "low:Q",
                title=f"{LATENCY_LABELS[metric]} (ms, log scale)",
                scale=alt.Scale(type="log"),
                axis=alt.Axis(format=",.0f"),
            ),
            x2="high:Q",
            y=alt.Y("tasks:Q", title="Tasks"),
            y2=alt.datum(0),
            color=alt.Color("name:N", title=None, legend=alt.Legend(orient="right")),
            tooltip=[
                alt.Tooltip("range:N", title="latency"),
                alt.Tooltip("name:N", title="group"),
                alt.Tooltip("tasks:Q", title="tasks", format=","),
            ],
        )
    )


def tokens_per_second(
    df: pd.DataFrame, by_label: str = "model", legend: Legend = PLAIN, *, nothing: str | None = None
) -> alt.LayerChart | alt.Chart:
    """Output speed per group: p50 bars with p90 markers (tokens_per_second)."""
    title = f"Output speed by {by_label}"
    if df.empty:
        return empty(title, nothing)
    names = [legend.name(g) for g in df["group"]]
    frame = pd.DataFrame(
        {
            "name": names,
            "p50": df["p50"].astype(float).to_numpy(),
            "p90": df["p90"].astype(float).to_numpy(),
        }
    )
    x = groups_x(names, by_label.capitalize())
    tooltip = [
        alt.Tooltip("name:N", title=by_label),
        alt.Tooltip("p50:Q", title="p50 (tokens/s)", format=",.1f"),
        alt.Tooltip("p90:Q", title="p90 (tokens/s)", format=",.1f"),
    ]
    # Each layer names its series in a column: a constant colour (a datum) takes no scale.
    colour = _series_colour(["p50", "p90"])
    bars = (
        alt.Chart(frame.assign(series="p50"))
        .mark_bar()
        .encode(
            x=x, y=alt.Y("p50:Q", title="Output speed (tokens/s)"), color=colour, tooltip=tooltip
        )
    )
    marks = (
        alt.Chart(frame.assign(series="p90"))
        .mark_point(filled=True, size=70)
        .encode(x=x, y=alt.Y("p90:Q"), color=colour, tooltip=tooltip)
    )
    return alt.layer(bars, marks, title=title).properties(height=HEIGHT)


def failure_rates_over_time(
    df: pd.DataFrame, grain: str = "day", *, nothing: str | None = None
) -> alt.Chart:
    """Failure and cancel rates (%) per period (failure_rates with grain)."""
    title = f"Failure and cancel rate per {grain}"
    if df.empty:
        return empty(title, nothing)
    series = ["failed", "cancelled"]
    when = periods(df["period"], grain)
    frame = pd.concat(
        [
            when.assign(series=name, rate=df[column].astype(float).to_numpy())
            for column, name in (("failure_rate", "failed"), ("cancel_rate", "cancelled"))
        ],
        ignore_index=True,
    )
    return (
        alt.Chart(frame, title=title, height=HEIGHT)
        .mark_line(point=True)
        .encode(
            x=time_x(grain),
            y=alt.Y(
                "rate:Q",
                title="Share of finished tasks (%)",
                axis=alt.Axis(format="~%"),
                scale=alt.Scale(zero=True),
            ),
            color=_series_colour(series),
            tooltip=[
                alt.Tooltip("when:N", title=grain),
                alt.Tooltip("series:N", title="status"),
                alt.Tooltip("rate:Q", title="share", format=PERCENT),
            ],
        )
    )


def failure_rates_by(
    df: pd.DataFrame, by_label: str = "model", legend: Legend = PLAIN, *, nothing: str | None = None
) -> alt.Chart:
    """Failure and cancel rate (%) per group (failure_rates with by)."""
    title = f"Failure and cancel rate by {by_label}"
    if df.empty:
        return empty(title, nothing)
    names = [legend.name(g) for g in df["group"]]
    series = ["failed", "cancelled"]
    frame = pd.concat(
        [
            pd.DataFrame(
                {"name": names, "series": name, "rate": df[column].astype(float).to_numpy()}
            )
            for column, name in (("failure_rate", "failed"), ("cancel_rate", "cancelled"))
        ],
        ignore_index=True,
    )
    return (
        alt.Chart(frame, title=title, height=HEIGHT)
        .mark_bar()
        .encode(
            x=groups_x(names, by_label.capitalize()),
            xOffset=alt.XOffset("series:N", sort=series),
            y=alt.Y("rate:Q", title="Share of finished tasks (%)", axis=alt.Axis(format="~%")),
            color=_series_colour(series),
            tooltip=[
                alt.Tooltip("name:N", title=by_label),
                alt.Tooltip("series:N", title="status"),
                alt.Tooltip("rate:Q", title="share", format=PERCENT),
            ],
        )
    )
