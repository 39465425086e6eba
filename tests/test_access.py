"""Break-in tests of row-level security (docs/access.md), on real Postgres: what each role
reads and may change through the Tracker, and through raw SQL as the application role."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.rows import dict_row

import ingest
from ingest.access import viewer
from ingest.errors import AccessDeniedError, NotFoundError, ValidationError
from ingest.store import database

PEOPLE = [
    ("alice", "red", "member"),
    ("bob", "red", "member"),
    ("carol", "red", "manager"),
    ("dave", "blue", "member"),
    ("root", "blue", "admin"),
]


@pytest.fixture
def world(db_url):
    """Five people, one run with one finished task each (owned by them), as the owner."""
    owner = ingest.Tracker(db_url)
    runs, tasks = {}, {}
    for uid, team, role in PEOPLE:
        owner.upsert_user(uid, uid.title(), f"{uid}@example.com", team, role)
        message = {"role": "user", "content": f"secret of {uid}"}
        run = owner.create_run("chat", name=f"{uid}'s run", user_id=uid, messages=[message])
        task = owner.create_task(run["id"], provider="openai", model="gpt-4o", user_id=uid)
        owner.complete_task(task["task_id"], "ok", tokens_input=10, tokens_output=5)
        runs[uid], tasks[uid] = run["id"], task["task_id"]
    yield db_url, owner, runs, tasks
    owner.close()


def as_(url: str, who: str) -> ingest.Tracker:
    return ingest.Tracker(url, viewer=who)


def snapshot(url: str) -> list[dict]:
    """Every run and task as the owner sees them (to prove a refused write changed nothing)."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        runs = conn.execute("SELECT * FROM ai_runs ORDER BY id").fetchall()
        tasks = conn.execute("SELECT * FROM ai_tasks ORDER BY id").fetchall()
        shares = conn.execute("SELECT * FROM ai_run_shares ORDER BY run_id, user_id").fetchall()
    return runs + tasks + shares


def test_the_application_role_does_not_bypass_row_level_security(db_url):
    with psycopg.connect(database.app_url(db_url)) as conn:
        me, superuser, bypass = conn.execute(
            "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        owners = conn.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE tablename IN "
            "('ai_runs', 'ai_tasks', 'ai_run_shares')"
        ).fetchall()
        secured = conn.execute(
            "SELECT relname FROM pg_class WHERE relrowsecurity AND relname IN "
            "('ai_runs', 'ai_tasks', 'ai_run_shares', 'ai_users', 'ai_audit') ORDER BY 1"
        ).fetchall()
    assert me == database.APP_ROLE and not superuser and not bypass
    assert (me,) not in owners
    assert len(secured) == 5


def test_each_role_reads_exactly_its_runs(world):
    url, _, runs, _ = world
    expected = {
        "alice": {"alice"},
        "bob": {"bob"},
        "carol": {"alice", "bob", "carol"},
        "dave": {"dave"},
        "root": {uid for uid, _, _ in PEOPLE},
        "stranger": set(),  # signed in, but not in ai_users: sees nothing
    }
    for who, owners in expected.items():
        tracker = as_(url, who)
        want = {runs[o] for o in owners}
        assert set(tracker.visible_run_ids()) == want, who
        page = tracker.list_runs(limit=100)
        assert {r["id"] for r in page.rows} == want and page.total == len(want), who
        visible = viewer.visible_runs(url, who)
        assert visible is None if who == "root" else set(visible) == {str(r) for r in want}


def test_a_member_cannot_read_or_change_another_members_run_or_task(world):
    url, _, runs, tasks = world
    bob = as_(url, "bob")
    before = snapshot(url)
    theirs, their_task = runs["alice"], tasks["alice"]
    attempts = [
        lambda: bob.get_run(theirs),
        lambda: bob.get_task(their_task),
        lambda: bob.rename_run(theirs, "pwned"),
        lambda: bob.star_run(theirs),
        lambda: bob.set_tags(theirs, ["x"]),
        lambda: bob.archive_run(theirs),
        lambda: bob.delete_run(theirs),
        lambda: bob.restore_run(theirs),
        lambda: bob.purge_run(theirs),
        lambda: bob.fork_run(theirs, 0),
        lambda: bob.add_message(theirs, "user", "injected"),
        lambda: bob.share_run(theirs, "bob", "edit"),
        lambda: bob.unshare_run(theirs, "alice"),
        lambda: bob.complete_task(their_task, "overwritten"),
        lambda: bob.fail_task(their_task, "x"),
    ]
    for attempt in attempts:
        with pytest.raises((NotFoundError, AccessDeniedError)):
            attempt()
    with pytest.raises(NotFoundError):  # a run bob cannot read is missing to him
        bob.create_task(theirs, provider="openai", model="gpt-4o")
    with pytest.raises(AccessDeniedError, match="row-level security"):
        bob.create_run("chat", name="as alice", user_id="alice")
    assert snapshot(url) == before


