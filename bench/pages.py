"""Benchmark: every dashboard page, and a widget change on the pages with charts, in headless
Chromium over a database of N tasks (issues 16 and 26).

    python bench/pages.py [--tasks 10000000] [--days 90] [--dir PATH] [--reuse] [--rounds 3]
                          [--json F] [--visit-timeout 180] [--compare-root DIR] [--returning]

A page or widget change that does not settle within --visit-timeout seconds is given up
and counted in the table's last column; the other visits are kept.

1. Prepares an embedded Postgres with N demo tasks (bench/queries.py's `prepare`: fresh
   unless --reuse) and builds the analytics mirror in a child process, so the dashboard
   starts on a synced mirror as a long-running server would.
2. Serves the dashboard (`python -m streamlit run dashboard/app.py`) on a free port, and the
   baseline, bench/baseline_page.py (a Streamlit page with a title, a line of text and one
   select box: nothing to compute), the same way.
3. Opens each page in a fresh Chromium tab, in rounds: each round visits the baseline and
   then every page, so a burst of load on the shared machine hits both alike. "cold" is
   the first round (no cached rollups), "warm" the median of the `--rounds` after it. A page
   counts as settled when Streamlit's script has finished, the page title is drawn, every
   chart has drawn its marks (Plotly's SVG traces, Vega's canvas) and no skeleton or
   spinner is left. "script" is when Streamlit's first script run of the page ended (the
   server's part); the rest is the browser drawing. Every tab opens in a new browser
   context: a first visit, every file fetched and compiled again. With --returning, each
   page's (and the baseline's) visits share one context, as a person who comes back: the
   browser keeps what the server marks cacheable (Streamlit's scripts are immutable), so
   "warm" is then warm in the browser too.
4. A widget change, in every warm round: on the settled page, one widget is changed (the
   baseline's select box; Overview's Users tab; Cost's group-by; Performance's percentile)
   and two times are taken from the change: "script", until Streamlit's script run that
   the change started has finished (the server's part, as the browser sees it), and
   "settled", until the page is settled again with the changed chart drawn.
5. Prints a table (cold and warm seconds per page, warm against the baseline, the server's
   CPU seconds (user + system of the served process tree) per warm page load and per widget
   change, Chromium's CPU seconds per warm page load (all its processes: the wall clock
   swings with the load, CPU seconds much less), the widget change against the
   baseline's, how many visits timed out) with the load average, and the peak RSS (VmHWM)
   of the dashboard process tree. The Chromium and Postgres processes are not counted in
   the RSS.
6. With --compare-root DIR (another checkout of this repository, e.g. main), that
   checkout's dashboard is served too, over the same database with its own copy of the
   mirror, and each round visits every page on both right after each other: a before and
   after in one run, under the same load. Its rows are marked "(DIR's name)".

Needs Debian's /usr/bin/chromium and the `playwright` Python package (the test extra).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from bench_support import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    bench_queries,
    demo_database_arguments,
    demo_folder,
    serve,
    wait_healthy,
)

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "Baseline"  # bench/baseline_page.py: a Streamlit page with nothing to compute
PAGES = {
    "": "Overview",
    "cost": "Cost",
    "performance": "Performance",
    "runs": "Runs",
    "task": "Task detail",
    "export": "Usage export",
}
# Per page: (widget kind, its label, the value to choose, a text the page then shows).
CHANGES = {
    BASELINE: ("select", "Choice", "second", "Chosen: second"),
    "Overview": ("tab", "Users", "Users", "Spend by user (top 10)"),
    "Cost": ("select", "Group by", "team", "Spend per day by team"),
    "Performance": ("select", "Percentile", "p99", "p99 time to first token per"),
}
# Kept from the start of the page: when Streamlit's script started and finished running.
# A script run shorter than one delivery of the observer's records (the empty page's) shows
# only as a record's old value: the state the attribute had before it became notRunning.
OBSERVE_JS = """
window.__scriptStates = [];
const keep = (state) => {
  const last = window.__scriptStates[window.__scriptStates.length - 1];
  if (state && (!last || last[1] !== state)) window.__scriptStates.push([performance.now(), state]);
};
new MutationObserver((records) => {
  for (const record of records)
    if (record.type === 'attributes') keep(record.oldValue);
  const app = document.querySelector('[data-testid="stApp"]');
  keep(app && app.getAttribute('data-test-script-state'));
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-test-script-state'],
                      attributeOldValue: true, childList: true});
