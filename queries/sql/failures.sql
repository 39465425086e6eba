-- failures.sql: failure and error rollups on the mirror; twins in postgres/failures.sql
-- (queries/failures.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: failure_counts
-- Finished tasks, failed and cancelled ones, per period and group.
SELECT DATE '1970-01-01' + period_key AS period, grp AS "group", count(*) AS tasks,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled
  FROM (SELECT {{period}} AS period_key, {{group}} AS grp, status
          FROM {{engine.tasks_source}}
         WHERE {{engine.task_filter}} AND status IN ('completed', 'failed', 'cancelled')) f
 GROUP BY period_key, grp
 ORDER BY period_key NULLS FIRST, grp NULLS LAST;

-- name: error_groups
-- Most frequent errors (digits -> N): error, tasks, models, last_seen, sample_task_id.
SELECT regexp_replace(error, '[0-9]+', 'N', 'g') AS error, count(*) AS tasks,
       array_to_string(list_sort(list_distinct(list(model))), ', ') AS models,
       max(created_at) AS last_seen, arg_max(task_id, created_at) AS sample_task_id
  FROM {{engine.tasks_source}}
 WHERE {{engine.task_filter}} AND error IS NOT NULL
 GROUP BY 1
 ORDER BY tasks DESC, error
 LIMIT :limit;
