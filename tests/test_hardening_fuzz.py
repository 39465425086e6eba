"""Issue 13: Hypothesis drives the Tracker and the importer with arbitrary values. Only
ValidationErrors come out, a refused call writes nothing, and every run's totals stay
exact. Examples are bounded so CI stays fast."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.errors import ValidationError
from ingest.store import database, limits
from ingest.tracking.tracker import Tracker
from ingest.transfer import import_export as transfer

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))

texts = st.text(max_size=12)  # NUL and lone surrogates included
EDGES = [2**63 - 1, 2**63, 2**31, 2**31 - 1, limits.MAX_TOKENS, limits.MAX_TOKENS + 1,
         limits.MAX_TOKENS_TOTAL, Decimal("9999999999.99999999999"), limits.MAX_COST,
         Decimal("9999999999.9999999999"), -1, 0, "12", "1.5", "nan"]  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), texts, st.sampled_from(EDGES), st.integers(0, 5000),
    st.integers(min_value=-(2**70), max_value=2**70), st.floats(),
    st.decimals(allow_nan=True, allow_infinity=True),
)  # fmt: skip
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
moments = st.one_of(
    st.datetimes(timezones=st.timezones()),
    st.sampled_from(["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", "nope", ""]),
)
TASK_FIELDS = {
    "provider": texts, "model": texts, "service": texts, "response_data": json_like,
    "tool_updates": json_like, "tokens_input": scalars, "tokens_output": scalars,
    "tokens_cached_input": scalars, "tokens_total": scalars, "cost": scalars,
    "time_to_first_token": st.integers(0, 5000) | scalars,
    "total_time": st.integers(0, 5000) | scalars, "response_text": texts,
    "tokens_reasoning": st.integers(0, 5000) | scalars,
}  # fmt: skip


def _snapshot(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        return tuple(
            conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY "
                f"t.id), '')) FROM {table} t"
            ).fetchone()  # fmt: skip
            for table in ("ai_runs", "ai_tasks", "ai_users")
        )


@pytest.fixture
def fuzz_url(db_url):
    """One database for all the examples of a test (Hypothesis reuses the fixture)."""
    return db_url


def _refused_or_done(url: str, call) -> object:
    """call(): either a ValidationError that wrote nothing, or its result. Either way
    every run's totals stay exact and every stored task keeps the rules between columns."""
    before = _snapshot(url)
    result = None
    try:
        result = call()
    except ValidationError as error:
        assert error.field and str(error)
        assert _snapshot(url) == before  # a refused call wrote nothing
    assert database.run_totals_mismatches(url) == []
    with psycopg.connect(url) as conn:
        broken = conn.execute(
            "SELECT count(*) FROM ai_tasks WHERE time_to_first_token > total_time "
            "OR tokens_cached_input > tokens_input OR tokens_total > %s",
            (limits.MAX_TOKENS_TOTAL,),
        ).fetchone()[0]
    assert broken == 0
    return result


@FUZZ
@given(name=texts, tags=st.lists(texts, max_size=3), meta=json_like, moment=moments,
       content=json_like, user=texts)  # fmt: skip
def test_fuzz_create_run(fuzz_url, name, tags, meta, moment, content, user):
    with Tracker(fuzz_url, debounce_seconds=0) as tracker:
        _refused_or_done(fuzz_url, lambda: tracker.create_run(
            "chat", name=name, tags=tags, metadata={"m": meta}, created_at=moment,
            messages=[{"role": "user", "content": content}], user_id=user or None,
        ))  # fmt: skip
        _refused_or_done(fuzz_url, lambda: tracker.upsert_user(user or "u", team=name))
        _refused_or_done(fuzz_url, lambda: tracker.list_runs(search=name))


@FUZZ
@given(fields=st.fixed_dictionaries({}, optional=TASK_FIELDS), how=st.sampled_from(
    ["complete", "fail", "cancel", "update"]), reason=texts,
    conflicting=st.sampled_from([None, "completed", "failed", "cancelled"]))  # fmt: skip
def test_fuzz_task_lifecycle(fuzz_url, fields, how, reason, conflicting):
    with Tracker(fuzz_url, debounce_seconds=0) as tracker:
        run = tracker.create_run("chat")
        task = tracker.create_task(run["id"], provider="openai", model="gpt-4o")
        tid = task["task_id"]
        calls = {
            "complete": lambda: tracker.complete_task(tid, **fields),
            "fail": lambda: tracker.fail_task(tid, reason, **fields),
            "cancel": lambda: tracker.cancel_task(tid, reason, **fields),
            "update": lambda: tracker.update_task(tid, **fields),
        }
        if how != "update" and conflicting is not None:
            fields = {**fields, "status": conflicting}
        row = _refused_or_done(fuzz_url, calls[how])
        if isinstance(row, dict):  # finished: with the status the method names, never another
            assert "status" not in fields  # a conflicting status= is refused, not ignored
            assert row["status"] == {"complete": "completed", "fail": "failed"}.get(
                how, "cancelled"
            )


@FUZZ
@given(records=st.lists(st.fixed_dictionaries(
    {"type": st.just("task")}, optional=TASK_FIELDS), max_size=4),
    raw=st.binary(max_size=40), bom=st.booleans())  # fmt: skip
def test_fuzz_import(fuzz_url, tmp_path_factory, records, raw, bom):
    run_id = str(uuid.uuid4())
    lines = [json.dumps({"type": "run", "id": run_id, "source_type": "chat"}).encode()]
    for record in records:
        record = {**record, "run_id": run_id, "task_id": str(uuid.uuid4())}
        try:
            lines.append(json.dumps(record, default=str).encode("utf-8", "surrogatepass"))
        except ValueError:
            continue
    lines.append(raw.replace(b"\n", b" "))
    path = tmp_path_factory.mktemp("fuzz") / "in.jsonl"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + b"\n".join(lines) + b"\n")
    summary = transfer.import_files([path], fuzz_url)
    handled = sum(summary.inserted.values()) + sum(summary.duplicates.values())
    assert handled + len(summary.rejected) == summary.lines  # every line imported or reported
    assert summary.inserted["run"] == 1  # line 1 is always good (BOM or not)
    assert database.run_totals_mismatches(fuzz_url) == []
