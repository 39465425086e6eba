-- The OTLP receiver's memory of the spans it was sent (docs/server.md, "One call, one
-- task"). Several tracers may report one LLM call (an OpenInference or Traceloop span with
-- the Anthropic SDK's own gen_ai span under it, or two spans with one gen_ai.response.id),
-- and the spans of one trace arrive in several exports. Every LLM span is recorded here, in
-- the transaction that writes its task, so that a later export can tell that its span
-- belongs to a call already stored and keep one task for it: the one with the most complete
-- usage (`kept`). Written by the bulk path as the owner; the application role has no
-- access (no grant).

CREATE TABLE ai_otlp_spans (
    user_id         text        NOT NULL,
    trace_id        text        NOT NULL,
    span_id         text        NOT NULL,
    parent_span_id  text,
    response_id     text,
    -- The task this span makes when it is the one kept for its call.
    task_id         uuid        NOT NULL,
    -- How complete its usage is (higher wins; ingest/server/otlp_calls.py).
    completeness    integer     NOT NULL,
    started_at      timestamptz NOT NULL,
    kept            boolean     NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, trace_id, span_id)
);

CREATE INDEX ai_otlp_spans_task ON ai_otlp_spans (task_id);

-- GenAI content log events (/v1/logs) that arrived before their span: joined to the
-- span's task when it comes (or at once when the task is already there).
CREATE TABLE ai_otlp_log_events (
    user_id     text        NOT NULL,
    trace_id    text        NOT NULL,
    span_id     text        NOT NULL,
    seq         bigserial,
    event_name  text        NOT NULL,
    body        jsonb,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, trace_id, span_id, seq)
);

-- A per-install secret: OTLP run and task ids are HMACs of it, so nobody without database
-- access can predict (and claim first) the id of another user's session or span.
CREATE TABLE ai_otlp_secret (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    secret   text    NOT NULL
);
INSERT INTO ai_otlp_secret (secret)
VALUES (replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
