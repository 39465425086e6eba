-- A viewer's runs list and search, found by index among the runs they may read
-- (docs/access.md, "The runs list under row-level security").
--
-- Under row-level security Postgres may use an index for a condition only when its
-- operator is leakproof or the policy has already been tested on the row. ILIKE, `&&` and
-- `@>` are not leakproof, so for a member the trigram index of the search (migration 0011)
-- and the GIN index of the tags could not be used at all: the policy and then the search
-- were tested on every run of the time range (at 3.66M runs, a member's search took 25 s,
-- one matching nothing did not finish).
--
-- ai_viewer_readable_runs returns the ids of the runs the viewer may read, by the rule of
-- the runs_read policy (migration 0010: every run for an admin; else their own, their
-- team's when a manager, and those shared with them), that match the search pattern and
-- the tags: every such run of the time range, and maybe some outside it (the range is a
-- hint that narrows the people's runs, where it is part of their index; the caller
-- applies it to every row). It runs as the owner, so the planner combines the indexes (the
-- viewer's people by ai_runs_user_created_idx, their shares by the primary key, the
-- trigram and tag indexes) before reading a row. A NULL argument does not filter. It
-- returns only ids of runs the viewer may read, and the caller (Tracker.list_runs) still
-- reads the rows under row-level security and applies every filter again, so it can
-- narrow what a viewer reads, never widen it.

CREATE FUNCTION ai_viewer_readable_runs(created_from timestamptz, created_to timestamptz,
                                        search_pattern text, tags text[], tags_all boolean)
RETURNS SETOF uuid LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    -- The trigram index's bitmap of a common word covers most heap pages at 10M tasks; with
    -- less memory it turns lossy and every shared run would be read to recheck the search
    -- (at 2M tasks with 4MB: 1.0 s instead of 0.2 s).
    SET work_mem = '128MB' AS $$
DECLARE
    people text[] := ARRAY(SELECT public.ai_viewer_id()
                           UNION ALL SELECT public.ai_viewer_team_members());
    shared uuid[] := ARRAY(SELECT public.ai_viewer_shared_runs(false));
    query text := 'SELECT r.id FROM public.ai_runs r WHERE ';
BEGIN
    -- Fixed SQL text chosen by which arguments are given, values bound with USING: the
    -- plan is made for these values (one user's runs, 73k shares, a rare word). The range
    -- narrows the people's runs only, where it is part of their index: on the shares it
    -- made the planner walk every run of the range in ai_runs_created_idx (the caller
    -- applies the range to every row anyway).
    IF coalesce(public.ai_viewer_role() = 'admin', false) THEN
        query := query || 'true';
    ELSE
        query := query || '(r.user_id = ANY ($1)';
        IF created_from IS NOT NULL THEN
            query := query || ' AND r.created_at >= $3';
        END IF;
        IF created_to IS NOT NULL THEN
            query := query || ' AND r.created_at < $4';
        END IF;
        query := query || ' OR r.id = ANY ($2))';
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
