"""Evaluators beyond the simple rules (docs/quality.md) on real Postgres and the local
provider server: the JSON Schema rule, declared score ranges, the LLM judge through our own
tracked clients (its calls are priced tasks, never judged), evaluator errors for garbage
answers and outages, and the online worker on a sample of new tasks."""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from provider_server import ProviderServer, usage_for
from psycopg.rows import dict_row
from test_sdk_streams import expected_cost

import ingest
from dashboard.command import main
from ingest.errors import ValidationError
from ingest.store import horizon
from ingest.store.score_checks import ScoreScale
from ingest.tracking import evaluation, judge, online_eval, rules
from tests.server_support import serve

AT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
SINCE = AT - timedelta(hours=1)
ANSWERS = ['{"name": "Ada", "age": 36}', '{"name": "Bob"}', '{"name": 7, "age": 1}', "nope"]
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
JUDGE_MODEL = "gpt-4o-mini"


@pytest.fixture(scope="module")
def server():
    srv = ProviderServer().start()
    yield srv
    srv.shutdown()


@pytest.fixture
def answered(db_url, monkeypatch, tmp_path):
    """Four finished tasks of an application (one question each, different answers)."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("AI_RUNS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    ids = []
    with ingest.Tracker(db_url) as tracker:
        run = tracker.create_run("chat", name="answers", created_at=AT)
        for i, text in enumerate(ANSWERS):
            task = tracker.create_task(
                run["id"], model="gpt-4o", created_at=AT + timedelta(minutes=i),
                request_data={"messages": [{"role": "user", "content": f"question {i}"}]},
            )  # fmt: skip
            tracker.complete_task(task["task_id"], text, total_time=100)
            ids.append(task["task_id"])
    return db_url, ids


def rows(url: str, sql: str, *params) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def scores(url: str, evaluator: str) -> list[dict]:
    return rows(url, "SELECT * FROM ai_scores WHERE evaluator = %s ORDER BY id", evaluator)


def make_judge(server: ProviderServer, scenario: str = "judge", **options) -> judge.Judge:
    return judge.Judge(JUDGE_MODEL, base_url=f"{server.url}/{scenario}/v1", api_key="x",
                       backoff=0.01, **options)  # fmt: skip


# ---------------------------------------------------------------- JSON Schema


def test_json_schema_rule_scores_each_answer_and_names_the_failing_field(answered, tmp_path):
    url, ids = answered
    schema = tmp_path / "person.json"
    schema.write_text(json.dumps(SCHEMA))
    args = ["eval", "score", "--evaluator", "json-schema", "--schema", str(schema),
            "--since", SINCE.isoformat()]  # fmt: skip
    assert main(args) == 0
    got = {row["task_id"]: (row["label"], row["comment"]) for row in scores(url, "json-schema")}
    assert got[ids[0]] == ("true", "valid under the schema")
    assert got[ids[1]][0] == "false" and "'age' is a required property" in got[ids[1]][1]
    assert got[ids[2]] == ("false", "name: 7 is not of type 'string'")
    assert got[ids[3]][0] == "false" and got[ids[3]][1].startswith("not JSON")
    assert {row["evaluator_version"] for row in scores(url, "json-schema")} == {
        rules.make_rule("json-schema", schema=SCHEMA).version
    }


def test_a_bad_schema_is_refused_and_writes_nothing(answered, tmp_path, capsys):
    url, _ids = answered
    with pytest.raises(ValidationError) as caught:
        rules.make_rule("json-schema", schema={"type": "no-such-type"})
    assert caught.value.field == "schema"
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    args = ["eval", "score", "--evaluator", "json-schema", "--since", SINCE.isoformat()]
    assert main([*args, "--schema", str(broken)]) == 1
    assert main(args) == 1  # no --schema at all
    assert "schema" in capsys.readouterr().err
    assert scores(url, "json-schema") == []


# ---------------------------------------------------------------- declared ranges


def test_a_declared_evaluator_refuses_scores_out_of_its_range_or_type(answered, server):
    url, ids = answered
    the_judge = make_judge(server, low=1, high=5)
    with psycopg.connect(url, row_factory=dict_row) as conn:
        evaluation.declare(conn, the_judge)
    version = the_judge.version
    with ingest.Tracker(url) as tracker:
        for value, field in (
            (9, "value"),
            (0.5, "value"),
            (True, "data_type"),
            ("ok", "data_type"),
        ):
            with pytest.raises(ValidationError) as caught:
                tracker.score("quality", value, task_id=ids[0], source="model",
                              evaluator="judge", evaluator_version=version)  # fmt: skip
            assert caught.value.field == field
        ok = tracker.score("quality", 5, task_id=ids[0], source="model", evaluator="judge",
                           evaluator_version=version)  # fmt: skip
        # an undeclared evaluator version takes any finite number, as before
        tracker.score("quality", 9, task_id=ids[0], evaluator="judge", evaluator_version="x")
    assert ok["value"] == 5
    assert len(scores(url, "judge")) == 2
    with pytest.raises(ValidationError) as caught:
        ScoreScale("numeric", 1, 5).check({"data_type": "numeric", "value": 6, "evaluator": "e"})
    assert caught.value.field == "value"
    with pytest.raises(ValidationError) as caught:
        ScoreScale("numeric", 5, 1)
    assert caught.value.field == "max"


def test_rest_and_batch_refuse_a_score_out_of_a_declared_range(answered, server):
    url, _ids = answered
    the_judge = make_judge(server, low=1, high=5)
    with psycopg.connect(url, row_factory=dict_row) as conn:
        evaluation.declare(conn, the_judge)
    run_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
    run = {"id": run_id, "source_type": "custom"}
    task = {"run_id": run_id, "task_id": task_id, "status": "completed", "model": "gpt-4o"}
    score = {"name": "quality", "value": 4, "task_id": task_id, "source": "model",
             "evaluator": "judge", "evaluator_version": the_judge.version}  # fmt: skip
    with serve(url, user="ada") as served, served.client() as client:
        refused = client.post("/v1/batch", json={"runs": [run], "tasks": [task],
                                                 "scores": [{**score, "value": 6}]})  # fmt: skip
        assert refused.status_code == 422
        assert refused.json()["error"]["field"] == "scores[0].value"
        assert rows(url, "SELECT id FROM ai_runs WHERE id = %s", run_id) == []
        sent = client.post("/v1/batch", json={"runs": [run], "tasks": [task], "scores": [score]})
        assert sent.status_code == 200, sent.text
        bad = client.post("/v1/scores", json={**score, "value": 0})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "value"
        kind = client.post("/v1/scores", json={**score, "value": True})
        assert kind.status_code == 422 and kind.json()["error"]["field"] == "data_type"
    assert [row["value"] for row in scores(url, "judge")] == [4]


# ---------------------------------------------------------------- the LLM judge


def judge_tasks(url: str) -> list[dict]:
    return rows(
        url,
        "SELECT t.*, r.source_type, r.tags FROM ai_tasks t JOIN ai_runs r ON r.id = t.run_id"
        " WHERE t.service = 'evaluation' ORDER BY t.created_at",
    )


def test_the_judge_scores_tasks_and_its_own_calls_are_priced_tasks(answered, server):
    url, ids = answered
    the_judge = make_judge(server)
    done = evaluation.score_tasks(the_judge, SINCE, url=url, threads=2)
    assert (done.tasks, done.written, done.errors) == (4, 4, 0)
    got = scores(url, "judge")
    assert {row["task_id"] for row in got} == set(ids)
    assert all(
        row["value"] == 4 and row["source"] == "model" and row["comment"] == "clear and correct"
        and row["name"] == "quality" and row["evaluator_version"].startswith("quality@1-")
        for row in got
    )  # fmt: skip
    calls = judge_tasks(url)
    assert len(calls) == 4
    cost = expected_cost(usage_for("openai-chat", "judge"), JUDGE_MODEL, "openai", "chat")
    assert all(
        c["status"] == "completed" and c["cost"] == cost and c["model"] == JUDGE_MODEL
        and c["source_type"] == "custom" and "evaluation" in c["tags"]
        for c in calls
    )  # fmt: skip
    asked = [c["request_data"]["messages"][0]["content"] for c in calls]
    assert sorted(a.split("Request:\n")[1].split("\n")[0] for a in asked) == [
        f"question {i}" for i in range(4)
    ]
    # a rerun asks nothing again and writes nothing twice; the judge's tasks are not judged
    before = len(server.requests)
    again = evaluation.score_tasks(the_judge, SINCE, url=url)
    assert (again.tasks, again.written, again.skipped) == (4, 0, 4)
    assert len(server.requests) == before
    assert len(scores(url, "judge")) == 4 and len(judge_tasks(url)) == 4


def test_a_garbage_or_out_of_range_answer_is_an_evaluator_error(answered, server):
    url, ids = answered
    answers = {"question 0": "I'd say it is fine", "question 1": '{"score": 11}',
               "question 2": "```json\n{\"score\": 2, \"reason\": \"vague\"}\n```",
               "question 3": "3"}  # fmt: skip
    server.judge_answer = lambda body: next(
        a for q, a in answers.items() if q in body["messages"][0]["content"]
    )
    try:
        the_judge = make_judge(server, name="helpful")
        done = evaluation.score_tasks(the_judge, SINCE, url=url)
    finally:
        server.judge_answer = lambda body: '{"score": 4, "reason": "clear and correct"}'
    assert (done.written, done.errors) == (2, 2)
    assert {r["task_id"]: (r["value"], r["comment"]) for r in scores(url, "judge")} == {
        ids[2]: (2, "vague"),
        ids[3]: (3, None),
    }
    errors = evaluation.eval_errors("judge", the_judge.version, url=url)
    assert {e["task_id"]: e["kind"] for e in errors} == {ids[0]: "answer", ids[1]: "answer"}
    assert "no score in the judge's answer" in errors[0]["error"]
    assert "must lie in [1, 5]" in next(e for e in errors if e["task_id"] == ids[1])["error"]
    # an unreadable answer is not asked again
    again = evaluation.score_tasks(the_judge, SINCE, url=url)
    assert (again.written, again.errors, again.skipped) == (0, 0, 4)


def test_an_outage_is_retried_recorded_and_scored_once_the_provider_is_back(answered, server):
    url, ids = answered
    down = make_judge(server, "outage", attempts=3)
    before = len(server.requests)
    done = evaluation.score_tasks(down, SINCE, url=url)
    assert (done.written, done.errors) == (0, 4)
    assert len(server.requests) - before == 12  # 3 attempts per task
    errors = evaluation.eval_errors("judge", down.version, url=url)
    assert [(e["kind"], e["attempts"]) for e in errors] == [("provider", 3)] * 4
    assert "503" in errors[0]["error"]
    failed = [c for c in judge_tasks(url) if c["status"] == "failed"]
    assert len(failed) == 12  # each failed call is itself a tracked (failed) task
    # the provider is back (same judge version: the base URL is not part of it)
    up = make_judge(server, "judge", attempts=3)
    assert up.version == down.version
    again = evaluation.score_tasks(up, SINCE, url=url)
    assert (again.written, again.errors) == (4, 0)
    assert evaluation.eval_errors("judge", down.version, url=url) == []
    assert {row["task_id"] for row in scores(url, "judge")} == set(ids)


def test_a_flaky_provider_is_retried_within_the_task(answered, server):
    url, ids = answered
    server.flaky_failures = 2
    done = evaluation.score_tasks(make_judge(server, "flaky", attempts=3), SINCE, url=url)
    assert (done.written, done.errors) == (4, 0)
    assert len(scores(url, "judge")) == 4


# ---------------------------------------------------------------- the online worker


def add_tasks(url: str, count: int, text: str = '{"ok": true}') -> list[uuid.UUID]:
    with ingest.Tracker(url) as tracker:
        run = tracker.create_run("chat", name="live")
        made = []
        for _ in range(count):
            task = tracker.create_task(run["id"], model="gpt-4o")
            tracker.complete_task(task["task_id"], text, total_time=5)
            made.append(task["task_id"])
    return made


def test_the_sample_is_the_same_in_python_and_sql(conn):
    ids = [uuid.uuid4() for _ in range(400)]
    in_sql = {
        row["task_id"]
        for row in conn.execute(
            "SELECT t.task_id FROM unnest(%s::uuid[]) AS t(task_id) WHERE "
            "('x' || substr(md5(t.task_id::text), 1, 8))::bit(32)::bigint / 4294967296.0 < %s",
            (ids, 0.3),
        ).fetchall()
    }
    assert in_sql == {i for i in ids if online_eval.in_sample(i, 0.3)}
    assert 60 < len(in_sql) < 180


@pytest.mark.horizon
def test_the_worker_scores_a_sample_of_new_tasks_once_across_restarts(answered):
    url, old = answered
    rule = rules.make_rule("json")
    worker = online_eval.OnlineEvaluator(rule, sample=0.5, url=url)
    first = worker.run_once()  # starts at the present: the tasks before it are the past
    assert first.written == 0
    new = add_tasks(url, 40)
    done = worker.run_once()
    wanted = {t for t in new if online_eval.in_sample(t, 0.5)}
    assert {row["task_id"] for row in scores(url, "json")} == wanted
    assert done.written == len(wanted) and 0 < len(wanted) < 40
    # a restarted worker goes on from the stored position: nothing twice, the next ones scored
    later = add_tasks(url, 10)
    restarted = online_eval.OnlineEvaluator(rule, sample=0.5, url=url)
    again = restarted.run_once()
    wanted |= {t for t in later if online_eval.in_sample(t, 0.5)}
    assert again.written == len(wanted) - done.written
    assert sorted(r["task_id"] for r in scores(url, "json")) == sorted(wanted)
    assert restarted.run_once().tasks == 0
    assert not set(old) & {row["task_id"] for row in scores(url, "json")}


@pytest.mark.horizon
def test_a_transaction_open_in_another_database_holds_the_worker_back_and_is_named(
    answered, make_db, monkeypatch, caplog
):
    """The worker reads below the server-wide xmin: a transaction left open in another
    database delays the tasks written after it began (never loses them), and the worker
    names it (docs/design.md, "When the horizon is held back")."""
    url, _old = answered
    monkeypatch.setattr(horizon, "HELD_BACK_AFTER_SECONDS", 0.0)
    worker = online_eval.OnlineEvaluator(rules.make_rule("json"), sample=1.0, url=url)
    worker.run_once()
    with psycopg.connect(make_db()) as other:  # not autocommit: one open transaction
        other.execute("SELECT pg_current_xact_id()")
        pid = other.info.backend_pid
        new = add_tasks(url, 2)
        with caplog.at_level(logging.WARNING, logger="ingest.online_eval"):
            held = worker.run_once()
        assert held.written == 0  # written after the open transaction began: they wait
        assert pid in {holder.pid for holder in worker.held_back_by}
        assert f"pid {pid} in database {other.info.dbname}" in caplog.text
        assert f"pg_terminate_backend({pid})" in caplog.text
        other.commit()
    assert worker.run_once().written == 2  # nothing lost
    assert {row["task_id"] for row in scores(url, "json")} == set(new)
    assert pid not in {holder.pid for holder in worker.held_back_by}


@pytest.mark.horizon
def test_a_task_rewritten_after_its_score_is_not_scored_twice(answered):
    url, _old = answered
    worker = online_eval.OnlineEvaluator(rules.make_rule("json"), sample=1.0, url=url)
    worker.run_once()
    (task,) = add_tasks(url, 1)
    assert worker.run_once().written == 1
    with psycopg.connect(url) as conn:  # re-pricing, say: a new sync_xid
        conn.execute("UPDATE ai_tasks SET cost = 0.01 WHERE task_id = %s", (task,))
    again = worker.run_once()
    assert (again.tasks, again.written, again.skipped) == (1, 0, 1)


@pytest.mark.horizon
def test_the_online_judge_never_judges_its_own_calls(answered, server, capsys):
    url, _old = answered
    args = ["eval", "worker", "--evaluator", "judge", "--judge-model", JUDGE_MODEL,
            "--base-url", f"{server.url}/judge/v1", "--sample", "1", "--once"]  # fmt: skip
    assert main(args) == 0  # the first pass: starts at the present
    new = add_tasks(url, 3)
    assert main(args) == 0
    assert main(args) == 0  # the judge's own 3 calls are finished tasks now: not judged
    out = capsys.readouterr().out
    assert "3 scores written" in out and out.count("0 tasks, 0 scores written") == 2
    assert {row["task_id"] for row in scores(url, "judge")} == set(new)
    assert len(judge_tasks(url)) == 3


@pytest.mark.horizon
def test_the_background_worker_retries_an_outage_then_scores(answered, server):
    url, _old = answered
    the_judge = make_judge(server, "flaky", attempts=1)
    worker = online_eval.OnlineEvaluator(the_judge, sample=1.0, url=url, interval=0.05,
                                         retry_after=0)  # fmt: skip
    worker.run_once()
    server.flaky_failures = 2
    new = add_tasks(url, 2)
    with worker:
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while len(scores(url, "judge")) < 2 and datetime.now(UTC) < deadline:
            time.sleep(0.05)
    assert {row["task_id"] for row in scores(url, "judge")} == set(new)
    assert evaluation.eval_errors("judge", the_judge.version, url=url) == []
    assert worker.total.errors == 2 and worker.total.written == 2


def test_an_anthropic_judge_is_tracked_too(answered, server):
    """The plain scenario answers prose, not a score: every task gets an `answer` error,
    and each of the judge's calls is an Anthropic task priced like any other."""
    url, ids = answered
    the_judge = judge.Judge("claude-sonnet-4-5", "anthropic", base_url=f"{server.url}/plain",
                            api_key="x", backoff=0.01)  # fmt: skip
    done = evaluation.score_tasks(the_judge, SINCE, url=url)
    assert (done.written, done.errors) == (0, 4)
    errors = evaluation.eval_errors("judge", the_judge.version, url=url)
    assert {(e["task_id"], e["kind"], e["attempts"]) for e in errors} == {
        (task_id, "answer", 1) for task_id in ids
    }
    cost = expected_cost(usage_for("anthropic", "plain"), "claude-sonnet-4-5", "anthropic")
    calls = judge_tasks(url)
    assert [(c["provider"], c["cost"]) for c in calls] == [("anthropic", cost)] * 4
