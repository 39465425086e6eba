-- invariant.sql: the run-totals invariant, recomputed from scratch
-- (ingest/store/database.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: run_totals_mismatches
-- Runs whose derived columns differ from the same numbers computed from scratch over
-- ai_tasks (docs/design.md, Exactness). Returns id, stored and recomputed task_count, total_tokens,
-- total_cost, message_count. An empty result means the invariant holds.
SELECT r.id,
       r.task_count, coalesce(t.n, 0) AS expected_task_count,
       r.total_tokens, coalesce(t.tokens, 0) AS expected_total_tokens,
       r.total_cost, coalesce(t.cost, 0) AS expected_total_cost,
       r.message_count, jsonb_array_length(r.messages) AS expected_message_count
  FROM ai_runs r
  LEFT JOIN (SELECT run_id, count(*) AS n, sum(tokens_total) AS tokens,
                    coalesce(sum(cost), 0) AS cost
               FROM ai_tasks GROUP BY run_id) t ON t.run_id = r.id
 WHERE r.task_count <> coalesce(t.n, 0)
    OR r.total_tokens <> coalesce(t.tokens, 0)
    OR r.total_cost <> coalesce(t.cost, 0)
    OR r.message_count <> jsonb_array_length(r.messages);
