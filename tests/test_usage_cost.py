"""Usage as providers bill it through the synchronous Tracker: cache writes, cost_source,
NULL for unknown usage, re-pricing with the provider's billed values."""

from __future__ import annotations

from decimal import Decimal

import pytest
from genai_prices import calc_price, extract_usage
from provider_server import ANTHROPIC_USAGE

import ingest
from ingest.sdk import provider_usage
from ingest.store import database
from ingest.tracking.tracker import Tracker


@pytest.fixture
def tracker(db_url):
    with Tracker(db_url) as t:
        yield t
    assert database.run_totals_mismatches(db_url) == []


@pytest.fixture
def run_id(tracker):
    return tracker.create_run("chat", name="usage")["id"]


def test_anthropic_delta_usage_with_none_cache_keys_does_not_reset_input():
    start = {
        "input_tokens": 100,
        "cache_read_input_tokens": 2000,
        "cache_creation_input_tokens": 1000,
        "output_tokens": 1,
    }
    delta = {
        "input_tokens": None,
        "cache_read_input_tokens": None,
        "cache_creation_input_tokens": None,
        "output_tokens": 50,
    }
    merged = provider_usage.merge_usage(start, delta)
    assert ingest.normalize_usage(merged) == {
        "tokens_input": 3100,
        "tokens_output": 50,
        "tokens_cached_input": 2000,
        "tokens_cache_write": 1000,
    }
    assert ingest.normalize_usage(delta) == {"tokens_output": 50}


def test_complete_task_prices_1h_cache_writes_and_keeps_billed_usage(tracker, run_id):
    raw = ANTHROPIC_USAGE["cached"]
    task = tracker.create_task(run_id, provider="anthropic", model="claude-sonnet-4-5")
    done = tracker.complete_task(task["task_id"], "ok", usage=raw)
    extracted = extract_usage({"usage": raw, "model": "claude-sonnet-4-5"}, provider_id="anthropic")
    expected = calc_price(extracted.usage, "claude-sonnet-4-5", provider_id="anthropic")
    assert done["cost"] == Decimal(expected.total_price) == Decimal("0.00675")
    assert done["cost_source"] == "computed" and done["tokens_cache_write"] == 1000
    assert done["response_metadata"]["billed_usage"]["cache_write_1h_tokens"] == 600
    # Re-pricing every task gives the same cost: the 1-hour split is kept.
    assert ingest.recompute_costs(tracker.url, only_missing=False) == 0
    assert tracker.get_task(task["task_id"])["cost"] == done["cost"]


def test_cache_write_column_priced_at_the_write_rate(tracker, run_id):
    task = tracker.create_task(run_id, provider="anthropic", model="claude-sonnet-4-5")
    done = tracker.complete_task(
        task["task_id"], tokens_input=100_000, tokens_cache_write=100_000, tokens_output=0
    )
    # $3.75 per million (the 5-minute write rate), not $3 (input); under the 200k tier.
    assert done["cost"] == Decimal("0.375")


def test_given_cost_is_the_providers_and_unknown_usage_is_null(tracker, run_id):
    given = tracker.create_task(run_id, provider="openai", model="gpt-4o")
    done = tracker.complete_task(given["task_id"], "x", tokens_input=10, cost="0.5")
    assert (done["cost"], done["cost_source"]) == (Decimal("0.5"), "provider")
    unknown = tracker.create_task(run_id, provider="openai", model="gpt-4o")
    done = tracker.complete_task(unknown["task_id"], "no usage reported")
    assert done["tokens_input"] is None and done["tokens_total"] is None
    assert done["cost"] is None and done["cost_source"] is None
    run = tracker.get_run(run_id)
    assert run["total_tokens"] == 10 and run["total_cost"] == Decimal("0.5")
