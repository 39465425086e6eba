-- tag_rollups.sql: usage by tag summed per tag list before the lists are unnested, the
-- formulation bench/tag_rollups.py times against queries/sql/usage.sql's usage_bitmaps.
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- {{period}}, {{task_filter}} and {{runs}}, {{users}} are filled by the bench from the
-- rollups' own allow-lists and fragments (queries/engine.py, queries/sql/engine.sql).

-- name: usage_by_tag_list
-- usage (queries/sql/usage.sql) by tag, the same columns and numbers: the tasks are summed
-- per period and tag list, then only those few rows are unnested. Exact because a task is
-- in one list (its sums add up per tag) and a run has one list, its tags (so a tag's
-- distinct runs are the sum of its lists' runs; a list naming a tag twice adds its runs
-- once); the distinct users are merged by bit_or of the lists' user bitmaps.
-- {{runs}}: a list's distinct runs (count(DISTINCT run_key) or NULL::BIGINT); {{users}}:
-- a list's user bitmap (bitstring_agg over user_key, or NULL::BIT).
WITH l AS (
    SELECT {{period}} AS period_key, tags,
           sum(cost) AS cost, sum(tokens_input) AS tokens_input,
           sum(tokens_output) AS tokens_output, sum(tokens_total) AS tokens_total,
           count(*) AS tasks, {{runs}} AS runs, {{users}} AS users,
           sum(tokens_cached_input) AS tokens_cached_input,
           sum(tokens_cache_write) AS tokens_cache_write,
           count(*) FILTER (WHERE cost IS NULL) AS unpriced
      FROM tasks WHERE {{task_filter}}
     GROUP BY period_key, tags
),
t AS (
    SELECT *, CASE WHEN coalesce(len(tags), 0) = 0 THEN [NULL::VARCHAR] ELSE tags END AS tag_list
      FROM l
)
SELECT DATE '1970-01-01' + period_key AS period, tag AS "group",
       coalesce(sum(cost), 0) AS cost,
       coalesce(sum(tokens_input), 0)::BIGINT AS tokens_input,
       coalesce(sum(tokens_output), 0)::BIGINT AS tokens_output,
       coalesce(sum(tokens_total), 0)::BIGINT AS tokens_total,
       sum(tasks)::BIGINT AS tasks,
       (sum(runs) FILTER (WHERE list_position(tag_list, tag) = i))::BIGINT AS runs,
       bit_count(bit_or(users)) AS active_users,
       coalesce(sum(tokens_cached_input), 0)::BIGINT AS tokens_cached_input,
       coalesce(sum(tokens_cache_write), 0)::BIGINT AS tokens_cache_write,
       sum(unpriced)::BIGINT AS unpriced
  FROM (SELECT *, unnest(tag_list) AS tag, generate_subscripts(tag_list, 1) AS i FROM t) u
 GROUP BY period_key, tag
 ORDER BY period_key NULLS FIRST, tag NULLS LAST;
