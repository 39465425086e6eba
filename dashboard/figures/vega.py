"""What every Vega-Lite chart of the dashboard shares (st.altair_chart): the empty chart,
time axes in UTC that fit the grain, legends beside the plot, and the point selection of a
drill-down chart with the reading of what was clicked. No Streamlit here.

Vega-Lite, not Plotly, on the Overview, Cost and Performance pages: it draws the same
charts markedly faster in bench/charts.py, so those pages load no Plotly at all
(docs/design.md, "Pages"). A drill-down chart carries two plain columns on each mark,
`pick_period` (ISO date or "") and `pick_group` (the group's value or ""), and a point
selection named PICK over them: Streamlit hands back exactly those two fields of the
clicked mark, so the page reads the slice without guessing from names or positions.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

import altair as alt
import pandas as pd

from dashboard.figures.parts import NO_TASKS, TICK_FORMATS

HEIGHT = 400
# A legend beside the plot: pixels per entry and for its title, the axis and the chart title.
# Square symbols (bars) take 18 px a row in Streamlit's theme; the round symbols of a layer
# of lines and filled points about 30 (both measured in Chromium at 900 and 1,400 px: with
# 18 the latency trend showed 11 of its 16 models).
LEGEND_ROW = 18
POINT_LEGEND_ROW = 30
LEGEND_FRAME = 110
PICK = "pick"  # the point selection of every drill-down chart (st.altair_chart selection_mode)
PICK_FIELDS = ["pick_period", "pick_group"]
# How a period is named in a tooltip, per grain ("week of 2026-11-02").
WHEN_FORMATS = {"day": "%Y-%m-%d", "week": "week of %Y-%m-%d", "month": "%b %Y"}
# How far a bar of one period reaches: most of its period, so neighbours stay apart.
_STEPS = {"day": pd.Timedelta(days=1), "week": pd.Timedelta(days=7), "month": pd.Timedelta(days=30)}
BAR_SHARE = 0.85


def empty(title: str, message: str | None = None, *, selectable: bool = False) -> alt.Chart:
    """A blank chart that says why it is blank: `message`, which the page words from the
    filters that are set (dashboard.state.nothing_text), else NO_TASKS. `selectable`: it
    stands in for a drill-down chart, so it carries the PICK selection too (Streamlit
    refuses on_select for a chart without one); a click on its text selects nothing
    (selected_slice)."""
    lines = textwrap.wrap(message or NO_TASKS, width=56)
    frame = pd.DataFrame({"line": lines, "row": range(len(lines))})
    chart = (
        alt.Chart(frame, title=title, height=200)
        .mark_text(fontSize=14, color="#666")
        .encode(text="line:N", y=alt.Y("row:O", axis=None))
        .configure_view(stroke=None)
    )
    return chart.add_params(pick()) if selectable else chart


def pick(nearest: bool = False) -> alt.Parameter:
    """The click selection of a drill-down chart, over PICK_FIELDS. `nearest`: a click
    near a point picks it (line charts, whose points are small)."""
    return alt.selection_point(name=PICK, fields=PICK_FIELDS, on="click", nearest=nearest)


def with_pick(chart: alt.Chart) -> alt.Chart:
    """A bar chart whose bars a click selects (PICK); the bars not selected fade."""
    selection = pick()
    return chart.add_params(selection).encode(
        opacity=alt.condition(selection, alt.value(1.0), alt.value(0.4))
    )


def group_text(groups: pd.Series | list) -> list[str]:
    """Group values as the plain text a selection hands back ("" for not set)."""
    return ["" if g is None or (isinstance(g, float) and pd.isna(g)) else str(g) for g in groups]


def periods(series: pd.Series, grain: str) -> pd.DataFrame:
    """A period column as the time axis wants it: `period` (start, UTC), `period_end` (where
    its bar ends), `when` (its tooltip text) and `pick_period` (ISO date)."""
    start = pd.to_datetime(series, utc=True).reset_index(drop=True)
    step = _STEPS.get(grain, _STEPS["day"])
    return pd.DataFrame(
        {
            "period": start,
            "period_end": start + step * BAR_SHARE,
            "when": start.dt.strftime(WHEN_FORMATS.get(grain, "%Y-%m-%d")),
            "pick_period": start.dt.strftime("%Y-%m-%d"),
        }
    )


def time_x(grain: str) -> alt.X:
    """The x encoding of a time axis in UTC, ticks that fit the grain."""
    return alt.X(
        "period:T",
        title=f"{grain.capitalize()} (UTC)",
        scale=alt.Scale(type="utc"),
        axis=alt.Axis(format=TICK_FORMATS.get(grain, "%d %b"), labelOverlap=True),
    )


def groups_x(names: list[str], title: str) -> alt.X:
    """The x encoding of one bar (or bar group) per group, in the order given, labels
    slanted so that long model names stay readable side by side."""
    return alt.X(
        "name:N",
        title=title,
        sort=list(dict.fromkeys(names)),
        axis=alt.Axis(labelAngle=-40, labelLimit=160, labelOverlap=False),
    )


def colours(names: list[str], colour_of: list[str], title: str) -> alt.Color:
    """One colour per name (in first-seen order), the legend beside the plot: a row of
    entries above it wraps on a narrow screen and covers the title (README, "Dashboard
    layout")."""
    scale = dict(zip(names, colour_of, strict=True))
    return alt.Color(
        "name:N",
        title=title,
        scale=alt.Scale(domain=list(scale), range=list(scale.values())),
        legend=alt.Legend(orient="right", labelLimit=220),
        sort=list(scale),
    )


def fitting_legend(height: int, names: list[str], row: int = LEGEND_ROW) -> int:
    """`height`, or more when the legend of `names` (one row of `row` pixels per distinct
    name, beside the plot) is taller: Streamlit fits a Vega-Lite chart to its height, so a
    longer legend would be cut off below its last visible entry instead of growing the
    chart."""
    return max(height, row * len(set(names)) + LEGEND_FRAME)


def selected_slice(event: Any) -> tuple[str | None, str | None] | None:
    """(period ISO date or None, group or None) of the first mark clicked in a drill-down
    chart, or None when nothing is selected. `event` is st.altair_chart's return or its
    session-state value: {"selection": {PICK: [{"pick_period": ..., "pick_group": ...}]}}."""
    if not event:
        return None
    selection = event.get("selection") if isinstance(event, Mapping) else event.selection
    points = (selection or {}).get(PICK) or []
    if isinstance(points, Mapping):  # nothing picked: Streamlit sends {} for a parameter
        return None
    for point in points:
        if isinstance(point, Mapping) and any(point.get(f) for f in PICK_FIELDS):
            return (point.get("pick_period") or None, point.get("pick_group") or None)
    return None
