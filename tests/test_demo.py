"""The demo generator: reproducible, realistic, priced exactly, written exactly once."""

from __future__ import annotations

import itertools
import statistics
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from builders import table_rows
from psycopg.rows import dict_row

from ingest import demo
from ingest.demo import catalog as cat
from ingest.spend import pricing
from ingest.store import database, validation

END = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
TASKS = 4000
_names = itertools.count()


@pytest.fixture
def other_db_url(make_db) -> str:
    """A second fresh migrated database for the same test."""
    return make_db()


@pytest.fixture
def demo_db(db_url: str) -> tuple[str, demo.DemoSummary]:
    return db_url, demo.generate(db_url, tasks=TASKS, seed=7, days=30, end=END)


def test_same_seed_gives_the_same_rows_and_a_rerun_inserts_nothing(demo_db, other_db_url):
    url, first = demo_db
    second = demo.generate(other_db_url, tasks=TASKS, seed=7, days=30, end=END)
    assert first.tasks == second.tasks == TASKS
    for table in ("ai_users", "ai_runs", "ai_tasks"):
        assert table_rows(url, table) == table_rows(other_db_url, table), table
    again = demo.generate(url, tasks=TASKS, seed=7, days=30, end=END)
    assert (again.inserted_users, again.inserted_runs, again.inserted_tasks) == (0, 0, 0)
    assert database.run_totals_mismatches(url) == []
    other = demo.generate(other_db_url, tasks=500, seed=8, days=30, end=END)
    assert other.inserted_tasks == 500


def test_summary_matches_the_database_and_the_invariant_holds(demo_db):
    url, summary = demo_db
    assert database.run_totals_mismatches(url) == []
    with psycopg.connect(url) as conn:
        n_runs, n_tasks, cost, tokens = conn.execute(
            "SELECT (SELECT count(*) FROM ai_runs), count(*), sum(cost), sum(tokens_total) "
            "FROM ai_tasks"
        ).fetchone()
        by_status = dict(conn.execute("SELECT status, count(*) FROM ai_tasks GROUP BY 1"))
    assert (summary.runs, summary.tasks) == (n_runs, n_tasks) == (n_runs, TASKS)
    assert summary.cost_total == cost
    assert summary.tokens_total == tokens
    assert summary.tasks_by_status == by_status
    assert summary.inserted_tasks == TASKS


def test_covers_sources_models_statuses_and_the_run_details(demo_db):
    url, _ = demo_db
    with psycopg.connect(url) as conn:
        q = conn.execute
        assert {r[0] for r in q("SELECT DISTINCT source_type FROM ai_runs")} == set(
            validation.SOURCE_TYPES
        )
        assert {r[0] for r in q("SELECT DISTINCT status FROM ai_tasks")} == set(
            validation.TASK_STATUSES
        )
        assert {r[0] for r in q("SELECT DISTINCT status FROM ai_runs")} == set(
            validation.RUN_STATUSES
        )
        kinds = q("SELECT DISTINCT a->>'kind' FROM ai_runs, jsonb_array_elements(attachments) a")
        assert {r[0] for r in kinds} == set(validation.ATTACHMENT_KINDS)
        assert q("SELECT count(*) FROM ai_runs WHERE is_starred").fetchone()[0] > 0
        assert q("SELECT count(*) FROM ai_runs WHERE cardinality(tags) > 0").fetchone()[0] > 0
        assert q("SELECT count(*) FROM ai_runs WHERE parent_run_id IS NOT NULL").fetchone()[0] > 0
        assert q("SELECT count(*) FROM ai_runs WHERE broker_values <> '{}'").fetchone()[0] > 0
        assert q("SELECT count(*) FROM ai_runs WHERE variable_values <> '{}'").fetchone()[0] > 0
        assert q("SELECT max(task_count) FROM ai_runs").fetchone()[0] >= 5  # multi-turn
        roles = {r[0] for r in q("SELECT DISTINCT role FROM ai_users")}
        assert roles == {"member", "manager", "admin"}
        assert q("SELECT count(DISTINCT team) FROM ai_users").fetchone()[0] == len(cat.TEAMS)
        failed = q(
            "SELECT count(*) FROM ai_tasks WHERE status = 'failed' "
            "AND response_errors ? 'type' AND response_errors ? 'message'"
        ).fetchone()[0]
        assert failed == q("SELECT count(*) FROM ai_tasks WHERE status = 'failed'").fetchone()[0]
        # messages: a user message per task, an answer per completed task, a system prompt
        # for prompt/applet/cockpit runs.
        bad = q(
            """SELECT count(*) FROM ai_runs r JOIN (
                   SELECT run_id, count(*) AS n, count(*) FILTER (WHERE status = 'completed') AS c
                     FROM ai_tasks GROUP BY run_id) t ON t.run_id = r.id
                WHERE r.message_count <> t.n + t.c
                      + (r.source_type IN ('prompt', 'applet', 'cockpit'))::int"""
        ).fetchone()[0]
        assert bad == 0
        stuck = q(
            "SELECT min(created_at) FROM ai_tasks WHERE status IN ('streaming', 'pending')"
        ).fetchone()[0]
        assert stuck > END - timedelta(hours=9)
        span = q("SELECT min(created_at), max(created_at), max(completed_at) FROM ai_tasks")
        first, last, done = span.fetchone()
        assert END - timedelta(days=30) <= first and last < END and done < END
        assert q("SELECT count(*) FROM ai_runs WHERE updated_at > %s", (END,)).fetchone()[0] == 0


