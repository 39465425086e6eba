"""The lake export to Delta tables: equal to the mirror, and plain Delta readers (deltalake,
DuckDB, Polars, ClickHouse) get Postgres's exact counts and sums after inserts, updates and
deletes; incremental (only changed months rewritten, one commit per table, none when
nothing changed); time travel; an interrupted export publishes nothing; concurrent writers;
S3 (moto's server on 127.0.0.1); converting a lake of the old manifest layout."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import make_run, make_task
from deltalake import DeltaTable
from lake_support import (
    END,
    assert_lake_equals_mirror,
    assert_plain_readers_equal_postgres,
    demo_mirror,
    plain_reader_totals,
    postgres_totals,
)

import queries as q
from queries.lake import export as lake_export
from queries.lake import tables
from queries.lake.export import export_lake
from queries.lake.store import open_store


@pytest.fixture
def mirror(db_url, tmp_path):
    con = demo_mirror(db_url, tmp_path)
    yield con
    con.close()


def test_plain_readers_get_postgres_numbers_after_inserts_updates_and_deletes(
    db_url, mirror, tmp_path
):
    lake = str(tmp_path / "lake")
    store = open_store(lake)
    first = export_lake(mirror, store)
    assert first.written["tasks"] >= 3 and first.kept["tasks"] == 0
    assert first.versions == {"tasks": 0, "runs": 0, "users": 0, "scores": 0}
    assert_lake_equals_mirror(mirror, lake)
    assert_plain_readers_equal_postgres(db_url, lake)
    before = postgres_totals(db_url)

    again = export_lake(mirror, store)  # nothing changed: no commit at all
    assert again.written == {"tasks": 0, "runs": 0, "users": 0, "scores": 0}
    assert again.versions == first.versions

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
    assert changed.versions["tasks"] == 1  # one transaction
    assert_lake_equals_mirror(mirror, lake)
    assert_plain_readers_equal_postgres(db_url, lake)

    latest = tables.commits(DeltaTable(f"{lake}/tasks"), 1)[0]
    assert latest["ai_runs"]["months"] == ["2026-05"]
    assert (
        latest["ai_runs"]["source"]["horizon"]
        == mirror.execute("SELECT value FROM mirror_meta WHERE key = 'horizon'").fetchone()[0]
    )
    assert latest["operationParameters"]["predicate"] == "month = '2026-05'"  # replaceWhere

    # Time travel: as of version 0 every reader sees the lake before the changes.
    old = DeltaTable(f"{lake}/tasks", version=0).to_pyarrow_table(columns=["cost"])
    assert (old.num_rows, Decimal(str(pa.compute.sum(old["cost"]).as_py()))) == before["tasks"][:2]


def test_interrupted_export_publishes_nothing(db_url, mirror, tmp_path, monkeypatch):
    lake = str(tmp_path / "lake")
    store = open_store(lake)
    export_lake(mirror, store)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE ai_tasks SET tokens_output = tokens_output + 1")  # every month
    q.sync_mirror(db_url, con=mirror)

    real = lake_export._counted

    def dies_halfway(reader, expected, table):
        def batches():
            for number, batch in enumerate(real(reader, expected, table)):
                if number == 1 and table == "tasks":
                    raise OSError("disk full (simulated)")
                yield batch

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    monkeypatch.setattr(lake_export, "BATCH_ROWS", 200)  # several batches per export
    monkeypatch.setattr(lake_export, "_counted", dies_halfway)
    with pytest.raises(Exception, match="simulated"):
        export_lake(mirror, store)
    assert DeltaTable(f"{lake}/tasks").version() == 0  # nothing committed
    assert plain_reader_totals(lake)["deltalake"]["tasks"][0] == postgres_totals(db_url)["tasks"][0]

    monkeypatch.setattr(lake_export, "_counted", real)
    done = export_lake(mirror, store, retention_hours=0)  # vacuum: nothing older is kept
    assert done.versions["tasks"] == 1 and done.vacuumed > 0
    assert_lake_equals_mirror(mirror, lake)
    on_disk = {str(p) for p in (tmp_path / "lake" / "tasks").rglob("*.parquet")}
    assert on_disk == set(DeltaTable(f"{lake}/tasks").file_uris())  # leftovers vacuumed


def test_a_writer_overtaken_by_another_commits_nothing(tmp_path):
    store = open_store(str(tmp_path / "lake"))

    def write(snapshot, counts: dict[str, int], prints: dict, months) -> int:
        """Replace `months` of tasks (None: all) with `counts` rows per month."""
        rows = pa.table(
            {
                "id": [f"{m}-{i}" for m, n in counts.items() for i in range(n)],
                "month": [m for m, n in counts.items() for _ in range(n)],
            }
        )
        metadata = {"fingerprints": prints, "months": months, "source": {}}
        return tables.replace_months(
            store, "tasks", snapshot, rows.to_reader(), months, metadata, retention_hours=1
        )

    prints = {"2026-04": "a", "2026-05": "b"}
    assert write(None, {"2026-04": 3, "2026-05": 2}, prints, None) == 0
    first = tables.open_table(store, "tasks")
    second = tables.open_table(store, "tasks")
    write(first, {"2026-05": 4}, prints | {"2026-05": "c"}, ["2026-05"])
    with pytest.raises(tables.LakeConflict, match="another writer"):  # same month: refused
        write(second, {"2026-05": 1}, prints, ["2026-05"])
    assert DeltaTable(store.uri("tasks")).to_pyarrow_table().num_rows == 3 + 4

    # Another month: Delta rebases the stale writer's commit; its fingerprints did not see
    # the 2026-05 rewrite, so that month counts as unknown (the next export rewrites it).
    write(second, {"2026-04": 5}, prints | {"2026-04": "d"}, ["2026-04"])
    state = tables.table_state(tables.open_table(store, "tasks"))
    assert state.version == 2 and state.complete
    assert state.fingerprints == {"2026-04": "d", "2026-05": ""}


def test_bad_target_names_what_is_allowed(tmp_path):
    with pytest.raises(ValueError, match="allowed are a folder path or s3://"):
        open_store("ftp://example/lake")
    with pytest.raises(ValueError, match="needs a bucket"):
        open_store("s3://")
    with pytest.raises(ValueError, match="months must be YYYY-MM"):
        tables.month_predicate(["2026-05'; DROP"])


def test_lake_sync_and_history_commands(db_url, tmp_path, monkeypatch, capsys):
    from dashboard import command as cli

    monkeypatch.setenv("DATABASE_URL", db_url)
    with psycopg.connect(db_url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        run = make_run(conn)
        make_task(conn, run, task_id=uuid.uuid4())
    mirror_path = tmp_path / "m.duckdb"
    lake = tmp_path / "lake"
    assert cli.main(["lake", "sync", "--to", str(lake), "--mirror", str(mirror_path)]) == 0
    said = capsys.readouterr().out
    assert "tasks version 0: 1 months written, 0 dropped, 0 kept, 1 rows" in said
    assert DeltaTable(str(lake / "tasks")).to_pyarrow_table().num_rows == 1

    assert cli.main(["lake", "history", "--to", str(lake), "--table", "runs"]) == 0
    said = capsys.readouterr().out
    assert "version 0" in said and "1 rows in 1 files added" in said and "lake sync" in said
    assert "mirror horizon" in said
    assert cli.main(["lake", "history", "--to", str(lake), "--table", "nope"]) == 1
    assert "table: 'nope' is not a lake table" in capsys.readouterr().err


def test_s3_lake_on_a_local_s3_server(db_url, mirror, s3_endpoint):
    store = open_store("s3://analytics/lake")
    export_lake(mirror, store)
    options = {"storage_options": store.storage_options}
    assert_lake_equals_mirror(mirror, "s3://analytics/lake", **options)
    assert store.files("tasks/_delta_log")[0].startswith("tasks/_delta_log/0000")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM ai_tasks WHERE id IN (SELECT id FROM ai_tasks ORDER BY id LIMIT 5)"
        )
    q.sync_mirror(db_url, con=mirror)
    result = export_lake(mirror, store)
    assert 1 <= result.written["tasks"] < result.written["tasks"] + result.kept["tasks"]
    assert result.versions["tasks"] == 1
    assert_lake_equals_mirror(mirror, "s3://analytics/lake", **options)
    assert_plain_readers_equal_postgres(
        db_url, "s3://analytics/lake", endpoint=s3_endpoint, **options
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


def _old_layout_lake(folder, mirror) -> dict:
    """A lake as the manifest format wrote it (Parquet in v-<id>/ folders, _manifest.json),
    with one archived month; the archived rows."""
    tasks = mirror.sql(
        "SELECT * EXCLUDE (month) FROM (" + _projection("lake_tasks") + ") ORDER BY id"
    ).to_arrow_table()
    archived = tasks.slice(0, 7)
    manifest = {
        "format": "ai-runs-lake",
        "version": 1,
        "generation": 4,
        "written_at": "",
        "source": {},
        "tables": {},
    }
    for table, rows in (("tasks", tasks.slice(7)), ("archive_tasks", archived)):
        folder_name = "archive/tasks" if table == "archive_tasks" else table
        rel = f"{folder_name}/month=2026-01/v-0123abcd/part-0.parquet"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows, folder / rel)
        manifest["tables"][table] = {
            "partition_by": "month",
            "columns": [],
            "partitions": {"2026-01": {"files": [rel], "rows": rows.num_rows, "fingerprint": ""}},
        }
    (folder / "_manifest.json").write_text(json.dumps(manifest))
    (folder / "_manifest.previous.json").write_text(json.dumps(manifest))
    return {"rows": archived.num_rows, "cost": pa.compute.sum(archived["cost"]).as_py()}


def _projection(name: str) -> str:
    from queries import sqltext

    return sqltext.render("lake", name).sql


def test_a_lake_of_the_old_layout_is_converted_once(mirror, tmp_path):
    from queries.lake.archive import Archiver, ArchiveRefused

    lake = tmp_path / "lake"
    archived = _old_layout_lake(lake, mirror)
    store = open_store(str(lake))
    with pytest.raises(ArchiveRefused, match="old manifest layout"):
        Archiver(store)(None)

    result = export_lake(mirror, store)
    assert "converted the lake" in result.migrated and "(7 tasks, 0 runs)" in result.migrated
    assert_lake_equals_mirror(mirror, str(lake))
    archive = DeltaTable(str(lake / "archive" / "tasks")).to_pyarrow_table()
    assert archive.num_rows == archived["rows"]
    assert pa.compute.sum(archive["cost"]).as_py() == archived["cost"]
    assert set(archive["month"].to_pylist()) == {"2026-01"}
    leftovers = [
        p
        for p in lake.rglob("*")
        if p.is_file() and ("v-0123" in str(p) or p.name.startswith("_manifest"))
    ]
    assert leftovers == []
    assert export_lake(mirror, store).migrated is None  # once
