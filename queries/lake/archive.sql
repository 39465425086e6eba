-- archive.sql: confirming and moving a purge batch into the lake's archive
-- (queries/lake/archive.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- batch_runs / batch_tasks: the batch as Postgres has it (exact numbers as text);
-- batch_months: the months (YYYY-MM) of its rows; live_runs / live_tasks /
-- archived_runs / archived_tasks: the lake's rows of those months (views over the Delta
-- tables' Arrow datasets, queries/lake/archive.py).

-- name: lake_copy_of_batch_runs
-- The lake's copy of each batch run: from the live tables, else from the archive (a purge
-- interrupted after its lake move and retried). Columns: id, task_count, total_tokens,
-- total_cost, in_live.
SELECT DISTINCT ON (id) id, task_count, total_tokens, total_cost, in_live
  FROM (SELECT id, task_count, total_tokens, total_cost, true AS in_live FROM live_runs
         WHERE id IN (SELECT id FROM batch_runs)
        UNION ALL
        SELECT id, task_count, total_tokens, total_cost, false FROM archived_runs
         WHERE id IN (SELECT id FROM batch_runs))
 ORDER BY id, in_live DESC;

-- name: runs_not_confirmed
-- Batch runs the lake lacks or holds with other numbers: id, why.
SELECT b.id,
       CASE WHEN l.id IS NULL THEN 'not in the lake'
            ELSE 'the lake has task_count ' || l.task_count || ', total_tokens '
                 || l.total_tokens || ', total_cost ' || l.total_cost
                 || '; Postgres has ' || b.task_count || ', ' || b.total_tokens || ', '
                 || b.total_cost END AS why
  FROM batch_runs b LEFT JOIN lake_runs l ON l.id = b.id
 WHERE l.id IS NULL OR l.task_count <> b.task_count OR l.total_tokens <> b.total_tokens
    OR l.total_cost <> b.total_cost::DECIMAL(24, 10)
 ORDER BY b.id;

-- name: tasks_not_confirmed
-- Tasks of the batch runs that differ between Postgres and the lake (missing on either
-- side, or another status, tokens_total or cost): id, run_id, why.
WITH lake AS (
    SELECT DISTINCT ON (id) id, run_id, status, tokens_total, cost
      FROM (SELECT id, run_id, status, tokens_total, cost, 1 AS pick FROM live_tasks
             WHERE run_id IN (SELECT id FROM batch_runs)
            UNION ALL
            SELECT id, run_id, status, tokens_total, cost, 2 FROM archived_tasks
             WHERE run_id IN (SELECT id FROM batch_runs))
     ORDER BY id, pick
)
SELECT coalesce(b.id, l.id) AS id, coalesce(b.run_id, l.run_id) AS run_id,
       CASE WHEN l.id IS NULL THEN 'task not in the lake'
            WHEN b.id IS NULL THEN 'task in the lake but not in Postgres'
            ELSE 'task differs (status, tokens_total or cost)' END AS why
  FROM batch_tasks b FULL JOIN lake l ON l.id = b.id
 WHERE l.id IS NULL OR b.id IS NULL OR l.status IS DISTINCT FROM b.status
    OR l.tokens_total IS DISTINCT FROM b.tokens_total
    OR l.cost IS DISTINCT FROM b.cost::DECIMAL(20, 10)
 ORDER BY 1;

-- name: rows_to_archive
-- Live rows of {{live}} that belong to the batch (runs: id; tasks: run_id) and are not
-- archived yet, with `month` (the archive's partition).
SELECT * FROM {{live}}
 WHERE {{key}} IN (SELECT id FROM batch_runs)
   AND id NOT IN (SELECT id FROM {{archived}})
 ORDER BY month, created_at, id;

-- name: batch_rows_in_live
-- How many rows of the batch the live table {{live}} still holds.
SELECT count(*) FROM {{live}} WHERE {{key}} IN (SELECT id FROM batch_runs);

-- name: rows_to_keep
-- Live rows of {{live}} in the batch's months that stay (not in the batch), with `month`.
SELECT * FROM {{live}}
 WHERE month IN (SELECT month FROM batch_months) AND {{key}} NOT IN (SELECT id FROM batch_runs)
 ORDER BY month, created_at, id;
