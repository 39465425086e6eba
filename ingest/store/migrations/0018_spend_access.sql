-- Spend control under row-level security (docs/spend-control.md, docs/access.md): budgets,
-- price overrides, alert rules and their history, and the re-pricing audit are guarded by
-- policies like runs are, so the application role (the dashboard, a Tracker with a viewer)
-- changes only what the viewer may: an admin anything; a manager the budgets and alert
-- rules of their team and its people; a member nothing (a member reads the budgets and
-- rules of their own user scope). Price overrides are read by everyone (every writer
-- prices tasks with them) and changed by admins only; redaction rules and people already
-- are (migration 0010). Every change of these settings writes ai_audit with the viewer as
-- actor (or, on the owner connection, the person a command names in ai_runs.actor).
-- Its SECURITY DEFINER functions pin their search path, temporary schema last, and name
-- their tables with the schema (migration 0014, docs/access.md).

-- ----------------------------------------------------------------- who may do what to a scope

-- The team of the viewer named on this transaction (NULL when none).
CREATE FUNCTION ai_viewer_team() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT team FROM public.ai_users WHERE id = nullif(current_setting('ai_runs.viewer', true), '')
$$;

-- May the viewer set budgets and alert rules of scope (kind, value)? An admin any scope; a
-- manager their team and the people of their team; nobody else.
CREATE FUNCTION ai_viewer_manages_scope(kind text, value text) RETURNS boolean LANGUAGE sql
    STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT coalesce(public.ai_viewer_role() = 'admin', false)
        OR (coalesce(public.ai_viewer_role() = 'manager', false) AND (
               (kind = 'team' AND value = public.ai_viewer_team())
            OR (kind = 'user' AND value IN (SELECT public.ai_viewer_team_members()))))
$$;

-- Does the viewer read every run of scope (kind, value)? Those they manage, and a person's
-- own user scope. Budgets and alerts of other scopes are not shown to them: their spend
-- would be compared with runs the viewer cannot read.
CREATE FUNCTION ai_viewer_reads_scope(kind text, value text) RETURNS boolean LANGUAGE sql
    STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT public.ai_viewer_manages_scope(kind, value)
        OR (kind = 'user' AND value = public.ai_viewer_id())
$$;

-- Every budget's id, scope and period (no amount): lets the page say which budget applies
-- to a view and why it is not compared, without showing a budget the viewer may not read.
CREATE FUNCTION ai_budget_scopes() RETURNS TABLE (id bigint, scope_kind text,
                                                  scope_value text, period text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT id, scope_kind, scope_value, period FROM public.ai_budgets ORDER BY id
$$;

-- The actor of an audit row: the viewer, else the person an owner connection names in
-- ai_runs.actor (the CLI names the operating-system user), else the database role.
CREATE OR REPLACE FUNCTION ai_actor() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('ai_runs.viewer', true), ''),
                    nullif(current_setting('ai_runs.actor', true), ''),
                    session_user::text)
$$;

-- ----------------------------------------------------------------- policies

ALTER TABLE ai_budgets ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_price_overrides ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_alert_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_alert_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_alert_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_reprice_audit ENABLE ROW LEVEL SECURITY;

CREATE POLICY budgets_read ON ai_budgets FOR SELECT
    USING (ai_viewer_reads_scope(scope_kind, scope_value));
CREATE POLICY budgets_insert ON ai_budgets FOR INSERT
    WITH CHECK (ai_viewer_manages_scope(scope_kind, scope_value));
CREATE POLICY budgets_update ON ai_budgets FOR UPDATE
    USING (ai_viewer_manages_scope(scope_kind, scope_value))
    WITH CHECK (ai_viewer_manages_scope(scope_kind, scope_value));
CREATE POLICY budgets_delete ON ai_budgets FOR DELETE
    USING (ai_viewer_manages_scope(scope_kind, scope_value));

CREATE POLICY price_overrides_read ON ai_price_overrides FOR SELECT USING (true);
CREATE POLICY price_overrides_admin_insert ON ai_price_overrides FOR INSERT
    WITH CHECK ((SELECT ai_viewer_role()) = 'admin');
CREATE POLICY price_overrides_admin_update ON ai_price_overrides FOR UPDATE
    USING ((SELECT ai_viewer_role()) = 'admin') WITH CHECK ((SELECT ai_viewer_role()) = 'admin');

