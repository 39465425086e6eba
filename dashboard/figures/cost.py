"""Cost figures of the dashboard (Overview, Cost, spend control, Usage export): spend over
time, A x B breakdowns, usage bars, the forecast, cost per run, the what-if. DataFrame in,
Altair (Vega-Lite) chart out (dashboard/figures/vega.py); units in the axis titles."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import altair as alt
import pandas as pd

from dashboard.figures.colours import Legend, fold_tail
from dashboard.figures.parts import PLAIN
from dashboard.figures.vega import (
    HEIGHT,
    colours,
    empty,
    fitting_legend,
    group_text,
    periods,
    time_x,
    with_pick,
)

_VALUE_TITLES = {
    "tokens_total": "Total tokens",
    "tokens_input": "Input tokens",
    "tokens_output": "Output tokens",
    "tasks": "Tasks",
}
MONEY = "$,.2f"  # d3 format of a USD amount on an axis or in a tooltip


def _what(value: str) -> str:
    return "Spend" if value == "cost" else _VALUE_TITLES.get(value, value)


def spend_over_time(
    df: pd.DataFrame,
    by_label: str = "model",
    grain: str = "day",
    legend: Legend = PLAIN,
    value: str = "cost",
    *,
    nothing: str | None = None,
    selectable: bool = False,
) -> alt.Chart:
    """Stacked bars of spend (or `value`, e.g. "tokens_total") per period, one stable colour
    per group (usage_over_time(by=...)); groups past the legend's colours fold into "other".
    `selectable`: a click on a bar selects its [period, group] (vega.PICK)."""
    what = _what(value)
    title = f"{what} per {grain} by {by_label}"
    if df.empty:
        return empty(title, nothing, selectable=selectable)
    rows = fold_tail(df, legend, value).reset_index(drop=True)
    grouped = "group" in rows
    groups = rows["group"] if grouped else pd.Series([None] * len(rows))
    names = [legend.name(g) for g in groups] if grouped else [what.lower()] * len(rows)
    frame = periods(rows["period"], grain).assign(
        name=names, value=rows[value].astype(float).to_numpy(), pick_group=group_text(groups)
    )
    # Stacked here, not by Vega-Lite: a bar that spans its period (x to x2) needs its own
    # y to y2, and the stack then follows the legend's order.
    rank = {name: i for i, name in enumerate(dict.fromkeys(names))}
    frame = frame.assign(rank=frame["name"].map(rank)).sort_values(
        ["period", "rank"], kind="stable"
    )
    frame["top"] = frame.groupby("period")["value"].cumsum()
    frame["bottom"] = frame["top"] - frame["value"]
    number = MONEY if value == "cost" else ",.0f"
    unit = "Cost (USD)" if value == "cost" else what
    chart = (
        alt.Chart(frame, title=title, height=fitting_legend(HEIGHT, names))
        .mark_bar()
        .encode(
            x=time_x(grain),
            x2="period_end:T",
            y=alt.Y("top:Q", title=unit, axis=alt.Axis(format=number)),
            y2="bottom:Q",
            color=colours(names, [legend.colour(g) for g in groups], by_label),
            tooltip=[
                alt.Tooltip("when:N", title=grain),
                alt.Tooltip("name:N", title=by_label),
                alt.Tooltip("value:Q", title=unit, format=number),
            ],
        )
    )
    if selectable:
        chart = with_pick(chart)
    return chart


def pairs_bars(
    df: pd.DataFrame,
    a_label: str,
    b_label: str,
    legend: Legend = PLAIN,
    a_names: Legend = PLAIN,
    value: str = "cost",
    *,
    nothing: str | None = None,
) -> alt.Chart:
    """Stacked horizontal bars for a breakdown by A × B (usage_pairs): one bar per A value
    (largest on top), one stable colour per B value; B values past the colours fold into
    "other". `df` columns: a, b, and `value`."""
    what = _what(value)
    title = f"{what} by {a_label} × {b_label}"
    if df.empty:
        return empty(title, nothing)
    totals = df.groupby("a", dropna=False)[value].sum().sort_values(ascending=False)
    order = [a_names.name(a) for a in totals.index]
    rows = fold_tail(df.rename(columns={"b": "group"}), legend, value, keys=("a",))
    names = [legend.name(g) for g in rows["group"]]
    frame = pd.DataFrame(
        {
            "a_name": [a_names.name(a) for a in rows["a"]],
            "name": names,
            "value": rows[value].astype(float).to_numpy(),
        }
    )
    number = MONEY if value == "cost" else ",.2f"
    axis_title = "Cost (USD)" if value == "cost" else what
    return (
        alt.Chart(frame, title=title, height=fitting_legend(max(220, 26 * len(order)), names))
        .mark_bar()
        .encode(
            y=alt.Y("a_name:N", sort=order, title=a_label.capitalize()),
            x=alt.X("value:Q", title=axis_title, stack="zero", axis=alt.Axis(format=number)),
            color=colours(names, [legend.colour(g) for g in rows["group"]], b_label),
            order=alt.Order("name:N"),
            tooltip=[
                alt.Tooltip("a_name:N", title=a_label),
                alt.Tooltip("name:N", title=b_label),
                alt.Tooltip("value:Q", title=axis_title, format=number),
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
    each in its group's stable colour."""
    if df.empty:
        return empty(title, nothing)
    rows = df.head(top)
    names = [legend.name(g) for g in rows["group"]]
    frame = pd.DataFrame({"name": names, "cost": rows["cost"].astype(float).to_numpy()})
    return (
        alt.Chart(frame, title=title, height=max(160, 28 * len(frame)))
        .mark_bar()
        .encode(
            y=alt.Y("name:N", sort=names, title=None),
            x=alt.X("cost:Q", title="Cost (USD)", axis=alt.Axis(format=MONEY)),
            color=alt.Color(
                "name:N",
                scale=alt.Scale(domain=names, range=[legend.colour(g) for g in rows["group"]]),
                legend=None,
            ),
            tooltip=[
                alt.Tooltip("name:N", title="group"),
                alt.Tooltip("cost:Q", title="Cost (USD)", format=MONEY),
            ],
        )
    )


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


