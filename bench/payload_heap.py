"""Benchmark: what the request/response payloads and run messages kept inline in ai_tasks
and ai_runs cost the mirror's full build, and what moving them out would buy (issue 26).

    python bench/payload_heap.py [--tasks 1000000] [--dir PATH] [--reuse] [--rounds 1]
                                 [--sample 100000] [--runs 300] [--no-side-tables]

On the demo database of bench/queries.py's `prepare` (--reuse keeps an existing --dir), in
a scratch schema `payload_heap` (dropped at the end; public is only read):

1. Widths: each heap's and its TOAST table's size, and the mean stored size of every column
   (pg_column_size) of ai_tasks and ai_runs (over pages holding about --sample rows).
2. TOAST as the side table: the first --sample tasks and runs copied as they are stored and
   again with toast_tuple_target 128 and every payload column STORAGE EXTERNAL; heap and
   TOAST sizes of both, and how many rows are over TOAST_TUPLE_THRESHOLD (2,032 bytes),
   the only rows Postgres ever toasts on insert.
3. An explicit side table: copies of both heaps without their payloads (named ai_tasks and
   ai_runs in the scratch schema) and the payloads in ai_task_payloads / ai_run_messages.
   Where Postgres spends the two big extracts of the full build (EXPLAIN ANALYZE of the
   mirror's own queries: scan, sort, buffers), wide and narrow. The mirror's full build
   (`queries.mirror.sync.full_load`, one connection) from the tables as they are, from the
   narrow copies (search_path payload_heap, public) and from the narrow copies with index
   scans off (scanned and sorted like the wide heaps), in the same run, the order reversed
   every other round; all mirrors must hold the same rows.
4. The run page's two reads (the run with its messages, its tasks with their payloads) of
   --runs sampled runs, from the wide tables and joined from the side tables.
5. Writing the same --sample tasks into an empty wide table and into an empty narrow table
   plus its side table (primary keys and the same indexes).

--no-side-tables leaves out the side tables and 4-5: the builds need only the narrow
copies, and the side tables hold the payloads again (about 12 GB at 10M).

The build rows print as bench/build.py's do (seconds, CPU of this process + Postgres,
steps, load average around each).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

import psycopg
from psycopg import sql as pgsql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_support import bench_queries, demo_database_arguments, demo_folder  # noqa: E402
from build import (  # noqa: E402
    build,
    check_same_rows,
    client_cpu_seconds,
    current_full_load,
    server_cpu_seconds,
)

from ingest.store import embedded, sqlfiles  # noqa: E402
from queries.mirror import sync as mirror_sync  # noqa: E402

SQL = sqlfiles.load(ROOT / "bench" / "sql")
MB = 1 << 20


def narrow_url(url: str, seq_scan: bool = False) -> str:
    """`url` with search_path payload_heap, public: the mirror's queries then read the
    narrow copies as ai_tasks and ai_runs, and everything else from public. With
    `seq_scan`, index scans are off, so the sorted extracts scan and sort as they do on the
    wide heaps (on the narrow copies the planner reads them in created_at order through the
    index instead, which measured slower)."""
    options = "-c search_path=payload_heap,public"
    if seq_scan:
        options += " -c enable_indexscan=off"
    return f"{url}&options={urllib.parse.quote(options)}"


def source_urls(url: str) -> dict[str, str]:
    """The three sources a full build is timed from: the tables as stored, the narrow
    copies as the planner reads them, and the narrow copies scanned and sorted."""
    return {
        "wide (as stored)": url,
        "narrow": narrow_url(url),
        "narrow, scan + sort": narrow_url(url, seq_scan=True),
    }


def column_widths(conn: psycopg.Connection, table: str, rows: int, sample: int) -> list:
    """Mean stored bytes (pg_column_size, compressed or a TOAST pointer when so stored) of
    each column of public.`table` (about `rows` rows), widest first: over every row, or
    over a fixed sample of pages holding about `sample` rows when the table is larger."""
    names = [row[0] for row in conn.execute(SQL["table_columns"].psycopg, {"table": table})]
    percent = min(100.0, 100.0 * sample / max(rows, 1))
    # Identifiers from the catalog, quoted by psycopg: no outside text reaches the SQL.
    query = pgsql.SQL("SELECT {} FROM {} TABLESAMPLE SYSTEM (%(percent)s) REPEATABLE (0)").format(
        pgsql.SQL(", ").join(
            pgsql.SQL("avg(coalesce(pg_column_size({}), 0))").format(pgsql.Identifier(name))
            for name in names
        ),
        pgsql.Identifier("public", table),
    )
    means = conn.execute(query, {"percent": percent}).fetchone()
    return sorted(zip(names, (float(m) for m in means), strict=True), key=lambda c: -c[1])


def report_widths(conn: psycopg.Connection, sample: int) -> None:
    print("| table | rows | heap MB | TOAST MB | indexes MB | heap bytes/row |")
    print("|---|---:|---:|---:|---:|---:|")
    counts = {}
    for table, rows, heap, toast, index in conn.execute(SQL["heap_sizes"].sql).fetchall():
        counts[table] = rows
        print(f"| {table} | {rows:,} | {heap / MB:,.0f} | {toast / MB:,.0f} | {index / MB:,.0f} "
              f"| {heap / max(rows, 1):,.0f} |")  # fmt: skip
    for table in ("ai_tasks", "ai_runs"):
        widths = column_widths(conn, table, counts[table], sample)
        total = sum(width for _, width in widths)
        listed = ", ".join(f"{name} {width:,.0f}" for name, width in widths if width >= 8)
        print(f"\n{table}: columns sum to {total:,.0f} bytes/row on average; {listed}")


def vacuum(conn: psycopg.Connection, *tables: str) -> None:
    """VACUUM ANALYZE scratch tables (hint bits and visibility map set, like the demo's)."""
    for table in tables:
        conn.execute(pgsql.SQL("VACUUM ANALYZE {}").format(pgsql.Identifier("payload_heap", table)))


def report_toast(conn: psycopg.Connection, sample: int) -> None:
    conn.execute(SQL["toast_copies"].sql)
    conn.execute(SQL["copy_tasks_as_now"].psycopg, {"rows": sample})
    conn.execute(SQL["copy_runs_as_now"].psycopg, {"rows": sample})
    conn.execute(SQL["fill_toasted"].sql)
    vacuum(conn, "tasks_as_now", "tasks_toasted", "runs_as_now", "runs_toasted")
    print(f"\nTOAST as the side table, the first {sample:,} rows of each heap:\n")
    print("| copy | rows | heap MB | TOAST MB | rows over 2,032 bytes |")
    print("|---|---:|---:|---:|---:|")
    for table, rows, heap, toast, over in conn.execute(SQL["toast_sizes"].sql):
        over_text = "" if over is None else f"{over:,}"
        print(f"| {table} | {rows:,} | {heap / MB:,.1f} | {toast / MB:,.1f} | {over_text} |")


def make_narrow_copies(conn: psycopg.Connection, side_tables: bool) -> None:
    started = time.perf_counter()
    conn.execute(SQL["narrow_copies"].sql)
    vacuum(conn, "ai_tasks", "ai_runs")
    if side_tables:
        conn.execute(SQL["side_tables"].sql)
        vacuum(conn, "ai_task_payloads", "ai_run_messages")
    print(f"\nnarrow copies and side tables made in {time.perf_counter() - started:.0f} s:\n")
    print("| table | heap MB | TOAST MB |")
    print("|---|---:|---:|")
    for table, heap, toast in conn.execute(SQL["narrow_sizes"].sql):
        print(f"| payload_heap.{table} | {heap / MB:,.0f} | {toast / MB:,.0f} |")


def compare_builds(folder: Path, url: str, rounds: int) -> None:
    """The full build from each of `source_urls`, the order reversed every other round."""
    ways = source_urls(url)
    files = {name: folder / f"payload-heap-{i}.duckdb" for i, name in enumerate(ways)}
    times: dict[str, list[float]] = {name: [] for name in ways}
    print("\n| round | heaps | seconds | CPU s: client + Postgres | load average before / after "
          "| steps (ms) |")  # fmt: skip
    print("|---|---|---:|---:|---|---|")
    for round_ in range(rounds):
        order = list(ways) if round_ % 2 == 0 else list(reversed(ways))
        for name in order:
            before = os.getloadavg()[0]
            client, server = client_cpu_seconds(), server_cpu_seconds(folder / "pgdata")
            seconds, steps = build(current_full_load(1), ways[name], files[name])
            client = client_cpu_seconds() - client
            server = server_cpu_seconds(folder / "pgdata") - server
            times[name].append(seconds)
            print(f"| {round_ + 1} | {name} | {seconds:.1f} | {client:.1f} + {server:.1f} | "
                  f"{before:.1f} / {os.getloadavg()[0]:.1f} | {steps} |", flush=True)  # fmt: skip
    medians = {name: statistics.median(values) for name, values in times.items()}
    wide = medians["wide (as stored)"]
    print(f"\nmedians of {rounds}: " + ", ".join(
        f"{name} {seconds:.1f} s ({wide / seconds:.2f}x)" for name, seconds in medians.items()
    ))  # fmt: skip
    tables = check_same_rows(files, "wide (as stored)")
    print(f"all mirrors hold the same rows in all {tables} tables")
    for path in files.values():
        for leftover in (path, path.with_name(path.name + ".wal")):
            leftover.unlink(missing_ok=True)


def plan_nodes(plan: dict) -> list[dict]:
    """Every node of an EXPLAIN (FORMAT JSON) plan, top first."""
    return [plan, *(node for child in plan.get("Plans", []) for node in plan_nodes(child))]


def explain_extracts(url: str) -> None:
    """Where Postgres spends an extract of the full build, wide and narrow: EXPLAIN ANALYZE
    of the mirror's own query (the rows are produced, not sent), its scan and its sort."""
    print("\n| extract | heaps | Postgres ms | scan | scan ms | join + sort ms | sort "
          "| shared hit/read |")  # fmt: skip
    print("|---|---|---:|---|---:|---:|---|---|")
    for name in ("extract_all_runs", "extract_all_tasks"):
        query = sqlfiles.render(mirror_sync.pg_sql(), name).sql
        for heaps, target in source_urls(url).items():
            with psycopg.connect(target) as conn:
                explain = f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query}"
                result = conn.execute(explain).fetchone()[0][0]
            nodes = plan_nodes(result["Plan"])
            scan = next(n for n in nodes if n["Node Type"].endswith("Scan") and
                        n.get("Relation Name") in ("ai_tasks", "ai_runs"))  # fmt: skip
            sort = next((n for n in nodes if n["Node Type"] == "Sort"), None)
            sort_ms = sort["Actual Total Time"] - scan["Actual Total Time"] if sort else 0.0
            sort_how = f"{sort['Sort Method']} {sort['Sort Space Used']:,} kB" if sort else "-"
            print(f"| {name} | {heaps} | {result['Execution Time']:,.0f} | {scan['Node Type']} "
                  f"| {scan['Actual Total Time']:,.0f} | {sort_ms:,.0f} | {sort_how} "
                  f"| {scan['Shared Hit Blocks']:,}/{scan['Shared Read Blocks']:,} |")  # fmt: skip


