-- budgets.sql: budgets by scope and period (ingest/spend/budgets.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

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
