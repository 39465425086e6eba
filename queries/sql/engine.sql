-- The global filters and the task source every rollup on the mirror reads (queries/engine.py). Values are bound (:name); {{name}} is filled only with the
-- fragments of engine.sql (task_filter, tasks_source) or with an allow-listed expression of
-- queries/engine.py (period, group, metric), never with user text.

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
