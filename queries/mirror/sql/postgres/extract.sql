-- extract.sql: the mirror's rows read from Postgres through ADBC into Arrow
-- (queries/mirror/sync.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- :since is the previous sync's horizon as text (an xid8); '0' reads everything.

-- name: export_snapshot
-- The full load's snapshot, for its other connections: each imports it (SET TRANSACTION
-- SNAPSHOT) and so sees exactly the rows of this transaction, below the same horizon.
SELECT pg_export_snapshot();

-- name: source_identity
-- The snapshot horizon of this sync and who we are reading from. Columns: horizon (text,
-- pg_snapshot_xmin of the transaction snapshot: every transaction below it has finished),
-- identity (text: system identifier when readable / database oid / database name),
-- pruned_below (text: logged deletions below it may be gone, migration 0009).
SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS horizon,
       coalesce((SELECT below::text FROM ai_sync_pruned), '0') AS pruned_below,
       concat_ws('/',
           CASE WHEN has_function_privilege('pg_control_system()', 'EXECUTE')
                THEN (SELECT system_identifier::text FROM pg_control_system()) END,
           (SELECT oid::text FROM pg_database WHERE datname = current_database()),
           current_database()) AS identity;

-- name: extract_users
-- Users written since :since (all when '0').
SELECT id, display_name, team, role
  FROM ai_users
 WHERE sync_xid >= :since::text::xid8;

-- name: extract_all_users
SELECT id, display_name, team, role FROM ai_users;

-- name: extract_runs
-- Runs written since :since; total_cost as text (ADBC would return NUMERIC opaque).
SELECT id, user_id, source_type, source_id, name, tags, status, is_starred, parent_run_id,
       total_tokens, total_cost::text AS total_cost, message_count, task_count,
       created_at, updated_at, last_message_at, variant
  FROM ai_runs
 WHERE sync_xid >= :since::text::xid8
 ORDER BY created_at;

-- name: task_fields
-- A task's own columns (task_variant: its own variant), from ai_tasks t. error: a short
-- message taken from response_errors, for grouping.
t.id, t.task_id, t.run_id, t.user_id,
       t.service, t.task_name, t.provider, t.endpoint, t.model, t.model_id, t.status,
       t.tokens_input, t.tokens_output, t.tokens_cached_input, t.tokens_reasoning,
       t.tokens_total, t.tokens_cache_write, t.cost::text AS cost, t.cost_source,
       t.time_to_first_token, t.total_time,
       t.created_at, t.completed_at, t.updated_at, t.variant AS task_variant,
       CASE WHEN t.response_errors IS NULL
                 OR t.response_errors IN ('null'::jsonb, '[]'::jsonb, '{}'::jsonb) THEN NULL
            ELSE left(coalesce(
                     t.response_errors -> 0 ->> 'message',
                     t.response_errors -> 0 -> 'error' ->> 'message',
                     t.response_errors -> 0 ->> 'error',
                     t.response_errors ->> 'message',
                     t.response_errors -> 'error' ->> 'message',
                     t.response_errors ->> 'error',
                     t.response_errors #>> '{}'), 200)
       END AS error

-- name: extract_all_runs
SELECT id, user_id, source_type, source_id, name, tags, status, is_starred, parent_run_id,
       total_tokens, total_cost::text AS total_cost, message_count, task_count,
       created_at, updated_at, last_message_at, variant
  FROM ai_runs
 ORDER BY created_at;

-- name: extract_tasks
-- Tasks written since :since, ordered by created_at (the mirror's zone maps rely on it).
-- Without their run's source_type and tags: the mirror takes those from the staged or the
-- mirrored run (queries/mirror/sql/apply.sql), because a join here reads one random
-- ai_runs page per changed task (at 10M tasks, 1.4 s of a 1.7 s extract of 8k tasks).
-- Without their user's team, which the mirror takes from the staged or mirrored user: the
-- planner, expecting one changed row, joined ai_users by 8k index probes (at 1M tasks
-- 144-197 ms against 109-146 ms without, docs/scale.md).
SELECT {{extract.task_fields}}
  FROM ai_tasks t
 WHERE t.sync_xid >= :since::text::xid8
 ORDER BY t.created_at;

-- name: extract_all_tasks
-- Every task, ordered by created_at, without its run's columns: like extract_tasks, the
-- mirror joins its runs (queries/mirror/sql/load.sql, insert_all_tasks). Joining ai_runs
-- here read the runs heap a second time and cost Postgres more than half of this extract
-- (docs/design.md, "The full build"). No bound parameter, so ADBC streams it with COPY in
-- batches instead of holding the whole result in memory.
SELECT {{extract.task_fields}}, u.team
  FROM ai_tasks t
  LEFT JOIN ai_users u ON u.id = t.user_id
 ORDER BY t.created_at;

-- name: score_fields
-- The ai_scores columns the mirror keeps (tables.sql, create_scores).
id, run_id, task_id, name, data_type, value, label, source, author, evaluator,
       evaluator_version, created_at, updated_at

-- name: extract_scores
-- Scores written since :since (docs/quality.md).
SELECT {{extract.score_fields}}
  FROM ai_scores
 WHERE sync_xid >= :since::text::xid8;

-- name: extract_all_scores
SELECT {{extract.score_fields}} FROM ai_scores;

-- name: extract_deletions
-- Rows deleted since :since that do not exist now (a row deleted and written again is
-- read by the extract queries instead). Columns: table_name, id (text).
SELECT d.table_name, d.id
  FROM ai_sync_deletions d
 WHERE d.sync_xid >= :since::text::xid8
   AND d.id <> '*'
   AND NOT CASE d.table_name
           WHEN 'ai_tasks' THEN EXISTS (SELECT 1 FROM ai_tasks t WHERE t.id = d.id::uuid)
           WHEN 'ai_runs' THEN EXISTS (SELECT 1 FROM ai_runs r WHERE r.id = d.id::uuid)
           WHEN 'ai_scores' THEN EXISTS (SELECT 1 FROM ai_scores s WHERE s.id = d.id::bigint)
           ELSE EXISTS (SELECT 1 FROM ai_users u WHERE u.id = d.id)
       END;

-- name: extract_logged_times
-- The created_at of every task and run logged since :since: deleted, deleted and written
-- again, or moved to another created_at (migration 0030). With the staged rows' own
-- created_at, these are the times the mirror's copies of the rows to replace can have
-- (queries/mirror/sql/apply.sql, copies_by_time). NULL for a row logged before migration
-- 0030. Columns: table_name, created_at.
SELECT d.table_name, d.created_at
  FROM ai_sync_deletions d
 WHERE d.sync_xid >= :since::text::xid8
   AND d.id <> '*'
   AND d.table_name IN ('ai_tasks', 'ai_runs');

-- name: truncations
-- Tables truncated since :since (logged with id '*' by migration 0004): table_name.
SELECT DISTINCT table_name
  FROM ai_sync_deletions
 WHERE sync_xid >= :since::text::xid8 AND id = '*';
