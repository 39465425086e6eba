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
    tokens_cache_write  BIGINT,
    cost                DECIMAL(20, 10),
    cost_source         VARCHAR,
    time_to_first_token INTEGER,
    total_time          INTEGER,
    created_at          TIMESTAMPTZ,
    completed_at        TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ,
    day                 INTEGER,
    month_day           INTEGER,
    error               VARCHAR,
    run_key             INTEGER,
    user_key            INTEGER
);

-- name: create_keys
-- Dense integer surrogates of run and user ids, so exact distinct counts run over small
-- integers (and bitmaps, see queries.rollups). Append-only and never reused: a key, once
-- given, names the same id for the life of the mirror (a rebuild starts again).
-- run_keys.day: the UTC day the run was created. run_key_days: per such day, the smallest
-- key and how many keys it has (keys are given in creation order, so mostly contiguous).
-- dim_values: every value each dimension has taken (a superset, for group-count estimates).
CREATE TABLE run_keys (id UUID NOT NULL, key INTEGER NOT NULL, day INTEGER);
CREATE TABLE user_keys (id VARCHAR NOT NULL, key INTEGER NOT NULL);
CREATE TABLE run_key_days (day INTEGER PRIMARY KEY, month_day INTEGER, lo INTEGER, n INTEGER);
CREATE TABLE dim_values (dimension VARCHAR, value VARCHAR);
-- rare_tasks: a copy of the tasks whose run_key lies outside [lo, lo + n) of the task's own
-- day in run_key_days (runs created on another day, or keyed late). Every other task falls
-- in the bitmap range of its period whatever the grain, so a rollup counts only these few
-- by hashing (queries/sql/rollups.sql, usage_bitmaps). A superset is fine; kept in step
-- with tasks by every write below.
CREATE TABLE rare_tasks AS SELECT * FROM tasks LIMIT 0;

-- name: create_meta
CREATE TABLE mirror_meta (key VARCHAR PRIMARY KEY, value VARCHAR);

-- name: drop_all
DROP TABLE IF EXISTS tasks;
DROP TABLE IF EXISTS runs;
DROP TABLE IF EXISTS users;
DROP TABLE IF EXISTS mirror_meta;
DROP TABLE IF EXISTS run_keys;
DROP TABLE IF EXISTS user_keys;
DROP TABLE IF EXISTS run_key_days;
DROP TABLE IF EXISTS dim_values;
DROP TABLE IF EXISTS rare_tasks;

-- name: mirror_file
-- The file behind this connection's database (NULL in memory).
SELECT path FROM duckdb_databases() WHERE database_name = current_database();

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
DELETE FROM rare_tasks
 WHERE id IN (SELECT id::UUID FROM staged_deletions WHERE table_name = 'ai_tasks');
DELETE FROM tasks
 WHERE id IN (SELECT id::UUID FROM staged_deletions WHERE table_name = 'ai_tasks');

-- name: delete_rewritten_users
-- Rows about to be written again (delete-by-id, then insert).
DELETE FROM users WHERE id IN (SELECT id FROM staged_users);

-- name: delete_rewritten_runs
DELETE FROM runs WHERE id IN (SELECT id FROM staged_runs);

-- name: delete_rewritten_tasks
DELETE FROM rare_tasks WHERE id IN (SELECT id FROM staged_tasks);
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

