-- Variants, datasets and experiments (docs/quality.md).
--
-- Variant: a label a run or a task carries for A/B comparison (a prompt version, a model, a
-- settings label). A task without its own variant has its run's (the rollups read
-- coalesce(task.variant, run.variant)). Set when the row is written; 1..100 characters:
-- letters, digits and _ . : / @ + -.
--
-- Dataset: named items, each an input (the messages sent), an expected output (editable)
-- and metadata; made from tasks (source_task_id) or imported from JSONL.
-- Experiment: a dataset replayed through a model; one run (variant = the experiment's
-- name) with one task per item, linked in ai_experiment_items.
-- Row-level security: a dataset or experiment is read and changed by its owner and admins
-- (as templates, migration 0019, without the team's managers); items follow their dataset
-- or experiment.

ALTER TABLE ai_runs ADD COLUMN variant text
    CHECK (variant ~ '^[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,99}$');
ALTER TABLE ai_tasks ADD COLUMN variant text
    CHECK (variant ~ '^[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,99}$');
CREATE INDEX ai_runs_variant_idx ON ai_runs (variant) WHERE variant IS NOT NULL;

CREATE TABLE ai_datasets (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     text NOT NULL,
    name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,99}$'),
    description text CHECK (char_length(description) <= 4000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, name)
);

CREATE TABLE ai_dataset_items (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    dataset_id      uuid NOT NULL REFERENCES ai_datasets (id) ON DELETE CASCADE,
    seq             bigint GENERATED ALWAYS AS IDENTITY,  -- the order items were added in
    input           jsonb NOT NULL CHECK (jsonb_typeof(input) = 'array'),
    expected_output text CHECK (char_length(expected_output) <= 1000000),
    metadata        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    source_task_id  uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ai_dataset_items_dataset_idx ON ai_dataset_items (dataset_id, seq);
-- A task becomes at most one item of a dataset (creating from a filter again adds only
-- the tasks not yet in it).
CREATE UNIQUE INDEX ai_dataset_items_source_idx ON ai_dataset_items (dataset_id, source_task_id)
    WHERE source_task_id IS NOT NULL;

CREATE TABLE ai_experiments (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    text NOT NULL,
    name       text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,99}$'),
    dataset_id uuid NOT NULL REFERENCES ai_datasets (id) ON DELETE CASCADE,
    provider   text NOT NULL CHECK (provider IN ('openai', 'anthropic')),
    model      text NOT NULL CHECK (char_length(model) BETWEEN 1 AND 200),
    prompt     text CHECK (char_length(prompt) <= 100000),
    evaluators jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(evaluators) = 'array'),
    run_id     uuid REFERENCES ai_runs (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, name)
);

CREATE TABLE ai_experiment_items (
    experiment_id uuid NOT NULL REFERENCES ai_experiments (id) ON DELETE CASCADE,
    item_id       uuid NOT NULL REFERENCES ai_dataset_items (id) ON DELETE CASCADE,
    task_id       uuid NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (experiment_id, item_id)
);
CREATE INDEX ai_experiment_items_task_idx ON ai_experiment_items (task_id);

-- ----------------------------------------------------------------- row-level security

ALTER TABLE ai_datasets ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_dataset_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_experiments ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_experiment_items ENABLE ROW LEVEL SECURITY;

CREATE POLICY datasets_owner ON ai_datasets FOR ALL USING (
    (SELECT ai_viewer_role()) = 'admin' OR user_id = (SELECT ai_viewer_id())
) WITH CHECK (
    (SELECT ai_viewer_role()) = 'admin' OR user_id = (SELECT ai_viewer_id())
);
CREATE POLICY dataset_items_owner ON ai_dataset_items FOR ALL USING (
    EXISTS (SELECT 1 FROM ai_datasets d WHERE d.id = dataset_id)
) WITH CHECK (
    EXISTS (SELECT 1 FROM ai_datasets d WHERE d.id = dataset_id)
);
CREATE POLICY experiments_owner ON ai_experiments FOR ALL USING (
    (SELECT ai_viewer_role()) = 'admin' OR user_id = (SELECT ai_viewer_id())
) WITH CHECK (
    ((SELECT ai_viewer_role()) = 'admin' OR user_id = (SELECT ai_viewer_id()))
    AND EXISTS (SELECT 1 FROM ai_datasets d WHERE d.id = dataset_id)
);
CREATE POLICY experiment_items_owner ON ai_experiment_items FOR ALL USING (
    EXISTS (SELECT 1 FROM ai_experiments e WHERE e.id = experiment_id)
) WITH CHECK (
    EXISTS (SELECT 1 FROM ai_experiments e WHERE e.id = experiment_id)
);

GRANT SELECT, INSERT, UPDATE, DELETE
    ON ai_datasets, ai_dataset_items, ai_experiments, ai_experiment_items TO ai_runs_app;
