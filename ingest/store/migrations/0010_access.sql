-- Who sees what (docs/access.md): row-level security on runs, tasks and shares, the
-- application role, an audit trail, and the redaction rule set.
--
-- Two kinds of connection:
-- * the owner (the role that ran the migrations): bypasses RLS as the tables' owner. Used
--   by migrations, the mirror sync, bulk import/export, purges and trusted service writers.
-- * ai_runs_app: a role that does NOT bypass RLS (not superuser, not owner, NOBYPASSRLS).
--   The dashboard and a Tracker with a viewer connect as it and name the viewer per
--   transaction: SELECT set_config('ai_runs.viewer', '<ai_users.id>', true).
-- A viewer that is not in ai_users sees nothing. Roles are cluster-wide: creating it is
-- idempotent and tolerates another database's migration creating it at the same moment.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ai_runs_app') THEN
        BEGIN
            CREATE ROLE ai_runs_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;  -- created concurrently
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'cannot create role ai_runs_app here: create it as an '
                             'administrator (docs/access.md), then rerun the migration';
                RAISE;
        END;
    END IF;
END $$;

-- ----------------------------------------------------------------- sharing and audit

CREATE TABLE ai_run_shares (
    run_id     uuid NOT NULL REFERENCES ai_runs (id) ON DELETE CASCADE,
    user_id    text NOT NULL REFERENCES ai_users (id) ON DELETE CASCADE,
    permission text NOT NULL CHECK (permission IN ('view', 'edit')),
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, user_id)
);
CREATE INDEX ai_run_shares_user_idx ON ai_run_shares (user_id, run_id);