FORECAST_COLOURS = {
    "actual": "#1f3b99",
    "forecast": "#636efa",
    "forecast band (≈90%)": "rgba(99,110,250,0.35)",
}
BUDGET_COLOUR = "#d62728"


def _series(rows: pd.DataFrame, series: str) -> pd.DataFrame:
    """One series of the forecast chart: day (UTC), its tooltip text, the cumulative spend
    and the band, named `series` (its legend entry)."""
    day = pd.to_datetime(rows["day"], utc=True).reset_index(drop=True)
    return pd.DataFrame(
        {
            "day": day,
            "when": day.dt.strftime("%Y-%m-%d"),
            "cumulative": rows["cumulative"].astype(float).to_numpy(),
            "low": rows["low"].astype(float).to_numpy() if "low" in rows else None,
            "high": rows["high"].astype(float).to_numpy() if "high" in rows else None,
            "series": series,
        }
    )


def _said(series: str) -> list[alt.Tooltip]:
    """The tooltip of a forecast line: the day and its cumulative spend."""
    return [
        alt.Tooltip("when:N", title="day"),
        alt.Tooltip("cumulative:Q", title=series, format=MONEY),
    ]


def forecast(result: Mapping[str, Any]) -> alt.LayerChart | alt.Chart:
    """Cumulative spend over the period: actual days, forecast days with their band, the
    budget line with its amount (from queries.spend_forecast)."""
    title = forecast_title(result)
    daily: pd.DataFrame = result["daily"]
    if daily.empty:
        return empty(title, "No spend in this period yet.")
    actual = daily[daily["kind"] == "actual"]
    ahead = daily[daily["kind"] == "forecast"]
    kinds = (["actual"] if not actual.empty else []) + (
        ["forecast", "forecast band (≈90%)"] if not ahead.empty else []
    )
    # Each layer names its series in a column: a constant colour (a datum) takes no scale.
    colour = alt.Color(
        "series:N",
        title=None,
        scale=alt.Scale(domain=kinds, range=[FORECAST_COLOURS[k] for k in kinds]),
        legend=alt.Legend(orient="right"),
    )
    x = alt.X(
        "day:T", title="Day (UTC)", scale=alt.Scale(type="utc"), axis=alt.Axis(format="%d %b")
    )
    y = alt.Y(
        "cumulative:Q",
        title="Cumulative cost (USD)",
        axis=alt.Axis(format=MONEY),
        scale=alt.Scale(zero=True),
    )
    layers = []
    if not ahead.empty:
        # Start the band and the dashed line at the last actual day so they join the actuals.
        bridge = pd.concat([actual.tail(1), ahead])
        layers.append(
            alt.Chart(_series(bridge, "forecast band (≈90%)"))
            .mark_area(opacity=0.5)
            .encode(
                x=x,
                y=alt.Y("low:Q"),
                y2="high:Q",
                color=colour,
                tooltip=[
                    alt.Tooltip("when:N", title="day"),
                    alt.Tooltip("low:Q", title="band low", format=MONEY),
                    alt.Tooltip("high:Q", title="band high", format=MONEY),
                ],
            )
        )
        forecast_line = alt.Chart(_series(bridge, "forecast")).mark_line(strokeDash=[6, 4])
        layers.append(forecast_line.encode(x=x, y=y, color=colour, tooltip=_said("forecast")))
    if not actual.empty:
        actual_line = alt.Chart(_series(actual, "actual")).mark_line(point=True, strokeWidth=3)
        layers.append(actual_line.encode(x=x, y=y, color=colour, tooltip=_said("actual")))
    budget = result.get("budget")
    if budget:
        line = pd.DataFrame({"budget": [float(budget)], "text": [f"budget ${float(budget):,.0f}"]})
        rule = alt.Chart(line).encode(y=alt.Y("budget:Q"))
        layers.append(rule.mark_rule(color=BUDGET_COLOUR, strokeDash=[2, 2]))
        layers.append(
            rule.mark_text(
                align="left", baseline="bottom", dx=4, dy=-4, color=BUDGET_COLOUR
            ).encode(x=alt.value(0), text="text:N")
        )
    return alt.layer(*layers, title=title).properties(height=HEIGHT)


