"""Import and export: exact round trips, idempotent re-import, bad lines reported."""

from __future__ import annotations

import gc
import itertools
import json
import os
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from builders import make_run, make_task
from psycopg.rows import dict_row

from dashboard import command as cli
from ingest import demo
from ingest.store import database
from ingest.transfer import import_export as transfer

END = datetime(2026, 10, 1, tzinfo=UTC)
_names = itertools.count()
NASTY = 'a\tb\nc\r\\d "q" ,; ü 🙂'


@pytest.fixture
def target_url(make_db) -> str:
    """A second fresh migrated database: where the export is imported."""
    return make_db()


def table(url: str, name: str) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute(f"SELECT * FROM {name} ORDER BY id").fetchall()
    for row in rows:
        row.pop("sync_xid")
    return rows


def add_edge_cases(conn: psycopg.Connection) -> None:
    """Rows the demo does not make: NULL vs '' text, \\N-like text, odd JSON, no tasks."""
    conn.execute(
        "INSERT INTO ai_users (id, display_name, email, team, role) VALUES "
        "('u-edge', %s, NULL, '', 'admin'), ('\\N', '\\\\N', '\\N', NULL, 'member')",
        (NASTY,),
    )
    run = make_run(
        conn,
        name=NASTY,
        description="",
        user_id="\\N",
        source_id=None,
        tags=[NASTY, "x,y", "{z}", "NULL"],
        messages=[{"role": "user", "content": NASTY, "timestamp": "2026-09-01T10:00:00+00:00"}],
        settings={"big": 12345678901234567890, "f": 0.1, "neg": -2.5e-7, "u": NASTY},
        metadata={"nested": {"empty": [], "null": None}},
    )
    make_task(conn, run, response_text="", user_id=None, cost=Decimal("1234567890.0123456789"))
    make_task(conn, run, response_text="\\\\N", model=None, cost=None, tokens_total=7,
              response_errors={"e": NASTY}, status="failed")  # fmt: skip
    make_run(conn, name="", source_type="custom", description=None)  # a run without tasks
    fork = make_run(conn, parent_run_id=run, forked_from_message=0)
    make_task(conn, fork, status="completed")
    conn.execute("UPDATE ai_tasks SET status = 'completed' WHERE model IS NULL")


@pytest.mark.parametrize("fmt, workers", [("jsonl", 0), ("csv", 0), ("jsonl", 2), ("csv", 2)])
def test_export_then_import_round_trips_every_column(
    db_url, conn, target_url, tmp_path, fmt, workers
):
    demo.generate(db_url, tasks=1000, seed=5, days=20, end=END)
    add_edge_cases(conn)
    path = tmp_path / f"all.{fmt}"
    counts = transfer.export_file(path, db_url)
    assert counts["task"] == 1003 and counts["user"] > 2
    summary = transfer.import_files([path], target_url, batch_rows=700, workers=workers)
    assert summary.rejected == []
    assert summary.inserted == counts and sum(summary.duplicates.values()) == 0
    for name in ("ai_users", "ai_runs", "ai_tasks"):
        assert table(target_url, name) == table(db_url, name), name
    assert database.run_totals_mismatches(target_url) == []

    again = transfer.import_files([path], target_url)
    assert sum(again.inserted.values()) == 0 and again.duplicates == counts
    assert database.run_totals_mismatches(target_url) == []
    assert table(target_url, "ai_runs") == table(db_url, "ai_runs")


def test_runs_and_tasks_in_two_files_in_any_order(db_url, target_url, tmp_path):
    demo.generate(db_url, tasks=300, seed=2, days=10, end=END)
    everything = tmp_path / "all.jsonl"
    transfer.export_file(everything, db_url)
    lines = everything.read_text().splitlines(keepends=True)
    tasks = tmp_path / "tasks.jsonl"
    runs = tmp_path / "runs.ndjson"
    # Tasks first, without the type field (told apart by their columns).
    tasks.write_text("".join(
        json.dumps({k: v for k, v in json.loads(x).items() if k != "type"}) + "\n"
        for x in reversed(lines) if '"type":"task"' in x
    ))  # fmt: skip
    runs.write_text("".join(x for x in lines if '"type":"task"' not in x))
    summary = transfer.import_files([tasks, runs], target_url, batch_rows=50)
    assert summary.rejected == [] and summary.inserted["task"] == 300
    assert table(target_url, "ai_tasks") == table(db_url, "ai_tasks")
    assert table(target_url, "ai_runs") == table(db_url, "ai_runs")
    assert database.run_totals_mismatches(target_url) == []


