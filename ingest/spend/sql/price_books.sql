-- price_books.sql: price overrides with validity windows (ingest/spend/price_books.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- Migration 0008, docs/spend-control.md.

-- name: insert_price_override
-- Add one override; returns the row. Overlapping windows are refused by a trigger.
INSERT INTO ai_price_overrides (provider, model_pattern, valid_from, valid_to, input_per_mtok,
                                cached_per_mtok, cache_write_per_mtok, output_per_mtok,
                                reasoning_per_mtok, per_request, note, created_by)
VALUES (:provider, :model_pattern, :valid_from, :valid_to, :input_per_mtok, :cached_per_mtok,
        :cache_write_per_mtok, :output_per_mtok, :reasoning_per_mtok, :per_request, :note,
        :created_by)
RETURNING *;

-- name: list_price_overrides
-- Every override, live ones first, newest window first; with :include_removed false only
-- live ones.
SELECT * FROM ai_price_overrides
 WHERE removed_at IS NULL OR :include_removed::boolean
 ORDER BY removed_at IS NOT NULL, provider, model_pattern, valid_from DESC;

-- name: remove_price_override
-- Mark a live override removed (kept for the audit); returns it, no row when not live.
UPDATE ai_price_overrides SET removed_at = now(), removed_by = :removed_by
 WHERE id = :id AND removed_at IS NULL
RETURNING *;

-- name: overrides_in_force
-- Live overrides of :provider whose window contains :at (candidates; the model pattern is
-- matched by ingest.spend.price_books).
SELECT * FROM ai_price_overrides
 WHERE provider = :provider AND removed_at IS NULL
   AND valid_from <= :at AND (valid_to IS NULL OR :at < valid_to);

-- name: live_override
-- Is override :id live (to tell a refused retirement from a missing override)?
SELECT id FROM ai_price_overrides WHERE id = :id AND removed_at IS NULL;
