"""Benchmark: the Delta Lake lake (issue 25) at one scale, with the figures docs/lake.md and
docs/scale.md quote, beside the old manifest format measured in the same run.

    python bench/lake.py --url postgresql://127.0.0.1:5432/DB [--tasks 1000000] [--reuse]
    python bench/lake.py --dir PATH --reuse [--tasks 10000000]     # an embedded bench folder
    ... [--old-checkout DIR]   # a checkout of a commit before issue 25 (the manifest format)

1. The database: --url is recreated and filled with --tasks demo tasks unless --reuse;
   --dir is a folder of bench/queries.py (embedded Postgres; --reuse is required: its data
   is used as it is, never regenerated). Step 3 writes its 10,000 changes into it.
2. Mirror: full build.
3. Lake: full export, export with nothing changed; then 10,000 changed tasks spread over
   the last 3 calendar months (4k updated, 4k inserted, 2k deleted), mirror sync, and the
   export after them (only the touched months).
4. Overview rollups over the last 30 days (median of 3 warm runs): the mirror, then the
   lake with each reader: DuckDB (over deltalake's Arrow dataset), ClickHouse (chdb's
   deltaLakeLocal), Polars (scan_delta), deltalake (to_pyarrow_table + Polars SQL).
5. With --old-checkout: steps 3 and 4 also for the old format, on the same mirror, in a
   child process that imports that checkout (exports: full, nothing changed, after the
   same changes; rollups with DuckDB and chdb over its manifest).
6. With --purge-days: `purge --archive` of the runs idle that long, then the mirror sync
   that applies it.
Prints one JSON object with the load average beside each step; nothing is asserted (tests
check correctness).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_support import bench_queries  # noqa: E402

import queries as q  # noqa: E402
from ingest import demo  # noqa: E402
from ingest.store import database, retention  # noqa: E402
from queries import Filters  # noqa: E402
from queries.lake import rollups as lake  # noqa: E402
from queries.lake.archive import Archiver  # noqa: E402
from queries.lake.cli import ARCHIVE_BATCH_RUNS  # noqa: E402
from queries.lake.export import export_lake  # noqa: E402
from queries.lake.store import open_store  # noqa: E402

READERS = {
    "lake DuckDB": lake.LakeDuckDB,
    "lake chdb": lake.LakeClickHouse,
    "lake Polars": lake.LakePolars,
    "lake deltalake": lake.LakeArrow,
}


def load() -> float:
    """The 1-minute load average now."""
    return round(os.getloadavg()[0], 1)


def median_ms(fn, runs: int = 3) -> float:
    fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def recreate(url: str) -> None:
    name = urlparse(url).path.lstrip("/")
    admin = urlunparse(urlparse(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def change_tasks(url: str) -> None:
    """10,000 changes in the last 3 calendar months (UTC): 4,000 updates, 4,000 inserts
    (copies with new ids), 2,000 deletes, at random within those months."""
    recent = "created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') - interval '2 months'"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ai_tasks SET tokens_output = tokens_output + 1 WHERE id IN "
            f"(SELECT id FROM ai_tasks WHERE {recent} ORDER BY id LIMIT 4000)"
        )
        conn.execute(
            "INSERT INTO ai_tasks (run_id, task_id, user_id, provider, model, status, "
            "tokens_input, tokens_output, cost, created_at) "
            "SELECT run_id, gen_random_uuid(), user_id, provider, model, status, tokens_input, "
            f"tokens_output, cost, created_at FROM ai_tasks WHERE {recent} "
            "ORDER BY task_id LIMIT 4000"
        )
        conn.execute(
            f"DELETE FROM ai_tasks WHERE id IN (SELECT id FROM ai_tasks WHERE {recent} "
            "ORDER BY id DESC LIMIT 2000)"
        )


def rollups(window: Filters):
    """name -> (on the mirror, on a lake engine)."""
    return {
        "usage by day x model": (
            lambda con: q.usage_over_time(con, window, "day", by="model"),
            lambda e: lake.usage_over_time(e, window, "day", "model"),
        ),
        "usage by team": (
            lambda con: q.usage_by(con, window, "team"),
            lambda e: lake.usage_by(e, window, "team"),
        ),
        "KPI row": (lambda con: q.kpis(con, window), lambda e: lake.kpis(e, window)),
        "TTFT percentiles by day x model": (
            lambda con: q.latency_percentiles(con, window, "ttft", by="model", grain="day"),
            lambda e: lake.latency_percentiles(e, window, "ttft", "model", "day"),
        ),
        "failure rates by week x provider": (
            lambda con: q.failure_rates(con, window, by="provider", grain="week"),
            lambda e: lake.failure_rates(e, window, "provider", "week"),
        ),
    }


# Run in a child process with a checkout of the manifest format first on sys.path: the old
# `queries.lake` (export_lake, LakeDuckDB, LakeClickHouse over _manifest.json).
OLD_FORMAT = r"""
import json, os, statistics, sys, time
from datetime import UTC, datetime
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import queries as q
from queries import Filters
from queries.lake import rollups as lake
from queries.lake.export import export_lake
from queries.lake.store import open_store
mirror, folder, phase, now = sys.argv[2], Path(sys.argv[3]), sys.argv[4], sys.argv[5]
assert "manifest" in open(lake.__file__).read(), "not a checkout of the manifest format"
con = q.open_mirror(mirror)
store = open_store(str(folder))
out = {}
def ms(fn):
    fn(); times = []
    for _ in range(3):
        t = time.perf_counter(); fn(); times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 1)
