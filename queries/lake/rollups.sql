-- rollups.sql: the overview rollups on the lake in DuckDB (queries/lake/rollups.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- The overview rollups on the lake, in DuckDB (queries/lake/rollups.py). `tasks` is a view
-- over the Arrow dataset of one version of the Delta table (queries/lake/read.py).
-- {{period}} and {{group}} are allow-listed expressions; :start, :end (UTC, half open on
-- created_at) and the months :first_month, :last_month (YYYY-MM, for partition pruning)
-- are bound. Same columns and units as the mirror's rollups (queries/__init__.py); rollups_clickhouse.sql and
-- rollups_polars.sql are the twins.

-- name: lake_window
created_at >= :start AND created_at < :end AND month BETWEEN :first_month AND :last_month

-- name: lake_usage
-- period (date or NULL), group, cost (USD), tokens_input, tokens_output, tokens_total,
-- tasks, runs (distinct), active_users (distinct non-NULL users), tokens_cached_input,
-- tokens_cache_write, unpriced (tasks with no cost).
SELECT {{period}} AS period, {{group}} AS "group",
       coalesce(sum(cost), 0)::DOUBLE AS cost,
       coalesce(sum(tokens_input), 0)::BIGINT AS tokens_input,
       coalesce(sum(tokens_output), 0)::BIGINT AS tokens_output,
       coalesce(sum(tokens_total), 0)::BIGINT AS tokens_total,
       count(*) AS tasks, count(DISTINCT run_id) AS runs, count(DISTINCT user_id) AS active_users,
       coalesce(sum(tokens_cached_input), 0)::BIGINT AS tokens_cached_input,
       coalesce(sum(tokens_cache_write), 0)::BIGINT AS tokens_cache_write,
       count(*) FILTER (WHERE cost IS NULL) AS unpriced
  FROM tasks
 WHERE {{rollups.lake_window}}
 GROUP BY ALL;

-- name: lake_kpi_totals
-- One row: spend, tasks, runs, active_users, tokens, p95_ttft_ms (completed), failed,
-- finished (completed + failed + cancelled).
SELECT coalesce(sum(cost), 0)::DOUBLE AS spend, count(*) AS tasks,
       count(DISTINCT run_id) AS runs, count(DISTINCT user_id) AS active_users,
       coalesce(sum(tokens_total), 0)::BIGINT AS tokens,
       quantile_cont(time_to_first_token, 0.95) FILTER (WHERE status = 'completed') AS p95_ttft_ms,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')) AS finished
  FROM tasks
 WHERE {{rollups.lake_window}};

-- name: lake_latency_percentiles
-- Exact p50/p90/p95/p99 (ms, linear interpolation) of {{metric}} over completed tasks.
SELECT period, "group", tasks, q[1] AS p50, q[2] AS p90, q[3] AS p95, q[4] AS p99
  FROM (SELECT {{period}} AS period, {{group}} AS "group", count(*) AS tasks,
               quantile_cont({{metric}}, [0.5, 0.9, 0.95, 0.99]) AS q
          FROM tasks
         WHERE {{rollups.lake_window}} AND status = 'completed' AND {{metric}} IS NOT NULL
         GROUP BY ALL);

-- name: lake_failure_counts
-- Finished tasks, failed and cancelled ones, per period and group.
SELECT {{period}} AS period, {{group}} AS "group", count(*) AS tasks,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled
  FROM tasks
 WHERE {{rollups.lake_window}} AND status IN ('completed', 'failed', 'cancelled')
 GROUP BY ALL;

-- name: lake_score_rollup
-- queries.quality.score_rollup on the lake: per period, group and score name, the tasks of
-- the window and their cost (scored or not), and of their numeric and boolean scores: how
-- many, how many tasks they score, mean and sample standard deviation. `scores` is a view
-- over the lake's scores table, joined on task_id. {{score_group}}: {{group}}'s value of
-- the task, or s.evaluator (then {{group}} is NULL: tasks and cost of the whole period).
WITH t AS (
    SELECT {{period}} AS period, {{group}} AS grp, task_id, cost
      FROM tasks
     WHERE {{rollups.lake_window}}
), spend AS (
    SELECT period, grp, count(*) AS tasks, coalesce(sum(cost), 0)::DOUBLE AS cost
      FROM t GROUP BY period, grp
), scored AS (
    SELECT t.period, t.grp AS task_grp, {{score_group}} AS score_grp, s.name, s.data_type,
           count(*) AS scores, count(DISTINCT s.task_id) AS scored_tasks, avg(s.value) AS mean,
           stddev_samp(s.value) AS sd
      FROM t JOIN scores s ON s.task_id = t.task_id
     WHERE s.data_type IN ('numeric', 'boolean')
     GROUP BY 1, 2, 3, 4, 5
)
SELECT s.period, s.score_grp AS "group", s.name, s.data_type, sp.tasks, sp.cost, s.scores,
       s.scored_tasks, s.mean, s.sd
  FROM scored s
  JOIN spend sp ON sp.period IS NOT DISTINCT FROM s.period
               AND sp.grp IS NOT DISTINCT FROM s.task_grp
 ORDER BY s.period NULLS FIRST, s.score_grp NULLS LAST, s.name, s.data_type;
