-- Rollups over the DuckDB mirror. Values are bound (:name); {{name}} is filled only with
-- SQL fragments of this folder or with allow-listed expressions chosen in queries/rollups.py
-- (period: a day-key expression of a GRAIN; group: the column of a DIMENSION; metric: a
-- latency column), never with user text. The same names in sql/postgres/ are the twins.

-- name: tasks_source
-- Where tasks come from: the mirror table (day, month_day, team, source_type, tags ready).
tasks

-- name: task_filter
-- The global filters (queries.filters.Filters); an empty list means no restriction.
created_at >= :start AND created_at < :end
   AND (len(:source_types::VARCHAR[]) = 0 OR list_contains(:source_types::VARCHAR[], source_type))
   AND (len(:providers::VARCHAR[]) = 0 OR list_contains(:providers::VARCHAR[], provider))
   AND (len(:models::VARCHAR[]) = 0 OR list_contains(:models::VARCHAR[], model))
   AND (len(:users::VARCHAR[]) = 0 OR list_contains(:users::VARCHAR[], user_id))
   AND (len(:teams::VARCHAR[]) = 0 OR list_contains(:teams::VARCHAR[], team))
   AND (len(:tags::VARCHAR[]) = 0 OR list_has_any(tags, :tags::VARCHAR[]))
   AND (len(:statuses::VARCHAR[]) = 0 OR list_contains(:statuses::VARCHAR[], status))

-- name: usage
-- Spend and volume per period and group. Columns: period (date), group, cost (USD),
-- tokens_input, tokens_output, tokens_total, tasks, runs, active_users ({{runs}} and
-- {{active_users}}: count(DISTINCT run_key/user_key), or NULL when not needed; usage_bitmaps
-- is the faster way to the same numbers).
SELECT DATE '1970-01-01' + period_key AS period, grp AS "group",
       coalesce(sum(cost), 0) AS cost,
       coalesce(sum(tokens_input), 0)::BIGINT AS tokens_input,
       coalesce(sum(tokens_output), 0)::BIGINT AS tokens_output,
       coalesce(sum(tokens_total), 0)::BIGINT AS tokens_total,
       count(*) AS tasks, {{runs}} AS runs, {{active_users}} AS active_users
  FROM (SELECT {{period}} AS period_key, {{group}} AS grp, cost, tokens_input, tokens_output,
               tokens_total, run_key, user_key
          FROM {{tasks_source}} WHERE {{task_filter}}) f
 GROUP BY period_key, grp
 ORDER BY period_key NULLS FIRST, grp NULLS LAST;

-- name: run_lo
-- Per day of the window: run_lo, the smallest key of the runs created in the day's period.
-- Run keys are given in order of creation, so the runs created in a period have keys in
-- [run_lo, run_lo + :run_bits) (:run_bits from distinct_plan) and are counted with a
-- bitmap; a task outside it (its run was created in another period, or keyed late) is in
-- rare_tasks, and those few are counted by hashing. The two sets of runs are disjoint.
SELECT day, min(lo) OVER (PARTITION BY {{period}}) AS run_lo
  FROM run_key_days WHERE day BETWEEN :first_day AND :last_day

-- name: runs_in_range
coalesce(bit_count(bitstring_agg(run_key - run_lo, 0, :run_bits - 1)
                   FILTER (WHERE run_key - run_lo BETWEEN 0 AND :run_bits - 1)), 0)

-- name: rare_runs
-- Distinct runs per period and group of the tasks outside their period's bitmap range.
SELECT period_key, grp, count(DISTINCT run_key) AS runs
  FROM (SELECT {{period}} AS period_key, {{group}} AS grp, day, run_key
          FROM rare_tasks WHERE {{task_filter}}) o
  LEFT JOIN r USING (day)
 WHERE run_lo IS NULL OR run_key - run_lo NOT BETWEEN 0 AND :run_bits - 1
 GROUP BY period_key, grp

-- name: distinct_users_bitmap
-- Exact distinct users: user keys are dense, 1..:user_bits.
coalesce(bit_count(bitstring_agg(user_key, 1, :user_bits)), 0)

