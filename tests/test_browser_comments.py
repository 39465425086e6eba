"""Shared notes in a real headless Chromium: two people who may read the same run (its owner
and someone it is shared with, signed in through a trusted proxy header) have its page
open; a third process comments through a Tracker, and the comment shows up on both pages
without a reload. One of them posts a comment with the page's form and the other sees it.
Needs Debian's /usr/bin/chromium (never `playwright install`)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_browser import _settle, served_dashboard

import ingest
from dashboard import auth
from ingest.store import database

pytestmark = pytest.mark.browser
HEADER = "X-Forwarded-Email"
COMMENT = textwrap.dedent(
    """
    import sys
    import ingest
    url, run_id = sys.argv[1], sys.argv[2]
    with ingest.Tracker(url, viewer="carol") as tracker:
        tracker.comment("Retry doubled the cost, @alice: <b>*not bold*</b>", run_id=run_id)
    """
)


@pytest.fixture(scope="module")
def notes_dashboard(pg_server: str, template_db: str, tmp_path_factory) -> Iterator[dict]:
    from dashboard_support import create_database, drop_database

    name = f"ai_runs_browser_comments_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    database._migrated.add(url)
    with ingest.Tracker(url) as owner:
        for uid, role in (("alice", "member"), ("bob", "member"), ("carol", "manager")):
            owner.upsert_user(uid, uid.title(), f"{uid}@example.com", "red", role)
        run = owner.create_run("chat", name="notes in the browser", user_id="alice")
        task = owner.create_task(run["id"], provider="openai", model="gpt-4o", user_id="alice")
        owner.complete_task(task["task_id"], "ok", tokens_input=3, tokens_output=1)
        owner.share_run(run["id"], "bob", "view")
    home = tmp_path_factory.mktemp("browser_comments_home")
    try:
        with served_dashboard(url, home, {auth.TRUSTED_HEADER_ENV: HEADER}) as base:
            yield {"base": base, "url": url, "run": str(run["id"])}
    finally:
        drop_database(pg_server, name)


def _open_run(browser, base: str, run_id: str, email: str):
    context = browser.new_context(
        viewport={"width": 1100, "height": 2400}, extra_http_headers={HEADER: email}
    )
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{base}/runs?run_id={run_id}")
    _settle(page)
    page.get_by_text("No comments yet.").first.wait_for()
    page.evaluate("() => { window.__same_page = true; }")
    return context, page


def test_a_comment_from_another_process_appears_for_two_viewers_without_a_reload(
    browser, notes_dashboard: dict, tmp_path: Path
) -> None:
    base, run_id = notes_dashboard["base"], notes_dashboard["run"]
    alice_context, alice = _open_run(browser, base, run_id, "alice@example.com")
    bob_context, bob = _open_run(browser, base, run_id, "bob@example.com")
    try:
        writer = subprocess.run(
            [sys.executable, "-c", COMMENT, notes_dashboard["url"], run_id],
            env={**os.environ, "AI_RUNS_HOME": str(tmp_path)},
            timeout=60,
        )
        assert writer.returncode == 0
        text = "Retry doubled the cost, @alice: <b>*not bold*</b>"
        for page in (alice, bob):
            # the poll is every 2 s: a few seconds, with room for a loaded machine
            page.get_by_text(text, exact=True).first.wait_for(timeout=15_000)
            assert page.evaluate("() => window.__same_page === true"), "page reloaded"
            assert page.locator("b", has_text="not bold").count() == 0  # text, not HTML
            assert page.get_by_text("carol ·", exact=False).count() >= 1

        # bob posts through the page's form; alice sees it without a reload
        bob.get_by_label("Add a comment").fill("Seen it, @carol")
        bob.get_by_role("button", name="Post comment").click()
        bob.get_by_text("Seen it, @carol", exact=True).first.wait_for(timeout=15_000)
        alice.get_by_text("Seen it, @carol", exact=True).first.wait_for(timeout=15_000)
        assert alice.evaluate("() => window.__same_page === true"), "page reloaded"
        for page in (alice, bob):
            assert page.locator('[data-testid="stException"]').count() == 0
    finally:
        alice_context.close()
        bob_context.close()
    with ingest.Tracker(notes_dashboard["url"]) as owner:
        stored = owner.comments(run_id=run_id)
    assert [(c["author"], c["mentions"]) for c in stored] == [
        ("carol", ["alice"]),
        ("bob", ["carol"]),
    ]
