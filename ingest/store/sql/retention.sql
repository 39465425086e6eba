-- retention.sql: the mirror registry, pruning of the deletion log, hard deletes
-- (ingest/store/retention.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- docs/lake.md, "Retention".

-- name: record_mirror_horizon
-- A reader (mirror) has applied every change stamped below :horizon (xid8 as text).
INSERT INTO ai_sync_mirrors (name, horizon, synced_at)
VALUES (:name, :horizon::text::xid8, now())
ON CONFLICT (name) DO UPDATE SET horizon = excluded.horizon, synced_at = excluded.synced_at;

-- name: list_mirrors
-- Registered readers: name, horizon (text), synced_at.
SELECT name, horizon::text AS horizon, synced_at FROM ai_sync_mirrors ORDER BY name;

-- name: forget_idle_mirrors
-- Forget readers that have not synced since :before; returns their names.
DELETE FROM ai_sync_mirrors WHERE synced_at < :before RETURNING name;

-- name: pruned_below
-- Deletions stamped below this horizon (text) may be gone; '0' when never pruned.
SELECT coalesce((SELECT below::text FROM ai_sync_pruned), '0') AS below;

-- name: prune_sync_deletions
-- Remove logged deletions every registered reader has applied (below the smallest
-- horizon) and remember the new watermark. Returns the number of rows removed.
WITH w AS (SELECT min(horizon) AS below FROM ai_sync_mirrors),
gone AS (
    DELETE FROM ai_sync_deletions d USING w WHERE d.sync_xid < w.below RETURNING 1
),
mark AS (
    INSERT INTO ai_sync_pruned (only_row, below, pruned_at)
    SELECT true, w.below, now() FROM w WHERE w.below IS NOT NULL
    ON CONFLICT (only_row) DO UPDATE
       SET below = greatest(ai_sync_pruned.below, excluded.below), pruned_at = now()
)
SELECT count(*) AS removed FROM gone;

-- name: lock_old_runs
-- Up to :batch runs whose last activity (the run's own timestamps and every timestamp of
-- its tasks) is before :cutoff, locked FOR UPDATE so no task can be added to them (a task
-- insert needs a KEY SHARE lock on its run) until this transaction ends. Skips runs other
-- transactions hold. Oldest first, so a batch stays within few months (an archived batch
-- rewrites the lake months it touches). Columns: id.
SELECT r.id
  FROM ai_runs r
 WHERE greatest(r.created_at, r.updated_at, r.last_message_at) < :cutoff
   AND NOT EXISTS (SELECT 1 FROM ai_tasks t
                    WHERE t.run_id = r.id
                      AND greatest(t.created_at, t.updated_at, t.completed_at) >= :cutoff)
 ORDER BY r.created_at, r.id
 LIMIT :batch
 FOR UPDATE OF r SKIP LOCKED;

-- name: still_old_runs
-- Of the locked runs :ids, those still without activity since :cutoff (a task written by a
-- transaction that committed after the lock query's snapshot is seen here). Columns: id.
SELECT r.id
  FROM ai_runs r
 WHERE r.id = ANY(:ids)
   AND greatest(r.created_at, r.updated_at, r.last_message_at) < :cutoff
   AND NOT EXISTS (SELECT 1 FROM ai_tasks t
                    WHERE t.run_id = r.id
                      AND greatest(t.created_at, t.updated_at, t.completed_at) >= :cutoff);

-- name: batch_runs
-- The numbers of the runs :ids an archive must hold: id (text), task_count, total_tokens,
-- total_cost (text, exact), created_at.
SELECT id::text AS id, task_count, total_tokens, total_cost::text AS total_cost, created_at
  FROM ai_runs WHERE id = ANY(:ids) ORDER BY id;

-- name: batch_tasks
-- The tasks of the runs :ids: id (text), run_id (text), status, tokens_total, cost (text,
-- exact; NULL when unpriced), created_at.
SELECT id::text AS id, run_id::text AS run_id, status, tokens_total, cost::text AS cost,
       created_at
  FROM ai_tasks WHERE run_id = ANY(:ids) ORDER BY id;

-- name: delete_tasks_of_runs
-- Hard delete of the tasks of the runs :ids (before the runs, so the totals triggers see
-- a plain delete; the deletion triggers log every row for the mirrors). Same transaction
-- as delete_runs: a run is never half purged.
DELETE FROM ai_tasks WHERE run_id = ANY(:ids);

-- name: delete_runs
DELETE FROM ai_runs WHERE id = ANY(:ids);