-- name: usage_bitmaps
-- usage with the exact distinct runs from bitmaps (see run_lo) and {{active_users}}.
WITH r AS ({{run_lo}}),
f AS (
    SELECT {{period}} AS period_key, {{group}} AS grp, day, cost, tokens_input,
           tokens_output, tokens_total, run_key, user_key
      FROM {{tasks_source}} WHERE {{task_filter}}
),
g AS (
    SELECT period_key, grp,
           coalesce(sum(cost), 0) AS cost,
           coalesce(sum(tokens_input), 0)::BIGINT AS tokens_input,
           coalesce(sum(tokens_output), 0)::BIGINT AS tokens_output,
           coalesce(sum(tokens_total), 0)::BIGINT AS tokens_total,
           count(*) AS tasks, {{runs_in_range}} AS runs, {{active_users}} AS active_users
      FROM f LEFT JOIN r USING (day)
     GROUP BY period_key, grp
),
x AS ({{rare_runs}})
SELECT DATE '1970-01-01' + g.period_key AS period, g.grp AS "group", cost, tokens_input,
       tokens_output, tokens_total, tasks, g.runs + coalesce(x.runs, 0) AS runs, active_users
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
  FROM {{tasks_source}} WHERE {{task_filter}};

-- name: kpi_totals_bitmaps
-- kpi_totals with the distinct runs from bitmaps ({{period}} and {{group}} are NULL).
WITH r AS ({{run_lo}}),
g AS (
    SELECT coalesce(sum(cost), 0) AS spend, count(*) AS tasks, {{runs_in_range}} AS runs,
           {{active_users}} AS active_users,
           coalesce(sum(tokens_total), 0)::BIGINT AS tokens,
           quantile_cont(time_to_first_token, 0.95) FILTER (WHERE status = 'completed')
               AS p95_ttft_ms,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')) AS finished
      FROM {{tasks_source}} LEFT JOIN r USING (day) WHERE {{task_filter}}
),
x AS ({{rare_runs}})
SELECT spend, tasks, runs + coalesce((SELECT sum(runs) FROM x), 0)::BIGINT AS runs,
       active_users, tokens, p95_ttft_ms, failed, finished
  FROM g;

-- name: distinct_plan
-- What the distinct counts of a window need: run_bits (widest key range of the runs
-- created in one period), user_bits (largest user key), values (how many values the
-- dimension :dimension has taken).
SELECT (SELECT coalesce(max(hi - lo), 0)
          FROM (SELECT {{period}} AS p, min(lo) AS lo, max(lo + n) AS hi
                  FROM run_key_days WHERE day BETWEEN :first_day AND :last_day
                 GROUP BY p)) AS run_bits,
       (SELECT coalesce(max(key), 0) FROM user_keys) AS user_bits,
       (SELECT count(*) FROM dim_values WHERE dimension = :dimension) AS "values";

-- name: latency_percentiles
-- Exact p50/p90/p95/p99 (ms) of {{metric}} over completed tasks, per period and group.
SELECT DATE '1970-01-01' + period_key AS period, grp AS "group", n AS tasks,
       q[1] AS p50, q[2] AS p90, q[3] AS p95, q[4] AS p99
  FROM (SELECT period_key, grp, count(*) AS n,
               quantile_cont(v, [0.5, 0.9, 0.95, 0.99]) AS q
          FROM (SELECT {{period}} AS period_key, {{group}} AS grp, {{metric}} AS v
                  FROM {{tasks_source}}
                 WHERE {{task_filter}} AND status = 'completed' AND {{metric}} IS NOT NULL) f
         GROUP BY period_key, grp) p
 ORDER BY period_key NULLS FIRST, grp NULLS LAST;

-- name: failure_counts
-- Finished tasks, failed and cancelled ones, per period and group.
SELECT DATE '1970-01-01' + period_key AS period, grp AS "group", count(*) AS tasks,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled
  FROM (SELECT {{period}} AS period_key, {{group}} AS grp, status
          FROM {{tasks_source}}
         WHERE {{task_filter}} AND status IN ('completed', 'failed', 'cancelled')) f
 GROUP BY period_key, grp
 ORDER BY period_key NULLS FIRST, grp NULLS LAST;
