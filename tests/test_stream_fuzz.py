"""Property test of stream_task (bounded for CI): whatever the chunks, only a clear
ValidationError comes out, the task always ends, nothing is written partially, and the run
totals invariant holds."""

from __future__ import annotations

import pytest
from builders import task_row
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ingest
from ingest.sdk.stream_tracking import refused_text_reason
from ingest.store import database
from ingest.tracking.tracker import Tracker

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers

usage = st.fixed_dictionaries(
    {"prompt_tokens": st.integers(0, 10**6), "completion_tokens": st.integers(0, 10**6)}
)
chunk = st.one_of(st.text(max_size=20), usage, st.sampled_from(["\x00", "\ud800", "ok"]))


@pytest.fixture
def tracker(db_url):
    with Tracker(db_url, debounce_seconds=0) as t:
        yield t


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chunks=st.lists(chunk, max_size=8))
def test_stream_task_only_raises_validation_errors_and_always_ends(tracker, conn, chunks):
    run_id = tracker.create_run("chat", name="fuzz")["id"]
    stream = ingest.stream_task(tracker, run_id, iter(chunks), provider="openai", model="gpt-4o")
    received = []
    error = None
    try:
        for text in stream:
            received.append(text)
    except ingest.ValidationError as raised:
        error = raised
    stream.close()
    row = task_row(conn, stream.task_id)
    texts = [c for c in chunks if isinstance(c, str)]
    good = []
    for text in texts:
        if refused_text_reason(text) is not None:
            break
        good.append(text)
    if error is None:
        assert row["status"] == "completed" and received == texts
        assert row["response_text"] == "".join(texts)
    else:
        assert error.field == "response_text"
        assert row["status"] == "failed" and row["response_text"] == "".join(good)
        assert row["response_errors"][-1]["field"] == "response_text"
    assert (
        conn.execute("SELECT count(*) AS n FROM ai_tasks WHERE run_id = %s", (run_id,)).fetchone()[
            "n"
        ]
        == 1
    )
    assert database.run_totals_mismatches(tracker.url) == []
