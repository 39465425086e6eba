"""A transaction left open anywhere on the server holds the change-capture horizon back:
the sync names it (pid, database, user, how to end it) in its result, the mirror's facts,
the log, `ai-runs sync` and the dashboard, and forgets it once it ends
(docs/design.md, "When the horizon is held back")."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from builders import make_run, make_task
from dashboard_support import app_environment, open_page

from dashboard.command import main
from ingest.store import horizon
from queries import mirror_freshness, open_mirror, sync_mirror


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    return tmp_path / "analytics.duckdb"


def database_name(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT current_database()").fetchone()[0]


@pytest.fixture
def elsewhere(make_db) -> Iterator[psycopg.Connection]:
    """A transaction with an id, left open in another database of the same server."""
    with psycopg.connect(make_db()) as other:  # not autocommit: one open transaction
        other.execute("SELECT pg_current_xact_id()")
        yield other


def pids(holders: list[horizon.HorizonHolder]) -> set[int | None]:
    return {holder.pid for holder in holders}


def test_an_open_transaction_in_another_database_is_named_until_it_commits(
    conn, db_url, make_db, mirror, caplog
):
    run = make_run(conn)
    make_task(conn, run)
    sync_mirror(db_url, mirror)
    other_url = make_db()
    other_name = database_name(other_url)
    with psycopg.connect(other_url) as other:
        other.execute("SELECT pg_current_xact_id()")
        pid = other.info.backend_pid
        make_task(conn, run)
        with caplog.at_level(logging.WARNING, logger="queries.mirror"):
            held = sync_mirror(db_url, mirror, held_back_after=0)
        (named,) = [h for h in held.held_back_by if h.pid == pid]
        assert named.kind == "session" and named.database == other_name
        assert named.state == "idle in transaction" and not named.hidden
        assert named.started is not None and named.age_seconds >= 0
        assert "pg_current_xact_id" in named.query
        assert f"pid {pid} in database {other_name}" in caplog.text
        assert f"SELECT pg_terminate_backend({pid})" in caplog.text
        with open_mirror(mirror, read_only=True) as con:  # the mirror's facts keep it
            assert pid in pids(mirror_freshness(con)["held_back_by"])
        # While it stays open the horizon stays below it: the next sync reads again the task
        # written after it began.
        assert sync_mirror(db_url, mirror, held_back_after=0).upserted["tasks"] >= 1
        other.commit()
    after = sync_mirror(db_url, mirror, held_back_after=0)
    assert pid not in pids(after.held_back_by)
    with open_mirror(mirror, read_only=True) as con:
        assert pid not in pids(mirror_freshness(con)["held_back_by"])


def test_a_transaction_younger_than_the_threshold_is_not_named(db_url, mirror, elsewhere):
    assert horizon.HELD_BACK_AFTER_SECONDS == 60
    result = sync_mirror(db_url, mirror)  # the default threshold: a minute
    assert elsewhere.info.backend_pid not in pids(result.held_back_by)
    result = sync_mirror(db_url, mirror, held_back_after=3600)
    assert elsewhere.info.backend_pid not in pids(result.held_back_by)


def test_a_snapshot_without_a_transaction_id_does_not_hold_the_horizon(
    conn, db_url, make_db, mirror
):
    """A long read (REPEATABLE READ, nothing written) holds back vacuum, not the horizon: it
    is not named, and rows written after it began are below the next horizon."""
    with psycopg.connect(make_db()) as reader:
        reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        reader.execute("SELECT count(*) FROM ai_tasks").fetchone()
        assert reader.execute("SELECT backend_xid IS NULL FROM pg_stat_activity "
                              "WHERE pid = pg_backend_pid()").fetchone()[0]  # fmt: skip
        result = sync_mirror(db_url, mirror, held_back_after=0)
        assert reader.info.backend_pid not in pids(result.held_back_by)


def test_another_users_session_is_named_without_its_hidden_details(db_url, make_db, pg_server):
    """A role without pg_read_all_stats sees another user's pid, database and user, not its
    start or query: it is named as "another session of user X" once it was already running
    at the previous horizon."""
    role = f"ai_runs_probe_{os.getpid()}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        owner = admin.execute("SELECT current_user").fetchone()[0]
    try:
        other_url = make_db()
        with psycopg.connect(other_url) as other:
            xid = other.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
            pid = other.info.backend_pid
            previous = str(int(xid) + 1)  # a horizon taken while it was running
            probe_url = psycopg.conninfo.make_conninfo(db_url, user=role)
            with psycopg.connect(probe_url, autocommit=True) as probe:
                assert pid not in pids(horizon.find_holders(probe, previous="0", older_than=0))
                holders = horizon.find_holders(probe, previous=previous, older_than=3600)
        (named,) = [h for h in holders if h.pid == pid]
        assert named.hidden and named.username == owner
        assert named.database == database_name(other_url)
        assert named.started is None and named.query is None and named.state is None
        text = named.describe()
        assert f"another session of user {owner}" in text
        assert f"pg_terminate_backend({pid})" in text
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_ai_runs_sync_prints_who_holds_the_horizon(
    conn, db_url, mirror, elsewhere, monkeypatch, capsys
):
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setattr(horizon, "HELD_BACK_AFTER_SECONDS", 0.0)
    make_task(conn, make_run(conn))
    assert main(["sync", "--mirror", str(mirror)]) == 0
    out = capsys.readouterr().out
    pid = elsewhere.info.backend_pid
    assert "horizon: The change-capture horizon is held back" in out
    assert f"held by pid {pid} in database {elsewhere.info.dbname}" in out
    assert f"SELECT pg_terminate_backend({pid})" in out
    elsewhere.commit()
    assert main(["sync", "--mirror", str(mirror)]) == 0
    assert f"pid {pid} " not in capsys.readouterr().out


def test_the_dashboard_sidebar_names_who_holds_the_horizon(
    conn, db_url, tmp_path, elsewhere, monkeypatch
):
    monkeypatch.setattr(horizon, "HELD_BACK_AFTER_SECONDS", 0.0)
    make_task(conn, make_run(conn))
    pid = elsewhere.info.backend_pid
    with app_environment(db_url, tmp_path):
        at = open_page("overview")
        assert not at.exception
        warnings = [w.value for w in at.sidebar.warning]
        (shown,) = [w for w in warnings if "horizon is held back" in w]
        assert f"pid {pid} in database {elsewhere.info.dbname}" in shown.replace("\\", "")
        assert f"pg_terminate_backend({pid})" in shown.replace("\\", "")


def test_prepared_transactions_and_holders_read_back(db_url):
    """The query reads pg_prepared_xacts too (none here), and a holder survives the mirror's
    facts (to_dict / from_dict)."""
    with psycopg.connect(db_url) as conn:
        holders = horizon.find_holders(conn, older_than=0)
    assert all(h.kind in ("session", "prepared") for h in holders)
    for holder in holders:
        assert horizon.HorizonHolder.from_dict(holder.to_dict()) == holder
    prepared = horizon.HorizonHolder("prepared", None, "db", "ann", None, "prepared", None,
                                     120.0, None, "tx1", False)  # fmt: skip
    assert "COMMIT PREPARED 'tx1' or ROLLBACK PREPARED 'tx1'" in prepared.describe()
    assert horizon.held_back_message([]) is None
