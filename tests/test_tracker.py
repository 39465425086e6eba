"""ingest.Tracker against real Postgres: every method, bad input writes nothing."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from builders import run_row, task_row

from ingest.errors import NotFoundError, ValidationError
from ingest.spend import pricing
from ingest.store import database
from ingest.store.validation import ATTACHMENT_KINDS, MESSAGE_ROLES, RUN_STATUSES, SOURCE_TYPES
from ingest.tracking.tracker import Tracker

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers


class FakeClock:
    """Monotonic seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tracker(db_url, clock):
    with Tracker(db_url, user_id="alice", clock=clock) as t:
        yield t
    assert database.run_totals_mismatches(db_url) == []


def snapshot(conn: psycopg.Connection) -> tuple:
    """Every row of every table, as text: equal snapshots mean nothing was written."""
    out = []
    for table in ("ai_runs", "ai_tasks", "ai_users"):
        out.append(
            conn.execute(
                f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), ''))"
                f" AS h FROM {table} t"
            ).fetchone()
        )
    return tuple((r["n"], r["h"]) for r in out)


class writes_nothing:
    """Assert the block raises `error` naming `field` (and `allowed`) and writes nothing."""

    def __init__(self, conn, error=ValidationError, field=None, allowed=None, kind=None):
        self.conn, self.error, self.field, self.allowed, self.kind = (
            conn,
            error,
            field,
            allowed,
            kind,
        )

    def __enter__(self):
        self.before = snapshot(self.conn)
        self.raises = pytest.raises(self.error)
        self.info = self.raises.__enter__()
        return self.info

    def __exit__(self, *exc):
        handled = self.raises.__exit__(*exc)
        if not handled:
            return False
        err = self.info.value
        if self.field is not None:
            assert err.field == self.field, str(err)
            assert self.field in str(err)
        if self.allowed is not None:
            assert err.allowed == list(self.allowed)
            assert all(str(a) in str(err) for a in self.allowed)
        if self.kind is not None:
            assert err.kind == self.kind
        assert snapshot(self.conn) == self.before
        return handled


# ---------------------------------------------------------------- create_run / naming


def test_create_run_stores_every_field(tracker, conn):
    run = tracker.create_run(
        "prompt",
        name="  My prompt  ",
        source_id="prompt-42",
        description="a test",
        messages=[{"role": "system", "content": "Be brief."}],
        settings={"model": "gpt-4o", "temperature": 0.2},
        variable_values={"topic": "AI"},
        broker_values={"currentDate": "2025-10-27"},
        attachments=[{"kind": "url", "url": "https://example.com"}],
        metadata={"app": "tests"},
        tags=["a", "b", "a"],
        is_starred=True,
    )
    assert run["name"] == "My prompt"
    assert run["user_id"] == "alice"
    assert run["tags"] == ["a", "b"]
    assert run["message_count"] == 1 and "messages" not in run
    assert (run["task_count"], run["total_tokens"], run["total_cost"]) == (0, 0, 0)
    stored = run_row(conn, run["id"])
    assert stored["settings"] == {"model": "gpt-4o", "temperature": 0.2}
    assert stored["broker_values"] == {"currentDate": "2025-10-27"}
    assert stored["attachments"] == [{"kind": "url", "url": "https://example.com"}]
    assert stored["is_starred"] is True and stored["status"] == "active"


def test_name_from_first_user_message_cut_at_a_word(tracker):
    text = "Explain   the difference between TCP and UDP in networking, with examples please\nmore"
    run = tracker.create_run(
        "chat",
        messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": text}],
    )
    assert run["name"].startswith("Explain the difference between TCP and UDP")
    assert len(run["name"]) <= 60 and run["name"].endswith("…")
    assert " " not in run["name"][-2:]  # cut at a word boundary, not inside a word
    short = tracker.create_run("chat", messages=[{"role": "user", "content": "  Hi there "}])
    assert short["name"] == "Hi there"
    parts = [{"type": "text", "text": "Describe this image"}, {"type": "image_url"}]
    assert tracker.create_run("chat", messages=[{"role": "user", "content": parts}])["name"] == (
        "Describe this image"
    )


def test_fallback_name_then_first_user_message_renames(tracker):
    run = tracker.create_run("applet", created_at="2026-11-25T10:32:00Z")
    assert run["name"] == "Applet run 2026-11-25 10:32"
    tracker.add_message(run["id"], "system", "You are helpful")
    added = tracker.add_message(run["id"], "user", "Plan a trip to Lisbon")
    assert added["name"] == "Plan a trip to Lisbon"
    again = tracker.add_message(run["id"], "user", "Something else")
    assert again["name"] == "Plan a trip to Lisbon"
    named = tracker.create_run("chat", name="Kept")
    assert tracker.add_message(named["id"], "user", "hello")["name"] == "Kept"


