-- latency.sql: latency rollups on the mirror; twins in postgres/latency.sql
-- (queries/latency.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: latency_percentiles
-- Exact p50/p90/p95/p99 (ms) of {{metric}} over completed tasks, per period and group.
SELECT DATE '1970-01-01' + period_key AS period, grp AS "group", n AS tasks,
       q[1] AS p50, q[2] AS p90, q[3] AS p95, q[4] AS p99
  FROM (SELECT period_key, grp, count(*) AS n,
               quantile_cont(v, [0.5, 0.9, 0.95, 0.99]) AS q
          FROM (SELECT {{period}} AS period_key, {{group}} AS grp, {{metric}} AS v
                  FROM {{engine.tasks_source}}
                 WHERE {{engine.task_filter}} AND status = 'completed' AND {{metric}} IS NOT NULL) f
         GROUP BY period_key, grp) p
 ORDER BY period_key NULLS FIRST, grp NULLS LAST;

-- name: latency_histogram_counts
-- Tasks per log-spaced bucket of {{metric}} (completed tasks): group, bucket (0-based), tasks,
-- lo, hi (the range the buckets span, ms, the same for every group).
WITH v AS (
    SELECT {{group}} AS grp, {{metric}}::DOUBLE AS x
      FROM {{engine.tasks_source}}
     WHERE {{engine.task_filter}} AND status = 'completed' AND {{metric}} IS NOT NULL
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
                  FROM {{engine.tasks_source}}
                 WHERE {{engine.task_filter}} AND status = 'completed' AND tokens_output > 0
                   AND total_time > time_to_first_token) f
         GROUP BY grp) g
 ORDER BY tasks DESC, "group" NULLS LAST;