CREATE TABLE ai_audit (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor   text NOT NULL,
    action  text NOT NULL CHECK (action IN ('archive', 'delete', 'restore', 'share', 'unshare',
                                            'user_added', 'role_change', 'purge')),
    run_id  uuid,
    subject text,
    detail  jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ai_audit_at_idx ON ai_audit (at DESC);

-- Redaction (ingest/redaction.py applies the enabled rules before anything is stored).
CREATE TABLE ai_redaction_rules (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9_-]{1,64}$'),
    pattern     text NOT NULL,
    replacement text NOT NULL DEFAULT '[REDACTED]',
    builtin     boolean NOT NULL DEFAULT false,
    enabled     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO ai_redaction_rules (name, pattern, replacement, builtin) VALUES
    ('email', '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}', '[EMAIL]', true),
    ('secret',
     '(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}'
     '|xox[abpors]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{30,}'
     '|(?i:bearer)\s+[A-Za-z0-9._~+/-]{16,}=*'
     '|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})',
     '[SECRET]', true);

-- Masks applied per task, per field, as stored (a later write of a field replaces its count).
-- No foreign key, so that TRUNCATE ai_tasks keeps working (migration 0004): the triggers at
-- the end of this file forget the counts of deleted and truncated tasks.
CREATE TABLE ai_task_redactions (
    task_ref uuid PRIMARY KEY,  -- ai_tasks.id
    fields   jsonb NOT NULL DEFAULT '{}',
    masks    bigint NOT NULL DEFAULT 0
);

-- ----------------------------------------------------------------- the viewer

-- The viewer named on this transaction, if that person exists in ai_users (else NULL).
CREATE FUNCTION ai_viewer_id() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path FROM CURRENT AS $$
    SELECT id FROM ai_users WHERE id = nullif(current_setting('ai_runs.viewer', true), '')
$$;

CREATE FUNCTION ai_viewer_role() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path FROM CURRENT AS $$
    SELECT role FROM ai_users WHERE id = nullif(current_setting('ai_runs.viewer', true), '')
$$;

-- The people of the viewer's team when the viewer is a manager (else no rows).
CREATE FUNCTION ai_viewer_team_members() RETURNS SETOF text LANGUAGE sql STABLE
    SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT m.id FROM ai_users v JOIN ai_users m ON m.team = v.team
     WHERE v.id = nullif(current_setting('ai_runs.viewer', true), '') AND v.role = 'manager'
$$;

-- Runs shared with the viewer: any permission (for_edit false) or edit only.
CREATE FUNCTION ai_viewer_shared_runs(for_edit boolean) RETURNS SETOF uuid LANGUAGE sql STABLE
    SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT run_id FROM ai_run_shares
     WHERE user_id = nullif(current_setting('ai_runs.viewer', true), '')
       AND (permission = 'edit' OR NOT for_edit)
$$;

-- May the viewer change run `run` (owner, edit share, admin)? Used by task and share rules.
CREATE FUNCTION ai_viewer_may_edit_run(run uuid) RETURNS boolean LANGUAGE sql STABLE
    SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT coalesce(ai_viewer_role() = 'admin', false)
        OR EXISTS (SELECT 1 FROM ai_runs r WHERE r.id = run AND r.user_id = ai_viewer_id())
        OR run IN (SELECT ai_viewer_shared_runs(true))
$$;

-- Does the viewer own run `run` (or is an admin)? Who may share, unshare and purge.
CREATE FUNCTION ai_viewer_owns_run(run uuid) RETURNS boolean LANGUAGE sql STABLE
    SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT coalesce(ai_viewer_role() = 'admin', false)
        OR EXISTS (SELECT 1 FROM ai_runs r WHERE r.id = run AND r.user_id = ai_viewer_id())
$$;

-- Does the viewer see every run (an admin)? Lets a reader skip listing visible runs.
CREATE FUNCTION ai_viewer_sees_all() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(ai_viewer_role() = 'admin', false)
$$;

-- ----------------------------------------------------------------- policies
-- Sub-selects around the viewer functions make them one-time InitPlans, not per-row calls.

ALTER TABLE ai_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_run_shares ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_users ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_task_redactions ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_redaction_rules ENABLE ROW LEVEL SECURITY;

CREATE POLICY runs_read ON ai_runs FOR SELECT USING (
    (SELECT ai_viewer_role()) = 'admin'
    OR user_id = (SELECT ai_viewer_id())
    OR user_id IN (SELECT ai_viewer_team_members())
    OR id IN (SELECT ai_viewer_shared_runs(false))
);
CREATE POLICY runs_insert ON ai_runs FOR INSERT WITH CHECK (
    (SELECT ai_viewer_role()) = 'admin' OR user_id = (SELECT ai_viewer_id())
);
CREATE POLICY runs_update ON ai_runs FOR UPDATE USING (
    (SELECT ai_viewer_role()) = 'admin'
    OR user_id = (SELECT ai_viewer_id())
    OR id IN (SELECT ai_viewer_shared_runs(true))
) WITH CHECK (
    (SELECT ai_viewer_role()) = 'admin'
    OR user_id = (SELECT ai_viewer_id())
    OR id IN (SELECT ai_viewer_shared_runs(true))
);
CREATE POLICY runs_delete ON ai_runs FOR DELETE USING (
    (SELECT ai_viewer_role()) = 'admin' OR user_id = (SELECT ai_viewer_id())
);

CREATE POLICY tasks_read ON ai_tasks FOR SELECT USING (
    EXISTS (SELECT 1 FROM ai_runs r WHERE r.id = ai_tasks.run_id)
);
CREATE POLICY tasks_insert ON ai_tasks FOR INSERT WITH CHECK (ai_viewer_may_edit_run(run_id));
CREATE POLICY tasks_update ON ai_tasks FOR UPDATE
    USING (ai_viewer_may_edit_run(run_id)) WITH CHECK (ai_viewer_may_edit_run(run_id));
CREATE POLICY tasks_delete ON ai_tasks FOR DELETE USING (ai_viewer_may_edit_run(run_id));

CREATE POLICY shares_read ON ai_run_shares FOR SELECT USING (
    user_id = (SELECT ai_viewer_id()) OR ai_viewer_owns_run(run_id)
);
CREATE POLICY shares_insert ON ai_run_shares FOR INSERT WITH CHECK (ai_viewer_owns_run(run_id));
CREATE POLICY shares_update ON ai_run_shares FOR UPDATE
    USING (ai_viewer_owns_run(run_id)) WITH CHECK (ai_viewer_owns_run(run_id));
CREATE POLICY shares_delete ON ai_run_shares FOR DELETE USING (ai_viewer_owns_run(run_id));

CREATE POLICY users_read ON ai_users FOR SELECT USING ((SELECT ai_viewer_id()) IS NOT NULL);
CREATE POLICY users_admin ON ai_users FOR ALL
    USING ((SELECT ai_viewer_role()) = 'admin') WITH CHECK ((SELECT ai_viewer_role()) = 'admin');

CREATE POLICY audit_read ON ai_audit FOR SELECT USING ((SELECT ai_viewer_role()) = 'admin');

CREATE POLICY task_redactions_read ON ai_task_redactions FOR SELECT USING (
    EXISTS (SELECT 1 FROM ai_tasks t WHERE t.id = task_ref)
);
CREATE POLICY task_redactions_write ON ai_task_redactions FOR ALL
    USING (EXISTS (SELECT 1 FROM ai_tasks t WHERE t.id = task_ref))
    WITH CHECK (EXISTS (SELECT 1 FROM ai_tasks t WHERE t.id = task_ref));

CREATE POLICY redaction_rules_read ON ai_redaction_rules FOR SELECT USING (true);
CREATE POLICY redaction_rules_admin ON ai_redaction_rules FOR ALL
    USING ((SELECT ai_viewer_role()) = 'admin') WITH CHECK ((SELECT ai_viewer_role()) = 'admin');

GRANT USAGE ON SCHEMA public TO ai_runs_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ai_runs, ai_tasks, ai_run_shares, ai_users,
    ai_task_redactions, ai_redaction_rules TO ai_runs_app;
GRANT SELECT ON ai_audit TO ai_runs_app;
-- A viewer's Tracker prices the tasks it finishes (migration 0008's price books).
GRANT SELECT ON ai_price_overrides TO ai_runs_app;

