-- Evaluators (docs/quality.md): what each evaluator version declares its scores to be, the
-- errors of evaluators (a judge answer that cannot be read, a provider outage), and where
-- an online evaluator worker has got to.
--
-- ai_evaluators: one row per (evaluator, evaluator_version), written when the evaluator
-- first runs. A score naming a declared evaluator version must have its data_type and lie
-- in [min_value, max_value] (NULL: no bound), whichever way it is written (the Tracker,
-- POST /v1/scores, the batch): the trigger below raises check_violation naming the column.
CREATE TABLE ai_evaluators (
    evaluator         text NOT NULL CHECK (char_length(evaluator) BETWEEN 1 AND 200),
    evaluator_version text NOT NULL CHECK (char_length(evaluator_version) BETWEEN 1 AND 100),
    name              text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}$'),
    data_type         text NOT NULL CHECK (data_type IN ('numeric', 'boolean', 'categorical')),
    min_value         double precision,
    max_value         double precision,
    settings          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (evaluator, evaluator_version),
    CHECK (min_value IS NULL OR max_value IS NULL OR min_value <= max_value)
);

ALTER TABLE ai_evaluators ENABLE ROW LEVEL SECURITY;
CREATE POLICY evaluators_read ON ai_evaluators FOR SELECT USING (true);
GRANT SELECT ON ai_evaluators TO ai_runs_app;

CREATE FUNCTION ai_scores_check_range() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    declared public.ai_evaluators;
BEGIN
    IF NEW.evaluator = '' THEN
        RETURN NEW;
    END IF;
    SELECT * INTO declared FROM public.ai_evaluators
     WHERE evaluator = NEW.evaluator AND evaluator_version = NEW.evaluator_version;
    IF NOT FOUND THEN
        RETURN NEW;
    END IF;
    IF NEW.data_type <> declared.data_type THEN
        RAISE EXCEPTION 'evaluator % version % gives % scores, got %', NEW.evaluator,
            NEW.evaluator_version, declared.data_type, NEW.data_type
            USING ERRCODE = 'check_violation', COLUMN = 'data_type';
    END IF;
    IF NEW.value < declared.min_value OR NEW.value > declared.max_value THEN
        RAISE EXCEPTION 'evaluator % version % gives values in [%, %], got %', NEW.evaluator,
            NEW.evaluator_version, coalesce(declared.min_value::text, '-inf'),
            coalesce(declared.max_value::text, 'inf'), NEW.value
            USING ERRCODE = 'check_violation', COLUMN = 'value';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER ai_scores_check_range BEFORE INSERT OR UPDATE ON ai_scores
    FOR EACH ROW EXECUTE FUNCTION ai_scores_check_range();

-- ai_eval_errors: an evaluator that could not score a task. kind 'answer': the judge's
-- answer could not be read or was out of range (not retried: the same prompt gives the
-- same kind of answer); kind 'provider': the provider failed after the bounded retries
-- (a later pass tries the task again and removes the error once it scores). One row per
-- (task, evaluator, evaluator_version); attempts counts every call made for it.
CREATE TABLE ai_eval_errors (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id            uuid NOT NULL REFERENCES ai_runs (id) ON DELETE CASCADE,
    task_id           uuid NOT NULL,
    evaluator         text NOT NULL CHECK (char_length(evaluator) BETWEEN 1 AND 200),
    evaluator_version text NOT NULL CHECK (char_length(evaluator_version) BETWEEN 1 AND 100),
    kind              text NOT NULL CHECK (kind IN ('answer', 'provider')),
    error             text NOT NULL CHECK (char_length(error) <= 4000),
    attempts          integer NOT NULL CHECK (attempts >= 1),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (task_id, evaluator, evaluator_version)
);
CREATE INDEX ai_eval_errors_run_idx ON ai_eval_errors (run_id);

-- As scores: whoever may read the run reads its evaluator errors; only the owner writes.
ALTER TABLE ai_eval_errors ENABLE ROW LEVEL SECURITY;
CREATE POLICY eval_errors_read ON ai_eval_errors FOR SELECT USING (
    EXISTS (SELECT 1 FROM ai_runs r WHERE r.id = ai_eval_errors.run_id)
);
GRANT SELECT ON ai_eval_errors TO ai_runs_app;

-- The errors of deleted tasks go with them, as their scores do (migration 0020).
CREATE FUNCTION ai_eval_errors_forget_tasks() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    DELETE FROM public.ai_eval_errors e USING old_rows o
     WHERE e.task_id = o.task_id AND e.run_id = o.run_id;
    RETURN NULL;
END $$;

CREATE TRIGGER ai_tasks_forget_eval_errors AFTER DELETE ON ai_tasks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ai_eval_errors_forget_tasks();

CREATE FUNCTION ai_eval_errors_forget_all_tasks() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    DELETE FROM public.ai_eval_errors;
    RETURN NULL;
END $$;

CREATE TRIGGER ai_tasks_truncate_eval_errors AFTER TRUNCATE ON ai_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION ai_eval_errors_forget_all_tasks();

-- ai_eval_cursors: where an online evaluator worker has got to, per worker (its evaluator
-- and version). It reads finished tasks in (sync_xid, id) order below its snapshot's xmin
-- (every transaction below it has ended, so no row can still appear there) and stores the
-- last position in the same transaction as the scores of the tasks up to it: a restart
-- goes on from there, nothing lost and nothing read twice. Owner only.
CREATE TABLE ai_eval_cursors (
    worker     text PRIMARY KEY CHECK (char_length(worker) BETWEEN 1 AND 320),
    after_xid  xid8 NOT NULL,
    after_id   uuid,
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE ai_eval_cursors ENABLE ROW LEVEL SECURITY;
