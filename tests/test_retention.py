"""Retention: `purge` hard-deletes old runs whole, keeps every invariant, lets the mirror
apply the deletes, prunes the deletion log once every registered mirror applied it, and
with --archive moves the runs into the lake's Delta archive first (refusing when the lake
is stale): plain Delta readers then get Postgres's exact numbers from the live tables and
the whole history from live + archive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import psycopg
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable
from lake_support import (
    assert_lake_equals_mirror,
    assert_plain_readers_equal_postgres,
    demo_mirror,
)

import queries as q
from ingest.store import database, retention
from queries.lake.archive import Archiver, ArchiveRefused
from queries.lake.export import export_lake
from queries.lake.store import open_store

NOW = datetime(2026, 6, 1, tzinfo=UTC)  # the demo data ends here (lake_support.END)


def pg_totals(url: str) -> dict:
    with psycopg.connect(url) as conn:
        runs, tasks, cost, tokens, orphans = conn.execute(
            "SELECT (SELECT count(*) FROM ai_runs), count(*), coalesce(sum(cost), 0), "
            "coalesce(sum(tokens_total), 0), "
            "(SELECT count(*) FROM ai_tasks t WHERE NOT EXISTS "
            " (SELECT 1 FROM ai_runs r WHERE r.id = t.run_id)) FROM ai_tasks"
        ).fetchone()
    return {"runs": runs, "tasks": tasks, "cost": cost, "tokens": tokens, "orphans": orphans}


def old_runs(url: str, cutoff: datetime) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM ai_runs r WHERE greatest(r.created_at, r.updated_at, "
            "r.last_message_at) < %s AND NOT EXISTS (SELECT 1 FROM ai_tasks t WHERE "
            "t.run_id = r.id AND greatest(t.created_at, t.updated_at, t.completed_at) >= %s)",
            (cutoff, cutoff),
        ).fetchone()[0]


@pytest.fixture
def mirror(db_url, tmp_path):
    con = demo_mirror(db_url, tmp_path, tasks=1200, days=60)
    yield con
    con.close()


def test_purge_keeps_every_invariant_and_the_mirror_follows(db_url, mirror):
    cutoff = NOW - timedelta(days=30)
    assert old_runs(db_url, cutoff) > 0
    result = retention.purge_old_runs(db_url, older_than=timedelta(days=30), now=NOW, batch_runs=40)
    assert result.runs > 40 and result.batches >= 2  # several batches
    assert old_runs(db_url, cutoff) == 0
    after = pg_totals(db_url)
    assert after["orphans"] == 0
    assert database.run_totals_mismatches(db_url) == []
    with psycopg.connect(db_url) as conn:  # every run's totals equal its remaining tasks
        assert conn.execute("SELECT sum(total_cost), sum(task_count) FROM ai_runs").fetchone() == (
            after["cost"],
            after["tasks"],
        )

    synced = q.sync_mirror(db_url, con=mirror)
    assert not synced.full and synced.deleted["runs"] == result.runs
    assert synced.deleted["tasks"] == result.tasks
    assert mirror.execute("SELECT count(*), sum(cost) FROM tasks").fetchone() == (
        after["tasks"],
        after["cost"],
    )
    assert mirror.execute("SELECT count(*) FROM runs").fetchone()[0] == after["runs"]


def test_deletion_log_is_pruned_once_every_registered_mirror_applied_it(db_url, mirror):
    retention.purge_old_runs(db_url, older_than=timedelta(days=30), now=NOW, prune=False)
    lagging = "elsewhere:/old/mirror.duckdb"
    with psycopg.connect(db_url) as conn:
        logged = conn.execute("SELECT count(*) FROM ai_sync_deletions").fetchone()[0]
    assert logged > 0
    retention.record_mirror_horizon(db_url, lagging, 1)  # has applied none of them
    q.sync_mirror(db_url, con=mirror)  # this one has, and registers itself
    names = [m["name"] for m in retention.list_mirrors(db_url)]
    assert lagging in names and len(names) == 2

    removed, mirrors = retention.prune_sync_deletions(db_url)
    assert removed == 0 and mirrors[0]["name"] == lagging  # held back by the lagging one

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ai_sync_mirrors SET synced_at = now() - interval '40 days' WHERE name = %s",
            (lagging,),
        )
    assert retention.forget_idle_mirrors(db_url, idle_for=timedelta(days=30)) == [lagging]
    (applied,) = retention.list_mirrors(db_url)
    with psycopg.connect(db_url) as conn:
        below = "SELECT count(*) FROM ai_sync_deletions WHERE sync_xid < %s::text::xid8"
        expected = conn.execute(below, (str(applied["horizon"]),)).fetchone()[0]
    # All of them when no other transaction on the server held the horizon back.
    removed, _ = retention.prune_sync_deletions(db_url)
    assert removed == expected
    assert retention.pruned_below(db_url) == applied["horizon"]
    with psycopg.connect(db_url) as conn:
        assert conn.execute(below, (str(applied["horizon"]),)).fetchone()[0] == 0

    # A mirror behind the pruned watermark cannot trust the log: it rebuilds, exactly.
    mirror.execute("UPDATE mirror_meta SET value = '1' WHERE key = 'horizon'")
    rebuilt = q.sync_mirror(db_url, con=mirror)
    assert rebuilt.full and "pruned" in rebuilt.reason


def export_then_purge(db_url: str, mirror, lake: str, batch_runs: int):
    """Export the mirror to `lake`, then purge the runs idle for 30 days with archive;
    (store, Postgres totals before, archiver, purge result)."""
    store = open_store(lake)
    export_lake(mirror, store)
    before = pg_totals(db_url)
    archiver = Archiver(store)
    result = retention.purge_old_runs(
        db_url, older_than=timedelta(days=30), now=NOW, confirm=archiver, batch_runs=batch_runs
    )
    return store, before, archiver, result


def test_purge_with_archive_keeps_every_cent_of_history(db_url, mirror, tmp_path):
    lake = str(tmp_path / "lake")
    store, before, archiver, result = export_then_purge(db_url, mirror, lake, 60)
    assert result.runs > 0 and archiver.archived_runs == result.runs
    assert archiver.archived_tasks == result.tasks

    def history() -> tuple:
        """Live + archive, read by plain DuckDB over deltalake's Arrow datasets."""
        live = DeltaTable(f"{lake}/tasks").to_pyarrow_dataset()  # noqa: F841
        archived = DeltaTable(f"{lake}/archive/tasks").to_pyarrow_dataset()  # noqa: F841
        return duckdb.sql(
            "SELECT count(*), count(DISTINCT id), sum(cost) FROM "
            "(SELECT id, cost FROM live UNION ALL SELECT id, cost FROM archived)"
        ).fetchall()[0]

    assert history() == (before["tasks"], before["tasks"], before["cost"])
    # Each batch: one commit on each live table, then one on each archive table.
    purges = [c for c in DeltaTable(f"{lake}/archive/tasks").history() if "ai_runs.purge" in c]
    assert len(purges) == result.batches
    q.sync_mirror(db_url, con=mirror)  # the mirror applies the purge; the lake follows it
    export_lake(mirror, store)
    assert_lake_equals_mirror(mirror, lake)
    assert_plain_readers_equal_postgres(db_url, lake)  # live tables = Postgres, exactly
    assert history() == (before["tasks"], before["tasks"], before["cost"])


