"""Benchmark: the incremental sync of 10,000 tasks changed at random over the demo's days
(issue 26, item 3), as it is and as it was, on copies of the same mirror in one run.

    python bench/sync_scatter.py [--tasks 1000000] [--dir PATH] [--reuse] [--rounds 4]
                                 [--old WAY ...] [--compare-root DIR] [--cold]

1. Prepares the demo database like bench/queries.py (--reuse keeps one) and builds or
   brings up to date its mirror, PATH/analytics.duckdb.
2. Changes 10,000 tasks like bench/queries.py (40% updated and 20% deleted at random over
   the days, 40% inserted now).
3. Each round syncs a fresh copy of the mirror twice, in alternating order: "before" with
   (--old, default all four) ADBC reading Postgres' whole type catalog on connect, every
   change read over one connection, the copies of changed rows found by id over the
   whole table (the mirror's `logged_times` fact removed), and the day totals not kept
   (their tables then differ, and are not compared); "after" as the sync runs now
   (docs/scale.md, "The incremental sync of scattered changes"). With --compare-root DIR
   (another checkout of this repository, e.g. main), "before" runs DIR's code as it is.
   Each sync runs in a process of its own. The first sync reads the changed rows
   from pages just written (it also sets their hint bits); later ones find them in
   Postgres' shared buffers, unless --cold restarts Postgres before each sync (its shared
   buffers empty, the system's file cache as it was).
4. Prints each sync's time, the CPU time of its process and of Postgres, and its
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
from ingest.store import embedded  # noqa: E402
from queries.mirror import sync as mirror_sync  # noqa: E402

TABLES = ("tasks", "runs", "users", "scores", "task_scores", "rare_tasks", "run_keys",
          "user_keys", "run_key_days", "dim_values")  # fmt: skip


OLD_WAYS = ("connect", "extract", "removal", "day_totals")
# What the apply runs to keep the day totals (queries/mirror/sql/day_totals.sql), each
# made a no-op for a "before" sync without them (in the child process, _CHILD).
DAY_TOTAL_UPKEEP = ("start_day_total_changes", "old_day_total_copies", "new_day_total_copies",
                    "merge_day_totals", "merge_day_tag_totals", "compact_day_totals",
                    "day_totals_of_teams", "day_totals_of_runs")  # fmt: skip

# The child process of one sync (sync_copy): argv is root, url, copy, old ways. It opens the
# mirror and syncs through the open connection, as the dashboard does, then checkpoints
# (which DuckDB does anyway once its log is large enough, on a later sync or query). It
# prints one JSON line: seconds of the sync, its steps (ms, and "<step> cpu" when the code
# logs them), the CPU seconds of this process over the sync, and the checkpoint's seconds.
_CHILD = """
import json, logging, resource, sys, time
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
            if '(cpu ' in ms:
                cpu = float(ms.split('(cpu ')[1].split()[0])
                self.steps[name + ' cpu'] = self.steps.get(name + ' cpu', 0.0) + cpu
if 'removal' in old:
    with duckdb.connect(copy) as con:
        con.execute('DELETE FROM mirror_meta WHERE key = $key', {'key': mirror_sync.LOGGED_TIMES})
if 'connect' in old:
    mirror_sync._CONNECT_OPTIONS = {}
if 'extract' in old:
    mirror_sync.EXTRACT_CONNECTIONS = 1
if 'day_totals' in old:
    import dataclasses
    from sync_scatter import DAY_TOTAL_UPKEEP
    named = dict(mirror_sync.duck_sql())
    for name in DAY_TOTAL_UPKEEP:
        named[name] = dataclasses.replace(named[name], sql='SELECT 1')
    mirror_sync.duck_sql = named.copy
mirror_sync.log.setLevel(logging.DEBUG)
handler = StepTimes()
mirror_sync.log.addHandler(handler)
con = q.open_mirror(copy)
usage = resource.getrusage(resource.RUSAGE_SELF)
result = q.sync_mirror(url, con=con, verify=False)
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
assert not result.full, result.reason
started = time.perf_counter()
con.execute('CHECKPOINT')
checkpoint = time.perf_counter() - started
con.close()
print(json.dumps({'seconds': result.seconds, 'steps': handler.steps, 'cpu': cpu,
                  'checkpoint': checkpoint}))
"""


def sync_copy(
    url: str, base: Path, copy: Path, *, old: set[str], root: Path = ROOT, pgdata: Path
) -> dict:
    """Sync a fresh copy of `base` at `copy` in a process of its own, with the code of the
    checkout `root` and the OLD_WAYS named in `old` as they were (connect: the whole type
    catalog; extract: one connection; removal: by id everywhere; day_totals: not kept).
    Returns seconds, steps (ms), cpu (seconds of the syncing process), postgres_cpu
    (seconds of the Postgres server of `pgdata` over the whole child process) and
    checkpoint (seconds)."""
    for stale in copy.parent.glob(copy.name + "*"):
        stale.unlink()
    shutil.copy(base, copy)
    command = [sys.executable, "-c", _CHILD, str(root), url, str(copy), *sorted(old)]
    postgres = postgres_cpu(pgdata)
    done = subprocess.run(command, cwd=root, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["postgres_cpu"] = postgres_cpu(pgdata) - postgres
    return result


def postgres_cpu(pgdata: Path) -> float:
    """CPU seconds used so far by the Postgres server of `pgdata`: its postmaster, the
    backends that ended (counted in the postmaster's children times) and those running."""
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        pid, parent = int(stat.parent.name), int(fields[1])
        if pid == postmaster or parent == postmaster:
            ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def summary(done: dict) -> str:
    """A sync's seconds, client and Postgres CPU seconds, and the checkpoint after it."""
    return (f"{done['seconds']:.2f}s, cpu {done['cpu']:.2f}s + postgres "
            f"{done['postgres_cpu']:.2f}s, checkpoint {done['checkpoint']:.2f}s")  # fmt: skip


def steps_shown(steps: dict[str, float]) -> str:
    """ "step wall/cpu" in ms, in the order the sync took them."""
    return ", ".join(
        f"{step} {ms:.0f}" + (f"/{steps[step + ' cpu']:.0f}" if step + " cpu" in steps else "")
        for step, ms in steps.items()
        if not step.endswith(" cpu")
    )


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
        "--cold", action="store_true",
        help="restart Postgres before each sync: its shared buffers start empty",
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
            copy = folder / f"sync-{name}.duckdb"
            if args.cold:
                embedded.stop(folder / "pgdata")
                embedded.start(folder / "pgdata")
            done = sync_copy(url, base, copy, **ways[name], pgdata=folder / "pgdata")
            runs[name].append(done)
            print(f"round {n} {name}: {summary(done)} (load {os.getloadavg()[0]:.1f}; "
                  f"{steps_shown(done['steps'])})", flush=True)  # fmt: skip
    for name, done in runs.items():
        steps = dict.fromkeys(step for one in done for step in one["steps"])
        medians = {step: statistics.median(one["steps"].get(step, 0.0) for one in done)
                   for step in steps}  # fmt: skip
        middle = {key: statistics.median(one[key] for one in done) for key in done[0]
                  if key != "steps"}  # fmt: skip
        print(f"median {name}: {summary(middle)} ({steps_shown(medians)})")
    diff = differences(folder / "sync-before.duckdb", folder / "sync-after.duckdb")
    print(f"rows that differ between the two copies: {diff}")
    return 1 if any(diff.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