"""
SETTLED_JS = """([title, text]) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const heading = Array.from(document.querySelectorAll('h1')).some(
      h => h.textContent.trim() === title);
  if (!heading) return false;
  if (document.querySelector('[data-testid="stSkeleton"], [data-testid="stSpinner"]'))
    return false;
  for (const plot of document.querySelectorAll('[data-testid="stPlotlyChart"]'))
    if (!plot.querySelector('.main-svg')) return false;
  for (const chart of document.querySelectorAll('[data-testid="stVegaLiteChart"]'))
    if (!chart.querySelector('canvas, svg.marks')) return false;
  const charts = document.querySelectorAll(
      '[data-testid="stPlotlyChart"], [data-testid="stVegaLiteChart"]');
  if (text && !Array.from(charts).some(c => c.textContent.includes(text)
                                       || (c.getAttribute('aria-label') || '').includes(text)))
    if (!document.querySelector('[data-testid="stMain"]').textContent.includes(text)
        || charts.length) return false;
  return performance.now();
}"""
SCRIPT_DONE_JS = """(since) => {
  const states = window.__scriptStates.filter(s => s[0] >= since);
  const started = states.findIndex(s => s[1] === 'running');
  if (started < 0) return false;
  const done = states.slice(started).find(s => s[1] === 'notRunning');
  return done ? done[0] : false;
}"""


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _cpu_s(pid: int) -> float:
    """User and system CPU seconds used so far by `pid` and its descendants."""
    ticks = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _browser_cpu_s() -> dict[int, float]:
    """CPU seconds used so far by each Chromium process this benchmark started, by pid."""
    used = {}
    for member in _tree(os.getpid()):
        try:
            if not Path(f"/proc/{member}/comm").read_text().startswith("chrom"):
                continue
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[member] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def _browser_cpu_since(before: dict[int, float]) -> float:
    """Chromium's CPU seconds since `before` (_browser_cpu_s), over the processes alive now:
    a closed tab's process that exits meanwhile takes its seconds with it."""
    return sum(now - before.get(pid, 0.0) for pid, now in _browser_cpu_s().items())


def _peak_rss_mb(pid: int) -> float:
    """The largest VmHWM (peak resident set) among `pid` and its descendants, in MB."""
    peak = 0
    for member in _tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak / 1024


def _serve_other(root: Path, env: dict, home: Path) -> tuple[subprocess.Popen, str, IO]:
    """The dashboard of checkout `root` (its own code first on the path), over the same
    database with its own copy of the mirror (one DuckDB file per process), synced by that
    checkout's code before it serves."""
    home.mkdir(exist_ok=True)
    mirror = home / "analytics.duckdb"
    shutil.copyfile(env["AI_RUNS_MIRROR"], mirror)
    other = {**env, "AI_RUNS_HOME": str(home), "AI_RUNS_MIRROR": str(mirror),
             "PYTHONPATH": str(root)}  # fmt: skip
    command = [sys.executable, "-m", "dashboard.command", "sync"]
    subprocess.run(command, env=other, cwd=root, check=True)
    log = (home / "dashboard.log").open("w")
    process, base = serve(root / "dashboard" / "app.py", other, log, cwd=root)
    return process, base, log


def _change(page, kind: str, label: str, value: str) -> None:
    """Change one widget the way a person does: a click on a tab, or pick in a select box."""
    if kind == "tab":
        page.get_by_role("tab", name=label).click()
        return
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=value, exact=True).click()


