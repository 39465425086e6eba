"""Spend-control settings under row-level security (migration 0018, docs/spend-control.md):
budgets, price overrides and alert rules are changed only by those whose rights allow it,
through the application role, in SQL as in the Python API; each person reads the budgets
and alerts of the scopes whose runs they read entirely; every change is audited with the
person as actor. Real Postgres, as ai_runs_app."""

from __future__ import annotations

import getpass

import psycopg
import pytest
from psycopg.rows import dict_row

import ingest
from ingest.access import viewer
from ingest.errors import AccessDeniedError, NotFoundError, ValidationError
from ingest.spend import alert_rules, budgets, price_books, repricing

PEOPLE = [
    ("alice", "red", "member"),
    ("carol", "red", "manager"),
    ("dave", "blue", "member"),
    ("erin", "blue", "manager"),
    ("root", "blue", "admin"),
]


@pytest.fixture
def people(db_url):
    with ingest.Tracker(db_url) as owner:
        for uid, team, role in PEOPLE:
            owner.upsert_user(uid, uid.title(), f"{uid}@example.com", team, role)
    return db_url


def _budgets_as_owner(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT scope_kind, scope_value, period, amount::float FROM ai_budgets ORDER BY id"
        ).fetchall()


def _audit(url: str) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT actor, action, subject, detail FROM ai_audit "
            "WHERE action NOT IN ('user_added', 'role_change') ORDER BY id"
        ).fetchall()


def test_a_manager_cannot_remove_or_change_the_company_budget_in_sql(people):
    url = people
    company = budgets.set_budget(url, amount=1000, scope_kind="all")
    before = _budgets_as_owner(url)
    with viewer.connect_as(url, "carol") as conn:
        assert conn.execute("SELECT count(*) AS n FROM ai_budgets").fetchone()["n"] == 0
        deleted = conn.execute("DELETE FROM ai_budgets WHERE id = %s", (company["id"],))
        assert deleted.rowcount == 0
        changed = conn.execute("UPDATE ai_budgets SET amount = 1 WHERE id = %s", (company["id"],))
        assert changed.rowcount == 0
    for statement in (
        "INSERT INTO ai_budgets (scope_kind, period, amount) VALUES ('all', 'week', 5)",
        "INSERT INTO ai_budgets (scope_kind, scope_value, period, amount) "
        "VALUES ('team', 'blue', 'month', 5)",
        "INSERT INTO ai_budgets (scope_kind, period, amount) VALUES ('all', 'month', 1) "
        "ON CONFLICT (scope_kind, coalesce(scope_value, ''), period) "
        "DO UPDATE SET amount = excluded.amount",
    ):
        with (
            pytest.raises(psycopg.errors.InsufficientPrivilege),
            viewer.connect_as(url, "carol") as conn,
        ):
            conn.execute(statement)
    with pytest.raises(AccessDeniedError, match="carol"):
        budgets.remove_budget(url, budget_id=company["id"], viewer="carol")
    with pytest.raises(AccessDeniedError):
        budgets.set_budget(url, amount=1, scope_kind="all", viewer="carol")
    assert _budgets_as_owner(url) == before
    with pytest.raises(NotFoundError):
        budgets.remove_budget(url, budget_id=company["id"] + 100, viewer="carol")


def test_a_manager_sets_their_teams_budget_only_and_a_member_none(people):
    url = people
    red = budgets.set_budget(url, amount=300, scope_kind="team", scope_value="red", viewer="carol")
    assert red["created_by"] == "carol"
    budgets.set_budget(url, amount=20, scope_kind="user", scope_value="alice", viewer="carol")
    refused = [
        ("carol", {"scope_kind": "team", "scope_value": "blue"}),
        ("carol", {"scope_kind": "user", "scope_value": "dave"}),
        ("carol", {"scope_kind": "model", "scope_value": "gpt-4o"}),
        ("alice", {"scope_kind": "user", "scope_value": "alice"}),
        ("alice", {"scope_kind": "team", "scope_value": "red"}),
        ("stranger", {"scope_kind": "all"}),
    ]
    for who, scope in refused:
        with pytest.raises(AccessDeniedError):
            budgets.set_budget(url, amount=1, viewer=who, **scope)
    budgets.set_budget(url, amount=1000, scope_kind="all", viewer="root")
    budgets.set_budget(url, amount=400, scope_kind="team", scope_value="blue", viewer="root")
    budgets.remove_budget(url, budget_id=red["id"], viewer="carol")
    assert _budgets_as_owner(url) == [
        ("user", "alice", "month", 20.0),
        ("all", None, "month", 1000.0),
        ("team", "blue", "month", 400.0),
    ]


