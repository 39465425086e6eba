-- Triggers that keep every derived number exact (SPEC section 3):
--   updated_at, completed_at, message_count, tokens_total default,
--   task_count / total_tokens / total_cost / last_message_at of a run.
-- Run totals are maintained by *statement-level* triggers over transition tables, as
-- deltas (new rows minus old rows, grouped by run). A COPY of a million tasks updates each
-- run once, not once per task. `x = x + delta` under the row lock is exact with concurrent
-- writers at READ COMMITTED, and runs are locked in id order so two multi-run statements
-- cannot deadlock each other. No division, no lookup that can miss: a valid row never fails.

CREATE FUNCTION ai_users_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER ai_users_touch BEFORE UPDATE ON ai_users
    FOR EACH ROW EXECUTE FUNCTION ai_users_touch();

CREATE FUNCTION ai_runs_before_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.message_count := jsonb_array_length(NEW.messages);
    IF TG_OP = 'INSERT' THEN
        -- A new run has no tasks yet: its totals start at zero, whatever the writer said.
        NEW.task_count := 0;
        NEW.total_tokens := 0;
        NEW.total_cost := 0;
        IF NEW.message_count > 0 THEN
            NEW.last_message_at := coalesce(NEW.last_message_at, NEW.created_at);
        END IF;
        RETURN NEW;
    END IF;
    NEW.updated_at := now();
    IF pg_trigger_depth() < 2 THEN
        -- Written by an application, not by the task triggers: totals are not its to set.
        NEW.task_count := OLD.task_count;
        NEW.total_tokens := OLD.total_tokens;
        NEW.total_cost := OLD.total_cost;
        IF NEW.message_count > OLD.message_count THEN
            NEW.last_message_at := greatest(OLD.last_message_at, now());
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER ai_runs_before_write BEFORE INSERT OR UPDATE ON ai_runs
    FOR EACH ROW EXECUTE FUNCTION ai_runs_before_write();

CREATE FUNCTION ai_tasks_before_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.tokens_total := coalesce(NEW.tokens_total, NEW.tokens_input + NEW.tokens_output);
    IF TG_OP = 'UPDATE' THEN
        IF OLD.status IN ('completed', 'failed', 'cancelled')
           AND NEW.status IN ('pending', 'streaming') THEN
            RAISE EXCEPTION 'task % is %: a finished task cannot go back to %',
                OLD.task_id, OLD.status, NEW.status
                USING ERRCODE = 'check_violation', COLUMN = 'status';
        END IF;
        NEW.updated_at := now();
        IF NEW.status = 'completed' AND OLD.status <> 'completed'
           AND NEW.completed_at IS NOT DISTINCT FROM OLD.completed_at THEN
            NEW.completed_at := now();
        END IF;
    END IF;
    IF NEW.status = 'completed' AND NEW.completed_at IS NULL THEN
        NEW.completed_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER ai_tasks_before_write BEFORE INSERT OR UPDATE ON ai_tasks
    FOR EACH ROW EXECUTE FUNCTION ai_tasks_before_write();

-- Lock the runs a statement touched, in id order, then add the per-run deltas.
CREATE FUNCTION ai_runs_apply_deltas(deltas jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM ai_runs
     WHERE id IN (SELECT (d ->> 'run_id')::uuid FROM jsonb_array_elements(deltas) d)
     ORDER BY id FOR NO KEY UPDATE;
    UPDATE ai_runs r
       SET task_count      = r.task_count + d.n,
           total_tokens    = r.total_tokens + d.tokens,
           total_cost      = r.total_cost + d.cost,
           last_message_at = greatest(r.last_message_at, d.completed)
      FROM jsonb_to_recordset(deltas)
           AS d (run_id uuid, n integer, tokens bigint, cost numeric, completed timestamptz)
     WHERE r.id = d.run_id;
END $$;

CREATE FUNCTION ai_tasks_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    deltas jsonb;
BEGIN
    SELECT jsonb_agg(d) INTO deltas FROM (
        SELECT run_id, count(*) AS n, sum(tokens_total) AS tokens,
               coalesce(sum(cost), 0) AS cost,
               max(completed_at) FILTER (WHERE status = 'completed') AS completed
          FROM new_rows GROUP BY run_id
    ) d;
    IF deltas IS NOT NULL THEN
        PERFORM ai_runs_apply_deltas(deltas);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION ai_tasks_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    deltas jsonb;
BEGIN
    SELECT jsonb_agg(d) INTO deltas FROM (
        SELECT coalesce(a.run_id, c.run_id) AS run_id, coalesce(a.n, 0) AS n,
               coalesce(a.tokens, 0) AS tokens, coalesce(a.cost, 0) AS cost, c.completed
          FROM (
                SELECT run_id, sum(n) AS n, sum(tokens) AS tokens, sum(cost) AS cost
                  FROM (SELECT run_id, 1 AS n, tokens_total AS tokens,
                               coalesce(cost, 0) AS cost FROM new_rows
                        UNION ALL
                        SELECT run_id, -1, -tokens_total, -coalesce(cost, 0) FROM old_rows) u
                 GROUP BY run_id
               ) a
          FULL JOIN (
                SELECT n.run_id, max(n.completed_at) AS completed
                  FROM new_rows n JOIN old_rows o ON o.id = n.id
                 WHERE n.status = 'completed' AND o.status <> 'completed'
                 GROUP BY n.run_id
               ) c ON c.run_id = a.run_id
         WHERE a.n <> 0 OR a.tokens <> 0 OR a.cost <> 0 OR c.completed IS NOT NULL
    ) d;
    IF deltas IS NOT NULL THEN
        PERFORM ai_runs_apply_deltas(deltas);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION ai_tasks_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    deltas jsonb;
BEGIN
    SELECT jsonb_agg(d) INTO deltas FROM (
        SELECT run_id, -count(*) AS n, -sum(tokens_total) AS tokens,
               -coalesce(sum(cost), 0) AS cost, NULL::timestamptz AS completed
          FROM old_rows GROUP BY run_id
    ) d;
    IF deltas IS NOT NULL THEN
        PERFORM ai_runs_apply_deltas(deltas);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ai_tasks_after_insert AFTER INSERT ON ai_tasks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ai_tasks_after_insert();

CREATE TRIGGER ai_tasks_after_update AFTER UPDATE ON ai_tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ai_tasks_after_update();

CREATE TRIGGER ai_tasks_after_delete AFTER DELETE ON ai_tasks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ai_tasks_after_delete();
