-- payload_heap.sql: how wide the two big heaps are, what TOAST does with their payloads,
-- and narrow copies of them with the payloads in side tables (bench/payload_heap.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: heap_sizes
-- Per big table: table, rows (reltuples), heap_bytes (main fork), toast_bytes (its TOAST
-- table's main fork), index_bytes.
SELECT c.relname AS "table", c.reltuples::bigint AS rows,
       pg_relation_size(c.oid) AS heap_bytes,
       coalesce(pg_relation_size(nullif(c.reltoastrelid, 0)), 0) AS toast_bytes,
       pg_indexes_size(c.oid) AS index_bytes
  FROM pg_class c
 WHERE c.oid IN ('public.ai_tasks'::regclass, 'public.ai_runs'::regclass)
 ORDER BY c.relname;

-- name: table_columns
-- The columns of public.:table in table order: name (dropped ones left out).
SELECT attname AS name
  FROM pg_attribute
 WHERE attrelid = ('public.' || :table)::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;

-- name: create_scratch
-- The benchmark's own schema, new each run (copies only; public is never written).
DROP SCHEMA IF EXISTS payload_heap CASCADE;
CREATE SCHEMA payload_heap;

-- name: drop_scratch
DROP SCHEMA IF EXISTS payload_heap CASCADE;

-- name: toast_copies
-- Empty copies of ai_tasks and ai_runs, twice: as the tables are, and with
-- toast_tuple_target at its minimum (128) and every payload column STORAGE EXTERNAL, the
-- cheapest "side table" Postgres has (docs/scale.md, "Payloads and the full build").
CREATE TABLE payload_heap.tasks_as_now (LIKE public.ai_tasks);
CREATE TABLE payload_heap.tasks_toasted (LIKE public.ai_tasks) WITH (toast_tuple_target = 128);
ALTER TABLE payload_heap.tasks_toasted
    ALTER request_data SET STORAGE EXTERNAL, ALTER response_text SET STORAGE EXTERNAL,
    ALTER response_data SET STORAGE EXTERNAL, ALTER response_info SET STORAGE EXTERNAL,
    ALTER tool_updates SET STORAGE EXTERNAL, ALTER response_metadata SET STORAGE EXTERNAL;
CREATE TABLE payload_heap.runs_as_now (LIKE public.ai_runs) WITH (fillfactor = 80, toast_tuple_target = 256);
CREATE TABLE payload_heap.runs_toasted (LIKE public.ai_runs) WITH (fillfactor = 80, toast_tuple_target = 128);
ALTER TABLE payload_heap.runs_toasted
    ALTER messages SET STORAGE EXTERNAL, ALTER settings SET STORAGE EXTERNAL,
    ALTER variable_values SET STORAGE EXTERNAL, ALTER broker_values SET STORAGE EXTERNAL,
    ALTER attachments SET STORAGE EXTERNAL, ALTER metadata SET STORAGE EXTERNAL;

-- name: copy_tasks_as_now
-- The first :rows tasks in heap order, as they are stored.
INSERT INTO payload_heap.tasks_as_now SELECT * FROM public.ai_tasks LIMIT :rows;

-- name: copy_runs_as_now
-- The first :rows runs in heap order, as they are stored.
INSERT INTO payload_heap.runs_as_now SELECT * FROM public.ai_runs LIMIT :rows;

-- name: fill_toasted
-- The same rows again into the copies with the TOAST settings.
INSERT INTO payload_heap.tasks_toasted SELECT * FROM payload_heap.tasks_as_now;
INSERT INTO payload_heap.runs_toasted SELECT * FROM payload_heap.runs_as_now;

-- name: toast_sizes
-- The TOAST copies: table, rows, heap_bytes, toast_bytes, over_threshold (rows whose
-- whole row is over 2,032 bytes, TOAST_TUPLE_THRESHOLD: only such rows are ever toasted,
-- whatever toast_tuple_target says).
SELECT c.relname AS "table", c.reltuples::bigint AS rows,
       pg_relation_size(c.oid) AS heap_bytes,
       coalesce(pg_relation_size(nullif(c.reltoastrelid, 0)), 0) AS toast_bytes,
       CASE c.relname
           WHEN 'tasks_as_now' THEN (SELECT count(*) FILTER (WHERE pg_column_size(t.*) > 2032)
                                       FROM payload_heap.tasks_as_now t)
           WHEN 'runs_as_now' THEN (SELECT count(*) FILTER (WHERE pg_column_size(r.*) > 2032)
                                      FROM payload_heap.runs_as_now r)
       END AS over_threshold
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'payload_heap'
   AND c.relname IN ('tasks_as_now', 'tasks_toasted', 'runs_as_now', 'runs_toasted')
 ORDER BY c.relname;

-- name: narrow_copies
-- ai_tasks and ai_runs without their payloads, in heap order, named as in public so that a
-- connection with search_path payload_heap, public builds the mirror from them with the
-- mirror's own queries (the payloads go to side_tables). response_errors stays with the
-- task (the mirror reads it), description with the run (short; searched). The indexes the
-- extracts and the run page may use come along.
CREATE TABLE payload_heap.ai_tasks AS
SELECT id, run_id, user_id, task_id, service, task_name, provider, endpoint, model, model_id,
       response_errors, response_complete, tokens_input, tokens_output, tokens_cached_input,
       tokens_reasoning, tokens_total, cost, time_to_first_token, total_time, status,
       created_at, updated_at, completed_at, sync_xid, tokens_cache_write, cost_source,
       price_ref, variant
  FROM public.ai_tasks;
CREATE TABLE payload_heap.ai_runs WITH (fillfactor = 80) AS
SELECT id, user_id, source_type, source_id, name, description, tags, status, is_starred,
       parent_run_id, forked_from_message, total_tokens, total_cost, task_count, created_at,
       updated_at, last_message_at, sync_xid, message_count, variant
  FROM public.ai_runs;
ALTER TABLE payload_heap.ai_tasks ADD PRIMARY KEY (id);
ALTER TABLE payload_heap.ai_runs ADD PRIMARY KEY (id);
CREATE INDEX ON payload_heap.ai_tasks (created_at);
CREATE INDEX ON payload_heap.ai_tasks (run_id, created_at);
CREATE INDEX ON payload_heap.ai_runs (created_at DESC, id DESC);

-- name: side_tables
-- The payloads the narrow copies leave out, keyed by their row's id.
CREATE TABLE payload_heap.ai_task_payloads AS
SELECT id, request_data, response_text, response_data, response_info, tool_updates,
       response_metadata
  FROM public.ai_tasks;
CREATE TABLE payload_heap.ai_run_messages AS
SELECT id AS run_id, messages, settings, variable_values, broker_values, attachments, metadata
  FROM public.ai_runs;
ALTER TABLE payload_heap.ai_task_payloads ADD PRIMARY KEY (id);
ALTER TABLE payload_heap.ai_run_messages ADD PRIMARY KEY (run_id);

-- name: narrow_sizes
-- The narrow copies and their side tables: table, heap_bytes, toast_bytes.
SELECT c.relname AS "table", pg_relation_size(c.oid) AS heap_bytes,
       coalesce(pg_relation_size(nullif(c.reltoastrelid, 0)), 0) AS toast_bytes
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'payload_heap'
   AND c.relname IN ('ai_tasks', 'ai_task_payloads', 'ai_runs', 'ai_run_messages')
 ORDER BY c.relname;

-- name: sample_runs
-- :count run ids, the same ones for both ways (a fixed sample of the runs heap): id.
SELECT id FROM public.ai_runs TABLESAMPLE BERNOULLI (1) REPEATABLE (0) LIMIT :count;

-- name: wide_run
-- The run page's first read as the Tracker does it today (ingest/tracking/sql/runs.sql,
-- get_run): the run with its messages.
SELECT * FROM public.ai_runs WHERE id = :run_id;

-- name: wide_run_tasks
-- Its second (ingest/tracking/sql/tasks.sql, run_tasks): the run's tasks with payloads.
SELECT * FROM public.ai_tasks WHERE run_id = :run_id ORDER BY created_at, id;

-- name: narrow_run
-- The same run with its messages joined from the side table.
SELECT r.*, m.*
  FROM payload_heap.ai_runs r
  JOIN payload_heap.ai_run_messages m ON m.run_id = r.id
 WHERE r.id = :run_id;

-- name: narrow_run_tasks
-- The same tasks with their payloads joined from the side table.
SELECT t.*, p.*
  FROM payload_heap.ai_tasks t
  JOIN payload_heap.ai_task_payloads p ON p.id = t.id
 WHERE t.run_id = :run_id
 ORDER BY t.created_at, t.id;

-- name: write_targets
-- Empty tables to time writing the same tasks: as ai_tasks is (one table), or narrow plus
-- a side table; each with the primary key and the two indexes of ai_tasks the copies have.
CREATE TABLE payload_heap.write_wide (LIKE public.ai_tasks INCLUDING DEFAULTS);
ALTER TABLE payload_heap.write_wide ADD PRIMARY KEY (id);
CREATE INDEX ON payload_heap.write_wide (created_at);
CREATE INDEX ON payload_heap.write_wide (run_id, created_at);
CREATE TABLE payload_heap.write_narrow (LIKE payload_heap.ai_tasks INCLUDING DEFAULTS);
ALTER TABLE payload_heap.write_narrow ADD PRIMARY KEY (id);
CREATE INDEX ON payload_heap.write_narrow (created_at);
CREATE INDEX ON payload_heap.write_narrow (run_id, created_at);
CREATE TABLE payload_heap.write_payloads (LIKE payload_heap.ai_task_payloads);
ALTER TABLE payload_heap.write_payloads ADD PRIMARY KEY (id);

-- name: write_wide
-- :rows tasks into the one wide table.
INSERT INTO payload_heap.write_wide SELECT * FROM public.ai_tasks LIMIT :rows;

-- name: write_narrow
-- The same tasks into the narrow table and the side table (one statement).
WITH source AS (SELECT * FROM public.ai_tasks LIMIT :rows),
     payloads AS (
         INSERT INTO payload_heap.write_payloads
         SELECT id, request_data, response_text, response_data, response_info, tool_updates,
                response_metadata
           FROM source)
INSERT INTO payload_heap.write_narrow
SELECT id, run_id, user_id, task_id, service, task_name, provider, endpoint, model, model_id,
       response_errors, response_complete, tokens_input, tokens_output, tokens_cached_input,
       tokens_reasoning, tokens_total, cost, time_to_first_token, total_time, status,
       created_at, updated_at, completed_at, sync_xid, tokens_cache_write, cost_source,
       price_ref, variant
  FROM source;

-- name: truncate_write_targets
TRUNCATE payload_heap.write_wide, payload_heap.write_narrow, payload_heap.write_payloads;
