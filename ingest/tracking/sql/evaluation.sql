-- evaluation.sql: the tasks evaluators read (offline, and online by the worker in
-- online_eval.py) and what they write beside scores (ingest/tracking/evaluation.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- docs/quality.md. An evaluator never reads the tasks of evaluations (service 'evaluation':
-- a judge's own calls), so a judge is never judged.

-- name: evaluated_task
-- The columns of a task an evaluator reads (its request only when :with_request: a judge
-- reads it, a rule does not).
t.id, t.task_id, t.run_id, t.created_at, t.sync_xid::text AS sync_xid,
       CASE WHEN :with_request THEN t.request_data END AS request_data, t.response_text,
       t.total_time, t.cost

-- name: done_tasks
-- Of the tasks :task_ids, those evaluator :evaluator version :evaluator_version is done
-- with: it scored them, or met an answer it could not read (an error of kind 'answer', not
-- retried). One statement per page of tasks, whatever the tables' statistics say.
SELECT task_id FROM ai_scores
 WHERE task_id = ANY(CAST(:task_ids AS uuid[]))
   AND evaluator = :evaluator AND evaluator_version = :evaluator_version
UNION
SELECT task_id FROM ai_eval_errors
 WHERE task_id = ANY(CAST(:task_ids AS uuid[]))
   AND evaluator = :evaluator AND evaluator_version = :evaluator_version AND kind = 'answer';

-- name: offline_tasks
-- Finished tasks created in [:since, :until) (of :models when not empty), after the
-- position (:after_at, :after_id) in (created_at, id) order, at most :limit.
SELECT {{evaluation.evaluated_task}}
  FROM ai_tasks t
 WHERE t.created_at >= :since
   AND (CAST(:until AS timestamptz) IS NULL OR t.created_at < :until)
   AND t.status IN ('completed', 'failed', 'cancelled')
   AND t.service IS DISTINCT FROM 'evaluation'
   AND (cardinality(CAST(:models AS text[])) = 0 OR t.model = ANY(CAST(:models AS text[])))
   AND (CAST(:after_id AS uuid) IS NULL OR (t.created_at, t.id) > (:after_at, :after_id))
 ORDER BY t.created_at, t.id
 LIMIT :limit;

-- name: eval_horizon
-- This snapshot's xmin: every transaction below it has ended, so no task can still appear
-- below it.
SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS horizon;

-- name: online_tasks
-- Finished tasks in the sample (:sample, a share 0..1 decided by the task id's md5:
-- {{evaluation.in_sample}}) written after the position (:after_xid, :after_id) in
-- (sync_xid, id) order and below :horizon (eval_horizon), at most :limit.
SELECT {{evaluation.evaluated_task}}
  FROM ai_tasks t
 WHERE t.sync_xid >= CAST(:after_xid AS xid8)
   AND (t.sync_xid, t.id) > (CAST(:after_xid AS xid8), CAST(:after_id AS uuid))
   AND t.sync_xid < CAST(:horizon AS xid8)
   AND t.status IN ('completed', 'failed', 'cancelled')
   AND t.service IS DISTINCT FROM 'evaluation'
   AND {{evaluation.in_sample}}
 ORDER BY t.sync_xid, t.id
 LIMIT :limit;

-- name: in_sample
-- True for a task in the sample :sample: the first 32 bits of the md5 of its task_id, as a
-- share of 2^32, below :sample (ingest/tracking/online_eval.py `in_sample` says the same).
('x' || substr(md5(t.task_id::text), 1, 8))::bit(32)::bigint / 4294967296.0 < :sample

-- name: retry_tasks
-- Tasks whose last pass met a provider outage (kind 'provider'), fewer than :max_attempts
-- calls so far and none in the last :retry_after seconds, longest waiting first.
SELECT {{evaluation.evaluated_task}}
  FROM ai_eval_errors e
  JOIN ai_tasks t ON t.task_id = e.task_id AND t.run_id = e.run_id
 WHERE e.evaluator = :evaluator AND e.evaluator_version = :evaluator_version
   AND e.kind = 'provider' AND e.attempts < :max_attempts
   AND e.updated_at <= now() - make_interval(secs => :retry_after)
 ORDER BY e.updated_at
 LIMIT :limit;

-- name: declare_evaluator
-- Record what evaluator :evaluator version :evaluator_version gives (its score name, data
-- type and bounds); the first declaration of a version stays.
INSERT INTO ai_evaluators (evaluator, evaluator_version, name, data_type, min_value,
                           max_value, settings)
VALUES (:evaluator, :evaluator_version, :name, :data_type, :min_value, :max_value, :settings)
ON CONFLICT (evaluator, evaluator_version) DO NOTHING;

-- name: upsert_scores
-- Write the scores in :scores (a JSON array of score columns, each task once) in one
-- statement, with the identity and replacement of scores.sql's upsert_score (one score per
-- run, task, name, evaluator, evaluator_version, author). One row per score: `inserted`
-- (false when it replaced one).
INSERT INTO ai_scores (run_id, task_id, name, data_type, value, label, source, comment,
                       author, evaluator, evaluator_version)
SELECT run_id, task_id, name, data_type, value, label, source, comment, author, evaluator,
       evaluator_version
  FROM jsonb_to_recordset(CAST(:scores AS jsonb))
       AS s(run_id uuid, task_id uuid, name text, data_type text, value double precision,
            label text, source text, comment text, author text, evaluator text,
            evaluator_version text)
ON CONFLICT (run_id, coalesce(task_id, '00000000-0000-0000-0000-000000000000'::uuid), name,
             evaluator, evaluator_version, author)
DO UPDATE SET data_type = excluded.data_type, value = excluded.value, label = excluded.label,
              source = excluded.source, comment = excluded.comment, updated_at = now()
RETURNING (xmax = 0) AS inserted;

-- name: record_eval_error
-- An evaluator could not score task :task_id: one row per (task, evaluator, version), its
-- attempts added up over passes.
INSERT INTO ai_eval_errors (run_id, task_id, evaluator, evaluator_version, kind, error,
                            attempts)
VALUES (:run_id, :task_id, :evaluator, :evaluator_version, :kind, :error, :attempts)
ON CONFLICT (task_id, evaluator, evaluator_version)
DO UPDATE SET kind = excluded.kind, error = excluded.error,
              attempts = ai_eval_errors.attempts + excluded.attempts, updated_at = now();

-- name: clear_eval_error
-- Task :task_id scored after all: its earlier error (a provider outage) goes.
DELETE FROM ai_eval_errors
 WHERE task_id = :task_id AND evaluator = :evaluator AND evaluator_version = :evaluator_version;

-- name: eval_errors_of
-- The evaluator errors of evaluator :evaluator version :evaluator_version, oldest first.
SELECT id, run_id, task_id, evaluator, evaluator_version, kind, error, attempts, created_at,
       updated_at
  FROM ai_eval_errors
 WHERE evaluator = :evaluator AND evaluator_version = :evaluator_version
 ORDER BY created_at, id;

-- name: eval_cursor
-- Where worker :worker has got to; no row before its first pass.
SELECT after_xid::text AS after_xid, after_id FROM ai_eval_cursors WHERE worker = :worker;

-- name: first_eval_cursor
-- A new worker starts at this snapshot's xmin: it evaluates the tasks written from now on.
INSERT INTO ai_eval_cursors (worker, after_xid, after_id)
VALUES (:worker, pg_snapshot_xmin(pg_current_snapshot()), '00000000-0000-0000-0000-000000000000')
ON CONFLICT (worker) DO NOTHING;

-- name: move_eval_cursor
-- Worker :worker has evaluated every task up to (:after_xid, :after_id).
UPDATE ai_eval_cursors SET after_xid = CAST(:after_xid AS xid8), after_id = :after_id,
                           updated_at = now()
 WHERE worker = :worker;
