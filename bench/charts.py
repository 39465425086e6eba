"""Benchmark: the same dashboard charts drawn by Plotly, Vega-Lite, Streamlit's native charts
and ECharts, in headless Chromium, in one run (issue 26 item 1).

    python bench/charts.py [--rounds 5] [--days 30] [--groups 16] [--json F]

Serves bench/chart_page.py (one chart of one library per URL, on the same synthetic data
for every library: the shapes and columns the dashboard's rollups give its figures) and
opens each (chart, library) pair in a fresh tab, `--rounds` times, in round-robin order so
that a burst of load on the shared machine hits every pair alike. A page with no chart
(`chart=none`) is the baseline, opened the same way in every round.

Two times per visit, from navigation start:
- drawn: Streamlit's script finished, the title is there, and every chart has its marks in
  the page (Plotly's SVG traces, Vega's or ECharts' canvas);
- settled: the later of "drawn" and the end of the last long task (over 50 ms of main-thread
  work, from the browser's PerformanceObserver) seen within a second after it, so work a
  library does after its first marks (layout, a second pass) counts too.

Prints medians per pair and their ratio to the baseline, and the load average before and
after. Needs Debian's /usr/bin/chromium and the `playwright` Python package (test extra).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import time
from pathlib import Path

from bench_support import CHROMIUM, CHROMIUM_FLAGS, ROOT, serve, wait_healthy

CHARTS = ("spend_stack", "latency_lines", "top_bars", "pct_groups", "page")
LIBRARIES = ("plotly", "plotly_lean", "vegalite", "native", "echarts")
EXPECTED = {"page": 3, "none": 0}  # charts per page; one otherwise
# Long tasks of the page, kept from the start (buffered observers miss nothing).
OBSERVE_JS = """
window.__longTasks = [];
new PerformanceObserver(list => {
  for (const entry of list.getEntries())
    window.__longTasks.push(entry.startTime + entry.duration);
}).observe({type: 'longtask', buffered: true});
"""
DRAWN_JS = """(expected) => {
  if (document.querySelector('[data-testid="stException"]'))
    throw new Error(document.querySelector('[data-testid="stException"]').textContent);
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (!Array.from(document.querySelectorAll('h1')).some(
      h => h.textContent.trim() === 'Chart bench')) return false;
  if (document.querySelector('[data-testid="stSkeleton"], [data-testid="stSpinner"]'))
    return false;
  let drawn = 0;
  for (const el of document.querySelectorAll('[data-testid="stPlotlyChart"]'))
    if (el.querySelector('.main-svg .cartesianlayer .trace')) drawn++;
  for (const el of document.querySelectorAll('[data-testid="stVegaLiteChart"]'))
    if (el.querySelector('canvas, svg.marks')) drawn++;
  for (const el of document.querySelectorAll('[data-testid="stEChartsChart"]'))
    if (el.querySelector('canvas, svg')) drawn++;
  return drawn >= expected ? performance.now() : false;
}"""
QUIET_SECONDS = 1.0


def visit(browser, base: str, query: str, expected: int) -> tuple[float, float]:
    """(drawn, settled) seconds from navigation start, in a fresh tab."""
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    context.add_init_script(OBSERVE_JS)
    page = context.new_page()
    try:
        page.goto(f"{base}/?{query}", timeout=600_000)
        drawn_ms = page.wait_for_function(
            DRAWN_JS, arg=expected, timeout=180_000, polling="raf"
        ).json_value()
        time.sleep(QUIET_SECONDS)
        ends = page.evaluate("window.__longTasks")
        settled_ms = max(
            [drawn_ms, *[end for end in ends if end <= drawn_ms + 1000 * QUIET_SECONDS]]
        )
        return drawn_ms / 1000, settled_ms / 1000
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--days", type=int, default=30, help="periods per series")
    parser.add_argument("--groups", type=int, default=16, help="series (models)")
    parser.add_argument("--charts", default=",".join(CHARTS))
    parser.add_argument("--libraries", default=",".join(LIBRARIES))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    charts = args.charts.split(",")
    libraries = args.libraries.split(",")
    pairs = [("none", "baseline")] + [(c, lib) for c in charts for lib in libraries]

    load_before = os.getloadavg()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"chart-bench-{os.getpid()}.log"
    log = log_path.open("w")
    server, base = serve(ROOT / "bench" / "chart_page.py", dict(os.environ), log)
    times: dict[tuple[str, str], list[tuple[float, float]]] = {pair: [] for pair in pairs}
    try:
        wait_healthy(base, server)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
            )
            # One unmeasured visit per pair: the server's data cache and Python imports.
            for chart, lib in pairs:
                query = f"chart={chart}&lib={lib}&days={args.days}&groups={args.groups}"
                visit(browser, base, query, EXPECTED.get(chart, 1))
            for round_no in range(args.rounds):
                for chart, lib in pairs:
                    query = f"chart={chart}&lib={lib}&days={args.days}&groups={args.groups}"
                    times[(chart, lib)].append(visit(browser, base, query, EXPECTED.get(chart, 1)))
                print(f"round {round_no + 1} done, load {os.getloadavg()[0]:.1f}", flush=True)
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    load_after = os.getloadavg()

    medians = {
        pair: (statistics.median(d for d, _ in runs), statistics.median(s for _, s in runs))
        for pair, runs in times.items()
    }
    floor = medians[("none", "baseline")][1]
    print(
        f"\n{args.days} periods x {args.groups} groups, {args.rounds} rounds; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after, on {os.cpu_count()} cores"
    )
    print(
        "| chart | library | drawn (s) | settled (s) | settled / baseline |\n|---|---|---|---|---|"
    )
    for (chart, lib), (drawn, settled) in medians.items():
        print(f"| {chart} | {lib} | {drawn:.2f} | {settled:.2f} | {settled / floor:.2f}x |")
    if args.json:
        payload = {
            "days": args.days,
            "groups": args.groups,
            "rounds": args.rounds,
            "load": [round(load_before[0], 1), round(load_after[0], 1)],
            "results": [
                {"chart": c, "library": lib, "drawn_s": round(d, 3), "settled_s": round(s, 3),
                 "runs": times[(c, lib)]}
                for (c, lib), (d, s) in medians.items()
            ],
        }  # fmt: skip
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
