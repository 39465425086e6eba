-- load.sql: the full load of the mirror (queries/mirror/sync.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- Every source row streamed in, then keys, rare tasks and dimension values computed over
-- the stored tables.

-- name: all_rare_tasks
-- Full load, once keys and run_key_days are set.
INSERT INTO rare_tasks
SELECT t.* FROM tasks t LEFT JOIN run_key_days d ON d.day = t.day
 WHERE d.lo IS NULL OR t.run_key IS NULL OR t.run_key NOT BETWEEN d.lo AND d.lo + d.n - 1;

-- name: insert_all_runs
-- Full load: the runs of every block range (staged_runs, the union of the parts), sorted
-- by creation as Postgres used to send them.
INSERT INTO runs
SELECT id, user_id, source_type, source_id, name, tags, status, is_starred, parent_run_id,
       total_tokens, total_cost::DECIMAL(24, 10), message_count, task_count,
       created_at, updated_at, last_message_at, variant
  FROM staged_runs
 ORDER BY created_at;

-- name: insert_all_tasks
-- Full load, once runs and keys are stored: every task (staged_tasks, the union of the
-- parts read over several connections) with its run's source_type, tags and variant (a
-- task without its own variant has its run's) and its keys, sorted by created_at (the
-- zone maps of windowed rollups rely on it). One statement: the sort holds the rows
-- anyway, and keys set by a later UPDATE cost a second pass over every task.
INSERT INTO tasks
SELECT {{tables.task_columns}}, rk.key AS run_key, uk.key AS user_key
  FROM (SELECT t.*, r.source_type, r.tags, coalesce(t.task_variant, r.variant) AS variant
          FROM staged_tasks t LEFT JOIN runs r ON r.id = t.run_id) s
  LEFT JOIN run_keys rk ON rk.id = s.run_id
  LEFT JOIN user_keys uk ON uk.id = s.user_id
 ORDER BY s.created_at;

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
