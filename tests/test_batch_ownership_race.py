"""The bulk path checks who owns a run in the write's own transaction (issue 21, item 1;
ingest/server/batch.py, ingest/transfer/bulk.py): real HTTP, real uvicorn, real Postgres.

A key holder who learns (or predicts) the id of a run its owner is about to create sends a
batch {runs: [X], tasks: [T in X]}. Whatever the interleaving, T never lands in the
owner's run: the request either created X for its own user first, or is refused with a
403 naming X and writes nothing.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

import ingest
from ingest.errors import AccessDeniedError, ValidationError
from ingest.transfer import bulk
from tests.server_support import serve

SNEAKY = str(uuid.uuid4())
# What the owner's Tracker raises when the run id is taken.
TAKEN = (ValidationError, psycopg.errors.UniqueViolation)


def batch_body(run_id: str, task_id: str) -> dict:
    return {
        "runs": [{"id": run_id, "source_type": "chat", "name": "mine"}],
        "tasks": [{"run_id": run_id, "task_id": task_id, "provider": "openai",
                   "model": "gpt-4o", "tokens_input": 1000, "tokens_output": 1000,
                   "cost": 9.5, "status": "completed"}],
    }  # fmt: skip


def intruders(url: str) -> list[dict]:
    """bob's tasks in a run of someone else, and runs whose totals include bob's rows."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT t.task_id, r.id AS run_id, r.user_id, r.task_count FROM ai_tasks t "
            "JOIN ai_runs r ON r.id = t.run_id WHERE t.user_id = 'bob' AND r.user_id <> 'bob' "
            "UNION ALL "
            "SELECT NULL, r.id, r.user_id, r.task_count FROM ai_runs r "
            " WHERE r.user_id = 'alice' AND (r.task_count, r.total_tokens, r.total_cost) "
            "       <> (0, 0, 0)"
        ).fetchall()


@pytest.fixture
def served(db_url):
    with ingest.Tracker(db_url) as owner:
        owner.upsert_user("alice", "Alice", "alice@example.com", "red", "member")
        owner.upsert_user("bob", "Bob", "bob@example.com", "blue", "member")
    with serve(db_url, user="bob") as served:
        yield served


def test_a_batch_blocked_behind_the_owners_insert_of_its_run_is_refused(served):
    # The interleaving, made deterministic: alice's insert of X is in flight when bob's
    # batch checks ownership (X does not exist yet) and writes; bob's run insert waits for
    # alice's, which commits; bob's copy of X is skipped as a duplicate. Before the check
    # moved into the write's transaction, T then went into alice's run.
    run_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
    answer: dict[str, httpx.Response] = {}
    with psycopg.connect(served.url) as alice:
        alice.execute(
            "INSERT INTO ai_runs (id, user_id, source_type, name) "
            "VALUES (%s, 'alice', 'chat', 'alice''s run')",
            (run_id,),
        )

        def post() -> None:
            with served.client() as bob:
                answer["r"] = bob.post("/v1/batch", json=batch_body(run_id, task_id))

        thread = threading.Thread(target=post)
        thread.start()
        wait_for_a_lock_wait(served.url)
        alice.commit()
        thread.join(timeout=30)
    response = answer["r"]
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["field"] == "run_id" and run_id in error["problem"]
    assert intruders(served.url) == []
    with psycopg.connect(served.url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM ai_tasks WHERE task_id = %s", (task_id,)
        ).fetchone() == (0,)


def wait_for_a_lock_wait(url: str, seconds: float = 10.0) -> None:
    """Until some session of this database waits on a lock (bob's insert behind alice's)."""
    deadline = time.monotonic() + seconds
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()[0]
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("the batch never waited for the owner's insert")


def test_the_race_run_many_times_never_puts_a_foreign_task_in_the_owners_run(served):
    iterations = 200
    outcomes = {"bob's run": 0, 403: 0, 422: 0}
    with (
        ingest.Tracker(served.url) as owner,
        served.client() as bob,
        psycopg.connect(served.url) as conn,
    ):
        for i in range(iterations):
            run_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
            start = threading.Barrier(2)
            answer: dict[str, httpx.Response] = {}

            def post(run_id=run_id, task_id=task_id, start=start, answer=answer) -> None:
                start.wait()
                answer["r"] = bob.post("/v1/batch", json=batch_body(run_id, task_id))

            thread = threading.Thread(target=post)
            thread.start()
            start.wait()
            time.sleep((i % 10) * 0.0005)  # spread the owner's insert over the batch's path
            with contextlib.suppress(TAKEN):  # bob's batch took the id first
                owner.create_run("chat", name="alice's run", user_id="alice", run_id=run_id)
            thread.join(timeout=30)
            response = answer["r"]
            owner_of = conn.execute(
                "SELECT user_id FROM ai_runs WHERE id = %s", (run_id,)
            ).fetchone()
            conn.commit()
            if owner_of == ("bob",):
                assert response.status_code == 200, response.text
                outcomes["bob's run"] += 1
            else:
                assert response.status_code in (403, 422), response.text
                assert run_id in response.text
                outcomes[response.status_code] += 1
    print("race outcomes:", outcomes)
    assert intruders(served.url) == []
    assert sum(outcomes.values()) == iterations


def test_the_bulk_writer_acting_for_a_user_refuses_another_users_run(db_url):
    with ingest.Tracker(db_url) as owner:
        theirs = owner.create_run("chat", name="alice's run", user_id="alice")["id"]
    columns = ("id", "user_id", "source_type", "name")
    runs = bulk.Batch(
        "ai_runs", columns, [bulk.encode_row(columns, {"id": theirs, "user_id": "bob",
        "source_type": "chat", "name": "x"})], [str(theirs)],
    )  # fmt: skip
    task_columns = ("run_id", "task_id", "user_id", "model", "tokens_input")
    task = {"run_id": theirs, "task_id": SNEAKY, "user_id": "bob", "model": "m",
            "tokens_input": 5}  # fmt: skip
    tasks = bulk.Batch(
        "ai_tasks", task_columns, [bulk.encode_row(task_columns, task)], [SNEAKY], [str(theirs)]
    )
    with bulk.BulkWriter(db_url) as writer:
        with pytest.raises(AccessDeniedError) as refused:
            writer.write(runs, tasks, acting_user="bob")
        assert str(theirs) in str(refused.value)
        with pytest.raises(AccessDeniedError):
            writer.write(runs, acting_user="bob")  # a run of someone else, even alone
        # The owner's own tooling (no acting user) is not restricted.
        assert [r.inserted for r in writer.write(tasks)] == [1]
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM ai_tasks").fetchone() == (1,)