def test_each_person_reads_the_budgets_of_scopes_they_read_entirely(people):
    url = people
    for kind, value in [("all", None), ("team", "red"), ("team", "blue"), ("user", "alice"),
                        ("user", "dave"), ("model", "gpt-4o")]:  # fmt: skip
        budgets.set_budget(url, amount=10, scope_kind=kind, scope_value=value)
    expected = {
        "root": {"all", "team red", "team blue", "user alice", "user dave", "model gpt-4o"},
        "carol": {"team red", "user alice"},
        "erin": {"team blue", "user dave"},
        "alice": {"user alice"},
        "dave": {"user dave"},
        "stranger": set(),
    }
    for who, labels in expected.items():
        rows = budgets.list_budgets(url, viewer=who)
        assert {" ".join(filter(None, (r["scope_kind"], r["scope_value"]))) for r in rows} == (
            labels
        ), who
        assert len(budgets.budget_scopes(url, viewer=who)) == 6  # which exist, no amounts


def test_price_overrides_are_changed_by_admins_only(people):
    url = people
    rates = {"input_per_mtok": 1, "output_per_mtok": 2}
    with pytest.raises(AccessDeniedError):
        price_books.add_override(url, provider="openai", model_pattern="gpt-4o",
                                 valid_from="2026-01-01", viewer="carol", **rates)  # fmt: skip
    row = price_books.add_override(
        url,
        provider="openai",
        model_pattern="gpt-4o",
        valid_from="2026-01-01",
        viewer="root",
        **rates,
    )
    assert row["created_by"] == "root"
    assert [r["id"] for r in price_books.list_overrides(url, viewer="alice")] == [row["id"]]
    with pytest.raises(AccessDeniedError):
        price_books.remove_override(url, override_id=row["id"], viewer="carol")
    with viewer.connect_as(url, "carol") as conn:
        assert conn.execute("UPDATE ai_price_overrides SET removed_at = now()").rowcount == 0
    assert price_books.remove_override(url, override_id=row["id"], viewer="root")["removed_by"] == (
        "root"
    )


def test_alert_rules_and_history_follow_the_scopes(people):
    url = people
    company = budgets.set_budget(url, amount=1000, scope_kind="all")
    blue = budgets.set_budget(url, amount=50, scope_kind="team", scope_value="blue")
    red = budgets.set_budget(url, amount=50, scope_kind="team", scope_value="red")
    for budget in (company, blue):
        with pytest.raises(AccessDeniedError):
            alert_rules.add_rule(url, name=f"b{budget['id']}", kind="budget_spend",
                                 threshold=1, budget_id=budget["id"], viewer="carol")  # fmt: skip
    with pytest.raises(AccessDeniedError):
        alert_rules.add_rule(url, name="blue slow", kind="ttft_p95", threshold=900,
                             scope_kind="team", scope_value="blue", viewer="carol")  # fmt: skip
    alert_rules.add_rule(url, name="red spend", kind="budget_spend", threshold=1,
                         budget_id=red["id"], viewer="carol")  # fmt: skip
    alert_rules.add_rule(url, name="company spend", kind="budget_spend", threshold=1,
                         budget_id=company["id"], viewer="root")  # fmt: skip
    alert_rules.add_rule(url, name="blue spend", kind="budget_spend", threshold=1,
                         budget_id=blue["id"])  # fmt: skip
    with psycopg.connect(url) as conn:  # one event per rule, as a check would record
        conn.execute(
            "INSERT INTO ai_alert_events (rule_id, seq, event, value, threshold, message) "
            "SELECT id, 1, 'firing', 2, 1, name || ' fired' FROM ai_alert_rules"
        )
    names = {who: {r["name"] for r in alert_rules.list_rules(url, viewer=who)}
             for who in ("root", "carol", "erin", "alice")}  # fmt: skip
    assert names == {
        "root": {"red spend", "company spend", "blue spend"},
        "carol": {"red spend"},
        "erin": {"blue spend"},
        "alice": set(),
    }
    history = alert_rules.alert_history(url, viewer="carol")
    assert [e["message"] for e in history] == ["red spend fired"]
    with viewer.connect_as(url, "carol") as conn:
        assert conn.execute("DELETE FROM ai_alert_rules").rowcount == 1  # only red spend
    assert {r["name"] for r in alert_rules.list_rules(url)} == {"company spend", "blue spend"}


