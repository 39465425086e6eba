-- tasks.sql: tasks (requests) for the live API (ingest/tracking/tasks.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- A "task row" is every ai_tasks column except sync_xid: {{vocabulary.task_columns}}.
-- run_tasks serves ingest/tracking/runs.py too.

-- name: insert_task
-- Insert one task of :run_id; columns given as NULL take their defaults. Returns the task
-- row, or no row when :task_id already exists (a retried create). A missing run raises a
-- foreign key violation.
INSERT INTO ai_tasks (run_id, user_id, task_id, service, task_name, provider, endpoint, model,
                      model_id, request_data, response_metadata, status, created_at, variant)
VALUES (:run_id, :user_id, :task_id, :service, :task_name, :provider, :endpoint, :model,
        :model_id, coalesce(:request_data::jsonb, '{}'), :response_metadata,
        coalesce(:status::text, 'pending'), coalesce(:created_at::timestamptz, now()), :variant)
ON CONFLICT (task_id) DO NOTHING
RETURNING {{vocabulary.task_columns}};

-- name: get_task
-- One task row by its application task_id; no row when it does not exist.
SELECT {{vocabulary.task_columns}}
  FROM ai_tasks
 WHERE task_id = :task_id;

-- name: lock_task
-- The task row, locked for the rest of the transaction, plus db_now (clock_timestamp(), to
-- measure times against created_at on the database's clock); no row when it does not exist.
SELECT {{vocabulary.task_columns}},
       clock_timestamp() AS db_now
  FROM ai_tasks
 WHERE task_id = :task_id
   FOR NO KEY UPDATE;

-- name: write_task
-- Write every mutable column of one task (the caller merged old and new values under the
-- lock of lock_task): the vocabulary's writable columns and price_ref, each from the
-- parameter of its name. tokens_total NULL means tokens_input + tokens_output (trigger).
-- Returns the task row.
UPDATE ai_tasks
   SET {{vocabulary.task_updates}}
 WHERE task_id = :task_id
RETURNING {{vocabulary.task_columns}};

-- name: run_tasks
-- Every task row of :run_id, oldest first.
SELECT {{vocabulary.task_columns}}
  FROM ai_tasks
 WHERE run_id = :run_id
 ORDER BY created_at, id;
