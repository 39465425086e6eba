"""Scores of tasks and runs (docs/quality.md) on real Postgres: the Tracker, row-level
security, idempotency, bad input, and the REST ways in (POST /v1/scores, /v1/batch)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.rows import dict_row

import ingest
from ingest.errors import AccessDeniedError, NotFoundError, ValidationError
from tests.server_support import serve

PEOPLE = [("alice", "red", "member"), ("bob", "red", "member"), ("carol", "red", "manager")]


@pytest.fixture
def world(db_url):
    """alice, bob (members) and carol (their manager); one run with one task each."""
    owner = ingest.Tracker(db_url)
    runs, tasks = {}, {}
    for uid, team, role in PEOPLE:
        owner.upsert_user(uid, uid.title(), f"{uid}@example.com", team, role)
        run = owner.create_run("chat", name=f"{uid}'s run", user_id=uid)
        task = owner.create_task(run["id"], provider="openai", model="gpt-4o", user_id=uid)
        owner.complete_task(task["task_id"], "ok", tokens_input=10, tokens_output=5)
        runs[uid], tasks[uid] = run["id"], task["task_id"]
    yield db_url, owner, runs, tasks
    owner.close()


def stored_scores(url: str) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM ai_scores ORDER BY id").fetchall()


def test_each_kind_of_value_is_stored_as_documented(world):
    url, owner, runs, tasks = world
    thumbs = owner.score("thumbs", True, task_id=tasks["alice"], source="human", author="alice")
    stars = owner.score("stars", 4, task_id=tasks["alice"], comment="good enough")
    tone = owner.score("tone", "friendly", run_id=runs["alice"], source="model")
    down = owner.score("correct", label="false", data_type="boolean", task_id=tasks["bob"])
    assert (thumbs["data_type"], thumbs["value"], thumbs["label"]) == ("boolean", 1.0, "true")
    assert (stars["data_type"], stars["value"], stars["label"]) == ("numeric", 4.0, None)
    assert stars["comment"] == "good enough" and stars["source"] == "api"
    assert (tone["data_type"], tone["value"], tone["label"]) == ("categorical", None, "friendly")
    assert tone["task_id"] is None and tone["run_id"] == runs["alice"]
    assert (down["value"], down["label"], down["run_id"]) == (0.0, "false", runs["bob"])
    assert thumbs["run_id"] == runs["alice"] and thumbs["inserted"] is True
    assert len(stored_scores(url)) == 4


def test_scoring_again_replaces_the_score_and_counts_it_once(world):
    url, owner, _runs, tasks = world
    first = owner.score("stars", 2, task_id=tasks["alice"], evaluator="panel", author="alice")
    again = owner.score("stars", 5, task_id=tasks["alice"], evaluator="panel", author="alice")
    other = owner.score("stars", 3, task_id=tasks["alice"], evaluator="panel", author="bob")
    newer = owner.score(
        "stars", 1, task_id=tasks["alice"], evaluator="panel", evaluator_version="2", author="alice"
    )
    assert again["id"] == first["id"] and again["inserted"] is False and again["value"] == 5.0
    assert len({first["id"], other["id"], newer["id"]}) == 3
    rows = stored_scores(url)
    assert sorted(r["value"] for r in rows) == [1.0, 3.0, 5.0]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "stars", "value": float("nan")}, "value"),
        ({"name": "stars", "value": 1e16}, "value"),
        ({"name": "stars"}, "value"),
        ({"name": "stars", "value": [1]}, "value"),
        ({"name": "bad name!", "value": 1}, "name"),
        ({"name": "", "value": 1}, "name"),
        ({"name": "ok", "value": 2, "data_type": "boolean"}, "value"),
        ({"name": "ok", "value": True, "label": "false"}, "label"),
        ({"name": "ok", "value": 1, "data_type": "stars"}, "data_type"),
        ({"name": "ok", "value": 1, "source": "robot"}, "source"),
        ({"name": "ok", "value": 1, "comment": "x" * 4001}, "comment"),
        ({"name": "ok", "value": 1, "comment": "a\x00b"}, "comment"),
        ({"name": "ok", "label": "y" * 201}, "label"),
        ({"name": "ok", "value": 3, "data_type": "categorical"}, "value"),
        ({"name": "ok", "value": 1, "evaluator_version": "v" * 101}, "evaluator_version"),
        ({"name": "ok", "value": 1, "colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_a_validation_error_naming_the_field_and_writes_nothing(world, kwargs, field):
    url, owner, _runs, tasks = world
    with pytest.raises(ValidationError) as caught:
        owner.score(task_id=tasks["alice"], **kwargs)
    assert caught.value.field == field
    assert stored_scores(url) == []


def test_a_score_needs_a_target_and_a_human_score_an_author(world):
    url, owner, runs, tasks = world
    with pytest.raises(ValidationError) as caught:
        owner.score("stars", 3)
    assert caught.value.field == "task_id"
    with pytest.raises(ValidationError) as caught:
        owner.score("thumbs", True, task_id=tasks["alice"], source="human")
    assert caught.value.field == "author"
    with pytest.raises(ValidationError) as caught:
        owner.score("stars", 3, task_id=tasks["alice"], run_id=runs["bob"])
    assert caught.value.field == "run_id"
    assert stored_scores(url) == []


def test_an_unknown_task_or_run_is_not_found_and_writes_nothing(world):
    url, owner, _runs, _tasks = world
    with pytest.raises(NotFoundError) as caught:
        owner.score("stars", 3, task_id=uuid.uuid4())
    assert caught.value.kind == "task"
    with pytest.raises(NotFoundError) as caught:
        owner.score("stars", 3, run_id=uuid.uuid4())
    assert caught.value.kind == "run"
    assert stored_scores(url) == []


def test_row_level_security_follows_the_run_and_a_persons_score_is_theirs(world):
    url, owner, runs, tasks = world
    with ingest.Tracker(url, viewer="alice") as alice, ingest.Tracker(url, viewer="bob") as bob:
        mine = alice.score("thumbs", True, task_id=tasks["alice"], source="human")
        assert mine["author"] == "alice"
        # bob cannot read alice's run: her task is not found for him, nothing written
        with pytest.raises(NotFoundError):
            bob.score("thumbs", False, task_id=tasks["alice"], source="human")
        assert bob.scores(task_id=tasks["alice"]) == []
        # nobody writes a human score in another person's name
        with pytest.raises(AccessDeniedError):
            alice.score("thumbs", False, task_id=tasks["alice"], source="human", author="bob")
        # a rule score on alice's own run is fine (she may change the run)
        alice.score("valid_json", True, task_id=tasks["alice"], source="rule", evaluator="json")
    with ingest.Tracker(url, viewer="carol") as carol:
        # the manager reads the team's runs: scores them as herself, sees alice's score
        theirs = carol.score("stars", 2, task_id=tasks["alice"], source="human")
        assert theirs["author"] == "carol"
        seen = {(s["name"], s["author"]) for s in carol.scores(task_id=tasks["alice"])}
        assert seen == {("thumbs", "alice"), ("stars", "carol"), ("valid_json", "alice")}
        # but alice's thumbs are hers: carol can neither remove nor override them
        with pytest.raises(AccessDeniedError):
            carol.delete_score(mine["id"])
    with ingest.Tracker(url, viewer="alice") as alice:
        changed = alice.score("thumbs", False, task_id=tasks["alice"], source="human")
        assert changed["id"] == mine["id"] and changed["label"] == "false"
        with pytest.raises(AccessDeniedError):
            alice.delete_score(theirs["id"])  # carol's, on alice's own run
    by_author = {(r["name"], r["author"]): r for r in stored_scores(url)}
    assert by_author[("thumbs", "alice")]["value"] == 0.0
    assert by_author[("stars", "carol")]["value"] == 2.0


def test_scores_go_with_their_task_and_run(world):
    url, owner, runs, tasks = world
    owner.score("stars", 3, task_id=tasks["alice"])
    owner.score("stars", 4, run_id=runs["alice"])
    owner.score("stars", 5, task_id=tasks["bob"])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM ai_tasks WHERE task_id = %s", (tasks["alice"],))
    assert [r["value"] for r in stored_scores(url)] == [4.0, 5.0]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM ai_runs WHERE id = %s", (runs["bob"],))
        logged = conn.execute(
            "SELECT count(*) FROM ai_sync_deletions WHERE table_name = 'ai_scores'"
        ).fetchone()[0]
    assert [r["value"] for r in stored_scores(url)] == [4.0]
    assert logged == 2  # the mirror learns of both deletions


def test_rest_scores_as_the_keys_user_with_404_and_422(world):
    url, owner, runs, tasks = world
    with serve(url, user="alice") as served, served.client() as client:
        body = {"name": "thumbs", "value": True, "task_id": str(tasks["alice"]), "source": "human"}
        created = client.post("/v1/scores", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["author"] == "alice"
        again = client.post("/v1/scores", json={**body, "value": False, "comment": "wrong"})
        assert again.status_code == 200 and again.json()["id"] == created.json()["id"]
        missing = client.post("/v1/scores", json={**body, "task_id": str(tasks["bob"])})
        assert missing.status_code == 404
        bad = client.post("/v1/scores", json={**body, "value": 7, "data_type": "boolean"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "value"
        listed = client.get("/v1/scores", params={"run_id": str(runs["alice"])})
        assert [(s["name"], s["label"]) for s in listed.json()] == [("thumbs", "false")]
    assert len(stored_scores(url)) == 1


def test_batch_carries_scores_and_a_bad_one_writes_nothing(world):
    url, owner, _runs, tasks = world
    run_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
    run = {"id": run_id, "source_type": "custom"}
    task = {"run_id": run_id, "task_id": task_id, "status": "completed", "model": "gpt-4o"}
    scores = [
        {"name": "valid_json", "value": True, "task_id": task_id, "source": "rule"},
        {"name": "stars", "value": 4, "task_id": str(tasks["alice"])},
    ]
    with serve(url, user="alice") as served, served.client() as client:
        bad = [*scores, {"name": "stars", "value": 4, "task_id": str(tasks["bob"])}]
        refused = client.post("/v1/batch", json={"runs": [run], "tasks": [task], "scores": bad})
        assert refused.status_code == 404
        assert stored_scores(url) == []
        with psycopg.connect(url) as conn:
            assert (
                conn.execute("SELECT count(*) FROM ai_runs WHERE id = %s", (run_id,)).fetchone()[0]
                == 0
            )
        wrong = client.post(
            "/v1/batch",
            json={
                "scores": [{"name": "x", "value": "1", "data_type": "numeric", "task_id": task_id}]
            },
        )
        assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "scores[0].value"
        sent = {"runs": [run], "tasks": [task], "scores": scores}
        first = client.post("/v1/batch", json=sent)
        assert first.status_code == 200, first.text
        assert first.json()["scores"] == {"inserted": 2, "duplicates": 0}
        second = client.post("/v1/batch", json=sent)
        assert second.json()["scores"] == {"inserted": 0, "duplicates": 2}
    assert {(r["name"], r["author"]) for r in stored_scores(url)} == {
        ("valid_json", "alice"),
        ("stars", "alice"),
    }


def test_a_score_name_keeps_its_first_data_type_everywhere(world):
    url, owner, runs, tasks = world
    owner.score("thumbs", True, task_id=tasks["alice"], source="human", author="alice")
    with pytest.raises(ValidationError) as caught:  # another task, author, evaluator: still
        owner.score("thumbs", 4, task_id=tasks["bob"], evaluator="panel")
    assert caught.value.field == "data_type" and caught.value.allowed == ["boolean"]
    assert "thumbs" in caught.value.problem and "numeric" in caught.value.problem
    with pytest.raises(ValidationError, match="data_type"):  # a replacement may not switch
        owner.score("thumbs", "up", task_id=tasks["alice"], source="human", author="alice")
    bob = ingest.Tracker(url, viewer="bob")
    try:  # bob cannot read alice's score, and is held to its type all the same
        with pytest.raises(ValidationError, match="data_type"):
            bob.score("thumbs", 1.5, task_id=tasks["bob"], source="human")
        assert bob.score("thumbs", False, task_id=tasks["bob"], source="human")["inserted"]
    finally:
        bob.close()
    with serve(url, user="alice") as served, served.client() as client:
        body = {"name": "thumbs", "value": 3, "task_id": str(tasks["alice"])}
        refused = client.post("/v1/scores", json=body)
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "data_type"
    assert [(s["name"], s["data_type"]) for s in stored_scores(url)] == [
        ("thumbs", "boolean"),
        ("thumbs", "boolean"),
    ]


def test_a_batch_whose_score_fails_at_write_time_leaves_nothing(world):
    url, owner, _runs, tasks = world
    owner.score("thumbs", True, task_id=tasks["alice"], source="human", author="alice")
    run_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
    run = {"id": run_id, "source_type": "custom"}
    task = {"run_id": run_id, "task_id": task_id, "status": "completed", "model": "gpt-4o"}
    scores = [
        {"name": "stars", "value": 4, "task_id": task_id},
        {"name": "thumbs", "value": 0.5, "task_id": task_id},  # thumbs is boolean
    ]
    with serve(url, user="alice") as served, served.client() as client:
        refused = client.post("/v1/batch", json={"runs": [run], "tasks": [task], "scores": scores})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["field"] == "scores[1].data_type"
        with psycopg.connect(url) as conn:
            runs = conn.execute("SELECT count(*) FROM ai_runs WHERE id = %s", (run_id,))
            assert runs.fetchone()[0] == 0
            found = conn.execute("SELECT count(*) FROM ai_tasks WHERE task_id = %s", (task_id,))
            assert found.fetchone()[0] == 0
        assert [s["name"] for s in stored_scores(url)] == ["thumbs"]
        scores[1]["value"] = False
        written = client.post("/v1/batch", json={"runs": [run], "tasks": [task], "scores": scores})
        assert written.status_code == 200, written.text
        assert written.json()["scores"] == {"inserted": 2, "duplicates": 0}
    with serve(url, user="carol") as served, served.client() as client:  # the team's manager
        score = {"name": "stars", "value": 2, "task_id": str(tasks["bob"])}
        managed = client.post("/v1/batch", json={"scores": [score]})
        assert managed.status_code == 200 and managed.json()["scores"]["inserted"] == 1
    assert len(stored_scores(url)) == 4
