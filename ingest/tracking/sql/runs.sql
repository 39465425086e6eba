-- runs.sql: runs (conversations) for the live API (ingest/tracking/runs.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- A "run summary" is every ai_runs column except messages and sync_xid. db_now and
-- consistent_read serve the Tracker's plumbing (ingest/tracking/tracker.py) too.

-- name: db_now
-- The transaction's timestamp (now()): what a column default of now() writes in it.
SELECT now() AS now;

-- name: consistent_read
-- First statement of a multi-statement read: all of it sees one snapshot (a page and its
-- total, a run and its tasks agree).
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;

-- name: insert_run
-- Insert one run; columns given as NULL take their defaults. Returns the run summary, or no
-- row when :id is already taken (a retried create).
INSERT INTO ai_runs (id, user_id, source_type, source_id, name, description, tags, messages,
                     settings, variable_values, broker_values, attachments, metadata, status,
                     is_starred, parent_run_id, forked_from_message, created_at, variant)
VALUES (coalesce(:id::uuid, gen_random_uuid()), :user_id, :source_type, :source_id, :name,
        :description, coalesce(:tags::text[], '{}'), coalesce(:messages::jsonb, '[]'),
        coalesce(:settings::jsonb, '{}'), coalesce(:variable_values::jsonb, '{}'),
        coalesce(:broker_values::jsonb, '{}'), coalesce(:attachments::jsonb, '[]'),
        coalesce(:metadata::jsonb, '{}'), coalesce(:status::text, 'active'),
        coalesce(:is_starred::boolean, false), :parent_run_id, :forked_from_message,
        coalesce(:created_at::timestamptz, now()), :variant)
ON CONFLICT (id) DO NOTHING
RETURNING id, user_id, source_type, source_id, name, description, tags, settings,
          variable_values, broker_values, attachments, metadata, status, is_starred,
          parent_run_id, forked_from_message, total_tokens, total_cost, message_count,
          task_count, created_at, updated_at, last_message_at, variant;

-- name: get_run
-- One run, every column but sync_xid (messages included); no row when it does not exist.
SELECT id, user_id, source_type, source_id, name, description, tags, messages, settings,
       variable_values, broker_values, attachments, metadata, status, is_starred,
       parent_run_id, forked_from_message, total_tokens, total_cost, message_count,
       task_count, created_at, updated_at, last_message_at, variant
  FROM ai_runs
 WHERE id = :run_id;

-- name: get_run_summary
-- One run summary (no messages); no row when it does not exist.
SELECT id, user_id, source_type, source_id, name, description, tags, settings,
       variable_values, broker_values, attachments, metadata, status, is_starred,
       parent_run_id, forked_from_message, total_tokens, total_cost, message_count,
       task_count, created_at, updated_at, last_message_at, variant
  FROM ai_runs
 WHERE id = :run_id;

-- name: lock_run_name
-- Lock a run against concurrent writers for the rest of the transaction; returns the fields
-- its generated name depends on (name, source_type, created_at).
SELECT name, source_type, created_at
  FROM ai_runs
 WHERE id = :run_id
   FOR NO KEY UPDATE;

-- name: append_message
-- Append one message atomically (concurrent appends all land) and optionally rename.
-- Returns message_count (the new message's index + 1) and name; no row for a missing run.
UPDATE ai_runs
   SET messages = messages || jsonb_build_array(:message::jsonb),
       name = coalesce(:new_name, name)
 WHERE id = :run_id
RETURNING message_count, name;

-- name: set_run_fields
-- Set the run's name, is_starred, tags and/or status; a NULL parameter leaves the column as
-- it is. Returns the run summary; no row for a missing run.
UPDATE ai_runs
   SET name = coalesce(:name, name),
       is_starred = coalesce(:is_starred, is_starred),
       tags = coalesce(:tags::text[], tags),
       status = coalesce(:status, status)
 WHERE id = :run_id
RETURNING id, user_id, source_type, source_id, name, description, tags, settings,
          variable_values, broker_values, attachments, metadata, status, is_starred,
          parent_run_id, forked_from_message, total_tokens, total_cost, message_count,
          task_count, created_at, updated_at, last_message_at, variant;

-- name: purge_run
-- Delete a run for good (its tasks go with it, ON DELETE CASCADE). Returns its id.
DELETE FROM ai_runs WHERE id = :run_id RETURNING id;

-- name: fork_run
-- A new run copying settings, variables, broker values, attachments, tags and metadata of
-- :run_id, with messages[0..:at_message] (inclusive), parent_run_id and
-- forked_from_message set. Returns the new run summary; no row for a missing run.
INSERT INTO ai_runs (user_id, source_type, source_id, name, description, tags, messages,
                     settings, variable_values, broker_values, attachments, metadata,
                     parent_run_id, forked_from_message)
SELECT coalesce(:user_id::text, r.user_id), r.source_type, r.source_id,
       coalesce(:name::text, r.name || ' (fork)'), r.description, r.tags,
       coalesce((SELECT jsonb_agg(m.value ORDER BY m.ordinality)
                   FROM jsonb_array_elements(r.messages) WITH ORDINALITY AS m
                  WHERE m.ordinality <= :at_message::integer + 1), '[]'),
       r.settings, r.variable_values, r.broker_values, r.attachments, r.metadata,
       r.id, :at_message::integer
  FROM ai_runs r
 WHERE r.id = :run_id
RETURNING id, user_id, source_type, source_id, name, description, tags, settings,
          variable_values, broker_values, attachments, metadata, status, is_starred,
          parent_run_id, forked_from_message, total_tokens, total_cost, message_count,
          task_count, created_at, updated_at, last_message_at, variant;

-- name: upsert_user
-- Insert or update one person; a NULL parameter keeps the stored value (or the default on
-- insert). Returns id, display_name, email, team, role, created_at, updated_at.
INSERT INTO ai_users (id, display_name, email, team, role)
VALUES (:id, coalesce(:display_name::text, ''), :email, :team, coalesce(:role::text, 'member'))
ON CONFLICT (id) DO UPDATE
   SET display_name = coalesce(:display_name::text, ai_users.display_name),
       email = coalesce(:email::text, ai_users.email),
       team = coalesce(:team::text, ai_users.team),
       role = coalesce(:role::text, ai_users.role)
RETURNING id, display_name, email, team, role, created_at, updated_at;

-- name: run_summary_columns
-- The columns of a run summary in the runs list (every ai_runs column but messages and
-- sync_xid).
id, user_id, source_type, source_id, name, description, tags, settings,
       variable_values, broker_values, attachments, metadata, status, is_starred,
       parent_run_id, forked_from_message, total_tokens, total_cost, message_count,
       task_count, created_at, updated_at, last_message_at, variant

-- name: list_runs
-- One page of run summaries, newest first (created_at desc, id desc), :limit rows.
-- TRUE /*filters*/ is replaced by fixed run_filter_* fragments joined with AND.
SELECT {{runs.run_summary_columns}}
  FROM ai_runs r
 WHERE TRUE /*filters*/
 ORDER BY r.created_at DESC, r.id DESC
 LIMIT :limit;

-- name: list_readable_runs
-- list_runs for a viewer who does not see every run, with a search or tags (docs/access.md,
-- "The runs list under row-level security"): the runs they may read that match the
-- search and tags are found by index first (ai_viewer_readable_runs, migrations 0025 and
-- 0028), then read here under row-level security with every filter, once for the page and
-- its total. Rows: the page (:limit run summaries, newest first), each with `total`, how
-- many runs match (at most :count_limit; NULL for no bound); an empty page is one row
-- whose run columns are NULL. TRUE /*filters*/ takes the run_filter_* fragments but the
-- search, TRUE /*page_filters*/ the cursor's, TRUE /*search_filters*/ the search's field
-- by field test (run_filter_search_fields): tested newest first, and only until the page
-- and the bounded total have their runs (each test reads the run's messages).
WITH matching AS MATERIALIZED (
    SELECT {{runs.run_summary_columns}}, r.messages
      FROM ai_runs r
     WHERE r.id = ANY (ARRAY(SELECT ai_viewer_readable_runs(:readable_from::timestamptz,
                                                            :readable_to::timestamptz,
                                                            :readable_search::text,
                                                            :readable_tags::text[],
                                                            :readable_tags_all::boolean)))
       AND TRUE /*filters*/
), page AS (
    -- OFFSET 0 keeps the search's test out of the sorted subquery: it is tested on the
    -- sorted rows, as the LIMIT asks for them.
    SELECT {{runs.run_summary_columns}}
      FROM (SELECT * FROM matching r
             WHERE TRUE /*page_filters*/
             ORDER BY r.created_at DESC, r.id DESC OFFSET 0) AS r
     WHERE TRUE /*search_filters*/
     LIMIT :limit
), total AS (
    SELECT count(*) AS total
      FROM (SELECT 1
              FROM (SELECT * FROM matching r ORDER BY r.created_at DESC, r.id DESC OFFSET 0) AS r
             WHERE TRUE /*search_filters*/
             LIMIT :count_limit::bigint) AS bounded
)
SELECT total.total, page.*
  FROM total LEFT JOIN page ON true
 ORDER BY page.created_at DESC, page.id DESC;

-- name: count_runs
-- How many runs match the filters (same fragments as list_runs, without the cursor).
SELECT count(*) AS total
  FROM ai_runs r
 WHERE TRUE /*filters*/;

-- name: run_filter_cursor
-- Keyset: runs strictly after the cursor in created_at desc, id desc order.
(r.created_at, r.id) < (:cursor_created_at::timestamptz, :cursor_id::uuid)

-- name: run_filter_source_types
r.source_type = ANY(:source_types::text[])

-- name: run_filter_source_id
r.source_id = :source_id

-- name: run_filter_statuses
r.status = ANY(:statuses::text[])

-- name: run_filter_starred
r.is_starred = :starred

-- name: run_filter_tags_any
r.tags && :tags::text[]

-- name: run_filter_tags_all
r.tags @> :tags::text[]

-- name: run_filter_user_id
r.user_id = :user_id

-- name: run_filter_created_from
r.created_at >= :created_from

-- name: run_filter_created_to
r.created_at < :created_to

-- name: count_runs_bounded
-- How many runs match, counting at most :count_limit (same fragments as count_runs): a
-- total that stays cheap on millions of runs; the caller says "more than" at the bound.
SELECT count(*) AS total
  FROM (SELECT 1 FROM ai_runs r WHERE TRUE /*filters*/ LIMIT :count_limit) AS bounded;

-- name: run_filter_search
-- Case-insensitive substring of the name, description or any message content. The first
-- test is served by the trigram index of migration 0011 (when pg_trgm exists); the second
-- keeps the exact meaning (a match may not span two fields).
{{runs.run_filter_search_text}}
AND {{runs.run_filter_search_fields}}

-- name: run_filter_search_text
-- The search in the run's text joined in one (served by the trigram index): every run of
-- the search, and a few more whose match spans two fields.
ai_run_search_text(r.name, r.description, r.messages) ILIKE :search_pattern

-- name: run_filter_search_fields
-- The search in the name, the description or one message's content, field by field.
(r.name ILIKE :search_pattern
 OR r.description ILIKE :search_pattern
 OR EXISTS (SELECT 1 FROM jsonb_array_elements(r.messages) AS m
             WHERE m ->> 'content' ILIKE :search_pattern))
