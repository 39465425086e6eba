-- The DuckDB mirror: schema and the steps of a sync. Source rows arrive as Arrow tables
-- registered under the names staged_users, staged_runs, staged_tasks, staged_deletions.

-- name: create_users
CREATE TABLE users (
    id           VARCHAR NOT NULL,
    display_name VARCHAR,
    team         VARCHAR,
    role         VARCHAR
);

-- name: create_runs
CREATE TABLE runs (
    id              UUID NOT NULL,
    user_id         VARCHAR,
    source_type     VARCHAR,
    source_id       VARCHAR,
    name            VARCHAR,
    tags            VARCHAR[],
    status          VARCHAR,
    is_starred      BOOLEAN,
    parent_run_id   UUID,
    total_tokens    BIGINT,
    total_cost      DECIMAL(24, 10),
    message_count   INTEGER,
    task_count      INTEGER,
    created_at      TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ,
    last_message_at TIMESTAMPTZ
);

-- name: create_tasks
-- One row per task. team/source_type/tags are copies of the user's and run's values
-- (kept current by the sync). day = whole UTC days since 1970-01-01 of created_at;
-- month_day = the day number of the first day of that UTC month.
CREATE TABLE tasks (
    id                  UUID NOT NULL,
    task_id             UUID,
    run_id              UUID,
    user_id             VARCHAR,
    team                VARCHAR,
    source_type         VARCHAR,
    tags                VARCHAR[],
    service             VARCHAR,
    task_name           VARCHAR,
    provider            VARCHAR,
    endpoint            VARCHAR,
    model               VARCHAR,
    model_id            VARCHAR,
    status              VARCHAR,
    tokens_input        BIGINT,
    tokens_output       BIGINT,
    tokens_cached_input BIGINT,
    tokens_reasoning    BIGINT,
    tokens_total        BIGINT,
    cost                DECIMAL(20, 10),
    time_to_first_token INTEGER,
    total_time          INTEGER,
    created_at          TIMESTAMPTZ,
    completed_at        TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ,
    day                 INTEGER,
    month_day           INTEGER,
    error               VARCHAR
);

-- name: create_meta
CREATE TABLE mirror_meta (key VARCHAR PRIMARY KEY, value VARCHAR);

-- name: drop_all
DROP TABLE IF EXISTS tasks;
DROP TABLE IF EXISTS runs;
DROP TABLE IF EXISTS users;
DROP TABLE IF EXISTS mirror_meta;

-- name: read_meta
SELECT key, value FROM mirror_meta;

-- name: write_meta
INSERT OR REPLACE INTO mirror_meta VALUES (:key, :value);

-- name: delete_deleted_users
-- Users deleted in Postgres (returns the count; RETURNING would be 10x slower).
DELETE FROM users WHERE id IN (SELECT id FROM staged_deletions WHERE table_name = 'ai_users');

-- name: delete_deleted_runs
DELETE FROM runs
 WHERE id IN (SELECT id::UUID FROM staged_deletions WHERE table_name = 'ai_runs');

-- name: delete_deleted_tasks
DELETE FROM tasks
 WHERE id IN (SELECT id::UUID FROM staged_deletions WHERE table_name = 'ai_tasks');

-- name: delete_rewritten_users
-- Rows about to be written again (delete-by-id, then insert).
DELETE FROM users WHERE id IN (SELECT id FROM staged_users);

-- name: delete_rewritten_runs
DELETE FROM runs WHERE id IN (SELECT id FROM staged_runs);

-- name: delete_rewritten_tasks
DELETE FROM tasks WHERE id IN (SELECT id FROM staged_tasks);

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

-- name: insert_users
INSERT INTO users SELECT id, display_name, team, role FROM staged_users;

-- name: insert_runs
INSERT INTO runs
SELECT id, user_id, source_type, source_id, name, tags, status, is_starred, parent_run_id,
       total_tokens, total_cost::DECIMAL(24, 10), message_count, task_count,
       created_at, updated_at, last_message_at
  FROM staged_runs;

-- name: insert_tasks
INSERT INTO tasks
SELECT id, task_id, run_id, user_id, team, source_type, tags, service, task_name, provider,
       endpoint, model, model_id, status, tokens_input, tokens_output, tokens_cached_input,
       tokens_reasoning, tokens_total, cost::DECIMAL(20, 10), time_to_first_token,
       total_time, created_at, completed_at, updated_at,
       (epoch_us(created_at) // 86400000000)::INTEGER AS day,
       date_diff('day', DATE '1970-01-01',
                 date_trunc('month', DATE '1970-01-01'
                                     + (epoch_us(created_at) // 86400000000)::INTEGER)
       )::INTEGER AS month_day,
       error
  FROM staged_tasks;

-- name: propagate_teams
UPDATE tasks SET team = c.team FROM changed_teams c WHERE tasks.user_id = c.id;

-- name: propagate_run_attributes
UPDATE tasks SET source_type = c.source_type, tags = c.tags
  FROM changed_runs c WHERE tasks.run_id = c.id;

-- name: counts
SELECT (SELECT count(*) FROM tasks) AS tasks, (SELECT count(*) FROM runs) AS runs,
       (SELECT count(*) FROM users) AS users;