def test_create_run_with_existing_id_returns_it(tracker, conn):
    run_id = uuid.uuid4()
    first = tracker.create_run("chat", run_id=run_id, name="first")
    second = tracker.create_run("chat", run_id=str(run_id), name="second")
    assert first["id"] == second["id"] == run_id
    assert second["name"] == "first"
    assert conn.execute("SELECT count(*) AS n FROM ai_runs").fetchone()["n"] == 1


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        ({"source_type": "web"}, "source_type", SOURCE_TYPES),
        ({"tags": ["ok", 3]}, "tags[1]", None),
        ({"tags": "a,b"}, "tags", None),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", MESSAGE_ROLES),
        ({"messages": [{"role": "user"}]}, "messages[0].content", None),
        ({"attachments": [{"kind": "video"}]}, "attachments[0].kind", ATTACHMENT_KINDS),
        ({"settings": [1, 2]}, "settings", None),
        ({"metadata": {"when": datetime.now()}}, "metadata", None),
        ({"variable_values": {"x": float("nan")}}, "variable_values", None),
        ({"run_id": "not-a-uuid"}, "id", None),
        ({"created_at": "yesterday"}, "created_at", None),
        ({"name": 42}, "name", None),
        ({"description": "a\x00b"}, "description", None),
    ],
)
def test_create_run_bad_input_writes_nothing(tracker, conn, kwargs, field, allowed):
    tracker.create_run("chat")  # something already there, to see it is not touched
    args = {"source_type": "chat", **kwargs}
    with writes_nothing(conn, field=field, allowed=allowed):
        tracker.create_run(**args)


# ---------------------------------------------------------------- add_message


def test_add_message_appends_with_index_and_timestamp(tracker, conn):
    run = tracker.create_run("chat")
    task_id = uuid.uuid4()
    a = tracker.add_message(run["id"], "user", "hi")
    b = tracker.add_message(
        run["id"], "assistant", "hello", task_id=task_id, metadata={"model": "gpt-4o"}
    )
    assert (a["index"], b["index"], b["message_count"]) == (0, 1, 2)
    messages = run_row(conn, run["id"])["messages"]
    assert messages[1]["task_id"] == str(task_id)
    assert messages[1]["metadata"] == {"model": "gpt-4o"}
    assert datetime.fromisoformat(messages[0]["timestamp"]).tzinfo is not None
    assert run_row(conn, run["id"])["last_message_at"] is not None


def test_concurrent_appends_lose_nothing(tracker, db_url, conn):
    run = tracker.create_run("chat", name="busy")
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            with Tracker(db_url) as mine:
                for i in range(15):
                    mine.add_message(run["id"], "user", f"{n}-{i}")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = run_row(conn, run["id"])
    assert stored["message_count"] == 60
    assert sorted(m["content"] for m in stored["messages"]) == sorted(
        f"{n}-{i}" for n in range(4) for i in range(15)
    )


def test_add_message_bad_input_writes_nothing(tracker, conn):
    run = tracker.create_run("chat")
    with writes_nothing(conn, field="role", allowed=MESSAGE_ROLES):
        tracker.add_message(run["id"], "robot", "x")
    with writes_nothing(conn, field="message.task_id"):
        tracker.add_message(run["id"], "user", "x", task_id="nope")
    with writes_nothing(conn, field="message"):
        tracker.add_message(run["id"], "user", {"a": {1, 2}})
    with writes_nothing(conn, field="run_id"):
        tracker.add_message("12", "user", "x")
    with writes_nothing(conn, NotFoundError, kind="run"):
        tracker.add_message(uuid.uuid4(), "user", "x")
    with writes_nothing(conn, NotFoundError, kind="run"):
        tracker.add_message(uuid.uuid4(), "assistant", "x")


# ---------------------------------------------------------------- create_task


def test_create_task_defaults(tracker, conn):
    run = tracker.create_run("chat")
    task = tracker.create_task(
        run["id"],
        service="chat_service",
        task_name="direct_chat",
        provider="openai",
        endpoint="chat.completions",
        model="gpt-4o",
        request_data={"messages": [{"role": "user", "content": "hi"}]},
    )
    assert task["status"] == "pending" and task["user_id"] == "alice"
    assert isinstance(task["task_id"], uuid.UUID)
    assert task["request_data"] == {"messages": [{"role": "user", "content": "hi"}]}
    assert run_row(conn, run["id"])["task_count"] == 1


def test_create_task_is_idempotent(tracker, conn):
    run = tracker.create_run("chat")
    task_id = uuid.uuid4()
    first = tracker.create_task(run["id"], task_id=task_id, model="gpt-4o")
    second = tracker.create_task(run["id"], task_id=str(task_id), model="other")
    assert first == second
    assert conn.execute("SELECT count(*) AS n FROM ai_tasks").fetchone()["n"] == 1


