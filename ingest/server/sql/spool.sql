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
-- Whether this session may write the spool: a shared session advisory lock, which every
-- writer holds (released when its connection ends, also when its process is killed). An
-- exclusive holder of the same lock keeps every writer off (an operator pausing them).
SELECT pg_try_advisory_lock_shared(hashtextextended('ai_otlp_spool worker', 0)) AS taken;

-- name: spool_claim_exports
-- Claim the oldest exports that no writer has claimed, at most :limit of them and, past
-- the first, about :max_bytes of bodies in all; their ids, oldest first. A claim is a
-- session advisory lock of (hashtext('ai_otlp_spool export'), id), held by the writer's
-- session until it has written the export (spool_release_exports), or until its connection
-- ends (also on kill -9): what another writer holds is passed over, as FOR UPDATE SKIP
-- LOCKED would (the write itself runs in another connection, so a row lock would not do).
WITH unclaimed AS MATERIALIZED (
    SELECT s.id, octet_length(s.body) AS bytes
      FROM ai_otlp_spool s
     WHERE s.problem IS NULL
       AND NOT EXISTS (
           SELECT 1 FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.objsubid = 2
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.classid = hashtext('ai_otlp_spool export')::oid
              AND l.objid = (s.id % 2147483648)::int::oid)
     ORDER BY s.id
     LIMIT :limit
), sized AS MATERIALIZED (
    SELECT id, sum(bytes) OVER (ORDER BY id) - bytes AS before FROM unclaimed
)
SELECT id
  FROM sized
 WHERE CASE WHEN before < :max_bytes
            THEN pg_try_advisory_lock(hashtext('ai_otlp_spool export'), (id % 2147483648)::int)
            ELSE false END
 ORDER BY id;

-- name: spool_claimed_exports
-- The claimed exports still to write (id, user_id, is_json, body), oldest first: read after
-- the claim, so an export another writer wrote meanwhile is not among them.
SELECT id, user_id, is_json, body
  FROM ai_otlp_spool
 WHERE id = ANY(:ids::bigint[]) AND problem IS NULL
 ORDER BY id;

-- name: spool_release_exports
-- Give up the claims of :ids (written, set aside, or gone); how many were held.
SELECT count(*) FILTER (WHERE released) AS released
  FROM (SELECT pg_advisory_unlock(hashtext('ai_otlp_spool export'), (u.id % 2147483648)::int)
               AS released
          FROM unnest(:ids::bigint[]) AS u (id)) AS given_up;

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
