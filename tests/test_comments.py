"""Shared notes (ingest/tracking/comments.py, migration 0021) on real Postgres: comments on
runs and tasks, row-level security like the run, @mentions of people who may read it, the
limits of the text, deletes in the audit log, and the REST ways in."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.rows import dict_row

import ingest
from dashboard.command import main
from ingest.errors import AccessDeniedError, NotFoundError, ValidationError
from ingest.store import limits
from ingest.tracking.comments import mentioned_names
from tests.server_support import serve

# alice and bob are members of red, carol manages red, dave is in blue, root is an admin.
PEOPLE = [
    ("alice", "red", "member"),
    ("bob", "red", "member"),
    ("carol", "red", "manager"),
    ("dave", "blue", "member"),
    ("root", "ops", "admin"),
]


@pytest.fixture
def world(db_url):
    """alice's run with one task, shared with bob for viewing."""
    owner = ingest.Tracker(db_url)
    for uid, team, role in PEOPLE:
        owner.upsert_user(uid, uid.title(), f"{uid}@example.com", team, role)
    run = owner.create_run("chat", name="alice's run", user_id="alice")
    task = owner.create_task(run["id"], provider="openai", model="gpt-4o", user_id="alice")
    owner.complete_task(task["task_id"], "ok", tokens_input=10, tokens_output=5)
    owner.share_run(run["id"], "bob", "view")
    people = {uid: ingest.Tracker(db_url, viewer=uid) for uid, _, _ in PEOPLE}
    yield db_url, owner, people, run["id"], task["task_id"]
    for tracker in people.values():
        tracker.close()
    owner.close()


def stored_comments(url: str) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM ai_comments ORDER BY id").fetchall()


def audit_rows(url: str) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT * FROM ai_audit WHERE action = 'comment_removed' ORDER BY id"
        ).fetchall()


def test_everyone_who_may_read_the_run_comments_and_reads_the_others(world):
    url, _owner, people, run_id, task_id = world
    first = people["bob"].comment("Why is this slow?", run_id=run_id)
    second = people["carol"].comment("The retry doubled it.", task_id=task_id)
    assert (first["author"], first["run_id"], first["task_id"]) == ("bob", run_id, None)
    assert first["edited_at"] is None and first["created_at"] is not None
    assert (second["run_id"], second["task_id"]) == (run_id, task_id)
    on_run = people["alice"].comments(run_id=run_id)
    assert [c["text"] for c in on_run] == ["Why is this slow?"]
    everything = people["root"].comments(run_id=run_id, with_tasks=True)
    assert [c["author"] for c in everything] == ["bob", "carol"]
    assert [c["id"] for c in people["bob"].comments(task_id=task_id)] == [second["id"]]
    # dave (another team, no share) sees no comment and cannot write one
    with pytest.raises(NotFoundError):
        people["dave"].comments(run_id=run_id, with_tasks=True)
    with pytest.raises(NotFoundError):
        people["dave"].comment("let me in", run_id=run_id)
    with pytest.raises(NotFoundError):
        people["dave"].comment("let me in", task_id=task_id)
    assert len(stored_comments(url)) == 2


def test_a_comment_is_its_authors_to_edit_and_delete_and_an_admins_to_delete(world):
    url, _owner, people, run_id, _task_id = world
    note = people["bob"].comment("first take", run_id=run_id)
    edited = people["bob"].edit_comment(note["id"], "second take")
    assert edited["text"] == "second take" and edited["edited_at"] is not None
    for other in ("alice", "carol", "root"):  # the run's owner and an admin cannot edit it
        with pytest.raises(AccessDeniedError):
            people[other].edit_comment(note["id"], "rewritten")
    with pytest.raises(NotFoundError):
        people["dave"].edit_comment(note["id"], "rewritten")
    with pytest.raises(AccessDeniedError):
        people["alice"].delete_comment(note["id"])
    assert people["dave"].delete_comment(note["id"]) is False
    assert [c["text"] for c in stored_comments(url)] == ["second take"]
    assert people["bob"].delete_comment(note["id"]) is True
    other = people["carol"].comment("mine", run_id=run_id)
    assert people["root"].delete_comment(other["id"]) is True
    assert stored_comments(url) == []


def test_deletes_are_in_the_audit_log_and_tasks_take_their_comments(world, monkeypatch, capsys):
    url, owner, people, run_id, task_id = world
    note = people["bob"].comment("remove me", run_id=run_id)
    on_task = people["alice"].comment("on the task", task_id=task_id)
    people["bob"].delete_comment(note["id"])
    entries = people["root"].audit_log(10)
    removed = [e for e in entries if e["action"] == "comment_removed"]
    assert len(removed) == 1
    entry = removed[0]
    assert (entry["actor"], entry["run_id"], entry["subject"]) == ("bob", run_id, "bob")
    assert entry["detail"]["comment_id"] == note["id"]
    assert entry["detail"]["text"] == "remove me"
    assert people["bob"].audit_log(10) == []  # the log is for admins
    monkeypatch.setenv("DATABASE_URL", url)
    capsys.readouterr()
    assert main(["audit"]) == 0
    assert f"\tbob\tcomment_removed\t{run_id}\tbob\t" in capsys.readouterr().out
    # a task's comments go with it, without one audit row each
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM ai_tasks WHERE task_id = %s", (task_id,))
    assert [c["id"] for c in stored_comments(url)] == []
    assert len(audit_rows(url)) == 1
    assert on_task["id"] not in [c["id"] for c in owner.comments(run_id=run_id, with_tasks=True)]


