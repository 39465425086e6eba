"""Spend control in the dashboard (AppTest, real Postgres + DuckDB): a manager sets a team
budget on the Cost page and sees that team's forecast against it; the legacy file budget
moves to Postgres; the Overview shows firing alerts; what-if routes a share of a model."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from builders import make_run, make_task
from dashboard_support import (
    app_environment,
    chart_frames,
    charts,
    create_database,
    drop_database,
    metric_values,
    open_filters,
    open_page,
    opened,
    shown,
    texts,
)
from psycopg.rows import dict_row

import ingest
from dashboard import auth, formatting
from dashboard.formatting import csv_frame as csv_frame_of
from ingest import demo
from ingest.spend import alert_rules, budgets, price_books, repricing
from queries import budgets as budget_queries
from queries import open_mirror, sync_mirror
from queries.alerts import check_alerts

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers


@pytest.fixture(scope="module")
def spend_url(pg_server: str, template_db: str) -> Iterator[str]:
    name = f"ai_runs_spend_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    demo.generate(url, tasks=2000, days=40, seed=11)
    yield url
    drop_database(pg_server, name)


@pytest.fixture
def spend_app(spend_url: str, tmp_path: Path) -> Iterator[Path]:
    with app_environment(spend_url, tmp_path):
        yield tmp_path


def _table_with(at, column: str):
    """The first dataframe shown that has `column`."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _a_team(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT team FROM ai_users WHERE team IS NOT NULL ORDER BY team LIMIT 1"
        ).fetchone()[0]


def test_manager_sets_a_team_budget_and_sees_the_teams_forecast(spend_app, spend_url):
    (spend_app / "dashboard.json").write_text(json.dumps({"monthly_budget": 1234.0}))
    at = open_page("cost")
    assert not at.exception
    # The file budget is now the company-wide monthly budget in Postgres.
    assert metric_values(at)["Budget"] == "$1,234"
    assert json.loads((spend_app / "dashboard.json").read_text())["monthly_budget"] is None
    assert [(b["scope_kind"], float(b["amount"])) for b in budgets.list_budgets(spend_url)] == [
        ("all", 1234.0)
    ]

    team = _a_team(spend_url)
    at = open_page("cost", team=[team])
    assert f"No budget is set for team {team} yet" in texts(at)
    assert metric_values(at)["Budget"] == "not set"  # never the company-wide one
    assert at.selectbox(key="budget_scope_kind").value == "team"
    assert at.selectbox(key="budget_scope_value").value == team
    at.number_input(key="budget_amount").set_value(500.0)
    at.button(key="budget_save").click().run()
    assert not at.exception

    metrics = metric_values(at)
    assert metrics["Budget"] == "$500"
    assert f"Filtered to team {team}: compared with that team's budget" in texts(at)
    with open_mirror(spend_app / "check.duckdb") as con:  # a second mirror, same data
        sync_mirror(spend_url, con=con)
        expected = budget_queries.budget_forecast(
            con, budgets.list_budgets(spend_url)[1], today=datetime.now(UTC).date()
        )
    assert expected["scope"] == budget_queries.Scope("team", team)
    assert metrics["Month to date"] == f"${expected['month_to_date']:,.2f}"
    assert metrics["Month-end forecast"] == f"${expected['forecast']:,.2f}"
    # The forecast's budget line says its amount (a text mark; its data set holds the text).
    frames = [frame for i in range(len(charts(at))) for frame in chart_frames(at, i)]
    assert any("budget $500" in frame.to_string() for frame in frames)
    table = _table_with(at, "scope_kind")
    assert set(table["scope_kind"]) == {"all", "team"}


