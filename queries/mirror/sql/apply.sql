-- apply.sql: the incremental apply (queries/mirror/sync.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- Rows changed or deleted since the last sync, staged as staged_users, staged_runs,
-- staged_tasks and staged_deletions, replace the mirror's copies (delete-by-id, then
-- insert); copies on tasks follow their users and runs.

-- name: remove_changed_users
-- Users deleted in Postgres or about to be written again (delete-by-id, then insert): the
-- mirror's copies are found in one scan of the id column and removed by row id (two
-- DELETEs by id would scan twice; RETURNING would be 10x slower). Returns how many of
-- them were deleted in Postgres.
CREATE OR REPLACE TEMP TABLE changed_rows AS
SELECT rowid AS row_id,
       id IN (SELECT id FROM staged_deletions WHERE table_name = 'ai_users') AS deleted
  FROM users
 WHERE id IN (SELECT id FROM staged_deletions WHERE table_name = 'ai_users'
              UNION ALL SELECT id FROM staged_users);
DELETE FROM users WHERE rowid IN (SELECT row_id FROM changed_rows);
SELECT count(*) FILTER (WHERE deleted) FROM changed_rows;

-- name: remove_changed_runs
-- Like remove_changed_users, with the copies found by time first (run_copies_by_time).
CREATE OR REPLACE TEMP TABLE changed_rows AS
SELECT rowid AS row_id,
       id IN (SELECT id::UUID FROM staged_deletions WHERE table_name = 'ai_runs') AS deleted
  FROM runs
 WHERE {{apply.run_copies_by_time}}
   AND id IN (SELECT id::UUID FROM staged_deletions WHERE table_name = 'ai_runs'
              UNION ALL SELECT id FROM staged_runs);
DELETE FROM runs WHERE rowid IN (SELECT row_id FROM changed_rows);
SELECT count(*) FILTER (WHERE deleted) FROM changed_rows;

-- name: remove_changed_tasks
-- Like remove_changed_users, with the copies found by time first (task_copies_by_time).
-- rare_tasks (a small copy of some tasks, tables.sql) loses its copies too, the day totals
-- their old copies (day_totals.sql); the task ids
-- of the removed and staged tasks are kept in rescored_tasks (their task_scores rows are
-- written again by rewrite_task_scores).
DELETE FROM rare_tasks
 WHERE id IN (SELECT id::UUID FROM staged_deletions WHERE table_name = 'ai_tasks'
              UNION ALL SELECT id FROM staged_tasks);
CREATE OR REPLACE TEMP TABLE changed_rows AS
SELECT rowid AS row_id, task_id,
       id IN (SELECT id::UUID FROM staged_deletions WHERE table_name = 'ai_tasks') AS deleted
  FROM tasks
 WHERE {{apply.task_copies_by_time}}
   AND id IN (SELECT id::UUID FROM staged_deletions WHERE table_name = 'ai_tasks'
              UNION ALL SELECT id FROM staged_tasks);
{{day_totals.old_day_total_copies}};
DELETE FROM tasks WHERE rowid IN (SELECT row_id FROM changed_rows);
INSERT INTO rescored_tasks
SELECT task_id FROM changed_rows UNION ALL SELECT task_id FROM staged_tasks;
SELECT count(*) FILTER (WHERE deleted) FROM changed_rows;