if phase == "first":
    out["full_export_s"] = round(export_lake(con, store).seconds, 2)
    out["bytes"] = sum(p.stat().st_size for p in folder.rglob("*.parquet"))
    out["noop_export_s"] = round(export_lake(con, store).seconds, 2)
else:
    result = export_lake(con, store)
    out["export_after_10k_s"] = round(result.seconds, 2)
    out["partitions_rewritten"] = result.written
    window = Filters.last_days(30, now=datetime.fromisoformat(now))
    os.chdir(folder)
    engines = {"old DuckDB": lake.LakeDuckDB(store), "old chdb": lake.LakeClickHouse(store)}
    calls = {
        "usage by day x model": lambda e: lake.usage_over_time(e, window, "day", "model"),
        "usage by team": lambda e: lake.usage_by(e, window, "team"),
        "KPI row": lambda e: lake.kpis(e, window),
        "TTFT percentiles by day x model":
            lambda e: lake.latency_percentiles(e, window, "ttft", "model", "day"),
        "failure rates by week x provider":
            lambda e: lake.failure_rates(e, window, "provider", "week"),
    }
    out["rollups_ms"] = {
        name: {label: ms(lambda: call(engine)) for label, engine in engines.items()}
        for name, call in calls.items()
    }
con.close()
print(json.dumps(out))
"""


def old_format(checkout: Path, mirror: Path, folder: Path, phase: str, now: datetime) -> dict:
    """One phase ("first": full + no-change export; "changed": export + rollups) of the
    manifest format from `checkout`, in a child process (the mirror must be closed here)."""
    started = load()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            OLD_FORMAT,
            str(checkout),
            str(mirror),
            str(folder),
            phase,
            now.isoformat(),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=checkout,
    )
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"load": [started, load()]}


def lake_bytes(folder: Path) -> dict:
    """Parquet bytes on disk under the lake's live tables."""
    return {
        t: sum(p.stat().st_size for p in (folder / t).rglob("*.parquet"))
        for t in ("tasks", "runs", "users")
    }