def test_priced_models_cost_exactly_what_task_cost_says_and_unpriced_cost_null(demo_db):
    url, _ = demo_db
    unpriced = [
        (m.provider, m.name) for m in cat.MODELS if not pricing.is_priced(m.provider, m.name)
    ]
    priced = {(m.provider, m.name) for m in cat.MODELS} - set(unpriced)
    assert {"openai", "anthropic", "google", "mistral"} <= {p for p, _ in priced}
    assert unpriced
    with psycopg.connect(url, row_factory=dict_row) as conn:
        sample = conn.execute(
            "SELECT provider, model, tokens_input, tokens_output, tokens_cached_input, "
            "created_at, cost, status FROM ai_tasks ORDER BY task_id LIMIT 400"
        ).fetchall()
        used = {(r["provider"], r["model"]) for r in conn.execute(
            "SELECT DISTINCT provider, model FROM ai_tasks")}  # fmt: skip
    assert set(unpriced) & used and priced & used
    for row in sample:
        if row["status"] in ("streaming", "pending"):
            assert row["cost"] is None
            continue
        expected = pricing.task_cost(
            row["provider"], row["model"], row["tokens_input"], row["tokens_output"],
            row["tokens_cached_input"], at=row["created_at"],
        )  # fmt: skip
        assert row["cost"] == expected, row


def test_one_model_gets_markedly_slower_in_the_last_week(db_url):
    demo.generate(db_url, tasks=12_000, seed=3, days=28, end=END)
    week_ago = END - timedelta(days=6)  # the slowdown ramps in over the first day
    with psycopg.connect(db_url) as conn:
        ttft = conn.execute(
            "SELECT model, created_at >= %s, time_to_first_token FROM ai_tasks "
            "WHERE time_to_first_token IS NOT NULL AND status = 'completed'",
            (week_ago,),
        ).fetchall()

    def median(model: str, recent: bool) -> float:
        return statistics.median(t for m, r, t in ttft if m == model and r == recent)

    drifting = cat.DRIFTING_MODEL
    assert median(drifting, True) > 1.8 * median(drifting, False)
    assert median("gpt-4o", True) < 1.3 * median("gpt-4o", False)


def test_rows_are_valid_input_and_stable_through_validation(demo_db):
    url, _ = demo_db
    with psycopg.connect(url, row_factory=dict_row) as conn:
        runs = conn.execute("SELECT * FROM ai_runs ORDER BY id LIMIT 200").fetchall()
        tasks = conn.execute("SELECT * FROM ai_tasks ORDER BY id LIMIT 400").fetchall()
    for run in runs:
        clean = validation.validate_run(run)
        assert clean["messages"] == run["messages"]
    for task in tasks:
        validation.validate_task(task)


def test_cli_demo_prints_a_summary(db_url, monkeypatch, capsys):
    from dashboard import command as cli

    monkeypatch.setenv("DATABASE_URL", db_url)
    args = ["demo", "--tasks", "300", "--seed", "4", "--days", "3", "--end", "2026-11-01"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "300 tasks" in out and "inserted" in out
    assert database.run_totals_mismatches(db_url) == []
