-- langfuse.sql: what a Langfuse score import finds already stored, run as the owner
-- (ingest/transfer/foreign/langfuse_scores.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: score_targets
-- The stored tasks among :task_ids and runs among :run_ids: id (text) and the run it
-- belongs to (a run's own id).
SELECT task_id::text AS id, run_id FROM ai_tasks WHERE task_id = ANY(:task_ids::uuid[])
UNION ALL
SELECT id::text AS id, id AS run_id FROM ai_runs WHERE id = ANY(:run_ids::uuid[]);
