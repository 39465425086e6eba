"""Benchmark: what tracking adds to an LLM call's latency (issue 9).

    python bench/tracking.py [--calls 2000] [--dir PATH]

Starts a fresh embedded Postgres in PATH (default a new temporary folder) and the local
provider server of the tests (tests/provider_server.py, 127.0.0.1), then makes the same
OpenAI SDK calls through an untracked client and through `ingest.track(client, tracker)`,
interleaved call by call so both see the same machine load:

- chat.completions.create, not streamed (JSON answer with cached usage);
- chat.completions.create, streamed (SSE, 4 text chunks and a usage chunk), read to the end.

Then the same again in-process, through an httpx.MockTransport that answers with the bytes
the server sent (no socket, no server thread): the difference is then the tracking work
alone, with much less noise from a loaded machine.

Latency is per call, from just before the SDK call to its return (streamed: to the end of
the stream), in milliseconds. Prints p50 and p99 of both and their differences (tracked
minus untracked). The tracked tasks are written by the background writer; the bench then
waits for `tracker.flush()` and checks every task is in the database. Run on demand, not in
the tests; the machine is shared, so repeat for stable numbers.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from provider_server import ProviderServer  # noqa: E402

import ingest  # noqa: E402
from ingest import Tracker  # noqa: E402
from ingest.store import database, embedded  # noqa: E402

MESSAGES = [{"role": "user", "content": "Explain RLS"}]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def plain_call(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


def streamed_call(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    for _ in stream:
        pass


def measure(calls: int, untracked: openai.OpenAI, tracked, fn) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"untracked": [], "tracked": []}
    for _ in range(20):  # warm-up: connections, first pricing call, JIT of regexes
        fn(untracked)
        fn(tracked)
    for i in range(calls):
        order = [("untracked", untracked), ("tracked", tracked)]
        for label, client in order if i % 2 else order[::-1]:
            start = time.perf_counter()
            fn(client)
            times[label].append((time.perf_counter() - start) * 1000)
    return times


def recorded_transport(base: str) -> httpx.MockTransport:
    """A transport answering like the server did (its JSON and SSE bodies, recorded once)."""
    json_body = httpx.post(f"{base}/chat/completions", json={"model": "gpt-4o"}).content
    sse_body = httpx.post(
        f"{base}/chat/completions",
        json={"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True}},
    ).content

    def answer(request: httpx.Request) -> httpx.Response:
        if b'"stream":true' in request.content.replace(b" ", b""):
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=sse_body
            )
        return httpx.Response(200, headers={"content-type": "application/json"}, content=json_body)

    return httpx.MockTransport(answer)


def report(name: str, times: dict[str, list[float]]) -> None:
    u50, u99 = percentile(times["untracked"], 0.5), percentile(times["untracked"], 0.99)
    k50, k99 = percentile(times["tracked"], 0.5), percentile(times["tracked"], 0.99)
    print(
        f"{name:<34}{u50:>8.3f} / {u99:<8.3f}{k50:>8.3f} / {k99:<8.3f}"
        f"{k50 - u50:>8.3f} / {k99 - u99:<8.3f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench-tracking-"))
    pgdata = folder / "pgdata"
    url = embedded.ensure_database(embedded.start(pgdata), "bench_tracking")
    database.migrate(url)
    server = ProviderServer().start()
    base = f"{server.url}/cached/v1"
    try:
        with Tracker(url) as tracker:
            run_id = tracker.create_run("chat", name="bench")["id"]
            calls = (("chat, JSON", plain_call), ("chat, streamed (SSE)", streamed_call))
            print(f"{args.calls} calls each, interleaved; latency per call in ms")
            print(
                f"{'call':<34}{'untracked p50/p99':>19}{'tracked p50/p99':>19}{'added p50/p99':>18}"
            )
            transport = recorded_transport(base)
            for where, make in (
                ("server", lambda: None),
                ("in-process", lambda: httpx.Client(transport=transport)),
            ):
                untracked = openai.OpenAI(
                    api_key="x", base_url=base, max_retries=0, http_client=make()
                )
                tracked = ingest.track(
                    openai.OpenAI(api_key="x", base_url=base, max_retries=0, http_client=make()),
                    tracker,
                    run=run_id,
                )
                for name, fn in calls:
                    report(f"{name}, {where}", measure(args.calls, untracked, tracked, fn))
            start = time.perf_counter()
            tracker.flush()
            print(f"flush: {(time.perf_counter() - start) * 1000:.0f} ms")
            stored = tracker.get_run(run_id)["task_count"]
            expected = 4 * (args.calls + 20)
            print(f"tasks stored: {stored} (expected {expected})")
            return 0 if stored == expected else 1
    finally:
        server.shutdown()
        embedded.stop(pgdata)
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