def test_every_change_is_audited_with_the_person_as_actor(people):
    url = people
    team = budgets.set_budget(url, amount=300, scope_kind="team", scope_value="red", viewer="carol")
    budgets.set_budget(url, amount=350, scope_kind="team", scope_value="red", viewer="carol")
    budgets.set_budget(url, amount=1000, scope_kind="all")  # the command line: no viewer
    override = price_books.add_override(url, provider="openai", model_pattern="gpt-4o",
                                        valid_from="2026-01-01", per_request=0.01,
                                        viewer="root")  # fmt: skip
    price_books.remove_override(url, override_id=override["id"], viewer="root")
    rule = alert_rules.add_rule(url, name="red spend", kind="budget_spend", threshold=1,
                                budget_id=team["id"], viewer="carol")  # fmt: skip
    alert_rules.remove_rule(url, rule_id=rule["id"], viewer="carol")
    budgets.remove_budget(url, budget_id=team["id"], viewer="carol")
    ingest.Tracker(url, viewer="root").set_redaction_rule("email", enabled=True)
    rows = [(a["actor"], a["action"], a["subject"]) for a in _audit(url)]
    assert rows == [
        ("carol", "budget_set", "team red per month"),
        ("carol", "budget_set", "team red per month"),
        (getpass.getuser(), "budget_set", "all per month"),
        ("root", "price_override_added", "openai gpt-4o"),
        ("root", "price_override_removed", "openai gpt-4o"),
        ("carol", "alert_rule_added", "red spend"),
        ("carol", "alert_rule_removed", "red spend"),
        ("carol", "budget_removed", "team red per month"),
        ("root", "redaction_rule_changed", "email"),
    ]
    changed = _audit(url)[1]["detail"]
    assert changed["amount"] == 350 and changed["before"] == {"amount": 300}


def test_only_an_admin_reprices_and_the_audit_names_them(people):
    url = people
    with pytest.raises(AccessDeniedError):
        repricing.reprice(url, viewer="carol")
    assert repricing.reprice_audit(url) == []
    done = repricing.reprice(url, viewer="root")
    assert done.audit_id is not None
    [record] = repricing.reprice_audit(url, viewer="root")
    assert (record["ran_by"], record["ran_by_name"]) == ("root", "Root <root@example.com>")
    assert repricing.reprice_audit(url, viewer="carol") == []  # admins only
    assert [(a["actor"], a["action"]) for a in _audit(url)] == [("root", "reprice")]


def test_a_pattern_no_known_model_matches_is_refused_when_asked(people):
    url = people
    rates = {"per_request": 0.01, "valid_from": "2026-01-01", "known_only": True}
    for provider, pattern, field in [("anthropic", "gpt-4o-mini", "model_pattern"),
                                     ("nobody", "gpt-4o", "provider")]:  # fmt: skip
        with pytest.raises(ValidationError) as refused:
            price_books.add_override(url, provider=provider, model_pattern=pattern, **rates)
        assert refused.value.field == field
    assert price_books.list_overrides(url) == []
    row = price_books.add_override(url, provider="openai", model_pattern="gpt-4o*", **rates)
    assert row["model_pattern"] == "gpt-4o*"


def test_a_manager_mutes_only_the_rules_of_their_scopes(people):
    url = people
    company = budgets.set_budget(url, amount=1000, scope_kind="all")
    red = budgets.set_budget(url, amount=50, scope_kind="team", scope_value="red")
    theirs = alert_rules.add_rule(url, name="company", kind="budget_spend", threshold=1,
                                  budget_id=company["id"])  # fmt: skip
    mine = alert_rules.add_rule(url, name="red", kind="budget_spend", threshold=1,
                                budget_id=red["id"])  # fmt: skip
    with pytest.raises(NotFoundError):
        alert_rules.update_rule(url, rule_id=theirs["id"], enabled=False, viewer="carol")
    muted = alert_rules.update_rule(url, rule_id=mine["id"], enabled=False, threshold="0.9",
                                    viewer="carol")  # fmt: skip
    assert muted["enabled"] is False and float(muted["threshold"]) == 0.9
    assert {r["name"]: r["enabled"] for r in alert_rules.list_rules(url)} == {
        "company": True,
        "red": False,
    }
    with pytest.raises(ValidationError):
        alert_rules.update_rule(url, rule_id=mine["id"], threshold="-1", viewer="carol")
    assert [a["action"] for a in _audit(url)][-1] == "alert_rule_changed"


def test_the_scopes_offered_are_those_the_database_lets_one_set(people):
    url = people
    assert budgets.settable_scopes(url, viewer="root") is None  # an admin: any scope
    assert budgets.settable_scopes(url) is None  # the owner
    offered = budgets.settable_scopes(url, viewer="carol")
    assert offered == {"team": ["red"], "user": ["alice", "carol"]}
    assert budgets.settable_scopes(url, viewer="alice") == {}
    for value in offered["user"]:  # every scope offered is one the database accepts
        budgets.set_budget(url, amount=1, scope_kind="user", scope_value=value, viewer="carol")
    budgets.set_budget(url, amount=1, scope_kind="team", scope_value="red", viewer="carol")
    with pytest.raises(AccessDeniedError):  # and one not offered is refused
        budgets.set_budget(url, amount=1, scope_kind="user", scope_value="dave", viewer="carol")
