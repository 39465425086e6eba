-- quality.sql: score rollups on the mirror (docs/quality.md); twins in postgres/quality.sql
-- (queries/quality.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: score_rollup
-- Per period, group and score name: the tasks and their cost (every task the filters keep,
-- scored or not), and of the numeric and boolean scores of those tasks: how many, how many
-- tasks they score, their mean (for a boolean score the share of true). :names empty: all.
WITH t AS (
    SELECT {{period}} AS period_key, {{group}} AS grp, task_id, cost
      FROM {{engine.tasks_source}}
     WHERE {{engine.task_filter}}
), spend AS (
    SELECT period_key, grp, count(*) AS tasks, coalesce(sum(cost), 0) AS cost
      FROM t GROUP BY period_key, grp
), scored AS (
    SELECT t.period_key, t.grp, s.name, count(*) AS scores,
           count(DISTINCT s.task_id) AS scored_tasks, avg(s.value) AS mean
      FROM t JOIN scores s ON s.task_id = t.task_id
     WHERE s.data_type IN ('numeric', 'boolean')
       AND (len(:names::VARCHAR[]) = 0 OR list_contains(:names::VARCHAR[], s.name))
     GROUP BY t.period_key, t.grp, s.name
)
SELECT DATE '1970-01-01' + s.period_key AS period, s.grp AS "group", s.name, sp.tasks,
       sp.cost, s.scores, s.scored_tasks, s.mean
  FROM scored s
  JOIN spend sp ON sp.period_key IS NOT DISTINCT FROM s.period_key
               AND sp.grp IS NOT DISTINCT FROM s.grp
 ORDER BY s.period_key NULLS FIRST, s.grp NULLS LAST, s.name;