def test_purge_with_archive_on_s3(db_url, mirror, s3_endpoint):
    lake = "s3://analytics/lake"
    store, before, archiver, result = export_then_purge(db_url, mirror, lake, 200)
    assert result.tasks > 0 and archiver.archived_tasks == result.tasks
    options = store.storage_options
    parts = [
        DeltaTable(f"{lake}/{t}", storage_options=options).to_pyarrow_table(columns=["cost"])
        for t in ("tasks", "archive/tasks")
    ]
    assert sum(p.num_rows for p in parts) == before["tasks"]
    assert sum(pc.sum(p["cost"]).as_py() or 0 for p in parts) == before["cost"]
    q.sync_mirror(db_url, con=mirror)
    export_lake(mirror, store)
    assert_plain_readers_equal_postgres(db_url, lake, endpoint=s3_endpoint, storage_options=options)


def test_purge_with_archive_refuses_a_stale_lake_and_deletes_nothing(db_url, mirror, tmp_path):
    store = open_store(str(tmp_path / "lake"))
    export_lake(mirror, store)
    versions = {t: DeltaTable(f"{store.root}/{t}").version() for t in ("tasks", "runs")}
    with psycopg.connect(db_url, autocommit=True) as conn:  # changed after the export
        conn.execute(
            "UPDATE ai_tasks SET cost = coalesce(cost, 0) + 1 "
            "WHERE id = (SELECT id FROM ai_tasks ORDER BY created_at LIMIT 1)"
        )
    before = pg_totals(db_url)
    with pytest.raises(ArchiveRefused, match="lake sync"):
        retention.purge_old_runs(
            db_url,
            older_than=timedelta(days=1),
            now=datetime.now(UTC) + timedelta(days=30),  # every run is old
            confirm=Archiver(store),
            batch_runs=100_000,
        )
    assert pg_totals(db_url) == before
    assert {t: DeltaTable(f"{store.root}/{t}").version() for t in versions} == versions


def test_purge_command_refuses_a_bad_age(db_url, monkeypatch, capsys):
    from dashboard import command as cli

    monkeypatch.setenv("DATABASE_URL", db_url)
    assert cli.main(["purge", "--older-than", "soon"]) == 1
    assert "older_than: 'soon' is not an age" in capsys.readouterr().err
