-- options.sql: the sidebar's filter choices present in the mirror (queries/options.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: filter_options_tasks
-- Distinct values in the mirror's tasks: providers, models, users, statuses, variants
-- (lists).
SELECT list_sort(array_agg(DISTINCT provider) FILTER (WHERE provider IS NOT NULL)) AS providers,
       list_sort(array_agg(DISTINCT model) FILTER (WHERE model IS NOT NULL)) AS models,
       list_sort(array_agg(DISTINCT user_id) FILTER (WHERE user_id IS NOT NULL)) AS users,
       list_sort(array_agg(DISTINCT status)) AS statuses,
       list_sort(array_agg(DISTINCT variant) FILTER (WHERE variant IS NOT NULL)) AS variants
  FROM tasks
 WHERE {{engine.visible_run_filter}};

-- name: filter_options_runs
-- Distinct source types and tags of mirrored runs, teams of mirrored users (lists); for a
-- restricted viewer, only of the visible runs and the people who own them.
WITH v AS (SELECT * FROM runs WHERE {{engine.visible_run_row_filter}})
SELECT (SELECT list_sort(array_agg(DISTINCT source_type)) FROM v) AS source_types,
       (SELECT list_sort(array_agg(DISTINCT tag)) FROM (SELECT unnest(tags) AS tag FROM v))
           AS tags,
       (SELECT list_sort(array_agg(DISTINCT team) FILTER (WHERE team IS NOT NULL)) FROM users
         WHERE {{engine.visible_user_filter}}) AS teams;

-- name: user_names
-- Display names of mirrored users that have one: id, display_name, sorted by name; for a
-- restricted viewer, only the people who own a visible run.
WITH v AS (SELECT * FROM runs WHERE {{engine.visible_run_row_filter}})
SELECT id, display_name FROM users
 WHERE display_name IS NOT NULL AND display_name <> '' AND {{engine.visible_user_filter}}
 ORDER BY display_name, id;
