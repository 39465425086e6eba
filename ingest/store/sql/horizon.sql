-- horizon.sql: what holds back the change-capture horizon of the whole server
-- (ingest/store/horizon.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.

-- name: horizon_holders
-- Transactions in any database of this server that keep pg_snapshot_xmin, and so every
-- change-capture horizon, from advancing: those with a transaction id (a snapshot alone
-- holds back vacuum, not this horizon), other than this session, oldest first.
-- A session is listed when it began at least :older_than seconds ago; when this role may
-- not see when it began (another user's session, without pg_read_all_stats), when it was
-- already running at the previous horizon :previous (xid8 as text, '0' for none). A
-- prepared transaction is listed when it was prepared at least :older_than seconds ago.
-- Columns: kind ('session' or 'prepared'), pid (NULL for prepared), database, username,
-- application, state, started (timestamptz: transaction start, or when prepared),
-- age_seconds (float), query (its first 120 characters), gid (prepared only), hidden
-- (true when this role may not see the session's state, start and query).
WITH sessions AS (
    SELECT a.pid, a.datname, a.usename, a.application_name, a.state, a.xact_start,
           a.backend_xid, a.query,
           extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS age_seconds
      FROM pg_stat_activity a
     WHERE a.backend_xid IS NOT NULL
       AND a.pid <> pg_backend_pid()
)
SELECT 'session' AS kind, s.pid, s.datname AS database, s.usename AS username,
       s.application_name AS application, s.state, s.xact_start AS started, s.age_seconds,
       CASE WHEN s.xact_start IS NOT NULL  -- else '<insufficient privilege>'
            THEN left(regexp_replace(s.query, '\s+', ' ', 'g'), 120) END AS query,
       NULL::text AS gid,
       s.xact_start IS NULL AS hidden, age(s.backend_xid) AS xid_age
  FROM sessions s
 WHERE s.age_seconds >= :older_than
    OR (s.xact_start IS NULL AND :previous::text <> '0'
        AND age(s.backend_xid) > age(:previous::text::xid8::xid))
UNION ALL
SELECT 'prepared', NULL, p.database, p.owner, NULL, 'prepared', p.prepared,
       extract(epoch FROM clock_timestamp() - p.prepared)::float8, NULL, p.gid, false,
       age(p.transaction)
  FROM pg_prepared_xacts p
 WHERE extract(epoch FROM clock_timestamp() - p.prepared) >= :older_than
 ORDER BY xid_age DESC;
