-- Usage as providers bill it (docs/usage-and-cost.md):
--   tokens_cache_write: the part of tokens_input written to a prompt cache (priced at the
--     provider's cache-write rate; tokens_cached_input stays the part read from it);
--   cost_source: 'provider' (cost reported by the caller or the provider), 'computed'
--     (priced by us from the tokens), NULL (unpriced, or usage unknown);
--   token columns become nullable with no default: NULL means "not reported" (a response
--     without usage), never 0. tokens_total defaults to input + output when either is known.
-- Run totals treat an unknown count as contributing nothing, so they stay exact: the
-- statement-level delta triggers below coalesce a group whose tokens are all unknown to 0.

ALTER TABLE ai_tasks
    ADD COLUMN tokens_cache_write bigint CHECK (tokens_cache_write >= 0),
    ADD COLUMN cost_source text CHECK (cost_source IN ('provider', 'computed')),
    ALTER COLUMN tokens_input DROP NOT NULL,
    ALTER COLUMN tokens_input DROP DEFAULT,
    ALTER COLUMN tokens_output DROP NOT NULL,
    ALTER COLUMN tokens_output DROP DEFAULT,
    ALTER COLUMN tokens_cached_input DROP NOT NULL,
    ALTER COLUMN tokens_cached_input DROP DEFAULT,
    ALTER COLUMN tokens_reasoning DROP NOT NULL,
    ALTER COLUMN tokens_reasoning DROP DEFAULT,
    ALTER COLUMN tokens_total DROP NOT NULL;

-- Existing costs were priced by us or given by callers; we cannot tell which, and every
-- earlier writer priced when no cost was given, so 'computed' is the honest default.
UPDATE ai_tasks SET cost_source = 'computed' WHERE cost IS NOT NULL;

CREATE OR REPLACE FUNCTION ai_tasks_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.tokens_total IS NULL
       AND (NEW.tokens_input IS NOT NULL OR NEW.tokens_output IS NOT NULL) THEN
        NEW.tokens_total := coalesce(NEW.tokens_input, 0) + coalesce(NEW.tokens_output, 0);
    END IF;
    IF NEW.status = 'completed' AND NEW.completed_at IS NULL THEN
        NEW.completed_at := now();
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER ai_tasks_before_insert ON ai_tasks;
CREATE TRIGGER ai_tasks_before_insert BEFORE INSERT ON ai_tasks
    FOR EACH ROW
    WHEN ((NEW.tokens_total IS NULL
           AND (NEW.tokens_input IS NOT NULL OR NEW.tokens_output IS NOT NULL))
          OR (NEW.status = 'completed' AND NEW.completed_at IS NULL))
    EXECUTE FUNCTION ai_tasks_before_insert();

CREATE OR REPLACE FUNCTION ai_tasks_before_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN ('completed', 'failed', 'cancelled')
       AND NEW.status IN ('pending', 'streaming') THEN
        RAISE EXCEPTION 'task % is %: a finished task cannot go back to %',
            OLD.task_id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', COLUMN = 'status';
    END IF;
    NEW.sync_xid := pg_current_xact_id();
    NEW.updated_at := now();
    IF NEW.tokens_total IS NULL
       AND (NEW.tokens_input IS NOT NULL OR NEW.tokens_output IS NOT NULL) THEN
        NEW.tokens_total := coalesce(NEW.tokens_input, 0) + coalesce(NEW.tokens_output, 0);
    END IF;
    IF NEW.status = 'completed' AND OLD.status <> 'completed'
       AND NEW.completed_at IS NOT DISTINCT FROM OLD.completed_at THEN
        NEW.completed_at := now();
    END IF;
    IF NEW.status = 'completed' AND NEW.completed_at IS NULL THEN
        NEW.completed_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION ai_tasks_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    deltas jsonb;
BEGIN
    SELECT jsonb_agg(d) INTO deltas FROM (
        SELECT run_id, count(*) AS n, coalesce(sum(tokens_total), 0) AS tokens,
               coalesce(sum(cost), 0) AS cost,
               max(completed_at) FILTER (WHERE status = 'completed') AS completed
          FROM new_rows GROUP BY run_id
    ) d;
    IF deltas IS NOT NULL THEN
        PERFORM ai_runs_apply_deltas(deltas);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ai_tasks_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    deltas jsonb;
BEGIN
    SELECT jsonb_agg(d) INTO deltas FROM (
        SELECT run_id, -count(*) AS n, -coalesce(sum(tokens_total), 0) AS tokens,
               -coalesce(sum(cost), 0) AS cost, NULL::timestamptz AS completed
          FROM old_rows GROUP BY run_id
    ) d;
    IF deltas IS NOT NULL THEN
        PERFORM ai_runs_apply_deltas(deltas);
    END IF;
    RETURN NULL;
END $$;
