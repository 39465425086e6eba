"""The dashboard in a real headless Chromium: `ai-runs dashboard --demo` serves it (the CLI
fills a fresh database with a small demo, syncs the mirror and starts `streamlit run`), and
Playwright opens every page, waits for the charts, takes screenshots, downloads a CSV,
follows a drill-down from Performance to a task, and opens a shared link with filters.

Needs Debian's /usr/bin/chromium (`apt-get install -y chromium`); never `playwright install`.
Screenshots go to $DASHBOARD_SCREENSHOTS when set; without it none is taken (.ci/run).
"""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEMO_TASKS = 2000
PAGES = {
    "": "Overview",
    "cost": "Cost",
    "performance": "Performance",
    "runs": "Runs",
    "task": "Task detail",
    "export": "Usage export",
}
CHART_PAGES = {"", "cost", "performance"}
# A chart has drawn: Plotly's SVG, or Vega-Lite's (the Overview, Cost and Performance:
# docs/design.md, "Pages").
CHART_DRAWN = '.js-plotly-plot .main-svg, [data-testid="stVegaLiteChart"] svg.marks'
VEGA_DRAWN = '[data-testid="stVegaLiteChart"] svg.marks'

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(base: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the dashboard exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"the dashboard did not come up:\n{log.read_text()[-3000:]}")


@contextmanager
def served_dashboard(
    url: str, home: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """`ai-runs dashboard` over database `url` with its home and mirror in `home`, on a
    free port; yields its base URL once healthy and stops its process group after."""
    port = _free_port()
    log = home / "dashboard.log"
    env = {**os.environ, "DATABASE_URL": url, "AI_RUNS_HOME": str(home),
           "AI_RUNS_MIRROR": str(home / "analytics.duckdb"), **(extra_env or {})}  # fmt: skip
    command = [sys.executable, "-m", "dashboard.command", "dashboard", "--port", str(port),
               "--address", "127.0.0.1"]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, process, log)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Server:
    base: str  # http://127.0.0.1:<port>
    database_url: str


def serve_the_demo(pg_server: str, template_db: str, tmp_path_factory) -> Iterator[Server]:
    """`ai-runs dashboard --demo` on a fresh database and a free port (the session's
    `demo_dashboard`, tests/conftest.py)."""
    from dashboard_support import create_database, drop_database

    name = f"ai_runs_browser_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    home = tmp_path_factory.mktemp("browser_home")
    port = _free_port()
    log = home / "dashboard.log"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "AI_RUNS_HOME": str(home),
        "AI_RUNS_MIRROR": str(home / "analytics.duckdb"),
    }
    command = [sys.executable, "-m", "dashboard.command", "dashboard", "--demo"]
    command += ["--demo-tasks", str(DEMO_TASKS), "--port", str(port), "--address", "127.0.0.1"]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process, log)
        output = log.read_text()
        assert "generating demo data" in output and "Syncing the analytics mirror" in output
        yield Server(base, url)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        drop_database(pg_server, name)


@pytest.fixture(scope="module")
def server(demo_dashboard: Server) -> Server:
    """The session's one demo dashboard: this module's and test_browser_layout's tests
    only read it, or add rows of their own that no other test counts."""
    return demo_dashboard


