-- bulk.sql: the bulk path's locks, checks and transaction status (ingest/transfer/bulk.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: lock_runs_of_tasks
-- The runs a batch of tasks belongs to, locked in id order (the order the task triggers
-- lock them in, so two importers cannot deadlock). Column id: a run missing here does not
-- exist.
SELECT id::text AS id
  FROM ai_runs
 WHERE id = ANY(:ids::uuid[])
 ORDER BY id
   FOR NO KEY UPDATE;

-- name: keep_run_updated_at
-- For the rest of this transaction the totals trigger keeps runs' updated_at as written
-- (migration 0005): a bulk write of history is not an edit of the run.
SELECT set_config('ai_runs.keep_updated_at', 'on', true);

-- name: existing_runs
-- Which of the given run ids exist (column id as text).
SELECT id::text AS id FROM ai_runs WHERE id = ANY(:ids::uuid[]);

-- name: runs_of_other_users
-- Which of the runs :ids (uuid[]) belong to someone other than :user, as this transaction
-- sees them after its own writes (the first by id is named in the refusal).
SELECT id::text AS id
  FROM ai_runs
 WHERE id = ANY(:ids::uuid[]) AND user_id IS DISTINCT FROM :user
 ORDER BY id
 LIMIT 1;

-- name: current_xact
-- The id of the current transaction (xid8, as text).
SELECT pg_current_xact_id()::text AS xid;

-- name: xact_status
-- 'committed', 'aborted' or 'in progress' for a transaction id from current_xact (NULL
-- when too old to know).
SELECT pg_xact_status(:xid::xid8) AS status;