def test_bad_lines_are_reported_with_line_and_reason_and_not_written(target_url, tmp_path):
    run_id, missing = str(uuid.uuid4()), str(uuid.uuid4())
    good_task = {"type": "task", "run_id": run_id, "task_id": str(uuid.uuid4()),
                 "tokens_input": 3, "tokens_output": 4, "cost": "0.5"}  # fmt: skip
    lines = [
        {"type": "run", "id": run_id, "source_type": "chat", "name": "ok"},  # 1
        good_task,  # 2
        "{not json",  # 3
        {"type": "task", "run_id": run_id, "task_id": str(uuid.uuid4()), "status": "done"},
        {"type": "task", "run_id": missing, "task_id": str(uuid.uuid4())},  # 5
        {"type": "run", "id": str(uuid.uuid4()), "source_type": "email"},  # 6
        [1, 2],  # 7
        {"type": "thing"},  # 8
        {"type": "task", "run_id": run_id, "task_id": str(uuid.uuid4()), "tokens_input": -1},
        {"type": "run", "source_type": "chat"},  # 10: no id
        {"type": "task", "run_id": run_id, "task_id": str(uuid.uuid4()), "colour": "red"},
        {"type": "user", "id": "u1", "role": "boss"},  # 12
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines) + "\n"
    )
    summary = transfer.import_files([path], target_url)
    reasons = {r.line: r.reason for r in summary.rejected}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert "not valid JSON" in reasons[3]
    assert reasons[4].startswith("status:") and "completed" in reasons[4]
    assert reasons[5].startswith("run_id:") and missing in reasons[5]
    assert reasons[6].startswith("source_type:") and "workflow" in reasons[6]
    assert "JSON object" in reasons[7]
    assert reasons[8].startswith("type:")
    assert reasons[9].startswith("tokens_input:")
    assert reasons[10].startswith("id:")
    assert reasons[11].startswith("colour:")
    assert reasons[12].startswith("role:")
    assert all(str(path) == r.path for r in summary.rejected)
    assert summary.inserted == {"user": 0, "run": 1, "task": 1}
    with psycopg.connect(target_url) as conn:
        assert conn.execute("SELECT count(*) FROM ai_tasks").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM ai_runs").fetchone()[0] == 1
    assert database.run_totals_mismatches(target_url) == []


def test_csv_bad_lines_count_physical_lines(target_url, tmp_path):
    run_id = str(uuid.uuid4())
    path = tmp_path / "runs.csv"
    path.write_text(
        "id,source_type,name,settings,tags\n"
        f'{run_id},chat,"two\nlines",{{}},[]\n'  # lines 2-3
        f"{uuid.uuid4()},chat,bad settings,{{oops,[]\n"  # line 4
        f"{uuid.uuid4()},chat,short\n"  # line 5
        f'{uuid.uuid4()},prompt,\\N,"{{""a"": 1}}",\n'  # line 6: name NULL
        f'{uuid.uuid4()},prompt,fine,"{{""a"": 1}}","[""t""]"\n'  # line 7
    )
    summary = transfer.import_files([path], target_url)
    reasons = {r.line: r.reason for r in summary.rejected}
    assert sorted(reasons) == [4, 5, 6]
    assert reasons[4].startswith("settings:")
    assert "expected 5 fields" in reasons[5]
    assert reasons[6].startswith("name:")
    assert summary.inserted["run"] == 2
    with psycopg.connect(target_url) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM ai_runs")}
    assert names == {"two\nlines", "fine"}


def test_cli_import_and_export(db_url, target_url, tmp_path, monkeypatch, capsys):
    demo.generate(db_url, tasks=200, seed=1, days=5, end=END)
    monkeypatch.setenv("DATABASE_URL", db_url)
    out = tmp_path / "dump.csv"
    assert cli.main(["export", "--out", str(out)]) == 0
    assert "200 tasks" in capsys.readouterr().err
    monkeypatch.setenv("DATABASE_URL", target_url)
    assert cli.main(["import", str(out)]) == 0
    assert "tasks: 200 inserted, 0 skipped" in capsys.readouterr().out
    bad = Path(tmp_path / "bad.jsonl")
    bad.write_text('{"type": "run"}\n')
    assert cli.main(["import", str(bad)]) == 2
    captured = capsys.readouterr()
    assert f"{bad}:1: source_type: " in captured.err
    assert "rejected lines: 1" in captured.out


