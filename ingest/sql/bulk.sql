-- name: lock_runs_of_tasks
-- The runs a batch of tasks belongs to, locked in id order (the order the task triggers
-- lock them in, so two importers cannot deadlock). Columns id, updated_at: a run missing
-- here does not exist, and updated_at is restored after the COPY (see restore_run_updated_at).
SELECT id::text AS id, updated_at
  FROM ai_runs
 WHERE id = ANY(:ids::uuid[])
 ORDER BY id
   FOR NO KEY UPDATE;

-- name: restore_run_updated_at
-- Put back the updated_at the runs had before a bulk write of their tasks (the totals
-- trigger stamps now() on them). Run with session_replication_role = replica so that no
-- trigger re-stamps it; it touches no other column. Returns nothing.
UPDATE ai_runs r
   SET updated_at = v.updated_at
  FROM unnest(:ids::uuid[], :stamps::timestamptz[]) AS v (id, updated_at)
 WHERE r.id = v.id
   AND r.updated_at IS DISTINCT FROM v.updated_at;

-- name: existing_runs
-- Which of the given run ids exist (column id as text).
SELECT id::text AS id FROM ai_runs WHERE id = ANY(:ids::uuid[]);

-- name: may_skip_triggers
-- True when this session may set session_replication_role (superuser or granted).
SELECT current_setting('is_superuser') = 'on'
       OR has_parameter_privilege('session_replication_role', 'SET') AS allowed;

-- name: current_xact
-- The id of the current transaction (xid8, as text).
SELECT pg_current_xact_id()::text AS xid;

-- name: xact_status
-- 'committed', 'aborted' or 'in progress' for a transaction id from current_xact (NULL
-- when too old to know).
SELECT pg_xact_status(:xid::xid8) AS status;
