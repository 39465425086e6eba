"""The DuckDB mirror is exact: late commits, updates, deletes, rebuilds (docs/design.md)."""

from __future__ import annotations

import logging
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from builders import make_run, make_task

from ingest.store import database, embedded
from queries import MIRROR_SCHEMA_VERSION, mirror_freshness, open_mirror, sync_mirror

TASK_COLUMNS = "id, run_id, user_id, status, cost, tokens_total, time_to_first_token, total_time"


def pg_tasks(conn: psycopg.Connection) -> dict:
    rows = conn.execute(f"SELECT {TASK_COLUMNS} FROM ai_tasks").fetchall()
    return {row["id"]: tuple(row.values()) for row in rows}


def mirror_tasks(path: Path) -> dict:
    with open_mirror(path, read_only=True) as con:
        rows = con.execute(f"SELECT {TASK_COLUMNS} FROM tasks").fetchall()
    ids = [row[0] for row in rows]
    assert len(ids) == len(set(ids)), "a task is in the mirror twice"
    return {row[0]: row for row in rows}


def mirror_value(path: Path, sql: str, *params):
    with open_mirror(path, read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    return tmp_path / "analytics.duckdb"


@pytest.fixture(params=["alone", "held elsewhere"])
def elsewhere(request, make_db) -> Iterator[int | None]:
    """Run the test twice: as it comes, and with a transaction (with an id) left open in
    another database of the same server for the whole test, as another test or another
    application on a shared server may do. Yields that transaction's id (None: alone)."""
    if request.param == "alone":
        yield None
        return
    with psycopg.connect(make_db()) as other:  # not autocommit: one open transaction
        yield int(other.execute("SELECT pg_current_xact_id()::text").fetchone()[0])


def read_again(conn: psycopg.Connection, horizon: int, held: int | None) -> dict[str, int]:
    """Rows per mirror table stamped at or above `horizon` (a sync's result.horizon): what
    the next sync reads, re-reading unchanged rows when a transaction anywhere on the server
    held the horizon back (docs/design.md). With `held` (a transaction left open
    elsewhere), check that it did hold the horizon back."""
    if held is not None:
        assert horizon <= held
    return conn.execute(
        "SELECT (SELECT count(*) FROM ai_tasks WHERE sync_xid >= %(h)s::text::xid8) AS tasks,"
        " (SELECT count(*) FROM ai_runs WHERE sync_xid >= %(h)s::text::xid8) AS runs,"
        " (SELECT count(*) FROM ai_users WHERE sync_xid >= %(h)s::text::xid8) AS users",
        {"h": str(horizon)},
    ).fetchone()


def test_first_sync_builds_then_syncs_incrementally(conn, db_url, mirror, caplog, elsewhere):
    run = make_run(conn, user_id="ann")
    make_task(conn, run, user_id="ann", cost=Decimal("0.1234567891"))
    with caplog.at_level(logging.WARNING):
        first = sync_mirror(db_url, mirror)
    assert first.full and "missing" in first.reason
    assert "rebuilding" in caplog.text and "missing" in caplog.text
    assert first.upserted["tasks"] == 1 and first.rows == {"tasks": 1, "runs": 1, "users": 0}
    # NUMERIC arrives exact as DECIMAL(20,10).
    assert mirror_value(mirror, "SELECT cost FROM tasks") == [(Decimal("0.1234567891"),)]

    # Reads what is stamped at or above the previous horizon: nothing, unless a transaction
    # elsewhere on the server held it back (then it reads the same rows again).
    expected = read_again(conn, first.horizon, elsewhere)
    again = sync_mirror(db_url, mirror)
    assert not again.full and again.reason is None
    assert again.upserted == expected
    assert expected in ({"tasks": 0, "runs": 0, "users": 0}, {"tasks": 1, "runs": 1, "users": 0})
    assert elsewhere is None or expected["tasks"] == 1

    make_task(conn, run, user_id="ann")
    expected = read_again(conn, again.horizon, elsewhere)
    third = sync_mirror(db_url, mirror)
    # Reads the new task and its run (whose totals moved), and only those unless held.
    assert third.upserted == expected
    assert expected in ({"tasks": 1, "runs": 1, "users": 0}, {"tasks": 2, "runs": 1, "users": 0})
    assert mirror_tasks(mirror) == pg_tasks(conn)


def test_incremental_sync_reads_only_changed_rows(conn, db_url, mirror, elsewhere):
    runs = [make_run(conn) for _ in range(5)]
    for run in runs:
        for _ in range(20):
            make_task(conn, run)
    first = sync_mirror(db_url, mirror)
    assert first.upserted["tasks"] == 100
    conn.execute(
        "UPDATE ai_tasks SET status = 'completed' WHERE id IN "
        "(SELECT id FROM ai_tasks ORDER BY id LIMIT 3)"
    )
    expected = read_again(conn, first.horizon, elsewhere)
    result = sync_mirror(db_url, mirror)
    assert not result.full
    # The 3 changed tasks; unchanged ones again only when the horizon was held back.
    assert result.upserted == expected and 3 <= expected["tasks"] <= 100
    assert elsewhere is None or expected["tasks"] == 100
    assert result.deleted == {"tasks": 0, "runs": 0, "users": 0}  # rewritten, not deleted
    assert mirror_tasks(mirror) == pg_tasks(conn)


def test_row_committed_late_by_a_transaction_begun_before_the_sync(conn, db_url, mirror):
    run = make_run(conn)
    make_task(conn, run)
    with psycopg.connect(db_url) as late:  # not autocommit: one open transaction
        late.execute(
            "INSERT INTO ai_tasks (run_id, task_id, tokens_input, tokens_output) "
            "VALUES (%s, %s, 1, 1)",
            (run, uuid.uuid4()),
        )
        during = sync_mirror(db_url, mirror)  # the writer is still running
        assert during.rows["tasks"] == 1
        late.commit()
    make_task(conn, run)  # an unrelated later write
    after = sync_mirror(db_url, mirror)
    assert not after.full
    assert after.rows["tasks"] == 3
    assert mirror_tasks(mirror) == pg_tasks(conn)
    # Many more syncs never count it twice.
    for _ in range(3):
        assert sync_mirror(db_url, mirror).rows["tasks"] == 3


def test_updates_replace_rows(conn, db_url, mirror):
    run = make_run(conn)
    task = make_task(conn, run, status="pending")
    sync_mirror(db_url, mirror)
    conn.execute(
        "UPDATE ai_tasks SET status = 'completed', cost = 2.5, time_to_first_token = 120, "
        "total_time = 900 WHERE task_id = %s",
        (task,),
    )
    sync_mirror(db_url, mirror)
    assert mirror_tasks(mirror) == pg_tasks(conn)
    rows = mirror_value(mirror, "SELECT status, cost FROM tasks")
    assert rows == [("completed", Decimal("2.5"))]
    assert mirror_value(mirror, "SELECT total_cost FROM runs") == [(Decimal("2.5"),)]


def test_task_delete_and_run_delete_cascade_remove(conn, db_url, mirror):
    keep, doomed = make_run(conn), make_run(conn)
    first = make_task(conn, keep)
    make_task(conn, keep)
    for _ in range(3):
        make_task(conn, doomed)
    assert sync_mirror(db_url, mirror).rows == {"tasks": 5, "runs": 2, "users": 0}
    conn.execute("DELETE FROM ai_tasks WHERE task_id = %s", (first,))
    conn.execute("DELETE FROM ai_runs WHERE id = %s", (doomed,))
    result = sync_mirror(db_url, mirror)
    assert result.deleted == {"tasks": 4, "runs": 1, "users": 0}
    assert result.rows == {"tasks": 1, "runs": 1, "users": 0}
    assert mirror_tasks(mirror) == pg_tasks(conn)


def test_deleted_then_written_again_stays(conn, db_url, mirror):
    run = make_run(conn)
    task = make_task(conn, run)
    sync_mirror(db_url, mirror)
    row = conn.execute("SELECT id FROM ai_tasks WHERE task_id = %s", (task,)).fetchone()
    conn.execute("DELETE FROM ai_tasks WHERE id = %s", (row["id"],))
    conn.execute(
        "INSERT INTO ai_tasks (id, run_id, task_id, tokens_input, tokens_output) "
        "VALUES (%s, %s, %s, 3, 4)",
        (row["id"], run, task),
    )
    sync_mirror(db_url, mirror)
    assert mirror_tasks(mirror) == pg_tasks(conn)


def test_run_and_user_changes_reach_the_task_copies(conn, db_url, mirror):
    run = make_run(conn, tags=["a"], source_type="chat")
    make_task(conn, run, user_id="zoe")
    sync_mirror(db_url, mirror)
    assert mirror_value(mirror, "SELECT team, tags, source_type FROM tasks") == [
        (None, ["a"], "chat")
    ]
    conn.execute("INSERT INTO ai_users (id, team) VALUES ('zoe', 'red')")
    conn.execute("UPDATE ai_runs SET tags = '{b,c}', source_type = 'applet' WHERE id = %s", (run,))
    sync_mirror(db_url, mirror)
    assert mirror_value(mirror, "SELECT team, tags, source_type FROM tasks") == [
        ("red", ["b", "c"], "applet")
    ]
    conn.execute("UPDATE ai_users SET team = 'blue' WHERE id = 'zoe'")
    sync_mirror(db_url, mirror)
    assert mirror_value(mirror, "SELECT team FROM tasks") == [("blue",)]
    conn.execute("DELETE FROM ai_users WHERE id = 'zoe'")
    sync_mirror(db_url, mirror)
    assert mirror_value(mirror, "SELECT team FROM tasks") == [(None,)]


def test_a_changed_task_takes_its_runs_attributes_staged_or_mirrored(
    conn, db_url, mirror, elsewhere
):
    """The extract leaves a task's run attributes out; the mirror fills them from the run
    staged in the same sync, else from its own copy of the run."""
    run = make_run(conn, tags=["a"], source_type="chat")
    task = make_task(conn, run, task_name="first")
    first = sync_mirror(db_url, mirror)
    # Only the task changes (no total moves, so the run is not rewritten): the mirror's run.
    # (Held back elsewhere, the sync reads the run again too: its own staged copy.)
    conn.execute("UPDATE ai_tasks SET task_name = 'renamed' WHERE task_id = %s", (task,))
    expected = read_again(conn, first.horizon, elsewhere)
    result = sync_mirror(db_url, mirror)
    assert result.upserted == expected and expected["tasks"] == 1
    assert mirror_value(mirror, "SELECT task_name, tags, source_type FROM tasks") == [
        ("renamed", ["a"], "chat")
    ]
    # The run and a new task of it change in one sync: the staged run.
    conn.execute("UPDATE ai_runs SET tags = '{b}', source_type = 'applet' WHERE id = %s", (run,))
    make_task(conn, run, task_name="second")
    sync_mirror(db_url, mirror)
    assert mirror_value(
        mirror, "SELECT task_name, tags, source_type FROM tasks ORDER BY task_name"
    ) == [("renamed", ["b"], "applet"), ("second", ["b"], "applet")]


def test_many_syncs_with_concurrent_writers_match_postgres(conn, db_url, mirror):
    rng = random.Random(7)
    runs = [make_run(conn) for _ in range(4)]
    stop = threading.Event()

    def writer(seed: int) -> None:
        local = random.Random(seed)
        with psycopg.connect(db_url, autocommit=False) as w:
            while not stop.is_set():
                try:
                    write_some(w, local)
                except psycopg.errors.DeadlockDetected:
                    w.rollback()  # two multi-statement writers; the other one goes on
                time.sleep(0.005)

    def write_some(w: psycopg.Connection, local: random.Random) -> None:
        for _ in range(local.randint(1, 4)):
            w.execute(
                "INSERT INTO ai_tasks (run_id, task_id, tokens_input, tokens_output, cost) "
                "VALUES (%s, %s, 1, 1, 0.01)",
                (local.choice(runs), uuid.uuid4()),
            )
        w.execute(
            "UPDATE ai_tasks SET status = 'completed' WHERE id IN "
            "(SELECT id FROM ai_tasks WHERE status = 'pending' ORDER BY random() LIMIT 1)"
        )
        if local.random() < 0.3:
            w.execute(
                "DELETE FROM ai_tasks WHERE id IN "
                "(SELECT id FROM ai_tasks ORDER BY random() LIMIT 1)"
            )
        w.commit() if local.random() < 0.9 else w.rollback()

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(8):
            sync_mirror(db_url, mirror)
            if rng.random() < 0.5:
                make_task(conn, rng.choice(runs))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    final = sync_mirror(db_url, mirror)
    assert not final.full
    assert len(pg_tasks(conn)) > 20, "the writers wrote while the syncs ran"
    assert mirror_tasks(mirror) == pg_tasks(conn)
    totals = mirror_value(mirror, "SELECT sum(task_count), sum(total_cost) FROM runs")
    expected = conn.execute("SELECT sum(task_count) AS n, sum(total_cost) AS c FROM ai_runs")
    row = expected.fetchone()
    assert totals == [(row["n"], row["c"])]


def test_old_schema_version_is_rebuilt(conn, db_url, mirror, caplog):
    make_task(conn, make_run(conn))
    sync_mirror(db_url, mirror)
    with open_mirror(mirror) as con:
        con.execute("UPDATE mirror_meta SET value = '0' WHERE key = 'schema_version'")
    with caplog.at_level(logging.WARNING):
        result = sync_mirror(db_url, mirror)
    assert result.full and f"needs {MIRROR_SCHEMA_VERSION}" in result.reason
    assert "schema version 0" in caplog.text
    assert mirror_tasks(mirror) == pg_tasks(conn)


def test_corrupt_file_is_rebuilt(conn, db_url, mirror, caplog):
    make_task(conn, make_run(conn))
    mirror.write_bytes(os.urandom(64 * 1024))
    with caplog.at_level(logging.WARNING):
        result = sync_mirror(db_url, mirror)
    assert result.full
    assert "corrupt" in caplog.text or "unreadable" in caplog.text
    assert mirror_tasks(mirror) == pg_tasks(conn)


def test_mirror_of_another_database_is_rebuilt(conn, db_url, mirror, pg_server, template_db):
    make_task(conn, make_run(conn))
    sync_mirror(db_url, mirror)
    name = f"ai_runs_other_{os.getpid()}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        embedded.drop_database(admin, name, force=False)
        embedded.create_database(admin, name, template_db)
    other = embedded.with_database(pg_server, name)
    database._migrated.add(other)
    try:
        result = sync_mirror(other, mirror)
        assert result.full and "another database" in result.reason
        assert result.rows["tasks"] == 0
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            embedded.drop_database(admin, name)


def test_truncate_is_rebuilt(conn, db_url, mirror):
    make_task(conn, make_run(conn))
    sync_mirror(db_url, mirror)
    conn.execute("TRUNCATE ai_tasks")
    make_task(conn, make_run(conn))
    result = sync_mirror(db_url, mirror)
    assert result.full and "truncated" in result.reason
    assert mirror_tasks(mirror) == pg_tasks(conn)


def test_sync_through_the_dashboards_connection_and_freshness(conn, db_url, mirror):
    make_task(conn, make_run(conn))
    con = open_mirror(mirror)
    try:
        assert sync_mirror(db_url, con=con).full
        make_task(conn, make_run(conn))
        assert not sync_mirror(db_url, con=con).full
        fresh = mirror_freshness(con)
        assert fresh["tasks"] == 2 and fresh["runs"] == 2
        assert fresh["schema_version"] == MIRROR_SCHEMA_VERSION
        assert fresh["last_sync_at"] >= fresh["last_full_sync_at"]
        # Another process cannot open the file meanwhile: a clear error, not a hang.
        code = (
            f"import sys; from queries import sync_mirror\nsync_mirror({db_url!r}, {str(mirror)!r})"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        assert done.returncode != 0
        assert "open in another process" in done.stderr
    finally:
        con.close()


def test_cli_sync(conn, db_url, mirror, monkeypatch, capsys):
    from dashboard.command import main

    make_task(conn, make_run(conn))
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["sync", "--mirror", str(mirror)]) == 0
    assert "full rebuild (mirror is missing or empty)" in capsys.readouterr().out
    assert main(["sync", "--mirror", str(mirror)]) == 0
    out = capsys.readouterr().out
    assert "incremental" in out and "rows: tasks 1, runs 1, users 0" in out
