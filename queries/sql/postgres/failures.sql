-- Postgres twin of ../failures.sql. The same names, columns and results as the
-- mirror's, computed straight from the system of record (the two-engine tests compare them;
-- the benchmark uses them as the baseline). Same conventions as ../engine.sql.

-- name: failure_counts
SELECT DATE '1970-01-01' + period_key AS period, grp AS "group", count(*) AS tasks,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled
  FROM (SELECT {{period}} AS period_key, {{group}} AS grp, status
          FROM {{tasks_source}}
         WHERE {{task_filter}} AND status IN ('completed', 'failed', 'cancelled')) f
 GROUP BY period_key, grp
 ORDER BY period_key NULLS FIRST, grp NULLS LAST;