-- ----------------------------------------------------------------- triggers keep working
-- The totals and change-capture triggers write ai_runs and ai_sync_deletions on behalf of
-- whoever wrote a task. They run as their owner (SECURITY DEFINER), so the application
-- role needs no rights on those tables and RLS cannot hide a run from its own totals.

ALTER FUNCTION ai_runs_apply_deltas(jsonb) SECURITY DEFINER SET search_path FROM CURRENT;
ALTER FUNCTION ai_log_deletions() SECURITY DEFINER SET search_path FROM CURRENT;
ALTER FUNCTION ai_log_truncation() SECURITY DEFINER SET search_path FROM CURRENT;
ALTER FUNCTION ai_tasks_after_truncate() SECURITY DEFINER SET search_path FROM CURRENT;

-- ----------------------------------------------------------------- audit triggers

CREATE FUNCTION ai_actor() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('ai_runs.viewer', true), ''), session_user::text)
$$;

CREATE FUNCTION ai_audit_run_status() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO ai_audit (actor, action, run_id, subject, detail)
    VALUES (ai_actor(),
            CASE NEW.status WHEN 'deleted' THEN 'delete' WHEN 'archived' THEN 'archive'
                            ELSE 'restore' END,
            NEW.id, NEW.user_id, jsonb_build_object('from', OLD.status, 'to', NEW.status));
    RETURN NULL;
END $$;

CREATE TRIGGER ai_runs_audit_status AFTER UPDATE OF status ON ai_runs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION ai_audit_run_status();

-- A purge (hard delete) is one audit row per statement: how many runs, and their ids up to
-- a thousand (a retention purge may erase millions).
CREATE FUNCTION ai_audit_run_purge() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT AS $$
DECLARE
    n bigint;
    ids jsonb;
    one uuid;
BEGIN
    SELECT count(*), (SELECT jsonb_agg(id) FROM (SELECT id FROM old_rows LIMIT 1000) s),
           min(id::text)::uuid
      INTO n, ids, one FROM old_rows;
    IF n > 0 THEN
        INSERT INTO ai_audit (actor, action, run_id, detail)
        VALUES (ai_actor(), 'purge', CASE WHEN n = 1 THEN one END,
                jsonb_build_object('runs', n, 'run_ids', ids));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ai_runs_audit_purge AFTER DELETE ON ai_runs
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ai_audit_run_purge();

CREATE FUNCTION ai_audit_share() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO ai_audit (actor, action, run_id, subject, detail)
        VALUES (ai_actor(), 'unshare', OLD.run_id, OLD.user_id,
                jsonb_build_object('permission', OLD.permission));
    ELSE
        INSERT INTO ai_audit (actor, action, run_id, subject, detail)
        VALUES (ai_actor(), 'share', NEW.run_id, NEW.user_id,
                jsonb_build_object('permission', NEW.permission));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ai_run_shares_audit AFTER INSERT OR UPDATE OR DELETE ON ai_run_shares
    FOR EACH ROW EXECUTE FUNCTION ai_audit_share();

CREATE FUNCTION ai_audit_user_role() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO ai_audit (actor, action, subject, detail)
        VALUES (ai_actor(), 'user_added', NEW.id,
                jsonb_build_object('role', NEW.role, 'team', NEW.team));
    ELSE
        INSERT INTO ai_audit (actor, action, subject, detail)
        VALUES (ai_actor(), 'role_change', NEW.id,
                jsonb_build_object('from', OLD.role, 'to', NEW.role));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ai_users_audit_insert AFTER INSERT ON ai_users
    FOR EACH ROW EXECUTE FUNCTION ai_audit_user_role();
CREATE TRIGGER ai_users_audit_role AFTER UPDATE OF role ON ai_users
    FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role)
    EXECUTE FUNCTION ai_audit_user_role();

-- ----------------------------------------------------------------- redaction counts follow tasks

CREATE FUNCTION ai_tasks_forget_redactions() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM ai_task_redactions;
    ELSIF EXISTS (SELECT 1 FROM ai_task_redactions) THEN
        DELETE FROM ai_task_redactions r USING old_rows o WHERE r.task_ref = o.id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ai_tasks_forget_redactions AFTER DELETE ON ai_tasks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ai_tasks_forget_redactions();
CREATE TRIGGER ai_tasks_forget_truncated_redactions AFTER TRUNCATE ON ai_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION ai_tasks_forget_redactions();
