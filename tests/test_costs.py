"""recompute_costs re-prices finished tasks in batches; run totals stay exact."""

from __future__ import annotations

from decimal import Decimal

import pytest
from builders import make_run, make_task, run_row, task_row

import ingest
from ingest.errors import ValidationError
from ingest.spend import pricing
from ingest.spend.pricing import cost_of_task
from ingest.store import database


def price(provider, model, tokens_in, tokens_out, cached=0, at=None):
    return pricing.task_cost(provider, model, tokens_in, tokens_out, cached, at).quantize(
        Decimal("1e-10")
    )


def test_recompute_fills_missing_costs(conn, db_url):
    run = make_run(conn)
    known = [
        make_task(conn, run, cost=None, status="completed", tokens_input=100 * i, tokens_output=i)
        for i in range(1, 8)
    ]
    unknown = make_task(conn, run, cost=None, status="completed", model="no-such-model")
    no_model = make_task(conn, run, cost=None, status="failed", model=None)
    unfinished = make_task(conn, run, cost=None, status="streaming")
    given = make_task(conn, run, cost=Decimal("9"), status="completed")

    assert ingest.recompute_costs(db_url, batch_size=3) == 7
    for i, task_id in enumerate(known, start=1):
        row = task_row(conn, task_id)
        assert row["cost"] == price("openai", "gpt-4o", 100 * i, i, 0, row["created_at"])
    assert task_row(conn, unknown)["cost"] is None
    assert task_row(conn, no_model)["cost"] is None
    assert task_row(conn, unfinished)["cost"] is None  # priced when it finishes
    assert task_row(conn, given)["cost"] == Decimal("9")
    assert run_row(conn, run)["total_cost"] == sum(
        task_row(conn, t)["cost"] for t in [*known, given]
    )
    assert ingest.recompute_costs(db_url) == 0  # nothing left to do
    assert database.run_totals_mismatches(db_url) == []


def test_recompute_everything_overwrites_stale_costs(conn, db_url):
    runs = [make_run(conn) for _ in range(3)]
    stale = [
        make_task(conn, r, cost=Decimal("123"), status="completed", tokens_input=1000) for r in runs
    ]
    right = make_task(conn, runs[0], cost=None, status="completed", tokens_input=50)
    assert ingest.recompute_costs(db_url) == 1
    assert ingest.recompute_costs(db_url, only_missing=True) == 0
    assert ingest.recompute_costs(db_url, only_missing=False, batch_size=2) == 3
    for task_id in [*stale, right]:
        row = task_row(conn, task_id)
        assert row["cost"] == cost_of_task(row)
    # prices are stored exactly as computed: a second full pass changes nothing
    assert ingest.recompute_costs(db_url, only_missing=False) == 0
    assert database.run_totals_mismatches(db_url) == []


def test_recompute_on_an_empty_database(db_url):
    assert ingest.recompute_costs(db_url) == 0


def test_batch_size_is_checked(db_url):
    with pytest.raises(ValidationError) as info:
        ingest.recompute_costs(db_url, batch_size=0)
    assert info.value.field == "batch_size"


def test_cost_of_task_unknown_model_is_none():
    assert cost_of_task({"provider": "acme", "model": "x", "tokens_input": 5}) is None
    assert cost_of_task({"model": None}) is None
    known = cost_of_task({"provider": "openai", "model": "gpt-4o", "tokens_input": 10**6})
    assert known == Decimal("2.5")
