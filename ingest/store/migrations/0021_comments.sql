-- Comments: shared notes on a run and on its tasks (docs/tracking.md, "Shared notes").
-- A comment belongs to a run, and to one of its tasks when task_id is set (the task's public
-- task_id; NULL: a comment on the whole run). Text only, 1..4,000 characters. `mentions`
-- holds the people an `@name` in the text names (ai_users ids, resolved by the writer),
-- each of whom may read the run: a trigger refuses any other (whoever writes).
--
-- Row-level security follows the run, as for tasks and scores (migrations 0010, 0020):
-- whoever may read the run reads its comments and may comment, as themselves; a comment is
-- its author's to edit (edited_at records when) and to delete; an admin may delete any.
-- A delete by a person writes ai_audit ('comment_removed', with the text it removed); the
-- comments that go with a deleted task or a purged run are not audited one by one.
-- No foreign key to ai_tasks, so that TRUNCATE ai_tasks keeps working (migration 0004): a
-- trigger removes the comments of deleted tasks, and truncating ai_tasks removes them all.

CREATE TABLE ai_comments (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id     uuid NOT NULL REFERENCES ai_runs (id) ON DELETE CASCADE,
    task_id    uuid,
    author     text NOT NULL CHECK (char_length(author) BETWEEN 1 AND 1000),
    text       text NOT NULL CHECK (char_length(btrim(text)) >= 1 AND char_length(text) <= 4000),
    mentions   text[] NOT NULL DEFAULT '{}' CHECK (cardinality(mentions) <= 50),
    created_at timestamptz NOT NULL DEFAULT now(),
    edited_at  timestamptz
);
CREATE INDEX ai_comments_run_idx ON ai_comments (run_id, created_at);
CREATE INDEX ai_comments_task_idx ON ai_comments (task_id) WHERE task_id IS NOT NULL;

-- May person `person` (an ai_users id) read run `run`? The rule of runs_read (migration
-- 0010) for someone other than the viewer: an admin, the run's owner, a manager of the
-- owner's team, or someone it is shared with.
CREATE FUNCTION ai_person_may_read_run(person text, run uuid) RETURNS boolean LANGUAGE sql
    STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.ai_runs r JOIN public.ai_users p ON p.id = person
         WHERE r.id = run
           AND (p.role = 'admin' OR r.user_id = p.id
                OR (p.role = 'manager' AND EXISTS (
                        SELECT 1 FROM public.ai_users o WHERE o.id = r.user_id AND o.team = p.team))
                OR EXISTS (SELECT 1 FROM public.ai_run_shares s
                            WHERE s.run_id = r.id AND s.user_id = p.id)))
$$;

-- An edit changes text and mentions only; a comment's task is one of its run's; everyone it mentions may read the run.
CREATE FUNCTION ai_comments_check() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    bad text;
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.run_id, NEW.task_id, NEW.author, NEW.created_at)
            IS DISTINCT FROM (OLD.run_id, OLD.task_id, OLD.author, OLD.created_at) THEN
        RAISE EXCEPTION 'an edit changes a comment''s text (and mentions) only'
              USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.task_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM public.ai_tasks t WHERE t.task_id = NEW.task_id AND t.run_id = NEW.run_id)
    THEN
        RAISE EXCEPTION 'task % is not a task of run %', NEW.task_id, NEW.run_id
              USING ERRCODE = 'check_violation';
    END IF;
    SELECT string_agg(m, ', ') INTO bad FROM unnest(NEW.mentions) m
     WHERE NOT public.ai_person_may_read_run(m, NEW.run_id);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'mentioned people cannot read run %: %', NEW.run_id, bad
              USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER ai_comments_check BEFORE INSERT OR UPDATE ON ai_comments
    FOR EACH ROW EXECUTE FUNCTION ai_comments_check();

-- ----------------------------------------------------------------- audit of deletes

ALTER TABLE ai_audit DROP CONSTRAINT ai_audit_action_check;
ALTER TABLE ai_audit ADD CONSTRAINT ai_audit_action_check CHECK (action IN (
    'archive', 'delete', 'restore', 'share', 'unshare', 'user_added', 'role_change', 'purge',
    'budget_set', 'budget_removed', 'price_override_added', 'price_override_removed',
    'alert_rule_added', 'alert_rule_changed', 'alert_rule_removed', 'redaction_rule_changed',
    'reprice', 'comment_removed'));

-- One audit row per comment a statement deleted itself (trigger depth 1); the comments of a
-- deleted task or run go with it (depth > 1: a trigger or a foreign key's cascade).
CREATE FUNCTION ai_audit_comment_removed() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF pg_catalog.pg_trigger_depth() = 1 THEN
        INSERT INTO public.ai_audit (actor, action, run_id, subject, detail)
        SELECT public.ai_actor(), 'comment_removed', o.run_id, o.author,
               jsonb_strip_nulls(jsonb_build_object(
                   'comment_id', o.id, 'task_id', o.task_id, 'text', o.text,
                   'created_at', o.created_at))
          FROM old_rows o ORDER BY o.id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ai_comments_audit AFTER DELETE ON ai_comments
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ai_audit_comment_removed();

-- ----------------------------------------------------------------- comments follow tasks

CREATE FUNCTION ai_comments_forget_tasks() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    DELETE FROM public.ai_comments c USING old_rows o
     WHERE c.task_id = o.task_id AND c.run_id = o.run_id;
    RETURN NULL;
END $$;

CREATE TRIGGER ai_tasks_forget_comments AFTER DELETE ON ai_tasks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ai_comments_forget_tasks();

CREATE FUNCTION ai_comments_forget_all_tasks() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    DELETE FROM public.ai_comments WHERE task_id IS NOT NULL;
    RETURN NULL;
END $$;

CREATE TRIGGER ai_tasks_truncate_comments AFTER TRUNCATE ON ai_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION ai_comments_forget_all_tasks();

-- ----------------------------------------------------------------- row-level security

ALTER TABLE ai_comments ENABLE ROW LEVEL SECURITY;

CREATE POLICY comments_read ON ai_comments FOR SELECT USING (
    EXISTS (SELECT 1 FROM ai_runs r WHERE r.id = ai_comments.run_id)
);
CREATE POLICY comments_insert ON ai_comments FOR INSERT WITH CHECK (
    EXISTS (SELECT 1 FROM ai_runs r WHERE r.id = ai_comments.run_id)
    AND author = (SELECT ai_viewer_id())
);
CREATE POLICY comments_update ON ai_comments FOR UPDATE USING (
    author = (SELECT ai_viewer_id())
    AND EXISTS (SELECT 1 FROM ai_runs r WHERE r.id = ai_comments.run_id)
) WITH CHECK (
    author = (SELECT ai_viewer_id())
);
CREATE POLICY comments_delete ON ai_comments FOR DELETE USING (
    (SELECT ai_viewer_role()) = 'admin'
    OR (author = (SELECT ai_viewer_id())
        AND EXISTS (SELECT 1 FROM ai_runs r WHERE r.id = ai_comments.run_id))
);

GRANT SELECT, INSERT, UPDATE, DELETE ON ai_comments TO ai_runs_app;
