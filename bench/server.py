"""Benchmark: the ingest server's batch endpoint vs the bulk path it calls, and OTLP
acknowledgement latency at a fixed span rate (issue 10).

    python bench/server.py [--tasks 20000] [--per-request 1000] [--clients 2]
                           [--spans-per-second 1000] [--seconds 10] [--dir PATH]

Uses DATABASE_URL when set, else a fresh embedded Postgres in PATH (default a new temporary
folder); each measurement gets a fresh migrated database. The server runs as its own
process (`ai-runs serve`, uvicorn), so client and server do not share a GIL.

- direct bulk: the same task rows (a run per 10 tasks) written with ingest.transfer.bulk.BulkWriter,
  --per-request rows per transaction: the baseline, in this process.
- batch endpoint: POST /v1/batch with --per-request tasks each, from --clients concurrent
  HTTP clients; tasks/s end to end (JSON encoding, HTTP, validation, pricing, COPY).
- OTLP: protobuf exports of 100 LLM spans sent every 100 ms (--spans-per-second in all) for
  --seconds; p50/p99/max time from send to the server's acknowledgement.
Prints the figures and the ratio batch / direct. Run on demand, never in the tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.server.keys import create_key  # noqa: E402
from ingest.store import database, embedded, validation  # noqa: E402
from ingest.transfer import bulk  # noqa: E402

START = datetime(2026, 11, 1, tzinfo=UTC)


def fresh_database(server: str, name: str) -> str:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = embedded.with_database(server, name)
    database.migrate(url)
    return url


def make_rows(tasks: int) -> tuple[list[dict], list[dict]]:
    runs, rows = [], []
    for i in range(tasks):
        if i % 10 == 0:
            runs.append({"id": str(uuid.uuid4()), "source_type": "chat", "name": f"run {i}",
                         "created_at": (START + timedelta(seconds=i)).isoformat()})  # fmt: skip
        rows.append({
            "run_id": runs[-1]["id"], "task_id": str(uuid.uuid4()), "provider": "openai",
            "model": "gpt-4o-mini", "status": "completed", "tokens_input": 800 + i % 400,
            "tokens_output": 200 + i % 100, "cost": "0.00024", "time_to_first_token": 400,
            "total_time": 2100, "response_text": "x" * 200,
            "created_at": (START + timedelta(seconds=i)).isoformat(),
        })  # fmt: skip
    return runs, rows


def chunks(runs: list[dict], rows: list[dict], size: int):
    by_run: dict[str, list[dict]] = {}
    for row in rows:
        by_run.setdefault(row["run_id"], []).append(row)
    for start in range(0, len(rows), size):
        part = rows[start : start + size]
        ids = {r["run_id"] for r in part}
        yield [r for r in runs if r["id"] in ids], part


def direct_bulk(url: str, runs: list[dict], rows: list[dict], size: int) -> float:
    started = time.perf_counter()
    with bulk.BulkWriter(url) as writer:
        for run_part, task_part in chunks(runs, rows, size):
            clean_runs = [validation.validate_run(r) for r in run_part]
            clean_tasks = [validation.validate_task(t) for t in task_part]
            batches = []
            for table, clean in (("ai_runs", clean_runs), ("ai_tasks", clean_tasks)):
                columns = tuple(c for c in bulk.ALL_COLUMNS[table] if c in clean[0])
                key, parent = bulk.KEY_COLUMN[table], bulk.PARENT_COLUMN[table]
                batches.append(bulk.Batch(
                    table, columns, [bulk.encode_row(columns, r) for r in clean],
                    [str(r[key]) for r in clean],
                    [str(r[parent]) if r.get(parent) else None for r in clean],
                ))  # fmt: skip
            writer.write(*batches)
    return time.perf_counter() - started


def start_server(url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url}
    process = subprocess.Popen(
        [sys.executable, "-m", "dashboard.command", "serve", "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def batch_endpoint(base: str, key: str, runs, rows, size: int, clients: int) -> float:
    parts = list(chunks(runs, rows, size))
    headers = {"Authorization": f"Bearer {key}"}

    def send(part) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            answer = client.post("/v1/batch", json={"runs": part[0], "tasks": part[1]})
            answer.raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, parts))
    return time.perf_counter() - started


def span_export(count: int) -> bytes:
    request = trace_service_pb2.ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    trace_id = uuid.uuid4().bytes
    now = time.time_ns()

    def attr(span, key: str, **value) -> None:
        span.attributes.append(common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(**value)))

    for _ in range(count):
        span = scope.spans.add(trace_id=trace_id, span_id=uuid.uuid4().bytes[:8], name="chat",
                               start_time_unix_nano=now - 2_000_000_000,
                               end_time_unix_nano=now)  # fmt: skip
        attr(span, "gen_ai.provider.name", string_value="openai")
        attr(span, "gen_ai.request.model", string_value="gpt-4o-mini")
        attr(span, "gen_ai.usage.input_tokens", int_value=900)
        attr(span, "gen_ai.usage.output_tokens", int_value=250)
    return request.SerializeToString()


def otlp_latency(base: str, key: str, rate: int, seconds: float) -> list[float]:
    per_batch = max(1, rate // 10)
    bodies = [span_export(per_batch) for _ in range(int(seconds * 10))]
    latencies: list[float] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}

    def send(body: bytes) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            started = time.perf_counter()
            client.post("/v1/traces", content=body).raise_for_status()
            with lock:
                latencies.append(time.perf_counter() - started)

    with ThreadPoolExecutor(8) as pool:
        begin = time.perf_counter()
        for i, body in enumerate(bodies):  # one export every 100 ms, whatever the answers do
            time.sleep(max(0.0, begin + i * 0.1 - time.perf_counter()))
            pool.submit(send, body)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--per-request", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--spans-per-second", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--port", type=int, default=8499)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL", "").strip()
    if not server:
        folder = args.dir or Path(tempfile.mkdtemp(prefix="ai-runs-bench-server-"))
        server = embedded.start(folder / "pgdata")
    runs, rows = make_rows(args.tasks)

    direct = direct_bulk(fresh_database(server, "bench_server_direct"), runs, rows,
                         args.per_request)  # fmt: skip
    url = fresh_database(server, "bench_server_http")
    key, _ = create_key("bench", url=url)
    process = start_server(url, args.port)
    try:
        base = f"http://127.0.0.1:{args.port}"
        http = batch_endpoint(base, key, runs, rows, args.per_request, args.clients)
        latencies = sorted(otlp_latency(base, key, args.spans_per_second, args.seconds))
    finally:
        process.terminate()
        process.wait(timeout=30)
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*) FROM ai_tasks").fetchone()[0]
    with psycopg.connect(server, autocommit=True) as conn:
        for name in ("bench_server_direct", "bench_server_http"):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    print(f"tasks: {args.tasks:,} in requests of {args.per_request:,}, {args.clients} client(s)")
    print(f"direct bulk (baseline)  {direct:7.2f} s  {args.tasks / direct:9,.0f} tasks/s")
    print(f"POST /v1/batch          {http:7.2f} s  {args.tasks / http:9,.0f} tasks/s"
          f"  ({direct / http:.2f}x the direct bulk path)")  # fmt: skip
    print(f"OTLP at {args.spans_per_second:,} spans/s for {args.seconds:g} s "
          f"({len(latencies)} exports of {max(1, args.spans_per_second // 10)} spans): "
          f"ack p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
          f"max {latencies[-1] * 1000:.1f} ms")  # fmt: skip
    print(f"rows stored by the server: {stored:,} tasks (batch + OTLP)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
