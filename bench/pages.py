"""Benchmark: every dashboard page in headless Chromium over a database of N tasks (issue 16).

    python bench/pages.py [--tasks 10000000] [--days 90] [--dir PATH] [--reuse] [--json F]

1. Prepares an embedded Postgres with N demo tasks (bench/queries.py's `prepare`: fresh
   unless --reuse) and builds the analytics mirror in a child process, so the dashboard
   starts on a synced mirror as a long-running server would.
2. Serves the dashboard (`python -m streamlit run dashboard/app.py`) on a free port.
3. Opens each page in a fresh Chromium tab: "cold" is the first visit after the server
   started (no cached rollups), "warm" the median of two more visits. A page counts as
   settled when Streamlit's script has finished, the page title is drawn, every plotly
   chart has drawn its SVG and no skeleton or spinner is left.
   The baseline, measured first in the same run: bench/baseline_page.py (a Streamlit page
   with nothing to compute) served and opened the same way.
4. Prints a table (cold and warm seconds per page, warm against the baseline) and the peak
   RSS (VmHWM) of the dashboard process tree. The Chromium and Postgres processes are not
   counted.

Needs Debian's /usr/bin/chromium and the `playwright` Python package (the test extra).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench_support import bench_queries

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BASELINE = "Baseline"  # bench/baseline_page.py: a Streamlit page with nothing to compute
PAGES = {
    "": "Overview",
    "cost": "Cost",
    "performance": "Performance",
    "runs": "Runs",
    "task": "Task detail",
    "export": "Usage export",
}
SETTLED_JS = """(title) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const heading = Array.from(document.querySelectorAll('h1')).some(
      h => h.textContent.trim() === title);
  if (!heading) return false;
  if (document.querySelector('[data-testid="stSkeleton"], [data-testid="stSpinner"]'))
    return false;
  for (const plot of document.querySelectorAll('.js-plotly-plot'))
    if (!plot.querySelector('.main-svg')) return false;
  return true;
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(base: str, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the dashboard exited before it answered")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("the dashboard did not come up")


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


def _serve(app: Path, env: dict, log) -> tuple[subprocess.Popen, str]:
    """`streamlit run app` on a free port; the process and its base URL."""
    port = _free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(app)]
    command += ["--server.port", str(port), "--server.address", "127.0.0.1"]
    command += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return process, f"http://127.0.0.1:{port}"


def _visit(browser, base: str, path: str, title: str) -> float:
    """Seconds from navigation to a settled page, in a fresh tab."""
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    page = context.new_page()
    try:
        started = time.perf_counter()
        page.goto(f"{base}/{path}", timeout=600_000)
        page.wait_for_function(SETTLED_JS, arg=title, timeout=600_000, polling=50)
        return time.perf_counter() - started
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--dir", type=Path, default=None, help="data folder")
    parser.add_argument("--reuse", action="store_true", help="keep existing data in --dir")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    bench = bench_queries()
    folder = args.dir or Path(tempfile.gettempdir()) / f"ai-runs-bench-{args.tasks}"
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
    server, base = _serve(ROOT / "dashboard" / "app.py", env, log)
    baseline_log = (home / "baseline.log").open("w")
    baseline_server, baseline_base = _serve(ROOT / "bench" / "baseline_page.py", env, baseline_log)
    results: dict[str, dict[str, float]] = {}
    try:
        _wait_healthy(base, server)
        _wait_healthy(baseline_base, baseline_server)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
            )
            targets = [(baseline_base, "", BASELINE)] + [(base, p, t) for p, t in PAGES.items()]
            for where, path, title in targets:
                cold = _visit(browser, where, path, title)
                warm = statistics.median(_visit(browser, where, path, title) for _ in range(2))
                results[title] = {"cold_s": round(cold, 2), "warm_s": round(warm, 2)}
                print(f"{title:<14} cold {cold:6.2f} s   warm {warm:6.2f} s", flush=True)
            browser.close()
        peak = _peak_rss_mb(server.pid)
    finally:
        for process, output in ((server, log), (baseline_server, baseline_log)):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
            output.close()
    floor = results[BASELINE]["warm_s"]
    print(f"\n{args.tasks:,} tasks; dashboard peak RSS {peak:,.0f} MB; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    print("| page | cold (s) | warm (s) | warm / baseline |\n|---|---|---|---|")
    for title, row in results.items():
        print(f"| {title} | {row['cold_s']:.2f} | {row['warm_s']:.2f} | "
              f"{row['warm_s'] / floor:.1f}x |")  # fmt: skip
    if args.json:
        payload = {"tasks": args.tasks, "pages": results, "peak_rss_mb": round(peak)}
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
