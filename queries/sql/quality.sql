-- quality.sql: score rollups on the mirror (docs/quality.md); twins in postgres/quality.sql
-- (queries/quality.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: score_rollup
-- Per period, group and score name: the tasks and their cost (every task the filters keep,
-- scored or not), and of the numeric and boolean scores of those tasks: how many, how many
-- tasks they score, their mean (for a boolean score the share of true) and sample standard
-- deviation (queries/quality.py makes the 95% interval from them). :names empty: all.
-- {{group}}: the task's group; {{score_group}}: the group the scores are counted in (grp,
-- the task's group, or evaluator when grouping by evaluator: then {{group}} is NULL and
-- tasks and cost are those of the whole period); {{first_score}}: the task_scores flag
-- that marks one score per task and counted group (first_in_name, first_in_evaluator).
-- Scores come from task_scores, which carries each score's task columns (the mirror's
-- tables.sql): no join of 2M scores to 10M tasks, no count(DISTINCT task_id).
WITH spend AS (
    SELECT period_key, grp, count(*) AS tasks, coalesce(sum(cost), 0) AS cost
      FROM (SELECT {{period}} AS period_key, {{group}} AS grp, cost
              FROM {{engine.tasks_source}}
             WHERE {{engine.task_filter}})
     GROUP BY period_key, grp
), scored AS (
    SELECT period_key, grp AS task_grp, {{score_group}} AS score_grp, name, data_type,
           count(*) AS scores, count(*) FILTER (WHERE {{first_score}}) AS scored_tasks,
           avg(value) AS mean, stddev_samp(value) AS sd
      FROM (SELECT {{period}} AS period_key, {{group}} AS grp, name, data_type, value,
                   evaluator, first_in_name, first_in_evaluator
              FROM task_scores
             WHERE {{engine.task_filter}}
               AND (len(:names::VARCHAR[]) = 0 OR list_contains(:names::VARCHAR[], name)))
     GROUP BY 1, 2, 3, 4, 5
)
SELECT DATE '1970-01-01' + s.period_key AS period, s.score_grp AS "group", s.name, s.data_type,
       sp.tasks, sp.cost, s.scores, s.scored_tasks, s.mean, s.sd
  FROM scored s
  JOIN spend sp ON sp.period_key IS NOT DISTINCT FROM s.period_key
               AND sp.grp IS NOT DISTINCT FROM s.task_grp
 ORDER BY s.period_key NULLS FIRST, s.score_grp NULLS LAST, s.name, s.data_type;
