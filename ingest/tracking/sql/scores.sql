-- scores.sql: scores of tasks and runs for the live API (ingest/tracking/scores.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- A "score row" is every ai_scores column except sync_xid: {{vocabulary.score_columns}}.
-- docs/quality.md.

-- name: task_run
-- The run of the task with task_id :task_id, if the viewer may read it; no row otherwise.
SELECT run_id FROM ai_tasks WHERE task_id = :task_id;

-- name: upsert_score
-- Write one score; the same (run, task, name, evaluator, evaluator_version, author) again
-- replaces its value, label, comment and source. Returns the score row and `inserted`
-- (false when an existing score was replaced).
INSERT INTO ai_scores (run_id, task_id, name, data_type, value, label, source, comment,
                       author, evaluator, evaluator_version)
VALUES (:run_id, :task_id, :name, :data_type, :value, :label, :source, :comment,
        :author, :evaluator, :evaluator_version)
ON CONFLICT (run_id, coalesce(task_id, '00000000-0000-0000-0000-000000000000'::uuid), name,
             evaluator, evaluator_version, author)
DO UPDATE SET data_type = excluded.data_type, value = excluded.value, label = excluded.label,
              source = excluded.source, comment = excluded.comment, updated_at = now()
RETURNING {{vocabulary.score_columns}}, (xmax = 0) AS inserted;

-- name: scores_of
-- The scores the viewer may read of task :task_id (when given) or of run :run_id (its own
-- and its tasks' when :with_tasks), oldest first.
SELECT {{vocabulary.score_columns}}
  FROM ai_scores
 WHERE (CAST(:task_id AS uuid) IS NULL OR task_id = :task_id)
   AND (CAST(:run_id AS uuid) IS NULL OR run_id = :run_id)
   AND (CAST(:task_id AS uuid) IS NOT NULL OR :with_tasks OR task_id IS NULL)
 ORDER BY created_at, id;

-- name: delete_score
-- Remove score :id if the viewer may (its author, an admin, or for a non-human score whoever
-- may change the run). Returns its id; no row otherwise.
DELETE FROM ai_scores WHERE id = :id RETURNING id;

-- name: score_visible
-- 1 when the viewer may read score :id; no row otherwise.
SELECT 1 AS visible FROM ai_scores WHERE id = :id;

-- name: declared_scales
-- The scales declared by the evaluator versions (:evaluators[i], :versions[i]): evaluator,
-- evaluator_version, data_type, min_value, max_value (ai_evaluators, migration 0022).
SELECT d.evaluator, d.evaluator_version, d.data_type, d.min_value, d.max_value
  FROM ai_evaluators d
  JOIN unnest(CAST(:evaluators AS text[]), CAST(:versions AS text[])) AS w(evaluator, version)
    ON d.evaluator = w.evaluator AND d.evaluator_version = w.version;
