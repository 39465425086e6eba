-- Change capture for the analytics mirror (SPEC section 5).
-- Every row carries the id of the transaction that last wrote it (sync_xid). A reader
-- that remembers pg_snapshot_xmin(pg_current_snapshot()) from its previous sync and
-- reads rows with sync_xid >= that horizon never misses a row committed late by a
-- transaction that was already running, and deletions are logged with the same stamp.

ALTER TABLE ai_users ADD COLUMN sync_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE ai_runs ADD COLUMN sync_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE ai_tasks ADD COLUMN sync_xid xid8 NOT NULL DEFAULT pg_current_xact_id();

CREATE INDEX ai_users_sync_idx ON ai_users (sync_xid);
CREATE INDEX ai_runs_sync_idx ON ai_runs (sync_xid);
CREATE INDEX ai_tasks_sync_idx ON ai_tasks (sync_xid);

CREATE FUNCTION ai_stamp_sync_xid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.sync_xid := pg_current_xact_id();
    RETURN NEW;
END $$;

CREATE TRIGGER ai_users_stamp BEFORE UPDATE ON ai_users
    FOR EACH ROW EXECUTE FUNCTION ai_stamp_sync_xid();
CREATE TRIGGER ai_runs_stamp BEFORE UPDATE ON ai_runs
    FOR EACH ROW EXECUTE FUNCTION ai_stamp_sync_xid();
CREATE TRIGGER ai_tasks_stamp BEFORE UPDATE ON ai_tasks
    FOR EACH ROW EXECUTE FUNCTION ai_stamp_sync_xid();

CREATE TABLE ai_sync_deletions (
    table_name text NOT NULL CHECK (table_name IN ('ai_users', 'ai_runs', 'ai_tasks')),
    id         text NOT NULL,
    sync_xid   xid8 NOT NULL DEFAULT pg_current_xact_id(),
    deleted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ai_sync_deletions_xid_idx ON ai_sync_deletions (sync_xid);

CREATE FUNCTION ai_log_deletions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ai_sync_deletions (table_name, id)
    SELECT TG_TABLE_NAME, old_rows.id::text FROM old_rows;
    RETURN NULL;
END $$;

CREATE TRIGGER ai_users_log_deletions AFTER DELETE ON ai_users
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ai_log_deletions();
CREATE TRIGGER ai_runs_log_deletions AFTER DELETE ON ai_runs
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ai_log_deletions();
CREATE TRIGGER ai_tasks_log_deletions AFTER DELETE ON ai_tasks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ai_log_deletions();
