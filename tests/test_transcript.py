"""The transcript view (dashboard/transcript.py): stored messages in OpenAI, Anthropic and
Gemini shape become chat turns (pure function), and the run and task pages draw them as
chat messages with text never read as markdown (AppTest on real Postgres)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from dashboard_support import app_environment, create_database, drop_database, open_page

import ingest
from dashboard.transcript import Attachment, ToolCall, task_messages, turns
from ingest.store import database

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers

INJECTION = "[Session expired – log in](https://evil.example) ![x](http://host/x.png) **bold**"

OPENAI = [
    {"role": "system", "content": "Be brief."},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            {"type": "image_url", "image_url": {"url": "javascript:alert(1)"}},
        ],
    },
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"animal": "cat"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
    {"role": "assistant", "content": "A cat."},
]

ANTHROPIC = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Weather in Paris?"},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/map.jpg"}},
        ],
    },
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "tu_1", "name": "weather", "input": {"city": "Paris"}},
        ],
    },
    {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": "18 °C"}],
    },
]

GEMINI = [
    {
        "role": "user",
        "content": None,
        "parts": [
            {"text": "Summarise this video"},
            {"fileData": {"mimeType": "video/mp4", "fileUri": "https://youtu.be/dQw4w9WgXcQ"}},
        ],
    },
    {
        "role": "assistant",
        "content": [{"functionCall": {"name": "fetch", "args": {"id": 7}}}],
    },
    {"role": "tool", "content": [{"functionResponse": {"name": "fetch", "response": {"ok": 1}}}]},
]


def test_openai_messages_become_turns_with_tool_calls_and_only_http_links() -> None:
    system, user, call, tool, reply = turns(OPENAI)
    assert (system.role, system.text) == ("system", "Be brief.")
    assert user.role == "user" and user.text == "What is in this picture?"
    assert user.attachments == (
        Attachment("image", "https://example.com/cat.png", "https://example.com/cat.png"),
        Attachment("image", "image_url", None),  # a javascript: URL is never a link
    )
    assert call.role == "assistant" and call.text == ""
    assert call.tool_calls == (ToolCall("lookup", '{\n  "animal": "cat"\n}', "call_1"),)
    assert (tool.role, tool.name, tool.text) == ("tool", "call_1", "a cat")
    assert (reply.role, reply.text, reply.index) == ("assistant", "A cat.", 4)


def test_anthropic_tool_use_and_tool_result_turns() -> None:
    user, assistant, result = turns(ANTHROPIC)
    assert user.attachments[0].url == "https://example.com/map.jpg"
    assert assistant.text == "Let me check."
    assert assistant.tool_calls == (ToolCall("weather", '{\n  "city": "Paris"\n}', "tu_1"),)
    assert result.role == "tool" and result.tool_results == ("18 °C",)


def test_gemini_parts_function_calls_and_youtube() -> None:
    user, call, response = turns(GEMINI)
    assert user.text == "Summarise this video"
    assert user.attachments == (Attachment("youtube", "video/mp4", "https://youtu.be/dQw4w9WgXcQ"),)
    assert call.tool_calls == (ToolCall("fetch", '{\n  "id": 7\n}'),)
    assert response.role == "tool" and response.tool_results == ('{\n  "ok": 1\n}',)


def test_roles_are_normalised_and_odd_entries_kept_as_text() -> None:
    shown = turns(
        [
            {"role": "developer", "content": "rules"},
            {"role": "function", "name": "f", "content": {"x": 1}},
            "not a message",
            {"role": "user", "content": [42]},
        ]
    )
    assert [t.role for t in shown] == ["system", "tool", "user"]
    assert shown[1].text == '{"x": 1}' and shown[1].name == "f"
    assert shown[2].text == "42" and shown[2].index == 3


def test_task_messages_are_the_request_then_the_reply_live_while_streaming() -> None:
    task = {
        "status": "streaming",
        "request_data": {"system": "Be kind.", "messages": [{"role": "user", "content": "Hi"}]},
        "response_text": "Hel",
    }
    shown = turns(task_messages(task))
    assert [(t.role, t.text, t.live) for t in shown] == [
        ("system", "Be kind.", False),
        ("user", "Hi", False),
        ("assistant", "Hel", True),
    ]
    done = task_messages(
        {
            "status": "completed",
            "request_data": {"input": "Explain RLS"},
            "response_text": "RLS is ...",
            "tool_updates": [{"name": "search", "arguments": '{"q": "rls"}'}],
        }
    )
    assert [(t.role, t.text, t.live) for t in turns(done)] == [
        ("user", "Explain RLS", False),
        ("assistant", "RLS is ...", False),
    ]
    assert turns(done)[1].tool_calls == (ToolCall("search", '{\n  "q": "rls"\n}'),)


# ------------------------------------------------------------------ the pages


@pytest.fixture(scope="module")
def chat_world(pg_server, template_db, tmp_path_factory) -> Iterator[dict]:
    name = f"ai_runs_transcript_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    database._migrated.add(url)
    long_text = "\n".join(f"line {i}" for i in range(200))
    with ingest.Tracker(url) as tracker:
        run = tracker.create_run(
            "chat",
            name="transcript",
            messages=[
                *OPENAI,
                {"role": "user", "content": INJECTION},
                {"role": "assistant", "content": long_text},
            ],
        )
        task = tracker.create_task(
            run["id"],
            provider="anthropic",
            model="claude-sonnet-4",
            request_data={"system": "Be kind.", "messages": ANTHROPIC},
        )
        tracker.update_task(task["task_id"], "Sunny so f")
        tracker.flush()
    home = tmp_path_factory.mktemp("transcript_home")
    with app_environment(url, home):
        yield {"url": url, "run": str(run["id"]), "task": str(task["task_id"]), "long": long_text}
    drop_database(pg_server, name)


def _texts(at) -> list[str]:
    return [t.value for t in at.text]


def test_run_page_shows_the_conversation_as_chat_turns(chat_world: dict) -> None:
    at = open_page("runs", run_id=chat_world["run"])
    assert not at.exception
    assert [m.name for m in at.chat_message] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
        "assistant",  # the run's task is streaming: its reply so far, live
    ]
    assert "Sunny so f" in _texts(at)
    assert INJECTION in _texts(at)  # as text: its link and image are never rendered
    assert not any("evil.example" in m.value for m in at.markdown)
    assert chat_world["long"] in _texts(at)  # folded: the whole text is in its expander
    assert any(e.label.startswith("Show all") for e in at.expander)
    assert '{\n  "animal": "cat"\n}' in [c.value for c in at.code]
    assert any("cat.png" in m.value for m in at.markdown)
    assert not any("javascript" in m.value for m in at.markdown)
    at.toggle(key="run_transcript_raw").set_value(True).run()
    assert [m.name for m in at.chat_message] == ["assistant"]  # only the live reply
    assert at.json[0].value


def test_task_page_shows_the_request_and_the_growing_reply(chat_world: dict) -> None:
    at = open_page("task", task_id=chat_world["task"])
    assert not at.exception
    assert [m.name for m in at.chat_message] == ["system", "user", "assistant", "tool", "assistant"]
    assert "Sunny so f" in _texts(at)
    assert any(c.value == "generating…" for c in at.caption)
    with ingest.Tracker(chat_world["url"]) as tracker:
        tracker.update_task(chat_world["task"], "Sunny so far, 18")
        tracker.flush()
    at.run()  # the task read is cached; the live part reads the text as it is now
    assert "Sunny so far, 18" in _texts(at)
