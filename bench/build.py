"""Benchmark: the mirror's full build, the previous way against the current way, in the same
run on the same database (issue 26).

    python bench/build.py [--tasks 1000000] [--dir PATH] [--reuse] [--rounds 2]

- previous: one connection; runs, then tasks joined with their runs, each one stream sorted
  by Postgres; keys set on the tasks by an UPDATE afterwards (bench/sql/build.sql);
- current: `queries.mirror.sync.full_load`: the tasks read without their runs over a second
  connection that imports the sync's exported snapshot and starts while the runs stream in,
  joined with their runs and keys in DuckDB as they stream (docs/design.md, "The full
  build"); and the same over one connection, to tell what the second one adds.

The database comes from bench/queries.py's `prepare` (the demo generator; --reuse keeps an
existing --dir). Each round builds both ways into their own files, alternating which goes
first; the table prints each build's seconds, the CPU seconds it took in this process
(DuckDB, ADBC) and in the Postgres server (all its processes), its steps, and the load
average around it; then the medians of both and their ratios. On a busy machine the CPU
seconds are the steadier figure: wall time there says more about the neighbours. Then both
mirrors must hold the same rows in every table (row counts and the sum of row hashes), or
the run fails.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import adbc_driver_postgresql.dbapi as adbc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_support import bench_queries, demo_database_arguments, demo_folder  # noqa: E402

from ingest.store import embedded, sqlfiles  # noqa: E402
from queries.mirror import open_mirror  # noqa: E402
from queries.mirror import sync as mirror_sync  # noqa: E402

BENCH_SQL = sqlfiles.load(ROOT / "bench" / "sql")


def previous_full_load(con, cur, url: str) -> None:
    """The full load as it was before block ranges (the baseline): one connection, Postgres
    joins and sorts, keys by UPDATE; the other steps as today."""
    sql = mirror_sync.duck_sql()
    pg = {**mirror_sync.pg_sql(), **BENCH_SQL}
    duck = {**sql, **BENCH_SQL}
    con.execute("BEGIN").fetchall()
    con.execute(sqlfiles.render(sql, "drop_all").sql).fetchall()
    for name in mirror_sync.CREATE_QUERIES:
        con.execute(sql[name].sql).fetchall()
    loads = [
        ("users", "extract_all_users", "insert_users"),
        ("runs", "previous_extract_all_runs", "insert_runs"),
        ("tasks", "previous_extract_all_tasks", "previous_insert_all_tasks"),
        ("scores", "extract_all_scores", "insert_scores"),
    ]
    for table, extract, insert in loads:
        if table == "tasks":
            with mirror_sync.step("keys"):
                con.execute(sql["all_user_keys"].sql).fetchall()
                con.execute(sql["all_run_keys"].sql).fetchall()
        cur.adbc_statement.set_options(**{mirror_sync.BATCH_SIZE_HINT: str(16 << 20)})
        cur.execute(sqlfiles.render(pg, extract).sql)
        con.register(f"staged_{table}", cur.fetch_record_batch())
        with mirror_sync.step(f"load {table}"):
            con.execute(sqlfiles.render(duck, insert).sql).fetchall()
        con.unregister(f"staged_{table}")
    with mirror_sync.step("task keys and dimension values"):
        con.execute(sql["keys_of_stored_tasks"].sql).fetchall()
        con.execute(sql["refresh_run_key_days"].duckdb, {"since_key": 0}).fetchall()
        con.execute(sql["all_rare_tasks"].sql).fetchall()
        con.execute(sql["all_dim_values"].sql).fetchall()
    with mirror_sync.step("task scores"):
        con.execute(sqlfiles.render(sql, "all_task_scores").sql).fetchall()
    with mirror_sync.step("day totals"):
        con.execute(sqlfiles.render(sql, "all_day_totals").sql).fetchall()


def current_full_load(connections: int) -> Callable:
    return lambda con, cur, url: mirror_sync.full_load(con, cur, url, connections=connections)


def server_cpu_seconds(pgdata: Path) -> float:
    """CPU seconds the Postgres server has used so far: the postmaster's own, its ended
    children's (counted into it when they exit) and its live children's (Linux /proc)."""
    clock = os.sysconf("SC_CLK_TCK")
    postmaster = (pgdata / "postmaster.pid").read_text().split()[0]

    def fields(pid: str) -> list[str]:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

    own = fields(postmaster)
    ticks = sum(int(value) for value in own[11:15])  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != postmaster:
            with contextlib.suppress(OSError):
                child = fields(entry.name)
                if child[1] == postmaster:  # ppid
                    ticks += int(child[11]) + int(child[12])
    return ticks / clock


def client_cpu_seconds() -> float:
    """CPU seconds of this process so far (DuckDB's threads and ADBC's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build(load: Callable, url: str, path: Path) -> tuple[float, str]:
    """One full build into a new file at `path` as a sync does it (one REPEATABLE READ
    snapshot, one DuckDB transaction, committed): seconds and the logged steps."""
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)
    steps = io.StringIO()
    handler = logging.StreamHandler(steps)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("queries.mirror")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    started = time.perf_counter()
    try:
        con = open_mirror(path)
        with contextlib.closing(adbc.connect(url)) as pg:
            cur = pg.cursor()
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute(mirror_sync.pg_sql()["source_identity"].sql)
            cur.fetchall()
            load(con, cur, url)
            with mirror_sync.step("commit"):
                con.execute("COMMIT").fetchall()
        con.close()
    finally:
        log.removeHandler(handler)
    seconds = time.perf_counter() - started
    lines = [line.replace("sync step ", "") for line in steps.getvalue().splitlines()]
    return seconds, "; ".join(lines)