def database_url(args: argparse.Namespace, out: dict, end: datetime) -> str:
    if args.dir is not None:
        if not args.reuse:
            raise SystemExit("--dir needs --reuse (this script never regenerates a folder)")
        # tasks=0: never generate into a shared folder, only start its server.
        return bench_queries().prepare(args.dir, 0, args.days, reuse=True)
    if not args.reuse:
        recreate(args.url)
        url = database.database_url(args.url)
        started = time.perf_counter()
        demo.generate(url, tasks=args.tasks, seed=1, days=args.days, end=end)
        out["demo_ingest_s"] = round(time.perf_counter() - started, 1)
    return database.database_url(args.url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="a Postgres database (recreated unless --reuse)")
    source.add_argument("--dir", type=Path, help="a bench/queries.py folder (with --reuse)")
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--old-checkout", type=Path, help="checkout of the manifest format")
    parser.add_argument("--purge-days", type=int, help="also time purge --archive")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    end = datetime.now(UTC)
    out: dict[str, object] = {"load_start": load()}
    url = database_url(args, out, end)
    with psycopg.connect(url) as conn:
        out["tasks"] = conn.execute("SELECT count(*) FROM ai_tasks").fetchone()[0]
        last = conn.execute("SELECT max(created_at) FROM ai_tasks").fetchone()[0]
    end = last + timedelta(seconds=1)  # windows end with the data
    folder = Path(tempfile.mkdtemp(prefix="ai-runs-bench-lake-"))
    mirror_path = folder / "mirror.duckdb"
    full = q.sync_mirror(url, mirror_path, full=True)
    out["mirror_full_s"] = [round(full.seconds, 1), load()]
    con = q.open_mirror(mirror_path)
    store = open_store(str(folder / "lake"))
    first = export_lake(con, store)
    out["delta_full_export_s"] = [round(first.seconds, 2), load()]
    out["delta_bytes"] = lake_bytes(folder / "lake")
    noop = export_lake(con, store)
    out["delta_noop_export_s"] = [round(noop.seconds, 2), load()]
    con.close()
    old_lake = folder / "old-lake"
    if args.old_checkout:
        out["old_first"] = old_format(args.old_checkout, mirror_path, old_lake, "first", end)
    change_tasks(url)
    con = q.open_mirror(mirror_path)
    out["mirror_sync_after_10k_s"] = [round(q.sync_mirror(url, con=con).seconds, 2), load()]
    con.close()
    if args.old_checkout:
        out["old_changed"] = old_format(args.old_checkout, mirror_path, old_lake, "changed", end)
    con = q.open_mirror(mirror_path)
    after = export_lake(con, store)
    out["delta_export_after_10k_s"] = [round(after.seconds, 2), load()]
    out["delta_months_rewritten"] = after.written
    out["delta_versions"] = after.versions
    window = Filters.last_days(30, now=end)
    os.chdir(store.root)  # chdb reads local Delta tables below its working directory
    timings = {}
    for name, (on_mirror, on_lake) in rollups(window).items():
        timings[name] = {"mirror": median_ms(lambda on_mirror=on_mirror: on_mirror(con))}
        for label, reader in READERS.items():
            engine = reader(store)
            timings[name][label] = median_ms(lambda engine=engine, on_lake=on_lake: on_lake(engine))
    out["rollups_ms"] = timings
    out["rollups_load"] = load()
    if args.purge_days:
        out["purge"] = purge(url, store, args.purge_days, con)
    con.close()
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


def purge(url: str, store, days: int, con) -> dict:
    """purge --archive of the runs idle for `days`, then the mirror sync that applies it."""
    archiver = Archiver(store)
    started = time.perf_counter()
    purged = retention.purge_old_runs(
        url, older_than=timedelta(days=days), confirm=archiver, batch_runs=ARCHIVE_BATCH_RUNS
    )
    seconds = time.perf_counter() - started
    return {
        "runs": purged.runs,
        "tasks": purged.tasks,
        "batches": purged.batches,
        "seconds": round(seconds, 1),
        "tasks_per_s": round(purged.tasks / seconds) if seconds else None,
        "load": load(),
        "mirror_sync_after_s": round(q.sync_mirror(url, con=con).seconds, 2),
    }


if __name__ == "__main__":
    main()
