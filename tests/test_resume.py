"""Resume (ingest/tracking/conversations.py): a run's conversation in OpenAI, Anthropic or
Gemini shape with its settings, variables and broker values; continued through a real
tracked OpenAI client against the local provider server; over HTTP; on the run page."""

from __future__ import annotations

import json
import os
from decimal import Decimal

import openai
import pytest
from dashboard_support import app_environment, create_database, drop_database, open_page
from provider_server import TEXT, ProviderServer, usage_for
from test_sdk_streams import expected_cost

import ingest
from ingest.errors import NotFoundError, ValidationError
from ingest.store import database
from ingest.tracking.conversations import SHAPES, in_shape
from tests.server_support import serve

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers

STORED = [
    {"role": "system", "content": "Be brief."},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Weather and map?"},
            {"type": "image_url", "image_url": {"url": "https://e.x/m.png"}},
        ],
    },
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "18 C"},
    {
        "role": "assistant",
        "content": "18 C and sunny.",
        "task_id": "00000000-0000-4000-8000-000000000001",
    },
]


def test_openai_shape_keeps_roles_tool_calls_and_drops_our_bookkeeping() -> None:
    messages, system = in_shape(STORED, "openai")
    assert system is None
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather and map?"},
                {"type": "image_url", "image_url": {"url": "https://e.x/m.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "18 C", "tool_call_id": "c1"},
        {"role": "assistant", "content": "18 C and sunny."},
    ]


def test_anthropic_shape_puts_system_apart_and_tools_in_blocks() -> None:
    messages, system = in_shape(STORED, "anthropic")
    assert system == "Be brief."
    assert messages == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather and map?"},
                {"type": "image", "source": {"type": "url", "url": "https://e.x/m.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "c1", "name": "weather", "input": {"city": "Paris"}}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "18 C"}],
        },
        {"role": "assistant", "content": "18 C and sunny."},
    ]
    # and back: the Anthropic shape stored in a run reads the same to OpenAI
    assert (
        in_shape([{"role": "system", "content": system}, *messages], "openai")[0]
        == (in_shape(STORED, "openai")[0])
    )


def test_gemini_shape_has_model_turns_and_function_parts() -> None:
    contents, system = in_shape(STORED, "gemini")
    assert system == "Be brief."
    assert contents == [
        {
            "role": "user",
            "parts": [
                {"text": "Weather and map?"},
                {"fileData": {"mimeType": "image/png", "fileUri": "https://e.x/m.png"}},
            ],
        },
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "weather", "args": {"city": "Paris"}}}],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "weather", "response": {"content": "18 C"}}}],
        },
        {"role": "model", "parts": [{"text": "18 C and sunny."}]},
    ]


def test_unknown_shape_lists_the_allowed_and_unreadable_run_is_not_found(db_url) -> None:
    with ingest.Tracker(db_url) as owner:
        for who in ("alice", "bob"):
            owner.upsert_user(who, who.title())
        run = owner.create_run(
            "chat",
            user_id="alice",
            messages=STORED,
            settings={"model": "gpt-4o", "temperature": 0.2},
            variable_values={"city": "Paris"},
            broker_values={"today": "2026-12-06"},
        )
        with pytest.raises(ValidationError) as bad:
            owner.resume_run(run["id"], shape="cohere")
        assert bad.value.field == "shape" and tuple(bad.value.allowed) == SHAPES
    with ingest.Tracker(db_url, viewer="alice") as alice:
        state = alice.resume_run(run["id"], shape="anthropic")
    assert state["settings"] == {"model": "gpt-4o", "temperature": 0.2}
    assert state["variable_values"] == {"city": "Paris"}
    assert state["broker_values"] == {"today": "2026-12-06"}
    assert state["system"] == "Be brief." and state["run_id"] == str(run["id"])
    with ingest.Tracker(db_url, viewer="bob") as bob:
        with pytest.raises(NotFoundError):
            bob.resume_run(run["id"])
        with pytest.raises(NotFoundError), bob.run(run["id"]):
            pass


@pytest.fixture(scope="module")
def provider():
    srv = ProviderServer().start()
    yield srv
    srv.shutdown()


