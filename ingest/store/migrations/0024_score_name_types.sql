-- One data type per score name (docs/quality.md, "One type per name"). A name such as
-- `thumbs` is boolean everywhere once first written as boolean: a later numeric `thumbs`
-- would make its mean (a share of thumbs up) meaningless in every rollup, which groups by
-- name across teams and evaluators. So the scope is the name, globally.
--
-- ai_score_names records the type of each name used; a trigger on ai_scores adds a new
-- name and refuses a write whose data_type differs from the one recorded, with SQLSTATE
-- check_violation, constraint `ai_scores_name_data_type`, and the recorded type as the
-- error's DETAIL (ingest/tracking/scores.py turns it into a ValidationError naming
-- data_type). Concurrent first writes of a new name with two types: the second waits on
-- the first's primary key entry and then sees its type. A name keeps its type when its
-- last score is removed (its rollup history would otherwise change meaning).

CREATE TABLE ai_score_names (
    name       text PRIMARY KEY,
    data_type  text NOT NULL CHECK (data_type IN ('numeric', 'boolean', 'categorical')),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Names already used: the type of their oldest score (earlier data had no such rule).
INSERT INTO ai_score_names (name, data_type, created_at)
SELECT DISTINCT ON (name) name, data_type, created_at
  FROM ai_scores
 ORDER BY name, created_at, id;

-- Nobody reads or writes it but the trigger (which runs as the owner).
ALTER TABLE ai_score_names ENABLE ROW LEVEL SECURITY;

CREATE FUNCTION ai_scores_check_name_type() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    used text;
BEGIN
    INSERT INTO public.ai_score_names (name, data_type) VALUES (NEW.name, NEW.data_type)
    ON CONFLICT (name) DO NOTHING;
    SELECT n.data_type INTO used FROM public.ai_score_names n WHERE n.name = NEW.name;
    IF used IS DISTINCT FROM NEW.data_type THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'ai_scores_name_data_type',
            MESSAGE = format('score name %L is %s, not %s', NEW.name, used, NEW.data_type),
            DETAIL = used;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER ai_scores_name_type BEFORE INSERT OR UPDATE OF name, data_type ON ai_scores
    FOR EACH ROW EXECUTE FUNCTION ai_scores_check_name_type();
