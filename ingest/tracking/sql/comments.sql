-- comments.sql: shared notes on runs and tasks, the table of migration 0021
-- (ingest/tracking/comments.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- A "comment row" is every ai_comments column: {{vocabulary.comment_columns}}.
-- docs/tracking.md, "Shared notes".

-- name: comment_target
-- The run of run :run_id or of the task with task_id :task_id (the task wins when given),
-- if the viewer may read it: run_id; no row otherwise.
SELECT t.run_id FROM ai_tasks t WHERE t.task_id = CAST(:task_id AS uuid)
UNION ALL
SELECT r.id FROM ai_runs r WHERE CAST(:task_id AS uuid) IS NULL AND r.id = :run_id;

-- name: resolve_mentions
-- Each @name (:names, text[]) as a person and whether they may read run :run_id: name,
-- user_id (NULL: nobody of that id or email the viewer can see), may_read. An id matches
-- exactly, else an email regardless of case.
SELECT n.name, u.id AS user_id,
       coalesce(ai_person_may_read_run(u.id, :run_id), false) AS may_read
  FROM unnest(CAST(:names AS text[])) WITH ORDINALITY AS n (name, position)
  LEFT JOIN LATERAL (
        SELECT p.id FROM ai_users p
         WHERE p.id = n.name OR lower(p.email) = lower(n.name)
         ORDER BY (p.id = n.name) DESC, p.id LIMIT 1) u ON true
 ORDER BY n.position;

-- name: insert_comment
-- A new comment by :author. Returns the comment row.
INSERT INTO ai_comments (run_id, task_id, author, text, mentions)
VALUES (:run_id, :task_id, :author, :text, :mentions)
RETURNING {{vocabulary.comment_columns}};

-- name: comments_of
-- The comments the viewer may read of task :task_id (when given) or of run :run_id (its own
-- and, when :with_tasks, its tasks'), oldest first.
SELECT {{vocabulary.comment_columns}}
  FROM ai_comments
 WHERE (CAST(:task_id AS uuid) IS NULL OR task_id = :task_id)
   AND (CAST(:run_id AS uuid) IS NULL OR run_id = :run_id)
   AND (CAST(:task_id AS uuid) IS NOT NULL OR :with_tasks OR task_id IS NULL)
 ORDER BY created_at, id;

-- name: comment_by_id
-- Comment :id if the viewer may read it; no row otherwise.
SELECT {{vocabulary.comment_columns}} FROM ai_comments WHERE id = :id;

-- name: edit_comment
-- New text and mentions of comment :id, if the viewer may (its author). Returns the comment
-- row with edited_at set; no row otherwise.
UPDATE ai_comments SET text = :text, mentions = :mentions, edited_at = now()
 WHERE id = :id
RETURNING {{vocabulary.comment_columns}};

-- name: delete_comment
-- Remove comment :id if the viewer may (its author, or an admin). Returns its id; no row
-- otherwise. The audit trigger records it (migration 0021).
DELETE FROM ai_comments WHERE id = :id RETURNING id;
