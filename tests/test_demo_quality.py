"""The demo's quality data (ingest/demo/quality.py, docs/quality.md "Demo data"): an A/B test
on the last days' runs and scores from a judge, a rule and people, reproducible for a seed,
and what the Compare page shows of them."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from dashboard_support import app_environment, open_page, texts
from psycopg.rows import dict_row

import queries
from ingest import demo
from ingest.demo import quality as demo_quality
from ingest.demo.plan import to_us
from ingest.store import sqlfiles
from queries import Filters, compare

_NOW = datetime.now(UTC)
# Midnight after today, UTC: the end of the dashboard's default period, so the Compare
# page's last 30 days are the A/B test's.
END = datetime(_NOW.year, _NOW.month, _NOW.day, tzinfo=UTC) + timedelta(days=1)
DAYS = 45
TASKS = 2500
# bench/sql holds queries that only their own benchmark can fill (caller expressions,
# fragments of the mirror's folders): take the one this test needs, not the whole folder.
BENCH_SQL = sqlfiles.load(Path(__file__).resolve().parents[1] / "bench" / "sql")


@pytest.fixture(scope="module")
def quality_demo(pg_server: str, template_db: str) -> str:
    """A database with TASKS demo tasks and their quality data (seed 3)."""
    from dashboard_support import create_database, drop_database

    name = f"ai_runs_demo_quality_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    summary = demo.generate(url, tasks=TASKS, seed=3, days=DAYS, end=END, quality=True)
    assert summary.scores_added > 0
    yield url
    drop_database(pg_server, name)


def _rows(url: str, sql: str, params: dict | None = None) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql, params or {}).fetchall()


def test_runs_of_the_last_days_carry_the_variant_their_id_gives(quality_demo):
    runs = _rows(quality_demo, "SELECT id::text AS id, created_at, variant FROM ai_runs")
    since = END - timedelta(days=demo_quality.AB_DAYS)
    for run in runs:
        expected = demo_quality.run_variant(run["id"], to_us(run["created_at"]), to_us(END))
        assert run["variant"] == expected, run
        assert (run["variant"] is None) == (run["created_at"] < since)
    counts = {v: sum(r["variant"] == v for r in runs) for v in demo_quality.VARIANTS}
    assert min(counts.values()) > 0.4 * max(counts.values())  # about half each
    assert (
        _rows(quality_demo, "SELECT count(*) AS n FROM ai_tasks WHERE variant IS NOT NULL")[0]["n"]
        == 0
    )  # tasks take their run's variant


def test_postgres_hashes_ids_as_the_generator_does(quality_demo):
    ids = _rows(quality_demo, "SELECT id::text AS id FROM ai_runs ORDER BY id LIMIT 50")
    sql = "SELECT ('x' || substr(md5(%(t)s), 1, 8))::bit(32)::bigint / 4294967296.0 AS u"
    for row in ids:
        (u,) = _rows(quality_demo, sql, {"t": row["id"]})
        assert float(u["u"]) == pytest.approx(demo_quality.unit_hash(row["id"]), abs=1e-12)


def test_scores_come_from_a_judge_a_rule_and_the_runs_owners(quality_demo):
    kinds = _rows(
        quality_demo,
        """SELECT s.name, s.data_type, s.source, s.evaluator, s.evaluator_version,
                  count(*) AS n, min(s.value) AS lo, max(s.value) AS hi,
                  count(*) FILTER (WHERE s.source = 'human' AND s.author <> r.user_id) AS strangers,
                  count(*) FILTER (WHERE t.status <> 'completed') AS unfinished
             FROM ai_scores s JOIN ai_runs r ON r.id = s.run_id
             JOIN ai_tasks t ON t.task_id = s.task_id
            GROUP BY 1, 2, 3, 4, 5 ORDER BY 1""",
    )
    by_name = {k["name"]: k for k in kinds}
    assert set(by_name) == {"helpfulness", "thumbs", "valid_json"}
    assert by_name["helpfulness"] | {"n": 0, "lo": 0, "hi": 0} == {
        "name": "helpfulness", "data_type": "numeric", "source": "model",
        "evaluator": "helpfulness-judge", "evaluator_version": "v1", "n": 0, "lo": 0, "hi": 0,
        "strangers": 0, "unfinished": 0,
    }  # fmt: skip
    assert by_name["helpfulness"]["lo"] >= 1 and by_name["helpfulness"]["hi"] <= 5
    assert (by_name["valid_json"]["source"], by_name["valid_json"]["evaluator"]) == ("rule", "json")
    assert (by_name["thumbs"]["source"], by_name["thumbs"]["evaluator"]) == ("human", "")
    assert all(k["strangers"] == 0 and k["unfinished"] == 0 for k in kinds)
    tasks = _rows(quality_demo, "SELECT count(*) AS n FROM ai_tasks")[0]["n"]
    total = sum(k["n"] for k in kinds)
    assert 0.15 * tasks < total < 0.3 * tasks  # about 2 for every 10 tasks
    declared = _rows(quality_demo, "SELECT evaluator, min_value, max_value FROM ai_evaluators")
    assert {(d["evaluator"], d["min_value"], d["max_value"]) for d in declared} >= {
        ("helpfulness-judge", 1, 5),
        ("json", 0, 1),
    }


def test_a_second_call_adds_no_score_and_a_better_variant_scores_better(quality_demo):
    assert demo_quality.add_scores(quality_demo, 3, END - timedelta(days=DAYS), END) == 0
    means = _rows(
        quality_demo,
        """SELECT r.variant, avg(s.value) AS mean, count(*) AS n
             FROM ai_scores s JOIN ai_runs r ON r.id = s.run_id
            WHERE s.name = 'helpfulness' AND r.variant IS NOT NULL GROUP BY 1""",
    )
    mean = {m["variant"]: m["mean"] for m in means}
    assert mean["prompt-v2"] > mean["prompt-v1"]


def test_without_quality_the_demo_has_no_variant_and_no_score(db_url):
    summary = demo.generate(db_url, tasks=300, seed=3, days=DAYS, end=END)
    assert summary.scores_added == 0
    (row,) = _rows(
        db_url,
        "SELECT (SELECT count(*) FROM ai_runs WHERE variant IS NOT NULL) AS variants,"
        " (SELECT count(*) FROM ai_scores) AS scores",
    )
    assert row == {"variants": 0, "scores": 0}


def test_the_benchmarks_variant_rule_is_the_generators(quality_demo, db_url):
    demo.generate(db_url, tasks=TASKS, seed=3, days=DAYS, end=END)
    with psycopg.connect(db_url) as conn:
        conn.execute(
            sqlfiles.render(BENCH_SQL, "assign_variants").psycopg,
            {
                "since": END - timedelta(days=demo_quality.AB_DAYS),
                "variants": list(demo_quality.VARIANTS),
            },
        )
    sql = "SELECT id::text AS id, variant FROM ai_runs ORDER BY id"
    assert _rows(db_url, sql) == _rows(quality_demo, sql)


def test_the_compare_page_sets_the_two_variants_side_by_side(quality_demo, tmp_path):
    queries.sync_mirror(quality_demo, tmp_path / "analytics.duckdb")
    with app_environment(quality_demo, tmp_path):
        at = open_page("compare")
    assert not at.exception, at.exception
    assert len(at.dataframe) >= 2, texts(at)
    shown = at.dataframe[0].value
    assert list(shown["variant"]) == list(demo_quality.VARIANTS)
    window = Filters(start=END - timedelta(days=30), end=END)
    with psycopg.connect(quality_demo) as pg:
        expected = compare.compare_variants(pg, window, demo_quality.VARIANTS)
        scores = compare.compare_scores(pg, window, demo_quality.VARIANTS)
    assert list(shown["tasks"]) == list(expected["tasks"])
    shown_scores = at.dataframe[1].value
    assert sorted(set(shown_scores["name"])) == ["helpfulness", "thumbs", "valid_json"]
    assert list(shown_scores["n"]) == list(scores["n"])
    assert "Per-item answers appear for experiments" in texts(at)


def test_scores_are_written_a_day_at_a_time_over_exact_windows():
    start = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)
    end = datetime(2026, 3, 4, 6, 0, tzinfo=UTC)
    windows = demo_quality.day_windows(start, end)
    assert windows[0] == (start, datetime(2026, 3, 2, tzinfo=UTC))
    assert windows[-1] == (datetime(2026, 3, 4, tzinfo=UTC), end)
    assert len(windows) == 4
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
    assert demo_quality.day_windows(end, end) == []
