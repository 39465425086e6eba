-- A version of everything that decides who reads which run, other than the runs themselves
-- (docs/access.md): it changes with every share and unshare, role change and added person
-- (each writes ai_audit), and with any change to ai_users (a team moved: its sync stamp).
-- The dashboard keeps a viewer's visible runs for as long as this version and its mirror's
-- content stay the same, instead of asking Postgres for them on every page view.
-- SECURITY DEFINER: the application role cannot read the audit log (admins only).

CREATE FUNCTION ai_access_version() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path FROM CURRENT AS $$
    SELECT concat_ws(':', (SELECT coalesce(max(id), 0) FROM ai_audit),
                          (SELECT coalesce(max(sync_xid)::text, '0') FROM ai_users),
                          (SELECT count(*) FROM ai_users))
$$;
