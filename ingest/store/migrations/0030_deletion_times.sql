-- The deletion log carries each logged row's created_at, so the mirror can find its copies
-- of deleted and rewritten tasks by time before it compares ids (docs/scale.md, "The
-- incremental sync of scattered changes").
--
-- The mirror keeps its tasks ordered by created_at. To remove its copies of the tasks a
-- sync rewrites or deletes, it matched their ids against the 10M-row id column (16 random
-- bytes a row, 80-270 ms at 10M tasks). The created_at column is sorted and compresses well,
-- so matching on it first is cheaper and leaves the ids of a few rows to compare; but the
-- mirror's copy has the created_at the row had when it was last synced:
--
-- 1. A deleted row: the log now records its created_at (ai_log_deletions, every logged
--    table: all four have the column).
-- 2. A task or run whose created_at moved: an update that changes it logs the row with its
--    old created_at (ai_log_moves). The row still exists, so the mirror does not treat it
--    as deleted (postgres/extract.sql, extract_deletions); it only learns the old time.
-- 3. Rows logged before this migration have no created_at (NULL), and a move before it was
--    not logged at all: the mirror compares ids over its whole table on its first sync
--    after this migration, and whenever a logged row has no created_at
--    (queries/mirror/sync.py, `apply_changes`).

ALTER TABLE ai_sync_deletions ADD COLUMN created_at timestamptz;

CREATE OR REPLACE FUNCTION ai_log_deletions() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO public.ai_sync_deletions (table_name, id, created_at)
    SELECT TG_TABLE_NAME, old_rows.id::text, old_rows.created_at FROM old_rows;
    RETURN NULL;
END $$;

CREATE FUNCTION ai_log_moves() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO public.ai_sync_deletions (table_name, id, created_at)
    VALUES (TG_TABLE_NAME, OLD.id::text, OLD.created_at);
    RETURN NULL;
END $$;

-- A row trigger with a WHEN clause: an update that leaves created_at alone (nearly all of
-- them) costs a comparison, not a function call.
CREATE TRIGGER ai_tasks_log_moves AFTER UPDATE OF created_at ON ai_tasks
    FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION ai_log_moves();
CREATE TRIGGER ai_runs_log_moves AFTER UPDATE OF created_at ON ai_runs
    FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION ai_log_moves();
