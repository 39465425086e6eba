"""Rating on the task and run pages (docs/quality.md): thumbs and a 1-5 rating with a
comment, kept per person, shown to everyone who may read the task. Real Postgres (row-level
security), AppTest, signed in through the trusted header."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from dashboard_support import app_environment, create_database, drop_database, open_page
from psycopg.rows import dict_row

import ingest
from dashboard import auth
from ingest.store import database

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers

HEADER = "X-Forwarded-Email"


@pytest.fixture(scope="module")
def world(pg_server, template_db, tmp_path_factory) -> Iterator[dict]:
    name = f"ai_runs_dash_scores_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    database._migrated.add(url)
    with ingest.Tracker(url) as owner:
        owner.upsert_user("alice", "Alice", "alice@example.com", "red", "member")
        owner.upsert_user("carol", "Carol", "carol@example.com", "red", "manager")
        run = owner.create_run("chat", name="alice chat", user_id="alice")
        task = owner.create_task(run["id"], provider="openai", model="gpt-4o", user_id="alice")
        owner.complete_task(task["task_id"], "ok", tokens_input=10, tokens_output=2)
    home = tmp_path_factory.mktemp("dash_scores")
    with app_environment(url, home):
        yield {"url": url, "run": str(run["id"]), "task": str(task["task_id"])}
    drop_database(pg_server, name)


@pytest.fixture
def as_person(monkeypatch):
    monkeypatch.setenv(auth.TRUSTED_HEADER_ENV, HEADER)

    def sign_in(email: str) -> None:
        monkeypatch.setattr(auth, "request_headers", lambda: {HEADER: email})

    return sign_in


def scores(url: str) -> dict[tuple, dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT * FROM ai_scores").fetchall()
    return {(r["task_id"] is not None, r["name"], r["author"]): r for r in rows}


def rate(at, key: str, thumbs: str, stars: str, comment: str) -> None:
    at.radio(key=f"{key}_thumbs").set_value(thumbs)
    at.radio(key=f"{key}_rating").set_value(stars)
    at.text_area(key=f"{key}_comment").set_value(comment)
    at.button(key=f"{key}_save").click().run()
    assert not at.exception, at.exception


def test_each_person_rates_a_task_for_themselves_and_sees_the_others(world, as_person):
    key = f"score_{world['task']}"
    as_person("alice@example.com")
    at = open_page("task", task_id=world["task"])
    assert not at.exception, at.exception
    assert "No scores yet." in [c.value for c in at.caption]
    rate(at, key, "Thumbs up", "4", "clear answer")
    stored = scores(world["url"])
    assert stored[(True, "thumbs", "alice")]["label"] == "true"
    assert stored[(True, "rating", "alice")]["value"] == 4.0
    assert stored[(True, "rating", "alice")]["comment"] == "clear answer"
    assert stored[(True, "thumbs", "alice")]["source"] == "human"

    as_person("carol@example.com")  # alice's manager reads the task, rates it as herself
    at = open_page("task", task_id=world["task"])
    table = next(d.value for d in at.dataframe if "score" in d.value.columns)
    assert ("rating", "4", "alice") in set(
        zip(table["score"], table["value"], table["by"], strict=True)
    )
    assert at.radio(key=f"{key}_thumbs").value == "No thumbs"  # alice's are not hers
    rate(at, key, "Thumbs down", "2", "too short")
    stored = scores(world["url"])
    assert stored[(True, "thumbs", "carol")]["label"] == "false"
    assert stored[(True, "thumbs", "alice")]["label"] == "true"  # alice's unchanged
    assert len(stored) == 4

    as_person("alice@example.com")  # her form shows her own rating; changing it replaces it
    at = open_page("task", task_id=world["task"])
    assert at.radio(key=f"{key}_thumbs").value == "Thumbs up"
    assert at.radio(key=f"{key}_rating").value == "4"
    rate(at, key, "Thumbs down", "4", "on reflection, wrong")
    stored = scores(world["url"])
    assert stored[(True, "thumbs", "alice")]["label"] == "false" and len(stored) == 4


def test_a_run_is_rated_on_its_page(world, as_person):
    as_person("alice@example.com")
    at = open_page("runs", run_id=world["run"])
    assert not at.exception, at.exception
    rate(at, f"score_{world['run']}", "Thumbs up", "5", "")
    stored = scores(world["url"])
    assert stored[(False, "rating", "alice")]["value"] == 5.0
    assert stored[(False, "thumbs", "alice")]["comment"] is None
