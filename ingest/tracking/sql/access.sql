-- access.sql: sharing, rights, the audit log, redaction rules as the Tracker manages them
-- (ingest/tracking/access_methods.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- Also run_visible and task_visible (ingest/tracking/tracker.py: why a write found no row).
-- docs/access.md.

-- name: run_visible
-- 1 when the viewer may read run :run_id; no row otherwise.
SELECT 1 AS visible FROM ai_runs WHERE id = :run_id;

-- name: task_visible
-- 1 when the viewer may read the task with task_id :task_id; no row otherwise.
SELECT 1 AS visible FROM ai_tasks WHERE task_id = :task_id;

-- name: share_run
-- Share :run_id with :user_id (view or edit); sharing again replaces the permission.
-- Returns run_id, user_id, permission, created_by, created_at.
INSERT INTO ai_run_shares (run_id, user_id, permission, created_by)
VALUES (:run_id, :user_id, :permission, :created_by)
ON CONFLICT (run_id, user_id) DO UPDATE SET permission = excluded.permission
RETURNING run_id, user_id, permission, created_by, created_at;

-- name: unshare_run
-- Stop sharing :run_id with :user_id. Returns the removed share; no row when there was none.
DELETE FROM ai_run_shares WHERE run_id = :run_id AND user_id = :user_id
RETURNING run_id, user_id, permission;

-- name: run_shares
-- The shares of :run_id the viewer may see: user_id, permission, created_by, created_at.
SELECT user_id, permission, created_by, created_at
  FROM ai_run_shares WHERE run_id = :run_id ORDER BY user_id;

-- name: audit_log
-- Newest audit entries first (admins only under row-level security): id, at, actor,
-- actor_name, action, run_id, run_name, subject, subject_name, detail. A name is the
-- person's "Display name <email>" when the id is a person, the run's name when the viewer
-- may read the run (row-level security), else empty.
SELECT a.id, a.at, a.actor, concat_ws(' ', nullif(actor_user.display_name, ''), '<' || actor_user.email || '>') AS actor_name, a.action,
       a.run_id, coalesce(r.name, '') AS run_name, a.subject,
       concat_ws(' ', nullif(subject_user.display_name, ''), '<' || subject_user.email || '>') AS subject_name, a.detail
  FROM ai_audit a
  LEFT JOIN ai_users actor_user ON actor_user.id = a.actor
  LEFT JOIN ai_users subject_user ON subject_user.id = a.subject
  LEFT JOIN ai_runs r ON r.id = a.run_id
 ORDER BY a.at DESC, a.id DESC LIMIT :limit;

-- name: all_visible_run_ids
-- Ids of every run the viewer may read, in id order (row-level security decides).
SELECT id AS run_id FROM ai_runs ORDER BY id;

-- name: task_redactions
-- Masks applied to one task (by task_id): masks (total), fields ({field: count}).
SELECT r.masks, r.fields
  FROM ai_task_redactions r JOIN ai_tasks t ON t.id = r.task_ref
 WHERE t.task_id = :task_id;

-- name: all_redaction_rules
-- Every redaction rule: name, pattern, replacement, builtin, enabled.
SELECT name, pattern, replacement, builtin, enabled FROM ai_redaction_rules
 ORDER BY builtin DESC, name;

-- name: update_redaction_rule
-- Change a rule: enabled, and pattern/replacement when given (a built-in keeps its
-- pattern). Returns the rule; no row when there is no rule of that name.
UPDATE ai_redaction_rules
   SET pattern = CASE WHEN builtin THEN pattern ELSE coalesce(:pattern, pattern) END,
       replacement = coalesce(:replacement::text, replacement),
       enabled = :enabled
 WHERE name = :name
RETURNING name, pattern, replacement, builtin, enabled;

-- name: insert_redaction_rule
-- Add an admin's rule. Returns it.
INSERT INTO ai_redaction_rules (name, pattern, replacement, enabled)
VALUES (:name, :pattern, coalesce(:replacement::text, '[REDACTED]'), :enabled)
RETURNING name, pattern, replacement, builtin, enabled;

-- name: run_rights
-- What the viewer may do with run :run_id: edit (rename, star, tag, archive, delete,
-- restore, write tasks) and own (share, unshare, purge); the same functions as the policies.
SELECT ai_viewer_may_edit_run(:run_id) AS edit, ai_viewer_owns_run(:run_id) AS own;

-- name: list_users
-- The people the viewer may see (every person for a known viewer): id, display_name,
-- email, team, role, created_at, updated_at.
SELECT id, display_name, email, team, role, created_at, updated_at FROM ai_users ORDER BY id;
