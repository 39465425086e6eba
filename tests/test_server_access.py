"""Row-level security through the HTTP server (docs/server.md, docs/access.md): real HTTP
against a real uvicorn server and real Postgres. Each key acts as its user; Postgres, not
Python, decides what the key reads and changes."""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

import ingest
from ingest.server.keys import create_key
from ingest.server.viewer_trackers import ViewerTrackers
from ingest.store import database
from tests.server_support import serve

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers

PEOPLE = [
    ("alice", "red", "member"),
    ("bob", "red", "member"),
    ("carol", "red", "manager"),
    ("dave", "blue", "member"),
    ("root", "blue", "admin"),
]


def snapshot(url: str) -> list[dict]:
    """Every run, task and share as the owner sees them (a refused write changes none)."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        runs = conn.execute("SELECT * FROM ai_runs ORDER BY id").fetchall()
        tasks = conn.execute("SELECT * FROM ai_tasks ORDER BY id").fetchall()
        shares = conn.execute("SELECT * FROM ai_run_shares ORDER BY run_id, user_id").fetchall()
    return runs + tasks + shares


class World:
    """Five people with a key each; every person made one run with one task over HTTP."""

    def __init__(self, served, keys: dict[str, str]) -> None:
        self.served = served
        self.url = served.url
        self.keys = keys
        self.runs: dict[str, str] = {}
        self.tasks: dict[str, str] = {}

    def client(self, who: str) -> httpx.Client:
        return self.served.client(self.keys[who])

    def share(self, run_owner: str, recipient: str, permission: str) -> None:
        with ingest.Tracker(self.url, viewer=run_owner) as owner:
            owner.share_run(self.runs[run_owner], recipient, permission)

    def unshare(self, run_owner: str, recipient: str) -> None:
        with ingest.Tracker(self.url, viewer=run_owner) as owner:
            assert owner.unshare_run(self.runs[run_owner], recipient)


@pytest.fixture
def world(db_url):
    with ingest.Tracker(db_url) as owner:
        for uid, team, role in PEOPLE:
            owner.upsert_user(uid, uid.title(), f"{uid}@example.com", team, role)
    with serve(db_url, user="alice", debounce_seconds=0.2) as served:
        keys = {"alice": served.key}
        keys.update({uid: create_key(uid, url=db_url)[0] for uid, _, _ in PEOPLE[1:]})
        w = World(served, keys)
        for uid, _, _ in PEOPLE:
            with w.client(uid) as c:
                messages = [{"role": "user", "content": f"secret of {uid}"}]
                run = c.post("/v1/runs", json={"source_type": "chat", "messages": messages})
                assert run.status_code == 201, run.text
                w.runs[uid] = run.json()["id"]
                task = c.post("/v1/tasks", json={"run_id": w.runs[uid], "model": "gpt-4o"})
                assert task.status_code == 201, task.text
                w.tasks[uid] = task.json()["task_id"]
        yield w


def listed(c: httpx.Client, **params) -> set[str]:
    page = c.get("/v1/runs", params={"limit": 1000, **params})
    assert page.status_code == 200, page.text
    return {row["id"] for row in page.json()["rows"]}


def refusals(c: httpx.Client, run: str, task: str) -> dict[str, httpx.Response]:
    """Every change of another's run and task the REST API offers, attempted once."""
    return {
        "rename": c.patch(f"/v1/runs/{run}", json={"name": "pwned"}),
        "star": c.patch(f"/v1/runs/{run}", json={"is_starred": True}),
        "tag": c.patch(f"/v1/runs/{run}", json={"tags": ["x"]}),
        "archive": c.post(f"/v1/runs/{run}/archive"),
        "restore": c.post(f"/v1/runs/{run}/restore"),
        "delete": c.delete(f"/v1/runs/{run}"),
        "message": c.post(f"/v1/runs/{run}/messages", json={"role": "user", "content": "hi"}),
        "new task": c.post("/v1/tasks", json={"run_id": run, "model": "gpt-4o"}),
        "update": c.post(f"/v1/tasks/{task}/updates", json={"response_text": "x"}),
        "complete": c.post(f"/v1/tasks/{task}/complete", json={"response_text": "x"}),
        "fail": c.post(f"/v1/tasks/{task}/fail", json={"error": "x"}),
        "cancel": c.post(f"/v1/tasks/{task}/cancel", json={"reason": "x"}),
    }


