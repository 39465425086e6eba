"""Alerts and audit in a real headless Chromium behind the trusted proxy header
(docs/spend-control.md, docs/access.md): an admin creates an alert rule with the Overview's
form and its test message reaches a local webhook; an admin, a manager of one team and a
member each see only the alert rules, history and audit rows of their scopes. Real Postgres
(row-level security decides), real mirror, real Streamlit server, real webhook receiver."""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from builders import make_run, make_task
from psycopg.rows import dict_row
from test_alerts import Receiver
from test_browser import _settle
from test_browser_access import HEADER, _serve

import ingest
from dashboard import auth
from ingest.store import database

pytestmark = pytest.mark.browser
FIRST_LOAD_MS = 240_000  # a new context's first page under load (test_browser._settle)
PEOPLE = {  # person -> (team, role)
    "alice": ("red", "member"),
    "carol": ("red", "manager"),
    "dave": ("blue", "member"),
    "root": ("blue", "admin"),
}
# rule name -> (scope kind, scope value): seeded as the owner, one firing event each
SEEDED = {
    "red failures": ("team", "red"),
    "blue failures": ("team", "blue"),
    "company failures": ("all", None),
}
MEMBER_RULE = "alice failures"  # seeded too, on alice's own user scope (she is a red member)


@pytest.fixture(scope="module")
def alerts_db(pg_server: str, template_db: str) -> Iterator[str]:
    from dashboard_support import create_database, drop_database

    name = f"ai_runs_browser_alerts_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    database._migrated.add(url)
    with ingest.Tracker(url) as owner:
        for uid, (team, role) in PEOPLE.items():
            owner.upsert_user(uid, uid.title(), f"{uid}@example.com", team, role)
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        for uid in PEOPLE:
            run = make_run(conn, user_id=uid)
            make_task(conn, run, user_id=uid, status="completed", cost=Decimal("0.50"),
                      created_at=datetime.now(UTC) - timedelta(hours=1))  # fmt: skip
        for rule, (scope_kind, scope_value) in {**SEEDED, MEMBER_RULE: ("user", "alice")}.items():
            rule_id = conn.execute(
                "INSERT INTO ai_alert_rules (name, kind, threshold, scope_kind, scope_value)"
                " VALUES (%s, 'failure_rate', 0.25, %s, %s) RETURNING id",
                (rule, scope_kind, scope_value),
            ).fetchone()["id"]
            conn.execute(
                "INSERT INTO ai_alert_events (rule_id, seq, event, value, threshold, message,"
                " delivery) VALUES (%s, 1, 'firing', 0.5, 0.25, %s, 'no_webhook')",
                (rule_id, f"{rule} fired: failure rate 50%"),
            )
    yield url
    drop_database(pg_server, name)


