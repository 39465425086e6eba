-- The runs list's text search, served by an index. `Tracker.list_runs(search=...)` looks for
-- a case-insensitive substring of a run's name, description or any message's content; at
-- 3.66M runs an ILIKE over every run's messages took 51-100 s.
--
-- 1. ai_run_search_text(name, description, messages): the searchable text of a run in one
--    value (fields and messages separated by newlines). IMMUTABLE, so it can be indexed.
-- 2. With the pg_trgm extension available (it ships with the embedded PostgreSQL 18 and
--    with the PostgreSQL 15 service), a trigram GIN index on that text serves ILIKE
--    '%…%'. Without pg_trgm the migration still succeeds and the search stays correct,
--    only slower (a scan): the list's filter works the same either way.

CREATE FUNCTION ai_run_search_text(name text, description text, messages jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(name, '') || E'\n' || coalesce(description, '') || E'\n'
           || coalesce((SELECT string_agg(m ->> 'content', E'\n')
                          FROM jsonb_array_elements(messages) AS m), '')
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXECUTE 'CREATE INDEX ai_runs_search_trgm ON ai_runs USING gin '
                '(ai_run_search_text(name, description, messages) gin_trgm_ops)';
    ELSE
        RAISE NOTICE 'pg_trgm is not available: the runs search works without an index';
    END IF;
END
$$;