-- name: task_columns
-- The mirror's task columns from a staged task row s.
s.id, task_id, run_id, user_id, team, source_type, tags, service, task_name, provider,
       endpoint, model, model_id, status, tokens_input, tokens_output, tokens_cached_input,
       tokens_reasoning, tokens_total, tokens_cache_write, cost::DECIMAL(20, 10),
       cost_source, time_to_first_token,
       total_time, created_at, completed_at, updated_at,
       (epoch_us(created_at) // 86400000000)::INTEGER AS day,
       date_diff('day', DATE '1970-01-01',
                 date_trunc('month', DATE '1970-01-01'
                                     + (epoch_us(created_at) // 86400000000)::INTEGER)
       )::INTEGER AS month_day,
       error

-- name: keyed_staged_tasks
SELECT {{task_columns}}, rk.key AS run_key, uk.key AS user_key
  FROM staged_tasks s
  LEFT JOIN run_keys rk ON rk.id = s.run_id
  LEFT JOIN user_keys uk ON uk.id = s.user_id

-- name: insert_tasks
-- Incremental: new keys are given before (new_run_keys, new_user_keys, run_key_days).
INSERT INTO rare_tasks
SELECT k.* FROM ({{keyed_staged_tasks}}) k LEFT JOIN run_key_days d ON d.day = k.day
 WHERE d.lo IS NULL OR k.run_key IS NULL OR k.run_key NOT BETWEEN d.lo AND d.lo + d.n - 1;
INSERT INTO tasks {{keyed_staged_tasks}};

-- name: all_rare_tasks
-- Full load, once keys and run_key_days are set.
INSERT INTO rare_tasks
SELECT t.* FROM tasks t LEFT JOIN run_key_days d ON d.day = t.day
 WHERE d.lo IS NULL OR t.run_key IS NULL OR t.run_key NOT BETWEEN d.lo AND d.lo + d.n - 1;

-- name: insert_all_tasks
-- Full load, streamed in created_at order: keys are set afterwards by keys_of_stored_tasks
-- (a join here would make DuckDB hold the stream; an UPDATE keeps the order and is cheap).
INSERT INTO tasks
SELECT {{task_columns}}, NULL::INTEGER AS run_key, NULL::INTEGER AS user_key
  FROM staged_tasks s;

-- name: propagate_teams
UPDATE rare_tasks SET team = c.team FROM changed_teams c WHERE rare_tasks.user_id = c.id;
UPDATE tasks SET team = c.team FROM changed_teams c WHERE tasks.user_id = c.id;

-- name: propagate_run_attributes
UPDATE rare_tasks SET source_type = c.source_type, tags = c.tags
  FROM changed_runs c WHERE rare_tasks.run_id = c.id;
UPDATE tasks SET source_type = c.source_type, tags = c.tags
  FROM changed_runs c WHERE tasks.run_id = c.id;

-- name: counts
SELECT (SELECT count(*) FROM tasks) AS tasks, (SELECT count(*) FROM runs) AS runs,
       (SELECT count(*) FROM users) AS users;

-- name: new_run_keys
-- Keys for runs not seen before (in the staged runs, or named by a staged task), in order
-- of creation, after the largest key given so far. Returns the number of new keys.
INSERT INTO run_keys
SELECT id, ((SELECT coalesce(max(key), 0) FROM run_keys)
            + row_number() OVER (ORDER BY day, id))::INTEGER, day
  FROM (SELECT id, min(day) AS day
          FROM (SELECT id, (epoch_us(created_at) // 86400000000)::INTEGER AS day
                  FROM staged_runs
                UNION ALL
                SELECT run_id, (epoch_us(created_at) // 86400000000)::INTEGER
                  FROM staged_tasks) c
         WHERE id NOT IN (SELECT id FROM run_keys)
         GROUP BY id) n;

-- name: new_user_keys
INSERT INTO user_keys
SELECT id, ((SELECT coalesce(max(key), 0) FROM user_keys) + row_number() OVER (ORDER BY id))::INTEGER
  FROM (SELECT DISTINCT user_id AS id FROM staged_tasks
         WHERE user_id IS NOT NULL AND user_id NOT IN (SELECT id FROM user_keys)) n;

-- name: all_run_keys
-- Full load: every run gets a key, in order of creation.
INSERT INTO run_keys
SELECT id, (row_number() OVER (ORDER BY created_at, id))::INTEGER,
       (epoch_us(created_at) // 86400000000)::INTEGER
  FROM runs;

-- name: all_user_keys
INSERT INTO user_keys
SELECT id, (row_number() OVER (ORDER BY id))::INTEGER FROM (SELECT DISTINCT id FROM users) u;

-- name: keys_of_stored_tasks
-- Full load: give keys to the runs and users of tasks without them (users absent from
-- ai_users), then set every missing key on the tasks.
INSERT INTO user_keys
SELECT id, ((SELECT coalesce(max(key), 0) FROM user_keys) + row_number() OVER (ORDER BY id))::INTEGER
  FROM (SELECT DISTINCT user_id AS id FROM tasks
         WHERE user_key IS NULL AND user_id IS NOT NULL
           AND user_id NOT IN (SELECT id FROM user_keys)) n;
INSERT INTO run_keys
SELECT id, ((SELECT coalesce(max(key), 0) FROM run_keys) + row_number() OVER (ORDER BY id))::INTEGER, day
  FROM (SELECT run_id AS id, min(day) AS day FROM tasks
         WHERE run_key IS NULL AND run_id NOT IN (SELECT id FROM run_keys)
         GROUP BY run_id) n;
UPDATE tasks SET user_key = k.key FROM user_keys k
 WHERE tasks.user_key IS NULL AND tasks.user_id = k.id;
UPDATE tasks SET run_key = k.key FROM run_keys k
 WHERE tasks.run_key IS NULL AND tasks.run_id = k.id;

-- name: refresh_run_key_days
-- Per creation day: the smallest key and the number of keys (days of keys just given).
INSERT OR REPLACE INTO run_key_days
SELECT day, date_diff('day', DATE '1970-01-01', date_trunc('month', DATE '1970-01-01' + day))::INTEGER,
       min(key), count(*)::INTEGER
  FROM run_keys
 WHERE day IN (SELECT DISTINCT day FROM run_keys WHERE key > :since_key)
 GROUP BY day;

-- name: all_dim_values
-- Full load: the values of every dimension.
INSERT INTO dim_values
SELECT 'provider', provider FROM tasks GROUP BY 2
UNION ALL SELECT 'model', model FROM tasks GROUP BY 2
UNION ALL SELECT 'endpoint', endpoint FROM tasks GROUP BY 2
UNION ALL SELECT 'service', service FROM tasks GROUP BY 2
UNION ALL SELECT 'task_name', task_name FROM tasks GROUP BY 2
UNION ALL SELECT 'status', status FROM tasks GROUP BY 2
UNION ALL SELECT 'user_id', id FROM user_keys
UNION ALL SELECT 'team', team FROM users GROUP BY 2
UNION ALL SELECT 'source_type', source_type FROM runs GROUP BY 2
UNION ALL SELECT 'tag', tag FROM (SELECT unnest(tags) AS tag FROM runs) GROUP BY 2;

-- name: new_dim_values
-- Incremental: values the staged rows bring that were never seen.
INSERT INTO dim_values
SELECT DISTINCT d, v FROM (
    SELECT 'provider' AS d, provider AS v FROM staged_tasks
    UNION ALL SELECT 'model', model FROM staged_tasks
    UNION ALL SELECT 'endpoint', endpoint FROM staged_tasks
    UNION ALL SELECT 'service', service FROM staged_tasks
    UNION ALL SELECT 'task_name', task_name FROM staged_tasks
    UNION ALL SELECT 'status', status FROM staged_tasks
    UNION ALL SELECT 'user_id', user_id FROM staged_tasks
    UNION ALL SELECT 'team', team FROM staged_tasks
    UNION ALL SELECT 'team', team FROM staged_users
    UNION ALL SELECT 'source_type', source_type FROM staged_runs
    UNION ALL SELECT 'tag', unnest(tags) FROM staged_runs
) n
 WHERE NOT EXISTS (SELECT 1 FROM dim_values o
                    WHERE o.dimension = n.d AND o.value IS NOT DISTINCT FROM n.v);

-- name: verify_read_all
-- Reads every column of every mirror table, so DuckDB checks the checksum of every block
-- (a damaged block raises an error). One row: a hash per table (values do not matter).
SELECT (SELECT max(hash(t)) FROM tasks t) AS tasks, (SELECT max(hash(r)) FROM runs r) AS runs,
       (SELECT max(hash(u)) FROM users u) AS users,
       (SELECT max(hash(x)) FROM rare_tasks x) AS rare_tasks,
       (SELECT max(hash(k)) FROM run_keys k) AS run_keys,
       (SELECT max(hash(k)) FROM user_keys k) AS user_keys,
       (SELECT max(hash(d)) FROM run_key_days d) AS run_key_days,
       (SELECT max(hash(v)) FROM dim_values v) AS dim_values;

-- name: verify_totals
-- What the mirror holds, to compare with Postgres' verify_totals (same columns, as text):
-- tasks, tokens (sum of tokens_total), cost (sum, USD), runs, run_tokens (sum of
-- total_tokens), users.
SELECT (SELECT count(*) FROM tasks)::VARCHAR AS tasks,
       (SELECT coalesce(sum(tokens_total), 0) FROM tasks)::VARCHAR AS tokens,
       (SELECT coalesce(sum(cost), 0) FROM tasks)::VARCHAR AS cost,
       (SELECT count(*) FROM runs)::VARCHAR AS runs,
       (SELECT coalesce(sum(total_tokens), 0) FROM runs)::VARCHAR AS run_tokens,
       (SELECT count(*) FROM users)::VARCHAR AS users;
