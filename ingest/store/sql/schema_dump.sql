-- schema_dump.sql: the schema as the catalogs describe it, for docs/schema.sql
-- (ingest/store/schema_dump.py).
-- Named queries, :name bound, {{file.block}} fragments: ingest/store/sqlfiles.py.
-- Each query returns (name, definition) rows of the public schema, sorted by name, in a
-- spelling that PostgreSQL 15 to 18 share (NOT NULL constraint rows of 18 left out).

-- name: schema_tables
-- Tables: name, reloptions (text[] or NULL).
SELECT quote_ident(c.relname) AS name, c.reloptions AS options
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind = 'r'
 ORDER BY c.relname;

-- name: schema_columns
-- Columns of the public tables in table order: table, name, type, not_null, default,
-- generated ('s' stored, 'v' virtual, '' none).
SELECT quote_ident(c.relname) AS "table", quote_ident(a.attname) AS name, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS "default",
       a.attgenerated::text AS generated
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY c.relname, a.attnum;

-- name: schema_constraints
-- Primary keys, unique, foreign key and CHECK constraints: table, name, definition.
SELECT quote_ident(c.relname) AS "table", quote_ident(k.conname) AS name, pg_get_constraintdef(k.oid) AS definition
  FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND k.contype IN ('p', 'u', 'f', 'c')
 ORDER BY c.relname, k.contype, k.conname;

-- name: schema_indexes
-- Indexes that no constraint owns: name, definition.
SELECT i.relname AS name, pg_get_indexdef(i.oid) AS definition
  FROM pg_index x
  JOIN pg_class i ON i.oid = x.indexrelid
  JOIN pg_namespace n ON n.oid = i.relnamespace
 WHERE n.nspname = 'public'
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.oid)
 ORDER BY i.relname;

-- name: schema_functions
-- Functions of the public schema: name, definition (CREATE OR REPLACE FUNCTION ...).
SELECT p.proname AS name, pg_get_functiondef(p.oid) AS definition
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public'
   -- not the functions an extension (pg_trgm) brings: they are its own, not our schema
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                      AND d.deptype = 'e')
 ORDER BY p.proname, pg_get_function_identity_arguments(p.oid);

-- name: schema_triggers
-- Triggers on the public tables: name, definition (CREATE TRIGGER ...).
SELECT t.tgname AS name, pg_get_triggerdef(t.oid) AS definition
  FROM pg_trigger t
  JOIN pg_class c ON c.oid = t.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND NOT t.tgisinternal
 ORDER BY c.relname, t.tgname;

-- name: schema_policies
-- Row-level security of the public tables (migration 0010): the ALTER TABLE ... ENABLE
-- of each secured table, then every policy as CREATE POLICY text, by table and name.
SELECT definition FROM (
    SELECT 0 AS part, c.relname AS table_name, '' AS policy,
           'ALTER TABLE ' || c.relname || ' ENABLE ROW LEVEL SECURITY' AS definition
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relrowsecurity
    UNION ALL
    SELECT 1, p.tablename, p.policyname,
           'CREATE POLICY ' || p.policyname || ' ON ' || p.tablename || ' FOR ' || p.cmd
           || ' TO ' || array_to_string(p.roles, ', ')
           || coalesce(' USING (' || p.qual || ')', '')
           || coalesce(' WITH CHECK (' || p.with_check || ')', '')
      FROM pg_policies p
     WHERE p.schemaname = 'public'
) security
 ORDER BY part, table_name, policy;

-- name: schema_grants
-- What the application role may do on each public table: GRANT ... ON <table> TO ai_runs_app.
SELECT 'GRANT ' || string_agg(privilege_type, ', ' ORDER BY privilege_type) || ' ON '
       || table_name || ' TO ' || grantee AS definition
  FROM information_schema.role_table_grants
 WHERE table_schema = 'public' AND grantee = 'ai_runs_app'
 GROUP BY table_name, grantee
 ORDER BY table_name;
