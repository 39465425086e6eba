-- usage.sql: the Postgres twins of ../usage.sql (queries/usage.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- The same names, columns and results as the mirror's (see postgres/engine.sql).

-- name: usage
SELECT DATE '1970-01-01' + period_key AS period, grp AS "group",
       coalesce(sum(cost), 0) AS cost,
       coalesce(sum(tokens_input), 0)::bigint AS tokens_input,
       coalesce(sum(tokens_output), 0)::bigint AS tokens_output,
       coalesce(sum(tokens_total), 0)::bigint AS tokens_total,
       count(*) AS tasks, {{runs}} AS runs, {{active_users}} AS active_users,
       coalesce(sum(tokens_cached_input), 0)::bigint AS tokens_cached_input,
       coalesce(sum(tokens_cache_write), 0)::bigint AS tokens_cache_write,
       count(*) FILTER (WHERE cost IS NULL) AS unpriced
  FROM (SELECT {{period}} AS period_key, {{group}} AS grp, cost, tokens_input, tokens_output,
               tokens_total, run_id, user_id, tokens_cached_input, tokens_cache_write
          FROM {{engine.tasks_source}} WHERE {{engine.task_filter}}) f
 GROUP BY period_key, grp
 ORDER BY period_key NULLS FIRST, grp NULLS LAST;

-- name: kpi_totals
SELECT coalesce(sum(cost), 0) AS spend, count(*) AS tasks, count(DISTINCT run_id) AS runs,
       count(DISTINCT user_id) AS active_users,
       coalesce(sum(tokens_total), 0)::bigint AS tokens,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY time_to_first_token)
           FILTER (WHERE status = 'completed') AS p95_ttft_ms,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')) AS finished
  FROM {{engine.tasks_source}} WHERE {{engine.task_filter}};
