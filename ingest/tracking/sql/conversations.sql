-- conversations.sql: live runs, the tasks of a run still being generated
-- (ingest/tracking/conversations.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: live_tasks
-- The unfinished (pending or streaming) tasks of run :run_id, oldest first, with the text
-- and token counts written so far.
SELECT task_id, status, provider, model, response_text, tokens_input, tokens_output,
       tokens_total, time_to_first_token, created_at, updated_at
  FROM ai_tasks
 WHERE run_id = :run_id AND status IN ('pending', 'streaming')
 ORDER BY created_at, task_id;

-- name: live_run_ids
-- Which of the runs :run_ids have an unfinished task.
SELECT DISTINCT run_id
  FROM ai_tasks
 WHERE run_id = ANY(:run_ids) AND status IN ('pending', 'streaming');
