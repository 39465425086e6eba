"""Price books and audited re-pricing (docs/spend-control.md): an override changes exactly
the tasks it covers, run totals and the mirror stay exact, every real run is audited."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from builders import make_run, make_task, task_row

import ingest
from dashboard.command import main
from ingest.spend import price_books, repricing
from ingest.spend import pricing as costs
from ingest.store import database
from queries import open_mirror, sync_mirror

OCT = datetime(2026, 10, 15, tzinfo=UTC)
SEP = datetime(2026, 9, 15, tzinfo=UTC)


def _finished(conn, run, **fields):
    """A finished task priced by the library, as the tracker would have stored it."""
    row = {"status": "completed", "tokens_input": 1_000_000, "tokens_output": 100_000}
    row |= {"provider": "openai", "model": "gpt-4o", **fields}
    row.setdefault("cost", costs.cost_of_task(row))
    return make_task(conn, run, **row)


def test_override_reprices_exactly_the_tasks_it_covers(conn, db_url, tmp_path):
    run = make_run(conn)
    other_run = make_run(conn)
    covered = _finished(conn, run, created_at=OCT, tokens_cached_input=200_000)
    before_window = _finished(conn, run, created_at=SEP)
    other_model = _finished(conn, other_run, created_at=OCT, model="gpt-4o-mini")
    other_provider = _finished(conn, other_run, created_at=OCT, provider="azure")
    pending = make_task(conn, run, created_at=OCT, status="pending", cost=None)
    untouched = [before_window, other_model, other_provider, pending]
    before = {task_id: task_row(conn, task_id)["cost"] for task_id in untouched}
    covered_before = task_row(conn, covered)["cost"]
    mirror = tmp_path / "analytics.duckdb"
    sync_mirror(db_url, mirror)

    override = price_books.add_override(
        db_url,
        provider="openai",
        model_pattern="gpt-4o",
        valid_from="2026-10-01",
        valid_to="2026-11-01",
        input_per_mtok="2",
        cached_per_mtok="0.5",
        output_per_mtok="8",
        note="negotiated",
    )
    # 800k input x $2 + 200k cached x $0.5 + 100k output x $8, per million.
    expected = Decimal("1.6") + Decimal("0.1") + Decimal("0.8")
    result = repricing.reprice(db_url, ran_by="ada")

    assert task_row(conn, covered)["cost"] == expected
    assert task_row(conn, covered)["price_ref"] == f"override:{override['id']}"
    assert {task_id: task_row(conn, task_id)["cost"] for task_id in untouched} == before
    assert task_row(conn, before_window)["price_ref"] == price_books.library_ref()
    assert task_row(conn, pending)["price_ref"] is None  # not finished: not priced
    assert result.tasks_changed == 1 and result.tasks_examined == 4
    assert database.run_totals_mismatches(db_url) == []

    audit = repricing.reprice_audit(db_url)
    assert len(audit) == 1
    record = audit[0]
    assert record["ran_by"] == "ada" and record["status"] == "completed"
    assert record["rule"] == {
        "since": None,
        "until": None,
        "model": None,
        "include_reported": False,
    }
    assert record["tasks_changed"] == 1 and record["tasks_examined"] == 4
    assert record["new_total"] - record["old_total"] == expected - covered_before
    assert f"override:{override['id']}" in record["price_books"]["overrides"]

    sync = sync_mirror(db_url, mirror)
    assert not sync.full  # incremental: the re-priced rows carry a new change stamp
    with open_mirror(mirror, read_only=True) as con:
        mirrored = dict(con.execute("SELECT task_id, cost FROM tasks").fetchall())
        run_total = con.execute("SELECT total_cost FROM runs WHERE id = ?", [run]).fetchone()[0]
    rows = conn.execute("SELECT task_id, cost FROM ai_tasks").fetchall()
    assert mirrored == {row["task_id"]: row["cost"] for row in rows}
    assert (
        run_total
        == conn.execute("SELECT total_cost FROM ai_runs WHERE id = %s", (run,)).fetchone()[
            "total_cost"
        ]
    )


def test_library_prices_tasks_outside_overrides_and_dry_run_writes_nothing(conn, db_url):
    run = make_run(conn)
    task = _finished(conn, run, created_at=OCT, cost=Decimal("9"))
    dry = repricing.reprice(db_url, dry_run=True)
    assert dry.audit_id is None and dry.tasks_changed == 1
    assert task_row(conn, task)["cost"] == Decimal("9")
    assert repricing.reprice_audit(db_url) == []

    repricing.reprice(db_url)
    row = task_row(conn, task)
    assert row["cost"] == costs.cost_of_task(row)
    assert row["price_ref"] == price_books.library_ref()
    assert database.run_totals_mismatches(db_url) == []


def test_a_provider_reported_cost_yields_only_to_an_override(conn, db_url):
    run = make_run(conn)
    billed = Decimal("0.123456")  # what the provider billed, not a list price
    reported = _finished(conn, run, created_at=OCT, cost=billed, cost_source="provider")
    reported_sep = _finished(conn, run, created_at=SEP, cost=billed, cost_source="provider")

    kept = repricing.reprice(db_url)
    assert kept.kept_reported == 2 and kept.tasks_changed == 0
    assert task_row(conn, reported)["cost"] == billed
    assert task_row(conn, reported)["cost_source"] == "provider"

    price_books.add_override(
        db_url, provider="openai", model_pattern="gpt-4o", valid_from="2026-10-01",
        input_per_mtok=1, output_per_mtok=1,
    )  # fmt: skip
    repricing.reprice(db_url)
    october = task_row(conn, reported)
    assert october["cost"] == Decimal("1.1")  # 1M input + 100k output at $1 per million
    assert october["cost_source"] == "computed" and october["price_ref"].startswith("override:")
    assert task_row(conn, reported_sep)["cost"] == billed  # no override in September

    forced = repricing.reprice(db_url, include_reported=True)
    september = task_row(conn, reported_sep)
    assert september["cost"] == costs.cost_of_task(september) != billed
    assert forced.kept_reported == 0
    assert repricing.reprice_audit(db_url)[0]["rule"]["include_reported"] is True
    assert database.run_totals_mismatches(db_url) == []


def test_most_specific_override_wins_and_per_request_price(conn, db_url):
    run = make_run(conn)
    task = _finished(conn, run, created_at=OCT, model="gpt-4o-2024-08-06")
    price_books.add_override(
        db_url, provider="openai", model_pattern="gpt-4*", valid_from="2026-01-01",
        input_per_mtok=1, output_per_mtok=1,
    )  # fmt: skip
    flat = price_books.add_override(
        db_url, provider="openai", model_pattern="gpt-4o-*", valid_from="2026-01-01",
        per_request="0.01",
    )  # fmt: skip
    repricing.reprice(db_url)
    row = task_row(conn, task)
    assert row["cost"] == Decimal("0.01") and row["price_ref"] == f"override:{flat['id']}"


def test_overlapping_windows_are_refused_with_a_clear_error(db_url):
    args = {"provider": "openai", "model_pattern": "gpt-4o", "input_per_mtok": 1}
    first = price_books.add_override(
        db_url, **args, output_per_mtok=4, valid_from="2026-01-01", valid_to="2026-07-01"
    )
    with pytest.raises(ingest.ValidationError) as raised:
        price_books.add_override(db_url, **args, output_per_mtok=5, valid_from="2026-06-01")
    message = str(raised.value)
    assert raised.value.field == "valid_from/valid_to"
    assert "overlaps override" in message and str(first["id"]) in message
    # Back to back is fine, and so is the same window for another pattern or provider.
    price_books.add_override(db_url, **args, output_per_mtok=5, valid_from="2026-07-01")
    price_books.add_override(
        db_url, **{**args, "provider": "azure"}, output_per_mtok=5, valid_from="2026-06-01"
    )
    # A removed override no longer blocks its window.
    price_books.remove_override(db_url, override_id=first["id"])
    price_books.add_override(
        db_url, **args, output_per_mtok=6, valid_from="2026-02-01", valid_to="2026-03-01"
    )
    assert len(price_books.list_overrides(db_url)) == 3
    assert len(price_books.list_overrides(db_url, include_removed=True)) == 4


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"provider": ""}, "provider"),
        ({"valid_from": "soon"}, "valid_from"),
        ({"valid_to": "2025-01-01"}, "valid_to"),
        ({"input_per_mtok": "-1"}, "input_per_mtok"),
        ({"output_per_mtok": None}, "input_per_mtok/output_per_mtok"),
        ({"cheap": 1}, "cheap"),
    ],
)
def test_bad_override_names_the_field_and_writes_nothing(db_url, fields, field):
    args = {
        "provider": "openai",
        "model_pattern": "gpt-4o",
        "valid_from": "2026-01-01",
        "input_per_mtok": 1,
        "output_per_mtok": 4,
        **fields,
    }
    with pytest.raises(ingest.ValidationError) as raised:
        price_books.add_override(db_url, **args)
    assert raised.value.field == field
    assert price_books.list_overrides(db_url, include_removed=True) == []


def test_tracker_prices_a_new_task_with_the_override_in_force(db_url):
    override = price_books.add_override(
        db_url, provider="openai", model_pattern="gpt-4o", valid_from="2020-01-01",
        input_per_mtok=1, output_per_mtok=2,
    )  # fmt: skip
    tracker = ingest.Tracker(url=db_url)
    run = tracker.create_run("chat")
    task = tracker.create_task(run["id"], provider="openai", model="gpt-4o")
    done = tracker.complete_task(task["task_id"], "ok", tokens_input=1000, tokens_output=500)
    assert done["cost"] == Decimal("0.002")
    given = tracker.create_task(run["id"], provider="openai", model="gpt-4o-mini")
    tracker.complete_task(given["task_id"], "ok", tokens_input=10, tokens_output=5)
    with database.connect(db_url) as conn:
        refs = {
            r["model"]: r["price_ref"]
            for r in conn.execute("SELECT model, price_ref FROM ai_tasks").fetchall()
        }
    assert refs == {
        "gpt-4o": f"override:{override['id']}",
        "gpt-4o-mini": price_books.library_ref(),
    }


def test_cli_prices_and_reprice(conn, db_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    _finished(conn, make_run(conn), created_at=OCT)
    argv = ["prices", "add", "--provider", "openai", "--model", "gpt-4o", "--from", "2026-10-01"]
    assert main([*argv, "--input", "2", "--output", "8"]) == 0
    assert main([*argv, "--input", "3", "--output", "9"]) == 1
    assert "overlaps override" in capsys.readouterr().err
    assert main(["reprice", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "openai/gpt-4o" in out and "2.800000" in out and "dry run" in out
    assert main(["reprice", "--since", "2026-10-01"]) == 0
    assert "recorded as re-pricing" in capsys.readouterr().out
    assert main(["prices", "list"]) == 0
    assert "gpt-4o" in capsys.readouterr().out
