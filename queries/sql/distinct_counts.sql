-- distinct_counts.sql: exact distinct runs and users with bitmaps
-- (queries/distinct_counts.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: distinct_plan
-- What the distinct counts of a window need: run_bits (widest key range of the runs
-- created in one period), user_bits (largest user key), values (how many values the
-- dimension :dimension has taken).
SELECT (SELECT coalesce(max(hi - lo), 0)
          FROM (SELECT {{period}} AS p, min(lo) AS lo, max(lo + n) AS hi
                  FROM run_key_days WHERE day BETWEEN :first_day AND :last_day
                 GROUP BY p)) AS run_bits,
       (SELECT coalesce(max(key), 0) FROM user_keys) AS user_bits,
       (SELECT count(*) FROM dim_values WHERE dimension = :dimension) AS "values";

-- name: run_lo
-- Per day of the window: run_lo, the smallest key of the runs created in the day's period.
-- Run keys are given in order of creation, so the runs created in a period have keys in
-- [run_lo, run_lo + :run_bits) (:run_bits from distinct_plan) and are counted with a
-- bitmap; a task outside it (its run was created in another period, or keyed late) is in
-- rare_tasks, and those few are counted by hashing. Every day of the window has its row,
-- days on which no run was created too: whether a run is counted by the bitmap or by
-- hashing then depends on its key and the period only, never on the day of one of its
-- tasks, so the two sets of runs are disjoint (with rows for the days of new runs only, a
-- run with tasks on such a day and on another day of its period would be in both).
SELECT day, min(lo) OVER (PARTITION BY {{period}}) AS run_lo
  FROM (SELECT d.day, k.lo,
               date_diff('day', DATE '1970-01-01',
                         date_trunc('month', DATE '1970-01-01' + d.day))::INTEGER AS month_day
          FROM (SELECT range::INTEGER AS day FROM range(:first_day, :last_day + 1)) d
          LEFT JOIN run_key_days k ON k.day = d.day) w

-- name: runs_in_range
coalesce(bit_count(bitstring_agg(run_key - run_lo, 0, :run_bits - 1)
                   FILTER (WHERE run_key - run_lo BETWEEN 0 AND :run_bits - 1)), 0)

-- name: rare_runs
-- Distinct runs per period and group of the tasks outside their period's bitmap range.
SELECT period_key, grp, count(DISTINCT run_key) AS runs
  FROM (SELECT {{period}} AS period_key, {{group}} AS grp, day, run_key
          FROM rare_tasks WHERE {{engine.task_filter}}) o
  LEFT JOIN r USING (day)
 WHERE run_lo IS NULL OR run_key - run_lo NOT BETWEEN 0 AND :run_bits - 1
 GROUP BY period_key, grp

-- name: distinct_users_bitmap
-- Exact distinct users: user keys are dense, 1..:user_bits.
coalesce(bit_count(bitstring_agg(user_key, 1, :user_bits)), 0)
