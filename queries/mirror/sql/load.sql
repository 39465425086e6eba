-- load.sql: the full load of the mirror (queries/mirror/sync.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- Every source row streamed in, then keys, rare tasks and dimension values computed over
-- the stored tables.

-- name: all_rare_tasks
-- Full load, once keys and run_key_days are set.
INSERT INTO rare_tasks
SELECT t.* FROM tasks t LEFT JOIN run_key_days d ON d.day = t.day
 WHERE d.lo IS NULL OR t.run_key IS NULL OR t.run_key NOT BETWEEN d.lo AND d.lo + d.n - 1;

-- name: insert_all_tasks
-- Full load, once runs and keys are stored: every task, streamed in created_at order, with
-- its run's source_type, tags and variant (a task without its own variant has its run's)
-- and its keys. Run after probe_the_stream: the joins then keep the stream's order (the
-- zone maps of windowed rollups rely on it) and hold only the runs and keys in memory.
-- Keys set by a later UPDATE cost a second pass over every task, which the commit paid
-- for again.
INSERT INTO tasks
SELECT {{tables.task_columns}}, rk.key AS run_key, uk.key AS user_key
  FROM (SELECT t.*, r.source_type, r.tags, coalesce(t.task_variant, r.variant) AS variant
          FROM staged_tasks t LEFT JOIN runs r ON r.id = t.run_id) s
  LEFT JOIN run_keys rk ON rk.id = s.run_id
  LEFT JOIN user_keys uk ON uk.id = s.user_id;

-- name: probe_the_stream
-- Before insert_all_tasks. DuckDB cannot count a stream, so its optimizer would build the
-- hash tables on the streamed tasks (all of them in memory, their order lost) and probe
-- with the runs: without reordering, the runs and keys are built and the stream probes.
-- One thread: two would each fill row groups of their own with every other batch, and a
-- row group would span about 2.5 times the days (573 h against 240 h at 1M tasks over 90
-- days), which loosens the zone maps; one thread was not slower at 1M.
SET disabled_optimizers = 'build_side_probe_side,join_order';
SET threads = 1;

-- name: load_settings
-- The connection's settings the full load changes for a while: memory_limit (text, as
-- DuckDB writes it: '732.4 MiB'), threads.
SELECT current_setting('memory_limit') AS memory_limit, current_setting('threads') AS threads;

-- name: optimize_as_usual
RESET disabled_optimizers;

-- name: set_memory_limit
-- The full load raises it while the tasks stream in (sync.py, FULL_LOAD_MEMORY_LIMIT) and
-- puts the connection's :limit back afterwards.
SET memory_limit = :limit;

-- name: set_threads
SET threads = :threads;

-- name: all_run_keys
-- Full load: every run gets a key, in order of creation.
INSERT INTO run_keys
SELECT id, (row_number() OVER (ORDER BY created_at, id))::INTEGER,
       (epoch_us(created_at) // 86400000000)::INTEGER
  FROM runs;

-- name: all_user_keys
INSERT INTO user_keys
SELECT id, (row_number() OVER (ORDER BY id))::INTEGER FROM (SELECT DISTINCT id FROM users) u;

-- name: keys_of_stored_tasks
-- Full load: give keys to the runs and users of tasks without them (users absent from
-- ai_users; a task's run is always in the same snapshot), then set those keys on the
-- tasks (an UPDATE of the few rows without one).
INSERT INTO user_keys
SELECT id, ((SELECT coalesce(max(key), 0) FROM user_keys) + row_number() OVER (ORDER BY id))::INTEGER
  FROM (SELECT DISTINCT user_id AS id FROM tasks
         WHERE user_key IS NULL AND user_id IS NOT NULL
           AND user_id NOT IN (SELECT id FROM user_keys)) n;
INSERT INTO run_keys
SELECT id, ((SELECT coalesce(max(key), 0) FROM run_keys) + row_number() OVER (ORDER BY id))::INTEGER, day
  FROM (SELECT run_id AS id, min(day) AS day FROM tasks
         WHERE run_key IS NULL AND run_id NOT IN (SELECT id FROM run_keys)
         GROUP BY run_id) n;
UPDATE tasks SET user_key = k.key FROM user_keys k
 WHERE tasks.user_key IS NULL AND tasks.user_id = k.id;
UPDATE tasks SET run_key = k.key FROM run_keys k
 WHERE tasks.run_key IS NULL AND tasks.run_id = k.id;

-- name: all_dim_values
-- Full load: the values of every dimension.
INSERT INTO dim_values
SELECT 'provider', provider FROM tasks GROUP BY 2
UNION ALL SELECT 'model', model FROM tasks GROUP BY 2
UNION ALL SELECT 'endpoint', endpoint FROM tasks GROUP BY 2
UNION ALL SELECT 'service', service FROM tasks GROUP BY 2
UNION ALL SELECT 'task_name', task_name FROM tasks GROUP BY 2
UNION ALL SELECT 'status', status FROM tasks GROUP BY 2
UNION ALL SELECT 'user_id', id FROM user_keys
UNION ALL SELECT 'team', team FROM users GROUP BY 2
UNION ALL SELECT 'source_type', source_type FROM runs GROUP BY 2
UNION ALL SELECT 'tag', tag FROM (SELECT unnest(tags) AS tag FROM runs) GROUP BY 2
UNION ALL SELECT 'variant', variant FROM tasks GROUP BY 2;

-- name: all_task_scores
-- Full load, once tasks (with their keys) and scores are stored.
INSERT INTO task_scores {{tables.task_score_rows}};
