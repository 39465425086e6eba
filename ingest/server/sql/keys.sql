-- keys.sql: API keys of the ingest server (table ai_api_keys, migration 0007)
-- (ingest/server/keys.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: insert_api_key
-- Store a new key's hash; returns the key row (id, prefix, user_id, name, created_at,
-- revoked_at).
INSERT INTO ai_api_keys (key_hash, prefix, user_id, name)
VALUES (:key_hash, :prefix, :user_id, :name)
RETURNING id, prefix, user_id, name, created_at, revoked_at;

-- name: ensure_key_user
-- A key's user as a person of ai_users (role member, display name = id) unless they exist:
-- row-level security lets a viewer see nothing until they are in ai_users.
INSERT INTO ai_users (id, display_name, role)
VALUES (:user_id, :user_id, 'member')
ON CONFLICT (id) DO NOTHING;

-- name: list_api_keys
-- Every key (never the hash), oldest first; :user_id NULL means every user's.
SELECT id, prefix, user_id, name, created_at, revoked_at
  FROM ai_api_keys
 WHERE :user_id::text IS NULL OR user_id = :user_id::text
 ORDER BY created_at, id;

-- name: revoke_api_key
-- Revoke the keys whose id or prefix is :key (already revoked ones keep their time);
-- returns the revoked rows.
UPDATE ai_api_keys
   SET revoked_at = coalesce(revoked_at, now())
 WHERE id::text = :key OR prefix = :key
RETURNING id, prefix, user_id, name, created_at, revoked_at;

-- name: user_of_api_key
-- The user_id of the live (not revoked) key with hash :key_hash; no row otherwise.
SELECT user_id FROM ai_api_keys WHERE key_hash = :key_hash AND revoked_at IS NULL;