def _new_context(browser):
    """A browser context (its own cookies and HTTP cache) that observes the page's script
    runs and drawing (OBSERVE_JS)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    context.add_init_script(OBSERVE_JS)
    return context


def _visit(
    browser, base: str, path: str, title: str, change: bool, limit_s: float, cpu: Callable,
    context=None,
) -> dict:  # fmt: skip
    """Seconds from navigation to a settled page, in a fresh tab; with `change`, also from a
    widget change (CHANGES) to the end of the script run it started and to a settled page.
    `cpu()` is the server's CPU seconds so far: what the page and the change used is kept.
    A step that does not finish within `limit_s` ends the visit: it is kept as
    `{"timed_out": step}` with the times taken before it, and the benchmark goes on.
    The tab opens in `context` (a returning visitor's browser, its HTTP cache kept) when
    given, else in a context of its own (a first visit: every file fetched)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    limit_ms = limit_s * 1000
    own = context is None
    context = _new_context(browser) if own else context
    page = context.new_page()
    times: dict = {}
    step = "page"
    try:
        used, drawn = cpu(), _browser_cpu_s()
        page.goto(f"{base}/{path}", timeout=limit_ms)
        settled = page.wait_for_function(
            SETTLED_JS, arg=[title, None], timeout=limit_ms, polling="raf"
        ).json_value()
        times["page_s"] = settled / 1000
        times["page_cpu_s"] = cpu() - used
        times["page_browser_cpu_s"] = _browser_cpu_since(drawn)
        first_run = page.evaluate(SCRIPT_DONE_JS, 0)  # the page's first script run, server side
        if first_run:
            times["page_script_s"] = first_run / 1000
        if change and title in CHANGES:
            step = "change"
            kind, label, value, text = CHANGES[title]
            time.sleep(0.5)  # let the page go idle, as a person would look first
            used = cpu()
            since = page.evaluate("performance.now()")
            _change(page, kind, label, value)
            again = page.wait_for_function(
                SETTLED_JS, arg=[title, text], timeout=limit_ms, polling="raf"
            ).json_value()
            # A rerun as short as the empty page's often leaves no state on the page to
            # see (the attribute never shows "running"): then the change is timed to the
            # settled page only, its changed text drawn, instead of waiting in vain.
            done = page.evaluate(SCRIPT_DONE_JS, since)
            times["script_s"] = ((done or again) - since) / 1000
            times["change_s"] = (again - since) / 1000
            times["change_cpu_s"] = cpu() - used
    except PlaywrightTimeout:
        times["timed_out"] = step
        print(f"  {title}: the {step} did not settle within {limit_s:.0f}s", flush=True)
    finally:
        (context if own else page).close()
    return times


def _summary(runs: list[dict]) -> dict:
    """Cold (the first visit) and warm medians of one page's visits, in seconds; a figure
    is None when every visit it needs timed out, and `timeouts` counts the visits that did."""
    warm = runs[1:]
    summary = {
        "cold_s": round(runs[0]["page_s"], 2) if "page_s" in runs[0] else None,
        "timeouts": sum("timed_out" in r for r in runs),
    }
    for key in ("page_s", "page_script_s", "script_s", "change_s", "page_cpu_s", "change_cpu_s",
                "page_browser_cpu_s"):  # fmt: skip
        values = [r[key] for r in warm if key in r]
        name = {"page_s": "warm_s", "page_script_s": "warm_script_s",
                "page_cpu_s": "warm_cpu_s", "page_browser_cpu_s": "warm_browser_cpu_s"
                }.get(key, key)  # fmt: skip
        summary[name] = round(statistics.median(values), 2) if values else None
    return summary


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _ratio(value: float | None, baseline: float | None) -> str:
    return "—" if value is None or not baseline else f"{value / baseline:.1f}x"


def _targets(servers: dict[str, str], base_of_baseline: str) -> list[tuple[str, str, str, str]]:
    """(row name, base URL, path, page title) of one round: the baseline, then each page on
    every dashboard served (this checkout's first), so both sides of a comparison are
    opened right after each other."""
    targets = [(BASELINE, base_of_baseline, "", BASELINE)]
    for path, title in PAGES.items():
        for label, base in servers.items():
            targets.append((f"{title} ({label})" if label else title, base, path, title))
    return targets


def _print_table(results: dict[str, dict], titles: dict[str, str]) -> None:
    floor = results[BASELINE]
    print("| page | cold (s) | warm (s) | warm / baseline | warm: script (s) | "
          "warm: server CPU (s) | warm: browser CPU (s) | widget change: script (s) | "
          "settled (s) | settled / baseline | change: server CPU (s) | visits timed out |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for name, row in results.items():
        change = " — | — | — | — |"
        if titles[name] in CHANGES:
            change = (f" {_seconds(row['script_s'])} | {_seconds(row['change_s'])} | "
                      f"{_ratio(row['change_s'], floor['change_s'])} | "
                      f"{_seconds(row['change_cpu_s'])} |")  # fmt: skip
        warm = (f"{_seconds(row['warm_s'])} | {_ratio(row['warm_s'], floor['warm_s'])} | "
                f"{_seconds(row['warm_script_s'])} | {_seconds(row['warm_cpu_s'])} | "
                f"{_seconds(row['warm_browser_cpu_s'])}")  # fmt: skip
        print(f"| {name} | {_seconds(row['cold_s'])} | {warm} |{change} {row['timeouts']} |")


def _rounds(
    targets: list, rounds: int, limit_s: float, pids: dict[str, int], returning: bool = False
) -> tuple[dict[str, list], list[float]]:
    """Every target visited once per round (round 0 cold); the visits per row name and the
    load average after each round. `pids`: the server process of each base URL. With
    `returning`, each row's visits share one browser context, as one person's browser that
    keeps what the server marks cacheable (Streamlit's scripts: immutable for a year)."""
    from playwright.sync_api import sync_playwright

    visits: dict[str, list[dict[str, float]]] = {}
    load = [os.getloadavg()[0]]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        contexts = {name: _new_context(browser) for name, *_ in targets} if returning else {}
        for round_no in range(rounds + 1):
            for name, where, path, title in targets:
                times = _visit(browser, where, path, title, round_no > 0, limit_s,
                               lambda pid=pids[where]: _cpu_s(pid), contexts.get(name))  # fmt: skip
                visits.setdefault(name, []).append(times)
            load.append(os.getloadavg()[0])
            print(f"round {round_no} done, load {load[-1]:.1f}", flush=True)
        browser.close()
    return visits, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    demo_database_arguments(parser, tasks=10_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="warm visits per page")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--visit-timeout",
        type=float,
        default=180.0,
        help="seconds a page or a widget change may take before that visit is given up",
    )
    parser.add_argument(
        "--returning", action="store_true",
        help="each page's visits in one browser context (its HTTP cache kept), as a person "
        "who comes back; by default every visit is a new browser's first",
    )  # fmt: skip
    parser.add_argument(
        "--compare-root", type=Path,
        help="another checkout of this repository (e.g. main) whose dashboard is timed too",
    )  # fmt: skip
    args = parser.parse_args(argv)

    bench = bench_queries()
    folder = demo_folder(args)
    url = bench.prepare(folder, args.tasks, args.days, args.reuse)
    home = folder / "dashboard-home"
    home.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "AI_RUNS_HOME": str(home),
        "AI_RUNS_MIRROR": str(home / "analytics.duckdb"),
    }
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "dashboard.command", "sync"], env=env, cwd=ROOT, check=True
    )
    print(f"mirror synced in {time.perf_counter() - started:.1f}s", flush=True)

    log = (home / "dashboard.log").open("w")
    server, base = serve(ROOT / "dashboard" / "app.py", env, log)
    baseline_log = (home / "baseline.log").open("w")
    baseline_server, baseline_base = serve(ROOT / "bench" / "baseline_page.py", env, baseline_log)
    running = [(server, base, log), (baseline_server, baseline_base, baseline_log)]
    servers = {"": base}
    pids = {base: server.pid, baseline_base: baseline_server.pid}
    if args.compare_root:
        root = args.compare_root.resolve()
        other = _serve_other(root, env, folder / f"home-{root.name}")
        running.append(other)
        servers[root.name] = other[1]
        pids[other[1]] = other[0].pid
    try:
        for process, where, _ in running:
            wait_healthy(where, process)
        targets = _targets(servers, baseline_base)
        visits, load = _rounds(targets, args.rounds, args.visit_timeout, pids, args.returning)
        peak = _peak_rss_mb(server.pid)
    finally:
        for process, _, output in running:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
            output.close()
    results = {name: _summary(runs) for name, runs in visits.items()}
    print(f"\n{args.tasks:,} tasks; dashboard peak RSS {peak:,.0f} MB; load average "
          f"{min(load):.1f}-{max(load):.1f} on {os.cpu_count()} cores")  # fmt: skip
    _print_table(results, {name: title for name, _, _, title in targets})
    if args.json:
        payload = {"tasks": args.tasks, "pages": results, "visits": visits, "load": load,
                   "peak_rss_mb": round(peak)}  # fmt: skip
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
