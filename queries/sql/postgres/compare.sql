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

-- name: experiment_pair
-- The latest pair of experiments (of any owner the caller may read) over one dataset where
-- the first ran model :source and the second model :target: their ids and names, the
-- dataset's name, and created (the later of the two); no row when there is none.
SELECT a.id AS source_id, a.name AS source_experiment, b.id AS target_id,
       b.name AS target_experiment, d.name AS dataset,
       greatest(a.created_at, b.created_at) AS created
  FROM ai_experiments a
  JOIN ai_experiments b ON b.dataset_id = a.dataset_id AND b.id <> a.id
  JOIN ai_datasets d ON d.id = a.dataset_id
 WHERE a.model = :source AND b.model = :target
 ORDER BY created DESC, a.name, b.name
 LIMIT 1;

-- name: experiment_pair_scores
-- Per score name and side ('source': experiment :source_id, 'target': :target_id), the
-- numeric and boolean scores of the side's tasks for the dataset items BOTH answered: n,
-- mean, sd (sample standard deviation; NULL for one score), boolean (every one of them is
-- a boolean score).
WITH shared AS (
    SELECT a.task_id AS source_task, b.task_id AS target_task
      FROM ai_experiment_items a
      JOIN ai_experiment_items b ON b.item_id = a.item_id
     WHERE a.experiment_id = :source_id::uuid AND b.experiment_id = :target_id::uuid
), sides AS (
    SELECT 'source' AS side, source_task AS task_id FROM shared
    UNION ALL
    SELECT 'target', target_task FROM shared
)
SELECT s.name, x.side, count(*) AS n, avg(s.value) AS mean, stddev_samp(s.value) AS sd,
       bool_and(s.data_type = 'boolean') AS boolean
  FROM sides x
  JOIN ai_scores s ON s.task_id = x.task_id
 WHERE s.data_type IN ('numeric', 'boolean')
 GROUP BY s.name, x.side
 ORDER BY s.name, x.side;
