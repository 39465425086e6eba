-- The sidebar's filter choices present in the mirror (queries/options.py). Values are bound (:name); {{name}} is filled only with the
-- fragments of engine.sql (task_filter, tasks_source) or with an allow-listed expression of
-- queries/engine.py (period, group, metric), never with user text.

-- name: filter_options_tasks
-- Distinct values in the mirror's tasks: providers, models, users, statuses (lists).
SELECT list_sort(array_agg(DISTINCT provider) FILTER (WHERE provider IS NOT NULL)) AS providers,
       list_sort(array_agg(DISTINCT model) FILTER (WHERE model IS NOT NULL)) AS models,
       list_sort(array_agg(DISTINCT user_id) FILTER (WHERE user_id IS NOT NULL)) AS users,
       list_sort(array_agg(DISTINCT status)) AS statuses
  FROM tasks;

-- name: filter_options_runs
-- Distinct source types and tags of mirrored runs, teams of mirrored users (lists).
SELECT (SELECT list_sort(array_agg(DISTINCT source_type)) FROM runs) AS source_types,
       (SELECT list_sort(array_agg(DISTINCT tag)) FROM (SELECT unnest(tags) AS tag FROM runs))
           AS tags,
       (SELECT list_sort(array_agg(DISTINCT team) FILTER (WHERE team IS NOT NULL)) FROM users)
           AS teams;

-- name: user_names
-- Display names of mirrored users that have one: id, display_name, sorted by name.
SELECT id, display_name FROM users
 WHERE display_name IS NOT NULL AND display_name <> ''
 ORDER BY display_name, id;
