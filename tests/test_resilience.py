"""An import survives its Postgres being restarted under it: every row exactly once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from builders import table_rows

from ingest import demo
from ingest.store import database, embedded
from ingest.transfer import import_export as transfer

TASKS = 5_000


@pytest.fixture
def own_server(tmp_path: Path):
    """A private embedded Postgres (this test restarts it): (pgdata, server URL)."""
    pgdata = tmp_path / "pgdata"
    url = embedded.start(pgdata)
    try:
        yield pgdata, url
    finally:
        embedded.stop(pgdata)


def count_tasks(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute("SELECT count(*) FROM ai_tasks").fetchone()[0]
    except psycopg.OperationalError:
        return -1


def test_import_resumes_after_the_server_restarts_and_writes_each_row_once(own_server, tmp_path):
    pgdata, server = own_server
    source = embedded.ensure_database(server, "source")
    target = embedded.ensure_database(server, "target")
    database.migrate(source)
    database.migrate(target)
    demo.generate(source, tasks=TASKS, seed=11, days=14, end=datetime(2026, 9, 1, tzinfo=UTC))
    dump = tmp_path / "dump.jsonl"
    transfer.export_file(dump, source)

    restarts: list[int] = []
    done = threading.Event()

    def restart_when(thresholds: list[int]) -> None:
        for threshold in thresholds:
            while not done.is_set() and count_tasks(target) < threshold:
                time.sleep(0.02)
            if done.is_set():
                return
            restarts.append(count_tasks(target))
            embedded.stop(pgdata)
            time.sleep(0.3)  # the importer finds no server for a while
            embedded.start(pgdata)

    restarter = threading.Thread(target=restart_when, args=([TASKS // 4, TASKS // 2],))
    restarter.start()
    try:
        summary = transfer.import_files([dump], target, batch_rows=300, retry_seconds=30)
    finally:
        done.set()
        restarter.join()

    assert len(restarts) == 2, "the server was not restarted during the import"
    assert summary.retries >= 2
    assert summary.rejected == []
    assert summary.inserted["task"] == TASKS and summary.duplicates["task"] == 0
    for table in ("ai_users", "ai_runs", "ai_tasks"):
        assert table_rows(target, table) == table_rows(source, table), table
    assert database.run_totals_mismatches(target) == []