-- A budget rule has the scope of its budget (read through the budgets' own policy).
CREATE POLICY alert_rules_read ON ai_alert_rules FOR SELECT USING (
    CASE WHEN budget_id IS NULL THEN ai_viewer_reads_scope(scope_kind, scope_value)
         ELSE EXISTS (SELECT 1 FROM ai_budgets b WHERE b.id = budget_id) END
);
CREATE POLICY alert_rules_write ON ai_alert_rules FOR ALL USING (
    CASE WHEN budget_id IS NULL THEN ai_viewer_manages_scope(scope_kind, scope_value)
         ELSE EXISTS (SELECT 1 FROM ai_budgets b WHERE b.id = budget_id
                         AND ai_viewer_manages_scope(b.scope_kind, b.scope_value)) END
) WITH CHECK (
    CASE WHEN budget_id IS NULL THEN ai_viewer_manages_scope(scope_kind, scope_value)
         ELSE EXISTS (SELECT 1 FROM ai_budgets b WHERE b.id = budget_id
                         AND ai_viewer_manages_scope(b.scope_kind, b.scope_value)) END
);
CREATE POLICY alert_state_read ON ai_alert_state FOR SELECT
    USING (EXISTS (SELECT 1 FROM ai_alert_rules r WHERE r.id = rule_id));
CREATE POLICY alert_events_read ON ai_alert_events FOR SELECT
    USING (EXISTS (SELECT 1 FROM ai_alert_rules r WHERE r.id = rule_id));

CREATE POLICY reprice_audit_admin ON ai_reprice_audit FOR ALL
    USING ((SELECT ai_viewer_role()) = 'admin') WITH CHECK ((SELECT ai_viewer_role()) = 'admin');

GRANT SELECT, INSERT, UPDATE, DELETE ON ai_budgets, ai_alert_rules TO ai_runs_app;
GRANT SELECT, INSERT, UPDATE ON ai_price_overrides, ai_reprice_audit TO ai_runs_app;
GRANT SELECT ON ai_alert_state, ai_alert_events TO ai_runs_app;
GRANT USAGE ON SEQUENCE ai_budgets_id_seq, ai_alert_rules_id_seq, ai_price_overrides_id_seq,
    ai_reprice_audit_id_seq TO ai_runs_app;
GRANT EXECUTE ON FUNCTION ai_budget_scopes() TO ai_runs_app;

-- ----------------------------------------------------------------- every change audited

ALTER TABLE ai_audit DROP CONSTRAINT ai_audit_action_check;
ALTER TABLE ai_audit ADD CONSTRAINT ai_audit_action_check CHECK (action IN (
    'archive', 'delete', 'restore', 'share', 'unshare', 'user_added', 'role_change', 'purge',
    'budget_set', 'budget_removed', 'price_override_added', 'price_override_removed',
    'alert_rule_added', 'alert_rule_changed', 'alert_rule_removed', 'redaction_rule_changed',
    'reprice'));

-- What a settings row says, without its bookkeeping columns.
CREATE FUNCTION ai_audit_fields(j jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_strip_nulls(j - 'created_at' - 'updated_at' - 'created_by' - 'removed_by')
$$;

-- One audit row per changed settings row: the action by table and operation, the subject
-- a readable name of the row, detail its fields (and, on a change, the fields before).
CREATE FUNCTION ai_audit_setting() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    cur jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
    detail jsonb;
    act text;
    subject text;
BEGIN
    detail := public.ai_audit_fields(cur);
    IF TG_OP = 'UPDATE' THEN
        detail := detail || jsonb_build_object('before', (
            SELECT coalesce(jsonb_object_agg(o.key, o.value), '{}')
              FROM jsonb_each(public.ai_audit_fields(to_jsonb(OLD))) o
             WHERE o.value IS DISTINCT FROM cur -> o.key));
    END IF;
    CASE TG_TABLE_NAME
    WHEN 'ai_budgets' THEN
        act := CASE TG_OP WHEN 'DELETE' THEN 'budget_removed' ELSE 'budget_set' END;
        subject := concat_ws(' ', cur ->> 'scope_kind', cur ->> 'scope_value')
                   || ' per ' || (cur ->> 'period');
    WHEN 'ai_price_overrides' THEN
        act := CASE WHEN cur ->> 'removed_at' IS NOT NULL THEN 'price_override_removed'
                    ELSE 'price_override_added' END;
        subject := (cur ->> 'provider') || ' ' || (cur ->> 'model_pattern');
    WHEN 'ai_alert_rules' THEN
        act := CASE TG_OP WHEN 'INSERT' THEN 'alert_rule_added'
                          WHEN 'DELETE' THEN 'alert_rule_removed' ELSE 'alert_rule_changed' END;
        subject := cur ->> 'name';
    WHEN 'ai_redaction_rules' THEN
        act := 'redaction_rule_changed';
        subject := cur ->> 'name';
    WHEN 'ai_reprice_audit' THEN
        act := 'reprice';
        subject := 'reprice ' || (cur ->> 'id');
        detail := jsonb_build_object('rule', cur -> 'rule');
    END CASE;
    INSERT INTO public.ai_audit (actor, action, subject, detail)
    VALUES (public.ai_actor(), act, subject, detail);
    RETURN NULL;
END $$;

CREATE TRIGGER ai_budgets_audit AFTER INSERT OR UPDATE OR DELETE ON ai_budgets
    FOR EACH ROW EXECUTE FUNCTION ai_audit_setting();
CREATE TRIGGER ai_price_overrides_audit AFTER INSERT OR UPDATE ON ai_price_overrides
    FOR EACH ROW EXECUTE FUNCTION ai_audit_setting();
CREATE TRIGGER ai_alert_rules_audit AFTER INSERT OR UPDATE OR DELETE ON ai_alert_rules
    FOR EACH ROW EXECUTE FUNCTION ai_audit_setting();
CREATE TRIGGER ai_redaction_rules_audit AFTER INSERT OR UPDATE OR DELETE ON ai_redaction_rules
    FOR EACH ROW EXECUTE FUNCTION ai_audit_setting();
CREATE TRIGGER ai_reprice_audit_audit AFTER INSERT ON ai_reprice_audit
    FOR EACH ROW EXECUTE FUNCTION ai_audit_setting();
