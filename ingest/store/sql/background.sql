-- Batched writes of the background writer (ingest.background_writer). Values are bound: each
-- batch is one JSON array of rows. Idempotent: a row whose id / task_id exists is skipped,
-- so a batch replayed from the disk spool is written exactly once.

-- name: insert_runs_batch
-- Insert the runs of :rows (a JSON array of ai_runs columns); existing ids are skipped.
INSERT INTO ai_runs (id, user_id, source_type, name, messages, metadata, created_at)
SELECT r.id, r.user_id, r.source_type, coalesce(r.name, ''), coalesce(r.messages, '[]'),
       coalesce(r.metadata, '{}'), coalesce(r.created_at, now())
  FROM jsonb_to_recordset(:rows::jsonb) AS r (id uuid, user_id text, source_type text,
       name text, messages jsonb, metadata jsonb, created_at timestamptz)
ON CONFLICT (id) DO NOTHING;

-- name: insert_tasks_batch
-- Insert the finished tasks of :rows (a JSON array of ai_tasks columns) in one statement, so
-- run totals move once per run; existing task_ids are skipped (exactly once). Tasks whose
-- run does not exist are skipped too and returned: task_id of each skipped orphan.
WITH rows AS (
    SELECT r.*
      FROM jsonb_to_recordset(:rows::jsonb) AS r (
           run_id uuid, user_id text, task_id uuid, service text, task_name text,
           provider text, endpoint text, model text, request_data jsonb, response_text text,
           response_data jsonb, response_errors jsonb, tool_updates jsonb,
           response_complete boolean, response_metadata jsonb, tokens_input bigint,
           tokens_output bigint, tokens_cached_input bigint, tokens_cache_write bigint,
           tokens_reasoning bigint, tokens_total bigint, cost numeric, cost_source text,
           price_ref text, time_to_first_token integer, total_time integer, status text,
           created_at timestamptz, completed_at timestamptz)
), inserted AS (
    INSERT INTO ai_tasks (run_id, user_id, task_id, service, task_name, provider, endpoint,
                          model, request_data, response_text, response_data, response_errors,
                          tool_updates, response_complete, response_metadata, tokens_input,
                          tokens_output, tokens_cached_input, tokens_cache_write,
                          tokens_reasoning, tokens_total, cost, cost_source, price_ref,
                          time_to_first_token, total_time, status, created_at, completed_at)
    SELECT run_id, user_id, task_id, service, task_name, provider, endpoint, model,
           coalesce(request_data, '{}'), coalesce(response_text, ''), response_data,
           response_errors, tool_updates, coalesce(response_complete, false),
           response_metadata, tokens_input, tokens_output, tokens_cached_input,
           tokens_cache_write, tokens_reasoning, tokens_total, cost, cost_source, price_ref,
           time_to_first_token, total_time, status, coalesce(created_at, now()), completed_at
      FROM rows
     WHERE EXISTS (SELECT 1 FROM ai_runs WHERE ai_runs.id = rows.run_id)
    ON CONFLICT (task_id) DO NOTHING
    RETURNING task_id
)
SELECT task_id FROM rows
 WHERE NOT EXISTS (SELECT 1 FROM ai_runs WHERE ai_runs.id = rows.run_id);
