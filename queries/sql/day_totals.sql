-- day_totals.sql: usage and the KPI row from the mirror's day totals, whose tables
-- queries/mirror/sql/day_totals.sql holds; mirror only, Postgres reads its tasks
-- (queries/day_totals.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- A window's whole days [:whole_from, :whole_to) are read from day_totals; the tasks of
-- its part days at either end from tasks, as rows of one task each.

-- name: day_totals_kept
-- Whether this mirror has its day totals (day_totals and day_tag_totals).
SELECT count(*) = 2 FROM duckdb_tables()
 WHERE table_name IN ('day_totals', 'day_tag_totals') AND database_name = current_database();

-- name: day_rows
-- The window's rows: day totals of its whole days, then its other tasks one by one.
SELECT day, month_day, run_key, user_key, provider, model, team, tags, tasks, cost,
       tokens_input, tokens_output, tokens_total, tokens_cached_input, tokens_cache_write,
       unpriced, failed, finished
  FROM day_totals WHERE day >= :whole_from AND day < :whole_to
UNION ALL
SELECT day, month_day, run_key, user_key, provider, model, team, tags, 1, coalesce(cost, 0),
       coalesce(tokens_input, 0), coalesce(tokens_output, 0), coalesce(tokens_total, 0),
       coalesce(tokens_cached_input, 0), coalesce(tokens_cache_write, 0),
       (cost IS NULL)::BIGINT, (status = 'failed')::BIGINT,
       (status IN ('completed', 'failed', 'cancelled'))::BIGINT
  FROM tasks
 WHERE created_at >= :start AND created_at < :end AND (day < :whole_from OR day >= :whole_to)

-- name: tag_rows
-- day_rows for usage by tag: the tag totals of its whole days (no list to unnest), then
-- its other tasks one by one, once per tag ({{tag}}: queries/engine.py's grouping by tag).
SELECT day, month_day, run_key, user_key, tag, tasks, cost, tokens_input, tokens_output,
       tokens_total, tokens_cached_input, tokens_cache_write, unpriced
  FROM day_tag_totals WHERE day >= :whole_from AND day < :whole_to
UNION ALL
SELECT day, month_day, run_key, user_key, {{tag}}, 1, coalesce(cost, 0),
       coalesce(tokens_input, 0), coalesce(tokens_output, 0), coalesce(tokens_total, 0),
       coalesce(tokens_cached_input, 0), coalesce(tokens_cache_write, 0),
       (cost IS NULL)::BIGINT
  FROM tasks
 WHERE created_at >= :start AND created_at < :end AND (day < :whole_from OR day >= :whole_to)

-- name: ranged_rows
-- The day rows ({{rows}}: day_rows, or tag_rows by tag) with their period, group and
-- run_lo (r: distinct_counts.run_lo).
SELECT {{period}} AS period_key, {{group}} AS grp, w.*, r.run_lo
  FROM ({{rows}}) w LEFT JOIN r USING (day)

-- name: outside_the_bitmaps
-- Day rows whose run is counted by hashing, not by the period's bitmap (see
-- distinct_counts.run_lo: a run is in one set or the other whatever the day of its row).
run_lo IS NULL OR run_key - run_lo NOT BETWEEN 0 AND :run_bits - 1

-- name: usage_sums
-- usage's sums over day rows.
coalesce(sum(cost), 0) AS cost,
       coalesce(sum(tokens_input), 0)::BIGINT AS tokens_input,
       coalesce(sum(tokens_output), 0)::BIGINT AS tokens_output,
       coalesce(sum(tokens_total), 0)::BIGINT AS tokens_total,
       sum(tasks)::BIGINT AS tasks,
       coalesce(sum(tokens_cached_input), 0)::BIGINT AS tokens_cached_input,
       coalesce(sum(tokens_cache_write), 0)::BIGINT AS tokens_cache_write,
       sum(unpriced)::BIGINT AS unpriced

-- name: usage_days
-- usage (usage.sql) from day rows: the same columns and order ({{runs}} and
-- {{active_users}} as there).
WITH r AS ({{distinct_counts.run_lo}})
SELECT DATE '1970-01-01' + period_key AS period, grp AS "group", cost, tokens_input,
       tokens_output, tokens_total, tasks, runs, active_users, tokens_cached_input,
       tokens_cache_write, unpriced
  FROM (SELECT period_key, grp, {{day_totals.usage_sums}}, {{runs}} AS runs,
               {{active_users}} AS active_users
          FROM ({{day_totals.ranged_rows}})
         GROUP BY period_key, grp)
 ORDER BY period_key NULLS FIRST, grp NULLS LAST;

-- name: usage_days_bitmaps
-- usage_days with the distinct runs from bitmaps and, for the few rows outside them, by
-- hashing (x).
WITH r AS ({{distinct_counts.run_lo}}),
g AS (
    SELECT period_key, grp, {{day_totals.usage_sums}},
           {{distinct_counts.runs_in_range}} AS runs, {{active_users}} AS active_users
      FROM ({{day_totals.ranged_rows}})
     GROUP BY period_key, grp
),
x AS (
    SELECT period_key, grp, count(DISTINCT run_key) AS runs
      FROM ({{day_totals.ranged_rows}})
     WHERE {{day_totals.outside_the_bitmaps}}
     GROUP BY period_key, grp
)
{{usage.with_hashed_runs}};

-- name: ttft_counts
-- How many completed tasks of the window have each time to first token.
SELECT ttft, sum(n) AS n
  FROM (SELECT ttft, n FROM day_ttft WHERE day >= :whole_from AND day < :whole_to
        UNION ALL
        SELECT time_to_first_token, 1 FROM tasks
         WHERE created_at >= :start AND created_at < :end
           AND (day < :whole_from OR day >= :whole_to)
           AND status = 'completed' AND time_to_first_token IS NOT NULL)
 GROUP BY ttft
HAVING sum(n) > 0

-- name: ttft_ranks
-- ttft_rank (0-based, ascending) (n - 1) * 0.95 of the n values that ttft_counts counts,
-- ttft_lo and ttft_hi the values at ranks floor and ceil of it (queries/day_totals.py
-- interpolates between them as quantile_cont does).
SELECT max(ttft) FILTER (WHERE before <= floor(rank)) AS ttft_lo,
       max(ttft) FILTER (WHERE before <= ceil(rank)) AS ttft_hi,
       any_value(rank) AS ttft_rank
  FROM (SELECT ttft, sum(n) OVER (ORDER BY ttft) - n AS before,
               (sum(n) OVER () - 1)::DOUBLE * 0.95 AS rank
          FROM ({{day_totals.ttft_counts}}))

-- name: kpi_sums
-- kpi_totals' sums over day rows.
coalesce(sum(cost), 0) AS spend, coalesce(sum(tasks), 0)::BIGINT AS tasks,
       coalesce(sum(tokens_total), 0)::BIGINT AS tokens,
       coalesce(sum(failed), 0)::BIGINT AS failed,
       coalesce(sum(finished), 0)::BIGINT AS finished

-- name: kpi_days
-- kpi_totals (usage.sql) from day rows, p95_ttft_ms left as ttft_ranks gives it.
WITH r AS ({{distinct_counts.run_lo}}),
g AS (
    SELECT {{day_totals.kpi_sums}}, {{runs}} AS runs, {{active_users}} AS active_users
      FROM ({{day_totals.ranged_rows}})
)
SELECT spend, tasks, runs, active_users, tokens, p.*, failed, finished
  FROM g, ({{day_totals.ttft_ranks}}) p;

-- name: kpi_days_bitmaps
-- kpi_days with the distinct runs as in usage_days_bitmaps.
WITH r AS ({{distinct_counts.run_lo}}),
g AS (
    SELECT {{day_totals.kpi_sums}}, {{distinct_counts.runs_in_range}} AS runs,
           {{active_users}} AS active_users
      FROM ({{day_totals.ranged_rows}})
),
x AS (
    SELECT count(DISTINCT run_key) AS runs
      FROM ({{day_totals.ranged_rows}})
     WHERE {{day_totals.outside_the_bitmaps}}
)
SELECT spend, tasks, g.runs + x.runs AS runs, active_users, tokens, p.*, failed, finished
  FROM g, x, ({{day_totals.ttft_ranks}}) p;
