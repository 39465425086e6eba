"""SECURITY DEFINER functions cannot be fooled by temporary tables (migration 0014,
docs/access.md).

Each test connects as the application role `ai_runs_app`, creates a temporary table with
the name of a table a SECURITY DEFINER function reads or writes, and shows the function
still uses the real one. The test databases are clones of a template and a clone keeps
PUBLIC's default TEMPORARY privilege, so the role can create the temporary tables here and
what is tested is the function's pinned search path itself; the revocation of TEMPORARY
from the role is tested on a freshly migrated database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import conninfo, errors
from psycopg.rows import dict_row

import ingest
from ingest.store import database, embedded
from ingest.transfer import bulk

PEOPLE = [("alice", "red", "member"), ("bob", "red", "member"), ("grace", "blue", "admin")]

SHADOWS = {
    "ai_users": "id text, display_name text, email text, team text, role text, sync_xid xid8",
    "ai_run_shares": "run_id uuid, user_id text, permission text",
    "ai_runs": "id uuid, user_id text, task_count integer, total_tokens bigint, "
    "total_cost numeric, last_message_at timestamptz",
    "ai_audit": "id bigint, at timestamptz, actor text, action text, run_id uuid, "
    "subject text, detail jsonb",
    "ai_sync_deletions": "table_name text, id text, sync_xid xid8, deleted_at timestamptz",
    "ai_task_redactions": "task_ref uuid, fields jsonb, masks bigint",
}


@pytest.fixture
def world(db_url):
    """Three people with one run and one finished task each, written as the owner."""
    runs, tasks = {}, {}
    with ingest.Tracker(db_url) as owner:
        for uid, team, role in PEOPLE:
            owner.upsert_user(uid, uid.title(), f"{uid}@example.com", team, role)
            run = owner.create_run("chat", name=f"{uid}'s run", user_id=uid)
            task = owner.create_task(run["id"], provider="openai", model="gpt-4o", user_id=uid)
            owner.complete_task(task["task_id"], "ok", tokens_input=10, tokens_output=5)
            runs[uid], tasks[uid] = str(run["id"]), task["task_id"]
    return db_url, runs, tasks


@contextmanager
def shadowed(url: str, viewer: str, *tables: str) -> Iterator[psycopg.Connection]:
    """One transaction as the application role for `viewer`, with temporary tables named
    like `tables` created first (and committed at the end)."""
    with psycopg.connect(database.app_url(url), row_factory=dict_row) as conn:
        conn.execute("SELECT set_config('ai_runs.viewer', %s, true)", (viewer,))
        for table in tables:
            conn.execute(f"CREATE TEMP TABLE {table} ({SHADOWS[table]})")
        yield conn
        conn.commit()


def owner_rows(url: str, query: str, *params: object) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()


def test_the_application_role_may_create_temporary_tables_in_these_tests(world):
    url, _, _ = world
    with psycopg.connect(database.app_url(url)) as conn:
        assert conn.execute(
            "SELECT has_database_privilege(current_user, current_database(), 'TEMPORARY')"
        ).fetchone() == (True,)


def test_a_temporary_ai_users_does_not_make_a_stranger_an_admin(world):
    url, runs, _ = world
    with shadowed(url, "mallory", "ai_users") as conn:
        conn.execute(
            "INSERT INTO pg_temp.ai_users (id, team, role) VALUES ('mallory', 'red', 'admin')"
        )
        viewer = conn.execute(
            "SELECT ai_viewer_id() AS id, ai_viewer_role() AS role, "
            "ai_viewer_sees_all() AS sees_all, "
            "(SELECT count(*) FROM ai_viewer_team_members()) AS team"
        ).fetchone()
        seen = conn.execute("SELECT count(*) AS n FROM public.ai_runs").fetchone()["n"]
        renamed = conn.execute(
            "UPDATE public.ai_runs SET name = 'pwned' WHERE id = %s", (runs["alice"],)
        ).rowcount
    assert viewer == {"id": None, "role": None, "sees_all": False, "team": 0}
    assert seen == 0 and renamed == 0
    assert owner_rows(url, "SELECT name FROM ai_runs WHERE id = %s", runs["alice"]) == [
        {"name": "alice's run"}
    ]


def test_a_temporary_ai_users_does_not_make_a_member_a_manager_of_the_team(world):
    url, runs, _ = world
    with shadowed(url, "alice", "ai_users") as conn:
        conn.execute(
            "INSERT INTO pg_temp.ai_users (id, team, role) "
            "VALUES ('alice', 'red', 'manager'), ('bob', 'red', 'member')"
        )
        team = conn.execute("SELECT ai_viewer_team_members() AS id").fetchall()
        seen = {r["id"] for r in conn.execute("SELECT id::text AS id FROM public.ai_runs")}
    assert team == [] and seen == {runs["alice"]}


def test_a_temporary_ai_run_shares_does_not_share_another_members_run(world):
    url, runs, _ = world
    with shadowed(url, "alice", "ai_run_shares") as conn:
        conn.execute(
            "INSERT INTO pg_temp.ai_run_shares VALUES (%s, 'alice', 'edit')", (runs["bob"],)
        )
        shared = conn.execute("SELECT count(*) AS n FROM ai_viewer_shared_runs(false)").fetchone()
        seen = {r["id"] for r in conn.execute("SELECT id::text AS id FROM public.ai_runs")}
        renamed = conn.execute(
            "UPDATE public.ai_runs SET name = 'pwned' WHERE id = %s", (runs["bob"],)
        ).rowcount
    assert shared["n"] == 0 and seen == {runs["alice"]} and renamed == 0


def test_a_temporary_ai_runs_does_not_let_a_member_into_another_members_run(world):
    url, runs, _ = world
    before = owner_rows(url, "SELECT * FROM ai_tasks ORDER BY id")
    with psycopg.connect(database.app_url(url)) as conn:
        conn.execute("SELECT set_config('ai_runs.viewer', 'alice', true)")
        conn.execute(f"CREATE TEMP TABLE ai_runs ({SHADOWS['ai_runs']})")
        conn.execute(
            "INSERT INTO pg_temp.ai_runs (id, user_id) VALUES (%s, 'alice')", (runs["bob"],)
        )
        may = conn.execute(
            "SELECT public.ai_viewer_may_edit_run(%s), public.ai_viewer_owns_run(%s)",
            (runs["bob"], runs["bob"]),
        ).fetchone()
        assert may == (False, False)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO public.ai_tasks (run_id, task_id, user_id, provider, model) "
                "VALUES (%s, %s, 'alice', 'openai', 'gpt-4o')",
                (runs["bob"], uuid.uuid4()),
            )
        conn.rollback()
        conn.execute("SELECT set_config('ai_runs.viewer', 'alice', true)")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO public.ai_run_shares (run_id, user_id, permission) "
                "VALUES (%s, 'alice', 'edit')",
                (runs["bob"],),
            )
    assert owner_rows(url, "SELECT * FROM ai_tasks ORDER BY id") == before


def test_a_temporary_ai_runs_does_not_keep_a_task_out_of_its_runs_totals(world):
    url, runs, _ = world
    with shadowed(url, "alice", "ai_runs") as conn:
        conn.execute(
            "INSERT INTO pg_temp.ai_runs (id, user_id, task_count, total_tokens, total_cost) "
            "VALUES (%s, 'alice', 0, 0, 0)",
            (runs["alice"],),
        )
        conn.execute(
            "INSERT INTO public.ai_tasks (run_id, task_id, user_id, provider, model, "
            "tokens_input, tokens_output, cost) "
            "VALUES (%s, %s, 'alice', 'openai', 'gpt-4o', 100, 20, 0.5)",
            (runs["alice"], uuid.uuid4()),
        )
    run = owner_rows(
        url, "SELECT task_count, total_tokens FROM ai_runs WHERE id = %s", runs["alice"]
    )
    assert run == [{"task_count": 2, "total_tokens": 135}]
    assert database.run_totals_mismatches(url) == []


def test_a_temporary_ai_audit_does_not_swallow_audit_rows(world):
    url, runs, tasks = world
    with shadowed(url, "alice", "ai_audit") as conn:
        conn.execute(
            "UPDATE public.ai_runs SET status = 'archived' WHERE id = %s", (runs["alice"],)
        )
        conn.execute(
            "INSERT INTO public.ai_run_shares (run_id, user_id, permission) "
            "VALUES (%s, 'bob', 'view')",
            (runs["alice"],),
        )
        conn.execute("DELETE FROM public.ai_run_shares WHERE run_id = %s", (runs["alice"],))
        conn.execute("DELETE FROM public.ai_runs WHERE id = %s", (runs["alice"],))
        shadow = conn.execute("SELECT count(*) AS n FROM pg_temp.ai_audit").fetchone()["n"]
    with shadowed(url, "grace", "ai_audit") as conn:
        conn.execute(
            "INSERT INTO public.ai_users (id, display_name, role) VALUES ('erin', 'Erin', 'member')"
        )
        conn.execute("UPDATE public.ai_users SET role = 'manager' WHERE id = 'bob'")
        version = conn.execute("SELECT ai_access_version() AS v").fetchone()["v"]
    audit = owner_rows(url, "SELECT actor, action, run_id::text AS run, subject FROM ai_audit")
    assert shadow == 0
    assert [(a["actor"], a["action"], a["run"]) for a in audit if a["actor"] == "alice"] == [
        ("alice", "archive", runs["alice"]),
        ("alice", "share", runs["alice"]),
        ("alice", "unshare", runs["alice"]),
        ("alice", "purge", runs["alice"]),
    ]
    by_admin = [(a["action"], a["subject"]) for a in audit if a["actor"] == "grace"]
    assert by_admin == [("user_added", "erin"), ("role_change", "bob")]
    newest = owner_rows(url, "SELECT max(id) AS id FROM ai_audit")[0]["id"]
    assert version.split(":")[0] == str(newest)


def test_a_temporary_ai_sync_deletions_does_not_hide_a_deletion_from_the_mirror(world):
    url, runs, tasks = world
    task_row = owner_rows(
        url, "SELECT id::text AS id FROM ai_tasks WHERE task_id = %s", tasks["alice"]
    )
    with shadowed(url, "alice", "ai_sync_deletions") as conn:
        conn.execute("DELETE FROM public.ai_tasks WHERE task_id = %s", (tasks["alice"],))
        conn.execute("DELETE FROM public.ai_runs WHERE id = %s", (runs["alice"],))
        shadow = conn.execute("SELECT count(*) AS n FROM pg_temp.ai_sync_deletions").fetchone()
    logged = owner_rows(url, "SELECT table_name, id FROM ai_sync_deletions ORDER BY table_name")
    assert shadow["n"] == 0
    assert logged == [
        {"table_name": "ai_runs", "id": runs["alice"]},
        {"table_name": "ai_tasks", "id": task_row[0]["id"]},
    ]


def test_a_temporary_ai_task_redactions_does_not_keep_a_deleted_tasks_masks(world):
    url, _, tasks = world
    task_ref = owner_rows(url, "SELECT id FROM ai_tasks WHERE task_id = %s", tasks["alice"])
    with shadowed(url, "alice") as conn:
        conn.execute(
            "INSERT INTO public.ai_task_redactions (task_ref, fields, masks) "
            "VALUES (%s, '{\"request_text\": 2}', 2)",
            (task_ref[0]["id"],),
        )
    with shadowed(url, "alice", "ai_task_redactions") as conn:
        conn.execute(
            "INSERT INTO pg_temp.ai_task_redactions VALUES (%s, '{}', 0)", (task_ref[0]["id"],)
        )
        conn.execute("DELETE FROM public.ai_tasks WHERE task_id = %s", (tasks["alice"],))
    assert owner_rows(url, "SELECT * FROM ai_task_redactions") == []


def test_every_security_definer_function_pins_a_search_path_with_pg_temp_last(db_url):
    with psycopg.connect(db_url) as conn:
        functions = conn.execute(
            "SELECT p.oid::regprocedure::text, "
            "       (SELECT c FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%%') "
            "  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            " WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            " ORDER BY 1"
        ).fetchall()
    assert len(functions) >= 16
    unpinned = [
        (name, setting)
        for name, setting in functions
        if setting is None
        or not setting.replace(" ", "").endswith(",pg_temp")
        or not setting.replace(" ", "").startswith("search_path=pg_catalog,")
    ]
    assert unpinned == []


def test_a_migrated_database_gives_the_application_role_no_temporary_tables(empty_db_url):
    database.migrate(empty_db_url)
    with psycopg.connect(database.app_url(empty_db_url)) as conn:
        privilege = conn.execute(
            "SELECT has_database_privilege(current_user, current_database(), 'TEMPORARY')"
        ).fetchone()
        assert privilege == (False,)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("CREATE TEMP TABLE ai_users (id text)")
    # The owner keeps it: the bulk path stages a batch with duplicates in a temporary table.
    run = {"id": str(uuid.uuid4()), "user_id": "ada", "source_type": "chat", "name": "r"}
    line = bulk.encode_row(("id", "user_id", "source_type", "name"), run)
    batch = bulk.Batch("ai_runs", ("id", "user_id", "source_type", "name"), [line], [run["id"]])
    with bulk.BulkWriter(empty_db_url) as writer:
        assert writer.write(batch)[0].inserted == 1
        again = writer.write(batch)[0]
    assert (again.inserted, again.duplicates) == (0, 1)


@pytest.fixture
def plain_owner(pg_server, template_db) -> Iterator[tuple[str, str]]:
    """A login role that is neither superuser nor CREATEROLE, owning one new database and
    not owning another (with CREATE there): (url of the owned, url of the other)."""
    role = f"ai_runs_dbo_{os.getpid()}"
    owned, other = f"{role}_owned", f"{role}_other"
    admin = psycopg.connect(pg_server, autocommit=True)
    admin.execute(f"CREATE ROLE {role} LOGIN")
    admin.execute(f"CREATE DATABASE {owned} OWNER {role}")
    admin.execute(f"CREATE DATABASE {other}")
    admin.execute(f"GRANT CREATE ON DATABASE {other} TO {role}")
    urls = []
    for name in (owned, other):
        with psycopg.connect(embedded.with_database(pg_server, name), autocommit=True) as c:
            c.execute(f"GRANT ALL ON SCHEMA public TO {role}")
        params = conninfo.conninfo_to_dict(embedded.with_database(pg_server, name))
        params["user"] = role
        params.pop("password", None)
        urls.append(conninfo.make_conninfo(**params))
    try:
        yield urls[0], urls[1]
    finally:
        for name in (owned, other):
            embedded.drop_database(admin, name)
        admin.execute(f"DROP OWNED BY {role}")
        admin.execute(f"DROP ROLE {role}")
        admin.close()


def test_temporary_is_revoked_by_a_database_owner_and_left_by_a_role_that_is_not(plain_owner):
    owned, other = plain_owner
    privileges = (
        "SELECT has_database_privilege('ai_runs_app', current_database(), 'TEMPORARY'), "
        "       has_database_privilege(current_user, current_database(), 'TEMPORARY')"
    )
    for url in (owned, other):
        database.migrate(url)
    with psycopg.connect(owned) as conn:
        assert conn.execute(privileges).fetchone() == (False, True)
    with psycopg.connect(other) as conn:  # only the owner may revoke it: the migration says so
        assert conn.execute(privileges).fetchone() == (True, True)