def test_a_resumed_run_continued_through_a_tracked_client_holds_every_turn(
    db_url, provider, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("AI_RUNS_HOME", str(tmp_path / "home"))
    with ingest.Tracker(db_url) as tracker:
        run = tracker.create_run(
            "chat",
            messages=[{"role": "user", "content": "Explain RLS"}],
            settings={"model": "gpt-4o"},
        )
        first = tracker.create_task(run["id"], provider="openai", model="gpt-4o")
        tracker.complete_task(
            first["task_id"],
            "RLS filters rows.",
            tokens_input=100,
            tokens_output=20,
            cost=Decimal("0.0005"),
        )
        tracker.add_message(run["id"], "assistant", "RLS filters rows.", task_id=first["task_id"])

        state = tracker.resume_run(run["id"], shape="openai")
        client = ingest.track(
            openai.OpenAI(api_key="x", base_url=f"{provider.url}/plain/v1"), tracker
        )
        messages = state["messages"]
        with tracker.run(run["id"]) as continued:
            assert continued == run["id"]
            for question in ("And policies?", "And roles?"):
                messages = [*messages, {"role": "user", "content": question}]
                tracker.add_message(run["id"], "user", question)
                reply = client.chat.completions.create(
                    model=state["settings"]["model"], messages=messages
                )
                text = reply.choices[0].message.content
                messages = [*messages, {"role": "assistant", "content": text}]
                tracker.add_message(run["id"], "assistant", text)
        tracker.flush()
        after = tracker.get_run(run["id"])
    assert [r["body"]["messages"] for r in provider.requests[-2:]] == [messages[:3], messages[:5]]
    assert [(m["role"], m["content"]) for m in after["messages"]] == [
        (m["role"], m["content"]) for m in messages
    ]
    assert "".join(TEXT) == after["messages"][-1]["content"]
    raw = usage_for("openai-chat", "plain")
    tasks = after["tasks"]
    assert [t["status"] for t in tasks] == ["completed"] * 3
    assert [t["task_id"] for t in tasks][0] == first["task_id"]
    assert after["task_count"] == 3
    assert after["total_tokens"] == 120 + 2 * raw["total_tokens"]
    assert after["total_cost"] == Decimal("0.0005") + 2 * expected_cost(
        raw, "gpt-4o", "openai", "chat"
    )
    assert database.run_totals_mismatches(db_url) == []


def test_resume_over_http_answers_404_for_another_users_run_and_422_for_a_bad_shape(
    db_url,
) -> None:
    with ingest.Tracker(db_url) as owner:
        owner.upsert_user("ada", "Ada")
        owner.upsert_user("eve", "Eve")
        mine = owner.create_run("chat", user_id="ada", messages=STORED, settings={"model": "m"})
        theirs = owner.create_run("chat", user_id="eve", messages=STORED)
    with serve(db_url) as served, served.client() as http:
        answer = http.get(f"/v1/runs/{mine['id']}/resume", params={"shape": "gemini"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["messages"] == json.loads(json.dumps(in_shape(STORED, "gemini")[0]))
        assert body["system"] == "Be brief." and body["settings"] == {"model": "m"}
        assert http.get(f"/v1/runs/{theirs['id']}/resume").status_code == 404
        bad = http.get(f"/v1/runs/{mine['id']}/resume", params={"shape": "xml"})
        assert bad.status_code == 422
        error = bad.json()["error"]
        assert error["field"] == "shape" and error["allowed"] == list(SHAPES)


def test_run_page_offers_resume_as_json_and_python(pg_server, template_db, tmp_path) -> None:
    name = f"ai_runs_resume_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    database._migrated.add(url)
    try:
        with ingest.Tracker(url) as tracker:
            run = tracker.create_run("chat", messages=STORED, settings={"model": "gpt-4o"})
        with app_environment(url, tmp_path):
            at = open_page("runs", run_id=str(run["id"]))
            assert not at.exception
            codes = {
                c.language: c.value for c in at.code if '"shape"' in c.value or "ingest" in c.value
            }
            assert json.loads(codes["json"])["messages"] == in_shape(STORED, "openai")[0]
            assert "tracker.resume_run(run_id, shape='openai')" in codes["python"]
            assert "with tracker.run(run_id):" in codes["python"]
            at.segmented_control(key="run_resume_shape").set_value("anthropic").run()
            codes = {
                c.language: c.value for c in at.code if '"shape"' in c.value or "ingest" in c.value
            }
            assert json.loads(codes["json"])["system"] == "Be brief."
    finally:
        drop_database(pg_server, name)
