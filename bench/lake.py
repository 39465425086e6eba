"""Benchmark: the lake (issue 15) at one scale, with the figures docs/scale.md quotes.

    python bench/lake.py --url postgresql://127.0.0.1:5432/DB [--tasks 1000000] [--days 90]

Uses the (empty or demo-filled) database at --url; DB is recreated unless --reuse.
1. Demo ingest of --tasks tasks (bulk path, exact totals): rows/s.
2. Mirror: full build, then 10,000 changed tasks (4k updated, 4k inserted, 2k deleted) and
   an incremental sync; rebuild / incremental ratio.
3. Lake: full export, no-change export, export after the changes (only touched months).
4. Overview rollups over the last 30 days: mirror (DuckDB), lake with DuckDB, lake with
   ClickHouse (chdb); medians of 3 warm runs.
5. 10,000 tasks of the last day updated: mirror sync + export (one month rewritten).
6. `purge --archive` of the runs idle for --purge-days (default 60): confirmed in the lake,
   moved to its archive, deleted in batches; then the mirror sync that applies it.
Prints one JSON object; nothing is asserted (tests check correctness).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import queries as q  # noqa: E402
from ingest import demo  # noqa: E402
from ingest.store import database, retention  # noqa: E402
from queries import Filters  # noqa: E402
from queries.lake import rollups as lake  # noqa: E402
from queries.lake.archive import Archiver  # noqa: E402
from queries.lake.cli import ARCHIVE_BATCH_RUNS  # noqa: E402
from queries.lake.export import export_lake  # noqa: E402
from queries.lake.store import open_store  # noqa: E402


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
    """4,000 updates, 4,000 inserts (copies with new ids), 2,000 deletes."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ai_tasks SET tokens_output = tokens_output + 1 WHERE id IN "
            "(SELECT id FROM ai_tasks ORDER BY id LIMIT 4000)"
        )
        conn.execute(
            "INSERT INTO ai_tasks (run_id, task_id, user_id, provider, model, status, "
            "tokens_input, tokens_output, cost, created_at) "
            "SELECT run_id, gen_random_uuid(), user_id, provider, model, status, tokens_input, "
            "tokens_output, cost, created_at FROM ai_tasks ORDER BY id DESC LIMIT 4000"
        )
        conn.execute(
            "DELETE FROM ai_tasks WHERE id IN (SELECT id FROM ai_tasks ORDER BY task_id LIMIT 2000)"
        )


def change_recent_tasks(url: str) -> None:
    """10,000 updates of tasks created in the last day (the usual shape of new writes)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ai_tasks SET tokens_output = tokens_output + 1 WHERE id IN "
            "(SELECT id FROM ai_tasks ORDER BY created_at DESC LIMIT 10000)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--purge-days", type=int, default=60)
    args = parser.parse_args()
    out: dict[str, object] = {"tasks": args.tasks}
    end = datetime.now(UTC)
    if not args.reuse:
        recreate(args.url)
        url = database.database_url(args.url)
        started = time.perf_counter()
        demo.generate(url, tasks=args.tasks, seed=1, days=args.days, end=end)
        seconds = time.perf_counter() - started
        out["demo_ingest_s"] = round(seconds, 1)
        out["demo_ingest_tasks_per_s"] = round(args.tasks / seconds)
    url = database.database_url(args.url)
    folder = Path(tempfile.mkdtemp(prefix="ai-runs-bench-lake-"))
    mirror_path = folder / "mirror.duckdb"
    full = q.sync_mirror(url, mirror_path, full=True)
    out["mirror_full_s"] = round(full.seconds, 2)
    con = q.open_mirror(mirror_path)
    store = open_store(str(folder / "lake"))
    first = export_lake(con, store)
    out["lake_full_export_s"] = round(first.seconds, 2)
    out["lake_bytes"] = sum(
        (Path(store.root) / f).stat().st_size for f in store.files() if f.endswith(".parquet")
    )
    out["lake_noop_export_s"] = round(export_lake(con, store).seconds, 2)
    change_tasks(url)
    inc = q.sync_mirror(url, con=con)
    out["mirror_incremental_10k_s"] = round(inc.seconds, 2)
    out["mirror_rebuild_over_incremental"] = round(full.seconds / inc.seconds, 1)
    after = export_lake(con, store)
    out["lake_export_after_10k_s"] = round(after.seconds, 2)
    out["lake_partitions_rewritten"] = after.written
    window = Filters.last_days(30, now=end)
    duck, clickhouse = lake.LakeDuckDB(store), lake.LakeClickHouse(store)
    rollups = {
        "usage by day x model": (
            lambda: q.usage_over_time(con, window, "day", by="model"),
            lambda e: lake.usage_over_time(e, window, "day", "model"),
        ),
        "usage by team": (
            lambda: q.usage_by(con, window, "team"),
            lambda e: lake.usage_by(e, window, "team"),
        ),
        "KPI row": (lambda: q.kpis(con, window), lambda e: lake.kpis(e, window)),
        "TTFT percentiles by day x model": (
            lambda: q.latency_percentiles(con, window, "ttft", by="model", grain="day"),
            lambda e: lake.latency_percentiles(e, window, "ttft", "model", "day"),
        ),
        "failure rates by week x provider": (
            lambda: q.failure_rates(con, window, by="provider", grain="week"),
            lambda e: lake.failure_rates(e, window, "provider", "week"),
        ),
    }
    timings = {}
    for name, (on_mirror, on_lake) in rollups.items():
        timings[name] = [median_ms(on_mirror)] + [
            median_ms(lambda engine=engine, on_lake=on_lake: on_lake(engine))
            for engine in (duck, clickhouse)
        ]
    out["rollups_ms_mirror_lakeduckdb_lakechdb"] = timings
    change_recent_tasks(url)
    started = time.perf_counter()
    q.sync_mirror(url, con=con)
    recent = export_lake(con, store)
    out["sync_and_export_after_10k_recent_s"] = round(time.perf_counter() - started, 2)
    out["lake_partitions_rewritten_recent"] = recent.written
    archiver = Archiver(store)
    started = time.perf_counter()
    purged = retention.purge_old_runs(
        url,
        older_than=timedelta(days=args.purge_days),
        confirm=archiver,
        batch_runs=ARCHIVE_BATCH_RUNS,
    )
    seconds = time.perf_counter() - started
    out["purge_archive"] = {
        "runs": purged.runs,
        "tasks": purged.tasks,
        "batches": purged.batches,
        "seconds": round(seconds, 1),
        "tasks_per_s": round(purged.tasks / seconds) if seconds else None,
        "deletions_pruned": purged.deletions_pruned,
    }
    out["mirror_sync_after_purge_s"] = round(q.sync_mirror(url, con=con).seconds, 2)
    con.close()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