def test_a_members_key_cannot_read_list_or_change_another_members_run(world):
    before = snapshot(world.url)
    with world.client("bob") as c:
        assert listed(c, status="all") == {world.runs["bob"]}
        assert listed(c, status="all", user_id="alice") == set()
        assert c.get(f"/v1/runs/{world.runs['alice']}").status_code == 404
        missing = c.get(f"/v1/tasks/{world.tasks['alice']}")
        assert missing.status_code == 404 and missing.json()["error"]["field"] == "task_id"
        fork = c.post(f"/v1/runs/{world.runs['alice']}/fork", json={"at_message": 0})
        assert fork.status_code == 404
        answers = refusals(c, world.runs["alice"], world.tasks["alice"])
    assert {what: a.status_code for what, a in answers.items()} == dict.fromkeys(answers, 404)
    assert answers["new task"].json()["error"]["field"] == "run_id"
    assert "does not exist" in answers["rename"].json()["error"]["problem"]
    assert snapshot(world.url) == before


def test_a_run_shared_for_view_is_readable_but_a_change_is_403_and_changes_nothing(world):
    run, task = world.runs["alice"], world.tasks["alice"]
    world.share("alice", "bob", "view")
    before = snapshot(world.url)
    with world.client("bob") as c:
        got = c.get(f"/v1/runs/{run}")
        assert got.status_code == 200 and got.json()["messages"][0]["content"] == "secret of alice"
        assert [t["task_id"] for t in got.json()["tasks"]] == [task]
        assert c.get(f"/v1/tasks/{task}").status_code == 200
        assert listed(c) == {run, world.runs["bob"]}
        assert listed(c, user_id="alice") == {run}
        answers = refusals(c, run, task)
        assert {what: a.status_code for what, a in answers.items()} == dict.fromkeys(answers, 403)
        error = answers["rename"].json()["error"]
        assert error["field"] == "run_id" and "'bob'" in error["problem"]
        assert "read it but not change it" in error["problem"]
        assert "shared with for edit" in error["problem"]  # says who may
        assert answers["complete"].json()["error"]["field"] == "task_id"
        assert snapshot(world.url) == before
        fork = c.post(f"/v1/runs/{run}/fork", json={"at_message": 0})  # reading is enough
        assert fork.status_code == 201 and fork.json()["user_id"] == "bob"


def test_a_run_shared_for_edit_can_be_changed_and_unsharing_acts_on_the_next_request(world):
    run = world.runs["alice"]
    world.share("alice", "bob", "edit")
    with world.client("bob") as c:
        renamed = c.patch(f"/v1/runs/{run}", json={"name": "edited by bob", "tags": ["b"]})
        assert renamed.status_code == 200 and renamed.json()["name"] == "edited by bob"
        assert c.post(f"/v1/runs/{run}/messages", json={"role": "assistant"}).status_code == 201
        task = c.post("/v1/tasks", json={"run_id": run, "model": "gpt-4o"}).json()
        assert task["user_id"] == "bob"
        tid = task["task_id"]
        assert c.post(f"/v1/tasks/{tid}/updates", json={"response_text": "a"}).json()["written"]
        done = c.post(f"/v1/tasks/{tid}/complete", json={"response_text": "ab"})
        assert done.status_code == 200 and done.json()["status"] == "completed"
        assert c.post(f"/v1/runs/{run}/archive").json()["status"] == "archived"
        assert c.post(f"/v1/runs/{run}/restore").json()["status"] == "active"
        world.unshare("alice", "bob")
        assert c.get(f"/v1/runs/{run}").status_code == 404
        assert c.patch(f"/v1/runs/{run}", json={"name": "again"}).status_code == 404
        assert c.get(f"/v1/tasks/{tid}").status_code == 404  # his task follows the run
        assert run not in listed(c)
    with world.client("alice") as c:
        stored = c.get(f"/v1/runs/{run}").json()
        assert stored["name"] == "edited by bob" and stored["task_count"] == 2
    assert database.run_totals_mismatches(world.url) == []


