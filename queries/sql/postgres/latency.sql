-- latency.sql: the Postgres twin of ../latency.sql (queries/latency.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- The same names, columns and results as the mirror's (see postgres/engine.sql).

-- name: latency_percentiles
SELECT DATE '1970-01-01' + period_key AS period, grp AS "group", n AS tasks,
       q[1] AS p50, q[2] AS p90, q[3] AS p95, q[4] AS p99
  FROM (SELECT period_key, grp, count(*) AS n,
               percentile_cont(ARRAY[0.5, 0.9, 0.95, 0.99]) WITHIN GROUP (ORDER BY v) AS q
          FROM (SELECT {{period}} AS period_key, {{group}} AS grp, {{metric}} AS v
                  FROM {{engine.tasks_source}}
                 WHERE {{engine.task_filter}} AND status = 'completed' AND {{metric}} IS NOT NULL) f
         GROUP BY period_key, grp) p
 ORDER BY period_key NULLS FIRST, grp NULLS LAST;
