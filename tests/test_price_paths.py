"""Every write path that computes a cost prices with the price book in force at the task's
created_at and records price_ref (docs/spend-control.md, "Where prices are applied"): the
batch endpoint, OTLP spans, tracked SDK clients (background writer, also after a spool),
and recompute_costs. A given cost stays the provider's."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import openai
import psycopg
import pytest
from builders import make_run, make_task, task_row
from provider_server import ProviderServer
from psycopg.rows import dict_row
from test_sdk_streams import MESSAGES

import ingest
from ingest.sdk.background_writer import BackgroundWriter
from ingest.spend import price_books
from ingest.spend.pricing import cost_of_task
from ingest.store import database
from ingest.tracking.tracker import Tracker
from tests import test_server_otlp as otlp
from tests.server_support import serve

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers

PER_REQUEST = Decimal("0.001")


def add_override(url: str, model: str = "gpt-4o") -> str:
    """An override of openai `model` from 2025-01-01 on; its price_ref."""
    row = price_books.add_override(
        url,
        provider="openai",
        model_pattern=model,
        valid_from="2025-01-01",
        input_per_mtok="2",
        output_per_mtok="8",
        per_request=str(PER_REQUEST),
    )
    return f"override:{row['id']}"


def override_cost(row: dict) -> Decimal:
    """The override's price of a stored row (cached and reasoning at the base rates)."""
    per_token = Decimal(row["tokens_input"] * 2 + row["tokens_output"] * 8) / 1_000_000
    return PER_REQUEST + per_token


def assert_override(row: dict, ref: str) -> None:
    assert (row["cost"], row["price_ref"]) == (override_cost(row), ref)
    assert row["cost_source"] == "computed"


def assert_library(row: dict) -> None:
    assert row["cost"] is not None and row["cost"] == cost_of_task(row)
    assert (row["price_ref"], row["cost_source"]) == (price_books.library_ref(), "computed")


def stored(url: str, task_id: uuid.UUID | str) -> dict:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return task_row(conn, uuid.UUID(str(task_id)))


def test_batch_endpoint_prices_with_the_price_book(db_url):
    ref = add_override(db_url)
    run = str(uuid.uuid4())
    base = {"run_id": run, "provider": "openai", "status": "completed"}
    tasks = {
        "covered": {**base, "model": "gpt-4o", "tokens_input": 1000, "tokens_output": 100},
        "library": {**base, "model": "gpt-4o-mini", "tokens_input": 1000, "tokens_output": 100},
        "before": {**base, "model": "gpt-4o", "created_at": "2024-12-31T23:00:00+00:00",
                   "tokens_input": 1000, "tokens_output": 100},
        "given": {**base, "model": "gpt-4o", "tokens_input": 1000, "tokens_output": 100,
                  "cost": "0.5"},
        "usage": {**base, "model": "gpt-4o",
                  "usage": {"prompt_tokens": 300, "completion_tokens": 30}},
        "pending": {**base, "model": "gpt-4o", "status": "pending"},
    }  # fmt: skip
    for task in tasks.values():
        task["task_id"] = str(uuid.uuid4())
    with serve(db_url) as served, served.client() as c:
        answer = c.post(
            "/v1/batch",
            json={"runs": [{"id": run, "source_type": "chat"}], "tasks": list(tasks.values())},
        )
        assert answer.status_code == 200, answer.text
    rows = {name: stored(db_url, task["task_id"]) for name, task in tasks.items()}
    assert_override(rows["covered"], ref)
    assert_override(rows["usage"], ref)
    assert_library(rows["library"])
    assert_library(rows["before"])  # before the window: the library
    assert (rows["given"]["cost"], rows["given"]["cost_source"]) == (Decimal("0.5"), "provider")
    assert rows["given"]["price_ref"] is None
    assert rows["pending"]["cost"] is None and rows["pending"]["price_ref"] is None
    assert database.run_totals_mismatches(db_url) == []


def _span(span_id: str, model: str) -> dict:
    return {"span_id": span_id, "name": "chat", "attributes": {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model, "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 200}}  # fmt: skip


def test_otlp_spans_are_priced_with_the_price_book(db_url):
    ref = add_override(db_url)
    trace = uuid.uuid4().hex
    spans = [_span("0000000000000001", "gpt-4o"), _span("0000000000000002", "gpt-4o-mini")]
    body = json.dumps(otlp.node_body(trace, spans)).encode()
    with serve(db_url) as served, served.client() as c:
        answer = c.post("/v1/traces", content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 200, answer.text
    rows = {row["model"]: row for row in otlp.tasks_of(db_url)}
    assert_override(rows["gpt-4o"], ref)
    assert_library(rows["gpt-4o-mini"])


@pytest.fixture(scope="module")
def provider():
    srv = ProviderServer().start()
    yield srv
    srv.shutdown()


def test_tracked_sdk_client_is_priced_when_written(db_url, provider, tmp_path, monkeypatch):
    monkeypatch.setenv("AI_RUNS_HOME", str(tmp_path / "home"))
    ref = add_override(db_url)
    with Tracker(db_url) as tracker:
        client = ingest.track(
            openai.OpenAI(api_key="x", base_url=f"{provider.url}/plain/v1"), tracker
        )
        with tracker.run("chat") as run_id:
            covered = uuid.uuid4()
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES, ai_task_id=covered)
            other = uuid.uuid4()
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, ai_task_id=other)
        tracker.flush()
    assert_override(stored(db_url, covered), ref)
    assert_library(stored(db_url, other))
    assert stored(db_url, covered)["run_id"] == run_id


def test_spooled_task_is_priced_by_the_books_in_force_when_written(db_url, conn, tmp_path):
    """A task spooled during an outage, before an override existed, is priced on replay
    with the override then in force; a given cost stays the provider's."""
    run = make_run(conn)
    row = {"run_id": str(run), "status": "completed", "provider": "openai", "model": "gpt-4o",
           "tokens_input": 5000, "tokens_output": 700,
           "created_at": "2026-06-01T12:00:00+00:00"}  # fmt: skip
    spooled, given = str(uuid.uuid4()), str(uuid.uuid4())
    spool = tmp_path / "spool"
    spool.mkdir()
    lines = [
        ["task", {**row, "task_id": spooled}],
        ["task", {**row, "task_id": given, "cost": "0.25", "cost_source": "provider"}],
    ]
    # As the writer spools a batch (one JSON [kind, row] per line), before the override.
    text = "".join(json.dumps(line) + "\n" for line in lines)
    (spool / "00000000000000000001-1-spooled.jsonl").write_text(text)
    ref = add_override(db_url)
    writer = BackgroundWriter(db_url, spool_dir=spool)
    assert writer.flush(10)
    writer.close()
    assert not writer.spooled_files()
    assert_override(stored(db_url, spooled), ref)
    kept = stored(db_url, given)
    assert (kept["cost"], kept["cost_source"], kept["price_ref"]) == (
        Decimal("0.25"), "provider", None,
    )  # fmt: skip


def test_recompute_costs_uses_the_price_book(db_url, conn):
    ref = add_override(db_url)
    run = make_run(conn)
    covered = make_task(conn, run, cost=None, status="completed", tokens_input=4000)
    library = make_task(conn, run, cost=None, status="completed", model="gpt-4o-mini")
    assert ingest.recompute_costs(db_url) == 2
    assert_override(task_row(conn, covered), ref)
    assert_library(task_row(conn, library))
    assert ingest.recompute_costs(db_url, only_missing=False) == 0
    assert database.run_totals_mismatches(db_url) == []
