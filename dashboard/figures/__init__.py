"""Plotly figures of the dashboard: pure functions, DataFrame (as `queries` returns it) in,
plotly Figure out. No Streamlit here, so each can be tested on its own.

Units go in the axis titles: $ for USD, ms for times, tokens, %. Every figure that supports
drill-down carries `customdata` = [period ISO date or "", group or ""] on each point, so a
selection event names the slice it stands for without guessing from trace order.

- vega.py: the Vega-Lite twins of the charts measured markedly faster in it (the Overview);
- cost.py: spend over time, usage bars, A x B pairs, cost per run, forecast, what-if;
- performance.py: latency percentiles and histogram, tokens per second, failure rates;
- runs.py: a run's timeline, and reading a chart selection;
- quality.py: cost versus quality, one point per variant (the Compare page);
- parts.py: the shared layout, axes and empty states; colours.py: one stable colour per
  value, display names in legends.
"""

from dashboard.figures import colours, vega
from dashboard.figures.cost import (
    cost_per_run,
    forecast,
    forecast_title,
    pairs_bars,
    spend_over_time,
    usage_bars,
    what_if,
)
from dashboard.figures.parts import (
    NOT_SET,
    OTHER,
    PERCENTILES,
    PLOTLY_CONFIG,
    empty,
    label,
)
from dashboard.figures.performance import (
    failure_rates_by,
    failure_rates_over_time,
    latency_histogram,
    percentiles_by_group,
    percentiles_over_time,
    tokens_per_second,
)
from dashboard.figures.quality import cost_versus_quality
from dashboard.figures.runs import run_timeline, selected_slice

__all__ = [
    "NOT_SET",
    "OTHER",
    "PERCENTILES",
    "PLOTLY_CONFIG",
    "colours",
    "cost_per_run",
    "cost_versus_quality",
    "empty",
    "failure_rates_by",
    "failure_rates_over_time",
    "forecast",
    "forecast_title",
    "label",
    "latency_histogram",
    "pairs_bars",
    "percentiles_by_group",
    "percentiles_over_time",
    "run_timeline",
    "selected_slice",
    "spend_over_time",
    "tokens_per_second",
    "usage_bars",
    "vega",
    "what_if",
]
