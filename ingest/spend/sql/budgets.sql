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

-- name: settable_scopes
-- What the viewer may set budgets and alert rules of (ai_viewer_manages_scope, migration
-- 0018): their role, their team and its people.
SELECT ai_viewer_role() AS role, ai_viewer_team() AS team,
       ARRAY(SELECT m FROM ai_viewer_team_members() AS m ORDER BY m) AS members;
