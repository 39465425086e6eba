"""A live run and its transcript in a real headless Chromium: two viewers watch the same run
while a third process streams into it, and both see the reply grow without a reload; at
900 px no chat message is cut off. `ai-runs dashboard` serves a small database; needs
Debian's /usr/bin/chromium (never `playwright install`)."""

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

pytestmark = pytest.mark.browser

LONG_LINE = "An unbroken line of words that is longer than a narrow screen is wide. " * 12
STREAM = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import ingest
    url, task_id, go_on = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    with ingest.Tracker(url, debounce_seconds=0) as tracker:
        text = "Row"
        for word in (" level", " security", " is", " enforced", " by", " Postgres."):
            time.sleep(0.6)
            text += word
            tracker.update_task(task_id, text, tokens_output=len(text.split()))
        deadline = time.monotonic() + 90  # stay streaming until both viewers saw it all
        while not go_on.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        tracker.complete_task(task_id, text, tokens_input=5, tokens_output=7)
    """
)


@pytest.fixture(scope="module")
def live_dashboard(pg_server: str, template_db: str, tmp_path_factory) -> Iterator[dict]:
    from dashboard_support import create_database, drop_database

    name = f"ai_runs_browser_live_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    with ingest.Tracker(url, debounce_seconds=0) as tracker:
        messages = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": LONG_LINE},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"q": "' + "x" * 300 + '"}'},
                    }
                ],
            },
        ]
        run = tracker.create_run("chat", name="live in the browser", messages=messages)
        task = tracker.create_task(run["id"], provider="openai", model="gpt-4o")
        tracker.update_task(task["task_id"], "Row", tokens_output=1)
    home = tmp_path_factory.mktemp("browser_live_home")
    try:
        with served_dashboard(url, home) as base:
            yield {"base": base, "url": url, "run": str(run["id"]), "task": str(task["task_id"])}
    finally:
        drop_database(pg_server, name)


CUT_JS = """() => {
  const out = [];
  for (const m of document.querySelectorAll('[data-testid="stChatMessage"]')) {
    const box = m.getBoundingClientRect();
    if (box.right > window.innerWidth + 1) out.push('message beyond the window');
    for (const el of m.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      const scrolls = ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
      if (r.width && r.right > box.right + 1 && !el.closest('pre, code'))
        out.push(`${el.tagName} ${(el.textContent || '').slice(0, 30)}`);
      if (!scrolls && el.scrollWidth > el.clientWidth + 1 && el.tagName !== 'svg' && el.clientWidth)
        out.push(`${el.tagName} clipped ${(el.textContent || '').slice(0, 30)}`);
    }
  }
  return out;
}"""


def test_two_viewers_see_a_streaming_reply_grow_without_a_reload(
    live_dashboard: dict, browser, tmp_path: Path
) -> None:
    contexts = []
    pages = []
    try:
        for _ in range(2):
            contexts.append(browser.new_context(viewport={"width": 900, "height": 1400}))
            context = contexts[-1]
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{live_dashboard['base']}/runs?run_id={live_dashboard['run']}")
            _settle(page)
            page.get_by_text("Being generated now", exact=False).first.wait_for()
            page.evaluate("() => { window.__same_page = true; }")
            pages.append(page)
        cut = pages[0].evaluate(CUT_JS)
        assert cut == [], f"cut off at 900 px: {cut}"
        pages[0].screenshot(path=str(tmp_path / "live_900.png"), full_page=True)

        go_on = tmp_path / "both_viewers_saw_it"
        writer = subprocess.Popen(
            [
                sys.executable,
                "-c",
                STREAM,
                live_dashboard["url"],
                live_dashboard["task"],
                str(go_on),
            ],
            env={**os.environ, "AI_RUNS_HOME": str(tmp_path)},
        )
        try:
            for page in pages:
                page.get_by_text("Row level security", exact=False).first.wait_for(timeout=30_000)
            for page in pages:
                page.get_by_text("enforced by Postgres.", exact=False).first.wait_for(
                    timeout=30_000
                )
                assert page.evaluate("() => window.__same_page === true"), "page reloaded"
        finally:
            go_on.touch()
            assert writer.wait(timeout=60) == 0
        for page in pages:  # finished: the live part goes, the page shows the run
            page.get_by_text("Being generated now").wait_for(state="detached", timeout=30_000)
            assert page.locator('[data-testid="stException"]').count() == 0
    finally:
        for context in contexts:
            context.close()
