"""Analytics over the DuckDB mirror of the system of record (docs/design.md).

Two engines, one contract:

- Every rollup takes `con` and `filters` (queries.filters.Filters) and returns a pandas
  DataFrame with the documented columns. `con` is normally a DuckDB connection to the
  mirror (`open_mirror()`); the rollups that have a Postgres twin (kpis, usage_over_time,
  usage_by, latency_percentiles, failure_rates, quality.score_rollup,
  compare.compare_variants, compare.compare_scores) also accept a
  psycopg connection and then run the same rollup in Postgres (tests compare the two; the
  benchmark uses it as the baseline).
- Units: cost in USD (float64, or exact `decimal.Decimal` with `exact=True` where offered),
  times in milliseconds, tokens as integers, `period` is the UTC date a day/week
  (ISO, Monday)/month starts on (datetime64, midnight), timestamps are UTC-aware datetime64,
  ids (task_id, run_id, id) are strings. A task with no cost (unpriced model) adds 0 USD.
- A filter value is always a bound parameter; a dimension (`by=`) must be one of
  `queries.filters.DIMENSIONS` (else ValueError naming the allowed ones); a grain must be
  one of `GRAINS` ("day", "week", "month").
- `group` is the value of the `by` dimension; None means "not set" (e.g. a task of a run
  without tags under by="tag", a user without a team under by="team"). With by="tag" a task
  counts once for each tag of its run, so groups can sum to more than the total.

Connections: one process opens the mirror read-write and gives each thread a cursor
(queries/mirror/files.py says which process may open it).

Where each rollup lives: one module per family, beside its SQL (`sql/<module>.sql`, the
Postgres twins in `sql/postgres/<module>.sql`): usage (kpis, usage, daily cost), latency,
failures (rates and errors), quality (scores next to cost), compare (variants and
experiments side by side, with confidence intervals), drilldown (lists of tasks and
runs), options (sidebar choices), forecast, whatif, budgets (budget status), alerts
(evaluating alert rules, delivered by webhooks). A rollup's contract is the docstring of
its function. What they share: filters (Filters), engine (running SQL on either engine),
sqltext (loading the named SQL), access (the viewer's run filter), distinct_counts. The
mirror is queries.mirror, the lake queries.lake; cli: `ai-runs sync | alerts`. This face
names the modules others use and re-exports the rollups.
"""

from queries import (
    alerts,
    budgets,
    cli,
    compare,
    distinct_counts,
    drilldown,
    failures,
    filters,
    latency,
    options,
    quality,
    sqltext,
    usage,
    whatif,
)
from queries.drilldown import (
    cost_per_run,
    most_expensive_runs,
    most_expensive_tasks,
    slowest_tasks,
    stuck_tasks,
    tasks_behind,
)
from queries.failures import error_groups, failure_rates
from queries.filters import DIMENSIONS, GRAINS, Filters
from queries.forecast import spend_forecast
from queries.latency import latency_histogram, latency_percentiles, tokens_per_second
from queries.mirror import (
    MIRROR_SCHEMA_VERSION,
    SyncResult,
    mirror_freshness,
    open_mirror,
    sync_mirror,
)
from queries.options import filter_options
from queries.usage import kpis, usage_by, usage_over_time
from queries.whatif import what_if_cost

__all__ = [
    "alerts",
    "budgets",
    "cli",
    "compare",
    "distinct_counts",
    "drilldown",
    "failures",
    "filters",
    "latency",
    "options",
    "quality",
    "sqltext",
    "usage",
    "whatif",
    "DIMENSIONS",
    "GRAINS",
    "MIRROR_SCHEMA_VERSION",
    "Filters",
    "SyncResult",
    "cost_per_run",
    "error_groups",
    "failure_rates",
    "filter_options",
    "kpis",
    "latency_histogram",
    "latency_percentiles",
    "mirror_freshness",
    "most_expensive_runs",
    "most_expensive_tasks",
    "open_mirror",
    "slowest_tasks",
    "spend_forecast",
    "stuck_tasks",
    "sync_mirror",
    "tasks_behind",
    "tokens_per_second",
    "usage_by",
    "usage_over_time",
    "what_if_cost",
]
