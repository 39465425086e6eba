-- Who owns what: the server lets a key's user touch only that user's runs and tasks.

-- name: owners_of_runs
-- id and user_id of each existing run among :ids (uuid[]).
SELECT id, user_id FROM ai_runs WHERE id = ANY(:ids::uuid[]);

-- name: owner_of_task
-- user_id of the task :task_id and of its run; no row when the task does not exist.
SELECT t.user_id AS task_user_id, r.user_id AS run_user_id
  FROM ai_tasks t JOIN ai_runs r ON r.id = t.run_id
 WHERE t.task_id = :task_id;