def test_mentions_resolve_to_people_who_may_read_the_run(world):
    url, _owner, people, run_id, _task_id = world
    note = people["alice"].comment(
        "@bob and @carol@example.com: see @bob's retry. Mail me at alice@example.com.",
        run_id=run_id,
    )
    assert note["mentions"] == ["bob", "carol"]
    edited = people["alice"].edit_comment(note["id"], "@root only")
    assert edited["mentions"] == ["root"]
    assert stored_comments(url)[0]["mentions"] == ["root"]


@pytest.mark.parametrize(
    ("text", "who"),
    [
        ("cc @dave", "cannot read run"),
        ("cc @nobody", "no such person: @nobody"),
        ("cc @bob @dave @zed", "@dave"),
    ],
)
def test_a_mention_of_someone_who_cannot_read_the_run_writes_nothing(world, text, who):
    url, _owner, people, run_id, _task_id = world
    with pytest.raises(ValidationError) as refused:
        people["alice"].comment(text, run_id=run_id)
    assert refused.value.field == "mentions" and who in refused.value.problem
    assert stored_comments(url) == []
    kept = people["alice"].comment("plain", run_id=run_id)
    with pytest.raises(ValidationError) as on_edit:
        people["alice"].edit_comment(kept["id"], text)
    assert on_edit.value.field == "mentions"
    assert [c["text"] for c in stored_comments(url)] == ["plain"]


def test_the_database_refuses_a_mention_whoever_writes(world):
    url, _owner, _people, run_id, _task_id = world
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO ai_comments (run_id, author, text, mentions) "
            "VALUES (%s, 'alice', 'hi', ARRAY['dave'])",
            (run_id,),
        )


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("", "text"),
        ("   \n", "text"),
        ("x" * (limits.MAX_COMMENT_TEXT + 1), "text"),
        ("nul \x00 here", "text"),
        ("lone \ud800", "text"),
        (42, "text"),
        (" ".join(f"@p{i}" for i in range(limits.MAX_MENTIONS + 1)), "text"),
    ],
)
def test_bad_text_is_a_validation_error_naming_text(world, text, field):
    url, _owner, people, run_id, _task_id = world
    with pytest.raises(ValidationError) as refused:
        people["bob"].comment(text, run_id=run_id)
    assert refused.value.field == field
    assert stored_comments(url) == []


def test_the_longest_text_fits_and_other_bad_arguments(world):
    url, owner, people, run_id, task_id = world
    longest = people["bob"].comment("y" * limits.MAX_COMMENT_TEXT, run_id=run_id)
    assert len(longest["text"]) == limits.MAX_COMMENT_TEXT
    with pytest.raises(ValidationError) as neither:
        people["bob"].comment("hi")
    assert neither.value.field == "run_id"
    other = owner.create_run("chat", user_id="alice")
    with pytest.raises(ValidationError) as mismatch:
        people["bob"].comment("hi", run_id=other["id"], task_id=task_id)
    assert mismatch.value.field == "run_id"
    with pytest.raises(ValidationError) as bad_id:
        people["bob"].delete_comment("7")
    assert bad_id.value.field == "comment_id"
    with pytest.raises(ValidationError) as nobody:
        ingest.Tracker(url).comment("hi", run_id=run_id)
    assert nobody.value.field == "author"
    assert len(stored_comments(url)) == 1


def test_mention_names_are_found_where_a_reader_sees_them():
    assert mentioned_names("@a, @b.c. @a again; x@y.z (@d-) @e@f.io") == ["a", "b.c", "d", "e@f.io"]


def test_rest_comments_on_runs_and_tasks_as_the_keys_user(world):
    url, _owner, _people, run_id, task_id = world
    with serve(url, user="bob") as served, served.client() as client:
        made = client.post(f"/v1/runs/{run_id}/comments", json={"text": "hello @alice"})
        assert made.status_code == 201, made.text
        assert made.json()["author"] == "bob" and made.json()["mentions"] == ["alice"]
        on_task = client.post(
            f"/v1/runs/{run_id}/comments", json={"text": "this one", "task_id": str(task_id)}
        )
        assert on_task.status_code == 201, on_task.text
        listed = client.get(f"/v1/runs/{run_id}/comments")
        assert [c["text"] for c in listed.json()] == ["hello @alice", "this one"]
        only_task = client.get(f"/v1/runs/{run_id}/comments", params={"task_id": str(task_id)})
        assert [c["text"] for c in only_task.json()] == ["this one"]
        barred = client.post(f"/v1/runs/{run_id}/comments", json={"text": "cc @dave"})
        assert barred.status_code == 422 and barred.json()["error"]["field"] == "mentions"
        too_long = client.post(
            f"/v1/runs/{run_id}/comments", json={"text": "x" * (limits.MAX_COMMENT_TEXT + 1)}
        )
        assert too_long.status_code == 422
        edited = client.patch(f"/v1/comments/{made.json()['id']}", json={"text": "bye"})
        assert edited.status_code == 200 and edited.json()["edited_at"] is not None
        gone = client.delete(f"/v1/comments/{made.json()['id']}")
        assert gone.status_code == 204
        again = client.delete(f"/v1/comments/{made.json()['id']}")
        assert again.status_code == 404
    with serve(url, user="dave") as served, served.client() as client:
        assert client.get(f"/v1/runs/{run_id}/comments").status_code == 404
        assert client.post(f"/v1/runs/{run_id}/comments", json={"text": "x"}).status_code == 404
        assert client.delete(f"/v1/comments/{on_task.json()['id']}").status_code == 404
    with serve(url, user="alice") as served, served.client() as client:
        refused = client.delete(f"/v1/comments/{on_task.json()['id']}")
        assert refused.status_code == 403
    assert [c["text"] for c in stored_comments(url)] == ["this one"]
    assert len(audit_rows(url)) == 1
