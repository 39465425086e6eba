"""Benchmark: the ingest server's batch endpoint vs the bulk path it calls, OTLP
acknowledgement latency at a fixed span rate and OTLP throughput, each with the spool
hand-off against the direct path (`serve --otlp-direct`) as the baseline in the same run,
and the REST Tracker flow with concurrent clients (issues 10 and 26).

    python bench/server.py [--tasks 20000] [--per-request 1000] [--clients 2]
                           [--spans-per-second 1000] [--seconds 10] [--otlp-spans 20000]
                           [--otlp-writers 1,2] [--rest-clients 8] [--rest-seconds 10]
                           [--only SECTION] [--dir PATH]

Uses DATABASE_URL when set, else a fresh embedded Postgres in PATH (default a new temporary
folder); each measurement gets a fresh migrated database. The server runs as its own
process (`ai-runs serve`, uvicorn), so client and server do not share a GIL.

- direct bulk: the same task rows (a run per 10 tasks) written with ingest.transfer.bulk.BulkWriter,
  --per-request rows per transaction: the baseline, in this process.
- batch endpoint: POST /v1/batch with --per-request tasks each, from --clients concurrent
  HTTP clients; tasks/s end to end (JSON encoding, HTTP, validation, pricing, COPY).
- OTLP ack: protobuf exports of 100 LLM spans sent every 100 ms (--spans-per-second in
  all) for --seconds; p50/p99/max time from send to the server's acknowledgement, with the
  direct path and with the hand-off to each number of spool writers of --otlp-writers.
- OTLP throughput: --otlp-spans OpenInference LLM spans (sessions of 10 calls, messages,
  invocation parameters, input/output values) in exports of --per-request from --clients
  clients; spans/s acknowledged and spans/s stored (until the last task is in ai_tasks),
  direct path and hand-off, and the CPU the server's processes (request path and writers)
  spent per stored span: what bounds the rate on a machine whose cores are free.
- OTLP spool writers: the same OpenInference exports spooled first, then written by each
  number of writer processes of --otlp-writers (no HTTP: the writers alone); spans/s
  stored and the writers' CPU per span.
- REST: --rest-clients clients each repeating the Tracker flow (create run, create task,
  stream update, complete) for --rest-seconds; requests/s and p50/p99 per request.
Every figure is printed with the load average at its end (the machine is shared). Run on
demand, never in the tests.
"""

from __future__ import annotations

