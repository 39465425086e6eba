-- quality.sql: the Postgres twin of ../quality.sql (queries/quality.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- The same names, columns and results as the mirror's (see postgres/engine.sql).

-- name: score_rollup
-- {{score_group}}: grp or evaluator, as on the mirror (first_score is the mirror's alone).
WITH t AS (
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
      FROM t JOIN ai_scores s ON s.task_id = t.task_id
     WHERE s.data_type IN ('numeric', 'boolean')
       AND (cardinality(:names::text[]) = 0 OR s.name = ANY(:names::text[]))
     GROUP BY 1, 2, 3, 4, 5
)
SELECT DATE '1970-01-01' + s.period_key AS period, s.score_grp AS "group", s.name, s.data_type,
       sp.tasks, sp.cost, s.scores, s.scored_tasks, s.mean, s.sd
  FROM scored s
  JOIN spend sp ON sp.period_key IS NOT DISTINCT FROM s.period_key
               AND sp.grp IS NOT DISTINCT FROM s.task_grp
 ORDER BY s.period_key NULLS FIRST, s.score_grp NULLS LAST, s.name, s.data_type;