def test_concurrent_create_task_makes_one_task(tracker, db_url, conn):
    run = tracker.create_run("chat")
    task_id = uuid.uuid4()
    results: list[dict] = []
    barrier = threading.Barrier(4)

    def create() -> None:
        with Tracker(db_url) as mine:
            barrier.wait()
            results.append(mine.create_task(run["id"], task_id=task_id))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len({r["id"] for r in results}) == 1
    assert conn.execute("SELECT count(*) AS n FROM ai_tasks").fetchone()["n"] == 1
    assert run_row(conn, run["id"])["task_count"] == 1


def test_create_task_bad_input_writes_nothing(tracker, conn):
    run = tracker.create_run("chat")
    other = tracker.create_run("chat")
    existing = tracker.create_task(run["id"])
    with writes_nothing(conn, NotFoundError, kind="run"):
        tracker.create_task(uuid.uuid4(), model="gpt-4o")
    with writes_nothing(conn, field="run_id"):
        tracker.create_task("run-1")
    with writes_nothing(conn, field="task_id"):
        tracker.create_task(run["id"], task_id="socket-7")
    with writes_nothing(conn, field="status", allowed=("pending", "streaming")):
        tracker.create_task(run["id"], status="completed")
    with writes_nothing(conn, field="request_data"):
        tracker.create_task(run["id"], request_data={"fn": print})
    with writes_nothing(conn, field="model"):
        tracker.create_task(run["id"], model=4)
    with writes_nothing(conn, field="task_id"):
        tracker.create_task(other["id"], task_id=existing["task_id"])


# ---------------------------------------------------------------- update_task (debounce)


def test_update_task_is_debounced(tracker, conn, clock):
    run = tracker.create_run("chat")
    task = tracker.create_task(run["id"])
    tid = task["task_id"]
    first = tracker.update_task(tid, "He")
    assert first.written and task_row(conn, tid)["response_text"] == "He"
    assert task_row(conn, tid)["status"] == "streaming"
    clock.advance(0.2)
    assert not tracker.update_task(tid, "Hell").written
    clock.advance(0.2)
    assert not tracker.update_task(tid, "Hello").written
    assert task_row(conn, tid)["response_text"] == "He"
    clock.advance(0.1)  # 0.5 s since the last write
    assert tracker.update_task(tid, "Hello, wo").written
    assert task_row(conn, tid)["response_text"] == "Hello, wo"
    clock.advance(0.1)
    tracker.update_task(tid, "Hello, world", tool_updates=[{"tool": "search"}])
    done = tracker.complete_task(tid)
    assert done["response_text"] == "Hello, world"
    assert done["tool_updates"] == [{"tool": "search"}]
    assert done["response_complete"] is True


def test_configurable_debounce_and_flush(db_url, conn, clock):
    with Tracker(db_url, debounce_seconds=2.0, clock=clock) as tracker:
        run = tracker.create_run("chat")
        tid = tracker.create_task(run["id"])["task_id"]
        tracker.update_task(tid, "a")
        clock.advance(1.5)
        assert not tracker.update_task(tid, "ab").written
        assert not tracker.update_due(tid)
        [result] = tracker.flush()
        assert result.written and result.task_id == tid
        assert task_row(conn, tid)["response_text"] == "ab"
        assert tracker.flush() == []
        tracker.update_task(tid, "abc")  # within 2 s of the flush: buffered
        assert task_row(conn, tid)["response_text"] == "ab"
    # close() flushes what is still buffered
    assert task_row(conn, tid)["response_text"] == "abc"


def test_update_task_stamps_time_to_first_token(tracker, conn):
    run = tracker.create_run("chat")
    tid = tracker.create_task(run["id"])["task_id"]
    tracker.update_task(tid, status="streaming")
    assert task_row(conn, tid)["time_to_first_token"] is None
    tracker.update_task(tid, "x")  # written? not yet due: the buffer keeps the time
    tracker.flush()
    row = task_row(conn, tid)
    assert row["time_to_first_token"] is not None
    assert 0 <= row["time_to_first_token"] < 10_000
    tracker.update_task(tid, "xy", time_to_first_token=5)
    assert tracker.complete_task(tid)["time_to_first_token"] == 5


def test_late_update_is_ignored_and_reported(tracker, conn, clock, caplog):
    run = tracker.create_run("chat")
    tid = tracker.create_task(run["id"])["task_id"]
    tracker.update_task(tid, "partial")
    done = tracker.complete_task(tid, "final")
    before = snapshot(conn)
    clock.advance(5)
    with caplog.at_level(logging.WARNING, logger="ingest.tracker"):
        late = tracker.update_task(tid, "late text")
    assert late.ignored and not late.written and late.status == "completed"
    assert "ignored" in caplog.text
    assert snapshot(conn) == before
    assert tracker.get_task(tid)["response_text"] == done["response_text"] == "final"


