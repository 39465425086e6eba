-- Tables of the system of record: people, runs (conversations) and tasks (requests).
-- Derived columns of ai_runs are maintained by the triggers of migration 0002.

CREATE TABLE ai_users (
    id           text PRIMARY KEY CHECK (id <> ''),
    display_name text NOT NULL DEFAULT '',
    email        text,
    team         text,
    role         text NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'manager', 'admin')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ai_runs (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             text,
    source_type         text NOT NULL
        CHECK (source_type IN ('prompt', 'chat', 'applet', 'cockpit', 'workflow', 'custom')),
    source_id           text,
    name                text NOT NULL DEFAULT '',
    description         text,
    tags                text[] NOT NULL DEFAULT '{}',
    messages            jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(messages) = 'array'),
    settings            jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    variable_values     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(variable_values) = 'object'),
    broker_values       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(broker_values) = 'object'),
    attachments         jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(attachments) = 'array'),
    metadata            jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    status              text NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'archived', 'deleted')),
    is_starred          boolean NOT NULL DEFAULT false,
    parent_run_id       uuid REFERENCES ai_runs (id) ON DELETE SET NULL,
    forked_from_message integer CHECK (forked_from_message >= 0),
    total_tokens        bigint NOT NULL DEFAULT 0,
    total_cost          numeric(24, 10) NOT NULL DEFAULT 0,
    message_count       integer NOT NULL DEFAULT 0,
    task_count          integer NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    last_message_at     timestamptz
);

CREATE TABLE ai_tasks (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id              uuid NOT NULL REFERENCES ai_runs (id) ON DELETE CASCADE,
    user_id             text,
    task_id             uuid NOT NULL UNIQUE,
    service             text,
    task_name           text,
    provider            text,
    endpoint            text,
    model               text,
    model_id            text,
    request_data        jsonb NOT NULL DEFAULT '{}',
    response_text       text NOT NULL DEFAULT '',
    response_data       jsonb,
    response_info       jsonb,
    response_errors     jsonb,
    tool_updates        jsonb,
    response_complete   boolean NOT NULL DEFAULT false,
    response_metadata   jsonb,
    tokens_input        bigint NOT NULL DEFAULT 0 CHECK (tokens_input >= 0),
    tokens_output       bigint NOT NULL DEFAULT 0 CHECK (tokens_output >= 0),
    tokens_cached_input bigint NOT NULL DEFAULT 0 CHECK (tokens_cached_input >= 0),
    tokens_reasoning    bigint NOT NULL DEFAULT 0 CHECK (tokens_reasoning >= 0),
    -- NULL on write means tokens_input + tokens_output (filled by a trigger).
    tokens_total        bigint NOT NULL CHECK (tokens_total >= 0),
    cost                numeric(20, 10) CHECK (cost >= 0),
    time_to_first_token integer CHECK (time_to_first_token >= 0),
    total_time          integer CHECK (total_time >= 0),
    status              text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'streaming', 'completed', 'failed', 'cancelled')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz
);

CREATE INDEX ai_runs_created_idx ON ai_runs (created_at DESC, id DESC);
CREATE INDEX ai_runs_user_created_idx ON ai_runs (user_id, created_at DESC, id DESC);
CREATE INDEX ai_runs_source_idx ON ai_runs (source_type, source_id);
CREATE INDEX ai_runs_tags_idx ON ai_runs USING gin (tags);
CREATE INDEX ai_runs_parent_idx ON ai_runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
CREATE INDEX ai_tasks_run_idx ON ai_tasks (run_id, created_at);
CREATE INDEX ai_tasks_created_idx ON ai_tasks (created_at);
-- Stuck-task lookups scan only the few unfinished tasks.
CREATE INDEX ai_tasks_unfinished_idx ON ai_tasks (created_at)
    WHERE status IN ('pending', 'streaming');
