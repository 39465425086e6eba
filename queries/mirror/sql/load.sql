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
-- Full load, streamed in created_at order: keys are set afterwards by keys_of_stored_tasks
-- (a join here would make DuckDB hold the stream; an UPDATE keeps the order and is cheap).
INSERT INTO tasks
SELECT {{tables.task_columns}}, NULL::INTEGER AS run_key, NULL::INTEGER AS user_key
  FROM staged_tasks s;

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
-- ai_users), then set every missing key on the tasks.
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
