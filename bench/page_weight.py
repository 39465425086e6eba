"""Benchmark: what one kind of element costs a Streamlit page's first load in the browser
(issue 26): bench/weight_page.py (the empty page of bench/pages.py plus one element) with
each kind, opened in a fresh headless Chromium tab as bench/pages.py opens a page.

    python bench/page_weight.py [--rounds 3]

Prints, per kind, the bytes the browser fetched over HTTP (Streamlit loads an element's
JavaScript when a page first shows one), the renderer's main-thread task seconds (Chrome's
TaskDuration) and the seconds to a settled page, medians of the rounds after a first one,
and each against the empty page. A fresh tab has no HTTP cache: this is the first visit of
a browser, which bench/pages.py measures for every visit.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import tempfile
from pathlib import Path

from bench_support import CHROMIUM, CHROMIUM_FLAGS, serve, wait_healthy
from pages import OBSERVE_JS, SETTLED_JS

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("none", "markdown", "metrics", "table", "vega", "dataframe")


def _visit(browser, base: str, kind: str) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    context.add_init_script(OBSERVE_JS)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    cdp.send("Network.enable")
    fetched = []
    cdp.on("Network.loadingFinished", lambda event: fetched.append(event["encodedDataLength"]))
    page.goto(f"{base}/?v={kind}")
    settled = page.wait_for_function(
        SETTLED_JS, arg=["Baseline", None], timeout=120_000, polling="raf"
    ).json_value()
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    context.close()
    seconds = metrics["TaskDuration"]
    return {"mb": sum(fetched) / 1e6, "task_s": seconds, "settled_s": settled / 1000}


def _rounds(base: str, rounds: int) -> tuple[dict[str, list[dict[str, float]]], list[float]]:
    """Every kind visited once per round, the first round a warm-up; the load after each."""
    from playwright.sync_api import sync_playwright

    visits: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
    load = [os.getloadavg()[0]]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        for _ in range(rounds + 1):
            for kind in KINDS:
                visits[kind].append(_visit(browser, base, kind))
            load.append(os.getloadavg()[0])
        browser.close()
    return visits, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryFile("w") as log:
        server, base = serve(ROOT / "bench" / "weight_page.py", dict(os.environ), log)
        try:
            wait_healthy(base, server)
            visits, load = _rounds(base, args.rounds)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    median = {k: {m: statistics.median(v[m] for v in runs[1:]) for m in runs[0]}
              for k, runs in visits.items()}  # fmt: skip
    empty = median["none"]
    print(f"load average {min(load):.1f}-{max(load):.1f} on {os.cpu_count()} cores")
    print("| element | fetched (MB) | main-thread tasks (s) | settled (s) | settled / empty |")
    print("|---|---|---|---|---|")
    for kind, row in median.items():
        print(f"| {kind} | {row['mb']:.2f} | {row['task_s']:.2f} | {row['settled_s']:.2f} | "
              f"{row['settled_s'] / empty['settled_s']:.2f}x |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
