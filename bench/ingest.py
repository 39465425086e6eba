"""Benchmark: bulk ingest vs a plain COPY with no triggers, and the live path (issue 3).

    python bench/ingest.py [--tasks 1000000] [--live-tasks 2000] [--dir PATH]

Starts a fresh embedded Postgres in PATH (default a new temporary folder) and measures, each
in a fresh database cloned from a migrated template, on the same demo rows (generated chunk
by chunk with a fixed seed; generation is not timed):

- plain COPY: runs and tasks COPYed into the same tables, with the same indexes and foreign
  keys, after `ALTER TABLE ... DISABLE TRIGGER USER` (no derived-column triggers);
- bulk: `ingest.transfer.bulk.BulkWriter` as the demo and the importer use it (runs and tasks of a
  chunk in one transaction; COPY straight in, falling back to staging on duplicates;
  statement-level triggers keep the run totals; runs' updated_at kept as written);
- bulk, staging: the same with every batch staged in a temp table and inserted with
  ON CONFLICT DO NOTHING;
- bulk, updated_at = import time: the default path without ai_runs.keep_updated_at;
- demo.generate end to end (generation overlapped with the writes);
- import: `ingest.transfer.import_files` of a JSONL export of the first 100k tasks;
- live: `ingest.Tracker` with no debounce: create_task, 3 update_task, complete_task per
  task (a run per 3 tasks), latency per call.

Prints a table: rows/s (tasks and runs) and the ratio to the plain COPY. Run on demand, not
in the tests; the machine is shared, so repeat for stable numbers.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest import Tracker, demo  # noqa: E402
from ingest.demo import copy_rows  # noqa: E402
from ingest.store import database, embedded  # noqa: E402
from ingest.transfer import bulk  # noqa: E402
from ingest.transfer import import_export as transfer  # noqa: E402

END = datetime(2026, 11, 1, tzinfo=UTC)
SEED = 42


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--live-tasks", type=int, default=2_000)
    parser.add_argument("--import-tasks", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of plain vs bulk, interleaved (median)"
    )
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="ai-runs-bench-ingest-"))
    pgdata = folder / "pgdata"
    server = embedded.start(pgdata)
    try:
        rows = run_all(server, args)
    finally:
        embedded.stop(pgdata)
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    print_table(rows, args.tasks)
    return 0


def fresh_database(server: str, name: str) -> str:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = 'bench_tpl'").fetchone()
        if not exists:
            conn.execute("CREATE DATABASE bench_tpl")
            database.migrate(embedded.with_database(server, "bench_tpl"))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE bench_tpl").format(sql.Identifier(name)))
    url = embedded.with_database(server, name)
    database._migrated.add(url)
    return url


def checkpoint(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def timed_chunks(url: str, tasks: int, write: Callable[[demo_rows_chunk], None]) -> float:
    """Generate the plan's chunks one by one (untimed) and time `write` on each."""
    plan = demo.Plan(SEED, tasks, 90, END)
    checkpoint(url)
    spent = 0.0
    for index in range(-(-tasks // demo.CHUNK_TASKS)):
        size = min(demo.CHUNK_TASKS, tasks - index * demo.CHUNK_TASKS)
        chunk = demo.make_chunk(plan, index, size)
        started = time.perf_counter()
        write(chunk)
        spent += time.perf_counter() - started
    return spent


demo_rows_chunk = copy_rows.Chunk


def plain_copy(url: str, tasks: int) -> float:
    def copy_into(table: str, columns: tuple[str, ...]) -> sql.Composed:
        names = sql.SQL(", ").join(map(sql.Identifier, columns))
        return sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), names)

    with psycopg.connect(url) as conn:
        conn.execute("ALTER TABLE ai_runs DISABLE TRIGGER USER")
        conn.execute("ALTER TABLE ai_tasks DISABLE TRIGGER USER")
        conn.commit()

        def write(chunk: demo_rows_chunk) -> None:
            with conn.cursor() as cur:
                bulk._send(cur, copy_into("ai_runs", demo.RUN_COLUMNS), chunk.run_lines)
                bulk._send(cur, copy_into("ai_tasks", demo.TASK_COLUMNS), chunk.task_lines)
            conn.commit()

        return timed_chunks(url, tasks, write)


def bulk_path(url: str, tasks: int, **options) -> float:
    with bulk.BulkWriter(url, **options) as writer:

        def write(chunk: demo_rows_chunk) -> None:
            runs = bulk.Batch("ai_runs", demo.RUN_COLUMNS, chunk.run_lines, chunk.run_ids,
                              chunk.run_parents)  # fmt: skip
            tasks_ = bulk.Batch("ai_tasks", demo.TASK_COLUMNS, chunk.task_lines,
                                chunk.task_ids, chunk.task_runs)  # fmt: skip
            writer.write(runs, tasks_)

        spent = timed_chunks(url, tasks, write)
    if database.run_totals_mismatches(url):
        raise SystemExit("run totals disagree with the tasks after the bulk path")
    return spent


