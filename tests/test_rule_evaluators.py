"""Rule evaluators run offline: `ai-runs eval score` (ingest/tracking/rules.py,
docs/quality.md) on real Postgres: one `rule` score per task and evaluator version, the
same run again counts once, a changed rule is a new version, bad settings write nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from psycopg.rows import dict_row

import ingest
from dashboard.command import main
from ingest.errors import ValidationError
from ingest.tracking import rules

AT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
SINCE = (AT - timedelta(hours=1)).isoformat()
ANSWERS = {
    '{"ok": true}': (900, Decimal("0.002")),
    "not json at all": (4000, Decimal("0.5")),
    "[1, 2": (None, None),
    "ERROR: refused": (300, Decimal("0.001")),
}


@pytest.fixture
def answered(db_url, monkeypatch):
    """Four finished tasks with different answers, times and costs; one outside the window."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    ids = {}
    with ingest.Tracker(db_url) as tracker:
        run = tracker.create_run("custom", name="answers", created_at=AT)
        for i, (text, (ms, cost)) in enumerate(ANSWERS.items()):
            model = "gpt-4o" if cost is not None else "a-model-without-a-price"
            task = tracker.create_task(run["id"], model=model, created_at=AT + timedelta(minutes=i))
            tracker.complete_task(task["task_id"], text, cost=cost, total_time=ms or 1)
            ids[text] = task["task_id"]
        old = tracker.create_task(run["id"], model="gpt-4o", created_at=AT - timedelta(days=9))
        tracker.complete_task(old["task_id"], "{}", total_time=5)
    with psycopg.connect(db_url) as conn:  # a task whose total time was never known
        conn.execute("UPDATE ai_tasks SET total_time = NULL WHERE task_id = %s", (ids["[1, 2"],))
    return db_url, ids


def rule_scores(url: str) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT s.*, t.response_text FROM ai_scores s JOIN ai_tasks t USING (task_id)"
            " WHERE s.source = 'rule' ORDER BY s.id"
        ).fetchall()


def verdicts(url: str, name: str) -> dict[str, str]:
    return {r["response_text"]: r["label"] for r in rule_scores(url) if r["name"] == name}


def test_each_rule_judges_as_documented(answered, capsys):
    url, _ids = answered
    since = ["--since", SINCE]
    assert main(["eval", "score", "--evaluator", "json", *since]) == 0
    assert main(["eval", "score", "--evaluator", "regex", "--pattern", "^ERROR", *since]) == 0
    assert main(["eval", "score", "--evaluator", "length", "--max-chars", "12", *since]) == 0
    assert main(["eval", "score", "--evaluator", "contains", "--text", "json", "--absent",
                 *since]) == 0  # fmt: skip
    assert main(["eval", "score", "--evaluator", "latency", "--max-ms", "1000", *since]) == 0
    assert main(["eval", "score", "--evaluator", "cost", "--max-usd", "0.01", *since]) == 0
    assert verdicts(url, "json") == {
        '{"ok": true}': "true", "not json at all": "false", "[1, 2": "false",
        "ERROR: refused": "false",
    }  # fmt: skip
    assert verdicts(url, "regex")["ERROR: refused"] == "true"
    assert sum(v == "true" for v in verdicts(url, "regex").values()) == 1
    assert verdicts(url, "length") == {
        '{"ok": true}': "true", "not json at all": "false", "[1, 2": "true",
        "ERROR: refused": "false",
    }  # fmt: skip
    assert verdicts(url, "contains")["not json at all"] == "false"
    # tasks without a total time or a cost are skipped, not failed
    assert verdicts(url, "latency") == {
        '{"ok": true}': "true", "not json at all": "false", "ERROR: refused": "true"
    }  # fmt: skip
    assert verdicts(url, "cost") == {
        '{"ok": true}': "true", "not json at all": "false", "ERROR: refused": "true"
    }  # fmt: skip
    out = capsys.readouterr().out
    assert "latency" in out and "1 skipped" in out
    rows = rule_scores(url)
    assert all(r["author"] == "" and r["evaluator_version"].startswith("1-") for r in rows)


def test_running_again_counts_once_and_a_changed_rule_is_a_new_version(answered, capsys):
    url, ids = answered
    args = ["eval", "score", "--evaluator", "regex", "--pattern", "ok", "--since", SINCE]
    assert main(args) == 0
    first = rule_scores(url)
    assert main(args) == 0
    assert "4 scores written (4 replaced)" in capsys.readouterr().out
    again = rule_scores(url)
    assert [r["id"] for r in again] == [r["id"] for r in first]
    assert main([*args[:-4], "--pattern", "refused", "--since", SINCE]) == 0
    versions = {r["evaluator_version"] for r in rule_scores(url)}
    assert len(versions) == 2 and len(rule_scores(url)) == 8
    assert ids  # the window left out the old task: 4 tasks scored, not 5


def test_bad_settings_are_refused_and_write_nothing(answered, capsys):
    url, _ids = answered
    with pytest.raises(ValidationError) as caught:
        rules.make_rule("regex", pattern="(")
    assert caught.value.field == "pattern"
    with pytest.raises(ValidationError) as caught:
        rules.make_rule("length", min_chars=10, max_chars=2)
    assert caught.value.field == "max_chars"
    assert main(["eval", "score", "--evaluator", "cost", "--since", SINCE]) == 1
    assert "max_usd" in capsys.readouterr().err
    assert rule_scores(url) == []
