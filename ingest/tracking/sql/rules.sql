-- rules.sql: the tasks a rule evaluator reads (ingest/tracking/rules.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- docs/quality.md.

-- name: rule_tasks
-- Finished tasks created in [:since, :until) (of :models when not empty), after the
-- position (:after_at, :after_id) in (created_at, id) order, at most :limit.
SELECT id, task_id, run_id, created_at, response_text, total_time, cost
  FROM ai_tasks
 WHERE created_at >= :since
   AND (CAST(:until AS timestamptz) IS NULL OR created_at < :until)
   AND status IN ('completed', 'failed', 'cancelled')
   AND (cardinality(CAST(:models AS text[])) = 0 OR model = ANY(CAST(:models AS text[])))
   AND (CAST(:after_id AS uuid) IS NULL OR (created_at, id) > (:after_at, :after_id))
 ORDER BY created_at, id
 LIMIT :limit;
