-- Cheaper writes, same exactness. A bulk load inserts runs, then their tasks, and the
-- totals trigger then rewrites every run it touched. Measured on a 200k-task load, the
-- per-row PL/pgSQL triggers and that rewrite made the bulk path 0.56x a plain COPY.
--
-- 1. message_count becomes a generated column: exact by construction, no trigger.
-- 2. One BEFORE trigger per table and event, and the insert triggers only fire when there
--    is something to fill in (a WHEN clause is evaluated without entering PL/pgSQL).
-- 3. ai_runs keeps free room on each page and big jsonb out of line, so the totals rewrite
--    is a HOT update of a small tuple (no index touched, the toasted messages not copied).
-- 4. A writer of history may set `ai_runs.keep_updated_at = on` (SET LOCAL, any role): the
--    totals trigger then keeps a run's updated_at instead of stamping now(). Totals and
--    sync_xid are still maintained; only the timestamp of an import is not an edit.

ALTER TABLE ai_runs DROP COLUMN message_count;
ALTER TABLE ai_runs
    ADD COLUMN message_count integer GENERATED ALWAYS AS (jsonb_array_length(messages)) STORED;
ALTER TABLE ai_runs SET (fillfactor = 80, toast_tuple_target = 256);

DROP TRIGGER ai_runs_before_write ON ai_runs;
DROP TRIGGER ai_runs_stamp ON ai_runs;
DROP TRIGGER ai_tasks_before_write ON ai_tasks;
DROP TRIGGER ai_tasks_stamp ON ai_tasks;
DROP FUNCTION ai_runs_before_write();
DROP FUNCTION ai_tasks_before_write();

CREATE FUNCTION ai_runs_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A new run has no tasks yet: its totals start at zero, whatever the writer said.
    NEW.task_count := 0;
    NEW.total_tokens := 0;
    NEW.total_cost := 0;
    IF NEW.last_message_at IS NULL AND NEW.messages <> '[]'::jsonb THEN
        NEW.last_message_at := NEW.created_at;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER ai_runs_before_insert BEFORE INSERT ON ai_runs
    FOR EACH ROW
    WHEN (NEW.task_count <> 0 OR NEW.total_tokens <> 0 OR NEW.total_cost <> 0
          OR (NEW.last_message_at IS NULL AND NEW.messages <> '[]'::jsonb))
    EXECUTE FUNCTION ai_runs_before_insert();

CREATE FUNCTION ai_runs_before_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.sync_xid := pg_current_xact_id();
    IF pg_trigger_depth() < 2 THEN
        -- Written by an application, not by the task triggers: totals are not its to set.
        NEW.task_count := OLD.task_count;
        NEW.total_tokens := OLD.total_tokens;
        NEW.total_cost := OLD.total_cost;
        NEW.updated_at := now();
        IF jsonb_array_length(NEW.messages) > jsonb_array_length(OLD.messages) THEN
            NEW.last_message_at := greatest(OLD.last_message_at, now());
        END IF;
    ELSIF current_setting('ai_runs.keep_updated_at', true) = 'on' THEN
        NEW.updated_at := OLD.updated_at;
    ELSE
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER ai_runs_before_update BEFORE UPDATE ON ai_runs
    FOR EACH ROW EXECUTE FUNCTION ai_runs_before_update();

CREATE FUNCTION ai_tasks_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.tokens_total := coalesce(NEW.tokens_total, NEW.tokens_input + NEW.tokens_output);
    IF NEW.status = 'completed' AND NEW.completed_at IS NULL THEN
        NEW.completed_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER ai_tasks_before_insert BEFORE INSERT ON ai_tasks
    FOR EACH ROW
    WHEN (NEW.tokens_total IS NULL OR (NEW.status = 'completed' AND NEW.completed_at IS NULL))
    EXECUTE FUNCTION ai_tasks_before_insert();

CREATE FUNCTION ai_tasks_before_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN ('completed', 'failed', 'cancelled')
       AND NEW.status IN ('pending', 'streaming') THEN
        RAISE EXCEPTION 'task % is %: a finished task cannot go back to %',
            OLD.task_id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', COLUMN = 'status';
    END IF;
    NEW.sync_xid := pg_current_xact_id();
    NEW.updated_at := now();
    NEW.tokens_total := coalesce(NEW.tokens_total, NEW.tokens_input + NEW.tokens_output);
    IF NEW.status = 'completed' AND OLD.status <> 'completed'
       AND NEW.completed_at IS NOT DISTINCT FROM OLD.completed_at THEN
        NEW.completed_at := now();
    END IF;
    IF NEW.status = 'completed' AND NEW.completed_at IS NULL THEN
        NEW.completed_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER ai_tasks_before_update BEFORE UPDATE ON ai_tasks
    FOR EACH ROW EXECUTE FUNCTION ai_tasks_before_update();
