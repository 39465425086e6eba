-- engine.sql: the global filters and the task source every rollup on the mirror reads
-- (queries/engine.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- {{engine.visible_*}} restrict a viewer's rollups (queries/access.py fills them with TRUE
-- when the viewer sees every run).

-- name: tasks_source
-- Where tasks come from: the mirror table (day, month_day, team, source_type, tags ready).
tasks

-- name: task_filter
-- The global filters (queries.filters.Filters); an empty list means no restriction.
created_at >= :start AND created_at < :end
   AND (len(:source_types::VARCHAR[]) = 0 OR list_contains(:source_types::VARCHAR[], source_type))
   AND (len(:providers::VARCHAR[]) = 0 OR list_contains(:providers::VARCHAR[], provider))
   AND (len(:models::VARCHAR[]) = 0 OR list_contains(:models::VARCHAR[], model))
   AND (len(:users::VARCHAR[]) = 0 OR list_contains(:users::VARCHAR[], user_id))
   AND (len(:teams::VARCHAR[]) = 0 OR list_contains(:teams::VARCHAR[], team))
   AND (len(:tags::VARCHAR[]) = 0 OR list_has_any(tags, :tags::VARCHAR[]))
   AND (len(:statuses::VARCHAR[]) = 0 OR list_contains(:statuses::VARCHAR[], status))
   AND (len(:variants::VARCHAR[]) = 0 OR list_contains(:variants::VARCHAR[], variant))
   AND {{engine.visible_run_filter}}

-- name: visible_run_filter
-- Access (docs/access.md, queries/access.py): only tasks of the runs Postgres's row-level
-- security gave the viewer, as a semi-join on the dense run keys registered as
-- visible_run_keys. Filled with TRUE when the viewer sees every run.
run_key IN (SELECT key FROM visible_run_keys)

-- name: visible_run_row_filter
-- The same restriction for rows of the mirror's runs table.
id IN (SELECT k.id FROM run_keys k JOIN visible_run_keys v ON v.key = k.key)

-- name: visible_user_filter
-- People of the mirror's users table who own a visible run (v: the visible runs).
id IN (SELECT user_id FROM v)

-- name: key_generation
-- What identifies the mirror's run keys: the time of the last full build and how many
-- keys there are (append-only within a build).
SELECT (SELECT value FROM mirror_meta WHERE key = 'last_full_sync_at') AS built,
       (SELECT count(*) FROM run_keys) AS keys;

-- name: run_keys_of_ids
-- Run keys (column key) of the run ids registered as visible_run_ids (strings).
SELECT k.key FROM run_keys k JOIN visible_run_ids v ON k.id = v.id::UUID;
