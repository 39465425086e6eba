"""Templates from runs (ingest/tracking/templates.py, migration 0019): placeholders put back
from a run's variable values, versions with who and when, runs made from a template and a
rollup per version, row-level security like runs, the CLI and REST faces."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest

import ingest
from ingest.errors import NotFoundError, ValidationError
from ingest.tracking.templates import fill, placeholders_of, to_template
from tests.server_support import serve

MESSAGES = [
    {"role": "system", "content": "You write for Acme Corp."},
    {
        "role": "user",
        "content": [{"type": "text", "text": "A haiku about Paris in spring for Acme Corp"}],
        "task_id": "00000000-0000-4000-8000-000000000001",
    },
]
VARIABLES = {"city": "Paris", "season": "spring", "company": "Acme Corp", "flag": True}


def test_variable_values_become_placeholders_and_fill_puts_them_back() -> None:
    messages, placeholders = to_template(MESSAGES, VARIABLES)
    assert messages == [
        {"role": "system", "content": "You write for {{company}}."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "A haiku about {{city}} in {{season}} for {{company}}"}
            ],
        },
    ]
    assert placeholders == ["city", "company", "season"] == placeholders_of(messages)
    again = fill(messages, {"city": "Oslo", "season": "winter", "company": "Beta"})
    assert again[1]["content"][0]["text"] == "A haiku about Oslo in winter for Beta"
    with pytest.raises(ValidationError) as missing:
        fill(messages, {"city": "Oslo"})
    assert missing.value.field == "variable_values"
    assert list(missing.value.allowed) == ["company", "season"]
    assert "company, season" in missing.value.problem


def test_longer_values_win_over_values_inside_them() -> None:
    messages, placeholders = to_template(
        [{"role": "user", "content": "New York and York"}], {"big": "New York", "small": "York"}
    )
    assert messages[0]["content"] == "{{big}} and {{small}}"
    assert placeholders == ["big", "small"]


def test_versions_runs_from_a_template_and_a_rollup_per_version(db_url) -> None:
    with ingest.Tracker(db_url, user_id="ada") as tracker:
        tracker.upsert_user("ada", "Ada")
        run = tracker.create_run(
            "prompt", messages=MESSAGES, variable_values=VARIABLES, settings={"model": "gpt-4o"}
        )
        first = tracker.template_from_run(run["id"], "haiku")
        second = tracker.template_from_run(run["id"], "haiku")
        assert (first["version"], second["version"]) == (1, 2)
        assert first["template_id"] == second["template_id"]
        assert first["created_by"] == "ada" and first["source_run_id"] == run["id"]
        assert first["settings"] == {"model": "gpt-4o"}
        stored = tracker.get_template("haiku", version=1)
        assert stored["messages"] == to_template(MESSAGES, VARIABLES)[0]
        assert [v["version"] for v in stored["versions"]] == [1, 2]
        assert json.loads(ingest.tracking.templates.export_json(stored))["name"] == "haiku"

        costs = {1: [Decimal("0.01"), Decimal("0.03")], 2: [Decimal("0.002")]}
        made = []
        for version, run_costs in costs.items():
            for i, cost in enumerate(run_costs):
                made_run = tracker.create_run_from_template(
                    "haiku", {"city": f"C{i}", "season": "fall", "company": "X"}, version=version
                )
                made.append(made_run)
                task = tracker.create_task(made_run["id"], provider="openai", model="gpt-4o")
                tracker.complete_task(
                    task["task_id"],
                    "ok",
                    tokens_input=10,
                    tokens_output=5,
                    cost=cost,
                    total_time=100 * version,
                )
        assert tracker.get_run(made[0]["id"])["messages"][1]["content"][0]["text"] == (
            "A haiku about C0 in fall for X"
        )
        assert tracker.run_template(made[0]["id"]) == {
            "template_id": first["template_id"],
            "name": "haiku",
            "version": 1,
        }
        assert tracker.run_template(run["id"]) is None
        rollup = {row["version"]: row for row in tracker.template_rollup("haiku")}
        assert (rollup[1]["runs"], rollup[1]["tasks"], rollup[1]["total_cost"]) == (
            2,
            2,
            Decimal("0.04"),
        )
        assert rollup[1]["cost_per_run"] == Decimal("0.02")
        assert (rollup[2]["runs"], rollup[2]["total_cost"]) == (1, Decimal("0.002"))
        assert (rollup[1]["mean_total_time"], rollup[2]["mean_total_time"]) == (100, 200)
        assert rollup[1]["total_tokens"] == 30

        before = tracker.list_runs(limit=100).total
        with pytest.raises(ValidationError) as missing:
            tracker.create_run_from_template("haiku", {"city": "Oslo"})
        assert missing.value.allowed == ["company", "season"]
        assert tracker.list_runs(limit=100).total == before  # nothing written
        with pytest.raises(ValidationError) as no_version:
            tracker.get_template("haiku", version=9)
        assert no_version.value.field == "version" and no_version.value.allowed == [1, 2]
        with pytest.raises(ValidationError):
            tracker.template_from_run(run["id"], "  ")


def test_the_rollup_compares_quality_scores_per_version(db_url) -> None:
    """Each version's scores (of its runs and their tasks), against the same numbers
    computed here from what was written."""
    with ingest.Tracker(db_url, user_id="ada") as tracker:
        tracker.upsert_user("ada", "Ada")
        run = tracker.create_run("prompt", messages=MESSAGES, variable_values=VARIABLES)
        tracker.template_from_run(run["id"], "haiku")
        tracker.template_from_run(run["id"], "haiku")
        given = {1: [(True, 4), (False, 2), (True, 5)], 2: [(False, 1)]}
        for version, scores in given.items():
            for thumbs, stars in scores:
                made = tracker.create_run_from_template(
                    "haiku", {"city": "Oslo", "season": "fall", "company": "X"}, version=version
                )
                task = tracker.create_task(made["id"], provider="openai", model="gpt-4o")
                tracker.complete_task(task["task_id"], "ok", tokens_input=1, tokens_output=1)
                tracker.score("thumbs", thumbs, task_id=task["task_id"])
                tracker.score("stars", stars, run_id=made["id"])
                tracker.score("tone", "calm", run_id=made["id"])
        untouched = tracker.create_run("prompt")  # a run of no template: not counted
        tracker.score("stars", 1, run_id=untouched["id"])
        rollup = {row["version"]: row["scores"] for row in tracker.template_rollup("haiku")}
    for version, scores in given.items():
        thumbs = [1.0 if up else 0.0 for up, _ in scores]
        stars = [float(n) for _, n in scores]
        assert rollup[version] == {
            "stars": {"count": len(stars), "mean": pytest.approx(sum(stars) / len(stars))},
            "thumbs": {"count": len(thumbs), "mean": pytest.approx(sum(thumbs) / len(thumbs))},
            "tone": {"count": len(scores), "mean": None},
        }


def test_templates_follow_row_level_security_like_runs(db_url) -> None:
    with ingest.Tracker(db_url) as owner:
        owner.upsert_user("alice", "Alice")
        owner.upsert_user("bob", "Bob")
        run = owner.create_run(
            "chat", user_id="alice", messages=MESSAGES, variable_values=VARIABLES
        )
    with ingest.Tracker(db_url, viewer="bob") as bob, pytest.raises(NotFoundError):
        bob.template_from_run(run["id"], "stolen")
    with ingest.Tracker(db_url, viewer="alice") as alice:
        made = alice.template_from_run(run["id"], "mine")
        assert made["owner"] == "alice" and made["created_by"] == "alice"
    with ingest.Tracker(db_url, viewer="bob") as bob:
        with pytest.raises(NotFoundError):
            bob.get_template(made["template_id"])
        with pytest.raises(NotFoundError):
            bob.template_rollup(made["template_id"])
    with ingest.Tracker(db_url, viewer="alice") as alice:
        assert alice.get_template(made["template_id"])["placeholders"] == [
            "city",
            "company",
            "season",
        ]


def test_template_over_http_and_the_command_line(db_url, tmp_path) -> None:
    with ingest.Tracker(db_url) as owner:
        owner.upsert_user("ada", "Ada")
        owner.upsert_user("eve", "Eve")
        mine = owner.create_run("chat", user_id="ada", messages=MESSAGES, variable_values=VARIABLES)
        theirs = owner.create_run("chat", user_id="eve", messages=MESSAGES)
    with serve(db_url) as served, served.client() as http:
        made = http.post("/v1/templates", json={"run_id": str(mine["id"]), "name": "web"})
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["version"] == 1 and body["placeholders"] == ["city", "company", "season"]
        got = http.get(f"/v1/templates/{body['template_id']}")
        assert got.status_code == 200 and got.json()["messages"] == body["messages"]
        assert (
            http.post("/v1/templates", json={"run_id": str(theirs["id"]), "name": "x"}).status_code
            == 404
        )
        bad = http.post(
            f"/v1/templates/{body['template_id']}/runs", json={"variable_values": {"city": "Oslo"}}
        )
        assert bad.status_code == 422
        assert bad.json()["error"]["allowed"] == ["company", "season"]
        run = http.post(
            f"/v1/templates/{body['template_id']}/runs",
            json={"variable_values": {"city": "Oslo", "season": "x", "company": "y"}},
        )
        assert run.status_code == 201, run.text
        assert run.json()["template_version"] == 1
        rollup = http.get(f"/v1/templates/{body['template_id']}/rollup")
        assert rollup.status_code == 200 and rollup.json()[0]["runs"] == 1

    env = {"DATABASE_URL": db_url, "AI_RUNS_HOME": str(tmp_path), "PATH": ""}
    cli = [sys.executable, "-m", "dashboard.command", "template"]
    created = subprocess.run(
        [*cli, "create", str(mine["id"]), "cli-made"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    template_id = created.stdout.split()[1]
    exported = subprocess.run(
        [*cli, "export", template_id], env=env, capture_output=True, text=True, check=False
    )
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["name"] == "cli-made"


def test_run_page_creates_a_template_version_and_exports_it(
    pg_server, template_db, tmp_path, monkeypatch
) -> None:
    from dashboard_support import (
        MediaSpy,
        app_environment,
        create_database,
        download,
        drop_database,
        open_page,
    )

    from ingest.store import database

    spy = MediaSpy().install(monkeypatch)
    name = f"ai_runs_templates_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    database._migrated.add(url)
    try:
        with ingest.Tracker(url) as tracker:
            run = tracker.create_run("prompt", messages=MESSAGES, variable_values=VARIABLES)
        with app_environment(url, tmp_path):
            at = open_page("runs", run_id=str(run["id"]))
            at.text_input(key="run_template_name").set_value("from the page")
            at.button(key="run_template_go").click().run()
            assert not at.exception and not at.error
            exported = json.loads(download(at, spy, "Export template as JSON"))
            assert exported["name"] == "from the page" and exported["version"] == 1
            assert exported["placeholders"] == ["city", "company", "season"]
            with ingest.Tracker(url) as tracker:
                made = tracker.create_run_from_template(
                    exported["template_id"], {"city": "a", "season": "b", "company": "c"}
                )
            at = open_page("runs", run_id=str(made["id"]))
            assert any("version 1" in c.value for c in at.caption)
    finally:
        drop_database(pg_server, name)
