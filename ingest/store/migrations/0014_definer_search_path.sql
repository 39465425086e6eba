-- SECURITY DEFINER functions cannot be fooled by temporary tables (docs/access.md).
--
-- Every SECURITY DEFINER function ran with `search_path FROM CURRENT` ("$user", public).
-- A search path that does not name pg_temp searches it FIRST, so a caller with the TEMP
-- privilege (every role, through PUBLIC, by default) could shadow the tables these
-- functions read and write with temporary tables of the same name: a temporary ai_users
-- made a non-person an admin in the policies, a temporary ai_audit swallowed audit rows,
-- a temporary ai_sync_deletions hid deletions from the mirror, a temporary ai_runs let a
-- task in without moving its run's totals.
--
-- 1. Each one is replaced with the same body, its tables and functions schema-qualified,
--    and `SET search_path = pg_catalog, public, pg_temp` (temporary schema last).
--    tests/test_definer_functions.py checks that every SECURITY DEFINER function of the
--    database pins a search path ending in pg_temp, so a new one cannot forget it.
-- 2. The application role needs no temporary tables: TEMPORARY on this database is
--    revoked from PUBLIC (and so from ai_runs_app) when the migrating role may (it owns
--    the database or is a superuser), and kept by the migrating role, whose bulk path
--    stages duplicates in a temporary table (ingest/transfer/bulk.py).

-- ----------------------------------------------------------------- the viewer

CREATE OR REPLACE FUNCTION ai_viewer_id() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT u.id FROM public.ai_users u
     WHERE u.id = nullif(pg_catalog.current_setting('ai_runs.viewer', true), '')
$$;

CREATE OR REPLACE FUNCTION ai_viewer_role() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT u.role FROM public.ai_users u
     WHERE u.id = nullif(pg_catalog.current_setting('ai_runs.viewer', true), '')
$$;

CREATE OR REPLACE FUNCTION ai_viewer_team_members() RETURNS SETOF text LANGUAGE sql STABLE
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT m.id FROM public.ai_users v JOIN public.ai_users m ON m.team = v.team
     WHERE v.id = nullif(pg_catalog.current_setting('ai_runs.viewer', true), '')
       AND v.role = 'manager'
$$;

CREATE OR REPLACE FUNCTION ai_viewer_shared_runs(for_edit boolean) RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT s.run_id FROM public.ai_run_shares s
     WHERE s.user_id = nullif(pg_catalog.current_setting('ai_runs.viewer', true), '')
       AND (s.permission = 'edit' OR NOT for_edit)
$$;

CREATE OR REPLACE FUNCTION ai_viewer_may_edit_run(run uuid) RETURNS boolean LANGUAGE sql STABLE
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT coalesce(public.ai_viewer_role() = 'admin', false)
        OR EXISTS (SELECT 1 FROM public.ai_runs r
                    WHERE r.id = run AND r.user_id = public.ai_viewer_id())
        OR run IN (SELECT public.ai_viewer_shared_runs(true))
$$;

CREATE OR REPLACE FUNCTION ai_viewer_owns_run(run uuid) RETURNS boolean LANGUAGE sql STABLE
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT coalesce(public.ai_viewer_role() = 'admin', false)
        OR EXISTS (SELECT 1 FROM public.ai_runs r
                    WHERE r.id = run AND r.user_id = public.ai_viewer_id())
$$;

CREATE OR REPLACE FUNCTION ai_access_version() RETURNS text LANGUAGE sql STABLE
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT concat_ws(':', (SELECT coalesce(max(a.id), 0) FROM public.ai_audit a),
                          (SELECT coalesce(max(u.sync_xid)::text, '0') FROM public.ai_users u),
                          (SELECT count(*) FROM public.ai_users))
$$;

-- ----------------------------------------------------------------- totals and change capture