def test_overview_shows_firing_alerts_and_history(spend_app, spend_url):
    budget = budgets.set_budget(spend_url, amount="0.01", scope_kind="all")
    alert_rules.add_rule(
        spend_url, name="tiny budget", kind="budget_spend", threshold=1, budget_id=budget["id"]
    )
    with open_mirror(spend_app / "check.duckdb") as con:
        sync_mirror(spend_url, con=con)
        assert check_alerts(con, spend_url).fired == ["tiny budget"]
    at = open_page("overview")
    assert not at.exception
    assert any("**tiny budget** is firing" in shown(e) for e in at.error)
    assert not [d for d in at.dataframe if "delivery" in d.value.columns]  # hidden: not read
    history = _table_with(opened(at, "alert_history_open"), "delivery")
    assert list(history["event"]) == ["firing"]
    alert_rules.remove_rule(spend_url, rule_id=alert_rules.list_rules(spend_url)[0]["id"])
    budgets.remove_budget(spend_url, budget_id=budget["id"])


def test_what_if_routes_a_share_of_one_model(spend_app):
    at = opened(open_page("cost"), "whatif_open")
    at.selectbox(key="whatif_provider").set_value("openai").run()
    assert "claude-sonnet-4-5" not in at.selectbox(key="whatif_model").options
    at.selectbox(key="whatif_model").set_value("gpt-4o-mini")
    at.selectbox(key="whatif_source").set_value("gpt-4o")
    at.slider(key="whatif_share").set_value(30).run()
    assert not at.exception
    assert any(
        "Routing 30% of **gpt-4o** to **openai/gpt-4o-mini**" in shown(m) for m in at.markdown
    )
    at.selectbox(key="whatif_source").set_value("gpt-4o-mini").run()
    assert any("already the target" in shown(i) for i in at.info)


HEADER = "X-Forwarded-Email"


@pytest.fixture
def sign_in(monkeypatch):
    """Sign in through the trusted header as the person with this e-mail."""
    monkeypatch.setenv(auth.TRUSTED_HEADER_ENV, HEADER)

    def as_person(email: str) -> None:
        monkeypatch.setattr(auth, "request_headers", lambda: {HEADER: email})

    return as_person


