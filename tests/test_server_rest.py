"""The REST API over real HTTP against a real uvicorn server and real Postgres."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import psycopg
import pytest
from psycopg.rows import dict_row

from ingest import Tracker
from ingest.server.keys import create_key, list_keys, revoke_key
from ingest.store import database
from tests.server_support import serve


def counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        return (
            conn.execute("SELECT count(*) FROM ai_runs").fetchone()[0],
            conn.execute("SELECT count(*) FROM ai_tasks").fetchone()[0],
        )


@pytest.fixture
def served(db_url):
    with serve(db_url, debounce_seconds=0.3) as s:
        yield s


def test_auth_missing_unknown_and_revoked_keys_get_401_and_write_nothing(served):
    body = {"source_type": "chat"}
    for client in (served.client(None), served.client("air_not-a-key")):
        with client:
            answer = client.post("/v1/runs", json=body)
            assert answer.status_code == 401
            assert answer.json()["error"]["field"] == "Authorization"
            assert answer.headers["www-authenticate"] == "Bearer"
    key, row = create_key("bob", "to revoke", url=served.url)
    with served.client(key) as client:
        assert client.post("/v1/runs", json=body).status_code == 201
        revoke_key(row["prefix"], url=served.url)
        assert client.post("/v1/runs", json=body).status_code == 401  # refused at once
        assert client.get("/v1/runs").status_code == 401
    assert counts(served.url) == (1, 0)
    listed = {r["prefix"]: r for r in list_keys(url=served.url)}
    assert listed[row["prefix"]]["revoked_at"] is not None
    with psycopg.connect(served.url) as conn:
        stored = conn.execute("SELECT key_hash FROM ai_api_keys").fetchall()
    assert all(key not in h[0] and len(h[0]) == 64 for h in stored)  # only hashes


def test_runs_crud_list_pagination_fork_belong_to_the_key_user(served):
    with served.client() as c:
        made = c.post("/v1/runs", json={
            "source_type": "chat", "messages": [{"role": "user", "content": "Explain RLS"}],
            "tags": ["a"], "settings": {"model": "gpt-4o"},
        }).json()  # fmt: skip
        assert made["name"] == "Explain RLS" and made["user_id"] == "ada"
        run_id = made["id"]
        rid = str(uuid.uuid4())
        first = c.post("/v1/runs", json={"source_type": "prompt", "run_id": rid})
        again = c.post("/v1/runs", json={"source_type": "prompt", "run_id": rid})
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["id"] == again.json()["id"] == rid
        added = c.post(f"/v1/runs/{run_id}/messages", json={"role": "assistant", "content": "RLS"})
        assert added.status_code == 201 and added.json()["index"] == 1
        patched = c.patch(f"/v1/runs/{run_id}", json={"name": "New", "is_starred": True,
                                                      "tags": ["x", "y"]}).json()  # fmt: skip
        assert (patched["name"], patched["is_starred"], patched["tags"]) == (
            "New",
            True,
            ["x", "y"],
        )
        got = c.get(f"/v1/runs/{run_id}").json()
        assert len(got["messages"]) == 2 and got["tasks"] == []
        fork = c.post(f"/v1/runs/{run_id}/fork", json={"at_message": 0})
        assert fork.status_code == 201 and fork.json()["parent_run_id"] == run_id
        assert c.post(f"/v1/runs/{run_id}/archive").json()["status"] == "archived"
        assert c.delete(f"/v1/runs/{run_id}").json()["status"] == "deleted"
        ids = {r["id"] for r in c.get("/v1/runs").json()["rows"]}
        assert run_id not in ids and rid in ids
        assert c.post(f"/v1/runs/{run_id}/restore").json()["status"] == "active"
        page = c.get("/v1/runs", params={"limit": 2}).json()
        assert page["total"] == 3 and len(page["rows"]) == 2 and page["next_cursor"]
        rest = c.get("/v1/runs", params={"limit": 2, "cursor": page["next_cursor"]}).json()
        seen = [r["id"] for r in page["rows"] + rest["rows"]]
        assert len(set(seen)) == 3 and rest["next_cursor"] is None
        starred = c.get("/v1/runs", params={"starred": "true", "tags": ["y"]}).json()
        assert [r["id"] for r in starred["rows"]] == [run_id]
        assert c.get("/v1/runs", params={"source_type": ["prompt"]}).json()["total"] == 1
        assert c.get("/v1/runs", params={"search": "explain"}).json()["total"] == 2
    other, _ = create_key("eve", url=served.url)
    with served.client(other) as c:  # another user sees none of it
        assert c.get("/v1/runs").json()["total"] == 0
        assert c.get(f"/v1/runs/{run_id}").status_code == 404
        assert c.patch(f"/v1/runs/{run_id}", json={"name": "x"}).status_code == 404
        taken = c.post("/v1/runs", json={"source_type": "chat", "run_id": rid})
        assert taken.status_code == 422 and taken.json()["error"]["field"] == "run_id"


def test_bad_input_names_the_field_and_allowed_values_and_writes_nothing(served):
    with served.client() as c:
        bad = c.post("/v1/runs", json={"source_type": "nope"})
        assert bad.status_code == 422
        err = bad.json()["error"]
        assert err["field"] == "source_type" and "chat" in err["allowed"]
        unknown = c.post("/v1/runs", json={"source_type": "chat", "colour": "red"})
        assert unknown.json()["error"] == {"field": "colour", "problem": "unknown field",
                                           "allowed": None}  # fmt: skip
        assert (
            c.post("/v1/runs", json={"source_type": "chat", "created_at": "soon"}).json()["error"][
                "field"
            ]
            == "created_at"
        )
        run_id = c.post("/v1/runs", json={"source_type": "chat"}).json()["id"]
        bad_task = c.post("/v1/tasks", json={"run_id": run_id, "status": "completed"})
        assert bad_task.status_code == 422 and bad_task.json()["error"]["allowed"] == [
            "pending", "streaming",
        ]  # fmt: skip
        assert c.get("/v1/runs/not-a-uuid").json()["error"]["field"] == "run_id"
        missing = c.post("/v1/tasks", json={"run_id": str(uuid.uuid4())})
        assert missing.status_code == 404 and missing.json()["error"]["field"] == "run_id"
        task = c.post("/v1/tasks", json={"run_id": run_id, "model": "gpt-4o"}).json()
        negative = c.post(f"/v1/tasks/{task['task_id']}/complete", json={"tokens_input": -1})
        assert negative.status_code == 422 and negative.json()["error"]["field"] == "tokens_input"
        no_usage = c.post(f"/v1/tasks/{task['task_id']}/complete", json={"usage": {"x": 1}})
        assert no_usage.json()["error"]["field"] == "usage"
        assert c.get(f"/v1/tasks/{task['task_id']}").json()["status"] == "pending"
        batch = c.post("/v1/batch", json={
            "runs": [{"id": str(uuid.uuid4()), "source_type": "chat"}],
            "tasks": [{"run_id": run_id, "task_id": str(uuid.uuid4())},
                      {"run_id": run_id, "task_id": str(uuid.uuid4()), "status": "done"}],
        })  # fmt: skip
        assert batch.status_code == 422
        assert batch.json()["error"]["field"] == "tasks[1].status"
        assert "completed" in batch.json()["error"]["allowed"]
    assert counts(served.url) == (1, 1)


def test_task_flow_matches_the_python_tracker(served):
    usage = {"prompt_tokens": 812, "completion_tokens": 356, "total_tokens": 1168,
             "prompt_tokens_details": {"cached_tokens": 512}}  # fmt: skip
    with served.client() as c:
        run_id = c.post("/v1/runs", json={"source_type": "chat"}).json()["id"]
        tid = str(uuid.uuid4())
        body = {"run_id": run_id, "task_id": tid, "provider": "openai", "model": "gpt-4o"}
        assert c.post("/v1/tasks", json=body).status_code == 201
        retry = c.post("/v1/tasks", json=body)
        assert retry.status_code == 200 and retry.json()["task_id"] == tid
        first = c.post(f"/v1/tasks/{tid}/updates", json={"response_text": "Row"}).json()
        second = c.post(f"/v1/tasks/{tid}/updates", json={"response_text": "Row level"}).json()
        assert first["written"] and not second["written"] and second["status"] == "streaming"
        final = {"response_text": "Row level security", "usage": usage}
        done = c.post(f"/v1/tasks/{tid}/complete", json=final).json()
        again = c.post(f"/v1/tasks/{tid}/complete", json={"response_text": "other"}).json()
        late = c.post(f"/v1/tasks/{tid}/updates", json={"response_text": "late"}).json()
        assert late == {"task_id": tid, "written": False, "ignored": True, "status": "completed"}
        assert again["response_text"] == "Row level security"
        run = c.get(f"/v1/runs/{run_id}").json()
    tracker = Tracker(served.url, user_id="ada")
    py_run = tracker.create_run("chat")
    py_task = tracker.create_task(py_run["id"], provider="openai", model="gpt-4o")
    py_done = tracker.complete_task(py_task["task_id"], "Row level security", usage=usage)
    tracker.close()
    for column in ("tokens_input", "tokens_output", "tokens_cached_input", "tokens_total",
                   "status", "response_text", "response_complete", "user_id"):  # fmt: skip
        assert done[column] == (str(py_done[column]) if column == "cost" else py_done[column])
    assert Decimal(done["cost"]) == py_done["cost"] > 0
    assert Decimal(run["total_cost"]) == py_done["cost"] and run["task_count"] == 1
    assert done["time_to_first_token"] is not None and done["total_time"] is not None


def test_fail_and_cancel_and_buffered_updates_are_flushed_by_the_server(served):
    with served.client() as c:
        run_id = c.post("/v1/runs", json={"source_type": "workflow"}).json()["id"]
        a, b, s = (str(uuid.uuid4()) for _ in range(3))
        for tid in (a, b, s):
            c.post("/v1/tasks", json={"run_id": run_id, "task_id": tid, "model": "gpt-4o"})
        error = {"error": {"type": "RateLimit", "message": "429"}}
        failed = c.post(f"/v1/tasks/{a}/fail", json=error).json()
        assert failed["status"] == "failed" and failed["response_errors"][0]["type"] == "RateLimit"
        cancelled = c.post(f"/v1/tasks/{b}/cancel", json={"reason": "user stop"}).json()
        assert cancelled["response_metadata"]["cancel_reason"] == "user stop"
        c.post(f"/v1/tasks/{s}/updates", json={"response_text": "a"})
        c.post(f"/v1/tasks/{s}/updates", json={"response_text": "ab", "tool_updates": [1]})
        deadline = time.monotonic() + 5
        while c.get(f"/v1/tasks/{s}").json()["response_text"] != "ab":
            assert time.monotonic() < deadline, "buffered update never written"
            time.sleep(0.1)


def test_concurrent_clients_posting_the_same_tasks_twice_store_each_once(served):
    run_ids = [str(uuid.uuid4()) for _ in range(3)]
    tasks = [
        {"run_id": run_ids[i % 3], "task_id": str(uuid.uuid4()), "provider": "openai",
         "model": "gpt-4o-mini", "status": "completed", "tokens_input": 100 + i,
         "tokens_output": 10 + i}
        for i in range(60)
    ]  # fmt: skip
    runs = [{"id": r, "source_type": "chat"} for r in run_ids]

    def send(part: int) -> None:
        with served.client() as c:
            chunk = tasks[part * 20 : part * 20 + 20] if part < 3 else tasks
            answer = c.post("/v1/batch", json={"runs": runs, "tasks": chunk})
            assert answer.status_code == 200, answer.text
            for t in chunk[:5]:  # the live endpoint too
                live = {"run_id": t["run_id"], "task_id": t["task_id"]}
                assert c.post("/v1/tasks", json=live).status_code == 200

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(send, [0, 1, 2, 3, 0, 3]))
    assert counts(served.url) == (3, 60)
    assert database.run_totals_mismatches(served.url) == []
    with psycopg.connect(served.url, row_factory=dict_row) as conn:
        total = conn.execute(
            "SELECT sum(total_tokens) AS t, sum(task_count) AS n FROM ai_runs"
        ).fetchone()
    assert total["n"] == 60
    assert total["t"] == sum(t["tokens_input"] + t["tokens_output"] for t in tasks)


def test_keys_cli_create_list_revoke(db_url, monkeypatch, capsys):
    from dashboard import command as cli

    monkeypatch.setenv("DATABASE_URL", db_url)
    assert cli.main(["keys", "create", "--user", "grace", "--name", "etl"]) == 0
    key = capsys.readouterr().out.splitlines()[0]
    assert key.startswith("air_") and len(key) > 40
    assert cli.main(["keys", "list", "--user", "grace"]) == 0
    listed = capsys.readouterr().out
    assert key[:12] in listed and "active" in listed and key not in listed
    assert cli.main(["keys", "revoke", key[:12]]) == 0
    assert cli.main(["keys", "list"]) == 0 and "revoked" in capsys.readouterr().out
    assert cli.main(["keys", "revoke", "air_nothing"]) == 1
    assert cli.main(["keys", "create", "--user", " "]) == 1


def test_unreachable_database_is_a_503_not_a_crash(make_db, pg_server):
    url = make_db()
    with serve(url) as served, served.client() as c:
        assert c.get("/v1/runs").status_code == 200
        name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        answer = c.post("/v1/runs", json={"source_type": "chat"})
        assert answer.status_code == 503 and answer.json()["error"]["field"] == "database"
        assert answer.headers["retry-after"] == "1"
