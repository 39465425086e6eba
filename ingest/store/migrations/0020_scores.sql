-- Scores: how good a task or a run was (docs/quality.md). A score belongs to a run, and to
-- one of its tasks when task_id is set (the task's public task_id; NULL: a score of the
-- whole run). Row-level security follows the run, as for tasks (migration 0010).
--
-- Value kinds (data_type):
-- * numeric:     value holds the number (finite); label optional (e.g. "good").
-- * boolean:     value is 1 (true) or 0 (false); label is 'true' or 'false'.
-- * categorical: label holds the category; value is NULL.
-- A rollup averages `value` (a boolean's mean is its share of true) and counts labels.
--
-- One score per (run, task, name, evaluator, evaluator_version, author): writing it again
-- replaces value, label and comment (a person changing their thumbs; a rule re-run).
-- Who may write: anyone who may read the run adds scores authored by themselves; a score
-- by someone else (a rule, a model, an API client) needs the right to change the run; a
-- person's score is theirs to change or remove (or an admin's).
-- No foreign key to ai_tasks, so that TRUNCATE ai_tasks keeps working (migration 0004): a
-- trigger removes the scores of deleted tasks, and truncating ai_tasks removes task scores.

CREATE TABLE ai_scores (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id            uuid NOT NULL REFERENCES ai_runs (id) ON DELETE CASCADE,
    task_id           uuid,
    name              text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}$'),
    data_type         text NOT NULL CHECK (data_type IN ('numeric', 'boolean', 'categorical')),
    value             double precision
        CHECK (value IS NULL OR value NOT IN ('NaN', 'Infinity', '-Infinity')),
    label             text CHECK (char_length(label) BETWEEN 1 AND 200),
    source            text NOT NULL CHECK (source IN ('human', 'rule', 'model', 'api')),
    comment           text CHECK (char_length(comment) <= 4000),
    author            text NOT NULL DEFAULT '' CHECK (char_length(author) <= 200),
    evaluator         text NOT NULL DEFAULT '' CHECK (char_length(evaluator) <= 200),
    evaluator_version text NOT NULL DEFAULT '' CHECK (char_length(evaluator_version) <= 100),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    sync_xid          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    CHECK (CASE data_type
           WHEN 'numeric' THEN value IS NOT NULL
           WHEN 'boolean' THEN (value = 1 AND label = 'true') OR (value = 0 AND label = 'false')
           ELSE value IS NULL AND label IS NOT NULL END)
);

-- The identity of a score (idempotent writes: ON CONFLICT names these expressions).
CREATE UNIQUE INDEX ai_scores_identity_idx ON ai_scores (
    run_id, coalesce(task_id, '00000000-0000-0000-0000-000000000000'::uuid), name, evaluator,
    evaluator_version, author);
CREATE INDEX ai_scores_task_idx ON ai_scores (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX ai_scores_created_idx ON ai_scores (created_at);
CREATE INDEX ai_scores_sync_idx ON ai_scores (sync_xid);

-- Change capture for the mirror, as for the other tables (migrations 0003, 0004).
CREATE TRIGGER ai_scores_stamp BEFORE UPDATE ON ai_scores
    FOR EACH ROW EXECUTE FUNCTION ai_stamp_sync_xid();
ALTER TABLE ai_sync_deletions DROP CONSTRAINT ai_sync_deletions_table_name_check;
ALTER TABLE ai_sync_deletions ADD CONSTRAINT ai_sync_deletions_table_name_check
    CHECK (table_name IN ('ai_users', 'ai_runs', 'ai_tasks', 'ai_scores'));
CREATE TRIGGER ai_scores_log_deletions AFTER DELETE ON ai_scores
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ai_log_deletions();
CREATE TRIGGER ai_scores_log_truncation AFTER TRUNCATE ON ai_scores
    FOR EACH STATEMENT EXECUTE FUNCTION ai_log_truncation();

-- The scores of deleted tasks go with them (whoever deleted the task: runs as the owner).
CREATE FUNCTION ai_scores_forget_tasks() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    DELETE FROM public.ai_scores s USING old_rows o
     WHERE s.task_id = o.task_id AND s.run_id = o.run_id;
    RETURN NULL;
END $$;

CREATE TRIGGER ai_tasks_forget_scores AFTER DELETE ON ai_tasks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ai_scores_forget_tasks();

CREATE FUNCTION ai_scores_forget_all_tasks() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    DELETE FROM public.ai_scores WHERE task_id IS NOT NULL;
    RETURN NULL;
END $$;

CREATE TRIGGER ai_tasks_truncate_scores AFTER TRUNCATE ON ai_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION ai_scores_forget_all_tasks();

-- ----------------------------------------------------------------- row-level security

ALTER TABLE ai_scores ENABLE ROW LEVEL SECURITY;

CREATE POLICY scores_read ON ai_scores FOR SELECT USING (
    EXISTS (SELECT 1 FROM ai_runs r WHERE r.id = ai_scores.run_id)
);
CREATE POLICY scores_insert ON ai_scores FOR INSERT WITH CHECK (
    EXISTS (SELECT 1 FROM ai_runs r WHERE r.id = ai_scores.run_id)
    AND (author = (SELECT ai_viewer_id())
         OR (source <> 'human' AND ai_viewer_may_edit_run(run_id)))
);
CREATE POLICY scores_update ON ai_scores FOR UPDATE USING (
    author = (SELECT ai_viewer_id()) OR (SELECT ai_viewer_role()) = 'admin'
    OR (source <> 'human' AND ai_viewer_may_edit_run(run_id))
) WITH CHECK (
    author = (SELECT ai_viewer_id()) OR (SELECT ai_viewer_role()) = 'admin'
    OR (source <> 'human' AND ai_viewer_may_edit_run(run_id))
);
CREATE POLICY scores_delete ON ai_scores FOR DELETE USING (
    author = (SELECT ai_viewer_id()) OR (SELECT ai_viewer_role()) = 'admin'
    OR (source <> 'human' AND ai_viewer_may_edit_run(run_id))
);

GRANT SELECT, INSERT, UPDATE, DELETE ON ai_scores TO ai_runs_app;
