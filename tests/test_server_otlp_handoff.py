"""The OTLP receiver's durable hand-off (docs/server.md, "Acknowledged after a durable
hand-off"): an export is acknowledged once spooled and written by the server's worker,
exactly as the direct path writes it, once, also when the server is killed with SIGKILL
between the answer and the write or in the middle of it. Real server processes, the real
OpenTelemetry SDK and OTLP/HTTP exporter, real Postgres."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from psycopg.rows import dict_row

from ingest.server.keys import create_key
from ingest.server.metrics import ServerMetrics
from ingest.server.otlp_spool import SpoolWorker, spool_export
from ingest.server.state import ServerState
from ingest.spend.pricing import cost_of_task
from ingest.store import database
from tests.server_support import free_port, serve, wait_for_spool

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers

ROOT = Path(__file__).resolve().parent.parent
WORKER_LOCK = "SELECT pg_advisory_lock(hashtextextended('ai_otlp_spool worker', 0))"


def recorded_spans(calls: int, seed: int = 0) -> list:
    """The spans an instrumented application makes for `calls` LLM calls (the real SDK):
    OpenInference LLM spans under a request span (skipped), every third with the Anthropic
    SDK's own span under it (one call, one task), every fifth failed, every fourth with an
    evaluation event; sessions of four calls."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "chat-api"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("openinference.instrumentation.anthropic")
    for i in range(calls):
        with (
            tracer.start_as_current_span("POST /chat"),
            tracer.start_as_current_span("Messages") as span,
        ):
            span.set_attributes({
                "openinference.span.kind": "LLM", "llm.provider": "anthropic",
                "llm.model_name": "claude-sonnet-4-5", "session.id": f"s{seed}-{i // 4}",
                "llm.token_count.prompt": 1000 + i, "llm.token_count.completion": 50 + i,
                "llm.token_count.prompt_details.cache_read": 200,
                "llm.input_messages.0.message.role": "user",
                "llm.input_messages.0.message.content": f"Question {seed}.{i}",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": f"Answer {i}",
            })  # fmt: skip
            if i % 4 == 0:
                span.add_event("gen_ai.evaluation.result", {
                    "gen_ai.evaluation.name": "relevance",
                    "gen_ai.evaluation.score.value": 0.5 + i / 1000})  # fmt: skip
            if i % 5 == 4:
                span.set_status(Status(StatusCode.ERROR, "overloaded"))
            if i % 3 == 0:
                sdk = provider.get_tracer("com.anthropic.sdk")
                with sdk.start_as_current_span("anthropic.messages.create") as inner:
                    inner.set_attributes({
                        "gen_ai.provider.name": "anthropic",
                        "gen_ai.request.model": "claude-sonnet-4-5",
                        "gen_ai.usage.input_tokens": 800 + i,
                        "gen_ai.usage.output_tokens": 50 + i,
                        "gen_ai.usage.cache_read.input_tokens": 200,
                        "gen_ai.usage.cache_creation.input_tokens": 100,
                    })  # fmt: skip
    provider.shutdown()
    return list(memory.get_finished_spans())


def send(base: str, key: str, spans: list, per_export: int = 10) -> None:
    """Export the spans as the OTLP/HTTP exporter does, in exports of `per_export`; each
    must be acknowledged."""
    exporter = OTLPSpanExporter(
        endpoint=f"{base}/v1/traces", headers={"Authorization": f"Bearer {key}"}
    )
    for start in range(0, len(spans), per_export):
        assert exporter.export(spans[start : start + per_export]) == SpanExportResult.SUCCESS
    exporter.shutdown()


