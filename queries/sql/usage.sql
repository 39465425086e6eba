-- usage.sql: spend and volume rollups on the mirror; twins in postgres/usage.sql
-- (queries/usage.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: usage
-- Spend and volume per period and group. Columns: period (date), group, cost (USD),
-- tokens_input, tokens_output, tokens_total, tasks, runs, active_users, tokens_cached_input,
-- tokens_cache_write, unpriced (tasks with no cost: unknown price or usage) ({{runs}} and
-- {{active_users}}: count(DISTINCT run_key/user_key), or NULL when not needed; usage_bitmaps
-- is the faster way to the same numbers).
SELECT DATE '1970-01-01' + period_key AS period, grp AS "group",
       coalesce(sum(cost), 0) AS cost,
       coalesce(sum(tokens_input), 0)::BIGINT AS tokens_input,
       coalesce(sum(tokens_output), 0)::BIGINT AS tokens_output,
       coalesce(sum(tokens_total), 0)::BIGINT AS tokens_total,
       count(*) AS tasks, {{runs}} AS runs, {{active_users}} AS active_users,
       coalesce(sum(tokens_cached_input), 0)::BIGINT AS tokens_cached_input,
       coalesce(sum(tokens_cache_write), 0)::BIGINT AS tokens_cache_write,
       count(*) FILTER (WHERE cost IS NULL) AS unpriced
  FROM (SELECT {{period}} AS period_key, {{group}} AS grp, cost, tokens_input, tokens_output,
               tokens_total, run_key, user_key, tokens_cached_input, tokens_cache_write
          FROM {{engine.tasks_source}} WHERE {{engine.task_filter}}) f
 GROUP BY period_key, grp
 ORDER BY period_key NULLS FIRST, grp NULLS LAST;

-- name: usage_bitmaps
-- usage with the exact distinct runs from bitmaps (see run_lo) and {{active_users}}.
WITH r AS ({{distinct_counts.run_lo}}),
f AS (
    SELECT {{period}} AS period_key, {{group}} AS grp, day, cost, tokens_input,
           tokens_output, tokens_total, run_key, user_key, tokens_cached_input,
           tokens_cache_write
      FROM {{engine.tasks_source}} WHERE {{engine.task_filter}}
),
g AS (
    SELECT period_key, grp,
           coalesce(sum(cost), 0) AS cost,
           coalesce(sum(tokens_input), 0)::BIGINT AS tokens_input,
           coalesce(sum(tokens_output), 0)::BIGINT AS tokens_output,
           coalesce(sum(tokens_total), 0)::BIGINT AS tokens_total,
           count(*) AS tasks, {{distinct_counts.runs_in_range}} AS runs, {{active_users}} AS active_users,
           coalesce(sum(tokens_cached_input), 0)::BIGINT AS tokens_cached_input,
           coalesce(sum(tokens_cache_write), 0)::BIGINT AS tokens_cache_write,
           count(*) FILTER (WHERE cost IS NULL) AS unpriced
      FROM f LEFT JOIN r USING (day)
     GROUP BY period_key, grp
),
x AS ({{distinct_counts.rare_runs}})
{{usage.with_hashed_runs}};

-- name: with_hashed_runs
-- The last select of usage_bitmaps (and day_totals.usage_days_bitmaps): the sums and
-- bitmap runs of g per period and group, with the runs x counted by hashing added.
SELECT DATE '1970-01-01' + g.period_key AS period, g.grp AS "group", cost, tokens_input,
       tokens_output, tokens_total, tasks, g.runs + coalesce(x.runs, 0) AS runs, active_users,
       tokens_cached_input, tokens_cache_write, unpriced
  FROM g LEFT JOIN x
    ON x.period_key IS NOT DISTINCT FROM g.period_key AND x.grp IS NOT DISTINCT FROM g.grp
 ORDER BY g.period_key NULLS FIRST, g.grp NULLS LAST;

-- name: kpi_totals
-- One row: spend (USD), tasks, runs, active_users, tokens, p95_ttft_ms (completed tasks),
-- failed, finished (completed + failed + cancelled). {{runs}}, {{active_users}} as in usage.
SELECT coalesce(sum(cost), 0) AS spend, count(*) AS tasks, {{runs}} AS runs,
       {{active_users}} AS active_users,
       coalesce(sum(tokens_total), 0)::BIGINT AS tokens,
       quantile_cont(time_to_first_token, 0.95) FILTER (WHERE status = 'completed') AS p95_ttft_ms,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')) AS finished
  FROM {{engine.tasks_source}} WHERE {{engine.task_filter}};

-- name: kpi_totals_bitmaps
-- kpi_totals with the distinct runs from bitmaps ({{period}} and {{group}} are NULL).
WITH r AS ({{distinct_counts.run_lo}}),
g AS (
    SELECT coalesce(sum(cost), 0) AS spend, count(*) AS tasks, {{distinct_counts.runs_in_range}} AS runs,
           {{active_users}} AS active_users,
           coalesce(sum(tokens_total), 0)::BIGINT AS tokens,
           quantile_cont(time_to_first_token, 0.95) FILTER (WHERE status = 'completed')
               AS p95_ttft_ms,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')) AS finished
      FROM {{engine.tasks_source}} LEFT JOIN r USING (day) WHERE {{engine.task_filter}}
),
x AS ({{distinct_counts.rare_runs}})
SELECT spend, tasks, runs + coalesce((SELECT sum(runs) FROM x), 0)::BIGINT AS runs,
       active_users, tokens, p95_ttft_ms, failed, finished
  FROM g;

-- name: daily_cost
-- Spend (USD) per UTC day: day (date), cost. Days without tasks are absent.
SELECT DATE '1970-01-01' + day AS day, coalesce(sum(cost), 0) AS cost
  FROM {{engine.tasks_source}} WHERE {{engine.task_filter}}
 GROUP BY day
 ORDER BY day;

-- name: usage_pairs
-- Spend and volume per pair of dimension values (A × B): a, b, cost (USD), tokens_input,
-- tokens_output, tokens_total, tasks, unpriced (tasks with no cost: not in cost). Largest
-- cost first.
SELECT a, b, coalesce(sum(cost), 0) AS cost,
       coalesce(sum(tokens_input), 0)::BIGINT AS tokens_input,
       coalesce(sum(tokens_output), 0)::BIGINT AS tokens_output,
       coalesce(sum(tokens_total), 0)::BIGINT AS tokens_total,
       count(*) AS tasks,
       count(*) FILTER (WHERE cost IS NULL) AS unpriced
  FROM (SELECT {{group}} AS a, {{group_b}} AS b, cost, tokens_input, tokens_output,
               tokens_total
          FROM {{engine.tasks_source}} WHERE {{engine.task_filter}}) f
 GROUP BY a, b
 ORDER BY cost DESC, a NULLS LAST, b NULLS LAST;
