"""Vega-Lite charts (st.altair_chart) of the dashboard, for the charts that draw markedly
faster in Vega-Lite than in Plotly in bench/charts.py and need no Plotly selection: the
Overview's spend over time and its top lists, so that page loads no Plotly at all (README,
Performance, "Chart libraries"). DataFrame in, Altair chart out; the same data, colours,
names and units as their Plotly twins in cost.py.
"""

from __future__ import annotations

import textwrap

import altair as alt
import pandas as pd

from dashboard.figures.colours import Legend, fold_tail
from dashboard.figures.parts import NO_TASKS, PLAIN, TICK_FORMATS

HEIGHT = 400


def empty(title: str, message: str | None = None) -> alt.Chart:
    """A blank chart that says why it is blank (as parts.empty)."""
    lines = textwrap.wrap(message or NO_TASKS, width=56)
    frame = pd.DataFrame({"line": lines, "row": range(len(lines))})
    return (
        alt.Chart(frame, title=title, height=200)
        .mark_text(fontSize=14, color="#666")
        .encode(text="line:N", y=alt.Y("row:O", axis=None))
        .configure_view(stroke=None)
    )


def spend_over_time(
    df: pd.DataFrame,
    by_label: str = "model",
    grain: str = "day",
    legend: Legend = PLAIN,
    *,
    nothing: str | None = None,
) -> alt.Chart:
    """Stacked bars of spend per period, one stable colour per group (usage_over_time with
    by); groups past the legend's colours fold into "other", as cost.spend_over_time."""
    title = f"Spend per {grain} by {by_label}"
    if df.empty:
        return empty(title, nothing)
    rows = fold_tail(df, legend, "cost")
    names = [legend.name(g) for g in rows["group"]]
    frame = pd.DataFrame(
        {"period": rows["period"], "name": names, "cost": rows["cost"].astype(float)}
    )
    order = list(dict.fromkeys(names))
    colours = [legend.colour(g) for g in dict.fromkeys(rows["group"])]
    unit = {"month": "yearmonth", "week": "yearmonthdate", "day": "yearmonthdate"}[grain]
    return (
        alt.Chart(frame, title=title, height=HEIGHT)
        .mark_bar()
        .encode(
            x=alt.X(
                f"{unit}(period):T",
                title=f"{grain.capitalize()} (UTC)",
                axis=alt.Axis(format=TICK_FORMATS.get(grain, "%d %b")),
            ),
            y=alt.Y("sum(cost):Q", title="Cost (USD)", axis=alt.Axis(format="$,.2f")),
            color=alt.Color(
                "name:N",
                title=by_label,
                scale=alt.Scale(domain=order, range=colours),
                legend=alt.Legend(orient="right"),
            ),
            order=alt.Order("name:N"),
            tooltip=[
                alt.Tooltip(f"{unit}(period):T", title=grain),
                alt.Tooltip("name:N", title=by_label),
                alt.Tooltip("sum(cost):Q", title="Cost (USD)", format="$,.2f"),
            ],
        )
    )


def usage_bars(
    df: pd.DataFrame,
    title: str,
    legend: Legend = PLAIN,
    top: int = 10,
    *,
    nothing: str | None = None,
) -> alt.Chart:
    """Horizontal bars of spend per group (usage_by), largest on top, the first `top` rows,
    each in its group's stable colour, as cost.usage_bars."""
    if df.empty:
        return empty(title, nothing)
    rows = df.head(top)
    names = [legend.name(g) for g in rows["group"]]
    frame = pd.DataFrame({"name": names, "cost": rows["cost"].astype(float)})
    colours = [legend.colour(g) for g in rows["group"]]
    return (
        alt.Chart(frame, title=title, height=max(160, 28 * len(frame)))
        .mark_bar()
        .encode(
            y=alt.Y("name:N", sort=names, title=None),
            x=alt.X("cost:Q", title="Cost (USD)", axis=alt.Axis(format="$,.2f")),
            color=alt.Color("name:N", scale=alt.Scale(domain=names, range=colours), legend=None),
            tooltip=[
                alt.Tooltip("name:N", title="group"),
                alt.Tooltip("cost:Q", title="Cost (USD)", format="$,.2f"),
            ],
        )
    )