def cost_per_run(df: pd.DataFrame) -> alt.Chart:
    """Distribution of run cost (cost_per_run_histogram: log-spaced buckets), log x axis
    since a few runs dominate."""
    title = "Cost per run (distribution)"
    if df.empty:
        return empty(title, "No run with a cost in this period.")
    low = df["bucket_low"].astype(float).to_numpy()
    high = df["bucket_high"].astype(float).to_numpy()
    frame = pd.DataFrame(
        {
            "low": low,
            "high": high,
            "runs": df["runs"].astype(int).to_numpy(),
            "range": [f"${a:.4f}–${b:.4f}" for a, b in zip(low, high, strict=True)],
        }
    )
    return (
        alt.Chart(frame, title=title, height=HEIGHT)
        .mark_bar()
        .encode(
            x=alt.X(
                "low:Q",
                title="Cost per run (USD, log scale)",
                scale=alt.Scale(type="log"),
                axis=alt.Axis(format="$,.4~f"),
            ),
            x2="high:Q",
            y=alt.Y("runs:Q", title="Runs"),
            y2=alt.datum(0),
            tooltip=[
                alt.Tooltip("range:N", title="cost per run"),
                alt.Tooltip("runs:Q", title="runs", format=","),
            ],
        )
    )


def what_if(df: pd.DataFrame, target: str, *, nothing: str | None = None) -> alt.Chart:
    """Actual spend vs the same tokens priced on `target`, per model used (what_if_cost)."""
    title = f"Actual spend vs the same tokens on {target}"
    if df.empty:
        return empty(title, nothing)
    names = [f"{p}/{m}" for p, m in zip(df["provider"], df["model"], strict=True)]
    series = ["actual", f"on {target}"]
    frame = pd.concat(
        [
            pd.DataFrame(
                {
                    "model": names,
                    "series": series[0],
                    "cost": df["actual_cost"].astype(float).to_numpy(),
                }
            ),
            pd.DataFrame(
                {
                    "model": names,
                    "series": series[1],
                    "cost": df["what_if_cost"].astype(float).to_numpy(),
                }
            ),
        ],
        ignore_index=True,
    )
    return (
        alt.Chart(frame, title=title, height=HEIGHT)
        .mark_bar()
        .encode(
            x=alt.X("model:N", title="Model used", sort=names),
            xOffset=alt.XOffset("series:N", sort=series),
            y=alt.Y("cost:Q", title="Cost (USD)", axis=alt.Axis(format=MONEY)),
            color=alt.Color(
                "series:N",
                title=None,
                sort=series,
                scale=alt.Scale(domain=series, range=["#636efa", "#ef553b"]),
                legend=alt.Legend(orient="right"),
            ),
            tooltip=[
                alt.Tooltip("model:N", title="model used"),
                alt.Tooltip("series:N", title="priced"),
                alt.Tooltip("cost:Q", title="Cost (USD)", format=MONEY),
            ],
        )
    )
