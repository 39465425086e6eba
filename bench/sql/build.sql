-- build.sql: the mirror's previous full load, the baseline the current one
-- (queries/mirror/sql/) is timed against (bench/build.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: previous_extract_all_runs
-- Every run in one stream, sorted by Postgres.
SELECT id, user_id, source_type, source_id, name, tags, status, is_starred, parent_run_id,
       total_tokens, total_cost::text AS total_cost, message_count, task_count,
       created_at, updated_at, last_message_at, variant
  FROM ai_runs
 ORDER BY created_at;

-- name: previous_extract_all_tasks
-- Every task in one stream, with its run's source_type, tags and variant joined and sorted
-- by Postgres.
SELECT {{extract.task_fields}}, u.team, r.source_type, r.tags,
       coalesce(t.variant, r.variant) AS variant
  FROM ai_tasks t
  JOIN ai_runs r ON r.id = t.run_id
  LEFT JOIN ai_users u ON u.id = t.user_id
 ORDER BY t.created_at;

-- name: previous_insert_all_tasks
-- Streamed in as sorted; keys set afterwards by an UPDATE (load.sql, keys_of_stored_tasks).
INSERT INTO tasks
SELECT {{tables.task_columns}}, NULL::INTEGER AS run_key, NULL::INTEGER AS user_key
  FROM staged_tasks s;

-- name: mirror_tables
-- The mirror's tables the two builds must hold alike: table_name.
SELECT table_name FROM duckdb_tables()
 WHERE database_name = current_database() AND table_name <> 'mirror_meta'
 ORDER BY table_name;

-- name: row_group_hours
-- The mean span of created_at, in hours, over the row groups of tasks (122,880 rows each).
SELECT avg(epoch(hi) - epoch(lo)) / 3600
  FROM (SELECT max(created_at) AS hi, min(created_at) AS lo FROM tasks GROUP BY rowid // 122880);
