-- alerts.sql: the state and events of alert rules, kept in Postgres (queries/alerts.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

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
