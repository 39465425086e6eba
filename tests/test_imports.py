"""Imports from Langfuse exports and LiteLLM spend logs (fixtures shaped like the real
exports), through the real bulk path into real Postgres; idempotent on re-import."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from dashboard import command as cli
from ingest.store import database
from ingest.transfer.foreign import import_from
from ingest.transfer.foreign.records import derived_id

FIXTURES = Path(__file__).parent / "fixtures" / "imports"


def rows(url: str, table: str) -> dict:
    key = "task_id" if table == "ai_tasks" else "id"
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return {r[key]: r for r in conn.execute(f"SELECT * FROM {table}").fetchall()}


def test_langfuse_traces_and_observations_api_and_blob_shapes(db_url):
    files = [FIXTURES / n for n in ("langfuse_traces.json", "langfuse_observations.jsonl",
                                    "langfuse_observations_v2.csv")]  # fmt: skip
    outcome = import_from("langfuse", files, db_url)
    assert outcome.summary.inserted == {"user": 0, "run": 3, "task": 3}
    assert outcome.skipped == 2 and outcome.skipped_kinds == {"SPAN": 1, "EVENT": 1}
    (bad,) = outcome.summary.rejected
    assert bad.path.endswith("langfuse_observations.jsonl") and bad.line == 5
    tasks = rows(db_url, "ai_tasks")
    gen = tasks[derived_id("langfuse:observation", "obs-gen-1")]
    assert (gen["tokens_input"], gen["tokens_cached_input"], gen["tokens_output"]) == (
        812,
        512,
        120,
    )
    assert gen["tokens_total"] == 932 and gen["cost"] == Decimal("0.00259")
    assert gen["cost_source"] == "provider"
    assert (gen["time_to_first_token"], gen["total_time"]) == (500, 3000)
    assert gen["model"] == "gpt-4o" and gen["provider"] == "openai" and gen["status"] == "completed"
    assert gen["response_text"] == "Let me check your invoices." and gen["user_id"] == "user-0007"
    assert gen["request_data"]["model_parameters"] == {"temperature": "0.2", "max_tokens": "512"}
    kept = gen["response_metadata"]["langfuse"]
    assert kept["parentObservationId"] == "obs-span-1" and kept["modelId"] == "clx-gpt4o"
    failed = tasks[derived_id("langfuse:observation", "obs-gen-2")]
    assert failed["status"] == "failed"
    assert failed["response_errors"] == [
        {"level": "ERROR", "message": "overloaded_error: Overloaded"}
    ]
    blob = tasks[derived_id("langfuse:observation", "obs-v2-1")]
    assert (blob["tokens_input"], blob["tokens_output"], blob["cost"]) == (
        1000,
        200,
        Decimal("0.00027"),
    )
    assert blob["time_to_first_token"] == 400 and blob["user_id"] == "user-0020"
    runs = rows(db_url, "ai_runs")
    session = runs[derived_id("langfuse:run", "session:session-881")]
    assert session["name"] == "support-chat" and session["tags"] == ["support", "billing"]
    assert session["is_starred"] and session["metadata"]["langfuse"]["release"] == "v2.3.0"
    assert session["task_count"] == 1 and session["total_cost"] == Decimal("0.00259")
    trip = runs[derived_id("langfuse:run", "session:session-900")]
    assert trip["name"] == "trip-planner" and trip["user_id"] == "user-0020"
    again = import_from("langfuse", files, db_url)  # idempotent
    assert again.summary.inserted == {"user": 0, "run": 0, "task": 0}
    assert again.summary.duplicates["task"] == 3
    assert database.run_totals_mismatches(db_url) == []


def test_litellm_spend_logs_csv_and_json(db_url):
    files = [FIXTURES / "litellm_spend_logs.csv", FIXTURES / "litellm_spend_logs.json"]
    outcome = import_from("litellm", files, db_url)
    assert outcome.summary.inserted == {"user": 0, "run": 2, "task": 3}
    assert outcome.summary.rejected == []
    tasks = rows(db_url, "ai_tasks")
    ok = tasks[derived_id("litellm:request", "chatcmpl-AaBbCc001")]
    assert (ok["tokens_input"], ok["tokens_output"], ok["tokens_cached_input"]) == (812, 356, 512)
    assert ok["cost"] == Decimal("0.0051") and ok["provider"] == "openai"
    assert (ok["time_to_first_token"], ok["total_time"]) == (640, 4870)
    assert ok["response_text"] == "Row level security is ..." and ok["endpoint"] == "acompletion"
    assert ok["response_metadata"]["litellm"]["team_id"] == "team-1"
    assert ok["request_data"]["messages"] == [{"role": "user", "content": "Explain RLS"}]
    failed = tasks[derived_id("litellm:request", "chatcmpl-AaBbCc002")]
    assert failed["status"] == "failed" and failed["response_errors"][0]["error_class"] == (
        "RateLimitError"
    )
    emb = tasks[derived_id("litellm:request", "emb-0001")]
    assert emb["tokens_input"] == 1000 and emb["cost"] == Decimal("0.00002")
    runs = rows(db_url, "ai_runs")
    session = runs[derived_id("litellm:run", "session:litellm-session-1")]
    assert session["task_count"] == 2 and session["name"] == "Explain RLS"
    assert session["tags"] == ["team:support"]
    assert import_from("litellm", files, db_url).summary.inserted["task"] == 0
    assert database.run_totals_mismatches(db_url) == []


def test_cli_import_from(db_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    code = cli.main(["import", "--from", "litellm", str(FIXTURES / "litellm_spend_logs.csv")])
    out = capsys.readouterr().out
    assert code == 0 and "tasks: 2 inserted" in out
    code = cli.main(["import", "--from", "langfuse", str(FIXTURES / "langfuse_observations.jsonl")])
    captured = capsys.readouterr()
    assert code == 2 and "skipped (not LLM calls): 2" in captured.out
    assert "langfuse_observations.jsonl:5" in captured.err