def stored(url: str) -> dict:
    """What the receiver stored, keyed by span id (run and task ids derive from each
    database's own secret, so two databases compare by span)."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        tasks = conn.execute(
            "SELECT t.*, r.name AS run_name, r.task_count, r.total_cost, r.source_id"
            "  FROM ai_tasks t JOIN ai_runs r ON r.id = t.run_id"
        ).fetchall()
        scores = conn.execute(
            "SELECT s.name, s.value, t.response_metadata->'otlp'->>'span_id' AS span_id"
            "  FROM ai_scores s JOIN ai_tasks t ON t.task_id = s.task_id"
        ).fetchall()
    columns = ("provider", "model", "status", "tokens_input", "tokens_output",
               "tokens_cached_input", "tokens_cache_write", "tokens_total", "cost",
               "cost_source", "price_ref", "response_text", "request_data", "response_errors",
               "total_time", "user_id", "run_name", "task_count", "total_cost",
               "source_id")  # fmt: skip
    return {
        "tasks": {
            t["response_metadata"]["otlp"]["span_id"]: {c: t[c] for c in columns} for t in tasks
        },
        "scores": sorted((s["span_id"], s["name"], s["value"]) for s in scores),
    }


def comparable(result: dict) -> dict:
    """`stored` without the run names, once each is checked to be a user message: which
    span of a run names it can depend on how the exporter cut the spans into exports and
    on how many exports the worker writes together."""
    for task in result["tasks"].values():
        assert task.pop("run_name").startswith("Question ")
    return result


def spool_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM ai_otlp_spool").fetchone()[0]


def assert_stored_once_as_direct(db_url: str, direct_db: str) -> None:
    """What the spool wrote equals what the direct path wrote, run totals hold, and each of
    the 80 spans (60 OpenInference + 20 SDK) was recorded once."""
    assert comparable(stored(db_url)) == comparable(stored(direct_db))
    assert database.run_totals_mismatches(db_url) == []
    with psycopg.connect(db_url) as conn:
        (spans_recorded,) = conn.execute("SELECT count(*) FROM ai_otlp_spans").fetchone()
    assert spans_recorded == 80


def test_handed_off_exports_store_exactly_what_the_direct_path_stores(make_db):
    spans = recorded_spans(24)
    direct_db, handed_db = make_db(), make_db()
    with serve(direct_db, otlp_direct=True) as direct:
        send(direct.base, direct.key, spans)
    with serve(handed_db, answer_when_written=False) as handed:
        send(handed.base, handed.key, spans)
        wait_for_spool(handed_db)
    expected, got = stored(direct_db), stored(handed_db)
    assert len(expected["tasks"]) == 24 and len(expected["scores"]) == 6
    assert comparable(got) == comparable(expected)
    for task in got["tasks"].values():
        if task["status"] == "completed":
            assert task["cost"] == cost_of_task(task) > 0 and task["cost_source"] == "computed"
    assert database.run_totals_mismatches(handed_db) == []
    assert spool_rows(handed_db) == 0


def test_a_retried_export_is_stored_once_whether_spooled_together_or_later(db_url):
    spans = recorded_spans(8)
    with psycopg.connect(db_url, autocommit=True) as holder:
        holder.execute(WORKER_LOCK)  # the worker cannot start: both sends stay spooled
        with serve(db_url, answer_when_written=False) as served:
            send(served.base, served.key, spans, per_export=len(spans))
            send(served.base, served.key, spans, per_export=3)  # the exporter's retry
            assert spool_rows(db_url) >= 2
            holder.close()  # the worker takes over and writes both
            wait_for_spool(db_url)
            once = stored(db_url)
            send(served.base, served.key, spans)  # and again, after it was written
            wait_for_spool(db_url)
    assert len(once["tasks"]) == 8 and stored(db_url) == once
    runs = {task["source_id"]: task["task_count"] for task in once["tasks"].values()}
    assert sum(runs.values()) == 8  # each task counted once in its run's totals
    assert database.run_totals_mismatches(db_url) == []


def test_bad_input_is_refused_before_the_ack_and_nothing_is_spooled(db_url):
    with serve(db_url, answer_when_written=False) as served, served.client() as client:
        span = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
                "name": "chat", "startTimeUnixNano": "1",
                "endTimeUnixNano": str(2**64)}  # fmt: skip
        bad_time = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
        answer = client.post("/v1/traces", json=bad_time)
        assert answer.status_code == 400
        assert "endTimeUnixNano" in answer.json()["error"]["field"]
        answer = client.post(
            "/v1/traces", content=b"\x0a\xff", headers={"Content-Type": "application/x-protobuf"}
        )
        assert answer.status_code == 400 and answer.json()["error"]["field"] == "body"
        no_key = httpx.post(f"{served.base}/v1/traces", json={"resourceSpans": []})
        assert no_key.status_code == 401
    assert spool_rows(db_url) == 0


class HeldStart(SpoolWorker):
    """The server's spool worker, its writers' start held until `go` is set: what a first
    export meets on a loaded machine, where starting the fork server (it imports the
    ingest package) takes a second or more."""

    def __init__(self, url: str, writers: int) -> None:
        super().__init__(url, ServerMetrics(), writers)
        self.go = threading.Event()
        self.started: list = []

    def _start_writer(self, n: int):
        assert self.go.wait(60)
        writer = super()._start_writer(n)
        self.started.append(writer.process)
        return writer


def returns_at_once(call) -> bool:
    """Whether `call()` returned within 5 s (run in a thread: a call that waits would hang)."""
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(5)
    return not thread.is_alive()


def test_the_ack_does_not_wait_for_the_writers_to_start_and_what_came_meanwhile_is_written(
    make_db,
):
    spans, db_url = recorded_spans(12), make_db()
    create_key("ada", "tests", url=db_url)
    state = ServerState(db_url)
    worker = HeldStart(db_url, writers=2)
    try:
        for part in (spans[:6], spans[6:]):  # the first export starts them, a second comes
            spool_export(state, "ada", encode_spans(part).SerializeToString(), False)
            assert returns_at_once(worker.wake)
        assert spool_rows(db_url) == 2 and worker.pids() == []
        worker.go.set()
        wait_for_spool(db_url)
        assert len(worker.pids()) == 2
    finally:
        worker.go.set()
        worker.close()
        state.close()
    assert len(stored(db_url)["tasks"]) == 12
    assert database.run_totals_mismatches(db_url) == []
    assert not any(process.is_alive() for process in worker.started)


def test_a_server_closed_while_its_writers_start_leaves_none_running(db_url):
    worker = HeldStart(db_url, writers=2)
    worker.wake()
    closing = threading.Thread(target=worker.close)
    closing.start()
    worker.go.set()
    closing.join(60)
    assert not closing.is_alive()
    assert len(worker.started) == 2
    assert not any(process.is_alive() for process in worker.started)
    worker.wake()  # closed: starts nothing
    assert worker.pids() == [] and len(worker.started) == 2


# ---------------------------------------------------------------- kill -9


def start_server(db_url: str, port: int, *options: str) -> subprocess.Popen:
    """`ai-runs serve` over db_url in a process of its own, once it answers."""
    env = {**os.environ, "DATABASE_URL": db_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "dashboard.command", "serve", "--port", str(port), *options],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not start")


def direct_and_held(make_db, spans: list) -> tuple:
    """(a database where the direct path stored `spans`, an empty one, a key of it, a free
    port, a session holding the writers' lock exclusively so that they wait)."""
    direct_db, db_url = make_db(), make_db()
    with serve(direct_db, otlp_direct=True) as direct:
        send(direct.base, direct.key, spans)
    key, _ = create_key("ada", "tests", url=db_url)
    holder = psycopg.connect(db_url, autocommit=True)
    holder.execute(WORKER_LOCK)
    return direct_db, db_url, key, free_port(), holder


def kill_9(process: subprocess.Popen) -> None:
    """SIGKILL to the server and its spool writer process at once (a crash)."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0])
def test_kill_9_after_the_ack_loses_nothing_and_a_restart_writes_each_export_once(make_db, delay):
    """Killed with exports acknowledged but not written (the worker held off), then killed
    again `delay` s after a restart, in the middle of writing them: a third server writes
    what is left, and the database holds every span once, as the direct path stores it."""
    spans = recorded_spans(60, seed=1)
    direct_db, db_url, key, port, holder = direct_and_held(make_db, spans)
    base = f"http://127.0.0.1:{port}"
    server = start_server(db_url, port)
    try:
        send(base, key, spans)  # 14 exports, every one acknowledged
        assert spool_rows(db_url) == 14 and stored(db_url)["tasks"] == {}
    finally:
        kill_9(server)
    holder.close()
    server = start_server(db_url, port)  # the worker starts writing the spool at once
    time.sleep(delay)
    kill_9(server)
    server = start_server(db_url, port)
    try:
        wait_for_spool(db_url)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert_stored_once_as_direct(db_url, direct_db)
    with psycopg.connect(db_url) as conn:
        (costs,) = conn.execute("SELECT sum(cost) FROM ai_tasks").fetchone()
    assert costs == sum((t["cost"] or Decimal(0)) for t in stored(direct_db)["tasks"].values()), (
        json.dumps(str(costs))
    )


def spool_writers(server: subprocess.Popen) -> list[int]:
    """The pids of the server's running spool writer processes: the children of its fork
    server (its child started by multiprocessing's forkserver, not its resource tracker)
    that have not ended. A killed writer stays the fork server's zombie until it reaps it,
    which in a whole run once came after the spool was drained."""
    children = child_processes()
    fork_servers = [
        pid for pid, (ppid, command) in children.items()
        if ppid == server.pid and b"forkserver" in command
    ]  # fmt: skip
    writers = (pid for pid, (ppid, _) in children.items() if ppid in fork_servers)
    return sorted(pid for pid in writers if not ended(pid))


def child_processes() -> dict[int, tuple[int, bytes]]:
    """Every process's parent pid and command line, by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        found[int(entry.name)] = (ppid, command)
    return found


def ended(pid: int) -> bool:
    """Whether the process has ended (gone, or a zombie: its files are closed)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.005)


@pytest.mark.parametrize(("writers", "after_exports"), [(2, 0), (2, 3), (1, None)])
def test_kill_9_of_a_writer_mid_stream_loses_nothing_and_writes_nothing_twice(
    make_db, writers, after_exports
):
    """`writers` writers drain 14 acknowledged exports; one of them is killed with SIGKILL
    once `after_exports` exports are written (0: as they start; None: while every writer
    still waits, so with one writer only its replacement can write them). It is replaced
    at once, not at the next export. The export that comes next is written too, and the
    database holds every span once, as the direct path stores it."""
    spans = recorded_spans(60, seed=2)
    direct_db, db_url = make_db(), make_db()
    with serve(direct_db, otlp_direct=True) as direct:
        send(direct.base, direct.key, spans)
    key, _ = create_key("ada", "tests", url=db_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    holder = psycopg.connect(db_url, autocommit=True)
    holder.execute(WORKER_LOCK)  # the writers wait until every export is spooled
    server = start_server(db_url, port, "--otlp-writers", str(writers))
    try:
        send(base, key, spans[:-6])  # 14 exports (the last 6 spans come after the kill)
        wait_until(lambda: len(spool_writers(server)) == writers)
        victim = spool_writers(server)[0]
        if after_exports is not None:
            holder.close()
            wait_until(lambda: spool_rows(db_url) <= 13 - after_exports, timeout=120)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: ended(victim))
        holder.close()  # no-op if closed above
        wait_for_spool(db_url, timeout=120)  # before any further export
        wait_until(lambda: len(spool_writers(server)) == writers, timeout=30)  # replaced
        assert victim not in spool_writers(server)
        send(base, key, spans[-6:])  # one more export, after the kill
        wait_for_spool(db_url, timeout=120)
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert_stored_once_as_direct(db_url, direct_db)


def test_writers_and_their_fork_server_end_when_the_server_is_killed_alone(make_db):
    """The writers are forked from the server's fork server (docs/server.md, "Writer
    processes"): SIGKILL to the server process alone, not its group, ends the fork server,
    and the writers stop with it; what they had not written stays spooled."""
    db_url = make_db()
    key, _ = create_key("ada", "tests", url=db_url)
    port = free_port()
    server = start_server(db_url, port, "--otlp-writers", "2")
    try:
        send(f"http://127.0.0.1:{port}", key, recorded_spans(8, seed=3))
        wait_until(lambda: len(spool_writers(server)) == 2)
        writers = spool_writers(server)
        fork_server = child_processes()[writers[0]][0]
    finally:
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    wait_until(lambda: all(ended(pid) for pid in [fork_server, *writers]), timeout=120)