def test_late_update_detected_by_the_database(tracker, db_url, conn, clock, caplog):
    run = tracker.create_run("chat")
    tid = tracker.create_task(run["id"])["task_id"]
    with Tracker(db_url) as other:  # another process finishes the task
        other.cancel_task(tid, "user pressed stop")
    before = snapshot(conn)
    with caplog.at_level(logging.WARNING, logger="ingest.tracker"):
        late = tracker.update_task(tid, "still streaming?")
    assert late.ignored and late.status == "cancelled"
    assert "ignored" in caplog.text
    assert snapshot(conn) == before
    # buffered, then flushed after the other process finished it
    tid2 = tracker.create_task(run["id"])["task_id"]
    tracker.update_task(tid2, "a")
    tracker.update_task(tid2, "ab")  # buffered
    with Tracker(db_url) as other:
        other.complete_task(tid2)
    [result] = tracker.flush()
    assert result.ignored and task_row(conn, tid2)["response_text"] == "a"


def test_update_task_bad_input_writes_nothing(tracker, conn):
    run = tracker.create_run("chat")
    tid = tracker.create_task(run["id"])["task_id"]
    with writes_nothing(conn, field="status", allowed=("pending", "streaming")):
        tracker.update_task(tid, "x", status="completed")
    with writes_nothing(conn, field="run_id"):
        tracker.update_task(tid, run_id=uuid.uuid4())
    with writes_nothing(conn, field="colour"):
        tracker.update_task(tid, colour="red")
    with writes_nothing(conn, field="tokens_output"):
        tracker.update_task(tid, "x", tokens_output=-3)
    with writes_nothing(conn, field="tool_updates"):
        tracker.update_task(tid, "x", tool_updates={1, 2})
    with writes_nothing(conn, field="task_id"):
        tracker.update_task("abc", "x")
    with writes_nothing(conn, NotFoundError, kind="task"):
        tracker.update_task(uuid.uuid4(), "x")
    assert tracker.flush() == []


# ---------------------------------------------------------------- complete / fail / cancel


def test_complete_task_prices_a_known_model(tracker, conn):
    run = tracker.create_run("chat")
    task = tracker.create_task(run["id"], provider="openai", model="gpt-4o")
    done = tracker.complete_task(
        task["task_id"], "Paris.", tokens_input=1000, tokens_output=200, tokens_cached_input=400
    )
    expected = pricing.task_cost("openai", "gpt-4o", 1000, 200, 400, task["created_at"])
    assert expected is not None and expected > 0
    assert done["cost"] == expected
    assert done["tokens_total"] == 1200
    assert done["status"] == "completed" and done["completed_at"] is not None
    assert done["total_time"] is not None and done["total_time"] >= 0
    stored = run_row(conn, run["id"])
    assert stored["total_cost"] == expected and stored["total_tokens"] == 1200
    assert stored["last_message_at"] == done["completed_at"]


def test_complete_task_unknown_model_leaves_cost_null(tracker, conn):
    run = tracker.create_run("chat")
    task = tracker.create_task(run["id"], provider="acme", model="acme-llm-9000")
    done = tracker.complete_task(task["task_id"], "ok", tokens_input=10, tokens_output=5)
    assert done["cost"] is None and done["status"] == "completed"
    no_model = tracker.create_task(run["id"])
    assert tracker.complete_task(no_model["task_id"], tokens_input=3)["cost"] is None


def test_complete_task_keeps_a_given_cost_and_times(tracker):
    run = tracker.create_run("chat")
    task = tracker.create_task(run["id"], provider="openai", model="gpt-4o")
    done = tracker.complete_task(
        task["task_id"],
        "x",
        tokens_input=10,
        tokens_output=5,
        tokens_total=20,
        cost=0.5,
        time_to_first_token=120,
        total_time=900,
        response_data={"id": "chatcmpl-1"},
    )
    assert done["cost"] == Decimal("0.5")
    assert (done["tokens_total"], done["time_to_first_token"], done["total_time"]) == (20, 120, 900)
    assert done["response_data"] == {"id": "chatcmpl-1"}


def test_complete_task_reads_a_usage_object(tracker):
    run = tracker.create_run("chat")
    task = tracker.create_task(run["id"], provider="anthropic", model="claude-sonnet-4-5")
    usage = {
        "input_tokens": 100,
        "cache_read_input_tokens": 300,
        "cache_creation_input_tokens": 0,
        "output_tokens": 50,
    }
    done = tracker.complete_task(task["task_id"], "x", usage=usage)
    assert (done["tokens_input"], done["tokens_cached_input"], done["tokens_output"]) == (
        400,
        300,
        50,
    )
    assert done["cost"] == pricing.task_cost(
        "anthropic", "claude-sonnet-4-5", 400, 50, 300, task["created_at"]
    )


