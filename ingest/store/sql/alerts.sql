-- Alert rules, their state and their events (migration 0008, docs/spend-control.md).

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

-- name: ensure_alert_state
-- Create the state row of a rule when missing (a statement of its own, so that the lock
-- that follows sees a row another checker just created).
INSERT INTO ai_alert_state (rule_id) VALUES (:rule_id) ON CONFLICT (rule_id) DO NOTHING;

-- name: lock_alert_state
-- The state of one rule, locked for the rest of the transaction.
SELECT firing, since FROM ai_alert_state WHERE rule_id = :rule_id FOR UPDATE;

-- name: save_alert_state
-- Record the value a check saw and whether the rule fires.
UPDATE ai_alert_state
   SET firing = :firing, value = :value, evaluated_at = now(),
       since = CASE WHEN firing IS DISTINCT FROM :firing THEN now() ELSE since END
 WHERE rule_id = :rule_id;

-- name: insert_alert_event
-- One transition of a rule (firing or resolved), numbered per rule; returns it.
INSERT INTO ai_alert_events (rule_id, seq, event, value, threshold, message, delivery)
SELECT :rule_id, coalesce(max(seq), 0) + 1, :event, :value, :threshold, :message, :delivery
  FROM ai_alert_events WHERE rule_id = :rule_id
RETURNING *;

-- name: claim_pending_events
-- Pending deliveries, oldest first, locked so that concurrent checks never send one twice.
SELECT e.*, r.name AS rule_name, r.kind, r.webhook_url
  FROM ai_alert_events e JOIN ai_alert_rules r ON r.id = e.rule_id
 WHERE e.delivery = 'pending'
 ORDER BY e.id
 LIMIT :limit
   FOR UPDATE OF e SKIP LOCKED;

-- name: record_delivery
-- The outcome of delivering one event.
UPDATE ai_alert_events
   SET delivery = :delivery, attempts = :attempts, last_error = :last_error,
       delivered_at = CASE WHEN :delivery = 'delivered' THEN now() END
 WHERE id = :id;

-- name: list_alert_events
-- Alert history, newest first, with the rule's name and kind.
SELECT e.id, e.rule_id, r.name AS rule_name, r.kind, e.seq, e.event, e.value, e.threshold,
       e.message, e.created_at, e.delivery, e.attempts, e.last_error, e.delivered_at
  FROM ai_alert_events e JOIN ai_alert_rules r ON r.id = e.rule_id
 ORDER BY e.created_at DESC, e.id DESC
 LIMIT :limit;
