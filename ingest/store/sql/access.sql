-- Viewer, sharing and audit for ingest.Tracker (docs/access.md). Values are always bound.

-- name: set_viewer
-- Name the viewer for the rest of this transaction; row-level security reads it.
SELECT set_config('ai_runs.viewer', :viewer::text, true) AS viewer;

-- name: viewer_facts
-- Who the viewer is to the database: id (NULL when not in ai_users), role, sees_all.
SELECT ai_viewer_id() AS id, ai_viewer_role() AS role, ai_viewer_sees_all() AS sees_all;

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
-- action, run_id, subject, detail.
SELECT id, at, actor, action, run_id, subject, detail
  FROM ai_audit ORDER BY at DESC, id DESC LIMIT :limit;

-- name: all_visible_run_ids
-- Ids of every run the viewer may read, in id order (row-level security decides).
SELECT id AS run_id FROM ai_runs ORDER BY id;

-- name: visible_run_ids
-- Ids (as text) of every run a viewer who does not see all runs (viewer_facts.sees_all
-- false) may read, in id order. Row-level security decides; the WHERE clauses only let the
-- planner use indexes instead of testing the policy on every run, and can only narrow,
-- never widen, what the policy returns. Two branches, not one OR: the own and team runs
-- come from an index-only scan of ai_runs_user_created_idx, where an OR with the shared
-- runs made a bitmap scan of the heap (a manager of 508k runs at 10M tasks: 20 s -> 1 s).
SELECT v.id::text AS run_id
  FROM (SELECT id FROM ai_runs
         WHERE user_id = ANY (ARRAY(SELECT ai_viewer_id() UNION ALL
                                    SELECT ai_viewer_team_members()))
        UNION
        SELECT id FROM ai_runs WHERE id = ANY (ARRAY(SELECT ai_viewer_shared_runs(false)))) v
 ORDER BY v.id;

-- name: record_redactions
-- Masks applied to the fields of one task as stored: a field's new count replaces its old.
INSERT INTO ai_task_redactions (task_ref, fields, masks)
SELECT t.id, :fields::jsonb,
       (SELECT coalesce(sum(value::bigint), 0) FROM jsonb_each_text(:fields::jsonb))
  FROM ai_tasks t WHERE t.task_id = :task_id
ON CONFLICT (task_ref) DO UPDATE
   SET fields = ai_task_redactions.fields || excluded.fields,
       masks = (SELECT coalesce(sum(value::bigint), 0)
                  FROM jsonb_each_text(ai_task_redactions.fields || excluded.fields));

-- name: task_redactions
-- Masks applied to one task (by task_id): masks (total), fields ({field: count}).
SELECT r.masks, r.fields
  FROM ai_task_redactions r JOIN ai_tasks t ON t.id = r.task_ref
 WHERE t.task_id = :task_id;

-- name: redaction_rules
-- The enabled redaction rules: name, pattern, replacement.
SELECT name, pattern, replacement FROM ai_redaction_rules WHERE enabled ORDER BY builtin DESC, name;

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

-- name: record_redactions_many
-- Masks per field of many imported tasks (task_ids[i] has fields[i]); replaces old counts.
INSERT INTO ai_task_redactions (task_ref, fields, masks)
SELECT t.id, u.fields, (SELECT coalesce(sum(value::bigint), 0) FROM jsonb_each_text(u.fields))
  FROM unnest(:task_ids::uuid[], :fields::jsonb[]) AS u (task_id, fields)
  JOIN ai_tasks t ON t.task_id = u.task_id
ON CONFLICT (task_ref) DO UPDATE SET fields = excluded.fields, masks = excluded.masks;

-- name: find_person
-- The person an identity names: by e-mail (case-insensitive, when :who has an @) or by id.
-- Columns id, display_name, email, team, role; no row when unknown.
SELECT id, display_name, email, team, role
  FROM ai_users
 WHERE CASE WHEN position('@' IN :who) > 0 THEN lower(email) = lower(:who) ELSE id = :who END
 ORDER BY id
 LIMIT 1;

-- name: ensure_local_admin
-- The dashboard's local mode: person :id exists and is an admin (nothing written if so).
INSERT INTO ai_users (id, display_name, role) VALUES (:id, 'Local admin', 'admin')
ON CONFLICT (id) DO UPDATE SET role = 'admin' WHERE ai_users.role <> 'admin';

-- name: run_rights
-- What the viewer may do with run :run_id: edit (rename, star, tag, archive, delete,
-- restore, write tasks) and own (share, unshare, purge); the same functions as the policies.
SELECT ai_viewer_may_edit_run(:run_id) AS edit, ai_viewer_owns_run(:run_id) AS own;

-- name: list_users
-- The people the viewer may see (every person for a known viewer): id, display_name,
-- email, team, role, created_at, updated_at.
SELECT id, display_name, email, team, role, created_at, updated_at FROM ai_users ORDER BY id;

-- name: access_version
-- Changes whenever who may read which run could have changed, other than by new or changed
-- runs (migration 0012): the dashboard's key for a viewer's visible runs.
SELECT ai_access_version() AS version;
