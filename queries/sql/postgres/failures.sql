-- failures.sql: the Postgres twin of ../failures.sql (queries/failures.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- The same names, columns and results as the mirror's (see postgres/engine.sql).

-- name: failure_counts
SELECT DATE '1970-01-01' + period_key AS period, grp AS "group", count(*) AS tasks,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled
  FROM (SELECT {{period}} AS period_key, {{group}} AS grp, status
          FROM {{engine.tasks_source}}
         WHERE {{engine.task_filter}} AND status IN ('completed', 'failed', 'cancelled')) f
 GROUP BY period_key, grp
 ORDER BY period_key NULLS FIRST, grp NULLS LAST;
