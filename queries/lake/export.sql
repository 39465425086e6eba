-- export.sql: the lake's tables as read from the DuckDB mirror (queries/lake/export.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- The column lists are the lake's schema (docs/lake.md, "Schema"): ids as text (every engine reads
-- them), exact decimals, UTC timestamps; the mirror's private keys (run_key, user_key,
-- day, month_day) stay out. `month` (YYYY-MM of created_at, UTC) is the Delta partition
-- column; users is not partitioned (its '' month only groups its one fingerprint).

-- name: lake_tasks
SELECT id::VARCHAR AS id, task_id::VARCHAR AS task_id, run_id::VARCHAR AS run_id, user_id,
       team, source_type, tags, service, task_name, provider, endpoint, model, model_id,
       status, tokens_input, tokens_output, tokens_cached_input, tokens_cache_write,
       tokens_reasoning, tokens_total, cost, cost_source, time_to_first_token, total_time, created_at, completed_at,
       updated_at, error, strftime(created_at, '%Y-%m') AS month
  FROM tasks

-- name: lake_runs
SELECT id::VARCHAR AS id, user_id, source_type, source_id, name, tags, status, is_starred,
       parent_run_id::VARCHAR AS parent_run_id, total_tokens, total_cost, message_count,
       task_count, created_at, updated_at, last_message_at,
       strftime(created_at, '%Y-%m') AS month
  FROM runs

-- name: lake_scores
-- Partitioned by the month the score was first written (a replaced score keeps it: its
-- month's fingerprint changes and the month is rewritten).
SELECT id::VARCHAR AS id, run_id::VARCHAR AS run_id, task_id::VARCHAR AS task_id, name,
       data_type, value, label, source, author, evaluator, evaluator_version, created_at,
       updated_at, strftime(created_at, '%Y-%m') AS month
  FROM scores

-- name: lake_users
SELECT id, display_name, team, role, '' AS month FROM users

-- name: partition_fingerprints
-- Per partition of {{table}}: month, rows, fingerprint ("rows:sum of row hashes", over
-- every exported column: any insert, update or delete in the month changes it).
SELECT month, count(*) AS rows, count(*)::VARCHAR || ':' || coalesce(sum(hash(x)), 0)::VARCHAR
       AS fingerprint
  FROM ({{table}}) x
 GROUP BY month
 ORDER BY month;

-- name: rows_of_months
-- The rows of the months in months_to_write (a registered one-column table), with
-- `month` (Delta stores it as the partition), oldest first within each month.
SELECT * FROM ({{table}}) x
 WHERE month IN (SELECT month FROM months_to_write)
 ORDER BY month, created_at, id;

-- name: rows_of_table
-- Every row of a partitioned table, with `month`, oldest first within each month.
SELECT * FROM ({{table}}) x ORDER BY month, created_at, id;

-- name: rows_of_unpartitioned
-- Every row of an unpartitioned table (users), without `month`.
SELECT * EXCLUDE (month) FROM ({{table}}) x ORDER BY id;

-- name: mirror_source
-- What the lake was exported from: the mirror's horizon and last sync time (recorded in
-- each Delta commit's metadata as the source).
SELECT key, value FROM mirror_meta WHERE key IN ('horizon', 'last_sync_at', 'source_identity');
