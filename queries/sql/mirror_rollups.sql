-- Rollups that exist on the mirror only (no Postgres twin). Same conventions as rollups.sql.

-- name: latency_histogram_counts
-- Tasks per log-spaced bucket of {{metric}} (completed tasks): group, bucket (0-based), tasks,
-- lo, hi (the range the buckets span, ms, the same for every group).
WITH v AS (
    SELECT {{group}} AS grp, {{metric}}::DOUBLE AS x
      FROM {{tasks_source}}
     WHERE {{task_filter}} AND status = 'completed' AND {{metric}} IS NOT NULL
), b AS (
    SELECT greatest(min(x), 1) AS lo, greatest(max(x), 1) AS hi FROM v
)
SELECT grp AS "group",
       CASE WHEN hi <= lo THEN 0
            ELSE least(:bins - 1, greatest(0, floor(ln(greatest(x, lo) / lo) / ln(hi / lo) * :bins)))
       END::INTEGER AS bucket,
       count(*) AS tasks, any_value(lo) AS lo, any_value(hi) AS hi
  FROM v CROSS JOIN b
 GROUP BY ALL
 ORDER BY "group" NULLS LAST, bucket;

-- name: tokens_per_second
-- Output tokens per second of generation per group: group, tasks, p50, p90, mean.
SELECT grp AS "group", n AS tasks, q[1] AS p50, q[2] AS p90, mean
  FROM (SELECT grp, count(*) AS n, quantile_cont(tps, [0.5, 0.9]) AS q, avg(tps) AS mean
          FROM (SELECT {{group}} AS grp,
                       tokens_output / ((total_time - time_to_first_token) / 1000.0) AS tps
                  FROM {{tasks_source}}
                 WHERE {{task_filter}} AND status = 'completed' AND tokens_output > 0
                   AND total_time > time_to_first_token) f
         GROUP BY grp) g
 ORDER BY tasks DESC, "group" NULLS LAST;

-- name: error_groups
-- Most frequent errors (digits -> N): error, tasks, models, last_seen, sample_task_id.
SELECT regexp_replace(error, '[0-9]+', 'N', 'g') AS error, count(*) AS tasks,
       array_to_string(list_sort(list_distinct(list(model))), ', ') AS models,
       max(created_at) AS last_seen, arg_max(task_id, created_at) AS sample_task_id
  FROM {{tasks_source}}
 WHERE {{task_filter}} AND error IS NOT NULL
 GROUP BY 1
 ORDER BY tasks DESC, error
 LIMIT :limit;

-- name: tasks_behind
-- The tasks of one chart point, {{metric}} descending: see queries.tasks_behind.
SELECT task_id, run_id, created_at, provider, model, endpoint, service, user_id, status,
       time_to_first_token, total_time, tokens_total, cost, id
  FROM {{tasks_source}}
 WHERE {{task_filter}} AND {{group_match}}
 ORDER BY {{metric}} DESC NULLS LAST, created_at DESC, id
 LIMIT :limit;

-- name: most_expensive_runs
-- Runs by the cost of their filtered tasks: run_id, name, user_id, source_type, tasks,
-- cost (USD), tokens_total, created_at.
WITH c AS (
    SELECT run_id, count(*) AS tasks, coalesce(sum(cost), 0) AS cost,
           sum(tokens_total)::BIGINT AS tokens_total
      FROM {{tasks_source}} WHERE {{task_filter}}
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
  FROM {{tasks_source}} WHERE {{task_filter}}
 GROUP BY run_id
 ORDER BY cost DESC, run_id;

-- name: daily_cost
-- Spend (USD) per UTC day: day (date), cost. Days without tasks are absent.
SELECT DATE '1970-01-01' + day AS day, coalesce(sum(cost), 0) AS cost
  FROM {{tasks_source}} WHERE {{task_filter}}
 GROUP BY day
 ORDER BY day;

-- name: token_mix
-- Token mix per provider and model, split by the target's price tier: provider, model,
-- tier (number of :thresholds below tokens_input), tasks, tokens_input, tokens_output,
-- tokens_cached_input (capped at tokens_input, as the pricing does), actual_cost (USD).
SELECT provider, model,
       len(list_filter(:thresholds::BIGINT[], lambda t: tokens_input > t)) AS tier,
       count(*) AS tasks,
       sum(tokens_input)::BIGINT AS tokens_input,
       sum(tokens_output)::BIGINT AS tokens_output,
       sum(least(tokens_cached_input, tokens_input))::BIGINT AS tokens_cached_input,
       coalesce(sum(cost), 0) AS actual_cost
  FROM {{tasks_source}} WHERE {{task_filter}}
 GROUP BY ALL
 ORDER BY provider NULLS LAST, model NULLS LAST, tier;

-- name: filter_options_tasks
-- Distinct values in the mirror's tasks: providers, models, users, statuses (lists).
SELECT list_sort(array_agg(DISTINCT provider) FILTER (WHERE provider IS NOT NULL)) AS providers,
       list_sort(array_agg(DISTINCT model) FILTER (WHERE model IS NOT NULL)) AS models,
       list_sort(array_agg(DISTINCT user_id) FILTER (WHERE user_id IS NOT NULL)) AS users,
       list_sort(array_agg(DISTINCT status)) AS statuses
  FROM tasks;

-- name: filter_options_runs
-- Distinct source types and tags of mirrored runs, teams of mirrored users (lists).
SELECT (SELECT list_sort(array_agg(DISTINCT source_type)) FROM runs) AS source_types,
       (SELECT list_sort(array_agg(DISTINCT tag)) FROM (SELECT unnest(tags) AS tag FROM runs))
           AS tags,
       (SELECT list_sort(array_agg(DISTINCT team) FILTER (WHERE team IS NOT NULL)) FROM users)
           AS teams;