def count_runs(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM ai_runs").fetchone()[0]


def live_path(url: str, tasks: int) -> dict[str, list[float]]:
    latencies: dict[str, list[float]] = {
        "create_run": [], "create_task": [], "update_task": [], "complete_task": []
    }  # fmt: skip

    def call(label: str, fn: Callable, *a, **k):
        started = time.perf_counter()
        result = fn(*a, **k)
        latencies[label].append(time.perf_counter() - started)
        return result

    text = "The answer is being streamed token by token. " * 4
    with Tracker(url, user_id="bench", debounce_seconds=0) as tracker:
        run = None
        for i in range(tasks):
            if i % 3 == 0:
                run = call("create_run", tracker.create_run, "chat", name=f"bench {i}")
            task = call("create_task", tracker.create_task, run["id"], provider="openai",
                        model="gpt-4o-mini", request_data={"q": i})  # fmt: skip
            for k in range(1, 4):
                call("update_task", tracker.update_task, task["task_id"], text[: 40 * k])
            call("complete_task", tracker.complete_task, task["task_id"], text,
                 tokens_input=120, tokens_output=60)  # fmt: skip
    if database.run_totals_mismatches(url):
        raise SystemExit("run totals disagree with the tasks after the live path")
    return latencies


def run_all(server: str, args: argparse.Namespace) -> list[tuple]:
    rows: list[tuple] = []
    n = args.tasks
    # Plain COPY and the bulk variants take turns, each on a fresh database after a
    # checkpoint, `--repeat` rounds; the median of each is reported. Back-to-back single
    # runs on a shared 2-core machine differed by up to 40% with the order.
    variants = (
        ("plain COPY, user triggers disabled", None),
        ("bulk (BulkWriter, default)", {}),
        ("bulk, staging + ON CONFLICT", {"strategy": "staging"}),
        ("bulk, updated_at = import time", {"keep_run_updated_at": False}),
    )
    times: dict[str, list[float]] = {label: [] for label, _ in variants}
    runs = 0
    for round_ in range(max(1, args.repeat)):
        for label, options in variants:
            url = fresh_database(server, "bulk")
            if options is None:
                seconds = plain_copy(url, n)
                runs = count_runs(url)
            else:
                seconds = bulk_path(url, n, **options)
            times[label].append(seconds)
            print(f"round {round_ + 1}: {label}: {seconds:.1f}s", flush=True)
    for label, _ in variants:
        rows.append((label, n, runs, statistics.median(times[label])))

    url = fresh_database(server, "demo")
    checkpoint(url)
    summary = demo.generate(url, tasks=n, seed=SEED, days=90, end=END)
    rows.append(("demo.generate end to end (incl. generation)", n, summary.runs, summary.seconds))
    print(f"demo.generate: {summary.seconds:.1f}s", flush=True)

    source = fresh_database(server, "import_source")
    demo.generate(source, tasks=args.import_tasks, seed=SEED, days=90, end=END)
    dump = Path(tempfile.mkdtemp()) / "dump.jsonl"
    transfer.export_file(dump, source)
    url = fresh_database(server, "import_target")
    checkpoint(url)
    result = transfer.import_files([dump], url)
    shutil.rmtree(dump.parent, ignore_errors=True)
    rows.append(("import_files of a JSONL export", result.inserted["task"],
                 result.inserted["run"], result.seconds))  # fmt: skip
    print(f"import: {result.seconds:.1f}s", flush=True)

    url = fresh_database(server, "live")
    started = time.perf_counter()
    latencies = live_path(url, args.live_tasks)
    seconds = time.perf_counter() - started
    label = "live Tracker (create+3 updates+complete)"
    rows.append((label, args.live_tasks, len(latencies["create_run"]), seconds, latencies))
    return rows


def print_table(rows: list[tuple], tasks: int) -> None:
    plain_rate = (rows[0][1] + rows[0][2]) / rows[0][3]
    print()
    print(f"{'path':<46} {'tasks':>10} {'runs':>9} {'seconds':>8} {'tasks/s':>9} "
          f"{'rows/s':>9} {'vs plain':>8}")  # fmt: skip
    for label, n_tasks, n_runs, seconds, *extra in rows:
        rate = (n_tasks + n_runs) / seconds
        print(f"{label:<46} {n_tasks:>10,} {n_runs:>9,} {seconds:>8.1f} "
              f"{n_tasks / seconds:>9,.0f} {rate:>9,.0f} {rate / plain_rate:>8.2f}")  # fmt: skip
        for latencies in extra:
            for name, values in latencies.items():
                ms = sorted(v * 1000 for v in values)
                p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
                print(f"    {name:<18} calls {len(ms):>7,}  p50 {statistics.median(ms):6.2f} ms  "
                      f"p99 {p99:6.2f} ms")  # fmt: skip
    print(
        "\nrows/s counts tasks + runs; 'vs plain' is rows/s over the plain COPY's rows/s "
        "(the live path's ratio compares whole tasks, not COPY rows)."
    )


if __name__ == "__main__":
    sys.exit(main())
