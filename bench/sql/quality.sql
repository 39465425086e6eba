-- quality.sql: preparing a generated benchmark database for the quality benchmark
-- (bench/quality.py). Named queries, :name bound, {{file.block}} fragments:
-- ingest/store/sqlfiles.py.

-- name: demo_window
-- The demo's period as its tasks have it: start, end (end just after the last task).
SELECT min(created_at) AS start, max(created_at) + interval '1 microsecond' AS "end"
  FROM ai_tasks;

-- name: assign_variants
-- The A/B variant ingest/demo/quality.py's run_variant gives each run that starts at or
-- after :since: :variants[1] or [2] by the first 32 bits of the md5 of its id. Run with
-- triggers off (session_replication_role = replica) on a database no mirror has read yet.
UPDATE ai_runs
   SET variant = (:variants::text[])[
           1 + (('x' || substr(md5(id::text), 1, 8))::bit(32)::bigint >= 2147483648)::int]
 WHERE created_at >= :since AND variant IS NULL;
