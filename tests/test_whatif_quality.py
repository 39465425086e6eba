"""The what-if with quality (docs/quality.md, "The what-if with quality"): two experiments
over one dataset, one per model, answer what routing one model to the other does to the
scores, with intervals equal to hand-computed SQL; the Cost page shows it, or the commands
that would measure it."""

from __future__ import annotations

import json
import math

import openai
import psycopg
import pytest
from dashboard_support import app_environment, open_page, opened, shown
from provider_server import ProviderServer
from psycopg.rows import dict_row

import queries as q
from ingest.tracking.experiments import run_experiment
from ingest.tracking.rules import make_rule
from ingest.tracking.tracker import Tracker
from queries import compare, quality

QUESTIONS = ["What is RLS?", "Explain MVCC", "Why VACUUM?", "What is a WAL?"]


@pytest.fixture(scope="module")
def provider():
    srv = ProviderServer().start()
    yield srv
    srv.shutdown()


@pytest.fixture
def experiments(db_url, provider, tmp_path, monkeypatch):
    """Experiments "big" (gpt-4o) and "small" (gpt-4o-mini) over dataset faq, a rule score
    on every task and a person's thumbs and rating on each; synced to the dashboard's mirror."""
    monkeypatch.setenv("AI_RUNS_HOME", str(tmp_path))
    with Tracker(db_url, user_id="ana") as tracker:
        lines = [json.dumps({"input": [{"role": "user", "content": t}]}) for t in QUESTIONS]
        tracker.import_dataset("faq", lines)
        rules = [make_rule("length", max_chars=15)]
        for name, model, route in (("big", "gpt-4o", "plain"), ("small", "gpt-4o-mini", "cached")):
            client = openai.OpenAI(api_key="x", base_url=f"{provider.url}/{route}/v1")
            run_experiment(tracker, "faq", model=model, name=name, rules=rules, client=client)
        with psycopg.connect(db_url, row_factory=dict_row) as pg:
            tasks = pg.execute("SELECT task_id FROM ai_tasks ORDER BY created_at").fetchall()
        for i, task in enumerate(tasks):
            tracker.score("thumbs", i % 3 != 0, task_id=task["task_id"], source="human")
            tracker.score("rating", 1 + i % 5, task_id=task["task_id"], source="human")
    q.sync_mirror(db_url, tmp_path / "analytics.duckdb")
    return tmp_path


def _by_hand(db_url: str) -> dict:
    with psycopg.connect(db_url, row_factory=dict_row) as pg:
        rows = pg.execute(
            "SELECT x.model, s.name, count(*) AS n, avg(s.value) AS mean, "
            "stddev_samp(s.value) AS sd FROM ai_experiments x "
            "JOIN ai_experiment_items e ON e.experiment_id = x.id "
            "JOIN ai_scores s ON s.task_id = e.task_id GROUP BY 1, 2"
        ).fetchall()
    return {(r["model"], r["name"]): r for r in rows}


def test_quality_change_equals_hand_computed_sql(experiments, db_url):
    change = compare.quality_change(db_url, "gpt-4o", "gpt-4o-mini")
    assert (change.source_experiment, change.target_experiment, change.dataset) == (
        "big",
        "small",
        "faq",
    )
    hand = _by_hand(db_url)
    assert list(change.scores["name"]) == ["length", "rating", "thumbs"]
    for row in change.scores.itertuples():
        src, dst = hand[("gpt-4o", row.name)], hand[("gpt-4o-mini", row.name)]
        assert row.source_n == src["n"] == 4 and row.target_n == dst["n"] == 4
        assert math.isclose(row.source_mean, src["mean"])
        assert math.isclose(row.target_mean, dst["mean"])
        assert math.isclose(row.difference, dst["mean"] - src["mean"], abs_tol=1e-12)
        kind = "boolean" if row.name != "rating" else "numeric"
        assert row.kind == kind
        low, high = quality.interval(kind, src["mean"], src["sd"], 4)
        assert math.isclose(row.source_low, low) and math.isclose(row.source_high, high)
        if kind == "numeric":  # Welch by hand: both sides have 4 scores
            v1, v2 = src["sd"] ** 2 / 4, dst["sd"] ** 2 / 4
            df = (v1 + v2) ** 2 / (v1 * v1 / 3 + v2 * v2 / 3)
            half = quality.t_quantile_975(math.floor(df)) * math.sqrt(v1 + v2)
            assert math.isclose(row.diff_low, row.difference - half)
            assert math.isclose(row.diff_high, row.difference + half)
        else:
            assert row.diff_low <= row.difference <= row.diff_high
    assert compare.quality_change(db_url, "gpt-4o-mini", "gpt-4o").source_experiment == "small"
    assert compare.quality_change(db_url, "gpt-4o", "gpt-4.1") is None
    assert compare.quality_change(db_url, "gpt-4o", "gpt-4o-mini", viewer="nobody") is None


def test_difference_intervals_match_the_textbook():
    # Newcombe (1998), 56/70 vs 48/80: difference 0.2, method 10 gives 0.0524 to 0.3339.
    low, high = compare.difference_interval("boolean", (48 / 80, 0, 80), (56 / 70, 0, 70))
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    # Equal spreads and sizes: Welch's df is 2n - 2.
    low, high = compare.difference_interval("numeric", (3.0, 1.0, 10), (4.0, 1.0, 10))
    assert math.isclose(high - 1.0, quality.t_quantile_975(18) * math.sqrt(0.2))
    assert all(math.isnan(v) for v in compare.difference_interval("numeric", (3, 1, 1), (4, 1, 5)))


def test_the_cost_pages_what_if_shows_the_quality_or_the_commands(experiments, db_url):
    with app_environment(db_url, experiments):
        at = opened(open_page("cost"), "whatif_open")
        at.selectbox(key="whatif_provider").set_value("openai").run()
        at.selectbox(key="whatif_model").set_value("gpt-4o-mini")
        at.selectbox(key="whatif_source").set_value("gpt-4o").run()
        assert not at.exception, at.exception
        text = "\n".join(shown(m) for m in at.markdown)
        assert "Quality on the same items" in text and "**big** vs **small**" in text
        assert "- thumbs " in text and "95% CI" in text and "n=4 each" in text
        at.selectbox(key="whatif_model").set_value("gpt-4.1").run()
        assert not at.exception, at.exception
        assert any("no experiment compares gpt-4o with gpt-4.1" in shown(i) for i in at.info)
        code = at.code[0].value
        assert "ai-runs eval dataset create whatif-gpt-4o --model gpt-4o" in code
        assert "--model gpt-4.1 --provider openai --name whatif-gpt-4o-on-gpt-4.1" in code