def _person(url: str, role: str) -> dict:
    """The first person of a role (with their team) in the demo data."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT id, email, team FROM ai_users WHERE role = %s AND team IS NOT NULL "
            "ORDER BY id LIMIT 1",
            (role,),
        ).fetchone()


@pytest.fixture
def three_budgets(spend_url):
    """The company's budget, the first manager's team's and another team's (as the owner)."""
    manager = _person(spend_url, "manager")
    with psycopg.connect(spend_url) as conn:
        other = conn.execute(
            "SELECT team FROM ai_users WHERE team IS NOT NULL AND team <> %s ORDER BY team LIMIT 1",
            (manager["team"],),
        ).fetchone()[0]
    made = [
        budgets.set_budget(spend_url, amount=1000, scope_kind="all"),
        budgets.set_budget(spend_url, amount=300, scope_kind="team", scope_value=manager["team"]),
        budgets.set_budget(spend_url, amount=50, scope_kind="team", scope_value=other),
    ]
    yield manager, other
    for budget in made:
        budgets.remove_budget(spend_url, budget_id=budget["id"])


def test_a_manager_is_offered_only_their_teams_budget(spend_app, spend_url, sign_in, three_budgets):
    manager, other = three_budgets
    sign_in(manager["email"])
    at = open_page("cost")
    assert not at.exception
    removable = at.selectbox(key="budget_remove_pick").options
    assert len(removable) == 1 and f"team {manager['team']} per month" in removable[0]
    table = _table_with(at, "scope_kind")
    assert list(table["scope_value"]) == [manager["team"]]  # not the company's, not {other}'s
    # Only the scopes they may set are offered: their team and its people, never the
    # company's or another team's (Postgres refuses those: tests/test_spend_access.py).
    assert at.selectbox(key="budget_scope_kind").options == ["team", "user"]
    assert at.selectbox(key="budget_scope_value").options == [manager["team"]]
    at.selectbox(key="budget_scope_value").set_value(manager["team"])
    at.number_input(key="budget_amount").set_value(5.0)
    at.button(key="budget_save").click().run()
    assert not at.error
    assert float(next(b for b in budgets.list_budgets(spend_url)
                      if b["scope_value"] == manager["team"])["amount"]) == 5  # fmt: skip
    assert float(next(b for b in budgets.list_budgets(spend_url)
                      if b["scope_kind"] == "all")["amount"]) == 1000  # fmt: skip


def test_a_manager_is_offered_only_their_scopes_for_an_alert_rule(
    spend_app, spend_url, sign_in, three_budgets
):
    manager, _ = three_budgets
    sign_in(manager["email"])
    at = opened(open_page("overview"), "alert_rules_open")
    at.selectbox(key="alert_new_kind").set_value("failure_rate").run()
    assert not at.exception
    assert at.selectbox(key="alert_new_scope_kind").options == ["team", "user"]
    assert at.selectbox(key="alert_new_scope_value").options == [manager["team"]]


def test_each_person_is_compared_only_with_a_budget_they_read(
    spend_app, spend_url, sign_in, three_budgets
):
    manager, _ = three_budgets
    sign_in(manager["email"])
    at = open_page("cost")
    assert metric_values(at)["Budget"] == "not shown"  # never the company's $1,000
    assert "budget for everything applies to this view but is not shown" in texts(at)
    at = open_page("cost", team=[manager["team"]])
    assert metric_values(at)["Budget"] == "$300"
    member = _person(spend_url, "member")
    sign_in(member["email"])
    at = open_page("cost")
    assert not at.exception
    assert metric_values(at)["Budget"] == "not shown"
    admin = _person(spend_url, "admin")
    sign_in(admin["email"])
    assert metric_values(open_page("cost"))["Budget"] == "$1,000"


def test_unpriced_tasks_are_counted_beside_the_cost_and_in_the_breakdown_csv(spend_app, spend_url):
    with ingest.Tracker(spend_url) as owner:
        run = owner.create_run(
            "chat", name="unknown model", user_id=_person(spend_url, "member")["id"]
        )
        for _ in range(3):  # a model no price book knows: no cost
            task = owner.create_task(run["id"], provider="openai", model="mystery-model-9")
            owner.complete_task(task["task_id"], "ok", tokens_input=10, tokens_output=5)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    with psycopg.connect(spend_url) as conn:
        expected = conn.execute(
            "SELECT count(*) FROM ai_tasks WHERE cost IS NULL AND created_at >= %s "
            "AND created_at < %s",
            (end - timedelta(days=30), end),
        ).fetchone()[0]
    assert expected >= 3
    at = open_page("cost")
    assert not at.exception
    assert metric_values(at)["Unpriced tasks"] == f"{expected:,}"
    assert any(f"{expected:,} unpriced tasks" in shown(w) for w in at.warning)
    with_unpriced = [d.value for d in at.dataframe if "unpriced" in d.value.columns]
    assert not with_unpriced  # the spend table and the breakdown are built when opened
    opened(at, "cost_spend_table_open", "cost_pairs_open")
    with_unpriced = [d.value for d in at.dataframe if "unpriced" in d.value.columns]
    assert len(with_unpriced) >= 2  # the spend table and the two-dimension breakdown
    assert all(int(t["unpriced"].sum()) == expected for t in with_unpriced)
    pairs = with_unpriced[-1]
    assert "Unpriced tasks" in csv_frame_of(pairs).columns
    assert "Cost (USD)" in csv_frame_of(pairs).columns
    assert metric_values(at)["Cost (USD) in this period"].startswith("$")


def _audit_rows(url: str, action: str) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT actor, subject, detail FROM ai_audit WHERE action = %s ORDER BY id", (action,)
        ).fetchall()


def test_the_override_form_defaults_nothing_checks_the_model_and_refreshes(spend_app, spend_url):
    at = open_page("cost")
    assert not [w for w in at.selectbox if w.key == "override_provider"]  # hidden: not drawn
    at = opened(at, "override_form_open")
    assert [s.label for s in at.selectbox].count("Provider") <= 1  # one widget named so
    assert at.selectbox(key="override_provider").value is None  # no silent default
    at.text_input(key="override_model").set_value("gpt-4o-mini")
    at.date_input(key="override_from").set_value(datetime(2020, 1, 1).date())
    at.text_input(key="override_per_request").set_value("0.5")
    at.button(key="override_add").click().run()
    assert any("provider" in shown(e) for e in at.error)  # refused, naming the field
    at.selectbox(key="override_provider").set_value("anthropic").run()
    assert any("matches no anthropic model" in shown(w) for w in at.warning)
    at.button(key="override_add").click().run()
    assert any("model_pattern" in shown(e) for e in at.error)
    assert price_books.list_overrides(spend_url) == []
    at.selectbox(key="override_provider").set_value("openai").run()
    assert any("Covers" in shown(c) and "gpt-4o-mini" in shown(c) for c in at.caption)
    at.button(key="override_add").click().run()
    assert not at.exception
    [row] = price_books.list_overrides(spend_url)
    assert row["created_by"] == auth.LOCAL_ADMIN_ID
    assert any(f"Added price override {row['id']}" in shown(s) for s in at.success)
    table = _table_with(at, "model_pattern")  # the table shows it without a reload
    assert list(table["model_pattern"]) == ["gpt-4o-mini"]
    [audited] = _audit_rows(spend_url, "price_override_added")
    assert audited["actor"] == auth.LOCAL_ADMIN_ID and audited["subject"] == "openai gpt-4o-mini"


def test_reprice_from_the_page_dry_run_first_then_apply_audited(spend_app, spend_url):
    at = opened(open_page("cost"), "reprice_form_open")
    today = datetime.now(UTC).date()
    at.date_input(key="reprice_since").set_value(today - timedelta(days=3))
    at.selectbox(key="reprice_model").set_value("gpt-4o-mini").run()
    assert at.button(key="reprice_dry_run") and not [
        b for b in at.button if b.key == "reprice_apply"
    ]
    at.button(key="reprice_dry_run").click().run()
    assert not at.exception
    preview = _table_with(at, "cost_after")
    assert set(preview["model"]) == {"gpt-4o-mini"}
    with psycopg.connect(spend_url) as conn:
        audits_before = conn.execute("SELECT count(*) FROM ai_reprice_audit").fetchone()[0]
    assert audits_before == 0  # a dry run writes nothing
    at.button(key="reprice_apply").click().run()
    assert not at.exception
    assert any("recorded as re-pricing" in shown(s) for s in at.success)
    [record] = repricing.reprice_audit(spend_url)
    assert record["ran_by"] == auth.LOCAL_ADMIN_ID and record["status"] == "completed"
    assert record["tasks_examined"] == int(preview["tasks"].sum())
    [audited] = _audit_rows(spend_url, "reprice")
    assert audited["actor"] == auth.LOCAL_ADMIN_ID
    at = open_page("cost")
    rule = _table_with(at, "tasks_changed")["rule"].iloc[0]
    assert "model: gpt-4o-mini" in rule and "{" not in rule  # readable, not a Python dict


def test_audit_frame_shows_ids_as_text_and_details_as_fields():
    run = uuid.uuid4()
    frame = pd.DataFrame(
        [{"run_id": run, "detail": {"runs": 2, "run_ids": [str(run), "x"], "from": "active"}}]
    )
    shown_frame = formatting.audit_frame(frame)
    assert shown_frame["run_id"].iloc[0] == str(run)
    assert shown_frame["detail"].iloc[0] == f"runs: 2 · run_ids: {run}, x · from: active"
    csv = formatting.csv_frame(shown_frame)
    assert csv.iloc[0, 0] == str(run) and "{" not in csv.iloc[0, 1]


def test_last_months_spend_against_its_budget_equals_sql(spend_app, spend_url):
    company = budgets.set_budget(spend_url, amount=1000, scope_kind="all")
    today = datetime.now(UTC).date()
    this_month = datetime(today.year, today.month, 1, tzinfo=UTC)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    with psycopg.connect(spend_url) as conn:
        spent = conn.execute(
            "SELECT coalesce(sum(cost), 0)::float FROM ai_tasks "
            "WHERE created_at >= %s AND created_at < %s",
            (last_month, this_month),
        ).fetchone()[0]
    try:
        at = open_page("cost", range="Last month")
        assert not at.exception
        metrics = metric_values(at)
        assert metrics["Spent"] == f"${spent:,.2f}"
        assert "Month-end forecast" not in metrics  # a closed month has actuals only
        assert metrics["Budget"] == "$1,000"
        assert metrics["Budget used"] == f"{spent / 1000:.0%}"
        assert f"{last_month:%B %Y}: spend vs budget" in texts(at)
        assert metric_values(open_page("cost"))["Month to date"].startswith("$")  # the current
    finally:
        budgets.remove_budget(spend_url, budget_id=company["id"])


def test_an_alert_rule_made_on_the_page_tests_fires_to_a_webhook_and_mutes(spend_app, spend_url):
    from test_alerts import Receiver

    hook = Receiver()
    budget = budgets.set_budget(spend_url, amount="0.01", scope_kind="all", period="week")
    # Spend in the current week whatever the day: just after midnight on a Monday the demo
    # may have no task in the week yet.
    with psycopg.connect(spend_url, row_factory=dict_row, autocommit=True) as conn:
        spent_now = make_run(conn)
        make_task(conn, spent_now, status="completed", cost=Decimal("1"),
                  created_at=datetime.now(UTC))  # fmt: skip
    try:
        at = open_page("overview")
        assert not [w for w in at.text_input if w.key == "alert_new_name"]  # hidden: not drawn
        at = opened(at, "alert_rules_open")
        at.text_input(key="alert_new_name").set_value("page rule")
        at.selectbox(key="alert_new_kind").set_value("budget_spend").run()
        at.number_input(key="alert_new_threshold").set_value(100.0)
        budget_label = next(o for o in at.selectbox(key="alert_new_budget").options
                            if o.startswith(f"{budget['id']}:"))  # fmt: skip
        at.selectbox(key="alert_new_budget").set_value(budget_label)
        at.text_input(key="alert_new_hook").set_value(hook.url)
        at.button(key="alert_add").click().run()
        assert not at.exception
        [rule] = alert_rules.list_rules(spend_url)
        assert rule["threshold"] == 1 and rule["created_by"] == auth.LOCAL_ADMIN_ID
        at.button(key="alert_test").click().run()
        assert any("test delivered" in shown(s) for s in at.success)
        assert hook.bodies[-1]["event"] == "test" and "threshold 100%" in hook.bodies[-1]["text"]
        with open_mirror(spend_app / "check.duckdb") as con:
            sync_mirror(spend_url, con=con)
            assert check_alerts(con, spend_url).fired == ["page rule"]
        fired = hook.bodies[-1]
        assert (fired["rule"], fired["event"]) == ("page rule", "firing")
        assert "(threshold 100%)" in fired["text"] and "E+" not in fired["text"]
        at = opened(open_page("overview"), "alert_history_open", "alert_rules_open")
        firing = next(shown(e) for e in at.error if "page rule" in shown(e))
        assert "budget_spend >= 100%" in firing and "(now " in firing
        history = _table_with(at, "delivery")
        assert history["threshold"].iloc[0] == "100%" and history["value"].iloc[0].endswith("%")
        at.button(key="alert_mute").click().run()
        assert alert_rules.list_rules(spend_url)[0]["enabled"] is False
        at.button(key="alert_remove").click().run()
        assert alert_rules.list_rules(spend_url) == []
    finally:
        hook.close()
        budgets.remove_budget(spend_url, budget_id=budget["id"])
        with psycopg.connect(spend_url, autocommit=True) as conn:
            conn.execute("DELETE FROM ai_tasks WHERE run_id = %s", (spent_now,))
            conn.execute("DELETE FROM ai_runs WHERE id = %s", (spent_now,))


def test_a_member_filtered_to_themselves_is_compared_with_their_own_budget(
    spend_app, spend_url, sign_in
):
    member = _person(spend_url, "member")
    made = budgets.set_budget(spend_url, amount=2, scope_kind="user", scope_value=member["id"])
    try:
        sign_in(member["email"])
        at = open_page("cost", user=[member["id"]])  # a link names the user by id
        assert not at.exception
        assert metric_values(at)["Budget"] == "$2"
        assert open_filters(at).multiselect(key="user").value == [member["id"]]
    finally:
        budgets.remove_budget(spend_url, budget_id=made["id"])
