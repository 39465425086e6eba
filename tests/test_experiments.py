"""Variants, datasets, experiments and their comparison (docs/quality.md).

- A variant travels on every way in (Tracker, REST, batch, OTLP attribute) and a task
  without its own has its run's; the mirror, the filters and the group-by dimension see it.
- A dataset made from the tasks a filter selects, exported and imported as JSONL, edited;
  it is its owner's and an admin's only.
- An experiment replayed against the local provider server stores exactly one task per item
  with exact cost and one score per evaluator and task; running it again asks nothing.
- The comparison is the same from DuckDB and Postgres and equals hand-computed SQL.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta

import anthropic
import openai
import pandas as pd
import psycopg
import pytest
from dashboard_support import app_environment, open_page
from provider_server import TEXT, ProviderServer, usage_for
from psycopg.rows import dict_row
from server_support import serve
from test_sdk_streams import expected_cost

import ingest
import queries as q
from dashboard.command import main
from ingest.errors import NotFoundError, ValidationError
from ingest.tracking.experiments import run_experiment, task_id_of
from ingest.tracking.experiments_cli import parse_evaluator
from ingest.tracking.rules import make_rule
from ingest.tracking.tracker import Tracker
from queries import Filters, compare, quality

NOW = datetime.now(UTC)
ALL = Filters(start=NOW - timedelta(days=3), end=NOW + timedelta(days=1))
QUESTIONS = ["What is RLS?", "Explain MVCC", "Why VACUUM?"]


@pytest.fixture(scope="module")
def provider():
    srv = ProviderServer().start()
    yield srv
    srv.shutdown()


@pytest.fixture
def tracker(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("AI_RUNS_HOME", str(tmp_path / "home"))
    with Tracker(db_url, user_id="ana") as t:
        yield t


def _source_tasks(tracker: Tracker) -> list:
    """Three completed tasks of a run with variant v1 (questions and answers)."""
    run = tracker.create_run("chat", variant="v1")
    ids = []
    for i, question in enumerate(QUESTIONS):
        task = tracker.create_task(
            run["id"], provider="openai", model="gpt-4o",
            request_data={"model": "gpt-4o", "messages": [{"role": "user", "content": question}]},
        )  # fmt: skip
        tracker.complete_task(task["task_id"], f"answer {i}", tokens_input=10, tokens_output=5)
        ids.append(task["task_id"])
    return ids


# ---------------------------------------------------------------- variants


def test_variant_from_the_tracker_and_a_task_has_its_runs_unless_its_own(tracker, conn):
    run = tracker.create_run("chat", variant="prompt-v2")
    assert run["variant"] == "prompt-v2"
    inherited = tracker.create_task(run["id"], model="gpt-4o")
    own = tracker.create_task(run["id"], model="gpt-4o", variant="gpt-4o-mini@t0.2")
    assert inherited["variant"] is None and own["variant"] == "gpt-4o-mini@t0.2"
    for bad in ("", "has space", "x" * 101, 7):
        with pytest.raises(ValidationError) as error:
            tracker.create_run("chat", variant=bad)
        assert error.value.field == "variant"
    assert conn.execute("SELECT count(*) AS n FROM ai_runs").fetchone()["n"] == 1


def test_variant_over_rest_batch_and_otlp(db_url, conn):
    with serve(db_url) as served, served.client() as http:
        run = http.post("/v1/runs", json={"source_type": "chat", "variant": "a"}).json()
        task = http.post("/v1/tasks", json={"run_id": run["id"], "variant": "b"})
        assert task.status_code == 201 and task.json()["variant"] == "b"
        bad = http.post("/v1/runs", json={"source_type": "chat", "variant": "no spaces"})
        assert bad.status_code == 422 and "variant" in bad.json()["error"]["field"]
        batch_run = str(uuid.uuid4())
        answer = http.post(
            "/v1/batch",
            json={
                "runs": [{"id": batch_run, "source_type": "custom", "variant": "c"}],
                "tasks": [{"run_id": batch_run, "task_id": str(uuid.uuid4()), "variant": "d"}],
            },
        )
        assert answer.status_code == 200, answer.text
        span = _otlp_span("e")
        assert http.post("/v1/traces", json=span).status_code == 200
    rows = conn.execute(
        "SELECT r.variant AS run, t.variant AS task FROM ai_tasks t JOIN ai_runs r "
        "ON r.id = t.run_id"
    ).fetchall()
    assert sorted((r["run"], r["task"]) for r in rows) == [("a", "b"), ("c", "d"), ("e", "e")]


def _otlp_span(variant: str) -> dict:
    now = int(datetime.now(UTC).timestamp() * 1e9)
    attributes = {
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 3,
        "ai_runs.variant": variant,
    }  # fmt: skip

    def value(v):
        return {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}

    span = {
        "traceId": uuid.uuid4().hex, "spanId": uuid.uuid4().hex[:16], "name": "chat gpt-4o",
        "kind": 3, "startTimeUnixNano": str(now - 10**9), "endTimeUnixNano": str(now),
        "attributes": [{"key": k, "value": value(v)} for k, v in attributes.items()],
    }  # fmt: skip
    return {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [span]}]}]}


def test_variant_in_the_mirror_filters_and_groups_on_both_engines(tracker, db_url, tmp_path):
    run = tracker.create_run("chat", variant="v1")
    for variant in (None, None, "v2"):
        task = tracker.create_task(run["id"], model="gpt-4o", variant=variant)
        tracker.complete_task(task["task_id"], "ok", tokens_input=1, tokens_output=1)
    q.sync_mirror(db_url, tmp_path / "m.duckdb")
    duck = q.open_mirror(tmp_path / "m.duckdb")
    with psycopg.connect(db_url) as pg:
        for con in (duck, pg):
            grouped = q.usage_by(con, ALL, by="variant")
            assert dict(zip(grouped["group"], grouped["tasks"], strict=True)) == {"v1": 2, "v2": 1}
            only = q.usage_by(con, Filters(start=ALL.start, end=ALL.end, variants=("v1",)), "model")
            assert only["tasks"].tolist() == [2]
    assert sorted(q.filter_options(duck)["variants"]) == ["v1", "v2"]
    duck.close()


# ---------------------------------------------------------------- datasets


def test_dataset_from_tasks_jsonl_round_trip_and_editing(tracker):
    ids = _source_tasks(tracker)
    assert tracker.dataset_from_tasks("faq", since=NOW - timedelta(hours=1)) == 3
    assert tracker.dataset_from_tasks("faq", since=NOW - timedelta(hours=1)) == 0  # no twice
    dataset = tracker.get_dataset("faq")
    items = dataset["items"]
    assert [i["input"][0]["content"] for i in items] == QUESTIONS
    assert [i["expected_output"] for i in items] == ["answer 0", "answer 1", "answer 2"]
    assert [i["source_task_id"] for i in items] == ids
    edited = tracker.edit_dataset_item(items[0]["id"], expected_output="Row level security")
    assert edited["expected_output"] == "Row level security"
    lines = list(tracker.export_dataset("faq"))
    assert tracker.import_dataset("faq", lines) == {"inserted": 0, "replaced": 3}
    with pytest.raises(ValidationError) as error:  # another dataset's item ids
        tracker.import_dataset("copy", lines)
    assert error.value.field == "items[0].id"
    fresh = [json.dumps({k: v for k, v in json.loads(line).items() if k != "id"}) for line in lines]
    assert tracker.import_dataset("copy", fresh) == {"inserted": 3, "replaced": 0}
    with pytest.raises(ValidationError) as error:
        tracker.import_dataset("faq", ['{"input": [{"role": "wizard", "content": "x"}]}'])
    assert error.value.field.startswith("items[0].input[0]")
    assert len(tracker.get_dataset("faq")["items"]) == 3
    assert {d["name"]: d["items"] for d in tracker.list_datasets()} == {"faq": 3, "copy": 3}


def test_a_dataset_is_its_owners_and_an_admins(tracker, db_url):
    tracker.upsert_user("ana", "Ana", None, None, "member")
    tracker.upsert_user("bob", "Bob", None, None, "member")
    tracker.upsert_user("root", "Root", None, None, "admin")
    with Tracker(db_url, viewer="ana") as ana:
        made = ana.create_dataset("mine")
        ana.import_dataset("mine", ['{"input": [{"role": "user", "content": "hi"}]}'])
    with Tracker(db_url, viewer="bob") as bob:
        assert bob.list_datasets() == []
        with pytest.raises(NotFoundError):
            bob.get_dataset(made["id"])
        with pytest.raises(NotFoundError):
            bob.import_dataset(str(made["id"]), ['{"input": [{"role": "user", "content": "x"}]}'])
    with Tracker(db_url, viewer="root") as root:
        assert len(root.get_dataset(made["id"])["items"]) == 1


# ---------------------------------------------------------------- experiments


def _dataset(tracker: Tracker) -> None:
    lines = [json.dumps({"input": [{"role": "user", "content": text}]}) for text in QUESTIONS]
    tracker.import_dataset("faq", lines)


def test_experiment_stores_one_task_per_item_with_exact_cost_and_one_score_per_rule(
    tracker, provider, conn
):
    _dataset(tracker)
    rules = [make_rule("length", max_chars=200), make_rule("contains", text="security")]
    client = openai.OpenAI(api_key="x", base_url=f"{provider.url}/plain/v1")
    before = len(provider.requests)
    done = run_experiment(
        tracker, "faq", model="gpt-4o-mini", name="mini", prompt="Be brief.", rules=rules,
        client=client,
    )  # fmt: skip
    assert (done.items, done.answered, done.already, done.failed) == (3, 3, 0, 0)
    assert len(provider.requests) - before == 3
    assert provider.requests[-1]["body"]["messages"][0] == {
        "role": "system",
        "content": "Be brief.",
    }
    tasks = conn.execute("SELECT * FROM ai_tasks WHERE run_id = %s", (done.run_id,)).fetchall()
    cost = expected_cost(usage_for("openai-chat", "plain"), "gpt-4o-mini", "openai", "chat")
    assert len(tasks) == 3 and all(t["cost"] == cost for t in tasks)
    assert all(t["response_text"] == "".join(TEXT) for t in tasks)
    run = conn.execute("SELECT * FROM ai_runs WHERE id = %s", (done.run_id,)).fetchone()
    assert run["variant"] == "mini" and run["total_cost"] == 3 * cost
    scores = conn.execute(
        "SELECT task_id, evaluator, count(*) AS n FROM ai_scores GROUP BY 1, 2"
    ).fetchall()
    assert len(scores) == 6 and all(s["n"] == 1 for s in scores)
    links = conn.execute("SELECT item_id, task_id FROM ai_experiment_items").fetchall()
    assert {link["task_id"] for link in links} == {t["task_id"] for t in tasks}
    assert all(task_id_of(done.run_id, link["item_id"]) == link["task_id"] for link in links)
    # Again: nothing asked, nothing added, scores replaced.
    again = run_experiment(
        tracker, "faq", model="gpt-4o-mini", name="mini", prompt="Be brief.", rules=rules,
        client=client,
    )  # fmt: skip
    assert (again.answered, again.already, again.scores) == (0, 3, 6)
    assert len(provider.requests) - before == 3
    assert conn.execute("SELECT count(*) AS n FROM ai_tasks").fetchone()["n"] == 3
    assert conn.execute("SELECT count(*) AS n FROM ai_scores").fetchone()["n"] == 6
    with pytest.raises(ValidationError) as error:
        run_experiment(tracker, "faq", model="gpt-4o", name="mini", client=client)
    assert error.value.field == "name"


def test_an_interrupted_experiment_resumes_without_asking_twice(tracker, provider, conn):
    _dataset(tracker)
    client = openai.OpenAI(api_key="x", base_url=f"{provider.url}/plain/v1")
    first = run_experiment(tracker, "faq", model="gpt-4o", name="half", client=client)
    # Forget two links (as if interrupted after the answers were written, before linking),
    # and add an item: only the new item is asked.
    conn.execute(
        "DELETE FROM ai_experiment_items WHERE item_id IN (SELECT item_id FROM "
        "ai_experiment_items ORDER BY item_id LIMIT 2)"
    )
    tracker.import_dataset("faq", ['{"input": [{"role": "user", "content": "And WAL?"}]}'])
    before = len(provider.requests)
    done = run_experiment(tracker, "faq", model="gpt-4o", name="half", client=client)
    assert len(provider.requests) - before == 1
    assert (done.items, done.answered, done.already) == (4, 3, 1)
    assert done.run_id == first.run_id
    count = conn.execute("SELECT count(*) AS n FROM ai_tasks").fetchone()["n"]
    assert (
        count == 4 == conn.execute("SELECT count(*) AS n FROM ai_experiment_items").fetchone()["n"]
    )


def test_anthropic_experiment_and_a_failing_provider(tracker, provider, conn):
    _dataset(tracker)
    client = anthropic.Anthropic(api_key="x", base_url=f"{provider.url}/plain")
    done = run_experiment(
        tracker, "faq", model="claude-3-5-haiku-latest", provider="anthropic", name="haiku",
        prompt="Be brief.", client=client, rules=[make_rule("json")],
    )  # fmt: skip
    assert (done.answered, done.failed, done.scores) == (3, 0, 3)
    assert provider.requests[-1]["body"]["system"] == "Be brief."
    broken = openai.OpenAI(api_key="x", base_url=f"{provider.url}/notfound/v1", max_retries=0)
    failed = run_experiment(tracker, "faq", model="gpt-4o", name="broken", client=broken)
    assert (failed.answered, failed.failed) == (3, 3)
    statuses = conn.execute(
        "SELECT status FROM ai_tasks WHERE run_id = %s", (failed.run_id,)
    ).fetchall()
    assert [s["status"] for s in statuses] == ["failed"] * 3


def test_cli_dataset_and_run(db_url, provider, monkeypatch, tmp_path, capsys, conn):
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("AI_RUNS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    with Tracker(db_url, user_id="ana") as tracker:
        _source_tasks(tracker)
    since = (NOW - timedelta(hours=1)).isoformat()
    assert main(["eval", "dataset", "create", "faq", "--since", since, "--user", "ana"]) == 0
    out = tmp_path / "faq.jsonl"
    assert main(["eval", "dataset", "export", "faq", str(out), "--user", "ana"]) == 0
    assert len(out.read_text().splitlines()) == 3
    assert main(["eval", "dataset", "import", "faq", str(out), "--user", "ana"]) == 0
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Answer in one line.")
    args = ["eval", "run", "--dataset", "faq", "--model", "gpt-4o", "--prompt", str(prompt),
            "--evaluator", "length:max_chars=100", "--evaluator", "json", "--user", "ana",
            "--base-url", f"{provider.url}/plain/v1"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "faq: 3 items added" in printed and "3 answered now" in printed
    assert conn.execute("SELECT count(*) AS n FROM ai_scores").fetchone()["n"] == 6
    assert main(["eval", "dataset", "list"]) == 0
    assert "ana\tfaq\t3 items" in capsys.readouterr().out
    with pytest.raises(ValidationError):
        parse_evaluator("length:max_chars")


# ---------------------------------------------------------------- comparison


@pytest.fixture
def two_experiments(tracker, provider, db_url, tmp_path):
    """Experiments "plain" and "cached" over one dataset, thumbs from a person on some
    tasks, and a rule score on every task; synced to a mirror."""
    _dataset(tracker)
    rules = [make_rule("contains", text="security"), make_rule("length", max_chars=15)]
    for name in ("plain", "cached"):
        client = openai.OpenAI(api_key="x", base_url=f"{provider.url}/{name}/v1")
        run_experiment(tracker, "faq", model="gpt-4o", name=name, rules=rules, client=client)
    with psycopg.connect(db_url, row_factory=dict_row) as pg:
        tasks = pg.execute("SELECT task_id FROM ai_tasks ORDER BY created_at").fetchall()
    for i, task in enumerate(tasks):
        tracker.score("thumbs", i % 3 != 0, task_id=task["task_id"], source="human", author="ana")
        tracker.score("rating", 1 + i % 5, task_id=task["task_id"], source="human", author="ana")
    q.sync_mirror(db_url, tmp_path / "m.duckdb")
    duck = q.open_mirror(tmp_path / "m.duckdb")
    yield duck
    duck.close()


def _by_hand(db_url: str) -> tuple[dict, dict]:
    with psycopg.connect(db_url, row_factory=dict_row) as pg:
        variants = pg.execute(
            "SELECT r.variant, count(*) AS tasks, sum(t.cost) AS cost, "
            "count(*) FILTER (WHERE t.status = 'failed') AS failed, "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY t.total_time) AS p50, "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY t.total_time) AS p95 "
            "FROM ai_tasks t JOIN ai_runs r ON r.id = t.run_id GROUP BY r.variant"
        ).fetchall()
        scores = pg.execute(
            "SELECT r.variant, s.name, count(*) AS n, avg(s.value) AS mean, "
            "stddev_samp(s.value) AS sd, sum(s.value) AS total "
            "FROM ai_scores s JOIN ai_tasks t ON t.task_id = s.task_id "
            "JOIN ai_runs r ON r.id = t.run_id GROUP BY 1, 2"
        ).fetchall()
    return {v["variant"]: v for v in variants}, {(s["variant"], s["name"]): s for s in scores}


def test_comparison_is_the_same_on_both_engines_and_equals_hand_computed_sql(
    two_experiments, db_url
):
    variants, scores = _by_hand(db_url)
    with psycopg.connect(db_url) as pg:
        results = [
            (compare.compare_variants(con, ALL, ["plain", "cached"]),
             compare.compare_scores(con, ALL, ["plain", "cached"]))
            for con in (two_experiments, pg)
        ]  # fmt: skip
    (duck_v, duck_s), (pg_v, pg_s) = results
    pd.testing.assert_frame_equal(duck_v, pg_v, check_dtype=False, rtol=1e-12)
    pd.testing.assert_frame_equal(duck_s, pg_s, check_dtype=False, rtol=1e-9)
    assert list(duck_s["name"]) == list(pg_s["name"]) and list(duck_s["n"]) == list(pg_s["n"])
    for frame in (duck_v, pg_v):
        assert list(frame["variant"]) == ["cached", "plain"]
        for row in frame.itertuples():
            hand = variants[row.variant]
            assert row.tasks == hand["tasks"] == 3 and row.failed == hand["failed"] == 0
            assert math.isclose(row.cost, float(hand["cost"]), rel_tol=1e-12)
            assert math.isclose(row.cost_per_task, float(hand["cost"]) / 3, rel_tol=1e-12)
            assert math.isclose(row.latency_p50, hand["p50"])
            assert math.isclose(row.latency_p95, hand["p95"])
    for frame in (duck_s, pg_s):
        assert len(frame) == 2 * 4  # thumbs, rating, contains, length per experiment
        for row in frame.itertuples():
            hand = scores[(row.variant, row.name)]
            assert row.n == hand["n"] and math.isclose(row.mean, hand["mean"])
            if row.kind == "boolean":
                low, high = quality.wilson_interval(hand["total"] / hand["n"], hand["n"])
            else:
                low, high = quality.t_interval(hand["mean"], hand["sd"], hand["n"])
            assert math.isclose(row.ci_low, low) and math.isclose(row.ci_high, high)
    kinds = dict(zip(duck_s["name"], duck_s["kind"], strict=False))
    assert kinds == {"contains": "boolean", "length": "boolean", "rating": "numeric",
                     "thumbs": "boolean"}  # fmt: skip


def test_intervals_match_the_textbook():
    low, high = quality.wilson_interval(8 / 10, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    low, high = quality.t_interval(3.0, 1.0, 10)
    assert round(high - 3.0, 4) == round(2.2622 / math.sqrt(10), 4)  # t(0.975, 9)
    assert all(math.isnan(v) for v in quality.t_interval(3.0, math.nan, 1))


def test_item_diffs_put_the_experiments_answers_side_by_side(two_experiments, db_url):
    diffs = compare.item_diffs(db_url, ["plain", "cached"])
    assert len(diffs) == 6
    assert list(diffs["experiment"]) == ["cached", "plain"] * 3
    assert {"thumbs", "rating", "contains", "length"} <= set(diffs.columns)
    assert diffs.groupby("item_id")["task_id"].nunique().tolist() == [2, 2, 2]
    assert compare.item_diffs(db_url, ["plain"], viewer="nobody").empty


def test_the_compare_page_shows_the_table_the_chart_and_links_to_tasks(
    two_experiments, db_url, tmp_path
):
    with app_environment(db_url, tmp_path):
        at = open_page("compare", compare=["plain", "cached"], compare_score="thumbs")
        assert not at.exception, at.exception
        frames = [d.value for d in at.dataframe]
        table = next(f for f in frames if "latency_p95" in f.columns)
        assert sorted(table["variant"]) == ["cached", "plain"]
        assert all(link.startswith("performance?variant=") for link in table["tasks_link"])
        scores = next(f for f in frames if "ci_high" in f.columns)
        assert set(scores["name"]) == {"thumbs", "rating", "contains", "length"}
        items = next(f for f in frames if "expected" in f.columns)
        assert len(items) == 6 and all(t.startswith("task?task_id=") for t in items["task"])
        chart = json.loads(at.get("plotly_chart")[0].proto.spec)
        assert sorted(chart["data"][0]["text"]) == ["cached", "plain"]


def test_tracked_clients_and_the_export_carry_a_variant(
    tracker, provider, db_url, conn, tmp_path, monkeypatch
):
    client = ingest.track(
        openai.OpenAI(api_key="x", base_url=f"{provider.url}/plain/v1"), tracker, variant="t0.2"
    )
    with tracker.run("chat", variant="support-v3") as run_id:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    tracker.flush()
    row = conn.execute("SELECT variant FROM ai_tasks WHERE run_id = %s", (run_id,)).fetchone()
    assert row["variant"] == "t0.2"
    assert conn.execute("SELECT variant FROM ai_runs").fetchone()["variant"] == "support-v3"
    monkeypatch.setenv("DATABASE_URL", db_url)
    out = tmp_path / "all.jsonl"
    assert main(["export", "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    rows = [line for line in lines if "source_type" in line or "task_id" in line]
    assert {line.get("variant") for line in rows} == {"t0.2", "support-v3"}
