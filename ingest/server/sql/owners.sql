-- owners.sql: who owns which run, for the bulk path only (batch endpoint, OTLP)
-- (ingest/server/state.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- It writes as the owner and must not let a key's rows name another user's run. The REST
-- routes ask row-level security instead (docs/access.md).

-- name: owners_of_runs
-- id and user_id of each existing run among :ids (uuid[]).
SELECT id, user_id FROM ai_runs WHERE id = ANY(:ids::uuid[]);