def test_raw_sql_as_the_application_role_changes_nothing_of_another(world):
    url, _, runs, tasks = world
    before = snapshot(url)
    with viewer.connect_as(url, "bob") as conn:
        assert conn.execute("SELECT count(*) AS n FROM ai_runs").fetchone()["n"] == 1
        assert conn.execute("SELECT count(*) AS n FROM ai_tasks").fetchone()["n"] == 1
        run, task = runs["alice"], tasks["alice"]
        for statement, values in [
            ("UPDATE ai_runs SET name = 'x', status = 'deleted' WHERE id = %s", (run,)),
            ("DELETE FROM ai_runs WHERE id = %s", (run,)),
            ("UPDATE ai_tasks SET cost = 99 WHERE task_id = %s", (task,)),
            ("DELETE FROM ai_tasks WHERE task_id = %s", (task,)),
            ("DELETE FROM ai_run_shares", ()),
            ("UPDATE ai_users SET role = 'admin' WHERE id = 'bob'", ()),
        ]:
            assert conn.execute(statement, values).rowcount == 0, statement
    for statement, values in [
        ("INSERT INTO ai_run_shares (run_id, user_id, permission) VALUES (%s, 'bob', 'edit')",
         (runs["alice"],)),
        ("INSERT INTO ai_tasks (run_id, task_id) VALUES (%s, gen_random_uuid())",
         (runs["alice"],)),
        ("INSERT INTO ai_runs (source_type, user_id) VALUES ('chat', 'alice')", ()),
        ("SELECT count(*) FROM ai_sync_deletions", ()),
        ("TRUNCATE ai_tasks", ()),
    ]:  # fmt: skip
        refused = pytest.raises(psycopg.errors.InsufficientPrivilege)
        with refused, viewer.connect_as(url, "bob") as conn:
            conn.execute(statement, values)
    assert snapshot(url) == before


def test_share_and_unshare_take_effect_at_the_next_query(world):
    url, _, runs, tasks = world
    alice, bob = as_(url, "alice"), as_(url, "bob")
    run = runs["alice"]
    with pytest.raises(NotFoundError):
        bob.get_run(run)
    share = alice.share_run(run, "bob")
    assert share["permission"] == "view" and share["created_by"] == "alice"
    assert bob.get_run(run)["name"] == "alice's run"
    assert run in bob.visible_run_ids()
    assert str(run) in viewer.visible_runs(url, "bob")
    with pytest.raises(AccessDeniedError, match="read it but not change"):
        bob.rename_run(run, "mine now")
    with pytest.raises(AccessDeniedError, match="bob.*read it but not add tasks to"):
        bob.create_task(run, provider="openai", model="gpt-4o")
    alice.share_run(run, "bob", "edit")
    assert bob.rename_run(run, "edited by bob")["name"] == "edited by bob"
    task = bob.create_task(run, provider="openai", model="gpt-4o", user_id="bob")
    bob.complete_task(task["task_id"], "from bob", tokens_input=1, tokens_output=1)
    assert alice.get_run(run)["task_count"] == 2  # totals triggers work for the app role
    assert database.run_totals_mismatches(url) == []
    with pytest.raises(AccessDeniedError, match="only its owner or an admin"):
        bob.purge_run(run)
    assert alice.unshare_run(run, "bob") is True
    assert alice.unshare_run(run, "bob") is False
    with pytest.raises(NotFoundError):
        bob.get_run(run)
    assert str(run) not in viewer.visible_runs(url, "bob")
    with pytest.raises(ValidationError, match="permission"):
        alice.share_run(run, "bob", "own")
    with pytest.raises(ValidationError, match="user_id"):
        alice.share_run(run, "nobody", "view")


def test_a_manager_reads_the_team_but_changes_nothing_of_it(world):
    url, _, runs, _ = world
    carol = as_(url, "carol")
    assert carol.get_run(runs["alice"])["name"] == "alice's run"
    with pytest.raises(NotFoundError):
        carol.get_run(runs["dave"])
    before = snapshot(url)
    with pytest.raises(AccessDeniedError):
        carol.delete_run(runs["alice"])
    with pytest.raises(AccessDeniedError):
        carol.share_run(runs["alice"], "carol", "edit")
    assert snapshot(url) == before
    fork = carol.fork_run(runs["alice"], 0)
    assert fork["user_id"] == "carol"


def test_an_admin_changes_anything_and_the_audit_log_says_who(world):
    url, owner, runs, _ = world
    root, alice = as_(url, "root"), as_(url, "alice")
    root.delete_run(runs["dave"])
    root.restore_run(runs["dave"])
    alice.share_run(runs["alice"], "dave", "view")
    alice.unshare_run(runs["alice"], "dave")
    root.upsert_user("bob", role="manager")
    alice.purge_run(runs["alice"])
    log = root.audit_log()
    seen = [(e["actor"], e["action"], e["run_id"], e["subject"]) for e in log[:6]]
    assert seen == [
        ("alice", "purge", runs["alice"], None),
        ("root", "role_change", None, "bob"),
        ("alice", "unshare", runs["alice"], "dave"),
        ("alice", "share", runs["alice"], "dave"),
        ("root", "restore", runs["dave"], "dave"),
        ("root", "delete", runs["dave"], "dave"),
    ]
    names = [(e["actor_name"], e["run_name"], e["subject_name"]) for e in log[:2]]
    assert names == [  # names beside ids; a purged run has no name left to show
        ("Alice <alice@example.com>", "", ""),
        ("Root <root@example.com>", "", "Bob <bob@example.com>"),
    ]
    assert log[4]["run_name"] == "dave's run"  # the run's name beside its id
    assert alice.audit_log() == []  # members do not see the audit log
    with pytest.raises(AccessDeniedError):
        alice.upsert_user("alice", role="admin")
    assert owner.audit_log()[0]["action"] == "purge"


def test_unknown_and_blank_viewers(world):
    url, _, runs, _ = world
    stranger = as_(url, "stranger")
    assert stranger.whoami() == {"id": None, "role": None, "sees_all": False}
    assert stranger.visible_run_ids() == []
    with pytest.raises(AccessDeniedError):
        stranger.create_run("chat", name="hello")
    with pytest.raises(ValidationError, match="viewer"):
        ingest.Tracker(url, viewer=" ")
    assert as_(url, "root").whoami() == {"id": "root", "role": "admin", "sees_all": True}
    assert isinstance(runs["bob"], uuid.UUID)
