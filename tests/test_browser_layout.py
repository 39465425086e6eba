"""Every page readable at 900 px and 1,400 px wide in a real headless Chromium (README,
"Dashboard layout"): the document never scrolls sideways, no visible element reaches
past the right edge of the window unless a scrolling box (a table) holds it, no button,
tab or label is cut short, a table beside something else shows all its columns, a table
that chose its columns for a narrow screen ("All columns" off) shows them all, and no
chart's legend covers its title. Every page of the navigation is checked (the admin's
included), with every expander open, plus an open run and a task's detail. The session's
demo dashboard (the one test_browser.py reads) and the run's one browser.
"""

from __future__ import annotations

import psycopg
import pytest
import test_browser
from test_browser import PAGES, _open, _settle

server = test_browser.server  # the session's demo dashboard (and browser: tests/conftest.py)

pytestmark = pytest.mark.browser
WIDTHS = (900, 1400)
ADMIN_PAGES = {"access": "Access"}

# The elements of the main area that reach past the viewport's right edge, unless an
# ancestor that scrolls or clips sideways (a table's scroller) ends inside the viewport;
# and the buttons, tabs and labels whose text is cut short (its text wider than its box).
_OVERFLOWS = """
() => {
  const width = document.documentElement.clientWidth;
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const describe = (el) => {
    const id = el.getAttribute('data-testid') || el.tagName.toLowerCase();
    return id + ': ' + (el.innerText || el.getAttribute('aria-label') || '').slice(0, 60);
  };
  const clippedInside = (el) => {
    for (let up = el.parentElement; up && up !== main; up = up.parentElement) {
      const style = getComputedStyle(up);
      if (style.overflowX !== 'visible') {
        return up.getBoundingClientRect().right <= width + 1;
      }
    }
    return false;
  };
  const beyond = [];
  for (const el of main.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    if (getComputedStyle(el).visibility === 'hidden') continue;
    if (box.right > width + 1 && !clippedInside(el)) beyond.push(describe(el));
  }
  const cut = [];
  const labels = main.querySelectorAll(
    'button p, [role="tab"] p, [data-testid="stWidgetLabel"] p, [data-testid="stMetricValue"] div'
  );
  for (const el of labels) {
    if (el.getBoundingClientRect().width === 0) continue;
    if (el.scrollWidth > el.clientWidth + 1) cut.push(describe(el));
  }
  // A table beside something else (in a column narrower than the page) shows all its
  // columns; a full-width table may scroll sideways inside its own box.
  const tables = [];
  const pageWidth = main.querySelector('[data-testid="stMainBlockContainer"]') || main;
  const full = pageWidth.getBoundingClientRect().width;
  for (const grid of main.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')) {
    const column = grid.closest('[data-testid="stColumn"]');
    const beside = column && column.getBoundingClientRect().width < 0.9 * full;
    if (beside && grid.scrollWidth > grid.clientWidth + 1) {
      tables.push('table of ' + grid.scrollWidth + ' px in ' + grid.clientWidth + ' px');
    }
  }
  // A table that chose its columns for a narrow screen (ui.table's `narrow`, its "All
  // columns" toggle off) shows every one of them without scrolling sideways.
  for (const toggle of main.querySelectorAll('[class*="_all_columns"]')) {
    const key = [...toggle.classList].find((c) => c.endsWith('_all_columns'));
    const input = toggle.querySelector('input');
    if (!key || (input && input.checked)) continue;
    const name = key.slice('st-key-'.length, -'_all_columns'.length);
    const grid = main.querySelector('.st-key-' + name + ' .dvn-scroller');
    if (grid && grid.scrollWidth > grid.clientWidth + 1) {
      const sizes = grid.scrollWidth + ' px in ' + grid.clientWidth + ' px';
      tables.push(name + ': narrow table of ' + sizes);
    }
  }
  // A chart's legend never covers its title.
  const covered = [];
  for (const plot of main.querySelectorAll('.js-plotly-plot')) {
    const title = plot.querySelector('.gtitle');
    const legend = plot.querySelector('.legend');
    if (!title || !legend) continue;
    const a = title.getBoundingClientRect(), b = legend.getBoundingClientRect();
    const overlap = a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    if (overlap) covered.push(title.textContent.slice(0, 60));
  }
  return {
    tables: tables.slice(0, 10), covered: covered,
    scroll: document.documentElement.scrollWidth, client: width,
    beyond: beyond.slice(0, 10), cut: cut.slice(0, 10),
  };
}
"""


def _records(url: str) -> dict[str, str]:
    """A run with messages and tasks, and its most expensive task: pages that open one."""
    with psycopg.connect(url) as conn:
        run_id, task_id = conn.execute(
            "SELECT r.id, t.task_id FROM ai_runs r JOIN ai_tasks t ON t.run_id = r.id"
            " WHERE r.message_count >= 2 ORDER BY t.cost DESC NULLS LAST LIMIT 1"
        ).fetchone()
    return {f"runs?run_id={run_id}": "Runs", f"task?task_id={task_id}": "Task detail"}


def _open_expanders(page) -> None:
    """Open every closed expander of the page: what they hold must fit too."""
    closed = page.locator('[data-testid="stExpander"] details:not([open]) > summary')
    for _ in range(20):  # one at a time: an opened one leaves the selector's matches
        if closed.count() == 0:
            break
        closed.first.click()
        page.wait_for_timeout(200)
    _settle(page)


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_is_cut_off(server, browser, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(60_000)
    problems = {}
    try:
        for path, title in {**PAGES, **ADMIN_PAGES, **_records(server.database_url)}.items():
            _open(page, server.base, path, title, timeout=240_000)  # loaded machine
            _open_expanders(page)
            page.wait_for_timeout(500)  # charts and tables size themselves after the run
            found = page.evaluate(_OVERFLOWS)
            assert page.locator('[data-testid="stException"]').count() == 0, path
            if (
                found["scroll"] > found["client"]
                or found["beyond"]
                or found["cut"]
                or found["tables"]
                or found["covered"]
            ):
                problems[path or "overview"] = found
    finally:
        context.close()
    assert not problems, problems
