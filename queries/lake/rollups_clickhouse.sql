-- rollups_clickhouse.sql: the overview rollups on the lake in ClickHouse
-- (queries/lake/rollups.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- The overview rollups on the lake in ClickHouse (chdb in-process; the same SQL runs on a
-- ClickHouse server). {{source}} is ClickHouse's own Delta Lake reader over the tasks
-- table: deltaLakeLocal({location:String}) or deltaLake({location:String}, {key:String},
-- {secret:String}) (queries/lake/rollups.py). ClickHouse binds {name:Type} parameters
-- itself: {version:Int64} is the Delta version read, {start:DateTime64(6, 'UTC')} and
-- {end:...} the window, {first_month:String}/{last_month:String} prune partitions.
-- {{period}}, {{group}}, {{metric}} are allow-listed expressions. Twin of rollups.sql:
-- same columns, same numbers.

-- name: ch_lake_window
created_at >= {start:DateTime64(6, 'UTC')} AND created_at < {end:DateTime64(6, 'UTC')}
   AND month BETWEEN {first_month:String} AND {last_month:String}

-- name: ch_lake_usage
-- t.cost: in ClickHouse a bare `cost` inside another aggregate names the alias below.
SELECT {{period}} AS period, {{group}} AS `group`,
       toFloat64(coalesce(sum(cost), 0)) AS cost,
       toInt64(coalesce(sum(tokens_input), 0)) AS tokens_input,
       toInt64(coalesce(sum(tokens_output), 0)) AS tokens_output,
       toInt64(coalesce(sum(tokens_total), 0)) AS tokens_total,
       toInt64(count()) AS tasks, toInt64(uniqExact(run_id)) AS runs,
       toInt64(uniqExact(user_id)) AS active_users,
       toInt64(coalesce(sum(tokens_cached_input), 0)) AS tokens_cached_input,
       toInt64(coalesce(sum(tokens_cache_write), 0)) AS tokens_cache_write,
       toInt64(countIf(t.cost IS NULL)) AS unpriced
  FROM {{source}} AS t
 WHERE {{rollups_clickhouse.ch_lake_window}}
 GROUP BY period, `group`
 SETTINGS delta_lake_snapshot_version = {version:Int64}

-- name: ch_lake_kpi_totals
SELECT toFloat64(coalesce(sum(cost), 0)) AS spend, toInt64(count()) AS tasks,
       toInt64(uniqExact(run_id)) AS runs, toInt64(uniqExact(user_id)) AS active_users,
       toInt64(coalesce(sum(tokens_total), 0)) AS tokens,
       quantileExactInclusiveIf(0.95)(time_to_first_token, status = 'completed') AS p95_ttft_ms,
       toInt64(countIf(status = 'failed')) AS failed,
       toInt64(countIf(status IN ('completed', 'failed', 'cancelled'))) AS finished
  FROM {{source}}
 WHERE {{rollups_clickhouse.ch_lake_window}}
 SETTINGS delta_lake_snapshot_version = {version:Int64}

-- name: ch_lake_latency_percentiles
SELECT period, `group`, tasks, q[1] AS p50, q[2] AS p90, q[3] AS p95, q[4] AS p99
  FROM (SELECT {{period}} AS period, {{group}} AS `group`, toInt64(count()) AS tasks,
               quantilesExactInclusive(0.5, 0.9, 0.95, 0.99)({{metric}}) AS q
          FROM {{source}}
         WHERE {{rollups_clickhouse.ch_lake_window}} AND status = 'completed' AND {{metric}} IS NOT NULL
         GROUP BY period, `group`)
 SETTINGS delta_lake_snapshot_version = {version:Int64}

-- name: ch_lake_failure_counts
SELECT {{period}} AS period, {{group}} AS `group`, toInt64(count()) AS tasks,
       toInt64(countIf(status = 'failed')) AS failed,
       toInt64(countIf(status = 'cancelled')) AS cancelled
  FROM {{source}}
 WHERE {{rollups_clickhouse.ch_lake_window}} AND status IN ('completed', 'failed', 'cancelled')
 GROUP BY period, `group`
 SETTINGS delta_lake_snapshot_version = {version:Int64}