@pytest.fixture(scope="module")
def page(browser):
    """One tab for the whole module: Streamlit's scripts load once, as for a real user."""
    context = browser.new_context(viewport={"width": 1280, "height": 2000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture(scope="module")
def shots() -> Path | None:
    """The screenshots' folder, $DASHBOARD_SCREENSHOTS; None when unset."""
    folder = os.environ.get("DASHBOARD_SCREENSHOTS")
    if not folder:
        return None
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _screenshot(page, shots: Path | None, name: str) -> None:
    """A full-page screenshot `name`.png in `shots`, when a folder is set. No test reads
    one; a person does. Without a folder none is taken: each renders the whole page again
    in software, about 1 s, many of them on a loaded machine (docs/testing.md)."""
    if shots is not None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def _settle(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit finished running the script (and so drew the page). A first
    load in a new browser context may take minutes when the machine is loaded: the
    renderer can be busy for a minute after the script ends, so those pass a longer wait."""
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout
    )


def _open(page, base: str, path: str, title: str, timeout: float = 60_000) -> None:
    page.goto(f"{base}/{path}")
    _settle(page, timeout)
    page.get_by_role("heading", name=title, exact=True).first.wait_for()


def test_every_page_in_a_real_browser(server: Server, page, shots: Path | None) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    for path, title in PAGES.items():
        _open(page, server.base, path, title)
        if path == "cost":  # a manager sets the monthly budget: the forecast shows the line
            budget = page.get_by_label("Amount (USD)", exact=True)
            budget.fill("20")
            budget.press("Enter")
            _settle(page)
            page.get_by_role("button", name="Save budget").click()
            page.get_by_text("budget $20").first.wait_for()
            _settle(page)
        if path in CHART_PAGES:
            page.wait_for_selector(CHART_DRAWN, timeout=60_000)
            # Vega-Lite only, no Plotly loaded (Overview: spend over time and the open "top"
            # tab's bars; Cost and Performance: their first two charts, the others wait in
            # closed expanders).
            assert page.locator(VEGA_DRAWN).count() >= 2, path
            assert page.locator(".js-plotly-plot").count() == 0, path
        if path == "":  # a hidden tab runs when opened, and the URL keeps it
            page.get_by_role("tab", name="Teams").click()
            page.wait_for_url(re.compile(r"top=Teams"), timeout=60_000)
            _settle(page)
            page.get_by_text("Spend by team (top 10)").first.wait_for(timeout=60_000)
        assert page.locator('[data-testid="stException"]').count() == 0, path
        assert page.get_by_text("No runs or tasks in the database yet").count() == 0
        _screenshot(page, shots, path or "overview")
    assert not errors, errors


def test_run_view(server: Server, page, shots: Path | None) -> None:
    from ingest import Tracker

    with Tracker(url=server.database_url) as tracker:
        rows = tracker.list_runs(limit=100).rows
    run = max(rows, key=lambda r: (r["message_count"] >= 4, r["task_count"]))
    _open(page, server.base, f"runs?run_id={run['id']}", "Runs")
    page.get_by_role("heading", name=run["name"]).first.wait_for()
    assert page.locator('[data-testid="stChatMessage"]').count() == run["message_count"]
    page.get_by_role("tab", name=re.compile(r"^Tasks")).click()
    page.wait_for_selector(".js-plotly-plot .main-svg")
    page.get_by_role("tab", name="Conversation").click()
    assert page.locator('[data-testid="stException"]').count() == 0
    _screenshot(page, shots, "run_view")


def test_download_a_csv(server: Server, page, shots: Path | None) -> None:
    _open(page, server.base, "export", "Usage export")
    button = page.get_by_role("button", name=re.compile(r"Download CSV \(\d+ rows\)"))
    rows_shown = int(re.search(r"\((\d+) rows\)", button.first.inner_text()).group(1))
    with page.expect_download() as download_info:
        button.first.click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    text = Path(download.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == rows_shown > 0
    assert list(rows[0]) == [
        "Period start (UTC)",
        "Model",
        "Cost (USD)",
        "Tasks",
        "Total tokens",
    ]
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["Period start (UTC)"]) for row in rows)
    assert not any("e-" in row["Cost (USD)"].lower() for row in rows)


def test_drilldown_from_performance_to_a_task(server: Server, page, shots: Path | None) -> None:
    _open(page, server.base, "performance", "Performance")
    page.wait_for_selector(VEGA_DRAWN)
    # The headline names the model that got slower; its button lists that model's slow tasks.
    focus = page.get_by_role("button", name=re.compile(r"^Slowest tasks of .*, last 7 days"))
    if focus.count():
        model = re.search(r"Slowest tasks of (.*), last 7 days", focus.first.inner_text()).group(1)
        focus.first.click()
        _settle(page)
        heading = f"Tasks behind model = {model}, last 7 days"
        page.get_by_role("heading", name=heading).wait_for()
        _screenshot(page, shots, "performance_drilldown")
    link = page.locator('[data-testid="stPageLink"] a', has_text="Open task").first
    label = link.inner_text()
    task_prefix = re.search(r"Open task ([0-9a-f]{8})", label).group(1)
    link.click()
    page.wait_for_url(re.compile(r"/task\?.*task_id=" + task_prefix))
    _settle(page)
    page.get_by_role("heading", name="Task detail", exact=True).wait_for()
    page.get_by_text("Request payload").first.wait_for()
    page.get_by_text(task_prefix).first.wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    _screenshot(page, shots, "task_detail")


def _click_a_mark(page, chart_key: str, mark: str, param: str) -> tuple[str, str]:
    """Click the largest mark of kind `mark` ("rect" for bars, "symbol" for points) in the
    Vega-Lite chart with key `chart_key`, as a person does, and wait for the page to keep
    the selection in the URL (`param`); returns the (period, group) kept there, after
    checking that they are the ones the clicked mark names (its aria-label)."""
    # role-mark: the data's marks, not the legend's symbols.
    marks = page.locator(f".st-key-{chart_key} {VEGA_DRAWN} g.mark-{mark}.role-mark path")
    marks.first.wait_for()
    boxes = [(marks.nth(i).bounding_box(), i) for i in range(min(marks.count(), 400))]
    box, index = max((b for b in boxes if b[0]), key=lambda b: b[0]["width"] * b[0]["height"])
    label = marks.nth(index).get_attribute("aria-label") or ""
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url(re.compile(param + "="), timeout=60_000)
    _settle(page)
    pick = urlsplit(page.url).query.split(param + "=")[1].split("&")[0]
    period, group = urllib.parse.unquote_plus(pick).split("|")
    assert period in label and group in label, (label, pick)  # the mark clicked
    return period, group


def test_drilldown_from_a_cost_bar_in_the_browser(server: Server, page, shots: Path | None) -> None:
    """A click on a Vega-Lite bar of Cost's spend chart lists the tasks behind that bar:
    the day and model it names, kept in the URL."""
    _open(page, server.base, "cost", "Cost")
    page.get_by_text("Click a bar to list the most expensive tasks behind it.").wait_for()
    period, model = _click_a_mark(page, "cost_spend", "rect", "cost_pick")
    page.get_by_text(f"Most expensive tasks behind model = {model}, day of {period}").wait_for()
    page.get_by_text(re.compile(r"most expensive first\. Select a task")).wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    _screenshot(page, shots, "cost_drilldown")


def test_drilldown_from_a_performance_point_in_the_browser(
    server: Server, page, shots: Path | None
) -> None:
    """A click on a point of Performance's percentile trend (Vega-Lite) lists the tasks
    behind it: that day and model, slowest first."""
    _open(page, server.base, "performance", "Performance")
    period, model = _click_a_mark(page, "perf_trend", "symbol", "perf_pick")
    page.get_by_role("heading", name=f"Tasks behind model = {model}, day of {period}").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    _screenshot(page, shots, "performance_point_drilldown")


def _open_filters(page) -> None:
    """Open the sidebar's list filters, as a person does (they are drawn only when open)."""
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.locator('[data-testid="stExpander"] summary', has_text="List filters").click()
    sidebar.locator('[data-testid="stMultiSelect"]').first.wait_for()
    _settle(page)


def test_a_shared_link_opens_with_its_filters(server: Server, page, shots: Path | None) -> None:
    _open(page, server.base, "export?provider=openai&status=completed", "Usage export")
    sidebar = page.locator('[data-testid="stSidebar"]')
    # Closed, the panel names the filters that are set and draws no multiselect.
    sidebar.get_by_text("Provider: openai; Task status: completed").wait_for()
    assert sidebar.locator('[data-testid="stMultiSelect"]').count() == 0
    _open_filters(page)
    sidebar.get_by_text("openai", exact=True).first.wait_for()
    sidebar.get_by_text("completed", exact=True).first.wait_for()
    # Switching page keeps the filters in the URL.
    page.locator('[data-testid="stSidebarNav"] a', has_text="Runs").click()
    page.wait_for_url(re.compile(r"/runs\?.*provider=openai"))
    _settle(page)
    assert "status=completed" in page.url
    sidebar.get_by_text("Provider: openai; Task status: completed").wait_for()
    _screenshot(page, shots, "runs_filtered")


def test_a_filter_picked_in_the_panel_filters_the_page(server: Server, page) -> None:
    """Open the list filters, pick a provider: the URL and the page's numbers follow."""
    _open(page, server.base, "", "Overview")
    tasks = page.locator('[data-testid="stMetric"]', has_text="Tasks").first
    before = tasks.inner_text()
    _open_filters(page)
    page.get_by_role("combobox", name="Provider", exact=True).click()
    page.get_by_role("option", name="anthropic", exact=True).click()
    page.wait_for_url(re.compile(r"provider=anthropic"))
    _settle(page)
    page.wait_for_function(
        "([before]) => !Array.from(document.querySelectorAll('[data-testid=\"stMetric\"]'))"
        ".some(m => m.innerText === before)",
        arg=[before],
    )
    assert page.locator('[data-testid="stException"]').count() == 0


# Every metric card: its value must fit its box (no "$…" cut), at a laptop's 900 px and a
# desktop's 1,400 px. Returns the values that overflow, with their sizes.
OVERFLOW_JS = """() => {
  const out = [];
  for (const card of document.querySelectorAll('[data-testid="stMetric"]')) {
    const box = card.getBoundingClientRect();
    for (const el of card.querySelectorAll('[data-testid="stMetricValue"], '
                                          + '[data-testid="stMetricValue"] *')) {
      const r = el.getBoundingClientRect();
      const cut = el.scrollWidth > el.clientWidth + 1 || r.right > box.right + 1
                  || r.left < box.left - 1;
      if (cut) out.push(`${el.textContent} (${el.scrollWidth}>${el.clientWidth})`);
    }
  }
  return out;
}"""


@pytest.mark.parametrize("width", [900, 1400])
def test_no_metric_value_is_cut_off(
    server: Server, browser, shots: Path | None, width: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 1600})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        run = _a_run_id(server)
        paths = {**PAGES, f"runs?run_id={run}": "Runs"}
        for path, title in paths.items():
            _open(page, server.base, path, title)
            if path in CHART_PAGES:
                page.wait_for_selector(CHART_DRAWN)
            if path in ("", "cost"):
                assert _cards_drawn(page) >= 3
            cut = page.evaluate(OVERFLOW_JS)
            assert cut == [], f"{path or 'overview'} at {width} px: {cut}"
            name = (path or "overview").split("?")[0]
            _screenshot(page, shots, f"{name}_{width}")
        # The sidebar collapses, and the page then uses the whole width.
        sidebar = page.locator('[data-testid="stSidebar"]')
        before = sidebar.bounding_box()
        sidebar.hover()
        page.locator('[data-testid="stSidebarCollapseButton"] button').click()
        _wait_until(page, SIDEBAR_AWAY_JS)
        after = sidebar.bounding_box()
        assert before and before["width"] > 100
        assert after is None or after["x"] + after["width"] <= 20 or after["width"] < 20, after
    finally:
        context.close()


def _cards_drawn(page, deadline_s: float = 30) -> int:
    """The number of KPI cards once it holds still. The browser mounts them after the
    script state says the run has ended: a probe found none of the Overview's 7 when the
    state turned to notRunning, another 2 after its chart was drawn, and CI once counted 1."""
    deadline = time.monotonic() + deadline_s
    cards = page.locator('[data-testid="stMetric"]')
    before = -1
    while True:
        _settle(page)
        now = cards.count()
        if (now == before and now >= 3) or time.monotonic() > deadline:
            return now
        before = now
        page.wait_for_timeout(400)


# The sidebar is gone, narrower than 20 px or ends within the left 20 px: what the test
# then asserts of its bounding box, once its slide has ended.
SIDEBAR_AWAY_JS = """() => {
  const bar = document.querySelector('[data-testid="stSidebar"]');
  const box = bar && bar.getBoundingClientRect();
  return !box || box.width < 20 || box.height === 0 || box.right <= 20;
}"""


def _wait_until(page, predicate_js: str, timeout: float = 10_000) -> None:
    """Wait until `predicate_js` holds in the page, at most `timeout` ms; the caller then
    asserts what it waited for, so a wait that runs out only lets that assertion fail."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with suppress(PlaywrightTimeout):
        page.wait_for_function(predicate_js, timeout=timeout)


def _a_run_id(server: Server) -> str:
    from ingest import Tracker

    with Tracker(url=server.database_url) as tracker:
        return str(tracker.list_runs(limit=1).rows[0]["id"])


def test_urls_in_data_and_in_the_url_are_plain_text(
    server: Server, page, shots: Path | None
) -> None:
    """Issue 21: Streamlit's markdown (GFM) turned bare URLs, www. names and e-mail
    addresses in data into links, past the backslash escapes of dashboard.safe.md: in a
    run name, tags, provider and model, and in a run id echoed into the error box."""
    from ingest import Tracker

    evil = "evil.example"
    with Tracker(url=server.database_url) as tracker:
        run = tracker.create_run(
            "chat",
            name=f"see https://{evil}/a or www.{evil} or mail bob@{evil}",
            tags=[f"http://{evil}/tag", f"www.{evil}"],
            user_id=f"x@{evil}",
        )
        task = tracker.create_task(run["id"], provider=f"https://{evil}/p", model=f"www.{evil}")
        tracker.complete_task(task["task_id"], "ok", tokens_input=1, tokens_output=1)

    def links() -> list[str]:
        """Links whose target is the hostile host or an e-mail (not the page's own URL)."""
        hrefs = page.locator("a").evaluate_all("(nodes) => nodes.map((a) => a.href)")
        return [h for h in hrefs if urlsplit(h).hostname == evil or h.startswith("mailto:")
                or h.startswith(f"http://www.{evil}")]  # fmt: skip

    _open(page, server.base, f"runs?run_id={run['id']}", "Runs")
    page.get_by_text(f"https://{evil}/a", exact=False).first.wait_for()
    page.get_by_role("tab", name=re.compile(r"^Tasks")).click()
    _settle(page)
    assert links() == []
    _open(page, server.base, f"runs?run_id=https://{evil}/x", "Runs")
    page.get_by_text(f"https://{evil}/x", exact=False).first.wait_for()
    assert links() == []
    _screenshot(page, shots, "urls_as_text")
