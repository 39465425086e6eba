-- A member's search among the runs shared with them within the list's time range
-- (docs/access.md, "The runs list under row-level security").
--
-- ai_viewer_readable_runs (migration 0025) found a member's shared runs by the primary key
-- with every share as a value, and applied the time range to them only afterwards: the
-- range could not narrow them by index (on ai_runs_created_idx the planner walked every
-- run of the range). So every shared run of all time that matched the search was read
-- and its text tested again, and at 10M tasks a member with 73k shares waited 0.9 s for
-- a common word ("GDPR") where a month of them was wanted.
--
-- 1. A share carries its run's created_at (run_created_at), kept equal by triggers: set
--    when the share is written, moved with the run's created_at. The index
--    ai_run_shares_user_run_created_idx gives the runs shared with a person within a time
--    range, newest first, without reading a run.
-- 2. ai_viewer_readable_runs takes the viewer's shares of the range from that index.
--    Same arguments and contract as before: the range is still a hint, and the caller
--    (list_readable_runs) reads the runs under row-level security with every filter of
--    the list; of the search, only the field-by-field test, since this function has
--    tested the run's joined text in the same snapshot.
-- 3. The audit trigger of shares records changes of who reads what (run, person,
--    permission), not of run_created_at, which the run's own created_at moves.

DROP TRIGGER ai_run_shares_audit ON ai_run_shares;
CREATE TRIGGER ai_run_shares_audit
    AFTER INSERT OR DELETE OR UPDATE OF run_id, user_id, permission ON ai_run_shares
    FOR EACH ROW EXECUTE FUNCTION ai_audit_share();

ALTER TABLE ai_run_shares ADD COLUMN run_created_at timestamptz;
UPDATE ai_run_shares s SET run_created_at = r.created_at FROM ai_runs r WHERE r.id = s.run_id;
ALTER TABLE ai_run_shares ALTER COLUMN run_created_at SET NOT NULL;
CREATE INDEX ai_run_shares_user_run_created_idx
    ON ai_run_shares (user_id, run_created_at DESC, run_id);

CREATE FUNCTION ai_run_share_run_created_at() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    NEW.run_created_at := (SELECT r.created_at FROM public.ai_runs r WHERE r.id = NEW.run_id);
    RETURN NEW;
END $$;

CREATE TRIGGER ai_run_shares_run_created_at
    BEFORE INSERT OR UPDATE OF run_id ON ai_run_shares
    FOR EACH ROW EXECUTE FUNCTION ai_run_share_run_created_at();

-- A run moved in time moves its shares (whoever may change the run: the shares' own
-- policies would hide another person's share from them).
CREATE FUNCTION ai_run_shares_follow_run() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    UPDATE public.ai_run_shares s SET run_created_at = NEW.created_at WHERE s.run_id = NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER ai_runs_shares_follow_created_at AFTER UPDATE OF created_at ON ai_runs
    FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION ai_run_shares_follow_run();

-- As in 0025, but the shares are those of the time range, read from
-- ai_run_shares_user_run_created_idx by the rule of ai_viewer_shared_runs(false).
CREATE OR REPLACE FUNCTION ai_viewer_readable_runs(created_from timestamptz,
                                                   created_to timestamptz,
                                                   search_pattern text, tags text[],
                                                   tags_all boolean)
RETURNS SETOF uuid LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    -- The trigram index's bitmap of a common word covers most heap pages at 10M tasks; with
    -- less memory it turns lossy and every shared run would be read to recheck the search
    -- (at 2M tasks with 4MB: 1.0 s instead of 0.2 s).
    SET work_mem = '128MB' AS $$
DECLARE
    people text[] := ARRAY(SELECT public.ai_viewer_id()
                           UNION ALL SELECT public.ai_viewer_team_members());
    shared uuid[];
    runs_in_range text := '';
    shares_in_range text := '';
    query text := 'SELECT r.id FROM public.ai_runs r WHERE ';
BEGIN
    -- Fixed SQL text chosen by which arguments are given, values bound with USING: each
    -- plan is made for these values (one user's runs, 24k shares of a month, a rare word).
    IF created_from IS NOT NULL THEN
        runs_in_range := runs_in_range || ' AND r.created_at >= $3';
        shares_in_range := shares_in_range || ' AND s.run_created_at >= $3';
    END IF;
    IF created_to IS NOT NULL THEN
        runs_in_range := runs_in_range || ' AND r.created_at < $4';
        shares_in_range := shares_in_range || ' AND s.run_created_at < $4';
    END IF;
    -- $2 is not used here: the range is $3 and $4 in both statements.
    EXECUTE 'SELECT ARRAY(SELECT s.run_id FROM public.ai_run_shares s WHERE s.user_id = $1'
            || shares_in_range || ')'
       INTO shared
      USING nullif(pg_catalog.current_setting('ai_runs.viewer', true), ''), NULL::uuid[],
            created_from, created_to;
    IF coalesce(public.ai_viewer_role() = 'admin', false) THEN
        query := query || 'true';
    ELSE
        query := query || '(r.user_id = ANY ($1)' || runs_in_range || ' OR r.id = ANY ($2))';
    END IF;
    IF search_pattern IS NOT NULL THEN
        query := query
            || ' AND public.ai_run_search_text(r.name, r.description, r.messages) ILIKE $5';
    END IF;
    IF tags IS NOT NULL AND tags_all THEN
        query := query || ' AND r.tags @> $6';
    ELSIF tags IS NOT NULL THEN
        query := query || ' AND r.tags && $6';
    END IF;
    RETURN QUERY EXECUTE query
        USING people, shared, created_from, created_to, search_pattern, tags;
END $$;
