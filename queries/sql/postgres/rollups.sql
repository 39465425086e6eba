-- Postgres twins of the rollups in ../rollups.sql: the same names, columns and results,
-- computed straight from the system of record (used by the two-engine tests and as the
-- benchmark baseline). Same conventions: :name bound, {{name}} allow-listed fragments.

-- name: tasks_source
-- Tasks with the columns of the mirror's task table: run source_type and tags, user team,
-- UTC day key and month key computed per row.
(SELECT t.id, t.task_id, t.run_id, t.user_id, u.team, r.source_type, r.tags, t.service,
        t.task_name, t.provider, t.endpoint, t.model, t.status, t.tokens_input,
        t.tokens_output, t.tokens_cached_input, t.tokens_total, t.cost,
        t.time_to_first_token, t.total_time, t.created_at, t.completed_at,
        (t.created_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01' AS day,
        date_trunc('month', t.created_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01'
            AS month_day
   FROM ai_tasks t
   JOIN ai_runs r ON r.id = t.run_id
   LEFT JOIN ai_users u ON u.id = t.user_id) AS tasks

-- name: task_filter
created_at >= :start AND created_at < :end
   AND (cardinality(:source_types::text[]) = 0 OR source_type = ANY(:source_types::text[]))
   AND (cardinality(:providers::text[]) = 0 OR provider = ANY(:providers::text[]))
   AND (cardinality(:models::text[]) = 0 OR model = ANY(:models::text[]))
   AND (cardinality(:users::text[]) = 0 OR user_id = ANY(:users::text[]))
   AND (cardinality(:teams::text[]) = 0 OR team = ANY(:teams::text[]))
   AND (cardinality(:tags::text[]) = 0 OR tags && :tags::text[])
   AND (cardinality(:statuses::text[]) = 0 OR status = ANY(:statuses::text[]))

-- name: usage
SELECT DATE '1970-01-01' + period_key AS period, grp AS "group",
       coalesce(sum(cost), 0) AS cost,
       coalesce(sum(tokens_input), 0)::bigint AS tokens_input,
       coalesce(sum(tokens_output), 0)::bigint AS tokens_output,
       coalesce(sum(tokens_total), 0)::bigint AS tokens_total,
       count(*) AS tasks, {{runs}} AS runs, {{active_users}} AS active_users
  FROM (SELECT {{period}} AS period_key, {{group}} AS grp, cost, tokens_input, tokens_output,
               tokens_total, run_id, user_id
          FROM {{tasks_source}} WHERE {{task_filter}}) f
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
  FROM {{tasks_source}} WHERE {{task_filter}};

-- name: latency_percentiles
SELECT DATE '1970-01-01' + period_key AS period, grp AS "group", n AS tasks,
       q[1] AS p50, q[2] AS p90, q[3] AS p95, q[4] AS p99
  FROM (SELECT period_key, grp, count(*) AS n,
               percentile_cont(ARRAY[0.5, 0.9, 0.95, 0.99]) WITHIN GROUP (ORDER BY v) AS q
          FROM (SELECT {{period}} AS period_key, {{group}} AS grp, {{metric}} AS v
                  FROM {{tasks_source}}
                 WHERE {{task_filter}} AND status = 'completed' AND {{metric}} IS NOT NULL) f
         GROUP BY period_key, grp) p
 ORDER BY period_key NULLS FIRST, grp NULLS LAST;

-- name: failure_counts
SELECT DATE '1970-01-01' + period_key AS period, grp AS "group", count(*) AS tasks,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled
  FROM (SELECT {{period}} AS period_key, {{group}} AS grp, status
          FROM {{tasks_source}}
         WHERE {{task_filter}} AND status IN ('completed', 'failed', 'cancelled')) f
 GROUP BY period_key, grp
 ORDER BY period_key NULLS FIRST, grp NULLS LAST;
