-- drilldown.sql: fresh point reads of the drill-down lists, from Postgres
-- (queries/drilldown.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: stuck_tasks
-- Tasks pending or streaming for more than :older_than_minutes since created_at, oldest
-- first; the status predicate matches the partial index ai_tasks_unfinished_idx.
SELECT task_id, run_id, id, user_id, provider, model, endpoint, service, status,
       created_at, updated_at,
       extract(epoch FROM clock_timestamp() - created_at)::float8 / 60 AS age_minutes
  FROM ai_tasks
 WHERE status IN ('pending', 'streaming')
   AND created_at < clock_timestamp() - make_interval(secs => :older_than_minutes::float8 * 60)
 ORDER BY created_at
 LIMIT :limit;