def row_group_hours(path: Path) -> float:
    """Mean span of created_at over the tasks' row groups (122,880 rows), in hours: how
    tightly the zone maps of windowed rollups bound each group."""
    with open_mirror(path, read_only=True) as con:
        return con.execute(BENCH_SQL["row_group_hours"].sql).fetchall()[0][0]


def table_digests(path: Path) -> dict[str, tuple]:
    """Per mirror table (mirror_meta aside): row count and the sum of its rows' hashes."""
    with open_mirror(path, read_only=True) as con:
        names = [row[0] for row in con.execute(BENCH_SQL["mirror_tables"].sql).fetchall()]
        # Table names from the mirror's own catalog, quoted: no outside text reaches SQL.
        return {
            name: tuple(con.execute(f'SELECT count(*), sum(hash(t)) FROM "{name}" t').fetchall()[0])
            for name in names
        }


def check_same_rows(files: dict[str, Path], baseline: str) -> int:
    """The number of mirror tables, once every mirror in `files` (by name) holds the same
    rows as `files[baseline]` in each of them; SystemExit naming the tables otherwise."""
    digests = {name: table_digests(path) for name, path in files.items()}
    first = digests[baseline]
    for name, digest in digests.items():
        if digest != first:
            differ = sorted(t for t in first if first[t] != digest.get(t))
            raise SystemExit(f"{name} differs from {baseline} in {differ}")
    return len(first)


def mirror_file(folder: Path, way: str) -> Path:
    """The mirror file a way builds into (its name with the spaces and commas dropped)."""
    return folder / f"build-{way.replace(',', '').replace(' ', '-')}.duckdb"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    demo_database_arguments(parser, tasks=1_000_000)
    parser.add_argument("--rounds", type=int, default=2, help="builds of each way")
    args = parser.parse_args(argv)
    folder = demo_folder(args)
    url = bench_queries().prepare(folder, args.tasks, args.days, args.reuse)
    ways = {
        "previous": previous_full_load,
        "current, 1 connection": current_full_load(1),
        "current, 2 connections": current_full_load(2),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    pgdata = folder / "pgdata"
    print("| round | build | seconds | CPU s: client + Postgres | load average before / after "
          "| steps (ms) |")  # fmt: skip
    print("|---|---|---:|---:|---|---|")
    for round_ in range(args.rounds):
        order = list(ways) if round_ % 2 == 0 else list(reversed(ways))
        for name in order:
            before = os.getloadavg()[0]
            client, server = client_cpu_seconds(), server_cpu_seconds(pgdata)
            seconds, steps = build(ways[name], url, mirror_file(folder, name))
            client = client_cpu_seconds() - client
            server = server_cpu_seconds(pgdata) - server
            after = os.getloadavg()[0]
            times[name].append(seconds)
            cpu[name].append(client + server)
            print(f"| {round_ + 1} | {name} | {seconds:.1f} | {client:.1f} + {server:.1f} | "
                  f"{before:.1f} / {after:.1f} | {steps} |", flush=True)  # fmt: skip
    wall = {name: statistics.median(values) for name, values in times.items()}
    work = {name: statistics.median(values) for name, values in cpu.items()}
    print()
    print(f"| build (median of {args.rounds}) | seconds | x previous | CPU s | x previous |")
    print("|---|---:|---:|---:|---:|")
    for name in ways:
        print(f"| {name} | {wall[name]:.1f} | {wall['previous'] / wall[name]:.2f}x "
              f"| {work[name]:.1f} | {work['previous'] / work[name]:.2f}x |")  # fmt: skip
    print(f"\n{os.cpu_count()} cores")
    tables = check_same_rows({name: mirror_file(folder, name) for name in ways}, "previous")
    print(f"all builds hold the same rows in all {tables} mirror tables")
    spans = ", ".join(f"{name} {row_group_hours(mirror_file(folder, name)):.1f} h" for name in ways)
    print(f"mean created_at span of a row group of tasks: {spans}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process over all builds: {peak_mb:,.0f} MB")
    embedded.stop(folder / "pgdata")
    return 0


if __name__ == "__main__":
    sys.exit(main())
