-- check.sql: the mirror's self-check, the Postgres side (queries/mirror/sync.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: verify_totals
-- The numbers a mirror synced in this snapshot must hold (compared with the DuckDB query of
-- the same name): tasks, tokens (sum of tokens_total), cost (sum, USD), runs, run_tokens
-- (sum of total_tokens), users, scores; all as text.
SELECT (SELECT count(*) FROM ai_tasks)::text AS tasks,
       (SELECT coalesce(sum(tokens_total), 0) FROM ai_tasks)::text AS tokens,
       (SELECT coalesce(sum(cost), 0) FROM ai_tasks)::text AS cost,
       (SELECT count(*) FROM ai_runs)::text AS runs,
       (SELECT coalesce(sum(total_tokens), 0) FROM ai_runs)::text AS run_tokens,
       (SELECT count(*) FROM ai_users)::text AS users,
       (SELECT count(*) FROM ai_scores)::text AS scores;