def test_completing_twice_changes_nothing(tracker, conn, caplog):
    run = tracker.create_run("chat")
    tid = tracker.create_task(run["id"], provider="openai", model="gpt-4o")["task_id"]
    first = tracker.complete_task(tid, "once", tokens_input=10, tokens_output=10)
    before = snapshot(conn)
    second = tracker.complete_task(tid, "twice", tokens_input=99, tokens_output=99, cost=9)
    assert second == first
    assert tracker.fail_task(tid, "late failure") == first
    assert tracker.cancel_task(tid) == first
    assert snapshot(conn) == before
    assert run_row(conn, run["id"])["task_count"] == 1


def test_fail_task_records_the_error_and_text(tracker, conn, clock):
    run = tracker.create_run("chat")
    tid = tracker.create_task(run["id"], provider="openai", model="gpt-4o")["task_id"]
    tracker.update_task(tid, "partial")
    clock.advance(0.1)
    tracker.update_task(tid, "partial answer")  # buffered
    failed = tracker.fail_task(tid, TimeoutError("provider timed out"), tokens_input=10)
    assert failed["status"] == "failed"
    assert failed["response_text"] == "partial answer"
    assert failed["response_errors"] == [{"type": "TimeoutError", "message": "provider timed out"}]
    assert failed["completed_at"] is None
    assert failed["cost"] == pricing.task_cost("openai", "gpt-4o", 10, 0, 0, failed["created_at"])
    other = tracker.create_task(run["id"])["task_id"]
    assert tracker.fail_task(other, {"code": 429, "message": "rate limited"})[
        "response_errors"
    ] == [{"code": 429, "message": "rate limited"}]


def test_cancel_task_records_the_reason(tracker):
    run = tracker.create_run("chat")
    tid = tracker.create_task(run["id"], response_metadata={"socket": "s1"})["task_id"]
    cancelled = tracker.cancel_task(tid, "user pressed stop", response_text="Hal")
    assert cancelled["status"] == "cancelled" and cancelled["response_text"] == "Hal"
    assert cancelled["response_metadata"] == {"socket": "s1", "cancel_reason": "user pressed stop"}


def test_finish_bad_input_writes_nothing(tracker, conn):
    run = tracker.create_run("chat")
    tid = tracker.create_task(run["id"])["task_id"]
    with writes_nothing(conn, field="tokens_input"):
        tracker.complete_task(tid, tokens_input=-1)
    with writes_nothing(conn, field="tokens_output"):
        tracker.complete_task(tid, tokens_output=2.5)
    with writes_nothing(conn, field="cost"):
        tracker.complete_task(tid, cost=-0.01)
    with writes_nothing(conn, field="total_time"):
        tracker.complete_task(tid, total_time="slow")
    with writes_nothing(conn, field="usage"):
        tracker.complete_task(tid, usage={"foo": 1})
    with writes_nothing(conn, field="response_errors"):
        tracker.fail_task(tid, {"when": datetime.now()})
    with writes_nothing(conn, field="run_id"):
        tracker.fail_task(tid, "x", run_id=uuid.uuid4())
    with writes_nothing(conn, field="reason"):
        tracker.cancel_task(tid, 42)
    with writes_nothing(conn, NotFoundError, kind="task"):
        tracker.complete_task(uuid.uuid4(), "x")
    assert tracker.get_task(tid)["status"] == "pending"


# ---------------------------------------------------------------- reads


def test_get_task_returns_every_field(tracker, conn):
    run = tracker.create_run("chat")
    tid = tracker.create_task(run["id"], model="gpt-4o")["task_id"]
    task = tracker.get_task(str(tid))
    columns = {
        r["column_name"]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'ai_tasks'"
        ).fetchall()
    }
    assert set(task) == columns - {"sync_xid"}
    with pytest.raises(NotFoundError) as info:
        tracker.get_task(uuid.uuid4())
    assert info.value.kind == "task"
    with pytest.raises(ValidationError) as bad:
        tracker.get_task("x")
    assert bad.value.field == "task_id"


def test_get_run_with_tasks(tracker, conn):
    run = tracker.create_run("chat", messages=[{"role": "user", "content": "q"}])
    a = tracker.create_task(run["id"])
    b = tracker.create_task(run["id"])
    got = tracker.get_run(run["id"])
    assert got["messages"][0]["content"] == "q"
    assert [t["task_id"] for t in got["tasks"]] == [a["task_id"], b["task_id"]]
    columns = {
        r["column_name"]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'ai_runs'"
        ).fetchall()
    }
    assert set(got) == columns - {"sync_xid"} | {"tasks"}
    assert "tasks" not in tracker.get_run(run["id"], with_tasks=False)
    with pytest.raises(NotFoundError):
        tracker.get_run(uuid.uuid4())


