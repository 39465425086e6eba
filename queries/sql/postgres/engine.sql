-- engine.sql: the Postgres twins of ../engine.sql (queries/engine.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- The same names, columns and results as the mirror's, computed straight from the system
-- of record (the two-engine tests compare them; the benchmark uses them as the baseline).

-- name: tasks_source
-- Tasks with the columns of the mirror's task table: run source_type and tags, variant (the
-- task's own, else its run's), user team,
-- UTC day key and month key computed per row.
(SELECT t.id, t.task_id, t.run_id, t.user_id, u.team, r.source_type, r.tags, t.service,
        t.task_name, t.provider, t.endpoint, t.model, t.status, t.tokens_input,
        t.tokens_output, t.tokens_cached_input, t.tokens_cache_write, t.tokens_total, t.cost,
        t.cost_source,
        t.time_to_first_token, t.total_time, t.created_at, t.completed_at,
        coalesce(t.variant, r.variant) AS variant,
        (t.created_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01' AS day,
        date_trunc('month', t.created_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01'
            AS month_day
   FROM ai_tasks t
   JOIN ai_runs r ON r.id = t.run_id
   LEFT JOIN ai_users u ON u.id = t.user_id) AS tasks

-- name: task_filter
created_at >= :start AND created_at < :end
   AND (cardinality(:source_types::text[]) = 0 OR source_type = ANY(:source_types::text[]))
   AND (cardinality(:providers::text[]) = 0 OR provider = ANY(:providers::text[]))
   AND (cardinality(:models::text[]) = 0 OR model = ANY(:models::text[]))
   AND (cardinality(:users::text[]) = 0 OR user_id = ANY(:users::text[]))
   AND (cardinality(:teams::text[]) = 0 OR team = ANY(:teams::text[]))
   AND (cardinality(:tags::text[]) = 0 OR tags && :tags::text[])
   AND (cardinality(:statuses::text[]) = 0 OR status = ANY(:statuses::text[]))
   AND (cardinality(:variants::text[]) = 0 OR variant = ANY(:variants::text[]))
   AND (NOT :restricted::boolean OR run_id = ANY(:visible_runs::uuid[]))
