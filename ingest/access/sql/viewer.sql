-- viewer.sql: acting as a viewer under row-level security, sign-in look-ups
-- (ingest/access/viewer.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: set_viewer
-- Name the viewer for the rest of this transaction; row-level security reads it.
SELECT set_config('ai_runs.viewer', :viewer::text, true) AS viewer;

-- name: viewer_facts
-- Who the viewer is to the database: id (NULL when not in ai_users), role, sees_all.
SELECT ai_viewer_id() AS id, ai_viewer_role() AS role, ai_viewer_sees_all() AS sees_all;

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

-- name: access_version
-- Changes whenever who may read which run could have changed, other than by new or changed
-- runs (migration 0012): the dashboard's key for a viewer's visible runs.
SELECT ai_access_version() AS version;