CREATE OR REPLACE FUNCTION ai_runs_apply_deltas(deltas jsonb) RETURNS void LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM 1 FROM public.ai_runs
     WHERE id IN (SELECT (d ->> 'run_id')::uuid FROM jsonb_array_elements(deltas) d)
     ORDER BY id FOR NO KEY UPDATE;
    UPDATE public.ai_runs r
       SET task_count      = r.task_count + d.n,
           total_tokens    = r.total_tokens + d.tokens,
           total_cost      = r.total_cost + d.cost,
           last_message_at = greatest(r.last_message_at, d.completed)
      FROM jsonb_to_recordset(deltas)
           AS d (run_id uuid, n integer, tokens bigint, cost numeric, completed timestamptz)
     WHERE r.id = d.run_id;
END $$;

CREATE OR REPLACE FUNCTION ai_log_deletions() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO public.ai_sync_deletions (table_name, id)
    SELECT TG_TABLE_NAME, old_rows.id::text FROM old_rows;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ai_log_truncation() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO public.ai_sync_deletions (table_name, id) VALUES (TG_TABLE_NAME, '*');
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ai_tasks_after_truncate() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    UPDATE public.ai_runs SET task_count = 0, total_tokens = 0, total_cost = 0
     WHERE task_count <> 0 OR total_tokens <> 0 OR total_cost <> 0;
    RETURN NULL;
END $$;

-- ----------------------------------------------------------------- audit

CREATE OR REPLACE FUNCTION ai_audit_run_status() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO public.ai_audit (actor, action, run_id, subject, detail)
    VALUES (public.ai_actor(),
            CASE NEW.status WHEN 'deleted' THEN 'delete' WHEN 'archived' THEN 'archive'
                            ELSE 'restore' END,
            NEW.id, NEW.user_id, jsonb_build_object('from', OLD.status, 'to', NEW.status));
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ai_audit_run_purge() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    n bigint;
    ids jsonb;
    one uuid;
BEGIN
    SELECT count(*), (SELECT jsonb_agg(id) FROM (SELECT id FROM old_rows LIMIT 1000) s),
           min(id::text)::uuid
      INTO n, ids, one FROM old_rows;
    IF n > 0 THEN
        INSERT INTO public.ai_audit (actor, action, run_id, detail)
        VALUES (public.ai_actor(), 'purge', CASE WHEN n = 1 THEN one END,
                jsonb_build_object('runs', n, 'run_ids', ids));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ai_audit_share() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO public.ai_audit (actor, action, run_id, subject, detail)
        VALUES (public.ai_actor(), 'unshare', OLD.run_id, OLD.user_id,
                jsonb_build_object('permission', OLD.permission));
    ELSE
        INSERT INTO public.ai_audit (actor, action, run_id, subject, detail)
        VALUES (public.ai_actor(), 'share', NEW.run_id, NEW.user_id,
                jsonb_build_object('permission', NEW.permission));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ai_audit_user_role() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.ai_audit (actor, action, subject, detail)
        VALUES (public.ai_actor(), 'user_added', NEW.id,
                jsonb_build_object('role', NEW.role, 'team', NEW.team));
    ELSE
        INSERT INTO public.ai_audit (actor, action, subject, detail)
        VALUES (public.ai_actor(), 'role_change', NEW.id,
                jsonb_build_object('from', OLD.role, 'to', NEW.role));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ai_tasks_forget_redactions() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM public.ai_task_redactions;
    ELSIF EXISTS (SELECT 1 FROM public.ai_task_redactions) THEN
        DELETE FROM public.ai_task_redactions r USING old_rows o WHERE r.task_ref = o.id;
    END IF;
    RETURN NULL;
END $$;

-- ----------------------------------------------------------------- no temporary tables

DO $$
DECLARE
    may_revoke boolean;
BEGIN
    SELECT r.rolsuper OR pg_has_role(current_user, d.datdba, 'MEMBER')
      INTO may_revoke
      FROM pg_database d, pg_roles r
     WHERE d.datname = current_database() AND r.rolname = current_user;
    IF NOT may_revoke THEN
        RAISE NOTICE 'TEMPORARY on database % stays granted to PUBLIC: only its owner may '
                     'revoke it (docs/access.md)', current_database();
        RETURN;
    END IF;
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC, ai_runs_app',
                   current_database());
    IF NOT has_database_privilege(current_user, current_database(), 'TEMPORARY') THEN
        EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO %I', current_database(), current_user);
    END IF;
END $$;
