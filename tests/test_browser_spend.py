"""Spend control in a real headless Chromium behind the trusted proxy header (docs/spend-
control.md, docs/access.md): a manager sees their team's budget only, is told why the
company's is not shown and is not offered its removal; a member is compared with no
budget they cannot read; an admin's last month against its budget equals SQL. Real
Postgres (RLS decides), real mirror, real Streamlit server."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from builders import make_run, make_task
from psycopg.rows import dict_row
from test_browser import _settle
from test_browser_access import HEADER, _serve
from test_browser_alerts import _csv_of

import ingest
from dashboard import auth
from ingest.spend import budgets
from ingest.store import database

pytestmark = pytest.mark.browser
FIRST_LOAD_MS = 240_000  # a new context's first page under load (test_browser._settle)
PEOPLE = {  # person -> (team, role, cost of their task last month, this month)
    "alice": ("red", "member", "1.25", "0.50"),
    "carol": ("red", "manager", "2.00", "0.25"),
    "dave": ("blue", "member", "4.00", "1.00"),
    "root": ("blue", "admin", "0", "0"),
}


@pytest.fixture(scope="module")
def spend_db(pg_server: str, template_db: str) -> Iterator[str]:
    from dashboard_support import create_database, drop_database

    name = f"ai_runs_browser_spend_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    database._migrated.add(url)
    this_month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (this_month - timedelta(days=1)).replace(day=3, hour=12)
    with ingest.Tracker(url) as owner:
        for uid, (team, role, _, _) in PEOPLE.items():
            owner.upsert_user(uid, uid.title(), f"{uid}@example.com", team, role)
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        for uid, (_, _, before, now) in PEOPLE.items():
            run = make_run(conn, user_id=uid)
            for at, cost in ((last_month, before), (this_month + timedelta(hours=1), now)):
                make_task(conn, run, user_id=uid, status="completed", cost=Decimal(cost),
                          created_at=at)  # fmt: skip
    budgets.set_budget(url, amount=10, scope_kind="all")
    budgets.set_budget(url, amount=5, scope_kind="team", scope_value="red")
    budgets.set_budget(url, amount=3, scope_kind="team", scope_value="blue")
    budgets.set_budget(url, amount=2, scope_kind="user", scope_value="alice")
    yield url
    drop_database(pg_server, name)


@pytest.fixture(scope="module")
def dashboard(spend_db, tmp_path_factory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("spend_home")
    yield from _serve(folder, spend_db, {auth.TRUSTED_HEADER_ENV: HEADER}, "")


def _cost_page(browser, base: str, email: str, query: str = ""):
    context = browser.new_context(
        viewport={"width": 1400, "height": 3000}, extra_http_headers={HEADER: email}
    )
    page = context.new_page()
    page.set_default_timeout(90_000)
    page.goto(f"{base}/cost{query}")
    _settle(page, FIRST_LOAD_MS)
    page.get_by_role("heading", name="Cost", exact=True).first.wait_for()
    page.get_by_text("Budget used").first.wait_for()
    return context, page


def _metrics(page) -> dict[str, str]:
    """Label -> value of every metric card, read once both budget cards are drawn: the page
    reruns once right after its first load, and a rerun replaces the cards one by one (CI
    once read the cards with "Budget used" drawn and "Budget" not yet)."""
    deadline = time.monotonic() + 60
    while True:
        _settle(page)
        found = {}
        for metric in page.locator('[data-testid="stMetric"]').all():
            label = metric.locator('[data-testid="stMetricLabel"]').inner_text().strip()
            found[label] = metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
        if {"Budget", "Budget used"} <= found.keys() or time.monotonic() > deadline:
            return found
        page.wait_for_timeout(250)


def _options_of(page, label: str) -> list[str]:
    """The options of the select box `label`, read from its open list. A rerun of the page
    (the budget block settling) can close a list that was just opened, so open it again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(6):
        _settle(page)
        page.get_by_label(label).click()
        try:
            page.get_by_role("option").first.wait_for(timeout=5_000)
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            continue
        return [o.inner_text().strip() for o in page.get_by_role("option").all()]
    raise AssertionError(f"the list of {label!r} never opened")


def _budget_scopes(page) -> set[tuple[str, str]]:
    """(scope kind, scope value) of each row of the "Budgets by scope" table, from its CSV."""
    rows = _csv_of(page, "budgets_table")
    kind, value = (
        next(c for c in rows[0] if c.lower().startswith(p)) for p in ("scope k", "scope v")
    )
    return {(row[kind], row[value]) for row in rows}


def test_an_admin_sees_every_budget(browser, dashboard):
    context, page = _cost_page(browser, dashboard, "root@example.com")
    try:
        assert _budget_scopes(page) == {
            ("all", ""),
            ("team", "red"),
            ("team", "blue"),
            ("user", "alice"),
        }
        assert len(_options_of(page, "Remove a budget")) == 4
    finally:
        context.close()


def test_a_manager_sees_and_may_remove_only_their_teams_budget(browser, dashboard):
    context, page = _cost_page(browser, dashboard, "carol@example.com")
    try:
        assert _metrics(page)["Budget"] == "not shown"
        page.get_by_text("budget for everything applies to this view but is not shown").wait_for()
        # their team's and its people's (alice is in red), never the company's or blue's
        assert _budget_scopes(page) == {("team", "red"), ("user", "alice")}
        options = _options_of(page, "Remove a budget")
        assert len(options) == 2, options
        assert any("team red per month" in o for o in options)
        assert not any("everything" in o or "blue" in o for o in options), options
    finally:
        context.close()


def test_a_member_sees_only_the_budget_of_their_own_runs(browser, dashboard):
    context, page = _cost_page(browser, dashboard, "alice@example.com")
    try:
        assert _metrics(page)["Budget"] == "not shown"  # the view is compared with "all"
        assert _budget_scopes(page) == {("user", "alice")}
        page.get_by_text("budgets are set by your team's manager or an admin").first.wait_for()
        assert page.get_by_label("Remove a budget").count() == 0
        assert page.get_by_role("button", name="Save budget").count() == 0
    finally:
        context.close()


def test_a_member_linked_to_their_own_runs_is_compared_with_their_budget(browser, dashboard):
    context, page = _cost_page(browser, dashboard, "alice@example.com", "?user=alice")
    try:
        metrics = _metrics(page)
        assert metrics["Budget"] == "$2" and metrics["Budget used"].endswith("%")
    finally:
        context.close()


def test_a_member_without_a_budget_is_told_who_sets_them(browser, dashboard):
    context, page = _cost_page(browser, dashboard, "dave@example.com")
    try:
        assert _metrics(page)["Budget"] == "not shown"
        page.get_by_text("No budget of your own runs yet").wait_for()
        assert page.locator(".st-key-budgets_table_csv").count() == 0
    finally:
        context.close()


def test_last_months_spend_against_its_budget_equals_sql(browser, dashboard, spend_db):
    this_month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    with psycopg.connect(spend_db) as conn:
        spent = conn.execute(
            "SELECT sum(cost)::float FROM ai_tasks WHERE created_at >= %s AND created_at < %s",
            (last_month, this_month),
        ).fetchone()[0]
    assert spent == pytest.approx(7.25)
    context, page = _cost_page(browser, dashboard, "root@example.com", "?range=Last+month")
    try:
        metrics = _metrics(page)
        assert metrics["Spent"] == f"${spent:,.2f}"
        assert metrics["Budget"] == "$10"
        assert metrics["Budget used"] == f"{spent / 10:.0%}"
    finally:
        context.close()