# ---------------------------------------------------------------- list_runs


@pytest.fixture
def varied_runs(tracker, conn):
    """Runs over three days with different sources, users, tags, stars and statuses."""
    day = datetime(2026, 11, 20, 12, tzinfo=UTC)
    made = {}
    made["prompt"] = tracker.create_run(
        "prompt", source_id="p1", tags=["sales", "eu"], created_at=day, user_id="bob"
    )
    made["chat"] = tracker.create_run(
        "chat",
        messages=[{"role": "user", "content": "Where is the Eiffel tower?"}],
        tags=["eu"],
        created_at=day + timedelta(days=1),
        is_starred=True,
    )
    made["applet"] = tracker.create_run(
        "applet", description="weekly 100% report", created_at=day + timedelta(days=2)
    )
    made["archived"] = tracker.create_run("chat", name="old", created_at=day - timedelta(days=1))
    tracker.archive_run(made["archived"]["id"])
    made["deleted"] = tracker.create_run("chat", name="gone", created_at=day)
    tracker.delete_run(made["deleted"]["id"])
    return made


def test_list_runs_filters(tracker, varied_runs):
    runs = varied_runs
    ids = lambda page: {row["id"] for row in page.rows}  # noqa: E731
    default = tracker.list_runs()
    assert ids(default) == {runs[k]["id"] for k in ("prompt", "chat", "applet")}
    assert default.total == 3 and default.next_cursor is None
    assert "messages" not in default.rows[0]
    assert tracker.list_runs(status=None).total == 5
    assert ids(tracker.list_runs(status=["archived", "deleted"])) == {
        runs["archived"]["id"],
        runs["deleted"]["id"],
    }
    assert ids(tracker.list_runs(source_type="prompt")) == {runs["prompt"]["id"]}
    assert tracker.list_runs(source_type=["prompt", "applet"]).total == 2
    assert ids(tracker.list_runs(source_id="p1")) == {runs["prompt"]["id"]}
    assert ids(tracker.list_runs(starred=True)) == {runs["chat"]["id"]}
    assert tracker.list_runs(starred=False).total == 2
    assert tracker.list_runs(tags=["eu", "sales"]).total == 2
    assert ids(tracker.list_runs(tags=["eu", "sales"], tags_match="all")) == {runs["prompt"]["id"]}
    assert ids(tracker.list_runs(user_id="bob")) == {runs["prompt"]["id"]}
    assert tracker.list_runs(user_id="alice").total == 2
    assert ids(tracker.list_runs(search="eiffel")) == {runs["chat"]["id"]}
    assert ids(tracker.list_runs(search="100%")) == {runs["applet"]["id"]}
    assert tracker.list_runs(search="100_").total == 0  # _ is literal, not a wildcard
    assert ids(tracker.list_runs(search="PROMPT RUN")) == {runs["prompt"]["id"]}
    assert ids(tracker.list_runs(created_from=date(2026, 11, 21))) == {
        runs["chat"]["id"],
        runs["applet"]["id"],
    }
    assert ids(tracker.list_runs(created_to="2026-11-21")) == {
        runs["prompt"]["id"],
        runs["chat"]["id"],
    }
    assert ids(
        tracker.list_runs(
            created_from=datetime(2026, 11, 21, 12, tzinfo=UTC),
            created_to=datetime(2026, 11, 21, 12, 0, 1, tzinfo=UTC),
        )
    ) == {runs["chat"]["id"]}
    assert tracker.list_runs(source_type="chat", tags=["eu"], starred=True).total == 1
    assert tracker.list_runs(source_type=[], tags=[], status=[]).total == 5  # empty: no filter


def test_list_runs_keyset_pagination(tracker, conn):
    created = set()
    tie = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(23):
        # many runs share a created_at: the id breaks the tie
        at = tie if i % 3 else tie + timedelta(minutes=i)
        created.add(tracker.create_run("chat", name=f"r{i}", created_at=at)["id"])
    seen: list[uuid.UUID] = []
    cursor = None
    pages = 0
    while True:
        page = tracker.list_runs(limit=5, cursor=cursor)
        assert page.total == (23 if pages < 2 else 24)  # total counts the run added later
        seen.extend(row["id"] for row in page.rows)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        if pages == 2:  # a run added while paging lands before the cursor, not in between
            tracker.create_run("chat", name="new")
    assert pages == 5
    assert len(seen) == len(set(seen)) == 23 and set(seen) == created
    ordered = conn.execute(
        "SELECT id FROM ai_runs WHERE name <> 'new' ORDER BY created_at DESC, id DESC"
    ).fetchall()
    assert seen == [r["id"] for r in ordered]


