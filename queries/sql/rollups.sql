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
-- {{active_users}}: the exact distinct counts, or NULL when the caller does not need them).
SELECT DATE '1970-01-01' + period_key AS period, grp AS "group",
       coalesce(sum(cost), 0) AS cost,
       coalesce(sum(tokens_input), 0)::BIGINT AS tokens_input,
       coalesce(sum(tokens_output), 0)::BIGINT AS tokens_output,
       coalesce(sum(tokens_total), 0)::BIGINT AS tokens_total,
       count(*) AS tasks, {{runs}} AS runs, {{active_users}} AS active_users
  FROM (SELECT {{period}} AS period_key, {{group}} AS grp, cost, tokens_input, tokens_output,
               tokens_total, run_id, user_id
          FROM {{tasks_source}} WHERE {{task_filter}}) f
 GROUP BY period_key, grp
 ORDER BY period_key NULLS FIRST, grp NULLS LAST;

-- name: kpi_totals
-- One row: spend (USD), tasks, runs, active_users, tokens, p95_ttft_ms (completed tasks),
-- failed, finished (completed + failed + cancelled).
SELECT coalesce(sum(cost), 0) AS spend, count(*) AS tasks, count(DISTINCT run_id) AS runs,
       count(DISTINCT user_id) AS active_users,
       coalesce(sum(tokens_total), 0)::BIGINT AS tokens,
       quantile_cont(time_to_first_token, 0.95) FILTER (WHERE status = 'completed') AS p95_ttft_ms,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')) AS finished
  FROM {{tasks_source}} WHERE {{task_filter}};

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
