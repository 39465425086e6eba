-- datasets.sql: datasets and their items for the live API (ingest/tracking/datasets.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- docs/quality.md ("Datasets"). Row-level security (migration 0023): a dataset is its
-- owner's (and an admin's); the viewer sees no other.

-- name: insert_dataset
-- Create dataset :name of :user_id; no row when the owner already has one of that name.
INSERT INTO ai_datasets (user_id, name, description)
VALUES (:user_id, :name, :description)
ON CONFLICT (user_id, name) DO NOTHING
RETURNING id, user_id, name, description, created_at, updated_at;

-- name: dataset_by_name
-- The dataset :name of :user_id, if the viewer may read it.
SELECT id, user_id, name, description, created_at, updated_at
  FROM ai_datasets
 WHERE user_id = :user_id AND name = :name;

-- name: dataset_by_id
SELECT id, user_id, name, description, created_at, updated_at
  FROM ai_datasets
 WHERE id = :dataset_id;

-- name: list_datasets
-- The datasets the viewer may read with their item counts, by owner and name.
SELECT d.id, d.user_id, d.name, d.description, d.created_at, d.updated_at,
       (SELECT count(*) FROM ai_dataset_items i WHERE i.dataset_id = d.id) AS items
  FROM ai_datasets d
 ORDER BY d.user_id, d.name;

-- name: dataset_source_tasks
-- The finished tasks a filter selects, to become items: created in [:since, :until), of
-- :models / :variants / :statuses / run :run_id when given (a task's variant is its own,
-- else its run's), in created_at order, at most :limit. Tasks already in :dataset_id are
-- left out.
SELECT t.task_id, t.run_id, t.provider, t.model, t.request_data, t.response_text,
       coalesce(t.variant, r.variant) AS variant
  FROM ai_tasks t
  JOIN ai_runs r ON r.id = t.run_id
 WHERE t.created_at >= :since
   AND (CAST(:until AS timestamptz) IS NULL OR t.created_at < :until)
   AND t.status = ANY(CAST(:statuses AS text[]))
   AND (cardinality(CAST(:models AS text[])) = 0 OR t.model = ANY(CAST(:models AS text[])))
   AND (cardinality(CAST(:variants AS text[])) = 0
        OR coalesce(t.variant, r.variant) = ANY(CAST(:variants AS text[])))
   AND (CAST(:run_id AS uuid) IS NULL OR t.run_id = :run_id)
   AND NOT EXISTS (SELECT 1 FROM ai_dataset_items i
                    WHERE i.dataset_id = :dataset_id AND i.source_task_id = t.task_id)
 ORDER BY t.created_at, t.id
 LIMIT :limit;

-- name: upsert_dataset_item
-- Write one item (a new one, or the item :id of the same dataset replaced: its input,
-- expected output and metadata). Returns the item's id and `inserted`. No row when :id
-- belongs to another dataset, or :source_task_id is already an item of this one.
INSERT INTO ai_dataset_items (id, dataset_id, input, expected_output, metadata, source_task_id)
VALUES (coalesce(CAST(:id AS uuid), gen_random_uuid()), :dataset_id, :input, :expected_output,
        :metadata, :source_task_id)
ON CONFLICT DO NOTHING
RETURNING id, true AS inserted;

-- name: replace_dataset_item
-- Replace item :id of :dataset_id (input, expected output, metadata); no row when absent.
UPDATE ai_dataset_items
   SET input = :input, expected_output = :expected_output, metadata = :metadata,
       updated_at = now()
 WHERE id = :id AND dataset_id = :dataset_id
RETURNING id, false AS inserted;

-- name: edit_dataset_item
-- Change item :id's expected output (when :set_expected) and metadata (when not NULL).
UPDATE ai_dataset_items
   SET expected_output = CASE WHEN :set_expected THEN :expected_output ELSE expected_output END,
       metadata = coalesce(CAST(:metadata AS jsonb), metadata),
       updated_at = now()
 WHERE id = :id
RETURNING id, dataset_id, input, expected_output, metadata, source_task_id, created_at,
          updated_at;

-- name: dataset_items
-- The items of :dataset_id in the order they were added.
SELECT id, dataset_id, input, expected_output, metadata, source_task_id, created_at, updated_at
  FROM ai_dataset_items
 WHERE dataset_id = :dataset_id
 ORDER BY seq;

-- name: touch_dataset
UPDATE ai_datasets SET updated_at = now() WHERE id = :dataset_id RETURNING id;