def test_a_row_the_database_refuses_is_isolated_and_rejected(target_url, tmp_path):
    # Validation lets almost nothing through that Postgres refuses; if something does, the
    # importer splits the batch until the row is alone. A hand-made bad COPY line stands in.
    path = tmp_path / "good.jsonl"
    run_id = str(uuid.uuid4())
    lines = [{"type": "run", "id": run_id, "source_type": "chat"}] + [
        {"type": "task", "run_id": run_id, "task_id": str(uuid.uuid4())} for _ in range(9)
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    rows = [row for row in transfer._read(path) if isinstance(row, transfer._Row)]
    rows[5].line = rows[5].line.replace(rows[5].key, "not-a-uuid")
    summary = transfer.ImportSummary()
    with transfer.bulk.BulkWriter(target_url) as writer:
        assert transfer._flush(writer, rows, summary) == []
    assert [(r.line, r.reason.split(":")[0]) for r in summary.rejected] == [(6, "task_id")]
    assert summary.inserted == {"user": 0, "run": 1, "task": 8}
    assert database.run_totals_mismatches(target_url) == []


def test_unpaired_surrogates_are_rejected_not_fatal(target_url, tmp_path):
    path = tmp_path / "odd.jsonl"
    odd = {"type": "run", "id": str(uuid.uuid4()), "source_type": "chat", "name": "x"}
    fine = {"type": "run", "id": str(uuid.uuid4()), "source_type": "chat", "name": "fine"}
    path.write_text(json.dumps(odd).replace('"x"', '"x\\ud800y"') + "\n" + json.dumps(fine))
    summary = transfer.import_files([path], target_url)
    assert [r.line for r in summary.rejected] == [1]
    assert (
        summary.rejected[0].reason.startswith("name: ")
        and "surrogate" in summary.rejected[0].reason
    )
    assert summary.inserted["run"] == 1


def test_csv_round_trip_keeps_fields_up_to_the_text_limit(db_url, target_url, tmp_path):
    """Issue 21: a CSV export of a field over 131,072 characters could not be imported."""
    from ingest.store import limits

    with psycopg.connect(db_url, row_factory=dict_row, autocommit=True) as conn:
        run = make_run(conn, description="d" * 200_000, metadata={"notes": "m" * 300_000})
        make_task(conn, run, response_text="r" * limits.MAX_LONG_TEXT)
        make_task(conn, run, response_data={"text": NASTY * 40_000}, status="completed")
    path = tmp_path / "big.csv"
    transfer.export_file(path, db_url)
    summary = transfer.import_files([path], target_url)
    assert summary.rejected == []
    assert summary.inserted["run"] == 1 and summary.inserted["task"] == 2
    assert table(target_url, "ai_tasks") == table(db_url, "ai_tasks")
    assert table(target_url, "ai_runs") == table(db_url, "ai_runs")


def test_a_csv_field_over_the_limit_is_refused_naming_line_and_column(target_url, tmp_path):
    from ingest.store import limits

    ids = [str(uuid.uuid4()) for _ in range(4)]
    over_text = "x" * (limits.MAX_LONG_TEXT + 1)  # over description's own limit
    over_csv = "y" * (transfer.CSV_FIELD_LIMIT + 1)  # over any CSV field
    path = tmp_path / "long.csv"
    path.write_text(
        "type,id,source_type,name,description\n"
        f"run,{ids[0]},chat,fine,short\n"  # line 2
        f"run,{ids[1]},chat,long,{over_text}\n"  # line 3
        f"run,{ids[2]},chat,after,short\n"  # line 4
        f'run,{ids[3]},chat,"too, long","{over_csv}"\n'  # line 5
        f"run,{uuid.uuid4()},chat,unread,short\n"  # line 6
    )
    summary = transfer.import_files([path], target_url)
    reasons = {r.line: r.reason for r in summary.rejected}
    assert sorted(reasons) == [3, 5]
    assert reasons[3].startswith("description: must be at most 16,777,216 characters")
    assert reasons[5].startswith("description: longer than")
    assert "rest of the file was not read" in reasons[5]
    with psycopg.connect(target_url) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM ai_runs")}
    assert names == {"fine", "after"}


class _Finalized:
    """An object whose finalizer notes the process it ran in."""

    def __init__(self, marks: Path) -> None:
        self.marks = marks
        self.itself = self  # a cycle: only the garbage collector frees it

    def __del__(self) -> None:
        with self.marks.open("a") as out:
            out.write(f"{os.getpid()}\n")


def test_parser_workers_never_finalize_what_they_inherited(tmp_path: Path) -> None:
    """A forked parser must not run the finalizers of objects it inherited (in the tests a
    DuckDB or Arrow handle's finalizer crashed a forked worker: BrokenProcessPool)."""
    marks = tmp_path / "finalized"
    gc.disable()
    try:
        _Finalized(marks)  # garbage at once, left for the collector
        pool = transfer._forked_pool(1)
        assert pool.submit(gc.collect).result() >= 0  # a collection in the worker
        pool.shutdown()
    finally:
        gc.enable()
    gc.collect()
    assert marks.read_text().split() == [str(os.getpid())]
