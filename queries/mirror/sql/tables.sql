-- tables.sql: the mirror's tables, its facts (mirror_meta) and row shapes
-- (queries/mirror/sync.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- The row shapes are what both the full load (load.sql) and the incremental apply
-- (apply.sql) write. Source rows arrive as Arrow tables registered under the names
-- staged_users, staged_runs, staged_tasks, staged_scores, staged_deletions.

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
    last_message_at TIMESTAMPTZ,
    variant         VARCHAR
);

-- name: create_tasks
-- One row per task. team/source_type/tags are copies of the user's and run's values
-- (kept current by the sync); variant is the task's own, else its run's (docs/quality.md).
-- day = whole UTC days since 1970-01-01 of created_at; month_day = the day number of the first day of that UTC month.
CREATE TABLE tasks (
    id                  UUID NOT NULL,
    task_id             UUID,
    run_id              UUID,
    user_id             VARCHAR,
    team                VARCHAR,
    source_type         VARCHAR,
    tags                VARCHAR[],
    variant             VARCHAR,
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
-- by hashing (queries/sql/usage.sql, usage_bitmaps). A superset is fine; kept in step
-- with tasks by every write of the load (load.sql) and the apply (apply.sql).
CREATE TABLE rare_tasks AS SELECT * FROM tasks LIMIT 0;

-- name: create_scores
-- One row per score of a task or a run (docs/quality.md): the ai_scores columns the score
-- rollups read (queries/sql/quality.sql); a task's score joins its task on task_id.
CREATE TABLE scores (
    id                BIGINT NOT NULL,
    run_id            UUID,
    task_id           UUID,
    name              VARCHAR,
    data_type         VARCHAR,
    value             DOUBLE,
    label             VARCHAR,
    source            VARCHAR,
    author            VARCHAR,
    evaluator         VARCHAR,
    evaluator_version VARCHAR,
    created_at        TIMESTAMPTZ,
    updated_at        TIMESTAMPTZ
);

-- name: create_task_scores
-- One row per numeric or boolean score of a task, with the task's filter and group columns
-- beside it (docs/quality.md, "Score rollups at scale"): the score rollups filter and
-- group 2M scores here instead of joining them to 10M tasks on their UUIDs.
-- first_in_name: the task's first score (lowest id) of this name and data type;
-- first_in_evaluator: of this name, data type and evaluator. Counting them counts the
-- scored tasks of a group without count(DISTINCT task_id): every score of a task carries
-- the task's columns, so a filter keeps all of a task's scores or none. Kept in step by the
-- full load (load.sql) and the apply (apply.sql), which writes again every row of each task
-- whose row or scores changed; check.sql compares it with the join it stands for.
CREATE TABLE task_scores (
    id                 UUID NOT NULL,
    task_id            UUID NOT NULL,
    run_id             UUID,
    user_id            VARCHAR,
    team               VARCHAR,
    source_type        VARCHAR,
    tags               VARCHAR[],
    variant            VARCHAR,
    service            VARCHAR,
    task_name          VARCHAR,
    provider           VARCHAR,
    endpoint           VARCHAR,
    model              VARCHAR,
    status             VARCHAR,
    created_at         TIMESTAMPTZ,
    day                INTEGER,
    month_day          INTEGER,
    run_key            INTEGER,
    score_id           BIGINT NOT NULL,
    name               VARCHAR,
    data_type          VARCHAR,
    value              DOUBLE,
    evaluator          VARCHAR,
    first_in_name      BOOLEAN,
    first_in_evaluator BOOLEAN
);

-- name: task_score_rows
-- The rows of task_scores: each numeric or boolean score s of a task t, every task's (the
-- full load and the self-check; the apply writes some tasks' rows, rewrite_task_scores).
SELECT {{tables.task_score_columns}}
  FROM scores s JOIN tasks t ON t.task_id = s.task_id
 WHERE s.data_type IN ('numeric', 'boolean')

-- name: task_score_columns
-- task_scores' columns from a score s and its task t (flags over all of the task's scores
-- the query reads: it must read all of them or none).
t.id, t.task_id, t.run_id, t.user_id, t.team, t.source_type, t.tags, t.variant,
       t.service, t.task_name, t.provider, t.endpoint, t.model, t.status, t.created_at, t.day,
       t.month_day, t.run_key, s.id, s.name, s.data_type, s.value, s.evaluator,
       row_number() OVER (PARTITION BY s.task_id, s.name, s.data_type ORDER BY s.id) = 1,
       row_number() OVER (PARTITION BY s.task_id, s.name, s.data_type, s.evaluator
                          ORDER BY s.id) = 1

-- name: create_meta
-- The mirror's facts, written by every sync (sync.py, _write_meta): schema_version,
-- source_identity, horizon, last_sync_at, last_full_sync_at, last_verified_at, and
-- held_back_by (JSON: the transactions that held the last sync's horizon back).
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
DROP TABLE IF EXISTS scores;
DROP TABLE IF EXISTS task_scores;
{{day_totals.drop_day_totals}};

-- name: mirror_file
-- The file behind this connection's database (NULL in memory).
SELECT path FROM duckdb_databases() WHERE database_name = current_database();

-- name: read_meta
SELECT key, value FROM mirror_meta;

-- name: write_meta
INSERT OR REPLACE INTO mirror_meta VALUES (:key, :value);

-- name: insert_users
INSERT INTO users SELECT id, display_name, team, role FROM staged_users;

-- name: insert_runs
INSERT INTO runs
SELECT id, user_id, source_type, source_id, name, tags, status, is_starred, parent_run_id,
       total_tokens, total_cost::DECIMAL(24, 10), message_count, task_count,
       created_at, updated_at, last_message_at, variant
  FROM staged_runs;

-- name: insert_scores
INSERT INTO scores
SELECT id, run_id, task_id, name, data_type, value, label, source, author, evaluator,
       evaluator_version, created_at, updated_at
  FROM staged_scores;

-- name: task_columns
-- The mirror's task columns from a staged task row s.
s.id, task_id, run_id, user_id, team, source_type, tags, variant, service, task_name, provider,
       endpoint, model, model_id, status, tokens_input, tokens_output, tokens_cached_input,
       tokens_reasoning, tokens_total, tokens_cache_write, cost::DECIMAL(20, 10) AS cost,
       cost_source, time_to_first_token,
       total_time, created_at, completed_at, updated_at,
       (epoch_us(created_at) // 86400000000)::INTEGER AS day,
       date_diff('day', DATE '1970-01-01',
                 date_trunc('month', DATE '1970-01-01'
                                     + (epoch_us(created_at) // 86400000000)::INTEGER)
       )::INTEGER AS month_day,
       error

-- name: counts
SELECT (SELECT count(*) FROM tasks) AS tasks, (SELECT count(*) FROM runs) AS runs,
       (SELECT count(*) FROM users) AS users;

-- name: refresh_run_key_days
-- Per creation day: the smallest key and the number of keys (days of keys just given).
INSERT OR REPLACE INTO run_key_days
SELECT day, date_diff('day', DATE '1970-01-01', date_trunc('month', DATE '1970-01-01' + day))::INTEGER,
       min(key), count(*)::INTEGER
  FROM run_keys
 WHERE day IN (SELECT DISTINCT day FROM run_keys WHERE key > :since_key)
 GROUP BY day;