def read_run(conn: psycopg.Connection, run_query: str, tasks_query: str, run_id: object) -> float:
    """Milliseconds to fetch one run's row and its tasks' rows, payloads included."""
    started = time.perf_counter()
    conn.execute(SQL[run_query].psycopg, {"run_id": run_id}).fetchall()
    conn.execute(SQL[tasks_query].psycopg, {"run_id": run_id}).fetchall()
    return (time.perf_counter() - started) * 1000


def compare_run_page(conn: psycopg.Connection, runs: int) -> None:
    ids = [row[0] for row in conn.execute(SQL["sample_runs"].psycopg, {"count": runs})]
    ways = {"wide": ("wide_run", "wide_run_tasks"), "narrow": ("narrow_run", "narrow_run_tasks")}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for i, run_id in enumerate(ids):  # alternate which way reads a run first
        for name in list(ways) if i % 2 == 0 else list(reversed(ways)):
            times[name].append(read_run(conn, *ways[name], run_id))
    print(f"\nthe run page's two reads, {len(ids)} sampled runs (ms):\n")
    print("| heaps | median | p95 | max |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        values.sort()
        p95 = values[int(0.95 * (len(values) - 1))]
        print(f"| {name} | {statistics.median(values):.2f} | {p95:.2f} | {values[-1]:.2f} |")


def compare_writes(conn: psycopg.Connection, sample: int, rounds: int) -> None:
    conn.execute(SQL["write_targets"].sql)
    times: dict[str, list[float]] = {"write_wide": [], "write_narrow": []}
    for round_ in range(max(rounds, 2)):
        for name in list(times) if round_ % 2 == 0 else list(reversed(times)):
            conn.execute(SQL["truncate_write_targets"].sql)
            started = time.perf_counter()
            conn.execute(SQL[name].psycopg, {"rows": sample})
            times[name].append(time.perf_counter() - started)
    print(f"\nwriting {sample:,} tasks (INSERT ... SELECT, median of {max(rounds, 2)}):\n")
    print("| target | seconds | tasks/s |")
    print("|---|---:|---:|")
    for name, values in times.items():
        seconds = statistics.median(values)
        print(f"| {name.replace('write_', '')} | {seconds:.2f} | {sample / seconds:,.0f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    demo_database_arguments(parser, tasks=1_000_000)
    parser.add_argument("--rounds", type=int, default=1, help="builds of each way")
    parser.add_argument("--sample", type=int, default=100_000, help="rows sampled or copied")
    parser.add_argument("--runs", type=int, default=300, help="runs the run page reads")
    side_tables_help = "leave out the side tables (about 12 GB at 10M), the run page and writes"
    parser.add_argument("--no-side-tables", action="store_true", help=side_tables_help)
    args = parser.parse_args(argv)
    folder = demo_folder(args)
    url = bench_queries().prepare(folder, args.tasks, args.days, args.reuse)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start\n")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SQL["create_scratch"].sql)
        try:
            report_widths(conn, args.sample)
            report_toast(conn, args.sample)
            make_narrow_copies(conn, side_tables=not args.no_side_tables)
            explain_extracts(url)
            compare_builds(folder, url, args.rounds)
            if not args.no_side_tables:
                compare_run_page(conn, args.runs)
                compare_writes(conn, args.sample, args.rounds)
        finally:
            conn.execute(SQL["drop_scratch"].sql)
    embedded.stop(folder / "pgdata")
    return 0


if __name__ == "__main__":
    sys.exit(main())
