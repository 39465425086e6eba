-- compare.sql: the Postgres twin of ../compare.sql, and the per-item diffs of experiments
-- (they read the item links, kept in Postgres only) (queries/compare.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- The same names, columns and results as the mirror's (see postgres/engine.sql).

-- name: compare_variants
SELECT variant, count(*) AS tasks, count(*) FILTER (WHERE status = 'failed') AS failed,
       count(cost) AS priced, coalesce(sum(cost), 0) AS cost,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY total_time) AS latency_p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY total_time) AS latency_p95
  FROM {{engine.tasks_source}}
 WHERE {{engine.task_filter}}
   AND variant = ANY(:compared::text[])
 GROUP BY variant
 ORDER BY variant;

-- name: compare_scores
SELECT t.variant, s.name, count(*) AS n, avg(s.value) AS mean, stddev_samp(s.value) AS sd,
       bool_and(s.data_type = 'boolean') AS boolean
  FROM (SELECT task_id, variant FROM {{engine.tasks_source}}
         WHERE {{engine.task_filter}}) t
  JOIN ai_scores s ON s.task_id = t.task_id
 WHERE t.variant = ANY(:compared::text[])
   AND s.data_type IN ('numeric', 'boolean')
 GROUP BY t.variant, s.name
 ORDER BY t.variant, s.name;

-- name: item_diffs
-- Per dataset item answered by at least one of the experiments named :compared (names, of
-- any owner the caller may read), one row per experiment: item_id, experiment, task_id,
-- status, cost (USD), total_time (ms), answer (the first 500 characters of the response),
-- expected (of the item, first 500), score (name) and value (its mean over the task's
-- numeric and boolean scores of that name; NULL and NULL without scores).
SELECT e.item_id, x.name AS experiment, t.task_id, t.status, t.cost, t.total_time,
       left(t.response_text, 500) AS answer, left(i.expected_output, 500) AS expected,
       s.name AS score, s.value
  FROM ai_experiments x
  JOIN ai_experiment_items e ON e.experiment_id = x.id
  JOIN ai_dataset_items i ON i.id = e.item_id
  JOIN ai_tasks t ON t.task_id = e.task_id
  LEFT JOIN (SELECT task_id, name, avg(value) AS value FROM ai_scores
              WHERE data_type IN ('numeric', 'boolean') AND task_id IS NOT NULL
              GROUP BY task_id, name) s ON s.task_id = t.task_id
 WHERE x.name = ANY(:compared::text[])
 ORDER BY i.seq, x.name, s.name;
