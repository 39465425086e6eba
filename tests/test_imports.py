"""Imports from Langfuse exports and LiteLLM spend logs (fixtures shaped like the real
exports), through the real bulk path into real Postgres; idempotent on re-import."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg.rows import dict_row
from test_sdk_streams import expected_cost

import ingest
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


def _observation(obs_id: str, kind: str, usage: dict, **more) -> dict:
    return {"id": obs_id, "traceId": "trace-usage", "type": kind, "model": more.pop("model"),
            "startTime": "2026-11-02T10:15:00Z", "endTime": "2026-11-02T10:15:02Z",
            "usageDetails": usage, "costDetails": {}, **more}  # fmt: skip


def test_langfuse_cache_write_split_failed_and_embedding_usage(db_url, tmp_path):
    """LangChain-Anthropic's ephemeral 5m / 1h counts are cache writes (1 h at its own
    rate once priced); a failed generation's 0 counts and an embedding's output are NULL."""
    anthropic = {"input_tokens": 40, "output_tokens": 50, "cache_read_input_tokens": 2000,
                 "cache_creation_input_tokens": 1000,
                 "cache_creation": {"ephemeral_5m_input_tokens": 600,
                                    "ephemeral_1h_input_tokens": 400}}  # fmt: skip
    # Langfuse's LangChain handler: `input` minus every input_token_details key (clipped).
    langchain = {"input": 0, "input_cache_read": 2000, "input_cache_creation": 1000,
                 "input_ephemeral_5m_input_tokens": 600, "input_ephemeral_1h_input_tokens": 400,
                 "output": 50, "total": 3090}  # fmt: skip
    lines = [
        _observation("obs-cache", "GENERATION", langchain, model="claude-sonnet-4-5",
                     metadata={"ls_provider": "anthropic"}),
        _observation("obs-failed", "GENERATION", {"input": 0, "output": 0, "total": 0},
                     model="claude-sonnet-4-5", level="ERROR", statusMessage="overloaded"),
        _observation("obs-embed", "EMBEDDING", {"input": 8, "output": 0, "total": 8},
                     model="text-embedding-3-small"),
    ]  # fmt: skip
    path = tmp_path / "observations.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert import_from("langfuse", [path], db_url).summary.inserted["task"] == 3
    assert ingest.recompute_costs(db_url) >= 1
    tasks = rows(db_url, "ai_tasks")
    cache = tasks[derived_id("langfuse:observation", "obs-cache")]
    assert (cache["tokens_input"], cache["tokens_cached_input"]) == (3040, 2000)
    assert (cache["tokens_cache_write"], cache["tokens_output"]) == (1000, 50)
    assert cache["cost"] == expected_cost(anthropic, "claude-sonnet-4-5", "anthropic")
    failed = tasks[derived_id("langfuse:observation", "obs-failed")]
    assert failed["status"] == "failed"
    assert (failed["tokens_input"], failed["tokens_output"], failed["tokens_total"]) == (
        None, None, None)  # fmt: skip
    assert failed["cost"] is None
    embed = tasks[derived_id("langfuse:observation", "obs-embed")]
    assert (embed["tokens_input"], embed["tokens_output"], embed["tokens_total"]) == (8, None, 8)


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


def test_langfuse_scores_become_our_scores_once(db_url, monkeypatch, capsys):
    names = ("langfuse_traces.json", "langfuse_observations.jsonl",
             "langfuse_observations_v2.csv", "langfuse_scores.jsonl")  # fmt: skip
    files = [FIXTURES / name for name in names]
    outcome = import_from("langfuse", files, db_url)
    assert (outcome.scores.inserted, outcome.scores.replaced) == (4, 0)
    assert outcome.scores.skipped == {
        "observation not imported": 1,  # a SPAN: not a task
        "data type TEXT": 1,
        "trace not imported": 1,
    }
    bad = [r for r in outcome.summary.rejected if r.path.endswith("langfuse_scores.jsonl")]
    assert [(r.line, "value" in r.reason) for r in bad] == [(7, True)]
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        stored = {r["name"]: r for r in conn.execute("SELECT * FROM ai_scores").fetchall()}
    assert set(stored) == {"helpfulness", "user_thumbs", "tone", "latency-ok"}
    helpful = stored["helpfulness"]
    assert helpful["task_id"] == derived_id("langfuse:observation", "obs-gen-1")
    assert (helpful["data_type"], helpful["value"], helpful["source"]) == ("numeric", 0.9, "model")
    assert helpful["evaluator"] == "langfuse:eval" and helpful["comment"].startswith("Answers")
    thumbs = stored["user_thumbs"]  # a score of the trace: its run (the session's)
    assert thumbs["task_id"] is None
    assert thumbs["run_id"] == derived_id("langfuse:run", "session:session-881")
    assert (thumbs["data_type"], thumbs["value"], thumbs["label"]) == ("boolean", 1.0, "true")
    assert (thumbs["source"], thumbs["author"]) == ("human", "langfuse:u-17")
    tone = stored["tone"]
    assert (tone["data_type"], tone["value"], tone["label"], tone["source"]) == (
        "categorical", None, "neutral", "api",
    )  # fmt: skip
    assert tone["run_id"] == derived_id("langfuse:run", "trace:a1b2c3d4e5f60718293a4b5c6d7e8f90")
    latency = stored["latency-ok"]  # the blob-storage export's snake_case
    assert latency["task_id"] == derived_id("langfuse:observation", "obs-v2-1")
    assert latency["value"] == 3.0
    again = import_from("langfuse", files, db_url)  # idempotent: replaced, not added
    assert (again.scores.inserted, again.scores.replaced) == (0, 4)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM ai_scores").fetchone()[0] == 4
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert cli.main(["import", "--from", "langfuse", *map(str, files)]) == 2  # a rejected line
    assert "scores: 0 inserted, 4 replaced, 3 skipped" in capsys.readouterr().out
