"""Issue 21, strict types over HTTP (docs/limits.md, "Types over HTTP"): no bool or string
becomes an integer, a fraction is refused, tokens_total is at least input + output; the
Tracker's own options are checked; OPTIONS and 405 name every method of a path."""

from __future__ import annotations

import math
import uuid

import psycopg
import pytest

from ingest import Tracker
from ingest.errors import ValidationError
from tests.server_support import serve

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers


@pytest.fixture
def served(db_url):
    with serve(db_url) as s:
        yield s


def _task(c) -> str:
    run = c.post("/v1/runs", json={"source_type": "chat"}).json()
    return c.post("/v1/tasks", json={"run_id": run["id"]}).json()["task_id"]


def _stored_tokens(url: str, task_id: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT tokens_input, tokens_output, tokens_total, status FROM ai_tasks "
            "WHERE task_id = %s",
            (task_id,),
        ).fetchone()


@pytest.mark.parametrize("value", [True, False, "12", 3.5, "3.0"])
def test_a_bool_a_string_or_a_fraction_is_not_a_token_count(served, value):
    with served.client() as c:
        task_id = _task(c)
        answer = c.post(f"/v1/tasks/{task_id}/complete", json={"tokens_input": value})
        assert answer.status_code == 422
        assert answer.json()["error"]["field"] == "tokens_input"
        assert _stored_tokens(served.url, task_id)[3] == "pending"  # nothing written
        row = {"run_id": str(uuid.uuid4()), "task_id": str(uuid.uuid4()), "tokens_output": value}
        batch = c.post("/v1/batch", json={"tasks": [row]})
        assert batch.status_code == 422
        assert batch.json()["error"]["field"] == "tasks[0].tokens_output"


def test_a_whole_float_is_the_same_json_number_and_is_taken(served):
    with served.client() as c:
        task_id = _task(c)
        answer = c.post(
            f"/v1/tasks/{task_id}/complete", json={"tokens_input": 3.0, "tokens_output": 4}
        )
        assert answer.status_code == 200
    assert _stored_tokens(served.url, task_id) == (3, 4, 7, "completed")


def test_tokens_total_below_input_plus_output_is_refused_on_every_path(served):
    with served.client() as c:
        task_id = _task(c)
        usage = {"tokens_input": 3, "tokens_output": 4, "tokens_total": 6}
        answer = c.post(f"/v1/tasks/{task_id}/complete", json=usage)
        assert answer.status_code == 422 and answer.json()["error"]["field"] == "tokens_total"
        assert _stored_tokens(served.url, task_id)[3] == "pending"
        run_id = str(uuid.uuid4())
        batch = c.post(
            "/v1/batch",
            json={
                "runs": [{"id": run_id, "source_type": "chat"}],
                "tasks": [{"run_id": run_id, "task_id": str(uuid.uuid4()), **usage}],
            },
        )
        assert batch.status_code == 422
        assert batch.json()["error"]["field"] == "tasks[0].tokens_total"
    tracker = Tracker(served.url)
    task = tracker.create_task(tracker.create_run("chat")["id"])
    with pytest.raises(ValidationError) as caught:
        tracker.complete_task(task["task_id"], **usage)
    assert caught.value.field == "tokens_total"
    tracker.close()


def test_a_boolean_field_takes_only_true_or_false_over_http(served):
    with served.client() as c:
        run = c.post("/v1/runs", json={"source_type": "chat"}).json()
        answer = c.patch(f"/v1/runs/{run['id']}", json={"is_starred": "yes"})
        assert answer.status_code == 422 and answer.json()["error"]["field"] == "is_starred"
        answer = c.patch(f"/v1/runs/{run['id']}", json={"is_starred": 1})
        assert answer.status_code == 422


@pytest.mark.parametrize("value", ["1", math.nan, math.inf, -1, None, True])
def test_tracker_debounce_seconds_is_a_finite_number(db_url, value):
    with pytest.raises(ValidationError) as caught:
        Tracker(db_url, debounce_seconds=value)
    assert caught.value.field == "debounce_seconds"


def test_options_and_405_name_every_method_of_the_path(served):
    run_path = f"/v1/runs/{uuid.uuid4()}"
    with served.client(None) as c:
        options = c.request("OPTIONS", run_path)
        assert options.status_code == 204
        assert options.headers["allow"] == "DELETE, GET, OPTIONS, PATCH"
        assert c.request("OPTIONS", "/v1/runs").headers["allow"] == "GET, OPTIONS, POST"
        put = c.put(run_path, json={})
        assert put.status_code == 405
        assert put.headers["allow"] == "DELETE, GET, OPTIONS, PATCH"
        assert c.request("OPTIONS", "/v1/nowhere").status_code == 404


def test_a_utc_offset_beyond_postgres_range_is_stored_as_the_same_instant(served):
    """Python takes offsets up to 23:59, Postgres only up to 15:59: was a 500 from COPY."""
    run_id = str(uuid.uuid4())
    moment = "2020-01-01T18:48:03+18:02"
    with served.client() as c:
        batch = c.post(
            "/v1/batch",
            json={"runs": [{"id": run_id, "source_type": "chat", "updated_at": moment}]},
        )
        assert batch.status_code == 200
        made = c.post("/v1/runs", json={"source_type": "chat", "created_at": moment})
        assert made.status_code == 201
        assert made.json()["created_at"].startswith("2020-01-01T00:46:03")


def test_the_bearer_scheme_is_case_insensitive(served):
    """Documented in docs/server.md: RFC 9110 schemes are case-insensitive."""
    with served.client(None) as c:
        answer = c.get("/v1/runs", headers={"Authorization": f"bearer {served.key}"})
        assert answer.status_code == 200


def test_what_the_schemathesis_run_found_stays_fixed(served):
    """A retry of create_run answered with the stored run without checking the body; a
    message with content null was refused (the null was dropped); a task created weeks
    back overflowed total_time (an integer column) when it finished."""
    run_id = str(uuid.uuid4())
    with served.client() as c:
        assert c.post("/v1/runs", json={"source_type": "chat", "run_id": run_id}).status_code == 201
        retry = c.post(
            "/v1/runs", json={"source_type": "chat", "run_id": run_id, "created_at": "AAA"}
        )
        assert retry.status_code == 422 and retry.json()["error"]["field"] == "created_at"
        message = {"role": "tool", "content": None}
        made = c.post("/v1/runs", json={"source_type": "chat", "messages": [message]})
        assert made.status_code == 201
        assert c.get(f"/v1/runs/{made.json()['id']}").json()["messages"][0]["content"] is None
        task = c.post(
            "/v1/tasks", json={"run_id": run_id, "created_at": "2000-01-01T00:00:00Z"}
        ).json()
        done = c.post(f"/v1/tasks/{task['task_id']}/complete", json={"response_text": "ok"})
        assert done.status_code == 200
        assert done.json()["total_time"] == 2_147_483_647
