-- Prompt templates made from runs (docs/tracking.md, "Templates from runs").
-- A template has a name (one per owner) and numbered versions; each version keeps its
-- messages with {{placeholders}}, its settings, the placeholders' names, the run it was
-- made from, who made it and when. A run made from a template records which version in
-- ai_template_runs, so cost and latency can be compared per version. Row-level security
-- follows runs: a template is read by its owner, their team's managers and admins (as
-- runs_read, without shares) and changed by its owner or an admin; a run's template link
-- is read with the run and written by whoever may edit the run.

CREATE TABLE ai_templates (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id text NOT NULL,
    name text NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, name)
);

CREATE TABLE ai_template_versions (
    template_id uuid NOT NULL REFERENCES ai_templates (id) ON DELETE CASCADE,
    version integer NOT NULL CHECK (version >= 1),
    messages jsonb NOT NULL CHECK (jsonb_typeof(messages) = 'array'),
    settings jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    placeholders text[] NOT NULL DEFAULT '{}',
    source_run_id uuid REFERENCES ai_runs (id) ON DELETE SET NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (template_id, version)
);

CREATE TABLE ai_template_runs (
    run_id uuid PRIMARY KEY REFERENCES ai_runs (id) ON DELETE CASCADE,
    template_id uuid NOT NULL,
    version integer NOT NULL,
    FOREIGN KEY (template_id, version)
        REFERENCES ai_template_versions (template_id, version) ON DELETE CASCADE
);
CREATE INDEX ai_template_runs_version ON ai_template_runs (template_id, version);

ALTER TABLE ai_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_template_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_template_runs ENABLE ROW LEVEL SECURITY;

CREATE POLICY templates_read ON ai_templates FOR SELECT USING (
    (SELECT ai_viewer_role()) = 'admin'
    OR user_id = (SELECT ai_viewer_id())
    OR user_id IN (SELECT ai_viewer_team_members())
);
CREATE POLICY templates_write ON ai_templates FOR ALL USING (
    (SELECT ai_viewer_role()) = 'admin' OR user_id = (SELECT ai_viewer_id())
) WITH CHECK (
    (SELECT ai_viewer_role()) = 'admin' OR user_id = (SELECT ai_viewer_id())
);

CREATE POLICY template_versions_read ON ai_template_versions FOR SELECT USING (
    EXISTS (SELECT 1 FROM ai_templates t WHERE t.id = template_id)
);
CREATE POLICY template_versions_insert ON ai_template_versions FOR INSERT WITH CHECK (
    EXISTS (SELECT 1 FROM ai_templates t WHERE t.id = template_id
             AND ((SELECT ai_viewer_role()) = 'admin' OR t.user_id = (SELECT ai_viewer_id())))
);

CREATE POLICY template_runs_read ON ai_template_runs FOR SELECT USING (
    EXISTS (SELECT 1 FROM ai_runs r WHERE r.id = run_id)
);
CREATE POLICY template_runs_insert ON ai_template_runs FOR INSERT WITH CHECK (
    ai_viewer_may_edit_run(run_id)
    AND EXISTS (SELECT 1 FROM ai_templates t WHERE t.id = template_id)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON ai_templates TO ai_runs_app;
GRANT SELECT, INSERT ON ai_template_versions, ai_template_runs TO ai_runs_app;
