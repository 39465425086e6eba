"""Figures of the dashboard: pure functions, DataFrame (as `queries` returns it) in, an
Altair (Vega-Lite) chart or a Plotly figure out. No Streamlit here, so each can be tested
on its own.

Units go in the axis titles: $ for USD, ms for times, tokens, %. Every drill-down chart
carries [period ISO date or "", group or ""] on each mark (vega.PICK_FIELDS), so a
selection names the slice it stands for without guessing from names or positions.

- vega.py: what the Vega-Lite charts share: empty chart, UTC time axis, legend, the point
  selection of a drill-down and its reading;
- cost.py (Vega-Lite): spend over time, usage bars, A x B pairs, cost per run, forecast,
  what-if;
- performance.py (Vega-Lite): latency percentiles and histogram, tokens per second,
  failure rates;
- runs.py (Plotly): a run's timeline;
- quality.py (Plotly): cost versus quality, one point per variant (the Compare page);
- parts.py: the Plotly layout and empty figure, labels and formats both families use;
  colours.py: one stable colour per value, display names in legends.
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
from dashboard.figures.runs import run_timeline
from dashboard.figures.vega import selected_slice

__all__ = [
    "NOT_SET",
    "OTHER",
    "PERCENTILES",
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
