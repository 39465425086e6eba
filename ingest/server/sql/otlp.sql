-- otlp.sql: the OTLP receiver's span records, log events and id secret
-- (ingest/server/otlp_calls.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- Run as the owner inside the bulk write's transaction (docs/server.md, "One call, one task").

-- name: otlp_lock_keys
-- Serializes the exports of one (user, trace or response id): their calls are decided one
-- at a time. Takes the lock of every key of :keys (text[]), in the order given (the
-- caller sorts them, so no two writers wait in a cycle), in one round trip; returns how
-- many.
SELECT count(*) AS locked
  FROM (SELECT pg_advisory_xact_lock(hashtextextended(u.key, 0))
          FROM unnest(:keys::text[]) AS u (key)) AS taken;

-- name: otlp_stored_spans
-- Every LLM span already recorded of this user's traces that are among :trace_ids or hold a
-- span with one of :response_ids (tracers of one call may use different traces).
WITH traces AS (
    SELECT DISTINCT trace_id FROM ai_otlp_spans
     WHERE user_id = :user_id
       AND (trace_id = ANY(:trace_ids::text[]) OR response_id = ANY(:response_ids::text[]))
)
SELECT trace_id, span_id, parent_span_id, response_id, task_id, completeness, started_at, kept
  FROM ai_otlp_spans
 WHERE user_id = :user_id AND trace_id IN (SELECT trace_id FROM traces);

-- name: otlp_delete_replaced_tasks
-- Tasks of spans that a more complete span of the same call replaces.
DELETE FROM ai_tasks WHERE task_id = ANY(:task_ids::uuid[]);

-- name: otlp_record_spans
-- New span records (kept is decided by mark_kept).
INSERT INTO ai_otlp_spans (user_id, trace_id, span_id, parent_span_id, response_id, task_id,
                           completeness, started_at, kept)
SELECT :user_id, u.trace_id, u.span_id, u.parent_span_id, u.response_id, u.task_id,
       u.completeness, u.started_at, false
  FROM unnest(:trace_ids::text[], :span_ids::text[], :parent_span_ids::text[],
              :response_ids::text[], :task_ids::uuid[], :completeness::int[],
              :started_at::timestamptz[])
       AS u (trace_id, span_id, parent_span_id, response_id, task_id, completeness, started_at)
ON CONFLICT (user_id, trace_id, span_id) DO NOTHING;

-- name: otlp_mark_kept
-- The span kept for each call of these traces; the others are not.
UPDATE ai_otlp_spans SET kept = (task_id = ANY(:kept::uuid[]))
 WHERE user_id = :user_id AND trace_id = ANY(:trace_ids::text[]);

-- name: otlp_fill_task
-- The kept task of a call takes what it lacks from another span of the call: text, input
-- messages, a TTFT that fits in its duration.
UPDATE ai_tasks
   SET response_text = coalesce(nullif(response_text, ''), :response_text),
       request_data = CASE
           WHEN :messages::jsonb IS NULL OR request_data ? 'messages' THEN request_data
           ELSE coalesce(request_data, '{}'::jsonb) || jsonb_build_object('messages', :messages::jsonb)
       END,
       time_to_first_token = coalesce(
           time_to_first_token,
           CASE WHEN :ttft::integer <= total_time THEN :ttft::integer END)
 WHERE task_id = :task_id;

-- name: otlp_secret
-- The per-install secret OTLP ids are derived with.
SELECT secret FROM ai_otlp_secret;

-- name: otlp_name_run
-- A stored run that no span had named yet (no user message) takes the first user message
-- of a later span of it.
UPDATE ai_runs
   SET name = :name, metadata = jsonb_set(metadata, '{otlp,named_from_message}', 'true')
 WHERE id = :id AND user_id = :user_id
   AND metadata #>> '{otlp,named_from_message}' = 'false';

-- name: otlp_name_run_of_task
-- The run of a call's kept task, when no span of it had a user message, takes the first
-- user message another tracer of the call reported.
UPDATE ai_runs
   SET name = :name, metadata = jsonb_set(metadata, '{otlp,named_from_message}', 'true')
 WHERE id = (SELECT run_id FROM ai_tasks WHERE task_id = :task_id)
   AND metadata #>> '{otlp,named_from_message}' = 'false';

-- name: otlp_keep_log_event
-- A content log event whose span has not come yet.
INSERT INTO ai_otlp_log_events (user_id, trace_id, span_id, event_name, body)
VALUES (:user_id, :trace_id, :span_id, :event_name, :body);

-- name: otlp_waiting_log_events
-- The waiting events of these spans (trace_ids[i], span_ids[i]), in arrival order.
SELECT e.trace_id, e.span_id, e.body
  FROM ai_otlp_log_events e
  JOIN unnest(:trace_ids::text[], :span_ids::text[]) AS k (trace_id, span_id)
    ON e.trace_id = k.trace_id AND e.span_id = k.span_id
 WHERE e.user_id = :user_id
 ORDER BY e.seq;

-- name: otlp_forget_log_events
-- The events of a span, once joined to its task.
DELETE FROM ai_otlp_log_events
 WHERE user_id = :user_id AND trace_id = :trace_id AND span_id = :span_id;

-- name: otlp_content_of_tasks
-- What a replaced task knew that its replacement may lack.
SELECT task_id, response_text, request_data, time_to_first_token
  FROM ai_tasks WHERE task_id = ANY(:task_ids::uuid[]);

-- name: otlp_scores_of_tasks
-- The scores of tasks a more complete span replaces (they move to the replacing task).
SELECT task_id, name, data_type, value, label, source, comment, author, evaluator,
       evaluator_version, created_at
  FROM ai_scores WHERE task_id = ANY(:task_ids::uuid[]);

-- name: otlp_move_score
-- A replaced task's score, now of the task :task_id that replaced it (written in the same
-- transaction); one it already has (the same identity) is kept as it is.
INSERT INTO ai_scores (run_id, task_id, name, data_type, value, label, source, comment,
                       author, evaluator, evaluator_version, created_at)
SELECT t.run_id, t.task_id, :name, :data_type, :value, :label, :source, :comment, :author,
       :evaluator, :evaluator_version, :created_at
  FROM ai_tasks t WHERE t.task_id = :task_id
ON CONFLICT (run_id, coalesce(task_id, '00000000-0000-0000-0000-000000000000'::uuid), name,
             evaluator, evaluator_version, author) DO NOTHING;
