-- rollups_polars.sql: the overview rollups on the lake in Polars SQL
-- (queries/lake/rollups.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- The overview rollups on the lake in Polars SQL (queries/lake/rollups.py: LakePolars over
-- polars.scan_delta, LakeArrow over deltalake's to_pyarrow_table). `tasks` is already the
-- window's rows (the engine filters months and created_at before this runs), so no value
-- appears here. {{period}}, {{group}}, {{metric}} are allow-listed expressions. Twin of
-- rollups.sql: same columns, same numbers.

-- name: pl_lake_usage
SELECT {{period}} AS period, {{group}} AS "group",
       CAST(coalesce(sum(cost), 0) AS DOUBLE) AS cost,
       coalesce(sum(tokens_input), 0) AS tokens_input,
       coalesce(sum(tokens_output), 0) AS tokens_output,
       coalesce(sum(tokens_total), 0) AS tokens_total,
       count(*) AS tasks, count(DISTINCT run_id) AS runs, count(DISTINCT user_id) AS active_users,
       coalesce(sum(tokens_cached_input), 0) AS tokens_cached_input,
       coalesce(sum(tokens_cache_write), 0) AS tokens_cache_write,
       count(*) FILTER (WHERE cost IS NULL) AS unpriced
  FROM tasks
 GROUP BY ALL

-- name: pl_lake_kpi_totals
SELECT CAST(coalesce(sum(cost), 0) AS DOUBLE) AS spend, count(*) AS tasks,
       count(DISTINCT run_id) AS runs, count(DISTINCT user_id) AS active_users,
       coalesce(sum(tokens_total), 0) AS tokens,
       quantile_cont(time_to_first_token, 0.95) FILTER (WHERE status = 'completed') AS p95_ttft_ms,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')) AS finished
  FROM tasks

-- name: pl_lake_latency_percentiles
SELECT {{period}} AS period, {{group}} AS "group", count(*) AS tasks,
       quantile_cont({{metric}}, 0.5) AS p50, quantile_cont({{metric}}, 0.9) AS p90,
       quantile_cont({{metric}}, 0.95) AS p95, quantile_cont({{metric}}, 0.99) AS p99
  FROM tasks
 WHERE status = 'completed' AND {{metric}} IS NOT NULL
 GROUP BY ALL

-- name: pl_lake_failure_counts
SELECT {{period}} AS period, {{group}} AS "group", count(*) AS tasks,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled
  FROM tasks
 WHERE status IN ('completed', 'failed', 'cancelled')
 GROUP BY ALL
