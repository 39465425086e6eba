-- alerts.sql: window metrics of alert rules over the mirror (queries/alerts.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: alert_window_metrics
-- Over the filtered tasks: tasks, finished, completed, failed, failure_rate (failed /
-- finished, NULL with none finished), ttft_p95 and total_time_p95 (ms, exact, over the
-- completed tasks; NULL when none).
SELECT count(*) AS tasks,
       count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')) AS finished,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'failed')
           / nullif(count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')), 0)
           AS failure_rate,
       quantile_cont(time_to_first_token, 0.95) FILTER (WHERE status = 'completed')
           AS ttft_p95,
       quantile_cont(total_time, 0.95) FILTER (WHERE status = 'completed') AS total_time_p95
  FROM {{engine.tasks_source}} WHERE {{engine.task_filter}};
