"""A real headless Chromium rates a task (thumbs up, the rating form of the task page) and
sees the score on the Compare page: two variants side by side, the thumbs score's n and
mean in the downloaded scores table, the cost-versus-quality chart (docs/quality.md).
Real Postgres, real mirror, real Streamlit server."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from test_browser import _settle, served_dashboard

import ingest
from ingest.store import database

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def compared(pg_server: str, template_db: str, tmp_path_factory) -> Iterator[dict]:
    """Variants alpha and beta, two priced tasks each; the dashboard over them."""
    from dashboard_support import create_database, drop_database

    name = f"ai_runs_browser_compare_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    database._migrated.add(url)
    tasks = {}
    with ingest.Tracker(url) as owner:
        for variant, cost in (("alpha", "0.01"), ("beta", "0.002")):
            run = owner.create_run("chat", name=f"{variant} run", variant=variant)
            for _ in range(2):
                task = owner.create_task(run["id"], provider="openai", model="gpt-4o")
                owner.complete_task(task["task_id"], "ok", cost=Decimal(cost), total_time=900)
                tasks.setdefault(variant, []).append(str(task["task_id"]))
    home = tmp_path_factory.mktemp("compare_home")
    try:
        with served_dashboard(url, home) as base:
            yield {"base": base, "url": url, "tasks": tasks}
    finally:
        drop_database(pg_server, name)


def _scores_csv(page) -> pd.DataFrame:
    """The Compare page's scores table, as its Download CSV button gives it."""
    buttons = page.get_by_role("button", name=re.compile(r"Download CSV"))
    buttons.nth(1).wait_for()
    with page.expect_download() as download_info:
        buttons.nth(1).click()
    frame = pd.read_csv(io.StringIO(Path(download_info.value.path()).read_text()))
    frame.columns = [str(c).lower() for c in frame.columns]  # headers are labels: "Name"
    return frame


def test_a_thumbs_up_on_a_task_shows_on_the_compare_page(browser, compared) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 2000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        task_id = compared["tasks"]["alpha"][0]
        page.goto(f"{compared['base']}/task?task_id={task_id}")
        _settle(page)
        page.get_by_text("Thumbs up", exact=True).first.click()
        page.get_by_role("button", name="Save my rating").click()
        page.get_by_text("Rating saved").first.wait_for()
        _settle(page)

        page.goto(f"{compared['base']}/compare?compare=alpha&compare=beta")
        _settle(page)
        page.get_by_role("button", name="Sync now").click()  # the rating reaches the mirror
        _settle(page)
        page.get_by_role("heading", name="Scores").first.wait_for()
        page.wait_for_selector(".js-plotly-plot .main-svg")
        for _attempt in range(3):  # under load a rerun may still be drawing the table
            scores = _scores_csv(page)
            if "name" in scores.columns and (scores["name"] == "thumbs").any():
                break
            _settle(page)
        thumbs = scores[scores["name"] == "thumbs"].set_index("variant")
        assert list(thumbs.index) == ["alpha"]
        assert thumbs.loc["alpha", "n"] == 1 and thumbs.loc["alpha", "mean"] == 1.0
        assert page.locator(".js-plotly-plot").get_by_text("alpha").count() >= 1
        assert page.locator('[data-testid="stException"]').count() == 0
        assert not errors, errors
    finally:
        context.close()