def test_list_runs_bad_input(tracker, conn):
    tracker.create_run("chat")
    cases = [
        ({"source_type": "web"}, "source_type", SOURCE_TYPES),
        ({"status": "gone"}, "status", RUN_STATUSES),
        ({"tags": ["a"], "tags_match": "some"}, "tags_match", ("any", "all")),
        ({"tags": [1]}, "tags[0]", None),
        ({"starred": "yes"}, "starred", None),
        ({"limit": 0}, "limit", None),
        ({"limit": 5000}, "limit", None),
        ({"cursor": "garbage!"}, "cursor", None),
        ({"created_from": "last week"}, "created_from", None),
        ({"search": 5}, "search", None),
    ]
    for kwargs, field, allowed in cases:
        with writes_nothing(conn, field=field, allowed=allowed):
            tracker.list_runs(**kwargs)


# ---------------------------------------------------------------- run management


def test_rename_star_tag_archive_delete_restore_purge(tracker, conn):
    run = tracker.create_run("chat", name="before")
    rid = run["id"]
    task = tracker.create_task(rid)
    assert tracker.rename_run(rid, "  after ")["name"] == "after"
    assert tracker.star_run(rid)["is_starred"] is True
    assert tracker.star_run(str(rid), starred=False)["is_starred"] is False
    assert tracker.set_tags(rid, ["x", "y", "x"])["tags"] == ["x", "y"]
    assert tracker.set_tags(rid, [])["tags"] == []
    assert tracker.archive_run(rid)["status"] == "archived"
    assert tracker.delete_run(rid)["status"] == "deleted"
    assert tracker.get_run(rid)["status"] == "deleted"  # soft: still there with its tasks
    assert tracker.restore_run(rid)["status"] == "active"
    tracker.purge_run(rid)
    assert run_row(conn, rid) is None and task_row(conn, task["task_id"]) is None
    with pytest.raises(NotFoundError):
        tracker.purge_run(rid)


def test_run_management_bad_input_writes_nothing(tracker, conn):
    rid = tracker.create_run("chat", name="keep")["id"]
    missing = uuid.uuid4()
    with writes_nothing(conn, field="name"):
        tracker.rename_run(rid, "   ")
    with writes_nothing(conn, field="name"):
        tracker.rename_run(rid, None)
    with writes_nothing(conn, field="is_starred"):
        tracker.star_run(rid, "perhaps")
    with writes_nothing(conn, field="tags[1]"):
        tracker.set_tags(rid, ["ok", ""])
    with writes_nothing(conn, field="run_id"):
        tracker.archive_run("nope")
    for method in (tracker.archive_run, tracker.delete_run, tracker.restore_run):
        with writes_nothing(conn, NotFoundError, kind="run"):
            method(missing)
    with writes_nothing(conn, NotFoundError, kind="run"):
        tracker.rename_run(missing, "x")
    with writes_nothing(conn, NotFoundError, kind="run"):
        tracker.purge_run(missing)


# ---------------------------------------------------------------- fork


def test_fork_run_copies_the_conversation_up_to_a_message(tracker, conn):
    run = tracker.create_run(
        "prompt",
        source_id="p9",
        settings={"model": "gpt-4o"},
        variable_values={"topic": "AI"},
        broker_values={"today": "2026-11-25"},
        attachments=[{"kind": "file", "name": "a.pdf"}],
        tags=["t"],
        is_starred=True,
    )
    for i, role in enumerate(["user", "assistant", "user", "assistant"]):
        tracker.add_message(run["id"], role, f"m{i}")
    task = tracker.create_task(run["id"])
    tracker.complete_task(task["task_id"], tokens_input=5)
    fork = tracker.fork_run(run["id"], 1)
    assert fork["parent_run_id"] == run["id"] and fork["forked_from_message"] == 1
    assert fork["name"] == "m0 (fork)" and fork["user_id"] == "alice"
    assert fork["message_count"] == 2 and fork["task_count"] == 0
    assert fork["is_starred"] is False and fork["status"] == "active"
    stored = run_row(conn, fork["id"])
    original = run_row(conn, run["id"])
    assert stored["messages"] == original["messages"][:2]
    for column in ("source_type", "source_id", "settings", "variable_values", "broker_values"):
        assert stored[column] == original[column]
    assert stored["attachments"] == original["attachments"] and stored["tags"] == ["t"]
    last = tracker.fork_run(run["id"], 3, name="branch")
    assert last["name"] == "branch" and last["message_count"] == 4


