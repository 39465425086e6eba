-- repricing.sql: re-pricing past tasks in batches, and its audit
-- (ingest/spend/repricing.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: tasks_to_reprice_count
-- How many finished tasks with a model the re-pricing rule covers.
SELECT count(*) AS tasks FROM ai_tasks
 WHERE model IS NOT NULL AND status IN ('completed', 'failed', 'cancelled')
   AND (:since::timestamptz IS NULL OR created_at >= :since)
   AND (:until::timestamptz IS NULL OR created_at < :until)
   AND (:model::text IS NULL OR model = :model);

-- name: tasks_to_reprice
-- Next batch (by id, after :after_id) of the tasks the rule covers (with :only_missing, only
-- those whose cost is NULL: ingest.recompute_costs), with what pricing needs
-- (response_metadata carries only the provider's billed_usage, which prices 1-hour cache
-- writes; see ingest.spend.pricing.cost_of_task).
SELECT id, provider, model, tokens_input, tokens_output, tokens_cached_input,
       tokens_cache_write, tokens_reasoning, created_at, cost, cost_source, price_ref,
       jsonb_build_object('billed_usage', response_metadata -> 'billed_usage')
           AS response_metadata
  FROM ai_tasks
 WHERE id > :after_id
   AND model IS NOT NULL AND status IN ('completed', 'failed', 'cancelled')
   AND (:since::timestamptz IS NULL OR created_at >= :since)
   AND (:until::timestamptz IS NULL OR created_at < :until)
   AND (:model::text IS NULL OR model = :model)
   AND (cost IS NULL OR NOT :only_missing::boolean)
 ORDER BY id
 LIMIT :batch_size;

-- name: set_task_prices
-- Set cost (USD, cost_source 'computed') and price_ref of many tasks in one statement (run
-- totals move once per run); only rows that change are written, so the mirror re-reads
-- only those. With :only_missing, only rows still without a cost (a cost written meanwhile
-- stays).
UPDATE ai_tasks t
   SET cost = u.cost, price_ref = u.price_ref, cost_source = 'computed'
  FROM unnest(:ids::uuid[], :costs::numeric[], :refs::text[]) AS u (id, cost, price_ref)
 WHERE t.id = u.id
   AND (t.cost IS DISTINCT FROM u.cost OR t.price_ref IS DISTINCT FROM u.price_ref
        OR t.cost_source IS DISTINCT FROM 'computed')
   AND (t.cost IS NULL OR NOT :only_missing::boolean);

-- name: start_reprice_audit
-- Open the audit record of a re-pricing; returns its id.
INSERT INTO ai_reprice_audit (ran_by, rule, price_books)
VALUES (:ran_by, :rule, :price_books)
RETURNING id;

-- name: finish_reprice_audit
-- Close the audit record with what was done (also after a failure, with what was done).
UPDATE ai_reprice_audit
   SET finished_at = now(), status = :status, tasks_examined = :tasks_examined,
       tasks_changed = :tasks_changed, old_total = :old_total, new_total = :new_total,
       error = :error
 WHERE id = :id;

-- name: list_reprice_audit
-- Re-pricing records, newest first; ran_by_name is the person's "Display name <email>"
-- when ran_by is a person (empty for a database role or a CLI user).
SELECT a.id, a.ran_by,
       concat_ws(' ', nullif(u.display_name, ''), '<' || u.email || '>') AS ran_by_name,
       a.started_at, a.finished_at, a.status, a.rule, a.price_books, a.tasks_examined,
       a.tasks_changed, a.old_total, a.new_total, a.new_total - a.old_total AS difference,
       a.error
  FROM ai_reprice_audit a
  LEFT JOIN ai_users u ON u.id = a.ran_by
 ORDER BY a.started_at DESC, a.id DESC
 LIMIT :limit;
