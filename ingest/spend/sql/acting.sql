-- acting.sql: whose rights a spend-control change uses (ingest/spend/acting.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- Migration 0018, docs/spend-control.md.

-- name: set_actor
-- Name the person behind an owner connection for the audit of this transaction.
SELECT set_config('ai_runs.actor', :actor::text, true) AS actor;

-- name: budget_exists
-- Does a budget exist, readable by the viewer or not (migration 0018's ai_budget_scopes)?
SELECT id FROM ai_budget_scopes() WHERE id = :id;

-- name: budget_scopes
-- Every budget's scope and period, without its amount.
SELECT id, scope_kind, scope_value, period FROM ai_budget_scopes();

-- name: set_actor_for_session
-- The same for the whole session (an autocommit connection running many transactions).
SELECT set_config('ai_runs.actor', :actor::text, false) AS actor;
