"""Live runs: a run with a pending or streaming task is live; its page shows the reply
being generated (a fragment re-reads it every second) and the Runs list marks it, on real
Postgres under row-level security, through AppTest."""

from __future__ import annotations

import os

import pytest
from dashboard_support import app_environment, create_database, drop_database, open_page

import ingest
from ingest.store import database


def test_a_run_is_live_while_a_task_streams_and_only_for_its_readers(db_url) -> None:
    with ingest.Tracker(db_url, debounce_seconds=0) as owner:
        owner.upsert_user("alice", "Alice")
        owner.upsert_user("bob", "Bob")
        run = owner.create_run("chat", user_id="alice")
        quiet = owner.create_run("chat", user_id="alice")
        task = owner.create_task(run["id"], provider="openai", model="gpt-4o", user_id="alice")
        assert owner.live_run_ids([run["id"], quiet["id"]]) == {run["id"]}
        owner.update_task(task["task_id"], "Row lev", tokens_output=3)
        (live,) = owner.live_tasks(run["id"])
        assert (live["status"], live["response_text"], live["tokens_output"]) == (
            "streaming",
            "Row lev",
            3,
        )
        with ingest.Tracker(db_url, viewer="bob") as bob:
            assert bob.live_tasks(run["id"]) == []
            assert bob.live_run_ids([run["id"]]) == set()
        with ingest.Tracker(db_url, viewer="alice") as alice:
            assert [t["task_id"] for t in alice.live_tasks(run["id"])] == [task["task_id"]]
        owner.complete_task(task["task_id"], "Row level security.", tokens_output=5)
        assert owner.live_tasks(run["id"]) == []
        assert owner.live_run_ids([run["id"]]) == set()


@pytest.fixture
def live_world(pg_server, template_db, tmp_path):
    name = f"ai_runs_live_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    database._migrated.add(url)
    with ingest.Tracker(url, debounce_seconds=0) as tracker:
        run = tracker.create_run(
            "chat", name="streaming now", messages=[{"role": "user", "content": "Explain RLS"}]
        )
        task = tracker.create_task(run["id"], provider="openai", model="gpt-4o")
        tracker.update_task(task["task_id"], "Row", tokens_output=1)
        with app_environment(url, tmp_path):
            yield tracker, run, task
    drop_database(pg_server, name)


def test_the_run_page_shows_the_growing_reply_and_the_list_marks_the_run(live_world) -> None:
    tracker, run, task = live_world
    listed = open_page("runs")
    rows = listed.dataframe[0].value
    assert bool(rows.set_index("id").loc[run["id"], "live"]) is True

    at = open_page("runs", run_id=str(run["id"]))
    assert not at.exception
    assert "Row" in [t.value for t in at.text]
    assert any("1 output tokens so far" in c.value for c in at.caption)
    tracker.update_task(task["task_id"], "Row level", tokens_output=2)
    at.run()
    assert "Row level" in [t.value for t in at.text]
    assert any("2 output tokens so far" in c.value for c in at.caption)

    tracker.complete_task(task["task_id"], "Row level security.", tokens_output=3)
    at.run()
    assert not any("so far" in c.value for c in at.caption)
    assert not any(c.value.startswith("Being generated") for c in at.caption)
