"""The lake export: equal to the mirror after inserts, updates and deletes, incremental
(only changed months rewritten), atomic (an interrupted rewrite leaves the previous
manifest readable), and the same on an S3-compatible store (moto's server on 127.0.0.1)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg
import pytest
from builders import make_run, make_task
from lake_support import END, assert_lake_equals_mirror, demo_mirror, lake_rows

import queries as q
from queries.lake import export as lake_export
from queries.lake.export import export_lake
from queries.lake.manifest import MANIFEST, read_manifest
from queries.lake.store import open_store


@pytest.fixture
def mirror(db_url, tmp_path):
    con = demo_mirror(db_url, tmp_path)
    yield con
    con.close()


def test_lake_equals_mirror_after_inserts_updates_and_deletes(db_url, mirror, tmp_path):
    store = open_store(str(tmp_path / "lake"))
    first = export_lake(mirror, store)
    assert first.written["tasks"] >= 3 and first.kept["tasks"] == 0
    assert_lake_equals_mirror(mirror, store)

    again = export_lake(mirror, store)  # nothing changed: nothing rewritten
    assert again.written == {"tasks": 0, "runs": 0, "users": 0}
    assert again.generation == first.generation + 1

    with psycopg.connect(db_url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        # Touch only May 2026: one update, one delete, one insert, one deleted run.
        may = conn.execute(
            "SELECT id, run_id FROM ai_tasks WHERE created_at >= '2026-05-01' ORDER BY id LIMIT 2"
        ).fetchall()
        conn.execute(
            "UPDATE ai_tasks SET cost = 1.25, status = 'failed' WHERE id = %s", (may[0]["id"],)
        )
        conn.execute("DELETE FROM ai_tasks WHERE id = %s", (may[1]["id"],))
        run = make_run(conn, created_at=END.replace(day=20, month=5))
        make_task(conn, run, cost=Decimal("0.5"), created_at=END.replace(day=21, month=5))
        doomed = conn.execute(
            "SELECT id FROM ai_runs WHERE created_at >= '2026-05-01' AND task_count > 0 "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()["id"]
        conn.execute("DELETE FROM ai_runs WHERE id = %s", (doomed,))
    q.sync_mirror(db_url, con=mirror)
    changed = export_lake(mirror, store)
    assert changed.written["tasks"] == 1, changed  # May only; other months kept
    assert changed.kept["tasks"] == first.written["tasks"] - 1
    assert_lake_equals_mirror(mirror, store)
    # Old files are gone once no manifest (current or previous) lists them.
    manifest, previous = read_manifest(store), read_manifest(store, "_manifest.previous.json")
    on_disk = {f for f in store.files() if f.endswith(".parquet")}
    assert on_disk == manifest.files() | previous.files()
    folders = [d for d in (tmp_path / "lake").rglob("*") if d.is_dir()]
    assert all(any(d.iterdir()) for d in folders), "garbage collection leaves no empty folder"


def test_interrupted_rewrite_leaves_the_previous_manifest_readable(
    db_url, mirror, tmp_path, monkeypatch
):
    store = open_store(str(tmp_path / "lake"))
    export_lake(mirror, store)
    before = lake_rows(store, "tasks")
    manifest_bytes = store.read_bytes(MANIFEST)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE ai_tasks SET tokens_output = tokens_output + 1")  # every month
    q.sync_mirror(db_url, con=mirror)

    real_write = lake_export.write_parquet
    calls = []

    def dies_on_second_partition(store_, rel, reader):
        calls.append(rel)
        if len(calls) == 2:
            real_write(store_, rel, _half(reader))  # a half-written file, then the crash
            raise OSError("disk full (simulated)")
        return real_write(store_, rel, reader)

    monkeypatch.setattr(lake_export, "write_parquet", dies_on_second_partition)
    with pytest.raises(OSError, match="simulated"):
        export_lake(mirror, store)
    assert store.read_bytes(MANIFEST) == manifest_bytes  # not swapped
    assert lake_rows(store, "tasks") == before  # readers see the previous, whole lake
    orphans = {f for f in store.files() if f.endswith(".parquet")} - read_manifest(store).files()
    assert len(orphans) == 2

    monkeypatch.setattr(lake_export, "write_parquet", real_write)
    export_lake(mirror, store)  # the next export finishes the job and removes the orphans
    assert_lake_equals_mirror(mirror, store)
    assert not orphans & set(store.files())


def _half(reader):
    import pyarrow as pa

    batches = list(reader)
    table = pa.Table.from_batches(batches, schema=reader.schema)
    return table.slice(0, max(1, table.num_rows // 2)).to_reader()


def test_bad_target_names_what_is_allowed(tmp_path):
    with pytest.raises(ValueError, match="allowed are a folder path or s3://"):
        open_store("ftp://example/lake")
    with pytest.raises(ValueError, match="needs a bucket"):
        open_store("s3://")


def test_lake_sync_command_syncs_the_mirror_then_exports(db_url, tmp_path, monkeypatch):
    from dashboard import command as cli

    monkeypatch.setenv("DATABASE_URL", db_url)
    with psycopg.connect(db_url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        run = make_run(conn)
        make_task(conn, run, task_id=uuid.uuid4())
    mirror_path = tmp_path / "m.duckdb"
    lake = tmp_path / "lake"
    code = cli.main(["lake", "sync", "--to", str(lake), "--mirror", str(mirror_path)])
    assert code == 0
    store = open_store(str(lake))
    assert read_manifest(store).tables["tasks"].partitions
    assert len(lake_rows(store, "tasks")) == 1


@pytest.fixture
def s3_endpoint(monkeypatch):
    """A local S3-compatible server (moto's server mode) on 127.0.0.1; its URL."""
    from moto.server import ThreadedMotoServer

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_s3_export_to_a_local_s3_server(db_url, mirror, s3_endpoint, monkeypatch):
    monkeypatch.setenv("AI_RUNS_LAKE_S3_ENDPOINT", s3_endpoint)
    import pyarrow.fs as pafs

    pafs.S3FileSystem(
        endpoint_override=s3_endpoint, scheme="http", allow_bucket_creation=True
    ).create_dir("analytics")  # the bucket
    store = open_store("s3://analytics/lake")
    export_lake(mirror, store)
    assert_lake_equals_mirror(mirror, store)
    assert store.files("tasks")[0].startswith("tasks/month=")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM ai_tasks WHERE id IN (SELECT id FROM ai_tasks ORDER BY id LIMIT 5)"
        )
    q.sync_mirror(db_url, con=mirror)
    result = export_lake(mirror, store)
    assert 1 <= result.written["tasks"] < result.written["tasks"] + result.kept["tasks"]
    assert_lake_equals_mirror(mirror, store)
    assert {f for f in store.files() if f.endswith(".parquet")} == (
        read_manifest(store).files() | read_manifest(store, "_manifest.previous.json").files()
    )


def test_lake_sync_while_another_process_holds_the_mirror(db_url, tmp_path, monkeypatch):
    """The dashboard's situation: the mirror file is locked by another process. The export
    goes through a mirror of its own, and any process can read the lake meanwhile."""
    import subprocess
    import sys

    import duckdb

    from queries.lake.read import attach_lake
    from queries.lake.sync import sync_lake

    with psycopg.connect(db_url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        run = make_run(conn)
        make_task(conn, run, cost=Decimal("0.25"))
    held = tmp_path / "analytics.duckdb"
    q.sync_mirror(db_url, held)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
            "print('held', flush=True); sys.stdin.read()",
            str(held),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(q.mirror.MirrorLocked):
            q.open_mirror(held)
        result, used = sync_lake(str(tmp_path / "lake"), url=db_url, mirror=held)
        assert used == str(tmp_path / "lake-mirror.duckdb")
        assert result.rows["tasks"] == 1
        reader = duckdb.connect()  # another reader, while the mirror is still held
        attach_lake(reader, open_store(str(tmp_path / "lake")))
        assert reader.execute("SELECT sum(cost) FROM tasks").fetchone() == (Decimal("0.25"),)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
