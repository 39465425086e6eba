-- The OTLP receiver's durable hand-off (docs/server.md, "Acknowledged after a durable
-- hand-off"). POST /v1/traces checks the export (key, size, encoding, every field it
-- parses), writes it here in one INSERT and answers; a worker in the server maps, prices
-- and writes its spans through the bulk path and deletes the row in that same
-- transaction, so an export is stored exactly once even when the server is killed
-- between the answer and the write. Written and read by the server as the owner; the
-- application role has no access (no grant).

CREATE TABLE ai_otlp_spool (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The API key's user: the spans are written as theirs, exactly as when written at once.
    user_id     text        NOT NULL,
    -- The export as received, decompressed: OTLP/JSON when true, else protobuf.
    is_json     boolean     NOT NULL,
    body        bytea       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    -- Why the worker could not write this export (a fault of the export found only when
    -- its rows were written); such a row is kept for inspection and not tried again.
    problem     text
);

-- The worker's queue: the exports still to write, oldest first.
CREATE INDEX ai_otlp_spool_waiting ON ai_otlp_spool (id) WHERE problem IS NULL;
