-- Price books, re-pricing audit and budgets (migration 0008, docs/spend-control.md).

-- name: insert_price_override
-- Add one override; returns the row. Overlapping windows are refused by a trigger.
INSERT INTO ai_price_overrides (provider, model_pattern, valid_from, valid_to, input_per_mtok,
                                cached_per_mtok, cache_write_per_mtok, output_per_mtok,
                                reasoning_per_mtok, per_request, note, created_by)
VALUES (:provider, :model_pattern, :valid_from, :valid_to, :input_per_mtok, :cached_per_mtok,
        :cache_write_per_mtok, :output_per_mtok, :reasoning_per_mtok, :per_request, :note,
        :created_by)
RETURNING *;

-- name: list_price_overrides
-- Every override, live ones first, newest window first; with :include_removed false only
-- live ones.
SELECT * FROM ai_price_overrides
 WHERE removed_at IS NULL OR :include_removed::boolean
 ORDER BY removed_at IS NOT NULL, provider, model_pattern, valid_from DESC;

-- name: remove_price_override
-- Mark a live override removed (kept for the audit); returns it, no row when not live.
UPDATE ai_price_overrides SET removed_at = now(), removed_by = :removed_by
 WHERE id = :id AND removed_at IS NULL
RETURNING *;

-- name: overrides_in_force
-- Live overrides of :provider whose window contains :at (candidates; the model pattern is
-- matched by ingest.price_books).
SELECT * FROM ai_price_overrides
 WHERE provider = :provider AND removed_at IS NULL
   AND valid_from <= :at AND (valid_to IS NULL OR :at < valid_to);

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
-- writes; see ingest.costs.cost_of_task).
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
-- Re-pricing records, newest first.
SELECT id, ran_by, started_at, finished_at, status, rule, price_books, tasks_examined,
       tasks_changed, old_total, new_total, new_total - old_total AS difference, error
  FROM ai_reprice_audit
 ORDER BY started_at DESC, id DESC
 LIMIT :limit;

-- name: upsert_budget
-- Set the amount of the budget of a scope and period (created when missing); returns it.
INSERT INTO ai_budgets (scope_kind, scope_value, period, amount, created_by)
VALUES (:scope_kind, :scope_value, :period, :amount, :created_by)
ON CONFLICT (scope_kind, coalesce(scope_value, ''), period)
DO UPDATE SET amount = excluded.amount, updated_at = now()
RETURNING *;

-- name: list_budgets
-- Every budget, by scope then period.
SELECT * FROM ai_budgets ORDER BY scope_kind = 'all' DESC, scope_kind, scope_value, period;

-- name: remove_budget
-- Delete a budget (its alert rules go with it); returns it, no row when missing.
DELETE FROM ai_budgets WHERE id = :id RETURNING *;
