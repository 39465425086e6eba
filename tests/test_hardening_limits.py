"""Issue 21, limits everywhere (docs/limits.md): the server's request-body limit (413 naming
it, enforced while reading, after gzip too), per-field text limits on every way in, and a
date bound that overflows answered 4xx."""

from __future__ import annotations

import gzip
import json
import socket
import uuid

import httpx
import psycopg
import pytest

from ingest import Tracker
from ingest.errors import ValidationError
from ingest.store import limits
from ingest.transfer import import_export as transfer
from tests.server_support import serve

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers

LIMIT = 64 * 1024


@pytest.fixture
def served(db_url):
    with serve(db_url, max_body=LIMIT) as s:
        yield s


def counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        return tuple(
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("ai_runs", "ai_tasks")
        )


def test_a_body_over_the_limit_is_413_naming_the_limit(served):
    big = {"source_type": "chat", "description": "x" * (LIMIT + 10)}
    with served.client() as c:
        answer = c.post("/v1/runs", json=big)
        assert answer.status_code == 413
        assert answer.json()["error"]["field"] == "body"
        assert f"{LIMIT:,} bytes" in answer.json()["error"]["problem"]
        batch = c.post("/v1/batch", json={"runs": [big]})
        assert batch.status_code == 413
        assert c.post("/v1/runs", json={"source_type": "chat"}).status_code == 201
    assert counts(served.url) == (1, 0)


