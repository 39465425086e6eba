-- spool.sql: the OTLP receiver's durable hand-off, the table of migration 0026
-- (ingest/server/otlp_spool.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- Run as the owner; the application role has no access to ai_otlp_spool.

-- name: spool_export
-- Keep an accepted export until the worker has written it; its id.
INSERT INTO ai_otlp_spool (user_id, is_json, body)
VALUES (:user_id, :is_json, :body)
RETURNING id;

-- name: spool_take_worker_lock
-- Whether this session is now the spool's one worker (a session advisory lock: released
-- when the connection ends, also when its process is killed).
SELECT pg_try_advisory_lock(hashtextextended('ai_otlp_spool worker', 0)) AS taken;

-- name: spool_release_worker_lock
-- Stop being the spool's worker.
SELECT pg_advisory_unlock(hashtextextended('ai_otlp_spool worker', 0)) AS released;

-- name: spool_next_exports
-- The oldest exports still to write (id, user_id, is_json, body), at most :limit of them
-- and, past the first, about :max_bytes of bodies in all.
SELECT id, user_id, is_json, body
  FROM (SELECT id, user_id, is_json, body,
               sum(octet_length(body)) OVER (ORDER BY id) - octet_length(body) AS before
          FROM (SELECT id, user_id, is_json, body FROM ai_otlp_spool
                 WHERE problem IS NULL ORDER BY id LIMIT :limit) AS oldest) AS sized
 WHERE before < :max_bytes
 ORDER BY id;

-- name: spool_done
-- Delete written exports, in the transaction that wrote them; the ids deleted (fewer
-- than asked: another worker wrote some, and this transaction must roll back).
DELETE FROM ai_otlp_spool WHERE id = ANY(:ids::bigint[]) AND problem IS NULL
RETURNING id;

-- name: spool_set_aside
-- An export the worker cannot write: kept with the reason, not tried again.
UPDATE ai_otlp_spool SET problem = :problem WHERE id = :id;

-- name: spool_waiting
-- How many exports wait to be written (not those set aside).
SELECT count(*) AS waiting FROM ai_otlp_spool WHERE problem IS NULL;
