-- quality.sql: score rollups on the mirror (docs/quality.md); twins in postgres/quality.sql
-- (queries/quality.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: score_rollup
-- Per period, group and score name: the tasks and their cost (every task the filters keep,
-- scored or not), and of the numeric and boolean scores of those tasks: how many, how many
-- tasks they score, their mean (for a boolean score the share of true) and sample standard
-- deviation (queries/quality.py makes the 95% interval from them). :names empty: all.
-- {{group}}: the task's group; {{score_group}}: the group the scores are counted in (the
-- task's group, or s.evaluator when grouping by evaluator: then {{group}} is NULL and
-- tasks and cost are those of the whole period).
-- t is read twice: NOT MATERIALIZED keeps DuckDB from writing its 10M rows aside (at 10M
-- tasks that spilled 561 MB to disk and took 1.6-1.9 s; read twice from the columns: 0.9 s).
WITH t AS NOT MATERIALIZED (
    SELECT {{period}} AS period_key, {{group}} AS grp, task_id, cost
      FROM {{engine.tasks_source}}
     WHERE {{engine.task_filter}}
), spend AS (
    SELECT period_key, grp, count(*) AS tasks, coalesce(sum(cost), 0) AS cost
      FROM t GROUP BY period_key, grp
), scored AS (
    SELECT t.period_key, t.grp AS task_grp, {{score_group}} AS score_grp, s.name, s.data_type,
           count(*) AS scores, count(DISTINCT s.task_id) AS scored_tasks, avg(s.value) AS mean,
           stddev_samp(s.value) AS sd
      FROM t JOIN scores s ON s.task_id = t.task_id
     WHERE s.data_type IN ('numeric', 'boolean')
       AND (len(:names::VARCHAR[]) = 0 OR list_contains(:names::VARCHAR[], s.name))
     GROUP BY 1, 2, 3, 4, 5
)
SELECT DATE '1970-01-01' + s.period_key AS period, s.score_grp AS "group", s.name, s.data_type,
       sp.tasks, sp.cost, s.scores, s.scored_tasks, s.mean, s.sd
  FROM scored s
  JOIN spend sp ON sp.period_key IS NOT DISTINCT FROM s.period_key
               AND sp.grp IS NOT DISTINCT FROM s.task_grp
 ORDER BY s.period_key NULLS FIRST, s.score_grp NULLS LAST, s.name, s.data_type;
