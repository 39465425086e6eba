-- API keys of the ingest server (`ai-runs serve`, docs/server.md). Only a SHA-256 hash of a
-- key is stored: the key itself is printed once by `ai-runs keys create` and never kept.
-- A request with a key writes as the key's user_id. A revoked key is refused at once (every
-- request looks its key up; nothing is cached).

CREATE TABLE ai_api_keys (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    key_hash    text NOT NULL UNIQUE,       -- hex SHA-256 of the whole key
    prefix      text NOT NULL,              -- first characters of the key, to tell keys apart
    user_id     text NOT NULL CHECK (user_id <> ''),
    name        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE INDEX ai_api_keys_user_idx ON ai_api_keys (user_id, created_at);