def test_a_chunked_body_is_refused_once_past_the_limit_without_reading_the_rest(served):
    """The client sends twice the limit and never ends its chunked body: the 413 comes back
    anyway, so the server did not wait for (or hold) the whole body."""
    port = int(served.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {served.key}\r\n".encode()
            + b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * 8192
        try:
            for _ in range(2 * LIMIT // len(chunk)):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the rest was sent: what we want
        answer = _read_answer(sock)  # no terminating chunk was sent
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert f"{LIMIT:,} bytes" in answer
    assert counts(served.url) == (0, 0)


def _read_answer(sock: socket.socket) -> str:
    """One HTTP answer with a Content-Length, read from the socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return (head + b"\r\n\r\n" + body).decode()


def test_a_gzip_body_is_held_to_the_limit_after_decompression(served):
    span_json = json.dumps({"resourceSpans": [], "padding": " " * (4 * LIMIT)}).encode()
    zipped = gzip.compress(span_json)
    assert len(zipped) < LIMIT  # small on the wire, too large once unpacked
    with served.client() as c:
        answer = c.post(
            "/v1/traces",
            content=zipped,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
    assert answer.status_code == 413
    assert f"{LIMIT:,} bytes" in answer.json()["error"]["problem"]


def test_a_long_run_name_is_refused_naming_the_field_and_the_limit_on_every_path(served, tmp_path):
    too_long = "n" * (limits.MAX_SHORT_TEXT + 1)
    run_id = str(uuid.uuid4())
    with served.client() as c:
        answer = c.post("/v1/runs", json={"source_type": "chat", "name": too_long})
        assert answer.status_code == 422
        error = answer.json()["error"]
        assert error["field"] == "name" and f"{limits.MAX_SHORT_TEXT:,}" in error["problem"]
        row = {"id": run_id, "source_type": "chat", "name": too_long}
        answer = c.post("/v1/batch", json={"runs": [row]})
        assert answer.status_code == 422 and "name" in answer.json()["error"]["field"]
        made = c.post("/v1/runs", json={"source_type": "chat"}).json()
        patch = c.patch(f"/v1/runs/{made['id']}", json={"name": too_long})
        assert patch.status_code == 422 and patch.json()["error"]["field"] == "name"
        tags = c.patch(f"/v1/runs/{made['id']}", json={"tags": [f"t{i}" for i in range(101)]})
        assert tags.status_code == 422 and "100" in tags.json()["error"]["problem"]
        task = {"run_id": made["id"], "model": "m" * (limits.MAX_SHORT_TEXT + 1)}
        answer = c.post("/v1/tasks", json=task)
        assert answer.status_code == 422 and answer.json()["error"]["field"] == "model"
    tracker = Tracker(served.url)
    with pytest.raises(ValidationError) as caught:
        tracker.create_run("chat", name=too_long)
    assert caught.value.field == "name"
    with pytest.raises(ValidationError) as caught:
        tracker.create_task(made["id"], provider="p" * (limits.MAX_SHORT_TEXT + 1))
    assert caught.value.field == "provider"
    tracker.close()
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"type": "run", **row}) + "\n")
    summary = transfer.import_files([path], served.url)
    assert [r.reason.split(":")[0] for r in summary.rejected] == ["name"]
    assert counts(served.url) == (1, 0)


@pytest.mark.parametrize("direct", [False, True], ids=["handed-off", "direct"])
def test_a_long_model_name_over_otlp_rejects_that_span_only(db_url, caplog, direct):
    from tests.test_server_otlp import node_body

    too_long = "m" * (limits.MAX_SHORT_TEXT + 1)
    spans = [
        {"span_id": f"{i:016x}", "name": "chat", "attributes": {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model, "gen_ai.usage.input_tokens": 3,
            "gen_ai.usage.output_tokens": 4}}
        for i, model in enumerate(("gpt-4o", too_long), 1)
    ]  # fmt: skip
    with serve(db_url, max_body=LIMIT, otlp_direct=direct) as served, served.client() as c:
        answer = c.post("/v1/traces", json=node_body("ab" * 16, spans))
        scraped = httpx.get(f"{served.base}/metrics").text
    assert answer.status_code == 200
    limit_text = f"{limits.MAX_SHORT_TEXT:,} characters"
    if direct:  # written before the answer: the refusal is in it
        partial = answer.json()["partialSuccess"]
        assert partial["rejectedSpans"] == "1"
        assert limit_text in partial["errorMessage"]
    else:  # answered once spooled: the writer's log and /metrics tell the refusal
        assert answer.json() == {}
    assert 'ai_runs_otlp_spans_total{outcome="refused"' in scraped
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any(limit_text in message for message in refusals), refusals
    assert counts(db_url)[1] == 1


def test_long_text_and_json_are_held_to_the_long_limit():
    from ingest.store.validation import validate_run, validate_task

    run_id = uuid.uuid4()
    task = {"run_id": run_id, "task_id": uuid.uuid4()}
    fits = "r" * limits.MAX_LONG_TEXT
    assert validate_task({**task, "response_text": fits})["response_text"] == fits
    with pytest.raises(ValidationError) as caught:
        validate_task({**task, "response_text": fits + "r"})
    assert caught.value.field == "response_text"
    with pytest.raises(ValidationError) as caught:
        validate_run({"source_type": "chat", "metadata": {"k": fits}})
    assert caught.value.field == "metadata" and "characters as JSON" in caught.value.problem


def test_created_to_the_last_day_is_a_422_not_a_500(served):
    with served.client() as c:
        answer = c.get("/v1/runs", params={"created_to": "9999-12-31"})
        assert answer.status_code == 422
        assert answer.json()["error"]["field"] == "created_to"
        assert c.get("/v1/runs", params={"created_to": "9999-12-30"}).status_code == 200


def test_the_body_limit_comes_from_ai_runs_max_body(db_url, monkeypatch):
    from ingest.store import config

    for raw, size in (("", config.DEFAULT_MAX_BODY), ("524288", 524288), ("512K", 524288),
                      ("8M", 8 * 1024**2), ("1g", 1024**3), ("2MB", 2 * 1024**2)):  # fmt: skip
        monkeypatch.setenv("AI_RUNS_MAX_BODY", raw)
        assert config.max_body_bytes() == size
    for bad in ("lots", "0", "-5", "1.5M"):
        monkeypatch.setenv("AI_RUNS_MAX_BODY", bad)
        with pytest.raises(ValueError, match="AI_RUNS_MAX_BODY"):
            config.max_body_bytes()
    monkeypatch.setenv("AI_RUNS_MAX_BODY", "1K")
    with serve(db_url) as served, served.client() as c:
        answer = c.post("/v1/runs", json={"source_type": "chat", "description": "d" * 2000})
        assert answer.status_code == 413 and "1,024 bytes" in answer.json()["error"]["problem"]
