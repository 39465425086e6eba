-- TRUNCATE fires no DELETE trigger. Keep the invariant anyway: truncating ai_tasks zeroes
-- every run's totals, and a truncation of any tracked table is logged for the mirror as a
-- deletion with id '*' (meaning: every row of that table as of this transaction).

CREATE FUNCTION ai_tasks_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ai_runs SET task_count = 0, total_tokens = 0, total_cost = 0
     WHERE task_count <> 0 OR total_tokens <> 0 OR total_cost <> 0;
    RETURN NULL;
END $$;

CREATE TRIGGER ai_tasks_after_truncate AFTER TRUNCATE ON ai_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION ai_tasks_after_truncate();

CREATE FUNCTION ai_log_truncation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ai_sync_deletions (table_name, id) VALUES (TG_TABLE_NAME, '*');
    RETURN NULL;
END $$;

CREATE TRIGGER ai_users_log_truncation AFTER TRUNCATE ON ai_users
    FOR EACH STATEMENT EXECUTE FUNCTION ai_log_truncation();
CREATE TRIGGER ai_runs_log_truncation AFTER TRUNCATE ON ai_runs
    FOR EACH STATEMENT EXECUTE FUNCTION ai_log_truncation();
CREATE TRIGGER ai_tasks_log_truncation AFTER TRUNCATE ON ai_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION ai_log_truncation();
