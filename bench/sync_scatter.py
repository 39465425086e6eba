"""Benchmark: the incremental sync of 10,000 tasks changed at random over the demo's days
(issue 26, item 3), as it is and as it was, on copies of the same mirror in one run.

    python bench/sync_scatter.py [--tasks 1000000] [--dir PATH] [--reuse] [--rounds 4]
                                 [--old WAY ...] [--compare-root DIR]

1. Prepares the demo database like bench/queries.py (--reuse keeps one) and builds or
   brings up to date its mirror, PATH/analytics.duckdb.
2. Changes 10,000 tasks like bench/queries.py (40% updated and 20% deleted at random over
   the days, 40% inserted now).
3. Each round syncs a fresh copy of the mirror twice, in alternating order: "before" with
   (--old, default all three) ADBC reading Postgres' whole type catalog on connect, every
   change read over one connection, and the copies of changed rows found by id over the
   whole table (the mirror's `logged_times` fact removed); "after" as the sync runs now
   (docs/scale.md, "The incremental sync of scattered changes"). With --compare-root DIR
   (another checkout of this repository, e.g. main), "before" runs DIR's code as it is.
   Each sync runs in a process of its own.
4. Prints each sync's time, the CPU time of its process (Postgres' not included) and its
   step times (ms), the medians, and checks that the two copies end equal, table by table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import duckdb
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_support import bench_queries, demo_database_arguments, demo_folder  # noqa: E402

import queries as q  # noqa: E402
from queries.mirror import sync as mirror_sync  # noqa: E402

TABLES = ("tasks", "runs", "users", "scores", "task_scores", "rare_tasks", "run_keys",
          "user_keys", "run_key_days", "dim_values")  # fmt: skip


OLD_WAYS = ("connect", "extract", "removal")

# The child process of one sync (sync_copy): argv is root, url, copy, old ways; it prints
# one JSON line: seconds, the steps (ms) and the CPU seconds of this process over the sync.
_CHILD = """
import json, logging, resource, sys
root, url, copy, old = sys.argv[1], sys.argv[2], sys.argv[3], set(sys.argv[4:])
sys.path[:0] = [root, root + '/bench']
import duckdb
import queries as q
from queries.mirror import sync as mirror_sync

class StepTimes(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.steps = {}
    def emit(self, record):
        message = record.getMessage()
        if message.startswith('sync step '):
            name, ms = message[len('sync step '):].rsplit(': ', 1)
            name = name.removesuffix(' by time')
            self.steps[name] = self.steps.get(name, 0.0) + float(ms.split()[0])
if 'removal' in old:
    with duckdb.connect(copy) as con:
        con.execute('DELETE FROM mirror_meta WHERE key = $key', {'key': mirror_sync.LOGGED_TIMES})
if 'connect' in old:
    mirror_sync._CONNECT_OPTIONS = {}
if 'extract' in old:
    mirror_sync.EXTRACT_CONNECTIONS = 1
mirror_sync.log.setLevel(logging.DEBUG)
handler = StepTimes()
mirror_sync.log.addHandler(handler)
usage = resource.getrusage(resource.RUSAGE_SELF)
result = q.sync_mirror(url, copy, verify=False)
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
assert not result.full, result.reason
print(json.dumps({'seconds': result.seconds, 'steps': handler.steps, 'cpu': cpu}))
"""


def sync_copy(url: str, base: Path, copy: Path, *, old: set[str], root: Path = ROOT) -> dict:
    """Sync a fresh copy of `base` at `copy` in a process of its own, with the code of the
    checkout `root` and the OLD_WAYS named in `old` as they were (connect: the whole type
    catalog; extract: one connection; removal: by id everywhere). Returns seconds, steps
    (ms) and cpu (seconds of the syncing process, Postgres' not included)."""
    for stale in copy.parent.glob(copy.name + "*"):
        stale.unlink()
    shutil.copy(base, copy)
    command = [sys.executable, "-c", _CHILD, str(root), url, str(copy), *sorted(old)]
    done = subprocess.run(command, cwd=root, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def differences(left: Path, right: Path) -> dict[str, int]:
    """Rows in one mirror and not the other, per table (both ways summed)."""
    with duckdb.connect(str(left), read_only=True) as con:
        con.execute(f"ATTACH '{right}' AS other (READ_ONLY)")
        return {
            table: con.execute(
                f"SELECT (SELECT count(*) FROM (FROM main.{table} EXCEPT ALL FROM other.{table}))"
                f" + (SELECT count(*) FROM (FROM other.{table} EXCEPT ALL FROM main.{table}))"
            ).fetchall()[0][0]
            for table in TABLES
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    demo_database_arguments(parser, tasks=1_000_000)
    parser.add_argument("--rounds", type=int, default=4, help="before/after pairs")
    parser.add_argument(
        "--old", nargs="+", choices=OLD_WAYS, default=list(OLD_WAYS),
        help="what the 'before' sync does the old way (default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--compare-root", type=Path,
        help="another checkout of this repository (e.g. main): 'before' runs its code as it is",
    )  # fmt: skip
    args = parser.parse_args(argv)
    mirror_sync.log.setLevel(logging.DEBUG)
    bench = bench_queries()
    folder = demo_folder(args)
    url = bench.prepare(folder, args.tasks, args.days, args.reuse)
    base = folder / "analytics.duckdb"
    first = q.sync_mirror(url, base, verify=False)
    print(f"mirror {'built' if first.full else 'brought up to date'} in {first.seconds:.1f}s")
    with psycopg.connect(url) as conn:
        total = conn.execute("SELECT count(*) FROM ai_tasks").fetchone()[0]
    changes = bench.change_tasks(url, total)
    load = os.getloadavg()
    print(f"{total:,} tasks; changed {changes}; load average {load[0]:.1f}/{load[1]:.1f}; "
          f"before: {args.compare_root or 'old ' + ', '.join(args.old)}")  # fmt: skip
    before = {"old": set(args.old), "root": ROOT}
    if args.compare_root:
        before = {"old": set(), "root": args.compare_root.resolve()}
    ways = {"before": before, "after": {"old": set(), "root": ROOT}}
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    for n in range(args.rounds):
        for name in ("before", "after") if n % 2 == 0 else ("after", "before"):
            done = sync_copy(url, base, folder / f"sync-{name}.duckdb", **ways[name])
            runs[name].append(done)
            shown = ", ".join(f"{step} {ms:.0f}" for step, ms in done["steps"].items())
            print(f"round {n} {name}: {done['seconds']:.2f}s, cpu {done['cpu']:.2f}s "
                  f"(load {os.getloadavg()[0]:.1f}; {shown})", flush=True)  # fmt: skip
    for name, done in runs.items():
        steps = {step for one in done for step in one["steps"]}
        medians = {step: statistics.median(one["steps"].get(step, 0.0) for one in done)
                   for step in steps}  # fmt: skip
        shown = ", ".join(f"{step} {ms:.0f}" for step, ms in sorted(medians.items()))
        seconds = statistics.median(one["seconds"] for one in done)
        cpu = statistics.median(one["cpu"] for one in done)
        print(f"median {name}: {seconds:.2f}s, cpu {cpu:.2f}s ({shown})")
    diff = differences(folder / "sync-before.duckdb", folder / "sync-after.duckdb")
    print(f"rows that differ between the two copies: {diff}")
    return 1 if any(diff.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
