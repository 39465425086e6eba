-- compare.sql: variants and experiments side by side on the mirror (docs/quality.md,
-- "Comparing variants"); twins in postgres/compare.sql (queries/compare.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- A task's variant is its own, else its run's; an experiment's tasks carry its name.

-- name: compare_variants
-- Per variant in :compared (the tasks the filters keep): tasks, failed (status failed),
-- priced (tasks with a cost), cost (USD, sum), latency_p50 and latency_p95 (total_time
-- in ms, continuous percentiles over the tasks that have one).
SELECT variant, count(*) AS tasks, count(*) FILTER (WHERE status = 'failed') AS failed,
       count(cost) AS priced, coalesce(sum(cost), 0) AS cost,
       quantile_cont(total_time, 0.5) AS latency_p50,
       quantile_cont(total_time, 0.95) AS latency_p95
  FROM {{engine.tasks_source}}
 WHERE {{engine.task_filter}}
   AND list_contains(:compared::VARCHAR[], variant)
 GROUP BY variant
 ORDER BY variant;

-- name: compare_scores
-- Per variant in :compared and score name: the numeric and boolean scores of its tasks:
-- n (how many), mean, sd (sample standard deviation; NULL for one score), boolean (every
-- one of them is a boolean score).
SELECT t.variant, s.name, count(*) AS n, avg(s.value) AS mean, stddev_samp(s.value) AS sd,
       bool_and(s.data_type = 'boolean') AS boolean
  FROM (SELECT task_id, variant FROM {{engine.tasks_source}}
         WHERE {{engine.task_filter}}) t
  JOIN scores s ON s.task_id = t.task_id
 WHERE list_contains(:compared::VARCHAR[], t.variant)
   AND s.data_type IN ('numeric', 'boolean')
 GROUP BY t.variant, s.name
 ORDER BY t.variant, s.name;