-- name: task_copies_by_time
-- A filter of remove_changed_tasks: the mirror's copy of a task to replace has the
-- created_at of its staged row, or one the deletion log gives for it (a deleted task's, or
-- a moved task's old one: migration 0030, staged_logged_times). The created_at column is
-- sorted and compresses well, so matching it before the id (16 random bytes a row) makes
-- the scan of the mirror's tasks cheaper (docs/scale.md, "The incremental sync of
-- scattered changes"). queries/mirror/sync.py fills it with TRUE when a time may be
-- missing (a row logged before migration 0030, the first sync after it).
created_at IN (SELECT created_at FROM staged_tasks
               UNION ALL
               SELECT created_at FROM staged_logged_times WHERE table_name = 'ai_tasks')

-- name: run_copies_by_time
-- The same filter for remove_changed_runs.
created_at IN (SELECT created_at FROM staged_runs
               UNION ALL
               SELECT created_at FROM staged_logged_times WHERE table_name = 'ai_runs')

-- name: remove_changed_scores
-- Scores deleted in Postgres or about to be written again; the tasks they belonged to and
-- belong to go to rescored_tasks. Returns how many were deleted.
CREATE OR REPLACE TEMP TABLE changed_rows AS
SELECT rowid AS row_id, task_id,
       id IN (SELECT id::BIGINT FROM staged_deletions WHERE table_name = 'ai_scores') AS deleted
  FROM scores
 WHERE id IN (SELECT id::BIGINT FROM staged_deletions WHERE table_name = 'ai_scores'
              UNION ALL SELECT id FROM staged_scores);
DELETE FROM scores WHERE rowid IN (SELECT row_id FROM changed_rows);
INSERT INTO rescored_tasks
SELECT task_id FROM changed_rows WHERE task_id IS NOT NULL
UNION ALL SELECT task_id FROM staged_scores WHERE task_id IS NOT NULL;
SELECT count(*) FILTER (WHERE deleted) FROM changed_rows;

-- name: start_rescored_tasks
-- The task ids whose task_scores rows this apply writes again (tables.sql), and an empty
-- keyed_tasks for an apply that stages no task (insert_tasks replaces it), and the day
-- totals' changes.
CREATE OR REPLACE TEMP TABLE rescored_tasks (task_id UUID);
CREATE OR REPLACE TEMP TABLE keyed_tasks AS SELECT * FROM tasks LIMIT 0;
{{day_totals.start_day_total_changes}};

-- name: rewrite_task_scores
-- Every task_scores row of the tasks in rescored_tasks, written again from the mirror's
-- scores and tasks as they now are, before propagate_teams and propagate_run_attributes
-- (which update task_scores as they update tasks). The tasks' rows come from keyed_tasks
-- (the staged tasks just inserted) and, for the others, from tasks: only those with
-- scores are read, so a sync that changed no score of an unstaged task reads no column of
-- tasks (the scan of 10M rows' columns for a few thousand tasks cost about 150 ms).
DELETE FROM task_scores WHERE task_id IN (SELECT task_id FROM rescored_tasks);
CREATE OR REPLACE TEMP TABLE rescored_sources AS
SELECT * FROM keyed_tasks WHERE task_id IN (SELECT task_id FROM scores);
INSERT INTO rescored_sources
SELECT * FROM tasks
 WHERE task_id IN (SELECT task_id FROM rescored_tasks
                    WHERE task_id IN (SELECT task_id FROM scores)
                      AND task_id NOT IN (SELECT task_id FROM keyed_tasks));
INSERT INTO task_scores
SELECT {{tables.task_score_columns}}
  FROM scores s JOIN rescored_sources t ON t.task_id = s.task_id
 WHERE s.data_type IN ('numeric', 'boolean');
DROP TABLE rescored_sources;

-- name: forget_rescoring
DROP TABLE IF EXISTS rescored_tasks;
DROP TABLE IF EXISTS keyed_tasks;

-- name: forget_changed_rows
DROP TABLE IF EXISTS changed_rows;

-- name: changed_teams
-- Users whose team differs from the mirror's (new users, changed teams, deleted users),
-- before the users table is replaced: their tasks' team must follow.
SELECT s.id, s.team FROM staged_users s LEFT JOIN users m ON m.id = s.id
 WHERE m.id IS NULL OR m.team IS DISTINCT FROM s.team
UNION ALL
SELECT id, NULL FROM staged_deletions WHERE table_name = 'ai_users';

-- name: changed_run_attributes
-- Runs already mirrored whose source_type or tags changed: their tasks' copies must follow.
SELECT s.id, s.source_type, s.tags FROM staged_runs s JOIN runs m ON m.id = s.id
 WHERE m.source_type IS DISTINCT FROM s.source_type OR m.tags IS DISTINCT FROM s.tags;

-- name: keyed_staged_tasks
-- The staged tasks with their keys, their user's team and their run's source_type, tags and
-- variant (a task without its own variant has its run's; a run's variant is set when it
-- is created), which the extract leaves out (postgres/extract.sql): from the staged user
-- or run when it changed too, else from the mirror's copy (tasks are applied before users
-- and runs; the tasks of a user deleted now lose their team in propagate_teams).
SELECT {{tables.task_columns}}, rk.key AS run_key, uk.key AS user_key
  FROM (SELECT t.*,
               CASE WHEN su.id IS NULL THEN mu.team ELSE su.team END AS team,
               CASE WHEN sr.id IS NULL THEN mr.source_type ELSE sr.source_type END
                   AS source_type,
               CASE WHEN sr.id IS NULL THEN mr.tags ELSE sr.tags END AS tags,
               coalesce(t.task_variant,
                        CASE WHEN sr.id IS NULL THEN mr.variant ELSE sr.variant END) AS variant
          FROM staged_tasks t
          LEFT JOIN staged_users su ON su.id = t.user_id
          LEFT JOIN users mu ON mu.id = t.user_id
          LEFT JOIN staged_runs sr ON sr.id = t.run_id
          LEFT JOIN runs mr ON mr.id = t.run_id) s
  LEFT JOIN run_keys rk ON rk.id = s.run_id
  LEFT JOIN user_keys uk ON uk.id = s.user_id

-- name: insert_tasks
-- Incremental: new keys are given before (new_run_keys, new_user_keys, run_key_days).
-- keyed_tasks stays until rewrite_task_scores has read it; the day totals get its copies.
CREATE OR REPLACE TEMP TABLE keyed_tasks AS {{apply.keyed_staged_tasks}};
{{day_totals.new_day_total_copies}};
INSERT INTO rare_tasks
SELECT k.* FROM keyed_tasks k LEFT JOIN run_key_days d ON d.day = k.day
 WHERE d.lo IS NULL OR k.run_key IS NULL OR k.run_key NOT BETWEEN d.lo AND d.lo + d.n - 1;
INSERT INTO tasks SELECT * FROM keyed_tasks;

-- name: propagate_teams
UPDATE rare_tasks SET team = c.team FROM changed_teams c WHERE rare_tasks.user_id = c.id;
UPDATE tasks SET team = c.team FROM changed_teams c WHERE tasks.user_id = c.id;
UPDATE task_scores SET team = c.team FROM changed_teams c WHERE task_scores.user_id = c.id;
{{day_totals.day_totals_of_teams}};

-- name: propagate_run_attributes
UPDATE rare_tasks SET source_type = c.source_type, tags = c.tags
  FROM changed_runs c WHERE rare_tasks.run_id = c.id;
UPDATE tasks SET source_type = c.source_type, tags = c.tags
  FROM changed_runs c WHERE tasks.run_id = c.id;
UPDATE task_scores SET source_type = c.source_type, tags = c.tags
  FROM changed_runs c WHERE task_scores.run_id = c.id;
{{day_totals.day_totals_of_runs}};

-- name: new_run_keys
-- Keys for runs not seen before (in the staged runs, or named by a staged task), in order
-- of creation, after the largest key given so far. Returns the number of new keys.
-- The runs already keyed are found by probing run_keys with the few staged ids (a hash
-- table of those), not by a hash table of every key: `id NOT IN (SELECT id FROM run_keys)`
-- built one of 3.66M keys at 10M tasks on every sync (174 against 27 ms, docs/scale.md).
INSERT INTO run_keys
SELECT id, ((SELECT coalesce(max(key), 0) FROM run_keys)
            + row_number() OVER (ORDER BY day, id))::INTEGER, day
  FROM (SELECT id, min(day) AS day
          FROM (SELECT id, (epoch_us(created_at) // 86400000000)::INTEGER AS day
                  FROM staged_runs
                UNION ALL
                SELECT run_id, (epoch_us(created_at) // 86400000000)::INTEGER
                  FROM staged_tasks) c
         GROUP BY id) n
 WHERE id NOT IN (SELECT k.id FROM run_keys k
                   WHERE k.id IN (SELECT id FROM staged_runs
                                  UNION ALL SELECT run_id FROM staged_tasks));

-- name: new_user_keys
INSERT INTO user_keys
SELECT id, ((SELECT coalesce(max(key), 0) FROM user_keys) + row_number() OVER (ORDER BY id))::INTEGER
  FROM (SELECT DISTINCT user_id AS id FROM staged_tasks
         WHERE user_id IS NOT NULL AND user_id NOT IN (SELECT id FROM user_keys)) n;

-- name: new_dim_values
-- Incremental: values the staged rows bring that were never seen. A task's team is its
-- user's, added when the user was staged or loaded.
INSERT INTO dim_values
SELECT DISTINCT d, v FROM (
    SELECT 'provider' AS d, provider AS v FROM staged_tasks
    UNION ALL SELECT 'model', model FROM staged_tasks
    UNION ALL SELECT 'endpoint', endpoint FROM staged_tasks
    UNION ALL SELECT 'service', service FROM staged_tasks
    UNION ALL SELECT 'task_name', task_name FROM staged_tasks
    UNION ALL SELECT 'status', status FROM staged_tasks
    UNION ALL SELECT 'user_id', user_id FROM staged_tasks
    UNION ALL SELECT 'team', team FROM staged_users
    UNION ALL SELECT 'source_type', source_type FROM staged_runs
    UNION ALL SELECT 'tag', unnest(tags) FROM staged_runs
    UNION ALL SELECT 'variant', variant FROM staged_runs
    UNION ALL SELECT 'variant', task_variant FROM staged_tasks
) n
 WHERE NOT EXISTS (SELECT 1 FROM dim_values o
                    WHERE o.dimension = n.d AND o.value IS NOT DISTINCT FROM n.v);
