"""The LiteLLM custom logger: real litellm against the local provider server."""

from __future__ import annotations

import asyncio
import os
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no internet: its own snapshot

import litellm  # noqa: E402
import pytest
from provider_server import TEXT, ProviderServer, usage_for  # noqa: E402
from test_sdk_streams import MESSAGES, expected_cost  # noqa: E402

from ingest.sdk.litellm_logger import AiRunsLogger
from ingest.tracking.tracker import Tracker


@pytest.fixture(scope="module")
def server():
    srv = ProviderServer().start()
    yield srv
    srv.shutdown()


@pytest.fixture
def tracker(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("AI_RUNS_HOME", str(tmp_path / "home"))
    with Tracker(db_url) as t:
        logger = AiRunsLogger(t)
        monkeypatch.setattr(litellm, "callbacks", [logger])
        yield t


def test_litellm_success_sync_async_and_failure(server, tracker, conn):
    base = f"{server.url}/cached/v1"
    common = {"model": "openai/gpt-4o", "messages": MESSAGES, "api_key": "x", "api_base": base}
    with tracker.run("chat") as run_id:
        reply = litellm.completion(**common)

        async def call_async():
            await litellm.acompletion(**common)
            await asyncio.sleep(0.5)  # LiteLLM runs its async success hook as a task

        asyncio.run(call_async())
        with pytest.raises(Exception):  # noqa: B017 (litellm maps the 404 to its own class)
            litellm.completion(**{**common, "api_base": f"{server.url}/notfound/v1"})
    assert reply.choices[0].message.content == "".join(TEXT)
    deadline = 0
    rows = []
    while deadline < 150:  # LiteLLM logs from its own worker threads
        tracker.flush()
        rows = conn.execute(
            "SELECT * FROM ai_tasks WHERE run_id = %s ORDER BY created_at", (run_id,)
        ).fetchall()
        if len(rows) == 3:
            break
        deadline += 1
        time.sleep(0.1)
    assert sorted(r["status"] for r in rows) == ["completed"] * 2 + ["failed"]
    raw = usage_for("openai-chat", "cached")
    for row in (r for r in rows if r["status"] == "completed"):
        assert row["provider"] == "openai" and row["response_text"] == "".join(TEXT)
        assert (row["tokens_input"], row["tokens_cached_input"]) == (2400, 2048)
        assert row["cost"] == expected_cost(raw, "gpt-4o", "openai", "chat")
        assert row["cost_source"] == "computed"
        assert "litellm_cost" in row["response_metadata"]
        assert row["total_time"] >= (row["time_to_first_token"] or 0)
