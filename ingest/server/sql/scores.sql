-- scores.sql: scores the server writes as the owner inside another write's transaction,
-- for POST /v1/batch and the OTLP GenAI evaluation events (ingest/server/owner_scores.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- Row-level security does not apply to the owner, so the target's check says what the
-- policies would (migration 0010 runs_read, migration 0020 scores_insert): a score
-- authored by the viewer may be written on any run the viewer may read.

-- name: score_target
-- The run of the score's target, when the viewer named in this transaction may read it:
-- task :task_id's run (when :task_id is given), else run :run_id. No row otherwise.
WITH target AS (
    SELECT CASE WHEN CAST(:task_id AS uuid) IS NULL THEN CAST(:run_id AS uuid)
                ELSE (SELECT t.run_id FROM ai_tasks t WHERE t.task_id = :task_id) END AS run_id
)
SELECT r.id AS run_id
  FROM target JOIN ai_runs r ON r.id = target.run_id
 WHERE (SELECT ai_viewer_role()) = 'admin'
    OR r.user_id = (SELECT ai_viewer_id())
    OR r.user_id IN (SELECT ai_viewer_team_members())
    OR r.id IN (SELECT ai_viewer_shared_runs(false));

-- name: write_score
-- One score; the same (run, task, name, evaluator, evaluator_version, author) again
-- replaces it (as ingest/tracking/sql/scores.sql upsert_score). `inserted`: false when
-- an existing score was replaced.
INSERT INTO ai_scores (run_id, task_id, name, data_type, value, label, source, comment,
                       author, evaluator, evaluator_version)
VALUES (:run_id, :task_id, :name, :data_type, :value, :label, :source, :comment,
        :author, :evaluator, :evaluator_version)
ON CONFLICT (run_id, coalesce(task_id, '00000000-0000-0000-0000-000000000000'::uuid), name,
             evaluator, evaluator_version, author)
DO UPDATE SET data_type = excluded.data_type, value = excluded.value, label = excluded.label,
              source = excluded.source, comment = excluded.comment, updated_at = now()
RETURNING id, (xmax = 0) AS inserted;
