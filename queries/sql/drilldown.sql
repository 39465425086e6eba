-- drilldown.sql: drill-down lists of tasks and runs on the mirror (queries/drilldown.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: tasks_behind
-- The tasks of one chart point, {{metric}} descending: see queries.tasks_behind.
SELECT task_id, run_id, created_at, provider, model, endpoint, service, user_id, status,
       time_to_first_token, total_time, tokens_total, cost, id
  FROM {{engine.tasks_source}}
 WHERE {{engine.task_filter}} AND {{group_match}}
 ORDER BY {{metric}} DESC NULLS LAST, created_at DESC, id
 LIMIT :limit;

-- name: count_behind
-- How many tasks tasks_behind would list without its limit: tasks.
SELECT count(*) AS tasks
  FROM {{engine.tasks_source}}
 WHERE {{engine.task_filter}} AND {{group_match}};

-- name: error_tasks
-- The tasks of one error group (error_groups' normalised message), newest first.
SELECT task_id, run_id, created_at, provider, model, endpoint, service, user_id, status,
       time_to_first_token, total_time, tokens_total, cost, id
  FROM {{engine.tasks_source}}
 WHERE {{engine.task_filter}} AND error IS NOT NULL
   AND regexp_replace(error, '[0-9]+', 'N', 'g') = :error
 ORDER BY created_at DESC, id
 LIMIT :limit;

-- name: most_expensive_runs
-- Runs by the cost of their filtered tasks: run_id, name, user_id, source_type, tasks,
-- cost (USD), tokens_total, created_at.
WITH c AS (
    SELECT run_id, count(*) AS tasks, coalesce(sum(cost), 0) AS cost,
           sum(tokens_total)::BIGINT AS tokens_total
      FROM {{engine.tasks_source}} WHERE {{engine.task_filter}}
     GROUP BY run_id
     ORDER BY cost DESC, run_id
     LIMIT :limit
)
SELECT c.run_id, r.name, r.user_id, r.source_type, c.tasks, c.cost, c.tokens_total,
       r.created_at
  FROM c LEFT JOIN runs r ON r.id = c.run_id
 ORDER BY c.cost DESC, c.run_id;

-- name: cost_per_run
-- Cost (USD) of each run over its filtered tasks: run_id, cost.
SELECT run_id, coalesce(sum(cost), 0) AS cost
  FROM {{engine.tasks_source}} WHERE {{engine.task_filter}}
 GROUP BY run_id
 ORDER BY cost DESC, run_id;

-- name: cost_per_run_histogram
-- Runs per log-spaced bucket of their cost over filtered tasks (runs that cost > 0):
-- bucket_low, bucket_high (USD), runs. Groups by the integer run_key, not the UUID.
WITH c AS (
    SELECT ln(sum(cost)) AS x
      FROM {{engine.tasks_source}} WHERE {{engine.task_filter}} AND cost > 0
     GROUP BY run_key
),
r AS (SELECT min(x) AS lo, greatest(max(x) - min(x), 1e-9) / :bins AS w FROM c)
SELECT exp(lo + bucket * w) AS bucket_low, exp(lo + (bucket + 1) * w) AS bucket_high, runs
  FROM (SELECT least(floor((x - lo) / w), :bins - 1)::INTEGER AS bucket, count(*) AS runs
          FROM c, r GROUP BY bucket) h, r
 ORDER BY bucket;