def test_fork_run_bad_input_writes_nothing(tracker, conn):
    run = tracker.create_run("chat")
    tracker.add_message(run["id"], "user", "one")
    tracker.add_message(run["id"], "assistant", "two")
    with writes_nothing(conn, field="at_message", allowed=["0..1"]):
        tracker.fork_run(run["id"], 2)
    with writes_nothing(conn, field="at_message"):
        tracker.fork_run(run["id"], -1)
    with writes_nothing(conn, field="at_message"):
        tracker.fork_run(run["id"], "1")
    with writes_nothing(conn, field="name"):
        tracker.fork_run(run["id"], 0, name="")
    with writes_nothing(conn, NotFoundError, kind="run"):
        tracker.fork_run(uuid.uuid4(), 0)
    empty = tracker.create_run("chat")
    with writes_nothing(conn, field="at_message"):
        tracker.fork_run(empty["id"], 0)


# ---------------------------------------------------------------- users


def test_upsert_user(tracker, conn):
    user = tracker.upsert_user("alice", "Alice", "alice@example.com", "search", "manager")
    assert (user["display_name"], user["team"], user["role"]) == ("Alice", "search", "manager")
    again = tracker.upsert_user("alice", team="ads")
    assert (again["display_name"], again["team"], again["role"]) == ("Alice", "ads", "manager")
    new = tracker.upsert_user("bob")
    assert (new["display_name"], new["role"]) == ("", "member")
    with writes_nothing(conn, field="role", allowed=("member", "manager", "admin")):
        tracker.upsert_user("carol", role="boss")
    with writes_nothing(conn, field="id"):
        tracker.upsert_user("  ")
    with writes_nothing(conn, field="email"):
        tracker.upsert_user("carol", email=5)


def test_tracker_arguments_are_checked(db_url):
    with pytest.raises(ValidationError) as info:
        Tracker(db_url, user_id="")
    assert info.value.field == "user_id"
    with pytest.raises(ValidationError) as info:
        Tracker(db_url, debounce_seconds=-1)
    assert info.value.field == "debounce_seconds"


def test_none_keeps_stored_values(tracker):
    run = tracker.create_run("chat")
    tid = tracker.create_task(run["id"], model="gpt-4o")["task_id"]
    tracker.update_task(tid, "a", tool_updates=[{"step": 1}])
    done = tracker.complete_task(tid, None, tool_updates=None, response_data=None)
    assert done["response_text"] == "a" and done["tool_updates"] == [{"step": 1}]


def test_flush_skips_a_purged_task_and_writes_the_others(tracker, conn, clock):
    doomed_run = tracker.create_run("chat")
    kept_run = tracker.create_run("chat")
    doomed = tracker.create_task(doomed_run["id"])["task_id"]
    kept = tracker.create_task(kept_run["id"])["task_id"]
    for tid in (doomed, kept):
        tracker.update_task(tid, "first")
        tracker.update_task(tid, "second")  # buffered
    tracker.purge_run(doomed_run["id"])
    results = {r.task_id: r for r in tracker.flush()}
    assert results[doomed].ignored and results[doomed].status == "missing"
    assert results[kept].written
    assert task_row(conn, kept)["response_text"] == "second"


def test_one_tracker_shared_by_threads(tracker, conn, clock):
    run = tracker.create_run("chat")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(5):
                tid = tracker.create_task(run["id"])["task_id"]
                tracker.update_task(tid, f"{n}-{i}")
                tracker.add_message(run["id"], "assistant", f"{n}-{i}", task_id=tid)
                tracker.complete_task(tid, tokens_input=1, tokens_output=1)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = run_row(conn, run["id"])
    assert (stored["task_count"], stored["total_tokens"], stored["message_count"]) == (20, 40, 20)


def test_list_runs_bounded_total_says_when_it_stopped_counting(tracker, varied_runs):
    exact = tracker.list_runs(status=None)
    assert exact.total == 5 and exact.total_exact
    bounded = tracker.list_runs(status=None, count_limit=3, limit=2)
    assert (bounded.total, bounded.total_exact) == (3, False)  # "more than 3"
    assert len(bounded.rows) == 2 and bounded.next_cursor
    roomy = tracker.list_runs(status=None, count_limit=5)
    assert (roomy.total, roomy.total_exact) == (5, True)
    for bad in (0, -1, True, "3"):
        with pytest.raises(ValidationError, match="count_limit"):
            tracker.list_runs(count_limit=bad)


def test_runs_search_is_served_by_the_trigram_index(tracker, varied_runs):
    with tracker._transaction() as conn:
        has_trgm = conn.execute(
            "SELECT count(*) AS n FROM pg_extension WHERE extname = 'pg_trgm'"
        ).fetchone()["n"]
        assert has_trgm, "pg_trgm ships with both the embedded PostgreSQL and the service"
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = conn.execute(
            "EXPLAIN SELECT id FROM ai_runs r "
            "WHERE ai_run_search_text(r.name, r.description, r.messages) ILIKE '%eiffel%'"
        ).fetchall()
    assert "ai_runs_search_trgm" in " ".join(str(row) for row in plan)
    # A match may not span two fields (the index text joins them with newlines).
    assert tracker.list_runs(search="eiffel", status=None).total == 1
