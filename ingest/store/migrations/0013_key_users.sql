-- Every API key's user is a person (docs/server.md, docs/access.md). The server's REST
-- routes act as the key's user under row-level security, which sees nobody who is not in
-- ai_users; `ai-runs keys create` now adds the person as a member. This adds the users of
-- keys made before that, as members (display name = id), when they are not there yet.
-- Only live keys count: a user whose every key is revoked cannot sign in with one, and is
-- not given a person row (and so dashboard access) they never had.

INSERT INTO ai_users (id, display_name, role)
SELECT DISTINCT k.user_id, k.user_id, 'member'
  FROM ai_api_keys k
 WHERE k.revoked_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM ai_users u WHERE u.id = k.user_id)
ON CONFLICT (id) DO NOTHING;
