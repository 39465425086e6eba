-- background_writer.sql: batched writes of the background writer
-- (ingest/sdk/background_writer.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- Each batch is one JSON array of rows. Idempotent: a row whose id / task_id exists is
-- skipped, so a batch replayed from the disk spool is written exactly once.

-- name: insert_runs_batch
-- Insert the runs of :rows (a JSON array of ai_runs columns); existing ids are skipped.
INSERT INTO ai_runs (id, user_id, source_type, name, messages, metadata, created_at, variant)
SELECT r.id, r.user_id, r.source_type, coalesce(r.name, ''), coalesce(r.messages, '[]'),
       coalesce(r.metadata, '{}'), coalesce(r.created_at, now()), r.variant
  FROM jsonb_to_recordset(:rows::jsonb) AS r (id uuid, user_id text, source_type text,
       name text, messages jsonb, metadata jsonb, created_at timestamptz, variant text)
ON CONFLICT (id) DO NOTHING;

-- name: insert_tasks_batch
-- Insert the finished tasks of :rows (a JSON array of ai_tasks rows; every column of
-- ingest.store.vocabulary, an absent one takes the table's default) in one statement, so
-- run totals move once per run; existing task_ids are skipped (exactly once). Tasks whose
-- run does not exist are skipped too and returned: task_id of each skipped orphan.
WITH rows AS (
    SELECT * FROM jsonb_populate_recordset(NULL::ai_tasks, :rows::jsonb)
), inserted AS (
    INSERT INTO ai_tasks ({{vocabulary.task_columns}})
    SELECT {{vocabulary.task_values}}
      FROM rows
     WHERE EXISTS (SELECT 1 FROM ai_runs WHERE ai_runs.id = rows.run_id)
    ON CONFLICT (task_id) DO NOTHING
    RETURNING task_id
)
SELECT task_id FROM rows
 WHERE NOT EXISTS (SELECT 1 FROM ai_runs WHERE ai_runs.id = rows.run_id);
