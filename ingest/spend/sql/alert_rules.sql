-- alert_rules.sql: alert rules and their history (ingest/spend/alert_rules.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- Migration 0008, docs/spend-control.md; their evaluation is queries/sql/postgres/alerts.sql.

-- name: insert_alert_rule
-- Add one rule; returns it.
INSERT INTO ai_alert_rules (name, kind, threshold, budget_id, scope_kind, scope_value,
                            window_minutes, min_tasks, webhook_url, created_by)
VALUES (:name, :kind, :threshold, :budget_id, :scope_kind, :scope_value, :window_minutes,
        :min_tasks, :webhook_url, :created_by)
RETURNING *;

-- name: list_alert_rules
-- Every rule with its budget (budget_* NULL for the others) and its state.
SELECT r.*, b.scope_kind AS budget_scope_kind, b.scope_value AS budget_scope_value,
       b.period AS budget_period, b.amount AS budget_amount,
       coalesce(s.firing, false) AS firing, s.since, s.value, s.evaluated_at
  FROM ai_alert_rules r
  LEFT JOIN ai_budgets b ON b.id = r.budget_id
  LEFT JOIN ai_alert_state s ON s.rule_id = r.id
 ORDER BY r.id;

-- name: remove_alert_rule
-- Delete a rule with its state and events; returns it, no row when missing.
DELETE FROM ai_alert_rules WHERE id = :id RETURNING *;

-- name: list_alert_events
-- Alert history, newest first, with the rule's name and kind.
SELECT e.id, e.rule_id, r.name AS rule_name, r.kind, e.seq, e.event, e.value, e.threshold,
       e.message, e.created_at, e.delivery, e.attempts, e.last_error, e.delivered_at
  FROM ai_alert_events e JOIN ai_alert_rules r ON r.id = e.rule_id
 ORDER BY e.created_at DESC, e.id DESC
 LIMIT :limit;

-- name: update_alert_rule
-- Mute or unmute a rule (:enabled) and/or change its threshold (NULL keeps either);
-- returns it, no row when missing or not the viewer's to change.
UPDATE ai_alert_rules
   SET enabled = coalesce(:enabled::boolean, enabled),
       threshold = coalesce(:threshold::numeric, threshold)
 WHERE id = :id
RETURNING *;
