-- check.sql: the mirror's self-check (queries/mirror/sync.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- Read every block back, and the totals to compare with the Postgres query of the same
-- name (postgres/check.sql).

-- name: verify_read_all
-- Reads every column of every mirror table, so DuckDB checks the checksum of every block
-- (a damaged block raises an error). One row: a hash per table (values do not matter).
SELECT (SELECT max(hash(t)) FROM tasks t) AS tasks, (SELECT max(hash(r)) FROM runs r) AS runs,
       (SELECT max(hash(u)) FROM users u) AS users,
       (SELECT max(hash(x)) FROM rare_tasks x) AS rare_tasks,
       (SELECT max(hash(k)) FROM run_keys k) AS run_keys,
       (SELECT max(hash(k)) FROM user_keys k) AS user_keys,
       (SELECT max(hash(d)) FROM run_key_days d) AS run_key_days,
       (SELECT max(hash(v)) FROM dim_values v) AS dim_values,
       (SELECT max(hash(s)) FROM scores s) AS scores,
       (SELECT max(hash(s)) FROM task_scores s) AS task_scores,
       (SELECT max(hash(d)) FROM day_totals d) AS day_totals,
       (SELECT max(hash(d)) FROM day_ttft d) AS day_ttft,
       (SELECT max(hash(d)) FROM day_tag_totals d) AS day_tag_totals;

-- name: verify_totals
-- What the mirror holds, to compare with Postgres' verify_totals (same columns, as text):
-- tasks, tokens (sum of tokens_total), cost (sum, USD), runs, run_tokens (sum of
-- total_tokens), users, scores (a count: sums of
-- doubles may differ in the last place between engines).
SELECT (SELECT count(*) FROM tasks)::VARCHAR AS tasks,
       (SELECT coalesce(sum(tokens_total), 0) FROM tasks)::VARCHAR AS tokens,
       (SELECT coalesce(sum(cost), 0) FROM tasks)::VARCHAR AS cost,
       (SELECT count(*) FROM runs)::VARCHAR AS runs,
       (SELECT coalesce(sum(total_tokens), 0) FROM runs)::VARCHAR AS run_tokens,
       (SELECT count(*) FROM users)::VARCHAR AS users,
       (SELECT count(*) FROM scores)::VARCHAR AS scores;

-- name: verify_task_scores
-- task_scores against the join of tasks and scores it stands for (tables.sql,
-- task_score_rows): have (its rows), want (the join's), same (the sums of the rows' hashes
-- agree; a changed value or flag changes them). At 10M tasks and 2.2M scores about 3.5 s,
-- against 12-13 s for comparing row by row with EXCEPT ALL.
SELECT (SELECT count(*) FROM task_scores) AS have, count(*) AS want,
       coalesce((SELECT sum(hash(x)) FROM task_scores x) = sum(hash(w)),
                (SELECT count(*) FROM task_scores) = 0) AS same
  FROM ({{tables.task_score_rows}}) w;

-- name: verify_day_totals
-- The day totals (day_totals.sql) against the mirror's tasks they stand for, per day: the
-- tasks, their cost and tokens, and the completed tasks with a time to first token
-- (day_ttft); and the tag totals against day_totals: per day, the tasks and cost of each
-- row counted once per tag of its run (once without tags). How many days differ (0 when
-- in step). One pass over four columns of tasks and over the day totals: at 2M tasks a
-- fraction of verify_read_all.
WITH kept AS (
    SELECT day, sum(tasks) AS tasks, sum(cost) AS cost, sum(tokens_total) AS tokens,
           sum(tasks * greatest(len(tags), 1)) AS tag_tasks,
           sum(cost * greatest(len(tags), 1)) AS tag_cost
      FROM day_totals GROUP BY day
),
counted AS (
    SELECT day, count(*) AS tasks, coalesce(sum(cost), 0) AS cost,
           coalesce(sum(tokens_total), 0) AS tokens,
           count(*) FILTER (WHERE status = 'completed' AND time_to_first_token IS NOT NULL)
               AS timed
      FROM tasks GROUP BY day
),
timed AS (SELECT day, sum(n) AS timed FROM day_ttft GROUP BY day HAVING sum(n) <> 0),
tagged AS (
    SELECT day, sum(tasks) AS tasks, sum(cost) AS cost FROM day_tag_totals GROUP BY day
)
SELECT count(*)
  FROM kept
  FULL JOIN counted USING (day)
  FULL JOIN timed USING (day)
  FULL JOIN tagged USING (day)
 WHERE kept.tasks IS DISTINCT FROM counted.tasks
    OR kept.cost IS DISTINCT FROM counted.cost
    OR kept.tokens IS DISTINCT FROM counted.tokens
    OR coalesce(timed.timed, 0) <> coalesce(counted.timed, 0)
    OR coalesce(kept.tag_tasks, 0) <> coalesce(tagged.tasks, 0)
    OR coalesce(kept.tag_cost, 0) <> coalesce(tagged.cost, 0);
