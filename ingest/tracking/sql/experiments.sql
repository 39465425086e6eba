-- experiments.sql: what an experiment stores, a dataset replayed through a model
-- (docs/quality.md, "Experiments"), for the live API (ingest/tracking/experiment_store.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- Row-level security (migration 0023): an experiment is its owner's (and an admin's).

-- name: insert_experiment
-- Create experiment :name of :user_id; no row when the owner already has one of that name.
INSERT INTO ai_experiments (user_id, name, dataset_id, provider, model, prompt, evaluators)
VALUES (:user_id, :name, :dataset_id, :provider, :model, :prompt, :evaluators)
ON CONFLICT (user_id, name) DO NOTHING
RETURNING id, user_id, name, dataset_id, provider, model, prompt, evaluators, run_id,
          created_at;

-- name: experiment_by_name
SELECT id, user_id, name, dataset_id, provider, model, prompt, evaluators, run_id, created_at
  FROM ai_experiments
 WHERE user_id = :user_id AND name = :name;

-- name: experiment_by_id
SELECT id, user_id, name, dataset_id, provider, model, prompt, evaluators, run_id, created_at
  FROM ai_experiments
 WHERE id = :experiment_id;

-- name: set_experiment_run
-- The run of experiment :experiment_id (made after the experiment: its id is the run's).
UPDATE ai_experiments SET run_id = :run_id WHERE id = :experiment_id RETURNING id;

-- name: unanswered_items
-- The items of the experiment's dataset that have no task of the experiment yet, in the
-- order they were added.
SELECT i.id, i.input, i.expected_output
  FROM ai_dataset_items i
 WHERE i.dataset_id = :dataset_id
   AND NOT EXISTS (SELECT 1 FROM ai_experiment_items e
                    WHERE e.experiment_id = :experiment_id AND e.item_id = i.id)
 ORDER BY i.seq;

-- name: stored_tasks
-- Which of the task ids :task_ids exist (finished), with what the rule evaluators read.
SELECT task_id, run_id, status, response_text, total_time, cost
  FROM ai_tasks
 WHERE task_id = ANY(CAST(:task_ids AS uuid[]))
   AND status IN ('completed', 'failed', 'cancelled');

-- name: link_item
-- Record that item :item_id was answered by task :task_id (once: a re-run adds nothing).
INSERT INTO ai_experiment_items (experiment_id, item_id, task_id)
VALUES (:experiment_id, :item_id, :task_id)
ON CONFLICT DO NOTHING
RETURNING item_id;

-- name: experiment_tasks
-- Every item of the experiment with its task (what the rule evaluators read), by item.
SELECT e.item_id, t.task_id, t.run_id, t.status, t.response_text, t.total_time, t.cost,
       i.expected_output
  FROM ai_experiment_items e
  JOIN ai_dataset_items i ON i.id = e.item_id
  JOIN ai_tasks t ON t.task_id = e.task_id
 WHERE e.experiment_id = :experiment_id
 ORDER BY i.seq;

-- name: list_experiments
-- The experiments the viewer may read with their dataset's name and items answered.
SELECT x.id, x.user_id, x.name, d.name AS dataset, x.provider, x.model, x.run_id,
       x.created_at,
       (SELECT count(*) FROM ai_experiment_items e WHERE e.experiment_id = x.id) AS answered,
       (SELECT count(*) FROM ai_dataset_items i WHERE i.dataset_id = x.dataset_id) AS items
  FROM ai_experiments x
  JOIN ai_datasets d ON d.id = x.dataset_id
 ORDER BY x.created_at, x.name;
