-- Failure and error rollups on the mirror (queries/failures.py); twins in postgres/failures.sql. Values are bound (:name); {{name}} is filled only with the
-- fragments of engine.sql (task_filter, tasks_source) or with an allow-listed expression of
-- queries/engine.py (period, group, metric), never with user text.

-- name: failure_counts
-- Finished tasks, failed and cancelled ones, per period and group.
SELECT DATE '1970-01-01' + period_key AS period, grp AS "group", count(*) AS tasks,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled
  FROM (SELECT {{period}} AS period_key, {{group}} AS grp, status
          FROM {{tasks_source}}
         WHERE {{task_filter}} AND status IN ('completed', 'failed', 'cancelled')) f
 GROUP BY period_key, grp
 ORDER BY period_key NULLS FIRST, grp NULLS LAST;

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