import argparse
import json
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
from psycopg.rows import dict_row

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


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and its live children (the server and its
    spool writers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def load() -> str:
    return "load {:.1f}/{:.1f}/{:.1f}".format(*os.getloadavg())


def start_server(url: str, port: int, *options: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url}
    process = subprocess.Popen(
        [sys.executable, "-m", "dashboard.command", "serve", "--port", str(port), *options],
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


def openinference_export(count: int, first: int) -> bytes:
    """An export of `count` OpenInference LLM spans as openinference-instrumentation-openai
    makes them (sessions of 10 calls; messages, parameters, input and output values)."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    spans = request.resource_spans.add()
    spans.resource.attributes.append(
        common_pb2.KeyValue(key="service.name", value=common_pb2.AnyValue(string_value="chat"))
    )
    scope = spans.scope_spans.add()
    scope.scope.name = "openinference.instrumentation.openai"
    now = time.time_ns()
    for n in range(first, first + count):
        span = scope.spans.add(trace_id=uuid.uuid4().bytes, span_id=uuid.uuid4().bytes[:8],
                               name="ChatCompletion", start_time_unix_nano=now - 2_000_000_000,
                               end_time_unix_nano=now)  # fmt: skip
        question = f"Question {n} about row level security"
        for key, value in (
            ("openinference.span.kind", "LLM"), ("session.id", f"session-{n // 10}"),
            ("llm.model_name", "gpt-4o-mini"), ("llm.provider", "openai"),
            ("llm.token_count.prompt", 900 + n % 50), ("llm.token_count.completion", 250),
            ("llm.token_count.total", 1150 + n % 50),
            ("llm.input_messages.0.message.role", "user"),
            ("llm.input_messages.0.message.content", question),
            ("llm.output_messages.0.message.role", "assistant"),
            ("llm.output_messages.0.message.content", "Answer " * 40),
            ("llm.invocation_parameters", '{"model": "gpt-4o-mini", "temperature": 0.2}'),
            ("input.value", json.dumps({"messages": [{"role": "user", "content": question}]})),
            ("output.value", json.dumps({"id": f"chatcmpl-{uuid.uuid4().hex}"})),
        ):  # fmt: skip
            kind = {"int_value": value} if isinstance(value, int) else {"string_value": value}
            span.attributes.append(common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(**kind)))
    return request.SerializeToString()


def task_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM ai_tasks").fetchone()[0]


def otlp_throughput(base: str, key: str, url: str, spans: int, size: int, clients: int):
    """(seconds until every export was acknowledged, seconds until every task was stored)."""
    bodies = [openinference_export(size, first) for first in range(0, spans, size)]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}
    before = task_count(url)

    def send(body: bytes) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=300) as client:
            client.post("/v1/traces", content=body).raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, bodies))
    acked = time.perf_counter() - started
    while task_count(url) < before + spans:
        time.sleep(0.05)
    return acked, time.perf_counter() - started


def rest_flow(base: str, key: str, clients: int, seconds: float) -> list[float]:
    """Per-request latencies of `clients` clients repeating the Tracker flow (create run,
    create task, one streaming update, complete) for `seconds`."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client_loop() -> None:
        mine: list[float] = []
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            while time.perf_counter() < stop:
                task_id = str(uuid.uuid4())
                steps = (
                    ("/v1/runs", {"source_type": "chat", "name": "bench"}),
                    ("/v1/tasks", {"task_id": task_id, "provider": "openai",
                                   "model": "gpt-4o-mini", "status": "streaming"}),
                    (f"/v1/tasks/{task_id}/updates", {"response_text": "Hello, wor"}),
                    (f"/v1/tasks/{task_id}/complete", {"response_text": "Hello, world",
                     "usage": {"prompt_tokens": 900, "completion_tokens": 250}}),
                )  # fmt: skip
                run_id = None
                for path, body in steps:
                    if run_id is not None and path == "/v1/tasks":
                        body = {**body, "run_id": run_id}
                    started = time.perf_counter()
                    answer = client.post(path, json=body)
                    mine.append(time.perf_counter() - started)
                    answer.raise_for_status()
                    if path == "/v1/runs":
                        run_id = answer.json()["id"]
        with lock:
            latencies.extend(mine)

    in_threads(client_loop, clients)
    return sorted(latencies)


def in_threads(loop, clients: int) -> None:
    """Run `loop` in `clients` threads at once, until every one has returned."""
    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def serving(server: str, name: str, port: int, *options: str):
    """A fresh database `name` with a key, and `ai-runs serve` over it: (url, key, process)."""
    url = fresh_database(server, name)
    key, _ = create_key("bench", url=url)
    return url, key, start_server(url, port, *options)


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=60)


def bench_batch(server: str, args: argparse.Namespace) -> None:
    runs, rows = make_rows(args.tasks)
    direct = direct_bulk(fresh_database(server, "bench_server_direct"), runs, rows,
                         args.per_request)  # fmt: skip
    print(f"tasks: {args.tasks:,} in requests of {args.per_request:,}, {args.clients} client(s)")
    print(f"direct bulk (baseline)  {direct:7.2f} s  {args.tasks / direct:9,.0f} tasks/s  {load()}")
    url, key, process = serving(server, "bench_server_http", args.port)
    try:
        base = f"http://127.0.0.1:{args.port}"
        http = batch_endpoint(base, key, runs, rows, args.per_request, args.clients)
    finally:
        stop_server(process)
    print(f"POST /v1/batch          {http:7.2f} s  {args.tasks / http:9,.0f} tasks/s"
          f"  ({direct / http:.2f}x the direct bulk path)  {load()}")  # fmt: skip


def bench_otlp(server: str, args: argparse.Namespace) -> None:
    per_export = max(1, args.spans_per_second // 10)
    acks: dict[str, list[float]] = {}
    rates: dict[str, tuple[float, float]] = {}
    modes = [("direct", ("--otlp-direct",))] + [
        (f"{n} writer{'s' if n > 1 else ''}", ("--otlp-writers", str(n))) for n in args.otlp_writers
    ]
    for mode, options in modes:
        url, key, process = serving(server, "bench_server_otlp", args.port, *options)
        base = f"http://127.0.0.1:{args.port}"
        try:
            acks[mode] = sorted(otlp_latency(base, key, args.spans_per_second, args.seconds))
            print(f"OTLP ack, {mode:9}: {args.spans_per_second:,} spans/s for {args.seconds:g} s"
                  f" ({len(acks[mode])} exports of {per_export}): p50"
                  f" {statistics.median(acks[mode]) * 1000:.1f} ms, p99"
                  f" {percentile(acks[mode], 0.99) * 1000:.1f} ms, max"
                  f" {acks[mode][-1] * 1000:.1f} ms  {load()}", flush=True)  # fmt: skip
            while task_count(url) < len(acks[mode]) * per_export:
                time.sleep(0.05)
            cpu = tree_cpu(process.pid)
            rates[mode] = otlp_throughput(base, key, url, args.otlp_spans, args.per_request,
                                          args.clients)  # fmt: skip
            cpu = tree_cpu(process.pid) - cpu
            acked, done = rates[mode]
            print(f"OTLP throughput, {mode:9}: {args.otlp_spans:,} OpenInference spans in"
                  f" exports of {args.per_request:,} from {args.clients} client(s): acknowledged"
                  f" {args.otlp_spans / acked:,.0f} spans/s, stored {args.otlp_spans / done:,.0f}"
                  f" spans/s; server CPU {cpu / args.otlp_spans * 1000:.2f} ms per span"
                  f"  {load()}", flush=True)  # fmt: skip
        finally:
            stop_server(process)
    for mode, _ in modes[1:]:
        ratio = percentile(acks["direct"], 0.99) / percentile(acks[mode], 0.99)
        stored = rates[mode][1] and rates["direct"][1] / rates[mode][1]
        print(f"{mode} vs direct: ack p99 {ratio:.1f}x lower, spans stored/s {stored:.2f}x")


def bench_spool(server: str, args: argparse.Namespace) -> None:
    from ingest.server.metrics import ServerMetrics
    from ingest.server.otlp_spool import SpoolWorker, spool_export, waiting_exports
    from ingest.server.state import ServerState

    bodies = [openinference_export(args.per_request, first)
              for first in range(0, args.otlp_spans, args.per_request)]  # fmt: skip
    for writers in args.otlp_writers:
        url = fresh_database(server, "bench_server_spool")
        create_key("bench", url=url)
        state = ServerState(url)
        for body in bodies:
            spool_export(state, "bench", body, False)
        spool = SpoolWorker(url, ServerMetrics(), writers)
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            spool.start_if_waiting(conn)  # as a server restarting over a backlog
            while waiting_exports(conn):
                time.sleep(0.05)
        seconds = time.perf_counter() - started
        cpu = sum(tree_cpu(pid) for pid in spool.pids())
        spool.close()
        state.close()
        print(f"OTLP spool, {writers} writer(s): {args.otlp_spans:,} OpenInference spans in"
              f" exports of {args.per_request:,} written in {seconds:.2f} s:"
              f" {args.otlp_spans / seconds:,.0f} spans/s stored; writers' CPU"
              f" {cpu / args.otlp_spans * 1000:.2f} ms per span  {load()}", flush=True)  # fmt: skip


def trivial_requests(base: str, clients: int, seconds: float) -> list[float]:
    """Latencies of `clients` clients repeating GET /health (no key, no database): what the
    HTTP stack itself answers on this machine."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client_loop() -> None:
        mine = []
        with httpx.Client(base_url=base, timeout=60) as client:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                client.get("/health").raise_for_status()
                mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    in_threads(client_loop, clients)
    return sorted(latencies)


def tracker_flow(url: str, user: str, clients: int, seconds: float) -> int:
    """Tracker calls made by `clients` threads of this process, each with its own
    Tracker(viewer=user), repeating the REST flow's four steps for `seconds`: the database
    work of the flow without HTTP."""
    from ingest.tracking import Tracker

    done: list[int] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client_loop() -> None:
        calls = 0
        with Tracker(url, viewer=user) as tracker:
            while time.perf_counter() < stop:
                run = tracker.create_run("chat", name="bench")
                task = tracker.create_task(run["id"], provider="openai", model="gpt-4o-mini",
                                           status="streaming")  # fmt: skip
                tracker.update_task(task["task_id"], "Hello, wor")
                usage = {"prompt_tokens": 900, "completion_tokens": 250}
                tracker.complete_task(task["task_id"], "Hello, world", usage=usage)
                calls += 4
        with lock:
            done.append(calls)

    in_threads(client_loop, clients)
    return sum(done)


def bench_rest(server: str, args: argparse.Namespace) -> None:
    n, secs = args.rest_clients, args.rest_seconds
    url, key, process = serving(server, "bench_server_rest", args.port)
    base = f"http://127.0.0.1:{args.port}"
    try:
        trivial = trivial_requests(base, n, secs)
        print(f"ceiling: GET /health (no key, no database), {n} clients, {secs:g} s:"
              f" {len(trivial) / secs:,.0f} requests/s, p50"
              f" {statistics.median(trivial) * 1000:.1f} ms, p99"
              f" {percentile(trivial, 0.99) * 1000:.1f} ms  {load()}", flush=True)  # fmt: skip
        latencies = rest_flow(base, key, n, secs)
    finally:
        stop_server(process)
    print(f"REST Tracker flow, {n} clients, {secs:g} s:"
          f" {len(latencies) / secs:,.0f} requests/s, p50"
          f" {statistics.median(latencies) * 1000:.1f} ms, p99"
          f" {percentile(latencies, 0.99) * 1000:.1f} ms  {load()}", flush=True)  # fmt: skip
    calls = tracker_flow(url, "bench", n, secs)
    print(f"ceiling: the same flow through ingest.Tracker in one process (no HTTP), {n}"
          f" threads, {secs:g} s: {calls / secs:,.0f} calls/s  {load()}", flush=True)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--per-request", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--spans-per-second", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--otlp-spans", type=int, default=20_000)
    parser.add_argument(
        "--otlp-writers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2],
        help="numbers of spool writers to measure the hand-off with, e.g. 1,2",
    )
    parser.add_argument("--rest-clients", type=int, default=8)
    parser.add_argument("--rest-seconds", type=float, default=10.0)
    parser.add_argument("--only", choices=("batch", "otlp", "spool", "rest"), default=None)
    parser.add_argument("--port", type=int, default=8499)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL", "").strip()
    if not server:
        folder = args.dir or Path(tempfile.mkdtemp(prefix="ai-runs-bench-server-"))
        server = embedded.start(folder / "pgdata")
    sections = {"batch": bench_batch, "otlp": bench_otlp, "spool": bench_spool, "rest": bench_rest}
    for name, section in sections.items():
        if args.only in (None, name):
            section(server, args)
    with psycopg.connect(server, autocommit=True) as conn:
        for name in ("direct", "http", "otlp", "spool", "rest"):
            conn.execute(f'DROP DATABASE IF EXISTS "bench_server_{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
