-- export.sql: every user, run and task as text, for `ai-runs export`
-- (ingest/transfer/import_export.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: export_users
-- Every user, every column as text (NULL stays NULL), timestamps in ISO 8601 UTC.
SELECT id, display_name, email, team, role,
       to_json(created_at) #>> '{}' AS created_at,
       to_json(updated_at) #>> '{}' AS updated_at
  FROM ai_users
 ORDER BY id;

-- name: export_runs
-- Every run (parents before their forks when created earlier), columns as text: jsonb as
-- JSON text, tags as a JSON array, timestamps ISO 8601 UTC, derived totals included.
SELECT id::text, user_id, source_type, source_id, name, description,
       to_json(tags)::text AS tags, messages::text, settings::text, variable_values::text,
       broker_values::text, attachments::text, metadata::text, status, is_starred::text,
       parent_run_id::text, forked_from_message::text,
       to_json(created_at) #>> '{}' AS created_at,
       to_json(updated_at) #>> '{}' AS updated_at,
       to_json(last_message_at) #>> '{}' AS last_message_at, variant,
       total_tokens::text, total_cost::text, message_count::text, task_count::text
  FROM ai_runs
 ORDER BY created_at, id;

-- name: export_tasks
-- Every task, columns as text in vocabulary.TASK_COLUMNS order: jsonb as JSON text, cost as
-- exact decimal text, timestamps ISO 8601 UTC.
SELECT id::text, run_id::text, user_id, task_id::text, service, task_name, provider,
       endpoint, model, model_id, request_data::text, response_text, response_data::text,
       response_info::text, response_errors::text, tool_updates::text,
       response_complete::text, response_metadata::text, tokens_input::text,
       tokens_output::text, tokens_cached_input::text, tokens_reasoning::text,
       tokens_total::text, cost::text, time_to_first_token::text, total_time::text, status,
       to_json(created_at) #>> '{}' AS created_at,
       to_json(updated_at) #>> '{}' AS updated_at,
       to_json(completed_at) #>> '{}' AS completed_at,
       tokens_cache_write::text, cost_source, variant
  FROM ai_tasks
 ORDER BY created_at, id;
