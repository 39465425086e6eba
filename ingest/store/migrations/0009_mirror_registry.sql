-- Registry of change-capture readers (DuckDB mirrors) and the watermark each has applied,
-- so ai_sync_deletions can be pruned once every registered reader is past a deletion
-- (docs/lake.md, "Retention").
--
-- ai_sync_mirrors: one row per reader. horizon is the xid8 horizon its next sync starts
-- from: it has applied every deletion stamped below it. A reader records its horizon after
-- each successful sync; a reader that goes away is forgotten by deleting its row (or by
-- `ai-runs purge --forget-mirrors-idle`), and rebuilds itself if it ever comes back.
--
-- ai_sync_pruned: one row; deletions stamped below `below` may have been pruned. A reader
-- whose horizon is below it cannot trust the deletion log and rebuilds from scratch.

CREATE TABLE ai_sync_mirrors (
    name      text PRIMARY KEY,
    horizon   xid8 NOT NULL,
    synced_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ai_sync_pruned (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    below     xid8 NOT NULL,
    pruned_at timestamptz NOT NULL DEFAULT now()
);