def test_a_managers_key_lists_the_team_but_not_another_team_and_changes_nothing(world):
    before = snapshot(world.url)
    red = {world.runs[uid] for uid in ("alice", "bob", "carol")}
    with world.client("carol") as c:
        assert listed(c) == red
        assert listed(c, user_id="dave") == set()
        assert c.get(f"/v1/runs/{world.runs['alice']}").status_code == 200
        assert c.get(f"/v1/tasks/{world.tasks['bob']}").status_code == 200
        assert c.get(f"/v1/runs/{world.runs['dave']}").status_code == 404
        assert c.patch(f"/v1/runs/{world.runs['alice']}", json={"name": "x"}).status_code == 403
        assert c.delete(f"/v1/runs/{world.runs['dave']}").status_code == 404
    assert snapshot(world.url) == before


def test_an_admins_key_sees_and_changes_every_run(world):
    with world.client("root") as c:
        assert listed(c) == set(world.runs.values())
        assert listed(c, user_id="dave") == {world.runs["dave"]}
        page = c.get("/v1/runs", params={"limit": 2}).json()
        assert page["total"] == len(PEOPLE) and len(page["rows"]) == 2
        renamed = c.patch(f"/v1/runs/{world.runs['dave']}", json={"name": "by root"})
        assert renamed.status_code == 200 and renamed.json()["user_id"] == "dave"
        assert c.delete(f"/v1/runs/{world.runs['dave']}").json()["status"] == "deleted"


def test_a_key_for_someone_not_in_ai_users_adds_them_as_a_member(world):
    key, row = create_key("newcomer", "first key", url=world.url)
    assert row["user_id"] == "newcomer"
    with psycopg.connect(world.url, row_factory=dict_row) as conn:
        person = conn.execute(
            "SELECT display_name, role, team FROM ai_users WHERE id = 'newcomer'"
        ).fetchone()
    assert person == {"display_name": "newcomer", "role": "member", "team": None}
    create_key("root", url=world.url)  # an existing person keeps their role
    with ingest.Tracker(world.url, viewer="root") as root:
        assert root.whoami()["role"] == "admin"
    with world.served.client(key) as c:
        made = c.post("/v1/runs", json={"source_type": "prompt", "name": "mine"})
        assert made.status_code == 201 and made.json()["user_id"] == "newcomer"
        assert listed(c) == {made.json()["id"]}
        assert c.get(f"/v1/runs/{world.runs['alice']}").status_code == 404


def test_migration_0013_makes_live_key_users_members(empty_db_url):
    database.migrate(empty_db_url, target=12)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO ai_users (id, display_name, role) VALUES ('max', 'Max', 'admin')")
        for user, revoked in (("kim", False), ("kim", False), ("lee", True), ("max", False)):
            conn.execute(
                "INSERT INTO ai_api_keys (key_hash, prefix, user_id, revoked_at) "
                "VALUES (%s, 'air_x', %s, CASE WHEN %s THEN now() END)",
                (uuid.uuid4().hex, user, revoked),
            )
    assert database.migrate(empty_db_url) == [m.version for m in database.migrations()][12:]
    with psycopg.connect(empty_db_url) as conn:
        people = conn.execute("SELECT id, display_name, role FROM ai_users ORDER BY id").fetchall()
    assert people == [("kim", "kim", "member"), ("max", "Max", "admin")]


def test_evicted_trackers_write_what_they_buffered(db_url):
    """A bounded cache: taking a slot closes the least recently used idle Tracker, which
    writes its buffered update first; close() writes the rest."""
    with ingest.Tracker(db_url) as owner:
        for uid in ("ann", "ben"):
            owner.upsert_user(uid)
        tasks = {}
        for uid in ("ann", "ben"):
            run = owner.create_run("chat", user_id=uid)
            tasks[uid] = owner.create_task(run["id"], user_id=uid)["task_id"]
    trackers = ViewerTrackers(db_url, debounce_seconds=60, capacity=1)

    def stream(who: str, text: str) -> bool:
        with trackers.lease(who, tasks[who]) as tracker:
            return tracker.update_task(tasks[who], text).written

    def stored(who: str) -> str | None:
        with ingest.Tracker(db_url) as owner:
            return owner.get_task(tasks[who])["response_text"]

    assert stream("ann", "a") and not stream("ann", "ab")  # the second one is buffered
    assert stored("ann") == "a"
    assert stream("ben", "b") and len(trackers) == 1  # ann's tracker was evicted...
    assert stored("ann") == "ab"  # ...and wrote its buffer when closed
    assert not stream("ben", "bc")
    trackers.flush()
    assert stored("ben") == "bc"
    assert not stream("ben", "bcd")
    trackers.close()
    assert stored("ben") == "bcd" and len(trackers) == 0