@pytest.fixture(scope="module")
def dashboard(alerts_db, tmp_path_factory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("alerts_home")
    yield from _serve(folder, alerts_db, {auth.TRUSTED_HEADER_ENV: HEADER}, "")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _open(browser, base: str, email: str, path: str, title: str):
    context = browser.new_context(
        viewport={"width": 1400, "height": 3000},
        extra_http_headers={HEADER: email},
        accept_downloads=True,
    )
    page = context.new_page()
    page.set_default_timeout(90_000)
    page.goto(f"{base}/{path}")
    _settle(page, FIRST_LOAD_MS)
    page.get_by_role("heading", name=title, exact=True).first.wait_for()
    return context, page


def _expand(page, title: str) -> None:
    """Open the expander `title` (a summary element) unless it is open."""
    expander = page.locator('[data-testid="stExpander"] details').filter(
        has=page.locator("summary", has_text=title)
    )
    if expander.get_attribute("open") is None:
        expander.locator("summary").click()
        _settle(page)


def _csv_of(page, key: str) -> list[dict[str, str]]:
    """The rows of the table `key` (ui.table), from its own "Download CSV" button. A rerun
    between the click and the download replaces the button's file: click it again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(3):
        _settle(page)
        try:
            with page.expect_download(timeout=15_000) as download_info:
                page.locator(f".st-key-{key}_csv button").click()
        except PlaywrightTimeout:
            continue
        text = Path(download_info.value.path()).read_text()
        return list(csv.DictReader(io.StringIO(text)))
    raise AssertionError(f"the CSV of {key!r} never downloaded")


def _options_of(page, label: str) -> list[str]:
    """The options of the select box `label` (exactly), read from its open list; opened
    again when a rerun of the page closed it (as tests/test_browser_spend.py does)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(6):
        _settle(page)
        page.get_by_role("combobox", name=label, exact=True).click()
        try:
            page.get_by_role("option").first.wait_for(timeout=5_000)
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            continue
        return [o.inner_text().strip() for o in page.get_by_role("option").all()]
    raise AssertionError(f"the list of {label!r} never opened")


def _pick(page, label: str, option: str) -> None:
    """Choose `option` of the select box `label`, opening its list again if a rerun closed it."""
    for _ in range(4):
        options = _options_of(page, label)
        assert option in options, f"{option!r} is not offered by {label!r}: {options}"
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
        except Exception:  # noqa: BLE001 - a rerun closed the list: open it again
            page.keyboard.press("Escape")
            continue
        _settle(page)
        return
    raise AssertionError(f"could not choose {option!r} in {label!r}")


def _type(page, key: str, text: str) -> None:
    """Type into the input of the widget with `key` (labels repeat: two "Threshold (%)")."""
    field = page.locator(f".st-key-{key} input")
    field.fill(text)
    field.press("Enter")
    _settle(page)


def _no_audit_for(browser, base: str, email: str) -> None:
    """No Access page in the navigation, and its address shows no audit log."""
    context = browser.new_context(
        viewport={"width": 1400, "height": 3000}, extra_http_headers={HEADER: email}
    )
    page = context.new_page()
    page.set_default_timeout(45_000)
    try:
        page.goto(f"{base}/access")
        _settle(page, FIRST_LOAD_MS)
        assert page.get_by_role("link", name="Access").count() == 0
        assert page.get_by_role("tab", name="Audit log").count() == 0
        assert page.get_by_text("alert_rule_added").count() == 0
    finally:
        context.close()


def _audit_actors(url: str, rule: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT actor FROM ai_audit WHERE action = 'alert_rule_added' AND subject = %s",
            (rule,),
        ).fetchall()
    return [actor for (actor,) in rows]


def _fail_a_task_of(url: str, person: str) -> None:
    """A failed task of `person`, created now (inside every rule's window)."""
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        run = make_run(conn, user_id=person)
        make_task(conn, run, user_id=person, status="failed", created_at=datetime.now(UTC))


def _wait_for(receiver: Receiver, rule: str, event: str, seconds: float = 90) -> dict:
    """The body of the first `event` of `rule` the webhook received; the dashboard checks
    the rules in the background after a sync, so under load it may take a while."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for body in list(receiver.bodies):
            if (body.get("rule"), body.get("event")) == (rule, event):
                return body
        time.sleep(0.5)
    raise AssertionError(f"no {event} of {rule!r} reached the webhook: {receiver.bodies}")


def _names(rows: list[dict[str, str]]) -> set[str]:
    return {value for row in rows for value in row.values() if value}


def test_a_rule_added_on_the_page_sends_its_test_to_a_local_webhook(
    browser, dashboard, alerts_db, receiver
):
    context, page = _open(browser, dashboard, "root@example.com", "", "Overview")
    try:
        _expand(page, "Alert rules")
        _type(page, "alert_new_name", "page-made latency")
        _pick(page, "Kind", "ttft_p95")
        _type(page, "alert_new_threshold", "1500")
        _type(page, "alert_new_hook", receiver.url)
        page.get_by_role("button", name="Add rule").click()
        # the click's rerun may not have started yet: wait for the table to hold the new rule
        rows = len(SEEDED) + 2  # and the member's rule
        page.locator(".st-key-alert_rules_csv button", has_text=f"({rows} rows)").wait_for()
        _settle(page)
        assert "page-made latency" in _names(_csv_of(page, "alert_rules"))
        with psycopg.connect(alerts_db, row_factory=dict_row) as conn:
            rule = conn.execute(
                "SELECT id, kind, threshold, webhook_url FROM ai_alert_rules WHERE name = %s",
                ("page-made latency",),
            ).fetchone()
        assert rule["kind"] == "ttft_p95" and rule["threshold"] == Decimal("1500")
        assert rule["webhook_url"] == receiver.url
        _pick(page, "Rule", f"{rule['id']}: page-made latency")
        page.get_by_role("button", name="Send a test").click()
        page.get_by_text("test delivered").wait_for()
        assert len(receiver.bodies) == 1
        body = receiver.bodies[0]
        assert body["rule"] == "page-made latency" and body["event"] == "test"
        assert body["kind"] == "ttft_p95" and body["threshold"] == 1500.0
        assert "page-made latency" in body["text"]
        assert receiver.keys[0].startswith(f"ai-runs-alert-test-{rule['id']}-")
    finally:
        context.close()
    assert _audit_actors(alerts_db, "page-made latency") == ["root"]


def test_a_managers_rule_made_on_the_page_tests_and_fires_to_a_local_webhook(
    browser, dashboard, alerts_db, receiver
):
    """The rule is made on the page; its test reaches the webhook, and once a failed task of
    the team comes in and the dashboard syncs, the dashboard's own check fires it there."""
    context, page = _open(browser, dashboard, "carol@example.com", "", "Overview")
    try:
        _expand(page, "Alert rules")
        _type(page, "alert_new_name", "red page-made failures")
        _pick(page, "Kind", "failure_rate")
        _type(page, "alert_new_threshold", "30")
        assert _options_of(page, "Scope") == ["team", "user"]  # only what they may set
        page.keyboard.press("Escape")
        _pick(page, "Scope", "team")
        assert _options_of(page, "Scope value") == ["red"]
        page.keyboard.press("Escape")
        _pick(page, "Scope value", "red")
        _type(page, "alert_new_hook", receiver.url)
        page.get_by_role("button", name="Add rule").click()
        # red failures, alice's own rule and the new one
        page.locator(".st-key-alert_rules_csv button", has_text="(3 rows)").wait_for()
        _settle(page)
        with psycopg.connect(alerts_db, row_factory=dict_row) as conn:
            rule = conn.execute(
                "SELECT id, threshold, scope_kind, scope_value FROM ai_alert_rules WHERE name = %s",
                ("red page-made failures",),
            ).fetchone()
        assert (rule["scope_kind"], rule["scope_value"]) == ("team", "red")
        assert rule["threshold"] == Decimal("0.3")
        _pick(page, "Rule", f"{rule['id']}: red page-made failures")
        page.get_by_role("button", name="Send a test").click()
        page.get_by_text("test delivered").wait_for()
        assert [b["rule"] for b in receiver.bodies] == ["red page-made failures"]
        assert receiver.bodies[0]["scope"] == "team=red"
        _fail_a_task_of(alerts_db, "alice")
        page.get_by_role("button", name="Sync now").click()  # the sync runs the rules
        fired = _wait_for(receiver, "red page-made failures", "firing")
        assert fired["kind"] == "failure_rate" and fired["scope"] == "team=red"
        assert "30%" in fired["text"], fired["text"]
    finally:
        context.close()
    assert _audit_actors(alerts_db, "red page-made failures") == ["carol"]


def test_an_admin_sees_every_rule_its_history_and_the_audit(browser, dashboard):
    context, page = _open(browser, dashboard, "root@example.com", "", "Overview")
    try:
        _expand(page, "Alert rules")
        assert set(SEEDED) <= _names(_csv_of(page, "alert_rules"))
        _expand(page, "Alert history")
        assert set(SEEDED) <= _names(_csv_of(page, "alert_history"))
    finally:
        context.close()
    context, page = _open(browser, dashboard, "root@example.com", "access", "Access")
    try:
        page.get_by_role("tab", name="Audit log").click()
        audit = _csv_of(page, "access_audit")
        added = _names([r for r in audit if "alert_rule_added" in r.values()])
        assert set(SEEDED) <= added, audit
    finally:
        context.close()


def test_a_manager_sees_only_their_teams_rules_and_no_audit(browser, dashboard):
    context, page = _open(browser, dashboard, "carol@example.com", "", "Overview")
    try:
        _expand(page, "Alert rules")
        rules = _names(_csv_of(page, "alert_rules"))
        assert "red failures" in rules
        assert not rules & {"blue failures", "company failures"}
        _expand(page, "Alert history")
        history = _names(_csv_of(page, "alert_history"))
        assert "red failures" in history
        assert not history & {"blue failures", "company failures"}
    finally:
        context.close()
    _no_audit_for(browser, dashboard, "carol@example.com")


def test_a_member_reads_only_the_rules_of_their_own_runs_and_no_audit(browser, dashboard):
    context, page = _open(browser, dashboard, "alice@example.com", "", "Overview")
    try:
        page.get_by_role("heading", name="Alerts", exact=True).wait_for()
        _expand(page, "Alert rules")
        assert _names(_csv_of(page, "alert_rules")) >= {MEMBER_RULE}
        _expand(page, "Alert history")
        assert MEMBER_RULE in _names(_csv_of(page, "alert_history"))
        page.get_by_text("Alert rules are set by your team's manager or an admin").wait_for()
        assert page.get_by_role("button", name="Add rule").count() == 0
        text = page.locator('[data-testid="stMain"]').inner_text()
        assert not any(rule in text for rule in SEEDED), text
    finally:
        context.close()
    _no_audit_for(browser, dashboard, "alice@example.com")


def test_a_member_with_no_rule_is_told_who_sets_them(browser, dashboard):
    context, page = _open(browser, dashboard, "dave@example.com", "", "Overview")
    try:
        page.get_by_text("No alert rule watches your own runs yet").wait_for()
        text = page.locator('[data-testid="stMain"]').inner_text()
        assert not any(rule in text for rule in [*SEEDED, MEMBER_RULE]), text
        assert page.get_by_role("button", name="Add rule").count() == 0
    finally:
        context.close()
